//! `ja4-ml`: turning stored traffic into explainable verdicts.
//!
//! Owns: [`features`] (the feature registry: every feature's name, meaning, unit and
//! computation, and the cross-client ones' code), [`matrix`] (borrowed feature rows), [`forest`] (the extended isolation forest), [`identity`] (who a client is: the JA4 family),
//! [`autoencoder`] (reconstruction error, per-feature errors, latent codes), [`model`] (both
//! trained on a baseline, mixed in rank space, explained, versioned), [`campaign`] (HDBSCAN on
//! latent codes, capped), [`classifier`] (the supervised forest of smartcore trees),
//! [`verdict`] (crawler claims, the legitimate-browser rule, threat levels, reasons),
//! [`metrics`] (ranks, ROC AUC), [`rng`] (seeded randomness).
//!
//! Must never: do I/O beyond reading and writing model files it is handed, or call Python.

#![warn(missing_docs)]

pub mod autoencoder;
pub mod campaign;
pub mod classifier;
pub mod features;
pub mod forest;
pub mod identity;
pub mod matrix;
pub mod metrics;
pub mod model;
pub mod rng;
pub mod verdict;

pub use autoencoder::{AeError, AeParams, Autoencoder};
pub use forest::{Forest, ForestError, ForestParams};
pub use matrix::{Matrix, MatrixError};
pub use model::{Model, ModelError, ModelParams, Scored};
