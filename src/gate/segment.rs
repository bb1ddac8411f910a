//! What the gate reads of a frame: one TCP segment over IPv4 over Ethernet, parsed once.

use smoltcp::phy::ChecksumCapabilities;
use smoltcp::wire::{
    ETHERNET_HEADER_LEN, EthernetAddress, EthernetFrame, EthernetProtocol, EthernetRepr,
    IPV4_HEADER_LEN, IpAddress, IpProtocol, Ipv4Address, Ipv4Packet, Ipv4Repr, TCP_HEADER_LEN,
    TcpControl, TcpPacket, TcpRepr, TcpSeqNumber,
};

/// The fields of a TCP segment the gate judges by. Built by [`Segment::parse`], which checks
/// every length first (a frame that is not a whole, unfragmented IPv4 TCP segment is `None`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    /// Ethernet source (the peer's interface, for a frame we receive).
    pub src_mac: EthernetAddress,
    /// Ethernet destination.
    pub dst_mac: EthernetAddress,
    /// IPv4 source.
    pub src_addr: Ipv4Address,
    /// IPv4 destination.
    pub dst_addr: Ipv4Address,
    /// TCP source port.
    pub src_port: u16,
    /// TCP destination port.
    pub dst_port: u16,
    /// SYN flag.
    pub syn: bool,
    /// FIN flag.
    pub fin: bool,
    /// RST flag.
    pub rst: bool,
    /// The acknowledgement number, when the ACK flag is set.
    pub ack_number: Option<TcpSeqNumber>,
    /// The sequence number.
    pub seq_number: TcpSeqNumber,
    /// Payload bytes.
    pub payload_len: usize,
}

impl Segment {
    /// The segment `frame` carries, if it is a TCP segment in an unfragmented IPv4 packet.
    pub fn parse(frame: &[u8]) -> Option<Segment> {
        let ethernet = EthernetFrame::new_checked(frame).ok()?;
        if ethernet.ethertype() != EthernetProtocol::Ipv4 {
            return None;
        }
        let ip = Ipv4Packet::new_checked(ethernet.payload()).ok()?;
        if ip.next_header() != IpProtocol::Tcp || ip.more_frags() || ip.frag_offset() != 0 {
            return None;
        }
        let tcp = TcpPacket::new_checked(ip.payload()).ok()?;
        Some(Segment {
            src_mac: ethernet.src_addr(),
            dst_mac: ethernet.dst_addr(),
            src_addr: ip.src_addr(),
            dst_addr: ip.dst_addr(),
            src_port: tcp.src_port(),
            dst_port: tcp.dst_port(),
            syn: tcp.syn(),
            fin: tcp.fin(),
            rst: tcp.rst(),
            ack_number: tcp.ack().then(|| tcp.ack_number()),
            seq_number: tcp.seq_number(),
            payload_len: tcp.payload().len(),
        })
    }

    /// The sender's address and port.
    pub fn source(&self) -> (Ipv4Address, u16) {
        (self.src_addr, self.src_port)
    }

    /// A bare SYN: SYN without ACK or RST (a connection attempt).
    pub fn is_bare_syn(&self) -> bool {
        self.syn && self.ack_number.is_none() && !self.rst
    }

    /// The acknowledgement TIME-WAIT sends for this segment, if it calls for one: a segment
    /// with a FIN or data, which acknowledged our FIN (its ACK number is where our sequence
    /// stands). Everything it carries is acknowledged (a connection that has ended takes no
    /// more data; acknowledging it lets the peer finish its close).
    pub fn time_wait_ack(&self) -> Option<AckReply> {
        let our_seq = self.ack_number?;
        if self.syn || self.rst || (!self.fin && self.payload_len == 0) {
            return None;
        }
        Some(AckReply {
            our_mac: self.dst_mac,
            peer_mac: self.src_mac,
            our_addr: self.dst_addr,
            peer_addr: self.src_addr,
            our_port: self.dst_port,
            peer_port: self.src_port,
            seq_number: our_seq,
            ack_number: self.seq_number + self.payload_len + usize::from(self.fin),
        })
    }
}

/// A bare ACK the gate sends on its own, answering a segment of a connection that has ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AckReply {
    our_mac: EthernetAddress,
    peer_mac: EthernetAddress,
    our_addr: Ipv4Address,
    peer_addr: Ipv4Address,
    our_port: u16,
    peer_port: u16,
    seq_number: TcpSeqNumber,
    ack_number: TcpSeqNumber,
}

/// Receive window the gate's ACKs advertise (nothing more is taken; any value will do).
const REPLY_WINDOW: u16 = 1024;

impl AckReply {
    fn tcp(&self) -> TcpRepr<'static> {
        TcpRepr {
            src_port: self.our_port,
            dst_port: self.peer_port,
            control: TcpControl::None,
            seq_number: self.seq_number,
            ack_number: Some(self.ack_number),
            window_len: REPLY_WINDOW,
            window_scale: None,
            max_seg_size: None,
            sack_permitted: false,
            sack_ranges: [None; 3],
            timestamp: None,
            payload: &[],
        }
    }

    /// Bytes of the whole frame (a bare ACK carries no TCP options: its TCP header is the
    /// fixed one).
    pub fn buffer_len(&self) -> usize {
        ETHERNET_HEADER_LEN + IPV4_HEADER_LEN + TCP_HEADER_LEN
    }

    /// Writes the frame into `buffer` ([`AckReply::buffer_len`] bytes; a longer buffer is
    /// written at its start, a shorter one is left alone).
    pub fn emit(&self, buffer: &mut [u8]) {
        let Some(buffer) = buffer.get_mut(..self.buffer_len()) else {
            return;
        };
        let tcp = self.tcp();
        let ip = Ipv4Repr {
            src_addr: self.our_addr,
            dst_addr: self.peer_addr,
            next_header: IpProtocol::Tcp,
            payload_len: TCP_HEADER_LEN,
            hop_limit: 64,
        };
        let ethernet = EthernetRepr {
            src_addr: self.our_mac,
            dst_addr: self.peer_mac,
            ethertype: EthernetProtocol::Ipv4,
        };
        let checksums = ChecksumCapabilities::default();
        let mut frame = EthernetFrame::new_unchecked(buffer);
        ethernet.emit(&mut frame);
        let mut packet = Ipv4Packet::new_unchecked(frame.payload_mut());
        ip.emit(&mut packet, &checksums);
        tcp.emit(
            &mut TcpPacket::new_unchecked(packet.payload_mut()),
            &IpAddress::Ipv4(self.our_addr),
            &IpAddress::Ipv4(self.peer_addr),
            &checksums,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ack_reply_is_the_frame_its_reprs_make() {
        let reply = AckReply {
            our_mac: EthernetAddress([2, 0, 0, 0, 0, 1]),
            peer_mac: EthernetAddress([2, 0, 0, 0, 0, 2]),
            our_addr: Ipv4Address::new(192, 168, 69, 1),
            peer_addr: Ipv4Address::new(192, 168, 69, 2),
            our_port: 139,
            peer_port: 40000,
            seq_number: TcpSeqNumber(7),
            ack_number: TcpSeqNumber(9),
        };
        let len = EthernetFrame::<&[u8]>::header_len() + IPV4_HEADER_LEN + reply.tcp().buffer_len();
        assert_eq!(reply.buffer_len(), len);
        let mut frame = std::vec![0; len];
        reply.emit(&mut frame);
        let segment = Segment::parse(&frame).expect("a whole TCP segment");
        assert_eq!(segment.source(), (reply.our_addr, 139));
        assert_eq!(segment.ack_number, Some(TcpSeqNumber(9)));
        assert_eq!(segment.payload_len, 0);
    }
}
