//! Per-request work: at post_read_request, the record's strings block written once into the
//! request pool ([`scan`]: JA4H, the request line, header names and picked values), the
//! environment variables and `X-JA4*` headers; at log_transaction, the record (head, connection
//! segment, strings block) appended to the exporter's frame.
//!
//! Never: repeats per request what a connection already knows: the JA4/JA3/JA4T/TLS values are
//! turned into C strings once per connection ([`ConnVars`], copied into a fresh environment as
//! one table), the JA4H of a keep-alive client repeating its headers is reused
//! ([`ja4_core::fingerprint::Ja4hMemo`]), the head's connection values are written once
//! ([`ja4_core::batch::HeadTemplate`]), and a settled connection's TLS and transport fields are
//! encoded once and then referenced.

use std::ffi::{c_char, c_int, CStr, CString};
use std::sync::atomic::Ordering;

use apr_sys as sys;
use ja4_core::batch::{
    self, header_role, BlockSink, Head, HeaderRole, Record, Segment, StringsWriter, SynRecord,
    PICKED_ACCEPT_LANGUAGE, PICKED_HEADERS, SOURCE_CAPTURE, SOURCE_INLINE_HELLO, SOURCE_SAVED_SYN,
    S_COOKIE, S_HEADER_NAMES, S_JA4H, S_PICKED, S_REQUEST_LINE, S_VHOST, TABLE_LEN,
};
use ja4_core::fingerprint::{HttpVersion, Ja4hSet};
use ja4_core::shared::{self, Entry};

use crate::conn::{self, cstring, ConnState, ConnVars, EnvTable, ENV_TABLE_MIN};
use crate::ffi::{cbytes, guard, pool_str, PoolBytes, PoolWriter};
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

/// What post_read_request leaves in the request pool for log_transaction (plain data: the
/// pool frees it).
#[derive(Clone, Copy)]
pub struct ReqRecord {
    /// The record's strings block (written by [`StringsWriter`]), JA4H
    /// last and NUL-terminated right after the block.
    strings: PoolBytes,
    /// Where JA4H starts in `strings`.
    ja4h_at: usize,
    has_cookie: bool,
    has_referer: bool,
}

impl ReqRecord {
    /// JA4H as a C string.
    fn ja4h(&self) -> *const c_char {
        self.strings.as_ptr().wrapping_add(self.ja4h_at) as *const c_char
    }
}

/// Key lengths the header pass keeps for its second pass (more headers are measured again).
const KEPT_LENGTHS: usize = 32;

/// Room for JA4H at the end of a strings block (it is 51 bytes).
const JA4H_ROOM: usize = 64;

/// Two passes over `r` build its record's strings block (the virtual host, the request line,
/// the header names in wire order, the picked header values, the Cookie value, JA4H) in the
/// request pool: the first measures, the second copies each string once into a block of
/// exactly that size. HTTP/2 and HTTP/3 header names are lowercase on the wire, but mod_http2
/// hands httpd title-cased names and appends a `Host` header made from `:authority`: those
/// requests are put back into wire form (canonical rule 7).
///
/// # Safety
/// `r` is a live request; `st` is its connection's state.
unsafe fn scan(r: &sys::request_rec, st: Option<&ConnState>) -> *const ReqRecord {
    let v = version(r.proto_num);
    let wire_lowercase = matches!(v, HttpVersion::Http2 | HttpVersion::Http3);
    // SAFETY: the request's strings and headers live in its pool until it ends, unchanged.
    let (host, line, method, entries) = unsafe {
        (
            cbytes(r.hostname),
            cbytes(r.the_request),
            cbytes(r.method),
            crate::ffi::table_slice(r.headers_in),
        )
    };
    // Pass 1: the names' lengths and what the record takes from the values.
    let mut lengths = [0u16; KEPT_LENGTHS];
    let mut picked: [&[u8]; PICKED_HEADERS.len()] = [b""; PICKED_HEADERS.len()];
    let mut seen = 0u16;
    let mut cookie: &[u8] = b"";
    let mut cookies: Option<Vec<u8>> = None;
    let (mut referer, mut cookie_seen) = (false, false);
    let (mut names_len, mut count) = (0usize, 0usize);
    let mut host_entry = usize::MAX;
    for (i, e) in entries.iter().enumerate() {
        // SAFETY: table keys and values are C strings in the request pool.
        let Some(k) = (unsafe { header_name(e) }) else {
            continue;
        };
        // 0: measure again in pass 2 (a name longer than 65,535 bytes).
        if let Some(l) = lengths.get_mut(i) {
            *l = u16::try_from(k.len()).unwrap_or(0);
        }
        names_len += k.len();
        count += 1;
        host_entry = if wire_lowercase && k.eq_ignore_ascii_case(b"host") {
            i
        } else {
            usize::MAX
        };
        match header_role(k) {
            HeaderRole::Cookie => {
                // SAFETY: as above.
                let val = unsafe { cbytes(e.val) };
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
            HeaderRole::Referer => referer = true,
            // The first occurrence counts (as JA4H takes the first Accept-Language).
            HeaderRole::Picked(i) if seen & (1 << i) == 0 => {
                seen |= 1 << i;
                // SAFETY: as above.
                picked[i] = unsafe { cbytes(e.val) };
            }
            _ => {}
        }
    }
    // mod_http2's Host from :authority comes last: not a header the client sent.
    if host_entry != usize::MAX {
        names_len -= 4;
        count -= 1;
    }
    names_len += count.saturating_sub(1);
    let cookie: &[u8] = cookies.as_deref().unwrap_or(cookie);
    let values_len: usize = picked.iter().map(|p| p.len()).sum();
    let size = TABLE_LEN + host.len() + line.len() + names_len + values_len + cookie.len();
    let lang =
        (seen & (1 << PICKED_ACCEPT_LANGUAGE) != 0).then_some(picked[PICKED_ACCEPT_LANGUAGE]);

    // Pass 2: one allocation: the record's flags, then the block, JA4H last and NUL-terminated.
    let head = std::mem::size_of::<ReqRecord>().next_multiple_of(8);
    const { assert!(std::mem::align_of::<ReqRecord>() <= 8) };
    // SAFETY: apr_palloc returns 8-aligned memory of the size asked (it aborts rather than
    // return NULL); the writer stays within the block.
    let (rec, mut w) = unsafe {
        let p = sys::apr_palloc(r.pool, head + size + JA4H_ROOM + 1) as *mut u8;
        (
            p as *mut ReqRecord,
            StringsWriter::new(PoolWriter::new(p.add(head), size + JA4H_ROOM + 1)),
        )
    };
    w.put(S_VHOST, host);
    w.put(S_REQUEST_LINE, line);
    let start = w.start();
    let mut first = true;
    for (i, e) in entries.iter().enumerate() {
        if i == host_entry {
            continue;
        }
        let k = match lengths.get(i) {
            // SAFETY: as above; a name whose length pass 1 kept.
            Some(&n) if n > 0 => unsafe {
                std::slice::from_raw_parts(e.key as *const u8, n as usize)
            },
            // SAFETY: as above.
            _ => match unsafe { header_name(e) } {
                Some(k) => k,
                None => continue,
            },
        };
        let sink = w.sink();
        if !first {
            sink.push(b',');
        }
        first = false;
        if wire_lowercase {
            for &b in k {
                sink.push(b.to_ascii_lowercase());
            }
        } else {
            sink.put(k);
        }
    }
    let names = w.end(S_HEADER_NAMES, start);
    // SAFETY: the names were just written, in the request pool, and are not written again.
    let names = unsafe { w.sink().written(names) };
    let mut left = seen;
    while left != 0 {
        let i = left.trailing_zeros() as usize;
        left &= left - 1;
        w.put(S_PICKED + i, picked[i]);
    }
    w.put(S_COOKIE, cookie);
    // JA4H_r, _o, _ro stay empty: the decoder derives them.
    let mut held = st.and_then(|s| s.ja4h_memo.try_lock().ok());
    let fresh;
    let ja4h: &[u8] = match held.as_deref_mut() {
        Some(m) => m.ja4h(method, v, names, cookie, lang).as_bytes(),
        // Another stream of this HTTP/2 connection holds the memo.
        None => {
            fresh = Ja4hSet::from_joined(method, v, names, cookie, lang).ja4h;
            fresh.as_bytes()
        }
    };
    let ja4h_at = w.put(S_JA4H, &ja4h[..ja4h.len().min(JA4H_ROOM)]).start;
    drop(held);
    let mut w = w.finish();
    let len = w.len();
    w.push(0);
    // SAFETY: the record's slot at the start of the allocation (aligned, large enough).
    unsafe {
        rec.write(ReqRecord {
            strings: PoolBytes::from_raw((rec as *const u8).add(head), len),
            ja4h_at,
            has_cookie: !cookie.is_empty(),
            has_referer: referer,
        });
    }
    rec
}

/// The name of a request header entry; none for a NULL key or an HTTP/2 pseudo-header.
///
/// # Safety
/// `e` is an entry of a live table; its key outlives `'a`.
unsafe fn header_name<'a>(e: &sys::apr_table_entry_t) -> Option<&'a [u8]> {
    if e.key.is_null() {
        return None;
    }
    // SAFETY: table keys are C strings in the table's pool.
    let k = unsafe { cbytes(e.key) };
    (k.first() != Some(&b':')).then_some(k)
}

/// Our variables and the request headers that carry the same values (`JA4RequestHeaders`;
/// a client's own copies are removed first): the connection's, then JA4H (per request).
const VARIABLES: [(&CStr, &CStr); 11] = [
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
    (c"JA4H", c"X-JA4H"),
];
/// Index of JA4H in [`VARIABLES`]; the ones before it belong to the connection.
const JA4H_VARIABLE: usize = 10;

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
        let ttl = st
            .syn
            .as_ref()
            .map(|s| s.ttl.to_string())
            .unwrap_or_default();
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
        ];
        let values: Vec<(&'static CStr, &'static CStr, CString)> = VARIABLES[..JA4H_VARIABLE]
            .iter()
            .zip(connection_values)
            .filter(|(_, v)| !v.is_empty())
            .map(|(&(env, header), v)| (env, header, v))
            .collect();
        let mut env = EnvTable::default();
        if values.len() >= ENV_TABLE_MIN {
            // SAFETY: the table lives in the primary connection's pool (the state's owner;
            // `r.connection` may be an HTTP/2 stream's secondary connection); its values
            // point into the CStrings moved into the returned ConnVars (heap buffers that do
            // not move), which live as long as the state.
            unsafe {
                env.0 = sys::apr_table_make((*conn::primary(r.connection)).pool, 32);
                for (name, _, value) in &values {
                    sys::apr_table_addn(env.0, name.as_ptr(), value.as_ptr());
                }
            }
        }
        ConnVars { values, env }
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
        let rec = unsafe { scan(req, state) };
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
            // A fresh request's environment is empty: the connection's variables are copied
            // into it whole, one table copy instead of a push per variable.
            // SAFETY: tables of the live request; the copy is made in its pool and its entries
            // point to connection memory, which outlives the request.
            let copied = match vars {
                Some(v) if set_env && !v.env.0.is_null() => unsafe {
                    let empty = sys::apr_is_empty_table(req.subprocess_env) != 0;
                    if empty {
                        req.subprocess_env = sys::apr_table_copy(req.pool, v.env.0);
                    }
                    empty
                },
                _ => false,
            };
            // SAFETY: JA4H is in the request pool (NUL-terminated); the connection values live
            // in the connection's state, which outlives the request.
            let ja4h_c = unsafe { (*rec).ja4h() };
            let (env_table, headers) = (req.subprocess_env, req.headers_in);
            // SAFETY: tables of the live request; values outlive it (see above). The
            // variables are added, not set: this hook runs first on a fresh request, so none
            // of ours can be there yet (our request headers were unset just before), and
            // adding skips a case-insensitive search of the table per variable.
            let set = |env: Option<&CStr>, header: &CStr, value: *const c_char| unsafe {
                if let Some(env) = env.filter(|_| set_env) {
                    sys::apr_table_addn(env_table, env.as_ptr(), value);
                }
                if set_headers {
                    sys::apr_table_addn(headers, header.as_ptr(), value);
                }
            };
            if set_headers {
                for (_, h) in VARIABLES {
                    // SAFETY: as above.
                    unsafe { sys::apr_table_unset(headers, h.as_ptr()) };
                }
            }
            if let Some(v) = vars.filter(|_| !copied || set_headers) {
                for (env, header, value) in &v.values {
                    set(Some(*env).filter(|_| !copied), header, value.as_ptr());
                }
            }
            let (env, header) = VARIABLES[JA4H_VARIABLE];
            set(Some(env), header, ja4h_c);
        }
        if export::enabled() {
            // SAFETY: request_config belongs to the live request; the record lives in its pool.
            unsafe {
                sys::ja4_set_module_config(req.request_config, rec as *mut std::ffi::c_void);
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
        // SAFETY: request_config of a live request; our slot holds NULL or a ReqRecord in its
        // pool. Without one (a request rejected before post_read_request) scan now.
        let rec: &ReqRecord = unsafe {
            let f = sys::ja4_get_module_config((*first).request_config) as *const ReqRecord;
            &*if f.is_null() { scan(req, None) } else { f }
        };
        // SAFETY: the fields read belong to the live request and its connection.
        let values = unsafe { request_values(req, rec) };
        let head = match state {
            Some(st) => st.head.with(&values),
            None => Head {
                // SAFETY: the connection outlives its requests.
                conn_id: unsafe { (*req.connection).id } as u64,
                ..values
            }
            .bytes(),
        };
        // The connection's fields: encoded once when settled, else for this record alone.
        let fresh;
        let segment: &[u8] = match state.and_then(|s| s.segment.get()) {
            Some(b) => b,
            None => {
                let mut conn = Record::default();
                // SAFETY: as above.
                let settled = unsafe { connection_fields(req, state, &mut conn) }
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
        // SAFETY: the strings block lives in the request pool.
        let strings = unsafe { rec.strings.get() };
        export::append(|slot| {
            let start = export::Slot::PAYLOAD_START;
            match settled {
                // A record of this connection earlier in the same frame carries the segment.
                Some(st) if st.segment_serial.load(Ordering::Relaxed) == slot.serial => {
                    let at = st.segment_offset.load(Ordering::Relaxed);
                    batch::write_record(slot.buf, start, &head, Segment::Ref(at), strings);
                }
                Some(st) => {
                    let at = batch::write_record(
                        slot.buf,
                        start,
                        &head,
                        Segment::Bytes(segment),
                        strings,
                    );
                    st.segment_serial.store(slot.serial, Ordering::Relaxed);
                    st.segment_offset.store(at, Ordering::Relaxed);
                }
                None => {
                    batch::write_record(slot.buf, start, &head, Segment::Bytes(segment), strings);
                }
            }
        });
        sys::DECLINED
    })
}

/// The request values of the head of the record of `r` (its connection values are left
/// empty: they come from the connection's [`ja4_core::batch::HeadTemplate`]).
///
/// # Safety
/// `r` is a live request, `rec` from its pool.
unsafe fn request_values(r: &sys::request_rec, rec: &ReqRecord) -> Head {
    // SAFETY: the connection outlives its requests.
    let keepalives = unsafe { (*r.connection).keepalives };
    Head {
        has_cookie: rec.has_cookie,
        has_referer: rec.has_referer,
        ts_us: r.request_time,
        status: u16::try_from(r.status).unwrap_or(0),
        bytes_in: u64::try_from(r.read_length).unwrap_or(0),
        bytes_out: u64::try_from(r.bytes_sent).unwrap_or(0),
        duration_us: u64::try_from(conn::now_us() - r.request_time).unwrap_or(0),
        keepalives: u32::try_from(keepalives).unwrap_or(0),
        ..Head::default()
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
    rec.tls_version = vars.map_or(empty, |v| v.value(c"JA4_TLS_VERSION"));
    rec.tls_cipher = vars.map_or(empty, |v| v.value(c"JA4_TLS_CIPHER"));
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
