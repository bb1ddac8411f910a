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

mod handler;
mod ledger;
mod request;
mod service;
mod slot;
mod stream;
mod types;

pub use self::service::SessionService;
pub use self::slot::{Phase, Role, Slot, SlotId};
pub use self::stream::Sessions;
pub use self::types::{
    CloseReason, Handler, Incoming, LedgerCounts, Listener, MAX_EVENTS, MAX_LISTENERS,
    MAX_REQUEST_BODY, MIN_SESSION_BUFFER, REFUSAL_RX, REFUSAL_TX, SMBSERVER, SessionConfig,
    SessionCounters, SessionError, SessionEvent, SessionFigures, SessionInfo,
};
pub use smoltcp::time::Duration;
