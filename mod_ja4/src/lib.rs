//! `mod_ja4`: the Apache httpd module (`LoadModule ja4_module modules/mod_ja4.so`).
//!
//! Owns: the module record, its `JA4*` directives ([`config`]), the hooks — post_config
//! (shared counters, `TCP_SAVE_SYN` on listeners, the export file), child_init (exporter
//! thread), pre_connection and the raw input filter below mod_ssl ([`conn`]),
//! post_read_request and log_transaction ([`request`]) — the per-child exporter ([`export`]) and
//! the `ja4-status` handler ([`status`]); request variables go into the environment as one
//! block of table entries ([`table`]).
//!
//! Must never: block or crash a request, unwind a panic into httpd (every entry point runs in
//! [`ffi::guard`]), or allocate per request beyond what a record needs. Parsing and
//! fingerprinting are done by [`ja4_core`]; this crate is the FFI shell around it.

mod capture;
mod config;
mod conn;
mod counters;
mod export;
mod ffi;
mod record;
mod request;
mod status;

use std::ffi::{c_int, c_void};
use std::os::fd::IntoRawFd;
use std::sync::atomic::Ordering;

use apr_sys as sys;

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
    create_dir_config: None,
    merge_dir_config: None,
    create_server_config: Some(config::create_server_config),
    merge_server_config: Some(config::merge_server_config),
    cmds: &config::COMMANDS.0 as *const _ as *const sys::command_rec,
    register_hooks: Some(register_hooks),
    flags: 0,
};

use export::EXPORT_FD;

/// A hook-ordering name (a static C string) for httpd's predecessor lists.
#[repr(transparent)]
struct Pred(*const std::ffi::c_char);
// SAFETY: points to a static, immutable C string.
unsafe impl Sync for Pred {}

unsafe extern "C" fn register_hooks(_p: *mut sys::apr_pool_t) {
    ffi::guard((), || {
        const FIRST: c_int = -10; // APR_HOOK_REALLY_FIRST
        const MIDDLE: c_int = 10;
        const REALLY_LAST: c_int = 30;
        // SAFETY: hook registration functions of httpd, called during module loading.
        unsafe {
            sys::ap_hook_post_config(
                Some(post_config),
                std::ptr::null(),
                std::ptr::null(),
                MIDDLE,
            );
            sys::ap_hook_child_init(Some(child_init), std::ptr::null(), std::ptr::null(), MIDDLE);
            // After mod_ssl's, which decides whether the connection is TLS.
            static AFTER_SSL: [Pred; 2] = [Pred(c"mod_ssl.c".as_ptr()), Pred(std::ptr::null())];
            sys::ap_hook_pre_connection(
                Some(conn::pre_connection),
                AFTER_SSL.as_ptr() as *const *const std::ffi::c_char,
                std::ptr::null(),
                MIDDLE,
            );
            // Before mod_security's phase 1 and mod_rewrite, so they see the JA4* variables.
            sys::ap_hook_post_read_request(
                Some(request::post_read_request),
                std::ptr::null(),
                std::ptr::null(),
                FIRST - 10,
            );
            // Last: a record's JA4H variable must stay valid while other modules log.
            sys::ap_hook_log_transaction(
                Some(request::log_transaction),
                std::ptr::null(),
                std::ptr::null(),
                REALLY_LAST,
            );
            sys::ap_hook_handler(
                Some(status::handler),
                std::ptr::null(),
                std::ptr::null(),
                MIDDLE,
            );
            // Below mod_ssl (CONNECTION + 5) and above the core socket filter (NETWORK).
            sys::ap_register_input_filter(
                conn::FILTER_NAME.as_ptr(),
                Some(conn::raw_in_filter),
                None,
                sys::ap_filter_type_AP_FTYPE_NETWORK - 1,
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
    ffi::guard(sys::OK as c_int, || {
        // SAFETY: `s` is the main server of this generation.
        let Some(sc) = (unsafe { config::server_config(s) }) else {
            return sys::OK as c_int;
        };
        // No `Server:` version component: a bot-detection module does not announce itself to
        // the clients it watches (and every response would carry the bytes).
        if !sc.cfg.engine {
            return sys::OK as c_int;
        }
        // SAFETY: pconf is this generation's configuration pool.
        if let Err(e) = unsafe { counters::init(pconf) } {
            ffi::log_server(s, ffi::LOG_WARNING, 0, &format!("mod_ja4: shared counters unavailable ({e}); the status page shows per-process counts"));
        }
        // SAFETY: listeners are open at post_config.
        let n = unsafe { conn::save_syn_on_listeners(s) };
        if let Some(path) = &sc.cfg.export_file {
            match std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
            {
                Ok(f) => {
                    let fd = f.into_raw_fd();
                    let old = EXPORT_FD.swap(fd, Ordering::AcqRel);
                    if old >= 0 {
                        // SAFETY: `old` was ours from a previous pass.
                        unsafe { libc::close(old) };
                    }
                }
                Err(e) => {
                    ffi::log_server(
                        s,
                        ffi::LOG_ERR,
                        0,
                        &format!("mod_ja4: JA4ExportFile {}: {e}", path.display()),
                    );
                    return 500; // any value but OK stops startup
                }
            }
        }
        // SAFETY: pconf is this generation's pool; the table is mapped before children fork.
        if let Err(e) = unsafe { capture::map_table(pconf, sc.cfg.shared_entries as usize) } {
            ffi::log_server(s, ffi::LOG_WARNING, 0, &format!("mod_ja4: shared connection table unavailable ({e}); requests keep their in-connection fingerprints"));
        }
        // The capture thread runs in the parent only, from the real pass on (not the dry run
        // httpd makes at start-up).
        // SAFETY: `s` and `pconf` belong to this generation.
        if unsafe { capture::real_pass(s) } {
            match unsafe { capture::start(s, pconf, &sc.cfg) } {
                Ok(()) => counters::add(|c| &c.capture_threads, 1),
                Err(e) => {
                    counters::add(|c| &c.capture_errors, 1);
                    ffi::log_server(s, ffi::LOG_WARNING, 0, &format!("mod_ja4: capture not running: {e}; requests keep their in-connection fingerprints"));
                }
            }
        }
        ffi::log_server(
            s,
            ffi::LOG_INFO,
            0,
            &format!("mod_ja4 {} ready: TCP_SAVE_SYN on {n} listener(s), export socket {:?}, export file {:?}", ja4_platform::long_version(), sc.cfg.export_socket, sc.cfg.export_file),
        );
        sys::OK as c_int
    })
}

unsafe extern "C" fn child_init(pchild: *mut sys::apr_pool_t, s: *mut sys::server_rec) {
    ffi::guard((), || {
        // The capture belongs to the parent: drop the inherited handle (fd and ring).
        capture::release_in_child();
        // SAFETY: `s` is the main server.
        let Some(sc) = (unsafe { config::server_config(s) }) else {
            return;
        };
        if !sc.cfg.engine {
            return;
        }
        if let Err(e) = export::start(&sc.cfg, export::export_file()) {
            ffi::log_server(
                s,
                ffi::LOG_ERR,
                0,
                &format!("mod_ja4: cannot start the exporter thread: {e}"),
            );
            return;
        }
        unsafe extern "C" fn child_exit(_: *mut c_void) -> sys::apr_status_t {
            ffi::guard(0, || {
                export::stop();
                0
            })
        }
        // SAFETY: pchild lives until the child exits; the cleanup flushes the exporter.
        unsafe {
            sys::apr_pool_cleanup_register(
                pchild,
                std::ptr::null(),
                Some(child_exit),
                Some(sys::apr_pool_cleanup_null),
            )
        };
    })
}
