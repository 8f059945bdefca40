use super::*;
use proptest::prelude::*;

fn frame(ty: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = payload.len() as u32;
    let mut f = vec![(len >> 16) as u8, (len >> 8) as u8, len as u8, ty, flags];
    f.extend(stream.to_be_bytes());
    f.extend(payload);
    f
}

fn settings(entries: &[(u16, u32)]) -> Vec<u8> {
    let p: Vec<u8> = entries
        .iter()
        .flat_map(|(id, v)| id.to_be_bytes().into_iter().chain(v.to_be_bytes()))
        .collect();
    frame(SETTINGS, 0, 0, &p)
}

fn window_update(inc: u32) -> Vec<u8> {
    frame(WINDOW_UPDATE, 0, 0, &inc.to_be_bytes())
}

fn priority(stream: u32, exclusive: bool, dep: u32, wire_weight: u8) -> Vec<u8> {
    let mut p = (dep | if exclusive { 1 << 31 } else { 0 })
        .to_be_bytes()
        .to_vec();
    p.push(wire_weight);
    frame(PRIORITY, 0, stream, &p)
}

/// A header block of static-table pseudo-headers in `order` (m, a, s, p), then user-agent.
fn block(order: &str) -> Vec<u8> {
    let mut b = Vec::new();
    for c in order.chars() {
        match c {
            'm' => b.push(0x82),
            's' => b.push(0x87),
            'p' => b.push(0x84),
            'a' => b.extend([
                0x41, 9, b'l', b'o', b'c', b'a', b'l', b'h', b'o', b's', b't',
            ]),
            _ => unreachable!(),
        }
    }
    b.extend([0x7a, 4, b't', b'e', b's', b't']);
    b
}

fn chrome() -> Vec<u8> {
    let mut c = PREFACE.to_vec();
    c.extend(settings(&[(1, 65536), (2, 0), (4, 6291456), (6, 262144)]));
    c.extend(window_update(15663105));
    let mut h = (1u32 << 31).to_be_bytes().to_vec();
    h.push(255);
    h.extend(block("masp"));
    c.extend(frame(HEADERS, END_HEADERS | PRIORITY_FLAG | 1, 1, &h));
    c
}

fn done(bytes: &[u8]) -> Result<Fingerprint, Hostile> {
    match Scanner::new().feed(bytes) {
        Step::Done(r) => r,
        other => panic!("{other:?}"),
    }
}

#[test]
fn browsers_published_strings() {
    let fp = done(&chrome()).unwrap();
    assert_eq!(
        fp.akamai(),
        "1:65536;2:0;4:6291456;6:262144|15663105|0|m,a,s,p"
    );
    assert_eq!(
        fp.headers_priority,
        Some(Priority {
            stream: 1,
            exclusive: true,
            depends_on: 0,
            weight: 256
        })
    );
    assert_eq!(fp.via, Via::Preface);
    // The paper's Firefox 53: five PRIORITY frames for streams never opened.
    let mut ff = PREFACE.to_vec();
    ff.extend(settings(&[(1, 65536), (4, 131072), (5, 16384)]));
    ff.extend(window_update(12517377));
    for (s, d, w) in [(3, 0, 200), (5, 0, 100), (7, 0, 0), (9, 7, 0), (11, 3, 0)] {
        ff.extend(priority(s, false, d, w));
    }
    ff.extend(frame(HEADERS, END_HEADERS, 13, &block("mpas")));
    assert_eq!(
        done(&ff).unwrap().akamai(),
        "1:65536;4:131072;5:16384|12517377|3:0:0:201,5:0:0:101,7:0:0:1,9:0:7:1,11:0:3:1|m,p,a,s"
    );
    // No WINDOW_UPDATE: `00` (the paper's nghttp2 example).
    let mut ng = PREFACE.to_vec();
    ng.extend(settings(&[(3, 100), (4, 65535)]));
    ng.extend(frame(HEADERS, END_HEADERS, 1, &block("mspa")));
    let fp = done(&ng).unwrap();
    assert_eq!(fp.akamai(), "3:100;4:65535|00|0|m,s,p,a");
    assert_eq!(
        fp.hash(),
        String::from_utf8(crate::hash::hash12(fp.akamai().as_bytes()).to_vec()).unwrap()
    );
    assert_ne!(fp.hash(), done(&chrome()).unwrap().hash());
}

#[test]
fn padding_continuation_and_skipped_frames() {
    let mut c = PREFACE.to_vec();
    c.extend(settings(&[(3, 100)]));
    c.extend(frame(SETTINGS, ACK, 0, &[])); // an ACK does not count
    c.extend(frame(6, 0, 0, &[0; 8])); // PING, skipped
    c.extend(window_update(1000));
    c.extend(window_update(2000)); // only the first counts
    let b = block("mpsa");
    // Padded HEADERS carrying the first half, CONTINUATION the rest.
    let mut h = vec![3u8];
    h.extend(&b[..5]);
    h.extend([0, 0, 0]);
    c.extend(frame(HEADERS, PADDED, 1, &h));
    c.extend(frame(CONTINUATION, END_HEADERS, 1, &b[5..]));
    assert_eq!(done(&c).unwrap().akamai(), "3:100|1000|0|m,p,s,a");
}

#[test]
fn h2c_upgrade_reads_the_settings_header_then_the_preface() {
    // HTTP2-Settings: 3:100, 4:10485760, 2:0 (curl's), base64url.
    let head = b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade, HTTP2-Settings\r\n\
                 Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAoAAAAAIAAAAA\r\n\r\n";
    let mut c = head.to_vec();
    c.extend(PREFACE);
    c.extend(window_update(1048510465));
    c.extend(frame(HEADERS, END_HEADERS, 3, &block("mpsa")));
    let fp = done(&c).unwrap();
    assert_eq!(fp.via, Via::Upgrade);
    assert_eq!(fp.akamai(), "3:100;4:10485760;2:0|1048510465|0|m,p,s,a");
    // A preface SETTINGS frame wins over the header.
    let mut c2 = head.to_vec();
    c2.extend(PREFACE);
    c2.extend(settings(&[(3, 7)]));
    c2.extend(frame(HEADERS, END_HEADERS, 3, &block("m")));
    assert_eq!(done(&c2).unwrap().akamai(), "3:7|00|0|m");
}

#[test]
fn http1_and_garbage_are_not_h2() {
    for bytes in [
        &b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"[..],
        b"GET / HTTP/1.1\r\nUpgrade: websocket\r\n\r\n",
        b"\x16\x03\x01\x02\x00",
        b"PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n",
    ] {
        assert_eq!(Scanner::new().feed(bytes), Step::NotH2, "{bytes:?}");
    }
    // Over TLS only the preface counts: the first byte that differs ends it.
    let mut tls = Scanner::tls();
    assert_eq!(tls.feed(b"G"), Step::NotH2);
    assert!(matches!(Scanner::tls().feed(&chrome()), Step::Done(Ok(_))));
    // A head that never ends within the limit.
    let mut s = Scanner::new();
    assert_eq!(s.feed(b"GET / HTTP/1.1\r\n"), Step::More);
    assert_eq!(s.feed(&vec![b'a'; MAX_UPGRADE_HEAD]), Step::NotH2);
    assert!(s.finished());
}

#[test]
fn hostile_prefaces_are_named() {
    let with = |frames: &[Vec<u8>]| {
        let mut c = PREFACE.to_vec();
        for f in frames {
            c.extend(f);
        }
        c
    };
    let big: Vec<(u16, u32)> = (0..=MAX_SETTINGS as u16).map(|i| (i, 1)).collect();
    assert_eq!(done(&with(&[settings(&big)])), Err(Hostile::Settings));
    assert_eq!(
        done(&with(&[frame(SETTINGS, 0, 0, &[0; 7])])),
        Err(Hostile::Settings)
    );
    let mut endless = vec![frame(HEADERS, 0, 1, &[0x82])];
    endless.extend((0..=MAX_CONTINUATIONS).map(|_| frame(CONTINUATION, 0, 1, &[0x84])));
    assert_eq!(done(&with(&endless)), Err(Hostile::Continuation));
    assert_eq!(
        done(&with(&[frame(HEADERS, 0, 1, &[0x82]), window_update(5)])),
        Err(Hostile::Interrupted)
    );
    assert_eq!(
        done(&with(&[frame(HEADERS, END_HEADERS, 1, &[0x80])])),
        Err(Hostile::Hpack(HpackError::Index(0)))
    );
    assert_eq!(
        done(&with(&[frame(
            HEADERS,
            END_HEADERS | PADDED,
            1,
            &[9, 0x82]
        )])),
        Err(Hostile::Malformed)
    );
    assert_eq!(
        done(&with(&[frame(DATA, 0, 1, &vec![0; MAX_FRAME + 1])])),
        Err(Hostile::FrameSize)
    );
    let pings: Vec<Vec<u8>> = (0..=MAX_FRAMES).map(|_| frame(6, 0, 0, &[0; 8])).collect();
    assert_eq!(done(&with(&pings)), Err(Hostile::NoRequest));
    // Bytes beyond the limit without a request.
    let data: Vec<Vec<u8>> = (0..5)
        .map(|_| frame(DATA, 0, 1, &vec![0; 16_000]))
        .collect();
    assert_eq!(done(&with(&data)), Err(Hostile::NoRequest));
}

proptest! {
    /// Fed in pieces of any size, the scanner finds what it finds fed at once.
    #[test]
    fn pieces_do_not_matter(cuts in proptest::collection::vec(0usize..200, 0..12)) {
        let bytes = chrome();
        let mut s = Scanner::new();
        let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c % bytes.len()).collect();
        cuts.sort_unstable();
        let mut last = 0;
        let mut got = None;
        for c in cuts.into_iter().chain([bytes.len()]) {
            if let Step::Done(r) = s.feed(&bytes[last..c]) {
                got = Some(r);
            }
            last = c;
        }
        prop_assert_eq!(got, Some(done(&bytes)));
    }

    /// Any bytes after the preface: an answer or more wanted, never a panic.
    #[test]
    fn any_bytes_never_panic(tail in proptest::collection::vec(any::<u8>(), 0..600)) {
        let mut b = PREFACE.to_vec();
        b.extend(tail);
        let _ = Scanner::new().feed(&b);
        let _ = Scanner::new().feed(&b[24..]);
    }
}
