//! Packet decoding: link layer → IPv4/IPv6 (through tunnels) → TCP segment.
//!
//! Owns: the link types libpcap hands us (Ethernet with 802.1Q/802.1ad VLANs, MPLS and PPPoE,
//! Linux cooked v1/v2, BSD null/loopback, raw IP), IPv6 extension headers, and decapsulation of
//! IP-in-IP, GRE (plain, transparent Ethernet bridging, ERSPAN I/II/III), VXLAN and Geneve.
//! It returns borrowed views of the innermost TCP segment.
//!
//! Never: copies payload, allocates, panics, or trusts a length field: every read is bounds
//! checked and nesting is limited to [`MAX_ENCAPSULATION`] levels.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::reader::{fixed, Fixed};

/// How many tunnel layers are unwrapped before a packet is rejected.
pub const MAX_ENCAPSULATION: u8 = 6;

/// The link types we decode, from libpcap's DLT numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkType {
    /// DLT_EN10MB (1).
    Ethernet,
    /// DLT_LINUX_SLL (113), the `any` device before libpcap 1.10.
    LinuxSll,
    /// DLT_LINUX_SLL2 (276), the `any` device since libpcap 1.10.
    LinuxSll2,
    /// DLT_NULL (0): 4-byte address family in host byte order.
    Null,
    /// DLT_LOOP (108): 4-byte address family in network byte order.
    Loop,
    /// DLT_RAW (12/14, LINKTYPE_RAW 101): the packet starts with the IP header.
    Raw,
    /// LINKTYPE_IPV4 (228).
    Ipv4,
    /// LINKTYPE_IPV6 (229).
    Ipv6,
}

impl LinkType {
    /// Maps a libpcap data link type; `None` for link types we do not decode.
    pub fn from_dlt(dlt: i32) -> Option<Self> {
        Some(match dlt {
            0 => Self::Null,
            1 => Self::Ethernet,
            12 | 14 | 101 => Self::Raw,
            108 => Self::Loop,
            113 => Self::LinuxSll,
            228 => Self::Ipv4,
            229 => Self::Ipv6,
            276 => Self::LinuxSll2,
            _ => return None,
        })
    }
}

/// Why a packet could not be decoded. Every variant is a counted drop, never a crash.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// A header shorter than its fixed part or its declared length.
    #[error("truncated {0} header")]
    Truncated(&'static str),
    /// A header field with an impossible value.
    #[error("malformed {0}")]
    Malformed(&'static str),
    /// An IP fragment: fragments are not reassembled.
    #[error("IP fragment (not reassembled)")]
    Fragment,
    /// More nested tunnels than [`MAX_ENCAPSULATION`].
    #[error("more than {MAX_ENCAPSULATION} levels of encapsulation")]
    TooDeep,
}

/// TCP header flag bits.
pub mod flags {
    /// No more data from the sender.
    pub const FIN: u16 = 0x001;
    /// Synchronize sequence numbers (connection request).
    pub const SYN: u16 = 0x002;
    /// Reset the connection.
    pub const RST: u16 = 0x004;
    /// Push buffered data to the application.
    pub const PSH: u16 = 0x008;
    /// The acknowledgment field is significant.
    pub const ACK: u16 = 0x010;
    /// The urgent pointer is significant.
    pub const URG: u16 = 0x020;
    /// ECN echo (on a SYN: ECN capable).
    pub const ECE: u16 = 0x040;
    /// Congestion window reduced.
    pub const CWR: u16 = 0x080;
}

/// A decoded TCP segment with the IP facts of the packet that carried it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpPacket<'a> {
    /// Source address of the innermost IP header.
    pub src: IpAddr,
    /// Destination address of the innermost IP header.
    pub dst: IpAddr,
    /// TTL / hop limit of the innermost IP header (what the sender set, minus hops).
    pub ttl: u8,
    /// TTL / hop limit of the outermost IP header (what the capture point saw on the wire).
    pub outer_ttl: u8,
    /// IPv4 identification of the innermost header (`None` for IPv6).
    pub ip_id: Option<u16>,
    /// IPv4 Don't Fragment bit.
    pub dont_fragment: bool,
    /// How many tunnel layers were removed.
    pub encapsulation: u8,
    /// TCP source port.
    pub src_port: u16,
    /// TCP destination port.
    pub dst_port: u16,
    /// Sequence number.
    pub seq: u32,
    /// Acknowledgment number.
    pub ack: u32,
    /// The 9 flag bits (NS is bit 8).
    pub flags: u16,
    /// Window field, unscaled.
    pub window: u16,
    /// Raw TCP options (at most 40 bytes).
    pub options: &'a [u8],
    /// TCP payload (may be cut short by the capture's snap length).
    pub payload: &'a [u8],
}

impl TcpPacket<'_> {
    /// A SYN without ACK: the client's connection request.
    pub fn is_syn(&self) -> bool {
        self.flags & (flags::SYN | flags::ACK) == flags::SYN
    }
    /// A SYN with ACK: the server's answer.
    pub fn is_syn_ack(&self) -> bool {
        self.flags & (flags::SYN | flags::ACK) == flags::SYN | flags::ACK
    }
    /// Whether any bit of `flag` (a [`flags`] constant) is set.
    pub fn has(&self, flag: u16) -> bool {
        self.flags & flag != 0
    }
}

/// Decodes one captured frame. `Ok(None)` means a well-formed packet that is not TCP (ARP, UDP
/// outside a tunnel, ICMP, …).
pub fn decode(link: LinkType, frame: &[u8]) -> Result<Option<TcpPacket<'_>>, DecodeError> {
    let mut ctx = Ctx {
        outer_ttl: None,
        depth: 0,
    };
    match link {
        LinkType::Ethernet => ctx.ethernet(frame),
        LinkType::LinuxSll => {
            let hdr = fixed::<16>(frame).ok_or(DecodeError::Truncated("linux cooked"))?;
            ctx.ethertype(hdr.be16::<14>(), after::<16>(frame))
        }
        LinkType::LinuxSll2 => {
            let hdr = fixed::<20>(frame).ok_or(DecodeError::Truncated("linux cooked v2"))?;
            ctx.ethertype(hdr.be16::<0>(), after::<20>(frame))
        }
        LinkType::Null | LinkType::Loop => {
            let hdr = fixed::<4>(frame).ok_or(DecodeError::Truncated("loopback"))?;
            let family = if link == LinkType::Loop {
                u32::from_be_bytes([hdr[0], hdr[1], hdr[2], hdr[3]])
            } else {
                // Host byte order of the capturing machine: accept either.
                let le = u32::from_le_bytes([hdr[0], hdr[1], hdr[2], hdr[3]]);
                if le < 0x100 {
                    le
                } else {
                    u32::from_be_bytes([hdr[0], hdr[1], hdr[2], hdr[3]])
                }
            };
            let rest = after::<4>(frame);
            match family {
                2 => ctx.ipv4(rest),
                10 | 24 | 28 | 30 => ctx.ipv6(rest),
                _ => ctx.ip_by_version(rest),
            }
        }
        LinkType::Raw => ctx.ip_by_version(frame),
        LinkType::Ipv4 => ctx.ipv4(frame),
        LinkType::Ipv6 => ctx.ipv6(frame),
    }
}

struct Ctx {
    outer_ttl: Option<u8>,
    depth: u8,
}

type Decoded<'a> = Result<Option<TcpPacket<'a>>, DecodeError>;

const ETH_IPV4: u16 = 0x0800;
const ETH_IPV6: u16 = 0x86dd;
const ETH_VLAN: u16 = 0x8100;
const ETH_QINQ: u16 = 0x88a8;
const ETH_QINQ_OLD: u16 = 0x9100;
const ETH_MPLS: u16 = 0x8847;
const ETH_MPLS_MC: u16 = 0x8848;
const ETH_PPPOE: u16 = 0x8864;
const ETH_TEB: u16 = 0x6558;
const ETH_ERSPAN2: u16 = 0x88be;
const ETH_ERSPAN3: u16 = 0x22eb;

const UDP_VXLAN: u16 = 4789;
const UDP_VXLAN_GPE: u16 = 4790;
const UDP_GENEVE: u16 = 6081;

impl Ctx {
    fn enter(&mut self) -> Result<(), DecodeError> {
        self.depth += 1;
        if self.depth > MAX_ENCAPSULATION {
            Err(DecodeError::TooDeep)
        } else {
            Ok(())
        }
    }

    fn ethernet<'a>(&mut self, frame: &'a [u8]) -> Decoded<'a> {
        let hdr = fixed::<14>(frame).ok_or(DecodeError::Truncated("ethernet"))?;
        self.ethertype(hdr.be16::<12>(), after::<14>(frame))
    }

    fn ethertype<'a>(&mut self, mut ethertype: u16, mut rest: &'a [u8]) -> Decoded<'a> {
        // VLAN tags may be stacked (802.1ad QinQ).
        let mut tags = 0;
        while matches!(ethertype, ETH_VLAN | ETH_QINQ | ETH_QINQ_OLD) {
            tags += 1;
            if tags > 4 {
                return Err(DecodeError::TooDeep);
            }
            let tag = fixed::<4>(rest).ok_or(DecodeError::Truncated("vlan"))?;
            ethertype = tag.be16::<2>();
            rest = after::<4>(rest);
        }
        match ethertype {
            ETH_IPV4 => self.ipv4(rest),
            ETH_IPV6 => self.ipv6(rest),
            ETH_MPLS | ETH_MPLS_MC => self.mpls(rest),
            ETH_PPPOE => {
                let hdr = fixed::<8>(rest).ok_or(DecodeError::Truncated("pppoe"))?;
                match hdr.be16::<6>() {
                    0x0021 => self.ipv4(after::<8>(rest)),
                    0x0057 => self.ipv6(after::<8>(rest)),
                    _ => Ok(None),
                }
            }
            _ => Ok(None),
        }
    }

    fn mpls<'a>(&mut self, mut rest: &'a [u8]) -> Decoded<'a> {
        for _ in 0..8 {
            let label = fixed::<4>(rest).ok_or(DecodeError::Truncated("mpls"))?;
            rest = after::<4>(rest);
            if label[2] & 0x01 != 0 {
                // Bottom of stack: the payload's first nibble tells IPv4 from IPv6.
                return self.ip_by_version(rest);
            }
        }
        Err(DecodeError::TooDeep)
    }

    fn ip_by_version<'a>(&mut self, data: &'a [u8]) -> Decoded<'a> {
        match data.first().map(|b| b >> 4) {
            Some(4) => self.ipv4(data),
            Some(6) => self.ipv6(data),
            Some(_) => Err(DecodeError::Malformed("IP version")),
            None => Err(DecodeError::Truncated("IP")),
        }
    }

    fn ipv4<'a>(&mut self, data: &'a [u8]) -> Decoded<'a> {
        let hdr = fixed::<20>(data).ok_or(DecodeError::Truncated("IPv4"))?;
        if hdr[0] >> 4 != 4 {
            return Err(DecodeError::Malformed("IPv4 version"));
        }
        let ihl = usize::from(hdr[0] & 0x0f) * 4;
        if ihl < 20 || data.len() < ihl {
            return Err(DecodeError::Malformed("IPv4 header length"));
        }
        let total = usize::from(hdr.be16::<2>());
        if total < ihl {
            return Err(DecodeError::Malformed("IPv4 total length"));
        }
        // Trim Ethernet padding; tolerate a snap length shorter than the packet.
        let end = total.min(data.len());
        let frag = hdr.be16::<6>();
        let more_fragments = frag & 0x2000 != 0;
        let offset = frag & 0x1fff;
        if more_fragments || offset != 0 {
            return Err(DecodeError::Fragment);
        }
        let ttl = hdr[8];
        let proto = hdr[9];
        let src = IpAddr::V4(Ipv4Addr::new(hdr[12], hdr[13], hdr[14], hdr[15]));
        let dst = IpAddr::V4(Ipv4Addr::new(hdr[16], hdr[17], hdr[18], hdr[19]));
        let ip = IpFacts {
            src,
            dst,
            ttl,
            ip_id: Some(hdr.be16::<4>()),
            dont_fragment: frag & 0x4000 != 0,
        };
        let payload = data
            .get(ihl..end)
            .ok_or(DecodeError::Malformed("IPv4 total length"))?;
        self.transport(ip, proto, payload)
    }

    fn ipv6<'a>(&mut self, data: &'a [u8]) -> Decoded<'a> {
        let hdr = fixed::<40>(data).ok_or(DecodeError::Truncated("IPv6"))?;
        if hdr[0] >> 4 != 6 {
            return Err(DecodeError::Malformed("IPv6 version"));
        }
        let payload_len = usize::from(hdr.be16::<4>());
        let mut next = hdr[6];
        let ttl = hdr[7];
        let src: [u8; 16] = hdr.bytes::<8, 16>();
        let dst: [u8; 16] = hdr.bytes::<24, 16>();
        let body = after::<40>(data);
        // A zero payload length is a jumbogram: take what was captured.
        let mut rest = if payload_len == 0 {
            body
        } else {
            body.get(..payload_len).unwrap_or(body)
        };
        // Walk the extension header chain.
        for _ in 0..16 {
            match next {
                0 | 43 | 60 | 135 | 139 | 140 => {
                    let h = fixed::<8>(rest).ok_or(DecodeError::Truncated("IPv6 extension"))?;
                    let len = (usize::from(h[1]) + 1) * 8;
                    next = h[0];
                    rest = rest
                        .get(len..)
                        .ok_or(DecodeError::Truncated("IPv6 extension"))?;
                }
                44 => {
                    let h = fixed::<8>(rest).ok_or(DecodeError::Truncated("IPv6 fragment"))?;
                    let off_m = h.be16::<2>();
                    if off_m & 0xfff9 != 0 {
                        return Err(DecodeError::Fragment);
                    }
                    next = h[0];
                    rest = after::<8>(rest);
                }
                51 => {
                    let h = fixed::<2>(rest).ok_or(DecodeError::Truncated("IPv6 AH"))?;
                    let len = (usize::from(h[1]) + 2) * 4;
                    next = h[0];
                    rest = rest.get(len..).ok_or(DecodeError::Truncated("IPv6 AH"))?;
                }
                _ => {
                    let ip = IpFacts {
                        src: IpAddr::V6(Ipv6Addr::from(src)),
                        dst: IpAddr::V6(Ipv6Addr::from(dst)),
                        ttl,
                        ip_id: None,
                        dont_fragment: false,
                    };
                    return self.transport(ip, next, rest);
                }
            }
        }
        Err(DecodeError::TooDeep)
    }

    fn transport<'a>(&mut self, ip: IpFacts, proto: u8, data: &'a [u8]) -> Decoded<'a> {
        if self.outer_ttl.is_none() {
            self.outer_ttl = Some(ip.ttl);
        }
        match proto {
            6 => self.tcp(ip, data).map(Some),
            4 => {
                self.enter()?;
                self.ipv4(data)
            }
            41 => {
                self.enter()?;
                self.ipv6(data)
            }
            47 => {
                self.enter()?;
                self.gre(data)
            }
            17 => self.udp(data),
            _ => Ok(None),
        }
    }

    fn udp<'a>(&mut self, data: &'a [u8]) -> Decoded<'a> {
        let hdr = fixed::<8>(data).ok_or(DecodeError::Truncated("UDP"))?;
        let (sport, dport) = (hdr.be16::<0>(), hdr.be16::<2>());
        let body = after::<8>(data);
        let on = |port: u16| sport == port || dport == port;
        if on(UDP_VXLAN) || on(UDP_VXLAN_GPE) {
            let v = fixed::<8>(body).ok_or(DecodeError::Truncated("VXLAN"))?;
            let inner = after::<8>(body);
            // VXLAN-GPE (P flag) names the next protocol; plain VXLAN (I flag) carries Ethernet.
            let next = if v[0] & 0x04 != 0 {
                v[3]
            } else if v[0] & 0x08 != 0 {
                3
            } else {
                return Ok(None);
            };
            self.enter()?;
            return match next {
                1 => self.ipv4(inner),
                2 => self.ipv6(inner),
                3 => self.ethernet(inner),
                _ => Ok(None),
            };
        }
        if on(UDP_GENEVE) {
            let g = fixed::<8>(body).ok_or(DecodeError::Truncated("Geneve"))?;
            if g[0] >> 6 != 0 {
                return Ok(None);
            }
            let len = 8 + usize::from(g[0] & 0x3f) * 4;
            let inner = body
                .get(len..)
                .ok_or(DecodeError::Truncated("Geneve options"))?;
            self.enter()?;
            return match g.be16::<2>() {
                ETH_TEB => self.ethernet(inner),
                ETH_IPV4 => self.ipv4(inner),
                ETH_IPV6 => self.ipv6(inner),
                _ => Ok(None),
            };
        }
        Ok(None)
    }

    fn gre<'a>(&mut self, data: &'a [u8]) -> Decoded<'a> {
        let hdr = fixed::<4>(data).ok_or(DecodeError::Truncated("GRE"))?;
        let fl = hdr.be16::<0>();
        if fl & 0x0007 != 0 || fl & 0x4000 != 0 {
            // Version 1 (PPTP) and source-routed GRE are not decapsulated.
            return Ok(None);
        }
        let proto = hdr.be16::<2>();
        let mut len = 4;
        for bit in [0x8000u16, 0x2000, 0x1000] {
            if fl & bit != 0 {
                len += 4;
            }
        }
        let body = data.get(len..).ok_or(DecodeError::Truncated("GRE"))?;
        let seq_present = fl & 0x1000 != 0;
        match proto {
            ETH_IPV4 => self.ipv4(body),
            ETH_IPV6 => self.ipv6(body),
            ETH_TEB => self.ethernet(body),
            // ERSPAN type I has no header and no sequence number; type II has an 8-byte header.
            ETH_ERSPAN2 if !seq_present => self.ethernet(body),
            ETH_ERSPAN2 => {
                let inner = body.get(8..).ok_or(DecodeError::Truncated("ERSPAN II"))?;
                self.ethernet(inner)
            }
            ETH_ERSPAN3 => {
                let h = fixed::<12>(body).ok_or(DecodeError::Truncated("ERSPAN III"))?;
                // The O flag announces an 8-byte platform-specific subheader.
                let len = if h[11] & 0x01 != 0 { 20 } else { 12 };
                let inner = body
                    .get(len..)
                    .ok_or(DecodeError::Truncated("ERSPAN III"))?;
                self.ethernet(inner)
            }
            _ => Ok(None),
        }
    }

    fn tcp<'a>(&mut self, ip: IpFacts, data: &'a [u8]) -> Result<TcpPacket<'a>, DecodeError> {
        let hdr = fixed::<20>(data).ok_or(DecodeError::Truncated("TCP"))?;
        let doff = usize::from(hdr[12] >> 4) * 4;
        if doff < 20 {
            return Err(DecodeError::Malformed("TCP data offset"));
        }
        let options = data
            .get(20..doff)
            .ok_or(DecodeError::Truncated("TCP options"))?;
        Ok(TcpPacket {
            src: ip.src,
            dst: ip.dst,
            ttl: ip.ttl,
            outer_ttl: self.outer_ttl.unwrap_or(ip.ttl),
            ip_id: ip.ip_id,
            dont_fragment: ip.dont_fragment,
            encapsulation: self.depth,
            src_port: hdr.be16::<0>(),
            dst_port: hdr.be16::<2>(),
            seq: hdr.be32::<4>(),
            ack: hdr.be32::<8>(),
            flags: (u16::from(hdr[12] & 0x01) << 8) | u16::from(hdr[13]),
            window: hdr.be16::<14>(),
            options,
            payload: data.get(doff..).unwrap_or_default(),
        })
    }
}

struct IpFacts {
    src: IpAddr,
    dst: IpAddr,
    ttl: u8,
    ip_id: Option<u16>,
    dont_fragment: bool,
}

/// The bytes of `b` after its first `N`: callers have checked `b` holds a header of `N`
/// bytes ([`fixed`]), so this is the payload behind it (empty otherwise, never a panic).
#[inline(always)]
fn after<const N: usize>(b: &[u8]) -> &[u8] {
    b.split_first_chunk::<N>().map_or(&[], |(_, rest)| rest)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Builds an IPv4 header + TCP header around `payload`.
    pub(crate) fn ipv4_tcp(
        src: [u8; 4],
        dst: [u8; 4],
        sport: u16,
        dport: u16,
        fl: u16,
        opts: &[u8],
        payload: &[u8],
    ) -> Vec<u8> {
        let tcp_len = 20 + opts.len();
        let total = 20 + tcp_len + payload.len();
        let mut p = vec![
            0x45,
            0,
            (total >> 8) as u8,
            total as u8,
            0x12,
            0x34,
            0x40,
            0,
            64,
            6,
            0,
            0,
        ];
        p.extend_from_slice(&src);
        p.extend_from_slice(&dst);
        p.extend_from_slice(&sport.to_be_bytes());
        p.extend_from_slice(&dport.to_be_bytes());
        p.extend_from_slice(&1000u32.to_be_bytes());
        p.extend_from_slice(&0u32.to_be_bytes());
        p.push(((tcp_len / 4) as u8) << 4);
        p.push(fl as u8);
        p.extend_from_slice(&[0xff, 0xff, 0, 0, 0, 0]);
        p.extend_from_slice(opts);
        p.extend_from_slice(payload);
        p
    }

    fn eth(ethertype: u16, inner: &[u8]) -> Vec<u8> {
        let mut f = vec![0u8; 12];
        f.extend_from_slice(&ethertype.to_be_bytes());
        f.extend_from_slice(inner);
        f
    }

    #[test]
    fn ethernet_vlan_ipv4_tcp() {
        let ip = ipv4_tcp(
            [10, 0, 0, 1],
            [10, 0, 0, 2],
            40000,
            443,
            flags::SYN,
            &[2, 4, 5, 0xb4],
            b"",
        );
        let mut tagged = vec![0x00, 0x64];
        tagged.extend_from_slice(&0x0800u16.to_be_bytes());
        tagged.extend_from_slice(&ip);
        let frame = eth(ETH_VLAN, &tagged);
        let p = decode(LinkType::Ethernet, &frame).unwrap().unwrap();
        assert_eq!(p.src, "10.0.0.1".parse::<IpAddr>().unwrap());
        assert_eq!((p.src_port, p.dst_port), (40000, 443));
        assert!(p.is_syn());
        assert_eq!(p.options, &[2, 4, 5, 0xb4]);
        assert_eq!(p.ip_id, Some(0x1234));
        assert_eq!(p.ttl, 64);
    }

    #[test]
    fn cooked_null_and_raw_links() {
        let ip = ipv4_tcp([1, 1, 1, 1], [2, 2, 2, 2], 1, 2, flags::ACK, &[], b"hi");
        let mut sll = vec![0u8; 14];
        sll.extend_from_slice(&0x0800u16.to_be_bytes());
        sll.extend_from_slice(&ip);
        assert_eq!(
            decode(LinkType::LinuxSll, &sll).unwrap().unwrap().payload,
            b"hi"
        );
        let mut sll2 = 0x0800u16.to_be_bytes().to_vec();
        sll2.extend_from_slice(&[0u8; 18]);
        sll2.extend_from_slice(&ip);
        assert_eq!(
            decode(LinkType::LinuxSll2, &sll2).unwrap().unwrap().payload,
            b"hi"
        );
        let mut null = 2u32.to_le_bytes().to_vec();
        null.extend_from_slice(&ip);
        assert_eq!(
            decode(LinkType::Null, &null).unwrap().unwrap().payload,
            b"hi"
        );
        let mut lo = 2u32.to_be_bytes().to_vec();
        lo.extend_from_slice(&ip);
        assert_eq!(decode(LinkType::Loop, &lo).unwrap().unwrap().payload, b"hi");
        assert_eq!(decode(LinkType::Raw, &ip).unwrap().unwrap().payload, b"hi");
    }

    #[test]
    fn ipv6_with_extension_headers() {
        let mut p = vec![0x60, 0, 0, 0];
        let tcp = &ipv4_tcp([0; 4], [0; 4], 5555, 80, flags::SYN, &[], b"")[20..];
        let ext = [6u8, 0, 0, 0, 0, 0, 0, 0]; // hop-by-hop, next = TCP
        let plen = (ext.len() + tcp.len()) as u16;
        p.extend_from_slice(&plen.to_be_bytes());
        p.push(0); // next header: hop-by-hop
        p.push(57);
        p.extend_from_slice(&[0u8; 15]);
        p.push(1); // ::1
        p.extend_from_slice(&[0u8; 15]);
        p.push(1);
        p.extend_from_slice(&ext);
        p.extend_from_slice(tcp);
        let d = decode(LinkType::Ipv6, &p).unwrap().unwrap();
        assert_eq!(d.src, "::1".parse::<IpAddr>().unwrap());
        assert_eq!(d.ttl, 57);
        assert_eq!(d.ip_id, None);
        assert_eq!(d.dst_port, 80);
    }

    #[test]
    fn gre_and_vxlan_keep_outer_ttl() {
        let inner = ipv4_tcp(
            [192, 168, 0, 1],
            [192, 168, 0, 2],
            1234,
            443,
            flags::SYN,
            &[],
            b"",
        );
        let mut gre = vec![0, 0, 0x08, 0x00];
        gre.extend_from_slice(&inner);
        let mut outer = vec![
            0x45, 0, 0, 0, 0, 0, 0, 0, 255, 47, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2,
        ];
        let total = (outer.len() + gre.len()) as u16;
        outer[2..4].copy_from_slice(&total.to_be_bytes());
        outer.extend_from_slice(&gre);
        let d = decode(LinkType::Raw, &outer).unwrap().unwrap();
        assert_eq!((d.outer_ttl, d.ttl, d.encapsulation), (255, 64, 1));
        assert_eq!(d.src, "192.168.0.1".parse::<IpAddr>().unwrap());

        // VXLAN: UDP/4789 + 8-byte header + Ethernet.
        let mut vx = vec![0, 1, 0x12, 0xb5, 0, 0, 0, 0, 0x08, 0, 0, 0, 0, 0, 1, 0];
        vx.extend_from_slice(&eth(ETH_IPV4, &inner));
        let mut outer = vec![
            0x45, 0, 0, 0, 0, 0, 0, 0, 200, 17, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2,
        ];
        let total = (outer.len() + vx.len()) as u16;
        outer[2..4].copy_from_slice(&total.to_be_bytes());
        outer.extend_from_slice(&vx);
        let d = decode(LinkType::Raw, &outer).unwrap().unwrap();
        assert_eq!((d.outer_ttl, d.ttl, d.dst_port), (200, 64, 443));
    }

    #[test]
    fn fragments_and_garbage_are_errors_not_panics() {
        let mut ip = ipv4_tcp([1, 1, 1, 1], [2, 2, 2, 2], 1, 2, 0, &[], b"x");
        ip[6] = 0x20; // more fragments
        assert_eq!(decode(LinkType::Raw, &ip), Err(DecodeError::Fragment));
        assert!(decode(LinkType::Raw, &[0x45]).is_err());
        assert!(decode(LinkType::Ethernet, &[0; 5]).is_err());
        let mut bad = ipv4_tcp([1, 1, 1, 1], [2, 2, 2, 2], 1, 2, 0, &[], b"");
        bad[32] = 0x10; // TCP data offset 4 bytes
        assert_eq!(
            decode(LinkType::Raw, &bad),
            Err(DecodeError::Malformed("TCP data offset"))
        );
    }

    #[test]
    fn nesting_is_bounded() {
        // IP-in-IP nested beyond the limit.
        let mut pkt = ipv4_tcp([1, 1, 1, 1], [2, 2, 2, 2], 1, 2, 0, &[], b"");
        for _ in 0..10 {
            let mut outer = vec![
                0x45, 0, 0, 0, 0, 0, 0, 0, 64, 4, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2,
            ];
            let total = (outer.len() + pkt.len()) as u16;
            outer[2..4].copy_from_slice(&total.to_be_bytes());
            outer.extend_from_slice(&pkt);
            pkt = outer;
        }
        assert_eq!(decode(LinkType::Raw, &pkt), Err(DecodeError::TooDeep));
    }
}
