//! The OS calls the module makes itself: anonymous shared memory for the parent and its
//! children ([`SharedMapping`]), the kernel's saved SYN (`TCP_SAVE_SYN`/`TCP_SAVED_SYN`),
//! waiting on a descriptor, and a plain thread for the parent's capture ([`PlainThread`]).

use std::ffi::{c_int, c_void};
use std::os::fd::{AsRawFd, BorrowedFd};
use std::sync::atomic::{AtomicPtr, AtomicU64, AtomicUsize, Ordering};

use super::Pool;

const TCP_SAVE_SYN: c_int = 27;
const TCP_SAVED_SYN: c_int = 28;

/// Types for which all-zero bytes are a valid value, shared between processes as is.
///
/// # Safety
/// Zeroed memory is a valid `Self`, and `Self` holds no pointers (the mapping is at the same
/// address in every process, but nothing else is).
pub(crate) unsafe trait ZeroValid: Sync {}
// SAFETY: an AtomicU64 is a u64.
unsafe impl ZeroValid for AtomicU64 {}
// SAFETY: a repr(C) block of AtomicU64s.
unsafe impl ZeroValid for crate::counters::Counters {}

/// An anonymous shared mapping of `[T]`, made by the parent in post_config (before children
/// fork, so they inherit it) and unmapped when that generation's pool is cleared.
pub(crate) struct SharedMapping<T: ZeroValid> {
    ptr: AtomicPtr<T>,
    len: AtomicUsize,
}

impl<T: ZeroValid> SharedMapping<T> {
    pub(crate) const fn new() -> Self {
        SharedMapping {
            ptr: AtomicPtr::new(std::ptr::null_mut()),
            len: AtomicUsize::new(0),
        }
    }

    /// The mapping, if made (zeroed at first).
    #[inline(always)]
    pub(crate) fn get(&self) -> Option<&'static [T]> {
        let p = self.ptr.load(Ordering::Acquire);
        if p.is_null() {
            return None;
        }
        let n = self.len.load(Ordering::Acquire);
        // SAFETY: `p` points to `n` zero-initialised Ts mapped by map(); the parent unmaps
        // it only after resetting the pointer, at a pool clear that follows every user (the
        // capture thread is joined by an earlier cleanup), and children never unmap it.
        Some(unsafe { std::slice::from_raw_parts(p, n) })
    }

    /// The first T of the mapping, if made (one load: the hot path of the counters).
    #[inline(always)]
    pub(crate) fn first(&self) -> Option<&'static T> {
        // SAFETY: as in get(); a mapping holds at least one T.
        unsafe { self.ptr.load(Ordering::Acquire).as_ref() }
    }

    /// Maps `len` zeroed Ts, unmapped when `pool` is cleared.
    pub(crate) fn map(&'static self, pool: Pool<'_>, len: usize) -> std::io::Result<()> {
        let bytes = len.max(1) * std::mem::size_of::<T>();
        let p = map_anonymous(bytes)?;
        self.len.store(len, Ordering::Release);
        self.ptr.store(p.cast(), Ordering::Release);
        let addr = p as usize;
        pool.on_clear(move || {
            if self
                .ptr
                .compare_exchange(
                    addr as *mut T,
                    std::ptr::null_mut(),
                    Ordering::AcqRel,
                    Ordering::Acquire,
                )
                .is_ok()
            {
                self.len.store(0, Ordering::Release);
                // SAFETY: the mapping made above, of this size; nobody reaches it any more.
                unsafe { libc::munmap(addr as *mut c_void, bytes) };
            }
        });
        Ok(())
    }

    /// Maps `len` zeroed Ts once per httpd parent and keeps them across graceful restarts:
    /// the mapping's address is kept in httpd's retained data under `key` (which outlives
    /// the module's reload), so the next generation finds the same memory, contents and all.
    /// A new size makes a new mapping; the old one stays mapped (children of the old
    /// generation may still use it) until httpd exits.
    pub(crate) fn map_retained(
        &'static self,
        pool: Pool<'_>,
        key: &'static std::ffi::CStr,
        len: usize,
    ) -> std::io::Result<()> {
        #[repr(C)]
        struct Retained {
            addr: usize,
            bytes: usize,
        }
        let bytes = len.max(1) * std::mem::size_of::<T>();
        // SAFETY: httpd's retained data for `key`: NULL, or the block made below on an
        // earlier pass, sized and aligned for a Retained, alive until httpd exits.
        let kept = unsafe { apr_sys::ap_retained_data_get(key.as_ptr()) }.cast::<Retained>();
        // SAFETY: as above; read only when not NULL.
        let found = unsafe { kept.as_ref() }.filter(|r| r.bytes == bytes && r.addr != 0);
        let addr = match found {
            Some(r) => r.addr,
            None => {
                let p = map_anonymous(bytes)?;
                let slot = if kept.is_null() {
                    // SAFETY: httpd allocates (and zeroes) a block of this size for `key` in
                    // its process pool; `key` is a static C string.
                    unsafe {
                        apr_sys::ap_retained_data_create(
                            key.as_ptr(),
                            std::mem::size_of::<Retained>(),
                        )
                    }
                    .cast::<Retained>()
                } else {
                    kept
                };
                // SAFETY: the retained block for `key`, sized for a Retained.
                if let Some(r) = unsafe { slot.as_mut() } {
                    *r = Retained {
                        addr: p as usize,
                        bytes,
                    };
                }
                p as usize
            }
        };
        self.len.store(len, Ordering::Release);
        self.ptr.store(addr as *mut T, Ordering::Release);
        // The memory stays; this generation's view of it goes with its pool.
        pool.on_clear(move || {
            let _ = self.ptr.compare_exchange(
                addr as *mut T,
                std::ptr::null_mut(),
                Ordering::AcqRel,
                Ordering::Acquire,
            );
        });
        Ok(())
    }
}

/// `bytes` of anonymous shared memory, zero-filled (a valid `[T]` for any [`ZeroValid`] T),
/// shared with the children forked after.
fn map_anonymous(bytes: usize) -> std::io::Result<*mut c_void> {
    // SAFETY: a fresh anonymous mapping; no existing memory is touched.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            bytes,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        return Err(std::io::Error::last_os_error());
    }
    Ok(p)
}

/// Asks the kernel to keep the SYN of connections accepted on listener `fd`.
pub(crate) fn save_syn(fd: BorrowedFd<'_>) -> std::io::Result<()> {
    let one: c_int = 1;
    // SAFETY: setsockopt on an open descriptor with a c_int option value.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::IPPROTO_TCP,
            TCP_SAVE_SYN,
            (&one as *const c_int).cast(),
            std::mem::size_of::<c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// The SYN the kernel saved for accepted socket `fd` (IP header on), into `buf`.
pub(crate) fn saved_syn<'b>(fd: BorrowedFd<'_>, buf: &'b mut [u8]) -> Option<&'b [u8]> {
    let mut len = libc::socklen_t::try_from(buf.len()).unwrap_or(libc::socklen_t::MAX);
    // SAFETY: getsockopt writes at most `len` bytes into `buf`.
    let rc = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::IPPROTO_TCP,
            TCP_SAVED_SYN,
            buf.as_mut_ptr().cast(),
            &mut len,
        )
    };
    (rc == 0 && len > 0).then(|| &buf[..(len as usize).min(buf.len())])
}

/// Waits until `fd` is readable, at most `ms` milliseconds.
pub(crate) fn wait_readable(fd: &impl AsRawFd, ms: i32) {
    let mut pfd = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd.
    unsafe { libc::poll(&mut pfd, 1, ms) };
}

/// A plain pthread, created with every signal blocked (httpd's parent handles them) and
/// without Rust's thread machinery (no thread-local destructor pins the module's DSO, which
/// httpd unloads at restart). It runs `run(&mut C)`; the handle owns `C`.
pub(crate) struct PlainThread<C: Send> {
    tid: libc::pthread_t,
    ctx: *mut C,
    pid: u32,
}

// SAFETY: the handle only joins the thread or frees the context after it is gone.
unsafe impl<C: Send> Send for PlainThread<C> {}

struct Start<C> {
    ctx: *mut C,
    run: fn(&mut C),
}

impl<C: Send> PlainThread<C> {
    /// Starts the thread.
    pub(crate) fn spawn(ctx: C, run: fn(&mut C)) -> std::io::Result<PlainThread<C>> {
        extern "C" fn trampoline<C>(arg: *mut c_void) -> *mut c_void {
            // SAFETY: `arg` is the Start made below, ours alone; its ctx is alive until the
            // handle has joined us.
            let start = unsafe { Box::from_raw(arg.cast::<Start<C>>()) };
            super::guard((), || (start.run)(unsafe { &mut *start.ctx }));
            std::ptr::null_mut()
        }
        let ctx = Box::into_raw(Box::new(ctx));
        let start = Box::into_raw(Box::new(Start { ctx, run }));
        let mut tid: libc::pthread_t = 0;
        // SAFETY: the signal mask is restored right after; the thread owns `start`, and the
        // handle keeps `ctx` until it has joined the thread.
        let rc = unsafe {
            let mut all: libc::sigset_t = std::mem::zeroed();
            let mut old: libc::sigset_t = std::mem::zeroed();
            libc::sigfillset(&mut all);
            libc::pthread_sigmask(libc::SIG_BLOCK, &all, &mut old);
            let rc =
                libc::pthread_create(&mut tid, std::ptr::null(), trampoline::<C>, start.cast());
            libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut());
            rc
        };
        if rc != 0 {
            // SAFETY: no thread was created; both boxes are still ours.
            unsafe {
                drop(Box::from_raw(start));
                drop(Box::from_raw(ctx));
            }
            return Err(std::io::Error::from_raw_os_error(rc));
        }
        Ok(PlainThread {
            tid,
            ctx,
            pid: std::process::id(),
        })
    }

    /// Waits for the thread to return (the caller has told it to stop) and gives back its
    /// context. In a forked child, where the thread does not exist, only the context is taken.
    pub(crate) fn join(self) -> C {
        if self.pid == std::process::id() {
            // SAFETY: the thread created in spawn, joined once (join takes the handle).
            unsafe { libc::pthread_join(self.tid, std::ptr::null_mut()) };
        }
        // SAFETY: the thread is gone (joined, or never existed in this process); the context
        // is ours again.
        *unsafe { Box::from_raw(self.ctx) }
    }

    /// Whether the thread runs in this process (not in a forked child's copy).
    pub(crate) fn is_ours(&self) -> bool {
        self.pid == std::process::id()
    }
}
