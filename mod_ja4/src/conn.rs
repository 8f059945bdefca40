//! In-connection sources of truth: the SYN the kernel saved for this connection
//! (`TCP_SAVED_SYN`, read in pre_connection) and the raw ClientHello seen by an input filter
//! below mod_ssl. Together they give every TLS request its fingerprints at post_read_request,
//! whatever the capture thread is doing.
//!
//! The filter is added only to connections mod_ssl encrypts (or to every connection when
//! mod_ssl is not loaded) and leaves the chain once it has seen the hello.
//! Never: blocks (buckets are read non-blocking), buffers more than [`MAX_HELLO`] bytes, or
//! removes itself when it may be the topmost connection filter (that breaks HTTP_IN); then,
//! once done, it only passes through.

use std::cell::UnsafeCell;
use std::ffi::{c_int, c_void, CStr, CString};
use std::mem::MaybeUninit;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::OnceLock;

use apr_sys as sys;
use ja4_core::batch::{self, Record, RecordKind};
use ja4_core::batch::{Head, HeadTemplate};
use ja4_core::decode::{self, LinkType};
use ja4_core::fingerprint::ja4h::CookieMemo;
use ja4_core::fingerprint::{ja4t, Ja3, Ja4Set};
use ja4_core::shape::ShapeCache;
use ja4_core::tcp::SynFacts;
use ja4_core::tls;

use crate::ffi::{self, cbytes, guard};
use crate::record::ReqRecord;
use crate::{counters, export};

/// Bytes of ClientHello we are ready to buffer per connection.
pub const MAX_HELLO: usize = 16 * 1024;
pub const FILTER_NAME: &std::ffi::CStr = c"JA4_RAW_IN";

const TCP_SAVE_SYN: c_int = 27;
const TCP_SAVED_SYN: c_int = 28;

/// What the client's TLS hello said.
#[derive(Debug, Clone)]
pub struct TlsFacts {
    pub ja4: Ja4Set,
    pub ja3: Ja3,
    pub sni: String,
    pub alpn_offered: String,
}

/// Per-connection state, owned by the connection's pool. Shared (never `&mut`) once created:
/// HTTP/2 streams read it from several threads, so what is filled in later is set once.
#[derive(Debug)]
pub struct ConnState {
    pub id: u64,
    pub started_us: i64,
    pub client: Option<(IpAddr, u16)>,
    pub server: Option<(IpAddr, u16)>,
    pub syn: Option<SynFacts>,
    pub ja4t: String,
    /// Set once by the raw filter when the ClientHello is complete.
    pub tls: OnceLock<TlsFacts>,
    /// Variable values computed at the connection's first request, reused by the others.
    pub vars: OnceLock<ConnVars>,
    pub requests: AtomicU32,
    /// The header shapes of this connection's requests (keep-alive clients repeat their
    /// header names): records point into them, so they live as long as the connection.
    pub shapes: ShapeCache,
    /// The last Cookie value and its part of JA4H.
    pub cookies: std::sync::Mutex<CookieMemo>,
    /// Where the record of the connection's current request is kept from post_read_request to
    /// log_transaction (no request-pool memory for it).
    pub record: RecordSlot,
    /// The encoded connection segment of this connection's records, once it can no longer
    /// change (hello in, capture entry complete): later requests copy or reference it.
    pub segment: OnceLock<Vec<u8>>,
    /// The export frame (serial) and payload offset where the segment was last written; only
    /// touched under the export queue's lock.
    pub segment_serial: AtomicU64,
    pub segment_offset: AtomicU32,
    /// The head of this connection's request records, its connection values filled in.
    pub head: HeadTemplate,
}

/// Room for one request record, claimed by a request at post_read_request and released at
/// its log_transaction. A request that finds it taken (an HTTP/2 stream while another is
/// under way, a pipelined request whose predecessor is not logged yet) puts its record in its
/// pool instead.
pub struct RecordSlot {
    busy: AtomicBool,
    rec: UnsafeCell<MaybeUninit<ReqRecord<'static>>>,
}

impl Default for RecordSlot {
    fn default() -> Self {
        RecordSlot {
            busy: AtomicBool::new(false),
            rec: UnsafeCell::new(MaybeUninit::uninit()),
        }
    }
}

impl std::fmt::Debug for RecordSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordSlot")
            .field("busy", &self.busy)
            .finish()
    }
}

// SAFETY: the record is only touched by the one request that claimed the slot (an acquiring
// compare-exchange) until it releases it (a releasing store).
unsafe impl Sync for RecordSlot {}

impl RecordSlot {
    /// The slot's memory, for the caller alone until [`RecordSlot::release`]; None when taken.
    #[inline]
    pub fn claim(&self) -> Option<*mut ReqRecord<'static>> {
        self.busy
            .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
            .ok()
            .map(|_| self.rec.get().cast())
    }

    /// Gives the slot back if `rec` is its memory (a record elsewhere is left alone).
    #[inline]
    pub fn release(&self, rec: *const ReqRecord<'_>) {
        if std::ptr::eq(rec.cast(), self.rec.get().cast::<ReqRecord<'static>>()) {
            self.busy.store(false, Ordering::Release);
        }
    }
}

/// The per-connection values of the JA4* variables, as C strings set by pointer.
#[derive(Debug)]
pub struct ConnVars {
    /// (variable, request header, value) of every non-empty value; the tables of requests
    /// point into the strings, which stay where they are as long as the state.
    pub values: Vec<(&'static CStr, &'static CStr, CString)>,
}

impl ConnVars {
    /// The value of variable `name`, empty when the connection has none.
    pub fn value(&self, name: &CStr) -> &[u8] {
        self.values
            .iter()
            .find(|v| v.0 == name)
            .map_or(b"", |v| v.2.as_bytes())
    }
}

/// C string of `s` (interior NULs cannot occur in our values; they would yield an empty one).
pub fn cstring(s: &[u8]) -> CString {
    CString::new(s).unwrap_or_default()
}

/// The raw filter's scratch state (its `f->ctx`), separate from the shared [`ConnState`].
struct HelloScan {
    state: *const ConnState,
    buf: Vec<u8>,
    done: bool,
    /// mod_ssl's filter sits above ours: once done we can leave the chain. (Without mod_ssl we
    /// may be the topmost connection filter, whose removal breaks HTTP_IN: then we stay and
    /// pass through.)
    below_ssl: bool,
}

/// Sets TCP_SAVE_SYN on every listening socket so accepted connections keep their SYN.
///
/// # Safety
/// Called from post_config, when `ap_listeners` is the live listener list.
pub unsafe fn save_syn_on_listeners(s: *const sys::server_rec) -> usize {
    let mut n = 0;
    // SAFETY: ap_listeners is httpd's list of open listeners, stable during post_config.
    let mut l = unsafe { sys::ap_listeners };
    while !l.is_null() {
        // SAFETY: `l` is a node of the listener list.
        let lr = unsafe { &*l };
        let mut fd: sys::apr_os_sock_t = -1;
        // SAFETY: lr.sd is the listener's APR socket; apr_os_sock_get writes its fd.
        if !lr.sd.is_null() && unsafe { sys::apr_os_sock_get(&mut fd, lr.sd) } == 0 && fd >= 0 {
            let one: c_int = 1;
            // SAFETY: plain setsockopt on a valid fd with a c_int option value.
            let rc = unsafe {
                libc::setsockopt(
                    fd,
                    libc::IPPROTO_TCP,
                    TCP_SAVE_SYN,
                    &one as *const c_int as *const c_void,
                    std::mem::size_of::<c_int>() as u32,
                )
            };
            if rc == 0 {
                n += 1;
            } else {
                crate::ffi::log_server(
                    s,
                    crate::ffi::LOG_WARNING,
                    0,
                    &format!(
                        "mod_ja4: TCP_SAVE_SYN on a listener failed: {}",
                        std::io::Error::last_os_error()
                    ),
                );
            }
        }
        l = lr.next;
    }
    n
}

fn read_saved_syn(fd: c_int) -> Option<SynFacts> {
    let mut buf = [0u8; 512];
    let mut len = buf.len() as libc::socklen_t;
    // SAFETY: getsockopt writes at most `len` bytes into `buf`.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::IPPROTO_TCP,
            TCP_SAVED_SYN,
            buf.as_mut_ptr() as *mut c_void,
            &mut len,
        )
    };
    if rc != 0 || len == 0 {
        return None;
    }
    let pkt = decode::decode(LinkType::Raw, &buf[..(len as usize).min(buf.len())]).ok()??;
    pkt.is_syn().then(|| SynFacts::from_packet(0, &pkt))
}

fn sockaddr(
    ip: *const std::ffi::c_char,
    addr: *const sys::apr_sockaddr_t,
) -> Option<(IpAddr, u16)> {
    // SAFETY: httpd fills client_ip/local_ip and the sockaddrs for every connection.
    let ip = std::str::from_utf8(unsafe { cbytes(ip) })
        .ok()?
        .parse()
        .ok()?;
    // SAFETY: as above; port is a plain field.
    let port = if addr.is_null() {
        0
    } else {
        unsafe { (*addr).port }
    };
    Some((ip, port))
}

/// pre_connection: read the saved SYN, create the connection state, add the raw filter.
pub unsafe extern "C" fn pre_connection(c: *mut sys::conn_rec, csd: *mut c_void) -> c_int {
    guard(sys::DECLINED, || {
        // SAFETY: httpd passes the live connection.
        let conn = unsafe { &mut *c };
        // HTTP/2 secondary connections share their primary's state.
        if !conn.master.is_null() {
            return sys::DECLINED;
        }
        // SAFETY: base_server is the server that accepted the connection.
        let Some(sc) = (unsafe { crate::config::server_config(conn.base_server) }) else {
            return sys::DECLINED;
        };
        if !sc.cfg.engine {
            return sys::DECLINED;
        }
        let mut syn = None;
        if !csd.is_null() {
            let mut fd: sys::apr_os_sock_t = -1;
            // SAFETY: csd is the connection's apr_socket_t on plain TCP connections.
            if unsafe { sys::apr_os_sock_get(&mut fd, csd as *mut sys::apr_socket_t) } == 0
                && fd >= 0
            {
                syn = read_saved_syn(fd);
            }
        }
        counters::add(|s| &s.connections, 1);
        if syn.is_some() {
            counters::add(|s| &s.syns_saved, 1);
        }
        let (client, server) = (
            sockaddr(conn.client_ip, conn.client_addr),
            sockaddr(conn.local_ip, conn.local_addr),
        );
        let head = Head {
            conn_id: conn.id as u64,
            client_ip: client.map(|c| c.0),
            client_port: client.map_or(0, |c| c.1),
            server_ip: server.map(|c| c.0),
            server_port: server.map_or(0, |c| c.1),
            ..Head::default()
        }
        .template();
        let state = ConnState {
            id: conn.id as u64,
            started_us: ffi::now_us(),
            client,
            server,
            ja4t: syn.as_ref().map(ja4t).unwrap_or_default(),
            syn,
            tls: OnceLock::new(),
            vars: OnceLock::new(),
            requests: AtomicU32::new(0),
            shapes: ShapeCache::default(),
            cookies: Default::default(),
            record: RecordSlot::default(),
            segment: OnceLock::new(),
            segment_serial: AtomicU64::new(0),
            segment_offset: AtomicU32::new(0),
            head,
        };
        crate::capture::claim(state.client, state.syn.as_ref().map(|s| s.isn));
        let raw = Box::into_raw(Box::new(state));
        // SAFETY: the connection pool owns the state from here; conn_end frees it once. The
        // filter context lives in the same pool and is registered after, so it is freed first.
        unsafe {
            sys::apr_pool_cleanup_register(
                conn.pool,
                raw as *const c_void,
                Some(conn_end),
                Some(sys::apr_pool_cleanup_null),
            );
            crate::ffi::set_module_config(conn.conn_config, raw as *mut c_void);
        }
        // This hook runs after mod_ssl's: a connection mod_ssl does not encrypt carries no
        // ClientHello for us, and a plain HTTP connection pays nothing for the filter. Without
        // mod_ssl (another TLS module, or none) the filter looks at the first bytes itself.
        // SAFETY: the connection is live.
        let https = unsafe { sys::ja4_is_https(c) };
        if https != 0 {
            // SAFETY: as above.
            unsafe {
                let scan = crate::ffi::pool_box(
                    conn.pool,
                    HelloScan {
                        state: raw,
                        buf: Vec::new(),
                        done: false,
                        below_ssl: https == 1,
                    },
                );
                sys::ap_add_input_filter(
                    FILTER_NAME.as_ptr(),
                    scan as *mut c_void,
                    std::ptr::null_mut(),
                    c,
                );
            }
        }
        sys::OK as c_int
    })
}

/// Connection pool cleanup: report a connection that never made a request, then free its state.
unsafe extern "C" fn conn_end(data: *mut c_void) -> sys::apr_status_t {
    guard(0, || {
        // SAFETY: registered once in pre_connection with a Box<ConnState> pointer.
        let state = unsafe { Box::from_raw(data as *mut ConnState) };
        // The capture may have published the connection after pre_connection looked.
        crate::capture::claim(state.client, state.syn.as_ref().map(|s| s.isn));
        if state.requests.load(Ordering::Relaxed) == 0 {
            counters::add(|s| &s.orphans, 1);
            export_orphan(&state);
        }
        0
    })
}

/// The state of `c` (or of its primary connection for HTTP/2 streams).
///
/// # Safety
/// `c` is a live connection.
pub unsafe fn state<'a>(c: *const sys::conn_rec) -> Option<&'a ConnState> {
    // SAFETY: our slot of the primary connection holds NULL or the ConnState created in
    // pre_connection.
    let p = unsafe { crate::ffi::module_config((*primary(c)).conn_config) } as *const ConnState;
    // SAFETY: the state lives until the primary connection's pool is cleared, which outlives
    // its requests and streams; it is only read through shared references.
    unsafe { p.as_ref() }
}

/// The primary connection of `c`: itself, or for an HTTP/2 stream's secondary connection its
/// master (which owns the [`ConnState`]).
///
/// # Safety
/// `c` is a live connection.
pub unsafe fn primary(c: *const sys::conn_rec) -> *const sys::conn_rec {
    // SAFETY: master is NULL or the live primary connection.
    let master = unsafe { (*c).master };
    if master.is_null() {
        c
    } else {
        master
    }
}

/// The raw input filter: passes everything through and watches the first bytes for a
/// ClientHello. Once it has decided (hello parsed, or not TLS) it only forwards: a flag test
/// and a call, for every read of the connection's life.
pub unsafe extern "C" fn raw_in_filter(
    f: *mut sys::ap_filter_t,
    bb: *mut sys::apr_bucket_brigade,
    mode: sys::ap_input_mode_t,
    block: sys::apr_read_type_e,
    readbytes: sys::apr_off_t,
) -> sys::apr_status_t {
    // SAFETY: httpd passes the live filter; ctx is NULL or the HelloScan set in pre_connection,
    // and only this connection's thread runs its input filters.
    let (next, scan) = unsafe { ((*f).next, ((*f).ctx as *mut HelloScan).as_mut()) };
    // SAFETY: pass the read down unchanged; we only look at what comes back.
    let rv = unsafe { sys::ap_get_brigade(next, bb, mode, block, readbytes) };
    let Some(scan) = scan else { return rv };
    if scan.done
        || rv != 0
        || mode == sys::ap_input_mode_t_AP_MODE_SPECULATIVE
        || mode == sys::ap_input_mode_t_AP_MODE_INIT
    {
        return rv;
    }
    guard((), || {
        // SAFETY: we walk the brigade httpd gave us without modifying it.
        unsafe { inspect(scan, bb) };
    });
    if scan.done && scan.below_ssl {
        // SAFETY: removing ourselves from the live chain after our read returned (httpd's
        // idiom); the filter above us is mod_ssl's, whose next pointer is relinked.
        unsafe { sys::ap_remove_input_filter(f) };
    }
    rv
}

unsafe fn inspect(scan: &mut HelloScan, bb: *mut sys::apr_bucket_brigade) {
    // SAFETY: brigade walking per APR's ring macros (via the glue).
    let sentinel = unsafe { sys::ja4_brigade_sentinel(bb) };
    let mut e = unsafe { sys::ja4_brigade_first(bb) };
    while e != sentinel && scan.buf.len() < MAX_HELLO {
        // SAFETY: `e` is a bucket of this brigade.
        if unsafe { sys::ja4_bucket_is_metadata(e) } == 0 {
            let mut data: *const std::ffi::c_char = std::ptr::null();
            let mut len: sys::apr_size_t = 0;
            // SAFETY: non-blocking read of a data bucket the lower filter already filled.
            let rv = unsafe {
                sys::ja4_bucket_read(
                    e,
                    &mut data,
                    &mut len,
                    sys::apr_read_type_e_APR_NONBLOCK_READ,
                )
            };
            if rv != 0 {
                break;
            }
            if len > 0 && !data.is_null() {
                let take = len.min(MAX_HELLO - scan.buf.len());
                // SAFETY: the bucket's data is valid for `len` bytes.
                scan.buf.extend_from_slice(unsafe {
                    std::slice::from_raw_parts(data as *const u8, take)
                });
            }
        }
        // SAFETY: ring successor of a bucket of this brigade.
        e = unsafe { sys::ja4_bucket_next(e) };
    }
    match tls::first_handshake_message(&scan.buf, MAX_HELLO) {
        Err(tls::TlsError::Incomplete) if scan.buf.len() < MAX_HELLO => {}
        Ok((tls::HANDSHAKE_CLIENT_HELLO, body)) => {
            match tls::parse_client_hello(&body) {
                Ok(ch) => {
                    let alpn: Vec<String> = ch
                        .alpn_protocols()
                        .map(|p| String::from_utf8_lossy(p).into_owned())
                        .collect();
                    // SAFETY: the ConnState outlives its filter context (cleanup order).
                    let state = unsafe { &*scan.state };
                    let _ = state.tls.set(TlsFacts {
                        ja4: Ja4Set::from_hello(&ch),
                        ja3: Ja3::from_hello(&ch),
                        sni: ch
                            .sni
                            .map(|s| String::from_utf8_lossy(s).into_owned())
                            .unwrap_or_default(),
                        alpn_offered: alpn.join(","),
                    });
                    counters::add(|s| &s.hellos, 1);
                }
                Err(_) => counters::add(|s| &s.hello_errors, 1),
            }
            finish(scan);
        }
        Err(tls::TlsError::NotTls) => finish(scan), // plain HTTP
        _ => {
            counters::add(|s| &s.hello_errors, 1);
            finish(scan);
        }
    }
}

fn finish(scan: &mut HelloScan) {
    scan.done = true;
    scan.buf = Vec::new();
}

/// Queues an orphan record for a connection that ended without a request.
pub fn export_orphan(st: &ConnState) {
    if !export::enabled() || (st.tls.get().is_none() && st.syn.is_none()) {
        return;
    }
    let b = |s: &String| s.as_bytes().to_vec();
    let tls = st.tls.get();
    let owned = [
        tls.map(|t| b(&t.ja4.ja4)).unwrap_or_default(),
        tls.map(|t| b(&t.ja4.ja4_r)).unwrap_or_default(),
        tls.map(|t| b(&t.ja4.ja4_o)).unwrap_or_default(),
        tls.map(|t| b(&t.ja4.ja4_ro)).unwrap_or_default(),
        tls.map(|t| b(&t.ja3.ja3)).unwrap_or_default(),
        tls.map(|t| b(&t.ja3.ja3_r)).unwrap_or_default(),
        tls.map(|t| b(&t.sni)).unwrap_or_default(),
        b(&st.ja4t),
    ];
    let empty: &[u8] = b"";
    let rec = Record {
        kind: RecordKind::Orphan,
        ts_us: st.started_us,
        conn_id: st.id,
        client_ip: st.client.map(|c| c.0),
        client_port: st.client.map_or(0, |c| c.1),
        server_ip: st.server.map(|c| c.0),
        server_port: st.server.map_or(0, |c| c.1),
        duration_us: u64::try_from(ffi::now_us() - st.started_us).unwrap_or(0),
        ja4: &owned[0][..],
        ja4_r: &owned[1][..],
        ja4_o: &owned[2][..],
        ja4_ro: &owned[3][..],
        ja3: &owned[4][..],
        ja3_r: &owned[5][..],
        tls_sni: &owned[6][..],
        ja4t: &owned[7][..],
        syn: st.syn.as_ref().map(crate::record::syn_record),
        sources: if tls.is_some() {
            batch::SOURCE_INLINE_HELLO
        } else {
            0
        } | if st.syn.is_some() {
            batch::SOURCE_SAVED_SYN
        } else {
            0
        },
        ..Record {
            vhost: empty,
            ..Default::default()
        }
    };
    export::append(|slot| rec.encode(slot.buf));
}
