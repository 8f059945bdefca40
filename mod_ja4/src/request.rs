//! Per-request work: at post_read_request, the request's record ([`scan`]: where its strings
//! are, JA4H), the environment variables and `X-JA4*` headers; at log_transaction, the record
//! (head, connection segment, strings) appended to the exporter's frame, each string copied
//! once, straight from the request.
//!
//! Never: repeats per request what a connection already knows: the JA4/JA3/JA4T/TLS values are
//! turned into C strings once per connection ([`ConnVars`], added to a request's environment
//! as one block of entries), a keep-alive client's header names are measured, joined and
//! hashed once per distinct list ([`ja4_core::shape`]), its cookies' part of JA4H once per
//! Cookie value, the head's connection values are written once
//! ([`ja4_core::batch::HeadTemplate`]), and a settled connection's TLS and transport fields are
//! encoded once and then referenced. A record takes no request-pool memory while its
//! connection's slot is free ([`crate::conn::RecordSlot`]).

use std::ffi::{CStr, CString};
use std::sync::atomic::Ordering;

use ja4_core::batch::{
    self, Head, Record, RequestValues, Segment, PICKED_ACCEPT_LANGUAGE, SOURCE_CAPTURE,
    SOURCE_INLINE_HELLO, SOURCE_SAVED_SYN, S_COOKIE, S_HEADER_NAMES, S_PICKED, S_REQUEST_LINE,
    S_VHOST,
};
use ja4_core::fingerprint::ja4h;
use ja4_core::fingerprint::HttpVersion;
use ja4_core::shape::{HeaderShape, Role};
use ja4_core::shared::{self, Entry};

use crate::conn::{cstring, ConnState, ConnVars};
use crate::ffi::{self, Request};
use crate::record::{syn_record, ReqRecord};
use crate::{counters, export};

fn version(proto_num: i32) -> HttpVersion {
    match proto_num {
        n if n >= 3000 => HttpVersion::Http3,
        n if n >= 2000 => HttpVersion::Http2,
        1000 => HttpVersion::Http10,
        n if n < 1000 => HttpVersion::Http09,
        _ => HttpVersion::Http11,
    }
}

/// The record of `r`: its strings where the request holds them, its header names from the
/// shape of its table (a shape the connection kept when the table matches one name for name,
/// else measured now and kept), its JA4H assembled from the request's method, version and
/// language, the shape's names part and the cookies' part (remembered per connection).
///
#[inline]
fn scan<'r>(r: &Request<'r>, st: Option<&'r ConnState>, rec: &mut ReqRecord<'r>) {
    let v = version(r.proto_num());
    let lowercase = matches!(v, HttpVersion::Http2 | HttpVersion::Http3);
    let entries = r.headers();
    let found = st.and_then(|s| {
        s.shapes
            .find(|sh| sh.is_shape_of(entries.iter().map(|e| e.key()), lowercase))
    });
    let fresh;
    let (shape, names): (&HeaderShape, &'r [u8]) = match found {
        Some(sh) => (sh, sh.joined()),
        None => {
            let sh = HeaderShape::new(entries.iter().map(|e| e.key()), lowercase);
            let kept = match st {
                Some(s) => s.shapes.keep(sh),
                None => Err(Box::new(sh)),
            };
            match kept {
                Ok(kept) => (kept, kept.joined()),
                // Not kept (no state, or the connection has all the shapes it keeps): the
                // names go into the request pool.
                Err(sh) => {
                    fresh = sh;
                    (&fresh, r.pool().copy(fresh.joined()))
                }
            }
        }
    };
    rec.put(S_VHOST, r.hostname());
    rec.put(S_REQUEST_LINE, r.the_request());
    rec.put(S_HEADER_NAMES, names);
    let mut cookie: &'r [u8] = b"";
    let mut cookies: Option<Vec<u8>> = None;
    let mut cookie_seen = false;
    for &(i, role) in shape.valued() {
        // A matched shape has as many entries as the table.
        let Some(e) = entries.get(i) else {
            continue;
        };
        match role {
            Role::Picked(i) => rec.put(S_PICKED + usize::from(i), e.val()),
            Role::Cookie => {
                let val = e.val();
                if !cookie_seen {
                    cookie_seen = true;
                    cookie = val;
                } else {
                    // Several Cookie headers (HTTP/2 may split them): joined by "; ".
                    let j = cookies.get_or_insert_with(|| cookie.to_vec());
                    j.extend_from_slice(b"; ");
                    j.extend_from_slice(val);
                }
            }
            Role::None => {}
        }
    }
    if let Some(j) = &cookies {
        cookie = r.pool().copy(j);
    }
    rec.put(S_COOKIE, cookie);
    let part = shape.ja4h();
    let cookie_part = if part.cookie {
        match st.and_then(|s| s.cookies.try_lock().ok()) {
            Some(mut memo) => memo.part(cookie),
            // Another stream of this HTTP/2 connection holds the memo.
            None => ja4h::cookie_part(cookie),
        }
    } else {
        ja4h::NO_COOKIES
    };
    let language = shape
        .has_picked(PICKED_ACCEPT_LANGUAGE)
        .then(|| rec.string(S_PICKED + PICKED_ACCEPT_LANGUAGE));
    let (method, n) = r.method_head();
    ja4h::assemble_into(
        rec.ja4h_mut(),
        &method[..n],
        v,
        part,
        language,
        &cookie_part,
    );
    rec.set_ja4h();
    rec.has_referer = part.referer;
}

/// Our variables and the request headers that carry the same values (`JA4RequestHeaders`;
/// a client's own copies are removed first): the connection's, then JA4H (per request).
const VARIABLES: [(&CStr, &CStr); 15] = [
    (c"JA4", c"X-JA4"),
    (c"JA4_R", c"X-JA4-R"),
    (c"JA4_O", c"X-JA4-O"),
    (c"JA3", c"X-JA3"),
    (c"JA4T", c"X-JA4T"),
    (c"JA4_SNI", c"X-JA4-SNI"),
    (c"JA4_ALPN", c"X-JA4-ALPN"),
    (c"JA4_TTL", c"X-JA4-TTL"),
    (c"JA4_TLS_VERSION", c"X-JA4-TLS-Version"),
    (c"JA4_TLS_CIPHER", c"X-JA4-Cipher"),
    (c"JA4_STACK", c"X-JA4-Stack"),
    (c"JA4_KNOWN_BAD", c"X-JA4-Known-Bad"),
    (c"JA4H", c"X-JA4H"),
    (c"JA4_H2", c"X-JA4-H2"),
    (c"JA4_H2_HASH", c"X-JA4-H2-Hash"),
];
/// Index of JA4H in [`VARIABLES`]; the ones before it belong to the connection.
const JA4H_VARIABLE: usize = 12;
/// Index of JA4_H2 (then JA4_H2_HASH) in [`VARIABLES`].
const H2_VARIABLE: usize = 13;

/// The connection's variables, computed at its first request; `labels` name its TLS stack
/// (`JA4StackLabels`), `known_bad` whether its JA4 is listed (`JA4KnownBad`).
fn conn_vars<'a>(
    r: &Request<'_>,
    st: &'a ConnState,
    (labels, known_bad): (
        Option<&ja4_core::stack::Labels>,
        Option<&ja4_core::knownbad::KnownBad>,
    ),
) -> &'a ConnVars {
    st.vars.get_or_init(|| {
        let tls = st.tls.get();
        let s = |v: Option<&String>| cstring(v.map_or(&b""[..], |x| x.as_bytes()));
        // mod_ssl's view of the live request (empty without mod_ssl or TLS).
        let (version, cipher) = if tls.is_some() {
            (r.ssl_var(c"SSL_PROTOCOL"), r.ssl_var(c"SSL_CIPHER"))
        } else {
            (&b""[..], &b""[..])
        };
        let ttl = st
            .syn
            .as_ref()
            .map(|s| s.ttl.to_string())
            .unwrap_or_default();
        // The label of the connection's TLS stack, by JA4 family (no allocation to find it).
        let label = tls
            .and_then(|t| ja4_core::stack::family_key(t.ja4.ja4.as_bytes()))
            .and_then(|k| labels?.find(&k).cloned());
        let connection_values = [
            s(tls.map(|t| &t.ja4.ja4)),
            s(tls.map(|t| &t.ja4.ja4_r)),
            s(tls.map(|t| &t.ja4.ja4_o)),
            s(tls.map(|t| &t.ja3.ja3)),
            cstring(st.ja4t.as_bytes()),
            s(tls.map(|t| &t.sni)),
            s(tls.map(|t| &t.alpn_offered)),
            cstring(ttl.as_bytes()),
            cstring(version),
            cstring(cipher),
            cstring(
                label
                    .as_ref()
                    .map_or(&b""[..], |l| l.application.as_bytes()),
            ),
            cstring(
                tls.and_then(|t| known_bad?.find(t.ja4.ja4.as_bytes()))
                    .unwrap_or("")
                    .as_bytes(),
            ),
        ];
        let values: Vec<(&'static CStr, &'static CStr, CString)> = VARIABLES[..JA4H_VARIABLE]
            .iter()
            .zip(connection_values)
            .filter(|(_, v)| !v.is_empty())
            .map(|(&(env, header), v)| (env, header, v))
            .collect();
        ConnVars { values, label }
    })
}

/// post_read_request: the request's record (kept until it is logged), its variables and
/// `X-JA4*` headers, and the mitigation decision ([`crate::mitigate`]): the status to answer
/// with when a limit is enforced.
pub(crate) fn post_read_request(mut r: Request<'_>) -> Option<i32> {
    let sc = r.server().and_then(|s| s.config())?;
    if !sc.cfg.engine {
        return None;
    }
    counters::add(|s| &s.requests, 1);
    let state = r.connection().state();
    // Mitigation first: what it decides goes into the record.
    let (status, mitigation, pending) = mitigate(&mut r, sc, state);
    let rec = r.keep_record(state.map(|s| &s.record), |rec| {
        scan(&r, state, rec);
        rec.mitigation = mitigation;
        rec.pending = pending;
        if let Some(st) = state {
            rec.consistency = consistency(&r, st, sc, rec.string(S_PICKED));
            if let Some(h2) = st.h2.get() {
                rec.h2 = (h2.akamai.as_bytes(), h2.hash.as_bytes());
            }
        }
    });
    if let Some(st) = state {
        st.requests.fetch_add(1, Ordering::Relaxed);
        if st.tls.get().is_some() {
            counters::add(|s| &s.fingerprinted, 1);
        }
    }
    let (set_env, set_headers) = (sc.cfg.set_env, sc.cfg.request_headers);
    if set_env || set_headers {
        let vars =
            state.map(|st| conn_vars(&r, st, (sc.labels.as_deref(), sc.known_bad.as_deref())));
        let h2 = state.and_then(|st| st.h2.get());
        add_each(&mut r, (vars, h2), rec.ja4h_c(), set_env, set_headers);
    }
    // What the request's stacks contradict (ja4_core::stack::consistency): a browser's user
    // agent on a TLS stack that is not that browser's is JA4_UA_MISMATCH, every flag JA4_FLAGS.
    use ja4_core::stack::flags;
    let f = rec.consistency;
    if f != 0 {
        counters::add(|c| &c.consistency_flagged, 1);
        let ua_tls = f & (flags::UA_TLS_LIBRARY | flags::UA_TLS_BROWSER);
        if ua_tls != 0 {
            counters::add(|c| &c.ua_mismatches, 1);
        }
        if set_env {
            if ua_tls != 0 {
                let word = if ua_tls & flags::UA_TLS_LIBRARY != 0 {
                    c"library"
                } else {
                    c"browser"
                };
                r.add_env(c"JA4_UA_MISMATCH", word);
            }
            let names = r.pool().keep_text(flags::names(f).as_bytes());
            r.add_env(c"JA4_FLAGS", names);
        }
    }
    status
}

/// The consistency flags of a request with user agent `ua` on connection `st`: its TLS
/// stack's label (`JA4StackLabels`), its HTTP/2 stack's (`JA4H2Labels`, looked up once per
/// connection) and its SYN's TTL.
fn consistency(r: &Request<'_>, st: &ConnState, sc: &crate::config::ServerConfig, ua: &[u8]) -> u8 {
    if sc.labels.is_none() && sc.h2_labels.is_none() && st.syn.is_none() {
        return 0;
    }
    let vars = conn_vars(r, st, (sc.labels.as_deref(), sc.known_bad.as_deref()));
    let h2 = st.h2.get().and_then(|h| {
        st.h2_label
            .get_or_init(|| {
                let labels = sc.h2_labels.as_deref()?;
                let key = std::str::from_utf8(h.akamai.as_bytes()).ok()?;
                labels.labels.get(key).cloned()
            })
            .as_ref()
    });
    ja4_core::stack::consistency(ua, vars.label.as_ref(), h2, st.syn.as_ref().map(|s| s.ttl))
}

/// The connection's JA4 (empty without TLS) and client address (parsed once per connection,
/// at pre_connection).
fn client_of<'s>(
    r: &Request<'_>,
    state: Option<&'s ConnState>,
) -> (&'s [u8], Option<std::net::IpAddr>) {
    let ja4 = state
        .and_then(|s| s.tls.get())
        .map_or(&b""[..], |t| t.ja4.ja4.as_bytes());
    let ip = match state {
        Some(st) => st.client.map(|(ip, _)| ip),
        None => r.connection().client().map(|(ip, _)| ip),
    };
    (ja4, ip)
}

/// The mitigation of `r` ([`crate::mitigate`]): the status to answer with when enforcing,
/// what the record says of it, and — when a `<Directory>`/`<Location>` may have its own
/// mitigation — the facts the access checker acts on instead.
fn mitigate(
    r: &mut Request<'_>,
    sc: &crate::config::ServerConfig,
    state: Option<&ConnState>,
) -> (
    Option<i32>,
    ja4_core::batch::Mitigation,
    Option<crate::mitigate::Facts>,
) {
    if !crate::config::mitigation_anywhere(sc) {
        return (None, Default::default(), None);
    }
    let (ja4, ip) = client_of(r, state);
    let now_ms = u64::try_from(ffi::now_us() / 1000).unwrap_or(0);
    if let Some((status, m)) = crate::mitigate::verify(r, sc, ip, ja4, now_ms) {
        return (Some(status), m, None);
    }
    let memo = state.map(|st| &st.mitigation);
    let facts = crate::mitigate::facts(r, sc, (ip, ja4, memo), now_ms);
    if crate::config::dir_overrides() {
        return (None, Default::default(), Some(facts));
    }
    let policy = crate::mitigate::Policy::of(&sc.cfg);
    let outcome = crate::mitigate::outcome(r, sc, policy, &facts, (ja4, memo), now_ms);
    let m = crate::mitigate::recorded(sc, policy.mode, outcome, facts.named());
    (
        crate::mitigate::apply(r, sc, policy.mode, outcome, ip, ja4, now_ms),
        m,
        None,
    )
}

/// The access checker (first of them): acts on the facts post_read_request left, under the
/// request's `<Directory>`/`<Location>` mitigation (its `JA4Mitigation` and `JA4Action`
/// over the server's). Only when some section sets them; otherwise post_read_request acted.
pub(crate) fn access_checker(mut r: Request<'_>) -> Option<i32> {
    if !crate::config::dir_overrides() {
        return None;
    }
    let facts = r.record_mut()?.pending.take()?;
    let sc = r.server().and_then(|s| s.config())?;
    let dc = r.dir_config::<crate::config::DirConfig>();
    let policy = crate::mitigate::Policy {
        mode: dc.and_then(|d| d.mitigation).unwrap_or(sc.cfg.mitigation),
        actions: dc
            .and_then(|d| d.actions.as_deref())
            .unwrap_or(&sc.cfg.actions),
    };
    let state = r.connection().state();
    let (ja4, ip) = client_of(&r, state);
    let memo = state.map(|st| &st.mitigation);
    let now_ms = u64::try_from(ffi::now_us() / 1000).unwrap_or(0);
    let outcome = crate::mitigate::outcome(&r, sc, policy, &facts, (ja4, memo), now_ms);
    let m = crate::mitigate::recorded(sc, policy.mode, outcome, facts.named());
    if let Some(rec) = r.record_mut() {
        rec.mitigation = m;
    }
    crate::mitigate::apply(&mut r, sc, policy.mode, outcome, ip, ja4, now_ms)
}

/// Adds our variables with APR's public table API, as httpd's own modules do
/// (`mod_setenvif.c`): to the environment when `to_env`, and as `X-JA4*` request headers
/// when `to_headers` (a client's own copies removed first). The values are kept by pointer:
/// the connection's outlive the request, JA4H lives in the record until it is logged.
///
/// The variables are added, not set: this hook runs first on a fresh request, so none of
/// ours can be there yet (our request headers were unset just before), and adding skips a
/// case-insensitive search of the table per variable.
fn add_each<'r>(
    r: &mut Request<'r>,
    (vars, h2): (Option<&'r ConnVars>, Option<&'r crate::conn::H2Facts>),
    ja4h: &'r CStr,
    to_env: bool,
    to_headers: bool,
) {
    if to_headers {
        unset_ours(r);
    }
    let mut set = |env: &'static CStr, header: &'static CStr, value: &'r CStr| {
        if to_env {
            r.add_env(env, value);
        }
        if to_headers {
            r.add_header(header, value);
        }
    };
    for (env, header, value) in vars.iter().flat_map(|v| &v.values) {
        set(env, header, value.as_c_str());
    }
    let (env, header) = VARIABLES[JA4H_VARIABLE];
    set(env, header, ja4h);
    if let Some(h2) = h2 {
        let [(e1, h1), (e2, h2h)] = [VARIABLES[H2_VARIABLE], VARIABLES[H2_VARIABLE + 1]];
        set(e1, h1, h2.akamai.as_c_str());
        set(e2, h2h, h2.hash.as_c_str());
    }
}

/// Removes a client's own copies of our request headers.
fn unset_ours(r: &mut Request<'_>) {
    for (_, h) in VARIABLES {
        r.unset_header(h);
    }
}

/// Runs last among the log hooks (the JA4H variable of a record kept in its connection's slot
/// stays valid while the others log): exports the record and gives back the slot.
pub(crate) fn log_transaction(r: Request<'_>) {
    let state = r.connection().state();
    export_record(&r, state, r.record());
    r.release_record(state.map(|s| &s.record));
}

/// Appends the record of `req` to the export queue (when this child exports).
fn export_record(req: &Request<'_>, state: Option<&ConnState>, rec: Option<&ReqRecord<'_>>) {
    if !export::enabled() {
        return;
    }
    // Without a record (a request rejected before post_read_request) scan now, if the engine
    // is on for its server (a record says it was).
    let scanned;
    let rec = match rec {
        Some(rec) => rec,
        None => match req.server().and_then(|s| s.config()) {
            Some(sc) if sc.cfg.engine => {
                scanned = {
                    let mut rec = ReqRecord::default();
                    scan(req, None, &mut rec);
                    rec
                };
                &scanned
            }
            _ => return,
        },
    };
    let values = request_values(req, rec);
    let lone;
    let template = match state {
        Some(st) => &st.head,
        None => {
            lone = Head {
                conn_id: req.connection().id(),
                ..Head::default()
            }
            .template();
            &lone
        }
    };
    let head = (template, &values);
    // The connection's fields: encoded once when settled, else for this record alone.
    let fresh;
    let segment: &[u8] = match state.and_then(|s| s.segment.get()) {
        Some(b) => b,
        None => {
            let mut conn = Record::default();
            let settled = connection_fields(req, state, &mut conn)
                || state.is_some_and(|s| s.requests.load(Ordering::Relaxed) >= 8);
            let mut seg = Vec::new();
            conn.connection_segment(&mut seg);
            match state.filter(|_| settled) {
                Some(st) => st.segment.get_or_init(|| seg),
                None => {
                    fresh = seg;
                    &fresh
                }
            }
        }
    };
    let settled = state.filter(|s| s.segment.get().is_some());
    export::append(|slot| {
        let start = export::Slot::PAYLOAD_START;
        // A record of this connection earlier in the same frame carries the segment.
        let earlier = settled.filter(|st| st.segment_serial.load(Ordering::Relaxed) == slot.serial);
        let seg = match earlier {
            Some(st) => Segment::Ref(st.segment_offset.load(Ordering::Relaxed)),
            None => Segment::Bytes(segment),
        };
        let at = batch::write_record_start(slot.buf, start, head, seg, &rec.lens, rec.tail_len());
        if let (Some(st), None) = (settled, earlier) {
            st.segment_serial.store(slot.serial, Ordering::Relaxed);
            st.segment_offset.store(at, Ordering::Relaxed);
        }
        rec.write_strings(slot.buf);
        rec.write_trailers(slot.buf);
    });
}

/// The request values of the head of the record of `r` (its connection values come from
/// the connection's [`ja4_core::batch::HeadTemplate`]).
fn request_values(r: &Request<'_>, rec: &ReqRecord<'_>) -> RequestValues {
    RequestValues {
        has_cookie: !rec.get(S_COOKIE).is_empty(),
        has_referer: rec.has_referer,
        ts_us: r.request_time(),
        status: u16::try_from(r.status()).unwrap_or(0),
        bytes_in: u64::try_from(r.read_length()).unwrap_or(0),
        bytes_out: u64::try_from(r.bytes_sent()).unwrap_or(0),
        duration_us: u64::try_from(ffi::now_us() - r.request_time()).unwrap_or(0),
        keepalives: r.connection().keepalives(),
    }
}

/// Fills the connection fields of `rec`; true when they can no longer change (the hello is
/// in, the capture entry complete or there is no capture).
///
fn connection_fields<'a>(
    r: &Request<'a>,
    st: Option<&'a ConnState>,
    rec: &mut Record<&'a [u8]>,
) -> bool {
    let tls = st.and_then(|s| s.tls.get());
    let b = |s: &'a String| s.as_bytes();
    let empty: &[u8] = b"";
    let server = r.server();
    let sc = server.as_ref().and_then(|s| s.config());
    let lists = (
        sc.and_then(|c| c.labels.as_deref()),
        sc.and_then(|c| c.known_bad.as_deref()),
    );
    let vars = st.map(|s| conn_vars(r, s, lists));
    let mut sources = 0;
    if tls.is_some() {
        sources |= SOURCE_INLINE_HELLO;
    }
    if st.is_some_and(|s| s.syn.is_some()) {
        sources |= SOURCE_SAVED_SYN;
    }
    // What the capture thread saw of this connection: handshake timing, server side.
    let cap = st.and_then(|s| crate::capture::lookup(s.client, s.syn.as_ref().map(|y| y.isn)));
    let settled = match &cap {
        None => crate::capture::table().is_none(),
        Some(e) => {
            let need = shared::HAS_SYN
                | shared::HAS_SYNACK
                | shared::HAS_ACK
                | if tls.is_some() {
                    shared::HAS_HELLO | shared::HAS_SERVER_HELLO
                } else {
                    0
                };
            e.flags & need == need
        }
    };
    if let Some(e) = &cap {
        sources |= SOURCE_CAPTURE;
        counters::add(|c| &c.capture_lookups, 1);
        // Both sources saw this connection: they must agree (JA4 once the hello is in).
        let ja4_ok = e.ja4.is_empty() || tls.is_none_or(|t| t.ja4.ja4 == e.ja4);
        let ja4t_ok = st.is_none_or(|s| s.ja4t.is_empty() || s.ja4t == e.ja4t);
        if ja4_ok && ja4t_ok {
            counters::add(|c| &c.capture_agree, 1);
        } else {
            counters::add(|c| &c.capture_mismatch, 1);
        }
    }
    // Copied into the request pool: lives as long as the record.
    let pool = r.pool();
    let pooled = |v: &str| pool.copy(v.as_bytes());
    let cap_str =
        |f: fn(&Entry) -> &String| -> &'a [u8] { cap.as_ref().map_or(empty, |e| pooled(f(e))) };
    rec.tls_version = vars.map_or(empty, |v| v.value(c"JA4_TLS_VERSION"));
    rec.tls_cipher = vars.map_or(empty, |v| v.value(c"JA4_TLS_CIPHER"));
    rec.tls_sni = tls.map_or(empty, |t| b(&t.sni));
    rec.tls_alpn = if tls.is_some() {
        r.connection().protocol()
    } else {
        empty
    };
    rec.ja4 = tls.map_or(empty, |t| b(&t.ja4.ja4));
    rec.ja4_r = tls.map_or(empty, |t| b(&t.ja4.ja4_r));
    rec.ja4_o = tls.map_or(empty, |t| b(&t.ja4.ja4_o));
    rec.ja4_ro = tls.map_or(empty, |t| b(&t.ja4.ja4_ro));
    rec.ja3 = tls.map_or(empty, |t| b(&t.ja3.ja3));
    rec.ja3_r = tls.map_or(empty, |t| b(&t.ja3.ja3_r));
    rec.ja4t = st.map_or(empty, |s| b(&s.ja4t));
    rec.ja4ts = cap_str(|e| &e.ja4ts);
    rec.ja4l_c = cap
        .as_ref()
        .and_then(|e| e.ja4l_c())
        .map_or(empty, |v| pooled(&v));
    rec.ja4l_s = cap
        .as_ref()
        .and_then(|e| e.ja4l_s())
        .map_or(empty, |v| pooled(&v));
    rec.ja4s = cap_str(|e| &e.ja4s);
    rec.syn = st.and_then(|s| s.syn.as_ref()).map(syn_record);
    rec.sources = sources;
    settled
}
