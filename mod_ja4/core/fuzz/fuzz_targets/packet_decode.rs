//! One captured frame (first byte picks the link type) → decoded TCP segment → options.
#![no_main]

use ja4_core::decode::{decode, LinkType};
use ja4_core::tcp::TcpOptions;
use libfuzzer_sys::fuzz_target;

const LINKS: [i32; 8] = [1, 113, 276, 0, 108, 101, 228, 229];

fuzz_target!(|data: &[u8]| {
    let Some((&sel, frame)) = data.split_first() else { return };
    let Some(link) = LinkType::from_dlt(LINKS[usize::from(sel) % LINKS.len()]) else { return };
    if let Ok(Some(p)) = decode(link, frame) {
        assert!(p.options.len() <= 40);
        let o = TcpOptions::parse(p.options);
        assert!(o.kinds().len() <= 40);
    }
});
