//! The `JA4*` directives of mod_ja4: typed configuration and value validation.
//!
//! Owns: every directive's name, default, allowed range and the error text `apachectl -t`
//! prints (always naming the directive). The module's FFI shell calls these functions from its
//! command handlers and stores the resulting [`ModuleConfig`].
//! Never: touches httpd; everything here is plain data so it is tested without a server.

use std::path::PathBuf;

/// Typed server configuration of mod_ja4, with the documented defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModuleConfig {
    /// `JA4Engine`: fingerprint connections and requests.
    pub engine: bool,
    /// `JA4CaptureInterface`: the libpcap device (`any` by default).
    pub capture_interface: String,
    /// Ports to capture; empty means "the ports of Listen".
    pub capture_ports: Vec<u16>,
    /// `JA4SharedEntries`: connections the shared table holds.
    pub shared_entries: u32,
    /// `JA4ExportSocket`: the sidecar's unix socket.
    pub export_socket: Option<PathBuf>,
    /// `JA4ExportFile`: a file the batches are appended to (tests, debugging).
    pub export_file: Option<PathBuf>,
    /// `JA4BatchSize`: records per batch.
    pub batch_size: u32,
    /// `JA4FlushInterval`: longest time a record waits for its batch, milliseconds.
    pub flush_interval_ms: u32,
    /// `JA4QueueLimit`: records a child queues before it drops (counted).
    pub queue_limit: u32,
    /// `JA4SetEnv`: set the `JA4*` environment variables.
    pub set_env: bool,
    /// `JA4HTTP2Fingerprint`: read HTTP/2 connections' first frames (`JA4_H2`).
    pub h2_fingerprint: bool,
    /// `JA4RequestHeaders`: add `X-JA4*` request headers for backends.
    pub request_headers: bool,
    /// `JA4Mitigation`: off, count (decide and say) or enforce.
    pub mitigation: crate::mitigation::Mode,
    /// `JA4RateLimit`s, in the order written.
    pub rate_limits: Vec<crate::mitigation::RateLimit>,
    /// `JA4Exempt`: networks never limited.
    pub exempt: Vec<crate::mitigation::Net>,
    /// `JA4DecisionFile`: the sidecar's decisions snapshot.
    pub decision_file: Option<PathBuf>,
    /// `JA4DecisionMaxAge`: seconds after which a snapshot the sidecar stopped refreshing is
    /// ignored (fail-open).
    pub decision_max_age_s: u32,
    /// `JA4DecisionEntries`: entries the shared decisions table holds.
    pub decision_entries: u32,
    /// `JA4Action`s: what to do per verdict (unlisted verdicts are allowed).
    pub actions: Vec<(crate::decisions::Verdict, crate::decisions::Action)>,
    /// `JA4ChallengeKeyFile`: the HMAC key of challenge passes (without one, the parent makes
    /// a random key at start: passes then last until the next restart, on this server only).
    pub challenge_key_file: Option<PathBuf>,
    /// `JA4ChallengeTTL`: seconds a solved challenge's pass lasts.
    pub challenge_ttl_s: u32,
    /// `JA4ChallengeDifficulty`: leading zero bits the page's proof of work must find.
    pub challenge_difficulty: u32,
    /// `JA4BlockResponse`: the status of a blocked request (decisions and tarpits; rate
    /// limits answer 429)…
    pub block_status: u16,
    /// …and the file whose contents are its body (httpd's own error page without one).
    pub block_body_file: Option<PathBuf>,
    /// `JA4TarpitDelay`: milliseconds a tarpitted request is held before its refusal.
    pub tarpit_delay_ms: u32,
}

impl Default for ModuleConfig {
    fn default() -> Self {
        ModuleConfig {
            engine: true,
            capture_interface: "any".to_owned(),
            capture_ports: Vec::new(),
            shared_entries: 65_536,
            export_socket: None,
            export_file: None,
            batch_size: 256,
            flush_interval_ms: 1_000,
            queue_limit: 16_384,
            set_env: true,
            h2_fingerprint: true,
            request_headers: false,
            mitigation: crate::mitigation::Mode::Off,
            rate_limits: Vec::new(),
            exempt: Vec::new(),
            decision_file: None,
            decision_max_age_s: 900,
            decision_entries: 65_536,
            actions: Vec::new(),
            challenge_key_file: None,
            challenge_ttl_s: 86_400,
            challenge_difficulty: 16,
            block_status: 403,
            block_body_file: None,
            tarpit_delay_ms: 5_000,
        }
    }
}

/// Bounds of the numeric directives.
pub const SHARED_ENTRIES: (u32, u32) = (1_024, 16_777_216);
/// Bounds of `JA4BatchSize`.
pub const BATCH_SIZE: (u32, u32) = (1, 65_536);
/// Bounds of `JA4FlushInterval` (milliseconds).
pub const FLUSH_INTERVAL_MS: (u32, u32) = (10, 600_000);
/// Bounds of `JA4QueueLimit`.
pub const QUEUE_LIMIT: (u32, u32) = (16, 10_000_000);

/// Bounds of `JA4DecisionEntries`.
pub const DECISION_ENTRIES: (u32, u32) = (1_024, 4_194_304);
/// Bounds of `JA4DecisionMaxAge` (seconds).
pub const DECISION_MAX_AGE: (u32, u32) = (10, 604_800);

/// Bounds of `JA4TarpitDelay` (milliseconds).
pub const TARPIT_DELAY_MS: (u32, u32) = (100, 30_000);

/// Most `JA4RateLimit` directives (each request checks every one).
pub const MAX_RATE_LIMITS: usize = 8;

/// A directive and its one-line syntax, for httpd's command table.
pub struct Directive {
    /// The directive as written in httpd.conf.
    pub name: &'static str,
    /// Its syntax and meaning, shown by `apachectl -t` on errors.
    pub help: &'static str,
}

/// Every directive the module registers, in the order of the README's table.
pub const DIRECTIVES: &[Directive] = &[
    Directive {
        name: "JA4Engine",
        help: "On|Off: fingerprint connections and requests (default On)",
    },
    Directive {
        name: "JA4CaptureInterface",
        help: "network interface for the capture thread (default any)",
    },
    Directive {
        name: "JA4CapturePorts",
        help: "TCP ports to capture (default: the ports of Listen)",
    },
    Directive {
        name: "JA4SharedEntries",
        help: "connection entries in shared memory (1024-16777216, default 65536)",
    },
    Directive {
        name: "JA4ExportSocket",
        help: "absolute path of the sidecar's unix socket",
    },
    Directive {
        name: "JA4ExportFile",
        help: "absolute path of a JSON Lines file receiving the same records",
    },
    Directive {
        name: "JA4BatchSize",
        help: "records per export batch (1-65536, default 256)",
    },
    Directive {
        name: "JA4FlushInterval",
        help: "milliseconds between export flushes (10-600000, default 1000)",
    },
    Directive {
        name: "JA4QueueLimit",
        help: "records queued per child before the oldest are dropped (16-10000000, default 16384)",
    },
    Directive {
        name: "JA4SetEnv",
        help: "On|Off: set JA4* environment variables (default On)",
    },
    Directive {
        name: "JA4HTTP2Fingerprint",
        help: "On|Off: read HTTP/2 connections' first frames for JA4_H2 (default On)",
    },
    Directive {
        name: "JA4RequestHeaders",
        help: "On|Off: add X-JA4* request headers for backends (default Off)",
    },
    Directive {
        name: "JA4Mitigation",
        help: "Off|Count|Enforce: act on decisions and rate limits, or only say what would be done (default Off)",
    },
    Directive {
        name: "JA4RateLimit",
        help: "ip|ja4|ip+ja4 <requests>/<seconds> [burst=N] challenge|block: token bucket per key, shared by all children",
    },
    Directive {
        name: "JA4Exempt",
        help: "networks (address[/length]) never rate-limited, challenged or blocked",
    },
    Directive {
        name: "JA4DecisionFile",
        help: "absolute path of the sidecar's decisions snapshot (loaded within 1 s of a change)",
    },
    Directive {
        name: "JA4DecisionMaxAge",
        help: "seconds after which an unrefreshed decisions snapshot is ignored (10-604800, default 900)",
    },
    Directive {
        name: "JA4DecisionEntries",
        help: "entries of the decisions table shared by all children (1024-4194304, default 65536; 128 bytes each)",
    },
    Directive {
        name: "JA4Action",
        help: "<verdict> allow|challenge|block|tarpit: what JA4Mitigation does with a decided verdict",
    },
    Directive {
        name: "JA4BlockResponse",
        help: "<status 400-599> [file]: the answer to a blocked request (default 403, httpd's error page)",
    },
    Directive {
        name: "JA4TarpitDelay",
        help: "milliseconds a tarpitted request is held before it is refused (100-30000, default 5000)",
    },
    Directive {
        name: "JA4ChallengeKeyFile",
        help: "file holding the HMAC key (>= 32 bytes) that signs challenge passes (default: a random key per start)",
    },
    Directive {
        name: "JA4ChallengeTTL",
        help: "seconds a solved challenge's pass cookie lasts (60-2592000, default 86400)",
    },
    Directive {
        name: "JA4ChallengeDifficulty",
        help: "leading zero bits of the challenge's proof of work (0-24, default 16)",
    },
    Directive {
        name: "JA4StackLabels",
        help: "path of the TLS stack labels (ja4-families.tsv): JA4_STACK and JA4_UA_MISMATCH",
    },
    Directive {
        name: "JA4H2Labels",
        help: "path of the HTTP/2 fingerprint labels (h2-fingerprints.tsv): JA4_FLAGS",
    },
    Directive {
        name: "JA4KnownBad",
        help: "path of the known-bad JA4 list (known-bad-ja4.tsv): JA4_KNOWN_BAD",
    },
];

/// Applies one directive with its arguments to `cfg`. The error names the directive.
pub fn apply(cfg: &mut ModuleConfig, name: &str, args: &[&str]) -> Result<(), String> {
    let one = || -> Result<&str, String> {
        match args {
            [v] => Ok(v),
            _ => Err(format!("{name} takes one argument")),
        }
    };
    match name {
        "JA4Engine" => cfg.engine = flag(name, one()?)?,
        "JA4SetEnv" => cfg.set_env = flag(name, one()?)?,
        "JA4HTTP2Fingerprint" => cfg.h2_fingerprint = flag(name, one()?)?,
        "JA4RequestHeaders" => cfg.request_headers = flag(name, one()?)?,
        "JA4CaptureInterface" => cfg.capture_interface = interface(name, one()?)?,
        "JA4CapturePorts" => cfg.capture_ports = ports(name, args)?,
        "JA4SharedEntries" => cfg.shared_entries = number(name, one()?, SHARED_ENTRIES)?,
        "JA4BatchSize" => cfg.batch_size = number(name, one()?, BATCH_SIZE)?,
        "JA4FlushInterval" => cfg.flush_interval_ms = number(name, one()?, FLUSH_INTERVAL_MS)?,
        "JA4QueueLimit" => cfg.queue_limit = number(name, one()?, QUEUE_LIMIT)?,
        "JA4ExportSocket" => cfg.export_socket = Some(path(name, one()?)?),
        "JA4ExportFile" => cfg.export_file = Some(path(name, one()?)?),
        "JA4Mitigation" => cfg.mitigation = crate::mitigation::parse_mode(one()?)?,
        "JA4RateLimit" => {
            if cfg.rate_limits.len() >= MAX_RATE_LIMITS {
                return Err(format!("{name}: at most {MAX_RATE_LIMITS}"));
            }
            cfg.rate_limits
                .push(crate::mitigation::parse_rate_limit(&args.join(" "))?);
        }
        "JA4DecisionFile" => cfg.decision_file = Some(path(name, one()?)?),
        "JA4ChallengeKeyFile" => cfg.challenge_key_file = Some(path(name, one()?)?),
        "JA4TarpitDelay" => cfg.tarpit_delay_ms = number(name, one()?, TARPIT_DELAY_MS)?,
        "JA4BlockResponse" => {
            let words: Vec<&str> = args.iter().flat_map(|a| a.split_whitespace()).collect();
            let (status, file) = match words[..] {
                [s] => (s, None),
                [s, f] => (s, Some(f)),
                _ => return Err(format!("{name} takes a status and optionally a file")),
            };
            cfg.block_status = number(name, status, (400, 599))? as u16;
            cfg.block_body_file = file.map(|f| path(name, f)).transpose()?;
        }
        "JA4ChallengeTTL" => {
            cfg.challenge_ttl_s = number(name, one()?, crate::challenge::TTL)?;
        }
        "JA4ChallengeDifficulty" => {
            cfg.challenge_difficulty = number(name, one()?, crate::challenge::DIFFICULTY)?;
        }
        "JA4DecisionMaxAge" => cfg.decision_max_age_s = number(name, one()?, DECISION_MAX_AGE)?,
        "JA4DecisionEntries" => cfg.decision_entries = number(name, one()?, DECISION_ENTRIES)?,
        "JA4Action" => {
            let words: Vec<&str> = args.iter().flat_map(|a| a.split_whitespace()).collect();
            let [verdict, action] = words[..] else {
                return Err(format!(
                    "{name} takes a verdict and an action (allow, challenge, block or tarpit)"
                ));
            };
            let v = crate::decisions::Verdict::parse(verdict).ok_or_else(|| {
                format!(
                    "{name}: '{}' is not human, legitimate_browser, verified_bot, suspicious or bot",
                    printable(verdict)
                )
            })?;
            let a = match action {
                "allow" => crate::decisions::Action::Allow,
                "challenge" => crate::decisions::Action::Challenge,
                "block" => crate::decisions::Action::Block,
                "tarpit" => crate::decisions::Action::Tarpit,
                _ => {
                    return Err(format!(
                        "{name}: '{}' is not allow, challenge, block or tarpit",
                        printable(action)
                    ))
                }
            };
            if v == crate::decisions::Verdict::VerifiedBot && a != crate::decisions::Action::Allow {
                return Err(format!(
                    "{name}: verified crawlers are never challenged or blocked"
                ));
            }
            cfg.actions.retain(|(x, _)| *x != v);
            cfg.actions.push((v, a));
        }
        "JA4Exempt" => {
            if args.is_empty() {
                return Err(format!("{name} needs at least one network"));
            }
            for a in args {
                cfg.exempt.push(crate::mitigation::parse_net(a)?);
            }
        }
        _ => return Err(format!("{name}: unknown mod_ja4 directive")),
    }
    Ok(())
}

fn flag(name: &str, v: &str) -> Result<bool, String> {
    if v.eq_ignore_ascii_case("on") {
        Ok(true)
    } else if v.eq_ignore_ascii_case("off") {
        Ok(false)
    } else {
        Err(format!("{name} must be On or Off, not '{}'", printable(v)))
    }
}

fn number(name: &str, v: &str, (min, max): (u32, u32)) -> Result<u32, String> {
    match v.parse::<u64>() {
        Ok(n) if n >= u64::from(min) && n <= u64::from(max) => Ok(n as u32),
        _ => Err(format!(
            "{name} must be a whole number from {min} to {max}, not '{}'",
            printable(v)
        )),
    }
}

fn ports(name: &str, args: &[&str]) -> Result<Vec<u16>, String> {
    if args.is_empty() {
        return Err(format!("{name} needs at least one port"));
    }
    let mut out = Vec::with_capacity(args.len());
    for a in args {
        match a.parse::<u16>() {
            Ok(p) if p > 0 => {
                if !out.contains(&p) {
                    out.push(p);
                }
            }
            _ => {
                return Err(format!(
                    "{name}: '{}' is not a TCP port (1-65535)",
                    printable(a)
                ))
            }
        }
    }
    Ok(out)
}

fn interface(name: &str, v: &str) -> Result<String, String> {
    // Linux interface names: at most 15 bytes, no '/', ':' only for aliases, no whitespace.
    let ok = !v.is_empty() && v.len() <= 15 && v.bytes().all(|b| b.is_ascii_graphic() && b != b'/');
    if ok {
        Ok(v.to_owned())
    } else {
        Err(format!(
            "{name}: '{}' is not a network interface name (at most 15 characters, no '/')",
            printable(v)
        ))
    }
}

fn path(name: &str, v: &str) -> Result<PathBuf, String> {
    if !v.starts_with('/') {
        return Err(format!(
            "{name} needs an absolute path, not '{}'",
            printable(v)
        ));
    }
    if v.len() > 4095 {
        return Err(format!("{name}: path is too long"));
    }
    Ok(PathBuf::from(v))
}

/// Socket paths must fit `sockaddr_un` (107 bytes plus NUL).
pub fn check_socket_path(p: &std::path::Path) -> Result<(), String> {
    if p.as_os_str().len() > 107 {
        Err(format!(
            "JA4ExportSocket: path is longer than the 107 bytes a unix socket allows: {}",
            p.display()
        ))
    } else {
        Ok(())
    }
}

fn printable(v: &str) -> String {
    v.chars()
        .take(64)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(name: &str, args: &[&str]) -> Result<ModuleConfig, String> {
        let mut c = ModuleConfig::default();
        apply(&mut c, name, args).map(|_| c)
    }

    #[test]
    fn defaults_are_documented_values() {
        let c = ModuleConfig::default();
        assert!(c.engine && c.set_env && !c.request_headers);
        assert_eq!(c.capture_interface, "any");
        assert_eq!(c.shared_entries, 65_536);
        assert!(c.capture_ports.is_empty());
    }

    #[test]
    fn valid_values() {
        assert!(!set("JA4Engine", &["off"]).unwrap().engine);
        assert_eq!(
            set("JA4CapturePorts", &["443", "80", "443"])
                .unwrap()
                .capture_ports,
            vec![443, 80]
        );
        assert_eq!(
            set("JA4SharedEntries", &["1024"]).unwrap().shared_entries,
            1024
        );
        assert_eq!(
            set("JA4ExportSocket", &["/run/ja4/ingest.sock"])
                .unwrap()
                .export_socket
                .unwrap()
                .to_str(),
            Some("/run/ja4/ingest.sock")
        );
        assert_eq!(
            set("JA4CaptureInterface", &["eth0.100"])
                .unwrap()
                .capture_interface,
            "eth0.100"
        );
    }

    #[test]
    fn errors_name_the_directive() {
        for (name, args) in [
            ("JA4Engine", &["maybe"][..]),
            ("JA4SharedEntries", &["12"]),
            ("JA4SharedEntries", &["99999999999999999999"]),
            ("JA4BatchSize", &["0"]),
            ("JA4FlushInterval", &["-5"]),
            ("JA4QueueLimit", &["lots"]),
            ("JA4CapturePorts", &["0"]),
            ("JA4CapturePorts", &["70000"]),
            ("JA4CapturePorts", &[]),
            ("JA4ExportSocket", &["relative.sock"]),
            ("JA4ExportFile", &["logs/ja4.jsonl"]),
            ("JA4CaptureInterface", &["a/b"]),
            ("JA4CaptureInterface", &["much-too-long-interface"]),
            ("JA4SetEnv", &["On", "Off"]),
            ("JA4HTTP2Fingerprint", &["On", "Off"]),
        ] {
            let e = set(name, args).unwrap_err();
            assert!(e.starts_with(name), "{e}");
        }
        assert!(
            check_socket_path(std::path::Path::new(&format!("/{}", "x".repeat(120))))
                .unwrap_err()
                .contains("JA4ExportSocket")
        );
    }
}
