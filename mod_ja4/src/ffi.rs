//! Small safe wrappers over the httpd/APR calls the hooks make.
//!
//! Owns: C string views, APR table iteration, logging through the C glue, pool-owned Rust values,
//! and the panic guard every `extern "C"` entry point runs in.
//! Never: keeps a pointer past the lifetime of the pool or request it came from.

use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};

use apr_sys as sys;
use ja4_core::batch::BlockSink;

pub const LOG_ERR: c_int = 3;
pub const LOG_WARNING: c_int = 4;
pub const LOG_INFO: c_int = 6;

/// Runs `f`, turning a panic into `fallback`: no unwinding ever crosses into httpd.
pub fn guard<R>(fallback: R, f: impl FnOnce() -> R) -> R {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or(fallback)
}

/// The bytes of a C string, empty for NULL.
///
/// # Safety
/// `p` is NULL or points to a NUL-terminated string that outlives `'a`.
pub unsafe fn cbytes<'a>(p: *const c_char) -> &'a [u8] {
    if p.is_null() {
        b""
    } else {
        // SAFETY: the caller guarantees a valid NUL-terminated string.
        unsafe { CStr::from_ptr(p).to_bytes() }
    }
}

fn c_message(msg: &str) -> CString {
    CString::new(msg.replace('\0', "?")).unwrap_or_default()
}

pub fn log_server(s: *const sys::server_rec, level: c_int, status: sys::apr_status_t, msg: &str) {
    let m = c_message(msg);
    // SAFETY: the glue formats with "%s"; `s` may be NULL (httpd then logs without a server).
    unsafe { sys::ja4_log_server(s, level, status, m.as_ptr()) }
}

/// The entries of an APR table in insertion order (duplicates kept; a key may be NULL).
///
/// # Safety
/// `t` is NULL or a live table whose entries outlive `'a` and are not modified meanwhile.
pub unsafe fn table_slice<'a>(t: *const sys::apr_table_t) -> &'a [sys::apr_table_entry_t] {
    if t.is_null() {
        return &[];
    }
    // SAFETY: apr_table_elts is a cast of the table to its array header, whose elts hold
    // nelts entries.
    unsafe {
        let arr = &*sys::ja4_table_elts(t);
        let n = usize::try_from(arr.nelts).unwrap_or(0);
        if n == 0 || arr.elts.is_null() {
            &[]
        } else {
            std::slice::from_raw_parts(arr.elts as *const sys::apr_table_entry_t, n)
        }
    }
}

/// A block of pool memory written front to back, its size computed beforehand: a copy per
/// string and no capacity bookkeeping. Writes past the end are dropped (the sizes come from
/// the same strings, so this does not happen; it keeps a slip from writing out of bounds).
pub struct PoolWriter {
    base: *mut u8,
    at: usize,
    cap: usize,
}

impl PoolWriter {
    /// `cap` bytes at `base`, none written yet.
    ///
    /// # Safety
    /// `base` is valid for writes of `cap` bytes for as long as the writer is used.
    pub unsafe fn new(base: *mut u8, cap: usize) -> Self {
        PoolWriter { base, at: 0, cap }
    }

    /// The bytes `range` (written already), borrowed from the pool rather than the writer.
    ///
    /// # Safety
    /// Every byte of `range` has been written and is not written again while the result is
    /// used; the memory outlives `'a`.
    pub unsafe fn written<'a>(&self, range: std::ops::Range<usize>) -> &'a [u8] {
        if range.end > self.at || range.start > range.end {
            return &[];
        }
        // SAFETY: initialized by the caller's guarantee, within the block.
        unsafe { std::slice::from_raw_parts(self.base.add(range.start), range.end - range.start) }
    }
}

impl BlockSink for PoolWriter {
    #[inline(always)]
    fn len(&self) -> usize {
        self.at
    }

    #[inline(always)]
    fn put(&mut self, b: &[u8]) {
        if b.len() <= self.cap - self.at {
            // SAFETY: in bounds (checked above); `b` cannot overlap memory not yet handed out.
            unsafe { std::ptr::copy_nonoverlapping(b.as_ptr(), self.base.add(self.at), b.len()) };
            self.at += b.len();
        }
    }

    #[inline(always)]
    fn push(&mut self, b: u8) {
        if self.at < self.cap {
            // SAFETY: in bounds (checked above).
            unsafe { *self.base.add(self.at) = b };
            self.at += 1;
        }
    }

    #[inline(always)]
    fn set_u32(&mut self, at: usize, v: u32) {
        if at + 4 <= self.at {
            // SAFETY: within what is written (checked above); unaligned write.
            unsafe { (self.base.add(at) as *mut [u8; 4]).write_unaligned(v.to_le_bytes()) };
        }
    }
}

/// Bytes in an APR pool.
#[derive(Clone, Copy)]
pub struct PoolBytes {
    ptr: *const u8,
    len: usize,
}

impl PoolBytes {
    /// `len` bytes at `ptr` (non-null), which must live as long as the result is used.
    pub fn from_raw(ptr: *const u8, len: usize) -> Self {
        PoolBytes { ptr, len }
    }

    pub fn as_ptr(self) -> *const u8 {
        self.ptr
    }

    /// The bytes.
    ///
    /// # Safety
    /// The memory they were taken from is still live.
    pub unsafe fn get<'a>(self) -> &'a [u8] {
        // SAFETY: `ptr` and `len` describe live pool memory (caller's guarantee); `ptr` is
        // never NULL (apr_palloc aborts rather than return NULL).
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }
}

/// Moves `value` into memory owned by `pool`: it is dropped when the pool is cleared.
///
/// # Safety
/// `pool` is a live APR pool.
pub unsafe fn pool_box<T>(pool: *mut sys::apr_pool_t, value: T) -> *mut T {
    let raw = Box::into_raw(Box::new(value));
    unsafe extern "C" fn drop_box<T>(data: *mut c_void) -> sys::apr_status_t {
        // SAFETY: registered exactly once below with a pointer from Box::into_raw::<T>.
        guard((), || drop(unsafe { Box::from_raw(data as *mut T) }));
        0
    }
    // SAFETY: the cleanup owns `raw` from now on; child cleanup does nothing (a forked child
    // must not free the parent's value twice).
    unsafe {
        sys::apr_pool_cleanup_register(
            pool,
            raw as *const c_void,
            Some(drop_box::<T>),
            Some(sys::apr_pool_cleanup_null),
        )
    };
    raw
}

/// A NUL-terminated copy of `v` in `pool`.
///
/// # Safety
/// `pool` is a live APR pool.
pub unsafe fn pool_str(pool: *mut sys::apr_pool_t, v: &[u8]) -> *const c_char {
    // SAFETY: apr_pstrmemdup copies `len` bytes and terminates them.
    unsafe { sys::apr_pstrmemdup(pool, v.as_ptr() as *const c_char, v.len()) }
}
