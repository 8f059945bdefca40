//! Per-connection state keyed by the TCP 4-tuple, and the records it produces.
//!
//! Owns: the connection table (bounded: least-recently-used eviction when full, idle timeout,
//! both counted), who is client and who is server (SYN, SYN-ACK, or what each side sends), the
//! handshake timing for JA4L, SYN facts for JA4T/JA4TS, and driving each direction's bytes into
//! the TLS or HTTP parser. A connection leaves the table as a [`ConnectionRecord`] (eviction,
//! port reuse or [`FlowTable::drain`]), never silently.
//! Never: does I/O, reads a clock (time comes with each packet), or grows past its limits.

use std::net::IpAddr;

use hashlink::LinkedHashMap;
use serde::Serialize;

use crate::decode::{flags, TcpPacket};
use crate::fingerprint::{ja4t, Ja3, Ja4Set, Ja4hSet, Ja4l, Ja4sSet};
use crate::http::{self, RequestStream, Step};
use crate::reassembly::{Limits, Reassembler};
use crate::tcp::{SynFacts, SynSummary};
use crate::tls::{self, ClientHelloFacts, TlsError};

/// Limits and timeouts of a [`FlowTable`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlowConfig {
    /// Connections tracked at once; the least recently active is evicted beyond this.
    pub max_connections: usize,
    /// A connection silent for this long (capture time) is finished.
    pub idle_timeout_us: i64,
    /// Requests fingerprinted per connection; later ones are counted, not listed.
    pub max_requests_per_connection: usize,
    /// Largest hello message accepted.
    pub max_handshake: usize,
    /// Largest HTTP request head accepted.
    pub max_http_head: usize,
    /// Per-direction reassembly limits.
    pub reassembly: Limits,
    /// Follow plaintext HTTP requests (JA4H). The live capture leaves this to httpd.
    pub parse_http: bool,
    /// A connection that saw FIN or RST is finished after this much silence.
    pub closed_linger_us: i64,
}

impl Default for FlowConfig {
    fn default() -> Self {
        FlowConfig {
            max_connections: 65_536,
            idle_timeout_us: 300 * 1_000_000,
            max_requests_per_connection: 1_000,
            max_handshake: tls::DEFAULT_MAX_HANDSHAKE,
            max_http_head: http::DEFAULT_MAX_HEAD,
            reassembly: Limits::default(),
            parse_http: true,
            closed_linger_us: 300 * 1_000_000,
        }
    }
}

/// What changed about a connection, as [`FlowTable::process_observed`] reports it.
#[derive(Debug)]
pub struct Progress<'a> {
    /// The end that sent the SYN (or the ClientHello).
    pub client: Endpoint,
    /// The other end.
    pub server: Endpoint,
    /// The client's SYN (its ISN identifies the connection).
    pub syn: Option<&'a SynFacts>,
    /// The server's SYN-ACK.
    pub syn_ack: Option<&'a SynFacts>,
    /// Capture time of the client's first ACK after the SYN-ACK.
    pub ack_us: Option<i64>,
    /// JA4 set, once the ClientHello was parsed.
    pub ja4: Option<&'a Ja4Set>,
    /// JA4S set, once the ServerHello was parsed.
    pub ja4s: Option<&'a Ja4sSet>,
    /// FIN or RST was seen.
    pub closed: bool,
}

impl Progress<'_> {
    /// JA4L (client, server) once the handshake is complete.
    pub fn ja4l(&self) -> Option<Ja4l> {
        match (self.syn, self.syn_ack, self.ack_us) {
            (Some(s), Some(a), Some(ack)) => {
                Some(Ja4l::new(s.ts_us, a.ts_us, ack, s.outer_ttl, a.outer_ttl))
            }
            _ => None,
        }
    }
}

/// Counters of everything the table saw, dropped or evicted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct FlowStats {
    /// TCP segments processed.
    pub segments: u64,
    /// Connections created.
    pub connections: u64,
    /// Connections evicted because the table was full.
    pub evicted_capacity: u64,
    /// Connections evicted after their idle timeout.
    pub evicted_idle: u64,
    /// SYNs with a new ISN on a tracked 4-tuple (old connection replaced).
    pub port_reuse: u64,
    /// Client SYNs seen.
    pub syns: u64,
    /// ClientHellos parsed.
    pub client_hellos: u64,
    /// ServerHellos parsed.
    pub server_hellos: u64,
    /// TLS streams that could not be parsed.
    pub tls_errors: u64,
    /// SSLv2-format hellos (not fingerprinted).
    pub sslv2_hellos: u64,
    /// HTTP/1.x request heads parsed.
    pub http_requests: u64,
    /// Requests beyond the per-connection limit (counted, not listed).
    pub http_requests_unlisted: u64,
    /// HTTP streams that could not be followed.
    pub http_errors: u64,
    /// Stream bytes dropped by the reassembly limits.
    pub reassembly_dropped_bytes: u64,
}

/// A TCP endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Endpoint {
    /// Address.
    pub ip: IpAddr,
    /// TCP port.
    pub port: u16,
}

/// Direction-independent connection key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct FlowKey(Endpoint, Endpoint);

impl FlowKey {
    fn new(a: Endpoint, b: Endpoint) -> Self {
        if a <= b {
            FlowKey(a, b)
        } else {
            FlowKey(b, a)
        }
    }
}

/// What the sidecar and detector get for one connection.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConnectionRecord {
    /// Ordinal of the connection in the order first seen (0-based).
    pub stream: u64,
    /// Always `tcp` for now.
    pub transport: &'static str,
    /// Client address.
    pub src: IpAddr,
    /// Client port.
    pub src_port: u16,
    /// Server address.
    pub dst: IpAddr,
    /// Server port.
    pub dst_port: u16,
    /// SNI host name of the ClientHello.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_server_name: Option<String>,
    /// JA4 set, once the ClientHello was parsed.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub ja4: Option<Ja4Set>,
    /// JA3, once the ClientHello was parsed.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub ja3: Option<Ja3>,
    /// JA4S set, once the ServerHello was parsed.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub ja4s: Option<Ja4sSet>,
    /// JA4T of the client's SYN.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ja4t: Option<String>,
    /// JA4TS: the server's SYN-ACK in JA4T form.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ja4ts: Option<String>,
    /// JA4L, once the handshake completed.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub ja4l: Option<Ja4l>,
    /// JA4H of each request, in order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ja4h: Vec<String>,
    /// Raw JA4H of each request.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ja4h_r: Vec<String>,
    /// Wire-order JA4H of each request.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ja4h_o: Vec<String>,
    /// Raw wire-order JA4H of each request.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ja4h_ro: Vec<String>,
    /// Parsed facts for the detector; not part of the fingerprint output.
    #[serde(skip)]
    pub facts: ConnectionFacts,
}

/// The parsed facts behind the fingerprints.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ConnectionFacts {
    /// Capture time of the first packet, microseconds.
    pub first_seen_us: i64,
    /// Capture time of the last packet, microseconds.
    pub last_seen_us: i64,
    /// The ClientHello's parsed lists.
    pub client_hello: Option<ClientHelloFacts>,
    /// The ServerHello's parsed fields.
    pub server_hello: Option<ServerHelloFacts>,
    /// The client's SYN.
    pub syn: Option<SynSummary>,
    /// The server's SYN-ACK.
    pub syn_ack: Option<SynSummary>,
    /// Requests beyond the per-connection limit (not listed in `ja4h`).
    pub http_requests_unlisted: u64,
    /// Packets of the connection (both directions).
    pub packets: u64,
    /// TCP payload bytes from the client.
    pub payload_bytes_client: u64,
    /// TCP payload bytes from the server.
    pub payload_bytes_server: u64,
    /// FIN or RST was seen.
    pub closed: bool,
}

/// Parsed facts of a ServerHello (GREASE kept, wire order).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServerHelloFacts {
    /// Selected version (supported_versions, else the legacy field).
    pub version: u16,
    /// Selected cipher suite.
    pub cipher: u16,
    /// Selected ALPN protocol.
    pub alpn: Option<String>,
    /// Extension types in wire order.
    pub extensions: Vec<u16>,
    /// The message was a HelloRetryRequest.
    pub hello_retry_request: bool,
}

impl ConnectionRecord {
    /// Whether the connection produced any fingerprint at all.
    pub fn has_fingerprint(&self) -> bool {
        self.ja4.is_some()
            || self.ja4s.is_some()
            || self.ja4t.is_some()
            || self.ja4l.is_some()
            || !self.ja4h.is_empty()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    A = 0,
    B = 1,
}

impl Side {
    fn other(self) -> Side {
        match self {
            Side::A => Side::B,
            Side::B => Side::A,
        }
    }
}

#[derive(Debug)]
enum DirState {
    /// Waiting for the first bytes to tell TLS from HTTP from anything else.
    Sniff,
    Tls,
    Http(RequestStream),
    /// Nothing more to learn from this direction.
    Done,
}

#[derive(Debug)]
struct Direction {
    reasm: Reassembler,
    state: DirState,
}

#[derive(Debug)]
struct Conn {
    stream: u64,
    a: Endpoint,
    b: Endpoint,
    client: Option<Side>,
    syn: Option<SynFacts>,
    syn_ack: Option<SynFacts>,
    ack_us: Option<i64>,
    dirs: [Direction; 2],
    ja4: Option<Ja4Set>,
    ja3: Option<Ja3>,
    sni: Option<String>,
    ja4s: Option<Ja4sSet>,
    http: Vec<Ja4hSet>,
    facts: ConnectionFacts,
}

impl Conn {
    fn new(stream: u64, a: Endpoint, b: Endpoint, ts: i64, limits: Limits) -> Self {
        let dir = || Direction {
            reasm: Reassembler::new(limits),
            state: DirState::Sniff,
        };
        Conn {
            stream,
            a,
            b,
            client: None,
            syn: None,
            syn_ack: None,
            ack_us: None,
            dirs: [dir(), dir()],
            ja4: None,
            ja3: None,
            sni: None,
            ja4s: None,
            http: Vec::new(),
            facts: ConnectionFacts {
                first_seen_us: ts,
                last_seen_us: ts,
                ..Default::default()
            },
        }
    }

    /// Changes whenever the connection learns something a shared-table reader cares about.
    fn progress_mark(&self) -> (bool, bool, bool, bool, bool, bool) {
        (
            self.syn.is_some(),
            self.syn_ack.is_some(),
            self.ack_us.is_some(),
            self.ja4.is_some(),
            self.ja4s.is_some(),
            self.facts.closed,
        )
    }

    fn endpoint(&self, side: Side) -> Endpoint {
        match side {
            Side::A => self.a,
            Side::B => self.b,
        }
    }

    fn into_record(self) -> ConnectionRecord {
        let client = self.client.unwrap_or(Side::A);
        let (c, s) = (self.endpoint(client), self.endpoint(client.other()));
        let ja4l = match (&self.syn, &self.syn_ack, self.ack_us) {
            (Some(syn), Some(sa), Some(ack)) => Some(Ja4l::new(
                syn.ts_us,
                sa.ts_us,
                ack,
                syn.outer_ttl,
                sa.outer_ttl,
            )),
            _ => None,
        };
        let mut facts = self.facts;
        facts.syn = self.syn.as_ref().map(SynFacts::summary);
        facts.syn_ack = self.syn_ack.as_ref().map(SynFacts::summary);
        let mut rec = ConnectionRecord {
            stream: self.stream,
            transport: "tcp",
            src: c.ip,
            src_port: c.port,
            dst: s.ip,
            dst_port: s.port,
            tls_server_name: self.sni,
            ja4: self.ja4,
            ja3: self.ja3,
            ja4s: self.ja4s,
            ja4t: self.syn.as_ref().map(ja4t),
            ja4ts: self.syn_ack.as_ref().map(ja4t),
            ja4l,
            ja4h: Vec::with_capacity(self.http.len()),
            ja4h_r: Vec::with_capacity(self.http.len()),
            ja4h_o: Vec::with_capacity(self.http.len()),
            ja4h_ro: Vec::with_capacity(self.http.len()),
            facts,
        };
        for h in self.http {
            rec.ja4h.push(h.ja4h);
            rec.ja4h_r.push(h.ja4h_r);
            rec.ja4h_o.push(h.ja4h_o);
            rec.ja4h_ro.push(h.ja4h_ro);
        }
        rec
    }
}

/// The connection table.
pub struct FlowTable {
    cfg: FlowConfig,
    conns: LinkedHashMap<FlowKey, Conn>,
    next_stream: u64,
    stats: FlowStats,
}

impl FlowTable {
    /// An empty table with these limits.
    pub fn new(cfg: FlowConfig) -> Self {
        FlowTable {
            cfg,
            conns: LinkedHashMap::new(),
            next_stream: 0,
            stats: FlowStats::default(),
        }
    }

    /// Counters since the table was created.
    pub fn stats(&self) -> &FlowStats {
        &self.stats
    }

    /// Connections currently tracked.
    pub fn len(&self) -> usize {
        self.conns.len()
    }

    /// No connection is tracked.
    pub fn is_empty(&self) -> bool {
        self.conns.is_empty()
    }

    /// Feeds one TCP segment captured at `ts_us`. Connections that leave the table (idle,
    /// evicted, replaced by port reuse) are handed to `emit`.
    pub fn process(
        &mut self,
        ts_us: i64,
        pkt: &TcpPacket<'_>,
        emit: &mut dyn FnMut(ConnectionRecord),
    ) {
        self.process_observed(ts_us, pkt, emit, &mut |_| {});
    }

    /// Like [`FlowTable::process`], and calls `observe` whenever the packet moved its connection
    /// forward (SYN, SYN-ACK, handshake ACK, ClientHello, ServerHello, FIN/RST).
    pub fn process_observed(
        &mut self,
        ts_us: i64,
        pkt: &TcpPacket<'_>,
        emit: &mut dyn FnMut(ConnectionRecord),
        observe: &mut dyn FnMut(&Progress<'_>),
    ) {
        self.stats.segments += 1;
        self.expire(ts_us, emit);
        let src = Endpoint {
            ip: pkt.src,
            port: pkt.src_port,
        };
        let dst = Endpoint {
            ip: pkt.dst,
            port: pkt.dst_port,
        };
        let key = FlowKey::new(src, dst);

        // A new SYN on a tuple in use starts a new connection unless it retransmits the first.
        if pkt.is_syn() {
            let reuse = match self.conns.get(&key) {
                Some(c) => c.syn.map_or(c.facts.packets > 0, |s| s.isn != pkt.seq),
                None => false,
            };
            if reuse {
                if let Some(old) = self.conns.remove(&key) {
                    self.stats.port_reuse += 1;
                    emit(old.into_record());
                }
            }
        }

        if !self.conns.contains_key(&key) {
            if self.conns.len() >= self.cfg.max_connections.max(1) {
                if let Some((_, old)) = self.conns.pop_front() {
                    self.stats.evicted_capacity += 1;
                    emit(old.into_record());
                }
            }
            let conn = Conn::new(self.next_stream, src, dst, ts_us, self.cfg.reassembly);
            self.next_stream += 1;
            self.stats.connections += 1;
            self.conns.insert(key, conn);
        }
        let Some(conn) = self.conns.to_back(&key) else {
            return;
        };
        let before = conn.progress_mark();
        update(conn, &self.cfg, &mut self.stats, ts_us, pkt, src);
        if conn.progress_mark() != before {
            let client = conn.client.unwrap_or(Side::A);
            observe(&Progress {
                client: conn.endpoint(client),
                server: conn.endpoint(client.other()),
                syn: conn.syn.as_ref(),
                syn_ack: conn.syn_ack.as_ref(),
                ack_us: conn.ack_us,
                ja4: conn.ja4.as_ref(),
                ja4s: conn.ja4s.as_ref(),
                closed: conn.facts.closed,
            });
        }
    }

    /// Finishes connections idle (or closed and lingering) longer than their limit at `now_us`,
    /// for a live capture that must expire connections while no packets arrive.
    pub fn expire_idle(&mut self, now_us: i64, emit: &mut dyn FnMut(ConnectionRecord)) {
        self.expire(now_us, emit);
    }

    /// Finishes every connection (end of capture).
    pub fn drain(&mut self, emit: &mut dyn FnMut(ConnectionRecord)) {
        while let Some((_, c)) = self.conns.pop_front() {
            emit(c.into_record());
        }
    }

    fn expire(&mut self, now: i64, emit: &mut dyn FnMut(ConnectionRecord)) {
        while let Some((_, c)) = self.conns.front() {
            let quiet = now.saturating_sub(c.facts.last_seen_us);
            let limit = if c.facts.closed {
                self.cfg.closed_linger_us.min(self.cfg.idle_timeout_us)
            } else {
                self.cfg.idle_timeout_us
            };
            if quiet <= limit {
                break;
            }
            if let Some((_, c)) = self.conns.pop_front() {
                self.stats.evicted_idle += 1;
                emit(c.into_record());
            }
        }
    }
}

fn update(
    conn: &mut Conn,
    cfg: &FlowConfig,
    stats: &mut FlowStats,
    ts: i64,
    pkt: &TcpPacket<'_>,
    src: Endpoint,
) {
    let side = if src == conn.a { Side::A } else { Side::B };
    conn.facts.packets += 1;
    conn.facts.last_seen_us = conn.facts.last_seen_us.max(ts);

    let mut data_seq = pkt.seq;
    if pkt.is_syn() {
        data_seq = pkt.seq.wrapping_add(1);
        if conn.syn.is_none() {
            stats.syns += 1;
            conn.syn = Some(SynFacts::from_packet(ts, pkt));
            conn.client = Some(side);
        }
        conn.dirs[side as usize].reasm.set_isn(pkt.seq);
    } else if pkt.is_syn_ack() {
        data_seq = pkt.seq.wrapping_add(1);
        if conn.syn_ack.is_none() {
            conn.syn_ack = Some(SynFacts::from_packet(ts, pkt));
            conn.client.get_or_insert(side.other());
        }
        conn.dirs[side as usize].reasm.set_isn(pkt.seq);
    } else if pkt.has(flags::ACK)
        && conn.ack_us.is_none()
        && conn.syn_ack.is_some()
        && conn.syn.is_some()
        && conn.client == Some(side)
    {
        conn.ack_us = Some(ts);
    }
    if pkt.has(flags::FIN) || pkt.has(flags::RST) {
        conn.facts.closed = true;
    }
    if pkt.payload.is_empty() {
        return;
    }
    if conn.client == Some(side) {
        conn.facts.payload_bytes_client += pkt.payload.len() as u64;
    } else {
        conn.facts.payload_bytes_server += pkt.payload.len() as u64;
    }
    let dir = &mut conn.dirs[side as usize];
    if matches!(dir.state, DirState::Done) {
        return;
    }
    let pushed = dir.reasm.push(data_seq, pkt.payload);
    stats.reassembly_dropped_bytes += pushed.dropped as u64;
    if pushed.advanced {
        analyze(conn, side, cfg, stats);
    }
}

/// Runs the protocol parser of one direction over its buffered bytes.
fn analyze(conn: &mut Conn, side: Side, cfg: &FlowConfig, stats: &mut FlowStats) {
    loop {
        let dir = &mut conn.dirs[side as usize];
        let data = dir.reasm.data();
        match &mut dir.state {
            DirState::Done => return,
            DirState::Sniff => {
                let Some(&first) = data.first() else { return };
                if first == 0x16 || first & 0x80 != 0 {
                    dir.state = DirState::Tls;
                } else {
                    match http::looks_like_request(data) {
                        Ok(true) if !cfg.parse_http => finish(dir),
                        Ok(true) => {
                            dir.state = DirState::Http(RequestStream::new(cfg.max_http_head))
                        }
                        Ok(false) => finish(dir),
                        Err(_) => return,
                    }
                }
            }
            DirState::Tls => {
                let result = tls::first_handshake_message(data, cfg.max_handshake);
                match result {
                    Err(TlsError::Incomplete) => return,
                    Err(e) => {
                        if e == TlsError::SslV2 {
                            stats.sslv2_hellos += 1;
                        }
                        stats.tls_errors += 1;
                        finish(dir);
                    }
                    Ok((msg_type, body)) => {
                        // Copied so the reassembly buffer can be released (a hello is ~2 KB).
                        let body = body.into_owned();
                        finish_tls(conn, side, msg_type, &body, stats);
                        finish(&mut conn.dirs[side as usize]);
                    }
                }
            }
            DirState::Http(rs) => match rs.step(data) {
                Step::Request {
                    head,
                    consumed,
                    body,
                } => {
                    stats.http_requests += 1;
                    if conn.http.len() < cfg.max_requests_per_connection {
                        conn.http.push(Ja4hSet::compute(
                            head.method,
                            head.version,
                            head.headers.iter().copied(),
                        ));
                    } else {
                        stats.http_requests_unlisted += 1;
                        conn.facts.http_requests_unlisted += 1;
                    }
                    conn.client.get_or_insert(side);
                    let dir = &mut conn.dirs[side as usize];
                    dir.reasm.consume(consumed);
                    dir.reasm.skip(body);
                }
                Step::Consumed(n) => dir.reasm.consume(n),
                Step::Skip(n) => dir.reasm.skip(n),
                Step::NeedMore => return,
                Step::Broken(_) => {
                    stats.http_errors += 1;
                    finish(dir);
                }
            },
        }
    }
}

fn finish_tls(conn: &mut Conn, side: Side, msg_type: u8, body: &[u8], stats: &mut FlowStats) {
    match msg_type {
        tls::HANDSHAKE_CLIENT_HELLO => match tls::parse_client_hello(body) {
            Ok(ch) => {
                stats.client_hellos += 1;
                conn.client.get_or_insert(side);
                if conn.ja4.is_none() {
                    conn.ja4 = Some(Ja4Set::from_hello(&ch));
                    conn.ja3 = Some(Ja3::from_hello(&ch));
                    conn.sni = ch.sni.map(|s| String::from_utf8_lossy(s).into_owned());
                    conn.facts.client_hello = Some(ch.facts());
                }
            }
            Err(_) => stats.tls_errors += 1,
        },
        tls::HANDSHAKE_SERVER_HELLO => match tls::parse_server_hello(body) {
            Ok(sh) => {
                stats.server_hellos += 1;
                conn.client.get_or_insert(side.other());
                if conn.ja4s.is_none() {
                    conn.ja4s = Some(Ja4sSet::from_hello(&sh));
                    conn.facts.server_hello = Some(ServerHelloFacts {
                        version: sh.version(),
                        cipher: sh.cipher,
                        alpn: sh.alpn.map(|a| String::from_utf8_lossy(a).into_owned()),
                        extensions: sh.extension_types().collect(),
                        hello_retry_request: sh.is_hello_retry_request,
                    });
                }
            }
            Err(_) => stats.tls_errors += 1,
        },
        _ => stats.tls_errors += 1,
    }
}

fn finish(dir: &mut Direction) {
    dir.state = DirState::Done;
    dir.reasm.release();
}
