//! `ja4-dashboard`: the SOC analysts' web UI, served by the sidecar.
//!
//! Owns: the HTTP API of the views ([`views`]: overview, detections, scores, campaigns,
//! fingerprint pages, client drill-down, audit log), the actions (labels that feed the
//! supervised model, allow/deny lists, users), login, sessions, roles and CSRF ([`auth`]),
//! the audit trail of every action, CSV export ([`table`]), the embedded assets ([`assets`])
//! and the optional TLS listener ([`tls`]). It reads and writes the store only through the
//! [`backend::Backend`] the sidecar gives it.
//! Never: builds SQL from strings a user typed (every filter is a bound parameter or a
//! validated identifier: [`filters`]); never serves data without a session; never changes
//! anything on a request without the session's CSRF token.

pub mod api;
pub mod assets;
pub mod auth;
pub mod backend;
pub mod filters;
pub mod table;
pub mod tls;
pub mod views;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

pub use api::router;
pub use backend::{Backend, BackendError, Params};

/// `[dashboard]` in `sidecar.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub enabled: bool,
    /// Address of the dashboard listener (keep it on loopback behind a reverse proxy, or set
    /// `tls_cert`/`tls_key`).
    pub listen: String,
    /// PEM certificate chain and key: the listener speaks HTTPS and cookies are `Secure`.
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// Mark cookies `Secure` even without `tls_cert` (TLS terminated by a proxy in front).
    pub secure_cookies: bool,
    /// Users and their argon2 password hashes (`ja4-sidecar user add`).
    pub users_file: PathBuf,
    pub session_hours: u64,
    /// Failed logins per client address or user name before logins are refused for
    /// `login_window_s`.
    pub login_max_failures: usize,
    pub login_window_s: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            enabled: true,
            listen: "127.0.0.1:9480".into(),
            tls_cert: None,
            tls_key: None,
            secure_cookies: false,
            users_file: PathBuf::from("/var/lib/ja4/dashboard-users.json"),
            session_hours: 12,
            login_max_failures: 5,
            login_window_s: 300,
        }
    }
}

/// The dashboard's shared state.
pub struct Dashboard {
    pub(crate) backend: Arc<dyn Backend>,
    pub(crate) users: auth::Users,
    pub(crate) sessions: auth::Sessions,
    pub(crate) limiter: auth::LoginLimiter,
    pub(crate) secure_cookies: bool,
}

impl Dashboard {
    pub fn new(cfg: &Config, backend: Arc<dyn Backend>) -> Arc<Dashboard> {
        Arc::new(Dashboard {
            backend,
            users: auth::Users::new(&cfg.users_file),
            sessions: auth::Sessions::new(Duration::from_secs(cfg.session_hours.max(1) * 3600)),
            limiter: auth::LoginLimiter::new(
                cfg.login_max_failures.max(1),
                Duration::from_secs(cfg.login_window_s.max(1)),
            ),
            secure_cookies: cfg.secure_cookies || cfg.tls_cert.is_some(),
        })
    }
}
