//! Offline analysis of capture files: pcap/pcapng → one record per TCP connection.
//!
//! Owns: reading captures with libpcap (the `pcap` crate, as the live capture does), mapping the
//! link type, feeding `ja4_core::flow` and rendering JSON Lines or text.
//! Never: stops at the first bad file or packet: undecodable packets are counted, unreadable
//! files are reported by name and the other files are still processed.

use std::io::Write;
use std::path::Path;

use anyhow::{anyhow, Context, Result};
use ja4_core::decode::{self, LinkType};
use ja4_core::flow::{ConnectionFacts, ConnectionRecord, FlowConfig, FlowStats, FlowTable};
use serde::Serialize;

/// Counters for one capture file.
#[derive(Debug, Clone, Default, Serialize)]
pub struct FileStats {
    pub packets: u64,
    pub tcp_segments: u64,
    pub not_tcp: u64,
    pub decode_errors: u64,
    pub ip_fragments: u64,
    pub flow: FlowStats,
}

/// The result of reading one capture.
#[derive(Debug)]
pub struct Analysis {
    /// Connections with at least one fingerprint, in the order they were first seen.
    pub records: Vec<ConnectionRecord>,
    pub stats: FileStats,
    /// A read error after some packets were processed (truncated or corrupt file). The records
    /// gathered before it are still returned.
    pub read_error: Option<String>,
}

/// Flow limits for offline use: captures are finite, so be generous with time and space.
pub fn offline_flow_config() -> FlowConfig {
    FlowConfig {
        max_connections: 1 << 20,
        idle_timeout_us: 24 * 3600 * 1_000_000,
        closed_linger_us: 24 * 3600 * 1_000_000,
        ..FlowConfig::default()
    }
}

/// Reads and fingerprints one capture file.
pub fn analyze_file(path: &Path, cfg: FlowConfig) -> Result<Analysis> {
    let mut cap = pcap::Capture::from_file(path)
        .map_err(|e| anyhow!("{e}"))
        .context("cannot open capture")?;
    let dlt = cap.get_datalink();
    let link = LinkType::from_dlt(dlt.0).ok_or_else(|| {
        anyhow!(
            "unsupported link type {} ({})",
            dlt.0,
            dlt.get_name().unwrap_or_default()
        )
    })?;
    let mut analyzer = Analyzer::new(link, cfg);
    let mut read_error = None;
    loop {
        match cap.next_packet() {
            Ok(p) => {
                // `timeval` fields are not i64 on every platform.
                #[allow(clippy::useless_conversion)]
                let ts = i64::from(p.header.ts.tv_sec) * 1_000_000 + i64::from(p.header.ts.tv_usec);
                analyzer.packet(ts, p.data);
            }
            Err(pcap::Error::NoMorePackets) => break,
            Err(e) => {
                read_error = Some(e.to_string());
                break;
            }
        }
    }
    Ok(analyzer.finish(read_error))
}

/// Feeds decoded packets into a flow table and collects finished connections.
pub struct Analyzer {
    link: LinkType,
    table: FlowTable,
    records: Vec<ConnectionRecord>,
    stats: FileStats,
}

impl Analyzer {
    pub fn new(link: LinkType, cfg: FlowConfig) -> Self {
        Analyzer {
            link,
            table: FlowTable::new(cfg),
            records: Vec::new(),
            stats: FileStats::default(),
        }
    }

    /// One captured frame with its timestamp in microseconds.
    pub fn packet(&mut self, ts_us: i64, frame: &[u8]) {
        self.stats.packets += 1;
        match decode::decode(self.link, frame) {
            Ok(Some(tcp)) => {
                self.stats.tcp_segments += 1;
                let records = &mut self.records;
                self.table.process(ts_us, &tcp, &mut |r| keep(records, r));
            }
            Ok(None) => self.stats.not_tcp += 1,
            Err(decode::DecodeError::Fragment) => self.stats.ip_fragments += 1,
            Err(_) => self.stats.decode_errors += 1,
        }
    }

    pub fn finish(mut self, read_error: Option<String>) -> Analysis {
        let records = &mut self.records;
        self.table.drain(&mut |r| keep(records, r));
        self.records.sort_by_key(|r| r.stream);
        self.stats.flow = self.table.stats().clone();
        Analysis {
            records: self.records,
            stats: self.stats,
            read_error,
        }
    }
}

fn keep(records: &mut Vec<ConnectionRecord>, r: ConnectionRecord) {
    if r.has_fingerprint() {
        records.push(r);
    }
}

/// One JSON Lines object: the file name, the connection's fingerprints, optionally its facts.
#[derive(Serialize)]
struct JsonRecord<'a> {
    pcap: &'a str,
    #[serde(flatten)]
    record: &'a ConnectionRecord,
    #[serde(skip_serializing_if = "Option::is_none")]
    facts: Option<&'a ConnectionFacts>,
}

/// How records are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutputOptions {
    pub json: bool,
    /// Text mode: show raw (unhashed) fingerprints.
    pub raw: bool,
    /// Text mode: show original-order variants.
    pub original_order: bool,
    /// JSON mode: include the parsed facts under `facts`.
    pub facts: bool,
}

/// Writes the records of one file.
pub fn write_records(
    out: &mut dyn Write,
    pcap_name: &str,
    records: &[ConnectionRecord],
    opts: OutputOptions,
) -> Result<()> {
    for record in records {
        if opts.json {
            let j = JsonRecord {
                pcap: pcap_name,
                record,
                facts: opts.facts.then_some(&record.facts),
            };
            serde_json::to_writer(&mut *out, &j)?;
            out.write_all(b"\n")?;
        } else {
            write_text(out, pcap_name, record, opts)?;
        }
    }
    Ok(())
}

fn write_text(
    out: &mut dyn Write,
    pcap_name: &str,
    r: &ConnectionRecord,
    opts: OutputOptions,
) -> Result<()> {
    writeln!(
        out,
        "{pcap_name} #{} {}:{} -> {}:{}",
        r.stream, r.src, r.src_port, r.dst, r.dst_port
    )?;
    if let Some(sni) = &r.tls_server_name {
        writeln!(out, "  sni      {sni}")?;
    }
    if let Some(j) = &r.ja4 {
        let (name, v) = match (opts.raw, opts.original_order) {
            (false, false) => ("ja4", &j.ja4),
            (false, true) => ("ja4_o", &j.ja4_o),
            (true, false) => ("ja4_r", &j.ja4_r),
            (true, true) => ("ja4_ro", &j.ja4_ro),
        };
        writeln!(out, "  {name:<8} {v}")?;
    }
    if let Some(j) = &r.ja3 {
        writeln!(
            out,
            "  {:<8} {}",
            if opts.raw { "ja3_r" } else { "ja3" },
            if opts.raw { &j.ja3_r } else { &j.ja3 }
        )?;
    }
    if let Some(s) = &r.ja4s {
        writeln!(
            out,
            "  {:<8} {}",
            if opts.raw { "ja4s_r" } else { "ja4s" },
            if opts.raw { &s.ja4s_r } else { &s.ja4s }
        )?;
    }
    for (name, v) in [("ja4t", &r.ja4t), ("ja4ts", &r.ja4ts)] {
        if let Some(v) = v {
            writeln!(out, "  {name:<8} {v}")?;
        }
    }
    if let Some(l) = &r.ja4l {
        writeln!(out, "  ja4l_c   {}\n  ja4l_s   {}", l.ja4l_c, l.ja4l_s)?;
    }
    let list = match (opts.raw, opts.original_order) {
        (false, false) => ("ja4h", &r.ja4h),
        (false, true) => ("ja4h_o", &r.ja4h_o),
        (true, false) => ("ja4h_r", &r.ja4h_r),
        (true, true) => ("ja4h_ro", &r.ja4h_ro),
    };
    for v in list.1 {
        writeln!(out, "  {:<8} {v}", list.0)?;
    }
    Ok(())
}

/// The file name as records show it (`pcap` field): the last path component.
pub fn display_name(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}
