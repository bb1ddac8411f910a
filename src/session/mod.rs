//! The session service (TCP 139): an explicit ledger of transport sockets that are reserved,
//! refused and recycled on purpose, so running out of them is a polite negative response, a
//! counter and an event, never a TCP reset.
//!
//! The ledger holds S *session* slots followed by R *refusal* slots, one smoltcp TCP socket
//! each, created once, in [shards](Shards) of [`SHARD_SLOTS`] (small smoltcp socket sets: a
//! segment walks one of them, and only shards with work are polled). The gate hands a SYN to a
//! shard with a listening session slot, so connections land on session slots while one is
//! free, and every later segment to the shard its [route](Routes) names. When none is, the
//! [gate](crate::gate) keeps the SYN for up to [`SessionConfig::refusal_delay`] in case one
//! frees, then hands it to a refusal slot, which answers 0x83 "called name present, but
//! insufficient resources" (or, with the `retarget` feature and `SessionConfig::retarget`,
//! 0x84 naming a sibling node: see `Retargets`). While the refusal slots are busy too, SYNs wait in the gate's
//! backlog (or, when it is full, are dropped and retransmitted by the client).
//!
//! A slot's life (see [`Phase`]): Free → Listening → AwaitingRequest (deadline
//! [`SessionConfig::request_timeout`]) → Established → Closing → Free, or, after a negative
//! response, AwaitingRequest → Draining (wait up to [`SessionConfig::drain_timeout`] for the
//! peer's FIN) → Closing → Free. A slot is recycled when smoltcp reports CLOSED, or as soon as
//! the peer has acknowledged our FIN (FIN-WAIT-2 or TIME-WAIT): what is left of the close is
//! acknowledging the peer's FIN, and the gate's record of recently closed connections
//! ([`RecentlyClosed`](crate::gate::RecentlyClosed)) does that for [`LINGER`](crate::gate::LINGER),
//! answering every late segment of the connection instead of smoltcp's reset. Only peers that
//! stopped responding are aborted (which sends a reset to nobody who listens), and every abort
//! is counted:
//!
//! * none for a handshake: a connection half-open for [`SessionConfig::handshake_timeout`]
//!   since the client's last SYN (three times that once our SYN-ACK left) is forgotten without
//!   a reset, and the client's next SYN starts afresh;
//! * a FIN unacknowledged for [`SessionConfig::close_timeout`] after we closed first
//!   and while the peer had not closed (FIN-WAIT-1: 60 s by default, four sends of a FIN even
//!   on a timer backed off to 8 s); in
//!   LAST-ACK or CLOSING (the peer has closed too and has everything) the close goes to the
//!   record instead, without a reset;
//! * an established session whose unacknowledged data made no progress for the keepalive
//!   interval (the peer vanished).
//!
//! A peer that connects and never sends a request is closed at the request deadline; its slot
//! is free again once it acknowledges our FIN. When SYNs wait and no slot listens at all, slots
//! give way: a half-open handshake no SYN-ACK could leave for (a spoofed source: nobody
//! answers ARP for it) after 50 ms, forgotten without a word; else, after [`GIVE_WAY_AFTER`],
//! the connection that has sent no whole request (answered 0x83 and closed), or kept a refused
//! connection open (closed), the longest.

mod handler;
mod ledger;
mod request;
#[cfg(feature = "retarget")]
mod retarget;
mod routes;
mod service;
mod shards;
mod slot;
mod stream;
mod types;

pub use self::ledger::GIVE_WAY_AFTER;
#[cfg(feature = "retarget")]
pub use self::retarget::{MAX_RETARGETS, Retargets, Sibling, TooManyRetargets};
pub use self::routes::{Route, Routes, routes_for};
pub use self::service::SessionService;
pub(crate) use self::service::drain_egress;
pub use self::shards::{SHARD_SLOTS, Shard, Shards, SocketAt, shards_for};
pub use self::slot::{Phase, Role, Slot, SlotId};
pub use self::stream::Sessions;
pub use self::types::{
    CloseReason, Handler, Incoming, LedgerCounts, Listener, MAX_LISTENERS, MAX_REQUEST_BODY,
    MIN_SESSION_BUFFER, REFUSAL_RX, REFUSAL_TX, SESSION_EVENTS, SMBSERVER, SessionConfig,
    SessionCounters, SessionError, SessionEvent, SessionFigures, SessionInfo,
};
pub use smoltcp::time::Duration;
