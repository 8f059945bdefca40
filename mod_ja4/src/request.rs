//! Per-request work: JA4H from the request as httpd parsed it, environment variables and
//! `X-JA4*` headers at post_read_request, and the export record at log_transaction.
//!
//! Never: repeats per request what a connection already knows: the JA4/JA3/JA4T/TLS values are
//! turned into C strings once per connection ([`ConnVars`]) and set by pointer afterwards.

use std::ffi::{c_char, c_int, CStr};
use std::sync::atomic::Ordering;

use apr_sys as sys;
use ja4_core::batch::{
    Record, RecordKind, SynRecord, SOURCE_CAPTURE, SOURCE_INLINE_HELLO, SOURCE_SAVED_SYN,
};
use ja4_core::fingerprint::{HttpVersion, Ja4hSet};
use ja4_core::shared::{self, Entry};

use crate::conn::{self, cstring, ConnState, ConnVars};
use crate::ffi::{cbytes, guard, pool_box, pool_str, table_entries};
use crate::{export, status};

/// What post_read_request computed, kept for log_transaction.
pub struct ReqState {
    pub ja4h: std::sync::Arc<Ja4hSet>,
}

fn version(proto_num: c_int) -> HttpVersion {
    match proto_num {
        n if n >= 3000 => HttpVersion::Http3,
        n if n >= 2000 => HttpVersion::Http2,
        1000 => HttpVersion::Http10,
        n if n < 1000 => HttpVersion::Http09,
        _ => HttpVersion::Http11,
    }
}

/// JA4H of `r` from its headers in wire order.
///
/// HTTP/2 and HTTP/3 header names are lowercase on the wire, but mod_http2 hands httpd
/// title-cased names and appends a `Host` header made from `:authority` (clients send none):
/// those requests are put back into wire form first (canonical rule 7: no pseudo-headers).
///
/// # Safety
/// `r` is a live request.
unsafe fn compute_ja4h(r: &sys::request_rec, st: Option<&ConnState>) -> std::sync::Arc<Ja4hSet> {
    // SAFETY: method and headers_in belong to the live request.
    let method = unsafe { cbytes(r.method) };
    let v = version(r.proto_num);
    let headers = unsafe { table_entries(r.headers_in) };
    if !matches!(v, HttpVersion::Http2 | HttpVersion::Http3) {
        return match st.and_then(|s| s.ja4h_names.try_lock().ok()) {
            Some(mut cache) => Ja4hSet::compute_shared(method, v, headers, &mut cache),
            None => std::sync::Arc::new(Ja4hSet::compute(method, v, headers)),
        };
    }
    let mut wire: Vec<(Vec<u8>, &[u8])> = headers
        .map(|(k, val)| (k.to_ascii_lowercase(), val))
        .collect();
    if wire.last().is_some_and(|(k, _)| k == b"host") {
        wire.pop();
    }
    std::sync::Arc::new(Ja4hSet::compute(
        method,
        v,
        wire.iter().map(|(k, val)| (&k[..], *val)),
    ))
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
        // SAFETY: the request is live.
        let ja4h = unsafe { compute_ja4h(req, state) };
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
            // SAFETY: JA4H is copied into the request pool; the connection values live in the
            // connection's state, which outlives the request.
            let ja4h_c = unsafe { pool_str(req.pool, ja4h.ja4h.as_bytes()) };
            let mut list: [(&CStr, &CStr, *const c_char); 11] = [(c"", c"", std::ptr::null()); 11];
            let mut n = 0;
            list[n] = (c"JA4H", c"X-JA4H", ja4h_c);
            n += 1;
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
                        list[n] = (env, header, value.as_ptr());
                        n += 1;
                    }
                }
            }
            // SAFETY: tables of the live request; values outlive it (see above).
            unsafe {
                if set_headers {
                    for h in OUR_HEADERS {
                        sys::apr_table_unset(req.headers_in, h.as_ptr());
                    }
                }
                for (env, header, value) in &list[..n] {
                    if set_env {
                        sys::apr_table_setn(req.subprocess_env, env.as_ptr(), *value);
                    }
                    if set_headers {
                        sys::apr_table_setn(req.headers_in, header.as_ptr(), *value);
                    }
                }
            }
        }
        if export::enabled() {
            // SAFETY: request pool and request_config belong to the live request.
            unsafe {
                let rs = pool_box(req.pool, ReqState { ja4h });
                sys::ja4_set_module_config(req.request_config, rs as *mut std::ffi::c_void);
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
        // The first request of an internal-redirect chain holds what post_read_request computed.
        let mut first = r as *const sys::request_rec;
        // SAFETY: prev links live requests of the same chain.
        while unsafe { !(*first).prev.is_null() } {
            first = unsafe { (*first).prev };
        }
        // SAFETY: request_config of a live request; our slot holds NULL or a ReqState.
        let rs = unsafe {
            (sys::ja4_get_module_config((*first).request_config) as *const ReqState).as_ref()
        };
        let computed;
        let ja4h = match rs {
            Some(rs) => &rs.ja4h,
            None => {
                // SAFETY: the request is live.
                computed = unsafe { compute_ja4h(req, None) };
                &computed
            }
        };
        // SAFETY: the connection outlives its requests.
        let state = unsafe { conn::state(req.connection) };
        let mut buf = Vec::with_capacity(1536);
        match state.and_then(|s| s.segments.get()) {
            Some((tls, transport)) => {
                // SAFETY: every pointer read below belongs to the live request.
                let rec = unsafe { build_record(req, state, ja4h, false) }.0;
                rec.encode_with(&mut buf, Some((tls, transport)));
            }
            None => {
                // SAFETY: as above.
                let (rec, settled) = unsafe { build_record(req, state, ja4h, true) };
                rec.encode(&mut buf);
                if let Some(s) = state.filter(|s| {
                    settled || s.requests.load(std::sync::atomic::Ordering::Relaxed) >= 8
                }) {
                    let (mut tls, mut transport) = (Vec::new(), Vec::new());
                    rec.tls_segment(&mut tls);
                    rec.transport_segment(&mut transport);
                    let _ = s.segments.set((tls, transport));
                }
            }
        }
        export::enqueue(buf);
        sys::DECLINED
    })
}

/// The header values a record carries, picked in one pass over `headers_in`.
#[derive(Default)]
struct Picked<'a> {
    names: Vec<&'a [u8]>,
    values: [&'a [u8]; 11],
    cookie: bool,
    referer: bool,
}

const PICK: [&[u8]; 11] = [
    b"user-agent",
    b"accept",
    b"accept-language",
    b"accept-encoding",
    b"sec-fetch-site",
    b"sec-fetch-mode",
    b"sec-fetch-dest",
    b"sec-fetch-user",
    b"sec-ch-ua",
    b"sec-ch-ua-mobile",
    b"sec-ch-ua-platform",
];

fn pick<'a>(headers: impl Iterator<Item = (&'a [u8], &'a [u8])>) -> Picked<'a> {
    let mut p = Picked {
        names: Vec::with_capacity(16),
        ..Default::default()
    };
    for (k, v) in headers {
        if k.len() >= 5
            && (k[..5].eq_ignore_ascii_case(b"x-ja4") || k[..5].eq_ignore_ascii_case(b"x-ja3"))
        {
            continue;
        }
        p.names.push(k);
        if k.eq_ignore_ascii_case(b"cookie") {
            p.cookie = true;
        } else if k.eq_ignore_ascii_case(b"referer") {
            p.referer = true;
        } else if let Some(i) = PICK.iter().position(|n| k.eq_ignore_ascii_case(n)) {
            if p.values[i].is_empty() {
                p.values[i] = v;
            }
        }
    }
    p
}

/// The record of request `r` and whether its TLS and transport fields are settled (the hello
/// is in, the capture entry complete or there is no capture) so they can be cached. Without
/// `connection` the capture is not consulted and the SYN not rebuilt: the caller encodes with
/// the connection's cached segments, which stand for those fields.
unsafe fn build_record<'a>(
    r: &'a sys::request_rec,
    st: Option<&'a ConnState>,
    ja4h: &'a Ja4hSet,
    connection: bool,
) -> (Record<&'a [u8]>, bool) {
    let tls = st.and_then(|s| s.tls.get());
    let b = |s: &'a String| s.as_bytes();
    let empty: &[u8] = b"";
    // SAFETY: all fields read belong to the live request and its connection.
    unsafe {
        let c = &*r.connection;
        let vars = st.map(|s| conn_vars(r, s));
        let mut sources = 0;
        if tls.is_some() {
            sources |= SOURCE_INLINE_HELLO;
        }
        if st.is_some_and(|s| s.syn.is_some()) {
            sources |= SOURCE_SAVED_SYN;
        }
        let p = pick(table_entries(r.headers_in));
        // What the capture thread saw of this connection: handshake timing, server side.
        let cap = st
            .filter(|_| connection)
            .and_then(|s| crate::capture::lookup(s.client, s.syn.as_ref().map(|y| y.isn)));
        let settled = connection
            && match &cap {
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
        let cap_str = |f: fn(&Entry) -> &String| -> &'a [u8] {
            match &cap {
                // Copied into the request pool: lives as long as the record.
                Some(e) => cbytes(pool_str(r.pool, f(e).as_bytes())),
                None => b"",
            }
        };
        let ja4l_c = cap
            .as_ref()
            .and_then(|e| e.ja4l_c())
            .map(|v| cbytes(pool_str(r.pool, v.as_bytes())))
            .unwrap_or(empty);
        let ja4l_s = cap
            .as_ref()
            .and_then(|e| e.ja4l_s())
            .map(|v| cbytes(pool_str(r.pool, v.as_bytes())))
            .unwrap_or(empty);
        let [user_agent, accept, accept_language, accept_encoding, sec_fetch_site, sec_fetch_mode, sec_fetch_dest, sec_fetch_user, sec_ch_ua, sec_ch_ua_mobile, sec_ch_ua_platform] =
            p.values;
        let full = Record {
            kind: RecordKind::Request,
            ts_us: r.request_time,
            conn_id: st.map_or(c.id as u64, |s| s.id),
            client_ip: st.and_then(|s| s.client).map(|x| x.0),
            client_port: st.and_then(|s| s.client).map_or(0, |x| x.1),
            server_ip: st.and_then(|s| s.server).map(|x| x.0),
            server_port: st.and_then(|s| s.server).map_or(0, |x| x.1),
            vhost: cbytes(r.hostname),
            method: cbytes(r.method),
            path: cbytes(r.parsed_uri.path),
            query: cbytes(r.args),
            protocol: cbytes(r.protocol),
            status: u16::try_from(r.status).unwrap_or(0),
            bytes_in: u64::try_from(r.read_length).unwrap_or(0),
            bytes_out: u64::try_from(r.bytes_sent).unwrap_or(0),
            duration_us: u64::try_from(conn::now_us() - r.request_time).unwrap_or(0),
            keepalives: u32::try_from(c.keepalives).unwrap_or(0),
            tls_version: vars.map_or(empty, |v| v.tls_version.as_bytes()),
            tls_cipher: vars.map_or(empty, |v| v.tls_cipher.as_bytes()),
            tls_sni: tls.map_or(empty, |t| b(&t.sni)),
            tls_alpn: if tls.is_some() {
                cbytes(sys::ap_get_protocol(r.connection))
            } else {
                empty
            },
            ja4: tls.map_or(empty, |t| b(&t.ja4.ja4)),
            ja4_r: tls.map_or(empty, |t| b(&t.ja4.ja4_r)),
            ja4_o: tls.map_or(empty, |t| b(&t.ja4.ja4_o)),
            ja4_ro: tls.map_or(empty, |t| b(&t.ja4.ja4_ro)),
            ja3: tls.map_or(empty, |t| b(&t.ja3.ja3)),
            ja3_r: tls.map_or(empty, |t| b(&t.ja3.ja3_r)),
            ja4h: b(&ja4h.ja4h),
            ja4h_r: b(&ja4h.ja4h_r),
            ja4h_o: b(&ja4h.ja4h_o),
            ja4h_ro: b(&ja4h.ja4h_ro),
            ja4t: st.map_or(empty, |s| b(&s.ja4t)),
            ja4ts: cap_str(|e| &e.ja4ts),
            ja4l_c,
            ja4l_s,
            ja4s: cap_str(|e| &e.ja4s),
            // Cached segments stand for the connection fields: skip building them.
            syn: st
                .filter(|_| connection)
                .and_then(|s| s.syn.as_ref())
                .map(syn_record),
            sources,
            header_names: p.names,
            user_agent,
            accept,
            accept_language,
            accept_encoding,
            sec_fetch_site,
            sec_fetch_mode,
            sec_fetch_dest,
            sec_fetch_user,
            sec_ch_ua,
            sec_ch_ua_mobile,
            sec_ch_ua_platform,
            has_cookie: p.cookie,
            has_referer: p.referer,
        };
        (full, settled)
    }
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
