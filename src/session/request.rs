//! Request framing: what the head of a new connection's byte stream holds.

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

pub(super) fn take_request(socket: &mut tcp::Socket) -> Request {
    let mut header = [0u8; nbss::HEADER_LEN];
    if socket.recv_queue() < nbss::HEADER_LEN
        || socket.peek_slice(&mut header) != Ok(nbss::HEADER_LEN)
    {
        return Request::Incomplete;
    }
    let packet = nbss::Packet::new_unchecked(&header[..]);
    let length = packet.length() as usize;
    match packet.msg_type() {
        MessageType::KeepAlive if length == 0 && packet.flags() == 0 => {
            discard(socket, nbss::HEADER_LEN);
            Request::KeepAlive
        }
        MessageType::SessionRequest
            if length <= MAX_REQUEST_BODY
                && nbss::HEADER_LEN + length <= socket.recv_capacity() =>
        {
            let total = nbss::HEADER_LEN + length;
            if socket.recv_queue() < total {
                return Request::Incomplete;
            }
            let mut frame = [0u8; REFUSAL_RX];
            if socket.peek_slice(&mut frame[..total]) != Ok(total) {
                return Request::Incomplete;
            }
            discard(socket, total);
            match nbss::Packet::new_checked(&frame[..total])
                .and_then(|packet| nbss::Repr::parse(&packet))
            {
                Ok(nbss::Repr::SessionRequest { called, calling }) => {
                    Request::Session { called, calling }
                }
                _ => Request::Malformed,
            }
        }
        _ => Request::Malformed,
    }
}
