//! httpd's side of the `JA4*` directives: their list ([`DIRECTIVES`], from which `ffi` builds
//! httpd's command table), per-server configuration records and their merging. Values are validated by `ja4_core::directives`, whose errors name the
//! directive, so `apachectl -t` reports exactly what is wrong.
//!
//! Capture, shared memory, export, rate limits, decisions file and challenge key are global
//! (main server only); the directives of [`PER_VHOST`] may be set per virtual host.

use std::ffi::CStr;

use ja4_core::directives::{self, ModuleConfig};

#[derive(Debug, Clone, Default)]
pub(crate) struct ServerConfig {
    pub(crate) cfg: ModuleConfig,
    /// `JA4StackLabels`: the labels of known TLS stacks, read at configuration time.
    pub(crate) labels: Option<std::sync::Arc<ja4_core::stack::Labels>>,
    /// `JA4H2Labels`: the labels of known HTTP/2 stacks, read at configuration time.
    pub(crate) h2_labels: Option<std::sync::Arc<ja4_core::stack::H2Labels>>,
    /// `JA4KnownBad`: the known-bad JA4 list, read at configuration time.
    pub(crate) known_bad: Option<std::sync::Arc<ja4_core::knownbad::KnownBad>>,
    /// `JA4ChallengeKeyFile`'s key, read at configuration time.
    pub(crate) challenge_key: Option<std::sync::Arc<ja4_core::challenge::Key>>,
    /// `JA4BlockResponse`'s body, read at configuration time.
    pub(crate) block_body: Option<std::sync::Arc<std::ffi::CString>>,
    /// Which of [`PER_VHOST`] this server set (bit i for entry i).
    set_here: u16,
}

/// The directives a `<Directory>`, `<Location>` or `<Files>` section may set for itself.
pub(crate) const PER_DIR: [&str; 2] = ["JA4Mitigation", "JA4Action"];

/// A `<Directory>`/`<Location>`'s mitigation: its mode and actions, when it sets them.
#[derive(Debug, Clone, Default)]
pub(crate) struct DirConfig {
    pub(crate) mitigation: Option<ja4_core::mitigation::Mode>,
    pub(crate) actions: Option<Vec<(ja4_core::decisions::Verdict, ja4_core::decisions::Action)>>,
}

/// A section's settings over its parent's.
pub(crate) fn merge_dir(base: &DirConfig, add: &DirConfig) -> DirConfig {
    DirConfig {
        mitigation: add.mitigation.or(base.mitigation),
        actions: add.actions.clone().or_else(|| base.actions.clone()),
    }
}

/// Whether any section sets a per-directory mitigation directive: then the module decides at
/// post_read_request and acts in the access checker, where the section's settings are known.
static DIR_OVERRIDES: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// See [`DIR_OVERRIDES`].
pub(crate) fn dir_overrides() -> bool {
    DIR_OVERRIDES.load(std::sync::atomic::Ordering::Relaxed)
}

/// Whether mitigation can be on for a request of `sc` (its own mode, or a section's).
pub(crate) fn mitigation_anywhere(sc: &ServerConfig) -> bool {
    sc.cfg.mitigation != ja4_core::mitigation::Mode::Off || dir_overrides()
}

/// Applies directive `name` with `arg` inside a `<Directory>`/`<Location>`/`<Files>`.
pub(crate) fn set_dir_directive(dc: &mut DirConfig, name: &str, arg: &str) -> Result<(), String> {
    // The same parsing and errors as for a server, on a scratch configuration.
    let mut scratch = ModuleConfig::default();
    directives::apply(&mut scratch, name, &[arg])?;
    match name {
        "JA4Mitigation" => dc.mitigation = Some(scratch.mitigation),
        "JA4Action" => {
            let mut actions = dc.actions.take().unwrap_or_default();
            for (v, a) in scratch.actions {
                actions.retain(|(x, _)| *x != v);
                actions.push((v, a));
            }
            dc.actions = Some(actions);
        }
        _ => {
            return Err(format!(
                "{name} is not allowed in <Directory>, <Location> or <Files> (only {})",
                PER_DIR.join(", ")
            ))
        }
    }
    DIR_OVERRIDES.store(true, std::sync::atomic::Ordering::Relaxed);
    Ok(())
}

/// The directives a `<VirtualHost>` may set for itself; the rest are global.
const PER_VHOST: [&str; 11] = [
    "JA4Engine",
    "JA4SetEnv",
    "JA4HTTP2Fingerprint",
    "JA4RequestHeaders",
    "JA4Mitigation",
    "JA4Action",
    "JA4Exempt",
    "JA4ChallengeTTL",
    "JA4ChallengeDifficulty",
    "JA4BlockResponse",
    "JA4TarpitDelay",
];

/// Copies directive `name`'s setting from `from` to `to`.
fn copy_setting(name: &str, from: &ServerConfig, to: &mut ServerConfig) {
    if name == "JA4BlockResponse" {
        to.block_body.clone_from(&from.block_body);
    }
    let (from, to) = (&from.cfg, &mut to.cfg);
    match name {
        "JA4Engine" => to.engine = from.engine,
        "JA4SetEnv" => to.set_env = from.set_env,
        "JA4HTTP2Fingerprint" => to.h2_fingerprint = from.h2_fingerprint,
        "JA4RequestHeaders" => to.request_headers = from.request_headers,
        "JA4Mitigation" => to.mitigation = from.mitigation,
        "JA4Action" => to.actions.clone_from(&from.actions),
        "JA4Exempt" => to.exempt.clone_from(&from.exempt),
        "JA4ChallengeTTL" => to.challenge_ttl_s = from.challenge_ttl_s,
        "JA4ChallengeDifficulty" => to.challenge_difficulty = from.challenge_difficulty,
        "JA4BlockResponse" => {
            to.block_status = from.block_status;
            to.block_body_file.clone_from(&from.block_body_file);
        }
        "JA4TarpitDelay" => to.tarpit_delay_ms = from.tarpit_delay_ms,
        _ => {}
    }
}

/// The configuration of a virtual host: `add`'s per-vhost settings over `base`'s (a vhost's
/// `JA4Action`s and `JA4Exempt`s replace the main server's lists).
pub(crate) fn merge(base: &ServerConfig, add: &ServerConfig) -> ServerConfig {
    let mut merged = base.clone();
    for (i, name) in PER_VHOST.iter().enumerate() {
        if add.set_here & (1 << i) != 0 {
            copy_setting(name, add, &mut merged);
            merged.set_here |= 1 << i;
        }
    }
    merged
}

/// How a directive takes its arguments.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Takes {
    /// One argument.
    One,
    /// A list, each argument applied in turn.
    List,
    /// The rest of the line, parsed by the directive.
    Line,
}

/// One `JA4*` directive: its name, help (shown by httpd for a syntax error), and how it takes
/// its arguments.
pub(crate) struct Directive {
    pub(crate) name: &'static CStr,
    pub(crate) help: &'static CStr,
    pub(crate) takes: Takes,
    /// Allowed in `<Directory>`, `<Location>` and `<Files>` too ([`PER_DIR`]).
    pub(crate) per_dir: bool,
}

const fn one(name: &'static CStr, help: &'static CStr) -> Directive {
    Directive {
        name,
        help,
        takes: Takes::One,
        per_dir: false,
    }
}

/// Every directive, in the order `httpd -L` lists them.
pub(crate) const DIRECTIVES: [Directive; 27] = [
    one(
        c"JA4Engine",
        c"On|Off: fingerprint connections and requests (default On)",
    ),
    one(
        c"JA4CaptureInterface",
        c"network interface for the capture thread (default any)",
    ),
    Directive {
        name: c"JA4CapturePorts",
        help: c"TCP ports to capture (default: the ports of Listen)",
        takes: Takes::List,
        per_dir: false,
    },
    one(
        c"JA4SharedEntries",
        c"connection entries in shared memory (1024-16777216, default 65536)",
    ),
    one(
        c"JA4ExportSocket",
        c"absolute path of the sidecar's unix socket",
    ),
    one(
        c"JA4ExportFile",
        c"absolute path of a JSON Lines file receiving the same records",
    ),
    one(
        c"JA4BatchSize",
        c"records per export batch (1-65536, default 256)",
    ),
    one(
        c"JA4FlushInterval",
        c"milliseconds between export flushes (10-600000, default 1000)",
    ),
    one(
        c"JA4QueueLimit",
        c"records queued per child before the oldest are dropped (default 16384)",
    ),
    one(
        c"JA4SetEnv",
        c"On|Off: set JA4* environment variables (default On)",
    ),
    one(
        c"JA4HTTP2Fingerprint",
        c"On|Off: read HTTP/2 connections' first frames for JA4_H2 (default On)",
    ),
    one(
        c"JA4RequestHeaders",
        c"On|Off: add X-JA4* request headers for backends (default Off)",
    ),
    Directive {
        name: c"JA4Mitigation",
        help: c"Off|Count|Enforce: act on decisions and rate limits, or only say what would be done (default Off)",
        takes: Takes::One,
        per_dir: true,
    },
    Directive {
        name: c"JA4RateLimit",
        help: c"ip|ja4|ip+ja4 <requests>/<seconds> [burst=N] challenge|block: token bucket per key, shared by all children",
        takes: Takes::Line,
        per_dir: false,
    },
    Directive {
        name: c"JA4Exempt",
        help: c"networks (address[/length]) never rate-limited, challenged or blocked",
        takes: Takes::List,
        per_dir: false,
    },
    one(
        c"JA4DecisionFile",
        c"absolute path of the sidecar's decisions snapshot (loaded within 1 s of a change)",
    ),
    one(
        c"JA4DecisionMaxAge",
        c"seconds after which an unrefreshed decisions snapshot is ignored (10-604800, default 900)",
    ),
    one(
        c"JA4DecisionEntries",
        c"entries of the decisions table shared by all children (1024-4194304, default 65536; 128 bytes each)",
    ),
    Directive {
        name: c"JA4Action",
        help: c"<verdict> allow|challenge|block|tarpit: what JA4Mitigation does with a decided verdict",
        takes: Takes::Line,
        per_dir: true,
    },
    Directive {
        name: c"JA4BlockResponse",
        help: c"<status 400-599> [file]: the answer to a blocked request (default 403, httpd's error page)",
        takes: Takes::Line,
        per_dir: false,
    },
    one(
        c"JA4TarpitDelay",
        c"milliseconds a tarpitted request is held before it is refused (100-30000, default 5000)",
    ),
    one(
        c"JA4ChallengeKeyFile",
        c"file holding the HMAC key (>= 32 bytes) that signs challenge passes (default: a random key per start)",
    ),
    one(
        c"JA4ChallengeTTL",
        c"seconds a solved challenge's pass cookie lasts (60-2592000, default 86400)",
    ),
    one(
        c"JA4ChallengeDifficulty",
        c"leading zero bits of the challenge's proof of work (0-24, default 16)",
    ),
    one(
        c"JA4StackLabels",
        c"path of the TLS stack labels (ja4-families.tsv): JA4_STACK and JA4_UA_MISMATCH",
    ),
    one(
        c"JA4H2Labels",
        c"path of the HTTP/2 fingerprint labels (h2-fingerprints.tsv): JA4_FLAGS",
    ),
    one(
        c"JA4KnownBad",
        c"path of the known-bad JA4 list (known-bad-ja4.tsv): JA4_KNOWN_BAD",
    ),
];

const _: () = assert!(directives::DIRECTIVES.len() == DIRECTIVES.len());

/// Applies directive `name` with `arg` to `sc` (the server being configured; `in_vhost`
/// when it is a `<VirtualHost>`). The error names the directive, for `apachectl -t`.
pub(crate) fn set_directive(
    sc: &mut ServerConfig,
    name: &str,
    arg: &str,
    in_vhost: bool,
) -> Result<(), String> {
    if in_vhost && !PER_VHOST.contains(&name) {
        return Err(format!(
            "{name} is only allowed in the main server configuration, not in <VirtualHost>"
        ));
    }
    // Lists read at configuration time: a bad file fails `apachectl -t` naming the directive,
    // the file and the line.
    let table = |what: Result<(), String>| what.map_err(|e| format!("{name} {arg}: {e}"));
    let read = || std::fs::read_to_string(arg).map_err(|e| format!("{name} {arg}: {e}"));
    let first_skipped = |skipped: &[(usize, String)]| match skipped.first() {
        Some((line, why)) => Err(format!("line {line}: {why}")),
        None => Ok(()),
    };
    match name {
        "JA4StackLabels" => {
            let labels = ja4_core::stack::parse_labels(&read()?);
            table(first_skipped(&labels.skipped))?;
            sc.labels = Some(std::sync::Arc::new(labels));
            return Ok(());
        }
        "JA4H2Labels" => {
            let labels = ja4_core::stack::parse_h2_labels(&read()?);
            table(first_skipped(&labels.skipped))?;
            sc.h2_labels = Some(std::sync::Arc::new(labels));
            return Ok(());
        }
        "JA4KnownBad" => {
            let list = ja4_core::knownbad::parse(&read()?).map_err(|e| e.to_string());
            sc.known_bad = Some(std::sync::Arc::new(
                list.map_err(|e| format!("{name} {arg}: {e}"))?,
            ));
            return Ok(());
        }
        _ => {}
    }
    if name == "JA4BlockResponse" {
        directives::apply(&mut sc.cfg, name, &[arg])?;
        sc.block_body = match &sc.cfg.block_body_file {
            None => None,
            Some(f) => Some(std::sync::Arc::new(
                block_body(f).map_err(|e| format!("{name} {}: {e}", f.display()))?,
            )),
        };
        if let Some(i) = PER_VHOST.iter().position(|n| *n == name) {
            sc.set_here |= 1 << i;
        }
        return Ok(());
    }
    if name == "JA4ChallengeKeyFile" {
        directives::apply(&mut sc.cfg, name, &[arg])?;
        let bytes = std::fs::read(arg).map_err(|e| format!("{name} {arg}: {e}"))?;
        let key =
            ja4_core::challenge::Key::new(&bytes).map_err(|e| format!("{name} {arg}: {e}"))?;
        sc.challenge_key = Some(std::sync::Arc::new(key));
        return Ok(());
    }
    let result = if name == "JA4CapturePorts" {
        let mut ports = sc.cfg.capture_ports.clone();
        directives::apply(&mut sc.cfg, name, &[arg]).map(|_| {
            for p in std::mem::take(&mut sc.cfg.capture_ports) {
                if !ports.contains(&p) {
                    ports.push(p);
                }
            }
            sc.cfg.capture_ports = ports;
        })
    } else {
        directives::apply(&mut sc.cfg, name, &[arg])
    };
    result.and_then(|_| match &sc.cfg.export_socket {
        Some(p) if name == "JA4ExportSocket" => directives::check_socket_path(p),
        _ => Ok(()),
    })?;
    if let Some(i) = PER_VHOST.iter().position(|n| *n == name) {
        sc.set_here |= 1 << i;
    }
    Ok(())
}

/// Most bytes a `JA4BlockResponse` body may hold.
const MAX_BLOCK_BODY: u64 = 65_536;

/// The body of `JA4BlockResponse`'s file, as httpd's custom response text: a body that
/// starts like a path or an address would be taken for a redirect, so such a body gets a
/// leading newline.
fn block_body(f: &std::path::Path) -> Result<std::ffi::CString, String> {
    let len = std::fs::metadata(f).map_err(|e| e.to_string())?.len();
    if len > MAX_BLOCK_BODY {
        return Err(format!("{len} bytes, at most {MAX_BLOCK_BODY}"));
    }
    let mut body = std::fs::read(f).map_err(|e| e.to_string())?;
    if body.first() != Some(&b'<') {
        body.insert(0, b'\n');
    }
    std::ffi::CString::new(body).map_err(|_| "the file holds a NUL byte".to_owned())
}

const _: () = {
    // PER_DIR names exactly the directives marked per_dir.
    let mut i = 0;
    let mut n = 0;
    while i < DIRECTIVES.len() {
        if DIRECTIVES[i].per_dir {
            n += 1;
        }
        i += 1;
    }
    assert!(n == PER_DIR.len());
};
