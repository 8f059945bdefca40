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

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use ja4_core::batch::{Record, RecordKind, SynRecord, SOURCE_CAPTURE};
use ja4_core::decode::{self, LinkType};
use ja4_core::directives::ModuleConfig;
use ja4_core::fingerprint::ja4t;
use ja4_core::flow::{ConnectionRecord, FlowConfig, FlowTable, Progress};
use ja4_core::reassembly::Limits;
use ja4_core::shared::{self, ConnKey, ConnTable, Entry};

use crate::ffi::os::{PlainThread, SharedMapping};
use crate::ffi::{self, Level, Pool, Server};
use crate::{counters, export};

static TABLE: SharedMapping<AtomicU64> = SharedMapping::new();
/// The running capture of this generation (parent), or the copy a forked child inherited
/// (until child_init drops it).
static RUNNING: Mutex<Option<Running>> = Mutex::new(None);

/// The shared table, if mapped.
#[inline]
pub(crate) fn table() -> Option<ConnTable<'static>> {
    TABLE.get().filter(|w| !w.is_empty()).map(ConnTable::new)
}

/// Maps the table for `entries` connections (parent, post_config); unmapped when `pconf` is
/// cleared, after the capture thread has stopped (cleanups run in reverse order).
pub(crate) fn map_table(pconf: Pool<'_>, entries: usize) -> std::io::Result<()> {
    TABLE.map(pconf, ConnTable::words_for(entries))
}

struct Ctx {
    cap: pcap::Capture<pcap::Active>,
    link: LinkType,
    stop: Arc<AtomicBool>,
    flow: FlowConfig,
    orphans: export::ParentSink,
}

/// The capture thread's handle.
struct Running {
    thread: PlainThread<Ctx>,
    stop: Arc<AtomicBool>,
    breakloop: pcap::BreakLoop,
}

/// Ports of the `Listen` directives.
fn listen_ports() -> Vec<u16> {
    let mut ports = Vec::new();
    for p in ffi::listeners().map(|l| l.port()) {
        if p != 0 && !ports.contains(&p) {
            ports.push(p);
        }
    }
    ports
}

/// BPF filter for the server ports, keeping only what the capture uses: SYN, FIN and RST
/// segments, segments without payload (the handshake's ACK), and payload that is not the bulk
/// of an established connection. Dropped in the kernel: segments starting a TLS
/// application-data record (`17 03`), HTTP responses (`HTTP`) and requests of the common
/// methods — the module sees those itself, and on a busy server they are nearly every packet.
/// Continuation segments of a large ClientHello start with arbitrary bytes and pass.
pub(crate) fn bpf(ports: &[u16]) -> String {
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

/// Opens the capture and starts the thread (parent, real post_config pass); it is stopped
/// and joined when `pconf` is cleared.
pub(crate) fn start(s: Server<'_>, pconf: Pool<'_>, cfg: &ModuleConfig) -> Result<(), String> {
    let ports = if cfg.capture_ports.is_empty() {
        listen_ports()
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
    let stop = Arc::new(AtomicBool::new(false));
    let ctx = Ctx {
        cap,
        link,
        stop: stop.clone(),
        flow,
        orphans: export::ParentSink::new(cfg),
    };
    let thread = PlainThread::spawn(ctx, run)
        .map_err(|e| format!("cannot create the capture thread: {e}"))?;
    let previous = running().replace(Running {
        thread,
        stop,
        breakloop,
    });
    if let Some(previous) = previous {
        stop_capture(previous);
    }
    pconf.on_clear(|| {
        if let Some(r) = running().take() {
            stop_capture(r);
        }
    });
    s.log(
        Level::Info,
        &format!(
            "mod_ja4: capturing '{filter}' on {} ({} shared entries)",
            cfg.capture_interface, entries
        ),
    );
    Ok(())
}

fn running() -> std::sync::MutexGuard<'static, Option<Running>> {
    RUNNING.lock().unwrap_or_else(|p| p.into_inner())
}

/// Stops the thread (within one read timeout) and closes the capture.
fn stop_capture(r: Running) {
    r.stop.store(true, Ordering::Release);
    r.breakloop.breakloop();
    drop(r.thread.join());
}

/// Child side: release the capture handle inherited from the parent (fd and ring). In
/// single-process mode (`httpd -X`) the "child" is the capturing process itself: keep it.
pub(crate) fn release_in_child() {
    let inherited = running().take_if(|r| !r.thread.is_ours());
    if let Some(r) = inherited {
        // The thread does not exist here: this takes our private copy of the parent's
        // context, whose drop closes the child's fd and unmaps its ring.
        drop(r.thread.join());
    }
}

/// The capture thread: reads packets until told to stop.
fn run(ctx: &mut Ctx) {
    {
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
                    ffi::os::wait_readable(&ctx.cap, 200);
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
    }
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
pub(crate) fn lookup(client: Option<(std::net::IpAddr, u16)>, isn: Option<u32>) -> Option<Entry> {
    let ((ip, port), isn) = (client?, isn?);
    table()?.lookup(&ConnKey { ip, port, isn })
}

/// Tells the capture this connection was accepted (no orphan record from the capture).
pub(crate) fn claim(client: Option<(std::net::IpAddr, u16)>, isn: Option<u32>) {
    if let (Some((ip, port)), Some(isn), Some(t)) = (client, isn, table()) {
        t.claim(&ConnKey { ip, port, isn });
    }
}
