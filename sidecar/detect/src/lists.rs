//! Analysts' allow and deny lists (`access_lists`, edited in the dashboard) applied to
//! verdicts.
//!
//! Owns: reading the active entries, matching a client (address, network, JA4) against them,
//! and the override: a deny entry makes the client a high-threat bot, an allow entry a human,
//! each with a reason naming the entry, who set it and their note. Deny wins over allow.
//! Never: hides the model's view: the model's reasons stay in the decision after the list's.

use std::collections::HashMap;
use std::net::IpAddr;

use crate::error::{Context, Result};
use ja4_ml::verdict::{Decision, Threat, Verdict};

use ja4_store::Store;

#[derive(Debug, Clone, PartialEq)]
/// One allow or deny entry an analyst made.
pub struct Entry {
    /// Deny (true) or allow.
    pub deny: bool,
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
            let entry = Entry {
                deny: action == "deny",
                what: format!("{kind} {value}"),
                analyst: analyst.to_owned(),
                note: note.to_owned(),
            };
            if action != "deny" && action != "allow" {
                continue;
            }
            match kind {
                "ip" => {
                    if let Ok(ip) = value.parse::<IpAddr>() {
                        l.ips.insert(ip.to_canonical(), entry);
                    }
                }
                "net" => {
                    if let Some((a, n)) = value.split_once('/') {
                        if let (Ok(a), Ok(n)) = (a.parse::<IpAddr>(), n.parse::<u8>()) {
                            l.nets.push((a, n, entry));
                        }
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
                 FROM {db}.access_lists FINAL WHERE active = 1"
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
        all.iter().find(|e| e.deny).or(all.first()).copied()
    }

    /// The decision after the lists, for a client at `ip` showing the JA4s `ja4s` (a listed
    /// JA4 decides whichever of a client's variants it is).
    pub fn apply<S: AsRef<str>>(&self, ip: IpAddr, ja4s: &[S], d: Decision) -> Decision {
        let Some(e) = self.matching(ip, ja4s) else {
            return d;
        };
        let mut reason = format!(
            "{}-listed ({}) by {}",
            if e.deny { "deny" } else { "allow" },
            e.what,
            e.analyst
        );
        if !e.note.is_empty() {
            reason.push_str(&format!(": {}", e.note));
        }
        let mut reasons = vec![reason];
        reasons.extend(d.reasons);
        if e.deny {
            Decision {
                verdict: Verdict::Bot,
                threat: d.threat.max(Threat::High),
                reasons,
            }
        } else {
            Decision {
                verdict: Verdict::Human,
                threat: Threat::None,
                reasons,
            }
        }
    }
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
