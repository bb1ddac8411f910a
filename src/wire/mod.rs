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

/// Writes `bytes` (at most 4: a byte, or a `u16`, `u32` or IPv4 address in wire order) at `at`
/// of the fixed-size header `header`.
///
/// The codecs write their fixed header fields through this on an array split off the buffer:
/// with the constant offsets of a `field` module the bounds are known at compile time, so no
/// panic path is left, and the byte stores merge into one (unaligned) store. It is unrolled by
/// hand because a loop stays a loop at opt-level `z`.
#[inline(always)]
pub(crate) fn put<const L: usize, const N: usize>(header: &mut [u8; L], at: usize, bytes: [u8; N]) {
    const { assert!(N <= 4) };
    if N > 0 {
        header[at] = bytes[0];
    }
    if N > 1 {
        header[at + 1] = bytes[1];
    }
    if N > 2 {
        header[at + 2] = bytes[2];
    }
    if N > 3 {
        header[at + 3] = bytes[3];
    }
}

/// Reads `N` bytes (at most 4) at `at` of the fixed-size header `header`: the read side of
/// [`put`], with the same reasons (no panic path at constant offsets, one merged load).
#[inline(always)]
pub(crate) fn get<const L: usize, const N: usize>(header: &[u8; L], at: usize) -> [u8; N] {
    const { assert!(N <= 4) };
    let mut bytes = [0; N];
    if N > 0 {
        bytes[0] = header[at];
    }
    if N > 1 {
        bytes[1] = header[at + 1];
    }
    if N > 2 {
        bytes[2] = header[at + 2];
    }
    if N > 3 {
        bytes[3] = header[at + 3];
    }
    bytes
}

/// Writes `value` into `field` of `header`, as much of it as fits the field: the field writes
/// of the codecs' fixed-size headers. The copy is bounded by the header, so it has no panic
/// path (with a field inside the header, which the `field` modules guarantee, it writes
/// `min(field.len(), value.len())` bytes).
#[inline]
pub(crate) fn write_field(header: &mut [u8], field: field::Field, value: &[u8]) {
    let value = value.iter().take(field.len());
    for (byte, &v) in header.iter_mut().skip(field.start).zip(value) {
        *byte = v;
    }
}

/// Writes `text` and a NUL terminator at the start of `buf`.
///
/// # Panics
/// If `buf` is shorter than `text.len() + 1`.
pub(crate) fn put_nul_terminated(buf: &mut [u8], text: &[u8]) {
    let (start, rest) = buf.split_at_mut(text.len());
    start.copy_from_slice(text);
    let Some(nul) = rest.first_mut() else {
        buffer_too_short()
    };
    *nul = 0;
}

/// Copies `bytes` into `buf` at `at`.
///
/// # Panics
/// If they do not fit.
pub(crate) fn put_slice(buf: &mut [u8], at: usize, bytes: &[u8]) {
    match buf
        .get_mut(at..)
        .and_then(|tail| tail.get_mut(..bytes.len()))
    {
        Some(place) => place.copy_from_slice(bytes),
        None => buffer_too_short(),
    }
}

/// The panic of an `emit` into a buffer shorter than its `buffer_len` (the caller's bug): one
/// shared panic site instead of one per field.
#[cold]
#[inline(never)]
pub(crate) fn buffer_too_short() -> ! {
    panic!("emit: the buffer is shorter than buffer_len")
}
