//! `apr-sys`: raw FFI bindings to Apache httpd 2.4, APR and APR-util.
//!
//! Owns: the declarations bindgen generates from the installed headers (found with `apxs -q` and
//! `apr-1-config`/`apu-1-config`) and the `ja4_*` C glue (`src/glue.c`) for what httpd offers only
//! as macros or variadic functions: logging, module config slots, bucket/brigade walking,
//! mod_ssl's optional functions, version numbers.
//!
//! Must never: contain logic. It is generated declarations plus the C glue, nothing else.

#![allow(
    non_upper_case_globals,
    non_camel_case_types,
    non_snake_case,
    dead_code,
    improper_ctypes,
    unknown_lints,
    unnecessary_transmutes,
    clippy::all
)]

include!(concat!(env!("OUT_DIR"), "/bindings.rs"));
