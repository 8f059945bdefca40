//! The module record and every function httpd calls: each turns httpd's pointers into the
//! safe views and calls the safe code, inside [`guard`] (a panic becomes the hook's neutral
//! answer, never an unwind into httpd).

use std::ffi::{c_char, c_int, c_void};

use apr_sys as sys;

use super::{guard, module_config, Brigade, Connection, Pool, Request, Server, Socket};
use crate::config::{self, ServerConfig};
use crate::conn::{self, H2Scan, HelloScan};

/// The module record. httpd writes into it (module_index, next, dynamic_load_handle), so it
/// lives in writable memory.
#[no_mangle]
#[allow(non_upper_case_globals)]
pub static mut ja4_module: sys::module = sys::module {
    version: sys::MODULE_MAGIC_NUMBER_MAJOR as c_int,
    minor_version: sys::MODULE_MAGIC_NUMBER_MINOR as c_int,
    module_index: -1,
    name: c"mod_ja4.c".as_ptr(),
    dynamic_load_handle: std::ptr::null_mut(),
    next: std::ptr::null_mut(),
    magic: sys::MODULE_MAGIC_COOKIE as std::ffi::c_ulong,
    rewrite_args: None,
    create_dir_config: Some(create_dir_config),
    merge_dir_config: Some(merge_dir_config),
    create_server_config: Some(create_server_config),
    merge_server_config: Some(merge_server_config),
    cmds: &COMMANDS.0 as *const _ as *const sys::command_rec,
    register_hooks: Some(register_hooks),
    flags: 0,
};

const OK: c_int = sys::OK as c_int;
const DECLINED: c_int = sys::DECLINED;

/// A hook-ordering name (a static C string) for httpd's predecessor lists.
#[repr(transparent)]
struct Pred(*const c_char);
// SAFETY: points to a static, immutable C string.
unsafe impl Sync for Pred {}

unsafe extern "C" fn register_hooks(_p: *mut sys::apr_pool_t) {
    guard((), || {
        const FIRST: c_int = -10; // APR_HOOK_REALLY_FIRST
        const MIDDLE: c_int = 10;
        const REALLY_LAST: c_int = 30;
        let none = std::ptr::null();
        // After mod_ssl's, which decides whether the connection is TLS.
        static AFTER_SSL: [Pred; 2] = [Pred(c"mod_ssl.c".as_ptr()), Pred(std::ptr::null())];
        // SAFETY: hook registration functions of httpd, called during module loading.
        unsafe {
            sys::ap_hook_post_config(Some(post_config), none, none, MIDDLE);
            sys::ap_hook_child_init(Some(child_init), none, none, MIDDLE);
            sys::ap_hook_pre_connection(
                Some(pre_connection),
                AFTER_SSL.as_ptr() as *const *const c_char,
                none,
                MIDDLE,
            );
            // Before mod_security's phase 1 and mod_rewrite, so they see the JA4* variables.
            sys::ap_hook_post_read_request(Some(post_read_request), none, none, FIRST - 10);
            // Last: a record's JA4H variable must stay valid while other modules log.
            sys::ap_hook_log_transaction(Some(log_transaction), none, none, REALLY_LAST);
            // First of the access checkers: a section's JA4Mitigation acts before any
            // authentication or authorization.
            sys::ap_hook_access_checker(Some(access_checker), none, none, FIRST);
            sys::ap_hook_handler(Some(handler), none, none, MIDDLE);
            // Below mod_ssl (CONNECTION + 5) and above the core socket filter (NETWORK).
            sys::ap_register_input_filter(
                conn::FILTER_NAME.as_ptr(),
                Some(raw_in_filter),
                None,
                sys::ap_filter_type_AP_FTYPE_NETWORK - 1,
            );
            // Above mod_ssl (CONNECTION + 5): it reads what mod_http2 and HTTP_IN read.
            sys::ap_register_input_filter(
                conn::H2_FILTER_NAME.as_ptr(),
                Some(h2_in_filter),
                None,
                sys::ap_filter_type_AP_FTYPE_CONNECTION + 4,
            );
        }
    })
}

unsafe extern "C" fn post_config(
    pconf: *mut sys::apr_pool_t,
    _plog: *mut sys::apr_pool_t,
    _ptemp: *mut sys::apr_pool_t,
    s: *mut sys::server_rec,
) -> c_int {
    guard(OK, || {
        // SAFETY: this generation's configuration pool and main server, alive for the call.
        let (Some(pconf), Some(s)) = (unsafe { Pool::from_raw(pconf) }, unsafe {
            Server::from_raw(s)
        }) else {
            return OK;
        };
        if crate::post_config(pconf, s) {
            OK
        } else {
            500 // any value but OK stops startup
        }
    })
}

unsafe extern "C" fn child_init(pchild: *mut sys::apr_pool_t, s: *mut sys::server_rec) {
    guard((), || {
        // SAFETY: the child's pool (alive until it exits) and the main server.
        if let (Some(pchild), Some(s)) = (unsafe { Pool::from_raw(pchild) }, unsafe {
            Server::from_raw(s)
        }) {
            crate::child_init(pchild, s);
        }
    })
}

unsafe extern "C" fn create_server_config(
    p: *mut sys::apr_pool_t,
    _s: *mut sys::server_rec,
) -> *mut c_void {
    guard(std::ptr::null_mut(), || {
        // SAFETY: the configuration pool, which outlives the server records.
        let Some(p) = (unsafe { Pool::from_raw(p) }) else {
            return std::ptr::null_mut();
        };
        p.keep_raw(ServerConfig::default(), drop).cast()
    })
}

unsafe extern "C" fn merge_server_config(
    p: *mut sys::apr_pool_t,
    base: *mut c_void,
    add: *mut c_void,
) -> *mut c_void {
    guard(base, || {
        // SAFETY: both are ServerConfigs our create callback made (or merged) in pools that
        // outlive this call.
        let (Some(p), Some(base), Some(add)) = (
            unsafe { Pool::from_raw(p) },
            unsafe { (base as *const ServerConfig).as_ref() },
            unsafe { (add as *const ServerConfig).as_ref() },
        ) else {
            return base;
        };
        p.keep_raw(config::merge(base, add), drop).cast()
    })
}

unsafe extern "C" fn create_dir_config(p: *mut sys::apr_pool_t, _dir: *mut c_char) -> *mut c_void {
    guard(std::ptr::null_mut(), || {
        // SAFETY: the configuration pool, which outlives the section's configuration.
        let Some(p) = (unsafe { Pool::from_raw(p) }) else {
            return std::ptr::null_mut();
        };
        p.keep_raw(config::DirConfig::default(), drop).cast()
    })
}

unsafe extern "C" fn merge_dir_config(
    p: *mut sys::apr_pool_t,
    base: *mut c_void,
    add: *mut c_void,
) -> *mut c_void {
    guard(base, || {
        // SAFETY: both are DirConfigs our create callback made (or merged) in pools that
        // outlive this call.
        let (Some(p), Some(base), Some(add)) = (
            unsafe { Pool::from_raw(p) },
            unsafe { (base as *const config::DirConfig).as_ref() },
            unsafe { (add as *const config::DirConfig).as_ref() },
        ) else {
            return base;
        };
        p.keep_raw(config::merge_dir(base, add), drop).cast()
    })
}

/// Every directive's `command_rec`, from [`config::DIRECTIVES`], NULL-terminated.
struct Commands([sys::command_rec; config::DIRECTIVES.len() + 1]);
// SAFETY: static, never written; the pointers are to static C strings and our function.
unsafe impl Sync for Commands {}

static COMMANDS: Commands = Commands({
    // SAFETY: an all-zero command_rec is httpd's terminator (NULL name).
    let mut all: [sys::command_rec; config::DIRECTIVES.len() + 1] = unsafe { std::mem::zeroed() };
    let mut i = 0;
    while i < config::DIRECTIVES.len() {
        let d = &config::DIRECTIVES[i];
        all[i] = sys::command_rec {
            name: d.name.as_ptr(),
            func: sys::cmd_func {
                take1: Some(set_directive),
            },
            cmd_data: std::ptr::null_mut(),
            req_override: if d.per_dir {
                (sys::RSRC_CONF | sys::ACCESS_CONF) as i32
            } else {
                sys::RSRC_CONF as i32
            },
            args_how: match d.takes {
                config::Takes::One => sys::cmd_how_TAKE1,
                config::Takes::List => sys::cmd_how_ITERATE,
                config::Takes::Line => sys::cmd_how_RAW_ARGS,
            },
            errmsg: d.help.as_ptr(),
        };
        i += 1;
    }
    all
});

unsafe extern "C" fn set_directive(
    cmd: *mut sys::cmd_parms,
    mconfig: *mut c_void,
    arg: *const c_char,
) -> *const c_char {
    guard(
        c"mod_ja4: internal error while reading a directive".as_ptr(),
        || {
            // SAFETY: httpd passes the live cmd_parms of the directive being read; its
            // directive's name and the argument are C strings.
            let (cmd, name, arg) = unsafe {
                let cmd = &*cmd;
                (cmd, super::cbytes((*cmd.cmd).name), super::cbytes(arg))
            };
            // SAFETY: the configuration pool outlives the returned message.
            let Some(pool) = (unsafe { Pool::from_raw(cmd.pool) }) else {
                return c"mod_ja4: no configuration pool".as_ptr();
            };
            // SAFETY: the server being configured; our slot holds its ServerConfig, which only
            // this (single-threaded) configuration pass touches now.
            let (server, sc) = unsafe {
                (
                    Server::from_raw(cmd.server),
                    cmd.server.as_ref().and_then(|s| {
                        (module_config(s.module_config) as *mut ServerConfig).as_mut()
                    }),
                )
            };
            let Some(sc) = sc else {
                return pool.c_copy(b"mod_ja4: no server configuration");
            };
            let name = String::from_utf8_lossy(name);
            let arg = String::from_utf8_lossy(arg);
            // Inside <Directory>, <Location> or <Files>: `mconfig` is the section's DirConfig.
            if !cmd.path.is_null() {
                // SAFETY: httpd passes our create_dir_config's DirConfig of the section being
                // read, which only this (single-threaded) configuration pass touches now.
                let Some(dc) = (unsafe { (mconfig as *mut config::DirConfig).as_mut() }) else {
                    return pool.c_copy(b"mod_ja4: no directory configuration");
                };
                return match config::set_dir_directive(dc, &name, &arg) {
                    Ok(()) => std::ptr::null(),
                    Err(e) => pool.c_copy(e.as_bytes()),
                };
            }
            let in_vhost = server.is_some_and(|s| s.is_virtual());
            match config::set_directive(sc, &name, &arg, in_vhost) {
                Ok(()) => std::ptr::null(),
                Err(e) => pool.c_copy(e.as_bytes()),
            }
        },
    )
}

unsafe extern "C" fn pre_connection(c: *mut sys::conn_rec, csd: *mut c_void) -> c_int {
    guard(DECLINED, || {
        // SAFETY: httpd passes the live connection and its socket.
        let (Some(c), csd) = (unsafe { Connection::from_raw(c) }, unsafe {
            Socket::from_raw(csd)
        }) else {
            return DECLINED;
        };
        if conn::pre_connection(c, csd) {
            OK
        } else {
            DECLINED
        }
    })
}

/// An inspecting input filter (`T` its `f->ctx`): passes every read down unchanged and lets
/// [`conn::Inspector::inspect`] look at what comes back until it has decided; then only
/// forwards — a flag test and a call for every read of the connection's life — or leaves the
/// chain when it may.
///
/// # Safety
/// httpd's arguments of an input filter call whose `ctx` is NULL or the `T` pre_connection
/// added with the filter (in the connection pool).
unsafe fn inspecting_filter<T: conn::Inspector>(
    f: *mut sys::ap_filter_t,
    bb: *mut sys::apr_bucket_brigade,
    mode: sys::ap_input_mode_t,
    block: sys::apr_read_type_e,
    readbytes: sys::apr_off_t,
) -> sys::apr_status_t {
    // SAFETY: the caller's filter; only this connection's thread runs its input filters, so
    // the context is ours alone for the call.
    let (next, scan) = unsafe { ((*f).next, ((*f).ctx as *mut T).as_mut()) };
    // SAFETY: pass the read down unchanged; we only look at what comes back.
    let rv = unsafe { sys::ap_get_brigade(next, bb, mode, block, readbytes) };
    let Some(scan) = scan else { return rv };
    if scan.is_done()
        || rv != 0
        || mode == sys::ap_input_mode_t_AP_MODE_SPECULATIVE
        || mode == sys::ap_input_mode_t_AP_MODE_INIT
    {
        return rv;
    }
    // SAFETY: the brigade our read filled, not changed by anyone else during this call.
    if let Some(bb) = unsafe { Brigade::from_raw(bb) } {
        guard((), || scan.inspect(&bb));
    }
    if scan.is_done() && scan.may_leave() {
        // SAFETY: removing ourselves from the live chain after our read returned (httpd's
        // idiom); the filter above is mod_ssl's, whose next pointer is relinked.
        unsafe { sys::ap_remove_input_filter(f) };
    }
    rv
}

/// The raw input filter, below mod_ssl: the ClientHello ([`HelloScan`]).
unsafe extern "C" fn raw_in_filter(
    f: *mut sys::ap_filter_t,
    bb: *mut sys::apr_bucket_brigade,
    mode: sys::ap_input_mode_t,
    block: sys::apr_read_type_e,
    readbytes: sys::apr_off_t,
) -> sys::apr_status_t {
    // SAFETY: httpd's call of the filter pre_connection added with a HelloScan context.
    unsafe { inspecting_filter::<HelloScan<'_>>(f, bb, mode, block, readbytes) }
}

/// The HTTP/2 input filter, above mod_ssl: the first frames ([`H2Scan`]).
unsafe extern "C" fn h2_in_filter(
    f: *mut sys::ap_filter_t,
    bb: *mut sys::apr_bucket_brigade,
    mode: sys::ap_input_mode_t,
    block: sys::apr_read_type_e,
    readbytes: sys::apr_off_t,
) -> sys::apr_status_t {
    // SAFETY: httpd's call of the filter pre_connection added with an H2Scan context.
    unsafe { inspecting_filter::<H2Scan<'_>>(f, bb, mode, block, readbytes) }
}

unsafe extern "C" fn post_read_request(r: *mut sys::request_rec) -> c_int {
    guard(DECLINED, || {
        // SAFETY: httpd passes the live request of this hook call.
        match unsafe { Request::from_raw(r) } {
            Some(r) => crate::request::post_read_request(r).unwrap_or(DECLINED),
            None => DECLINED,
        }
    })
}

unsafe extern "C" fn access_checker(r: *mut sys::request_rec) -> c_int {
    guard(DECLINED, || {
        // SAFETY: httpd passes the live request of this hook call.
        match unsafe { Request::from_raw(r) } {
            Some(r) => crate::request::access_checker(r).unwrap_or(DECLINED),
            None => DECLINED,
        }
    })
}

unsafe extern "C" fn log_transaction(r: *mut sys::request_rec) -> c_int {
    guard(DECLINED, || {
        // SAFETY: httpd passes the live (final) request of this hook call.
        if let Some(r) = unsafe { Request::from_raw(r) } {
            crate::request::log_transaction(r);
        }
        DECLINED
    })
}

unsafe extern "C" fn handler(r: *mut sys::request_rec) -> c_int {
    guard(DECLINED, || {
        // SAFETY: httpd passes the live request of this hook call.
        let answered = unsafe { Request::from_raw(r) }.is_some_and(crate::status::handler);
        if answered {
            OK
        } else {
            DECLINED
        }
    })
}
