//! A client's first decrypted bytes → the HTTP/2 scanner (frames, HPACK, h2c upgrade). Any
//! bytes, cut anywhere: an answer or more wanted, never a panic; the answer does not depend
//! on where the bytes were cut.
#![no_main]

use ja4_core::h2::{Scanner, Step, PREFACE};
use libfuzzer_sys::fuzz_target;

fn run(pieces: &[&[u8]]) -> Option<Step> {
    let mut s = Scanner::new();
    for p in pieces {
        let step = s.feed(p);
        if step != Step::More {
            return Some(step);
        }
    }
    None
}

fuzz_target!(|data: &[u8]| {
    // Half the inputs start with the preface, so frames are reached.
    let bytes: Vec<u8> = match data.first() {
        Some(b) if b & 1 == 1 => PREFACE.iter().chain(&data[1..]).copied().collect(),
        _ => data.to_vec(),
    };
    let whole = run(&[&bytes]);
    let cut = data.get(1).map_or(0, |&c| usize::from(c) % (bytes.len() + 1));
    let halves = run(&[&bytes[..cut], &bytes[cut..]]);
    assert_eq!(whole, halves);
    if let Some(Step::Done(Ok(fp))) = whole {
        assert_eq!(fp.hash().len(), 12);
        assert!(fp.akamai().matches('|').count() == 3);
    }
});
