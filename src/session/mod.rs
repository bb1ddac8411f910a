//! The session service (TCP 139): an explicit ledger of transport sockets that are reserved,
//! refused and recycled on purpose, so running out of them is a polite negative response, a
//! counter and an event, never a TCP reset.
//!
//! The ledger holds S *session* slots followed by R *refusal* slots, one smoltcp TCP socket
//! each, created once. smoltcp hands a SYN to the first listening socket in the socket set,
//! so connections land on session slots while one is free. When none is, the
//! [gate](crate::gate) keeps the SYN for up to [`SessionConfig::refusal_delay`] in case one
//! frees, then hands it to a refusal slot, which answers 0x83 "called name present, but
//! insufficient resources". While the refusal slots are busy too, SYNs wait in the gate's
//! backlog (or, when it is full, are dropped and retransmitted by the client).
//!
//! A slot's life (see [`Phase`]): Free → Listening → AwaitingRequest (deadline
//! [`SessionConfig::request_timeout`]) → Established → Closing → Free, or, after a negative
//! response, AwaitingRequest → Draining (wait up to [`SessionConfig::drain_timeout`] for the
//! peer's FIN) → Closing → Free. A slot is recycled only when smoltcp reports CLOSED, never
//! out of TIME-WAIT. Only peers that stopped responding are aborted (which sends a reset to
//! nobody who listens), and every abort is counted:
//!
//! * a connection stuck half-open for [`SessionConfig::handshake_timeout`];
//! * a close not finished within [`SessionConfig::close_timeout`] (FIN-WAIT, LAST-ACK);
//! * an established session whose unacknowledged data made no progress for the keepalive
//!   interval (the peer vanished).
//!
//! A peer that connects and never sends a request is closed at the request deadline; its slot
//! is free again within `request_timeout + close_timeout`, or, if the peer closes in turn, once
//! smoltcp's TIME-WAIT (a fixed 10 s) is over.

mod slot;

use heapless::{Deque, Vec};
use smoltcp::iface::{SocketHandle, SocketSet};
use smoltcp::socket::tcp::{self, State};
use smoltcp::time::Instant;
use smoltcp::wire::{IpEndpoint, IpListenEndpoint, Ipv4Address};

pub use self::slot::{Phase, Role, Slot, SlotId};
use crate::gate::{GateCounters, GateView, Gated, HeldSyn, SynBacklog, SynTaker};
use crate::name_service::{NameService, NameState};
use crate::wire::SESSION_SERVICE_PORT;
use crate::wire::name::{Name, NbName};
use crate::wire::nbss::{self, MessageType, NegativeCode};
pub use smoltcp::time::Duration;

/// Listeners the service can hold.
pub const MAX_LISTENERS: usize = 16;
/// Session events queued for the owner before the oldest are dropped (and counted).
pub const MAX_EVENTS: usize = 64;
/// Longest SESSION REQUEST body accepted: two names of the longest wire form.
pub const MAX_REQUEST_BODY: usize = 2 * crate::wire::name::MAX_WIRE_LEN;
/// Receive buffer of a refusal slot: one whole request of the longest form.
pub const REFUSAL_RX: usize = nbss::HEADER_LEN + MAX_REQUEST_BODY;
/// Send buffer of a refusal slot: one negative response.
pub const REFUSAL_TX: usize = 16;
/// How long an aborted socket may take to send its reset before the slot is reused anyway.
const RESET_BOUND: Duration = Duration::from_secs(1);
/// Smallest session slot buffer (a whole request must fit).
pub const MIN_SESSION_BUFFER: usize = REFUSAL_RX;

/// The session service's timers and handler.
#[derive(Debug, Clone, Copy)]
pub struct SessionConfig {
    /// How long a connected peer has to send its SESSION REQUEST.
    pub request_timeout: Duration,
    /// How long a refused peer has to close first, before we close.
    pub drain_timeout: Duration,
    /// How long a close may take before the slot is aborted (TIME-WAIT is not cut short).
    pub close_timeout: Duration,
    /// How long a connection may stay half-open (SYN-RECEIVED).
    pub handshake_timeout: Duration,
    /// Idle time after which a keepalive (0x85) is sent, and the time unacknowledged data may
    /// go without progress before the peer is declared gone. `None`: no keepalives, and a
    /// 60 s progress bound.
    pub keepalive: Option<Duration>,
    /// What established sessions do.
    pub handler: Handler,
    /// Hold acceptable requests for the owner to accept or refuse ([`SessionEvent::Requested`])
    /// instead of answering 0x82 at once; e.g. a relay that must reach its backend first.
    pub defer_accept: bool,
    /// How long a SYN that finds every session slot busy waits in the gate's backlog for one
    /// to free before a refusal slot takes it (and answers 0x83). A burst the session slots
    /// clear within this is served instead of refused; it is also the least time to a 0x83
    /// while the session slots stay busy. Zero: refusal slots take SYNs at once.
    pub refusal_delay: Duration,
}

impl SessionConfig {
    /// The defaults: request 10 s, drain 2 s, close 5 s, handshake 5 s, keepalive 60 s (the
    /// RFC 1001 default), echo, refusal delay 2 ms.
    pub const DEFAULT: SessionConfig = SessionConfig {
        request_timeout: Duration::from_secs(10),
        drain_timeout: Duration::from_secs(2),
        close_timeout: Duration::from_secs(5),
        handshake_timeout: Duration::from_secs(5),
        keepalive: Some(Duration::from_secs(60)),
        handler: Handler::Echo,
        defer_accept: false,
        refusal_delay: Duration::from_millis(2),
    };

    fn progress_bound(&self) -> Duration {
        self.keepalive.unwrap_or(Duration::from_secs(60))
    }
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig::DEFAULT
    }
}

/// What the node does with established sessions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handler {
    /// Every session message is sent back as it arrives.
    Echo,
    /// Session messages are read and dropped.
    Discard,
    /// The owner reads and writes through [`Sessions`].
    Application,
}

/// Everything the session service counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct SessionCounters {
    /// Positive session responses sent.
    pub positive: u32,
    /// Negative responses 0x80 (not listening on called name).
    pub not_listening_on_called: u32,
    /// Negative responses 0x81 (not listening for calling name).
    pub not_listening_for_calling: u32,
    /// Negative responses 0x82 (called name not present).
    pub called_not_present: u32,
    /// Negative responses 0x83 (insufficient resources): the no-resource conditions.
    pub insufficient_resources: u32,
    /// Negative responses 0x8F (unspecified: malformed or out-of-order request).
    pub unspecified: u32,
    /// SYNs that found no session slot listening (kept in the gate's backlog, or dropped).
    pub syns_held: u32,
    /// Of those, SYNs dropped (backlog full while no slot listened, or kept too long).
    pub syns_dropped: u32,
    /// Kept SYNs handed on once a slot could take them.
    pub syns_replayed: u32,
    /// SYNs the gate handed to a refusal slot because the session slots kept SYNs waiting
    /// past the refusal delay, or the backlog was full.
    pub syns_to_refusal_slots: u32,
    /// SYNs from peers a slot already holds (retransmissions), swallowed by the gate.
    pub duplicate_syns_swallowed: u32,
    /// TCP resets sent from port 139, whatever the cause (only aborts should cause them).
    pub resets_sent: u32,
    /// Peers closed because they sent no request in time.
    pub request_timeouts: u32,
    /// Refused peers that closed first, as they should.
    pub drains: u32,
    /// Refused peers closed by us because they did not close in time.
    pub drain_timeouts: u32,
    /// Connections aborted because they stayed half-open too long.
    pub aborts_handshake: u32,
    /// Connections aborted because their close did not finish in time.
    pub aborts_close: u32,
    /// Sessions aborted because the peer stopped acknowledging data.
    pub aborts_stalled: u32,
    /// Connections the peer reset.
    pub peer_resets: u32,
    /// Sessions the peer closed.
    pub peer_closes: u32,
    /// Keepalives sent.
    pub keepalives_sent: u32,
    /// Keepalives received (and dropped).
    pub keepalives_received: u32,
    /// Established sessions closed for a frame that is not a session message or keepalive.
    pub protocol_errors: u32,
    /// Most session slots busy at once.
    pub high_water: u16,
    /// Events dropped because the owner did not take them.
    pub events_lost: u32,
}

impl SessionCounters {
    /// All negative responses.
    pub fn negative(&self) -> u32 {
        self.not_listening_on_called
            .wrapping_add(self.not_listening_for_calling)
            .wrapping_add(self.called_not_present)
            .wrapping_add(self.insufficient_resources)
            .wrapping_add(self.unspecified)
    }

    /// All aborts (each sends one reset, to a peer that stopped responding).
    pub fn aborts(&self) -> u32 {
        self.aborts_handshake
            .wrapping_add(self.aborts_close)
            .wrapping_add(self.aborts_stalled)
    }

    fn count_negative(&mut self, code: NegativeCode) {
        let counter = match code {
            NegativeCode::NotListeningOnCalledName => &mut self.not_listening_on_called,
            NegativeCode::NotListeningForCallingName => &mut self.not_listening_for_calling,
            NegativeCode::CalledNameNotPresent => &mut self.called_not_present,
            NegativeCode::InsufficientResources => &mut self.insufficient_resources,
            _ => &mut self.unspecified,
        };
        *counter = counter.wrapping_add(1);
    }
}

/// How the ledger stands right now.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct LedgerCounts {
    /// Session slots.
    pub session_slots: u16,
    /// Refusal slots.
    pub refusal_slots: u16,
    /// Session slots listening (free for a new session).
    pub free: u16,
    /// Session slots with a connection (awaiting its request or established).
    pub busy: u16,
    /// Of those, awaiting their request.
    pub pending: u16,
    /// Refusal slots with a connection.
    pub refusing: u16,
    /// Slots draining a refused peer or closing.
    pub closing: u16,
    /// SYNs waiting in the gate's backlog for a slot.
    pub waiting: u16,
    /// SYNs the backlog can keep.
    pub syn_backlog: u16,
    /// Memory one session slot takes, all of it reserved at start-up: its receive and send
    /// buffers, its socket-table entry and its ledger entry.
    pub bytes_per_session_slot: u32,
    /// Memory one refusal slot takes, likewise.
    pub bytes_per_refusal_slot: u32,
}

/// Why a session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    /// The peer closed (FIN).
    PeerClosed,
    /// The peer reset the connection.
    PeerReset,
    /// The owner (or shutdown) closed it.
    Local,
    /// The peer stopped acknowledging data; aborted.
    Stalled,
    /// The peer sent a frame that has no place in a session.
    ProtocolError,
}

/// What happened, for the owner to log or act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionEvent {
    /// A session was accepted (positive response sent).
    Opened {
        /// The session.
        slot: SlotId,
        /// Who called.
        peer: IpEndpoint,
        /// The name called (as the listener knows it; `*SMBSERVER` resolved).
        called: Name,
        /// The caller's name.
        calling: Name,
    },
    /// A session request the owner must accept or refuse (with
    /// [`SessionConfig::defer_accept`]); unanswered by the request deadline, it is refused
    /// with 0x8F.
    Requested {
        /// The slot holding it.
        slot: SlotId,
        /// Who called.
        peer: IpEndpoint,
        /// The name called (`*SMBSERVER` resolved).
        called: Name,
        /// The caller's name.
        calling: Name,
    },
    /// A session request was refused.
    Refused {
        /// Who called.
        peer: IpEndpoint,
        /// The name called (`None` when the request was malformed).
        called: Option<Name>,
        /// The negative response sent.
        code: NegativeCode,
    },
    /// A connected peer sent no request in time and was closed.
    RequestTimeout {
        /// Who it was.
        peer: IpEndpoint,
    },
    /// An established session ended.
    Closed {
        /// The session.
        slot: SlotId,
        /// Who it was with.
        peer: IpEndpoint,
        /// Why.
        reason: CloseReason,
    },
    /// A connection was aborted (one reset sent) because the peer stopped responding.
    Aborted {
        /// Who it was.
        peer: Option<IpEndpoint>,
        /// The phase it was in.
        phase: Phase,
    },
}

/// A session as the owner sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionInfo {
    /// The slot and connection.
    pub slot: SlotId,
    /// Session or refusal slot.
    pub role: Role,
    /// Where it stands.
    pub phase: Phase,
    /// The peer.
    pub peer: Option<IpEndpoint>,
    /// The called name, once a request was accepted.
    pub called: Option<Name>,
    /// The calling name, once a request arrived.
    pub calling: Option<Name>,
    /// When the connection was established.
    pub connected_at: Instant,
    /// Session message bytes received.
    pub bytes_in: u64,
    /// Session message bytes sent.
    pub bytes_out: u64,
}

/// A listener: sessions to `name` are accepted, optionally only from one calling name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Listener {
    /// The called name (16 bytes, suffix included; the node's scope).
    pub name: Name,
    /// Only this calling name is accepted (`None`: anyone).
    pub calling: Option<Name>,
}

/// Why a call on a session failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionError {
    /// No such session: it ended, or the id is from an earlier connection of the slot.
    NotEstablished,
    /// A message longer than 0x1FFFF bytes, or a write past the message's length.
    TooLong,
    /// The listener table is full.
    TooManyListeners,
}

/// The current incoming session message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Incoming {
    /// Its body length.
    pub length: u32,
    /// Body bytes not read yet.
    pub remaining: u32,
}

/// The name `*SMBSERVER<20>`, which Samba and Windows accept as an alias of the server.
pub const SMBSERVER: Name = Name::from_bytes(*b"*SMBSERVER      ");

/// The session service; see the module documentation.
pub struct SessionService<'a> {
    config: SessionConfig,
    pub(crate) ledger: &'a mut [Slot],
    listeners: Vec<Listener, MAX_LISTENERS>,
    counters: SessionCounters,
    pub(crate) gate: GateCounters,
    pub(crate) backlog: SynBacklog<'a>,
    events: Deque<SessionEvent, MAX_EVENTS>,
    accepting: bool,
    session_buffer: usize,
}

impl GateView for [Slot] {
    fn syn_taker(&self) -> SynTaker {
        // The ledger is in socket-set order: the first listening slot takes the SYN.
        match self.iter().find(|s| s.listening).map(|s| s.role) {
            None => SynTaker::Nobody,
            Some(Role::Session) => SynTaker::SessionSlot,
            Some(Role::Refusal) => SynTaker::RefusalSlot,
        }
    }

    fn holds(&self, address: Ipv4Address, port: u16) -> bool {
        let endpoint = IpEndpoint::new(address.into(), port);
        self.iter().any(|s| {
            s.half_open == Some((address, port))
                || (matches!(
                    s.phase,
                    Phase::AwaitingRequest | Phase::Deciding | Phase::Established | Phase::Draining
                ) && s.peer == Some(endpoint))
        })
    }
}

/// Reads and drops up to `count` received bytes; returns how many.
fn discard(socket: &mut tcp::Socket, count: usize) -> usize {
    let mut done = 0;
    while done < count {
        let got = socket
            .recv(|buffer| {
                let n = buffer.len().min(count - done);
                (n, n)
            })
            .unwrap_or(0);
        if got == 0 {
            break;
        }
        done += got;
    }
    done
}

/// What the start of a connection's byte stream holds.
#[allow(
    clippy::large_enum_variant,
    reason = "lives on the stack for one decision; no allocator to box the names"
)]
enum Request {
    /// Not a whole frame yet.
    Incomplete,
    /// A keepalive (consumed).
    KeepAlive,
    /// A whole, well-formed request (consumed).
    Session { called: NbName, calling: NbName },
    /// Anything else: malformed, too long, or not a request.
    Malformed,
}

fn take_request(socket: &mut tcp::Socket) -> Request {
    let mut header = [0u8; nbss::HEADER_LEN];
    if socket.recv_queue() < nbss::HEADER_LEN
        || socket.peek_slice(&mut header) != Ok(nbss::HEADER_LEN)
    {
        return Request::Incomplete;
    }
    let packet = nbss::Packet::new_unchecked(&header[..]);
    let length = packet.length() as usize;
    match packet.msg_type() {
        MessageType::KeepAlive if length == 0 && packet.flags() == 0 => {
            discard(socket, nbss::HEADER_LEN);
            Request::KeepAlive
        }
        MessageType::SessionRequest
            if length <= MAX_REQUEST_BODY
                && nbss::HEADER_LEN + length <= socket.recv_capacity() =>
        {
            let total = nbss::HEADER_LEN + length;
            if socket.recv_queue() < total {
                return Request::Incomplete;
            }
            let mut frame = [0u8; REFUSAL_RX];
            if socket.peek_slice(&mut frame[..total]) != Ok(total) {
                return Request::Incomplete;
            }
            discard(socket, total);
            match nbss::Packet::new_checked(&frame[..total])
                .and_then(|packet| nbss::Repr::parse(&packet))
            {
                Ok(nbss::Repr::SessionRequest { called, calling }) => {
                    Request::Session { called, calling }
                }
                _ => Request::Malformed,
            }
        }
        _ => Request::Malformed,
    }
}

impl<'a> SessionService<'a> {
    /// A service on `ledger` (one entry per socket in `handles`, session slots first) with a
    /// SYN backlog of `backlog.len()` entries.
    pub(crate) fn new(
        config: SessionConfig,
        ledger: &'a mut [Slot],
        backlog: &'a mut [HeldSyn],
        handles: impl Iterator<Item = (SocketHandle, Role)>,
        session_buffer: usize,
    ) -> SessionService<'a> {
        for (slot, (handle, role)) in ledger.iter_mut().zip(handles) {
            *slot = Slot {
                handle: Some(handle),
                role,
                ..Slot::EMPTY
            };
        }
        SessionService {
            config,
            ledger,
            listeners: Vec::new(),
            counters: SessionCounters::default(),
            gate: GateCounters::new(),
            backlog: SynBacklog::new(backlog, config.refusal_delay),
            events: Deque::new(),
            accepting: true,
            session_buffer,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &SessionConfig {
        &self.config
    }

    /// Accepts sessions to `name` (one of the node's names), from anyone or from one calling
    /// name only. Listening again on a name replaces its filter.
    pub fn listen(&mut self, name: Name, calling: Option<Name>) -> Result<(), SessionError> {
        if let Some(listener) = self.listeners.iter_mut().find(|l| l.name == name) {
            listener.calling = calling;
            return Ok(());
        }
        self.listeners
            .push(Listener { name, calling })
            .map_err(|_| SessionError::TooManyListeners)
    }

    /// Stops accepting sessions to `name` (sessions already open stay).
    pub fn unlisten(&mut self, name: Name) {
        self.listeners.retain(|l| l.name != name);
    }

    /// The listeners.
    pub fn listeners(&self) -> &[Listener] {
        &self.listeners
    }

    /// The counters, the gate's included.
    pub fn counters(&self) -> SessionCounters {
        let mut counters = self.counters;
        counters.syns_held = self.gate.syns_held.get();
        counters.syns_dropped = self.gate.syns_dropped.get();
        counters.syns_replayed = self.gate.syns_replayed.get();
        counters.syns_to_refusal_slots = self.gate.syns_to_refusal_slots.get();
        counters.duplicate_syns_swallowed = self.gate.duplicate_syns_swallowed.get();
        counters.resets_sent = self.gate.resets_sent.get();
        counters
    }

    /// How the ledger stands.
    pub fn ledger(&self) -> LedgerCounts {
        let fixed =
            core::mem::size_of::<smoltcp::iface::SocketStorage>() + core::mem::size_of::<Slot>();
        let mut counts = LedgerCounts {
            bytes_per_session_slot: (2 * self.session_buffer + fixed) as u32,
            bytes_per_refusal_slot: (REFUSAL_RX + REFUSAL_TX + fixed) as u32,
            waiting: u16::try_from(self.backlog.len()).unwrap_or(u16::MAX),
            syn_backlog: u16::try_from(self.backlog.capacity()).unwrap_or(u16::MAX),
            ..LedgerCounts::default()
        };
        for slot in self.ledger.iter() {
            match slot.role {
                Role::Session => {
                    counts.session_slots += 1;
                    match slot.phase {
                        Phase::Listening if slot.half_open.is_none() => counts.free += 1,
                        Phase::AwaitingRequest | Phase::Deciding => {
                            counts.busy += 1;
                            counts.pending += 1;
                        }
                        Phase::Established => counts.busy += 1,
                        Phase::Draining | Phase::Closing => counts.closing += 1,
                        _ => {}
                    }
                }
                Role::Refusal => {
                    counts.refusal_slots += 1;
                    match slot.phase {
                        Phase::AwaitingRequest => counts.refusing += 1,
                        Phase::Draining | Phase::Closing => counts.closing += 1,
                        _ => {}
                    }
                }
            }
        }
        counts
    }

    /// Every slot, as the owner sees it.
    pub fn slots(&self) -> impl Iterator<Item = SessionInfo> + '_ {
        self.ledger.iter().enumerate().map(|(i, s)| info(i, s))
    }

    /// The next event, if any.
    pub fn take_event(&mut self) -> Option<SessionEvent> {
        self.events.pop_front()
    }

    /// Whether new connections are taken.
    pub fn is_accepting(&self) -> bool {
        self.accepting
    }

    /// Stops taking connections and closes every open one (gracefully; the usual bounds
    /// apply). The gate holds further SYNs back.
    pub fn shut_down(&mut self, now: Instant, sockets: &mut SocketSet<'a>) {
        self.accepting = false;
        for index in 0..self.ledger.len() {
            let slot = &mut self.ledger[index];
            let Some(handle) = slot.handle else { continue };
            let socket = sockets.get_mut::<tcp::Socket>(handle);
            match slot.phase {
                Phase::Free | Phase::Closing | Phase::Draining => {}
                Phase::Listening => {
                    if socket.state() == State::Listen {
                        socket.close();
                        slot.enter(Phase::Free, None);
                    }
                }
                Phase::AwaitingRequest => {
                    socket.close();
                    slot.enter(Phase::Closing, Some(now + self.config.close_timeout));
                }
                Phase::Deciding => {
                    self.refuse(index, now, sockets, None, NegativeCode::Unspecified);
                }
                Phase::Established => {
                    let (id, peer) = (self.id(index), self.ledger[index].peer);
                    self.end_session(index, now, sockets, CloseReason::Local, id, peer);
                }
            }
        }
    }

    /// Whether every slot is free (after [`SessionService::shut_down`]: all connections over).
    pub fn is_idle(&self) -> bool {
        self.ledger
            .iter()
            .all(|s| matches!(s.phase, Phase::Free | Phase::Listening) && s.half_open.is_none())
    }

    fn id(&self, index: usize) -> SlotId {
        SlotId {
            index: index as u16,
            generation: self.ledger[index].generation,
        }
    }

    fn note(&mut self, event: SessionEvent) {
        if self.events.is_full() {
            self.events.pop_front();
            self.counters.events_lost = self.counters.events_lost.wrapping_add(1);
        }
        let _ = self.events.push_back(event);
    }

    /// `device` behind this service's SYN gate, at `now`.
    pub(crate) fn gate_in_front_of<'g, D: smoltcp::phy::Device + ?Sized>(
        &'g mut self,
        device: &'g mut D,
        now: Instant,
    ) -> Gated<'g, 'a, D, [Slot]> {
        Gated::new(
            device,
            &*self.ledger,
            &self.gate,
            &mut self.backlog,
            SESSION_SERVICE_PORT,
            now,
        )
    }

    /// Between frames: recycles closed slots, re-arms listeners, and refreshes what the gate
    /// sees. Cheap; the node calls it before every received frame.
    pub(crate) fn refresh(&mut self, now: Instant, sockets: &mut SocketSet<'a>) {
        for slot in self.ledger.iter_mut() {
            let Some(handle) = slot.handle else { continue };
            let socket = sockets.get_mut::<tcp::Socket>(handle);
            let state = socket.state();
            // An aborted socket is CLOSED at once but sends its reset at the next egress and
            // only then forgets the peer; listening before that would swallow the reset.
            let reset_pending = socket.remote_endpoint().is_some() && !slot.expired(now);
            if slot.phase == Phase::Closing && state == State::Closed && !reset_pending {
                slot.recycle();
            }
            if slot.phase == Phase::Free && state == State::Closed && self.accepting {
                let endpoint = IpListenEndpoint {
                    addr: None,
                    port: SESSION_SERVICE_PORT,
                };
                if socket.listen(endpoint).is_ok() {
                    slot.enter(Phase::Listening, None);
                }
            }
            if slot.phase == Phase::Listening {
                slot.listening = state == State::Listen || socket.state() == State::Listen;
                slot.half_open = match (socket.state(), socket.remote_endpoint()) {
                    (State::SynReceived, Some(remote)) => match remote.addr {
                        smoltcp::wire::IpAddress::Ipv4(address) => Some((address, remote.port)),
                    },
                    _ => None,
                };
            }
        }
    }

    /// After frames: moves every slot along (requests, responses, deadlines, closes) and
    /// runs the built-in handler. `scratch` carries echoed bytes.
    pub(crate) fn service(
        &mut self,
        now: Instant,
        sockets: &mut SocketSet<'a>,
        names: &NameService,
        scratch: &mut [u8],
    ) {
        for index in 0..self.ledger.len() {
            self.service_slot(index, now, sockets, names);
        }
        if self.config.handler != Handler::Application {
            self.run_handler(now, sockets, scratch);
        }
        let busy = self.ledger().busy;
        self.counters.high_water = self.counters.high_water.max(busy);
    }

    fn service_slot(
        &mut self,
        index: usize,
        now: Instant,
        sockets: &mut SocketSet<'a>,
        names: &NameService,
    ) {
        let config = self.config;
        let Some(handle) = self.ledger[index].handle else {
            return;
        };
        let socket = sockets.get_mut::<tcp::Socket>(handle);
        let state = socket.state();
        let slot = &mut self.ledger[index];
        match slot.phase {
            Phase::Free => {}
            Phase::Listening => match state {
                State::Listen => slot.syn_at = None,
                State::SynReceived => {
                    let since = *slot.syn_at.get_or_insert(now);
                    if now >= since + config.handshake_timeout {
                        let peer = socket.remote_endpoint();
                        socket.abort();
                        slot.enter(Phase::Closing, Some(now + RESET_BOUND));
                        self.counters.aborts_handshake += 1;
                        net_debug!("session: half-open {:?} aborted", peer);
                        self.note(SessionEvent::Aborted {
                            peer,
                            phase: Phase::Listening,
                        });
                    }
                }
                State::Established | State::CloseWait => {
                    slot.enter(Phase::AwaitingRequest, Some(now + config.request_timeout));
                    slot.peer = socket.remote_endpoint();
                    slot.connected_at = now;
                    slot.last_activity = now;
                    socket.set_nagle_enabled(false);
                    // A request may already be queued.
                    self.service_slot(index, now, sockets, names);
                }
                State::Closed => slot.enter(Phase::Free, None),
                _ => slot.enter(Phase::Closing, Some(now + config.close_timeout)),
            },
            Phase::AwaitingRequest => {
                if state == State::Closed {
                    self.counters.peer_resets += 1;
                    slot.recycle();
                    return;
                }
                loop {
                    match take_request(socket) {
                        Request::KeepAlive => {
                            self.counters.keepalives_received += 1;
                            continue;
                        }
                        Request::Incomplete => {
                            if !socket.may_recv() {
                                // The peer closed without a (whole) request.
                                socket.close();
                                slot.enter(Phase::Closing, Some(now + config.close_timeout));
                            } else if slot.expired(now) {
                                socket.close();
                                slot.enter(Phase::Closing, Some(now + config.close_timeout));
                                self.counters.request_timeouts += 1;
                                if let Some(peer) = slot.peer {
                                    self.note(SessionEvent::RequestTimeout { peer });
                                }
                            }
                        }
                        Request::Malformed => {
                            self.refuse(index, now, sockets, None, NegativeCode::Unspecified);
                        }
                        Request::Session { called, calling } => {
                            let role = slot.role;
                            match self.decide(&called, &calling, names, role) {
                                Ok(listener) if config.defer_accept => {
                                    self.defer(index, now, listener.name, calling.name)
                                }
                                Ok(listener) => {
                                    self.accept(index, now, sockets, listener.name, calling.name)
                                }
                                Err(code) => {
                                    self.refuse(index, now, sockets, Some(called.name), code)
                                }
                            }
                        }
                    }
                    break;
                }
            }
            Phase::Deciding => {
                let id = SlotId {
                    index: index as u16,
                    generation: slot.generation,
                };
                let peer = slot.peer;
                let reason = if state == State::Closed {
                    self.counters.peer_resets += 1;
                    slot.recycle();
                    CloseReason::PeerReset
                } else if !socket.may_recv() {
                    socket.close();
                    slot.enter(Phase::Closing, Some(now + config.close_timeout));
                    CloseReason::PeerClosed
                } else if slot.expired(now) {
                    // The owner never decided: an unspecified refusal, never a silent close.
                    let called = slot.called;
                    self.refuse(index, now, sockets, called, NegativeCode::Unspecified);
                    CloseReason::Local
                } else {
                    return;
                };
                if let Some(peer) = peer {
                    self.note(SessionEvent::Closed {
                        slot: id,
                        peer,
                        reason,
                    });
                }
            }
            Phase::Established => self.service_established(index, now, sockets),
            Phase::Draining => {
                if state == State::Closed {
                    slot.recycle();
                    return;
                }
                discard(socket, usize::MAX);
                if !socket.may_recv() {
                    socket.close();
                    slot.enter(Phase::Closing, Some(now + config.close_timeout));
                    self.counters.drains += 1;
                } else if slot.expired(now) {
                    socket.close();
                    slot.enter(Phase::Closing, Some(now + config.close_timeout));
                    self.counters.drain_timeouts += 1;
                }
            }
            Phase::Closing => match state {
                State::Closed if socket.remote_endpoint().is_some() && !slot.expired(now) => {}
                State::Closed => slot.recycle(),
                // TIME-WAIT ends by itself (smoltcp's fixed 10 s) and is never cut short:
                // our final ACK may still be needed.
                State::TimeWait => slot.deadline = None,
                _ => {
                    // Data we still owe is of no use to anyone once we close.
                    discard(socket, usize::MAX);
                    if slot.expired(now) {
                        let peer = socket.remote_endpoint();
                        socket.abort();
                        slot.deadline = Some(now + RESET_BOUND);
                        self.counters.aborts_close += 1;
                        net_debug!("session: close of {:?} unfinished, aborted", peer);
                        self.note(SessionEvent::Aborted {
                            peer,
                            phase: Phase::Closing,
                        });
                    }
                }
            },
        }
    }

    /// Decides a request that arrived on a slot of `role`: the listener, or the refusal.
    fn decide(
        &self,
        called: &NbName,
        calling: &NbName,
        names: &NameService,
        role: Role,
    ) -> Result<Listener, NegativeCode> {
        let scope = names.scope();
        if !called.scope.matches(scope) {
            return Err(NegativeCode::CalledNameNotPresent);
        }
        let state = |name: &Name| {
            names
                .names()
                .iter()
                .find(|n| n.name == *name && !n.group)
                .map(|n| n.state)
        };
        let listener = if called.name == SMBSERVER.with_suffix(0x20) {
            // The alias stands for the node: its first listener on a server (<20>) name
            // that is ours.
            self.listeners
                .iter()
                .find(|l| l.name.suffix() == 0x20 && state(&l.name) == Some(NameState::Active))
                .copied()
                .ok_or(NegativeCode::NotListeningOnCalledName)?
        } else {
            match state(&called.name) {
                Some(NameState::Active) => {}
                Some(NameState::Conflict) => return Err(NegativeCode::NotListeningOnCalledName),
                _ => return Err(NegativeCode::CalledNameNotPresent),
            }
            self.listeners
                .iter()
                .find(|l| l.name == called.name)
                .copied()
                .ok_or(NegativeCode::NotListeningOnCalledName)?
        };
        if listener.calling.is_some_and(|only| only != calling.name) {
            return Err(NegativeCode::NotListeningForCallingName);
        }
        match role {
            Role::Session => Ok(listener),
            Role::Refusal => Err(NegativeCode::InsufficientResources),
        }
    }

    fn accept(
        &mut self,
        index: usize,
        now: Instant,
        sockets: &mut SocketSet<'a>,
        called: Name,
        calling: Name,
    ) {
        let id = self.id(index);
        let slot = &mut self.ledger[index];
        let Some(handle) = slot.handle else { return };
        let socket = sockets.get_mut::<tcp::Socket>(handle);
        let response = [MessageType::PositiveResponse.into(), 0, 0, 0];
        if slot.send(socket, &response) != response.len() {
            // Cannot happen on a fresh connection; refuse rather than half-answer.
            return self.refuse(index, now, sockets, Some(called), NegativeCode::Unspecified);
        }
        slot.enter(Phase::Established, None);
        slot.called = Some(called);
        slot.calling = Some(calling);
        slot.last_activity = now;
        slot.progress_at = now;
        self.counters.positive += 1;
        if let Some(peer) = slot.peer {
            net_debug!("session: {} from {} opened", called, peer);
            self.note(SessionEvent::Opened {
                slot: id,
                peer,
                called,
                calling,
            });
        }
    }

    /// Holds an acceptable request for the owner's decision ([`Sessions::accept`] or
    /// [`Sessions::refuse`]) until the request deadline.
    fn defer(&mut self, index: usize, now: Instant, called: Name, calling: Name) {
        let id = self.id(index);
        let timeout = self.config.request_timeout;
        let slot = &mut self.ledger[index];
        slot.enter(Phase::Deciding, Some(now + timeout));
        slot.called = Some(called);
        slot.calling = Some(calling);
        if let Some(peer) = slot.peer {
            self.note(SessionEvent::Requested {
                slot: id,
                peer,
                called,
                calling,
            });
        }
    }

    fn refuse(
        &mut self,
        index: usize,
        now: Instant,
        sockets: &mut SocketSet<'a>,
        called: Option<Name>,
        code: NegativeCode,
    ) {
        let slot = &mut self.ledger[index];
        let Some(handle) = slot.handle else { return };
        let socket = sockets.get_mut::<tcp::Socket>(handle);
        let response = [MessageType::NegativeResponse.into(), 0, 0, 1, code.into()];
        let _ = socket.send_slice(&response);
        slot.called = called;
        slot.enter(Phase::Draining, Some(now + self.config.drain_timeout));
        self.counters.count_negative(code);
        if let Some(peer) = slot.peer {
            self.note(SessionEvent::Refused { peer, called, code });
        }
    }

    fn service_established(&mut self, index: usize, now: Instant, sockets: &mut SocketSet<'a>) {
        let id = self.id(index);
        let config = self.config;
        let slot = &mut self.ledger[index];
        let Some(handle) = slot.handle else { return };
        let peer = slot.peer;
        let socket = sockets.get_mut::<tcp::Socket>(handle);
        if socket.state() == State::Closed {
            self.counters.peer_resets += 1;
            slot.recycle();
            if let Some(peer) = peer {
                self.note(SessionEvent::Closed {
                    slot: id,
                    peer,
                    reason: CloseReason::PeerReset,
                });
            }
            return;
        }
        if !socket.may_recv() {
            self.counters.peer_closes += 1;
            return self.end_session(index, now, sockets, CloseReason::PeerClosed, id, peer);
        }
        // Progress of what we sent: a peer that acknowledges nothing for the bound is gone.
        // (A full send buffer that keeps draining is progress, however full it stays.)
        let queued = socket.send_queue();
        let acked = slot.handed_over - queued as u64;
        if queued == 0 || acked > slot.acked {
            slot.progress_at = now;
        }
        slot.acked = acked;
        if queued > 0 && now >= slot.progress_at + config.progress_bound() {
            socket.abort();
            slot.enter(Phase::Closing, Some(now + RESET_BOUND));
            self.counters.aborts_stalled += 1;
            self.note(SessionEvent::Aborted {
                peer,
                phase: Phase::Established,
            });
            if let Some(peer) = peer {
                self.note(SessionEvent::Closed {
                    slot: id,
                    peer,
                    reason: CloseReason::Stalled,
                });
            }
            return;
        }
        // Keepalive after the idle interval, between messages only. A session in the middle
        // of a message or with a full send buffer is not idle: the timer restarts.
        if let Some(interval) = config.keepalive
            && now >= slot.last_activity + interval
        {
            let room = socket.send_capacity() - socket.send_queue();
            if slot.tx_remaining == 0 && room >= nbss::HEADER_LEN {
                slot.send(socket, &[MessageType::KeepAlive.into(), 0, 0, 0]);
                self.counters.keepalives_sent += 1;
            }
            slot.last_activity = now;
        }
    }

    fn end_session(
        &mut self,
        index: usize,
        now: Instant,
        sockets: &mut SocketSet<'a>,
        reason: CloseReason,
        id: SlotId,
        peer: Option<IpEndpoint>,
    ) {
        let slot = &mut self.ledger[index];
        let Some(handle) = slot.handle else { return };
        sockets.get_mut::<tcp::Socket>(handle).close();
        slot.enter(Phase::Closing, Some(now + self.config.close_timeout));
        if let Some(peer) = peer {
            self.note(SessionEvent::Closed {
                slot: id,
                peer,
                reason,
            });
        }
    }

    /// When the service next needs a poll (a kept SYN a slot can take now, a deadline, a
    /// keepalive, a progress bound).
    pub(crate) fn poll_at(&self) -> Option<Instant> {
        let mut next: Option<Instant> = None;
        let mut consider = |at: Instant| next = Some(next.map_or(at, |n: Instant| n.min(at)));
        if !self.backlog.is_empty() {
            match self.ledger.syn_taker() {
                SynTaker::SessionSlot => return Some(Instant::ZERO),
                SynTaker::RefusalSlot => {
                    if let Some(due) = self.backlog.refusal_due() {
                        consider(due);
                    }
                }
                SynTaker::Nobody => {}
            }
        }
        for slot in self.ledger.iter() {
            if let Some(deadline) = slot.deadline {
                consider(deadline);
            }
            if let Some(syn_at) = slot.syn_at {
                consider(syn_at + self.config.handshake_timeout);
            }
            if slot.half_open.is_some() && slot.syn_at.is_none() {
                consider(Instant::ZERO); // note the handshake start now
            }
            if slot.phase == Phase::Established {
                if let Some(interval) = self.config.keepalive {
                    consider(slot.last_activity + interval);
                }
                if slot.handed_over > slot.acked {
                    consider(slot.progress_at + self.config.progress_bound());
                }
            }
        }
        next
    }

    /// The live ledger for the node status statistics: (no-resource conditions, free, total,
    /// pending, max sessions, session data packet size).
    pub(crate) fn statistics(&self) -> (u16, u16, u16, u16, u16, u16) {
        let counts = self.ledger();
        let total = counts.session_slots + counts.refusal_slots;
        let free = self
            .ledger
            .iter()
            .filter(|s| s.phase == Phase::Listening && s.half_open.is_none())
            .count() as u16;
        (
            self.counters
                .insufficient_resources
                .min(u32::from(u16::MAX)) as u16,
            free,
            total,
            counts.pending,
            counts.session_slots,
            self.session_buffer.min(usize::from(u16::MAX)) as u16,
        )
    }

    /// Runs the built-in handler on every established session.
    fn run_handler(&mut self, now: Instant, sockets: &mut SocketSet<'a>, scratch: &mut [u8]) {
        let handler = self.config.handler;
        for index in 0..self.ledger.len() {
            if self.ledger[index].phase != Phase::Established {
                continue;
            }
            let id = self.id(index);
            let mut sessions = Sessions {
                service: self,
                sockets,
                now,
            };
            // Errors end the session inside the calls; nothing to do here.
            let _ = match handler {
                Handler::Echo => sessions.echo(id, scratch),
                Handler::Discard => sessions.discard(id, scratch),
                Handler::Application => Ok(()),
            };
        }
    }
}

fn info(index: usize, slot: &Slot) -> SessionInfo {
    SessionInfo {
        slot: SlotId {
            index: index as u16,
            generation: slot.generation,
        },
        role: slot.role,
        phase: slot.phase,
        peer: slot.peer,
        called: slot.called,
        calling: slot.calling,
        connected_at: slot.connected_at,
        bytes_in: slot.bytes_in,
        bytes_out: slot.bytes_out,
    }
}

/// Reads and writes of established sessions, for the owner (see [`crate::node::Node::sessions`]).
///
/// Incoming bytes arrive as session messages: [`Sessions::incoming`] starts the next message
/// (keepalives are dropped on the way) and [`Sessions::read`] reads its body, never past its
/// end. Outgoing: [`Sessions::begin_message`] writes a header with the body length, then
/// [`Sessions::write`] the body, never past that length. Nothing blocks: calls do what the
/// socket buffers allow and say how much.
pub struct Sessions<'s, 'a> {
    pub(crate) service: &'s mut SessionService<'a>,
    pub(crate) sockets: &'s mut SocketSet<'a>,
    pub(crate) now: Instant,
}

impl<'a> Sessions<'_, 'a> {
    /// The service (counters, listeners, events).
    pub fn service(&mut self) -> &mut SessionService<'a> {
        self.service
    }

    /// The established sessions.
    pub fn established(&self) -> impl Iterator<Item = SlotId> + '_ {
        self.service
            .ledger
            .iter()
            .enumerate()
            .filter(|(_, s)| s.phase == Phase::Established)
            .map(|(i, s)| SlotId {
                index: i as u16,
                generation: s.generation,
            })
    }

    fn slot(&self, id: SlotId) -> Result<(usize, SocketHandle), SessionError> {
        let index = usize::from(id.index);
        match self.service.ledger.get(index) {
            Some(slot) if slot.generation == id.generation && slot.phase == Phase::Established => {
                slot.handle
                    .map(|h| (index, h))
                    .ok_or(SessionError::NotEstablished)
            }
            _ => Err(SessionError::NotEstablished),
        }
    }

    /// What the owner knows about a session.
    pub fn info(&self, id: SlotId) -> Result<SessionInfo, SessionError> {
        let (index, _) = self.slot(id)?;
        Ok(info(index, &self.service.ledger[index]))
    }

    /// The current incoming message, starting the next one if the last was read to its end
    /// and its header has arrived. A zero-length message is reported once, already complete.
    /// A frame that has no place in a session (anything but a message or keepalive) closes
    /// it, counted as a protocol error.
    pub fn incoming(&mut self, id: SlotId) -> Result<Option<Incoming>, SessionError> {
        let (index, handle) = self.slot(id)?;
        loop {
            let slot = &mut self.service.ledger[index];
            let socket = self.sockets.get_mut::<tcp::Socket>(handle);
            if let Some(remaining) = slot.rx_remaining {
                return Ok(Some(Incoming {
                    length: slot.current_length,
                    remaining,
                }));
            }
            let mut header = [0u8; nbss::HEADER_LEN];
            if socket.recv_queue() < nbss::HEADER_LEN
                || socket.peek_slice(&mut header) != Ok(nbss::HEADER_LEN)
            {
                return Ok(None);
            }
            let packet = nbss::Packet::new_unchecked(&header[..]);
            let reserved = packet.flags() & !0x01 != 0;
            let length = packet.length();
            match packet.msg_type() {
                MessageType::SessionMessage if !reserved => {
                    discard(socket, nbss::HEADER_LEN);
                    slot.last_activity = self.now;
                    slot.current_length = length;
                    if length == 0 {
                        return Ok(Some(Incoming {
                            length: 0,
                            remaining: 0,
                        }));
                    }
                    slot.rx_remaining = Some(length);
                }
                MessageType::KeepAlive if !reserved && length == 0 => {
                    discard(socket, nbss::HEADER_LEN);
                    slot.last_activity = self.now;
                    self.service.counters.keepalives_received += 1;
                }
                _ => {
                    self.service.counters.protocol_errors += 1;
                    let peer = slot.peer;
                    let now = self.now;
                    self.service.end_session(
                        index,
                        now,
                        self.sockets,
                        CloseReason::ProtocolError,
                        id,
                        peer,
                    );
                    return Err(SessionError::NotEstablished);
                }
            }
        }
    }

    /// Reads body bytes of the current incoming message into `buffer`; returns how many.
    pub fn read(&mut self, id: SlotId, buffer: &mut [u8]) -> Result<usize, SessionError> {
        let (index, handle) = self.slot(id)?;
        let slot = &mut self.service.ledger[index];
        let Some(remaining) = slot.rx_remaining else {
            return Ok(0);
        };
        let want = buffer.len().min(remaining as usize);
        let socket = self.sockets.get_mut::<tcp::Socket>(handle);
        let got = socket.recv_slice(&mut buffer[..want]).unwrap_or(0);
        let left = remaining - got as u32;
        slot.rx_remaining = (left > 0).then_some(left);
        slot.bytes_in += got as u64;
        if got > 0 {
            slot.last_activity = self.now;
        }
        Ok(got)
    }

    /// Bytes the send buffer can take now.
    pub fn send_room(&self, id: SlotId) -> Result<usize, SessionError> {
        let (_, handle) = self.slot(id)?;
        let socket = self.sockets.get::<tcp::Socket>(handle);
        Ok(socket.send_capacity() - socket.send_queue())
    }

    /// Starts an outgoing message of `length` body bytes. `Ok(false)`: not now (the last
    /// message is unfinished, or there is no room for the header).
    pub fn begin_message(&mut self, id: SlotId, length: u32) -> Result<bool, SessionError> {
        if length > nbss::MAX_LENGTH {
            return Err(SessionError::TooLong);
        }
        let room = self.send_room(id)?;
        let (index, handle) = self.slot(id)?;
        let slot = &mut self.service.ledger[index];
        if slot.tx_remaining > 0 || room < nbss::HEADER_LEN {
            return Ok(false);
        }
        let mut header = [0u8; nbss::HEADER_LEN];
        let mut packet = nbss::Packet::new_unchecked(&mut header[..]);
        packet.set_msg_type(MessageType::SessionMessage);
        packet.set_flags(0);
        packet.set_length(length);
        let socket = self.sockets.get_mut::<tcp::Socket>(handle);
        slot.send(socket, &header);
        slot.tx_remaining = length;
        slot.last_activity = self.now;
        Ok(true)
    }

    /// Writes body bytes of the current outgoing message; returns how many fit.
    pub fn write(&mut self, id: SlotId, bytes: &[u8]) -> Result<usize, SessionError> {
        let (index, handle) = self.slot(id)?;
        let slot = &mut self.service.ledger[index];
        if bytes.len() > slot.tx_remaining as usize {
            return Err(SessionError::TooLong);
        }
        let socket = self.sockets.get_mut::<tcp::Socket>(handle);
        let sent = slot.send(socket, bytes);
        slot.tx_remaining -= sent as u32;
        slot.bytes_out += sent as u64;
        if sent > 0 {
            slot.last_activity = self.now;
        }
        Ok(sent)
    }

    /// Accepts a request held for the owner ([`SessionEvent::Requested`]): sends 0x82; the
    /// session is established.
    pub fn accept(&mut self, id: SlotId) -> Result<(), SessionError> {
        let index = self.deciding(id)?;
        let slot = &self.service.ledger[index];
        let (Some(called), Some(calling)) = (slot.called, slot.calling) else {
            return Err(SessionError::NotEstablished);
        };
        let now = self.now;
        self.service
            .accept(index, now, self.sockets, called, calling);
        Ok(())
    }

    /// Refuses a request held for the owner with `code` (0x83 then the code); the peer is
    /// given the drain time to close first.
    pub fn refuse(&mut self, id: SlotId, code: NegativeCode) -> Result<(), SessionError> {
        let index = self.deciding(id)?;
        let called = self.service.ledger[index].called;
        let now = self.now;
        self.service.refuse(index, now, self.sockets, called, code);
        Ok(())
    }

    fn deciding(&self, id: SlotId) -> Result<usize, SessionError> {
        let index = usize::from(id.index);
        match self.service.ledger.get(index) {
            Some(slot) if slot.generation == id.generation && slot.phase == Phase::Deciding => {
                Ok(index)
            }
            _ => Err(SessionError::NotEstablished),
        }
    }

    /// Closes a session (FIN after what is queued).
    pub fn close(&mut self, id: SlotId) -> Result<(), SessionError> {
        let (index, _) = self.slot(id)?;
        let peer = self.service.ledger[index].peer;
        let now = self.now;
        self.service
            .end_session(index, now, self.sockets, CloseReason::Local, id, peer);
        Ok(())
    }

    /// Reads and drops everything that has arrived on `id`.
    pub fn discard(&mut self, id: SlotId, scratch: &mut [u8]) -> Result<(), SessionError> {
        while self.incoming(id)?.is_some() {
            if self.read(id, scratch)? == 0 {
                // A zero-length message was taken whole by `incoming`; a longer one waits
                // for more bytes.
                let (index, _) = self.slot(id)?;
                if self.service.ledger[index].rx_remaining.is_some() {
                    break;
                }
            }
        }
        Ok(())
    }

    /// Echoes what has arrived on `id`: each incoming message goes back as one message of the
    /// same length, as fast as both buffers allow.
    pub fn echo(&mut self, id: SlotId, scratch: &mut [u8]) -> Result<(), SessionError> {
        loop {
            let (index, _) = self.slot(id)?;
            if self.service.ledger[index].tx_remaining == 0 {
                // Between messages: start the echo of the next one, if its header came and
                // ours fits.
                if self.send_room(id)? < nbss::HEADER_LEN {
                    return Ok(());
                }
                let Some(incoming) = self.incoming(id)? else {
                    return Ok(());
                };
                self.begin_message(id, incoming.length)?;
                if incoming.length == 0 {
                    continue;
                }
            }
            let remaining = self.service.ledger[index].tx_remaining as usize;
            let n = remaining.min(self.send_room(id)?).min(scratch.len());
            if n == 0 {
                return Ok(());
            }
            let got = self.read(id, &mut scratch[..n])?;
            if got == 0 {
                return Ok(());
            }
            self.write(id, &scratch[..got])?;
        }
    }
}
