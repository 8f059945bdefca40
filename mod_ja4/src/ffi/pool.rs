//! [`Pool`]: an APR pool as a lifetime. What the module puts in a pool lives exactly as long
//! as it: values are dropped by a pool cleanup, byte strings are copied in.

use std::ffi::c_void;
use std::marker::PhantomData;
use std::ptr::NonNull;

use apr_sys as sys;

use super::guard;

/// A live APR pool that stays alive for `'p`.
#[derive(Clone, Copy)]
pub(crate) struct Pool<'p> {
    raw: NonNull<sys::apr_pool_t>,
    _life: PhantomData<&'p sys::apr_pool_t>,
}

impl<'p> Pool<'p> {
    /// # Safety
    /// `raw` is NULL or a pool that stays alive (not cleared or destroyed) for `'p`.
    #[inline(always)]
    pub(super) unsafe fn from_raw(raw: *mut sys::apr_pool_t) -> Option<Pool<'p>> {
        NonNull::new(raw).map(|raw| Pool {
            raw,
            _life: PhantomData,
        })
    }

    #[inline(always)]
    pub(super) fn raw(self) -> *mut sys::apr_pool_t {
        self.raw.as_ptr()
    }

    /// A NUL-terminated copy of `v` in the pool, as a slice (without the NUL).
    #[inline]
    pub(crate) fn copy(self, v: &[u8]) -> &'p [u8] {
        // SAFETY: apr_pstrmemdup copies `len` bytes and terminates them; it aborts rather than
        // return NULL. The copy lives as long as the pool.
        unsafe {
            let p = sys::apr_pstrmemdup(self.raw(), v.as_ptr().cast(), v.len());
            std::slice::from_raw_parts(p.cast::<u8>(), v.len())
        }
    }

    /// A copy of the C string `v` in the pool.
    pub(crate) fn keep_cstr(self, v: &std::ffi::CStr) -> &'p std::ffi::CStr {
        let b = v.to_bytes();
        // SAFETY: apr_pstrmemdup copies `len` bytes and NUL-terminates them (aborting rather
        // than returning NULL); a CStr's bytes hold no NUL, so the copy is that C string,
        // alive as long as the pool.
        unsafe {
            std::ffi::CStr::from_ptr(sys::apr_pstrmemdup(self.raw(), b.as_ptr().cast(), b.len()))
        }
    }

    /// `v` up to its first NUL, copied into the pool as a C string (no heap allocation).
    pub(crate) fn keep_text(self, v: &[u8]) -> &'p std::ffi::CStr {
        let end = v.iter().position(|&b| b == 0).unwrap_or(v.len());
        let b = &v[..end];
        // SAFETY: apr_pstrmemdup copies `len` bytes and NUL-terminates them (aborting rather
        // than returning NULL); `b` holds no NUL, so the copy is that C string, alive as
        // long as the pool.
        unsafe {
            std::ffi::CStr::from_ptr(sys::apr_pstrmemdup(self.raw(), b.as_ptr().cast(), b.len()))
        }
    }

    /// A NUL-terminated copy of `v` in the pool, for httpd (errors of directives).
    pub(super) fn c_copy(self, v: &[u8]) -> *const std::ffi::c_char {
        self.copy(v).as_ptr().cast()
    }

    /// Runs `f` when the pool is cleared (in the process that registered it).
    pub(crate) fn on_clear(self, f: impl FnOnce() + Send + 'static) {
        let f: Box<dyn FnOnce() + Send> = Box::new(f);
        self.keep_raw(f, |f| f());
    }

    /// `value` boxed and owned by the pool; the pointer is valid until the pool is cleared.
    pub(super) fn keep_raw<T: Send + 'p>(self, value: T, at_clear: fn(T)) -> *mut T {
        struct Kept<T> {
            value: T,
            at_clear: fn(T),
        }
        unsafe extern "C" fn clear<T>(data: *mut c_void) -> sys::apr_status_t {
            guard((), || {
                // SAFETY: registered exactly once below with a pointer from Box::into_raw.
                let kept = unsafe { Box::from_raw(data.cast::<Kept<T>>()) };
                (kept.at_clear)(kept.value)
            });
            0
        }
        let raw = Box::into_raw(Box::new(Kept { value, at_clear }));
        // SAFETY: the cleanup owns `raw` from now on; the child cleanup does nothing (a forked
        // child must not free the parent's value a second time).
        unsafe {
            sys::apr_pool_cleanup_register(
                self.raw(),
                raw as *const c_void,
                Some(clear::<T>),
                Some(sys::apr_pool_cleanup_null),
            );
            std::ptr::addr_of_mut!((*raw).value)
        }
    }

    /// `value` moved into pool memory without a cleanup (for values with nothing to drop).
    #[inline(always)]
    pub(super) fn alloc<T: Copy + 'p>(self, value: T) -> &'p mut T {
        const { assert!(std::mem::align_of::<T>() <= 8) };
        // SAFETY: apr_palloc returns memory aligned to 8 of the size asked (it aborts rather
        // than return NULL); it is written before the reference is made, and T needs no drop.
        unsafe {
            let p = sys::apr_palloc(self.raw(), std::mem::size_of::<T>()).cast::<T>();
            p.write(value);
            &mut *p
        }
    }
}
