//! [`Server`]: a `server_rec` (the main server or a virtual host) and the listener list.

use std::ffi::c_void;
use std::os::fd::BorrowedFd;

use apr_sys as sys;

use super::{c_message, module_config, Level};
use crate::config::ServerConfig;

/// A server httpd keeps for `'s` (the configuration generation).
#[derive(Clone, Copy)]
#[repr(transparent)]
pub(crate) struct Server<'s>(&'s sys::server_rec);

impl<'s> Server<'s> {
    /// # Safety
    /// `raw` is NULL or a server record that lives for `'s`.
    #[inline(always)]
    pub(super) unsafe fn from_raw(raw: *const sys::server_rec) -> Option<Server<'s>> {
        // SAFETY: the caller's guarantee.
        unsafe { raw.as_ref() }.map(Server)
    }

    pub(super) fn raw(self) -> *const sys::server_rec {
        self.0
    }

    /// Our configuration of this server (made by create_server_config, merged for vhosts).
    #[inline(always)]
    pub(crate) fn config(self) -> Option<&'s ServerConfig> {
        // SAFETY: our slot of a server's vector holds NULL or the ServerConfig our create or
        // merge callback put in the configuration pool, which outlives the server record.
        unsafe { (module_config(self.0.module_config) as *const ServerConfig).as_ref() }
    }

    /// Whether this is a `<VirtualHost>`.
    pub(crate) fn is_virtual(self) -> bool {
        self.0.is_virtual != 0
    }

    /// Logs `msg` to this server's error log.
    pub(crate) fn log(self, level: Level, msg: &str) {
        log(Some(self), level, msg)
    }

    /// Whether this post_config pass is the real one: httpd runs the configuration once as a
    /// dry run at start-up, then for real (and again at each restart); the process pool's
    /// memory survives between them.
    pub(crate) fn is_real_pass(self) -> bool {
        const KEY: &std::ffi::CStr = c"mod_ja4_post_config_pass";
        // SAFETY: the process record and its pool live as long as the process; userdata is
        // read and set with a static key.
        unsafe {
            let pool = (*self.0.process).pool;
            let mut data: *mut c_void = std::ptr::null_mut();
            sys::apr_pool_userdata_get(&mut data, KEY.as_ptr(), pool);
            if data.is_null() {
                sys::apr_pool_userdata_set(1 as *const c_void, KEY.as_ptr(), None, pool);
                return false;
            }
        }
        true
    }
}

/// Logs `msg` (to `server`'s log, or httpd's main log for None).
pub(crate) fn log(server: Option<Server<'_>>, level: Level, msg: &str) {
    let m = c_message(msg);
    let s = server.map_or(std::ptr::null(), |s| s.raw());
    // SAFETY: the glue formats with "%s"; a NULL server logs to the main log.
    unsafe { sys::ja4_log_server(s, level as i32, 0, m.as_ptr()) }
}

/// One of httpd's open listening sockets.
#[derive(Clone, Copy)]
#[repr(transparent)]
pub(crate) struct Listener(&'static sys::ap_listen_rec);

impl Listener {
    /// The port it listens on (0 when unknown).
    pub(crate) fn port(self) -> u16 {
        // SAFETY: bind_addr is NULL or the listener's address, which lives as long as it.
        unsafe { self.0.bind_addr.as_ref() }.map_or(0, |a| a.port)
    }

    /// Its socket.
    pub(crate) fn fd(self) -> Option<BorrowedFd<'static>> {
        let mut fd: sys::apr_os_sock_t = -1;
        // SAFETY: sd is NULL or the listener's APR socket; apr_os_sock_get writes its fd,
        // which stays open as long as the listener.
        unsafe {
            (!self.0.sd.is_null() && sys::apr_os_sock_get(&mut fd, self.0.sd) == 0 && fd >= 0)
                .then(|| BorrowedFd::borrow_raw(fd))
        }
    }
}

/// httpd's listeners (`ap_listeners`), stable from post_config on.
pub(crate) fn listeners() -> impl Iterator<Item = Listener> {
    // SAFETY: ap_listeners heads httpd's list of open listeners; its nodes live until the
    // listeners are closed, which does not happen while the module's hooks run.
    let mut l = unsafe { sys::ap_listeners as *const sys::ap_listen_rec };
    std::iter::from_fn(move || {
        // SAFETY: as above; `next` is NULL or the following node.
        let lr: &'static sys::ap_listen_rec = unsafe { l.as_ref() }?;
        l = lr.next;
        Some(Listener(lr))
    })
}
