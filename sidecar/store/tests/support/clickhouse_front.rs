//! A test-only ClickHouse HTTP front over the embedded engine: the subset of ClickHouse's HTTP
//! interface the `clickhouse` crate uses, served by the real engine, so the server writer is
//! tested end to end without a ClickHouse server (none installs here).
//!
//! Serves: POST (or GET) `/` with the SQL in the body or in `query` (then the body is INSERT
//! data), `database`, `default_format`, query parameters (`param_<name>`, bound by the
//! engine as ClickHouse binds them), other parameters as settings, `decompress=1` bodies in
//! ClickHouse's compressed-block framing (CityHash128 checksum, LZ4), `/ping`; errors as HTTP
//! 500 with `X-ClickHouse-Exception-Code` and the engine's `Code: N. DB::Exception: …` text.
//! INSERT data goes to a file read with `FROM INFILE` (the engine has no streaming insert).

use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use ja4_store::chdb::Chdb;

pub(crate) struct Front {
    chdb: Arc<Chdb>,
    /// USE/SET/query run as one unit per request.
    turn: Mutex<()>,
    tmp: std::path::PathBuf,
}

/// Parameters that are not settings.
const NOT_SETTINGS: &[&str] = &[
    "query",
    "database",
    "default_format",
    "decompress",
    "compress",
    "query_id",
    "session_id",
    "user",
    "password",
    "role",
];

/// Starts the front on 127.0.0.1 (ephemeral port) on the current runtime; returns its URL.
pub(crate) async fn start(chdb: Arc<Chdb>, tmp: std::path::PathBuf) -> String {
    std::fs::create_dir_all(&tmp).unwrap();
    let front = Arc::new(Front {
        chdb,
        turn: Mutex::new(()),
        tmp,
    });
    let app = Router::new()
        .route("/", get(handle).post(handle))
        .route("/ping", get(|| async { "Ok.\n" }))
        .with_state(front);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}

async fn handle(
    State(front): State<Arc<Front>>,
    uri: Uri,
    headers: axum::http::HeaderMap,
    body: Bytes,
) -> Response {
    let mut params: Vec<(String, String)> =
        form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
            .into_owned()
            .collect();
    // A query with parameters comes as multipart/form-data: the query and each `param_*`
    // a part of its own.
    let boundary = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .filter(|t| t.starts_with("multipart/form-data"))
        .and_then(|t| t.split("boundary=").nth(1))
        .map(|b| b.trim_matches('"').to_owned());
    let body = match boundary {
        Some(b) => {
            params.extend(form_parts(&body, &b));
            Bytes::new()
        }
        None => body,
    };
    match tokio::task::spawn_blocking(move || front.run(&params, &body)).await {
        Ok(Ok(out)) => (StatusCode::OK, out).into_response(),
        Ok(Err(msg)) => {
            let code = msg
                .split("Code: ")
                .nth(1)
                .and_then(|s| s.split(|c: char| !c.is_ascii_digit()).next())
                .filter(|s| !s.is_empty())
                .unwrap_or("1000")
                .to_owned();
            let text = if msg.contains("DB::Exception") {
                msg
            } else {
                format!("Code: {code}. DB::Exception: {msg}")
            };
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                [("X-ClickHouse-Exception-Code", code)],
                text,
            )
                .into_response()
        }
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

impl Front {
    fn run(&self, params: &[(String, String)], body: &[u8]) -> Result<Vec<u8>, String> {
        let get = |k: &str| {
            params
                .iter()
                .rev()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.as_str())
        };
        let body = if get("decompress") == Some("1") {
            decompress(body)?
        } else {
            body.to_vec()
        };
        let (sql, data) = match get("query") {
            Some(q) if q.trim_start().to_ascii_uppercase().starts_with("INSERT") => {
                (q.to_owned(), body)
            }
            Some(q) => (
                format!("{q} {}", String::from_utf8_lossy(&body)),
                Vec::new(),
            ),
            None => (String::from_utf8_lossy(&body).into_owned(), Vec::new()),
        };
        let _turn = self.turn.lock().unwrap_or_else(|e| e.into_inner());
        let db = get("database").unwrap_or("default");
        if !db.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return Err(format!("Code: 81. DB::Exception: bad database name {db}"));
        }
        self.exec(&format!("USE {db}"))?;
        let mut bound: Vec<(String, String)> = Vec::new();
        for (name, value) in params {
            if let Some(n) = name.strip_prefix("param_") {
                bound.push((n.to_owned(), unescape(value)));
                continue;
            }
            if NOT_SETTINGS.contains(&name.as_str()) {
                continue;
            }
            if !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
                return Err(format!("Code: 115. DB::Exception: Unknown setting {name}"));
            }
            self.exec(&format!("SET {name} = {}", quote(value)))?;
        }
        if !data.is_empty() {
            return self.insert(&sql, &data).map(|_| Vec::new());
        }
        let format = get("default_format").unwrap_or("TabSeparated");
        if !bound.is_empty() {
            let p: Vec<(&str, String)> =
                bound.iter().map(|(n, v)| (n.as_str(), v.clone())).collect();
            return self
                .chdb
                .query_params(&sql, format, &p)
                .map_err(|e| strip(e.to_string()));
        }
        self.chdb
            .query(&sql, format)
            .map_err(|e| strip(e.to_string()))
    }

    fn exec(&self, sql: &str) -> Result<(), String> {
        self.chdb.execute(sql).map_err(|e| strip(e.to_string()))
    }

    /// `INSERT INTO t (cols) FORMAT F` + data → `INSERT INTO t (cols) FROM INFILE '…' FORMAT F`.
    fn insert(&self, sql: &str, data: &[u8]) -> Result<(), String> {
        let upper = sql.to_ascii_uppercase();
        let at = upper
            .rfind(" FORMAT ")
            .ok_or_else(|| "Code: 62. DB::Exception: INSERT with data needs FORMAT".to_owned())?;
        static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let file = self.tmp.join(format!(
            "front-{}.bin",
            N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        std::fs::write(&file, data).map_err(|e| e.to_string())?;
        let res = self.exec(&format!(
            "{} FROM INFILE {}{}",
            &sql[..at],
            quote(&file.to_string_lossy()),
            &sql[at..]
        ));
        let _ = std::fs::remove_file(&file);
        res
    }
}

/// The engine's message without our `ClickHouse: ` prefix.
fn strip(msg: String) -> String {
    msg.strip_prefix("ClickHouse: ")
        .map(str::to_owned)
        .unwrap_or(msg)
}

/// The named parts of a multipart/form-data body.
fn form_parts(body: &[u8], boundary: &str) -> Vec<(String, String)> {
    let text = String::from_utf8_lossy(body);
    let delim = format!("--{boundary}");
    text.split(delim.as_str())
        .filter_map(|part| {
            let part = part.strip_prefix("\r\n")?;
            let (head, value) = part.split_once("\r\n\r\n")?;
            let name = head.split("name=\"").nth(1)?.split('"').next()?;
            Some((
                name.to_owned(),
                value.strip_suffix("\r\n").unwrap_or(value).to_owned(),
            ))
        })
        .collect()
}

/// A query parameter's value as sent over HTTP (escaped as in TSV), unescaped: the engine's
/// binding escapes it again.
fn unescape(v: &str) -> String {
    let mut o = String::with_capacity(v.len());
    let mut it = v.chars();
    while let Some(c) = it.next() {
        if c != '\\' {
            o.push(c);
            continue;
        }
        match it.next() {
            Some('t') => o.push('\t'),
            Some('n') => o.push('\n'),
            Some('r') => o.push('\r'),
            Some('0') => o.push('\0'),
            Some('b') => o.push('\u{8}'),
            Some('f') => o.push('\u{c}'),
            Some(other) => o.push(other),
            None => o.push('\\'),
        }
    }
    o
}

fn quote(s: &str) -> String {
    ja4_store::server::quote(s)
}

/// ClickHouse compressed blocks: 16-byte CityHash128 (v1.0.2) of the rest (its two 64-bit
/// halves little endian, first half first: `cityhash-rs` returns them swapped), method byte,
/// u32 LE compressed size (with the 9-byte header), u32 LE decompressed size, payload.
pub(crate) fn decompress(mut input: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    while !input.is_empty() {
        if input.len() < 25 {
            return Err("Code: 432. DB::Exception: truncated compressed block".into());
        }
        let checksum = u128::from_le_bytes(input[..16].try_into().unwrap());
        let method = input[16];
        let size = u32::from_le_bytes(input[17..21].try_into().unwrap()) as usize;
        let raw = u32::from_le_bytes(input[21..25].try_into().unwrap()) as usize;
        if size < 9 || input.len() < 16 + size {
            return Err("Code: 432. DB::Exception: bad compressed block size".into());
        }
        let block = &input[16..16 + size];
        if cityhash_rs::cityhash_102_128(block).rotate_right(64) != checksum {
            return Err("Code: 40. DB::Exception: Checksum doesn't match: corrupted data. (CHECKSUM_DOESNT_MATCH)".into());
        }
        match method {
            0x82 => out.extend_from_slice(
                &lz4_flex::block::decompress(&block[9..], raw).map_err(|e| e.to_string())?,
            ),
            0x02 => out.extend_from_slice(&block[9..]),
            m => {
                return Err(format!(
                    "Code: 432. DB::Exception: unknown compression method {m:#x}"
                ))
            }
        }
        input = &input[16 + size..];
    }
    Ok(out)
}
