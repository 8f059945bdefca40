//! The DNS lookups crawler verification needs (the reverse name of an address, the addresses
//! of a name, with their TTLs), through `hickory-resolver` asking one configured server:
//! random query IDs and source ports, TCP when a UDP answer is truncated, timeouts and
//! retries are the library's.
//!
//! Owns: [`Resolver`] (a synchronous face for the scoring code, which runs on blocking
//! threads), what "no records" means ([`Lookup`] empty, with the negative TTL) versus a
//! failure ([`DnsError`]: the server did not answer, or answered with an error).
//! Never: blocks longer than its timeout × attempts per lookup; never turns a failure into
//! "no records" (a verdict on an unanswered lookup would call a genuine crawler a spoofer).

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use hickory_resolver::config::{NameServerConfig, ResolverConfig, ResolverOpts};
use hickory_resolver::name_server::TokioConnectionProvider;
use hickory_resolver::proto::rr::{RData, RecordType};
use hickory_resolver::proto::xfer::Protocol;
use hickory_resolver::{ResolveError, TokioResolver};

/// A lookup that could not be answered.
#[derive(Debug, thiserror::Error)]
pub enum DnsError {
    #[error("DNS server {server}: {error}")]
    Lookup { server: SocketAddr, error: String },
    #[error("'{0}' is not a valid DNS name")]
    Name(String),
    #[error("starting the DNS client: {0}")]
    Runtime(std::io::Error),
}

/// What a lookup found: names (PTR) or addresses (A/AAAA), and how long it may be kept
/// (seconds; for "none", the server's negative-caching TTL).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lookup<T> {
    pub found: Vec<T>,
    pub ttl: u32,
}

/// TTL of a "no records" answer that carried none.
const NO_RECORDS_TTL: u32 = 300;

/// A resolver asking one server.
pub struct Resolver {
    server: SocketAddr,
    rt: tokio::runtime::Runtime,
    inner: TokioResolver,
}

impl std::fmt::Debug for Resolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resolver")
            .field("server", &self.server)
            .finish_non_exhaustive()
    }
}

impl Resolver {
    /// Asks `server` over UDP, and TCP for truncated answers; each attempt waits up to 2 s,
    /// two attempts.
    pub fn new(server: SocketAddr) -> Result<Resolver, DnsError> {
        Resolver::with_timeout(server, Duration::from_secs(2))
    }

    /// [`Resolver::new`] with another per-attempt timeout.
    pub fn with_timeout(server: SocketAddr, timeout: Duration) -> Result<Resolver, DnsError> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(DnsError::Runtime)?;
        let mut config = ResolverConfig::new();
        config.add_name_server(NameServerConfig::new(server, Protocol::Udp));
        config.add_name_server(NameServerConfig::new(server, Protocol::Tcp));
        let mut opts = ResolverOpts::default();
        opts.timeout = timeout;
        opts.attempts = 2;
        // The verifier keeps its verdicts for the answers' TTLs; no second cache here.
        opts.cache_size = 0;
        opts.use_hosts_file = hickory_resolver::config::ResolveHosts::Never;
        opts.ndots = 0;
        let inner = {
            let _guard = rt.enter();
            TokioResolver::builder_with_config(config, TokioConnectionProvider::default())
                .with_options(opts)
                .build()
        };
        Ok(Resolver { server, rt, inner })
    }

    pub fn server(&self) -> SocketAddr {
        self.server
    }

    /// The names `ip` points back to (PTR).
    pub fn reverse(&self, ip: IpAddr) -> Result<Lookup<String>, DnsError> {
        self.run(async {
            let found = self.inner.reverse_lookup(ip).await;
            self.collect(found.map(|l| l.as_lookup().clone()), |d| match d {
                RData::PTR(n) => Some(n.0.to_utf8().trim_end_matches('.').to_owned()),
                _ => None,
            })
        })
    }

    /// The addresses of `name` of `ip`'s family (A for IPv4, AAAA for IPv6).
    pub fn addresses(&self, name: &str, ipv4: bool) -> Result<Lookup<IpAddr>, DnsError> {
        let fqdn = format!("{}.", name.trim_end_matches('.'));
        let rtype = if ipv4 {
            RecordType::A
        } else {
            RecordType::AAAA
        };
        self.run(async {
            let found = self.inner.lookup(fqdn.as_str(), rtype).await;
            if let Err(e) = &found {
                if matches!(e.kind(), hickory_resolver::ResolveErrorKind::Proto(p) if matches!(p.kind(), hickory_resolver::proto::ProtoErrorKind::Msg(_)))
                {
                    return Err(DnsError::Name(name.to_owned()));
                }
            }
            self.collect(found, |d| match d {
                RData::A(a) => Some(IpAddr::V4(a.0)),
                RData::AAAA(a) => Some(IpAddr::V6(a.0)),
                _ => None,
            })
        })
    }

    /// The records of a lookup as `T`s with their smallest TTL; "no records" (NXDOMAIN or
    /// NODATA) is an empty lookup, anything else an error.
    fn collect<T>(
        &self,
        found: Result<hickory_resolver::lookup::Lookup, ResolveError>,
        pick: impl Fn(&RData) -> Option<T>,
    ) -> Result<Lookup<T>, DnsError> {
        match found {
            Ok(l) => {
                let records = l.records();
                Ok(Lookup {
                    found: records.iter().filter_map(|r| pick(r.data())).collect(),
                    ttl: records.iter().map(|r| r.ttl()).min().unwrap_or(0),
                })
            }
            Err(e) if e.is_no_records_found() || e.is_nx_domain() => Ok(Lookup {
                found: Vec::new(),
                ttl: negative_ttl(&e).unwrap_or(NO_RECORDS_TTL),
            }),
            Err(e) => Err(DnsError::Lookup {
                server: self.server,
                error: e.to_string(),
            }),
        }
    }

    /// Runs a lookup to completion on this resolver's runtime, from any thread (a scoped
    /// thread drives it, so a caller inside another runtime's context is fine too).
    fn run<T: Send>(&self, f: impl std::future::Future<Output = T> + Send) -> T {
        std::thread::scope(|s| {
            s.spawn(|| self.rt.block_on(f))
                .join()
                .unwrap_or_else(|p| std::panic::resume_unwind(p))
        })
    }
}

/// The negative-caching TTL a "no records" answer carried.
fn negative_ttl(e: &ResolveError) -> Option<u32> {
    match e.kind() {
        hickory_resolver::ResolveErrorKind::Proto(p) => match p.kind() {
            hickory_resolver::proto::ProtoErrorKind::NoRecordsFound { negative_ttl, .. } => {
                *negative_ttl
            }
            _ => None,
        },
        _ => None,
    }
}
