//! A plaintext client stream → request heads (keep-alive, bodies, chunks) → JA4H, which the
//! module's way (a header shape, its names part, the cookies' part) must reproduce.
#![no_main]

use ja4_core::batch::PICKED_ACCEPT_LANGUAGE;
use ja4_core::fingerprint::ja4h::{self, NamesPart};
use ja4_core::fingerprint::Ja4hSet;
use ja4_core::shape::{HeaderShape, Role};
use ja4_core::http::{RequestStream, Step};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut rs = RequestStream::new(16 * 1024);
    let mut off = 0usize;
    for _ in 0..=data.len() + 1 {
        match rs.step(&data[off.min(data.len())..]) {
            Step::Request { head, consumed, body } => {
                assert!(consumed > 0);
                let want = Ja4hSet::compute(head.method, head.version, head.headers.iter().copied());
                // The joined list cannot tell a name holding a comma, or a lone empty name.
                let representable = head.headers.iter().all(|(n, _)| !n.is_empty() && !n.contains(&b','));
                let shape = HeaderShape::new(head.headers.iter().map(|(n, _)| Some(*n)), false);
                let mut cookies: Vec<&[u8]> = Vec::new();
                let mut language = None;
                for &(i, role) in shape.valued() {
                    match role {
                        Role::Cookie => cookies.push(head.headers[i].1),
                        Role::Picked(p) if usize::from(p) == PICKED_ACCEPT_LANGUAGE => {
                            language = Some(head.headers[i].1)
                        }
                        _ => {}
                    }
                }
                let part: &NamesPart = shape.ja4h();
                let got = ja4h::assemble(
                    head.method,
                    head.version,
                    part,
                    language,
                    &ja4h::cookie_part(&cookies.join(&b"; "[..])),
                );
                if representable {
                    assert_eq!(String::from_utf8_lossy(&got), want.ja4h);
                }
                off = off.saturating_add(consumed).saturating_add(usize::try_from(body).unwrap_or(usize::MAX));
            }
            Step::Consumed(n) => {
                assert!(n > 0);
                off += n;
            }
            Step::Skip(n) => off = off.saturating_add(usize::try_from(n).unwrap_or(usize::MAX)),
            Step::NeedMore | Step::Broken(_) => return,
        }
    }
    panic!("request stream did not settle");
});
