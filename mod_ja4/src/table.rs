//! A block of entries appended to an APR table at once: a request's `JA4*` variables go into
//! its environment as one copy and a few index updates instead of one `apr_table_addn` per
//! variable (~60 instructions each, the largest part of the variables' cost).
//!
//! Owns: the mirror of `apr_table_t` ([`Layout`]; APR keeps the struct private, and it has
//! been the same in every APR 1.x: the array header, a bitmask of the index slots in use, the
//! first and last entry of each slot, a key's slot being its first byte & 31), APR's key
//! checksum ([`key_checksum`]: the key's first four bytes, ASCII case folded), the check that
//! both hold for the APR this process runs ([`check`], at post_config) and [`Block`].
//!
//! Never: writes a table before [`check`] confirmed the layout on this process's APR (until
//! then, or when it failed, [`Block::append`] declines and the caller adds entry by entry);
//! grows a table (a block that does not fit is declined the same way).

use std::ffi::{c_char, c_int, CStr};
use std::sync::atomic::{AtomicBool, Ordering};

use apr_sys as sys;

/// Index slots of an APR table (`TABLE_HASH_SIZE`).
const SLOTS: usize = 32;

/// `apr_table_t` as APR 1.x lays it out (apr_tables.c). Only read or written once [`check`]
/// confirmed it.
#[repr(C)]
struct Layout {
    a: sys::apr_array_header_t,
    /// Bit `s` set: some entry's key is in slot `s`, and `first[s]`/`last[s]` are valid.
    index_initialized: u32,
    first: [c_int; SLOTS],
    last: [c_int; SLOTS],
}

/// Set by [`check`] when the layout and checksum hold.
static CONFIRMED: AtomicBool = AtomicBool::new(false);

/// The index slot of a key starting with `b`.
const fn slot(b: u8) -> usize {
    (b as usize) & (SLOTS - 1)
}

/// APR's checksum of a table key: its first four bytes (fewer for a shorter key, the rest
/// zero) big-endian, each with bit 5 cleared (ASCII case folded).
pub fn key_checksum(key: &CStr) -> u32 {
    let b = key.to_bytes();
    let mut c = 0u32;
    for i in 0..4 {
        c = (c << 8) | u32::from(b.get(i).copied().unwrap_or(0));
    }
    c & 0xdfdf_dfdf
}

/// Entries to append to tables, all at once: keys with their checksums and the index slots
/// they span, values that outlive the tables (the last one given per [`Block::append`]).
#[derive(Debug)]
pub struct Block {
    entries: Box<[sys::apr_table_entry_t]>,
    /// (slot, first, last) entry of the block for each slot its keys use.
    slots: Box<[(u8, u16, u16)]>,
}

// SAFETY: the entries are written once, in `new`, and only read afterwards (copied into
// tables); their keys are static strings and their values point to memory the block's owner
// keeps alive and unchanged (see `new`).
unsafe impl Send for Block {}
// SAFETY: as above.
unsafe impl Sync for Block {}

impl Block {
    /// A block of the entries `(key, value)`, in order, and a last one, `last`, whose value
    /// each [`Block::append`] gives (at most 1,024 entries in all). `value`s must outlive every
    /// table the block goes into.
    pub fn new(
        entries: impl IntoIterator<Item = (&'static CStr, *const c_char)>,
        last: &'static CStr,
    ) -> Self {
        let entries: Box<[sys::apr_table_entry_t]> = entries
            .into_iter()
            .chain([(last, std::ptr::null())])
            .map(|(key, val)| sys::apr_table_entry_t {
                key: key.as_ptr() as *mut c_char,
                val: val as *mut c_char,
                key_checksum: key_checksum(key),
            })
            .collect();
        assert!(
            entries.len() <= 1024,
            "a block of {} table entries",
            entries.len()
        );
        let mut slots: Vec<(u8, u16, u16)> = Vec::new();
        for (i, e) in entries.iter().enumerate() {
            // SAFETY: keys are the static C strings given above.
            let s = slot(unsafe { *e.key } as u8) as u8;
            let i = i as u16;
            match slots.iter_mut().find(|x| x.0 == s) {
                Some(x) => x.2 = i,
                None => slots.push((s, i, i)),
            }
        }
        Block {
            entries,
            slots: slots.into(),
        }
    }

    /// Appends the block to `t`, its last entry with the value `last`; false (and `t`
    /// untouched) when the layout is not confirmed or `t` has no room for the block.
    ///
    /// # Safety
    /// `t` is a live table; `last`, like the block's values, outlives it.
    #[inline]
    pub unsafe fn append(&self, t: *mut sys::apr_table_t, last: *const c_char) -> bool {
        // SAFETY: the check confirmed the layout; the caller's guarantees.
        CONFIRMED.load(Ordering::Relaxed) && unsafe { self.append_to(t, last) }
    }

    /// [`Block::append`] without asking whether the layout is confirmed.
    ///
    /// # Safety
    /// As [`Block::append`], and tables are laid out as [`Layout`].
    #[inline(always)]
    unsafe fn append_to(&self, t: *mut sys::apr_table_t, last: *const c_char) -> bool {
        // SAFETY: a table laid out as `Layout` (caller), live; entries are written within the
        // array's allocation (`nalloc`), and the index slots (< 32) within the struct.
        unsafe {
            let t = &mut *(t as *mut Layout);
            let (n0, k) = (t.a.nelts, self.entries.len() as c_int);
            if t.a.nalloc - n0 < k {
                return false;
            }
            let at = (t.a.elts as *mut sys::apr_table_entry_t).add(n0 as usize);
            std::ptr::copy_nonoverlapping(self.entries.as_ptr(), at, k as usize);
            (*at.add(k as usize - 1)).val = last as *mut c_char;
            t.a.nelts = n0 + k;
            for &(s, lo, hi) in self.slots.iter() {
                let s = usize::from(s);
                t.last[s] = n0 + c_int::from(hi);
                if t.index_initialized & (1 << s) == 0 {
                    t.first[s] = n0 + c_int::from(lo);
                    t.index_initialized |= 1 << s;
                }
            }
        }
        true
    }
}

/// Checks that this process's APR lays tables out as [`Layout`] and computes checksums as
/// [`key_checksum`], and that a [`Block`] appended by it is what APR's own lookups and
/// removals then find; [`Block::append`] works from then on. Returns the result.
///
/// # Safety
/// `pool` is a live pool (the check's tables go into it).
pub unsafe fn check(pool: *mut sys::apr_pool_t) -> bool {
    // SAFETY: tables made in the live pool; see `layout_holds` and `block_works`.
    let ok = unsafe { layout_holds(pool) && block_works(pool) };
    CONFIRMED.store(ok, Ordering::Relaxed);
    ok
}

/// Whether a table filled by `apr_table_addn` reads back as [`Layout`] says.
///
/// # Safety
/// `pool` is a live pool.
unsafe fn layout_holds(pool: *mut sys::apr_pool_t) -> bool {
    let keys = [c"Accept", c"JA4", c"x-test", c"JA4H"];
    // SAFETY: a table of the live pool, read within its allocation (a pool block is larger
    // than the struct) and not written.
    unsafe {
        let t = sys::apr_table_make(pool, 8);
        for k in keys {
            sys::apr_table_addn(t, k.as_ptr(), c"v".as_ptr());
        }
        let l = &*(t as *const Layout);
        let (a, j, x) = (slot(b'A'), slot(b'J'), slot(b'x'));
        let entries = std::slice::from_raw_parts(l.a.elts as *const sys::apr_table_entry_t, 4);
        l.a.nelts == 4
            && l.a.elt_size as usize == std::mem::size_of::<sys::apr_table_entry_t>()
            && l.index_initialized == (1 << a) | (1 << j) | (1 << x)
            && (l.first[a], l.last[a]) == (0, 0)
            && (l.first[j], l.last[j]) == (1, 3)
            && (l.first[x], l.last[x]) == (2, 2)
            && entries
                .iter()
                .zip(keys)
                .all(|(e, k)| std::ptr::eq(e.key, k.as_ptr()) && e.key_checksum == key_checksum(k))
    }
}

/// Whether a [`Block`] appended to a table (before the layout is confirmed: the test of it) is
/// found, and removed, by APR's lookups.
///
/// # Safety
/// `pool` is a live pool; [`layout_holds`] returned true.
unsafe fn block_works(pool: *mut sys::apr_pool_t) -> bool {
    let get = |t, k: &CStr| {
        // SAFETY: a live table and key; values are static strings or NULL.
        let v = unsafe { sys::apr_table_get(t, k.as_ptr()) };
        (!v.is_null()).then(|| unsafe { CStr::from_ptr(v) }.to_bytes().to_vec())
    };
    let block = Block::new(
        [
            (c"JA4", c"1".as_ptr()),
            (c"Ja4_R", c"2".as_ptr()),
            (c"Xtra", c"3".as_ptr()),
        ],
        c"JA4H",
    );
    // SAFETY: a live table; the values are static.
    unsafe {
        let t = sys::apr_table_make(pool, 8);
        sys::apr_table_addn(t, c"Host".as_ptr(), c"h".as_ptr());
        sys::apr_table_addn(t, c"Jump".as_ptr(), c"j".as_ptr());
        let found = block.append_to(t, c"4".as_ptr())
            && get(t, c"ja4").as_deref() == Some(b"1")
            && get(t, c"JA4_R").as_deref() == Some(b"2")
            && get(t, c"xtra").as_deref() == Some(b"3")
            && get(t, c"JA4H").as_deref() == Some(b"4")
            && get(t, c"Jump").as_deref() == Some(b"j")
            && get(t, c"Host").as_deref() == Some(b"h");
        if !found {
            return false;
        }
        sys::apr_table_unset(t, c"JA4".as_ptr());
        sys::apr_table_unset(t, c"Jump".as_ptr());
        get(t, c"JA4").is_none()
            && get(t, c"Jump").is_none()
            && get(t, c"JA4H").as_deref() == Some(b"4")
            && get(t, c"JA4_R").as_deref() == Some(b"2")
            && (*crate::ffi::table_elts(t)).nelts == 4
    }
}

/// Turns [`Block::append`] off (it declines until the next [`check`]).
pub fn disable() {
    CONFIRMED.store(false, Ordering::Relaxed);
}

/// Whether [`check`] confirmed the layout (the status page shows it).
pub fn confirmed() -> bool {
    CONFIRMED.load(Ordering::Relaxed)
}
