//! `ja4-detect`: from stored traffic to verdicts.
//!
//! Owns: the detection cycle `serve` runs and the `train`/`score` commands call ([`cycle`]:
//! when to train, which window to score, the model's version); the windows of feature rows
//! and the models on them ([`scoring`], over the feature registry of `ja4_ml::features`); crawler
//! verification ([`verify`] over DNS, [`dns`]); host keys ([`host`]); the analysts'
//! allow/deny lists ([`lists`]), the decisions snapshot httpd enforces ([`decisions`]) and the
//! reference data ([`refdata`]: IP→ASN, known bots,
//! crawler rules, fingerprint labels).
//! Never: lets a failed training, classifier or DNS answer stop scoring (the failure is
//! counted and the cycle goes on with what it has); never writes a detection without its
//! reasons and model version.
//!
//! ```no_run
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use ja4_detect::cycle::{self, Counters, ScoringConfig};
//! let store = ja4_store::StoreConfig::default().open()?;
//! let cfg = ScoringConfig::default();
//! let scored = cycle::run_cycle(&cfg, "ja4", &store, &Counters::default(), None, 1)?;
//! println!("{} clients, {} detections", scored.clients, scored.detections);
//! # Ok(()) }
//! ```

#![warn(missing_docs)]

pub use error::{Error, Result};

pub mod cycle;
pub mod decisions;
pub mod dns;
pub mod error;
pub mod host;
pub mod lists;
pub mod refdata;
pub mod scoring;
pub mod verify;
