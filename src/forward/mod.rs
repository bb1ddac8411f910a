//! The forward handler (std only; `netbt serve --handler forward=HOST:PORT`): every session is
//! relayed to a backend reached through the host's own TCP/IP stack, e.g. Samba's smbd on
//! 127.0.0.1:445.
//!
//! The session service holds each acceptable request for us ([`SessionEvent::Requested`],
//! deferred accept). We start a non-blocking connect to the backend; once it is connected the
//! session is accepted (0x82); if the connect fails or takes longer than [`CONNECT_TIMEOUT`]
//! the request is refused with 0x83 0x8F, so a client never sees a 0x82 followed by a close. If
//! the request deadline passes first, the library refuses on its own, `accept` fails, and the
//! backend connection is dropped.
//!
//! Established sessions are relayed both ways without ever blocking the caller's loop. NetBT
//! session messages become direct-hosted SMB frames and back ([`frame`]); a backend frame
//! longer than 0x1FFFF cannot be carried and closes both sides. Keepalives stay on their side:
//! the library drops the client's and sends its own; a backend's are dropped here.
//!
//! Every session slot has its relay, with two buffers of `--session-buffer` bytes each,
//! allocated once at start-up. A direction stops reading when its buffer is full (the other
//! side cannot take more), so backpressure reaches the sender: smoltcp's window closes, or the
//! kernel's. The caller's poll(2) waits on the backend sockets too ([`Forwarder::poll_fds`]:
//! readable while there is room, writable while bytes wait) and on the connect deadlines
//! ([`Forwarder::next_deadline`]).
//!
//! Closes: the client's session ended ([`SessionEvent::Closed`], or any call on it fails) →
//! what is buffered for the backend is written if the socket takes it, then the backend
//! connection is shut down and closed. Backend EOF or error → what it sent is passed on to the
//! client, then the session is closed (FIN after the queued bytes).
//!
//! * [`frame`]: the header translation (pure).
//! * [`relay`]: one session's relay, generic over the backend stream.
//! * [`connect`]: the non-blocking backend connect.
//! * [`Forwarder`]: the glue to the node's session events, poll(2) and the clock.
//!
//! [`SessionEvent::Requested`]: crate::session::SessionEvent::Requested
//! [`SessionEvent::Closed`]: crate::session::SessionEvent::Closed

mod buffer;
pub mod connect;
mod forwarder;
pub mod frame;
pub mod relay;

pub use forwarder::{CONNECT_TIMEOUT, Forwarder};
