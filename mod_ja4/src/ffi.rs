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

/// Our slot of a configuration vector (httpd's `ap_get_module_config`, a macro).
///
/// # Safety
/// `cv` is a live configuration vector (a server's, a connection's or a request's).
#[inline(always)]
pub unsafe fn module_config(cv: *const sys::ap_conf_vector_t) -> *mut c_void {
    // SAFETY: httpd gave the module its index when loading it, before any vector exists, and
    // every vector has a slot per module.
    unsafe { *(cv as *const *mut c_void).add(module_index()) }
}

/// Sets our slot of a configuration vector (httpd's `ap_set_module_config`).
///
/// # Safety
/// As [`module_config`].
#[inline(always)]
pub unsafe fn set_module_config(cv: *mut sys::ap_conf_vector_t, value: *mut c_void) {
    // SAFETY: as in module_config.
    unsafe { *(cv as *mut *mut c_void).add(module_index()) = value }
}

#[inline(always)]
fn module_index() -> usize {
    // SAFETY: httpd writes the index once while loading the module, before any hook runs.
    unsafe { (*std::ptr::addr_of!(crate::ja4_module)).module_index as usize }
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

/// The entries of an APR table in insertion order (duplicates kept; a key may be NULL), by
/// APR's public `apr_table_elts`.
///
/// # Safety
/// `t` is NULL or a live table whose entries outlive `'a` and are not modified meanwhile.
pub unsafe fn table_slice<'a>(t: *const sys::apr_table_t) -> &'a [sys::apr_table_entry_t] {
    if t.is_null() {
        return &[];
    }
    // SAFETY: a live table; APR returns its array header, whose elts hold nelts entries.
    unsafe {
        let arr = sys::apr_table_elts(t);
        if arr.is_null() {
            return &[];
        }
        let n = usize::try_from((*arr).nelts).unwrap_or(0);
        if n == 0 || (*arr).elts.is_null() {
            &[]
        } else {
            std::slice::from_raw_parts((*arr).elts as *const sys::apr_table_entry_t, n)
        }
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

/// A copy of `v` in `pool` (NUL-terminated), as a slice.
///
/// # Safety
/// `pool` is a live APR pool; the result lives as long as it.
pub unsafe fn pool_bytes<'a>(pool: *mut sys::apr_pool_t, v: &[u8]) -> &'a [u8] {
    // SAFETY: apr_pstrmemdup copies `len` bytes and terminates them (it aborts rather than
    // return NULL).
    unsafe { std::slice::from_raw_parts(pool_str(pool, v) as *const u8, v.len()) }
}

pub fn now_us() -> i64 {
    // SAFETY: apr_time_now has no preconditions.
    unsafe { sys::apr_time_now() }
}
