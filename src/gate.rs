//! The SYN gate: a [`Device`] wrapper in front of the interface that keeps smoltcp from
//! answering a SYN to the session port with a reset, and gives it the listen backlog it lacks.
//!
//! smoltcp has no listen backlog: a SYN that finds no listening socket gets RST|ACK. The gate
//! sees every received frame before the interface does and hands smoltcp an empty frame
//! (which it counts as processed and otherwise ignores) instead of:
//!
//! * a bare SYN to the session port while no slot listens: the frame is kept in a small
//!   [`SynBacklog`] (first come, first served; a retransmission replaces its earlier copy)
//!   and handed to the interface the moment a slot listens again, so the client gets its
//!   SYN-ACK then instead of after its next retransmission (1 s, 3 s, 7 s ... later). When the
//!   backlog is full the SYN is dropped, and the client's retransmission tries again;
//! * a SYN from a peer a slot already holds (half-open, or connected and not yet closing): a
//!   listener earlier in the socket set would otherwise take it, and two slots would own one
//!   connection.
//!
//! It also looks at every frame the interface sends and counts resets leaving the session
//! port, so "no reset from 139" is a counter, not a belief.
//!
//! The gate decides from a [`GateView`] the session service refreshes before every frame;
//! the node therefore feeds the interface one frame at a time.

use core::cell::Cell;

use smoltcp::phy::{self, Device, DeviceCapabilities};
use smoltcp::time::{Duration, Instant};
use smoltcp::wire::{
    EthernetFrame, EthernetProtocol, IpProtocol, Ipv4Address, Ipv4Packet, TcpPacket,
};

/// SYNs the backlog keeps.
pub const SYN_BACKLOG: usize = 64;
/// Largest SYN frame kept: Ethernet header, and IPv4 and TCP headers with all options.
pub const MAX_SYN_FRAME: usize = 14 + 60 + 60;
/// How long a kept SYN stays valid (a client retransmits within this, refreshing it).
pub const SYN_HOLD: Duration = Duration::from_secs(3);

/// Which SYNs the gate lets through; written by the session service between frames.
pub trait GateView {
    /// Whether a slot listens, i.e. a new SYN to the session port would be taken.
    fn accepts_syn(&self) -> bool;
    /// Whether a slot already holds a connection from `address`:`port` (half-open, or
    /// connected and not closing).
    fn holds(&self, address: Ipv4Address, port: u16) -> bool;
}

/// What the gate counted.
#[derive(Debug, Default)]
pub struct GateCounters {
    /// SYNs that found no listening slot (kept in the backlog, or dropped when it was full).
    pub syns_held: Cell<u32>,
    /// Of those, SYNs dropped: backlog full, frame too large, or kept past [`SYN_HOLD`].
    pub syns_dropped: Cell<u32>,
    /// Kept SYNs handed to the interface once a slot listened.
    pub syns_replayed: Cell<u32>,
    /// SYNs from peers a slot already holds (retransmissions), swallowed.
    pub duplicate_syns_swallowed: Cell<u32>,
    /// TCP resets sent from the session port.
    pub resets_sent: Cell<u32>,
}

impl GateCounters {
    /// All zero.
    pub const fn new() -> GateCounters {
        GateCounters {
            syns_held: Cell::new(0),
            syns_dropped: Cell::new(0),
            syns_replayed: Cell::new(0),
            duplicate_syns_swallowed: Cell::new(0),
            resets_sent: Cell::new(0),
        }
    }
}

fn bump(counter: &Cell<u32>) {
    counter.set(counter.get().wrapping_add(1));
}

/// A SYN kept for later.
#[derive(Debug, Clone, Copy)]
pub struct HeldSyn {
    frame: [u8; MAX_SYN_FRAME],
    len: usize,
    source: (Ipv4Address, u16),
    at: Instant,
}

/// SYNs to the session port that found no listening slot, oldest first.
#[derive(Debug)]
pub struct SynBacklog {
    /// A ring; entries forgotten in the middle stay as tombstones (`len == 0`) until they
    /// reach the front.
    held: heapless::Deque<HeldSyn, SYN_BACKLOG>,
}

impl SynBacklog {
    /// Empty.
    pub const fn new() -> SynBacklog {
        SynBacklog {
            held: heapless::Deque::new(),
        }
    }

    /// SYNs kept now.
    pub fn len(&self) -> usize {
        self.held.iter().filter(|h| h.len > 0).count()
    }

    /// Whether nothing is kept.
    pub fn is_empty(&self) -> bool {
        self.held.iter().all(|h| h.len == 0)
    }

    /// Keeps `frame`, a SYN from `source`; a retransmission replaces the earlier copy in its
    /// place in the queue. `false`: not kept (full, or too large).
    fn hold(&mut self, frame: &[u8], source: (Ipv4Address, u16), now: Instant) -> bool {
        if frame.len() > MAX_SYN_FRAME {
            return false;
        }
        let mut syn = HeldSyn {
            frame: [0; MAX_SYN_FRAME],
            len: frame.len(),
            source,
            at: now,
        };
        syn.frame[..frame.len()].copy_from_slice(frame);
        match self
            .held
            .iter_mut()
            .find(|h| h.len > 0 && h.source == source)
        {
            Some(earlier) => {
                *earlier = syn;
                true
            }
            None => {
                // Tombstones at the front make room.
                while self.held.front().is_some_and(|h| h.len == 0) {
                    self.held.pop_front();
                }
                self.held.push_back(syn).is_ok()
            }
        }
    }

    /// Drops any copy from `source` (its SYN got through live).
    fn forget(&mut self, source: (Ipv4Address, u16)) {
        for held in self.held.iter_mut().filter(|h| h.source == source) {
            held.len = 0;
        }
    }

    /// The oldest SYN still valid at `now`; expired ones are dropped and counted.
    fn take(&mut self, now: Instant, counters: &GateCounters) -> Option<HeldSyn> {
        while let Some(syn) = self.held.pop_front() {
            if syn.len == 0 {
                continue;
            }
            if now < syn.at + SYN_HOLD {
                return Some(syn);
            }
            bump(&counters.syns_dropped);
        }
        None
    }
}

impl Default for SynBacklog {
    fn default() -> Self {
        Self::new()
    }
}

/// `device` behind the gate for session `port`.
pub struct Gated<'g, D: ?Sized, V: ?Sized> {
    device: &'g mut D,
    view: &'g V,
    counters: &'g GateCounters,
    backlog: &'g mut SynBacklog,
    port: u16,
    now: Instant,
}

impl<'g, D: Device + ?Sized, V: GateView + ?Sized> Gated<'g, D, V> {
    /// Puts the gate in front of `device` at time `now`.
    pub fn new(
        device: &'g mut D,
        view: &'g V,
        counters: &'g GateCounters,
        backlog: &'g mut SynBacklog,
        port: u16,
        now: Instant,
    ) -> Gated<'g, D, V> {
        Gated {
            device,
            view,
            counters,
            backlog,
            port,
            now,
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

/// A received frame, judged by the gate when consumed; or a kept SYN, replayed.
pub enum RxToken<'g, T, V: ?Sized> {
    /// A frame from the device.
    Device {
        /// The device's token.
        inner: T,
        /// What the gate decides from.
        view: &'g V,
        /// Where it counts.
        counters: &'g GateCounters,
        /// Where it keeps SYNs.
        backlog: &'g mut SynBacklog,
        /// The session port.
        port: u16,
        /// The time.
        now: Instant,
    },
    /// A SYN from the backlog.
    Held(HeldSyn),
}

impl<T: phy::RxToken, V: GateView + ?Sized> phy::RxToken for RxToken<'_, T, V> {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        let (inner, view, counters, backlog, port, now) = match self {
            RxToken::Held(syn) => return f(&syn.frame[..syn.len]),
            RxToken::Device {
                inner,
                view,
                counters,
                backlog,
                port,
                now,
            } => (inner, view, counters, backlog, port, now),
        };
        inner.consume(|frame| match bare_syn_to(frame, port) {
            Some((address, source_port)) if view.holds(address, source_port) => {
                bump(&counters.duplicate_syns_swallowed);
                net_trace!("gate: SYN from {address}:{source_port}, already held, swallowed");
                f(&[])
            }
            Some(source) if !view.accepts_syn() => {
                bump(&counters.syns_held);
                if backlog.hold(frame, source, now) {
                    net_trace!(
                        "gate: no slot free, SYN from {}:{} kept",
                        source.0,
                        source.1
                    );
                } else {
                    bump(&counters.syns_dropped);
                    net_trace!(
                        "gate: backlog full, SYN from {}:{} dropped",
                        source.0,
                        source.1
                    );
                }
                f(&[])
            }
            Some(source) => {
                backlog.forget(source);
                f(frame)
            }
            None => f(frame),
        })
    }

    fn meta(&self) -> phy::PacketMeta {
        match self {
            RxToken::Device { inner, .. } => inner.meta(),
            RxToken::Held(_) => phy::PacketMeta::default(),
        }
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
        let Gated {
            device,
            view,
            counters,
            backlog,
            port,
            now,
        } = self;
        let (view, counters, port, now) = (*view, *counters, *port, *now);
        // A kept SYN goes first, as soon as a slot listens.
        let mut replay = None;
        if view.accepts_syn() {
            while let Some(syn) = backlog.take(now, counters) {
                if view.holds(syn.source.0, syn.source.1) {
                    bump(&counters.duplicate_syns_swallowed);
                    continue;
                }
                replay = Some(syn);
                break;
            }
        }
        if let Some(syn) = replay {
            let Some(tx) = device.transmit(timestamp) else {
                bump(&counters.syns_dropped);
                return None;
            };
            bump(&counters.syns_replayed);
            net_trace!(
                "gate: kept SYN from {}:{} replayed",
                syn.source.0,
                syn.source.1
            );
            return Some((
                RxToken::Held(syn),
                TxToken {
                    inner: tx,
                    counters,
                    port,
                },
            ));
        }
        let (rx, tx) = device.receive(timestamp)?;
        Some((
            RxToken::Device {
                inner: rx,
                view,
                counters,
                backlog,
                port,
                now,
            },
            TxToken {
                inner: tx,
                counters,
                port,
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
        held: Option<(Ipv4Address, u16)>,
    }

    impl GateView for View {
        fn accepts_syn(&self) -> bool {
            self.listening
        }
        fn holds(&self, address: Ipv4Address, port: u16) -> bool {
            self.held == Some((address, port))
        }
    }

    const CLIENT: Ipv4Address = Ipv4Address::new(192, 168, 69, 100);
    const SERVER: Ipv4Address = Ipv4Address::new(192, 168, 69, 1);

    fn at(ms: i64) -> Instant {
        Instant::from_millis(ms)
    }

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

    fn syn(src: u16) -> std::vec::Vec<u8> {
        segment(src, 139, TcpControl::Syn, false)
    }

    /// A gate in front of a loopback device holding `frames`.
    struct Rig {
        device: Loopback,
        counters: GateCounters,
        backlog: SynBacklog,
    }

    impl Rig {
        fn new() -> Rig {
            Rig {
                device: Loopback::new(Medium::Ethernet),
                counters: GateCounters::new(),
                backlog: SynBacklog::new(),
            }
        }

        /// What the interface sees of the next frame (`None`: nothing to read), `frame`
        /// having arrived first if given.
        fn next(
            &mut self,
            frame: Option<&[u8]>,
            view: &View,
            now: Instant,
        ) -> Option<std::vec::Vec<u8>> {
            if let Some(frame) = frame {
                self.device
                    .transmit(now)
                    .unwrap()
                    .consume(frame.len(), |b| b.copy_from_slice(frame));
            }
            let mut gated = Gated::new(
                &mut self.device,
                view,
                &self.counters,
                &mut self.backlog,
                139,
                now,
            );
            let (rx, _) = gated.receive(now)?;
            Some(rx.consume(|b| b.to_vec()))
        }
    }

    const OPEN: View = View {
        listening: true,
        held: None,
    };
    const FULL: View = View {
        listening: false,
        held: None,
    };

    #[test]
    fn a_syn_passes_while_a_slot_listens_and_is_kept_otherwise() {
        let mut rig = Rig::new();
        assert_eq!(rig.next(Some(&syn(40000)), &OPEN, at(0)), Some(syn(40000)));
        assert_eq!(rig.next(Some(&syn(40001)), &FULL, at(0)), Some(vec![]));
        assert_eq!(rig.counters.syns_held.get(), 1);
        assert_eq!(rig.backlog.len(), 1);
        // Nothing listens: nothing is replayed.
        assert_eq!(rig.next(None, &FULL, at(10)), None);
        // A slot listens: the kept SYN comes first, byte for byte.
        assert_eq!(rig.next(None, &OPEN, at(20)), Some(syn(40001)));
        assert_eq!(rig.counters.syns_replayed.get(), 1);
        assert!(rig.backlog.is_empty());
    }

    #[test]
    fn kept_syns_are_replayed_oldest_first_before_newer_frames() {
        let mut rig = Rig::new();
        for port in [40001, 40002, 40003] {
            rig.next(Some(&syn(port)), &FULL, at(0));
        }
        // A retransmission keeps its place and replaces the copy.
        rig.next(Some(&syn(40001)), &FULL, at(900));
        assert_eq!(rig.backlog.len(), 3);
        let ack = segment(40009, 139, TcpControl::None, true);
        let got: std::vec::Vec<_> = (0..4)
            .map(|i| {
                rig.next((i == 0).then_some(&ack[..]), &OPEN, at(1_000))
                    .unwrap()
            })
            .collect();
        assert_eq!(got, [syn(40001), syn(40002), syn(40003), ack]);
        assert_eq!(rig.counters.syns_held.get(), 4);
    }

    #[test]
    fn kept_syns_expire_and_a_full_backlog_drops() {
        let mut rig = Rig::new();
        rig.next(Some(&syn(40000)), &FULL, at(0));
        assert_eq!(rig.next(None, &OPEN, at(3_000)), None, "expired");
        assert_eq!(rig.counters.syns_dropped.get(), 1);
        for port in 0..SYN_BACKLOG as u16 + 2 {
            rig.next(Some(&syn(41000 + port)), &FULL, at(4_000));
        }
        assert_eq!(rig.backlog.len(), SYN_BACKLOG);
        assert_eq!(rig.counters.syns_dropped.get(), 3);
    }

    #[test]
    fn a_live_syn_forgets_its_kept_copy() {
        let mut rig = Rig::new();
        rig.next(Some(&syn(40000)), &FULL, at(0));
        rig.next(Some(&syn(40001)), &FULL, at(0));
        // Both taken from the backlog in order; then the device frame.
        assert_eq!(rig.next(None, &OPEN, at(1)), Some(syn(40000)));
        // A live retransmission from 40001 while its copy is still kept is judged live.
        rig.backlog.forget((CLIENT, 40001));
        assert!(rig.backlog.is_empty());
    }

    #[test]
    fn only_bare_syns_to_the_session_port_are_judged() {
        let mut rig = Rig::new();
        for frame in [
            segment(40000, 445, TcpControl::Syn, false),
            segment(40000, 139, TcpControl::Syn, true),
            segment(40000, 139, TcpControl::None, true),
            segment(40000, 139, TcpControl::Fin, true),
            segment(40000, 139, TcpControl::Rst, false),
            std::vec![0xff; 10],
            std::vec![],
        ] {
            assert_eq!(rig.next(Some(&frame), &FULL, at(0)), Some(frame));
        }
        assert_eq!(rig.counters.syns_held.get(), 0);
    }

    #[test]
    fn a_syn_from_a_peer_already_held_is_swallowed_live_or_kept() {
        let mut rig = Rig::new();
        let view = View {
            listening: true,
            held: Some((CLIENT, 40000)),
        };
        assert_eq!(rig.next(Some(&syn(40000)), &view, at(0)), Some(vec![]));
        assert_eq!(rig.next(Some(&syn(40001)), &view, at(0)), Some(syn(40001)));
        // A kept copy of a peer that got in meanwhile is not replayed.
        rig.next(Some(&syn(40000)), &FULL, at(0));
        assert_eq!(rig.next(None, &view, at(1)), None);
        assert_eq!(rig.counters.duplicate_syns_swallowed.get(), 2);
        assert_eq!(rig.counters.syns_held.get(), 1);
    }

    #[test]
    fn resets_sent_from_the_session_port_are_counted() {
        let mut rig = Rig::new();
        let mut gated = Gated::new(
            &mut rig.device,
            &OPEN,
            &rig.counters,
            &mut rig.backlog,
            139,
            at(0),
        );
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
        assert_eq!(rig.counters.resets_sent.get(), 1);
    }
}
