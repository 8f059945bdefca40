//! [`Brigade`]: the bucket brigade an input filter's read returned, walked without being
//! changed.

use std::marker::PhantomData;
use std::ptr::NonNull;

use apr_sys as sys;

/// A brigade httpd handed a filter, valid for `'b` (the filter call).
pub(crate) struct Brigade<'b> {
    raw: NonNull<sys::apr_bucket_brigade>,
    _life: PhantomData<&'b sys::apr_bucket_brigade>,
}

impl<'b> Brigade<'b> {
    /// # Safety
    /// `raw` is NULL or a live brigade not changed by anyone else during `'b`.
    pub(super) unsafe fn from_raw(raw: *mut sys::apr_bucket_brigade) -> Option<Brigade<'b>> {
        NonNull::new(raw).map(|raw| Brigade {
            raw,
            _life: PhantomData,
        })
    }

    /// Calls `f` with the bytes of each data bucket in order, read without blocking (the
    /// lower filter already filled them), until `f` returns false, a bucket cannot be read
    /// or the brigade ends. Metadata buckets are skipped.
    pub(crate) fn each_data(&self, mut f: impl FnMut(&[u8]) -> bool) {
        let bb = self.raw.as_ptr();
        // SAFETY: brigade walking per APR's ring macros (through the glue) on a live brigade.
        let sentinel = unsafe { sys::ja4_brigade_sentinel(bb) };
        let mut e = unsafe { sys::ja4_brigade_first(bb) };
        while e != sentinel {
            // SAFETY: `e` is a bucket of this brigade.
            if unsafe { sys::ja4_bucket_is_metadata(e) } == 0 {
                let mut data: *const std::ffi::c_char = std::ptr::null();
                let mut len: sys::apr_size_t = 0;
                // SAFETY: a non-blocking read of a data bucket of this brigade.
                let rv = unsafe {
                    sys::ja4_bucket_read(
                        e,
                        &mut data,
                        &mut len,
                        sys::apr_read_type_e_APR_NONBLOCK_READ,
                    )
                };
                if rv != 0 {
                    return;
                }
                let bytes: &[u8] = if len > 0 && !data.is_null() {
                    // SAFETY: the bucket's data is valid for `len` bytes while it is in the
                    // brigade, which nobody changes during this call.
                    unsafe { std::slice::from_raw_parts(data.cast::<u8>(), len) }
                } else {
                    &[]
                };
                if !f(bytes) {
                    return;
                }
            }
            // SAFETY: ring successor of a bucket of this brigade.
            e = unsafe { sys::ja4_bucket_next(e) };
        }
    }
}
