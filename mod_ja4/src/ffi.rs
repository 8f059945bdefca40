//! Small safe wrappers over the httpd/APR calls the hooks make.
//!
//! Owns: C string views, APR table iteration, logging through the C glue, pool-owned Rust values,
//! and the panic guard every `extern "C"` entry point runs in.
//! Never: keeps a pointer past the lifetime of the pool or request it came from.

use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};

use apr_sys as sys;

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

/// A value of an APR table entry, measured only when asked for.
#[derive(Clone, Copy)]
pub struct LazyCStr(*const c_char);

impl LazyCStr {
    /// No value.
    pub const NULL: LazyCStr = LazyCStr(std::ptr::null());

    pub fn is_null(self) -> bool {
        self.0.is_null()
    }

    /// The bytes (empty for NULL).
    ///
    /// # Safety
    /// The table entry is still live.
    pub unsafe fn get<'a>(self) -> &'a [u8] {
        // SAFETY: forwarded from the caller.
        unsafe { cbytes(self.0) }
    }
}

/// (key, value) pairs of an APR table in insertion order (duplicates kept), each value measured
/// only when the caller looks at it.
///
/// # Safety
/// `t` is a live table whose entries outlive `'a` and are not modified meanwhile.
pub unsafe fn table_entries<'a>(
    t: *const sys::apr_table_t,
) -> impl Iterator<Item = (&'a [u8], LazyCStr)> {
    let entries: &[sys::apr_table_entry_t] = if t.is_null() {
        &[]
    } else {
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
    };
    entries.iter().filter(|e| !e.key.is_null()).map(|e| {
        // SAFETY: table keys are NUL-terminated strings in the table's pool.
        (unsafe { cbytes(e.key) }, LazyCStr(e.val))
    })
}

/// Bytes in an APR pool, followed by a NUL ([`pool_with_bytes`]).
#[derive(Clone, Copy)]
pub struct PoolBytes {
    ptr: *const u8,
    len: usize,
}

impl PoolBytes {
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

/// Copies `bytes` into `pool`, NUL-terminated, right after a plain value made from where they
/// landed: one allocation for both.
///
/// # Safety
/// `pool` is a live APR pool.
pub unsafe fn pool_with_bytes<T: Copy>(
    pool: *mut sys::apr_pool_t,
    bytes: &[u8],
    make: impl FnOnce(PoolBytes) -> T,
) -> *const T {
    const { assert!(std::mem::align_of::<T>() <= 8) };
    let head = std::mem::size_of::<T>().next_multiple_of(8);
    // SAFETY: apr_palloc returns memory aligned for any type (8 bytes, asserted above) and
    // large enough for the value, the bytes and their NUL; the value is Copy (nothing to drop).
    unsafe {
        let p = sys::apr_palloc(pool, head + bytes.len() + 1) as *mut u8;
        let b = p.add(head);
        std::ptr::copy_nonoverlapping(bytes.as_ptr(), b, bytes.len());
        *b.add(bytes.len()) = 0;
        let t = p as *mut T;
        t.write(make(PoolBytes {
            ptr: b,
            len: bytes.len(),
        }));
        t
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
