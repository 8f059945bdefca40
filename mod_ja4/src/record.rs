//! The export record of a request, in one place: where its strings are between
//! post_read_request and log_transaction ([`ReqRecord`]), how they are copied into the export
//! frame, and the SYN's part of a record ([`syn_record`]).
//!
//! Owns: the record's layout and its string copies. Never: reads httpd's structures (the
//! hooks fill the record) or outlives the request whose strings it points to.

use std::marker::PhantomData;
use std::mem::MaybeUninit;

use ja4_core::batch::{SynRecord, STRINGS};
use ja4_core::fingerprint::ja4h::JA4H_LEN;

/// What post_read_request leaves for log_transaction (in its connection's [`RecordSlot`], or
/// the request pool): where the record's strings are.
///
/// [`RecordSlot`]: crate::conn::RecordSlot
#[repr(C)]
pub struct ReqRecord<'r> {
    /// The length of each string, in `S_*` order (the record's strings table).
    pub(crate) lens: [u32; STRINGS],
    /// Where each string in `present` is: in the request (its line, host and header values),
    /// its connection's kept [`HeaderShape`] (the names) or `ja4h` below, all of which outlive
    /// the request.
    pub(crate) ptrs: [MaybeUninit<*const u8>; STRINGS],
    pub(crate) present: u32,
    /// The strings' total length.
    pub(crate) total: usize,
    /// JA4H, and the NUL that ends it as a C string for its variable (`repr(C)` keeps it
    /// right after).
    pub(crate) ja4h: [u8; JA4H_LEN],
    pub(crate) nul: u8,
    pub(crate) has_referer: bool,
    _strings: PhantomData<&'r [u8]>,
}

impl<'r> ReqRecord<'r> {
    /// Sets string `i` (an `S_*` index), which is not set yet (an empty one stays absent).
    #[inline(always)]
    pub(crate) fn put(&mut self, i: usize, s: &'r [u8]) {
        debug_assert!(self.present & (1 << i) == 0, "string {i} set twice");
        self.lens[i] = s.len() as u32;
        self.ptrs[i] = MaybeUninit::new(s.as_ptr());
        self.present |= u32::from(!s.is_empty()) << i;
        self.total += s.len();
    }

    /// String `i` (an `S_*` index).
    pub(crate) fn get(&self, i: usize) -> &'r [u8] {
        if self.present & (1 << i) == 0 {
            return b"";
        }
        // SAFETY: a present string was set from a slice that lives for 'r.
        unsafe { std::slice::from_raw_parts(self.ptrs[i].assume_init(), self.lens[i] as usize) }
    }

    /// Appends the strings' bytes in `S_*` order (after [`batch::write_record_start`]), one
    /// copy each.
    #[inline]
    pub(crate) fn write_strings(&self, out: &mut Vec<u8>) {
        out.reserve(self.total);
        // SAFETY: `total` bytes are reserved; each present string is `lens[i]` bytes at
        // `ptrs[i]` (alive until the request ends, which has not happened yet), they add up
        // to `total`, and none overlaps the frame buffer.
        unsafe {
            let mut dst = out.as_mut_ptr().add(out.len());
            let mut m = self.present;
            while m != 0 {
                let i = m.trailing_zeros() as usize;
                m &= m - 1;
                let n = self.lens[i] as usize;
                copy_bytes(self.ptrs[i].assume_init(), dst, n);
                dst = dst.add(n);
            }
            out.set_len(out.len() + self.total);
        }
    }
}

/// Copies `n` bytes from `src` to `dst` (as `copy_nonoverlapping`), inline for the lengths a
/// record's strings mostly have: up to 64 bytes as two or four overlapping unaligned words
/// (a `memcpy` call costs more than the copy for those), longer ones by `memcpy`.
///
/// # Safety
/// As [`std::ptr::copy_nonoverlapping`]: `src` readable and `dst` writable for `n` bytes,
/// not overlapping.
#[inline(always)]
unsafe fn copy_bytes(src: *const u8, dst: *mut u8, n: usize) {
    // SAFETY: every access is within the first `n` bytes of `src` or `dst` (the words start
    // at 0 and end at n, overlapping in between), which the caller guarantees.
    unsafe {
        if n <= 16 {
            if n >= 8 {
                let (a, b) = (src.cast::<u64>(), src.add(n - 8).cast::<u64>());
                let (a, b) = (a.read_unaligned(), b.read_unaligned());
                dst.cast::<u64>().write_unaligned(a);
                dst.add(n - 8).cast::<u64>().write_unaligned(b);
            } else if n >= 4 {
                let (a, b) = (src.cast::<u32>(), src.add(n - 4).cast::<u32>());
                let (a, b) = (a.read_unaligned(), b.read_unaligned());
                dst.cast::<u32>().write_unaligned(a);
                dst.add(n - 4).cast::<u32>().write_unaligned(b);
            } else if n > 0 {
                let (a, b, c) = (*src, *src.add(n / 2), *src.add(n - 1));
                *dst = a;
                *dst.add(n / 2) = b;
                *dst.add(n - 1) = c;
            }
        } else if n <= 32 {
            let (a, b) = (src.cast::<u128>(), src.add(n - 16).cast::<u128>());
            let (a, b) = (a.read_unaligned(), b.read_unaligned());
            dst.cast::<u128>().write_unaligned(a);
            dst.add(n - 16).cast::<u128>().write_unaligned(b);
        } else if n <= 64 {
            let (a, b) = (src.cast::<u128>(), src.add(16).cast::<u128>());
            let (c, d) = (
                src.add(n - 32).cast::<u128>(),
                src.add(n - 16).cast::<u128>(),
            );
            let (a, b) = (a.read_unaligned(), b.read_unaligned());
            let (c, d) = (c.read_unaligned(), d.read_unaligned());
            dst.cast::<u128>().write_unaligned(a);
            dst.add(16).cast::<u128>().write_unaligned(b);
            dst.add(n - 32).cast::<u128>().write_unaligned(c);
            dst.add(n - 16).cast::<u128>().write_unaligned(d);
        } else {
            std::ptr::copy_nonoverlapping(src, dst, n);
        }
    }
}

pub fn syn_record(s: &ja4_core::tcp::SynFacts) -> SynRecord {
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
