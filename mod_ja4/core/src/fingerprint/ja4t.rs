//! JA4T (client SYN) and JA4TS (server SYN-ACK): `window_options_mss_wscale`.
//!
//! Canonical rule 8: options in wire order including EOL and trailing padding; a missing MSS or
//! window scale prints `0`; no options leaves the field empty (`8192__0_0`).

use std::fmt::Write as _;

use crate::tcp::SynFacts;

/// JA4T (or JA4TS for a SYN-ACK) of one SYN: `window_options_mss_wscale`.
pub fn ja4t(syn: &SynFacts) -> String {
    let mut s = String::with_capacity(48);
    let _ = write!(s, "{}_", syn.window);
    for (i, k) in syn.options.kinds().iter().enumerate() {
        if i > 0 {
            s.push('-');
        }
        let _ = write!(s, "{k}");
    }
    let _ = write!(
        s,
        "_{}_{}",
        syn.options.mss.unwrap_or(0),
        syn.options.window_scale.unwrap_or(0)
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tcp::TcpOptions;

    fn syn(window: u16, opts: &[u8]) -> SynFacts {
        SynFacts {
            ts_us: 0,
            window,
            options: TcpOptions::parse(opts),
            ttl: 64,
            outer_ttl: 64,
            ip_id: Some(0),
            dont_fragment: true,
            ecn_setup: false,
            isn: 0,
        }
    }

    #[test]
    fn linux_macos_and_bare_syns() {
        let linux = [
            2, 4, 0xff, 0xd7, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0, 1, 3, 3, 10,
        ];
        assert_eq!(ja4t(&syn(65495, &linux)), "65495_2-4-8-1-3_65495_10");
        let mac = [
            2, 4, 5, 0x6a, 1, 3, 3, 6, 1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0, 4, 2, 0, 0,
        ];
        assert_eq!(ja4t(&syn(65535, &mac)), "65535_2-1-3-1-1-8-4-0-0_1386_6");
        assert_eq!(ja4t(&syn(8192, &[])), "8192__0_0");
        assert_eq!(ja4t(&syn(1024, &[4, 2])), "1024_4_0_0");
    }
}
