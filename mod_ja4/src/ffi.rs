//! Small safe wrappers over the httpd/APR calls the hooks make.
//!
//! Owns: C string views, APR table iteration, logging through the C glue, pool-owned Rust values,
//! and the panic guard every `extern "C"` entry point runs in.
//! Never: keeps a pointer past the lifetime of the pool or request it came from.

use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};

use apr_sys as sys;
use ja4_core::shape::NameKey;

pub const LOG_ERR: c_int = 3;
pub const LOG_WARNING: c_int = 4;
pub const LOG_NOTICE: c_int = 5;
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

/// The array of entries of an APR table (`apr_table_elts`, without the call): APR declares
/// `apr_table_t` with its `apr_array_header_t` first so that a table pointer is its array
/// header's ("backwards compatibility with older modules which cast", apr_tables.c).
#[inline(always)]
pub fn table_elts(t: *const sys::apr_table_t) -> *mut sys::apr_array_header_t {
    t as *mut sys::apr_array_header_t
}

/// The entries of an APR table in insertion order (duplicates kept; a key may be NULL).
///
/// # Safety
/// `t` is NULL or a live table whose entries outlive `'a` and are not modified meanwhile.
pub unsafe fn table_slice<'a>(t: *const sys::apr_table_t) -> &'a [sys::apr_table_entry_t] {
    if t.is_null() {
        return &[];
    }
    // SAFETY: a live table's array header (see table_elts), whose elts hold nelts entries.
    unsafe {
        let arr = &*table_elts(t);
        let n = usize::try_from(arr.nelts).unwrap_or(0);
        if n == 0 || arr.elts.is_null() {
            &[]
        } else {
            std::slice::from_raw_parts(arr.elts as *const sys::apr_table_entry_t, n)
        }
    }
}

/// Whether the table key `key` (NULL or a C string) is the entry name of `k` (a shape's
/// [`NameKey`], with its shape's `tails`): compared a machine word at a time when `key` is
/// 8-byte aligned (httpd's header names are: each starts a pool allocation), else with the
/// name's bytes (`name()`).
///
/// # Safety
/// `key` is NULL or a NUL-terminated string.
#[inline(always)]
pub unsafe fn key_is<'a>(
    key: *const c_char,
    k: &NameKey,
    tails: &[u64],
    name: impl FnOnce() -> Option<&'a [u8]>,
) -> bool {
    if key.is_null() {
        return !k.is_named();
    }
    if WORD_LOADS && (key as usize) % 8 == 0 {
        let key = key as *const u64;
        // SAFETY: `matches` loads word `j` only once the string's words before it matched
        // name bytes, none of them its NUL: its byte `8 * j` is then within the string, and
        // an aligned word holding a readable byte lies in that byte's page.
        k.matches(tails, |j| unsafe { load_word(key.add(j)) })
    } else {
        // SAFETY: `key` is a C string.
        name().is_some_and(|n| unsafe { cstr_is(key, n) })
    }
}

/// Whether the C string `key` is `name` (which holds no NUL).
///
/// # Safety
/// `key` is a NUL-terminated string.
#[inline]
unsafe fn cstr_is(key: *const c_char, name: &[u8]) -> bool {
    // SAFETY: strncmp reads `key` up to its NUL and `name` up to its length, never further;
    // when they agree on `name.len()` bytes, none of them was `key`'s NUL, so the byte after
    // them is in `key` (its NUL, or more bytes of a longer key).
    unsafe {
        libc::strncmp(key, name.as_ptr() as *const c_char, name.len()) == 0
            && *key.add(name.len()) == 0
    }
}

/// Whether [`load_word`] exists for this architecture.
const WORD_LOADS: bool = cfg!(any(target_arch = "x86_64", target_arch = "aarch64"));

/// The aligned machine word at `p`, read as the processor reads it: the bytes of a C string
/// past its NUL are read too (never outside the page of its first byte, as the word is
/// aligned), which Rust's own loads may not do beyond an allocation; the load is therefore
/// one instruction of inline assembly.
///
/// # Safety
/// `p` is 8-byte aligned and its first byte is readable.
#[inline(always)]
unsafe fn load_word(p: *const u64) -> u64 {
    let w: u64;
    // SAFETY: an aligned 8-byte load from a page the caller guarantees is mapped; it reads
    // no other memory and writes none.
    #[cfg(target_arch = "x86_64")]
    unsafe {
        std::arch::asm!("mov {w}, qword ptr [{p}]", p = in(reg) p, w = lateout(reg) w,
            options(pure, readonly, nostack, preserves_flags));
    }
    // SAFETY: as above.
    #[cfg(target_arch = "aarch64")]
    unsafe {
        std::arch::asm!("ldr {w}, [{p}]", p = in(reg) p, w = lateout(reg) w,
            options(pure, readonly, nostack, preserves_flags));
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        let _ = p;
        unreachable!("word loads are only used where WORD_LOADS is true");
    }
    w
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
