//! The crate's error: what failed, with the context a user needs to act on it (which file,
//! which table, which model), as a chain of causes.
//!
//! Owns: [`Error`], [`Result`], the [`Context`] extension that wraps a failure in a sentence,
//! and `bail!` for failures of our own checks.
//! Never: loses the cause (a wrapper's message ends with its cause's).

use std::fmt::Display;

/// A failure of the detection code.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The store refused a query or a write.
    #[error(transparent)]
    Store(#[from] ja4_store::StoreError),
    /// A DNS lookup could not be made.
    #[error(transparent)]
    Dns(#[from] crate::dns::DnsError),
    /// Reading or writing a file.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// A model or list that is not valid JSON.
    #[error(transparent)]
    Json(#[from] serde_json::Error),
    /// A reference-data file that is not valid CSV/TSV.
    #[error(transparent)]
    Csv(#[from] csv::Error),
    /// Training or scoring a model.
    #[error(transparent)]
    Model(#[from] ja4_ml::ModelError),
    /// Training the classifier.
    #[error(transparent)]
    Classifier(#[from] ja4_ml::classifier::ClassifierError),
    /// A feature matrix that cannot be built.
    #[error(transparent)]
    Matrix(#[from] ja4_ml::MatrixError),
    /// Input that breaks a rule of ours (named in the message).
    #[error("{0}")]
    Invalid(String),
    /// What was being done when `source` failed.
    #[error("{context}: {cause}")]
    Context {
        /// The sentence saying what was being done.
        context: String,
        /// Why it failed (shown after the context: the message is the whole chain, so a
        /// caller's `{e}` and anyhow's `{e:#}` print it once).
        cause: Box<Error>,
    },
}

impl Error {
    /// `context: self`.
    pub fn context(self, context: impl Display) -> Error {
        Error::Context {
            context: context.to_string(),
            cause: Box::new(self),
        }
    }
}

/// A result of the detection code.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Wraps a failure in what was being done (`anyhow::Context`'s shape, typed).
pub trait Context<T> {
    /// `context: cause`.
    fn context(self, context: impl Display) -> Result<T>;
    /// As [`Context::context`], the sentence made only on failure.
    fn with_context<C: Display>(self, f: impl FnOnce() -> C) -> Result<T>;
}

impl<T, E: Into<Error>> Context<T> for std::result::Result<T, E> {
    fn context(self, context: impl Display) -> Result<T> {
        self.map_err(|e| Error::Context {
            context: context.to_string(),
            cause: Box::new(e.into()),
        })
    }

    fn with_context<C: Display>(self, f: impl FnOnce() -> C) -> Result<T> {
        self.map_err(|e| Error::Context {
            context: f().to_string(),
            cause: Box::new(e.into()),
        })
    }
}

impl<T> Context<T> for Option<T> {
    fn context(self, context: impl Display) -> Result<T> {
        self.ok_or_else(|| Error::Invalid(context.to_string()))
    }

    fn with_context<C: Display>(self, f: impl FnOnce() -> C) -> Result<T> {
        self.ok_or_else(|| Error::Invalid(f().to_string()))
    }
}

/// Returns an [`Error::Invalid`] with a formatted message.
macro_rules! bail {
    ($($arg:tt)*) => {
        return Err($crate::error::Error::Invalid(format!($($arg)*)))
    };
}
pub(crate) use bail;
