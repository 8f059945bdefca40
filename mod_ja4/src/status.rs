//! The `ja4-status` handler: the shared counters ([`crate::counters`]) and the capture table's
//! occupancy as text or JSON (`?json`).
//!
//! Owns: rendering. Never: changes a counter.

use crate::counters;
use crate::ffi::Request;

/// `SetHandler ja4-status`: the counters as text, or JSON with `?json`. True when it
/// answered (the request is ours).
pub(crate) fn handler(mut r: Request<'_>) -> bool {
    // Every request passes here: most decline on the handler's first byte.
    if !r.handler_is(c"ja4-status") {
        return false;
    }
    let json = r.args().split(|b| *b == b'&').any(|a| a == b"json");
    let body = render(json);
    r.set_content_type(if json {
        c"application/json"
    } else {
        c"text/plain; charset=utf-8"
    });
    if !r.header_only() {
        r.write(body.as_bytes());
    }
    true
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
