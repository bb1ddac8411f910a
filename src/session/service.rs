//! [`SessionService`]: listeners, counters, ledger figures, events and shutdown.

use heapless::{Deque, Vec};
use smoltcp::iface::{SocketHandle, SocketSet};
use smoltcp::socket::tcp::{self, State};
use smoltcp::time::Instant;
use smoltcp::wire::IpEndpoint;

use super::slot::{Phase, Role, Slot, SlotId};
use super::types::{
    CloseReason, LedgerCounts, Listener, MAX_EVENTS, MAX_LISTENERS, REFUSAL_RX, REFUSAL_TX,
    SessionConfig, SessionCounters, SessionError, SessionEvent, SessionInfo,
};
use crate::gate::{ClosedConnection, GateState, Gated, HeldSyn};
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
    pub(super) events: Deque<SessionEvent, MAX_EVENTS>,
    pub(super) accepting: bool,
    pub(super) session_buffer: usize,
}

impl<'a> SessionService<'a> {
    /// A service on `ledger` (one entry per socket in `handles`, session slots first) with a
    /// SYN backlog of `backlog.len()` entries.
    pub(crate) fn new(
        config: SessionConfig,
        ledger: &'a mut [Slot],
        backlog: &'a mut [HeldSyn],
        closed: &'a mut [ClosedConnection],
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
            gate: GateState::new(backlog, config.refusal_delay, closed),
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
        SessionCounters {
            gate: self.gate.counters.get(),
            ..self.counters
        }
    }

    /// How the ledger stands.
    pub fn ledger(&self) -> LedgerCounts {
        let fixed =
            core::mem::size_of::<smoltcp::iface::SocketStorage>() + core::mem::size_of::<Slot>();
        let mut counts = LedgerCounts {
            bytes_per_session_slot: (2 * self.session_buffer + fixed) as u32,
            bytes_per_refusal_slot: (REFUSAL_RX + REFUSAL_TX + fixed) as u32,
            waiting: u16::try_from(self.gate.backlog.len()).unwrap_or(u16::MAX),
            syn_backlog: u16::try_from(self.gate.backlog.capacity()).unwrap_or(u16::MAX),
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

    pub(super) fn id(&self, index: usize) -> SlotId {
        SlotId {
            index: index as u16,
            generation: self.ledger[index].generation,
        }
    }

    pub(super) fn note(&mut self, event: SessionEvent) {
        if self.events.is_full() {
            self.events.pop_front();
            self.counters.events_lost.bump();
        }
        let _ = self.events.push_back(event);
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

    /// `device` behind this service's SYN gate, at `now`.
    pub(crate) fn gate_in_front_of<'g, D: smoltcp::phy::Device + ?Sized>(
        &'g mut self,
        device: &'g mut D,
        now: Instant,
    ) -> Gated<'g, 'a, D, [Slot]> {
        Gated::new(
            device,
            self.gate.context(&*self.ledger, SESSION_SERVICE_PORT, now),
        )
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
