//! Analysts' allow, deny and challenge lists (`access_lists`, edited in the dashboard and with
//! `ja4-sidecar lists`) applied to verdicts.
//!
//! Owns: validating and writing entries (with the audit row that records who did it),
//! reading the active, unexpired ones, matching a client (address, network, JA4) against
//! them, and the override: a deny entry makes the client a high-threat bot, a challenge entry
//! at least suspicious, an allow entry a human, each with a reason naming the entry, who set it
//! and their note. Deny wins over challenge, challenge over allow.
//! Never: hides the model's view: the model's reasons stay in the decision after the list's;
//! never deletes an entry (a removal is a newer inactive row, expiry a time).

use std::collections::HashMap;
use std::net::IpAddr;

use crate::error::{Context, Result};
use ja4_ml::verdict::{Decision, Threat, Verdict};

use ja4_store::Store;

/// What an entry does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Action {
    /// The client is a person (or wanted).
    Allow,
    /// The client is to prove a browser (suspicious at least).
    Challenge,
    /// The client is a bot.
    Deny,
}

impl Action {
    /// From its name (`allow`, `challenge`, `deny`).
    pub fn parse(s: &str) -> Option<Action> {
        match s {
            "allow" => Some(Action::Allow),
            "challenge" => Some(Action::Challenge),
            "deny" => Some(Action::Deny),
            _ => None,
        }
    }

    /// Its name in the store.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Allow => "allow",
            Action::Challenge => "challenge",
            Action::Deny => "deny",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
/// One allow, challenge or deny entry an analyst made.
pub struct Entry {
    /// What it does.
    pub action: Action,
    /// `ip 1.2.3.4`, `net 10.0.0.0/8`, `ja4 t13d…`.
    pub what: String,
    /// Who made it.
    pub analyst: String,
    /// Why.
    pub note: String,
}

/// The active entries.
#[derive(Debug, Default)]
pub struct AccessLists {
    ips: HashMap<IpAddr, Entry>,
    nets: Vec<(IpAddr, u8, Entry)>,
    ja4: HashMap<String, Entry>,
}

/// A network `address/length` (`10.0.0.0/8`, `2001:db8::/32`), its address canonical (an
/// IPv4-mapped address is IPv4) and its length within the family's bits.
pub fn parse_net(value: &str) -> Option<(IpAddr, u8)> {
    let (a, n) = value.split_once('/')?;
    let (a, n) = (
        a.trim().parse::<IpAddr>().ok()?,
        n.trim().parse::<u8>().ok()?,
    );
    let (a, n) = match a {
        IpAddr::V6(v6) if v6.to_ipv4_mapped().is_some() && n >= 96 => (a.to_canonical(), n - 96),
        _ => (a.to_canonical(), n),
    };
    let max = if a.is_ipv4() { 32 } else { 128 };
    (n <= max).then_some((a, n))
}

/// True when `ip` is inside `net`/`len` (same family).
pub fn in_net(ip: IpAddr, net: IpAddr, len: u8) -> bool {
    match (ip.to_canonical(), net.to_canonical()) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let len = u32::from(len.min(32));
            let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let len = u32::from(len.min(128));
            let mask = if len == 0 {
                0
            } else {
                u128::MAX << (128 - len)
            };
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

impl AccessLists {
    /// Builds the lists from `(kind, value, action, analyst, note)` rows; malformed rows are
    /// skipped (the dashboard validates what it writes).
    pub fn from_rows<'a>(rows: impl IntoIterator<Item = [&'a str; 5]>) -> AccessLists {
        let mut l = AccessLists::default();
        for [kind, value, action, analyst, note] in rows {
            let Some(action) = Action::parse(action) else {
                continue;
            };
            let entry = Entry {
                action,
                what: format!("{kind} {value}"),
                analyst: analyst.to_owned(),
                note: note.to_owned(),
            };
            match kind {
                "ip" => {
                    if let Ok(ip) = value.parse::<IpAddr>() {
                        l.ips.insert(ip.to_canonical(), entry);
                    }
                }
                "net" => {
                    if let Some((a, n)) = parse_net(value) {
                        l.nets.push((a, n, entry));
                    }
                }
                "ja4" => {
                    l.ja4.insert(value.to_owned(), entry);
                }
                _ => {}
            }
        }
        l
    }

    /// Reads the active entries from the store.
    pub fn load(store: &Store, db: &str) -> Result<AccessLists> {
        let read = store
            .query_rows::<[String; 5]>(&format!(
                "SELECT toString(kind), value, toString(action), analyst, note \
                 FROM {db}.access_lists FINAL \
                 WHERE active = 1 AND (expires_at = toDateTime64(0, 3, 'UTC') OR expires_at > now64(3))"
            ))
            .context("reading the allow/deny lists")?;
        if read.skipped > 0 {
            tracing::warn!(
                skipped = read.skipped,
                "allow/deny list rows that did not read were skipped"
            );
        }
        Ok(AccessLists::from_rows(read.rows.iter().map(|r| {
            [
                r[0].as_str(),
                r[1].as_str(),
                r[2].as_str(),
                r[3].as_str(),
                r[4].as_str(),
            ]
        })))
    }

    /// Whether there are no entries.
    pub fn is_empty(&self) -> bool {
        self.ips.is_empty() && self.nets.is_empty() && self.ja4.is_empty()
    }

    /// The entry that decides for a client at `ip` showing the JA4s `ja4s`, deny first.
    pub fn matching<S: AsRef<str>>(&self, ip: IpAddr, ja4s: &[S]) -> Option<&Entry> {
        let ip = ip.to_canonical();
        let all: Vec<&Entry> = self
            .ips
            .get(&ip)
            .into_iter()
            .chain(
                self.nets
                    .iter()
                    .filter(|(n, l, _)| in_net(ip, *n, *l))
                    .map(|e| &e.2),
            )
            .chain(ja4s.iter().filter_map(|j| self.ja4.get(j.as_ref())))
            .collect();
        all.iter().max_by_key(|e| e.action).copied()
    }

    /// The decision after the lists, for a client at `ip` showing the JA4s `ja4s` (a listed
    /// JA4 decides whichever of a client's variants it is).
    pub fn apply<S: AsRef<str>>(&self, ip: IpAddr, ja4s: &[S], d: Decision) -> Decision {
        let Some(e) = self.matching(ip, ja4s) else {
            return d;
        };
        let mut reason = format!("{}-listed ({}) by {}", e.action.as_str(), e.what, e.analyst);
        if !e.note.is_empty() {
            reason.push_str(&format!(": {}", e.note));
        }
        let mut reasons = vec![reason];
        reasons.extend(d.reasons);
        match e.action {
            Action::Deny => Decision {
                verdict: Verdict::Bot,
                threat: d.threat.max(Threat::High),
                reasons,
            },
            Action::Challenge => Decision {
                verdict: if d.verdict == Verdict::Bot {
                    Verdict::Bot
                } else {
                    Verdict::Suspicious
                },
                threat: d.threat.max(Threat::Medium),
                reasons,
            },
            Action::Allow => Decision {
                verdict: Verdict::Human,
                threat: Threat::None,
                reasons,
            },
        }
    }
}

/// Why a list entry cannot be written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ListError {
    /// The kind is not `ip`, `net` or `ja4`.
    #[error("kind must be ip, net or ja4, not {0:?}")]
    Kind(String),
    /// The value does not parse as its kind.
    #[error("{kind} {value:?}: {why}")]
    Value {
        /// The kind.
        kind: String,
        /// The value given.
        value: String,
        /// What is wrong.
        why: &'static str,
    },
    /// The note is longer than 500 characters.
    #[error("the reason is longer than 500 characters")]
    Note,
}

/// The canonical form of a `kind` entry's `value` (addresses as the store prints them,
/// networks as `address/length`, JA4s lowercase `a_b_c`), or why it is not one.
pub fn canonical(kind: &str, value: &str) -> std::result::Result<String, ListError> {
    let bad = |why| ListError::Value {
        kind: kind.to_owned(),
        value: value.to_owned(),
        why,
    };
    let v = value.trim();
    match kind {
        "ip" => v
            .parse::<IpAddr>()
            .map(|i| i.to_canonical().to_string())
            .map_err(|_| bad("not an IP address")),
        "net" => {
            let (a, l) = v
                .split_once('/')
                .ok_or_else(|| bad("a network is address/length"))?;
            let a: IpAddr = a.parse().map_err(|_| bad("not a network address"))?;
            let max = if a.is_ipv4() { 32 } else { 128 };
            match l.parse::<u8>() {
                Ok(l) if l <= max => Ok(format!("{a}/{l}")),
                _ => Err(bad("bad prefix length")),
            }
        }
        "ja4" => {
            let l = v.to_ascii_lowercase();
            let parts: Vec<&str> = l.split('_').collect();
            let ok = parts.len() == 3
                && parts[0].len() == 10
                && parts[1].len() == 12
                && parts[2].len() == 12
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
            if ok {
                Ok(l)
            } else {
                Err(bad("not a JA4 (a_b_c: 10, 12 and 12 characters)"))
            }
        }
        other => Err(ListError::Kind(other.to_owned())),
    }
}

/// One entry to write with [`write`].
#[derive(Debug, Clone)]
pub struct Change<'a> {
    /// `ip`, `net` or `ja4`.
    pub kind: &'a str,
    /// Its value (made canonical by [`write`]).
    pub value: &'a str,
    /// The action, or `None` to remove the entry.
    pub action: Option<Action>,
    /// Why (at most 500 characters).
    pub note: &'a str,
    /// When it stops applying (Unix milliseconds), or `None` for never.
    pub expires_ms: Option<i64>,
    /// Who does it.
    pub actor: &'a str,
    /// Their role (`admin`, `cli`).
    pub role: &'a str,
}

/// Writes an entry (or its removal) and the audit row that records it; returns the canonical
/// value. Values travel as query parameters, never as SQL text.
pub fn write(store: &Store, db: &str, c: &Change<'_>) -> Result<String> {
    let value =
        canonical(c.kind, c.value).map_err(|e| crate::error::Error::Invalid(e.to_string()))?;
    if c.note.chars().count() > 500 {
        return Err(crate::error::Error::Invalid(ListError::Note.to_string()));
    }
    let action = c.action.map_or("", Action::as_str);
    let expires = c.expires_ms.unwrap_or(0).max(0);
    store
        .query_params(
            &format!(
                "INSERT INTO {db}.access_lists (kind, value, action, active, analyst, note, expires_at) \
                 SELECT {{kind:String}}, {{value:String}}, {{action:String}}, {{active:UInt8}}, \
                 {{actor:String}}, {{note:String}}, fromUnixTimestamp64Milli({{expires:Int64}}, 'UTC')"
            ),
            "TSV",
            &[
                ("kind", c.kind.to_owned()),
                ("value", value.clone()),
                ("action", action.to_owned()),
                ("active", u8::from(c.action.is_some()).to_string()),
                ("actor", c.actor.to_owned()),
                ("note", c.note.to_owned()),
                ("expires", expires.to_string()),
            ],
        )
        .context("writing the list entry")?;
    let details = serde_json::json!({
        "action": if action.is_empty() { "remove" } else { action },
        "note": c.note,
        "expires_ms": expires,
    });
    store
        .query_params(
            &format!(
                "INSERT INTO {db}.audit_logs (actor, role, action, target, success, client_ip, details) \
                 SELECT {{actor:String}}, {{role:String}}, {{what:String}}, {{target:String}}, 1, toIPv6('::'), \
                 CAST(JSONExtractKeysAndValues({{details:String}}, 'String'), 'Map(String, String)')"
            ),
            "TSV",
            &[
                ("actor", c.actor.to_owned()),
                ("role", c.role.to_owned()),
                ("what", if c.action.is_some() { "list_add" } else { "list_remove" }.to_owned()),
                ("target", format!("{}:{value}", c.kind)),
                ("details", details.to_string()),
            ],
        )
        .context("writing the audit log")?;
    Ok(value)
}

/// One stored entry as [`show`] lists it.
#[derive(Debug, Clone, PartialEq, serde::Deserialize, serde::Serialize)]
pub struct Listed {
    /// `ip`, `net` or `ja4`.
    pub kind: String,
    /// Its value.
    pub value: String,
    /// `allow`, `challenge` or `deny`.
    pub action: String,
    /// Who made it.
    pub analyst: String,
    /// Why.
    pub note: String,
    /// When it was made (UTC).
    #[serde(rename = "updated")]
    pub updated_at: String,
    /// When it stops applying (UTC), empty for never.
    #[serde(rename = "expires")]
    pub expires_at: String,
}

/// The active, unexpired entries, newest first.
pub fn show(store: &Store, db: &str) -> Result<Vec<Listed>> {
    let read = store
        .query_rows::<Listed>(&format!(
            "SELECT toString(kind) AS kind, value, toString(action) AS action, toString(analyst) AS analyst, note, \
             toString(updated_at) AS updated, \
             if(expires_at = toDateTime64(0, 3, 'UTC'), '', toString(expires_at)) AS expires \
             FROM {db}.access_lists FINAL \
             WHERE active = 1 AND (expires_at = toDateTime64(0, 3, 'UTC') OR expires_at > now64(3)) \
             ORDER BY updated_at DESC"
        ))
        .context("reading the lists")?;
    Ok(read.rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn human() -> Decision {
        Decision {
            verdict: Verdict::Human,
            threat: Threat::None,
            reasons: vec!["model".into()],
        }
    }

    #[test]
    fn entries_are_canonical_or_refused() {
        assert_eq!(canonical("ip", " ::ffff:10.0.0.1 ").unwrap(), "10.0.0.1");
        assert_eq!(canonical("net", "10.1.0.0/16").unwrap(), "10.1.0.0/16");
        assert_eq!(
            canonical("ja4", "T13D1516H2_8daaf6152771_02713d6af862").unwrap(),
            "t13d1516h2_8daaf6152771_02713d6af862"
        );
        for (k, v) in [
            ("ip", "1.2.3"),
            ("net", "10.0.0.0/33"),
            ("net", "10.0.0.0"),
            ("ja4", "t13d'--"),
            ("ja4", "x_y_z"),
        ] {
            assert!(
                matches!(canonical(k, v), Err(ListError::Value { .. })),
                "{k} {v}"
            );
        }
        assert_eq!(canonical("asn", "1"), Err(ListError::Kind("asn".into())));
    }

    #[test]
    fn networks_match_by_prefix() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert!(in_net(ip("10.1.2.3"), ip("10.1.0.0"), 16));
        assert!(!in_net(ip("10.2.2.3"), ip("10.1.0.0"), 16));
        assert!(in_net(ip("::ffff:10.1.2.3"), ip("10.1.0.0"), 16));
        assert!(in_net(ip("2001:db8::1"), ip("2001:db8::"), 32));
        assert!(!in_net(ip("2001:db9::1"), ip("2001:db8::"), 32));
        assert!(in_net(ip("8.8.8.8"), ip("0.0.0.0"), 0));
        assert!(!in_net(ip("8.8.8.8"), ip("::"), 0), "families differ");
    }

    #[test]
    fn deny_wins_and_reasons_name_the_entry() {
        let l = AccessLists::from_rows([
            ["net", "45.13.0.0/16", "allow", "bob", "partner"],
            ["ip", "45.13.3.1", "deny", "alice", "stuffing"],
            ["ja4", "t13d_x", "deny", "alice", ""],
            ["ja4", "t13d_c", "challenge", "carol", "scraping prices"],
            ["ip", "not-an-ip", "deny", "x", ""],
            ["ip", "1.1.1.1", "maybe", "x", ""],
        ]);
        let d = l.apply("45.13.3.1".parse().unwrap(), &["t13d_y"], human());
        assert_eq!((d.verdict, d.threat), (Verdict::Bot, Threat::High));
        assert_eq!(
            d.reasons[0],
            "deny-listed (ip 45.13.3.1) by alice: stuffing"
        );
        assert_eq!(d.reasons[1], "model");
        let d = l.apply(
            "45.13.9.9".parse().unwrap(),
            &["t13d_y"],
            Decision {
                verdict: Verdict::Bot,
                threat: Threat::Critical,
                reasons: vec![],
            },
        );
        assert_eq!(d.verdict, Verdict::Human);
        assert!(d.reasons[0].starts_with("allow-listed (net 45.13.0.0/16) by bob"));
        let d = l.apply("9.9.9.9".parse().unwrap(), &["t13d_x"], human());
        assert_eq!(d.verdict, Verdict::Bot);
        // Challenge: suspicious at least; deny wins over it.
        let d = l.apply("9.9.9.9".parse().unwrap(), &["t13d_c"], human());
        assert_eq!((d.verdict, d.threat), (Verdict::Suspicious, Threat::Medium));
        assert_eq!(
            d.reasons[0],
            "challenge-listed (ja4 t13d_c) by carol: scraping prices"
        );
        let d = l.apply("9.9.9.9".parse().unwrap(), &["t13d_c", "t13d_x"], human());
        assert_eq!(d.verdict, Verdict::Bot);
        // A listed JA4 decides whichever of the client's variants it is.
        let d = l.apply("9.9.9.9".parse().unwrap(), &["t13d_y", "t13d_x"], human());
        assert_eq!(d.verdict, Verdict::Bot);
        assert_eq!(
            l.apply("1.1.1.1".parse().unwrap(), &[""], human()).verdict,
            Verdict::Human
        );
        assert_eq!(
            l.apply("1.1.1.1".parse().unwrap(), &[""], human()).reasons,
            ["model"]
        );
    }
}
