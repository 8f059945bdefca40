//! Host keys: the name a client is grouped under (its request's virtual host, or for a
//! connection without a request the server name of its ClientHello).
//!
//! Owns: deciding whether a name is a host name (RFC 6066's `HostName`: ASCII letters, digits
//! and hyphens in dot-separated labels of 1–63 bytes, at most 255 bytes; an IP literal is kept
//! too) and the marked form of one that is not.
//! Never: passes a client's bytes on as a key unescaped: a server name holding a TAB, a newline,
//! a quote or bytes that are not UTF-8 becomes `invalid-sni:` and its bytes in hex, so scores,
//! detections and the dashboard carry it safely and an analyst still sees exactly what was sent.

/// The prefix of a marked (not a host name) key.
pub const INVALID_PREFIX: &str = "invalid-sni:";

/// At most this many bytes of an invalid name are kept in its key (a hello's server name can
/// be 64 KiB).
const MAX_MARKED_BYTES: usize = 255;

/// True when `name` is a DNS host name as RFC 6066 allows in a server name (no trailing dot).
pub fn is_host_name(name: &[u8]) -> bool {
    !name.is_empty()
        && name.len() <= 255
        && name.split(|&b| b == b'.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .iter()
                    .all(|b| b.is_ascii_alphanumeric() || *b == b'-')
                && label.first() != Some(&b'-')
                && label.last() != Some(&b'-')
        })
}

/// The key for the host name `raw`: itself when it is a host name, an IP literal or empty,
/// else the marked form.
pub fn key(raw: &[u8]) -> String {
    if raw.is_empty() || is_host_name(raw) {
        return String::from_utf8_lossy(raw).into_owned();
    }
    if let Some(ip) = std::str::from_utf8(raw)
        .ok()
        .and_then(|s| s.parse::<std::net::IpAddr>().ok())
    {
        return ip.to_string();
    }
    let kept = &raw[..raw.len().min(MAX_MARKED_BYTES)];
    let mut out = String::with_capacity(INVALID_PREFIX.len() + 2 * kept.len());
    out.push_str(INVALID_PREFIX);
    ja4_core::hash::push_hex_bytes(&mut out, kept);
    out
}

/// Decodes the engine's `hex()` of a string (upper-case pairs); `None` if it is not hex.
pub fn from_hex(hex: &str) -> Option<Vec<u8>> {
    if !hex.len().is_multiple_of(2) {
        return None;
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_names_are_kept() {
        for n in [
            "www.example.com",
            "a",
            "xn--bcher-kva.example",
            "A-1.b2",
            "localhost",
        ] {
            assert!(is_host_name(n.as_bytes()), "{n}");
            assert_eq!(key(n.as_bytes()), n);
        }
        let longest = vec!["a".repeat(63); 4].join(".");
        assert_eq!(longest.len(), 255);
        assert!(is_host_name(longest.as_bytes()));
    }

    #[test]
    fn ip_literals_and_empty_are_kept() {
        assert_eq!(key(b"127.0.0.1"), "127.0.0.1");
        assert_eq!(key(b"::1"), "::1");
        assert_eq!(key(b""), "");
    }

    #[test]
    fn anything_else_is_marked() {
        for n in [
            &b"a\tb"[..],
            b"evil\ncom",
            b"x.",
            b".x",
            b"a..b",
            b"-a.b",
            b"a-.b",
            b"a_b.example",
            b"caf\xc3\xa9.example",
            b"\xff\xfe",
            b"a'b",
            b"a b",
        ] {
            assert!(!is_host_name(n), "{n:?}");
            let k = key(n);
            assert!(k.starts_with(INVALID_PREFIX), "{k}");
            assert!(
                k.bytes().all(|b| b.is_ascii_graphic()),
                "marked keys are printable ASCII: {k}"
            );
            assert_eq!(from_hex(&k[INVALID_PREFIX.len()..]).unwrap(), n);
        }
        assert_eq!(key(b"a\tb"), "invalid-sni:610962");
        let too_long = vec!["a".repeat(63); 5].join(".");
        assert!(!is_host_name(too_long.as_bytes()));
        assert_eq!(
            key(too_long.as_bytes()).len(),
            INVALID_PREFIX.len() + 2 * MAX_MARKED_BYTES
        );
        assert!(!is_host_name(&[b'a'; 64]));
    }

    #[test]
    fn hex_round_trips() {
        assert_eq!(from_hex("00FF7a").unwrap(), [0, 255, 0x7a]);
        assert!(from_hex("0").is_none());
        assert!(from_hex("zz").is_none());
    }
}
