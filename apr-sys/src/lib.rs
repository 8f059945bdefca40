//! `apr-sys`: raw FFI bindings to Apache httpd 2.4, APR and APR-util.
//!
//! Will own (issue 3): a `build.rs` that finds the headers with `apxs -q` and
//! `apr-1-config`/`apu-1-config`, runs bindgen with their cppflags (`-D_GNU_SOURCE` included), and
//! compiles a small C glue for what exists only as macros (bucket/brigade macros, `ap_log_error`,
//! version strings). A missing `apxs` fails the build with one line naming the package to install
//! (Debian `apache2-dev`, RHEL `httpd-devel`).
//!
//! Must never: contain logic. It is generated declarations plus the C glue, nothing else.
