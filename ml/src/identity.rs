//! Who a client is: the key the detector scores a client under, so that one browser is one
//! client however many JA4 variants its connections show.
//!
//! One browser shows several exact JA4s in a few minutes: a resumed session adds
//! `pre_shared_key` and `early_data` (extension count and `_c` change: Chromium's
//! `t13d1516h2` becomes `t13d1517h2`), a WebSocket or a fallback connection offers
//! `http/1.1` instead of `h2` (the ALPN characters change), and preconnects that never send a
//! request carry the same hello. What stays is the TLS stack's version and SNI mode and its
//! cipher list: JA4_a's first four characters and JA4_b. A client is (address, JA4 family,
//! host).
//!
//! Owns: [`ja4_family`] and its SQL twin [`ja4_family_sql`] (the store's feature view groups
//! by it); the two agree on every input (tested against the engine in `ja4-detect`).
//! Never: merges two different TLS stacks (a different cipher list is a different family),
//! and never rewrites a value that is not a JA4 (it is its own family).
//!
//! ```
//! use ja4_ml::identity::ja4_family;
//! let first = "t13d1516h2_8daaf6152771_02713d6af862";
//! let resumed = "t13d1517h2_8daaf6152771_b6f405a00624";
//! let websocket = "t13d1516h1_8daaf6152771_02713d6af862";
//! assert_eq!(ja4_family(first), "t13d_8daaf6152771");
//! assert_eq!(ja4_family(resumed), ja4_family(first));
//! assert_eq!(ja4_family(websocket), ja4_family(first));
//! assert_eq!(ja4_family(""), "");
//! ```

/// The JA4 family of `ja4` (one definition, in `ja4_core::stack`, shared with the module):
/// `<JA4_a[0..4]>_<JA4_b>` for a well-formed JA4, otherwise `ja4` itself.
pub use ja4_core::stack::ja4_family;

/// [`ja4_family`] as a ClickHouse expression over the String expression `col`.
pub fn ja4_family_sql(col: &str) -> String {
    format!(
        "if(match({col}, '^[a-z0-9]{{10}}_[0-9a-f]{{12}}_[0-9a-f]{{12}}$'), \
         concat(substring({col}, 1, 4), '_', substring({col}, 12, 12)), {col})"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variants_of_one_stack_share_a_family_and_stacks_do_not() {
        let chrome = "t13d1516h2_8daaf6152771_02713d6af862";
        let python = "t13d1812h1_85036bcba153_b26ce05bbdd6";
        assert_ne!(ja4_family(chrome), ja4_family(python));
        // No SNI (an address literal) or QUIC is another way of talking: another family.
        assert_ne!(
            ja4_family("t13i1516h2_8daaf6152771_02713d6af862"),
            ja4_family(chrome)
        );
        assert_ne!(
            ja4_family("q13d1516h2_8daaf6152771_02713d6af862"),
            ja4_family(chrome)
        );
        // Not a JA4: its own family.
        for odd in [
            "",
            "x",
            "t13d1516h2_8daaf6152771",
            "T13D1516H2_8daaf6152771_02713d6af862",
            "t13d1516h2_8daaf6152771_02713d6af86é",
        ] {
            assert_eq!(ja4_family(odd), odd);
        }
    }

    #[test]
    fn the_sql_twin_names_its_column() {
        let s = ja4_family_sql("l.ja4");
        assert!(s.contains("match(l.ja4, '^[a-z0-9]{10}_"), "{s}");
        assert!(s.ends_with(", l.ja4)"), "{s}");
    }
}
