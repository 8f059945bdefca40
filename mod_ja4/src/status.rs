//! The `ja4-status` handler: the shared counters ([`crate::counters`]) and the capture table's
//! occupancy as text or JSON (`?json`).
//!
//! Owns: rendering. Never: changes a counter.

use std::ffi::{c_int, c_void};

use apr_sys as sys;

use crate::counters;
use crate::ffi::{cbytes, guard};

/// `SetHandler ja4-status`: the counters as text, or JSON with `?json`.
pub unsafe extern "C" fn handler(r: *mut sys::request_rec) -> c_int {
    // Every request passes here: most decline on the handler's first byte.
    // SAFETY: httpd passes the live request; its handler is NULL or a C string.
    if unsafe { (*r).handler.is_null() || *(*r).handler != b'j' as std::ffi::c_char } {
        return sys::DECLINED;
    }
    guard(sys::DECLINED, || {
        // SAFETY: httpd passes the live request.
        let req = unsafe { &mut *r };
        // SAFETY: handler is NULL or a string of the request.
        if unsafe { cbytes(req.handler) } != b"ja4-status" {
            return sys::DECLINED;
        }
        // SAFETY: args is NULL or the query string.
        let json = unsafe { cbytes(req.args) }
            .split(|b| *b == b'&')
            .any(|a| a == b"json");
        let body = render(json);
        // SAFETY: content type and body are written to the live request.
        unsafe {
            sys::ap_set_content_type(
                r,
                if json {
                    c"application/json".as_ptr()
                } else {
                    c"text/plain; charset=utf-8".as_ptr()
                },
            );
            if req.header_only == 0 {
                sys::ap_rwrite(body.as_ptr() as *const c_void, body.len() as c_int, r);
            }
        }
        sys::OK as c_int
    })
}

fn render(json: bool) -> String {
    use std::fmt::Write as _;
    let c = counters::get();
    let shm = crate::capture::table().map_or((0, 0), |t| (t.slots(), t.occupancy()));
    let mut s = String::with_capacity(2048);
    if json {
        s.push_str(&format!(
            "{{\"version\":\"{}\",\"counters\":{{",
            ja4_platform::VERSION
        ));
        for (i, (k, _, v)) in c.each().into_iter().enumerate() {
            let _ = write!(s, "{}\"{k}\":{v}", if i > 0 { "," } else { "" });
        }
        let _ = writeln!(
            s,
            "}},\"shm_entries\":{},\"shm_occupied\":{}}}",
            shm.0, shm.1
        );
    } else {
        let _ = writeln!(s, "mod_ja4 {}\n", ja4_platform::long_version());
        for (k, help, v) in c.each() {
            let _ = writeln!(s, "{k:<22} {v:>12}   {help}");
        }
        let _ = writeln!(
            s,
            "{:<22} {:>12}   shared-table entries in use (of {})",
            "shm_occupied", shm.1, shm.0
        );
    }
    s
}
