//! The one bounds-checked cursor every parser of this crate reads with (TLS handshakes, the
//! batch format, packet headers): each read either returns what was asked for and advances, or
//! returns `None` and leaves the cursor where it was; nothing indexes a slice it has not
//! checked.
//!
//! Owns: [`Reader`] (big-endian network fields, little-endian batch fields, LEB128 varints,
//! length-prefixed vectors) and [`Fixed`] reads of headers whose size was checked once, with
//! offsets checked at compile time.
//! Never: panics, reads past its slice, or allocates.
//!
//! ```
//! use ja4_core::reader::Reader;
//! let mut r = Reader::new(&[0x01, 0x02, 0x03, 0x61, 0x62, 0x63]);
//! assert_eq!(r.be_u16(), Some(0x0102));
//! assert_eq!(r.vec8(), Some(&b"abc"[..]));
//! assert!(r.is_empty());
//! assert_eq!(r.u8(), None);
//! ```

/// A cursor over a byte slice.
#[derive(Debug, Clone, Copy)]
pub struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    /// A reader at the start of `bytes`.
    pub fn new(bytes: &'a [u8]) -> Reader<'a> {
        Reader { rest: bytes }
    }

    /// What is left.
    pub fn rest(&self) -> &'a [u8] {
        self.rest
    }

    /// Bytes left.
    pub fn left(&self) -> usize {
        self.rest.len()
    }

    /// Nothing is left.
    pub fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    /// The next `n` bytes.
    pub fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (a, b) = self.rest.split_at_checked(n)?;
        self.rest = b;
        Some(a)
    }

    /// The next `N` bytes as an array.
    pub fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        let (a, b) = self.rest.split_first_chunk::<N>()?;
        self.rest = b;
        Some(*a)
    }

    /// Skips `n` bytes; `None` if fewer are left.
    pub fn skip(&mut self, n: usize) -> Option<()> {
        self.take(n).map(|_| ())
    }

    /// One byte.
    pub fn u8(&mut self) -> Option<u8> {
        self.array::<1>().map(|[b]| b)
    }

    /// A big-endian u16.
    pub fn be_u16(&mut self) -> Option<u16> {
        self.array().map(u16::from_be_bytes)
    }

    /// A 24-bit big-endian length (TLS handshake messages).
    pub fn be_u24(&mut self) -> Option<u32> {
        self.array::<3>()
            .map(|[a, b, c]| u32::from_be_bytes([0, a, b, c]))
    }

    /// A big-endian u32.
    pub fn be_u32(&mut self) -> Option<u32> {
        self.array().map(u32::from_be_bytes)
    }

    /// A little-endian u16.
    pub fn le_u16(&mut self) -> Option<u16> {
        self.array().map(u16::from_le_bytes)
    }

    /// A little-endian u32.
    pub fn le_u32(&mut self) -> Option<u32> {
        self.array().map(u32::from_le_bytes)
    }

    /// A little-endian u64.
    pub fn le_u64(&mut self) -> Option<u64> {
        self.array().map(u64::from_le_bytes)
    }

    /// A little-endian i64.
    pub fn le_i64(&mut self) -> Option<i64> {
        self.array().map(i64::from_le_bytes)
    }

    /// An unsigned LEB128 varint of at most ten bytes (one that does not end by then is
    /// malformed).
    pub fn varint(&mut self) -> Option<u64> {
        let mut r = *self;
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = r.u8()?;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                *self = r;
                return Some(v);
            }
        }
        None
    }

    /// Bytes behind a one-byte length.
    pub fn vec8(&mut self) -> Option<&'a [u8]> {
        let mut r = *self;
        let n = usize::from(r.u8()?);
        let v = r.take(n)?;
        *self = r;
        Some(v)
    }

    /// Bytes behind a big-endian two-byte length.
    pub fn vec16(&mut self) -> Option<&'a [u8]> {
        let mut r = *self;
        let n = usize::from(r.be_u16()?);
        let v = r.take(n)?;
        *self = r;
        Some(v)
    }

    /// Bytes behind a varint length.
    pub fn var_bytes(&mut self) -> Option<&'a [u8]> {
        let mut r = *self;
        let n = usize::try_from(r.varint()?).ok()?;
        let v = r.take(n)?;
        *self = r;
        Some(v)
    }

    /// Bytes behind a little-endian four-byte length.
    pub fn le_vec32(&mut self) -> Option<&'a [u8]> {
        let mut r = *self;
        let n = usize::try_from(r.le_u32()?).ok()?;
        let v = r.take(n)?;
        *self = r;
        Some(v)
    }
}

/// Fixed-offset reads of a header whose length was checked once ([`fixed`]): the offsets are
/// const parameters, checked against the header's size when the code is compiled, so a read
/// can never fall outside it.
pub trait Fixed<const N: usize> {
    /// The big-endian u16 at byte `AT`.
    fn be16<const AT: usize>(&self) -> u16;
    /// The big-endian u32 at byte `AT`.
    fn be32<const AT: usize>(&self) -> u32;
    /// The `L` bytes at `AT`.
    fn bytes<const AT: usize, const L: usize>(&self) -> [u8; L];
}

impl<const N: usize> Fixed<N> for [u8; N] {
    #[inline(always)]
    fn be16<const AT: usize>(&self) -> u16 {
        u16::from_be_bytes(self.bytes::<AT, 2>())
    }

    #[inline(always)]
    fn be32<const AT: usize>(&self) -> u32 {
        u32::from_be_bytes(self.bytes::<AT, 4>())
    }

    #[inline(always)]
    fn bytes<const AT: usize, const L: usize>(&self) -> [u8; L] {
        const { assert!(AT + L <= N, "a fixed read past the header") };
        let mut out = [0u8; L];
        let mut i = 0;
        while i < L {
            out[i] = self[AT + i];
            i += 1;
        }
        out
    }
}

/// The first `N` bytes of `b` as a header, if it has that many.
#[inline(always)]
pub fn fixed<const N: usize>(b: &[u8]) -> Option<&[u8; N]> {
    b.first_chunk::<N>()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_read_leaves_the_cursor() {
        let mut r = Reader::new(&[0x05, b'a', b'b']);
        assert_eq!(r.vec8(), None);
        assert_eq!(r.left(), 3);
        assert_eq!(r.vec16(), None);
        assert_eq!(r.left(), 3);
        let mut v = Reader::new(&[0x80, 0x80]);
        assert_eq!(v.varint(), None);
        assert_eq!(v.left(), 2);
        // Eleven continuation bytes never end a varint.
        let mut long = Reader::new(&[0xff; 11]);
        assert_eq!(long.varint(), None);
        let mut ok = Reader::new(&[0xac, 0x02, 9]);
        assert_eq!(ok.varint(), Some(300));
        assert_eq!(ok.rest(), [9]);
    }

    #[test]
    fn numbers_in_both_orders() {
        let b = [1, 2, 3, 4, 5, 6, 7, 8];
        let mut r = Reader::new(&b);
        assert_eq!(r.be_u24(), Some(0x010203));
        assert_eq!(r.le_u32(), Some(0x0706_0504));
        let h: &[u8; 8] = fixed(&b).unwrap();
        assert_eq!(h.be16::<6>(), 0x0708);
        assert_eq!(h.be32::<0>(), 0x0102_0304);
        assert_eq!(h.bytes::<2, 3>(), [3, 4, 5]);
        assert!(fixed::<9>(&b).is_none());
        let mut s = Reader::new(&[2, 0, 0, 0, 7, 8, 9]);
        assert_eq!(s.le_vec32(), Some(&[7, 8][..]));
        assert_eq!(s.rest(), [9]);
    }

    proptest::proptest! {
        #[test]
        fn never_panics_and_never_overreads(bytes: Vec<u8>, ops: Vec<u8>) {
            let mut r = Reader::new(&bytes);
            for op in ops {
                let before = r.left();
                let moved = match op % 9 {
                    0 => r.u8().is_some(),
                    1 => r.be_u16().is_some(),
                    2 => r.be_u24().is_some(),
                    3 => r.varint().is_some(),
                    4 => r.vec8().is_some(),
                    5 => r.vec16().is_some(),
                    6 => r.var_bytes().is_some(),
                    7 => r.le_vec32().is_some(),
                    _ => r.take(usize::from(op)).is_some(),
                };
                proptest::prop_assert!(r.left() <= before);
                if !moved {
                    proptest::prop_assert_eq!(r.left(), before);
                }
            }
        }
    }
}
