//! Who may do what: users, passwords, sessions, CSRF tokens and login rate limits.
//!
//! Owns: the users file (JSON, written atomically with mode 0600; `ja4-sidecar user add`
//! and the admin page edit it, the server re-reads it when it changes), argon2id password
//! hashes and the password policy, in-memory sessions with expiry, an idle timeout and a cap
//! per user (a restart logs everyone out; a new password or role ends a user's sessions), one
//! CSRF token per session, and growing delays after failed logins per (user, address).
//! Never: stores or logs a password; never compares secrets in variable time; never lets a
//! disabled or deleted user keep a session.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
/// What a user may do.
pub enum Role {
    /// Reads every view, marks false positives and confirmed bots, exports.
    Analyst,
    /// Also manages users, allow/deny lists and settings.
    Admin,
}

impl Role {
    /// Its name in the users file and the audit trail.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Analyst => "analyst",
            Role::Admin => "admin",
        }
    }
}

impl std::str::FromStr for Role {
    type Err = AuthError;
    fn from_str(s: &str) -> Result<Role, AuthError> {
        match s {
            "analyst" => Ok(Role::Analyst),
            "admin" => Ok(Role::Admin),
            _ => Err(AuthError::Invalid(format!(
                "role must be analyst or admin, got {s:?}"
            ))),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
/// A dashboard user (one entry of the users file).
pub struct User {
    /// The login name.
    pub name: String,
    /// What the user may do.
    pub role: Role,
    /// argon2id PHC string.
    pub hash: String,
    /// When it was created (seconds since the epoch).
    pub created: u64,
    #[serde(default)]
    /// A disabled user cannot log in; the entry stays for the audit trail.
    pub disabled: bool,
}

#[derive(Debug, thiserror::Error)]
/// Why a user could not be added, changed or read.
pub enum AuthError {
    #[error("{0}")]
    /// A name, role or password that breaks a rule (which).
    Invalid(String),
    #[error("{context}: {error}")]
    /// Reading or writing the users file.
    Io {
        /// What was being done, on which path.
        context: String,
        /// Why it failed.
        error: std::io::Error,
    },
    #[error("users file {path} is not valid: {error}")]
    /// The users file is not valid JSON.
    Parse {
        /// Its path.
        path: PathBuf,
        /// The parser's error.
        error: serde_json::Error,
    },
    #[error("cannot hash the password: {0}")]
    /// argon2 failed.
    Hash(String),
}

/// A user name: 1–64 characters of letters, digits, `.`, `_`, `-`, `@`.
pub fn valid_name(n: &str) -> bool {
    !n.is_empty()
        && n.len() <= 64
        && n.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'@'))
}

/// Shortest password accepted.
pub const MIN_PASSWORD: usize = 10;
/// Longest password accepted (argon2 input is bounded).
pub const MAX_PASSWORD: usize = 128;
/// Fewest different characters a password must use (`aaaaaaaaaa` is ten characters of one).
pub const MIN_DISTINCT: usize = 5;

/// Common passwords of at least [`MIN_PASSWORD`] characters (zxcvbn's list, MIT:
/// `refdata/passwords/README.md`).
const COMMON: &str = include_str!("../../refdata/passwords/common-10plus.txt");

/// Why `password` is not acceptable for `user`, if it is not: its length, too few different
/// characters, the user name inside it, or a common password.
pub fn password_problem(user: &str, password: &str) -> Option<String> {
    let n = password.chars().count();
    if n < MIN_PASSWORD {
        return Some(format!(
            "a password needs at least {MIN_PASSWORD} characters"
        ));
    }
    if n > MAX_PASSWORD {
        return Some(format!("a password has at most {MAX_PASSWORD} characters"));
    }
    let distinct: std::collections::HashSet<char> = password.chars().collect();
    if distinct.len() < MIN_DISTINCT {
        return Some(format!(
            "a password needs at least {MIN_DISTINCT} different characters"
        ));
    }
    let lower = password.to_lowercase();
    if !user.is_empty() && lower.contains(&user.to_lowercase()) {
        return Some("a password must not contain the user name".into());
    }
    if COMMON.lines().any(|c| c == lower) {
        return Some("this password is on the list of common passwords".into());
    }
    None
}

/// An argon2id hash of `password` (which must pass [`password_problem`] with no user).
pub fn hash_password(password: &str) -> Result<String, AuthError> {
    if let Some(p) = password_problem("", password) {
        return Err(AuthError::Invalid(p));
    }
    hash_any(password)
}

fn hash_any(password: &str) -> Result<String, AuthError> {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| AuthError::Hash(e.to_string()))?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| AuthError::Hash(e.to_string()))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| AuthError::Hash(e.to_string()))
}

/// Whether `password` matches the argon2id PHC string `hash` (constant time).
pub fn verify_password(hash: &str, password: &str) -> bool {
    PasswordHash::new(hash)
        .map(|h| {
            Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok()
        })
        .unwrap_or(false)
}

/// A hash to verify against when the user does not exist, so a login for an unknown user
/// costs the same time as one with a wrong password.
fn dummy_hash() -> &'static str {
    static H: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    H.get_or_init(|| hash_any("not-a-real-password").unwrap_or_default())
}

/// The users file.
pub struct Users {
    path: PathBuf,
    cache: Mutex<(Option<SystemTime>, Vec<User>)>,
}

impl Users {
    /// The users of the file at `path` (read at each login, so edits apply at once).
    pub fn new(path: &Path) -> Users {
        Users {
            path: path.to_owned(),
            cache: Mutex::new((None, Vec::new())),
        }
    }

    /// The users file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Every user, re-read when the file changed.
    pub fn list(&self) -> Result<Vec<User>, AuthError> {
        let mtime = std::fs::metadata(&self.path)
            .and_then(|m| m.modified())
            .ok();
        let mut c = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if mtime.is_none() {
            *c = (None, Vec::new());
        } else if c.0 != mtime {
            let text = std::fs::read(&self.path).map_err(|error| AuthError::Io {
                context: format!("reading {}", self.path.display()),
                error,
            })?;
            let users: Vec<User> =
                serde_json::from_slice(&text).map_err(|error| AuthError::Parse {
                    path: self.path.clone(),
                    error,
                })?;
            *c = (mtime, users);
        }
        Ok(c.1.clone())
    }

    /// The user `name`, if there is one.
    pub fn get(&self, name: &str) -> Option<User> {
        self.list()
            .ok()?
            .into_iter()
            .find(|u| u.name == name && !u.disabled)
    }

    /// Adds `name` or replaces its role and password.
    pub fn upsert(&self, name: &str, role: Role, password: &str) -> Result<(), AuthError> {
        if !valid_name(name) {
            return Err(AuthError::Invalid(format!(
                "user name {name:?}: use 1-64 letters, digits, '.', '_', '-', '@'"
            )));
        }
        if let Some(p) = password_problem(name, password) {
            return Err(AuthError::Invalid(p));
        }
        let hash = hash_any(password)?;
        let mut users = self.list()?;
        let created = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        // A reset keeps a disabled user disabled (enabling is its own, audited, step); the new
        // hash ends the user's sessions (`Sessions::get` compares it).
        let disabled = users.iter().any(|u| u.name == name && u.disabled);
        users.retain(|u| u.name != name);
        users.push(User {
            name: name.to_owned(),
            role,
            hash,
            created,
            disabled,
        });
        users.sort_by(|a, b| a.name.cmp(&b.name));
        self.write(&users)
    }

    /// Disables (or re-enables) a user; their sessions end at their next request.
    pub fn set_disabled(&self, name: &str, disabled: bool) -> Result<bool, AuthError> {
        let mut users = self.list()?;
        let Some(u) = users.iter_mut().find(|u| u.name == name) else {
            return Ok(false);
        };
        u.disabled = disabled;
        self.write(&users)?;
        Ok(true)
    }

    fn write(&self, users: &[User]) -> Result<(), AuthError> {
        let io = |context: String| move |error| AuthError::Io { context, error };
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir).map_err(io(format!("creating {}", dir.display())))?;
        }
        let tmp = self.path.with_extension("tmp");
        let text = serde_json::to_vec_pretty(users).map_err(|e| AuthError::Hash(e.to_string()))?;
        {
            use std::io::Write;
            use std::os::unix::fs::OpenOptionsExt;
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&tmp)
                .map_err(io(format!("writing {}", tmp.display())))?;
            f.write_all(&text)
                .and_then(|_| f.sync_all())
                .map_err(io(format!("writing {}", tmp.display())))?;
        }
        std::fs::rename(&tmp, &self.path)
            .map_err(io(format!("replacing {}", self.path.display())))?;
        // A rename within one second keeps the mtime granularity from hiding the change.
        self.cache.lock().unwrap_or_else(|e| e.into_inner()).0 = None;
        Ok(())
    }

    /// Checks a login. Unknown users cost the same as wrong passwords.
    pub fn authenticate(&self, name: &str, password: &str) -> Option<User> {
        match self.get(name) {
            Some(u) if verify_password(&u.hash, password) => Some(u),
            Some(_) => None,
            None => {
                verify_password(dummy_hash(), password);
                None
            }
        }
    }
}

/// 32 random bytes, hex.
pub fn token() -> String {
    let mut b = [0u8; 32];
    // getrandom only fails without an OS entropy source, where no session can be safe.
    getrandom::fill(&mut b).expect("the OS random source is available");
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Equal-time comparison of two secrets.
pub fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

#[derive(Debug, Clone)]
/// A logged-in user's session.
pub struct Session {
    /// The user.
    pub user: String,
    /// Their role when the session began.
    pub role: Role,
    /// The token forms and API calls other than GET must carry.
    pub csrf: String,
    /// The user's password hash when the session began: a new password ends the session.
    stamp: String,
    started: Instant,
    expires: Instant,
    last_seen: Instant,
}

/// Live sessions by cookie token.
pub struct Sessions {
    ttl: Duration,
    idle: Duration,
    per_user: usize,
    map: Mutex<HashMap<String, Session>>,
}

impl Sessions {
    /// Sessions that last at most `ttl`, end after `idle` without a request, and at most
    /// `per_user` at a time for one user (the oldest ends first).
    pub fn new(ttl: Duration, idle: Duration, per_user: usize) -> Sessions {
        Sessions {
            ttl,
            idle,
            per_user: per_user.max(1),
            map: Mutex::new(HashMap::new()),
        }
    }

    /// How long a session lives at most.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Starts a session; returns its cookie token.
    pub fn start(&self, user: &User) -> (String, Session) {
        let now = Instant::now();
        let s = Session {
            user: user.name.clone(),
            role: user.role,
            csrf: token(),
            stamp: user.hash.clone(),
            started: now,
            expires: now + self.ttl,
            last_seen: now,
        };
        let t = token();
        let mut m = self.map.lock().unwrap_or_else(|e| e.into_inner());
        m.retain(|_, s| s.expires > now && now.duration_since(s.last_seen) < self.idle);
        let mut mine: Vec<(Instant, String)> = m
            .iter()
            .filter(|(_, s)| s.user == user.name)
            .map(|(t, s)| (s.started, t.clone()))
            .collect();
        mine.sort();
        let over = (mine.len() + 1).saturating_sub(self.per_user);
        for (_, old) in mine.into_iter().take(over) {
            m.remove(&old);
        }
        m.insert(t.clone(), s.clone());
        (t, s)
    }

    /// The live session of `token`, checked against the current users file (a disabled,
    /// deleted or re-roled user's session ends, and so does one whose password changed) and
    /// against the idle timeout; a request keeps it alive.
    pub fn get(&self, token: &str, users: &Users) -> Option<Session> {
        let mut m = self.map.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        let s = m.get_mut(token)?;
        let valid = s.expires > now
            && now.duration_since(s.last_seen) < self.idle
            && users
                .get(&s.user)
                .is_some_and(|u| u.role == s.role && same(&u.hash, &s.stamp));
        if !valid {
            m.remove(token);
            return None;
        }
        s.last_seen = now;
        Some(s.clone())
    }

    /// Ends the session of `token` (logout).
    pub fn end(&self, token: &str) {
        self.map
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(token);
    }

    /// Live sessions of `user`.
    pub fn count(&self, user: &str) -> usize {
        self.map
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .filter(|s| s.user == user)
            .count()
    }
}

/// Login attempts: growing delays per (user, client address), a looser limit per address.
///
/// Each (user, address) pair may fail `max` times; every later failure doubles a wait (1 s,
/// 2 s, 4 s … at most [`MAX_DELAY`]) before that pair may try again. One address may fail
/// `4 × max` times across user names before the same waits apply to it (spraying). An attempt
/// is counted when it begins, before its password is verified, so parallel guesses cannot
/// overtake the count. The right password from another address is never held back by what
/// others did: there is no per-user lock. Failures are forgotten after `window` without one.
pub struct LoginLimiter {
    max: usize,
    window: Duration,
    state: Mutex<HashMap<LimitKey, Tries>>,
}

/// The longest wait between two attempts of one (user, address) pair.
pub const MAX_DELAY: Duration = Duration::from_secs(900);

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum LimitKey {
    Pair(String, IpAddr),
    Address(IpAddr),
}

#[derive(Debug, Default)]
struct Tries {
    fails: usize,
    /// Attempts begun and not finished.
    pending: usize,
    last: Option<Instant>,
    /// No attempt before this instant.
    until: Option<Instant>,
    /// Refusals since the last failure (the first is audited, the rest counted in it).
    refused: u64,
}

/// An attempt that may go on: finish it with [`LoginLimiter::failed`] or
/// [`LoginLimiter::succeeded`].
#[derive(Debug)]
pub struct Attempt {
    ip: IpAddr,
    user: String,
}

/// An attempt that must wait.
#[derive(Debug, PartialEq, Eq)]
pub struct Refused {
    /// Seconds to wait.
    pub wait_s: u64,
    /// True for the first refusal since the pair's (or address's) last failure: audit that
    /// one, count the rest.
    pub first: bool,
}

impl LoginLimiter {
    /// At most `max` failed logins per `window` per address and per user.
    pub fn new(max: usize, window: Duration) -> LoginLimiter {
        LoginLimiter {
            max: max.max(1),
            window,
            state: Mutex::new(HashMap::new()),
        }
    }

    fn keys(ip: IpAddr, user: &str) -> [(LimitKey, usize); 2] {
        [
            (LimitKey::Pair(user.to_owned(), ip), 1),
            (LimitKey::Address(ip), 4),
        ]
    }

    /// Begins an attempt of `user` from `ip`, or says how long to wait.
    pub fn begin(&self, ip: IpAddr, user: &str) -> Result<Attempt, Refused> {
        let now = Instant::now();
        let mut m = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if m.len() > 100_000 {
            m.retain(|_, t| {
                t.pending > 0 || t.last.is_some_and(|l| now.duration_since(l) < self.window)
            });
        }
        let mut refused: Option<Refused> = None;
        for (k, factor) in Self::keys(ip, user) {
            let t = m.entry(k).or_default();
            if t.pending == 0 && t.last.is_some_and(|l| now.duration_since(l) >= self.window) {
                *t = Tries::default();
            }
            let limit = self.max * factor;
            let waiting = t.until.is_some_and(|u| u > now);
            // At the limit: attempts in flight use up what is left of it, and past it only
            // one attempt at a time goes on, once its wait is over.
            let full = t.fails + t.pending >= limit && (t.fails < limit || t.pending > 0);
            if waiting || full {
                t.refused += 1;
                let wait_s = t
                    .until
                    .map_or(1, |u| u.saturating_duration_since(now).as_secs().max(1));
                let r = Refused {
                    wait_s,
                    first: t.refused == 1,
                };
                refused = Some(match refused {
                    Some(o) => Refused {
                        wait_s: o.wait_s.max(r.wait_s),
                        first: o.first || r.first,
                    },
                    None => r,
                });
            }
        }
        if let Some(r) = refused {
            return Err(r);
        }
        for (k, _) in Self::keys(ip, user) {
            if let Some(t) = m.get_mut(&k) {
                t.pending += 1;
            }
        }
        Ok(Attempt {
            ip,
            user: user.to_owned(),
        })
    }

    /// The attempt failed: counted, and past the limit the next one waits longer.
    pub fn failed(&self, a: Attempt) {
        let now = Instant::now();
        let mut m = self.state.lock().unwrap_or_else(|e| e.into_inner());
        for (k, factor) in Self::keys(a.ip, &a.user) {
            let t = m.entry(k).or_default();
            t.pending = t.pending.saturating_sub(1);
            t.fails += 1;
            t.last = Some(now);
            t.refused = 0;
            let limit = self.max * factor;
            if t.fails >= limit {
                let shift = (t.fails - limit).min(20) as u32;
                let wait = Duration::from_secs(1u64 << shift).min(MAX_DELAY);
                t.until = Some(now + wait);
            }
        }
    }

    /// The attempt succeeded: the pair starts afresh; the address keeps its count.
    pub fn succeeded(&self, a: Attempt) {
        let mut m = self.state.lock().unwrap_or_else(|e| e.into_inner());
        m.remove(&LimitKey::Pair(a.user.clone(), a.ip));
        if let Some(t) = m.get_mut(&LimitKey::Address(a.ip)) {
            t.pending = t.pending.saturating_sub(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_hash_and_verify() {
        let h = hash_password("correct horse battery").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password(&h, "correct horse battery"));
        assert!(!verify_password(&h, "correct horse batterz"));
        assert!(hash_password("short").is_err());
    }

    #[test]
    fn users_file_round_trips_and_disables() {
        let dir = std::env::temp_dir().join(format!("ja4-users-{}", std::process::id()));
        let users = Users::new(&dir.join("users.json"));
        assert!(users.list().unwrap().is_empty());
        users
            .upsert("alice", Role::Admin, "amber-falcon-70")
            .unwrap();
        users
            .upsert("bob", Role::Analyst, "quiet-harbor-11")
            .unwrap();
        assert!(users
            .upsert("bad name", Role::Analyst, "whatever-long")
            .is_err());
        assert_eq!(
            users.authenticate("alice", "amber-falcon-70").unwrap().role,
            Role::Admin
        );
        assert!(users.authenticate("alice", "wrong-password").is_none());
        assert!(users.authenticate("nobody", "amber-falcon-70").is_none());
        let sessions = Sessions::new(Duration::from_secs(60), Duration::from_secs(60), 8);
        let (t, _) = sessions.start(&users.get("bob").unwrap());
        assert!(sessions.get(&t, &users).is_some());
        users.set_disabled("bob", true).unwrap();
        assert!(
            sessions.get(&t, &users).is_none(),
            "a disabled user's session ends"
        );
        // A password reset keeps a disabled user disabled.
        users
            .upsert("bob", Role::Analyst, "quiet-harbor-22")
            .unwrap();
        assert!(users.get("bob").is_none(), "a reset does not enable");
        // A password reset ends the user's sessions.
        let (t, _) = sessions.start(&users.get("alice").unwrap());
        assert!(sessions.get(&t, &users).is_some());
        users
            .upsert("alice", Role::Admin, "amber-falcon-72")
            .unwrap();
        assert!(
            sessions.get(&t, &users).is_none(),
            "a new password ends the sessions"
        );
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(users.path())
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn limiter_delays_pairs_and_addresses() {
        let l = LoginLimiter::new(3, Duration::from_secs(60));
        let ip: IpAddr = "127.0.0.9".parse().unwrap();
        let other: IpAddr = "127.0.0.10".parse().unwrap();
        for _ in 0..3 {
            l.failed(l.begin(ip, "eve").unwrap());
        }
        let r = l.begin(ip, "eve").unwrap_err();
        assert!(r.first && r.wait_s >= 1, "{r:?}");
        assert!(
            !l.begin(ip, "eve").unwrap_err().first,
            "later refusals are counted, not new"
        );
        // The same user from another address is not held back (no lockout of the owner),
        // nor another user from this address (until the address limit, 4 × 3).
        l.succeeded(l.begin(other, "eve").unwrap());
        l.failed(l.begin(ip, "mallory").unwrap());
        for u in ["a", "b", "c", "d", "e", "f", "g", "h"] {
            l.failed(l.begin(ip, u).unwrap());
        }
        assert!(
            l.begin(ip, "carol").is_err(),
            "12 failures from one address"
        );
        assert!(l.begin(other, "carol").is_ok());
    }

    #[test]
    fn limiter_counts_attempts_before_they_finish() {
        let l = LoginLimiter::new(5, Duration::from_secs(60));
        let ip: IpAddr = "127.0.0.11".parse().unwrap();
        // Thirty guesses at once: five begin, the rest wait.
        let begun: Vec<Attempt> = (0..30).filter_map(|_| l.begin(ip, "eve").ok()).collect();
        assert_eq!(begun.len(), 5);
        for a in begun {
            l.failed(a);
        }
        assert!(l.begin(ip, "eve").is_err());
    }

    #[test]
    fn delays_grow_and_are_capped() {
        let l = LoginLimiter::new(1, Duration::from_secs(3600));
        let ip: IpAddr = "127.0.0.12".parse().unwrap();
        let key = LimitKey::Pair("eve".into(), ip);
        let mut waits = Vec::new();
        for _ in 0..14 {
            // Let the wait pass, as time would.
            if let Some(t) = l.state.lock().unwrap().get_mut(&key) {
                t.until = None;
            }
            if let Some(t) = l.state.lock().unwrap().get_mut(&LimitKey::Address(ip)) {
                t.until = None;
            }
            l.failed(l.begin(ip, "eve").unwrap());
            let m = l.state.lock().unwrap();
            let u = m[&key].until.unwrap();
            waits.push(
                u.saturating_duration_since(Instant::now())
                    .as_secs_f64()
                    .round() as u64,
            );
        }
        assert_eq!(&waits[..5], [1, 2, 4, 8, 16]);
        assert_eq!(*waits.last().unwrap(), MAX_DELAY.as_secs());
    }

    #[test]
    fn password_policy() {
        assert!(password_problem("alice", "short").is_some());
        assert!(password_problem("alice", "aaaaaaaaaa").is_some());
        assert!(password_problem("alice", "qwertyuiop").is_some(), "common");
        assert!(
            password_problem("alice", "QwertyUiop").is_some(),
            "common, any case"
        );
        assert!(
            password_problem("alice", "xx-Alice-2026!").is_some(),
            "contains the name"
        );
        assert!(
            password_problem("alice", &"abcdefghij".repeat(13)).is_some(),
            "130 characters"
        );
        assert!(password_problem("alice", "correct horse battery").is_none());
        assert!(hash_password("aaaaaaaaaa").is_err());
    }

    #[test]
    fn sessions_idle_out_and_are_capped_per_user() {
        let dir = std::env::temp_dir().join(format!("ja4-sess-{}", std::process::id()));
        let users = Users::new(&dir.join("users.json"));
        users
            .upsert("carol", Role::Analyst, "kestrel-ledger-41")
            .unwrap();
        let carol = users.get("carol").unwrap();
        let s = Sessions::new(Duration::from_secs(3600), Duration::from_millis(1000), 2);
        let (a, _) = s.start(&carol);
        let (b, _) = s.start(&carol);
        let (c, _) = s.start(&carol);
        assert_eq!(s.count("carol"), 2);
        assert!(s.get(&a, &users).is_none(), "the oldest session ended");
        assert!(s.get(&b, &users).is_some() && s.get(&c, &users).is_some());
        std::thread::sleep(Duration::from_millis(600));
        assert!(s.get(&b, &users).is_some(), "a request keeps it alive");
        std::thread::sleep(Duration::from_millis(600));
        assert!(s.get(&b, &users).is_some());
        assert!(s.get(&c, &users).is_none(), "idle past the timeout");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn secrets_compare() {
        assert!(same("abc", "abc"));
        assert!(!same("abc", "abd"));
        assert!(!same("abc", "ab"));
        assert_eq!(token().len(), 64);
    }
}
