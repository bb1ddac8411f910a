//! The ledger's state machine: each slot from listening to close, every deadline counted.

use smoltcp::socket::tcp::{self, State};
use smoltcp::time::Instant;
use smoltcp::wire::{IpEndpoint, IpListenEndpoint};

use super::request::{Request, SHORT_FRAME, discard, short_frame, take_request};
use super::service::{SessionService, remote_of};
use super::shards::{Shards, Tally, earliest};
use super::slot::{CloseMarks, MaybeAt, Phase, Role, Slot, SlotId};
use super::stream::Sessions;
use super::types::{
    CloseReason, Handler, Listener, RESET_BOUND, SMBSERVER, SessionConfig, SessionEvent,
    SessionFigures,
};
use crate::gate::{Duty, Remembered, SynTaker};
use crate::name_service::{NameService, NameState};
use crate::wire::SESSION_SERVICE_PORT;
use crate::wire::name::{Name, NbName};
use crate::wire::nbss::{self, NegativeCode};

impl<'a> SessionService<'a> {
    /// Between frames: recycles closed slots, re-arms listeners, and refreshes what the gate
    /// sees, in the shards whose sockets were touched since the last refresh. Cheap; the node
    /// calls it before every received frame.
    pub(crate) fn refresh(&mut self, now: Instant, sockets: &mut Shards<'a>) {
        // A client that retransmits its SYN is alive: its handshake deadline starts again.
        if let Some(peer) = self.gate.syn_again.take()
            && let Some(index) = self.routes.get(peer)
            && let Some(slot) = self.ledger.get_mut(index)
            && slot.half_open() == Some(peer)
        {
            slot.syn_at = MaybeAt::at(now);
            if let Some(at) = slot.handle() {
                sockets.touch(usize::from(at.shard));
            }
        }
        let stale = sockets.take_stale();
        let listed = stale.frozen(sockets.len());
        for n in 0..listed.len {
            if let Some(shard) = stale.at(listed, n)
                && sockets.shard(shard).stale
            {
                self.refresh_shard(shard, now, sockets);
            }
        }
        // The SYN-ACKs that left since the last refresh (they leave at egress, after the
        // refresh that saw the handshake start): whether the interface could answer each
        // handshake.
        let syn_acks = self.gate.syn_acks.take();
        if syn_acks.overflowed() {
            for shard in 0..sockets.len() {
                if sockets.shard(shard).tally.active == 0 {
                    continue;
                }
                for index in sockets.shard(shard).slots() {
                    let slot = &mut self.ledger[index];
                    slot.answered |= slot.half_open().is_some();
                }
                self.tally_shard(shard, sockets);
            }
        } else {
            for peer in syn_acks.peers() {
                if let Some(index) = self.routes.get(peer)
                    && let Some(slot) = self.ledger.get_mut(index)
                    && slot.half_open() == Some(peer)
                    && let Some(at) = slot.handle()
                {
                    slot.answered = true;
                    self.tally_shard(usize::from(at.shard), sockets);
                }
            }
        }
    }

    fn refresh_shard(&mut self, shard: usize, now: Instant, sockets: &mut Shards<'a>) {
        for index in sockets.shard(shard).slots() {
            let slot = &mut self.ledger[index];
            let Some(handle) = slot.handle() else {
                continue;
            };
            let socket = sockets.get_quiet::<tcp::Socket>(handle);
            let state = socket.state();
            // An aborted socket is CLOSED at once but sends its reset at the next egress and
            // only then forgets the peer; listening before that would swallow the reset.
            let reset_pending = socket.remote_endpoint().is_some() && !slot.expired(now);
            if slot.phase == Phase::Closing && state == State::Closed && !reset_pending {
                self.retire(index, now);
            }
            let slot = &mut self.ledger[index];
            let socket = sockets.get_quiet::<tcp::Socket>(handle);
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
                let half_open = match socket.state() {
                    State::SynReceived => remote_of(socket),
                    _ => None,
                };
                // A new handshake (or none): whether a SYN-ACK left for it is not known yet.
                if half_open != slot.half_open() {
                    slot.answered = false;
                }
            }
            // The route follows the socket's remote endpoint.
            let remote = remote_of(socket);
            if remote != slot.route {
                if let Some(old) = slot.route {
                    self.routes.remove(old, index);
                }
                if let Some(new) = remote
                    && !self.routes.insert(new, index)
                {
                    net_debug!("session: no room for the route of {}:{}", new.0, new.1);
                }
                slot.route = remote;
            }
            slot.seen = socket.state();
        }
        sockets.refreshed(shard);
        self.tally_shard(shard, sockets);
    }

    /// Counts shard `shard` again (its slots' phases and deadlines) into the totals and
    /// the listening-shard hints.
    fn tally_shard(&mut self, shard: usize, sockets: &mut Shards<'a>) {
        let range = sockets.shard(shard).slots();
        let role = sockets.shard(shard).role;
        let mut tally = Tally::default();
        let mut times = [Soonest::NONE; 3];
        // (A shard's slots are always in the ledger.)
        for slot in self.ledger.get(range).unwrap_or_default() {
            count_slot(&mut tally, &mut times, slot, &self.config);
        }
        let [slots_due, unanswered_at, idle_at] = times.map(Soonest::get);
        tally.slots_due = slots_due;
        tally.unanswered_at = unanswered_at;
        tally.idle_at = idle_at;
        let old = sockets.set_tally(shard, tally);
        let which = role_index(role);
        self.totals[which].subtract(&old);
        self.totals[which].add(&tally);
        let hint = &mut self.listening_shard[which];
        if tally.listening > 0 {
            if hint.is_none_or(|first| shard < first) {
                *hint = Some(shard);
            }
        } else if *hint == Some(shard) {
            *hint = sockets.listening(role);
        }
        let busy = self.totals[0].busy;
        self.counters.high_water = self.counters.high_water.max(busy);
    }

    /// After frames: moves every slot of the shards that need it along (requests,
    /// responses, deadlines, closes) and runs the built-in handler. `scratch` carries echoed
    /// bytes.
    pub(crate) fn service(
        &mut self,
        now: Instant,
        sockets: &mut Shards<'a>,
        names: &NameService,
        scratch: &mut [u8],
    ) {
        if !sockets.mark_due(now) && !self.under_pressure(now) {
            return;
        }
        let dirty = sockets.dirty_now();
        for n in 0..dirty.len {
            let Some(shard) = sockets.listed_dirty(dirty, n) else {
                continue;
            };
            for index in sockets.shard(shard).slots() {
                self.service_slot(index, now, sockets, names);
            }
        }
        if self.under_pressure(now) {
            self.give_way(now, sockets);
        }
        if self.config.handler != Handler::Application {
            self.run_handler(now, sockets, scratch);
        }
    }

    pub(super) fn service_slot(
        &mut self,
        index: usize,
        now: Instant,
        sockets: &mut Shards<'a>,
        names: &NameService,
    ) {
        let config = self.config;
        let Some(handle) = self.ledger[index].handle() else {
            return;
        };
        let socket = sockets.get_mut::<tcp::Socket>(handle);
        let state = socket.state();
        let slot = &mut self.ledger[index];
        match slot.phase {
            Phase::Free => {}
            Phase::Listening => match state {
                State::Listen => slot.syn_at = MaybeAt::NONE,
                State::SynReceived => {
                    let since = slot.syn_at.get().unwrap_or(now);
                    slot.syn_at = MaybeAt::at(since);
                    if now >= since + handshake_bound(slot, &config) {
                        // No SYN from the client for that long: forgotten without a word
                        // (a reset would tell a client still in SYN-SENT, whose SYN-ACKs were
                        // lost, that the port is closed; its next SYN starts afresh instead).
                        let peer = socket.remote_endpoint();
                        slot.peer = peer;
                        self.remember(index, Duty::Drop, now);
                        forget(sockets.get_mut::<tcp::Socket>(handle));
                        sockets.unsilence(handle);
                        self.ledger[index].recycle();
                        self.counters.handshakes_expired.bump();
                        net_debug!("session: half-open {:?} expired, forgotten", peer);
                    }
                }
                State::Established | State::CloseWait => {
                    slot.enter(Phase::AwaitingRequest, Some(now + config.request_timeout));
                    slot.peer = socket.remote_endpoint();
                    // A finished handshake proves the address answers: a neighbour, whose
                    // next SYNs go ahead of forged ones even if it never speaks ARP again.
                    if let Some(peer) = slot.peer {
                        let smoltcp::wire::IpAddress::Ipv4(address) = peer.addr;
                        self.gate.neighbours.note(address, now);
                    }
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
                    self.counters.peer_resets.bump();
                    slot.recycle();
                    return;
                }
                loop {
                    match take_request(socket) {
                        Request::KeepAlive => {
                            self.counters.keepalives_received.bump();
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
                                self.counters.request_timeouts.bump();
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
                                // At capacity, with siblings: 0x84 instead of 0x83.
                                #[cfg(feature = "retarget")]
                                Err(NegativeCode::InsufficientResources)
                                    if role == Role::Refusal && !config.retarget.is_empty() =>
                                {
                                    self.retarget(index, now, sockets, called.name)
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
                    self.counters.peer_resets.bump();
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
                self.note_closed(id, peer, reason);
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
                    self.counters.drains.bump();
                } else if slot.expired(now) {
                    socket.close();
                    slot.enter(Phase::Closing, Some(now + config.close_timeout));
                    self.counters.drain_timeouts.bump();
                }
            }
            Phase::Closing => match state {
                State::Closed if socket.remote_endpoint().is_some() && !slot.expired(now) => {}
                State::Closed => self.retire(index, now),
                // Our FIN is acknowledged and nothing of ours is left to deliver: what
                // remains of the close is acknowledging the peer's FIN (FIN-WAIT-2), and
                // after it TIME-WAIT's acknowledgements. The gate's record does both, and the
                // slot is free within [`HANDOVER_DELAY`] instead of after smoltcp's fixed 10 s
                // (the delay lets smoltcp send the acknowledgement it owes for the segment
                // that brought it here).
                State::FinWait2 | State::TimeWait if self.gate.closed.is_enabled() => {
                    if !slot.closing.has(CloseMarks::HANDING_OVER) {
                        slot.closing.set(CloseMarks::HANDING_OVER);
                        slot.deadline = MaybeAt::at(now + HANDOVER_DELAY);
                    } else if slot.expired(now) {
                        self.remember(index, Duty::Acknowledge, now);
                        forget(sockets.get_mut::<tcp::Socket>(handle));
                        self.counters.handovers.bump();
                        self.ledger[index].recycle();
                    }
                }
                // Without a record, TIME-WAIT ends by itself (smoltcp's fixed 10 s) and is
                // never cut short: our final ACK may still be needed.
                State::TimeWait => slot.deadline = MaybeAt::NONE,
                _ => {
                    // Data we still owe is of no use to anyone once we close.
                    discard(socket, usize::MAX);
                    let peer_closed = matches!(state, State::LastAck | State::Closing);
                    if slot.expired(now) && peer_closed && self.gate.closed.is_enabled() {
                        // The peer has closed too and has all it will get; our FIN or its
                        // acknowledgements were lost five times. A reset would tell it
                        // nothing: the record answers whatever it still sends.
                        self.remember(index, Duty::Acknowledge, now);
                        forget(sockets.get_mut::<tcp::Socket>(handle));
                        self.counters.closes_expired.bump();
                        self.ledger[index].recycle();
                    } else if slot.expired(now) {
                        let peer = socket.remote_endpoint();
                        socket.abort();
                        slot.deadline = MaybeAt::at(now + RESET_BOUND);
                        slot.closing.set(CloseMarks::ABORTED);
                        self.counters.aborts_close.bump();
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
    pub(super) fn decide(
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

    pub(super) fn accept(
        &mut self,
        index: usize,
        now: Instant,
        sockets: &mut Shards<'a>,
        called: Name,
        calling: Name,
    ) {
        let id = self.id(index);
        let slot = &mut self.ledger[index];
        let Some(handle) = slot.handle() else { return };
        let socket = sockets.get_mut::<tcp::Socket>(handle);
        let mut buffer = [0; SHORT_FRAME];
        let response = short_frame(nbss::Repr::PositiveResponse, &mut buffer);
        if slot.send(socket, response) != response.len() {
            // Cannot happen on a fresh connection; refuse rather than half-answer.
            return self.refuse(index, now, sockets, Some(called), NegativeCode::Unspecified);
        }
        slot.enter(Phase::Established, None);
        slot.called = Some(called);
        slot.calling = Some(calling);
        slot.last_activity = now;
        slot.progress_at = now;
        self.counters.positive.bump();
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
    pub(super) fn defer(&mut self, index: usize, now: Instant, called: Name, calling: Name) {
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

    pub(super) fn refuse(
        &mut self,
        index: usize,
        now: Instant,
        sockets: &mut Shards<'a>,
        called: Option<Name>,
        code: NegativeCode,
    ) {
        let slot = &mut self.ledger[index];
        let Some(handle) = slot.handle() else { return };
        let socket = sockets.get_mut::<tcp::Socket>(handle);
        let mut buffer = [0; SHORT_FRAME];
        let _ = socket.send_slice(short_frame(
            nbss::Repr::NegativeResponse { code },
            &mut buffer,
        ));
        slot.called = called;
        slot.enter(Phase::Draining, Some(now + self.config.drain_timeout));
        self.counters.count_negative(code);
        if let Some(peer) = slot.peer {
            self.note(SessionEvent::Refused { peer, called, code });
        }
    }

    pub(super) fn service_established(
        &mut self,
        index: usize,
        now: Instant,
        sockets: &mut Shards<'a>,
    ) {
        let id = self.id(index);
        let config = self.config;
        let slot = &mut self.ledger[index];
        let Some(handle) = slot.handle() else { return };
        let peer = slot.peer;
        let socket = sockets.get_mut::<tcp::Socket>(handle);
        if socket.state() == State::Closed {
            self.counters.peer_resets.bump();
            slot.recycle();
            self.note_closed(id, peer, CloseReason::PeerReset);
            return;
        }
        if !socket.may_recv() {
            self.counters.peer_closes.bump();
            return self.end_session(index, now, sockets, CloseReason::PeerClosed, id, peer);
        }
        // Progress of what we sent: a peer that acknowledges nothing for the bound is gone.
        // (A full send buffer that keeps draining is progress, however full it stays.)
        let queued = socket.send_queue();
        // Both count modulo 2^32; the send queue is far shorter, so "more was acknowledged"
        // is "a different count was acknowledged".
        let acked = slot.handed_over.wrapping_sub(queued as u32);
        if queued == 0 || acked != slot.acked {
            slot.progress_at = now;
        }
        slot.acked = acked;
        if queued > 0 && now >= slot.progress_at + config.progress_bound() {
            socket.abort();
            slot.enter(Phase::Closing, Some(now + RESET_BOUND));
            slot.closing.set(CloseMarks::ABORTED);
            self.counters.aborts_stalled.bump();
            self.note(SessionEvent::Aborted {
                peer,
                phase: Phase::Established,
            });
            self.note_closed(id, peer, CloseReason::Stalled);
            return;
        }
        // Keepalive after the idle interval, between messages only. A session in the middle
        // of a message or with a full send buffer is not idle: the timer restarts.
        if let Some(interval) = config.keepalive
            && now >= slot.last_activity + interval
        {
            let room = socket.send_capacity() - socket.send_queue();
            if slot.tx_remaining == 0 && room >= nbss::HEADER_LEN {
                let mut buffer = [0; SHORT_FRAME];
                slot.send(socket, short_frame(nbss::Repr::KeepAlive, &mut buffer));
                self.counters.keepalives_sent.bump();
            }
            slot.last_activity = now;
        }
    }

    /// Recycles slot `index`, whose socket is CLOSED (the peer acknowledged our FIN, or our
    /// reset has gone): the connection's late segments still find the gate's record.
    fn retire(&mut self, index: usize, now: Instant) {
        let duty = if self.ledger[index].closing.has(CloseMarks::ABORTED) {
            Duty::Drop
        } else {
            Duty::Acknowledge
        };
        self.remember(index, duty, now);
        self.ledger[index].recycle();
    }

    /// Notes in the gate's record that the connection of slot `index` ended at `now`.
    fn remember(&mut self, index: usize, duty: Duty, now: Instant) {
        let Some(peer) = self
            .ledger
            .get(index)
            .and_then(|s| s.peer)
            .map(|p| match p.addr {
                smoltcp::wire::IpAddress::Ipv4(address) => (address, p.port),
            })
        else {
            return;
        };
        if self.gate.closed.remember(peer, duty, now) == Remembered::Displaced {
            let mut counters = self.gate.counters.get();
            counters.closed_displaced.bump();
            self.gate.counters.set(counters);
        }
    }

    /// Whether SYNs wait with no slot listening at all, the oldest for at least the refusal
    /// delay: a slot held by a connection that does nothing should give way.
    fn under_pressure(&self, now: Instant) -> bool {
        self.pressure_from().is_some_and(|from| now >= from)
    }

    /// From when waiting SYNs press on the slots: the oldest has waited the refusal delay,
    /// and no slot listens at all (`None`: no SYN waits, a slot listens, or slots never give
    /// way, without the gate's record of closed connections).
    fn pressure_from(&self) -> Option<Instant> {
        if !self.gate.closed.is_enabled() || self.syn_taker() != SynTaker::Nobody {
            return None;
        }
        Some(self.gate.backlog.oldest_since()? + self.config.refusal_delay)
    }

    /// Frees slots for the SYNs that wait, one per SYN not yet covered by a slot already
    /// giving way: first the handshake no SYN-ACK could leave for, longest waiting (at least
    /// [`UNANSWERED_GIVE_WAY_AFTER`]: given up without a word, as a spoofed source deserves),
    /// then the connection that has sent no whole request for the longest, or a refused peer
    /// that keeps its connection open, each at least [`GIVE_WAY_AFTER`] old (the first is
    /// answered 0x83, both are closed with a FIN; the slot is free once the peer acknowledges
    /// it).
    fn give_way(&mut self, now: Instant, sockets: &mut Shards<'a>) {
        // Slots already on their way to a waiting SYN: those giving way, and those free now
        // (they listen at the next refresh).
        let coming = usize::from(self.totals[0].coming + self.totals[1].coming);
        for _ in coming..self.gate.backlog.len() {
            let Some((index, victim)) = self.victim(now, sockets) else {
                return;
            };
            let Some(handle) = self.ledger[index].handle() else {
                return;
            };
            let socket = sockets.get_mut::<tcp::Socket>(handle);
            match victim {
                Victim::HalfOpen => {
                    let peer = socket.remote_endpoint();
                    self.ledger[index].peer = peer;
                    self.remember(index, Duty::Drop, now);
                    forget(sockets.get_mut::<tcp::Socket>(handle));
                    sockets.unsilence(handle);
                    self.ledger[index].recycle();
                    self.counters.handshakes_given_up.bump();
                    net_debug!("session: half-open {:?} gave way to a waiting SYN", peer);
                }
                Victim::Idle => {
                    let peer = self.ledger[index].peer;
                    if self.ledger[index].phase == Phase::AwaitingRequest {
                        // A clear answer, not just a close: a client whose request was only
                        // slow (lost on the way) learns it was refused for lack of room.
                        let code = NegativeCode::InsufficientResources;
                        self.refuse(index, now, sockets, None, code);
                    }
                    sockets.get_mut::<tcp::Socket>(handle).close();
                    let slot = &mut self.ledger[index];
                    slot.enter(Phase::Closing, Some(now + self.config.close_timeout));
                    slot.closing.set(CloseMarks::GAVE_WAY);
                    self.counters.idle_given_way.bump();
                    net_debug!("session: idle {:?} gave way to a waiting SYN", peer);
                }
            }
            // The next victim is chosen from counts that include this one's new state.
            self.tally_shard(usize::from(handle.shard), sockets);
        }
    }

    /// The slot that gives way next, if any may: the shards' tallies say where to look.
    fn victim(&self, now: Instant, sockets: &Shards<'a>) -> Option<(usize, Victim)> {
        // The slots of the shard whose tally says a slot there may give way soonest.
        let shard = |at: fn(&Tally) -> Option<Instant>| {
            let first = first_due(now, 0..sockets.len(), &|i| at(&sockets.shard(i).tally))?;
            Some(sockets.shard(first).slots())
        };
        if let Some(range) = shard(|t| t.unanswered_at) {
            let half_open = first_due(now, range, &|i| {
                Some(unanswered_since(self.ledger.get(i)?)? + UNANSWERED_GIVE_WAY_AFTER)
            });
            if let Some(index) = half_open {
                return Some((index, Victim::HalfOpen));
            }
        }
        let idle = first_due(now, shard(|t| t.idle_at)?, &|i| {
            Some(idle_since(self.ledger.get(i)?, &self.config)? + GIVE_WAY_AFTER)
        });
        idle.map(|index| (index, Victim::Idle))
    }

    /// When a slot may next give way under the pressure of waiting SYNs (`None`: no
    /// pressure, or nothing will ever give way).
    fn give_way_at(&self, sockets: &Shards<'a>) -> Option<Instant> {
        let pressure = self.pressure_from()?;
        let mut eligible = Soonest::NONE;
        for shard in sockets.iter() {
            if let Some(at) = shard.tally.unanswered_at {
                eligible.note(at);
            }
            if let Some(at) = shard.tally.idle_at {
                eligible.note(at);
            }
        }
        Some(pressure.max(eligible.get()?))
    }

    pub(super) fn end_session(
        &mut self,
        index: usize,
        now: Instant,
        sockets: &mut Shards<'a>,
        reason: CloseReason,
        id: SlotId,
        peer: Option<IpEndpoint>,
    ) {
        let slot = &mut self.ledger[index];
        let Some(handle) = slot.handle() else { return };
        sockets.get_mut::<tcp::Socket>(handle).close();
        slot.enter(Phase::Closing, Some(now + self.config.close_timeout));
        self.note_closed(id, peer, reason);
    }

    /// When the service next needs a poll (a kept SYN a slot can take now, a shard's timer,
    /// a slot that may give way).
    pub(crate) fn poll_at(&self, sockets: &Shards<'a>) -> Option<Instant> {
        let mut next = earliest(sockets.due(), self.give_way_at(sockets));
        if !self.gate.backlog.is_empty() {
            match self.syn_taker() {
                SynTaker::SessionSlot => return Some(Instant::ZERO),
                SynTaker::RefusalSlot => next = earliest(next, self.gate.backlog.refusal_due()),
                SynTaker::Nobody => {}
            }
        }
        next
    }

    /// The ledger's figures for node status, as they stand now.
    pub fn figures(&self) -> SessionFigures {
        let [session_slots, refusal_slots] = self.slot_counts;
        SessionFigures {
            // A retarget is a no-resource condition too, answered with a sibling.
            no_resource_conditions: self
                .counters
                .insufficient_resources
                .get()
                .saturating_add(self.counters.retargets.get())
                .min(u32::from(u16::MAX)) as u16,
            free_slots: self.totals[0].free + self.totals[1].free,
            total_slots: session_slots + refusal_slots,
            pending_sessions: self.totals[0].pending,
            max_sessions: session_slots,
            packet_size: self.session_buffer.min(usize::from(u16::MAX)) as u16,
        }
    }

    /// Runs the built-in handler on every established session of the shards serviced now.
    pub(super) fn run_handler(
        &mut self,
        now: Instant,
        sockets: &mut Shards<'a>,
        scratch: &mut [u8],
    ) {
        let handler = self.config.handler;
        let dirty = sockets.dirty_now();
        for n in 0..dirty.len {
            let Some(shard) = sockets.listed_dirty(dirty, n) else {
                continue;
            };
            for index in sockets.shard(shard).slots() {
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
}

/// Which entry of per-role arrays `role` has.
pub(super) fn role_index(role: Role) -> usize {
    match role {
        Role::Session => 0,
        Role::Refusal => 1,
    }
}

/// Counts `slot` into `tally`: its phase; and into `times` when it next needs the service,
/// when it may give way as a half-open handshake, and as an idle connection (the tally's
/// `slots_due`, `unanswered_at` and `idle_at`).
fn count_slot(tally: &mut Tally, times: &mut [Soonest; 3], slot: &Slot, config: &SessionConfig) {
    let half_open = slot.half_open().is_some();
    let idle_listener = slot.phase == Phase::Listening && !half_open;
    tally.listening += u16::from(slot.listening());
    tally.free += u16::from(idle_listener);
    tally.coming += u16::from(slot.closing.has(CloseMarks::GAVE_WAY) || slot.phase == Phase::Free);
    tally.active += u16::from(!idle_listener && slot.phase != Phase::Free);
    match (slot.role, slot.phase) {
        (Role::Session, Phase::AwaitingRequest | Phase::Deciding) => {
            tally.busy += 1;
            tally.pending += 1;
        }
        (Role::Session, Phase::Established) => tally.busy += 1,
        (Role::Refusal, Phase::AwaitingRequest) => tally.refusing += 1,
        (_, Phase::Draining | Phase::Closing) => tally.closing += 1,
        _ => {}
    }
    if slot.phase == Phase::Established {
        tally.established += 1;
    }
    let [slots_due, unanswered_at, idle_at] = times;
    if half_open && slot.syn_at.get().is_none() {
        slots_due.note(Instant::ZERO); // note the handshake start now
    } else {
        if let Some(deadline) = slot.deadline.get() {
            slots_due.note(deadline);
        }
        if let Some(syn_at) = slot.syn_at.get() {
            slots_due.note(syn_at + handshake_bound(slot, config));
        }
        if slot.phase == Phase::Established {
            if let Some(interval) = config.keepalive {
                slots_due.note(slot.last_activity + interval);
            }
            if slot.handed_over != slot.acked {
                slots_due.note(slot.progress_at + config.progress_bound());
            }
        }
    }
    if half_open {
        if let Some(since) = unanswered_since(slot) {
            unanswered_at.note(since + UNANSWERED_GIVE_WAY_AFTER);
        }
    } else if let Some(since) = idle_since(slot, config) {
        idle_at.note(since + GIVE_WAY_AFTER);
    }
}

/// The earliest of the instants noted, in microseconds (`i64::MAX`: none): the earlier of two
/// is a plain `min`, where two `Option<Instant>`s need a match (the tally takes several for
/// every slot of a shard it counts).
#[derive(Debug, Clone, Copy)]
struct Soonest(i64);

impl Soonest {
    /// Nothing noted.
    const NONE: Soonest = Soonest(i64::MAX);

    /// Notes `at`.
    fn note(&mut self, at: Instant) {
        self.0 = self.0.min(at.total_micros());
    }

    /// The earliest instant noted, if any.
    fn get(self) -> Option<Instant> {
        (self.0 != i64::MAX).then(|| Instant::from_micros(self.0))
    }
}

/// How long a connection must have been doing nothing (a handshake without a retransmitted
/// SYN, a connection without a whole request, a refused peer keeping its connection) before
/// it gives way to a waiting SYN. A client on a working network gets its request in well
/// within it; a silent or byte-a-second peer does not.
pub const GIVE_WAY_AFTER: smoltcp::time::Duration = smoltcp::time::Duration::from_secs(1);

/// How long a slot whose FIN was acknowledged waits before it hands the rest of its close to
/// the gate's record: long enough for smoltcp to send the acknowledgement it owes for the
/// segment that brought it there (its delayed-ACK timer is 10 ms).
pub const HANDOVER_DELAY: smoltcp::time::Duration = smoltcp::time::Duration::from_millis(50);

/// How long a half-open connection whose SYN-ACK never left (the interface found no neighbour
/// for its source: nobody answers ARP for a spoofed address) may keep its slot while SYNs wait.
pub const UNANSWERED_GIVE_WAY_AFTER: smoltcp::time::Duration =
    smoltcp::time::Duration::from_millis(50);

/// How long the half-open connection of `slot` may wait for its client after its last SYN:
/// the handshake timeout; three times that once a SYN-ACK left for it (its client may think
/// the connection open, its acknowledgement and request lost on the way, and retransmit them
/// 1, 2, 4, 8 s apart: a handshake forgotten under it would leave it hanging).
fn handshake_bound(
    slot: &super::slot::Slot,
    config: &super::types::SessionConfig,
) -> smoltcp::time::Duration {
    if slot.answered {
        config.handshake_timeout * 3
    } else {
        config.handshake_timeout
    }
}

/// Since when the half-open connection of `slot` has waited without a SYN-ACK leaving for it
/// (its last SYN), if none has. A handshake the interface did answer never gives way: its
/// client may be live behind a lossy link, and a new handshake on its slot could meet the old
/// one's late segments; it keeps the handshake bound.
// Inlined: the tally asks it for every half-open slot, and a call returning an optional
// instant through memory costs more than its body.
#[inline(always)]
fn unanswered_since(slot: &super::slot::Slot) -> Option<Instant> {
    slot.half_open()?;
    if slot.answered {
        return None;
    }
    slot.syn_at.get()
}

/// The first of `candidates` whose time (`at`) is the earliest of those that have come by
/// `now`.
fn first_due(
    now: Instant,
    candidates: core::ops::Range<usize>,
    at: &dyn Fn(usize) -> Option<Instant>,
) -> Option<usize> {
    let mut first: Option<(usize, Instant)> = None;
    for candidate in candidates {
        if let Some(at) = at(candidate)
            && now >= at
            && first.is_none_or(|(_, earliest)| at < earliest)
        {
            first = Some((candidate, at));
        }
    }
    first.map(|(candidate, _)| candidate)
}

/// How a slot gives way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Victim {
    /// A half-open handshake: forgotten without a word.
    HalfOpen,
    /// A connection without a request, or a refused one: closed with a FIN.
    Idle,
}

/// Since when the connection of `slot` has been idle in a way that lets it give way: an
/// AwaitingRequest slot since it connected; a Draining slot since its negative response.
fn idle_since(slot: &super::slot::Slot, config: &super::types::SessionConfig) -> Option<Instant> {
    match slot.phase {
        Phase::AwaitingRequest => Some(slot.connected_at),
        Phase::Draining => slot.deadline.get().map(|d| d - config.drain_timeout),
        _ => None,
    }
}

/// Drops the connection of `socket` without a word, whatever its state: smoltcp's `listen`
/// forgets a closed or TIME-WAIT connection without sending anything, and `close` then leaves
/// it closed for the ledger to re-arm.
fn forget(socket: &mut tcp::Socket) {
    if socket.is_open() {
        // `listen` refuses an open socket (SYN-RECEIVED, FIN-WAIT-2, LAST-ACK, CLOSING ...);
        // aborting first makes it closed, and `listen` then drops the reset the abort queued.
        socket.abort();
    }
    let _ = socket.listen(IpListenEndpoint {
        addr: None,
        port: SESSION_SERVICE_PORT,
    });
    socket.close();
}
