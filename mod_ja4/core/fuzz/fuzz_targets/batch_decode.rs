//! Bytes from the module's socket (or a spool file) → frames → records. Whatever arrives, the
//! decoder answers with records or an error; records it accepts encode and decode again to the
//! same values.
#![no_main]

use ja4_core::batch::{self, BatchError};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut rest = data;
    while !rest.is_empty() {
        let used = match batch::decode_frame(rest) {
            Ok((records, used)) => {
                let mut payload = Vec::new();
                for r in &records {
                    r.encode(&mut payload);
                }
                let (again, _) = batch::decode_frame(&batch::frame(&payload, records.len() as u32))
                    .expect("re-encoded records decode");
                assert_eq!(again, records);
                used
            }
            Err(BatchError::Incomplete) => break,
            // A reader skips a bad frame whose length it can trust, else stops.
            Err(_) => match batch::frame_len(rest) {
                Ok(len) if len > 0 => len,
                _ => break,
            },
        };
        rest = &rest[used.min(rest.len())..];
    }
});
