//! The export record of a request, in one place: where its strings are between
//! post_read_request and log_transaction ([`ReqRecord`]), how they are copied into the export
//! frame, and the SYN's part of a record ([`syn_record`]).
//!
//! Owns: the record's layout and its string copies. Never: reads httpd's structures (the
//! hooks fill the record) or outlives the request whose strings it points to.

use ja4_core::batch::{
    consistency_trailer, h2_trailers_len, write_h2_trailers, Mitigation, SynRecord,
    MITIGATION_TRAILER_LEN, STRINGS, S_JA4H,
};
use ja4_core::fingerprint::ja4h::JA4H_LEN;

/// What post_read_request leaves for log_transaction (kept by `ffi::Request::keep_record`
/// in its connection's record slot, or the request pool): where the record's strings are.
#[derive(Clone, Copy)]
pub(crate) struct ReqRecord<'r> {
    /// The length of each string, in `S_*` order (the record's strings table).
    pub(crate) lens: [u32; STRINGS],
    /// Each string in `present`: in the request (its line, host and header values) or its
    /// connection's kept `HeaderShape` (the names), all of which outlive the request; JA4H
    /// is `ja4h` below.
    strs: [&'r [u8]; STRINGS],
    present: u32,
    /// The strings' total length.
    pub(crate) total: usize,
    /// JA4H, and the NUL that ends it as a C string for its variable.
    ja4h: [u8; JA4H_LEN + 1],
    pub(crate) has_referer: bool,
    /// What `JA4Mitigation` decided.
    pub(crate) mitigation: Mitigation,
    /// What post_read_request found, for the access checker to act on under the request's
    /// `<Directory>`/`<Location>` settings (taken there).
    pub(crate) pending: Option<crate::mitigate::Facts>,
    /// The connection's HTTP/2 fingerprint and its short form (in its state), or empty.
    pub(crate) h2: (&'r [u8], &'r [u8]),
    /// What the request's stacks contradict (`ja4_core::stack::flags`).
    pub(crate) consistency: u8,
}

impl Default for ReqRecord<'_> {
    fn default() -> Self {
        ReqRecord {
            lens: [0; STRINGS],
            strs: [b""; STRINGS],
            present: 0,
            total: 0,
            ja4h: [0; JA4H_LEN + 1],
            has_referer: false,
            mitigation: Mitigation::default(),
            pending: None,
            h2: (b"", b""),
            consistency: 0,
        }
    }
}

impl<'r> ReqRecord<'r> {
    /// Sets string `i` (an `S_*` index but JA4H), which is not set yet (an empty one stays
    /// absent).
    #[inline(always)]
    pub(crate) fn put(&mut self, i: usize, s: &'r [u8]) {
        debug_assert!(self.present & (1 << i) == 0, "string {i} set twice");
        debug_assert!(i != S_JA4H, "JA4H is set by ja4h_mut");
        self.lens[i] = s.len() as u32;
        self.strs[i] = s;
        self.present |= u32::from(!s.is_empty()) << i;
        self.total += s.len();
    }

    /// Where JA4H is assembled; [`ReqRecord::set_ja4h`] then counts it in.
    #[inline(always)]
    pub(crate) fn ja4h_mut(&mut self) -> &mut [u8; JA4H_LEN] {
        self.ja4h
            .first_chunk_mut::<JA4H_LEN>()
            .expect("JA4H_LEN + 1 bytes")
    }

    /// Counts the assembled JA4H in as string [`S_JA4H`].
    #[inline(always)]
    pub(crate) fn set_ja4h(&mut self) {
        self.lens[S_JA4H] = JA4H_LEN as u32;
        self.present |= 1 << S_JA4H;
        self.total += JA4H_LEN;
    }

    /// JA4H as a C string (for its variable).
    #[inline(always)]
    pub(crate) fn ja4h_c(&self) -> &std::ffi::CStr {
        std::ffi::CStr::from_bytes_until_nul(&self.ja4h).unwrap_or_default()
    }

    /// String `i`, empty when absent.
    #[inline(always)]
    pub(crate) fn get(&self, i: usize) -> &[u8] {
        if self.present & (1 << i) == 0 {
            b""
        } else if i == S_JA4H {
            &self.ja4h[..JA4H_LEN]
        } else {
            self.strs[i]
        }
    }

    /// String `i` (not JA4H) for as long as the request, empty when absent.
    #[inline(always)]
    pub(crate) fn string(&self, i: usize) -> &'r [u8] {
        debug_assert!(i != S_JA4H);
        self.strs[i]
    }

    /// The bytes after the strings table: the strings and the trailers.
    #[inline(always)]
    pub(crate) fn tail_len(&self) -> usize {
        self.total
            + if self.mitigation.is_some() {
                MITIGATION_TRAILER_LEN
            } else {
                0
            }
            + h2_trailers_len(self.h2.0, self.h2.1)
            + consistency_trailer(self.consistency).len()
    }

    /// Appends the trailers (the mitigation's, when it was on; the HTTP/2 fingerprint's, when
    /// the connection has one).
    #[inline(always)]
    pub(crate) fn write_trailers(&self, out: &mut Vec<u8>) {
        if self.mitigation.is_some() {
            out.extend_from_slice(&self.mitigation.trailer());
        }
        write_h2_trailers(out, self.h2.0, self.h2.1);
        out.extend_from_slice(consistency_trailer(self.consistency));
    }

    /// Appends the present strings, in `S_*` order (the record's strings section).
    #[inline]
    pub(crate) fn write_strings(&self, out: &mut Vec<u8>) {
        out.reserve(self.total);
        let mut m = self.present;
        while m != 0 {
            let i = m.trailing_zeros() as usize;
            m &= m - 1;
            out.extend_from_slice(self.get(i));
        }
    }
}

/// The SYN's part of a record.
pub(crate) fn syn_record(s: &ja4_core::tcp::SynFacts) -> SynRecord {
    SynRecord {
        ttl: s.ttl,
        window: s.window,
        mss: s.options.mss,
        window_scale: s.options.window_scale,
        options: s.options.kinds().to_vec(),
        ip_id: s.ip_id,
        dont_fragment: s.dont_fragment,
    }
}
