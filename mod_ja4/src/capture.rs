//! The parent's libpcap capture thread and the shared connection table it fills.
//!
//! Owns: the table mapping (anonymous shared memory made by the parent before children fork),
//! the capture thread's lifecycle (started only on the real post_config pass, created with
//! signals blocked as a plain pthread so no Rust thread-local destructor pins the DSO, stopped by
//! `pcap_breakloop` and joined in a pconf cleanup before httpd unloads the module), publishing
//! what each connection's handshake showed (JA4T, JA4TS, JA4L, JA4, JA4S), and orphan records for
//! connections httpd never accepted (SYN scans, half-open handshakes).
//! Never: runs after its pconf is cleared, takes a lock a child could need, or blocks on the
//! sidecar (orphan batches are sent without waiting; failures are counted).

use std::ffi::{c_int, c_void};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, AtomicUsize, Ordering};

use apr_sys as sys;
use ja4_core::batch::{Record, RecordKind, SynRecord, SOURCE_CAPTURE};
use ja4_core::decode::{self, LinkType};
use ja4_core::directives::ModuleConfig;
use ja4_core::fingerprint::ja4t;
use ja4_core::flow::{ConnectionRecord, FlowConfig, FlowTable, Progress};
use ja4_core::reassembly::Limits;
use ja4_core::shared::{self, ConnKey, ConnTable, Entry};

use crate::ffi::{self, guard};
use crate::{counters, export};

static TABLE: AtomicPtr<AtomicU64> = AtomicPtr::new(std::ptr::null_mut());
static TABLE_WORDS: AtomicUsize = AtomicUsize::new(0);
/// The running capture of this generation (parent), or the inherited one (child, until
/// child_init drops it).
static CTX: AtomicPtr<Ctx> = AtomicPtr::new(std::ptr::null_mut());
/// The process that runs the capture thread (0: none).
static CAPTURE_PID: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(0);

/// The shared table, if mapped.
pub fn table() -> Option<ConnTable<'static>> {
    let p = TABLE.load(Ordering::Acquire);
    let n = TABLE_WORDS.load(Ordering::Acquire);
    if p.is_null() || n == 0 {
        return None;
    }
    // SAFETY: p points to `n` zero-initialised AtomicU64 words mapped by map_table and unmapped
    // only after the pointer is reset (parent) or never (children).
    Some(ConnTable::new(unsafe { std::slice::from_raw_parts(p, n) }))
}

/// Maps the table for `entries` connections (parent, post_config); unmapped when `pconf` is
/// cleared, after the capture thread has stopped (cleanups run in reverse order).
///
/// # Safety
/// `pconf` is this generation's configuration pool.
pub unsafe fn map_table(pconf: *mut sys::apr_pool_t, entries: usize) -> std::io::Result<()> {
    let words = ConnTable::words_for(entries);
    let bytes = words * 8;
    // SAFETY: anonymous shared mapping, zero-filled: all-zero words are empty entries.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            bytes,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        return Err(std::io::Error::last_os_error());
    }
    TABLE.store(p as *mut AtomicU64, Ordering::Release);
    TABLE_WORDS.store(words, Ordering::Release);
    unsafe extern "C" fn unmap(data: *mut c_void) -> sys::apr_status_t {
        if TABLE
            .compare_exchange(
                data as *mut AtomicU64,
                std::ptr::null_mut(),
                Ordering::AcqRel,
                Ordering::Acquire,
            )
            .is_ok()
        {
            let words = TABLE_WORDS.swap(0, Ordering::AcqRel);
            // SAFETY: the mapping made above, of this size; nothing uses it any more.
            unsafe { libc::munmap(data, words * 8) };
        }
        0
    }
    // SAFETY: parent-only cleanup (children keep their inherited view).
    unsafe {
        sys::apr_pool_cleanup_register(pconf, p, Some(unmap), Some(sys::apr_pool_cleanup_null))
    };
    Ok(())
}

struct Ctx {
    cap: pcap::Capture<pcap::Active>,
    link: LinkType,
    stop: AtomicBool,
    flow: FlowConfig,
    orphans: export::ParentSink,
}

/// The capture thread's handle, owned by the pconf cleanup.
struct Running {
    tid: libc::pthread_t,
    ctx: *mut Ctx,
    breakloop: pcap::BreakLoop,
}

/// Ports of the `Listen` directives.
///
/// # Safety
/// Called from post_config, when `ap_listeners` is the live listener list.
unsafe fn listen_ports() -> Vec<u16> {
    let mut ports = Vec::new();
    // SAFETY: walks httpd's listener list; bind_addr is set for every listener.
    let mut l = unsafe { sys::ap_listeners };
    while !l.is_null() {
        let lr = unsafe { &*l };
        if !lr.bind_addr.is_null() {
            let p = unsafe { (*lr.bind_addr).port };
            if p != 0 && !ports.contains(&p) {
                ports.push(p);
            }
        }
        l = lr.next;
    }
    ports
}

/// BPF filter for the server ports, keeping only what the capture uses: SYN, FIN and RST
/// segments, segments without payload (the handshake's ACK), and payload that is not the bulk
/// of an established connection. Dropped in the kernel: segments starting a TLS
/// application-data record (`17 03`), HTTP responses (`HTTP`) and requests of the common
/// methods — the module sees those itself, and on a busy server they are nearly every packet.
/// Continuation segments of a large ClientHello start with arbitrary bytes and pass.
pub fn bpf(ports: &[u16]) -> String {
    let list: Vec<String> = ports.iter().map(|p| format!("port {p}")).collect();
    let hdr = "((tcp[12:1] & 0xf0) >> 2)";
    let empty = format!(
        "(ip and ip[2:2] - ((ip[0] & 0x0f) << 2) - {hdr} = 0) or (ip6 and ip6[4:2] - {hdr} = 0)"
    );
    let bulk = [
        format!("tcp[{hdr}:2] = 0x1703"),
        format!("tcp[{hdr}:4] = 0x48545450"), // "HTTP"
        format!("tcp[{hdr}:4] = 0x47455420"), // "GET "
        format!("tcp[{hdr}:4] = 0x504f5354"), // "POST"
        format!("tcp[{hdr}:4] = 0x48454144"), // "HEAD"
    ];
    format!(
        "tcp and ({}) and (tcp[tcpflags] & (tcp-syn|tcp-fin|tcp-rst) != 0 or {empty} or not ({}))",
        list.join(" or "),
        bulk.join(" or ")
    )
}

/// Opens the capture and starts the thread (parent, real post_config pass).
///
/// # Safety
/// `s` and `pconf` are the main server and configuration pool of this generation.
pub unsafe fn start(
    s: *mut sys::server_rec,
    pconf: *mut sys::apr_pool_t,
    cfg: &ModuleConfig,
) -> Result<(), String> {
    let ports = if cfg.capture_ports.is_empty() {
        unsafe { listen_ports() }
    } else {
        cfg.capture_ports.clone()
    };
    if ports.is_empty() {
        return Err("no ports to capture".into());
    }
    let filter = bpf(&ports);
    let cap = pcap::Capture::from_device(cfg.capture_interface.as_str())
        .and_then(|c| {
            c.immediate_mode(true)
                .snaplen(65_535)
                .timeout(100)
                .buffer_size(8 << 20)
                .open()
        })
        .map_err(|e| format!("cannot open {} for capture: {e}", cfg.capture_interface))?;
    let mut cap = cap;
    cap.filter(&filter, true)
        .map_err(|e| format!("capture filter '{filter}': {e}"))?;
    // Non-blocking reads plus our own poll with a timeout: with TPACKET_V3 libpcap's read
    // timeout does not wake an idle capture, and the thread must tick (expiry, flushes, stop).
    let mut cap = cap
        .setnonblock()
        .map_err(|e| format!("capture non-blocking mode: {e}"))?;
    let dlt = cap.get_datalink().0;
    let link = LinkType::from_dlt(dlt)
        .ok_or_else(|| format!("unsupported link type {dlt} on {}", cfg.capture_interface))?;
    let entries = cfg.shared_entries as usize;
    let flow = FlowConfig {
        max_connections: entries,
        idle_timeout_us: 60 * 1_000_000,
        closed_linger_us: 5 * 1_000_000,
        max_requests_per_connection: 0,
        max_handshake: 16 * 1024,
        max_http_head: 0,
        reassembly: Limits {
            max_buffer: 16 * 1024,
            max_pending: 16 * 1024,
        },
        parse_http: false,
    };
    let breakloop = cap.breakloop_handle();
    let ctx = Box::into_raw(Box::new(Ctx {
        cap,
        link,
        stop: AtomicBool::new(false),
        flow,
        orphans: export::ParentSink::new(cfg),
    }));
    let mut tid: libc::pthread_t = 0;
    // SAFETY: the thread gets signals blocked (inherited mask), owns nothing but `ctx`, and is
    // joined in the cleanup registered below before `ctx` is freed.
    let rc = unsafe {
        let mut all: libc::sigset_t = std::mem::zeroed();
        let mut old: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut all);
        libc::pthread_sigmask(libc::SIG_BLOCK, &all, &mut old);
        let rc = libc::pthread_create(&mut tid, std::ptr::null(), run, ctx as *mut c_void);
        libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut());
        rc
    };
    if rc != 0 {
        // SAFETY: the thread was not created; we still own ctx.
        drop(unsafe { Box::from_raw(ctx) });
        return Err(format!(
            "cannot create the capture thread: {}",
            std::io::Error::from_raw_os_error(rc)
        ));
    }
    CTX.store(ctx, Ordering::Release);
    // SAFETY: getpid has no preconditions.
    CAPTURE_PID.store(unsafe { libc::getpid() }, Ordering::Release);
    // SAFETY: the pool owns the Running value; `stop_capture` runs before the DSO is unloaded
    // (httpd registered the unload earlier, and cleanups run in reverse order).
    unsafe {
        let running = Box::into_raw(Box::new(Running {
            tid,
            ctx,
            breakloop,
        }));
        sys::apr_pool_cleanup_register(
            pconf,
            running as *const c_void,
            Some(stop_capture),
            Some(sys::apr_pool_cleanup_null),
        );
    }
    ffi::log_server(
        s,
        ffi::LOG_INFO,
        0,
        &format!(
            "mod_ja4: capturing '{filter}' on {} ({} shared entries)",
            cfg.capture_interface, entries
        ),
    );
    Ok(())
}

unsafe extern "C" fn stop_capture(data: *mut c_void) -> sys::apr_status_t {
    guard(0, || {
        // SAFETY: registered once with a Box<Running>.
        let running = unsafe { Box::from_raw(data as *mut Running) };
        // SAFETY: ctx stays valid until we free it after the join.
        unsafe { (*running.ctx).stop.store(true, Ordering::Release) };
        running.breakloop.breakloop();
        // SAFETY: joins the thread created in start(); it exits within one read timeout.
        unsafe { libc::pthread_join(running.tid, std::ptr::null_mut()) };
        let _ = CTX.compare_exchange(
            running.ctx,
            std::ptr::null_mut(),
            Ordering::AcqRel,
            Ordering::Acquire,
        );
        // SAFETY: the thread is gone; we own ctx again (closes the capture).
        drop(unsafe { Box::from_raw(running.ctx) });
        0
    })
}

/// Child side: release the capture handle inherited from the parent (fd and ring). In
/// single-process mode (`httpd -X`) the "child" is the capturing process itself: keep it.
pub fn release_in_child() {
    // SAFETY: getpid has no preconditions.
    if CAPTURE_PID.load(Ordering::Acquire) == unsafe { libc::getpid() } {
        return;
    }
    let ctx = CTX.swap(std::ptr::null_mut(), Ordering::AcqRel);
    if !ctx.is_null() {
        // SAFETY: in the child the capture thread does not exist; this is our private copy of
        // the parent's context. Dropping it closes the child's fd and unmaps its ring.
        drop(unsafe { Box::from_raw(ctx) });
    }
}

extern "C" fn run(arg: *mut c_void) -> *mut c_void {
    guard((), || {
        // SAFETY: `arg` is the Ctx created in start(), alive until after our join.
        let ctx = unsafe { &mut *(arg as *mut Ctx) };
        let mut flows = FlowTable::new(ctx.flow);
        let table = table();
        let (mut syns, mut hellos) = (0u64, 0u64);
        let mut last_expiry = std::time::Instant::now();
        while !ctx.stop.load(Ordering::Acquire) {
            match ctx.cap.next_packet() {
                Ok(p) => {
                    counters::add(|s| &s.capture_packets, 1);
                    #[allow(clippy::useless_conversion)]
                    let ts =
                        i64::from(p.header.ts.tv_sec) * 1_000_000 + i64::from(p.header.ts.tv_usec);
                    match decode::decode(ctx.link, p.data) {
                        Ok(Some(tcp)) => {
                            let orphans = &mut ctx.orphans;
                            flows.process_observed(
                                ts,
                                &tcp,
                                &mut |rec| orphan(&table, orphans, rec),
                                &mut |pr| publish(&table, pr),
                            );
                            let st = flows.stats();
                            counters::add(|s| &s.capture_syns, st.syns - syns);
                            counters::add(|s| &s.capture_hellos, st.client_hellos - hellos);
                            (syns, hellos) = (st.syns, st.client_hellos);
                        }
                        Ok(None) => {}
                        Err(_) => counters::add(|s| &s.capture_decode_errors, 1),
                    }
                }
                Err(pcap::Error::TimeoutExpired) => {
                    // Nothing buffered: wait for the descriptor, at most 200 ms.
                    let mut pfd = libc::pollfd {
                        fd: ctx.cap.as_raw_fd(),
                        events: libc::POLLIN,
                        revents: 0,
                    };
                    // SAFETY: one valid pollfd for the capture's selectable descriptor.
                    unsafe { libc::poll(&mut pfd, 1, 200) };
                }
                Err(pcap::Error::NoMorePackets) => break,
                Err(_) => {
                    counters::add(|s| &s.capture_errors, 1);
                    std::thread::sleep(std::time::Duration::from_millis(50));
                }
            }
            if last_expiry.elapsed() >= std::time::Duration::from_secs(1) {
                last_expiry = std::time::Instant::now();
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_micros() as i64);
                let orphans = &mut ctx.orphans;
                flows.expire_idle(now, &mut |rec| orphan(&table, orphans, rec));
            }
            ctx.orphans.tick();
        }
    });
    std::ptr::null_mut()
}

fn key(client: &ja4_core::flow::Endpoint, isn: u32) -> ConnKey {
    ConnKey {
        ip: client.ip,
        port: client.port,
        isn,
    }
}

fn publish(table: &Option<ConnTable<'_>>, pr: &Progress<'_>) {
    let (Some(t), Some(syn)) = (table, pr.syn) else {
        return;
    };
    let mut flags = shared::HAS_SYN;
    let mut e = Entry {
        syn_ts_us: syn.ts_us.max(1) as u64,
        client_ttl: syn.outer_ttl,
        ja4t: ja4t(syn),
        ..Default::default()
    };
    if let Some(sa) = pr.syn_ack {
        flags |= shared::HAS_SYNACK;
        e.server_ttl = sa.outer_ttl;
        e.ja4ts = ja4t(sa);
    }
    if let Some(l) = pr.ja4l() {
        flags |= shared::HAS_ACK;
        e.ja4l_client_us = u32::try_from(l.client_us).unwrap_or(u32::MAX);
        e.ja4l_server_us = u32::try_from(l.server_us).unwrap_or(u32::MAX);
    }
    if let Some(j) = pr.ja4 {
        flags |= shared::HAS_HELLO;
        e.ja4 = j.ja4.clone();
    }
    if let Some(s) = pr.ja4s {
        flags |= shared::HAS_SERVER_HELLO;
        e.ja4s = s.ja4s.clone();
    }
    if pr.closed {
        flags |= shared::CLOSED;
    }
    e.flags = flags;
    if t.publish(&key(&pr.client, syn.isn), &e) {
        counters::add(|s| &s.shm_replaced, 1);
    }
}

/// A connection left the capture: report it if httpd never accepted it.
fn orphan(table: &Option<ConnTable<'_>>, sink: &mut export::ParentSink, rec: ConnectionRecord) {
    let Some(syn) = rec.facts.syn.as_ref() else {
        return;
    };
    let k = ConnKey {
        ip: rec.src,
        port: rec.src_port,
        isn: syn.isn,
    };
    if table.as_ref().is_some_and(|t| t.is_claimed(&k)) {
        return;
    }
    counters::add(|s| &s.capture_orphans, 1);
    if !sink.enabled() {
        return;
    }
    let ja4 = rec.ja4.as_ref();
    let l = rec.ja4l.as_ref();
    fn s(v: Option<&String>) -> &[u8] {
        v.map_or(&b""[..], |x| x.as_bytes())
    }
    let r = Record {
        kind: RecordKind::Orphan,
        ts_us: rec.facts.first_seen_us,
        client_ip: Some(rec.src),
        client_port: rec.src_port,
        server_ip: Some(rec.dst),
        server_port: rec.dst_port,
        duration_us: u64::try_from(rec.facts.last_seen_us - rec.facts.first_seen_us).unwrap_or(0),
        tls_sni: s(rec.tls_server_name.as_ref()),
        ja4: s(ja4.map(|j| &j.ja4)),
        ja4_r: s(ja4.map(|j| &j.ja4_r)),
        ja4_o: s(ja4.map(|j| &j.ja4_o)),
        ja4_ro: s(ja4.map(|j| &j.ja4_ro)),
        ja3: s(rec.ja3.as_ref().map(|j| &j.ja3)),
        ja3_r: s(rec.ja3.as_ref().map(|j| &j.ja3_r)),
        ja4t: s(rec.ja4t.as_ref()),
        ja4ts: s(rec.ja4ts.as_ref()),
        ja4l_c: s(l.map(|l| &l.ja4l_c)),
        ja4l_s: s(l.map(|l| &l.ja4l_s)),
        ja4s: s(rec.ja4s.as_ref().map(|j| &j.ja4s)),
        syn: Some(SynRecord {
            ttl: syn.ttl,
            window: syn.window,
            mss: syn.mss,
            window_scale: syn.window_scale,
            options: syn.options.clone(),
            ip_id: syn.ip_id,
            dont_fragment: syn.dont_fragment,
        }),
        sources: SOURCE_CAPTURE,
        ..Record {
            vhost: &b""[..],
            ..Default::default()
        }
    };
    sink.push(|buf| r.encode(buf));
}

/// What the capture knows about the connection with this client address and SYN ISN.
pub fn lookup(client: Option<(std::net::IpAddr, u16)>, isn: Option<u32>) -> Option<Entry> {
    let ((ip, port), isn) = (client?, isn?);
    table()?.lookup(&ConnKey { ip, port, isn })
}

/// Tells the capture this connection was accepted (no orphan record from the capture).
pub fn claim(client: Option<(std::net::IpAddr, u16)>, isn: Option<u32>) {
    if let (Some((ip, port)), Some(isn), Some(t)) = (client, isn, table()) {
        t.claim(&ConnKey { ip, port, isn });
    }
}

/// Whether this process may start a capture (the parent, after the dry-run pass).
///
/// # Safety
/// `s` is the main server.
pub unsafe fn real_pass(s: *mut sys::server_rec) -> bool {
    const KEY: &std::ffi::CStr = c"mod_ja4_post_config_pass";
    // SAFETY: process pool userdata survives restarts; set on the first pass.
    unsafe {
        let pool = (*(*s).process).pool;
        let mut data: *mut c_void = std::ptr::null_mut();
        sys::apr_pool_userdata_get(&mut data, KEY.as_ptr(), pool);
        if data.is_null() {
            sys::apr_pool_userdata_set(1 as *const c_void, KEY.as_ptr(), None, pool);
            return false;
        }
    }
    true
}

#[allow(dead_code)]
const _: c_int = 0;
