//! Frame translation between a NetBT session (RFC 1002 §4.3.6: a 17-bit length, its top bit
//! the E flag) and direct-hosted SMB (MS-SMB2 §2.1: 0x00, then a 24-bit length). Pure.
//!
//! Up to [`nbss::MAX_LENGTH`] the two headers are the same four bytes; a direct-hosted frame
//! longer than that cannot be carried by a NetBT session.

use core::fmt;

use crate::wire::nbss::{self, MessageType};

/// Length of a direct-hosted SMB header: the type byte and a 24-bit big-endian length.
pub const DIRECT_HEADER_LEN: usize = 4;

/// The direct-hosted header of a NetBT session message of `length` body bytes.
///
/// `length` is at most [`nbss::MAX_LENGTH`], as the session service guarantees for every
/// message it reports; a debug build asserts it.
pub fn direct_header(length: u32) -> [u8; DIRECT_HEADER_LEN] {
    debug_assert!(length <= nbss::MAX_LENGTH);
    let [_, high, mid, low] = length.to_be_bytes();
    [u8::from(MessageType::SessionMessage), high, mid, low]
}

/// A direct-hosted frame header from the backend, as far as a NetBT session can carry it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendFrame {
    /// A message of this many body bytes (at most [`nbss::MAX_LENGTH`]): the same header bytes
    /// start the NetBT session message.
    Message(u32),
    /// A keepalive (as smbd sends them on direct-hosted connections; no body): dropped, since
    /// the session service keeps the client side alive on its own.
    KeepAlive,
}

/// A backend frame a NetBT session cannot carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameError {
    /// Longer than the 17 bits of a NetBT length.
    TooLong(u32),
    /// Neither a message (0x00) nor an empty keepalive: not direct-hosted SMB.
    BadType(u8),
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::TooLong(length) => write!(
                f,
                "a frame of {length} bytes, longer than a NetBT session message can be ({})",
                nbss::MAX_LENGTH
            ),
            FrameError::BadType(byte) => {
                write!(
                    f,
                    "a frame starting with 0x{byte:02x}, not direct-hosted SMB"
                )
            }
        }
    }
}

impl core::error::Error for FrameError {}

/// Parses a direct-hosted header from the backend. Never panics.
pub fn parse_direct_header(header: [u8; DIRECT_HEADER_LEN]) -> Result<BackendFrame, FrameError> {
    let length = u32::from_be_bytes([0, header[1], header[2], header[3]]);
    match MessageType::from(header[0]) {
        MessageType::SessionMessage if length <= nbss::MAX_LENGTH => {
            Ok(BackendFrame::Message(length))
        }
        MessageType::SessionMessage => Err(FrameError::TooLong(length)),
        MessageType::KeepAlive if length == 0 => Ok(BackendFrame::KeepAlive),
        _ => Err(FrameError::BadType(header[0])),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The NetBT session message header of `length`, as the library's codec writes it.
    fn nbss_header(length: u32) -> [u8; nbss::HEADER_LEN] {
        let mut header = [0u8; nbss::HEADER_LEN];
        nbss::Repr::SessionMessage { length }
            .emit(&mut nbss::Packet::new_unchecked(&mut header[..]));
        header
    }

    #[test]
    fn netbt_lengths_become_24_bit_direct_headers() {
        for (length, want) in [
            (0, [0, 0, 0, 0]),
            (1, [0, 0, 0, 1]),
            (0x1234, [0, 0, 0x12, 0x34]),
            (0xFFFF, [0, 0, 0xFF, 0xFF]),
            (0x10000, [0, 1, 0, 0]),
            (0x1FFFF, [0, 1, 0xFF, 0xFF]),
        ] {
            assert_eq!(direct_header(length), want, "{length:#x}");
            // Up to 0x1FFFF the E bit is bit 16 of the 24-bit length: the same bytes.
            assert_eq!(direct_header(length), nbss_header(length), "{length:#x}");
            assert_eq!(
                parse_direct_header(want),
                Ok(BackendFrame::Message(length)),
                "{length:#x}"
            );
            let packet = nbss::Packet::new_checked(&want[..]).unwrap();
            assert_eq!(
                nbss::Repr::parse(&packet),
                Ok(nbss::Repr::SessionMessage { length })
            );
        }
    }

    #[test]
    fn backend_frames_longer_than_17_bits_or_not_smb_are_rejected() {
        assert_eq!(
            parse_direct_header([0, 2, 0, 0]),
            Err(FrameError::TooLong(0x20000))
        );
        assert_eq!(
            parse_direct_header([0, 0xFF, 0xFF, 0xFF]),
            Err(FrameError::TooLong(0xFF_FFFF))
        );
        assert_eq!(
            parse_direct_header([0x85, 0, 0, 0]),
            Ok(BackendFrame::KeepAlive)
        );
        assert_eq!(
            parse_direct_header([0x85, 0, 0, 1]),
            Err(FrameError::BadType(0x85))
        );
        assert_eq!(
            parse_direct_header([0xFE, b'S', b'M', b'B']),
            Err(FrameError::BadType(0xFE))
        );
        assert_eq!(
            FrameError::TooLong(0x20000).to_string(),
            "a frame of 131072 bytes, longer than a NetBT session message can be (131071)"
        );
        assert_eq!(
            FrameError::BadType(0xFE).to_string(),
            "a frame starting with 0xfe, not direct-hosted SMB"
        );
    }

    #[test]
    fn every_17_bit_length_round_trips() {
        for length in (0..=nbss::MAX_LENGTH)
            .step_by(251)
            .chain([nbss::MAX_LENGTH])
        {
            assert_eq!(
                parse_direct_header(direct_header(length)),
                Ok(BackendFrame::Message(length))
            );
        }
    }
}
