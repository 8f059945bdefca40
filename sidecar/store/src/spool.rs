//! The on-disk spool: batches the store could not take, kept until it can.
//!
//! Owns: segment files (`NNNNNNNNNNNN.spool`, appended batch frames of `ja4_core::batch`, so every
//! batch is CRC-checked), fsync after each append, rolling at [`SEGMENT_BYTES`], the total bound
//! (oldest segments dropped, their records counted), reading segments back in order, and
//! resuming whatever a previous process left.
//! Also the dead letters ([`DeadLetter`]): batches the store refused for their data, set aside
//! so that the spool drains behind them.
//! Never: loses a batch without counting it; a corrupt tail (power loss mid-write) is counted
//! and skipped, the frames before it are kept.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use ja4_core::batch::{self, BatchError, OwnedRecord};

/// Size at which a segment is closed and a new one started.
pub const SEGMENT_BYTES: u64 = 8 << 20;

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
/// What the spool did since it was opened.
pub struct SpoolStats {
    /// Records written to it.
    pub spooled_records: u64,
    /// Records dropped with the oldest segments when it was full.
    pub dropped_full_records: u64,
    /// Damaged frames found when reading it back (a write cut off by a crash), skipped.
    pub corrupt_frames: u64,
}

/// Batches the store could not take, on disk in segments until it can, bounded in bytes.
pub struct Spool {
    dir: PathBuf,
    max_bytes: u64,
    /// Segment files, oldest first, with their size.
    segments: Vec<(u64, PathBuf, u64)>,
    current: Option<File>,
    /// Its counts.
    pub stats: SpoolStats,
}

impl Spool {
    /// Opens the spool in `dir`, picking up segments a previous process left.
    pub fn open(dir: &Path, max_bytes: u64) -> std::io::Result<Spool> {
        std::fs::create_dir_all(dir)?;
        let mut segments = Vec::new();
        for e in std::fs::read_dir(dir)? {
            let p = e?.path();
            if let Some(seq) = seq_of(&p, ".spool") {
                let len = std::fs::metadata(&p)?.len();
                segments.push((seq, p, len));
            }
        }
        segments.sort();
        Ok(Spool {
            dir: dir.to_owned(),
            max_bytes,
            segments,
            current: None,
            stats: SpoolStats::default(),
        })
    }

    /// Whether it holds no record.
    pub fn is_empty(&self) -> bool {
        self.segments.is_empty()
    }

    /// Bytes on disk.
    pub fn bytes(&self) -> u64 {
        self.segments.iter().map(|s| s.2).sum()
    }

    /// Appends one batch durably (written and fsync'd before returning).
    pub fn append<S: AsRef<[u8]>>(
        &mut self,
        records: &[ja4_core::batch::Record<S>],
    ) -> std::io::Result<()> {
        if records.is_empty() {
            return Ok(());
        }
        let frame = frame_of(records);
        let needs_new = match self.segments.last() {
            Some((_, _, len)) => {
                self.current.is_none() || *len + frame.len() as u64 > SEGMENT_BYTES
            }
            None => true,
        };
        if needs_new {
            let seq = self.segments.last().map_or(1, |s| s.0 + 1);
            let path = self.dir.join(format!("{seq:012}.spool"));
            self.current = Some(OpenOptions::new().create(true).append(true).open(&path)?);
            self.segments.push((seq, path, 0));
        }
        let file = self
            .current
            .as_mut()
            .ok_or_else(|| std::io::Error::other("no open segment"))?;
        file.write_all(&frame)?;
        file.sync_data()?;
        if let Some(last) = self.segments.last_mut() {
            last.2 += frame.len() as u64;
        }
        self.stats.spooled_records += records.len() as u64;
        self.enforce_bound();
        Ok(())
    }

    /// Drops the oldest segments (counting their records) while over the bound; the segment
    /// being written is kept.
    fn enforce_bound(&mut self) {
        while self.bytes() > self.max_bytes && self.segments.len() > 1 {
            let (_, path, _) = self.segments.remove(0);
            let (records, corrupt) = read_segment(&path);
            self.stats.dropped_full_records += records.len() as u64;
            self.stats.corrupt_frames += corrupt;
            let _ = std::fs::remove_file(&path);
        }
    }

    /// The oldest segment's records (closing it for writing if it is the current one).
    pub fn oldest(&mut self) -> Option<(PathBuf, Vec<OwnedRecord>)> {
        let (_, path, _) = self.segments.first()?.clone();
        if self.segments.len() == 1 {
            self.current = None;
        }
        let (records, corrupt) = read_segment(&path);
        self.stats.corrupt_frames += corrupt;
        Some((path, records))
    }

    /// Replaces a segment's records by `records` (those of it not stored yet), durably: the
    /// new content is written beside it, fsync'd and renamed over it.
    pub fn rewrite<S: AsRef<[u8]>>(
        &mut self,
        path: &Path,
        records: &[ja4_core::batch::Record<S>],
    ) -> std::io::Result<()> {
        if records.is_empty() {
            return self.remove(path);
        }
        let frame = frame_of(records);
        let tmp = path.with_extension("rewrite");
        {
            let mut f = File::create(&tmp)?;
            f.write_all(&frame)?;
            f.sync_data()?;
        }
        std::fs::rename(&tmp, path)?;
        if let Some(seg) = self.segments.iter_mut().find(|s| s.1 == path) {
            seg.2 = frame.len() as u64;
        }
        if self.segments.last().is_some_and(|s| s.1 == path) {
            self.current = None;
        }
        Ok(())
    }

    /// Removes a segment once its records are stored.
    pub fn remove(&mut self, path: &Path) -> std::io::Result<()> {
        self.segments.retain(|s| s.1 != path);
        std::fs::remove_file(path)
    }
}

/// One batch frame of `records`.
fn frame_of<S: AsRef<[u8]>>(records: &[ja4_core::batch::Record<S>]) -> Vec<u8> {
    let mut payload = Vec::with_capacity(records.len() * 1024);
    for r in records {
        r.encode(&mut payload);
    }
    batch::frame(&payload, records.len() as u32)
}

/// Batches the store refused for their data, set aside so that the spool drains: each a file
/// of batch frames (`NNNNNNNNNNNN.batch`, CRC-checked like the spool) and the engine's words
/// on it (`NNNNNNNNNNNN.why`). Bounded; `ja4-sidecar dead-letter` lists, shows, retries and
/// removes them.
pub struct DeadLetter {
    dir: PathBuf,
    max_bytes: u64,
}

/// One dead-lettered batch.
#[derive(Debug, Clone)]
pub struct DeadBatch {
    /// Its number (the file name's).
    pub seq: u64,
    /// Its file.
    pub path: PathBuf,
    /// Its size.
    pub bytes: u64,
    /// Why the store refused it, and when (first line: RFC 3339-ish UTC seconds).
    pub why: String,
}

impl DeadLetter {
    /// The dead letters in `dir` (created on first use), at most `max_bytes` in all.
    pub fn new(dir: &Path, max_bytes: u64) -> DeadLetter {
        DeadLetter {
            dir: dir.to_owned(),
            max_bytes,
        }
    }

    /// Sets `records` aside with the reason. `Ok(false)` when the bound is reached (nothing
    /// written: the caller counts the records as dropped).
    pub fn put<S: AsRef<[u8]>>(
        &self,
        records: &[ja4_core::batch::Record<S>],
        why: &str,
    ) -> std::io::Result<bool> {
        if records.is_empty() {
            return Ok(true);
        }
        std::fs::create_dir_all(&self.dir)?;
        let frame = frame_of(records);
        let held = self.list()?;
        if held.iter().map(|d| d.bytes).sum::<u64>() + frame.len() as u64 > self.max_bytes {
            return Ok(false);
        }
        let seq = held.last().map_or(1, |d| d.seq + 1);
        let path = self.dir.join(format!("{seq:012}.batch"));
        let secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        std::fs::write(
            path.with_extension("why"),
            format!("unix time {secs}, {} records\n{why}\n", records.len()),
        )?;
        let mut f = File::create(&path)?;
        f.write_all(&frame)?;
        f.sync_data()?;
        Ok(true)
    }

    /// The dead-lettered batches, oldest first.
    pub fn list(&self) -> std::io::Result<Vec<DeadBatch>> {
        let mut out = Vec::new();
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(e),
        };
        for e in entries {
            let path = e?.path();
            let Some(seq) = seq_of(&path, ".batch") else {
                continue;
            };
            out.push(DeadBatch {
                seq,
                bytes: std::fs::metadata(&path)?.len(),
                why: std::fs::read_to_string(path.with_extension("why")).unwrap_or_default(),
                path,
            });
        }
        out.sort_by_key(|d| d.seq);
        Ok(out)
    }

    /// The batch numbered `seq`: its records, and how many corrupt frames ended its file.
    pub fn read(&self, seq: u64) -> Option<(DeadBatch, Vec<OwnedRecord>, u64)> {
        let d = self.list().ok()?.into_iter().find(|d| d.seq == seq)?;
        let (records, corrupt) = Self::contents(&d);
        Some((d, records, corrupt))
    }

    /// A listed batch's records, and how many corrupt frames ended its file.
    pub fn contents(d: &DeadBatch) -> (Vec<OwnedRecord>, u64) {
        read_segment(&d.path)
    }

    /// Removes the batch numbered `seq`.
    pub fn remove(&self, seq: u64) -> std::io::Result<()> {
        let path = self.dir.join(format!("{seq:012}.batch"));
        std::fs::remove_file(&path)?;
        let _ = std::fs::remove_file(path.with_extension("why"));
        Ok(())
    }
}

/// The sequence number of a file named `NNNNNNNNNNNN<suffix>`.
fn seq_of(path: &Path, suffix: &str) -> Option<u64> {
    path.file_name()?
        .to_str()?
        .strip_suffix(suffix)?
        .parse()
        .ok()
}

/// Every intact frame of a segment, and how many corrupt frames ended it.
fn read_segment(path: &Path) -> (Vec<OwnedRecord>, u64) {
    let mut data = Vec::new();
    if File::open(path)
        .and_then(|mut f| f.read_to_end(&mut data))
        .is_err()
    {
        return (Vec::new(), 1);
    }
    let mut out = Vec::new();
    let mut rest = &data[..];
    while !rest.is_empty() {
        match batch::decode_frame(rest) {
            Ok((records, used)) => {
                out.extend(records);
                rest = &rest[used..];
            }
            Err(BatchError::Incomplete) | Err(_) => return (out, 1),
        }
    }
    (out, 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ja4_core::batch::Record;

    fn recs(n: usize, tag: &'static [u8]) -> Vec<Record<&'static [u8]>> {
        (0..n)
            .map(|i| Record {
                conn_id: i as u64,
                path: tag,
                ..Default::default()
            })
            .collect()
    }

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("ja4-spool-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn append_replay_in_order_and_resume() {
        let d = dir("order");
        let mut s = Spool::open(&d, 1 << 30).unwrap();
        assert!(s.is_empty());
        s.append(&recs(3, b"/a")).unwrap();
        s.append(&recs(2, b"/b")).unwrap();
        drop(s);
        // A new process finds what the old one left.
        let mut s = Spool::open(&d, 1 << 30).unwrap();
        assert!(!s.is_empty());
        let (path, got) = s.oldest().unwrap();
        let paths: Vec<&str> = got.iter().map(|r| r.path.as_str()).collect();
        assert_eq!(paths, ["/a", "/a", "/a", "/b", "/b"]);
        s.remove(&path).unwrap();
        assert!(s.is_empty());
        s.append(&recs(1, b"/c")).unwrap();
        assert_eq!(s.oldest().unwrap().1[0].path, "/c");
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn bound_drops_oldest_and_counts() {
        let d = dir("bound");
        let big: Vec<Record<&[u8]>> = (0..3000)
            .map(|i| Record {
                conn_id: i,
                path: &[b'x'; 3000][..],
                ..Default::default()
            })
            .collect();
        let mut s = Spool::open(&d, SEGMENT_BYTES + 1).unwrap();
        for _ in 0..3 {
            s.append(&big).unwrap();
        }
        assert!(s.bytes() <= SEGMENT_BYTES * 2, "bounded: {}", s.bytes());
        assert!(s.stats.dropped_full_records >= 3000, "{:?}", s.stats);
        assert_eq!(s.stats.spooled_records, 9000);
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn rewrite_keeps_only_what_is_left() {
        let d = dir("rewrite");
        let mut s = Spool::open(&d, 1 << 30).unwrap();
        s.append(&recs(5, b"/x")).unwrap();
        let (path, got) = s.oldest().unwrap();
        s.rewrite(&path, &got[3..]).unwrap();
        drop(s);
        let mut s = Spool::open(&d, 1 << 30).unwrap();
        let (path, got) = s.oldest().unwrap();
        assert_eq!(got.iter().map(|r| r.conn_id).collect::<Vec<_>>(), [3, 4]);
        s.rewrite(&path, &got[..0]).unwrap();
        assert!(s.is_empty());
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn dead_letters_are_listed_read_bounded_and_removed() {
        let d = dir("dead");
        let dl = DeadLetter::new(&d.join("dead-letter"), 4096);
        assert!(dl.list().unwrap().is_empty());
        assert!(dl
            .put(&recs(2, b"/poison"), "Code: 469. constraint")
            .unwrap());
        assert!(dl.put(&recs(1, b"/p2"), "second").unwrap());
        let l = dl.list().unwrap();
        assert_eq!(l.iter().map(|b| b.seq).collect::<Vec<_>>(), [1, 2]);
        assert!(l[0].why.contains("2 records") && l[0].why.contains("Code: 469"));
        let (_, got, corrupt) = dl.read(1).unwrap();
        assert_eq!((got.len(), corrupt), (2, 0));
        assert_eq!(got[0].path, "/poison");
        let held: usize = dl
            .list()
            .unwrap()
            .iter()
            .map(|d| DeadLetter::contents(d).0.len())
            .sum();
        assert_eq!(held, 3);
        // Over the bound nothing is written.
        let big: Vec<Record<&[u8]>> = (0..10)
            .map(|i| Record {
                conn_id: i,
                path: &[b'x'; 1000][..],
                ..Default::default()
            })
            .collect();
        assert!(!dl.put(&big, "too big").unwrap());
        assert_eq!(dl.list().unwrap().len(), 2);
        dl.remove(1).unwrap();
        assert_eq!(dl.list().unwrap()[0].seq, 2);
        assert!(dl.read(1).is_none());
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn corrupt_tail_keeps_earlier_frames() {
        let d = dir("corrupt");
        let mut s = Spool::open(&d, 1 << 30).unwrap();
        s.append(&recs(4, b"/ok")).unwrap();
        drop(s);
        let seg = std::fs::read_dir(&d)
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path();
        OpenOptions::new()
            .append(true)
            .open(&seg)
            .unwrap()
            .write_all(b"JA4B\x01\x00partial")
            .unwrap();
        let mut s = Spool::open(&d, 1 << 30).unwrap();
        let (_, got) = s.oldest().unwrap();
        assert_eq!(got.len(), 4);
        assert_eq!(s.stats.corrupt_frames, 1);
        let _ = std::fs::remove_dir_all(&d);
    }
}
