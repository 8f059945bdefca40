//! Publishing decisions to httpd: the latest verdict of every scored client and the
//! analysts' lists, as the snapshot file mod_ja4 re-reads (`JA4DecisionFile`, format in
//! `ja4_core::decisions`).
//!
//! Owns: which rows become entries (the latest score per client of the last `hours`, then the
//! active, unexpired list entries by address and by JA4, which win), their reason codes, and
//! the atomic replacement of the file (write beside it, then rename).
//! Never: writes a partial file where httpd reads (a child sees the old snapshot or the new
//! one), or leaves out a list entry without saying so (a network the snapshot cannot hold —
//! more than eight prefix lengths and too wide to split — is counted in what it returns).

use std::path::Path;

use ja4_core::decisions::{encode_counted, Action, Entry, Verdict};
use ja4_store::Store;

use crate::error::{Context, Result};

/// What [`publish`] wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Published {
    /// Entries from scores.
    pub scored: usize,
    /// Entries from the lists.
    pub listed: usize,
    /// Network list entries left out (`ja4_core::decisions::encode_counted`: more prefix
    /// lengths than the snapshot keeps, too wide to split); they still apply in scoring.
    pub networks_skipped: usize,
}

/// The short reason code of a decision's first reason (`JA4_REASON`); a verified crawler's
/// is `verified:<name>` (the module's `JA4_VERIFIED_BOT`).
pub fn reason_code(first_reason: &str) -> String {
    let r = first_reason;
    if let Some(rest) = r.strip_prefix("verified ") {
        let name: String = rest
            .split(' ')
            .next()
            .unwrap_or("")
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            .map(|c| c.to_ascii_lowercase())
            .take(ja4_core::decisions::REASON - "verified:".len())
            .collect();
        return if name.is_empty() {
            "verified".into()
        } else {
            format!("verified:{name}")
        };
    }
    reason_family(r).into()
}

fn reason_family(r: &str) -> &'static str {
    if r.starts_with("deny-listed") {
        "list:deny"
    } else if r.starts_with("allow-listed") {
        "list:allow"
    } else if r.starts_with("challenge-listed") {
        "list:challenge"
    } else if r.starts_with("claims to be") {
        "rule:spoofed-crawler"
    } else if r.starts_with("browser user agent on a non-browser") {
        "rule:ua-stack"
    } else if r.starts_with("automated client") {
        "rule:automation"
    } else if r.starts_with("presents a browser") {
        "rule:behaviour"
    } else if r.starts_with("crawler rule") {
        "rule:crawler"
    } else if r.contains("classifier") {
        "classifier"
    } else if r.starts_with("legitimate browser") {
        "legitimate-browser"
    } else {
        "model"
    }
}

fn threat_level(s: &str) -> u8 {
    match s {
        "low" => 1,
        "medium" => 2,
        "high" => 3,
        "critical" => 4,
        _ => 0,
    }
}

/// Writes the snapshot of the last `hours` of scores and the active lists to `path`
/// (atomically), stamped `now_ms`.
pub fn publish(store: &Store, db: &str, path: &Path, hours: u32, now_ms: i64) -> Result<Published> {
    let scores = store
        .query_rows::<(String, String, String, String, u8, Vec<String>)>(&format!(
            "SELECT toString(src_ip), toString(ja4), toString(argMax(verdict, scored_at)), \
             toString(argMax(threat_level, scored_at)), argMax(bot_score, scored_at), argMax(reasons, scored_at) \
             FROM {db}.ml_all_scores WHERE scored_at >= now64(3) - toIntervalHour({hours}) \
             GROUP BY src_ip, ja4"
        ))
        .context("reading the latest scores")?;
    let mut entries = Vec::new();
    for (ip, ja4, verdict, threat, bot_score, reasons) in &scores.rows {
        let (Ok(ip), Some(verdict)) = (ip.parse::<std::net::IpAddr>(), Verdict::parse(verdict))
        else {
            continue;
        };
        entries.push(Entry {
            ip: Some(ip.to_canonical()),
            prefix: None,
            family: (!ja4.is_empty()).then(|| ja4_core::stack::ja4_family(ja4)),
            verdict,
            threat: threat_level(threat),
            bot_score: *bot_score,
            action: Action::None,
            reason: reason_code(reasons.first().map_or("", String::as_str)),
            expires_ms: 0,
        });
    }
    let scored = entries.len();
    let lists = store
        .query_rows::<(String, String, String, i64)>(&format!(
            "SELECT toString(kind), value, toString(action), toUnixTimestamp64Milli(expires_at) \
             FROM {db}.access_lists FINAL \
             WHERE active = 1 AND (expires_at = toDateTime64(0, 3, 'UTC') OR expires_at > now64(3))"
        ))
        .context("reading the lists")?;
    let mut listed = 0;
    for (kind, value, action, expires_ms) in &lists.rows {
        let (verdict, action, threat, bot_score) = match action.as_str() {
            "deny" => (Verdict::Bot, Action::Block, 3, 1),
            "challenge" => (Verdict::Suspicious, Action::Challenge, 2, 15),
            "allow" => (Verdict::Human, Action::Allow, 0, 99),
            _ => continue,
        };
        let (ip, prefix, family) = match kind.as_str() {
            "ip" => match value.parse::<std::net::IpAddr>() {
                Ok(ip) => (Some(ip.to_canonical()), None, None),
                Err(_) => continue,
            },
            "net" => match crate::lists::parse_net(value) {
                Some((net, len)) => (Some(net), Some(len), None),
                None => continue,
            },
            "ja4" => (None, None, Some(ja4_core::stack::ja4_family(value))),
            _ => continue,
        };
        entries.push(Entry {
            ip,
            prefix,
            family,
            verdict,
            threat,
            bot_score,
            action,
            reason: format!("list:{}", action.as_str()).replace("list:block", "list:deny"),
            expires_ms: *expires_ms,
        });
        listed += 1;
    }
    let (bytes, networks_skipped) = encode_counted(&entries, now_ms);
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, &bytes).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("replacing {}", path.display()))?;
    Ok(Published {
        scored,
        listed,
        networks_skipped,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_become_short_codes() {
        assert_eq!(
            reason_code("deny-listed (ip 1.2.3.4) by alice"),
            "list:deny"
        );
        assert_eq!(
            reason_code("automated client: its user agent is curl"),
            "rule:automation"
        );
        assert_eq!(
            reason_code("presents a browser but does not behave like this site's people: x"),
            "rule:behaviour"
        );
        assert_eq!(reason_code("anomaly score 0.990: a, b"), "model");
        assert_eq!(reason_code(""), "model");
        assert_eq!(
            reason_code("verified Googlebot (forward-confirmed reverse DNS)"),
            "verified:googlebot"
        );
        assert_eq!(
            reason_code("verified a-very-long-crawler-name-indeed (x)"),
            "verified:a-very-long-cra"
        );
        assert_eq!(reason_code("verified  (x)"), "verified");
    }
}
