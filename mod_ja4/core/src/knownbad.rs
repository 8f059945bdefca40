//! The known-bad JA4 list (`JA4KnownBad`): full JA4 fingerprints of clients no site wants
//! (command-and-control beacons, malware), each with the name the module sets in
//! `JA4_KNOWN_BAD` — a per-connection fact that needs no scoring run.
//!
//! Owns: the file format — tab-separated `ja4 name [source]` rows, `#` comments, blank lines
//! — its parsing and the lookup by a connection's JA4.
//! Never: matches by family or prefix (a JA4 family is shared by benign clients: Sliver's
//! is Go's), or accepts a row that is not a JA4 (the error names its line).
//!
//! ```
//! let list = ja4_core::knownbad::parse("t12d190800_d83cc789557e_16bbda4055b2\tCobalt Strike\n").unwrap();
//! assert_eq!(list.find(b"t12d190800_d83cc789557e_16bbda4055b2"), Some("Cobalt Strike"));
//! assert_eq!(list.find(b"t13d1516h2_8daaf6152771_02713d6af862"), None);
//! ```

use std::collections::HashMap;

/// The list: JA4 → name.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct KnownBad {
    by_ja4: HashMap<String, String>,
}

/// A row that is not a known-bad entry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {why}")]
pub struct ParseError {
    /// Its line (1-based).
    pub line: usize,
    /// What is wrong with it.
    pub why: String,
}

/// Whether `s` has the shape of a JA4: `a_b_c`, 10, 12 and 12 lowercase ASCII letters and
/// digits.
pub fn is_ja4(s: &str) -> bool {
    let parts: Vec<&str> = s.split('_').collect();
    matches!(parts[..], [a, b, c] if a.len() == 10 && b.len() == 12 && c.len() == 12)
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// Parses a list (the first row of a JA4 wins).
pub fn parse(text: &str) -> Result<KnownBad, ParseError> {
    let mut out = KnownBad::default();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let bad = |why: String| ParseError { line: n + 1, why };
        let mut f = line.split('\t');
        let (Some(ja4), Some(name)) = (f.next(), f.next()) else {
            return Err(bad("a row is `ja4<TAB>name[<TAB>source]`".into()));
        };
        let (ja4, name) = (ja4.trim(), name.trim());
        if !is_ja4(ja4) {
            return Err(bad(format!(
                "{ja4:?} is not a JA4 (a_b_c: 10, 12 and 12 characters)"
            )));
        }
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_graphic() || b == b' ') {
            return Err(bad("the name is empty or not printable ASCII".into()));
        }
        out.by_ja4
            .entry(ja4.to_owned())
            .or_insert_with(|| name.to_owned());
    }
    Ok(out)
}

impl KnownBad {
    /// The name of `ja4` when it is on the list.
    pub fn find(&self, ja4: &[u8]) -> Option<&str> {
        let ja4 = std::str::from_utf8(ja4).ok()?;
        self.by_ja4.get(ja4).map(String::as_str)
    }

    /// Entries on the list.
    pub fn len(&self) -> usize {
        self.by_ja4.len()
    }

    /// Whether the list is empty.
    pub fn is_empty(&self) -> bool {
        self.by_ja4.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_comments_and_errors() {
        let l = parse(
            "# comment\n\nt13d190900_9dc949149365_97f8aa674fd9\tSliver Agent\tFoxIO\r\n\
             t13d190900_9dc949149365_97f8aa674fd9\tlater row\n",
        )
        .unwrap();
        assert_eq!(l.len(), 1);
        assert_eq!(
            l.find(b"t13d190900_9dc949149365_97f8aa674fd9"),
            Some("Sliver Agent")
        );
        // Only the whole fingerprint: the same family with other extensions is not listed.
        assert_eq!(l.find(b"t13d1910h2_9dc949149365_97f8aa674fd9"), None);
        assert_eq!(l.find(&[0xff, 0xfe]), None);
        for (text, line) in [
            ("x\n", 1),
            ("# c\nt13d_abc\tname\n", 2),
            ("T13D190900_9DC949149365_97F8AA674FD9\tupper\n", 1),
            ("t13d190900_9dc949149365_97f8aa674fd9\t\n", 1),
            ("t13d190900_9dc949149365_97f8aa674fd9\tbad\u{7}\n", 1),
        ] {
            assert_eq!(parse(text).unwrap_err().line, line, "{text:?}");
        }
    }
}
