//! The relay of one established session: NetBT session messages to direct-hosted frames and
//! back, through two fixed buffers, never blocking.
//!
//! The backend is anything that reads and writes without blocking (`WouldBlock` when it
//! cannot go on): a non-blocking [`TcpStream`](std::net::TcpStream) in the daemon and in the
//! tests. The relay does not own the session: every call takes the session service's
//! [`Sessions`] and the session's [`SlotId`].

use std::io::{self, ErrorKind, Read, Write};

use super::buffer::Buffer;
use super::frame::{
    BackendFrame, DIRECT_HEADER_LEN, FrameError, direct_header, parse_direct_header,
};
use crate::host::nonblocking;
use crate::session::{Sessions, SlotId};

/// Smallest relay buffer (a header must fit).
pub const MIN_BUFFER: usize = 64;

/// Why a relay ends.
#[derive(Debug)]
pub enum End {
    /// The session is gone (the client closed or reset it, or it was closed for an error).
    SessionGone,
    /// The backend is done and everything it sent is with the session.
    BackendDone,
    /// The backend closed in the middle of a frame.
    BackendTruncated,
    /// The backend sent something a session cannot carry.
    Frame(FrameError),
}

/// One session's relay: idle until [`Relay::open`] gives it a backend, then it moves bytes at
/// each [`Relay::pump`] until an [`End`].
pub struct Relay<B> {
    backend: Option<B>,
    /// Client → backend: direct-hosted frames.
    to_backend: Buffer,
    /// Backend → client: the backend's bytes as they came.
    to_client: Buffer,
    /// Body bytes of the client's current message not yet read from the session.
    client_body: u32,
    /// Body bytes of the backend's current message not yet written to the session.
    backend_body: u32,
    /// The backend sent EOF (or failed): nothing more to read from it or write to it.
    backend_done: bool,
    /// Why the backend failed, until [`Relay::take_failure`].
    failure: Option<io::Error>,
}

impl<B: Read + Write> Relay<B> {
    /// An idle relay with two buffers of `buffer` bytes each (at least [`MIN_BUFFER`]),
    /// allocated here, once.
    pub fn new(buffer: usize) -> Relay<B> {
        let buffer = buffer.max(MIN_BUFFER);
        Relay {
            backend: None,
            to_backend: Buffer::new(buffer),
            to_client: Buffer::new(buffer),
            client_body: 0,
            backend_body: 0,
            backend_done: false,
            failure: None,
        }
    }

    /// Starts relaying between the session and `backend` (connected, non-blocking). An open
    /// relay's backend is replaced (and returned).
    pub fn open(&mut self, backend: B) -> Option<B> {
        let old = self.release();
        self.backend = Some(backend);
        old
    }

    /// The backend, while the relay is open.
    pub fn backend(&self) -> Option<&B> {
        self.backend.as_ref()
    }

    /// Whether the relay would read from the backend now (there is room for its bytes).
    pub fn wants_read(&self) -> bool {
        self.backend.is_some() && !self.backend_done && self.to_client.free() > 0
    }

    /// Whether the relay would write to the backend now (bytes wait for it).
    pub fn wants_write(&self) -> bool {
        self.backend.is_some() && !self.backend_done && !self.to_backend.is_empty()
    }

    /// Why the backend failed (a read or write error), once.
    pub fn take_failure(&mut self) -> Option<io::Error> {
        self.failure.take()
    }

    /// Back to idle; returns the backend (if any) for the caller to close.
    pub fn release(&mut self) -> Option<B> {
        self.to_backend.clear();
        self.to_client.clear();
        self.client_body = 0;
        self.backend_body = 0;
        self.backend_done = false;
        self.failure = None;
        self.backend.take()
    }

    /// The client's session ended: hands the backend what is buffered for it if it takes it
    /// now, then goes back to idle. Returns the backend for the caller to shut down.
    pub fn client_gone(&mut self) -> Option<B> {
        if let Some(backend) = &mut self.backend {
            while !self.to_backend.is_empty() {
                match nonblocking(|| backend.write(self.to_backend.data())) {
                    Ok(Some(n)) if n > 0 => self.to_backend.consume(n),
                    _ => break,
                }
            }
        }
        self.release()
    }

    /// Moves bytes both ways as far as the buffers, the session and the backend allow.
    /// `Ok(true)`: something moved. `Err`: the relay is over; the caller closes what is left
    /// (see [`End`]). An idle relay does nothing.
    pub fn pump(&mut self, id: SlotId, sessions: &mut Sessions) -> Result<bool, End> {
        if self.backend.is_none() {
            return Ok(false);
        }
        let mut progress = false;
        loop {
            let moved =
                self.client_to_backend(id, sessions)? | self.backend_to_client(id, sessions)?;
            if !moved {
                break;
            }
            progress = true;
        }
        if self.backend_done {
            let complete = self.to_client.is_empty() && self.backend_body == 0;
            if complete {
                return Err(End::BackendDone);
            }
            // Nothing more will come: a partial header, or a body that stopped short.
            let truncated = (self.backend_body == 0 && self.to_client.len() < DIRECT_HEADER_LEN)
                || (self.backend_body > 0 && self.to_client.is_empty());
            if truncated {
                return Err(End::BackendTruncated);
            }
        }
        Ok(progress)
    }

    /// Session → buffer (a header per message, then its body) → backend.
    fn client_to_backend(&mut self, id: SlotId, sessions: &mut Sessions) -> Result<bool, End> {
        let mut moved = self.session_to_buffer(id, sessions)?;
        let Some(backend) = &mut self.backend else {
            return Ok(moved);
        };
        let mut failure = None;
        while !self.to_backend.is_empty() && !self.backend_done {
            match nonblocking(|| backend.write(self.to_backend.data())) {
                Ok(Some(0)) => {
                    failure = Some(io::Error::new(ErrorKind::WriteZero, "it took no bytes"));
                    break;
                }
                Ok(Some(n)) => {
                    self.to_backend.consume(n);
                    moved = true;
                }
                Ok(None) => break,
                Err(e) => {
                    failure = Some(e);
                    break;
                }
            }
        }
        if let Some(e) = failure {
            self.backend_failed(e);
        }
        if self.backend_done && !self.to_backend.is_empty() {
            // Nobody will take these any more.
            self.to_backend.clear();
            moved = true;
        }
        Ok(moved)
    }

    fn session_to_buffer(&mut self, id: SlotId, sessions: &mut Sessions) -> Result<bool, End> {
        let mut moved = false;
        loop {
            if self.client_body == 0 {
                if self.to_backend.free() < DIRECT_HEADER_LEN {
                    return Ok(moved);
                }
                match sessions.incoming(id) {
                    Ok(None) => return Ok(moved),
                    Ok(Some(incoming)) => {
                        self.to_backend.push(&direct_header(incoming.length));
                        self.client_body = incoming.remaining;
                        moved = true;
                    }
                    Err(_) => return Err(End::SessionGone),
                }
            } else {
                let room = self.to_backend.room();
                let want = room.len().min(self.client_body as usize);
                if want == 0 {
                    return Ok(moved);
                }
                match sessions.read(id, &mut room[..want]) {
                    Ok(0) => return Ok(moved),
                    Ok(n) => {
                        self.to_backend.commit(n);
                        self.client_body -= n as u32;
                        moved = true;
                    }
                    Err(_) => return Err(End::SessionGone),
                }
            }
        }
    }

    /// Backend → buffer → session, frame by frame.
    fn backend_to_client(&mut self, id: SlotId, sessions: &mut Sessions) -> Result<bool, End> {
        let mut moved = false;
        loop {
            moved |= self.buffer_to_session(id, sessions)?;
            // From the backend into the buffer, while it has room.
            if self.backend_done {
                break;
            }
            let Some(backend) = &mut self.backend else {
                break;
            };
            let room = self.to_client.room();
            if room.is_empty() {
                break;
            }
            match nonblocking(|| backend.read(room)) {
                Ok(Some(0)) => {
                    self.backend_done = true;
                    moved = true;
                    break;
                }
                Ok(Some(n)) => {
                    self.to_client.commit(n);
                    moved = true;
                }
                Ok(None) => break,
                Err(e) => {
                    self.backend_failed(e);
                    moved = true;
                    break;
                }
            }
        }
        Ok(moved)
    }

    fn buffer_to_session(&mut self, id: SlotId, sessions: &mut Sessions) -> Result<bool, End> {
        let mut moved = false;
        loop {
            if self.backend_body == 0 {
                if self.to_client.len() < DIRECT_HEADER_LEN {
                    return Ok(moved);
                }
                let mut header = [0u8; DIRECT_HEADER_LEN];
                header.copy_from_slice(&self.to_client.data()[..DIRECT_HEADER_LEN]);
                match parse_direct_header(header).map_err(End::Frame)? {
                    BackendFrame::KeepAlive => {
                        self.to_client.consume(DIRECT_HEADER_LEN);
                        moved = true;
                    }
                    BackendFrame::Message(length) => match sessions.begin_message(id, length) {
                        Ok(true) => {
                            self.to_client.consume(DIRECT_HEADER_LEN);
                            self.backend_body = length;
                            moved = true;
                        }
                        Ok(false) => return Ok(moved),
                        Err(_) => return Err(End::SessionGone),
                    },
                }
            } else {
                let data = self.to_client.data();
                let n = data.len().min(self.backend_body as usize);
                if n == 0 {
                    return Ok(moved);
                }
                match sessions.write(id, &data[..n]) {
                    Ok(0) => return Ok(moved),
                    Ok(sent) => {
                        self.to_client.consume(sent);
                        self.backend_body -= sent as u32;
                        moved = true;
                    }
                    Err(_) => return Err(End::SessionGone),
                }
            }
        }
    }

    fn backend_failed(&mut self, error: io::Error) {
        if !self.backend_done {
            self.failure = Some(error);
        }
        self.backend_done = true;
    }
}
