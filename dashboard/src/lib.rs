//! `ja4-dashboard`: the SOC analysts' web UI, served by the sidecar.
//!
//! Owns: the HTTP API of the views ([`views`]: overview, detections, scores, campaigns,
//! fingerprint pages, client drill-down, audit log), the actions (labels that feed the
//! supervised model, allow/deny lists, users), login, sessions, roles and CSRF ([`auth`]),
//! the audit trail of every action, CSV export ([`table`]), the embedded assets ([`assets`])
//! the optional TLS listener ([`tls`]) and the bounded HTTP serving loop ([`serve`]). It
//! reads and writes the store only through the
//! [`backend::Backend`] the sidecar gives it.
//! Never: builds SQL from strings a user typed (every filter is a bound parameter or a
//! validated identifier: [`filters`]); never serves data without a session; never changes
//! anything on a request without the session's CSRF token.

#![warn(missing_docs)]

pub mod api;
pub mod assets;
pub mod auth;
pub mod backend;
pub mod filters;
pub mod serve;
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
    /// Whether `serve` runs the dashboard.
    pub enabled: bool,
    /// Address of the dashboard listener (keep it on loopback behind a reverse proxy, or set
    /// `tls_cert`/`tls_key`).
    pub listen: String,
    /// PEM certificate chain and key: the listener speaks HTTPS and cookies are `Secure`.
    pub tls_cert: Option<PathBuf>,
    /// The key of `tls_cert`.
    pub tls_key: Option<PathBuf>,
    /// Mark cookies `Secure` even without `tls_cert` (TLS terminated by a proxy in front).
    pub secure_cookies: bool,
    /// Users and their argon2 password hashes (`ja4-sidecar user add`).
    pub users_file: PathBuf,
    /// A session ends this many hours after login, active or not.
    pub session_hours: u64,
    /// A session ends after this many minutes without a request.
    pub session_idle_minutes: u64,
    /// Live sessions one user may have; a new login ends the oldest beyond it.
    pub sessions_per_user: usize,
    /// Failed logins of one user from one address before each further attempt waits
    /// (1 s, doubling, at most 15 min); one address may fail 4 × this many across users.
    pub login_max_failures: usize,
    /// Failures are forgotten after this many seconds without one.
    pub login_window_s: u64,
    /// Reverse proxies (addresses or CIDR networks) whose `X-Forwarded-For` names the client;
    /// from any other peer the header is ignored.
    pub trusted_proxies: Vec<String>,
    /// The dashboard's origin as browsers see it (`https://soc.example.com`): state-changing
    /// requests must carry exactly this Origin. Empty: the scheme of this listener and the
    /// request's own Host.
    pub public_origin: String,
    /// Connections served at once; more are closed at accept (counted on `/metrics`).
    pub max_connections: usize,
    /// Seconds a client has to send a request head.
    pub header_read_timeout_s: u64,
    /// Host names (with port, as in the Host header) the dashboard answers to; others get 421
    /// (DNS rebinding). Empty: the host of `public_origin` and, on a loopback listener,
    /// `127.0.0.1`, `localhost` and `[::1]` with its port; on another listener without
    /// `public_origin`, any.
    pub allowed_hosts: Vec<String>,
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
            session_idle_minutes: 30,
            sessions_per_user: 8,
            login_max_failures: 5,
            login_window_s: 900,
            trusted_proxies: Vec::new(),
            public_origin: String::new(),
            allowed_hosts: Vec::new(),
            max_connections: 256,
            header_read_timeout_s: 10,
        }
    }
}

/// The dashboard's shared state.
pub struct Dashboard {
    pub(crate) backend: Arc<dyn Backend>,
    pub(crate) users: auth::Users,
    pub(crate) sessions: auth::Sessions,
    pub(crate) limiter: auth::LoginLimiter,
    /// Password verifications running at once (argon2id takes ~19 MiB and a core each).
    pub(crate) verify_slots: tokio::sync::Semaphore,
    pub(crate) secure_cookies: bool,
    pub(crate) trusted_proxies: Vec<(std::net::IpAddr, u8)>,
    /// The one Origin a state-changing request may carry (empty: derived per request).
    pub(crate) public_origin: String,
    pub(crate) allowed_hosts: Vec<String>,
}

/// `addr` or `addr/len` as a network.
pub fn parse_net(s: &str) -> Option<(std::net::IpAddr, u8)> {
    let (a, l) = match s.trim().split_once('/') {
        Some((a, l)) => (a, Some(l)),
        None => (s.trim(), None),
    };
    let ip: std::net::IpAddr = a.parse().ok()?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    let len = match l {
        Some(l) => l.parse::<u8>().ok().filter(|l| *l <= max)?,
        None => max,
    };
    Some((ip, len))
}

/// True when `ip` is in the network `(net, len)`.
pub fn in_net(ip: std::net::IpAddr, (net, len): (std::net::IpAddr, u8)) -> bool {
    use std::net::IpAddr;
    match (ip.to_canonical(), net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0);
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

impl Config {
    /// The listener's bounds.
    pub fn limits(&self) -> serve::Limits {
        serve::Limits {
            max_connections: self.max_connections.max(1),
            header_read_timeout: Duration::from_secs(self.header_read_timeout_s.max(1)),
        }
    }
}

impl Dashboard {
    /// The dashboard of `cfg`; a `trusted_proxies` entry that is not an address or network
    /// is an error naming it.
    pub fn new(cfg: &Config, backend: Arc<dyn Backend>) -> Result<Arc<Dashboard>, String> {
        let trusted_proxies = cfg
            .trusted_proxies
            .iter()
            .map(|p| {
                parse_net(p).ok_or_else(|| {
                    format!("dashboard.trusted_proxies: {p:?} is not an address or network")
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let public_origin = cfg.public_origin.trim_end_matches('/').to_ascii_lowercase();
        let mut allowed_hosts: Vec<String> = cfg
            .allowed_hosts
            .iter()
            .map(|h| h.to_ascii_lowercase())
            .collect();
        if allowed_hosts.is_empty() {
            if let Some((_, host)) = public_origin.split_once("://") {
                allowed_hosts.push(host.to_owned());
            }
            // A loopback listener answers only to loopback names (a page of another site
            // rebound to 127.0.0.1 sends its own name as Host).
            if let Ok(addr) = cfg.listen.parse::<std::net::SocketAddr>() {
                if addr.ip().is_loopback() {
                    let port = addr.port();
                    allowed_hosts.extend([
                        format!("127.0.0.1:{port}"),
                        format!("localhost:{port}"),
                        format!("[::1]:{port}"),
                    ]);
                }
            }
        }
        Ok(Arc::new(Dashboard {
            backend,
            users: auth::Users::new(&cfg.users_file),
            sessions: auth::Sessions::new(
                Duration::from_secs(cfg.session_hours.max(1) * 3600),
                Duration::from_secs(cfg.session_idle_minutes.max(1) * 60),
                cfg.sessions_per_user,
            ),
            limiter: auth::LoginLimiter::new(
                cfg.login_max_failures.max(1),
                Duration::from_secs(cfg.login_window_s.max(1)),
            ),
            verify_slots: tokio::sync::Semaphore::new(2),
            secure_cookies: cfg.secure_cookies || cfg.tls_cert.is_some(),
            trusted_proxies,
            public_origin,
            allowed_hosts,
        }))
    }
}
