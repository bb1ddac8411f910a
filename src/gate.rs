//! The SYN gate: a [`Device`] wrapper in front of the interface that keeps smoltcp from
//! answering a SYN to the session port with a reset.
//!
//! smoltcp has no listen backlog: a SYN that finds no listening socket gets RST|ACK. The gate
//! sees every received frame before the interface does and hands smoltcp an empty frame
//! (which it counts as processed and otherwise ignores) instead of:
//!
//! * a bare SYN to the session port while no slot listens (the client retransmits it and gets
//!   in once a slot is free again), and
//! * a retransmitted SYN from a peer that a slot already holds half-open (SYN-RECEIVED):
//!   a listener earlier in the socket set would otherwise take it, and two slots would own one
//!   connection.
//!
//! It also looks at every frame the interface sends and counts resets leaving the session
//! port, so "no reset from 139" is a counter, not a belief.
//!
//! The gate decides from a [`GateView`] the session service refreshes before every frame;
//! the node therefore feeds the interface one frame at a time.

use core::cell::Cell;

use smoltcp::phy::{self, Device, DeviceCapabilities};
use smoltcp::time::Instant;
use smoltcp::wire::{
    EthernetFrame, EthernetProtocol, IpProtocol, Ipv4Address, Ipv4Packet, TcpPacket,
};

/// Which SYNs the gate lets through; written by the session service between frames.
pub trait GateView {
    /// Whether a slot listens, i.e. a new SYN to the session port would be taken.
    fn accepts_syn(&self) -> bool;
    /// Whether a slot holds a half-open connection from `address`:`port`.
    fn is_half_open(&self, address: Ipv4Address, port: u16) -> bool;
}

/// What the gate counted.
#[derive(Debug, Default)]
pub struct GateCounters {
    /// SYNs held back (dropped unanswered) because no slot listened.
    pub syns_held: Cell<u32>,
    /// Retransmitted SYNs of half-open connections swallowed.
    pub half_open_syns_swallowed: Cell<u32>,
    /// TCP resets sent from the session port.
    pub resets_sent: Cell<u32>,
}

impl GateCounters {
    /// All zero.
    pub const fn new() -> GateCounters {
        GateCounters {
            syns_held: Cell::new(0),
            half_open_syns_swallowed: Cell::new(0),
            resets_sent: Cell::new(0),
        }
    }
}

fn bump(counter: &Cell<u32>) {
    counter.set(counter.get().wrapping_add(1));
}

/// `device` behind the gate for session `port`.
pub struct Gated<'g, D: ?Sized, V: ?Sized> {
    device: &'g mut D,
    view: &'g V,
    counters: &'g GateCounters,
    port: u16,
}

impl<'g, D: Device + ?Sized, V: GateView + ?Sized> Gated<'g, D, V> {
    /// Puts the gate in front of `device`.
    pub fn new(
        device: &'g mut D,
        view: &'g V,
        counters: &'g GateCounters,
        port: u16,
    ) -> Gated<'g, D, V> {
        Gated {
            device,
            view,
            counters,
            port,
        }
    }
}

/// A bare SYN (no ACK, no RST) to `port`: its source address and port.
fn bare_syn_to(frame: &[u8], port: u16) -> Option<(Ipv4Address, u16)> {
    let ethernet = EthernetFrame::new_checked(frame).ok()?;
    if ethernet.ethertype() != EthernetProtocol::Ipv4 {
        return None;
    }
    let ip = Ipv4Packet::new_checked(ethernet.payload()).ok()?;
    if ip.next_header() != IpProtocol::Tcp || ip.more_frags() || ip.frag_offset() != 0 {
        return None;
    }
    let tcp = TcpPacket::new_checked(ip.payload()).ok()?;
    let bare_syn = tcp.syn() && !tcp.ack() && !tcp.rst();
    (bare_syn && tcp.dst_port() == port).then(|| (ip.src_addr(), tcp.src_port()))
}

/// Whether `frame` is a TCP reset from `port`.
fn is_reset_from(frame: &[u8], port: u16) -> bool {
    let Ok(ethernet) = EthernetFrame::new_checked(frame) else {
        return false;
    };
    if ethernet.ethertype() != EthernetProtocol::Ipv4 {
        return false;
    }
    let Ok(ip) = Ipv4Packet::new_checked(ethernet.payload()) else {
        return false;
    };
    if ip.next_header() != IpProtocol::Tcp {
        return false;
    }
    TcpPacket::new_checked(ip.payload()).is_ok_and(|tcp| tcp.rst() && tcp.src_port() == port)
}

/// A received frame, judged by the gate when consumed.
pub struct RxToken<'g, T, V: ?Sized> {
    inner: T,
    view: &'g V,
    counters: &'g GateCounters,
    port: u16,
}

impl<T: phy::RxToken, V: GateView + ?Sized> phy::RxToken for RxToken<'_, T, V> {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        let RxToken {
            inner,
            view,
            counters,
            port,
        } = self;
        inner.consume(|frame| match bare_syn_to(frame, port) {
            Some((address, source_port)) if view.is_half_open(address, source_port) => {
                bump(&counters.half_open_syns_swallowed);
                net_trace!(
                    "gate: retransmitted SYN of half-open {address}:{source_port} swallowed"
                );
                f(&[])
            }
            Some((address, source_port)) if !view.accepts_syn() => {
                bump(&counters.syns_held);
                net_trace!("gate: no slot free, SYN from {address}:{source_port} held back");
                f(&[])
            }
            _ => f(frame),
        })
    }

    fn meta(&self) -> phy::PacketMeta {
        self.inner.meta()
    }
}

/// Room for a frame to send, checked for resets from the session port.
pub struct TxToken<'g, T> {
    inner: T,
    counters: &'g GateCounters,
    port: u16,
}

impl<T: phy::TxToken> phy::TxToken for TxToken<'_, T> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let TxToken {
            inner,
            counters,
            port,
        } = self;
        inner.consume(len, |frame| {
            let result = f(frame);
            if is_reset_from(frame, port) {
                bump(&counters.resets_sent);
            }
            result
        })
    }

    fn set_meta(&mut self, meta: phy::PacketMeta) {
        self.inner.set_meta(meta)
    }
}

impl<D: Device + ?Sized, V: GateView + ?Sized> Device for Gated<'_, D, V> {
    type RxToken<'a>
        = RxToken<'a, D::RxToken<'a>, V>
    where
        Self: 'a;
    type TxToken<'a>
        = TxToken<'a, D::TxToken<'a>>
    where
        Self: 'a;

    fn receive(&mut self, timestamp: Instant) -> Option<(Self::RxToken<'_>, Self::TxToken<'_>)> {
        let (rx, tx) = self.device.receive(timestamp)?;
        Some((
            RxToken {
                inner: rx,
                view: self.view,
                counters: self.counters,
                port: self.port,
            },
            TxToken {
                inner: tx,
                counters: self.counters,
                port: self.port,
            },
        ))
    }

    fn transmit(&mut self, timestamp: Instant) -> Option<Self::TxToken<'_>> {
        Some(TxToken {
            inner: self.device.transmit(timestamp)?,
            counters: self.counters,
            port: self.port,
        })
    }

    fn capabilities(&self) -> DeviceCapabilities {
        self.device.capabilities()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use smoltcp::phy::{Loopback, Medium, RxToken as _, TxToken as _};
    use smoltcp::wire::{
        EthernetAddress, EthernetRepr, IpAddress, Ipv4Repr, TcpControl, TcpRepr, TcpSeqNumber,
    };

    struct View {
        listening: bool,
        half_open: Option<(Ipv4Address, u16)>,
    }

    impl GateView for View {
        fn accepts_syn(&self) -> bool {
            self.listening
        }
        fn is_half_open(&self, address: Ipv4Address, port: u16) -> bool {
            self.half_open == Some((address, port))
        }
    }

    const CLIENT: Ipv4Address = Ipv4Address::new(192, 168, 69, 100);
    const SERVER: Ipv4Address = Ipv4Address::new(192, 168, 69, 1);

    fn segment(src: u16, dst: u16, control: TcpControl, ack: bool) -> std::vec::Vec<u8> {
        let tcp = TcpRepr {
            src_port: src,
            dst_port: dst,
            control,
            seq_number: TcpSeqNumber(1000),
            ack_number: ack.then_some(TcpSeqNumber(2000)),
            window_len: 1024,
            window_scale: None,
            max_seg_size: None,
            sack_permitted: false,
            sack_ranges: [None; 3],
            timestamp: None,
            payload: &[],
        };
        let ip = Ipv4Repr {
            src_addr: CLIENT,
            dst_addr: SERVER,
            next_header: IpProtocol::Tcp,
            payload_len: tcp.buffer_len(),
            hop_limit: 64,
        };
        let eth = EthernetRepr {
            src_addr: EthernetAddress([2, 0, 0, 0, 0, 0x64]),
            dst_addr: EthernetAddress([2, 0, 0, 0, 0, 1]),
            ethertype: EthernetProtocol::Ipv4,
        };
        let mut bytes = std::vec![0; 14 + 20 + tcp.buffer_len()];
        let mut frame = EthernetFrame::new_unchecked(&mut bytes[..]);
        eth.emit(&mut frame);
        let mut packet = Ipv4Packet::new_unchecked(frame.payload_mut());
        ip.emit(&mut packet, &Default::default());
        tcp.emit(
            &mut TcpPacket::new_unchecked(packet.payload_mut()),
            &IpAddress::Ipv4(CLIENT),
            &IpAddress::Ipv4(SERVER),
            &Default::default(),
        );
        bytes
    }

    /// What the interface would see of `frame` through the gate.
    fn through(frame: &[u8], view: &View, counters: &GateCounters) -> std::vec::Vec<u8> {
        let mut device = Loopback::new(Medium::Ethernet);
        device
            .transmit(Instant::ZERO)
            .unwrap()
            .consume(frame.len(), |b| b.copy_from_slice(frame));
        let mut gated = Gated::new(&mut device, view, counters, 139);
        let (rx, _) = gated.receive(Instant::ZERO).unwrap();
        rx.consume(|b| b.to_vec())
    }

    #[test]
    fn a_syn_passes_while_a_slot_listens_and_is_held_back_otherwise() {
        let counters = GateCounters::new();
        let syn = segment(40000, 139, TcpControl::Syn, false);
        let open = View {
            listening: true,
            half_open: None,
        };
        assert_eq!(through(&syn, &open, &counters), syn);
        let full = View {
            listening: false,
            half_open: None,
        };
        assert!(through(&syn, &full, &counters).is_empty());
        assert_eq!(counters.syns_held.get(), 1);
    }

    #[test]
    fn only_bare_syns_to_the_session_port_are_judged() {
        let counters = GateCounters::new();
        let full = View {
            listening: false,
            half_open: None,
        };
        for frame in [
            segment(40000, 445, TcpControl::Syn, false),
            segment(40000, 139, TcpControl::Syn, true),
            segment(40000, 139, TcpControl::None, true),
            segment(40000, 139, TcpControl::Fin, true),
            segment(40000, 139, TcpControl::Rst, false),
            std::vec![0xff; 10],
            std::vec![],
        ] {
            assert_eq!(through(&frame, &full, &counters), frame);
        }
        assert_eq!(counters.syns_held.get(), 0);
    }

    #[test]
    fn a_retransmitted_syn_of_a_half_open_connection_is_swallowed() {
        let counters = GateCounters::new();
        let view = View {
            listening: true,
            half_open: Some((CLIENT, 40000)),
        };
        let retransmitted = segment(40000, 139, TcpControl::Syn, false);
        assert!(through(&retransmitted, &view, &counters).is_empty());
        let another = segment(40001, 139, TcpControl::Syn, false);
        assert_eq!(through(&another, &view, &counters), another);
        assert_eq!(counters.half_open_syns_swallowed.get(), 1);
        assert_eq!(counters.syns_held.get(), 0);
    }

    #[test]
    fn resets_sent_from_the_session_port_are_counted() {
        let counters = GateCounters::new();
        let view = View {
            listening: true,
            half_open: None,
        };
        let mut device = Loopback::new(Medium::Ethernet);
        let mut gated = Gated::new(&mut device, &view, &counters, 139);
        for frame in [
            segment(139, 40000, TcpControl::Rst, true),
            segment(139, 40000, TcpControl::Fin, true),
            segment(445, 40000, TcpControl::Rst, true),
        ] {
            gated
                .transmit(Instant::ZERO)
                .unwrap()
                .consume(frame.len(), |b| b.copy_from_slice(&frame));
        }
        assert_eq!(counters.resets_sent.get(), 1);
    }
}
