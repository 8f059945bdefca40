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

use std::ffi::{CStr, CString};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::OnceLock;

use ja4_core::batch::{self, Record, RecordKind};
use ja4_core::batch::{Head, HeadTemplate};
use ja4_core::decode::{self, LinkType};
use ja4_core::fingerprint::ja4h::CookieMemo;
use ja4_core::fingerprint::{ja4t, Ja3, Ja4Set};
use ja4_core::shape::ShapeCache;
use ja4_core::tcp::SynFacts;
use ja4_core::tls;

use crate::ffi::{self, Brigade, Connection, Level, RecordSlot, Server, Socket};
use crate::{counters, export};

/// Bytes of ClientHello we are ready to buffer per connection.
pub(crate) const MAX_HELLO: usize = 16 * 1024;
/// The HTTP/2 filter: above mod_ssl (decrypted bytes), below mod_http2 and HTTP_IN.
pub(crate) const H2_FILTER_NAME: &CStr = c"JA4_H2_IN";

/// The connection's HTTP/2 fingerprint (`ja4_core::h2`), as requests read it.
#[derive(Debug)]
pub(crate) struct H2Facts {
    /// The Akamai string (`JA4_H2`).
    pub akamai: CString,
    /// Its short form (`JA4_H2_HASH`).
    pub hash: CString,
}

/// The HTTP/2 filter's state (its `f->ctx`): the scanner until it has decided, then nothing
/// but a flag (the filter passes through for the rest of the connection).
pub(crate) struct H2Scan<'c> {
    state: &'c ConnState,
    scanner: Option<Box<ja4_core::h2::Scanner>>,
}

impl Inspector for H2Scan<'_> {
    #[inline(always)]
    fn is_done(&self) -> bool {
        self.scanner.is_none()
    }

    fn inspect(&mut self, bb: &Brigade<'_>) {
        inspect_h2(self, bb);
    }

    /// It stays: HTTP_IN of a request in progress may still point at it.
    fn may_leave(&self) -> bool {
        false
    }
}

/// Feeds what a read of the HTTP/2 filter returned to its scanner; a fingerprint goes into
/// the connection's state, a hostile preface is counted.
fn inspect_h2(scan: &mut H2Scan<'_>, bb: &Brigade<'_>) {
    let Some(scanner) = scan.scanner.as_mut() else {
        return;
    };
    let mut step = ja4_core::h2::Step::More;
    bb.each_data(|data| {
        step = scanner.feed(data);
        step == ja4_core::h2::Step::More
    });
    match step {
        ja4_core::h2::Step::More => return,
        ja4_core::h2::Step::NotH2 => {}
        ja4_core::h2::Step::Done(Ok(fp)) => {
            let _ = scan.state.h2.set(H2Facts {
                akamai: cstring(fp.akamai().as_bytes()),
                hash: cstring(fp.hash().as_bytes()),
            });
            counters::add(|s| &s.h2_fingerprinted, 1);
        }
        ja4_core::h2::Step::Done(Err(_)) => counters::add(|s| &s.h2_hostile, 1),
    }
    scan.scanner = None;
}
/// The raw input filter's name.
pub(crate) const FILTER_NAME: &CStr = c"JA4_RAW_IN";

/// What the client's TLS hello said.
#[derive(Debug, Clone)]
pub(crate) struct TlsFacts {
    pub ja4: Ja4Set,
    pub ja3: Ja3,
    pub sni: String,
    pub alpn_offered: String,
}

/// Per-connection state, owned by the connection's pool. Shared (never `&mut`) once created:
/// HTTP/2 streams read it from several threads, so what is filled in later is set once.
#[derive(Debug)]
pub(crate) struct ConnState {
    pub id: u64,
    pub started_us: i64,
    pub client: Option<(IpAddr, u16)>,
    pub server: Option<(IpAddr, u16)>,
    pub syn: Option<SynFacts>,
    pub ja4t: String,
    /// Set once by the raw filter when the ClientHello is complete.
    pub tls: OnceLock<TlsFacts>,
    /// The HTTP/2 fingerprint, once the first request's frames were read.
    pub h2: OnceLock<H2Facts>,
    /// Its label (`JA4H2Labels`), looked up at the first request that sees it.
    pub h2_label: OnceLock<Option<ja4_core::stack::Label>>,
    /// Variable values computed at the connection's first request, reused by the others.
    pub vars: OnceLock<ConnVars>,
    /// What mitigation remembers of this client (lookup keys, a verified pass).
    pub mitigation: crate::mitigate::ConnMemo,
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

/// The per-connection values of the JA4* variables, as C strings set by pointer.
#[derive(Debug)]
pub(crate) struct ConnVars {
    /// (variable, request header, value) of every non-empty value; the tables of requests
    /// point into the strings, which stay where they are as long as the state.
    pub values: Vec<(&'static CStr, &'static CStr, CString)>,
    /// The label of the connection's TLS stack (`JA4StackLabels`), if known.
    pub label: Option<ja4_core::stack::Label>,
}

impl ConnVars {
    /// The value of variable `name`, empty when the connection has none.
    pub(crate) fn value(&self, name: &CStr) -> &[u8] {
        self.values
            .iter()
            .find(|v| v.0 == name)
            .map_or(b"", |v| v.2.as_bytes())
    }
}

/// C string of `s` (interior NULs cannot occur in our values; they would yield an empty one).
pub(crate) fn cstring(s: &[u8]) -> CString {
    CString::new(s).unwrap_or_default()
}

/// The raw filter's scratch state (its `f->ctx`), separate from the shared [`ConnState`].
pub(crate) struct HelloScan<'c> {
    state: &'c ConnState,
    buf: Vec<u8>,
    done: bool,
    /// mod_ssl's filter sits above ours: once done we can leave the chain. (Without mod_ssl we
    /// may be the topmost connection filter, whose removal breaks HTTP_IN: then we stay and
    /// pass through.)
    below_ssl: bool,
}

/// What an inspecting input filter keeps in its `f->ctx` (the raw filter's [`HelloScan`],
/// the HTTP/2 filter's [`H2Scan`]): it looks at what reads return until it has decided.
pub(crate) trait Inspector {
    /// Whether it has decided: from then on the filter only forwards.
    fn is_done(&self) -> bool;
    /// Looks at what one (consumed, not speculative) read returned.
    fn inspect(&mut self, bb: &Brigade<'_>);
    /// Whether the filter may take itself out of the chain once done.
    fn may_leave(&self) -> bool;
}

impl Inspector for HelloScan<'_> {
    #[inline(always)]
    fn is_done(&self) -> bool {
        self.done
    }

    fn inspect(&mut self, bb: &Brigade<'_>) {
        inspect(self, bb);
    }

    fn may_leave(&self) -> bool {
        self.below_ssl
    }
}

/// Sets TCP_SAVE_SYN on every listening socket so accepted connections keep their SYN.
pub(crate) fn save_syn_on_listeners(s: Server<'_>) -> usize {
    let mut n = 0;
    for fd in ffi::listeners().filter_map(|l| l.fd()) {
        match ffi::os::save_syn(fd) {
            Ok(()) => n += 1,
            Err(e) => s.log(
                Level::Warning,
                &format!("mod_ja4: TCP_SAVE_SYN on a listener failed: {e}"),
            ),
        }
    }
    n
}

fn read_saved_syn(csd: Socket<'_>) -> Option<SynFacts> {
    let mut buf = [0u8; 512];
    let syn = ffi::os::saved_syn(csd.fd()?, &mut buf)?;
    let pkt = decode::decode(LinkType::Raw, syn).ok()??;
    pkt.is_syn().then(|| SynFacts::from_packet(0, &pkt))
}

/// pre_connection: read the saved SYN, create the connection state, add the raw filter.
/// True when the connection is ours (the engine is on for it).
pub(crate) fn pre_connection(c: Connection<'_>, csd: Socket<'_>) -> bool {
    // HTTP/2 secondary connections share their primary's state.
    if c.is_secondary() {
        return false;
    }
    let h2_fingerprint = match c.base_server().and_then(|s| s.config()) {
        Some(sc) if sc.cfg.engine => sc.cfg.h2_fingerprint,
        _ => return false,
    };
    let syn = read_saved_syn(csd);
    counters::add(|s| &s.connections, 1);
    if syn.is_some() {
        counters::add(|s| &s.syns_saved, 1);
    }
    let (client, server) = (c.client(), c.local());
    let head = Head {
        conn_id: c.id(),
        client_ip: client.map(|c| c.0),
        client_port: client.map_or(0, |c| c.1),
        server_ip: server.map(|c| c.0),
        server_port: server.map_or(0, |c| c.1),
        ..Head::default()
    }
    .template();
    let state = ConnState {
        id: c.id(),
        started_us: ffi::now_us(),
        client,
        server,
        ja4t: syn.as_ref().map(ja4t).unwrap_or_default(),
        syn,
        tls: OnceLock::new(),
        h2: OnceLock::new(),
        h2_label: OnceLock::new(),
        vars: OnceLock::new(),
        mitigation: Default::default(),
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
    let state = c.set_state(state, end);
    // This hook runs after mod_ssl's: a connection mod_ssl does not encrypt carries no
    // ClientHello for us, and a plain HTTP connection pays nothing for the filter. Without
    // mod_ssl (another TLS module, or none) the filter looks at the first bytes itself.
    let tls = c.tls();
    if tls != ffi::Tls::Plain {
        c.add_raw_filter(
            FILTER_NAME,
            HelloScan {
                state,
                buf: Vec::new(),
                done: false,
                below_ssl: tls == ffi::Tls::ModSsl,
            },
        );
    }
    // HTTP/2's first frames, decrypted: above mod_ssl (the preface or nothing), or the
    // first bytes of a cleartext connection (the preface, or an `Upgrade: h2c` request).
    if !h2_fingerprint {
        return true;
    }
    c.add_filter(
        H2_FILTER_NAME,
        H2Scan {
            state,
            scanner: Some(Box::new(if tls == ffi::Tls::ModSsl {
                ja4_core::h2::Scanner::tls()
            } else {
                ja4_core::h2::Scanner::new()
            })),
        },
    );
    true
}

/// The connection has ended (its pool is cleared): report it if it never made a request.
fn end(state: ConnState) {
    // The capture may have published the connection after pre_connection looked.
    crate::capture::claim(state.client, state.syn.as_ref().map(|s| s.isn));
    if state.requests.load(Ordering::Relaxed) == 0 {
        counters::add(|s| &s.orphans, 1);
        export_orphan(&state);
    }
}

/// Looks at the bytes a read brought for a ClientHello, until it is complete (or the bytes
/// are not TLS, or [`MAX_HELLO`] is reached).
fn inspect(scan: &mut HelloScan<'_>, bb: &Brigade<'_>) {
    bb.each_data(|data| {
        let take = data.len().min(MAX_HELLO - scan.buf.len());
        scan.buf.extend_from_slice(&data[..take]);
        scan.buf.len() < MAX_HELLO
    });
    match tls::first_handshake_message(&scan.buf, MAX_HELLO) {
        Err(tls::TlsError::Incomplete) if scan.buf.len() < MAX_HELLO => {}
        Ok((tls::HANDSHAKE_CLIENT_HELLO, body)) => {
            match tls::parse_client_hello(&body) {
                Ok(ch) => {
                    let alpn: Vec<String> = ch
                        .alpn_protocols()
                        .map(|p| String::from_utf8_lossy(p).into_owned())
                        .collect();
                    let _ = scan.state.tls.set(TlsFacts {
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

fn finish(scan: &mut HelloScan<'_>) {
    scan.done = true;
    scan.buf = Vec::new();
}

/// Queues an orphan record for a connection that ended without a request.
pub(crate) fn export_orphan(st: &ConnState) {
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
