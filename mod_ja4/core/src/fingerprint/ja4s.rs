//! JA4S (TLS server response): `t1302h2_1301_<hash of extensions in order>` and its raw form.

use serde::Serialize;

use super::ja4::{alpn_code, version_code};
use crate::hash::{hash12, is_grease, push_hex4, push_hex4_list};
use crate::tls::ServerHello;

/// JA4S and its raw form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Ja4sSet {
    /// JA4S: version, cipher and ALPN, with the extension list hashed.
    pub ja4s: String,
    /// Raw JA4S: the extension list in hex, unhashed.
    pub ja4s_r: String,
}

impl Ja4sSet {
    /// Computes the fingerprint of a parsed ServerHello.
    pub fn from_hello(sh: &ServerHello<'_>) -> Self {
        let exts: Vec<u16> = sh.extension_types().filter(|e| !is_grease(*e)).collect();
        let v = version_code(sh.version());
        let alpn = alpn_code(sh.alpn);
        let n = exts.len().min(99);
        let mut cipher = Vec::with_capacity(4);
        push_hex4(&mut cipher, sh.cipher);
        let mut list = Vec::with_capacity(exts.len() * 5);
        push_hex4_list(&mut list, &exts);
        let a = format!(
            "t{}{}{:02}{}{}_{}",
            char::from(v[0]),
            char::from(v[1]),
            n,
            char::from(alpn[0]),
            char::from(alpn[1]),
            String::from_utf8_lossy(&cipher)
        );
        Ja4sSet {
            ja4s: format!("{a}_{}", String::from_utf8_lossy(&hash12(&list))),
            ja4s_r: format!("{a}_{}", String::from_utf8_lossy(&list)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tls::parse_server_hello;

    fn server_hello(version: u16, cipher: u16, exts: &[(u16, &[u8])]) -> Vec<u8> {
        let mut b = version.to_be_bytes().to_vec();
        b.extend_from_slice(&[7; 32]);
        b.push(0);
        b.extend_from_slice(&cipher.to_be_bytes());
        b.push(0);
        let mut block = Vec::new();
        for (t, d) in exts {
            block.extend_from_slice(&t.to_be_bytes());
            block.extend_from_slice(&(d.len() as u16).to_be_bytes());
            block.extend_from_slice(d);
        }
        b.extend_from_slice(&(block.len() as u16).to_be_bytes());
        b.extend_from_slice(&block);
        b
    }

    #[test]
    fn tls13_server_hello() {
        let body = server_hello(
            0x0303,
            0x1301,
            &[(0x0033, &[0, 0x1d, 0, 0]), (0x002b, &[3, 4])],
        );
        let s = Ja4sSet::from_hello(&parse_server_hello(&body).unwrap());
        assert_eq!(s.ja4s_r, "t130200_1301_0033,002b");
        assert_eq!(&s.ja4s[..13], "t130200_1301_");
        assert_eq!(
            &s.ja4s[13..],
            String::from_utf8_lossy(&hash12(b"0033,002b"))
        );
    }

    #[test]
    fn tls12_with_alpn_and_no_extensions() {
        let body = server_hello(
            0x0303,
            0xc02f,
            &[(0xff01, &[0]), (0x0010, &[0, 3, 2, b'h', b'2'])],
        );
        let s = Ja4sSet::from_hello(&parse_server_hello(&body).unwrap());
        assert_eq!(s.ja4s_r, "t1202h2_c02f_ff01,0010");
        let mut bare = 0x0301u16.to_be_bytes().to_vec();
        bare.extend_from_slice(&[0; 32]);
        bare.extend_from_slice(&[0, 0x00, 0x05, 0]);
        let s = Ja4sSet::from_hello(&parse_server_hello(&bare).unwrap());
        assert_eq!(s.ja4s, "t100000_0005_000000000000");
        assert_eq!(s.ja4s_r, "t100000_0005_");
    }
}
