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

use std::ffi::{c_char, c_int, CStr, CString};
use std::ptr::addr_of_mut;
use std::sync::atomic::Ordering;

use apr_sys as sys;
use ja4_core::batch::{
    self, Head, Record, RequestValues, Segment, PICKED_ACCEPT_LANGUAGE, SOURCE_CAPTURE,
    SOURCE_INLINE_HELLO, SOURCE_SAVED_SYN, STRINGS, S_COOKIE, S_HEADER_NAMES, S_JA4H, S_PICKED,
    S_REQUEST_LINE, S_VHOST,
};
use ja4_core::fingerprint::ja4h::{self, JA4H_LEN};
use ja4_core::fingerprint::HttpVersion;
use ja4_core::shape::{HeaderShape, Role};
use ja4_core::shared::{self, Entry};

use crate::conn::{self, cstring, ConnState, ConnVars};
use crate::ffi::{cbytes, guard, pool_bytes, pool_str};
use crate::record::{syn_record, ReqRecord};
use crate::{counters, export};

fn version(proto_num: c_int) -> HttpVersion {
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
/// # Safety
/// `r` is a live request; `st` is its connection's state; `'r` ends with the request.
unsafe fn scan<'r>(r: &sys::request_rec, st: Option<&'r ConnState>) -> *mut ReqRecord<'r> {
    let v = version(r.proto_num);
    let lowercase = matches!(v, HttpVersion::Http2 | HttpVersion::Http3);
    // SAFETY: the request's table lives in its pool until it ends.
    let entries = unsafe { crate::ffi::table_slice(r.headers_in) };
    // SAFETY: as above; table keys are C strings in the request pool.
    let found = st.and_then(|s| {
        s.shapes
            .find(|sh| unsafe { matches(sh, entries, lowercase) })
    });
    let fresh;
    let (shape, names): (&HeaderShape, &'r [u8]) = match found {
        Some(sh) => (sh, sh.joined()),
        None => {
            let sh = HeaderShape::new(
                // SAFETY: as above.
                entries
                    .iter()
                    .map(|e| (!e.key.is_null()).then(|| unsafe { cbytes(e.key) })),
                lowercase,
            );
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
                    // SAFETY: the request pool is live.
                    (&fresh, unsafe { pool_bytes(r.pool, fresh.joined()) })
                }
            }
        }
    };
    // The connection's record slot, or (taken) the request pool.
    let rec: *mut ReqRecord<'r> = match st.and_then(|s| s.record.claim()) {
        Some(slot) => slot.cast(),
        // SAFETY: apr_palloc returns memory aligned for any type, of the size asked (it
        // aborts rather than return NULL).
        None => unsafe { sys::apr_palloc(r.pool, std::mem::size_of::<ReqRecord>()).cast() },
    };
    const { assert!(std::mem::align_of::<ReqRecord>() <= 8) };
    // SAFETY: `rec` is ours until log_transaction (a claimed slot or fresh pool memory); it
    // is initialized here, in place, before any reference to it is made.
    let rec = unsafe {
        // Field by field: the pointers of absent strings need no initial value (they are
        // MaybeUninit), and a whole-struct write would clear them too.
        addr_of_mut!((*rec).lens).write([0; STRINGS]);
        addr_of_mut!((*rec).ja4h).write([0; JA4H_LEN]);
        addr_of_mut!((*rec).nul).write(0);
        addr_of_mut!((*rec).present).write(0);
        addr_of_mut!((*rec).total).write(0);
        addr_of_mut!((*rec).has_referer).write(false);
        &mut *rec
    };
    // SAFETY: the request's strings live in its pool until it ends, unchanged.
    unsafe {
        rec.put(S_VHOST, cbytes(r.hostname));
        rec.put(S_REQUEST_LINE, cbytes(r.the_request));
    }
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
            // SAFETY: table values are C strings in the request pool.
            Role::Picked(i) => rec.put(S_PICKED + usize::from(i), unsafe { cbytes(e.val) }),
            Role::Cookie => {
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
            Role::None => {}
        }
    }
    if let Some(j) = &cookies {
        // SAFETY: the request pool is live.
        cookie = unsafe { pool_bytes(r.pool, j) };
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
        .then(|| rec.get(S_PICKED + PICKED_ACCEPT_LANGUAGE));
    // SAFETY: the method is a C string of the request.
    let (method, n) = unsafe { method_head(r.method) };
    ja4h::assemble_into(&mut rec.ja4h, &method[..n], v, part, language, &cookie_part);
    rec.has_referer = part.referer;
    // SAFETY: JA4H's string points into the record itself, which stays in place (in the
    // slot or the pool) until log_transaction.
    let ja4h = unsafe { std::slice::from_raw_parts(rec.ja4h.as_ptr(), JA4H_LEN) };
    rec.put(S_JA4H, ja4h);
    rec
}

/// Whether the table `entries` has exactly the names of `shape`, in order.
///
/// # Safety
/// The entries' keys are NULL or C strings.
#[inline(always)]
unsafe fn matches(
    shape: &HeaderShape,
    entries: &[sys::apr_table_entry_t],
    lowercase: bool,
) -> bool {
    // SAFETY: a key is NULL or a C string (caller's guarantee), read only while compared.
    let names = entries
        .iter()
        .map(|e| (!e.key.is_null()).then(|| unsafe { cbytes(e.key) }));
    shape.is_shape_of(names, lowercase)
}

/// The first two bytes of the method and how many there are (fewer for a shorter method):
/// all JA4H takes from it.
///
/// # Safety
/// `m` is NULL or a C string.
unsafe fn method_head(m: *const c_char) -> ([u8; 2], usize) {
    let mut out = ([0u8; 2], 0);
    if !m.is_null() {
        for i in 0..2 {
            // SAFETY: a C string has at least its NUL; the second byte is read only after a
            // first that is not the NUL.
            let b = unsafe { *m.add(i) } as u8;
            if b == 0 {
                break;
            }
            out.0[i] = b;
            out.1 = i + 1;
        }
    }
    out
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
        ConnVars { values }
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
        counters::add(|s| &s.requests, 1);
        // SAFETY: the connection outlives its requests.
        let state = unsafe { conn::state(req.connection) };
        // SAFETY: the request is live and `state` is its connection's.
        let rec = unsafe { scan(req, state) };
        if let Some(st) = state {
            st.requests.fetch_add(1, Ordering::Relaxed);
            if st.tls.get().is_some() {
                counters::add(|s| &s.fingerprinted, 1);
            }
        }
        let (set_env, set_headers) = (sc.cfg.set_env, sc.cfg.request_headers);
        if set_env || set_headers {
            // SAFETY: the request is live and belongs to the state's connection.
            let vars = state.map(|st| unsafe { conn_vars(req, st) });
            // SAFETY: JA4H lives in the record until the request is logged; the connection
            // values live in the connection's state, which outlives the request.
            let ja4h_c = unsafe { (*rec).ja4h.as_ptr() } as *const c_char;
            // SAFETY: the request's tables; the values point to connection memory, which
            // outlives the request.
            unsafe { add_each(req, vars, ja4h_c, set_env, set_headers) };
        }
        // SAFETY: request_config belongs to the live request; the record stays ours until
        // log_transaction.
        unsafe {
            crate::ffi::set_module_config(req.request_config, rec as *mut std::ffi::c_void);
        }
        sys::DECLINED
    })
}

/// Adds our variables with APR's public table API, as httpd's own modules do
/// (`mod_setenvif.c`): to the environment when `to_env`, and as `X-JA4*` request headers when `to_headers` (a client's own copies removed first).
///
/// # Safety
/// `r` is a live request; `vars` its connection's and `ja4h` its JA4H, both outliving it.
unsafe fn add_each(
    r: &sys::request_rec,
    vars: Option<&ConnVars>,
    ja4h: *const c_char,
    to_env: bool,
    to_headers: bool,
) {
    let (env_table, headers) = (r.subprocess_env, r.headers_in);
    // SAFETY: tables of the live request; values outlive it (caller's guarantee). The
    // variables are added, not set: this hook runs first on a fresh request, so none of ours
    // can be there yet (our request headers were unset just before), and adding skips a
    // case-insensitive search of the table per variable.
    let set = |env: &CStr, header: &CStr, value: *const c_char| unsafe {
        if to_env {
            sys::apr_table_addn(env_table, env.as_ptr(), value);
        }
        if to_headers {
            sys::apr_table_addn(headers, header.as_ptr(), value);
        }
    };
    if to_headers {
        for (_, h) in VARIABLES {
            // SAFETY: as above.
            unsafe { sys::apr_table_unset(headers, h.as_ptr()) };
        }
    }
    for (env, header, value) in vars.iter().flat_map(|v| &v.values) {
        set(env, header, value.as_ptr());
    }
    let (env, header) = VARIABLES[JA4H_VARIABLE];
    set(env, header, ja4h);
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

/// Runs last among the log hooks (the JA4H variable of a record kept in its connection's slot
/// stays valid while the others log): exports the record and gives back the slot.
pub unsafe extern "C" fn log_transaction(r: *mut sys::request_rec) -> c_int {
    guard(sys::DECLINED, || {
        // The first request of an internal-redirect chain holds what post_read_request found.
        let mut first = r as *const sys::request_rec;
        // SAFETY: prev links live requests of the same chain.
        while unsafe { !(*first).prev.is_null() } {
            first = unsafe { (*first).prev };
        }
        // SAFETY: request_config of a live request; our slot holds NULL or the ReqRecord
        // post_read_request made (in the connection's slot or the request pool).
        let rec = unsafe { crate::ffi::module_config((*first).request_config) } as *const ReqRecord;
        // SAFETY: httpd passes the live (final) request, whose connection outlives it.
        let (req, state) = unsafe { (&*r, conn::state((*r).connection)) };
        // SAFETY: as above.
        unsafe { export_record(req, state, rec) };
        if let Some(st) = state.filter(|_| !rec.is_null()) {
            st.record.release(rec);
            // A second log_transaction for this request must not read the slot again.
            // SAFETY: as above.
            unsafe { crate::ffi::set_module_config((*first).request_config, std::ptr::null_mut()) };
        }
        sys::DECLINED
    })
}

/// Appends the record of `req` to the export queue (when this child exports).
///
/// # Safety
/// `req` is a live request, `state` its connection's, `rec` NULL or the record
/// post_read_request made for it.
unsafe fn export_record(req: &sys::request_rec, state: Option<&ConnState>, rec: *const ReqRecord) {
    if !export::enabled() {
        return;
    }
    // Without a record (a request rejected before post_read_request) scan now, if the engine
    // is on for its server (a record says it was).
    let rec: &ReqRecord = if rec.is_null() {
        // SAFETY: r->server is the request's virtual host.
        match unsafe { crate::config::server_config(req.server) } {
            // SAFETY: the request is live.
            Some(sc) if sc.cfg.engine => unsafe { &*scan(req, None) },
            _ => return,
        }
    } else {
        // SAFETY: a record lives until its request is logged.
        unsafe { &*rec }
    };
    // SAFETY: the fields read belong to the live request and its connection.
    let values = unsafe { request_values(req, rec) };
    let lone;
    let template = match state {
        Some(st) => &st.head,
        None => {
            lone = Head {
                // SAFETY: the connection outlives its requests.
                conn_id: unsafe { (*req.connection).id } as u64,
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
    export::append(|slot| {
        let start = export::Slot::PAYLOAD_START;
        // A record of this connection earlier in the same frame carries the segment.
        let earlier = settled.filter(|st| st.segment_serial.load(Ordering::Relaxed) == slot.serial);
        let seg = match earlier {
            Some(st) => Segment::Ref(st.segment_offset.load(Ordering::Relaxed)),
            None => Segment::Bytes(segment),
        };
        let at = batch::write_record_start(slot.buf, start, head, seg, &rec.lens, rec.total);
        if let (Some(st), None) = (settled, earlier) {
            st.segment_serial.store(slot.serial, Ordering::Relaxed);
            st.segment_offset.store(at, Ordering::Relaxed);
        }
        rec.write_strings(slot.buf);
    });
}

/// The request values of the head of the record of `r` (its connection values come from
/// the connection's [`ja4_core::batch::HeadTemplate`]).
///
/// # Safety
/// `r` is a live request, `rec` from its pool.
unsafe fn request_values(r: &sys::request_rec, rec: &ReqRecord) -> RequestValues {
    // SAFETY: the connection outlives its requests.
    let keepalives = unsafe { (*r.connection).keepalives };
    RequestValues {
        has_cookie: !rec.get(S_COOKIE).is_empty(),
        has_referer: rec.has_referer,
        ts_us: r.request_time,
        status: u16::try_from(r.status).unwrap_or(0),
        bytes_in: u64::try_from(r.read_length).unwrap_or(0),
        bytes_out: u64::try_from(r.bytes_sent).unwrap_or(0),
        duration_us: u64::try_from(crate::ffi::now_us() - r.request_time).unwrap_or(0),
        keepalives: u32::try_from(keepalives).unwrap_or(0),
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
