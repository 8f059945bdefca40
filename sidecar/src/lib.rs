//! `ja4-sidecar`: the process next to httpd, as a thin layer over the crates that do the work.
//!
//! Owns: the command line's shared parts ([`args`]), the supervisor of `serve` and the
//! configuration file ([`serve`]), the `pcap` command ([`offline`]: capture files through the
//! same decode path as the module's live capture) and `ml …` on CSV files ([`mlcmd`]).
//! The work is done by `ja4-store` (the ClickHouse store), `ja4-ingest` (socket → store),
//! `ja4-detect` (windows, features, models, verification, lists, reference data) and
//! `ja4-dashboard` (the analysts' UI).
//! Never: lets a bad input (capture, batch, config) crash it or vanish silently; every drop is
//! counted and every user-facing error names what it was about.

pub mod args;
pub mod mlcmd;
pub mod offline;
pub mod serve;
