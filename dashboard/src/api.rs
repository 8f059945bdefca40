//! The dashboard's HTTP surface: routes, the session extractor, CSRF, security headers, and
//! the handlers that run [`crate::views`] statements and the actions.
//!
//! Owns: the URL layout (`/`, `/assets/…`, `/healthz`, `/api/…`), status codes and JSON error
//! bodies, cookies, the audit record of every login, action and export.
//! Never: answers an `/api` request other than login without a live session; never runs a
//! state-changing request without the session's CSRF token; never blocks the async runtime
//! on the store (queries run on the blocking pool).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, FromRequestParts, Path, RawQuery, State};
use axum::http::{header, request::Parts, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::auth::{self, Role, Session};
use crate::backend::Params;
use crate::filters::{FilterError, ViewQuery, FIELDS};
use crate::table::Table;
use crate::views::{self, Stmt};
use crate::Dashboard;

type St = State<Arc<Dashboard>>;

const COOKIE: &str = "ja4_session";

/// Errors as the API reports them: a status and a JSON `{"error": …}`.
#[derive(Debug)]
pub enum ApiError {
    /// 400: the request is malformed (why).
    BadRequest(String),
    /// 401: no valid session.
    Unauthorized,
    /// 403: the role may not do this (what).
    Forbidden(&'static str),
    /// 404.
    NotFound,
    /// 429: too many failed logins; seconds until the next try (`Retry-After`).
    TooMany(u64),
    /// Password verifications are all busy.
    Busy,
    /// A request body that is not what the route takes (status, and a message that carries
    /// none of the parser's details).
    Body(StatusCode, &'static str),
    /// Something failed inside: the client gets a generic message and a request id, the log
    /// gets the details under the same id.
    Store(String),
}

impl From<FilterError> for ApiError {
    fn from(e: FilterError) -> ApiError {
        ApiError::BadRequest(e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, msg) = match &self {
            ApiError::BadRequest(m) => (StatusCode::BAD_REQUEST, m.clone()),
            ApiError::Unauthorized => (StatusCode::UNAUTHORIZED, "log in first".into()),
            ApiError::Forbidden(m) => (StatusCode::FORBIDDEN, (*m).into()),
            ApiError::NotFound => (StatusCode::NOT_FOUND, "not found".into()),
            ApiError::TooMany(s) => (
                StatusCode::TOO_MANY_REQUESTS,
                format!("too many failed logins: try again in {s} s"),
            ),
            ApiError::Body(status, m) => (*status, (*m).into()),
            ApiError::Busy => (
                StatusCode::SERVICE_UNAVAILABLE,
                "too many logins at once: try again".into(),
            ),
            ApiError::Store(m) => {
                let id = &auth::token()[..16];
                tracing::warn!(request_id = id, error = %m, "dashboard request failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("internal error (request id {id})"),
                )
            }
        };
        let mut r = (status, Json(json!({ "error": msg }))).into_response();
        if let ApiError::TooMany(s) = self {
            if let Ok(v) = HeaderValue::from_str(&s.to_string()) {
                r.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        r
    }
}

type ApiResult<T> = Result<T, ApiError>;

/// A JSON request body. Unlike axum's `Json`, a body that does not read answers with a short
/// message of ours — 415 without `Content-Type: application/json` (what a simple cross-site
/// form can send), 413 when too large, else 400 — never with the parser's words.
pub struct JsonBody<T>(pub T);

impl<T, S> axum::extract::FromRequest<S> for JsonBody<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, state: &S) -> ApiResult<JsonBody<T>> {
        use axum::extract::rejection::JsonRejection;
        match Json::<T>::from_request(req, state).await {
            Ok(Json(v)) => Ok(JsonBody(v)),
            Err(JsonRejection::MissingJsonContentType(_)) => Err(ApiError::Body(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "expected Content-Type: application/json",
            )),
            Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => Err(ApiError::Body(
                StatusCode::PAYLOAD_TOO_LARGE,
                "request body too large",
            )),
            Err(e) => {
                tracing::debug!(error = %e, "request body refused");
                Err(ApiError::Body(
                    StatusCode::BAD_REQUEST,
                    "request body is not the JSON this route takes",
                ))
            }
        }
    }
}

/// A request from a logged-in user; for methods other than GET/HEAD the CSRF token and
/// (when the browser sends one) the Origin have been checked.
pub struct Authed {
    /// The user's session.
    pub session: Session,
    /// The client's address (as the listener saw it).
    pub ip: IpAddr,
}

fn cookie_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v.to_owned())
}

/// The client address of a dashboard connection (plain or TLS): what the audit trail and
/// the login limiter record. Serve the router with
/// `into_make_service_with_connect_info::<Peer>()`.
#[derive(Debug, Clone, Copy)]
pub struct Peer(pub SocketAddr);

impl
    axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, tokio::net::TcpListener>>
    for Peer
{
    fn connect_info(s: axum::serve::IncomingStream<'_, tokio::net::TcpListener>) -> Peer {
        Peer(*s.remote_addr())
    }
}

impl
    axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, crate::tls::TlsListener>>
    for Peer
{
    fn connect_info(s: axum::serve::IncomingStream<'_, crate::tls::TlsListener>) -> Peer {
        Peer(*s.remote_addr())
    }
}

fn peer_ip(parts: &Parts, d: &Dashboard) -> IpAddr {
    let peer = parts
        .extensions
        .get::<ConnectInfo<Peer>>()
        .map_or(IpAddr::from([0, 0, 0, 0]), |c| c.0 .0.ip());
    client_ip(peer, &parts.headers, &d.trusted_proxies)
}

/// The client's address: the peer's, or — when the peer is a trusted proxy — the last
/// `X-Forwarded-For` entry that is not itself a trusted proxy. A header from anyone else is
/// ignored: a client cannot choose the address its logins are counted under.
pub fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted: &[(IpAddr, u8)]) -> IpAddr {
    let is_trusted = |ip: IpAddr| trusted.iter().any(|n| crate::in_net(ip, *n));
    if !is_trusted(peer) {
        return peer.to_canonical();
    }
    let hops: Vec<IpAddr> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map_while(|h| h.trim().parse::<IpAddr>().ok())
        .collect();
    hops.into_iter()
        .rev()
        .find(|ip| !is_trusted(*ip))
        .unwrap_or(peer)
        .to_canonical()
}

/// A state-changing request must come from our own pages: when the browser sends an Origin,
/// it must be ours in full — scheme, host and port (`public_origin`, else this listener's
/// scheme and the request's Host).
fn same_origin(headers: &HeaderMap, d: &Dashboard) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    let origin = origin.to_ascii_lowercase();
    if !d.public_origin.is_empty() {
        return origin == d.public_origin;
    }
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    let scheme = if d.secure_cookies { "https" } else { "http" };
    !host.is_empty() && origin == format!("{scheme}://{host}")
}

/// Requests whose Host is not one of ours get 421 (a page rebound to our address by DNS
/// reads nothing).
async fn allowed_host(
    State(d): St,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    if !d.allowed_hosts.is_empty() {
        let host = req
            .headers()
            .get(header::HOST)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_ascii_lowercase();
        if !d.allowed_hosts.contains(&host) {
            return (
                StatusCode::MISDIRECTED_REQUEST,
                Json(json!({ "error": "unknown host" })),
            )
                .into_response();
        }
    }
    next.run(req).await
}

impl FromRequestParts<Arc<Dashboard>> for Authed {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, d: &Arc<Dashboard>) -> ApiResult<Authed> {
        let token = cookie_token(&parts.headers).ok_or(ApiError::Unauthorized)?;
        let session = d
            .sessions
            .get(&token, &d.users)
            .ok_or(ApiError::Unauthorized)?;
        if parts.method != Method::GET && parts.method != Method::HEAD {
            let sent = parts
                .headers
                .get("x-csrf-token")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            if !auth::same(sent, &session.csrf) || !same_origin(&parts.headers, d) {
                return Err(ApiError::Forbidden("missing or wrong CSRF token"));
            }
        }
        Ok(Authed {
            session,
            ip: peer_ip(parts, d),
        })
    }
}

/// A logged-in admin.
pub struct Admin(pub Authed);

impl FromRequestParts<Arc<Dashboard>> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, d: &Arc<Dashboard>) -> ApiResult<Admin> {
        let a = Authed::from_request_parts(parts, d).await?;
        if a.session.role != Role::Admin {
            return Err(ApiError::Forbidden("this needs the admin role"));
        }
        Ok(Admin(a))
    }
}

/// The dashboard's routes. Serve with `into_make_service_with_connect_info::<Peer>()`
/// (the audit trail and the login limiter use the client address).
pub fn router(d: Arc<Dashboard>) -> Router {
    Router::new()
        .route("/", get(crate::assets::index))
        .route("/assets/{name}", get(crate::assets::asset))
        .route("/healthz", get(|| async { "ok\n" }))
        .route(
            "/api/login",
            post(login).layer(axum::extract::DefaultBodyLimit::max(8 * 1024)),
        )
        .route("/api/logout", post(logout))
        .route("/api/session", get(session))
        .route("/api/overview", get(overview))
        .route("/api/top", get(top))
        .route("/api/detections", get(detections))
        .route("/api/scores", get(scores))
        .route("/api/campaigns", get(campaigns))
        .route("/api/campaign", get(campaign))
        .route("/api/fingerprint", get(fingerprint))
        .route("/api/client", get(client))
        .route("/api/client/requests", get(client_requests))
        .route("/api/audit", get(audit))
        .route("/api/mitigation", get(mitigation))
        .route("/api/labels", get(labels).post(add_label))
        .route("/api/lists", get(lists).post(set_list))
        .route("/api/users", get(users).post(set_user))
        .route("/api/{*rest}", get(not_found).post(not_found))
        .layer(axum::middleware::map_response(security_headers))
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&d),
            allowed_host,
        ))
        .with_state(d)
}

async fn not_found(_: Path<String>) -> ApiError {
    ApiError::NotFound
}

async fn security_headers(mut r: Response) -> Response {
    let h = r.headers_mut();
    for (k, v) in [
        (
            "content-security-policy",
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; \
             form-action 'self'; frame-ancestors 'none'",
        ),
        ("x-content-type-options", "nosniff"),
        ("x-frame-options", "DENY"),
        ("referrer-policy", "no-referrer"),
        ("cross-origin-opener-policy", "same-origin"),
    ] {
        h.insert(k, HeaderValue::from_static(v));
    }
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    r
}

impl Dashboard {
    /// Runs a statement on the blocking pool and decodes the result.
    async fn run(&self, stmt: Stmt) -> ApiResult<Table> {
        let backend = Arc::clone(&self.backend);
        let mut sql = stmt.sql.replace("{db}", backend.database());
        let settings = "output_format_json_quote_64bit_integers = 0, max_execution_time = 30, prefer_column_name_to_alias = 1, \
                        output_format_json_quote_denormals = 0";
        if sql.contains(" SETTINGS ") {
            sql.push_str(&format!(", {settings}"));
        } else {
            sql.push_str(&format!(" SETTINGS {settings}"));
        }
        let params = stmt.params;
        let out = tokio::task::spawn_blocking(move || backend.query_json(&sql, &params))
            .await
            .map_err(|e| ApiError::Store(format!("query task failed: {e}")))?
            .map_err(|e| {
                tracing::warn!(error = %e, "dashboard query failed");
                ApiError::Store(format!("query failed: {e}"))
            })?;
        Table::from_clickhouse(&out).map_err(|e| ApiError::Store(format!("bad query result: {e}")))
    }

    /// Runs a statement that changes data.
    async fn exec(&self, sql: &str, params: Params) -> ApiResult<()> {
        let backend = Arc::clone(&self.backend);
        let sql = sql.replace("{db}", backend.database());
        tokio::task::spawn_blocking(move || backend.query_json(&sql, &params))
            .await
            .map_err(|e| ApiError::Store(format!("task failed: {e}")))?
            .map(|_| ())
            .map_err(|e| ApiError::Store(format!("write failed: {e}")))
    }

    /// Appends to the audit trail. A failure is logged loudly and reported to the caller.
    async fn audit(
        &self,
        (actor, role): (&str, &str),
        action: &str,
        target: &str,
        success: bool,
        ip: IpAddr,
        details: Value,
    ) -> ApiResult<()> {
        let mut p = Params::new();
        let sql = format!(
            "INSERT INTO {{db}}.audit_logs (actor, role, action, target, success, client_ip, details) \
             SELECT {}, {}, {}, {}, {}, toIPv6OrDefault({}), \
             CAST(JSONExtractKeysAndValues({}, 'String'), 'Map(String, String)')",
            p.bind("String", actor),
            p.bind("String", role),
            p.bind("String", action),
            p.bind("String", target),
            p.bind("UInt8", u8::from(success).to_string()),
            p.bind("String", ip.to_string()),
            p.bind("String", details.to_string()),
        );
        self.exec(&sql, p).await.inspect_err(|e| {
            tracing::error!(?e, actor, action, target, "cannot write the audit log");
        })
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn parse(q: &RawQuery) -> ApiResult<ViewQuery> {
    Ok(ViewQuery::parse(q.0.as_deref().unwrap_or(""), now_ms())?)
}

fn ignored_json(stmt: &Stmt) -> Value {
    json!(stmt
        .ignored
        .iter()
        .map(|f| format!("{}:{}", f.field, f.value))
        .collect::<Vec<_>>())
}

/// A table view's response: JSON, or CSV (audited) with `format=csv`.
async fn table_response(
    d: &Dashboard,
    a: &Authed,
    q: &ViewQuery,
    view: &str,
    stmt: Stmt,
) -> ApiResult<Response> {
    let ignored = ignored_json(&stmt);
    let mut t = d.run(stmt).await?;
    // The exact row count of the whole result comes as a window column on every row.
    if let Some(n) = t
        .rows
        .first()
        .and_then(|r| r.get("_total"))
        .and_then(|v| v.as_u64())
    {
        t.total = Some(n);
    }
    t.columns.retain(|c| c != "_total");
    for r in &mut t.rows {
        r.remove("_total");
    }
    if q.csv {
        d.audit((&a.session.user, a.session.role.as_str()), "export",
            view,
            true,
            a.ip,
            json!({ "rows": t.rows.len().to_string(), "range": format!("{}..{}", q.from_ms, q.to_ms) }),
        )
        .await?;
        let name = format!("ja4-{view}-{}.csv", q.to_ms / 1000);
        return Ok((
            [
                (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
                (
                    header::CONTENT_DISPOSITION,
                    format!("attachment; filename=\"{name}\""),
                ),
            ],
            t.to_csv(),
        )
            .into_response());
    }
    Ok(Json(json!({
        "columns": t.columns,
        "rows": t.rows,
        "total": t.total,
        "page": q.page,
        "limit": q.limit,
        "ignored_filters": ignored,
    }))
    .into_response())
}

fn cookie(d: &Dashboard, value: &str, max_age: u64) -> String {
    format!(
        "{COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{}",
        if d.secure_cookies { "; Secure" } else { "" }
    )
}

#[derive(Deserialize)]
struct LoginForm {
    user: String,
    password: String,
}

async fn login(
    State(d): St,
    ConnectInfo(Peer(peer)): ConnectInfo<Peer>,
    headers: HeaderMap,
    JsonBody(f): JsonBody<LoginForm>,
) -> ApiResult<Response> {
    if !same_origin(&headers, &d) {
        return Err(ApiError::Forbidden("cross-origin login"));
    }
    let ip = client_ip(peer.ip(), &headers, &d.trusted_proxies);
    let user = f.user.trim().to_owned();
    // A name no user can have is refused before it is counted or written anywhere.
    if !auth::valid_name(&user) || f.password.len() > 4 * auth::MAX_PASSWORD {
        return Err(ApiError::Unauthorized);
    }
    let attempt = match d.limiter.begin(ip, &user) {
        Ok(a) => a,
        Err(r) => {
            // One audit entry per block; the refusals after it are counted in the limiter.
            if r.first {
                d.audit(
                    (&user, ""),
                    "login_blocked",
                    &user,
                    false,
                    ip,
                    json!({ "wait_s": r.wait_s.to_string() }),
                )
                .await
                .ok();
            }
            return Err(ApiError::TooMany(r.wait_s));
        }
    };
    let slot =
        match tokio::time::timeout(std::time::Duration::from_secs(10), d.verify_slots.acquire())
            .await
        {
            Ok(Ok(slot)) => slot,
            _ => {
                d.limiter.failed(attempt);
                return Err(ApiError::Busy);
            }
        };
    let d2 = Arc::clone(&d);
    let (u2, pw) = (user.clone(), f.password);
    let found = tokio::task::spawn_blocking(move || d2.users.authenticate(&u2, &pw))
        .await
        .map_err(|e| ApiError::Store(e.to_string()))?;
    drop(slot);
    let Some(u) = found else {
        d.limiter.failed(attempt);
        d.audit((&user, ""), "login_failed", &user, false, ip, json!({}))
            .await
            .ok();
        return Err(ApiError::Unauthorized);
    };
    d.limiter.succeeded(attempt);
    let (token, s) = d.sessions.start(&u);
    d.audit(
        (&u.name, u.role.as_str()),
        "login",
        &u.name,
        true,
        ip,
        json!({}),
    )
    .await
    .ok();
    let c = cookie(&d, &token, d.sessions.ttl().as_secs());
    Ok((
        [(header::SET_COOKIE, c)],
        Json(json!({ "user": s.user, "role": s.role, "csrf": s.csrf })),
    )
        .into_response())
}

async fn logout(State(d): St, a: Authed, headers: HeaderMap) -> ApiResult<Response> {
    if let Some(t) = cookie_token(&headers) {
        d.sessions.end(&t);
    }
    d.audit(
        (&a.session.user, a.session.role.as_str()),
        "logout",
        &a.session.user,
        true,
        a.ip,
        json!({}),
    )
    .await
    .ok();
    Ok((
        [(header::SET_COOKIE, cookie(&d, "", 0))],
        Json(json!({ "ok": true })),
    )
        .into_response())
}

async fn session(a: Authed) -> Json<Value> {
    Json(json!({
        "user": a.session.user,
        "role": a.session.role,
        "csrf": a.session.csrf,
        "fields": FIELDS,
        "dimensions": views::DIMENSIONS,
        // The feature registry, so that explanations say what each feature means.
        "features": ja4_ml::features::FEATURES
            .iter()
            .map(|f| json!({"name": f.name, "meaning": f.meaning, "unit": f.unit.as_str()}))
            .collect::<Vec<_>>(),
    }))
}

async fn overview(State(d): St, _a: Authed, q: RawQuery) -> ApiResult<Json<Value>> {
    let q = parse(&q)?;
    let totals = views::overview_totals(&q);
    let ignored = ignored_json(&totals);
    let totals = d.run(totals).await?;
    let series = d.run(views::overview_series(&q)).await?;
    let scores = d.run(views::overview_scores(&q)).await?;
    Ok(Json(json!({
        "totals": totals.rows.first(),
        "series": series.rows,
        "bucket_seconds": views::overview_bucket(&q),
        "scores": scores.rows,
        "ignored_filters": ignored,
    })))
}

async fn top(State(d): St, _a: Authed, q: RawQuery) -> ApiResult<Json<Value>> {
    let q = parse(&q)?;
    let dim = q.get("dim").unwrap_or("ja4").to_owned();
    let stmt = views::top(&q, &dim)?;
    let t = d.run(stmt).await?;
    Ok(Json(json!({ "dim": dim, "rows": t.rows })))
}

async fn detections(State(d): St, a: Authed, q: RawQuery) -> ApiResult<Response> {
    let q = parse(&q)?;
    let s = views::detections(&q)?;
    table_response(&d, &a, &q, "detections", s).await
}

async fn scores(State(d): St, a: Authed, q: RawQuery) -> ApiResult<Response> {
    let q = parse(&q)?;
    let s = views::scores(&q)?;
    table_response(&d, &a, &q, "scores", s).await
}

async fn campaigns(State(d): St, a: Authed, q: RawQuery) -> ApiResult<Response> {
    let q = parse(&q)?;
    let s = views::campaigns(&q)?;
    table_response(&d, &a, &q, "campaigns", s).await
}

fn id_param(q: &ViewQuery) -> ApiResult<i64> {
    q.get("id")
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| ApiError::BadRequest("id must be a campaign number".into()))
}

async fn campaign(State(d): St, _a: Authed, q: RawQuery) -> ApiResult<Json<Value>> {
    let q = parse(&q)?;
    let id = id_param(&q)?;
    let members = d.run(views::campaign_members(&q, id)).await?;
    let traffic = d.run(views::campaign_traffic(&q, id)).await?;
    let timeline = d.run(views::campaign_timeline(&q, id)).await?;
    Ok(Json(json!({
        "id": id,
        "members": members.rows,
        "shared": traffic.rows.first(),
        "timeline": timeline.rows,
        "bucket_seconds": views::bucket_seconds(&q),
    })))
}

fn fingerprint_value(v: &str) -> ApiResult<&str> {
    // JA4-style values, and HTTP/2 Akamai strings (`1:65536;2:0|15663105|0|m,a,s,p`).
    let ok = !v.is_empty()
        && v.len() <= 512
        && v.bytes().all(|b| {
            b.is_ascii_alphanumeric()
                || matches!(b, b'_' | b'-' | b'.' | b':' | b';' | b'|' | b',' | b'~')
        });
    ok.then_some(v)
        .ok_or_else(|| ApiError::BadRequest("value is not a fingerprint".into()))
}

async fn fingerprint(State(d): St, _a: Authed, q: RawQuery) -> ApiResult<Json<Value>> {
    let q = parse(&q)?;
    let kind = q.get("kind").unwrap_or("ja4");
    let col = views::fingerprint_column(kind)
        .ok_or_else(|| ApiError::BadRequest("kind must be ja4, ja4h, ja4t or h2".into()))?;
    let value = fingerprint_value(q.get("value").unwrap_or(""))?.to_owned();
    let summary = d.run(views::fingerprint_summary(&q, col, &value)).await?;
    let clients = d.run(views::fingerprint_clients(&q, col, &value)).await?;
    let timeline = d.run(views::timeline(&q, col, &value, "String")).await?;
    Ok(Json(json!({
        "kind": kind,
        "value": value,
        "summary": summary.rows.first(),
        "clients": clients.rows,
        "timeline": timeline.rows,
        "bucket_seconds": views::bucket_seconds(&q),
    })))
}

fn ip_param(q: &ViewQuery) -> ApiResult<String> {
    q.get("ip")
        .and_then(|v| v.parse::<IpAddr>().ok())
        .map(|ip| ip.to_string())
        .ok_or_else(|| ApiError::BadRequest("ip must be an IPv4 or IPv6 address".into()))
}

async fn client(State(d): St, _a: Authed, q: RawQuery) -> ApiResult<Json<Value>> {
    let q = parse(&q)?;
    let ip = ip_param(&q)?;
    let summary = d.run(views::client_summary(&q, &ip)).await?;
    let fps = d.run(views::client_fingerprints(&q, &ip)).await?;
    let scores = d.run(views::client_scores(&q, &ip)).await?;
    let timeline = d
        .run(views::timeline(&q, "client_ip", &ip, "IPv6"))
        .await
        .or_else(|_| Ok::<_, ApiError>(Table::default()))?;
    let lists = d.run(list_entries(Some(("ip", &ip)))).await?;
    let labels = d.run(label_entries(Some(("ip", &ip)))).await?;
    let actions = d.run(views::client_actions(&q, &ip)).await?;
    Ok(Json(json!({
        "ip": ip,
        "actions": actions.rows,
        "summary": summary.rows.first(),
        "fingerprints": fps.rows,
        "scores": scores.rows,
        "timeline": timeline.rows,
        "bucket_seconds": views::bucket_seconds(&q),
        "lists": lists.rows,
        "labels": labels.rows,
    })))
}

async fn client_requests(State(d): St, a: Authed, q: RawQuery) -> ApiResult<Response> {
    let q = parse(&q)?;
    let ip = ip_param(&q)?;
    table_response(&d, &a, &q, "requests", views::client_requests(&q, &ip)).await
}

async fn mitigation(State(d): St, _a: Authed, q: RawQuery) -> ApiResult<Json<Value>> {
    let q = parse(&q)?;
    let totals = views::mitigation_totals(&q);
    let ignored = ignored_json(&totals);
    let totals = d.run(totals).await?;
    let series = d.run(views::mitigation_series(&q)).await?;
    let reasons = d.run(views::mitigation_reasons(&q)).await?;
    let clients = d.run(views::mitigation_top(&q, false)).await?;
    let ja4s = d.run(views::mitigation_top(&q, true)).await?;
    Ok(Json(json!({
        "actions": totals.rows,
        "series": series.rows,
        "bucket_seconds": views::bucket_seconds(&q),
        "reasons": reasons.rows,
        "clients": clients.rows,
        "ja4s": ja4s.rows,
        "ignored_filters": ignored,
    })))
}

async fn audit(State(d): St, a: Authed, q: RawQuery) -> ApiResult<Response> {
    let q = parse(&q)?;
    let s = views::audit(&q)?;
    table_response(&d, &a, &q, "audit", s).await
}

fn label_entries(subject: Option<(&str, &str)>) -> Stmt {
    let mut p = Params::new();
    let cond = match subject {
        Some((k, v)) => format!(
            "subject_kind = {} AND subject = {}",
            p.bind("String", k),
            p.bind("String", v)
        ),
        None => "1".into(),
    };
    Stmt {
        sql: format!(
            "SELECT toUnixTimestamp64Milli(labeled_at) AS labeled_at, subject_kind, subject, label, analyst, note \
             FROM {{db}}.ml_labels FINAL WHERE {cond} ORDER BY labeled_at DESC LIMIT 1000"
        ),
        params: p,
        ignored: Vec::new(),
    }
}

fn list_entries(subject: Option<(&str, &str)>) -> Stmt {
    let mut p = Params::new();
    let cond = match subject {
        Some((k, v)) => format!(
            "kind = {} AND value = {}",
            p.bind("String", k),
            p.bind("String", v)
        ),
        None => "1".into(),
    };
    Stmt {
        sql: format!(
            "SELECT toUnixTimestamp64Milli(updated_at) AS updated_at, kind, value, action, analyst, note, \
             if(expires_at = toDateTime64(0, 3, 'UTC'), 0, toUnixTimestamp64Milli(expires_at)) AS expires_at \
             FROM {{db}}.access_lists FINAL \
             WHERE active = 1 AND (expires_at = toDateTime64(0, 3, 'UTC') OR expires_at > now64(3)) AND {cond} \
             ORDER BY updated_at DESC LIMIT 1000"
        ),
        params: p,
        ignored: Vec::new(),
    }
}

async fn labels(State(d): St, _a: Authed) -> ApiResult<Json<Value>> {
    let t = d.run(label_entries(None)).await?;
    Ok(Json(json!({ "rows": t.rows })))
}

async fn lists(State(d): St, _a: Authed) -> ApiResult<Json<Value>> {
    let t = d.run(list_entries(None)).await?;
    Ok(Json(json!({ "rows": t.rows })))
}

/// Validates a subject by kind; returns its canonical form.
fn subject(kind: &str, value: &str) -> ApiResult<String> {
    match kind {
        "ip" => value
            .trim()
            .parse::<IpAddr>()
            .map(|i| i.to_string())
            .map_err(|_| ApiError::BadRequest("not an IP address".into())),
        "net" => {
            let (a, l) = value
                .trim()
                .split_once('/')
                .ok_or_else(|| ApiError::BadRequest("a network is address/length".into()))?;
            let a: IpAddr = a
                .parse()
                .map_err(|_| ApiError::BadRequest("not a network address".into()))?;
            let max = if a.is_ipv4() { 32 } else { 128 };
            match l.parse::<u8>() {
                Ok(l) if l <= max => Ok(format!("{a}/{l}")),
                _ => Err(ApiError::BadRequest("bad prefix length".into())),
            }
        }
        "ja4" | "ja4h" | "ja4t" | "h2" => fingerprint_value(value.trim()).map(str::to_owned),
        _ => Err(ApiError::BadRequest(
            "kind must be ip, net, ja4, ja4h, ja4t or h2".into(),
        )),
    }
}

fn note(n: &str) -> ApiResult<&str> {
    (n.chars().count() <= 500)
        .then_some(n)
        .ok_or_else(|| ApiError::BadRequest("a note has at most 500 characters".into()))
}

#[derive(Deserialize)]
struct LabelForm {
    subject_kind: String,
    subject: String,
    label: String,
    #[serde(default)]
    note: String,
}

/// Marks a client or fingerprint (analysts and admins): the labels feed the supervised model.
async fn add_label(
    State(d): St,
    a: Authed,
    JsonBody(f): JsonBody<LabelForm>,
) -> ApiResult<Json<Value>> {
    if f.subject_kind == "net" {
        return Err(ApiError::BadRequest("label an ip or a fingerprint".into()));
    }
    let subject = subject(&f.subject_kind, &f.subject)?;
    if !matches!(f.label.as_str(), "false_positive" | "confirmed_bot") {
        return Err(ApiError::BadRequest(
            "label must be false_positive or confirmed_bot".into(),
        ));
    }
    let note = note(&f.note)?;
    let mut p = Params::new();
    let sql = format!(
        "INSERT INTO {{db}}.ml_labels (subject_kind, subject, label, analyst, note) SELECT {}, {}, {}, {}, {}",
        p.bind("String", f.subject_kind.as_str()),
        p.bind("String", subject.as_str()),
        p.bind("String", f.label.as_str()),
        p.bind("String", a.session.user.as_str()),
        p.bind("String", note),
    );
    d.exec(&sql, p).await?;
    d.audit(
        (&a.session.user, a.session.role.as_str()),
        "label",
        &format!("{}:{subject}", f.subject_kind),
        true,
        a.ip,
        json!({ "label": f.label, "note": note }),
    )
    .await?;
    Ok(Json(json!({ "ok": true, "subject": subject })))
}

#[derive(Deserialize)]
struct ListForm {
    kind: String,
    value: String,
    /// allow, challenge, deny, or remove.
    action: String,
    #[serde(default)]
    note: String,
}

/// Adds or removes an allow/deny entry (admins).
async fn set_list(
    State(d): St,
    Admin(a): Admin,
    JsonBody(f): JsonBody<ListForm>,
) -> ApiResult<Json<Value>> {
    if !matches!(f.kind.as_str(), "ip" | "net" | "ja4") {
        return Err(ApiError::BadRequest("kind must be ip, net or ja4".into()));
    }
    let value = subject(&f.kind, &f.value)?;
    let (action, active) = match f.action.as_str() {
        "allow" | "challenge" | "deny" => (f.action.as_str(), 1),
        "remove" => ("", 0),
        _ => {
            return Err(ApiError::BadRequest(
                "action must be allow, challenge, deny or remove".into(),
            ))
        }
    };
    let note = note(&f.note)?;
    let mut p = Params::new();
    let sql = format!(
        "INSERT INTO {{db}}.access_lists (kind, value, action, active, analyst, note) SELECT {}, {}, {}, {}, {}, {}",
        p.bind("String", f.kind.as_str()),
        p.bind("String", value.as_str()),
        p.bind("String", action),
        p.bind("UInt8", active.to_string()),
        p.bind("String", a.session.user.as_str()),
        p.bind("String", note),
    );
    d.exec(&sql, p).await?;
    d.backend.lists_changed();
    d.audit(
        (&a.session.user, a.session.role.as_str()),
        if active == 1 {
            "list_add"
        } else {
            "list_remove"
        },
        &format!("{}:{value}", f.kind),
        true,
        a.ip,
        json!({ "action": f.action, "note": note }),
    )
    .await?;
    Ok(Json(json!({ "ok": true, "value": value })))
}

async fn users(State(d): St, Admin(_a): Admin) -> ApiResult<Json<Value>> {
    let list = d.users.list().map_err(|e| ApiError::Store(e.to_string()))?;
    Ok(Json(json!({
        "rows": list.iter().map(|u| json!({
            "name": u.name, "role": u.role, "created": u.created, "disabled": u.disabled,
        })).collect::<Vec<_>>()
    })))
}

#[derive(Deserialize)]
struct UserForm {
    name: String,
    #[serde(default)]
    role: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    disabled: Option<bool>,
}

/// Creates or updates a user, or disables/enables one (admins).
async fn set_user(
    State(d): St,
    Admin(a): Admin,
    JsonBody(f): JsonBody<UserForm>,
) -> ApiResult<Json<Value>> {
    let bad = |e: auth::AuthError| ApiError::BadRequest(e.to_string());
    let action;
    if let Some(dis) = f.disabled {
        if f.name == a.session.user && dis {
            return Err(ApiError::BadRequest("you cannot disable yourself".into()));
        }
        if !d.users.set_disabled(&f.name, dis).map_err(bad)? {
            return Err(ApiError::NotFound);
        }
        action = if dis { "user_disable" } else { "user_enable" };
    } else {
        let role: Role = f
            .role
            .as_deref()
            .unwrap_or("analyst")
            .parse()
            .map_err(bad)?;
        let pw = f
            .password
            .ok_or_else(|| ApiError::BadRequest("password required".into()))?;
        let d2 = Arc::clone(&d);
        let name = f.name.clone();
        tokio::task::spawn_blocking(move || d2.users.upsert(&name, role, &pw))
            .await
            .map_err(|e| ApiError::Store(e.to_string()))?
            .map_err(bad)?;
        action = "user_set";
    }
    d.audit(
        (&a.session.user, a.session.role.as_str()),
        action,
        &f.name,
        true,
        a.ip,
        json!({ "role": f.role.unwrap_or_default() }),
    )
    .await?;
    Ok(Json(json!({ "ok": true })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forwarded_for_counts_only_from_trusted_proxies() {
        let trusted = vec![crate::parse_net("10.0.0.0/8").unwrap()];
        let mut h = HeaderMap::new();
        h.insert(
            "x-forwarded-for",
            HeaderValue::from_static("6.6.6.6, 203.0.113.9, 10.1.1.1"),
        );
        let proxy: IpAddr = "10.0.0.1".parse().unwrap();
        let stranger: IpAddr = "192.0.2.5".parse().unwrap();
        // Through our proxies: the last address that is not one of them.
        assert_eq!(
            client_ip(proxy, &h, &trusted),
            "203.0.113.9".parse::<IpAddr>().unwrap()
        );
        // From anyone else the header is the client's own words: ignored.
        assert_eq!(client_ip(stranger, &h, &trusted), stranger);
        assert_eq!(client_ip(proxy, &HeaderMap::new(), &trusted), proxy);
        let mut junk = HeaderMap::new();
        junk.insert("x-forwarded-for", HeaderValue::from_static("not-an-ip"));
        assert_eq!(client_ip(proxy, &junk, &trusted), proxy);
    }

    #[test]
    fn internal_errors_reach_the_client_as_a_request_id() {
        let r = ApiError::Store(
            "DB::Exception: Code: 60. Table ja4.secret_table does not exist".into(),
        )
        .into_response();
        assert_eq!(r.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let body = futures_body(r);
        assert!(
            body.contains("request id")
                && !body.contains("DB::Exception")
                && !body.contains("secret_table"),
            "{body}"
        );
    }

    fn futures_body(r: Response) -> String {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let bytes = rt
            .block_on(axum::body::to_bytes(r.into_body(), 1 << 20))
            .unwrap();
        String::from_utf8_lossy(&bytes).into_owned()
    }
}
