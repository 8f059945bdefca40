//! Per-request work: JA4H from the request as httpd parsed it, environment variables and
//! `X-JA4*` headers at post_read_request, and the export record at log_transaction.
//!
//! Never: formats strings it does not need; the hot path is one JA4H computation, a few table
//! sets, and one record encoding into one buffer.

use std::ffi::{c_char, c_int};

use apr_sys as sys;
use ja4_core::batch::{Record, RecordKind, SynRecord, SOURCE_INLINE_HELLO, SOURCE_SAVED_SYN};
use ja4_core::fingerprint::{HttpVersion, Ja4hSet};

use crate::conn::{self, ConnState};
use crate::ffi::{cbytes, guard, pool_box, table_entries};
use crate::{export, status};

/// What post_read_request computed, kept for log_transaction.
pub struct ReqState {
    pub ja4h: Ja4hSet,
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
unsafe fn compute_ja4h(r: &sys::request_rec) -> Ja4hSet {
    // SAFETY: method and headers_in belong to the live request.
    let method = unsafe { cbytes(r.method) };
    let v = version(r.proto_num);
    let headers = unsafe { table_entries(r.headers_in) };
    if !matches!(v, HttpVersion::Http2 | HttpVersion::Http3) {
        return Ja4hSet::compute(method, v, headers);
    }
    let mut wire: Vec<(Vec<u8>, &[u8])> = headers
        .map(|(k, val)| (k.to_ascii_lowercase(), val))
        .collect();
    if wire.last().is_some_and(|(k, _)| k == b"host") {
        wire.pop();
    }
    Ja4hSet::compute(method, v, wire.iter().map(|(k, val)| (&k[..], *val)))
}

const ANTI_SPOOF: [&std::ffi::CStr; 10] = [
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
];

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
        // SAFETY: the request is live.
        let ja4h = unsafe { compute_ja4h(req) };
        // SAFETY: the connection outlives its requests.
        let state = unsafe { conn::state(req.connection) };
        let (set_env, set_headers) = (sc.cfg.set_env, sc.cfg.request_headers);
        if set_env || set_headers {
            let tls_version = if state.as_ref().is_some_and(|s| s.tls.is_some()) {
                // SAFETY: mod_ssl's variable lookup on the live request.
                unsafe { ssl_var(req, c"SSL_PROTOCOL") }
            } else {
                std::ptr::null()
            };
            let vars = exported_values(state.as_deref(), &ja4h);
            // SAFETY: tables of the live request; apr_table_set copies keys and values.
            unsafe {
                if set_headers {
                    for h in ANTI_SPOOF {
                        sys::apr_table_unset(req.headers_in, h.as_ptr());
                    }
                }
                for (env, header, value) in vars.iter() {
                    if value.is_empty() {
                        continue;
                    }
                    let v = crate::ffi::pool_str(req.pool, value.as_bytes());
                    if set_env {
                        sys::apr_table_setn(req.subprocess_env, env.as_ptr(), v);
                    }
                    if set_headers {
                        sys::apr_table_setn(req.headers_in, header.as_ptr(), v);
                    }
                }
                if !tls_version.is_null() {
                    if set_env {
                        sys::apr_table_setn(
                            req.subprocess_env,
                            c"JA4_TLS_VERSION".as_ptr(),
                            tls_version,
                        );
                    }
                    if set_headers {
                        sys::apr_table_setn(
                            req.headers_in,
                            c"X-JA4-TLS-Version".as_ptr(),
                            tls_version,
                        );
                    }
                }
            }
        }
        if let Some(st) = state {
            st.requests += 1;
            if st.tls.is_some() {
                status::add(|s| &s.fingerprinted, 1);
            }
        }
        // SAFETY: request pool and request_config belong to the live request.
        unsafe {
            let rs = pool_box(req.pool, ReqState { ja4h });
            sys::ja4_set_module_config(req.request_config, rs as *mut std::ffi::c_void);
        }
        sys::DECLINED
    })
}

type Var = (&'static std::ffi::CStr, &'static std::ffi::CStr, String);

fn exported_values(state: Option<&ConnState>, ja4h: &Ja4hSet) -> Vec<Var> {
    let tls = state.and_then(|s| s.tls.as_ref());
    let ttl = state
        .and_then(|s| s.syn.as_ref())
        .map(|s| s.ttl.to_string())
        .unwrap_or_default();
    vec![
        (
            c"JA4",
            c"X-JA4",
            tls.map(|t| t.ja4.ja4.clone()).unwrap_or_default(),
        ),
        (
            c"JA4_R",
            c"X-JA4-R",
            tls.map(|t| t.ja4.ja4_r.clone()).unwrap_or_default(),
        ),
        (
            c"JA4_O",
            c"X-JA4-O",
            tls.map(|t| t.ja4.ja4_o.clone()).unwrap_or_default(),
        ),
        (
            c"JA3",
            c"X-JA3",
            tls.map(|t| t.ja3.ja3.clone()).unwrap_or_default(),
        ),
        (c"JA4H", c"X-JA4H", ja4h.ja4h.clone()),
        (
            c"JA4T",
            c"X-JA4T",
            state.map(|s| s.ja4t.clone()).unwrap_or_default(),
        ),
        (
            c"JA4_SNI",
            c"X-JA4-SNI",
            tls.map(|t| t.sni.clone()).unwrap_or_default(),
        ),
        (
            c"JA4_ALPN",
            c"X-JA4-ALPN",
            tls.map(|t| t.alpn_offered.clone()).unwrap_or_default(),
        ),
        (c"JA4_TTL", c"X-JA4-TTL", ttl),
    ]
}

/// mod_ssl's value of `name` for this request, or NULL.
///
/// # Safety
/// `r` is a live request.
unsafe fn ssl_var(r: &sys::request_rec, name: &std::ffi::CStr) -> *const c_char {
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
        // SAFETY: the request is live.
        let computed;
        let ja4h = match rs {
            Some(rs) => &rs.ja4h,
            None => {
                computed = unsafe { compute_ja4h(req) };
                &computed
            }
        };
        // SAFETY: the connection outlives its requests.
        let state = unsafe { conn::state(req.connection) };
        let mut buf = Vec::with_capacity(1024);
        // SAFETY: every pointer read below belongs to the live request.
        unsafe { build_record(req, state.as_deref(), ja4h).encode(&mut buf) };
        export::enqueue(buf);
        sys::DECLINED
    })
}

unsafe fn header<'a>(r: &'a sys::request_rec, name: &std::ffi::CStr) -> &'a [u8] {
    // SAFETY: apr_table_get on the live request's headers.
    unsafe { cbytes(sys::apr_table_get(r.headers_in, name.as_ptr())) }
}

unsafe fn build_record<'a>(
    r: &'a sys::request_rec,
    st: Option<&'a ConnState>,
    ja4h: &'a Ja4hSet,
) -> Record<&'a [u8]> {
    let tls = st.and_then(|s| s.tls.as_ref());
    let b = |s: &'a String| s.as_bytes();
    let empty: &[u8] = b"";
    // SAFETY: all fields read belong to the live request and its connection.
    unsafe {
        let c = &*r.connection;
        let (tls_version, tls_cipher) = if tls.is_some() {
            (
                cbytes(ssl_var(r, c"SSL_PROTOCOL")),
                cbytes(ssl_var(r, c"SSL_CIPHER")),
            )
        } else {
            (empty, empty)
        };
        let mut sources = 0;
        if tls.is_some() {
            sources |= SOURCE_INLINE_HELLO;
        }
        if st.is_some_and(|s| s.syn.is_some()) {
            sources |= SOURCE_SAVED_SYN;
        }
        let names: Vec<&[u8]> = table_entries(r.headers_in)
            .map(|(k, _)| k)
            .filter(|k| !k.starts_with(b"X-JA4") && !k.starts_with(b"X-JA3"))
            .collect();
        Record {
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
            tls_version,
            tls_cipher,
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
            ja4ts: empty,
            ja4l_c: empty,
            ja4l_s: empty,
            ja4s: empty,
            syn: st.and_then(|s| s.syn.as_ref()).map(syn_record),
            sources,
            header_names: names,
            user_agent: header(r, c"User-Agent"),
            accept: header(r, c"Accept"),
            accept_language: header(r, c"Accept-Language"),
            accept_encoding: header(r, c"Accept-Encoding"),
            sec_fetch_site: header(r, c"Sec-Fetch-Site"),
            sec_fetch_mode: header(r, c"Sec-Fetch-Mode"),
            sec_fetch_dest: header(r, c"Sec-Fetch-Dest"),
            sec_fetch_user: header(r, c"Sec-Fetch-User"),
            sec_ch_ua: header(r, c"Sec-CH-UA"),
            sec_ch_ua_mobile: header(r, c"Sec-CH-UA-Mobile"),
            sec_ch_ua_platform: header(r, c"Sec-CH-UA-Platform"),
            has_cookie: !header(r, c"Cookie").is_empty(),
            has_referer: !header(r, c"Referer").is_empty(),
        }
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
