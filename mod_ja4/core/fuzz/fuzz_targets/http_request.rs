//! A plaintext client stream → request heads (keep-alive, bodies, chunks) → JA4H.
#![no_main]

use ja4_core::fingerprint::Ja4hSet;
use ja4_core::http::{RequestStream, Step};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut rs = RequestStream::new(16 * 1024);
    let mut off = 0usize;
    for _ in 0..=data.len() + 1 {
        match rs.step(&data[off.min(data.len())..]) {
            Step::Request { head, consumed, body } => {
                assert!(consumed > 0);
                let _ = Ja4hSet::compute(head.method, head.version, head.headers.iter().copied());
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
