//! A small DNS stub client (RFC 1035) for the lookups crawler verification needs: PTR, A and
//! AAAA over UDP to one configured resolver, with the answers' TTLs.
//!
//! Owns: building queries, parsing responses (name compression included, loops and
//! truncation refused), matching the response to the query (id, question), retries.
//! Never: trusts a response it cannot fully parse; never blocks longer than its timeout per
//! attempt.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::time::Duration;

pub const A: u16 = 1;
pub const PTR: u16 = 12;
pub const AAAA: u16 = 28;

#[derive(Debug, thiserror::Error)]
pub enum DnsError {
    #[error("DNS server {server}: {error}")]
    Io {
        server: SocketAddr,
        error: std::io::Error,
    },
    #[error("DNS server {0} did not answer")]
    Timeout(SocketAddr),
    #[error("malformed DNS response: {0}")]
    Malformed(&'static str),
    #[error("DNS server answered with rcode {0}")]
    Rcode(u8),
    #[error("'{0}' is not a valid DNS name")]
    Name(String),
}

/// One answer record we understand.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Data {
    Addr(IpAddr),
    Name(String),
    Other,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub rtype: u16,
    pub ttl: u32,
    pub data: Data,
}

/// The reverse-lookup name of `ip` (`4.3.2.1.in-addr.arpa`, nibbles for IPv6). IPv4-mapped
/// IPv6 addresses are looked up as IPv4.
pub fn reverse_name(ip: IpAddr) -> String {
    match ip {
        IpAddr::V6(v6) if v6.to_ipv4_mapped().is_some() => reverse_name(IpAddr::V4(
            v6.to_ipv4_mapped().unwrap_or(Ipv4Addr::UNSPECIFIED),
        )),
        IpAddr::V4(v4) => {
            let o = v4.octets();
            format!("{}.{}.{}.{}.in-addr.arpa", o[3], o[2], o[1], o[0])
        }
        IpAddr::V6(v6) => {
            let mut s = String::with_capacity(72);
            for b in v6.octets().iter().rev() {
                s.push_str(&format!("{:x}.{:x}.", b & 0xf, b >> 4));
            }
            s.push_str("ip6.arpa");
            s
        }
    }
}

/// A query for `name`/`qtype` with id `id`, recursion desired.
pub fn build_query(id: u16, name: &str, qtype: u16) -> Result<Vec<u8>, DnsError> {
    let mut q = Vec::with_capacity(64);
    q.extend_from_slice(&id.to_be_bytes());
    q.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    let name = name.trim_end_matches('.');
    for label in name.split('.') {
        if label.is_empty() || label.len() > 63 {
            return Err(DnsError::Name(name.to_owned()));
        }
        q.push(label.len() as u8);
        q.extend_from_slice(label.as_bytes());
    }
    if q.len() > 12 + 255 {
        return Err(DnsError::Name(name.to_owned()));
    }
    q.push(0);
    q.extend_from_slice(&qtype.to_be_bytes());
    q.extend_from_slice(&1u16.to_be_bytes());
    Ok(q)
}

/// Reads the (possibly compressed) name at `pos`; returns it and the offset after it.
fn read_name(buf: &[u8], mut pos: usize) -> Result<(String, usize), DnsError> {
    let mut labels: Vec<String> = Vec::new();
    let mut end = None;
    let mut jumps = 0;
    loop {
        let len = *buf
            .get(pos)
            .ok_or(DnsError::Malformed("name past the end"))? as usize;
        match len {
            0 => {
                return Ok((labels.join("."), end.unwrap_or(pos + 1)));
            }
            l if l & 0xc0 == 0xc0 => {
                let lo = *buf
                    .get(pos + 1)
                    .ok_or(DnsError::Malformed("pointer past the end"))?;
                jumps += 1;
                if jumps > 16 {
                    return Err(DnsError::Malformed("compression loop"));
                }
                end.get_or_insert(pos + 2);
                pos = ((l & 0x3f) << 8) | lo as usize;
            }
            l if l <= 63 => {
                let label = buf
                    .get(pos + 1..pos + 1 + l)
                    .ok_or(DnsError::Malformed("label past the end"))?;
                labels.push(String::from_utf8_lossy(label).to_ascii_lowercase());
                if labels.iter().map(|l| l.len() + 1).sum::<usize>() > 255 {
                    return Err(DnsError::Malformed("name too long"));
                }
                pos += 1 + l;
            }
            _ => return Err(DnsError::Malformed("reserved label type")),
        }
    }
}

fn u16_at(buf: &[u8], pos: usize) -> Result<u16, DnsError> {
    buf.get(pos..pos + 2)
        .map(|b| u16::from_be_bytes([b[0], b[1]]))
        .ok_or(DnsError::Malformed("truncated"))
}

/// The answers of response `buf` to query (`id`, `name`, `qtype`).
pub fn parse_response(
    buf: &[u8],
    id: u16,
    name: &str,
    qtype: u16,
) -> Result<Vec<Answer>, DnsError> {
    if buf.len() < 12 || u16_at(buf, 0)? != id {
        return Err(DnsError::Malformed("not the response to our query"));
    }
    let flags = u16_at(buf, 2)?;
    if flags & 0x8000 == 0 {
        return Err(DnsError::Malformed("not a response"));
    }
    if flags & 0x0200 != 0 {
        return Err(DnsError::Malformed("truncated response"));
    }
    let rcode = (flags & 0x000f) as u8;
    // NXDOMAIN: the name does not exist, a valid (empty) answer.
    if rcode == 3 {
        return Ok(Vec::new());
    }
    if rcode != 0 {
        return Err(DnsError::Rcode(rcode));
    }
    let (qd, an) = (u16_at(buf, 4)?, u16_at(buf, 6)?);
    if qd != 1 {
        return Err(DnsError::Malformed("expected one question"));
    }
    let (qname, mut pos) = read_name(buf, 12)?;
    if !qname.eq_ignore_ascii_case(name.trim_end_matches('.')) || u16_at(buf, pos)? != qtype {
        return Err(DnsError::Malformed("answer to another question"));
    }
    pos += 4;
    let mut out = Vec::new();
    for _ in 0..an {
        let (_, after) = read_name(buf, pos)?;
        pos = after;
        let rtype = u16_at(buf, pos)?;
        let ttl = buf
            .get(pos + 4..pos + 8)
            .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
            .ok_or(DnsError::Malformed("truncated record"))?;
        let rdlen = u16_at(buf, pos + 8)? as usize;
        let rdata_at = pos + 10;
        let rdata = buf
            .get(rdata_at..rdata_at + rdlen)
            .ok_or(DnsError::Malformed("record data past the end"))?;
        let data = match (rtype, rdlen) {
            (A, 4) => Data::Addr(IpAddr::V4(Ipv4Addr::new(
                rdata[0], rdata[1], rdata[2], rdata[3],
            ))),
            (AAAA, 16) => {
                let mut o = [0u8; 16];
                o.copy_from_slice(rdata);
                Data::Addr(IpAddr::V6(Ipv6Addr::from(o)))
            }
            (PTR, _) => Data::Name(read_name(buf, rdata_at)?.0),
            (A | AAAA, _) => return Err(DnsError::Malformed("address of the wrong length")),
            _ => Data::Other,
        };
        out.push(Answer { rtype, ttl, data });
        pos = rdata_at + rdlen;
    }
    Ok(out)
}

/// A stub resolver talking to one recursive server.
#[derive(Debug, Clone)]
pub struct Resolver {
    pub server: SocketAddr,
    pub timeout: Duration,
    pub attempts: u32,
}

impl Resolver {
    pub fn new(server: SocketAddr) -> Resolver {
        Resolver {
            server,
            timeout: Duration::from_secs(2),
            attempts: 2,
        }
    }

    /// Answers of type `qtype` for `name` (empty when the name does not exist).
    pub fn query(&self, name: &str, qtype: u16) -> Result<Vec<Answer>, DnsError> {
        let io = |error| DnsError::Io {
            server: self.server,
            error,
        };
        let bind: SocketAddr = if self.server.is_ipv4() {
            "0.0.0.0:0".parse().expect("literal")
        } else {
            "[::]:0".parse().expect("literal")
        };
        let sock = UdpSocket::bind(bind).map_err(io)?;
        sock.connect(self.server).map_err(io)?;
        sock.set_read_timeout(Some(self.timeout)).map_err(io)?;
        let mut buf = [0u8; 1500];
        for attempt in 0..self.attempts.max(1) {
            let id = (std::process::id() as u16)
                ^ (attempt as u16).wrapping_mul(0x9e37)
                ^ (std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.subsec_nanos()) as u16);
            sock.send(&build_query(id, name, qtype)?).map_err(io)?;
            loop {
                match sock.recv(&mut buf) {
                    Ok(n) => match parse_response(&buf[..n], id, name, qtype) {
                        Ok(a) => return Ok(a.into_iter().filter(|a| a.rtype == qtype).collect()),
                        // A stray or late datagram: keep waiting for ours.
                        Err(DnsError::Malformed("not the response to our query")) => continue,
                        Err(e) => return Err(e),
                    },
                    Err(e)
                        if matches!(
                            e.kind(),
                            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                        ) =>
                    {
                        break
                    }
                    Err(e) => return Err(io(e)),
                }
            }
        }
        Err(DnsError::Timeout(self.server))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reverse_names() {
        assert_eq!(
            reverse_name("66.249.66.1".parse().unwrap()),
            "1.66.249.66.in-addr.arpa"
        );
        assert_eq!(
            reverse_name("::ffff:66.249.66.1".parse().unwrap()),
            "1.66.249.66.in-addr.arpa"
        );
        let v6 = reverse_name("2001:db8::567:89ab".parse().unwrap());
        assert_eq!(
            v6,
            "b.a.9.8.7.6.5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa"
        );
    }

    #[test]
    fn responses_with_compression_parse_and_bad_ones_do_not() {
        let name = "1.66.249.66.in-addr.arpa";
        let mut r = build_query(0x1234, name, PTR).unwrap();
        r[2] = 0x81; // response, RD
        r[3] = 0x80; // RA
        r[7] = 1; // one answer
                  // Answer: pointer to the question name, PTR, IN, TTL 300, rdata = label + pointer.
        r.extend_from_slice(&[0xc0, 12, 0, 12, 0, 1, 0, 0, 1, 44]);
        let target = b"\x05crawl\x09googlebot\x03com\x00";
        r.extend_from_slice(&(target.len() as u16).to_be_bytes());
        r.extend_from_slice(target);
        let a = parse_response(&r, 0x1234, name, PTR).unwrap();
        assert_eq!(
            a,
            [Answer {
                rtype: PTR,
                ttl: 300,
                data: Data::Name("crawl.googlebot.com".into())
            }]
        );
        assert!(parse_response(&r, 0x1235, name, PTR).is_err(), "wrong id");
        assert!(
            parse_response(&r, 0x1234, "other.arpa", PTR).is_err(),
            "wrong question"
        );
        for cut in 0..r.len() {
            let _ = parse_response(&r[..cut], 0x1234, name, PTR);
        }
        // A pointer loop is refused, not followed forever.
        let mut looped = r.clone();
        let at = looped.len() - target.len();
        looped[at] = 0xc0;
        looped[at + 1] = at as u8;
        assert!(parse_response(&looped, 0x1234, name, PTR).is_err());
        // NXDOMAIN is an empty answer; SERVFAIL an error.
        let mut nx = build_query(7, name, PTR).unwrap();
        nx[2] = 0x81;
        nx[3] = 0x83;
        assert_eq!(parse_response(&nx, 7, name, PTR).unwrap(), []);
        nx[3] = 0x82;
        assert!(matches!(
            parse_response(&nx, 7, name, PTR),
            Err(DnsError::Rcode(2))
        ));
        assert!(build_query(1, &"a".repeat(64), A).is_err());
    }
}
