//! The DNS lookups crawler verification needs (the reverse name of an address, the addresses
//! of a name, with their TTLs), through `hickory-resolver`'s name-server pool asking one
//! configured server: random query IDs and source ports, TCP when a UDP answer is truncated,
//! timeouts and retries are the library's.
//!
//! The pool is used rather than hickory's `Resolver` because the resolver answers the RFC 6761
//! special-use names itself (every `127.in-addr.arpa` PTR is "localhost"): a verifier must ask
//! the server what the operator configured there, loopback included (the lab's crawlers come
//! from 127.33.0.0/24).
//!
//! Owns: [`Resolver`] (a synchronous face for the scoring code, which runs on blocking
//! threads), what "no records" means ([`Lookup`] empty, with the negative TTL) versus a
//! failure ([`DnsError`]: the server did not answer, or answered with an error).
//! Never: blocks longer than its timeout × attempts per lookup; never turns a failure into
//! "no records" (a verdict on an unanswered lookup would call a genuine crawler a spoofer).

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use hickory_resolver::config::{NameServerConfig, NameServerConfigGroup, ResolverOpts};
use hickory_resolver::name_server::{NameServerPool, TokioConnectionProvider};
use hickory_resolver::proto::op::Query;
use hickory_resolver::proto::rr::{Name, RData, RecordType};
use hickory_resolver::proto::xfer::{DnsHandle, DnsRequestOptions, FirstAnswer, Protocol};
use hickory_resolver::proto::{ProtoError, ProtoErrorKind};

/// A lookup that could not be answered.
#[derive(Debug, thiserror::Error)]
pub enum DnsError {
    #[error("DNS server {server}: {error}")]
    /// The server did not answer, or answered with an error.
    Lookup {
        /// The server asked.
        server: SocketAddr,
        /// What went wrong.
        error: String,
    },
    #[error("'{0}' is not a valid DNS name")]
    /// A name that is not a valid DNS name.
    Name(String),
    #[error("starting the DNS client: {0}")]
    /// The lookups' runtime could not be started.
    Runtime(std::io::Error),
}

/// What a lookup found: names (PTR) or addresses (A/AAAA), and how long it may be kept
/// (seconds; for "none", the server's negative-caching TTL).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lookup<T> {
    /// The records found.
    pub found: Vec<T>,
    /// Seconds they may be kept.
    pub ttl: u32,
}

/// TTL of a "no records" answer that carried none.
const NO_RECORDS_TTL: u32 = 300;

/// A resolver asking one server.
pub struct Resolver {
    server: SocketAddr,
    /// Always Some until dropped (taken by `Drop`, which may run inside another runtime).
    rt: Option<tokio::runtime::Runtime>,
    pool: NameServerPool<TokioConnectionProvider>,
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
        let servers = NameServerConfigGroup::from(vec![
            NameServerConfig::new(server, Protocol::Udp),
            NameServerConfig::new(server, Protocol::Tcp),
        ]);
        let mut opts = ResolverOpts::default();
        opts.timeout = timeout;
        opts.attempts = 2;
        let pool = {
            let _guard = rt.enter();
            NameServerPool::from_config(servers, opts, TokioConnectionProvider::default())
        };
        Ok(Resolver {
            server,
            rt: Some(rt),
            pool,
        })
    }

    /// The server asked.
    pub fn server(&self) -> SocketAddr {
        self.server
    }

    /// The names `ip` points back to (PTR).
    pub fn reverse(&self, ip: IpAddr) -> Result<Lookup<String>, DnsError> {
        self.query(Name::from(ip), RecordType::PTR, |d| match d {
            RData::PTR(n) => Some(n.0.to_utf8().trim_end_matches('.').to_owned()),
            _ => None,
        })
    }

    /// The addresses of `name` of `ip`'s family (A for IPv4, AAAA for IPv6).
    pub fn addresses(&self, name: &str, ipv4: bool) -> Result<Lookup<IpAddr>, DnsError> {
        let fqdn = Name::from_ascii(format!("{}.", name.trim_end_matches('.')))
            .map_err(|_| DnsError::Name(name.to_owned()))?;
        let rtype = if ipv4 {
            RecordType::A
        } else {
            RecordType::AAAA
        };
        self.query(fqdn, rtype, |d| match d {
            RData::A(a) => Some(IpAddr::V4(a.0)),
            RData::AAAA(a) => Some(IpAddr::V6(a.0)),
            _ => None,
        })
    }

    /// Asks the server for `name`'s `rtype` records and returns those `pick` keeps, with their
    /// smallest TTL; "no records" (NXDOMAIN or NODATA) is an empty lookup, anything else an
    /// error.
    fn query<T: Send>(
        &self,
        name: Name,
        rtype: RecordType,
        pick: impl Fn(&RData) -> Option<T> + Send,
    ) -> Result<Lookup<T>, DnsError> {
        let mut options = DnsRequestOptions::default();
        options.recursion_desired = true;
        let answer = self.run(
            self.pool
                .lookup(Query::query(name, rtype), options)
                .first_answer(),
        );
        match answer {
            Ok(response) => {
                let records = response.answers();
                let found: Vec<T> = records.iter().filter_map(|r| pick(r.data())).collect();
                let ttl = records.iter().map(|r| r.ttl()).min().unwrap_or(0);
                if found.is_empty() {
                    // An answer with only other types (a CNAME without its target) is "none".
                    return Ok(Lookup {
                        found,
                        ttl: NO_RECORDS_TTL,
                    });
                }
                Ok(Lookup { found, ttl })
            }
            Err(e) => match e.kind() {
                ProtoErrorKind::NoRecordsFound { negative_ttl, .. } => Ok(Lookup {
                    found: Vec::new(),
                    ttl: negative_ttl.unwrap_or(NO_RECORDS_TTL),
                }),
                _ => Err(self.failed(e)),
            },
        }
    }

    fn failed(&self, e: ProtoError) -> DnsError {
        DnsError::Lookup {
            server: self.server,
            error: e.to_string(),
        }
    }

    /// Runs a lookup to completion on this resolver's runtime, from any thread (a scoped
    /// thread drives it, so a caller inside another runtime's context is fine too).
    fn run<T: Send>(&self, f: impl std::future::Future<Output = T> + Send) -> T {
        std::thread::scope(|s| {
            s.spawn(|| {
                let rt = self.rt.as_ref().expect("the runtime lives until drop");
                rt.block_on(f)
            })
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p))
        })
    }
}

impl Drop for Resolver {
    /// Shuts the lookups' runtime down without waiting: the owner (the scoring loop) may be
    /// dropped inside `serve`'s runtime, where a plain runtime drop panics.
    fn drop(&mut self) {
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}
