//! [`Connection`]: a `conn_rec` (a client connection, or an HTTP/2 stream's secondary
//! connection) and [`Socket`], its accepted socket at pre_connection.

use std::ffi::{c_void, CStr};
use std::net::IpAddr;
use std::os::fd::BorrowedFd;

use apr_sys as sys;

use super::{cbytes, module_config, set_module_config, Pool, Server};
use crate::conn::{ConnState, H2Scan, HelloScan};

/// A connection httpd keeps for `'c`.
#[derive(Clone, Copy)]
#[repr(transparent)]
pub(crate) struct Connection<'c>(&'c sys::conn_rec);

/// Whether mod_ssl encrypts a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tls {
    /// mod_ssl serves it.
    ModSsl,
    /// mod_ssl is loaded and leaves it alone (plain HTTP).
    Plain,
    /// mod_ssl is not loaded: the connection may be anything.
    Unknown,
}

impl<'c> Connection<'c> {
    /// # Safety
    /// `raw` is NULL or a connection that lives for `'c`.
    #[inline(always)]
    pub(super) unsafe fn from_raw(raw: *const sys::conn_rec) -> Option<Connection<'c>> {
        // SAFETY: the caller's guarantee.
        unsafe { raw.as_ref() }.map(Connection)
    }

    /// httpd's connection id (unique among live connections).
    #[inline(always)]
    pub(crate) fn id(self) -> u64 {
        self.0.id as u64
    }

    /// Requests served on it before the current one.
    #[inline(always)]
    pub(crate) fn keepalives(self) -> u32 {
        u32::try_from(self.0.keepalives).unwrap_or(0)
    }

    /// Whether this is an HTTP/2 stream's secondary connection.
    #[inline(always)]
    pub(crate) fn is_secondary(self) -> bool {
        !self.0.master.is_null()
    }

    /// The server that accepted it.
    pub(crate) fn base_server(self) -> Option<Server<'c>> {
        // SAFETY: the base server lives as long as the configuration, beyond connections.
        unsafe { Server::from_raw(self.0.base_server) }
    }

    /// The connection pool.
    pub(crate) fn pool(self) -> Pool<'c> {
        // SAFETY: a connection's pool lives as long as it.
        unsafe { Pool::from_raw(self.0.pool) }.expect("a connection's pool")
    }

    /// The client's address and port.
    pub(crate) fn client(self) -> Option<(IpAddr, u16)> {
        endpoint(self.0.client_ip, self.0.client_addr)
    }

    /// Our address and port.
    pub(crate) fn local(self) -> Option<(IpAddr, u16)> {
        endpoint(self.0.local_ip, self.0.local_addr)
    }

    /// Whether mod_ssl encrypts it.
    pub(crate) fn tls(self) -> Tls {
        // SAFETY: a live connection; the glue asks mod_ssl's optional function, if any.
        match unsafe { sys::ja4_is_https(self.0 as *const _ as *mut _) } {
            1 => Tls::ModSsl,
            0 => Tls::Plain,
            _ => Tls::Unknown,
        }
    }

    /// The protocol negotiated on it ("http/1.1", "h2"...).
    pub(crate) fn protocol(self) -> &'c [u8] {
        // SAFETY: a live connection; the string is static or in the connection's pool.
        unsafe { cbytes(sys::ap_get_protocol(self.0 as *const _ as *mut _)) }
    }

    /// The primary connection: itself, or an HTTP/2 stream's master (which owns the state).
    #[inline(always)]
    fn primary(self) -> &'c sys::conn_rec {
        // SAFETY: master is NULL or the live primary connection, which outlives its streams.
        unsafe { self.0.master.as_ref() }.unwrap_or(self.0)
    }

    /// Our state of this connection (of its primary connection for HTTP/2 streams).
    #[inline(always)]
    pub(crate) fn state(self) -> Option<&'c ConnState> {
        // SAFETY: our slot of the primary connection holds NULL or the ConnState set_state
        // put in its pool, which lives until the primary connection's pool is cleared (after
        // its requests and streams); it is only read through shared references.
        unsafe { (module_config(self.primary().conn_config) as *const ConnState).as_ref() }
    }

    /// Makes `state` this connection's; `at_end(state)` runs when the connection ends.
    pub(crate) fn set_state(self, state: ConnState, at_end: fn(ConnState)) -> &'c ConnState {
        let kept = self.pool().keep_raw(state, at_end);
        // SAFETY: our slot of the live connection's vector; the state lives in its pool.
        unsafe {
            set_module_config(self.0.conn_config, kept.cast());
            &*kept
        }
    }

    /// Adds the raw input filter `name` with `scan` as its context (owned by the connection
    /// pool; registered after the state, so freed before it).
    pub(crate) fn add_raw_filter(self, name: &'static CStr, scan: HelloScan<'c>) {
        self.add_input_filter(name, scan);
    }

    /// Adds the HTTP/2 input filter `name` with `scan` as its context (as the raw filter's).
    pub(crate) fn add_filter(self, name: &'static CStr, scan: H2Scan<'c>) {
        self.add_input_filter(name, scan);
    }

    fn add_input_filter<T: Send + 'c>(self, name: &'static CStr, ctx: T) {
        let ctx = self.pool().keep_raw(ctx, drop);
        // SAFETY: a registered filter name, a context living as long as the connection.
        unsafe {
            sys::ap_add_input_filter(
                name.as_ptr(),
                ctx.cast::<c_void>(),
                std::ptr::null_mut(),
                self.0 as *const _ as *mut _,
            )
        };
    }
}

fn endpoint(
    ip: *const std::ffi::c_char,
    addr: *const sys::apr_sockaddr_t,
) -> Option<(IpAddr, u16)> {
    // SAFETY: httpd fills client_ip/local_ip (C strings in the connection pool) and the
    // sockaddrs for every connection.
    let ip = std::str::from_utf8(unsafe { cbytes(ip) })
        .ok()?
        .parse()
        .ok()?;
    // SAFETY: as above; NULL or the connection's address.
    let port = unsafe { addr.as_ref() }.map_or(0, |a| a.port);
    Some((ip, port))
}

/// The socket pre_connection is given (an `apr_socket_t` on plain TCP connections).
#[derive(Clone, Copy)]
pub(crate) struct Socket<'c>(*mut sys::apr_socket_t, std::marker::PhantomData<&'c ()>);

impl<'c> Socket<'c> {
    /// # Safety
    /// `csd` is NULL or the connection's `apr_socket_t`, open for `'c`.
    pub(super) unsafe fn from_raw(csd: *mut c_void) -> Socket<'c> {
        Socket(csd.cast(), std::marker::PhantomData)
    }

    /// Its file descriptor.
    pub(crate) fn fd(self) -> Option<BorrowedFd<'c>> {
        if self.0.is_null() {
            return None;
        }
        let mut fd: sys::apr_os_sock_t = -1;
        // SAFETY: a live APR socket; the descriptor stays open for `'c`.
        unsafe {
            (sys::apr_os_sock_get(&mut fd, self.0) == 0 && fd >= 0)
                .then(|| BorrowedFd::borrow_raw(fd))
        }
    }
}
