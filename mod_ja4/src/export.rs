//! Per-child export of records: a bounded queue filled by request threads and one exporter
//! thread that sends framed batches to the sidecar's unix socket and/or appends JSON Lines to
//! `JA4ExportFile`.
//!
//! Owns: the queue (a chain of frames under construction: a request thread encodes its record
//! straight into the newest, under one short mutex hold, with no allocation once the buffers
//! are warm), drop-oldest when full (a whole frame, counted), batching by size and interval,
//! reconnect with exponential backoff, a bounded backlog of unsent frames, and the final flush
//! at child exit.
//! Never: blocks a request thread beyond one short mutex hold, or loses a record without
//! counting it.

use std::collections::VecDeque;
use std::io::Write;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use ja4_core::batch::{self, HEADER_LEN};
use ja4_core::directives::ModuleConfig;

use crate::counters;

/// A frame being filled: its buffer starts with room for the header.
struct Chunk {
    buf: Vec<u8>,
    count: u32,
    /// Distinguishes frames for connection-segment references.
    serial: u64,
}

/// Bytes after which a frame is closed even below the batch size.
const CHUNK_BYTES: usize = 4 << 20;
/// Spare buffers kept for reuse.
const SPARE: usize = 4;

struct Queue {
    /// The newest frame, which records go into.
    open: Chunk,
    /// Older frames, full, waiting for the exporter thread.
    closed: VecDeque<Chunk>,
    spare: Vec<Vec<u8>>,
    serial: u64,
    /// Records in `open` and `closed`.
    records: usize,
    stop: bool,
}

impl Queue {
    fn new() -> Self {
        let mut q = Queue {
            open: Chunk {
                buf: Vec::new(),
                count: 0,
                serial: 0,
            },
            closed: VecDeque::new(),
            spare: Vec::new(),
            serial: 0,
            records: 0,
            stop: false,
        };
        q.open = q.fresh_chunk();
        q
    }

    /// The frame a record goes into now (a new one when the open one is full; `notify` then
    /// says the exporter has a full frame to send).
    #[inline]
    fn open(&mut self, batch_size: usize, notify: &mut bool) -> &mut Chunk {
        if self.open.count as usize >= batch_size || self.open.buf.len() >= CHUNK_BYTES {
            self.rotate();
            *notify = true;
        }
        &mut self.open
    }

    /// Closes the open frame (when it has records) and opens a fresh one.
    #[cold]
    fn rotate(&mut self) {
        let fresh = self.fresh_chunk();
        let old = std::mem::replace(&mut self.open, fresh);
        if old.count > 0 {
            self.closed.push_back(old);
        } else {
            self.recycle(old.buf);
        }
    }

    fn fresh_chunk(&mut self) -> Chunk {
        let mut buf = self.spare.pop().unwrap_or_default();
        buf.clear();
        batch::begin_frame(&mut buf);
        self.serial += 1;
        Chunk {
            buf,
            count: 0,
            serial: self.serial,
        }
    }

    /// Drops the oldest frames (counted) while more than `limit` records wait.
    #[inline]
    fn bound(&mut self, limit: usize) {
        if self.records > limit {
            self.drop_oldest(limit);
        }
    }

    #[cold]
    fn drop_oldest(&mut self, limit: usize) {
        while self.records > limit {
            let c = match self.closed.pop_front() {
                Some(c) => c,
                None if self.open.count > 0 => {
                    let fresh = self.fresh_chunk();
                    std::mem::replace(&mut self.open, fresh)
                }
                None => break,
            };
            self.records -= c.count as usize;
            counters::add(|s| &s.dropped_queue_full, u64::from(c.count));
            self.recycle(c.buf);
        }
    }

    /// Every frame with records, oldest first; a fresh frame is opened.
    fn take_all(&mut self) -> Vec<Chunk> {
        self.rotate();
        let ready: Vec<Chunk> = self.closed.drain(..).collect();
        self.records = 0;
        ready
    }

    fn recycle(&mut self, buf: Vec<u8>) {
        if self.spare.len() < SPARE {
            self.spare.push(buf);
        }
    }
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

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        // A panic while encoding cannot leave the queue inconsistent: keep going.
        self.q.lock().unwrap_or_else(|e| e.into_inner())
    }
}

pub(crate) struct Exporter {
    shared: Arc<Shared>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

static EXPORTER: OnceLock<Exporter> = OnceLock::new();

/// Whether this child exports records at all.
pub(crate) fn enabled() -> bool {
    EXPORTER.get().is_some()
}

/// Starts the exporter thread of this child (child_init). `file` is the inherited
/// JA4ExportFile descriptor, if configured.
pub(crate) fn start(cfg: &ModuleConfig, file: Option<std::fs::File>) -> std::io::Result<()> {
    if cfg.export_socket.is_none() && file.is_none() {
        return Ok(());
    }
    let shared = Arc::new(Shared {
        q: Mutex::new(Queue::new()),
        cv: Condvar::new(),
        socket: cfg.export_socket.clone(),
        file,
        batch_size: (cfg.batch_size as usize).max(1),
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
pub(crate) fn stop() {
    let Some(e) = EXPORTER.get() else { return };
    e.shared.lock().stop = true;
    e.shared.cv.notify_all();
    if let Some(h) = e.thread.lock().ok().and_then(|mut t| t.take()) {
        let _ = h.join();
    }
}

/// Where a record is being written: the frame buffer and what identifies the frame.
pub(crate) struct Slot<'a> {
    pub buf: &'a mut Vec<u8>,
    /// The frame's serial number (for connection-segment references).
    pub serial: u64,
}

impl Slot<'_> {
    /// Where the frame's payload starts in `buf`.
    pub(crate) const PAYLOAD_START: usize = HEADER_LEN;
}

/// Appends one record: `encode` writes it into the newest frame (and must write exactly one
/// record). The oldest frame is dropped (and counted) when the queue is full.
pub(crate) fn append(encode: impl FnOnce(Slot<'_>)) {
    let Some(e) = EXPORTER.get() else { return };
    let mut notify = false;
    {
        let mut q = e.shared.lock();
        if q.stop {
            return;
        }
        let chunk = q.open(e.shared.batch_size, &mut notify);
        encode(Slot {
            buf: &mut chunk.buf,
            serial: chunk.serial,
        });
        chunk.count += 1;
        q.records += 1;
        q.bound(e.shared.limit);
    }
    counters::add(|s| &s.queued, 1);
    if notify {
        e.shared.cv.notify_one();
    }
}

/// The exporter thread.
fn run(sh: &Shared) {
    let mut sink = Sink::new(sh.socket.clone(), Duration::from_millis(500));
    let mut json = sh
        .file
        .as_ref()
        .and_then(|f| f.try_clone().ok())
        .map(JsonFile::new);
    let mut spent: Vec<Vec<u8>> = Vec::new();
    loop {
        let (ready, stopping) = {
            let mut q = sh.lock();
            for b in spent.drain(..) {
                q.recycle(b);
            }
            let deadline = Instant::now() + sh.flush;
            let full = |q: &Queue| !q.closed.is_empty() || q.open.count as usize >= sh.batch_size;
            while !full(&q) && !q.stop {
                let now = Instant::now();
                if now >= deadline {
                    break;
                }
                q = match sh.cv.wait_timeout(q, deadline - now) {
                    Ok((g, _)) => g,
                    Err(p) => p.into_inner().0,
                };
            }
            // Every frame now: the full ones, and the open one too when its time is up.
            let ready = q.take_all();
            (ready, q.stop)
        };
        for c in ready {
            counters::add(|s| &s.dequeued, u64::from(c.count));
            let mut frame = c.buf;
            // The socket cannot corrupt a frame: no checksum to compute.
            batch::finish_frame(&mut frame, c.count, false);
            deliver(frame, c.count, json.as_mut(), &mut sink, sh.limit);
        }
        sink.flush(if stopping {
            Duration::from_secs(2)
        } else {
            Duration::ZERO
        });
        spent.append(&mut sink.spent);
        spent.truncate(SPARE);
        if stopping {
            sink.drop_backlog();
            return;
        }
    }
}

/// Hands a finished frame to the JSON file and the socket sink.
fn deliver(
    frame: Vec<u8>,
    records: u32,
    json: Option<&mut JsonFile>,
    sink: &mut Sink,
    limit: usize,
) {
    if let Some(j) = json {
        j.write(&frame);
    }
    sink.push(frame, u64::from(records), limit);
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
    /// Buffers of frames sent, for reuse.
    spent: Vec<Vec<u8>>,
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
            spent: Vec::new(),
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
                counters::add(|s| &s.dropped_export, n);
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
                        counters::add(|s| &s.export_errors, 1);
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
                if let Some((buf, _)) = self.backlog.pop_front() {
                    if self.spent.len() < SPARE {
                        self.spent.push(buf);
                    }
                }
                self.backlog_records -= n;
                counters::add(|s| &s.exported, n);
                counters::add(|s| &s.export_batches, 1);
            } else {
                counters::add(|s| &s.export_errors, 1);
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
            counters::add(|s| &s.dropped_export, self.backlog_records);
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
            counters::add(|s| &s.json_errors, 1);
            return;
        };
        // The JA4H raw forms the frame leaves to the decoder, derived once per run of records
        // with the same JA4H inputs (a keep-alive connection's requests).
        let mut derived: Vec<Option<std::rc::Rc<ja4_core::fingerprint::Ja4hSet>>> =
            Vec::with_capacity(records.len());
        for (i, r) in records.iter().enumerate() {
            let needs = !r.ja4h.is_empty() && r.ja4h_r.is_empty();
            let same_as_previous = i > 0 && {
                let p = &records[i - 1];
                p.ja4h == r.ja4h && p.header_names == r.header_names && p.cookie == r.cookie
            };
            let d = match (needs, same_as_previous) {
                (false, _) => None,
                (true, true) => derived[i - 1].clone(),
                (true, false) => {
                    ja4_core::fingerprint::ja4h::derive_raw(r.ja4h, r.header_names, r.cookie)
                        .map(std::rc::Rc::new)
                }
            };
            derived.push(d);
        }
        let mut out = Vec::with_capacity(records.len() * 700);
        for (r, d) in records.iter().zip(&derived) {
            match d {
                Some(set) => batch::Record {
                    ja4h_r: set.ja4h_r.as_bytes(),
                    ja4h_o: set.ja4h_o.as_bytes(),
                    ja4h_ro: set.ja4h_ro.as_bytes(),
                    ..r.clone()
                }
                .write_json(&mut out),
                None => r.write_json(&mut out),
            }
        }
        match self.file.write_all(&out) {
            Ok(()) => counters::add(|s| &s.json_records, records.len() as u64),
            Err(_) => counters::add(|s| &s.json_errors, 1),
        }
    }
}

/// The JA4ExportFile opened by the parent in post_config, inherited by children.
static EXPORT_FILE: std::sync::Mutex<Option<std::fs::File>> = std::sync::Mutex::new(None);

/// Opens (appending, created if needed) the JA4ExportFile of this generation; the previous
/// one is closed.
pub(crate) fn open_file(path: &std::path::Path) -> std::io::Result<()> {
    let f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    *EXPORT_FILE.lock().unwrap_or_else(|p| p.into_inner()) = Some(f);
    Ok(())
}

/// A duplicate of the export file, if one is open.
pub(crate) fn export_file() -> Option<std::fs::File> {
    let f = EXPORT_FILE.lock().unwrap_or_else(|p| p.into_inner());
    f.as_ref().and_then(|f| f.try_clone().ok())
}

/// Export from the parent's capture thread: orphan records of connections httpd never
/// accepted. Never waits: a short write timeout, no connect retries inside a call.
pub(crate) struct ParentSink {
    sink: Sink,
    json: Option<JsonFile>,
    pending: Vec<u8>,
    count: u32,
    last: Instant,
    limit: usize,
}

impl ParentSink {
    pub(crate) fn new(cfg: &ModuleConfig) -> Self {
        ParentSink {
            sink: Sink::new(cfg.export_socket.clone(), Duration::from_millis(20)),
            json: export_file().map(JsonFile::new),
            pending: Vec::new(),
            count: 0,
            last: Instant::now(),
            limit: cfg.queue_limit as usize,
        }
    }

    pub(crate) fn enabled(&self) -> bool {
        self.sink.path.is_some() || self.json.is_some()
    }

    /// Queues one record: `encode` appends it (as [`Record::encode`] does).
    pub(crate) fn push(&mut self, encode: impl FnOnce(&mut Vec<u8>)) {
        counters::add(|s| &s.queued, 1);
        if self.count == 0 {
            self.pending.clear();
            batch::begin_frame(&mut self.pending);
        }
        encode(&mut self.pending);
        self.count += 1;
        if self.count >= 64 {
            self.flush();
        }
    }

    /// Called by the capture loop after each read: flushes at least once a second.
    pub(crate) fn tick(&mut self) {
        if self.last.elapsed() >= Duration::from_secs(1) {
            self.flush();
        }
    }

    fn flush(&mut self) {
        self.last = Instant::now();
        if self.count > 0 {
            counters::add(|s| &s.dequeued, u64::from(self.count));
            let mut frame = std::mem::take(&mut self.pending);
            batch::finish_frame(&mut frame, self.count, false);
            deliver(
                frame,
                self.count,
                self.json.as_mut(),
                &mut self.sink,
                self.limit,
            );
            self.count = 0;
        }
        self.sink.flush(Duration::ZERO);
    }
}
