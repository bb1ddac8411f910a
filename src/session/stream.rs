//! [`Sessions`]: the owner's reads and writes of established sessions, message by message.

use smoltcp::socket::tcp;
use smoltcp::time::Instant;

use super::request::{SHORT_FRAME, discard, peek_header, short_frame};
use super::service::{SessionService, info};
use super::shards::{Shards, SocketAt};
use super::slot::{Phase, SlotId};
use super::types::{CloseReason, Incoming, SessionError, SessionInfo};
use crate::wire::nbss::{self, NegativeCode};

/// Reads and writes of established sessions, for the owner (see [`crate::node::Node::sessions`]).
///
/// Incoming bytes arrive as session messages: [`Sessions::incoming`] starts the next message
/// (keepalives are dropped on the way) and [`Sessions::read`] reads its body, never past its
/// end. Outgoing: [`Sessions::begin_message`] writes a header with the body length, then
/// [`Sessions::write`] the body, never past that length. Nothing blocks: calls do what the
/// socket buffers allow and say how much.
pub struct Sessions<'s, 'a> {
    pub(crate) service: &'s mut SessionService<'a>,
    pub(crate) sockets: &'s mut Shards<'a>,
    pub(crate) now: Instant,
}

impl<'a> Sessions<'_, 'a> {
    /// The service (counters, listeners, events).
    pub fn service(&mut self) -> &mut SessionService<'a> {
        self.service
    }

    /// The established sessions (only the shards that had one at their last count, or were
    /// touched since, are looked at).
    pub fn established(&self) -> impl Iterator<Item = SlotId> + '_ {
        let ledger = &*self.service.ledger;
        self.sockets
            .iter()
            .filter(|shard| shard.tally.established > 0 || shard.dirty)
            .flat_map(|shard| shard.slots())
            .filter(move |&i| ledger[i].phase == Phase::Established)
            .map(move |i| SlotId {
                index: i as u16,
                generation: ledger[i].generation,
            })
    }

    pub(super) fn slot(&self, id: SlotId) -> Result<(usize, SocketAt), SessionError> {
        let index = usize::from(id.index);
        match self.service.ledger.get(index) {
            Some(slot) if slot.generation == id.generation && slot.phase == Phase::Established => {
                slot.handle()
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
            if let Some(remaining) = slot.rx_remaining.map(|r| r.get()) {
                return Ok(Some(Incoming {
                    length: slot.current_length,
                    remaining,
                }));
            }
            let Some(header) = peek_header(socket) else {
                return Ok(None);
            };
            match header.repr {
                Ok(nbss::Repr::SessionMessage { length }) => {
                    discard(socket, nbss::HEADER_LEN);
                    slot.last_activity = self.now;
                    slot.current_length = length;
                    if length == 0 {
                        return Ok(Some(Incoming {
                            length: 0,
                            remaining: 0,
                        }));
                    }
                    slot.rx_remaining = core::num::NonZeroU32::new(length);
                }
                Ok(nbss::Repr::KeepAlive) => {
                    discard(socket, nbss::HEADER_LEN);
                    slot.last_activity = self.now;
                    self.service.counters.keepalives_received.bump();
                }
                _ => {
                    self.service.counters.protocol_errors.bump();
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
        let Some(remaining) = slot.rx_remaining.map(|r| r.get()) else {
            return Ok(0);
        };
        let want = buffer.len().min(remaining as usize);
        let socket = self.sockets.get_mut::<tcp::Socket>(handle);
        let got = socket.recv_slice(&mut buffer[..want]).unwrap_or(0);
        let left = remaining - got as u32;
        slot.rx_remaining = core::num::NonZeroU32::new(left);
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
        let mut buffer = [0; SHORT_FRAME];
        let header = short_frame(nbss::Repr::SessionMessage { length }, &mut buffer);
        let socket = self.sockets.get_mut::<tcp::Socket>(handle);
        slot.send(socket, header);
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

    /// Accepts a request held for the owner ([`SessionEvent::Requested`](super::SessionEvent::Requested)): sends 0x82; the
    /// session is established.
    pub fn accept(&mut self, id: SlotId) -> Result<(), SessionError> {
        let index = self.deciding(id)?;
        let slot = &self.service.ledger[index];
        let (Some(called), Some(calling)) = (slot.called, slot.calling) else {
            return Err(SessionError::NotDeciding);
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

    pub(super) fn deciding(&self, id: SlotId) -> Result<usize, SessionError> {
        let index = usize::from(id.index);
        match self.service.ledger.get(index) {
            Some(slot) if slot.generation == id.generation && slot.phase == Phase::Deciding => {
                Ok(index)
            }
            _ => Err(SessionError::NotDeciding),
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
}
