//! # netbt
//!
//! A userspace TCP/IP stack ([smoltcp]) with embedded NetBIOS over TCP/IP (RFC 1001/1002):
//! name service (UDP 137), datagram service (UDP 138) and session service (TCP 139).
//!
//! Windows NT 3.5's NetBT answered a session request with a TCP reset once it ran out of
//! transport connections (Microsoft KB Q141344); clients saw "network path not found" or a bogus
//! "password incorrect". netbt reserves and recycles its transport sockets explicitly, so running
//! out of them is a negative session response (0x83, "called name present, but insufficient
//! resources"), a counter and a log line, never a reset.
//!
//! The library core is `no_std` and allocation-free: every packet codec in [`wire`] works on
//! borrowed byte slices and fixed-size values. Everything that needs an operating system (the
//! TAP device, the daemon, the command line) sits behind the `std` feature.
//!
//! With the `log` feature the library emits trace and debug messages through the [`log`] crate;
//! library code never logs above debug, except for events an operator must see.
//!
//! [smoltcp]: https://docs.rs/smoltcp
//! [`log`]: https://docs.rs/log
#![cfg_attr(not(feature = "std"), no_std)]
#![deny(unsafe_code)]
#![warn(missing_docs)]

#[macro_use]
mod macros;

pub mod counter;
#[cfg(feature = "std")]
pub mod forward;
pub mod gate;
#[cfg(feature = "std")]
pub mod host;
#[cfg(feature = "std")]
pub mod log_limit;
pub mod name_service;
pub mod node;
pub mod session;
#[cfg(feature = "std")]
pub mod tap;
pub mod wire;
