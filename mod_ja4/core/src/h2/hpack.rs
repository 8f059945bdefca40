//! Just enough HPACK (RFC 7541) to read the order of a request's pseudo-header fields: the
//! names of the header block's representations until the first regular field, from the
//! static table, from names this block added to the dynamic table, or from literal names
//! (Huffman-coded ones decoded by [`huffman_name`]). Values are skipped, never decoded.

use super::huffman_table::CODES;

/// Names of the static table (RFC 7541, Appendix A), index 1 to 61; pseudo-header fields
/// are the first seven.
const STATIC_PSEUDO: [&[u8]; 8] = [
    b"",
    b":authority",
    b":method",
    b":method",
    b":path",
    b":path",
    b":scheme",
    b":scheme",
];
/// Entries of the static table.
const STATIC_LEN: u64 = 61;
/// Longest literal name decoded (pseudo-header names are short).
const MAX_NAME: usize = 24;
/// Dynamic-table names remembered (entries a block adds before its regular fields).
const MAX_DYNAMIC: usize = 16;

/// Why a header block could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HpackError {
    /// It ended inside a representation.
    #[error("header block truncated")]
    Truncated,
    /// An integer beyond 2^32.
    #[error("HPACK integer overflow")]
    Integer,
    /// An index outside the static and dynamic tables.
    #[error("HPACK index {0} out of range")]
    Index(u64),
    /// A Huffman string that is not a valid code (EOS inside, bad padding).
    #[error("bad Huffman string")]
    Huffman,
    /// More pseudo-header fields than any request has.
    #[error("too many pseudo-header fields")]
    TooMany,
}

/// A pseudo-header field, by its letter in the Akamai fingerprint.
fn letter(name: &[u8]) -> u8 {
    match name {
        b":method" => b'm',
        b":authority" => b'a',
        b":scheme" => b's',
        b":path" => b'p',
        // RFC 8441's extended CONNECT; anything else a client invents is `x`.
        b":protocol" => b'r',
        _ => b'x',
    }
}

/// Reads an HPACK integer with an `n`-bit prefix at `*at`.
fn integer(b: &[u8], at: &mut usize, n: u32) -> Result<u64, HpackError> {
    let first = *b.get(*at).ok_or(HpackError::Truncated)?;
    *at += 1;
    let max = (1u64 << n) - 1;
    let mut v = u64::from(first) & max;
    if v < max {
        return Ok(v);
    }
    let mut shift = 0;
    loop {
        let c = *b.get(*at).ok_or(HpackError::Truncated)?;
        *at += 1;
        v += u64::from(c & 0x7f) << shift;
        if v > u64::from(u32::MAX) {
            return Err(HpackError::Integer);
        }
        if c & 0x80 == 0 {
            return Ok(v);
        }
        shift += 7;
    }
}

/// A string literal at `*at`: (Huffman-coded, its bytes).
fn string<'a>(b: &'a [u8], at: &mut usize) -> Result<(bool, &'a [u8]), HpackError> {
    let huff = b.get(*at).ok_or(HpackError::Truncated)? & 0x80 != 0;
    let len = usize::try_from(integer(b, at, 7)?).map_err(|_| HpackError::Integer)?;
    let end = at.checked_add(len).ok_or(HpackError::Truncated)?;
    let s = b.get(*at..end).ok_or(HpackError::Truncated)?;
    *at = end;
    Ok((huff, s))
}

/// The canonical Huffman code's decoding tables: per length, the first code and where its
/// symbols start in `symbols` (RFC 7541's code is canonical: codes of one length are
/// consecutive, in symbol order).
struct Canon {
    first: [u32; 31],
    count: [u16; 31],
    offset: [u16; 31],
    symbols: [u16; 257],
}

const fn canon() -> Canon {
    let mut c = Canon {
        first: [0; 31],
        count: [0; 31],
        offset: [0; 31],
        symbols: [0; 257],
    };
    let mut len = 1;
    let mut next = 0usize;
    while len <= 30 {
        c.offset[len] = next as u16;
        let mut first = u32::MAX;
        let mut s = 0;
        while s < 257 {
            if CODES[s].1 as usize == len {
                if CODES[s].0 < first {
                    first = CODES[s].0;
                }
                c.symbols[next] = s as u16;
                next += 1;
                c.count[len] += 1;
            }
            s += 1;
        }
        c.first[len] = if first == u32::MAX { 0 } else { first };
        len += 1;
    }
    c
}

static CANON: Canon = canon();

/// Decodes a Huffman-coded name into `out` (at most [`MAX_NAME`] bytes: a longer name is
/// cut there, enough to tell it is no pseudo-header).
pub(crate) fn huffman_name(s: &[u8], out: &mut [u8; MAX_NAME]) -> Result<usize, HpackError> {
    let (mut code, mut len, mut n) = (0u32, 0usize, 0usize);
    for &byte in s {
        for i in (0..8).rev() {
            code = (code << 1) | u32::from(byte >> i & 1);
            len += 1;
            if len > 30 {
                return Err(HpackError::Huffman);
            }
            let count = u32::from(CANON.count[len]);
            let first = CANON.first[len];
            if count > 0 && code >= first && code - first < count {
                let sym = CANON.symbols[usize::from(CANON.offset[len]) + (code - first) as usize];
                if sym == 256 {
                    return Err(HpackError::Huffman);
                }
                if n == MAX_NAME {
                    return Ok(n);
                }
                out[n] = sym as u8;
                n += 1;
                code = 0;
                len = 0;
            }
        }
    }
    // Padding: at most 7 bits, all ones (the EOS prefix).
    if len > 7 || code != (1 << len) - 1 {
        return Err(HpackError::Huffman);
    }
    Ok(n)
}

/// The pseudo-header letters of `block` (a complete header block) in order, up to `max`
/// of them, into `out`; returns how many. Stops at the first regular field.
pub fn pseudo_order(block: &[u8], out: &mut [u8]) -> Result<usize, HpackError> {
    // Names this block inserted into the dynamic table, newest first (index 62 = newest).
    let mut dynamic: [([u8; MAX_NAME], usize); MAX_DYNAMIC] = [([0; MAX_NAME], 0); MAX_DYNAMIC];
    let mut n_dynamic = 0usize;
    let mut n = 0usize;
    let mut at = 0usize;
    while at < block.len() {
        let b = block[at];
        let mut name = [0u8; MAX_NAME];
        let (name_len, indexing) = if b & 0x80 != 0 {
            // Indexed field: name and value from a table.
            let i = integer(block, &mut at, 7)?;
            (lookup(i, &dynamic[..n_dynamic], &mut name)?, false)
        } else if b & 0xe0 == 0x20 {
            // Dynamic table size update.
            integer(block, &mut at, 5)?;
            continue;
        } else {
            let (prefix, indexing) = if b & 0x40 != 0 { (6, true) } else { (4, false) };
            let i = integer(block, &mut at, prefix)?;
            let len = if i == 0 {
                let (huff, s) = string(block, &mut at)?;
                if huff {
                    huffman_name(s, &mut name)?
                } else {
                    let l = s.len().min(MAX_NAME);
                    name[..l].copy_from_slice(&s[..l]);
                    l
                }
            } else {
                lookup(i, &dynamic[..n_dynamic], &mut name)?
            };
            string(block, &mut at)?; // the value, skipped
            (len, indexing)
        };
        if name_len == 0 || name[0] != b':' {
            break;
        }
        if indexing {
            dynamic.copy_within(..MAX_DYNAMIC - 1, 1);
            dynamic[0] = (name, name_len);
            n_dynamic = (n_dynamic + 1).min(MAX_DYNAMIC);
        }
        let slot = out.get_mut(n).ok_or(HpackError::TooMany)?;
        *slot = letter(&name[..name_len]);
        n += 1;
    }
    Ok(n)
}

/// The name of table index `i` into `name` (empty for a regular field: the caller stops).
fn lookup(
    i: u64,
    dynamic: &[([u8; MAX_NAME], usize)],
    name: &mut [u8; MAX_NAME],
) -> Result<usize, HpackError> {
    if i == 0 {
        return Err(HpackError::Index(0));
    }
    if i <= STATIC_LEN {
        let s = STATIC_PSEUDO.get(i as usize).copied().unwrap_or(b"-");
        name[..s.len()].copy_from_slice(s);
        return Ok(s.len());
    }
    // A dynamic entry this block did not add is from an earlier block: the first request
    // has none, so it is out of range (or a regular field of a later block).
    let d = dynamic
        .get((i - STATIC_LEN - 1) as usize)
        .ok_or(HpackError::Index(i))?;
    *name = d.0;
    Ok(d.1)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Huffman-encodes `s` (the test's own encoder, from the same table).
    fn huff(s: &[u8]) -> Vec<u8> {
        let (mut acc, mut bits, mut out) = (0u64, 0u32, Vec::new());
        for &c in s {
            let (code, len) = CODES[usize::from(c)];
            acc = (acc << len) | u64::from(code);
            bits += u32::from(len);
            while bits >= 8 {
                out.push((acc >> (bits - 8)) as u8);
                bits -= 8;
            }
        }
        if bits > 0 {
            out.push(((acc << (8 - bits)) | ((1 << (8 - bits)) - 1)) as u8);
        }
        out
    }

    #[test]
    fn huffman_names_decode() {
        let mut out = [0u8; MAX_NAME];
        for name in [&b":protocol"[..], b"user-agent", b":path", b"x"] {
            let n = huffman_name(&huff(name), &mut out).unwrap();
            assert_eq!(&out[..n], name);
        }
        // RFC 7541 C.4.1: "www.example.com".
        let rfc = [
            0xf1, 0xe3, 0xc2, 0xe5, 0xf2, 0x3a, 0x6b, 0xa0, 0xab, 0x90, 0xf4, 0xff,
        ];
        let n = huffman_name(&rfc, &mut out).unwrap();
        assert_eq!(&out[..n], b"www.example.com");
        // Padding that is not all ones, or longer than 7 bits.
        assert_eq!(huffman_name(&[0x00], &mut out), Err(HpackError::Huffman));
        assert_eq!(
            huffman_name(&[0xff, 0xff, 0xff, 0xff], &mut out),
            Err(HpackError::Huffman)
        );
    }

    #[test]
    fn pseudo_orders_of_static_literal_and_dynamic_names() {
        let mut out = [0u8; 8];
        // RFC 7541 C.3.1: :method GET, :scheme http, :path /, :authority www.example.com.
        let c31 = [
            0x82, 0x86, 0x84, 0x41, 0x0f, b'w', b'w', b'w', b'.', b'e', b'x', b'a', b'm', b'p',
            b'l', b'e', b'.', b'c', b'o', b'm',
        ];
        let n = pseudo_order(&c31, &mut out).unwrap();
        assert_eq!(&out[..n], b"mspa");
        // A literal (Huffman) :protocol, then a regular field ends the order.
        let mut b = vec![0x82, 0x00];
        let p = huff(b":protocol");
        b.push(0x80 | p.len() as u8);
        b.extend(&p);
        b.extend([0x09, b'w', b'e', b'b', b's', b'o', b'c', b'k', b'e', b't']);
        b.extend([0x7a, 0x01, b'x']); // user-agent (static 58), incremental indexing
        b.push(0x84);
        let n = pseudo_order(&b, &mut out).unwrap();
        assert_eq!(&out[..n], b"mr");
        // A name this block added, referred to again by its dynamic index (62).
        let d = [0x44, 0x01, b'/', 0xbe];
        let n = pseudo_order(&d, &mut out).unwrap();
        assert_eq!(&out[..n], b"pp");
        // Errors, never panics.
        assert_eq!(pseudo_order(&[0x80], &mut out), Err(HpackError::Index(0)));
        assert_eq!(pseudo_order(&[0xff], &mut out), Err(HpackError::Truncated));
        assert_eq!(pseudo_order(&[0xbf], &mut out), Err(HpackError::Index(63)));
        assert_eq!(
            pseudo_order(&[0xff, 0xff, 0xff, 0xff, 0xff, 0x7f], &mut out),
            Err(HpackError::Integer)
        );
        assert_eq!(pseudo_order(&[0x82; 9], &mut out), Err(HpackError::TooMany));
    }
}
