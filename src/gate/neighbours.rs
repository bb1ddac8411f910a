//! The hosts that have spoken ARP with us lately: the gate's tell between a client and a
//! spoofed source.
//!
//! A client on the segment asks for our Ethernet address (or answers our question for its
//! own) before its SYN; smoltcp learns its address from that, and can send the SYN-ACK at
//! once. A SYN from a forged source comes with no ARP at all, and its SYN-ACK can never leave.
//! (The session service also notes every peer that finishes a handshake: it answers.)
//! When the SYN backlog is full, a SYN from a neighbour takes the place of one from a
//! stranger, and slots take neighbours' SYNs first: under a flood of forged SYNs, the clients
//! that can finish a handshake still get their turn.

use smoltcp::time::{Duration, Instant};
use smoltcp::wire::{ArpPacket, ArpRepr, EthernetFrame, EthernetProtocol, Ipv4Address};

/// Hosts remembered (as many as smoltcp's neighbour cache holds in this build).
pub const NEIGHBOURS: usize = 64;
/// How long a host stays a neighbour after its last ARP packet (smoltcp's neighbour cache
/// keeps an entry as long).
pub const NEIGHBOUR_LIFETIME: Duration = Duration::from_secs(60);

/// The table; see the module documentation.
#[derive(Debug, Clone)]
pub struct Neighbours {
    hosts: [(Ipv4Address, Instant); NEIGHBOURS],
}

impl Neighbours {
    /// Nobody yet.
    pub const fn new() -> Neighbours {
        Neighbours {
            hosts: [(Ipv4Address::new(0, 0, 0, 0), Instant::ZERO); NEIGHBOURS],
        }
    }

    /// Notes the sender of `frame` if it is an ARP packet (request or reply); returns whether
    /// it was one.
    pub fn note_frame(&mut self, frame: &[u8], now: Instant) -> bool {
        let Ok(ethernet) = EthernetFrame::new_checked(frame) else {
            return false;
        };
        if ethernet.ethertype() != EthernetProtocol::Arp {
            return false;
        }
        if let Ok(packet) = ArpPacket::new_checked(ethernet.payload())
            && let Ok(ArpRepr::EthernetIpv4 {
                source_protocol_addr,
                ..
            }) = ArpRepr::parse(&packet)
        {
            self.note(source_protocol_addr, now);
        }
        true
    }

    /// Notes that `host` spoke ARP at `now`.
    pub fn note(&mut self, host: Ipv4Address, now: Instant) {
        if host.is_unspecified() {
            return;
        }
        let known = self.hosts.iter().position(|(h, _)| *h == host);
        // Else the entry heard from longest ago (or never) makes room.
        let slot = match known {
            Some(i) => self.hosts.get_mut(i),
            None => self.hosts.iter_mut().min_by_key(|(_, at)| *at),
        };
        if let Some(slot) = slot {
            *slot = (host, now);
        }
    }

    /// Whether `host` spoke ARP within [`NEIGHBOUR_LIFETIME`] before `now`.
    pub fn knows(&self, host: Ipv4Address, now: Instant) -> bool {
        !host.is_unspecified()
            && self
                .hosts
                .iter()
                .any(|(h, at)| *h == host && now < *at + NEIGHBOUR_LIFETIME)
    }
}

impl Default for Neighbours {
    fn default() -> Self {
        Neighbours::new()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use smoltcp::wire::{ArpOperation, EthernetAddress, EthernetRepr};

    pub(crate) fn arp_request(from: Ipv4Address) -> std::vec::Vec<u8> {
        let arp = ArpRepr::EthernetIpv4 {
            operation: ArpOperation::Request,
            source_hardware_addr: EthernetAddress([2, 0, 0, 0, 0, 0x64]),
            source_protocol_addr: from,
            target_hardware_addr: EthernetAddress([0; 6]),
            target_protocol_addr: Ipv4Address::new(192, 168, 69, 1),
        };
        let mut bytes = std::vec![0; 14 + arp.buffer_len()];
        let mut frame = EthernetFrame::new_unchecked(&mut bytes[..]);
        EthernetRepr {
            src_addr: EthernetAddress([2, 0, 0, 0, 0, 0x64]),
            dst_addr: EthernetAddress::BROADCAST,
            ethertype: EthernetProtocol::Arp,
        }
        .emit(&mut frame);
        arp.emit(&mut ArpPacket::new_unchecked(frame.payload_mut()));
        bytes
    }

    const HOST: Ipv4Address = Ipv4Address::new(192, 168, 69, 100);

    #[test]
    fn an_arp_sender_is_a_neighbour_for_a_minute() {
        let mut neighbours = Neighbours::new();
        let t = Instant::from_secs(5);
        assert!(!neighbours.knows(HOST, t));
        neighbours.note_frame(&arp_request(HOST), t);
        assert!(neighbours.knows(HOST, t));
        assert!(neighbours.knows(HOST, t + NEIGHBOUR_LIFETIME - Duration::from_millis(1)));
        assert!(!neighbours.knows(HOST, t + NEIGHBOUR_LIFETIME));
        assert!(!neighbours.knows(Ipv4Address::new(192, 168, 69, 101), t));
        // Anything but ARP, or a truncated ARP packet, teaches nothing.
        let mut short = arp_request(Ipv4Address::new(192, 168, 69, 102));
        short.truncate(20);
        neighbours.note_frame(&short, t);
        assert!(!neighbours.knows(Ipv4Address::new(192, 168, 69, 102), t));
        assert!(!neighbours.knows(Ipv4Address::UNSPECIFIED, t));
    }

    #[test]
    fn a_full_table_forgets_the_host_heard_from_longest_ago() {
        let mut neighbours = Neighbours::new();
        for n in 0..NEIGHBOURS as u8 {
            neighbours.note(
                Ipv4Address::new(10, 0, 0, n),
                Instant::from_millis(i64::from(n) + 1),
            );
        }
        let late = Instant::from_millis(1_000);
        neighbours.note(HOST, late);
        assert!(neighbours.knows(HOST, late));
        assert!(
            !neighbours.knows(Ipv4Address::new(10, 0, 0, 0), late),
            "the oldest went"
        );
        assert!(neighbours.knows(Ipv4Address::new(10, 0, 0, 1), late));
    }
}
