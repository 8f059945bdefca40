//! A sequence of raw-IP frames (2-byte length prefixes) through the connection table.
#![no_main]

use ja4_core::decode::{decode, LinkType};
use ja4_core::flow::{FlowConfig, FlowTable};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let cfg = FlowConfig { max_connections: 8, idle_timeout_us: 50, ..FlowConfig::default() };
    let mut table = FlowTable::new(cfg);
    let mut emitted = 0u64;
    let mut rest = data;
    let mut ts = 0i64;
    while rest.len() >= 2 {
        let len = usize::from(u16::from_be_bytes([rest[0], rest[1]])) % 2048;
        rest = &rest[2..];
        let frame = &rest[..len.min(rest.len())];
        rest = &rest[frame.len()..];
        ts += 7;
        if let Ok(Some(p)) = decode(LinkType::Raw, frame) {
            table.process(ts, &p, &mut |_| emitted += 1);
            assert!(table.len() <= 8);
        }
    }
    table.drain(&mut |_| emitted += 1);
    assert_eq!(emitted, table.stats().connections);
});
