//! `ja4-core`: everything mod_ja4 and the sidecar compute from the wire, with no httpd.
//!
//! From raw packets or raw bytes to JA4+ fingerprints and the parsed facts the detector uses:
//!
//! - [`decisions`]: the sidecar's decisions snapshot (format, lookup) the module reads.
//! - [`decode`]: link layer → IP (through tunnels) → TCP segment.
//! - [`tcp`]: TCP options and SYN facts.
//! - [`reader`]: the bounds-checked cursor every parser reads with.
//! - [`reassembly`]: bounded in-order reassembly of one TCP direction.
//! - [`tls`]: first handshake message of a stream, ClientHello and ServerHello.
//! - [`http`]: HTTP/1.x request heads and keep-alive request streams.
//! - [`fingerprint`]: JA4, JA3, JA4S, JA4H, JA4T/JA4TS, JA4L string formats.
//! - [`directives`]: the module's `JA4*` directives, typed and validated.
//! - [`mitigation`]: the mitigation mode, rate limits, exempt networks and the shared token
//!   buckets.
//! - [`batch`]: the export record and the versioned batch wire format (module → sidecar).
//! - [`shape`]: a request header table's names and what follows from them, kept per connection.
//! - [`stack`]: the JA4 family, labels of known stacks, and user agents that contradict them.
//! - [`shared`]: the capture thread's connection table in shared memory (seqlock per entry).
//! - [`flow`]: per-connection state keyed by the 4-tuple, bounded, with eviction counters; it
//!   turns packets into [`flow::ConnectionRecord`]s.
//!
//! This crate never does I/O, never panics on input (property tests and fuzz targets check
//! every parser), and never allocates without a bound.
//!
//! Licences: JA4 is BSD-3-Clause; JA4S, JA4H, JA4T and JA4L are under the FoxIO License 1.1.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod batch;
pub mod challenge;
pub mod decisions;
pub mod decode;
pub mod directives;
pub mod fingerprint;
pub mod flow;
pub mod h2;
pub mod hash;
pub mod http;
pub mod knownbad;
pub mod mitigation;
pub mod reader;
pub mod reassembly;
pub mod shape;
pub mod shared;
pub mod stack;
pub mod tcp;
pub mod tls;
