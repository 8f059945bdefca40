//! The on-disk spool: batches the store could not take, kept until it can.
//!
//! Owns: segment files (`NNNNNNNNNNNN.spool`, appended batch frames of `ja4_core::batch`, so every
//! batch is CRC-checked), fsync after each append, rolling at [`SEGMENT_BYTES`], the total bound
//! (oldest segments dropped, their records counted), reading segments back in order, and
//! resuming whatever a previous process left.
//! Never: loses a batch without counting it; a corrupt tail (power loss mid-write) is counted
//! and skipped, the frames before it are kept.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use ja4_core::batch::{self, BatchError, OwnedRecord};

/// Size at which a segment is closed and a new one started.
pub const SEGMENT_BYTES: u64 = 8 << 20;

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SpoolStats {
    pub spooled_records: u64,
    pub dropped_full_records: u64,
    pub corrupt_frames: u64,
}

pub struct Spool {
    dir: PathBuf,
    max_bytes: u64,
    /// Segment files, oldest first, with their size.
    segments: Vec<(u64, PathBuf, u64)>,
    current: Option<File>,
    pub stats: SpoolStats,
}

impl Spool {
    /// Opens the spool in `dir`, picking up segments a previous process left.
    pub fn open(dir: &Path, max_bytes: u64) -> std::io::Result<Spool> {
        std::fs::create_dir_all(dir)?;
        let mut segments = Vec::new();
        for e in std::fs::read_dir(dir)? {
            let p = e?.path();
            let seq = p
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_suffix(".spool"))
                .and_then(|n| n.parse::<u64>().ok());
            if let Some(seq) = seq {
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

    pub fn is_empty(&self) -> bool {
        self.segments.is_empty()
    }

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
        let mut payload = Vec::with_capacity(records.len() * 1024);
        for r in records {
            r.encode(&mut payload);
        }
        let frame = batch::frame(&payload, records.len() as u32);
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

    /// Removes a segment once its records are stored.
    pub fn remove(&mut self, path: &Path) -> std::io::Result<()> {
        self.segments.retain(|s| s.1 != path);
        std::fs::remove_file(path)
    }
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
