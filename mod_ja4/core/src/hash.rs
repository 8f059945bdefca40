//! Hex encoding and the truncated SHA-256 used by every JA4+ hash part.
//!
//! Owns: `hash12` (first 12 lower-case hex characters of SHA-256, `000000000000` for empty input)
//! and the comma-joined hex/decimal list writers the fingerprints hash.
//! Never: allocates more than the list it is asked to write.

use sha2::{Digest, Sha256};

const HEX: &[u8; 16] = b"0123456789abcdef";

/// The 12 zero characters JA4+ prints instead of hashing an empty list.
pub const EMPTY12: [u8; 12] = *b"000000000000";

/// First 12 lower-case hex characters of SHA-256 of `data`; `000000000000` when `data` is empty.
pub fn hash12(data: &[u8]) -> [u8; 12] {
    if data.is_empty() {
        return EMPTY12;
    }
    let digest = Sha256::digest(data);
    let mut out = [0u8; 12];
    for (i, b) in digest.iter().take(6).enumerate() {
        out[2 * i] = HEX[usize::from(b >> 4)];
        out[2 * i + 1] = HEX[usize::from(b & 0xf)];
    }
    out
}

/// Appends `v` as exactly four lower-case hex digits.
#[inline]
pub fn push_hex4(out: &mut Vec<u8>, v: u16) {
    out.extend_from_slice(&[
        HEX[usize::from(v >> 12)],
        HEX[usize::from((v >> 8) & 0xf)],
        HEX[usize::from((v >> 4) & 0xf)],
        HEX[usize::from(v & 0xf)],
    ]);
}

/// Appends the values as comma-separated four-digit hex (`002f,0035`).
pub fn push_hex4_list(out: &mut Vec<u8>, values: &[u16]) {
    for (i, v) in values.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        push_hex4(out, *v);
    }
}

/// Appends `bytes` as lower-case hex (two digits per byte).
pub fn push_hex_bytes(out: &mut String, bytes: &[u8]) {
    for b in bytes {
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 0xf)]));
    }
}

/// Appends the values in decimal separated by `sep` (JA3 style `4865-4866`).
pub fn push_dec_list<T: Into<u32> + Copy>(out: &mut String, values: &[T], sep: char) {
    use std::fmt::Write as _;
    for (i, v) in values.iter().enumerate() {
        if i > 0 {
            out.push(sep);
        }
        let _ = write!(out, "{}", (*v).into());
    }
}

/// GREASE values (RFC 8701): 0x0a0a, 0x1a1a, … 0xfafa. They are ignored everywhere in JA4+.
#[inline]
pub fn is_grease(v: u16) -> bool {
    (v & 0x0f0f) == 0x0a0a && (v >> 8) == (v & 0xff)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash12_matches_spec_example() {
        // JA4.md: the sorted cipher list of its example hashes to 8daaf6152771.
        let list = b"002f,0035,009c,009d,1301,1302,1303,c013,c014,c02b,c02c,c02f,c030,cca8,cca9";
        assert_eq!(&hash12(list), b"8daaf6152771");
        assert_eq!(&hash12(b""), b"000000000000");
    }

    #[test]
    fn grease_values_are_exactly_the_sixteen() {
        let all: Vec<u16> = (0..=u16::MAX).filter(|v| is_grease(*v)).collect();
        let expected: Vec<u16> = (0..16u16)
            .map(|i| (i << 12) | 0x0a00 | (i << 4) | 0x0a)
            .collect();
        assert_eq!(all, expected);
        assert!(!is_grease(0x0a1a));
    }

    #[test]
    fn hex_writers() {
        let mut v = Vec::new();
        push_hex4_list(&mut v, &[0x2f, 0xc02b]);
        assert_eq!(v, b"002f,c02b");
        let mut s = String::new();
        push_hex_bytes(&mut s, &[0xba, 0xad]);
        assert_eq!(s, "baad");
        let mut d = String::new();
        push_dec_list(&mut d, &[771u16, 4865], '-');
        assert_eq!(d, "771-4865");
    }
}
