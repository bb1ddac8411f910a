//! One entry of the slot ledger: a transport socket and where its connection stands.

use smoltcp::iface::SocketHandle;
use smoltcp::socket::tcp::State;
use smoltcp::time::Instant;
use smoltcp::wire::{IpEndpoint, Ipv4Address};

use super::shards::SocketAt;
use crate::wire::name::Name;

/// What a slot is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Carries sessions (full buffers).
    Session,
    /// Only refuses (tiny buffers): takes connections when every session slot is busy and
    /// answers 0x83 "insufficient resources".
    Refusal,
}

impl core::fmt::Display for Role {
    /// `session` or `refusal`.
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Role::Session => "session",
            Role::Refusal => "refusal",
        })
    }
}

/// Where a slot's connection stands.
///
/// ```text
/// Free → Listening → AwaitingRequest → (Deciding →) Established → Closing → Free
///                                    ↘ Draining ↗ (negative response sent)
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// The socket is closed (or the service is not accepting).
    Free,
    /// Listening, or holding a half-open connection (SYN-RECEIVED).
    Listening,
    /// Connected; waiting for the SESSION REQUEST until a deadline.
    AwaitingRequest,
    /// An acceptable request is held for the owner to accept or refuse (deferred accept),
    /// until the request deadline.
    Deciding,
    /// Positive response sent; session messages flow.
    Established,
    /// Negative response sent; waiting (bounded) for the peer to close first.
    Draining,
    /// Closed on our side; waiting for smoltcp to reach CLOSED (bounded, except TIME-WAIT).
    Closing,
}

words! {
    /// The variant's name: `Free`, `Listening`, `AwaitingRequest`, `Deciding`, `Established`,
    /// `Draining` or `Closing` (logs and the status document use these words).
    fn word / format_word for Phase {
        Phase::Free => "Free",
        Phase::Listening => "Listening",
        Phase::AwaitingRequest => "AwaitingRequest",
        Phase::Deciding => "Deciding",
        Phase::Established => "Established",
        Phase::Draining => "Draining",
        Phase::Closing => "Closing",
    }
}

impl core::fmt::Display for Phase {
    /// The variant's name (see `word`).
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.word())
    }
}

#[cfg(feature = "defmt")]
impl defmt::Format for Phase {
    /// As [`Display`](core::fmt::Display).
    fn format(&self, f: defmt::Formatter<'_>) {
        self.format_word(f)
    }
}

/// An instant that may be unset, in 8 bytes (`Option<Instant>` takes 16): a slot's deadlines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct MaybeAt(i64);

impl MaybeAt {
    /// Unset.
    pub(crate) const NONE: MaybeAt = MaybeAt(i64::MIN);

    /// Set to `at`.
    pub(crate) fn at(at: Instant) -> MaybeAt {
        MaybeAt(at.total_micros())
    }

    /// `at`, if any.
    pub(crate) fn new(at: Option<Instant>) -> MaybeAt {
        at.map_or(MaybeAt::NONE, MaybeAt::at)
    }

    /// The instant, if set.
    pub(crate) fn get(self) -> Option<Instant> {
        (self != MaybeAt::NONE).then(|| Instant::from_micros(self.0))
    }
}

/// Names a session across the slot's reuse: a stale id never reaches a later connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SlotId {
    /// Position in the ledger.
    pub index: u16,
    /// Which connection of that slot.
    pub generation: u32,
}

/// One ledger entry. Create the ledger from [`Slot::EMPTY`]; the node fills it in.
#[derive(Debug, Clone, Copy)]
pub struct Slot {
    /// The socket's handle in its shard's set (see [`Slot::handle`]).
    pub(super) socket: Option<SocketHandle>,
    /// The shard its socket lives in.
    pub(super) shard: u16,
    pub(super) role: Role,
    pub(super) phase: Phase,
    pub(super) generation: u32,
    /// The remote endpoint of the socket as the routes know it (half-open, connected or
    /// closing): kept across the slot's reuse until the socket lets the peer go.
    pub(super) route: Option<(Ipv4Address, u16)>,
    /// The socket's state when the session service last looked (a change seen after an
    /// egress pass makes the shard due at once).
    pub(super) seen: State,
    /// When the current SYN-RECEIVED began, or its client last retransmitted its SYN.
    pub(super) syn_at: MaybeAt,
    /// A SYN-ACK left for the current half-open connection (its peer answers ARP).
    pub(super) answered: bool,
    /// When the current phase must end.
    pub(super) deadline: MaybeAt,
    pub(super) peer: Option<IpEndpoint>,
    pub(super) called: Option<Name>,
    pub(super) calling: Option<Name>,
    pub(super) connected_at: Instant,
    pub(super) bytes_in: u64,
    pub(super) bytes_out: u64,
    /// Body bytes of the incoming session message still unread (`None`: between messages).
    pub(super) rx_remaining: Option<core::num::NonZeroU32>,
    /// Body length of the current incoming message.
    pub(super) current_length: u32,
    /// Body bytes of the outgoing session message still to write.
    pub(super) tx_remaining: u32,
    /// Last byte received or sent (keepalive timer).
    pub(super) last_activity: Instant,
    /// Every byte handed to the socket, and how many of them the peer had acknowledged at the
    /// last look (handed over minus still queued).
    pub(super) handed_over: u32,
    pub(super) acked: u32,
    /// When the peer last acknowledged something (or there was nothing to acknowledge).
    pub(super) progress_at: Instant,
    /// How the close came about (aborted, gave way, handing over).
    pub(super) closing: CloseMarks,
}

/// How a slot's close came about, one bit each (a byte for three flags: the ledger's bytes
/// per slot stay as few as before the shards).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct CloseMarks(u8);

impl CloseMarks {
    /// None of them.
    pub(super) const NONE: CloseMarks = CloseMarks(0);
    /// The connection was aborted (a reset sent): its strays are dropped, not acknowledged.
    pub(super) const ABORTED: u8 = 1;
    /// Closing because a waiting SYN needed the slot ([`Phase::Closing`] only).
    pub(super) const GAVE_WAY: u8 = 2;
    /// Our FIN is acknowledged; the close goes to the gate's record at the deadline.
    pub(super) const HANDING_OVER: u8 = 4;

    /// Whether `mark` is set.
    pub(super) fn has(self, mark: u8) -> bool {
        self.0 & mark != 0
    }

    /// Sets `mark`.
    pub(super) fn set(&mut self, mark: u8) {
        self.0 |= mark;
    }
}

impl Slot {
    /// An unused entry (usable in a `static`).
    pub const EMPTY: Slot = Slot {
        socket: None,
        shard: 0,
        role: Role::Session,
        phase: Phase::Free,
        generation: 0,
        route: None,
        seen: State::Closed,
        syn_at: MaybeAt::NONE,
        answered: false,
        deadline: MaybeAt::NONE,
        peer: None,
        called: None,
        calling: None,
        connected_at: Instant::ZERO,
        bytes_in: 0,
        bytes_out: 0,
        rx_remaining: None,
        current_length: 0,
        tx_remaining: 0,
        last_activity: Instant::ZERO,
        handed_over: 0,
        acked: 0,
        progress_at: Instant::ZERO,
        closing: CloseMarks::NONE,
    };

    /// Enters `phase` with an optional deadline.
    /// A free slot of `role` on the socket at `at` (the node places every slot so).
    pub(crate) const fn placed(at: SocketAt, role: Role) -> Slot {
        Slot {
            socket: Some(at.handle),
            shard: at.shard,
            role,
            ..Slot::EMPTY
        }
    }

    /// Where its socket lives (`None` only for a slot the node never placed).
    pub(super) fn handle(&self) -> Option<SocketAt> {
        self.socket.map(|handle| SocketAt {
            shard: self.shard,
            handle,
        })
    }

    /// Whether its socket listens, as of the last refresh (for the gate).
    pub(super) fn listening(&self) -> bool {
        self.phase == Phase::Listening && self.seen == State::Listen
    }

    /// The peer of its half-open connection, as of the last refresh (for the gate).
    pub(super) fn half_open(&self) -> Option<(Ipv4Address, u16)> {
        match (self.phase, self.seen) {
            (Phase::Listening, State::SynReceived) => self.route,
            _ => None,
        }
    }

    pub(super) fn enter(&mut self, phase: Phase, deadline: Option<Instant>) {
        self.phase = phase;
        self.deadline = MaybeAt::new(deadline);
        self.syn_at = MaybeAt::NONE;
        self.answered = false;
    }

    /// Forgets the connection, ready for the next one.
    pub(super) fn recycle(&mut self) {
        *self = Slot {
            socket: self.socket,
            shard: self.shard,
            role: self.role,
            route: self.route,
            seen: self.seen,
            generation: self.generation.wrapping_add(1),
            ..Slot::EMPTY
        };
    }

    /// Queues `bytes` on the slot's `socket`, keeping the count the progress check needs.
    pub(super) fn send(
        &mut self,
        socket: &mut smoltcp::socket::tcp::Socket,
        bytes: &[u8],
    ) -> usize {
        let sent = socket.send_slice(bytes).unwrap_or(0);
        self.handed_over = self.handed_over.wrapping_add(sent as u32);
        sent
    }

    /// Whether the deadline has passed.
    pub(super) fn expired(&self, now: Instant) -> bool {
        self.deadline.get().is_some_and(|d| now >= d)
    }
}

impl Default for Slot {
    fn default() -> Self {
        Slot::EMPTY
    }
}

#[cfg(test)]
mod tests {
    use super::{Phase, Role};
    use std::string::ToString;

    #[test]
    fn phases_and_roles_display_the_words_the_team_agreed_on() {
        let phases = [
            (Phase::Free, "Free"),
            (Phase::Listening, "Listening"),
            (Phase::AwaitingRequest, "AwaitingRequest"),
            (Phase::Deciding, "Deciding"),
            (Phase::Established, "Established"),
            (Phase::Draining, "Draining"),
            (Phase::Closing, "Closing"),
        ];
        for (phase, word) in phases {
            assert_eq!(phase.to_string(), word);
        }
        assert_eq!(Role::Session.to_string(), "session");
        assert_eq!(Role::Refusal.to_string(), "refusal");
    }
}
