//! [`SessionService`]: listeners, counters, ledger figures, events and shutdown.

use heapless::Vec;
use smoltcp::iface::{Interface, PollResult, SocketSet};
use smoltcp::phy::Device;
use smoltcp::socket::tcp::{self, State};
use smoltcp::time::Instant;
use smoltcp::wire::{IpEndpoint, Ipv4Address};

use super::routes::{Route, Routes};
use super::shards::{Shards, Tally};
use super::slot::{Phase, Slot, SlotId};
use super::types::{
    CloseReason, LedgerCounts, Listener, MAX_LISTENERS, REFUSAL_RX, REFUSAL_TX, SessionConfig,
    SessionCounters, SessionError, SessionEvent, SessionInfo,
};
use crate::event_queue::EventQueue;
use crate::gate::{
    ClosedConnection, Deliver, GateState, GateView, HeldSyn, OneFrame, SynTaker, TxToken, Verdict,
    Watched,
};
use crate::wire::SESSION_SERVICE_PORT;
use crate::wire::name::Name;
use crate::wire::nbss::NegativeCode;

/// The session service; see the module documentation.
pub struct SessionService<'a> {
    pub(super) config: SessionConfig,
    pub(super) ledger: &'a mut [Slot],
    pub(super) listeners: Vec<Listener, MAX_LISTENERS>,
    pub(super) counters: SessionCounters,
    /// The gate's state: its counters, the SYN backlog, the record of closed connections,
    /// the neighbours, and what it noted for the ledger.
    pub(super) gate: GateState<'a>,
    /// Events kept until the owner takes them (the embedder's depth).
    pub(super) events: EventQueue<'a, SessionEvent>,
    pub(super) accepting: bool,
    pub(super) session_buffer: usize,
    /// Which slot holds the connection from each peer.
    pub(super) routes: Routes<'a>,
    /// The shards' tallies summed, per role (session, refusal).
    pub(super) totals: [Tally; 2],
    /// A shard of each role (session, refusal) with a listening slot, the first as far as
    /// known.
    pub(super) listening_shard: [Option<usize>; 2],
    /// Slots per role (session, refusal).
    pub(super) slot_counts: [u16; 2],
}

impl<'a> SessionService<'a> {
    /// A service on `ledger` (each entry [`Slot::placed`] on its socket, session slots first)
    /// with a SYN backlog of `backlog.len()` entries and `routes` (more entries than slots),
    /// keeping up to `events.len()` events until taken.
    pub(crate) fn new(
        config: SessionConfig,
        ledger: &'a mut [Slot],
        events: &'a mut [Option<SessionEvent>],
        backlog: &'a mut [HeldSyn],
        closed: &'a mut [ClosedConnection],
        routes: &'a mut [Route],
        session_buffer: usize,
    ) -> SessionService<'a> {
        let mut slot_counts = [0u16; 2];
        for slot in ledger.iter() {
            let which = super::ledger::role_index(slot.role);
            slot_counts[which] = slot_counts[which].saturating_add(1);
        }
        SessionService {
            config,
            ledger,
            listeners: Vec::new(),
            counters: SessionCounters::default(),
            gate: GateState::new(backlog, config.refusal_delay, closed),
            events: EventQueue::new(events),
            accepting: true,
            session_buffer,
            routes: Routes::new(routes),
            totals: [Tally::default(); 2],
            listening_shard: [None; 2],
            slot_counts,
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
        SessionCounters {
            gate: self.gate.counters.get(),
            ..self.counters
        }
    }

    /// How the ledger stands.
    pub fn ledger(&self) -> LedgerCounts {
        // A slot's socket-table entry, its ledger entry, its share of the route table (two
        // entries) and of its shard.
        let fixed = core::mem::size_of::<smoltcp::iface::SocketStorage>()
            + core::mem::size_of::<Slot>()
            + 2 * core::mem::size_of::<Route>()
            + core::mem::size_of::<super::shards::Shard>().div_ceil(super::shards::SHARD_SLOTS);
        let mut counts = LedgerCounts {
            bytes_per_session_slot: (2 * self.session_buffer + fixed) as u32,
            bytes_per_refusal_slot: (REFUSAL_RX + REFUSAL_TX + fixed) as u32,
            waiting: u16::try_from(self.gate.backlog.len()).unwrap_or(u16::MAX),
            syn_backlog: u16::try_from(self.gate.backlog.capacity()).unwrap_or(u16::MAX),
            ..LedgerCounts::default()
        };
        [counts.session_slots, counts.refusal_slots] = self.slot_counts;
        let [sessions, refusals] = &self.totals;
        counts.free = sessions.free;
        counts.busy = sessions.busy;
        counts.pending = sessions.pending;
        counts.refusing = refusals.refusing;
        counts.closing = sessions.closing + refusals.closing;
        counts
    }

    /// Every slot, as the owner sees it.
    pub fn slots(&self) -> impl Iterator<Item = SessionInfo> + '_ {
        self.ledger.iter().enumerate().map(|(i, s)| info(i, s))
    }

    /// The next event, if any.
    pub fn take_event(&mut self) -> Option<SessionEvent> {
        self.events.pop()
    }

    /// Whether new connections are taken.
    pub fn is_accepting(&self) -> bool {
        self.accepting
    }

    /// Stops taking connections and closes every open one (gracefully; the usual bounds
    /// apply). The gate holds further SYNs back.
    pub fn shut_down(&mut self, now: Instant, sockets: &mut Shards<'a>) {
        self.accepting = false;
        for index in 0..self.ledger.len() {
            let slot = &mut self.ledger[index];
            let Some(handle) = slot.handle() else {
                continue;
            };
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
        self.totals.iter().all(|t| t.active == 0)
    }

    pub(super) fn id(&self, index: usize) -> SlotId {
        SlotId {
            index: index as u16,
            generation: self.ledger[index].generation,
        }
    }

    pub(super) fn note(&mut self, event: SessionEvent) {
        if self.events.push(event) {
            self.counters.events_lost.bump();
        }
    }

    /// Notes that the connection of slot `id` closed for `reason`, if it had a peer (a slot
    /// that never connected has no session to report).
    pub(super) fn note_closed(
        &mut self,
        id: SlotId,
        peer: Option<IpEndpoint>,
        reason: CloseReason,
    ) {
        if let Some(peer) = peer {
            self.note(SessionEvent::Closed {
                slot: id,
                peer,
                reason,
            });
        }
    }

    /// `device`, with what it sends checked by the gate (resets from the session port,
    /// SYN-ACKs).
    pub(crate) fn watched<'g, D: Device + ?Sized>(&'g self, device: &'g mut D) -> Watched<'g, D> {
        Watched::new(device, &self.gate, SESSION_SERVICE_PORT)
    }

    /// What the gate sees of the ledger now.
    fn view(&self) -> LedgerView<'_, 'a> {
        LedgerView {
            ledger: self.ledger,
            routes: &self.routes,
            listening_shard: self.listening_shard,
        }
    }

    /// Where a new SYN would land now.
    pub(super) fn syn_taker(&self) -> SynTaker {
        self.view().syn_taker()
    }

    /// Reads the next frame through the gate and hands it to the interface with the sockets
    /// it is for: the node's own (`home`) or one shard's. `false`: nothing was read.
    pub(crate) fn ingress<D: Device + ?Sized>(
        &mut self,
        now: Instant,
        device: &mut D,
        iface: &mut Interface,
        sockets: &mut Shards<'a>,
        home: &mut SocketSet<'_>,
    ) -> bool {
        let view = LedgerView {
            ledger: self.ledger,
            routes: &self.routes,
            listening_shard: self.listening_shard,
        };
        let capabilities = device.capabilities();
        let inbound = Inbound {
            now,
            iface,
            sockets,
            home,
            capabilities,
        };
        self.gate
            .context(&view, SESSION_SERVICE_PORT, now)
            .next(device, now, inbound)
            .is_some()
    }

    /// Sends what the shards serviced in this poll have to send, and notes when each next
    /// needs a poll.
    pub(crate) fn egress<D: Device + ?Sized>(
        &mut self,
        now: Instant,
        device: &mut D,
        iface: &mut Interface,
        sockets: &mut Shards<'a>,
    ) {
        let dirty = sockets.dirty_now();
        for n in 0..dirty.len {
            let Some(index) = sockets.listed_dirty(dirty, n) else {
                continue;
            };
            let mut watched = Watched::new(device, &self.gate, SESSION_SERVICE_PORT);
            drain_egress(iface, now, &mut watched, sockets.set_quiet(index));
            let sockets_due = iface.poll_at(now, sockets.set(index));
            self.settle(index, now, sockets_due, sockets);
        }
        sockets.clear_dirty();
    }

    /// Notes when shard `index` next needs a poll, after its egress: at once if a socket
    /// changed under the ledger's eyes (smoltcp's timers close TIME-WAIT, an abort's reset
    /// leaves), else at its sockets' or its slots' next timer.
    fn settle(
        &mut self,
        index: usize,
        now: Instant,
        sockets_due: Option<Instant>,
        sockets: &mut Shards<'a>,
    ) {
        let range = sockets.shard(index).slots();
        let changed = self
            .ledger
            .get(range)
            .unwrap_or_default()
            .iter()
            .any(|slot| {
                slot.handle().is_some_and(|at| {
                    let socket = sockets.get::<tcp::Socket>(at);
                    socket.state() != slot.seen || remote_of(socket) != slot.route
                })
            });
        let due = if changed {
            Some(now)
        } else {
            super::shards::earliest(sockets_due, sockets.shard(index).tally.slots_due)
        };
        sockets.settled(index, due);
    }
}

/// Egress passes per socket set and poll, at most.
const MAX_EGRESS_PASSES: usize = 64;

/// Sends what the sockets of `set` have queued through `device`, pass after pass: one egress
/// pass sends at most one packet per socket, so it goes on while any socket sent (at most
/// [`MAX_EGRESS_PASSES`] passes).
pub(crate) fn drain_egress<D: Device + ?Sized>(
    iface: &mut Interface,
    now: Instant,
    device: &mut D,
    set: &mut SocketSet<'_>,
) {
    for _ in 0..MAX_EGRESS_PASSES {
        if iface.poll_egress(now, device, set) == PollResult::None {
            break;
        }
    }
}

/// The remote endpoint of `socket` (half-open, connected or closing), if any.
pub(super) fn remote_of(socket: &tcp::Socket) -> Option<(Ipv4Address, u16)> {
    socket.remote_endpoint().map(|remote| match remote.addr {
        smoltcp::wire::IpAddress::Ipv4(address) => (address, remote.port),
    })
}

/// What the gate sees of the ledger.
pub(crate) struct LedgerView<'v, 'a> {
    ledger: &'v [Slot],
    routes: &'v Routes<'a>,
    listening_shard: [Option<usize>; 2],
}

impl GateView for LedgerView<'_, '_> {
    fn syn_taker(&self) -> SynTaker {
        match self.listening_shard {
            [Some(_), _] => SynTaker::SessionSlot,
            [None, Some(_)] => SynTaker::RefusalSlot,
            [None, None] => SynTaker::Nobody,
        }
    }

    fn holds(&self, address: Ipv4Address, port: u16) -> bool {
        let Some(slot) = self
            .routes
            .get((address, port))
            .and_then(|i| self.ledger.get(i))
        else {
            return false;
        };
        let endpoint = IpEndpoint::new(address.into(), port);
        slot.half_open() == Some((address, port))
            || (matches!(
                slot.phase,
                Phase::AwaitingRequest | Phase::Deciding | Phase::Established | Phase::Draining
            ) && slot.peer == Some(endpoint))
    }

    fn route(&self, address: Ipv4Address, port: u16) -> Option<usize> {
        let slot = self.ledger.get(self.routes.get((address, port))?)?;
        slot.handle().map(|at| usize::from(at.shard))
    }

    fn syn_route(&self, taker: SynTaker) -> Option<usize> {
        match taker {
            SynTaker::SessionSlot => self.listening_shard[0],
            SynTaker::RefusalSlot => self.listening_shard[1],
            SynTaker::Nobody => None,
        }
    }
}

/// Hands a judged frame to the interface, with the sockets it is for.
struct Inbound<'x, 'a, 'h> {
    now: Instant,
    iface: &'x mut Interface,
    sockets: &'x mut Shards<'a>,
    home: &'x mut SocketSet<'h>,
    capabilities: smoltcp::phy::DeviceCapabilities,
}

impl Deliver for Inbound<'_, '_, '_> {
    type Output = ();

    fn deliver<T: smoltcp::phy::TxToken>(self, frame: &[u8], verdict: Verdict, tx: TxToken<'_, T>) {
        let mut one = OneFrame::new(frame, tx, self.capabilities);
        match verdict {
            Verdict::Swallow => {}
            Verdict::Home => {
                self.iface
                    .poll_ingress_single(self.now, &mut one, self.home);
            }
            Verdict::Arp => {
                self.iface
                    .poll_ingress_single(self.now, &mut one, self.home);
                // It may answer for a peer a socket waits to send to.
                self.sockets.mark_active(self.now);
            }
            Verdict::Shard(index) => {
                let set = self.sockets.set_mut(index);
                self.iface.poll_ingress_single(self.now, &mut one, set);
            }
        }
    }
}

pub(super) fn info(index: usize, slot: &Slot) -> SessionInfo {
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
