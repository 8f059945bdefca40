//! The shape of a request's header table: its names in table order, what each one is to the
//! export record (a picked value, the Cookie, nothing) and what the record and JA4H take from
//! the names alone (the joined list, part b, the cookie and referer flags).
//!
//! A keep-alive client sends one shape again and again, a browser a handful (navigation,
//! script, image, fetch). The module keeps a connection's shapes in a [`ShapeCache`]; a request
//! whose table matches a kept shape name for name only reads the values the record needs,
//! and its names are measured, classified, joined and hashed once per shape instead of once
//! per request.
//!
//! Owns: [`HeaderShape`] (built from the names, pure), [`ShapeCache`] (a connection's
//! shapes, shared by its HTTP/2 streams, never more than [`SHAPES`]) and the name-for-name
//! comparison of a table with a shape ([`HeaderShape::is_shape_of`]).
//! Never: looks at header values (they differ between requests of one shape), forgets or
//! moves a kept shape while its connection lives (records point into it).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

use crate::batch::{header_role, HeaderRole, PICKED_HEADERS};
use crate::fingerprint::ja4h::NamesPart;

/// What a table entry's value is to the record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Nothing (its name is listed, or it is a pseudo-header or has no name).
    None,
    /// A Cookie value (every Cookie header's, joined by `; `).
    Cookie,
    /// The first value of [`PICKED_HEADERS`]`[i]`.
    Picked(u8),
}

/// The names of one request header table and what follows from them (see the module docs).
#[derive(Debug)]
pub struct HeaderShape {
    /// Every entry's name as the table holds it; None for an entry without one (a NULL key).
    names: Box<[Option<Box<[u8]>>]>,
    /// The entries whose value the record takes: (entry index, role), in table order.
    valued: Box<[(usize, Role)]>,
    lowercase: bool,
    joined: Box<[u8]>,
    ja4h: NamesPart,
    /// Which [`PICKED_HEADERS`] the shape has a value for (bit i).
    picked: u16,
}

impl HeaderShape {
    /// The shape of a table whose entries have `names` (None for an entry without one), in
    /// table order. `lowercase`: the request came as HTTP/2 or HTTP/3, whose names are
    /// lowercase on the wire, and mod_http2 appended a `Host` header made from `:authority`
    /// (canonical rule 7): the joined list puts the names back in wire form, that `Host`
    /// left out.
    pub fn new<'a>(names: impl IntoIterator<Item = Option<&'a [u8]>>, lowercase: bool) -> Self {
        let names: Vec<Option<Box<[u8]>>> = names.into_iter().map(|n| n.map(Box::from)).collect();
        let mut valued = Vec::new();
        let mut picked = 0u16;
        // The last named, non-pseudo entry, if it is a Host to leave out.
        let mut trailing_host = None;
        for (i, name) in names.iter().enumerate() {
            let Some(name) = name.as_deref() else {
                continue;
            };
            let listed = name.first() != Some(&b':');
            let role = match header_role(name) {
                _ if !listed => Role::None,
                HeaderRole::Cookie => Role::Cookie,
                // The first occurrence counts (as JA4H takes the first Accept-Language).
                HeaderRole::Picked(p) if picked & (1 << p) == 0 => {
                    picked |= 1 << p;
                    Role::Picked(p as u8)
                }
                _ => Role::None,
            };
            if role != Role::None {
                valued.push((i, role));
            }
            if listed {
                trailing_host = (lowercase && name.eq_ignore_ascii_case(b"host")).then_some(i);
            }
        }
        let mut joined = Vec::new();
        let mut first = true;
        for (i, name) in names.iter().enumerate() {
            let Some(name) = name.as_deref() else {
                continue;
            };
            if name.first() == Some(&b':') || Some(i) == trailing_host {
                continue;
            }
            if !first {
                joined.push(b',');
            }
            first = false;
            if lowercase {
                joined.extend(name.iter().map(u8::to_ascii_lowercase));
            } else {
                joined.extend_from_slice(name);
            }
        }
        let ja4h = NamesPart::of(&joined);
        HeaderShape {
            names: names.into(),
            valued: valued.into(),
            lowercase,
            joined: joined.into(),
            ja4h,
            picked,
        }
    }

    /// Table entries.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// Nothing is kept.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// Whether the names were taken as HTTP/2 or HTTP/3 ones (see [`HeaderShape::new`]).
    pub fn lowercase(&self) -> bool {
        self.lowercase
    }

    /// Entry by entry, its name (None for an entry without one).
    #[inline]
    pub fn names(&self) -> &[Option<Box<[u8]>>] {
        &self.names
    }

    /// Whether a table whose entries have `names` (in table order; None for an entry without
    /// a name), taken as HTTP/2 or HTTP/3 ones when `lowercase`, has this shape: the same
    /// names, byte for byte, in the same order. The names are read lazily and the comparison
    /// stops at the first difference.
    #[inline]
    pub fn is_shape_of<'a>(
        &self,
        names: impl ExactSizeIterator<Item = Option<&'a [u8]>>,
        lowercase: bool,
    ) -> bool {
        self.lowercase == lowercase
            && names.len() == self.names.len()
            && self.names.iter().zip(names).all(|(a, b)| a.as_deref() == b)
    }

    /// The entries whose value the record takes (roles other than [`Role::None`]): (entry
    /// index, role), in table order.
    #[inline]
    pub fn valued(&self) -> &[(usize, Role)] {
        &self.valued
    }

    /// The header names in wire order joined by `,`, as the record carries them.
    pub fn joined(&self) -> &[u8] {
        &self.joined
    }

    /// What JA4H takes from the names.
    pub fn ja4h(&self) -> &NamesPart {
        &self.ja4h
    }

    /// Whether an entry has the value of [`PICKED_HEADERS`]`[i]`.
    pub fn has_picked(&self, i: usize) -> bool {
        self.picked & (1 << i) != 0
    }
}

/// How many shapes a connection keeps; a client sending more distinct header lists than this
/// on one connection gets the others measured request by request.
pub const SHAPES: usize = 8;

/// The longest list of names (bytes) a connection keeps: a browser's is a few hundred bytes;
/// longer lists are measured request by request, so a connection never holds more than
/// `SHAPES` × this much (a client cannot make the module keep httpd's per-request limits'
/// worth of names for the life of a connection).
pub const MAX_KEPT_NAMES: usize = 4096;

/// A connection's header shapes: found by a caller-supplied match, the last one found tried
/// first; kept until the cache is dropped. Safe to share between threads (HTTP/2 streams).
#[derive(Debug, Default)]
pub struct ShapeCache {
    slots: [OnceLock<HeaderShape>; SHAPES],
    last: AtomicUsize,
}

impl ShapeCache {
    /// The kept shape `matches` accepts, if any.
    #[inline]
    pub fn find(&self, mut matches: impl FnMut(&HeaderShape) -> bool) -> Option<&HeaderShape> {
        let last = self.last.load(Ordering::Relaxed) % SHAPES;
        // The last one found, then the others in order (one call site: `matches` inlines).
        let mut i = last;
        let mut next = 0;
        loop {
            if let Some(s) = self.slots[i].get() {
                if matches(s) {
                    if i != last {
                        self.last.store(i, Ordering::Relaxed);
                    }
                    return Some(s);
                }
            } else if i != last {
                // Slots fill in order: no kept shape after an empty slot.
                return None;
            }
            if next == last {
                next += 1;
            }
            if next >= SHAPES {
                return None;
            }
            i = next;
            next += 1;
        }
    }

    /// Keeps `shape` and returns it kept; gives it back when every slot is taken or its names
    /// are longer than [`MAX_KEPT_NAMES`].
    pub fn keep(&self, shape: HeaderShape) -> Result<&HeaderShape, Box<HeaderShape>> {
        if shape.joined.len() > MAX_KEPT_NAMES {
            return Err(Box::new(shape));
        }
        let mut shape = shape;
        for (i, slot) in self.slots.iter().enumerate() {
            if slot.get().is_some() {
                continue;
            }
            // Another stream may fill the slot first: then try the next one.
            match slot.set(shape) {
                Ok(()) => {
                    self.last.store(i, Ordering::Relaxed);
                    return Ok(slot.get().expect("a slot just set has a value"));
                }
                Err(back) => shape = back,
            }
        }
        Err(Box::new(shape))
    }

    /// Shapes kept.
    pub fn len(&self) -> usize {
        self.slots.iter().take_while(|s| s.get().is_some()).count()
    }

    /// Nothing is kept.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Number of [`PICKED_HEADERS`] (a shape's picked set fits a `u16`).
const _: () = assert!(PICKED_HEADERS.len() <= 16);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::PICKED_ACCEPT_LANGUAGE;
    use crate::fingerprint::{HttpVersion, Ja4hSet};

    fn shape(names: &[&str], lowercase: bool) -> HeaderShape {
        HeaderShape::new(names.iter().map(|n| Some(n.as_bytes())), lowercase)
    }

    #[test]
    fn roles_joined_names_and_ja4h_part() {
        let s = shape(
            &[
                "Host",
                "User-Agent",
                "Accept-Language",
                "Cookie",
                "accept-language",
                "Referer",
                "cookie",
                "X-Other",
            ],
            false,
        );
        // Entry by entry (None for those whose value the record does not take).
        let mut roles = vec![Role::None; s.len()];
        for &(i, r) in s.valued() {
            roles[i] = r;
        }

        let ua = PICKED_HEADERS
            .iter()
            .position(|p| p.eq_ignore_ascii_case(b"user-agent"))
            .unwrap() as u8;
        let lang = PICKED_ACCEPT_LANGUAGE as u8;
        assert_eq!(
            roles,
            [
                Role::None,
                Role::Picked(ua),
                Role::Picked(lang),
                Role::Cookie,
                Role::None,
                Role::None,
                Role::Cookie,
                Role::None,
            ]
        );
        let valued: Vec<(usize, Role)> = s.valued().to_vec();
        assert_eq!(
            valued,
            [
                (1, Role::Picked(ua)),
                (2, Role::Picked(lang)),
                (3, Role::Cookie),
                (6, Role::Cookie)
            ]
        );
        assert_eq!(
            s.joined(),
            b"Host,User-Agent,Accept-Language,Cookie,accept-language,Referer,cookie,X-Other"
        );
        assert!(s.has_picked(ua as usize) && s.has_picked(PICKED_ACCEPT_LANGUAGE));
        let want = Ja4hSet::from_joined(b"GET", HttpVersion::Http11, s.joined(), b"", None);
        let part = s.ja4h();
        assert!(part.cookie && part.referer);
        assert_eq!(part.count, 5);
        assert_eq!(&part.hash[..], &want.ja4h.as_bytes()[13..25]);
    }

    #[test]
    fn http2_names_in_wire_form_without_the_trailing_host() {
        let s = shape(&[":method", "User-Agent", "Accept", "Host"], true);
        assert_eq!(s.joined(), b"user-agent,accept");
        // A Host the client sent (not last) stays.
        let s = shape(&["Host", "Accept"], true);
        assert_eq!(s.joined(), b"host,accept");
        // HTTP/1: Host stays wherever it is, case kept.
        let s = shape(&["Accept", "Host"], false);
        assert_eq!(s.joined(), b"Accept,Host");
        // Pseudo-headers and entries without a name are skipped, an empty name is listed.
        let s = HeaderShape::new(
            [Some(&b":path"[..]), None, Some(b""), Some(b"A"), Some(b"")],
            false,
        );
        assert_eq!(s.joined(), b",A,");
        assert_eq!(s.len(), 5);
        let names: Vec<Option<&[u8]>> = s.names().iter().map(|n| n.as_deref()).collect();
        assert_eq!(
            names,
            [Some(&b":path"[..]), None, Some(b""), Some(b"A"), Some(b"")]
        );
        assert_eq!(shape(&[], false).joined(), b"");
    }

    #[test]
    fn a_table_has_a_shape_only_name_for_name() {
        let names: [Option<&[u8]>; 4] = [
            Some(b"Host"),
            None,
            Some(b""),
            Some(b"Upgrade-Insecure-Requests"),
        ];
        let s = HeaderShape::new(names, false);
        assert!(s.is_shape_of(names.into_iter(), false));
        // The other protocol family, another length, a NULL key for a name, a name for a
        // NULL key, a case or a byte off, a prefix: all different tables.
        assert!(!s.is_shape_of(names.into_iter(), true));
        assert!(!s.is_shape_of(names[..3].iter().copied(), false));
        for (i, other) in [
            (1, Some(&b""[..])),
            (2, None),
            (0, Some(&b"host"[..])),
            (0, Some(&b"Hos"[..])),
            (0, Some(&b"Hostile"[..])),
            (3, Some(&b"Upgrade-Insecure-Requestz"[..])),
        ] {
            let mut t = names;
            t[i] = other;
            assert!(!s.is_shape_of(t.into_iter(), false), "{i}: {other:?}");
        }
        // The comparison stops at the first difference: later names are not read.
        let mut read = 0;
        let lazy = [Some(&b"X"[..]), Some(b"Y"), Some(b"Z"), Some(b"W")]
            .into_iter()
            .inspect(|_| read += 1);
        assert!(!s.is_shape_of(lazy, false));
        assert_eq!(read, 1);
    }

    #[test]
    fn cache_finds_the_matching_shape_and_is_bounded() {
        let cache = ShapeCache::default();
        let list = |i: usize| vec![format!("X-{i}"), "Host".to_string()];
        let names = |i: usize| list(i).join(",");
        for i in 0..SHAPES {
            let l = list(i);
            let s = HeaderShape::new(l.iter().map(|n| Some(n.as_bytes())), false);
            let kept = cache.keep(s).map(|s| s.joined().to_vec()).ok();
            assert_eq!(kept, Some(names(i).into_bytes()));
        }
        let extra = shape(&["Y"], false);
        assert!(cache.keep(extra).is_err(), "the cache is bounded");
        let long = "X".repeat(MAX_KEPT_NAMES + 1);
        let fresh = ShapeCache::default();
        assert!(
            fresh.keep(shape(&[&long], false)).is_err(),
            "names too long to keep"
        );
        assert!(fresh.is_empty());
        let fits = "X".repeat(MAX_KEPT_NAMES);
        assert!(fresh.keep(shape(&[&fits], false)).is_ok());
        assert_eq!(cache.len(), SHAPES);
        for i in (0..SHAPES).rev().chain(0..SHAPES) {
            let want = names(i);
            let found = cache.find(|s| s.joined() == want.as_bytes());
            assert_eq!(found.map(|s| s.joined()), Some(want.as_bytes()));
        }
        assert!(cache.find(|s| s.joined() == b"Y").is_none());
    }
}
