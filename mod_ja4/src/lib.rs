//! `mod_ja4`: the Apache httpd module (`LoadModule ja4_module modules/mod_ja4.so`).
//!
//! Will own (issue 3): the module record and its `JA4*` directives, the hooks (post_config,
//! child_init, pre_connection, post_read_request, log_transaction), the raw connection input filter
//! below mod_ssl, the libpcap capture thread of the parent, the shared-memory connection table, the
//! per-child exporter thread, and the `ja4-status` handler.
//!
//! Must never: block or crash a request, unwind a panic into httpd, allocate per request beyond
//! what a record needs, or hold a lock a forked child could inherit. All parsing and fingerprinting
//! is done by [`ja4_core`]; this crate is the FFI shell around it.

/// The version string this module will register with httpd (`ap_add_version_component`).
pub fn version_component() -> String {
    format!("mod_ja4/{}", ja4_platform::VERSION)
}

#[cfg(test)]
mod tests {
    #[test]
    fn version_component_names_module() {
        assert!(super::version_component().starts_with("mod_ja4/"));
    }
}
