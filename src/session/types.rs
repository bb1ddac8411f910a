//! The session service's public vocabulary: configuration, counters, events and errors.

use smoltcp::time::{Duration, Instant};
use smoltcp::wire::IpEndpoint;

#[cfg(feature = "retarget")]
use super::retarget::{Retargets, Sibling};
use super::slot::{Phase, Role, SlotId};
use crate::counter::Counter;
use crate::gate::GateCounters;
use crate::wire::name::Name;
use crate::wire::nbss::{self, NegativeCode};

/// Listeners the service can hold.
pub const MAX_LISTENERS: usize = 16;
/// Session events the daemon keeps for its owner (`NodeStorage::leaked`, std) before the
/// oldest are dropped (and counted); an embedder gives its own depth
/// ([`NodeStorage::session_events`]).
///
/// [`NodeStorage::session_events`]: crate::node::NodeStorage::session_events
pub const SESSION_EVENTS: usize = 64;
/// Longest SESSION REQUEST body accepted: two names of the longest wire form.
pub const MAX_REQUEST_BODY: usize = 2 * crate::wire::name::MAX_WIRE_LEN;
/// Receive buffer of a refusal slot: one whole request of the longest form.
pub const REFUSAL_RX: usize = nbss::HEADER_LEN + MAX_REQUEST_BODY;
/// Send buffer of a refusal slot: one negative response.
pub const REFUSAL_TX: usize = 16;
/// How long an aborted socket may take to send its reset before the slot is reused anyway.
pub(super) const RESET_BOUND: Duration = Duration::from_secs(1);
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
    /// Sibling nodes a request that lands on a refusal slot (every session slot busy) is
    /// sent to with a RETARGET SESSION RESPONSE (0x84), round robin, instead of 0x83.
    /// Empty (the default): 0x83. (Feature `retarget`, on with `std`.)
    #[cfg(feature = "retarget")]
    pub retarget: Retargets,
}

impl SessionConfig {
    /// The defaults: request 10 s, drain 2 s, close 60 s (smoltcp's longest retransmission
    /// timeout: a FIN whose timer earlier losses backed off to 8 s is still sent four times;
    /// from the least timer, 1 s, six times), handshake 5 s, keepalive 60 s (the RFC 1001
    /// default), echo, refusal delay 2 ms.
    pub const DEFAULT: SessionConfig = SessionConfig {
        request_timeout: Duration::from_secs(10),
        drain_timeout: Duration::from_secs(2),
        close_timeout: Duration::from_secs(60),
        handshake_timeout: Duration::from_secs(5),
        keepalive: Some(Duration::from_secs(60)),
        handler: Handler::Echo,
        defer_accept: false,
        refusal_delay: Duration::from_millis(2),
        #[cfg(feature = "retarget")]
        retarget: Retargets::NONE,
    };

    pub(super) fn progress_bound(&self) -> Duration {
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
    /// The owner reads and writes through [`Sessions`](super::Sessions).
    Application,
}

/// Everything the session service counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
// A field a newer version adds reads as zero from an older daemon's document.
#[cfg_attr(feature = "serde", serde(default))]
pub struct SessionCounters {
    /// Positive session responses sent.
    pub positive: Counter,
    /// Negative responses 0x80 (not listening on called name).
    pub not_listening_on_called: Counter,
    /// Negative responses 0x81 (not listening for calling name).
    pub not_listening_for_calling: Counter,
    /// Negative responses 0x82 (called name not present).
    pub called_not_present: Counter,
    /// Negative responses 0x83 (insufficient resources): the no-resource conditions.
    pub insufficient_resources: Counter,
    /// Negative responses 0x8F (unspecified: malformed or out-of-order request).
    pub unspecified: Counter,
    /// Retarget session responses (0x84) sent instead of 0x83 at capacity
    /// (`SessionConfig::retarget`, feature `retarget`; without it always zero).
    pub retargets: Counter,
    /// What the SYN gate in front of the session port counted.
    pub gate: GateCounters,
    /// Peers closed because they sent no request in time.
    pub request_timeouts: Counter,
    /// Refused peers that closed first, as they should.
    pub drains: Counter,
    /// Refused peers closed by us because they did not close in time.
    pub drain_timeouts: Counter,
    /// Half-open connections whose client sent no SYN for the handshake bound: forgotten
    /// without a reset (a later SYN of that client starts a new handshake).
    pub handshakes_expired: Counter,
    /// Connections aborted because our FIN went unacknowledged for the close bound (we had
    /// closed first: FIN-WAIT-1, CLOSING).
    pub aborts_close: Counter,
    /// Closes in LAST-ACK or CLOSING (the peer has closed too) whose FIN went unacknowledged
    /// for the close bound: handed to the gate's record without a reset.
    pub closes_expired: Counter,
    /// Sessions aborted because the peer stopped acknowledging data.
    pub aborts_stalled: Counter,
    /// Closes handed to the gate's record once our FIN was acknowledged (FIN-WAIT-2 or
    /// TIME-WAIT): the slot was free at once.
    pub handovers: Counter,
    /// Half-open handshakes given up without a word because SYNs waited and no slot
    /// listened (their client had neither retransmitted nor completed for a second).
    pub handshakes_given_up: Counter,
    /// Connections without a request (or refused and kept open) closed because SYNs waited
    /// and no slot listened.
    pub idle_given_way: Counter,
    /// Connections the peer reset.
    pub peer_resets: Counter,
    /// Sessions the peer closed.
    pub peer_closes: Counter,
    /// Keepalives sent.
    pub keepalives_sent: Counter,
    /// Keepalives received (and dropped).
    pub keepalives_received: Counter,
    /// Established sessions closed for a frame that is not a session message or keepalive.
    pub protocol_errors: Counter,
    /// Most session slots busy at once.
    pub high_water: u16,
    /// Events dropped because the owner did not take them.
    pub events_lost: Counter,
}

impl SessionCounters {
    /// All negative responses.
    pub fn negative(&self) -> u32 {
        [
            self.not_listening_on_called,
            self.not_listening_for_calling,
            self.called_not_present,
            self.insufficient_resources,
            self.unspecified,
        ]
        .iter()
        .fold(0u32, |sum, c| sum.wrapping_add(c.get()))
    }

    /// All aborts (each sends one reset, to a peer that stopped responding).
    pub fn aborts(&self) -> u32 {
        [self.aborts_close, self.aborts_stalled]
            .iter()
            .fold(0u32, |sum, c| sum.wrapping_add(c.get()))
    }

    pub(super) fn count_negative(&mut self, code: NegativeCode) {
        let counter = match code {
            NegativeCode::NotListeningOnCalledName => &mut self.not_listening_on_called,
            NegativeCode::NotListeningForCallingName => &mut self.not_listening_for_calling,
            NegativeCode::CalledNameNotPresent => &mut self.called_not_present,
            NegativeCode::InsufficientResources => &mut self.insufficient_resources,
            _ => &mut self.unspecified,
        };
        counter.bump();
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

/// The session service's figures that a node status answer reports (RFC 1002 §4.2.18), read
/// off the ledger; see [`crate::name_service::NameService::receive`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct SessionFigures {
    /// 0x83 refusals and 0x84 retargets so far (each a session request that found no slot),
    /// saturating at `u16::MAX` (NUMBER_NO_RESOURCE_CONDITIONS).
    pub no_resource_conditions: u16,
    /// Session slots listening with no half-open connection (NUMBER_FREE_COMMAND_BLOCKS).
    pub free_slots: u16,
    /// Session and refusal slots together (TOTAL_NUMBER_COMMAND_BLOCKS, and its maximum, and
    /// MAX_NUMBER_PENDING_SESSIONS).
    pub total_slots: u16,
    /// Session slots awaiting a request or a decision (NUMBER_PENDING_SESSIONS).
    pub pending_sessions: u16,
    /// Session slots: the most sessions open at once (MAX_TOTAL_SESSIONS_POSSIBLE).
    pub max_sessions: u16,
    /// A session slot's buffer size, saturating at `u16::MAX` (SESSION_DATA_PACKET_SIZE).
    pub packet_size: u16,
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

words! {
    /// A few words, e.g. `the peer closed`.
    fn words / format_words for CloseReason {
        CloseReason::PeerClosed => "the peer closed",
        CloseReason::PeerReset => "the peer reset the connection",
        CloseReason::Local => "closed on this side",
        CloseReason::Stalled => "the peer stopped acknowledging data; aborted",
        CloseReason::ProtocolError => "the peer sent a frame that has no place in a session",
    }
}

impl core::fmt::Display for CloseReason {
    /// A few words (see `words`).
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.words())
    }
}

#[cfg(feature = "defmt")]
impl defmt::Format for CloseReason {
    /// As [`Display`](core::fmt::Display).
    fn format(&self, f: defmt::Formatter<'_>) {
        self.format_words(f)
    }
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
    /// A request that found every session slot busy was sent to a sibling (0x84) instead of
    /// refused (feature `retarget`).
    #[cfg(feature = "retarget")]
    Retargeted {
        /// Who called.
        peer: IpEndpoint,
        /// The name called.
        called: Name,
        /// The sibling named in the response.
        to: Sibling,
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

log_text! {
    /// One line for a log, e.g. `session LABSRV<20> from CLIENT<00> at 192.168.69.2:40000
    /// opened` or `session request from 192.168.69.2:40002 for LABSRV<20> refused: Called name
    /// present, but insufficient resources (0x83)`.
    SessionEvent {
        SessionEvent::Opened {
            peer,
            called,
            calling,
            ..
        } => ("session {} from {} at {} opened", called, calling, peer),
        SessionEvent::Requested {
            peer,
            called,
            calling,
            ..
        } => (
            "session {} from {} at {} awaits the handler",
            called,
            calling,
            peer
        ),
        SessionEvent::Refused {
            peer,
            called: Some(called),
            code,
        } => (
            "session request from {} for {} refused: {}",
            peer,
            called,
            CodeWords(*code)
        ),
        SessionEvent::Refused {
            peer,
            called: None,
            code,
        } => (
            "malformed session request from {} refused: {}",
            peer,
            CodeWords(*code)
        ),
        #[cfg(feature = "retarget")]
        SessionEvent::Retargeted { peer, called, to } => (
            "session request from {} for {} retargeted to {}: no session slot free (0x84)",
            peer,
            called,
            to
        ),
        SessionEvent::RequestTimeout { peer } => (
            "{} sent no session request in time; closed",
            peer
        ),
        SessionEvent::Closed { peer, reason, .. } => ("session with {} closed: {}", peer, reason),
        SessionEvent::Aborted {
            peer: Some(peer),
            phase,
        } => (
            "connection {} stopped responding in {}; aborted",
            peer,
            phase
        ),
        SessionEvent::Aborted { peer: None, phase } => (
            "connection (peer unknown) stopped responding in {}; aborted",
            phase
        ),
    }
}

/// A negative response code in a log line: the RFC's words and the code, e.g. `Called name
/// present, but insufficient resources (0x83)` (its `Display`; through defmt, the same words).
struct CodeWords(NegativeCode);

impl core::fmt::Display for CodeWords {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        self.0.fmt(f)
    }
}

#[cfg(feature = "defmt")]
impl defmt::Format for CodeWords {
    fn format(&self, f: defmt::Formatter<'_>) {
        self.0.format_description(f);
        defmt::write!(f, " ({=u8:#04x})", u8::from(self.0))
    }
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
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum SessionError {
    /// No such session: it ended (a frame with no place in a session ends it too), or the id
    /// is from an earlier connection of the slot.
    NotEstablished,
    /// No request is held for a decision on this slot: it was answered already, it timed out,
    /// the peer went away, or the id is from an earlier connection of the slot.
    NotDeciding,
    /// A message longer than 0x1FFFF bytes, or a write past the message's length.
    TooLong,
    /// The listener table holds [`MAX_LISTENERS`] listeners already.
    TooManyListeners,
}

impl core::fmt::Display for SessionError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            SessionError::NotEstablished => "no such session (it ended, or the id is stale)",
            SessionError::NotDeciding => "no session request is held for a decision on that slot",
            SessionError::TooLong => "message longer than 131071 bytes, or written past its length",
            SessionError::TooManyListeners => "the listener table is full",
        })
    }
}

impl core::error::Error for SessionError {}

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

#[cfg(test)]
mod tests {
    use super::{CloseReason, SessionError, SessionEvent};
    use crate::session::{Phase, SlotId};
    use crate::wire::name::Name;
    use crate::wire::nbss::NegativeCode;
    use smoltcp::wire::{IpEndpoint, Ipv4Address};
    use std::string::ToString;

    fn peer() -> IpEndpoint {
        IpEndpoint::new(Ipv4Address::new(192, 168, 69, 2).into(), 40000)
    }

    fn name(text: &str) -> Name {
        Name::parse_text(text, 0).unwrap()
    }

    #[test]
    fn session_events_display_as_one_log_line() {
        let slot = SlotId {
            index: 0,
            generation: 1,
        };
        let cases = [
            (
                SessionEvent::Opened {
                    slot,
                    peer: peer(),
                    called: name("LABSRV#20"),
                    calling: name("CLIENT#00"),
                },
                "session LABSRV<20> from CLIENT<00> at 192.168.69.2:40000 opened",
            ),
            (
                SessionEvent::Requested {
                    slot,
                    peer: peer(),
                    called: name("LABSRV#20"),
                    calling: name("CLIENT#00"),
                },
                "session LABSRV<20> from CLIENT<00> at 192.168.69.2:40000 awaits the handler",
            ),
            (
                SessionEvent::Refused {
                    peer: peer(),
                    called: Some(name("LABSRV#20")),
                    code: NegativeCode::InsufficientResources,
                },
                "session request from 192.168.69.2:40000 for LABSRV<20> refused: \
                 Called name present, but insufficient resources (0x83)",
            ),
            (
                SessionEvent::Refused {
                    peer: peer(),
                    called: None,
                    code: NegativeCode::Unspecified,
                },
                "malformed session request from 192.168.69.2:40000 refused: \
                 Unspecified error (0x8f)",
            ),
            (
                SessionEvent::RequestTimeout { peer: peer() },
                "192.168.69.2:40000 sent no session request in time; closed",
            ),
            (
                SessionEvent::Closed {
                    slot,
                    peer: peer(),
                    reason: CloseReason::PeerClosed,
                },
                "session with 192.168.69.2:40000 closed: the peer closed",
            ),
            (
                SessionEvent::Aborted {
                    peer: Some(peer()),
                    phase: Phase::Closing,
                },
                "connection 192.168.69.2:40000 stopped responding in Closing; aborted",
            ),
            (
                SessionEvent::Aborted {
                    peer: None,
                    phase: Phase::Listening,
                },
                "connection (peer unknown) stopped responding in Listening; aborted",
            ),
        ];
        for (event, line) in cases {
            assert_eq!(event.to_string(), line);
        }
    }

    #[cfg(feature = "retarget")]
    #[test]
    fn a_retarget_displays_as_one_log_line() {
        let event = SessionEvent::Retargeted {
            peer: peer(),
            called: name("LABSRV#20"),
            to: crate::session::Sibling {
                address: Ipv4Address::new(192, 168, 69, 3),
                port: 139,
            },
        };
        assert_eq!(
            event.to_string(),
            "session request from 192.168.69.2:40000 for LABSRV<20> retargeted to \
             192.168.69.3:139: no session slot free (0x84)"
        );
    }

    #[test]
    fn errors_say_what_went_wrong() {
        assert_eq!(
            SessionError::NotDeciding.to_string(),
            "no session request is held for a decision on that slot"
        );
        assert_eq!(
            SessionError::TooManyListeners.to_string(),
            "the listener table is full"
        );
        let error: &dyn core::error::Error = &SessionError::TooLong;
        assert!(error.to_string().contains("131071"));
    }
}
