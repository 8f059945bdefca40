//! Who may do what: users, passwords, sessions, CSRF tokens and login rate limits.
//!
//! Owns: the users file (JSON, written atomically with mode 0600; `ja4-sidecar user add`
//! and the admin page edit it, the server re-reads it when it changes), argon2id password
//! hashes, in-memory sessions with expiry (a restart logs everyone out), one CSRF token per
//! session, and a sliding-window limit on failed logins per client address and per user.
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
pub enum Role {
    /// Reads every view, marks false positives and confirmed bots, exports.
    Analyst,
    /// Also manages users, allow/deny lists and settings.
    Admin,
}

impl Role {
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
pub struct User {
    pub name: String,
    pub role: Role,
    /// argon2id PHC string.
    pub hash: String,
    pub created: u64,
    #[serde(default)]
    pub disabled: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("{0}")]
    Invalid(String),
    #[error("{context}: {error}")]
    Io {
        context: String,
        error: std::io::Error,
    },
    #[error("users file {path} is not valid: {error}")]
    Parse {
        path: PathBuf,
        error: serde_json::Error,
    },
    #[error("cannot hash the password: {0}")]
    Hash(String),
}

/// A user name: 1–64 characters of letters, digits, `.`, `_`, `-`, `@`.
pub fn valid_name(n: &str) -> bool {
    !n.is_empty()
        && n.len() <= 64
        && n.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'@'))
}

pub const MIN_PASSWORD: usize = 10;

pub fn hash_password(password: &str) -> Result<String, AuthError> {
    if password.chars().count() < MIN_PASSWORD {
        return Err(AuthError::Invalid(format!(
            "a password needs at least {MIN_PASSWORD} characters"
        )));
    }
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| AuthError::Hash(e.to_string()))?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| AuthError::Hash(e.to_string()))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| AuthError::Hash(e.to_string()))
}

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
    H.get_or_init(|| hash_password("not-a-real-password").unwrap_or_default())
}

/// The users file.
pub struct Users {
    path: PathBuf,
    cache: Mutex<(Option<SystemTime>, Vec<User>)>,
}

impl Users {
    pub fn new(path: &Path) -> Users {
        Users {
            path: path.to_owned(),
            cache: Mutex::new((None, Vec::new())),
        }
    }

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
        let hash = hash_password(password)?;
        let mut users = self.list()?;
        let created = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        users.retain(|u| u.name != name);
        users.push(User {
            name: name.to_owned(),
            role,
            hash,
            created,
            disabled: false,
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
pub struct Session {
    pub user: String,
    pub role: Role,
    pub csrf: String,
    expires: Instant,
}

/// Live sessions by cookie token.
pub struct Sessions {
    ttl: Duration,
    map: Mutex<HashMap<String, Session>>,
}

impl Sessions {
    pub fn new(ttl: Duration) -> Sessions {
        Sessions {
            ttl,
            map: Mutex::new(HashMap::new()),
        }
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Starts a session; returns its cookie token.
    pub fn start(&self, user: &User) -> (String, Session) {
        let s = Session {
            user: user.name.clone(),
            role: user.role,
            csrf: token(),
            expires: Instant::now() + self.ttl,
        };
        let t = token();
        let mut m = self.map.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        m.retain(|_, s| s.expires > now);
        m.insert(t.clone(), s.clone());
        (t, s)
    }

    /// The live session of `token`, checked against the current users file (a disabled,
    /// deleted or re-roled user's session ends).
    pub fn get(&self, token: &str, users: &Users) -> Option<Session> {
        let mut m = self.map.lock().unwrap_or_else(|e| e.into_inner());
        let s = m.get(token)?.clone();
        let valid =
            s.expires > Instant::now() && users.get(&s.user).is_some_and(|u| u.role == s.role);
        if !valid {
            m.remove(token);
            return None;
        }
        Some(s)
    }

    pub fn end(&self, token: &str) {
        self.map
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(token);
    }
}

/// Failed logins in a sliding window, per client address and per user name.
pub struct LoginLimiter {
    max: usize,
    window: Duration,
    fails: Mutex<HashMap<String, Vec<Instant>>>,
}

impl LoginLimiter {
    pub fn new(max: usize, window: Duration) -> LoginLimiter {
        LoginLimiter {
            max,
            window,
            fails: Mutex::new(HashMap::new()),
        }
    }

    fn keys(ip: IpAddr, user: &str) -> [String; 2] {
        [format!("ip:{ip}"), format!("user:{user}")]
    }

    /// Seconds to wait before the next attempt is allowed, if blocked.
    pub fn blocked(&self, ip: IpAddr, user: &str) -> Option<u64> {
        let now = Instant::now();
        let mut m = self.fails.lock().unwrap_or_else(|e| e.into_inner());
        let mut wait = None;
        for k in Self::keys(ip, user) {
            if let Some(v) = m.get_mut(&k) {
                v.retain(|t| now.duration_since(*t) < self.window);
                if v.len() >= self.max {
                    let until = v[0] + self.window;
                    let s = until.saturating_duration_since(now).as_secs().max(1);
                    wait = Some(wait.map_or(s, |w: u64| w.max(s)));
                }
            }
        }
        wait
    }

    pub fn failed(&self, ip: IpAddr, user: &str) {
        let now = Instant::now();
        let mut m = self.fails.lock().unwrap_or_else(|e| e.into_inner());
        if m.len() > 100_000 {
            m.retain(|_, v| {
                v.last()
                    .is_some_and(|t| now.duration_since(*t) < self.window)
            });
        }
        for k in Self::keys(ip, user) {
            m.entry(k).or_default().push(now);
        }
    }

    pub fn succeeded(&self, ip: IpAddr, user: &str) {
        let mut m = self.fails.lock().unwrap_or_else(|e| e.into_inner());
        m.remove(&format!("user:{user}"));
        let _ = ip;
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
            .upsert("alice", Role::Admin, "alice-password")
            .unwrap();
        users
            .upsert("bob", Role::Analyst, "bob-password-1")
            .unwrap();
        assert!(users
            .upsert("bad name", Role::Analyst, "whatever-long")
            .is_err());
        assert_eq!(
            users.authenticate("alice", "alice-password").unwrap().role,
            Role::Admin
        );
        assert!(users.authenticate("alice", "wrong-password").is_none());
        assert!(users.authenticate("nobody", "alice-password").is_none());
        let sessions = Sessions::new(Duration::from_secs(60));
        let (t, _) = sessions.start(&users.get("bob").unwrap());
        assert!(sessions.get(&t, &users).is_some());
        users.set_disabled("bob", true).unwrap();
        assert!(
            sessions.get(&t, &users).is_none(),
            "a disabled user's session ends"
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
    fn limiter_blocks_after_max_failures() {
        let l = LoginLimiter::new(3, Duration::from_secs(60));
        let ip: IpAddr = "127.0.0.9".parse().unwrap();
        for _ in 0..3 {
            assert!(l.blocked(ip, "eve").is_none());
            l.failed(ip, "eve");
        }
        assert!(l.blocked(ip, "eve").is_some());
        // Another user from the same address is blocked too (per address), and the
        // same user from another address (per user).
        assert!(l.blocked(ip, "mallory").is_some());
        assert!(l.blocked("127.0.0.10".parse().unwrap(), "eve").is_some());
        assert!(l.blocked("127.0.0.10".parse().unwrap(), "carol").is_none());
    }

    #[test]
    fn secrets_compare() {
        assert!(same("abc", "abc"));
        assert!(!same("abc", "abd"));
        assert!(!same("abc", "ab"));
        assert_eq!(token().len(), 64);
    }
}
