//! `ja4-ml`: turning stored traffic into explainable verdicts.
//!
//! Owns (issue 5, in progress): [`matrix`] (borrowed feature rows), [`forest`] (the extended
//! isolation forest), [`autoencoder`] (reconstruction error, per-feature errors, latent codes),
//! [`model`] (both trained on a baseline, mixed in rank space, explained, versioned),
//! [`campaign`] (HDBSCAN on latent codes, capped),
//! [`verdict`] (crawler claims, the legitimate-browser rule, threat levels, reasons),
//! [`metrics`] (ranks, ROC AUC), [`rng`] (seeded randomness). Still to come: feature
//! definitions per (client IP, JA4, host) and window, campaign
//! clustering, the supervised classifier, the legitimate-browser rule, threat levels and the
//! `reason` text, and model persistence with its feature schema.
//!
//! Must never: do I/O beyond reading and writing model files it is handed, or call Python.

pub mod autoencoder;
pub mod campaign;
pub mod classifier;
pub mod forest;
pub mod matrix;
pub mod metrics;
pub mod model;
pub mod rng;
pub mod verdict;

pub use autoencoder::{AeError, AeParams, Autoencoder};
pub use forest::{Forest, ForestError, ForestParams};
pub use matrix::{Matrix, MatrixError};
pub use model::{Model, ModelError, ModelParams, Scored};
