//! APR tables: reading a request's entries in place and adding to them with the public API
//! (`apr_table_elts`, `apr_table_addn`, `apr_table_unset`), as httpd's own modules do.
//!
//! Reading hands out a slice borrowed from the request view, adding needs that view mutably:
//! an `apr_table_addn` may move the entry array, so no slice of it survives an addition. The
//! strings an entry points to stay where they are, so they are `'t`.

use std::ffi::CStr;
use std::marker::PhantomData;

use apr_sys as sys;

use super::cbytes;

/// One entry of an APR table whose strings live for `'t`.
#[repr(transparent)]
pub(crate) struct Entry<'t>(sys::apr_table_entry_t, PhantomData<&'t [u8]>);

impl<'t> Entry<'t> {
    /// The name (None for a NULL key, which APR allows).
    #[inline(always)]
    pub(crate) fn key(&self) -> Option<&'t [u8]> {
        // SAFETY: a table's keys are NULL or C strings in the table's pool (`'t`).
        (!self.0.key.is_null()).then(|| unsafe { cbytes(self.0.key) })
    }

    /// The value (empty for NULL).
    #[inline(always)]
    pub(crate) fn val(&self) -> &'t [u8] {
        // SAFETY: as for keys.
        unsafe { cbytes(self.0.val) }
    }
}

/// The entries of table `t` in insertion order (duplicates kept).
///
/// # Safety
/// `t` is NULL or a live table whose strings live for `'t`, not added to while the slice is
/// in use (`'a`).
#[inline(always)]
pub(super) unsafe fn entries<'a, 't>(t: *const sys::apr_table_t) -> &'a [Entry<'t>] {
    if t.is_null() {
        return &[];
    }
    // SAFETY: a live table; APR returns its array header, whose elts hold nelts entries;
    // Entry is a transparent wrapper of apr_table_entry_t.
    unsafe {
        let arr = sys::apr_table_elts(t);
        if arr.is_null() || (*arr).elts.is_null() {
            return &[];
        }
        let n = usize::try_from((*arr).nelts).unwrap_or(0);
        std::slice::from_raw_parts((*arr).elts as *const Entry<'t>, n)
    }
}

/// Adds `key` = `val` (pointers kept, not copied: `apr_table_addn`).
///
/// # Safety
/// `t` is a live table whose pool lives no longer than `val` and `key`.
#[inline(always)]
pub(super) unsafe fn add(t: *mut sys::apr_table_t, key: &CStr, val: &CStr) {
    // SAFETY: the caller's guarantee.
    unsafe { sys::apr_table_addn(t, key.as_ptr(), val.as_ptr()) }
}

/// Removes every `key` entry.
///
/// # Safety
/// `t` is a live table.
#[inline(always)]
pub(super) unsafe fn unset(t: *mut sys::apr_table_t, key: &CStr) {
    // SAFETY: the caller's guarantee.
    unsafe { sys::apr_table_unset(t, key.as_ptr()) }
}
