//! The module's only door to httpd, APR and the OS: every `unsafe` block of the crate is in
//! here (`lib.rs` denies `unsafe_code` everywhere else).
//!
//! Owns: safe views of what httpd hands the hooks — [`Server`], [`Connection`], [`Request`]
//! (with its tables, read and added to in place), [`Pool`] and the input filter's bucket
//! brigade ([`Brigade`]) — each borrowing
//! for as long as httpd keeps the structure alive; the module record and every `extern "C"`
//! entry point ([`hooks`]), each run in [`guard`]; where a request's record lives between its
//! hooks ([`RecordSlot`]); and the few OS calls the module makes ([`os`]: shared mappings, the
//! saved SYN, a plain thread).
//! Never: hands out a pointer (only references bounded by the pool, connection or request
//! they come from), decides anything about fingerprints or records (the safe modules do), or
//! lets a panic unwind into httpd.
//!
//! The views are `#[repr(transparent)]` over httpd's own structures and their accessors
//! inline to field reads: the safe layer costs no instructions per request.

mod brigade;
mod conn;
pub(crate) mod hooks;
pub(crate) mod os;
mod pool;
mod request;
mod server;
mod table;

use std::ffi::{c_char, CStr};
use std::panic::{catch_unwind, AssertUnwindSafe};

use apr_sys as sys;

pub(crate) use brigade::Brigade;
pub(crate) use conn::{Connection, Socket, Tls};
pub(crate) use pool::Pool;
pub(crate) use request::{RecordSlot, Request};
pub(crate) use server::{listeners, Server};

/// httpd's log levels the module uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Level {
    Err = 3,
    Warning = 4,
    Info = 6,
}

/// Runs `f`, turning a panic into `fallback`: no unwinding ever crosses into httpd.
pub(crate) fn guard<R>(fallback: R, f: impl FnOnce() -> R) -> R {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or(fallback)
}

/// Now, in APR's microseconds since the epoch.
pub(crate) fn now_us() -> i64 {
    // SAFETY: apr_time_now has no preconditions.
    unsafe { sys::apr_time_now() }
}

/// The bytes of a C string, empty for NULL.
///
/// # Safety
/// `p` is NULL or points to a NUL-terminated string that outlives `'a`.
#[inline(always)]
unsafe fn cbytes<'a>(p: *const c_char) -> &'a [u8] {
    if p.is_null() {
        b""
    } else {
        // SAFETY: the caller guarantees a valid NUL-terminated string.
        unsafe { CStr::from_ptr(p).to_bytes() }
    }
}

/// Our slot of a configuration vector (httpd's `ap_get_module_config`, a macro).
///
/// # Safety
/// `cv` is a live configuration vector (a server's, a connection's or a request's).
#[inline(always)]
unsafe fn module_config(cv: *const sys::ap_conf_vector_t) -> *mut std::ffi::c_void {
    // SAFETY: httpd gave the module its index when loading it, before any vector exists, and
    // every vector has a slot per module.
    unsafe { *(cv as *const *mut std::ffi::c_void).add(module_index()) }
}

/// Sets our slot of a configuration vector (httpd's `ap_set_module_config`).
///
/// # Safety
/// As [`module_config`].
#[inline(always)]
unsafe fn set_module_config(cv: *mut sys::ap_conf_vector_t, value: *mut std::ffi::c_void) {
    // SAFETY: as in module_config.
    unsafe { *(cv as *mut *mut std::ffi::c_void).add(module_index()) = value }
}

#[inline(always)]
fn module_index() -> usize {
    // SAFETY: httpd writes the index once while loading the module, before any hook runs.
    unsafe { (*std::ptr::addr_of!(hooks::ja4_module)).module_index as usize }
}

/// A C copy of a log message (NULs, which C would cut at, shown as '?').
fn c_message(msg: &str) -> std::ffi::CString {
    std::ffi::CString::new(msg.replace('\0', "?")).unwrap_or_default()
}
