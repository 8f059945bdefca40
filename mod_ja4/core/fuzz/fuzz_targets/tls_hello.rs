//! A client or server byte stream → first handshake message → hello → every TLS fingerprint.
#![no_main]

use ja4_core::fingerprint::{ja4, Ja3, Ja4Set, Ja4sSet};
use ja4_core::tls;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let body = match tls::first_handshake_message(data, 1 << 16) {
        Ok((_, body)) => body.into_owned(),
        // Also treat the input as a bare message body.
        Err(_) => data.to_vec(),
    };
    if let Ok(ch) = tls::parse_client_hello(&body) {
        let fast = ja4(&ch);
        let set = Ja4Set::from_hello(&ch);
        assert_eq!(fast.as_str(), set.ja4);
        let _ = Ja3::from_hello(&ch);
        let _ = ch.facts();
    }
    if let Ok(sh) = tls::parse_server_hello(&body) {
        let _ = Ja4sSet::from_hello(&sh);
    }
});
