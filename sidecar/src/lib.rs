//! `ja4-sidecar`: the process next to httpd.
//!
//! Owns today: [`offline`], the `pcap` subcommand that fingerprints capture files with the same
//! decode path the module's live capture uses. Will own (issues 4–6): batch ingest over the unix
//! socket, the ClickHouse store (embedded chDB or a server), the on-disk spool, migrations,
//! enrichment, the scoring loop, the dashboard server, `/metrics` and the admin subcommands.
//!
//! Never: lets a bad input (capture, batch, config) crash it or vanish silently; every drop is
//! counted and every user-facing error names what it was about.

pub mod ingest;
pub mod offline;
pub mod store;
