//! Per-child export of records: a bounded queue filled by request threads and one exporter
//! thread that sends framed batches to the sidecar's unix socket and/or appends JSON Lines to
//! `JA4ExportFile`.
//!
//! Owns: the queue (drop-oldest when full, counted), batching by size and interval, reconnect
//! with exponential backoff, a bounded backlog of unsent frames, and the final flush at child
//! exit.
//! Never: blocks a request thread beyond one short mutex hold, or loses a record without
//! counting it.

use std::collections::VecDeque;
use std::io::Write;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

use ja4_core::batch::{self, Record, RecordKind};
use ja4_core::directives::ModuleConfig;

use crate::conn::ConnState;
use crate::status;

struct Queue {
    records: VecDeque<Vec<u8>>,
    stop: bool,
}

struct Shared {
    q: Mutex<Queue>,
    cv: Condvar,
    socket: Option<PathBuf>,
    file: Option<std::fs::File>,
    batch_size: usize,
    flush: Duration,
    limit: usize,
}

pub struct Exporter {
    shared: Arc<Shared>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

static EXPORTER: OnceLock<Exporter> = OnceLock::new();

/// Whether this child exports records at all.
pub fn enabled() -> bool {
    EXPORTER.get().is_some()
}

/// Starts the exporter thread of this child (child_init). `file` is the inherited
/// JA4ExportFile descriptor, if configured.
pub fn start(cfg: &ModuleConfig, file: Option<std::fs::File>) -> std::io::Result<()> {
    if cfg.export_socket.is_none() && file.is_none() {
        return Ok(());
    }
    let shared = Arc::new(Shared {
        q: Mutex::new(Queue {
            records: VecDeque::new(),
            stop: false,
        }),
        cv: Condvar::new(),
        socket: cfg.export_socket.clone(),
        file,
        batch_size: cfg.batch_size as usize,
        flush: Duration::from_millis(u64::from(cfg.flush_interval_ms)),
        limit: cfg.queue_limit as usize,
    });
    let s2 = Arc::clone(&shared);
    let handle = std::thread::Builder::new()
        .name("ja4-export".into())
        .spawn(move || run(&s2))?;
    let _ = EXPORTER.set(Exporter {
        shared,
        thread: Mutex::new(Some(handle)),
    });
    Ok(())
}

/// Stops the thread after a last flush (child exit).
pub fn stop() {
    let Some(e) = EXPORTER.get() else { return };
    if let Ok(mut q) = e.shared.q.lock() {
        q.stop = true;
    }
    e.shared.cv.notify_all();
    if let Some(h) = e.thread.lock().ok().and_then(|mut t| t.take()) {
        let _ = h.join();
    }
}

/// Queues one encoded record; the oldest is dropped (and counted) when the queue is full.
pub fn enqueue(record: Vec<u8>) {
    let Some(e) = EXPORTER.get() else { return };
    let Ok(mut q) = e.shared.q.lock() else { return };
    if q.stop {
        return;
    }
    if q.records.len() >= e.shared.limit {
        q.records.pop_front();
        status::add(|s| &s.dropped_queue_full, 1);
        status::sub(|s| &s.queue_depth, 1);
    }
    q.records.push_back(record);
    status::add(|s| &s.queued, 1);
    status::add(|s| &s.queue_depth, 1);
    let full = q.records.len() >= e.shared.batch_size;
    drop(q);
    if full {
        e.shared.cv.notify_one();
    }
}

/// Queues an orphan record for a connection that ended without a request.
pub fn orphan(st: &ConnState) {
    if !enabled() || (st.tls.get().is_none() && st.syn.is_none()) {
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
        duration_us: u64::try_from(crate::conn::now_us() - st.started_us).unwrap_or(0),
        ja4: &owned[0][..],
        ja4_r: &owned[1][..],
        ja4_o: &owned[2][..],
        ja4_ro: &owned[3][..],
        ja3: &owned[4][..],
        ja3_r: &owned[5][..],
        tls_sni: &owned[6][..],
        ja4t: &owned[7][..],
        syn: st.syn.as_ref().map(crate::request::syn_record),
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
    let mut buf = Vec::with_capacity(512);
    rec.encode(&mut buf);
    enqueue(buf);
}

/// The exporter thread.
fn run(sh: &Shared) {
    let mut sink = Sink::new(sh.socket.clone(), Duration::from_millis(500));
    let mut json = sh
        .file
        .as_ref()
        .and_then(|f| f.try_clone().ok())
        .map(JsonFile::new);
    loop {
        let (batch, stopping) = {
            let Ok(mut q) = sh.q.lock() else { return };
            let deadline = Instant::now() + sh.flush;
            while q.records.len() < sh.batch_size && !q.stop {
                let now = Instant::now();
                if now >= deadline {
                    break;
                }
                q = match sh.cv.wait_timeout(q, deadline - now) {
                    Ok((g, _)) => g,
                    Err(_) => return,
                };
            }
            let n = q.records.len().min(sh.batch_size);
            let batch: Vec<Vec<u8>> = q.records.drain(..n).collect();
            (batch, q.stop && q.records.is_empty())
        };
        if !batch.is_empty() {
            status::sub(|s| &s.queue_depth, batch.len() as u64);
            deliver(&batch, json.as_mut(), &mut sink, sh.limit);
        }
        sink.flush(if stopping {
            Duration::from_secs(2)
        } else {
            Duration::ZERO
        });
        if stopping {
            sink.drop_backlog();
            return;
        }
    }
}

/// Frames a batch once and hands it to the JSON file and the socket sink.
fn deliver(batch: &[Vec<u8>], json: Option<&mut JsonFile>, sink: &mut Sink, limit: usize) {
    let frame = batch::frame_records(batch);
    if let Some(j) = json {
        j.write(&frame);
    }
    sink.push(frame, batch.len() as u64, limit);
}

/// The unix socket side: a backlog of framed batches, sent in order when connected.
struct Sink {
    path: Option<PathBuf>,
    write_timeout: Duration,
    stream: Option<UnixStream>,
    backlog: VecDeque<(Vec<u8>, u64)>,
    backlog_records: u64,
    backoff: Duration,
    next_try: Instant,
}

impl Sink {
    fn new(path: Option<PathBuf>, write_timeout: Duration) -> Self {
        Sink {
            path,
            write_timeout,
            stream: None,
            backlog: VecDeque::new(),
            backlog_records: 0,
            backoff: Duration::from_millis(100),
            next_try: Instant::now(),
        }
    }

    fn push(&mut self, frame: Vec<u8>, records: u64, limit: usize) {
        if self.path.is_none() {
            return;
        }
        self.backlog.push_back((frame, records));
        self.backlog_records += records;
        // Bound what waits for an absent sidecar: the oldest batches go first, counted.
        while self.backlog_records > limit as u64 && self.backlog.len() > 1 {
            if let Some((_, n)) = self.backlog.pop_front() {
                self.backlog_records -= n;
                status::add(|s| &s.dropped_export, n);
            }
        }
    }

    /// Sends what it can; retries the connection for at most `patience` (0 = one attempt).
    fn flush(&mut self, patience: Duration) {
        let Some(path) = self.path.clone() else {
            return;
        };
        let give_up = Instant::now() + patience;
        while !self.backlog.is_empty() {
            if self.stream.is_none() {
                if Instant::now() < self.next_try && patience.is_zero() {
                    return;
                }
                match UnixStream::connect(&path) {
                    Ok(s) => {
                        let _ = s.set_write_timeout(Some(self.write_timeout));
                        self.stream = Some(s);
                        self.backoff = Duration::from_millis(100);
                    }
                    Err(_) => {
                        status::add(|s| &s.export_errors, 1);
                        self.next_try = Instant::now() + self.backoff;
                        self.backoff = (self.backoff * 2).min(Duration::from_secs(5));
                        if Instant::now() + Duration::from_millis(100) > give_up {
                            return;
                        }
                        std::thread::sleep(Duration::from_millis(100));
                        continue;
                    }
                }
            }
            let Some((frame, n)) = self.backlog.front() else {
                return;
            };
            let n = *n;
            let ok = self
                .stream
                .as_mut()
                .is_some_and(|s| s.write_all(frame).is_ok());
            if ok {
                self.backlog.pop_front();
                self.backlog_records -= n;
                status::add(|s| &s.exported, n);
                status::add(|s| &s.export_batches, 1);
            } else {
                status::add(|s| &s.export_errors, 1);
                self.stream = None;
                self.next_try = Instant::now() + self.backoff;
                if Instant::now() > give_up {
                    return;
                }
            }
        }
    }

    fn drop_backlog(&mut self) {
        if self.backlog_records > 0 {
            status::add(|s| &s.dropped_export, self.backlog_records);
        }
        self.backlog.clear();
        self.backlog_records = 0;
    }
}

/// JA4ExportFile: JSON Lines appended (O_APPEND, so children interleave whole lines). The file is
/// opened by the parent (root) and inherited, so the children's `User` needs no write access.
struct JsonFile {
    file: std::fs::File,
}

impl JsonFile {
    fn new(file: std::fs::File) -> Self {
        JsonFile { file }
    }

    fn write(&mut self, frame: &[u8]) {
        let Ok((records, _)) = batch::decode_frame_ref(frame) else {
            status::add(|s| &s.json_errors, 1);
            return;
        };
        let mut out = Vec::with_capacity(records.len() * 700);
        for r in &records {
            r.write_json(&mut out);
        }
        match self.file.write_all(&out) {
            Ok(()) => status::add(|s| &s.json_records, records.len() as u64),
            Err(_) => status::add(|s| &s.json_errors, 1),
        }
    }
}

/// The JA4ExportFile descriptor opened by the parent, inherited by children.
pub static EXPORT_FD: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(-1);

/// A duplicate of the export file descriptor, if one is open.
pub fn export_file() -> Option<std::fs::File> {
    use std::os::fd::FromRawFd;
    let fd = EXPORT_FD.load(std::sync::atomic::Ordering::Acquire);
    if fd < 0 {
        return None;
    }
    // SAFETY: dup of our own open descriptor; the File owns the duplicate.
    let dup = unsafe { libc::dup(fd) };
    // SAFETY: `dup` is a fresh descriptor nobody else owns.
    (dup >= 0).then(|| unsafe { std::fs::File::from_raw_fd(dup) })
}

/// Export from the parent's capture thread: orphan records of connections httpd never
/// accepted. Never waits: a short write timeout, no connect retries inside a call.
pub struct ParentSink {
    sink: Sink,
    json: Option<JsonFile>,
    pending: Vec<Vec<u8>>,
    last: Instant,
    limit: usize,
}

impl ParentSink {
    pub fn new(cfg: &ModuleConfig) -> Self {
        ParentSink {
            sink: Sink::new(cfg.export_socket.clone(), Duration::from_millis(20)),
            json: export_file().map(JsonFile::new),
            pending: Vec::new(),
            last: Instant::now(),
            limit: cfg.queue_limit as usize,
        }
    }

    pub fn enabled(&self) -> bool {
        self.sink.path.is_some() || self.json.is_some()
    }

    pub fn push(&mut self, record: Vec<u8>) {
        status::add(|s| &s.queued, 1);
        self.pending.push(record);
        if self.pending.len() >= 64 {
            self.flush();
        }
    }

    /// Called by the capture loop after each read: flushes at least once a second.
    pub fn tick(&mut self) {
        if self.last.elapsed() >= Duration::from_secs(1) {
            self.flush();
        }
    }

    fn flush(&mut self) {
        self.last = Instant::now();
        if !self.pending.is_empty() {
            deliver(
                &self.pending,
                self.json.as_mut(),
                &mut self.sink,
                self.limit,
            );
            self.pending.clear();
        }
        self.sink.flush(Duration::ZERO);
    }
}
