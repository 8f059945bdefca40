//! httpd's side of the `JA4*` directives: the command table, per-server configuration records
//! and their merging. Values are validated by `ja4_core::directives`, whose errors name the
//! directive, so `apachectl -t` reports exactly what is wrong.
//!
//! Capture, shared memory and export settings are global (main server only); `JA4Engine`,
//! `JA4SetEnv` and `JA4RequestHeaders` may be set per virtual host.

use std::ffi::{c_char, c_void};

use apr_sys as sys;
use ja4_core::directives::{self, ModuleConfig};

use crate::ffi::{cbytes, guard, pool_box, pool_str};

/// Per-server configuration: the typed values plus which per-vhost flags were set here.
#[derive(Debug, Clone, Default)]
pub struct ServerConfig {
    pub cfg: ModuleConfig,
    engine_set: bool,
    set_env_set: bool,
    request_headers_set: bool,
}

const PER_VHOST: [&str; 3] = ["JA4Engine", "JA4SetEnv", "JA4RequestHeaders"];

pub unsafe extern "C" fn create_server_config(
    p: *mut sys::apr_pool_t,
    _s: *mut sys::server_rec,
) -> *mut c_void {
    // SAFETY: `p` is the configuration pool httpd hands us.
    guard(std::ptr::null_mut(), || unsafe {
        pool_box(p, ServerConfig::default()) as *mut c_void
    })
}

pub unsafe extern "C" fn merge_server_config(
    p: *mut sys::apr_pool_t,
    base: *mut c_void,
    add: *mut c_void,
) -> *mut c_void {
    guard(base, || {
        // SAFETY: both were created by create_server_config and live in the config pool.
        let (base, add) = unsafe {
            (
                &*(base as *const ServerConfig),
                &*(add as *const ServerConfig),
            )
        };
        let mut merged = base.clone();
        if add.engine_set {
            merged.cfg.engine = add.cfg.engine;
            merged.engine_set = true;
        }
        if add.set_env_set {
            merged.cfg.set_env = add.cfg.set_env;
            merged.set_env_set = true;
        }
        if add.request_headers_set {
            merged.cfg.request_headers = add.cfg.request_headers;
            merged.request_headers_set = true;
        }
        // SAFETY: `p` is the configuration pool.
        unsafe { pool_box(p, merged) as *mut c_void }
    })
}

/// The configuration of server `s` (main server or virtual host).
///
/// # Safety
/// `s` is a live server_rec whose config was created by this module.
pub unsafe fn server_config<'a>(s: *const sys::server_rec) -> Option<&'a ServerConfig> {
    // SAFETY: module_config is the server's config vector; our slot holds a ServerConfig.
    let p = unsafe { crate::ffi::module_config((*s).module_config) } as *const ServerConfig;
    // SAFETY: non-null slots point to a pool-owned ServerConfig.
    unsafe { p.as_ref() }
}

/// One handler for every directive: the directive's name selects what to set.
unsafe extern "C" fn set_directive(
    cmd: *mut sys::cmd_parms,
    _mconfig: *mut c_void,
    arg: *const c_char,
) -> *const c_char {
    guard(
        c"mod_ja4: internal error while reading a directive".as_ptr(),
        || {
            // SAFETY: httpd passes a valid cmd_parms for the command being parsed.
            let cmd = unsafe { &*cmd };
            // SAFETY: the command record and its name are static data of this module.
            let name = String::from_utf8_lossy(unsafe { cbytes((*cmd.cmd).name) }).into_owned();
            // SAFETY: `arg` is the NUL-terminated argument of this directive.
            let arg = String::from_utf8_lossy(unsafe { cbytes(arg) }).into_owned();
            if !PER_VHOST.contains(&name.as_str()) && !cmd.server.is_null() {
                // SAFETY: `server` is the server being configured; is_virtual is a plain field.
                if unsafe { (*cmd.server).is_virtual } != 0 {
                    return error(cmd, &format!("{name} is only allowed in the main server configuration, not in <VirtualHost>"));
                }
            }
            // SAFETY: every server has our config slot (create_server_config).
            let sc = unsafe { crate::ffi::module_config((*cmd.server).module_config) }
                as *mut ServerConfig;
            // SAFETY: non-null, pool-owned, and httpd parses configuration single-threaded.
            let Some(sc) = (unsafe { sc.as_mut() }) else {
                return error(cmd, "mod_ja4: no server configuration");
            };
            let result = if name == "JA4CapturePorts" {
                // ITERATE: one call per port; accumulate.
                let mut ports = sc.cfg.capture_ports.clone();
                directives::apply(&mut sc.cfg, &name, &[&arg]).map(|_| {
                    for p in std::mem::take(&mut sc.cfg.capture_ports) {
                        if !ports.contains(&p) {
                            ports.push(p);
                        }
                    }
                    sc.cfg.capture_ports = ports;
                })
            } else {
                directives::apply(&mut sc.cfg, &name, &[&arg])
            };
            let result = result.and_then(|_| match &sc.cfg.export_socket {
                Some(p) if name == "JA4ExportSocket" => directives::check_socket_path(p),
                _ => Ok(()),
            });
            match result {
                Ok(()) => {
                    match name.as_str() {
                        "JA4Engine" => sc.engine_set = true,
                        "JA4SetEnv" => sc.set_env_set = true,
                        "JA4RequestHeaders" => sc.request_headers_set = true,
                        _ => {}
                    }
                    std::ptr::null()
                }
                Err(e) => error(cmd, &e),
            }
        },
    )
}

fn error(cmd: &sys::cmd_parms, msg: &str) -> *const c_char {
    // SAFETY: cmd.pool is the configuration pool; the message must outlive the call.
    unsafe { pool_str(cmd.pool, msg.as_bytes()) }
}

/// The command table (static, NULL-terminated, as httpd requires).
pub struct Commands(pub [sys::command_rec; 12]);
// SAFETY: the table is immutable data read by httpd's configuration parser.
unsafe impl Sync for Commands {}

const fn take1(name: &'static std::ffi::CStr, help: &'static std::ffi::CStr) -> sys::command_rec {
    sys::command_rec {
        name: name.as_ptr(),
        func: sys::cmd_func {
            take1: Some(set_directive),
        },
        cmd_data: std::ptr::null_mut(),
        req_override: sys::RSRC_CONF as i32,
        args_how: sys::cmd_how_TAKE1,
        errmsg: help.as_ptr(),
    }
}

pub static COMMANDS: Commands = Commands([
    take1(
        c"JA4Engine",
        c"On|Off: fingerprint connections and requests (default On)",
    ),
    take1(
        c"JA4CaptureInterface",
        c"network interface for the capture thread (default any)",
    ),
    sys::command_rec {
        name: c"JA4CapturePorts".as_ptr(),
        func: sys::cmd_func {
            take1: Some(set_directive),
        },
        cmd_data: std::ptr::null_mut(),
        req_override: sys::RSRC_CONF as i32,
        args_how: sys::cmd_how_ITERATE,
        errmsg: c"TCP ports to capture (default: the ports of Listen)".as_ptr(),
    },
    take1(
        c"JA4SharedEntries",
        c"connection entries in shared memory (1024-16777216, default 65536)",
    ),
    take1(
        c"JA4ExportSocket",
        c"absolute path of the sidecar's unix socket",
    ),
    take1(
        c"JA4ExportFile",
        c"absolute path of a JSON Lines file receiving the same records",
    ),
    take1(
        c"JA4BatchSize",
        c"records per export batch (1-65536, default 256)",
    ),
    take1(
        c"JA4FlushInterval",
        c"milliseconds between export flushes (10-600000, default 1000)",
    ),
    take1(
        c"JA4QueueLimit",
        c"records queued per child before the oldest are dropped (default 16384)",
    ),
    take1(
        c"JA4SetEnv",
        c"On|Off: set JA4* environment variables (default On)",
    ),
    take1(
        c"JA4RequestHeaders",
        c"On|Off: add X-JA4* request headers for backends (default Off)",
    ),
    // SAFETY: an all-zero command_rec is the terminator httpd looks for.
    unsafe { std::mem::zeroed() },
]);

#[allow(dead_code)]
const _: () = assert!(directives::DIRECTIVES.len() == 11);
