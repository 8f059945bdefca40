//! `mod_ja4`: the Apache httpd module (`LoadModule ja4_module modules/mod_ja4.so`).
//!
//! Owns: the `JA4*` directives ([`config`]), what each hook does — post_config and
//! child_init (here: shared counters, `TCP_SAVE_SYN` on listeners, the export file, the
//! capture thread, the exporter), pre_connection and the raw input filter below mod_ssl
//! ([`conn`]), post_read_request and log_transaction ([`request`], the record in
//! [`record`]), rate limits and the mitigation mode ([`mitigate`]), the `ja4-status` handler
//! ([`status`]) — the per-child exporter ([`export`]),
//! the parent's capture ([`capture`]) and the shared counters ([`counters`], the leaf).
//!
//! Layers: [`ffi`] is the only module that touches httpd, APR or libc (`unsafe_code` is
//! denied everywhere else); it hands the others safe views (`Request`, `Connection`,
//! `Server`, `Pool`, `Brigade`). Parsing and fingerprinting are [`ja4_core`]'s.
//!
//! Must never: block or crash a request, unwind a panic into httpd (every entry point runs in
//! `ffi::guard`), or allocate per request beyond what a record needs.

#![deny(unsafe_code)]

mod capture;
mod config;
mod conn;
mod counters;
mod export;
#[allow(unsafe_code)]
mod ffi;
mod mitigate;
mod record;
mod request;
mod status;

pub use ffi::hooks::ja4_module;

use ffi::{Level, Pool, Server};

/// post_config: shared counters, `TCP_SAVE_SYN` on listeners, the export file, the shared
/// connection table and (on the real pass) the capture thread. False stops httpd's start-up.
fn post_config(pconf: Pool<'_>, s: Server<'_>) -> bool {
    let Some(sc) = s.config() else {
        return true;
    };
    // No `Server:` version component: a bot-detection module does not announce itself to
    // the clients it watches (and every response would carry the bytes).
    if !sc.cfg.engine {
        return true;
    }
    if let Err(e) = counters::init(pconf) {
        s.log(Level::Warning, &format!("mod_ja4: shared counters unavailable ({e}); the status page shows per-process counts"));
    }
    let n = conn::save_syn_on_listeners(s);
    if let Some(path) = &sc.cfg.export_file {
        if let Err(e) = export::open_file(path) {
            s.log(
                Level::Err,
                &format!("mod_ja4: JA4ExportFile {}: {e}", path.display()),
            );
            return false;
        }
    }
    if let Err(e) = mitigate::init(pconf, &sc.cfg) {
        s.log(
            Level::Err,
            &format!("mod_ja4: rate-limit table unavailable ({e}): JA4RateLimit does not apply"),
        );
    }
    if let Err(e) = capture::map_table(pconf, sc.cfg.shared_entries as usize) {
        s.log(Level::Warning, &format!("mod_ja4: shared connection table unavailable ({e}); requests keep their in-connection fingerprints"));
    }
    // The capture thread runs in the parent only, from the real pass on (not the dry run
    // httpd makes at start-up).
    if s.is_real_pass() {
        match capture::start(s, pconf, &sc.cfg) {
            Ok(()) => counters::add(|c| &c.capture_threads, 1),
            Err(e) => {
                counters::add(|c| &c.capture_errors, 1);
                s.log(Level::Warning, &format!("mod_ja4: capture not running: {e}; requests keep their in-connection fingerprints"));
            }
        }
    }
    s.log(
        Level::Info,
        &format!("mod_ja4 {} ready: TCP_SAVE_SYN on {n} listener(s), export socket {:?}, export file {:?}", ja4_platform::long_version(), sc.cfg.export_socket, sc.cfg.export_file),
    );
    true
}

/// child_init: drop the parent's capture handle, start this child's exporter (flushed when
/// the child's pool is cleared).
fn child_init(pchild: Pool<'_>, s: Server<'_>) {
    // The capture belongs to the parent: drop the inherited handle (fd and ring).
    capture::release_in_child();
    let Some(sc) = s.config() else {
        return;
    };
    if !sc.cfg.engine {
        return;
    }
    if let Err(e) = export::start(&sc.cfg, export::export_file()) {
        s.log(
            Level::Err,
            &format!("mod_ja4: cannot start the exporter thread: {e}"),
        );
        return;
    }
    pchild.on_clear(export::stop);
}
