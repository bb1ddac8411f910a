//! The node: smoltcp's interface and sockets, and the NetBIOS services on top of them.
//!
//! Storage is handed in by the caller: a socket table, the socket buffers and the scratch
//! memory (static arrays on a microcontroller; allocated once at start-up by the daemon).
//! Nothing is allocated after [`Node::new`] (or [`Node::new_in`], which builds the node in
//! place). One [`Node::poll`] does all pending work and returns when it next needs to be
//! called.

use core::mem::MaybeUninit;

use smoltcp::iface::{Config, Interface, SocketHandle, SocketSet, SocketStorage};
use smoltcp::phy::Device;
use smoltcp::socket::{tcp, udp};
use smoltcp::time::Instant;
use smoltcp::wire::{
    EthernetAddress, HardwareAddress, IpAddress, IpCidr, IpEndpoint, Ipv4Address, Ipv4Cidr,
};

use crate::browse::{BrowseAnnouncer, HostAnnouncement};
use crate::datagram_service::{DatagramService, Delivery, SendError, Target};
use crate::gate::{ClosedConnection, HeldSyn};
use crate::name_service::{Destination, NameEvent, NameService, NameServiceConfig, Received};
use crate::session::{
    MIN_SESSION_BUFFER, REFUSAL_RX, REFUSAL_TX, Role, Route, SHARD_SLOTS, SessionConfig,
    SessionEvent, SessionFigures, SessionService, Sessions, Shard, Shards, Slot, SocketAt,
    drain_egress, shards_for,
};
use crate::wire::name::{Name, Scope};
use crate::wire::{DATAGRAM_SERVICE_PORT, MAX_DATAGRAM_LENGTH, NAME_SERVICE_PORT, nbds, nbns};

/// Datagrams queued per direction on the name service socket of [`UdpBuffers`] (the daemon's).
pub const UDP_PACKETS: usize = 16;
/// Payload bytes per direction on the name service socket of [`UdpBuffers`] (the daemon's).
pub const UDP_BYTES: usize = 8 * 1024;
/// Least scratch memory a node takes ([`NodeStorage::scratch`]), and the most of it a received
/// datagram is read into (RFC 1002 packets are at most 576 bytes; a longer one up to this long
/// is parsed and dropped as malformed, one longer still is dropped unread and counted as
/// oversized).
pub const MIN_SCRATCH: usize = 1024;
/// Scratch bytes [`NodeStorage::leaked`] gives (the daemon's): the echo handler moves this
/// much per copy.
#[cfg(feature = "std")]
pub const SCRATCH: usize = 2048;

/// Sockets the node needs in its socket table besides the session ledger's: the name
/// service's and the datagram service's.
pub const SOCKETS: usize = 2;

/// Sockets a node with `slots` ledger entries needs in its socket table.
pub const fn sockets_needed(slots: usize) -> usize {
    SOCKETS + slots
}

/// Fixed buffers of one refusal slot: room for one whole session request and one negative
/// response.
pub struct RefusalBuffers {
    rx: [u8; REFUSAL_RX],
    tx: [u8; REFUSAL_TX],
}

impl RefusalBuffers {
    /// Empty buffers (usable in a `static`).
    pub const fn new() -> RefusalBuffers {
        RefusalBuffers {
            rx: [0; REFUSAL_RX],
            tx: [0; REFUSAL_TX],
        }
    }
}

impl Default for RefusalBuffers {
    fn default() -> Self {
        Self::new()
    }
}

/// Buffers of one UDP service socket at the daemon's sizes ([`UDP_PACKETS`] datagrams and
/// [`UDP_BYTES`] bytes each way); [`UdpBuffers::storage`] hands them to a node. An embedder
/// that wants other sizes gives [`UdpStorage`] its own arrays.
pub struct UdpBuffers {
    rx_meta: [udp::PacketMetadata; UDP_PACKETS],
    rx: [u8; UDP_BYTES],
    tx_meta: [udp::PacketMetadata; UDP_PACKETS],
    tx: [u8; UDP_BYTES],
}

impl UdpBuffers {
    /// Empty buffers (usable in a `static`).
    pub const fn new() -> UdpBuffers {
        UdpBuffers {
            rx_meta: [udp::PacketMetadata::EMPTY; UDP_PACKETS],
            rx: [0; UDP_BYTES],
            tx_meta: [udp::PacketMetadata::EMPTY; UDP_PACKETS],
            tx: [0; UDP_BYTES],
        }
    }

    /// The buffers as a node's [`UdpStorage`].
    pub fn storage(&mut self) -> UdpStorage<'_> {
        UdpStorage {
            rx_meta: &mut self.rx_meta[..],
            rx: &mut self.rx[..],
            tx_meta: &mut self.tx_meta[..],
            tx: &mut self.tx[..],
        }
    }
}

impl Default for UdpBuffers {
    fn default() -> Self {
        Self::new()
    }
}

/// Buffers of a UDP service socket (the name service's, port 137, or the datagram service's,
/// port 138), sized by the caller: packet metadata (one entry per queued datagram) and payload
/// bytes, per direction. Each direction needs at least one metadata entry and
/// [`MAX_DATAGRAM_LENGTH`] (576) bytes. A datagram that finds its receive queue full is dropped
/// by smoltcp (the node empties the queue after every frame, so one frame's datagram fits).
pub struct UdpStorage<'a> {
    /// Metadata of received datagrams.
    pub rx_meta: &'a mut [udp::PacketMetadata],
    /// Payload of received datagrams.
    pub rx: &'a mut [u8],
    /// Metadata of datagrams to send.
    pub tx_meta: &'a mut [udp::PacketMetadata],
    /// Payload of datagrams to send.
    pub tx: &'a mut [u8],
}

impl<'a> UdpStorage<'a> {
    fn fits(&self) -> bool {
        !self.rx_meta.is_empty()
            && !self.tx_meta.is_empty()
            && self.rx.len() >= MAX_DATAGRAM_LENGTH
            && self.tx.len() >= MAX_DATAGRAM_LENGTH
    }

    fn socket(self) -> udp::Socket<'a> {
        udp::Socket::new(
            udp::PacketBuffer::new(self.rx_meta, self.rx),
            udp::PacketBuffer::new(self.tx_meta, self.tx),
        )
    }
}

/// Datagrams [`NodeStorage::leaked`] queues per direction on UDP 138, and keeps for the owner.
#[cfg(feature = "std")]
pub const DATAGRAM_PACKETS: usize = 8;

/// Every piece of storage the node uses, handed in once (static arrays on a microcontroller;
/// allocated once at start-up by the daemon).
///
/// The ledger has one entry per slot: `refusals.len()` refusal slots and
/// `ledger.len() - refusals.len()` session slots. `session_memory` is split evenly between
/// the session slots, half receive and half send buffer each.
pub struct NodeStorage<'a> {
    /// The socket table: at least [`sockets_needed`]`(ledger.len())` entries.
    pub sockets: &'a mut [SocketStorage<'a>],
    /// The session slots' socket shards: at least [`shards_for`]`(sessions, refusals)`
    /// entries (fill it with [`Shard::EMPTY`]).
    pub shards: &'a mut [Shard<'a>],
    /// The routes from peers to slots: more entries than the ledger has slots,
    /// [`routes_for`](crate::session::routes_for)`(ledger.len())` keeps lookups short (fill it
    /// with [`Route::EMPTY`]).
    pub routes: &'a mut [Route],
    /// The name service socket's buffers (UDP 137; the daemon's: [`UdpBuffers`]).
    pub name_service: UdpStorage<'a>,
    /// The datagram service socket's buffers (UDP 138).
    pub datagram_service: UdpStorage<'a>,
    /// The name service's events kept until the owner takes them (fill it with `None`; the
    /// daemon's: [`NAME_EVENTS`](crate::name_service::NAME_EVENTS); when it is full the oldest
    /// is dropped and counted).
    pub name_events: &'a mut [Option<NameEvent>],
    /// The session service's events kept until the owner takes them (fill it with `None`; the
    /// daemon's: [`SESSION_EVENTS`](crate::session::SESSION_EVENTS); when it is full the
    /// oldest is dropped and counted).
    pub session_events: &'a mut [Option<SessionEvent>],
    /// Datagrams for our names kept until the owner takes them (fill it with
    /// [`Delivery::EMPTY`]; when it is full the oldest is dropped and counted).
    pub deliveries: &'a mut [Delivery],
    /// Buffer memory of the session slots.
    pub session_memory: &'a mut [u8],
    /// Buffers of the refusal slots.
    pub refusals: &'a mut [RefusalBuffers],
    /// The slot ledger (fill it with [`Slot::EMPTY`]).
    pub ledger: &'a mut [Slot],
    /// The SYN backlog: one entry per SYN the gate can keep while no session slot is free
    /// (fill it with [`HeldSyn::EMPTY`]; empty: such SYNs are dropped and retransmitted).
    pub syn_backlog: &'a mut [HeldSyn],
    /// The gate's record of recently closed connections, which answers their late segments
    /// instead of smoltcp's resets and lets a slot go once our FIN is acknowledged (fill it
    /// with [`ClosedConnection::EMPTY`]; a few entries per slot; empty: no record, and smoltcp
    /// keeps each close in TIME-WAIT for 10 s).
    pub recently_closed: &'a mut [ClosedConnection],
    /// Scratch memory, at least [`MIN_SCRATCH`] bytes: each received datagram is read into its
    /// first [`MIN_SCRATCH`] bytes, and the echo handler copies through it (as much per copy as
    /// it holds).
    pub scratch: &'a mut [u8],
}

#[cfg(feature = "std")]
impl NodeStorage<'static> {
    /// Storage for a node with `sessions` session slots of `buffer` bytes per direction,
    /// `refusals` refusal slots and a SYN backlog of `backlog` entries, allocated once on the heap
    /// and leaked (std only): for a node that lives as long as the process, as the daemon's does.
    ///
    /// The record of recently closed connections gets [`closed_record_for`]`(slots)` entries.
    ///
    /// `Node::new` checks the sizes: no session slot, or a `buffer` under
    /// [`MIN_SESSION_BUFFER`], is [`NodeError::BadSlots`] there.
    pub fn leaked(
        sessions: usize,
        refusals: usize,
        buffer: usize,
        backlog: usize,
    ) -> NodeStorage<'static> {
        let slots = sessions + refusals;
        NodeStorage {
            sockets: Box::leak(
                (0..sockets_needed(slots))
                    .map(|_| SocketStorage::EMPTY)
                    .collect(),
            ),
            shards: Box::leak(
                (0..shards_for(sessions, refusals))
                    .map(|_| Shard::EMPTY)
                    .collect(),
            ),
            routes: vec![Route::EMPTY; crate::session::routes_for(slots)].leak(),
            name_service: Box::leak(Box::new(UdpBuffers::new())).storage(),
            datagram_service: UdpStorage {
                rx_meta: vec![udp::PacketMetadata::EMPTY; DATAGRAM_PACKETS].leak(),
                rx: vec![0u8; DATAGRAM_PACKETS * MAX_DATAGRAM_LENGTH].leak(),
                tx_meta: vec![udp::PacketMetadata::EMPTY; DATAGRAM_PACKETS].leak(),
                tx: vec![0u8; DATAGRAM_PACKETS * MAX_DATAGRAM_LENGTH].leak(),
            },
            name_events: vec![None; crate::name_service::NAME_EVENTS].leak(),
            session_events: vec![None; crate::session::SESSION_EVENTS].leak(),
            deliveries: vec![Delivery::EMPTY; DATAGRAM_PACKETS].leak(),
            session_memory: vec![0u8; 2 * buffer * sessions].leak(),
            refusals: Box::leak((0..refusals).map(|_| RefusalBuffers::new()).collect()),
            ledger: vec![Slot::EMPTY; slots].leak(),
            syn_backlog: vec![HeldSyn::EMPTY; backlog].leak(),
            recently_closed: vec![ClosedConnection::EMPTY; closed_record_for(slots)].leak(),
            scratch: vec![0u8; SCRATCH].leak(),
        }
    }
}

/// Entries of the record of recently closed connections the daemon gives a node of `slots`
/// slots: eight per slot, at least 4096 (16 bytes each). Each lasts 60 s unless displaced; a
/// displaced one only matters if a segment of that connection is still to come.
pub const fn closed_record_for(slots: usize) -> usize {
    let per_slot = 8 * slots;
    if per_slot > 4096 { per_slot } else { 4096 }
}

/// How the node sits on its network.
#[derive(Debug, Clone, Copy)]
pub struct NodeConfig {
    /// Ethernet address.
    pub mac: [u8; 6],
    /// IPv4 address and subnet.
    pub address: Ipv4Cidr,
    /// Default gateway, if any.
    pub gateway: Option<Ipv4Address>,
    /// NetBIOS scope of all names.
    pub scope: Scope,
    /// Report a zero UNIT_ID in node status instead of the MAC.
    pub hide_mac: bool,
    /// Entropy for smoltcp's initial sequence numbers and our transaction ids.
    pub seed: u64,
    /// The session service.
    pub session: SessionConfig,
}

/// Why a node could not be built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum NodeError {
    /// The socket table has fewer than [`sockets_needed`] entries, the shard list fewer than
    /// [`shards_for`], or the route table no more entries than the ledger has slots.
    SocketTableTooSmall,
    /// No session slot, more refusal buffers than ledger entries, or session buffers under
    /// [`MIN_SESSION_BUFFER`] bytes each.
    BadSlots,
    /// The address could not be configured.
    BadAddress,
    /// The datagram service's buffers hold no metadata entry or fewer than 576 bytes in a
    /// direction.
    DatagramStorageTooSmall,
    /// The name service's buffers hold no metadata entry or fewer than 576 bytes in a
    /// direction.
    NameStorageTooSmall,
    /// The scratch memory is shorter than [`MIN_SCRATCH`].
    ScratchTooSmall,
}

impl core::fmt::Display for NodeError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            NodeError::SocketTableTooSmall => "the socket table is too small for the slots",
            NodeError::BadSlots => {
                "bad slots: none for sessions, more refusal buffers than ledger entries, or \
                 session buffers too small"
            }
            NodeError::BadAddress => "the address could not be configured",
            NodeError::DatagramStorageTooSmall => {
                "the datagram service's buffers are too small (one datagram of 576 bytes each way)"
            }
            NodeError::NameStorageTooSmall => {
                "the name service's buffers are too small (one datagram of 576 bytes each way)"
            }
            NodeError::ScratchTooSmall => "the scratch memory is too small",
        })
    }
}

impl core::error::Error for NodeError {}

/// Frames read per [`Node::poll`] before the services run and replies go out.
const MAX_FRAMES_PER_POLL: usize = 64;

/// A NetBIOS node on one Ethernet interface.
pub struct Node<'a> {
    iface: Interface,
    /// The node's own sockets (name and datagram service).
    sockets: SocketSet<'a>,
    /// The session slots' sockets.
    shards: Shards<'a>,
    name_socket: SocketHandle,
    /// The name service (register names before the first poll).
    pub names: NameService<'a>,
    datagram_socket: SocketHandle,
    /// The datagram service (UDP 138): deliveries, counters.
    pub datagrams: DatagramService<'a>,
    /// The browse announcer (set its comment and interval before the first poll).
    pub browse: BrowseAnnouncer,
    sessions: SessionService<'a>,
    /// The ledger's figures as of the last service pass, for node status answers.
    figures: SessionFigures,
    scratch: &'a mut [u8],
}

impl<'a> Node<'a> {
    /// Builds the node on `device` with the storage given.
    pub fn new<D: Device + ?Sized>(
        config: NodeConfig,
        device: &mut D,
        storage: NodeStorage<'a>,
        now: Instant,
    ) -> Result<Node<'a>, NodeError> {
        let mut place = MaybeUninit::uninit();
        Node::new_in(&mut place, config, device, storage, now)?;
        // SAFETY: `new_in` returned Ok: it wrote every field.
        #[allow(unsafe_code)]
        Ok(unsafe { place.assume_init() })
    }

    /// Builds the node as [`Node::new`] does, in `place` (a `static` on a microcontroller), and
    /// returns it there. The node (10 KiB on a microcontroller) is never on the stack whole:
    /// each service goes to its field as it is made, so the stack holds one at a time. On an
    /// error `place` is left uninitialised.
    // Field by field through a raw pointer, since no safe way writes a struct in parts;
    // `every_field_of_node` below keeps the list of fields complete.
    #[allow(unsafe_code)]
    pub fn new_in<'p, D: Device + ?Sized>(
        place: &'p mut MaybeUninit<Node<'a>>,
        config: NodeConfig,
        device: &mut D,
        storage: NodeStorage<'a>,
        now: Instant,
    ) -> Result<&'p mut Node<'a>, NodeError> {
        let node = place.as_mut_ptr();
        let NodeStorage {
            sockets: table,
            shards,
            routes,
            name_service,
            datagram_service,
            name_events,
            session_events,
            deliveries,
            session_memory,
            refusals,
            ledger,
            syn_backlog,
            recently_closed,
            scratch,
        } = storage;
        let slots = ledger.len();
        let session_slots = slots.saturating_sub(refusals.len());
        if session_slots == 0 {
            return Err(NodeError::BadSlots);
        }
        let session_buffer = session_memory.len() / (2 * session_slots);
        if session_buffer < MIN_SESSION_BUFFER {
            return Err(NodeError::BadSlots);
        }
        let refusal_slots = slots - session_slots;
        if table.len() < sockets_needed(slots)
            || shards.len() < shards_for(session_slots, refusal_slots)
            || routes.len() <= slots
        {
            return Err(NodeError::SocketTableTooSmall);
        }
        if !datagram_service.fits() {
            return Err(NodeError::DatagramStorageTooSmall);
        }
        if !name_service.fits() {
            return Err(NodeError::NameStorageTooSmall);
        }
        if scratch.len() < MIN_SCRATCH {
            return Err(NodeError::ScratchTooSmall);
        }
        // SAFETY (of each write to `*node` below): `node` points to `place`, valid for writes;
        // fields are written, never read, until all are (the one read below is of a field
        // written just before).
        unsafe {
            (&raw mut (*node).names).write(NameService::new(
                NameServiceConfig {
                    address: config.address,
                    mac: config.mac,
                    hide_mac: config.hide_mac,
                    scope: config.scope,
                },
                config.seed.rotate_left(17),
                name_events,
            ));
            (&raw mut (*node).datagrams).write(DatagramService::new(
                config.address,
                config.scope,
                config.seed.rotate_left(29) ^ 0xd47a_6a3d,
                deliveries,
            ));
            (&raw mut (*node).browse).write(BrowseAnnouncer::new(
                config.seed.rotate_left(41) ^ 0xb405_e000,
            ));
        }
        let mut iface_config = Config::new(HardwareAddress::Ethernet(EthernetAddress(config.mac)));
        iface_config.random_seed = config.seed;
        let mut iface = Interface::new(iface_config, device, now);
        let mut ok = true;
        iface.update_ip_addrs(|addrs| {
            ok = addrs.push(IpCidr::Ipv4(config.address)).is_ok();
        });
        if !ok {
            return Err(NodeError::BadAddress);
        }
        if let Some(gateway) = config.gateway {
            iface
                .routes_mut()
                .add_default_ipv4_route(gateway)
                .map_err(|_| NodeError::BadAddress)?;
        }
        let (home, mut table) = table.split_at_mut(SOCKETS);
        let mut sockets = SocketSet::new(home);
        // Session slots fill shards from the first, refusal slots have shards of their own
        // after them. Within a shard smoltcp gives a SYN to the first listening socket;
        // sockets are never added or removed after this.
        let shard_count = shards_for(session_slots, refusal_slots);
        let mut shards = Shards::new(&mut shards[..shard_count]);
        let mut memory = session_memory
            .chunks_exact_mut(2 * session_buffer)
            .take(session_slots);
        let mut refusals = refusals.iter_mut();
        let mut first = 0;
        let mut shard = 0;
        let layout = [
            (Role::Session, session_slots),
            (Role::Refusal, refusal_slots),
        ];
        for (role, count) in layout {
            let mut left = count;
            while left > 0 {
                let len = left.min(SHARD_SLOTS);
                let (chunk, rest) = core::mem::take(&mut table).split_at_mut(len);
                table = rest;
                let mut set = SocketSet::new(chunk);
                for offset in 0..len {
                    let socket = match role {
                        Role::Session => {
                            let Some(chunk) = memory.next() else {
                                return Err(NodeError::BadSlots);
                            };
                            let (rx, tx) = chunk.split_at_mut(session_buffer);
                            tcp_socket(rx, tx)
                        }
                        Role::Refusal => {
                            let Some(buffers) = refusals.next() else {
                                return Err(NodeError::BadSlots);
                            };
                            tcp_socket(&mut buffers.rx[..], &mut buffers.tx[..])
                        }
                    };
                    let handle = set.add(socket);
                    ledger[first + offset] = Slot::placed(SocketAt::new(shard, handle), role);
                }
                shards.build(shard, set, first, len, role);
                first += len;
                shard += 1;
                left -= len;
            }
        }
        let mut name_socket = name_service.socket();
        name_socket
            .bind(NAME_SERVICE_PORT)
            .map_err(|_| NodeError::BadAddress)?;
        let name_socket = sockets.add(name_socket);
        let mut datagram_socket = datagram_service.socket();
        datagram_socket
            .bind(DATAGRAM_SERVICE_PORT)
            .map_err(|_| NodeError::BadAddress)?;
        let datagram_socket = sockets.add(datagram_socket);
        unsafe {
            (&raw mut (*node).sessions).write(SessionService::new(
                config.session,
                ledger,
                session_events,
                syn_backlog,
                recently_closed,
                routes,
                session_buffer,
            ));
            (&raw mut (*node).figures).write((*node).sessions.figures());
            (&raw mut (*node).iface).write(iface);
            (&raw mut (*node).sockets).write(sockets);
            (&raw mut (*node).shards).write(shards);
            (&raw mut (*node).name_socket).write(name_socket);
            (&raw mut (*node).datagram_socket).write(datagram_socket);
            (&raw mut (*node).scratch).write(scratch);
            // SAFETY: every field is written (the list is `every_field_of_node`'s).
            Ok(place.assume_init_mut())
        }
    }

    /// Our IPv4 address.
    pub fn address(&self) -> Ipv4Address {
        match self.iface.ipv4_addr() {
            Some(address) => address,
            None => Ipv4Address::UNSPECIFIED,
        }
    }

    /// The session service: listeners, counters, ledger, events.
    pub fn session_service(&mut self) -> &mut SessionService<'a> {
        &mut self.sessions
    }

    /// Reads and writes of established sessions (for [`Handler::Application`]).
    ///
    /// [`Handler::Application`]: crate::session::Handler::Application
    pub fn sessions(&mut self, now: Instant) -> Sessions<'_, 'a> {
        Sessions {
            service: &mut self.sessions,
            sockets: &mut self.shards,
            now,
        }
    }

    /// Stops taking sessions and closes the open ones gracefully.
    pub fn shut_down_sessions(&mut self, now: Instant) {
        self.sessions.shut_down(now, &mut self.shards);
    }

    /// Does everything due at `now`: frames in (one at a time, the session gate re-armed
    /// before each), services, timers, frames out. Returns when to call again at the latest
    /// (`None`: only when a frame arrives).
    pub fn poll<D: Device + ?Sized>(&mut self, now: Instant, device: &mut D) -> Option<Instant> {
        self.iface.poll_maintenance(now);
        let mut more = false;
        for _ in 0..MAX_FRAMES_PER_POLL {
            self.sessions.refresh(now, &mut self.shards);
            more = self.sessions.ingress(
                now,
                device,
                &mut self.iface,
                &mut self.shards,
                &mut self.sockets,
            );
            if !more {
                break;
            }
            // A datagram for the name service is answered before the next frame comes in, so
            // its socket never overflows unseen (smoltcp drops a datagram that finds the
            // receive queue full without a trace); answers the send queue cannot take are
            // counted, and a full send queue goes out before more frames are read.
            // The same for the datagram service: its queue is emptied as datagrams arrive.
            if self
                .sockets
                .get::<udp::Socket>(self.datagram_socket)
                .can_recv()
            {
                self.service_datagrams(now);
            }
            if self.sockets.get::<udp::Socket>(self.name_socket).can_recv() {
                self.service_names(now);
                if !self.sockets.get::<udp::Socket>(self.name_socket).can_send() {
                    self.egress_home(now, device);
                }
            }
        }
        self.service_names(now);
        self.service_datagrams(now);
        self.sessions
            .service(now, &mut self.shards, &self.names, self.scratch);
        self.sessions.refresh(now, &mut self.shards);
        // Node status reports the ledger as it stands after this service pass.
        self.figures = self.sessions.figures();
        self.egress_home(now, device);
        self.sessions
            .egress(now, device, &mut self.iface, &mut self.shards);
        if more {
            return Some(now);
        }
        [
            self.iface.poll_at(now, &self.sockets),
            self.names.poll_at(),
            self.browse.poll_at(),
            self.datagrams.poll_at(),
            self.sessions.poll_at(&self.shards),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Sends what the node's own sockets have queued.
    fn egress_home<D: Device + ?Sized>(&mut self, now: Instant, device: &mut D) {
        let mut watched = self.sessions.watched(device);
        drain_egress(&mut self.iface, now, &mut watched, &mut self.sockets);
    }

    /// The statistics block node status answers carry now (UNIT_ID and session figures
    /// included).
    pub fn node_status_statistics(&self) -> nbns::Statistics {
        self.names.node_status_statistics(&self.figures)
    }

    fn service_names(&mut self, now: Instant) {
        // Receive everything queued, replying as we go; the scratch copy frees the socket for
        // the replies.
        let mut unsent = 0;
        loop {
            let socket = self.sockets.get_mut::<udp::Socket>(self.name_socket);
            let (len, from) = match recv_datagram(socket, &mut self.scratch[..MIN_SCRATCH]) {
                Some(Ok(got)) => got,
                // Longer than any name service packet: smoltcp has dequeued it; count it.
                Some(Err(Oversized)) => {
                    self.names.count_oversized();
                    continue;
                }
                None => break,
            };
            self.names.receive(
                &self.scratch[..len],
                from,
                &self.figures,
                &mut |to, repr| unsent += u32::from(!send_to(socket, to, repr)),
            );
        }
        let socket = self.sockets.get_mut::<udp::Socket>(self.name_socket);
        self.names.poll(now, &mut |to, repr| {
            unsent += u32::from(!send_to(socket, to, repr))
        });
        if unsent > 0 {
            self.names.count_unsent(unsent);
        }
    }
}

impl Node<'_> {
    /// Sends `user_data` from our registered name `from` to `to` (see
    /// [`crate::datagram_service`]); queued on UDP 138 for the next poll.
    pub fn send_datagram(
        &mut self,
        from: Name,
        to: Target,
        user_data: &[u8],
    ) -> Result<(), SendError> {
        let socket = self.sockets.get_mut::<udp::Socket>(self.datagram_socket);
        self.datagrams
            .send(&self.names, from, to, user_data, &mut |to, repr| {
                send_datagram_to(socket, to, repr)
            })
    }

    /// Sends `data` as a mailslot write to `mailslot` (e.g. `\MAILSLOT\BROWSE`) from our name
    /// `from` to `to`.
    pub fn send_mailslot(
        &mut self,
        from: Name,
        to: Target,
        mailslot: &[u8],
        data: &[u8],
    ) -> Result<(), SendError> {
        let socket = self.sockets.get_mut::<udp::Socket>(self.datagram_socket);
        self.datagrams
            .send_mailslot(&self.names, from, to, mailslot, data, &mut |to, repr| {
                send_datagram_to(socket, to, repr)
            })
    }

    /// Stops the browse announcer: queues its last HostAnnouncement (server type 0, so the
    /// master browser drops us at once). Call before releasing the names; the next poll sends
    /// it.
    pub fn shut_down_announcements(&mut self) {
        if let Some(last) = self.browse.shut_down() {
            self.send_announcement(&last);
        }
    }

    fn send_announcement(&mut self, announcement: &HostAnnouncement) {
        let to = Target::Group(announcement.destination);
        if let Err(error) = self.send_mailslot(
            announcement.source,
            to,
            HostAnnouncement::MAILSLOT,
            announcement.frame(),
        ) {
            self.browse.count_failed();
            net_debug!("host announcement not sent: {}", error);
        }
    }

    fn service_datagrams(&mut self, now: Instant) {
        loop {
            let socket = self.sockets.get_mut::<udp::Socket>(self.datagram_socket);
            let (len, from) = match recv_datagram(socket, &mut self.scratch[..MIN_SCRATCH]) {
                Some(Ok(got)) => got,
                Some(Err(Oversized)) => {
                    self.datagrams.count_oversized();
                    continue;
                }
                None => break,
            };
            // `len` is within the part of the scratch memory the datagram was read into.
            let bytes = self.scratch.get(..len).unwrap_or_default();
            let inbound = self
                .datagrams
                .receive(bytes, from, &self.names, &mut |to, repr| {
                    send_datagram_to(socket, to, repr)
                });
            if let Some(inbound) = inbound {
                self.browse.receive(inbound, now);
            }
        }
        while let Some(announcement) = self.browse.poll(now, &self.names) {
            self.send_announcement(&announcement);
        }
        // Name queries for a datagram being resolved leave from 138: the answer comes back here.
        let socket = self.sockets.get_mut::<udp::Socket>(self.datagram_socket);
        self.datagrams.poll(now, &mut |to, repr| {
            send_to(socket, to, repr);
            true
        });
        let counters = self.datagrams.counters();
        self.names
            .set_datagram_counts(counters.sent.get(), counters.delivered.get());
    }
}

/// The fields [`Node::new_in`] writes one by one: this stops compiling when a field is added,
/// until it is added here, and there.
#[allow(dead_code)]
fn every_field_of_node(node: Node<'_>) {
    let Node {
        iface: _,
        sockets: _,
        shards: _,
        name_socket: _,
        names: _,
        datagram_socket: _,
        datagrams: _,
        browse: _,
        sessions: _,
        figures: _,
        scratch: _,
    } = node;
}

/// A datagram longer than the receive buffer: smoltcp has dequeued and dropped it; the
/// caller counts it.
struct Oversized;

/// Takes the next datagram queued on `socket` into `buffer`: its length and the addresses it
/// came from and to. `None`: nothing is queued. Datagrams without IPv4 addresses at both ends
/// are dequeued and skipped.
// Always inlined (into both services): the firmware measured 56 bytes smaller so.
#[inline(always)]
fn recv_datagram(
    socket: &mut udp::Socket,
    buffer: &mut [u8],
) -> Option<Result<(usize, Received), Oversized>> {
    loop {
        let (len, meta) = match socket.recv_slice(buffer) {
            Ok(got) => got,
            Err(udp::RecvError::Truncated) => return Some(Err(Oversized)),
            Err(udp::RecvError::Exhausted) => return None,
        };
        let (IpAddress::Ipv4(source), Some(IpAddress::Ipv4(destination))) =
            (meta.endpoint.addr, meta.local_address)
        else {
            continue;
        };
        let from = Received {
            source: Destination {
                address: source,
                port: meta.endpoint.port,
            },
            destination,
        };
        return Some(Ok((len, from)));
    }
}

/// Queues `repr` for `to` on the datagram service's socket; `false` if the queue is full.
fn send_datagram_to(socket: &mut udp::Socket, to: Destination, repr: &nbds::Repr) -> bool {
    let endpoint = IpEndpoint::new(to.address.into(), to.port);
    match socket.send(repr.buffer_len(), endpoint) {
        Ok(buffer) => {
            repr.emit(&mut nbds::Packet::new_unchecked(buffer));
            true
        }
        Err(_) => {
            net_debug!(
                "datagram service: send queue full, packet to {} dropped",
                to.address
            );
            false
        }
    }
}

/// A session-service TCP socket on the buffers given, with the options every slot keeps.
fn tcp_socket<'a>(rx: &'a mut [u8], tx: &'a mut [u8]) -> tcp::Socket<'a> {
    let mut socket = tcp::Socket::new(tcp::SocketBuffer::new(rx), tcp::SocketBuffer::new(tx));
    // Request/response traffic: no Nagle. No smoltcp timeout or keep-alive: those abort with
    // a reset; the ledger owns every deadline.
    socket.set_nagle_enabled(false);
    socket
}

/// Queues `repr` for `to` on `socket`, with the source address chosen by smoltcp (our unicast
/// address, never the broadcast address a request came to). `false`: the send queue was
/// full, and the packet is dropped.
fn send_to(socket: &mut udp::Socket, to: Destination, repr: &nbns::Repr) -> bool {
    let endpoint = IpEndpoint::new(to.address.into(), to.port);
    match socket.send(repr.buffer_len(), endpoint) {
        Ok(buffer) => {
            repr.emit(&mut nbns::Packet::new_unchecked(buffer));
            true
        }
        Err(_) => {
            net_debug!(
                "name service: send queue full, packet to {} dropped",
                to.address
            );
            false
        }
    }
}

#[cfg(all(test, feature = "std"))]
mod test {
    use super::*;

    #[test]
    fn leaked_storage_has_every_piece_sized_for_its_slots() {
        let storage = NodeStorage::leaked(3, 2, 4096, 8);
        assert_eq!(storage.sockets.len(), sockets_needed(5));
        assert_eq!(storage.session_memory.len(), 2 * 4096 * 3);
        assert_eq!(storage.refusals.len(), 2);
        assert_eq!(storage.ledger.len(), 5);
        assert_eq!(storage.syn_backlog.len(), 8);
        assert_eq!(storage.recently_closed.len(), closed_record_for(5));
        assert_eq!(storage.name_service.rx.len(), UDP_BYTES);
        assert_eq!(storage.name_service.tx_meta.len(), UDP_PACKETS);
        assert_eq!(storage.scratch.len(), SCRATCH);
        assert_eq!(closed_record_for(5), 4096);
        assert_eq!(closed_record_for(1000), 8000);
    }

    fn config() -> NodeConfig {
        NodeConfig {
            mac: [2, 0, 0, 0, 0, 1],
            address: Ipv4Cidr::new(Ipv4Address::new(192, 168, 69, 1), 24),
            gateway: None,
            scope: Scope::NONE,
            hide_mac: false,
            seed: 7,
            session: SessionConfig::DEFAULT,
        }
    }

    fn build(storage: NodeStorage<'static>) -> Result<Node<'static>, NodeError> {
        let mut device = smoltcp::phy::Loopback::new(smoltcp::phy::Medium::Ethernet);
        Node::new(config(), &mut device, storage, Instant::ZERO)
    }

    #[test]
    fn new_in_builds_the_node_in_the_place_given() {
        let place = Box::leak(Box::new(MaybeUninit::uninit()));
        let mut device = smoltcp::phy::Loopback::new(smoltcp::phy::Medium::Ethernet);
        let storage = NodeStorage::leaked(2, 1, 2048, 4);
        let at = place.as_ptr() as usize;
        let node = Node::new_in(place, config(), &mut device, storage, Instant::ZERO).unwrap();
        assert_eq!(node as *const Node as usize, at);
        assert_eq!(node.address(), Ipv4Address::new(192, 168, 69, 1));
        assert_eq!(node.session_service().ledger().session_slots, 2);
        node.names
            .add_name(Name::new("NETBT", 0x20).unwrap(), false)
            .unwrap();
        assert_eq!(node.names.names().len(), 1);
        // Nothing to do before the names start; then the claim's broadcasts are due.
        assert_eq!(node.poll(Instant::ZERO, &mut device), None);
        node.names.start(Instant::ZERO);
        let next = node.poll(Instant::ZERO, &mut device);
        assert!(next.is_some_and(|at| at > Instant::ZERO), "{next:?}");
        assert!(!node.names.is_ready());
    }

    #[test]
    fn the_name_service_buffers_and_the_scratch_memory_are_checked() {
        let mut storage = NodeStorage::leaked(1, 1, 2048, 0);
        storage.name_service.rx = vec![0u8; MAX_DATAGRAM_LENGTH - 1].leak();
        assert_eq!(build(storage).err(), Some(NodeError::NameStorageTooSmall));
        let mut storage = NodeStorage::leaked(1, 1, 2048, 0);
        storage.name_service.tx_meta = &mut [];
        assert_eq!(build(storage).err(), Some(NodeError::NameStorageTooSmall));
        let mut storage = NodeStorage::leaked(1, 1, 2048, 0);
        storage.scratch = vec![0u8; MIN_SCRATCH - 1].leak();
        assert_eq!(build(storage).err(), Some(NodeError::ScratchTooSmall));
        // The least of each is enough: one 576-byte datagram each way, MIN_SCRATCH bytes.
        let mut storage = NodeStorage::leaked(1, 1, 2048, 0);
        storage.name_service = UdpStorage {
            rx_meta: vec![udp::PacketMetadata::EMPTY; 1].leak(),
            rx: vec![0u8; MAX_DATAGRAM_LENGTH].leak(),
            tx_meta: vec![udp::PacketMetadata::EMPTY; 1].leak(),
            tx: vec![0u8; MAX_DATAGRAM_LENGTH].leak(),
        };
        storage.scratch = vec![0u8; MIN_SCRATCH].leak();
        storage.name_events = &mut [];
        storage.session_events = &mut [];
        assert!(build(storage).is_ok());
    }
}
