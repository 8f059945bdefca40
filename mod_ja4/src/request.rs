//! Per-request work: one pass over the request headers at post_read_request (JA4H, the values a
//! record carries, environment variables and `X-JA4*` headers), and the export record at
//! log_transaction, encoded straight into the exporter's frame.
//!
//! Never: repeats per request what a connection already knows: the JA4/JA3/JA4T/TLS values are
//! turned into C strings once per connection ([`ConnVars`]) and set by pointer afterwards, the
//! JA4H of a keep-alive client repeating its headers is reused ([`Ja4hMemo`] in [`Ja4hState`]), and a settled
//! connection's record fields are encoded once and then referenced.

use std::ffi::{c_char, c_int, CStr};
use std::sync::atomic::Ordering;

use apr_sys as sys;
use ja4_core::batch::{
    header_role, Fields, Head, HeaderRole, Record, RecordKind, Segment, SynRecord, OPTIONAL,
    OPTIONAL_COOKIE, PICKED_ACCEPT_LANGUAGE, SOURCE_CAPTURE, SOURCE_INLINE_HELLO, SOURCE_SAVED_SYN,
};
use ja4_core::fingerprint::{HttpVersion, Ja4hMemo, Ja4hSet};
use ja4_core::shared::{self, Entry};

use crate::conn::{self, cstring, ConnState, ConnVars};
use crate::ffi::{cbytes, guard, pool_copy, pool_str, PoolBytes};
use crate::{export, status};

fn version(proto_num: c_int) -> HttpVersion {
    match proto_num {
        n if n >= 3000 => HttpVersion::Http3,
        n if n >= 2000 => HttpVersion::Http2,
        1000 => HttpVersion::Http10,
        n if n < 1000 => HttpVersion::Http09,
        _ => HttpVersion::Http11,
    }
}

/// What one pass over a request's headers found, kept in the request pool (plain data: the
/// pool frees it) from post_read_request to log_transaction.
#[derive(Clone, Copy)]
pub struct ReqFacts {
    /// JA4H, NUL-terminated.
    ja4h: PoolBytes,
    /// Header names in wire order joined by `,` (lowercase for HTTP/2 and HTTP/3).
    names: PoolBytes,
    /// The record's optional strings in [`Fields::optional`] order: the first value of each
    /// of [`ja4_core::batch::PICKED_HEADERS`], then the Cookie value (several Cookie headers
    /// joined by `; `); the JA4H raw forms stay empty (the decoder derives them).
    optional: [PoolBytes; OPTIONAL],
    referer: bool,
}

/// A connection's JA4H memo and the buffer its requests' header names are joined in.
#[derive(Debug, Default)]
pub struct Ja4hState {
    memo: Ja4hMemo,
    scratch: Vec<u8>,
}

/// Scans the headers of `r` once and computes its JA4H (HTTP/2 and HTTP/3 header names are
/// lowercase on the wire, but mod_http2 hands httpd title-cased names and appends a `Host`
/// header made from `:authority`: those requests are put back into wire form, canonical
/// rule 7). The result lives in the request pool.
///
/// # Safety
/// `r` is a live request; `st` is its connection's state.
unsafe fn scan(r: &sys::request_rec, st: Option<&ConnState>) -> *mut ReqFacts {
    let v = version(r.proto_num);
    let wire_lowercase = matches!(v, HttpVersion::Http2 | HttpVersion::Http3);
    // SAFETY: method and headers_in belong to the live request.
    let method = unsafe { cbytes(r.method) };
    let mut memo = st.and_then(|s| s.ja4h_memo.try_lock().ok());
    let mut names = memo
        .as_mut()
        .map(|m| std::mem::take(&mut m.scratch))
        .unwrap_or_default();
    names.clear();
    let mut values = [PoolBytes::EMPTY; OPTIONAL];
    let mut seen = 0u16;
    let mut cookie: &[u8] = b"";
    let mut cookies: Option<Vec<u8>> = None;
    let mut referer = false;
    let mut last_start = 0;
    // SAFETY: the table's entries live in the request pool until the request ends.
    for (k, val) in unsafe { crate::ffi::table_entries(r.headers_in) } {
        if k.first() == Some(&b':') {
            continue;
        }
        if !names.is_empty() {
            names.push(b',');
        }
        last_start = names.len();
        if wire_lowercase {
            names.extend(k.iter().map(u8::to_ascii_lowercase));
        } else {
            names.extend_from_slice(k);
        }
        match header_role(k) {
            HeaderRole::Cookie => {
                // SAFETY: as above.
                let c = unsafe { val.get() };
                match (&mut cookies, cookie.is_empty()) {
                    (None, true) => cookie = c,
                    (None, false) => {
                        let mut j = cookie.to_vec();
                        j.extend_from_slice(b"; ");
                        j.extend_from_slice(c);
                        cookies = Some(j);
                    }
                    (Some(j), _) => {
                        j.extend_from_slice(b"; ");
                        j.extend_from_slice(c);
                    }
                }
            }
            HeaderRole::Referer => referer = true,
            // The first occurrence counts (as JA4H takes the first Accept-Language).
            HeaderRole::Picked(i) if seen & (1 << i) == 0 => {
                seen |= 1 << i;
                // SAFETY: as above.
                values[i] = PoolBytes::new(unsafe { val.get() });
            }
            _ => {}
        }
    }
    if wire_lowercase && names[last_start..] == *b"host" {
        names.truncate(last_start.saturating_sub(1));
    }
    let cookie: &[u8] = cookies.as_deref().unwrap_or(cookie);
    // SAFETY: the value is in the request's headers table.
    let language = (seen & (1 << PICKED_ACCEPT_LANGUAGE) != 0)
        .then(|| unsafe { values[PICKED_ACCEPT_LANGUAGE].get() });
    let ja4h = match memo.as_mut() {
        Some(m) => m.memo.ja4h(method, v, &names, cookie, language),
        // Another stream of this HTTP/2 connection holds the memo.
        None => &Ja4hSet::from_joined(method, v, &names, cookie, language).ja4h,
    };
    // SAFETY: copied into the live request's pool.
    let ja4h_c = unsafe { pool_copy(r.pool, ja4h.as_bytes()) };
    // SAFETY: copies into the live request's pool (the cookie only when joined here).
    let facts = unsafe {
        values[OPTIONAL_COOKIE] = if cookies.is_some() {
            pool_copy(r.pool, cookie)
        } else {
            PoolBytes::new(cookie)
        };
        ReqFacts {
            ja4h: ja4h_c,
            names: pool_copy(r.pool, &names),
            optional: values,
            referer,
        }
    };
    if let Some(m) = memo.as_mut() {
        m.scratch = names;
    }
    // SAFETY: plain data moved into the live request's pool.
    unsafe { crate::ffi::pool_value(r.pool, facts) }
}

/// Request headers a client could send to impersonate ours; removed when we set them.
const OUR_HEADERS: [&CStr; 11] = [
    c"X-JA4",
    c"X-JA4-R",
    c"X-JA4-O",
    c"X-JA3",
    c"X-JA4H",
    c"X-JA4T",
    c"X-JA4-SNI",
    c"X-JA4-ALPN",
    c"X-JA4-TLS-Version",
    c"X-JA4-TTL",
    c"X-JA4-Cipher",
];

/// The connection's variables, computed at its first request.
///
/// # Safety
/// `r` is a live request of the connection `st` belongs to.
unsafe fn conn_vars<'a>(r: &sys::request_rec, st: &'a ConnState) -> &'a ConnVars {
    st.vars.get_or_init(|| {
        let tls = st.tls.get();
        let s = |v: Option<&String>| cstring(v.map_or(&b""[..], |x| x.as_bytes()));
        // SAFETY: mod_ssl lookups on the live request (NULL without mod_ssl or TLS).
        let (version, cipher) = if tls.is_some() {
            unsafe {
                (
                    cbytes(ssl_var(r, c"SSL_PROTOCOL")),
                    cbytes(ssl_var(r, c"SSL_CIPHER")),
                )
            }
        } else {
            (&b""[..], &b""[..])
        };
        ConnVars {
            ja4: s(tls.map(|t| &t.ja4.ja4)),
            ja4_r: s(tls.map(|t| &t.ja4.ja4_r)),
            ja4_o: s(tls.map(|t| &t.ja4.ja4_o)),
            ja3: s(tls.map(|t| &t.ja3.ja3)),
            ja4t: cstring(st.ja4t.as_bytes()),
            sni: s(tls.map(|t| &t.sni)),
            alpn: s(tls.map(|t| &t.alpn_offered)),
            ttl: st
                .syn
                .as_ref()
                .map(|s| cstring(s.ttl.to_string().as_bytes()))
                .unwrap_or_default(),
            tls_version: cstring(version),
            tls_cipher: cstring(cipher),
        }
    })
}

pub unsafe extern "C" fn post_read_request(r: *mut sys::request_rec) -> c_int {
    guard(sys::DECLINED, || {
        // SAFETY: httpd passes the live request.
        let req = unsafe { &mut *r };
        // SAFETY: r->server is the request's virtual host.
        let Some(sc) = (unsafe { crate::config::server_config(req.server) }) else {
            return sys::DECLINED;
        };
        if !sc.cfg.engine {
            return sys::DECLINED;
        }
        status::add(|s| &s.requests, 1);
        // SAFETY: the connection outlives its requests.
        let state = unsafe { conn::state(req.connection) };
        // SAFETY: the request is live and `state` is its connection's.
        let facts = unsafe { scan(req, state) };
        if let Some(st) = state {
            st.requests.fetch_add(1, Ordering::Relaxed);
            if st.tls.get().is_some() {
                status::add(|s| &s.fingerprinted, 1);
            }
        }
        let (set_env, set_headers) = (sc.cfg.set_env, sc.cfg.request_headers);
        if set_env || set_headers {
            // SAFETY: the request is live and belongs to the state's connection.
            let vars = state.map(|st| unsafe { conn_vars(req, st) });
            // SAFETY: JA4H is in the request pool (NUL-terminated); the connection values live
            // in the connection's state, which outlives the request.
            let ja4h_c = unsafe { (*facts).ja4h.as_ptr() } as *const c_char;
            // SAFETY: tables of the live request; values outlive it (see above). The
            // variables are added, not set: this hook runs first on a fresh request, so none
            // of ours can be there yet (our request headers were unset just before), and
            // adding skips a case-insensitive search of the table per variable.
            let set = |env: &CStr, header: &CStr, value: *const c_char| unsafe {
                if set_env {
                    sys::apr_table_addn(req.subprocess_env, env.as_ptr(), value);
                }
                if set_headers {
                    sys::apr_table_addn(req.headers_in, header.as_ptr(), value);
                }
            };
            if set_headers {
                for h in OUR_HEADERS {
                    // SAFETY: as above.
                    unsafe { sys::apr_table_unset(req.headers_in, h.as_ptr()) };
                }
            }
            set(c"JA4H", c"X-JA4H", ja4h_c);
            if let Some(v) = vars {
                for (env, header, value) in [
                    (c"JA4", c"X-JA4", &v.ja4),
                    (c"JA4_R", c"X-JA4-R", &v.ja4_r),
                    (c"JA4_O", c"X-JA4-O", &v.ja4_o),
                    (c"JA3", c"X-JA3", &v.ja3),
                    (c"JA4T", c"X-JA4T", &v.ja4t),
                    (c"JA4_SNI", c"X-JA4-SNI", &v.sni),
                    (c"JA4_ALPN", c"X-JA4-ALPN", &v.alpn),
                    (c"JA4_TTL", c"X-JA4-TTL", &v.ttl),
                    (c"JA4_TLS_VERSION", c"X-JA4-TLS-Version", &v.tls_version),
                    (c"JA4_TLS_CIPHER", c"X-JA4-Cipher", &v.tls_cipher),
                ] {
                    if !value.is_empty() {
                        set(env, header, value.as_ptr());
                    }
                }
            }
        }
        if export::enabled() {
            // SAFETY: request_config belongs to the live request; the facts live in its pool.
            unsafe {
                sys::ja4_set_module_config(req.request_config, facts as *mut std::ffi::c_void);
            }
        }
        sys::DECLINED
    })
}

/// mod_ssl's value of `name` for this request, or NULL.
///
/// # Safety
/// `r` is a live request.
unsafe fn ssl_var(r: &sys::request_rec, name: &CStr) -> *const c_char {
    // SAFETY: the glue returns NULL when mod_ssl is absent.
    unsafe {
        sys::ja4_ssl_var(
            r.pool,
            r.server,
            r.connection,
            r as *const _ as *mut _,
            name.as_ptr(),
        )
    }
}

pub unsafe extern "C" fn log_transaction(r: *mut sys::request_rec) -> c_int {
    guard(sys::DECLINED, || {
        // SAFETY: httpd passes the live (final) request.
        let req = unsafe { &*r };
        // SAFETY: r->server is the request's virtual host.
        let Some(sc) = (unsafe { crate::config::server_config(req.server) }) else {
            return sys::DECLINED;
        };
        if !sc.cfg.engine || !export::enabled() {
            return sys::DECLINED;
        }
        // The first request of an internal-redirect chain holds what post_read_request found.
        let mut first = r as *const sys::request_rec;
        // SAFETY: prev links live requests of the same chain.
        while unsafe { !(*first).prev.is_null() } {
            first = unsafe { (*first).prev };
        }
        // SAFETY: the connection outlives its requests.
        let state = unsafe { conn::state(req.connection) };
        // SAFETY: request_config of a live request; our slot holds NULL or ReqFacts in its
        // pool. Without them (a request rejected before post_read_request) scan now.
        let facts: &ReqFacts = unsafe {
            let f = sys::ja4_get_module_config((*first).request_config) as *const ReqFacts;
            &*if f.is_null() { scan(req, None) } else { f }
        };
        // SAFETY: every pointer read belongs to the live request and its connection.
        let fields = unsafe { request_fields(req, state, facts) };
        // The connection's fields: encoded once when settled, else for this record alone.
        let fresh;
        let segment: &[u8] = match state.and_then(|s| s.segment.get()) {
            Some(b) => b,
            None => {
                let mut rec = Record::default();
                // SAFETY: as above.
                let settled = unsafe { connection_fields(req, state, &mut rec) }
                    || state.is_some_and(|s| s.requests.load(Ordering::Relaxed) >= 8);
                let mut seg = Vec::new();
                rec.connection_segment(&mut seg);
                match state.filter(|_| settled) {
                    Some(st) => st.segment.get_or_init(|| seg),
                    None => {
                        fresh = seg;
                        &fresh
                    }
                }
            }
        };
        let settled = state.and_then(|s| s.segment.get()).is_some();
        export::append(|slot| {
            let start = export::Slot::PAYLOAD_START;
            match state.filter(|_| settled) {
                Some(st) => {
                    // A record of this connection earlier in the same frame carries the segment.
                    if st.segment_serial.load(Ordering::Relaxed) == slot.serial {
                        let at = st.segment_offset.load(Ordering::Relaxed);
                        fields.encode_with(slot.buf, start, Segment::Ref(at));
                    } else {
                        let at = fields.encode_with(slot.buf, start, Segment::Bytes(segment));
                        st.segment_serial.store(slot.serial, Ordering::Relaxed);
                        st.segment_offset.store(at, Ordering::Relaxed);
                    }
                }
                None => {
                    fields.encode_with(slot.buf, start, Segment::Bytes(segment));
                }
            }
        });
        sys::DECLINED
    })
}

/// The per-request fields of the record of `r`, as the encoder takes them.
///
/// # Safety
/// `r` is a live request, `st` its connection's state, `facts` from its pool.
unsafe fn request_fields<'a>(
    r: &'a sys::request_rec,
    st: Option<&'a ConnState>,
    facts: &ReqFacts,
) -> Fields<'a> {
    // SAFETY: all fields read belong to the live request and its connection; the facts'
    // bytes live in the request pool.
    unsafe {
        let c = &*r.connection;
        let optional = facts.optional.map(|v| v.get());
        Fields {
            head: Head {
                kind: RecordKind::Request,
                has_cookie: !optional[OPTIONAL_COOKIE].is_empty(),
                has_referer: facts.referer,
                ts_us: r.request_time,
                conn_id: st.map_or(c.id as u64, |s| s.id),
                client_ip: st.and_then(|s| s.client).map(|x| x.0),
                client_port: st.and_then(|s| s.client).map_or(0, |x| x.1),
                server_ip: st.and_then(|s| s.server).map(|x| x.0),
                server_port: st.and_then(|s| s.server).map_or(0, |x| x.1),
                status: u16::try_from(r.status).unwrap_or(0),
                bytes_in: u64::try_from(r.read_length).unwrap_or(0),
                bytes_out: u64::try_from(r.bytes_sent).unwrap_or(0),
                duration_us: u64::try_from(conn::now_us() - r.request_time).unwrap_or(0),
                keepalives: u32::try_from(c.keepalives).unwrap_or(0),
            },
            dense: [
                cbytes(r.hostname),
                cbytes(r.method),
                cbytes(r.parsed_uri.path),
                cbytes(r.args),
                cbytes(r.protocol),
                facts.ja4h.get(),
                facts.names.get(),
            ],
            optional,
        }
    }
}

/// Fills the connection fields of `rec`; true when they can no longer change (the hello is
/// in, the capture entry complete or there is no capture).
///
/// # Safety
/// `r` is a live request, `st` its connection's state.
unsafe fn connection_fields<'a>(
    r: &'a sys::request_rec,
    st: Option<&'a ConnState>,
    rec: &mut Record<&'a [u8]>,
) -> bool {
    let tls = st.and_then(|s| s.tls.get());
    let b = |s: &'a String| s.as_bytes();
    let empty: &[u8] = b"";
    // SAFETY: the request and its connection are live.
    let vars = st.map(|s| unsafe { conn_vars(r, s) });
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
        status::add(|c| &c.capture_lookups, 1);
        // Both sources saw this connection: they must agree (JA4 once the hello is in).
        let ja4_ok = e.ja4.is_empty() || tls.is_none_or(|t| t.ja4.ja4 == e.ja4);
        let ja4t_ok = st.is_none_or(|s| s.ja4t.is_empty() || s.ja4t == e.ja4t);
        if ja4_ok && ja4t_ok {
            status::add(|c| &c.capture_agree, 1);
        } else {
            status::add(|c| &c.capture_mismatch, 1);
        }
    }
    // SAFETY: copied into the request pool: lives as long as the record.
    let pooled = |v: &str| unsafe { cbytes(pool_str(r.pool, v.as_bytes())) };
    let cap_str =
        |f: fn(&Entry) -> &String| -> &'a [u8] { cap.as_ref().map_or(empty, |e| pooled(f(e))) };
    rec.tls_version = vars.map_or(empty, |v| v.tls_version.as_bytes());
    rec.tls_cipher = vars.map_or(empty, |v| v.tls_cipher.as_bytes());
    rec.tls_sni = tls.map_or(empty, |t| b(&t.sni));
    rec.tls_alpn = if tls.is_some() {
        // SAFETY: the connection is live; the protocol string is static or in its pool.
        unsafe { cbytes(sys::ap_get_protocol(r.connection)) }
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

pub fn syn_record(s: &ja4_core::tcp::SynFacts) -> SynRecord {
    SynRecord {
        ttl: s.ttl,
        window: s.window,
        mss: s.options.mss,
        window_scale: s.options.window_scale,
        options: s.options.kinds().to_vec(),
        ip_id: s.ip_id,
        dont_fragment: s.dont_fragment,
    }
}
