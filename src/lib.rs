//! # netbt
//!
//! A userspace TCP/IP stack ([smoltcp]) with embedded NetBIOS over TCP/IP (RFC 1001/1002):
//! the name service (UDP 137, a B-node), the session service (TCP 139) and the datagram service
//! (UDP 138), with the browse announcer that puts the node in its workgroup's browse list.
//!
//! ## Layers
//!
//! From the bytes on the wire up to the program; code in a layer uses only its own layer and the
//! ones before it.
//!
//! **Wire** ([`wire`]): smoltcp-style codecs, a `Packet<T: AsRef<[u8]>>` view with checked
//! accessors and a `Repr` that parses and emits, for NetBIOS names ([`wire::name`]), the name
//! service ([`wire::nbns`]), the session service ([`wire::nbss`]), datagrams ([`wire::nbds`])
//! and what they carry ([`wire::smb_mailslot`], [`wire::browser`]). No state, no I/O;
//! `Repr::parse` never panics on any input.
//!
//! **Services**: the protocol state machines, without sockets of their own.
//! [`name_service`] is the B-node's name table and timers (register, answer, node status,
//! defend, release); it is handed every received datagram and hands back the packets to send.
//! [`datagram_service`] does the same for UDP 138 (delivery to the owner, errors, queries,
//! sending), and [`browse`] decides when to announce the node to its workgroup's master browser.
//! [`session`] is the ledger of session and refusal slots over smoltcp TCP sockets: it reads
//! the session request, answers 0x82 or 0x83, runs the handler and recycles the slot. [`gate`]
//! sits in front of the interface as a smoltcp `phy::Device` wrapper and keeps a SYN to port
//! 139 from meeting smoltcp's reset: it holds the SYN until a slot can take it.
//! [`counter`] is the one counter type all of them count with.
//!
//! **Node** ([`node`]): one smoltcp `Interface` and `SocketSet` on storage the caller hands in
//! ([`node::NodeStorage`]: static arrays on a microcontroller, `NodeStorage::leaked` with std),
//! with both services on top. [`node::Node::poll`] does all pending
//! work and says when to call it again. This is the whole API a firmware needs
//! (`examples/firmware/`).
//!
//! **std glue** (feature `std`): `tap`, a TAP interface as a smoltcp `Device`, and `host`,
//! entropy and the parsers for addresses and sizes. `examples/node_on_tap.rs` puts a node on a
//! TAP with them in about 100 lines.
//!
//! **Binary** (`src/main.rs`, feature `std`): the `netbt` command line. `daemon` is `netbt
//! serve`, the poll loop with signals and the ready line; `control` is the control socket and
//! `netbt status`; `forward` relays sessions to a TCP backend (`--handler forward=HOST:PORT`).
//!
//! ## Why
//!
//! Windows NT 3.5's NetBT answered a session request with a TCP reset once it ran out of
//! transport connections (Microsoft KB Q141344); clients saw "network path not found" or a bogus
//! "password incorrect". netbt reserves and recycles its transport sockets explicitly, so running
//! out of them is a negative session response (0x83, "called name present, but insufficient
//! resources"), a counter and a log line, never a reset.
//!
//! ## Features
//!
//! The library core is `no_std` and allocation-free: every packet codec in [`wire`] works on
//! borrowed byte slices and fixed-size values. Everything that needs an operating system (the
//! TAP device, the daemon, the command line) sits behind the `std` feature.
//!
//! With the `log` feature the library emits trace and debug messages through the [`log`] crate;
//! library code never logs above debug, except for events an operator must see. The `defmt`
//! feature sends the same messages (and smoltcp's) through [`defmt`] instead, for firmware: the
//! strings stay in the ELF, out of flash, and a host tool formats them; every event and type a
//! message names then implements `defmt::Format`, with the words of its `Display`. The two
//! exclude each other (`std` turns `log` on). With the `serde` feature (on with `std`) the
//! library's counters and figures are `Serialize` and `Deserialize`.
//!
//! [smoltcp]: https://docs.rs/smoltcp
//! [`log`]: https://docs.rs/log
//! [`defmt`]: https://docs.rs/defmt
#![cfg_attr(not(feature = "std"), no_std)]
#![deny(unsafe_code)]
#![warn(missing_docs)]

#[cfg(all(feature = "log", feature = "defmt"))]
compile_error!("the `log` and `defmt` features exclude each other (`std` turns `log` on)");

#[macro_use]
mod macros;

pub mod browse;
pub mod counter;
pub mod datagram_service;
pub mod event_queue;
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
