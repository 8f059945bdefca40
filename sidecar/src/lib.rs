//! `ja4-sidecar`: the process next to httpd.
//!
//! Owns: [`offline`] (the `pcap` subcommand: capture files through the same decode path as the
//! module's live capture), [`ingest`] (`serve`: batches over the unix socket into the store,
//! `/metrics`), [`store`] (the ClickHouse store: embedded chDB or a server, migrations, the
//! spool), [`mlcmd`] (`ml …`: the models on CSV files). Will own (issues 5–6): enrichment, the
//! scoring loop, the dashboard server.
//!
//! Never: lets a bad input (capture, batch, config) crash it or vanish silently; every drop is
//! counted and every user-facing error names what it was about.

pub mod dns;
pub mod features;
pub mod ingest;
pub mod lab;
pub mod lists;
pub mod mlcmd;
pub mod offline;
pub mod refdata;
pub mod scoring;
pub mod store;
pub mod synth;
pub mod verify;
