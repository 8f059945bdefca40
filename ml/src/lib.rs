//! `ja4-ml`: turning stored traffic into explainable verdicts.
//!
//! Will own (issue 5): feature definitions per (client IP, JA4, host) and window, the extended
//! isolation forest (flat arrays), the autoencoder, campaign clustering, the supervised classifier,
//! the legitimate-browser rule, threat levels and the `reason` text, and model persistence with its
//! feature schema.
//!
//! Must never: do I/O beyond reading and writing model files it is handed, or call Python.
