//! Stream framing through [`wire::nbss`](crate::wire::nbss): headers, requests, short frames.

use smoltcp::socket::tcp;

use super::types::{MAX_REQUEST_BODY, REFUSAL_RX};
use crate::wire::name::NbName;
use crate::wire::nbss::{self, MessageType};

/// Reads and drops up to `count` received bytes; returns how many.
pub(super) fn discard(socket: &mut tcp::Socket, count: usize) -> usize {
    let mut done = 0;
    while done < count {
        let got = socket
            .recv(|buffer| {
                let n = buffer.len().min(count - done);
                (n, n)
            })
            .unwrap_or(0);
        if got == 0 {
            break;
        }
        done += got;
    }
    done
}

/// The header of the next frame on a stream, peeked (not consumed).
pub(super) struct Header {
    /// What [`nbss::Repr::parse`] makes of the header alone: `Ok` for a session message
    /// header (its body streams after it) and for a keepalive (a whole frame by itself);
    /// an error for a reserved flag bit, an unknown type, or a frame whose body is missing.
    pub(super) repr: crate::wire::Result<nbss::Repr>,
    /// The raw message type, for a frame that needs its body to be judged (a request).
    pub(super) msg_type: MessageType,
    /// The declared body length.
    pub(super) length: u32,
}

/// Peeks the header of the next frame on `socket`; `None` until all of it has arrived.
pub(super) fn peek_header(socket: &mut tcp::Socket) -> Option<Header> {
    let mut header = [0u8; nbss::HEADER_LEN];
    if socket.recv_queue() < nbss::HEADER_LEN
        || socket.peek_slice(&mut header) != Ok(nbss::HEADER_LEN)
    {
        return None;
    }
    let packet = nbss::Packet::new_unchecked(&header[..]);
    Some(Header {
        repr: nbss::Repr::parse(&packet),
        msg_type: packet.msg_type(),
        length: packet.length(),
    })
}

/// The longest frame the session layer writes whole: a retarget response (header, address
/// and port).
pub(super) const SHORT_FRAME: usize = nbss::HEADER_LEN + 6;

/// `repr` (a response, a keepalive, or a session message header) emitted through
/// [`nbss::Repr::emit`] into `buffer`; returns the frame's bytes. Only a session message's
/// header is written: its body is the caller's.
pub(super) fn short_frame(repr: nbss::Repr, buffer: &mut [u8; SHORT_FRAME]) -> &[u8] {
    let len = match repr {
        nbss::Repr::SessionMessage { .. } => nbss::HEADER_LEN,
        _ => repr.buffer_len(),
    };
    debug_assert!(len <= SHORT_FRAME, "{repr} is not a short frame");
    let frame = &mut buffer[..len.min(SHORT_FRAME)];
    repr.emit(&mut nbss::Packet::new_unchecked(&mut *frame));
    frame
}

/// What the start of a connection's byte stream holds.
#[allow(
    clippy::large_enum_variant,
    reason = "lives on the stack for one decision; no allocator to box the names"
)]
pub(super) enum Request {
    /// Not a whole frame yet.
    Incomplete,
    /// A keepalive (consumed).
    KeepAlive,
    /// A whole, well-formed request (consumed).
    Session { called: NbName, calling: NbName },
    /// Anything else: malformed, too long, or not a request.
    Malformed,
}

/// Takes the request (or a keepalive before it) off the head of `socket`.
pub(super) fn take_request(socket: &mut tcp::Socket) -> Request {
    let Some(header) = peek_header(socket) else {
        return Request::Incomplete;
    };
    match header.repr {
        Ok(nbss::Repr::KeepAlive) => {
            discard(socket, nbss::HEADER_LEN);
            Request::KeepAlive
        }
        // A request is judged whole (reserved bits included) once its body is in.
        _ if header.msg_type == MessageType::SessionRequest
            && header.length as usize <= MAX_REQUEST_BODY
            && nbss::HEADER_LEN + header.length as usize <= socket.recv_capacity() =>
        {
            let total = nbss::HEADER_LEN + header.length as usize;
            if socket.recv_queue() < total {
                return Request::Incomplete;
            }
            let mut frame = [0u8; REFUSAL_RX];
            if socket.peek_slice(&mut frame[..total]) != Ok(total) {
                return Request::Incomplete;
            }
            discard(socket, total);
            match nbss::Repr::parse(&nbss::Packet::new_unchecked(&frame[..total])) {
                Ok(nbss::Repr::SessionRequest { called, calling }) => {
                    Request::Session { called, calling }
                }
                _ => Request::Malformed,
            }
        }
        _ => Request::Malformed,
    }
}

#[cfg(test)]
mod tests {
    use super::{SHORT_FRAME, short_frame};
    use crate::wire::nbss::{NegativeCode, Repr};

    #[test]
    fn short_frames_are_the_bytes_rfc_1002_gives() {
        let mut buffer = [0xa5; SHORT_FRAME];
        assert_eq!(
            short_frame(Repr::PositiveResponse, &mut buffer),
            [0x82, 0, 0, 0]
        );
        let refusal = Repr::NegativeResponse {
            code: NegativeCode::InsufficientResources,
        };
        assert_eq!(short_frame(refusal, &mut buffer), [0x83, 0, 0, 1, 0x83]);
        assert_eq!(short_frame(Repr::KeepAlive, &mut buffer), [0x85, 0, 0, 0]);
    }

    #[test]
    fn a_session_message_gets_only_its_header() {
        let mut buffer = [0xa5; SHORT_FRAME];
        let header = short_frame(Repr::SessionMessage { length: 0x1FFFF }, &mut buffer);
        assert_eq!(header, [0x00, 0x01, 0xff, 0xff]);
        let header = short_frame(Repr::SessionMessage { length: 7 }, &mut buffer);
        assert_eq!(header, [0x00, 0x00, 0x00, 0x07]);
    }
}
