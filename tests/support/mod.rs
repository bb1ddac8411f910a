//! In-process test bench: netbt nodes and plain smoltcp peers on an in-memory Ethernet hub,
//! driven by a clock the test owns. Deterministic, no root, no TAP.
//!
//! * [`Hub`]: a shared segment; every frame one port sends is queued for every other port
//!   (stations filter by MAC themselves, as on a real hub) and recorded with its time.
//! * [`Port`]: one station's attachment, a smoltcp [`Device`]. A port can be cut (a peer that
//!   vanished: nothing in, nothing out), and what it receives can be impaired ([`Impairment`]:
//!   seeded loss, reordering and delay, the in-process twin of the lab's `benches/impair.rs`).
//! * [`Peer`]: a second smoltcp node with owned storage, for the other side of every exchange.
//! * [`TestNode`]: our [`Node`] on leaked (allocated once) storage.
//! * [`Seen`]: a recorded frame decoded down to IPv4 and UDP/TCP, for wire-level assertions.
//! * [`nbns_server::ScriptedNbns`]: a WINS server that answers as its test says.

#![allow(dead_code, reason = "each test file uses part of the bench")]

pub mod nbns_server;

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;

use netbt::name_service::NameState;
use netbt::node::{Node, NodeConfig, NodeStorage};
use netbt::session::SessionConfig;
use netbt::wire::SESSION_SERVICE_PORT;
use netbt::wire::name::{Name, Scope};
use smoltcp::iface::{Config, Interface, SocketHandle, SocketSet};
use smoltcp::phy::{self, Device, DeviceCapabilities, Medium};
use smoltcp::socket::{tcp, udp};
use smoltcp::time::{Duration, Instant};

/// SYNs a test node's gate keeps.
pub const SYN_BACKLOG: usize = 64;
use smoltcp::wire::{
    EthernetAddress, EthernetFrame, EthernetProtocol, HardwareAddress, IpAddress, IpCidr,
    IpEndpoint, IpProtocol, Ipv4Address, Ipv4Cidr, Ipv4Packet, TcpPacket, UdpPacket,
};

/// The lab subnet of every test.
pub const PREFIX: u8 = 24;
/// The subnet's broadcast address.
pub const BROADCAST: Ipv4Address = Ipv4Address::new(192, 168, 69, 255);
/// Our node's address (as in smoltcp's examples).
pub const NODE_IP: Ipv4Address = Ipv4Address::new(192, 168, 69, 1);
/// A second netbt node.
pub const NODE2_IP: Ipv4Address = Ipv4Address::new(192, 168, 69, 2);
/// The plain smoltcp peer (where the kernel sits in the lab).
pub const PEER_IP: Ipv4Address = Ipv4Address::new(192, 168, 69, 100);
/// Our node's MAC.
pub const NODE_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
/// The second node's MAC.
pub const NODE2_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x02];
/// The peer's MAC.
pub const PEER_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x64];
/// Frame size of every port (Ethernet header + 1500).
pub const MTU: usize = 1514;

/// One frame as it crossed the hub.
#[derive(Debug, Clone)]
pub struct Frame {
    /// When it was sent.
    pub at: Instant,
    /// The sending port.
    pub port: usize,
    /// The Ethernet frame.
    pub bytes: Vec<u8>,
}

/// What the frames a port receives suffer ([`Hub::impair`]). The draws come from a generator
/// seeded with `seed`, so the same frames meet the same fate in every run.
#[derive(Debug, Clone, Copy)]
pub struct Impairment {
    /// Percent of frames lost.
    pub loss_percent: u32,
    /// Percent of frames held back `reorder_gap` beyond the delay, so later ones overtake them.
    pub reorder_percent: u32,
    /// Delay of every frame.
    pub delay: Duration,
    /// How long a reordered frame is held beyond the delay.
    pub reorder_gap: Duration,
    /// Seed of the draws.
    pub seed: u64,
}

impl Impairment {
    /// Issue 15's link: 10 % loss, 25 % reordering (10 ms back), 5 ms delay.
    pub const LOSSY: Impairment = Impairment {
        loss_percent: 10,
        reorder_percent: 25,
        delay: Duration::from_millis(5),
        reorder_gap: Duration::from_millis(10),
        seed: 15,
    };
}

/// What an impaired port's frames met, counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ImpairCounts {
    /// Frames that reached the impairment.
    pub frames: u64,
    /// Of those, lost.
    pub lost: u64,
    /// Of those, held back to be overtaken.
    pub held_back: u64,
}

/// A port's impairment with its generator state (SplitMix64) and counts.
struct Impaired {
    how: Impairment,
    state: u64,
    counts: ImpairCounts,
}

impl Impaired {
    /// True with probability `percent` / 100.
    fn draw(&mut self, percent: u32) -> bool {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) % 100) < u64::from(percent)
    }

    /// When a frame sent at `now` arrives, or None if it is lost.
    fn due(&mut self, now: Instant) -> Option<Instant> {
        self.counts.frames += 1;
        if self.draw(self.how.loss_percent) {
            self.counts.lost += 1;
            return None;
        }
        let mut due = now + self.how.delay;
        if self.draw(self.how.reorder_percent) {
            self.counts.held_back += 1;
            due += self.how.reorder_gap;
        }
        Some(due)
    }
}

/// A frame on its way to a port, deliverable from `due`.
struct Queued {
    due: Instant,
    frame: Vec<u8>,
}

struct Segment {
    queues: Vec<VecDeque<Queued>>,
    cut: Vec<bool>,
    deaf: Vec<bool>,
    impaired: Vec<Option<Impaired>>,
    now: Instant,
    log: Vec<Frame>,
    losses: Vec<Loss>,
    /// Log positions of frames an impairment lost on the way to some port.
    lost: Vec<usize>,
}

/// A scripted loss: the next `count` frames from `port` that `matches` never arrive.
struct Loss {
    port: usize,
    count: usize,
    matches: fn(&Seen) -> bool,
}

/// A shared Ethernet segment with a clock.
#[derive(Clone)]
pub struct Hub(Rc<RefCell<Segment>>);

impl Hub {
    /// An empty segment at time 0.
    pub fn new() -> Hub {
        Hub(Rc::new(RefCell::new(Segment {
            queues: Vec::new(),
            cut: Vec::new(),
            deaf: Vec::new(),
            impaired: Vec::new(),
            now: Instant::ZERO,
            log: Vec::new(),
            losses: Vec::new(),
            lost: Vec::new(),
        })))
    }

    /// Attaches a new station.
    pub fn port(&self) -> Port {
        let mut segment = self.0.borrow_mut();
        segment.queues.push(VecDeque::new());
        segment.cut.push(false);
        segment.deaf.push(false);
        segment.impaired.push(None);
        Port {
            segment: self.0.clone(),
            index: segment.queues.len() - 1,
        }
    }

    /// The current time.
    pub fn now(&self) -> Instant {
        self.0.borrow().now
    }

    /// Moves the clock forward.
    pub fn advance(&self, by: Duration) {
        self.0.borrow_mut().now += by;
    }

    /// Every frame sent so far.
    pub fn frames(&self) -> Vec<Frame> {
        self.0.borrow().log.clone()
    }

    /// Every frame sent so far, decoded.
    pub fn seen(&self) -> Vec<Seen> {
        self.frames().iter().filter_map(Seen::decode).collect()
    }

    /// TCP resets that crossed the hub from `port`.
    pub fn resets_from(&self, port: u16) -> usize {
        self.seen().iter().filter(|s| s.is_reset_from(port)).count()
    }

    /// Forgets the frames recorded so far.
    pub fn clear_log(&self) {
        self.0.borrow_mut().log.clear();
    }

    /// Loses the next `count` frames `port` sends that `matches` (they are logged as sent,
    /// and reach nobody).
    pub fn lose(&self, port: usize, count: usize, matches: fn(&Seen) -> bool) {
        self.0.borrow_mut().losses.push(Loss {
            port,
            count,
            matches,
        });
    }

    /// Frames a [`Hub::lose`] has yet to lose.
    pub fn losses_pending(&self) -> usize {
        self.0.borrow().losses.iter().map(|l| l.count).sum()
    }

    /// Whether an impairment lost the frame at `position` of [`Hub::frames`] on its way to
    /// some port.
    pub fn was_lost(&self, position: usize) -> bool {
        self.0.borrow().lost.contains(&position)
    }

    /// Sends `frame` again, now, from the port that sent it (a late duplicate; a port number
    /// no station has makes it a frame from outside, for everyone).
    pub fn replay(&self, frame: &Frame) {
        let mut segment = self.0.borrow_mut();
        let now = segment.now;
        for (i, queue) in segment.queues.iter_mut().enumerate() {
            if i != frame.port {
                queue.push_back(Queued {
                    due: now,
                    frame: frame.bytes.clone(),
                });
            }
        }
        segment.log.push(Frame {
            at: now,
            port: frame.port,
            bytes: frame.bytes.clone(),
        });
    }

    /// Makes a port deaf (or hear again): it still sends, but receives nothing.
    pub fn deafen(&self, port: usize, deaf: bool) {
        let mut segment = self.0.borrow_mut();
        segment.deaf[port] = deaf;
        segment.queues[port].clear();
    }

    /// Impairs what `port` receives from now on (None: a clean link again; frames already on
    /// their way keep their times). The log still records every frame as it was sent.
    pub fn impair(&self, port: usize, how: Option<Impairment>) {
        self.0.borrow_mut().impaired[port] = how.map(|how| Impaired {
            how,
            state: how.seed,
            counts: ImpairCounts::default(),
        });
    }

    /// What `port`'s impairment counted so far (zeros for a clean port).
    pub fn impair_counts(&self, port: usize) -> ImpairCounts {
        self.0.borrow().impaired[port]
            .as_ref()
            .map_or_else(ImpairCounts::default, |i| i.counts)
    }

    /// Disconnects (or reconnects) a port: a cut port neither sends nor receives.
    pub fn cut(&self, port: usize, cut: bool) {
        let mut segment = self.0.borrow_mut();
        segment.cut[port] = cut;
        segment.queues[port].clear();
    }
}

/// One station's attachment to a [`Hub`].
pub struct Port {
    segment: Rc<RefCell<Segment>>,
    index: usize,
}

impl Port {
    /// This port's number on the hub.
    pub fn index(&self) -> usize {
        self.index
    }
}

/// A received frame.
pub struct RxToken(Vec<u8>);

impl phy::RxToken for RxToken {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        f(&self.0)
    }
}

/// Room for a frame to send.
pub struct TxToken<'a>(&'a Port);

impl phy::TxToken for TxToken<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let mut frame = vec![0; len];
        let result = f(&mut frame);
        let mut segment = self.0.segment.borrow_mut();
        let at = segment.now;
        let port = self.0.index;
        let seen = Seen::decode(&Frame {
            at,
            port,
            bytes: frame.clone(),
        });
        let scripted = segment.losses.iter_mut().find(|loss| {
            loss.port == port && loss.count > 0 && seen.as_ref().is_some_and(loss.matches)
        });
        let scripted = scripted.map(|loss| loss.count -= 1).is_some();
        if scripted {
            segment.log.push(Frame {
                at,
                port,
                bytes: frame,
            });
        } else if !segment.cut[self.0.index] {
            let segment = &mut *segment;
            let position = segment.log.len();
            for (i, queue) in segment.queues.iter_mut().enumerate() {
                if i == self.0.index || segment.deaf[i] || segment.cut[i] {
                    continue;
                }
                let due = match &mut segment.impaired[i] {
                    None => Some(at),
                    Some(impaired) => impaired.due(at),
                };
                match due {
                    Some(due) => queue.push_back(Queued {
                        due,
                        frame: frame.clone(),
                    }),
                    None => segment.lost.push(position),
                }
            }
            segment.log.push(Frame {
                at,
                port,
                bytes: frame,
            });
        }
        result
    }
}

impl Device for Port {
    type RxToken<'a> = RxToken;
    type TxToken<'a> = TxToken<'a>;

    fn receive(&mut self, _: Instant) -> Option<(RxToken, TxToken<'_>)> {
        let frame = {
            let mut segment = self.segment.borrow_mut();
            if segment.cut[self.index] {
                segment.queues[self.index].clear();
                return None;
            }
            // The earliest due frame (the first of equals): in order on a clean link.
            let now = segment.now;
            let queue = &mut segment.queues[self.index];
            let next = queue
                .iter()
                .enumerate()
                .filter(|(_, q)| q.due <= now)
                .min_by_key(|(i, q)| (q.due, *i))
                .map(|(i, _)| i)?;
            queue.remove(next)?.frame
        };
        Some((RxToken(frame), TxToken(self)))
    }

    fn transmit(&mut self, _: Instant) -> Option<TxToken<'_>> {
        Some(TxToken(self))
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ethernet;
        caps.max_transmission_unit = MTU;
        caps
    }
}

/// Anything on the hub that needs polling.
pub trait Station {
    /// Does everything due at `now`.
    fn poll(&mut self, now: Instant);
}

/// Polls every station in 1 ms steps for `ms` milliseconds (and once more at the end).
pub fn run(hub: &Hub, ms: u64, stations: &mut [&mut dyn Station]) {
    for step in 0..=ms {
        if step > 0 {
            hub.advance(Duration::from_millis(1));
        }
        // Twice per step, so a reply produced by one station's poll reaches the others in
        // the same millisecond.
        for _ in 0..2 {
            for station in stations.iter_mut() {
                station.poll(hub.now());
            }
        }
    }
}

/// A plain smoltcp node: the other side of every exchange.
pub struct Peer {
    /// Its interface.
    pub iface: Interface,
    /// Its sockets.
    pub sockets: SocketSet<'static>,
    /// Its attachment.
    pub port: Port,
}

impl Peer {
    /// A peer at `address` with `mac`.
    #[track_caller]
    pub fn new(hub: &Hub, mac: [u8; 6], address: Ipv4Address) -> Peer {
        let mut port = hub.port();
        let mut config = Config::new(HardwareAddress::Ethernet(EthernetAddress(mac)));
        config.random_seed = 0x5eed;
        let mut iface = Interface::new(config, &mut port, hub.now());
        iface.update_ip_addrs(|addrs| {
            addrs
                .push(IpCidr::new(IpAddress::Ipv4(address), PREFIX))
                .unwrap()
        });
        Peer {
            iface,
            sockets: SocketSet::new(Vec::new()),
            port,
        }
    }

    /// Adds a UDP socket bound to `port`.
    #[track_caller]
    pub fn udp(&mut self, port: u16) -> SocketHandle {
        let mut socket = udp::Socket::new(
            udp::PacketBuffer::new(vec![udp::PacketMetadata::EMPTY; 64], vec![0; 64 * 1024]),
            udp::PacketBuffer::new(vec![udp::PacketMetadata::EMPTY; 64], vec![0; 64 * 1024]),
        );
        socket.bind(port).unwrap();
        self.sockets.add(socket)
    }

    /// Queues a datagram on `socket` for `to`.
    #[track_caller]
    pub fn send_to(&mut self, socket: SocketHandle, to: (Ipv4Address, u16), bytes: &[u8]) {
        self.sockets
            .get_mut::<udp::Socket>(socket)
            .send_slice(bytes, IpEndpoint::new(to.0.into(), to.1))
            .unwrap();
    }

    /// Adds a TCP socket with `buffer` bytes each way and connects it from `local_port` to
    /// `to`.
    #[track_caller]
    pub fn connect(
        &mut self,
        to: (Ipv4Address, u16),
        local_port: u16,
        buffer: usize,
    ) -> SocketHandle {
        let mut socket = tcp::Socket::new(
            tcp::SocketBuffer::new(vec![0; buffer]),
            tcp::SocketBuffer::new(vec![0; buffer]),
        );
        socket.set_nagle_enabled(false);
        socket
            .connect(
                self.iface.context(),
                IpEndpoint::new(to.0.into(), to.1),
                local_port,
            )
            .unwrap();
        self.sockets.add(socket)
    }

    /// A TCP socket of this peer.
    pub fn tcp(&mut self, handle: SocketHandle) -> &mut tcp::Socket<'static> {
        self.sockets.get_mut::<tcp::Socket>(handle)
    }

    /// Every byte received on TCP socket `handle` so far.
    #[track_caller]
    pub fn read_all(&mut self, handle: SocketHandle) -> Vec<u8> {
        let socket = self.tcp(handle);
        let mut got = Vec::new();
        while socket.can_recv() {
            socket
                .recv(|b| {
                    got.extend_from_slice(b);
                    (b.len(), ())
                })
                .unwrap();
        }
        got
    }

    /// Every datagram received on `socket`: (source, bytes).
    pub fn received(&mut self, socket: SocketHandle) -> Vec<(IpEndpoint, Vec<u8>)> {
        let socket = self.sockets.get_mut::<udp::Socket>(socket);
        let mut got = Vec::new();
        while let Ok((bytes, meta)) = socket.recv() {
            got.push((meta.endpoint, bytes.to_vec()));
        }
        got
    }
}

impl Station for Peer {
    fn poll(&mut self, now: Instant) {
        self.iface.poll(now, &mut self.port, &mut self.sockets);
    }
}

/// Our node on its own port, with its storage allocated once.
pub struct TestNode {
    /// The node.
    pub node: Node<'static>,
    /// Its attachment.
    pub port: Port,
}

impl TestNode {
    /// A node at `address`/`mac`, with no names yet.
    pub fn new(hub: &Hub, mac: [u8; 6], address: Ipv4Address) -> TestNode {
        TestNode::with(hub, config(mac, address))
    }

    /// A node with the configuration given, 2 session slots and 1 refusal slot of 4 KiB.
    #[track_caller]
    pub fn with(hub: &Hub, config: NodeConfig) -> TestNode {
        TestNode::with_slots(hub, config, 2, 1, 4096)
    }

    /// A node with `sessions` session slots of `buffer` bytes per direction and `refusals`
    /// refusal slots.
    #[track_caller]
    pub fn with_slots(
        hub: &Hub,
        config: NodeConfig,
        sessions: usize,
        refusals: usize,
        buffer: usize,
    ) -> TestNode {
        let mut port = hub.port();
        let storage = NodeStorage::leaked(sessions, refusals, buffer, SYN_BACKLOG);
        let node = Node::new(config, &mut port, storage, hub.now()).unwrap();
        TestNode { node, port }
    }

    /// The state of `name` in the node's name table; panics if the table does not hold it.
    #[track_caller]
    pub fn name_state(&self, name: Name) -> NameState {
        let entry = self.node.names.names().iter().find(|n| n.name == name);
        entry.expect("the name is in the table").state
    }
}

impl Station for TestNode {
    fn poll(&mut self, now: Instant) {
        self.node.poll(now, &mut self.port);
    }
}

/// The configuration the tests start from.
pub fn config(mac: [u8; 6], address: Ipv4Address) -> NodeConfig {
    NodeConfig {
        mac,
        address: Ipv4Cidr::new(address, PREFIX),
        gateway: None,
        scope: Scope::NONE,
        hide_mac: false,
        seed: u64::from_be_bytes([mac[5], 1, 2, 3, 4, 5, 6, 7]),
        session: SessionConfig::DEFAULT,
    }
}

/// A recorded frame, decoded.
#[derive(Debug, Clone)]
pub struct Seen {
    /// When it was sent.
    pub at: Instant,
    /// Ethernet destination.
    pub eth_destination: EthernetAddress,
    /// IPv4 source.
    pub source: Ipv4Address,
    /// IPv4 destination.
    pub destination: Ipv4Address,
    /// What it carries.
    pub transport: Transport,
}

/// The transport layer of a [`Seen`] frame.
#[derive(Debug, Clone)]
pub enum Transport {
    /// A UDP datagram.
    Udp {
        /// Source port.
        source: u16,
        /// Destination port.
        destination: u16,
        /// The payload.
        payload: Vec<u8>,
    },
    /// A TCP segment.
    Tcp {
        /// Source port.
        source: u16,
        /// Destination port.
        destination: u16,
        /// SYN flag.
        syn: bool,
        /// ACK flag.
        ack: bool,
        /// FIN flag.
        fin: bool,
        /// RST flag.
        rst: bool,
        /// Advertised window (unscaled).
        window: u16,
        /// Payload length.
        len: usize,
    },
    /// Anything else over IPv4 (ICMP).
    Other,
}

impl Seen {
    /// Decodes an IPv4 frame; `None` for ARP and anything malformed.
    pub fn decode(frame: &Frame) -> Option<Seen> {
        let ethernet = EthernetFrame::new_checked(&frame.bytes[..]).ok()?;
        if ethernet.ethertype() != EthernetProtocol::Ipv4 {
            return None;
        }
        let ip = Ipv4Packet::new_checked(ethernet.payload()).ok()?;
        let transport = match ip.next_header() {
            IpProtocol::Udp => {
                let udp = UdpPacket::new_checked(ip.payload()).ok()?;
                Transport::Udp {
                    source: udp.src_port(),
                    destination: udp.dst_port(),
                    payload: udp.payload().to_vec(),
                }
            }
            IpProtocol::Tcp => {
                let tcp = TcpPacket::new_checked(ip.payload()).ok()?;
                Transport::Tcp {
                    source: tcp.src_port(),
                    destination: tcp.dst_port(),
                    syn: tcp.syn(),
                    ack: tcp.ack(),
                    fin: tcp.fin(),
                    rst: tcp.rst(),
                    window: tcp.window_len(),
                    len: tcp.payload().len(),
                }
            }
            _ => Transport::Other,
        };
        Some(Seen {
            at: frame.at,
            eth_destination: ethernet.dst_addr(),
            source: ip.src_addr(),
            destination: ip.dst_addr(),
            transport,
        })
    }

    /// The UDP payload if this is a datagram between the ports given (`None` matches any).
    pub fn udp(&self, source_port: Option<u16>, destination_port: Option<u16>) -> Option<&[u8]> {
        match &self.transport {
            Transport::Udp {
                source,
                destination,
                payload,
            } if source_port.is_none_or(|p| p == *source)
                && destination_port.is_none_or(|p| p == *destination) =>
            {
                Some(payload)
            }
            _ => None,
        }
    }
}

impl Seen {
    /// Whether this is a TCP reset sent from `port`.
    pub fn is_reset_from(&self, port: u16) -> bool {
        matches!(self.transport, Transport::Tcp { source, rst: true, .. } if source == port)
    }

    /// Whether this is a segment from `port` (neither SYN nor RST) that advertises a zero window.
    pub fn is_zero_window_from(&self, port: u16) -> bool {
        matches!(
            self.transport,
            Transport::Tcp { source, syn: false, rst: false, window: 0, .. } if source == port
        )
    }

    /// Whether this is a bare SYN-ACK from `port`.
    pub fn is_syn_ack_from(&self, port: u16) -> bool {
        matches!(self.transport, Transport::Tcp { source, syn: true, ack: true, .. } if source == port)
    }
}

/// Asserts the session service's promise: no reset left `node`'s port 139 on `hub`, and the
/// gate counted none.
#[track_caller]
pub fn assert_no_reset(hub: &Hub, node: &mut TestNode) {
    assert_eq!(
        hub.resets_from(SESSION_SERVICE_PORT),
        0,
        "a reset left port 139"
    );
    assert_eq!(
        node.node
            .session_service()
            .counters()
            .gate
            .resets_sent
            .get(),
        0,
        "the gate counted a reset"
    );
}
