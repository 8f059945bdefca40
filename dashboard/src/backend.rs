//! The one query layer the dashboard reads and writes through.
//!
//! Owns: the [`Backend`] trait (implemented by the sidecar over its store, embedded or
//! server) and the typed [`Params`] list every value travels in.
//! Never: carries SQL text built from user input; values go only in [`Params`], bound by the
//! engine to `{name:Type}` placeholders.

/// Named values for `{name:Type}` placeholders, in the engine's text form.
#[derive(Debug, Default, Clone)]
pub struct Params(Vec<(String, String)>);

impl Params {
    /// No values yet.
    pub fn new() -> Params {
        Params::default()
    }

    /// Adds a value under a fresh name (`p0`, `p1`…) and returns the placeholder
    /// `{pN:ty}` to put into the SQL.
    pub fn bind(&mut self, ty: &str, value: impl Into<String>) -> String {
        let name = format!("p{}", self.0.len());
        let ph = format!("{{{name}:{ty}}}");
        self.0.push((name, value.into()));
        ph
    }

    /// Sets a value under a fixed name (for placeholders written into static SQL).
    pub fn set(&mut self, name: &str, value: impl Into<String>) -> &mut Params {
        self.0.push((name.to_owned(), value.into()));
        self
    }

    /// The values, in binding order.
    pub fn as_slice(&self) -> &[(String, String)] {
        &self.0
    }
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
/// A query the store refused (its message).
pub struct BackendError(pub String);

/// The store as the dashboard sees it. Calls block: the dashboard runs them on the blocking
/// pool.
pub trait Backend: Send + Sync + 'static {
    /// The database holding the ja4-platform schema (a validated identifier).
    fn database(&self) -> &str;
    /// Runs `sql` (with `{db}` already replaced) with its placeholders bound to `params` and
    /// returns the output in ClickHouse's `JSON` format.
    fn query_json(&self, sql: &str, params: &Params) -> Result<Vec<u8>, BackendError>;
    /// An analyst changed an allow/deny/challenge list: the owner publishes the decisions
    /// at once (the default does nothing).
    fn lists_changed(&self) {}
}
