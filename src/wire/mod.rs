//! Low-level packet access and construction for the three NetBIOS-over-TCP/IP services.
//!
//! The module follows smoltcp's `wire` idiom:
//!
//! * `Packet<T: AsRef<[u8]>>` is a zero-copy view over a buffer with one accessor per field.
//!   `Packet::new_unchecked` wraps any buffer; `Packet::check_len` verifies that every
//!   fixed-offset field is present, and `Packet::new_checked` does both. **After `check_len`
//!   succeeds no accessor panics.** Untrusted input must go through `new_checked`; never use it
//!   when emitting.
//! * `Repr` is the high-level, validated meaning of a packet. `Repr::parse` never panics, on any
//!   input. `Repr::buffer_len` gives the exact number of bytes `Repr::emit` writes, and `emit`
//!   never panics into a buffer at least that long.
//! * Values that travel on the wire and may be unknown are enumerations with an `Unknown(raw)`
//!   arm, so parsing keeps what it does not understand.
//!
//! Modules:
//!
//! * [`name`]: NetBIOS names, scopes, the first-level encoding and the compressed label form;
//! * [`nbns`]: the name service on UDP 137 (RFC 1002 §4.2);
//! * [`nbss`]: the session service on TCP 139 (RFC 1002 §4.3);
//! * [`nbds`]: the datagram service on UDP 138 (RFC 1002 §4.4);
//! * [`smb_mailslot`]: the SMB mailslot write datagrams carry ([MS-MAIL]);
//! * [`browser`]: the browser frames of `\MAILSLOT\BROWSE` ([MS-BRWS]).

use core::fmt;

pub mod browser;
pub mod name;
pub mod nbds;
pub mod nbns;
pub mod nbss;
pub mod smb_mailslot;

#[cfg(test)]
mod strategies;

pub use self::name::{DomainName, Name, NameError, NbName, Scope};

/// UDP port of the name service.
pub const NAME_SERVICE_PORT: u16 = 137;
/// UDP port of the datagram service.
pub const DATAGRAM_SERVICE_PORT: u16 = 138;
/// TCP port of the session service.
pub const SESSION_SERVICE_PORT: u16 = 139;
/// Largest name or datagram service packet RFC 1002 allows on UDP (`MAX_DATAGRAM_LENGTH`).
pub const MAX_DATAGRAM_LENGTH: usize = 576;

mod field {
    /// A fixed byte range inside a header.
    pub type Field = core::ops::Range<usize>;
}

/// The input is not a valid packet of the expected kind: it is truncated, a length or count does
/// not fit, a reserved bit is set, a name is malformed, or the packet is not the kind asked for.
///
/// Like smoltcp's, the error is deliberately opaque: a receiver drops such input and counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Error;

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("malformed NetBIOS packet")
    }
}

impl core::error::Error for Error {}

/// The result type of every parser in this module.
pub type Result<T> = core::result::Result<T, Error>;

/// Reads a big-endian `u16` at `offset`, or fails if the buffer is too short.
#[inline]
pub(crate) fn read_u16(buf: &[u8], offset: usize) -> Result<u16> {
    match buf.get(offset..offset + 2) {
        Some(b) => Ok(u16::from_be_bytes([b[0], b[1]])),
        None => Err(Error),
    }
}
