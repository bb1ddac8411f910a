//! The control socket: `netbt serve` answers `status` on a Unix stream socket inside its loop,
//! `netbt status` asks and prints the answer (std only).
//!
//! * [`path`]: where the socket is (per TAP and network namespace).
//! * [`server`]: the daemon's non-blocking end of the socket.
//! * [`status`]: the document, [`Status`], that the daemon writes and the client reads.
//! * [`client`]: `netbt status`.
//! * [`query`]: `netbt query`, the resolver's answer.
//! * [`text`]: the document as text tables.
//! * [`datagram`]: `netbt datagram send` and `netbt datagram watch`.

pub mod client;
pub mod datagram;
pub mod path;
pub mod query;
pub mod server;
pub mod status;
pub mod text;

pub use self::path::server_path;
pub use self::server::ControlServer;
pub use self::status::{DaemonInfo, Status, TapCounters};
