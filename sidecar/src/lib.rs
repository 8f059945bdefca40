//! `ja4-sidecar`: the process next to httpd.
//!
//! Owns: [`offline`] (the `pcap` subcommand: capture files through the same decode path as the
//! module's live capture), [`ingest`] (`serve`: batches over the unix socket into the store,
//! `/metrics`, the scoring loop, the dashboard listener), [`store`] (the ClickHouse store:
//! embedded chDB or a server, migrations, the spool), [`refdata`] (reference data loaders),
//! [`dns`] and [`verify`] (crawler verification), [`host`] (host keys), [`features`] (cross-client features),
//! [`scoring`] (windows, training, scoring, the classifier, writing verdicts), [`lists`]
//! (analysts' allow/deny lists), [`mlcmd`] (`ml …` on CSV files), [`lab`] (the traffic lab),
//! [`synth`] (generated traffic). The dashboard itself is the `ja4-dashboard` crate.
//!
//! Never: lets a bad input (capture, batch, config) crash it or vanish silently; every drop is
//! counted and every user-facing error names what it was about.

pub mod dns;
pub mod features;
pub mod host;
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
