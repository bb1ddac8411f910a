//! `--handler forward=HOST:PORT` (std only): every session is relayed to a backend reached
//! through the host's own TCP/IP stack, e.g. Samba's smbd on 127.0.0.1:445.
//!
//! The session service holds each acceptable request for us ([`SessionEvent::Requested`],
//! deferred accept). We start a non-blocking connect to the backend; once it is connected the
//! session is accepted (0x82); if the connect fails or takes longer than [`CONNECT_TIMEOUT`]
//! the request is refused with 0x83 0x8F, so a client never sees a 0x82 followed by a close. If
//! the request deadline passes first, the library refuses on its own, `accept` fails, and the
//! backend connection is dropped.
//!
//! Established sessions are relayed both ways without ever blocking the daemon's loop. NetBT
//! session messages (type 0x00, 17-bit length with the E bit) become direct-hosted SMB frames
//! (0x00, then a 24-bit length) and back; for lengths up to 0x1FFFF the two headers have the
//! same bytes, but a backend frame longer than 0x1FFFF cannot be carried and closes both sides.
//! Keepalives stay on their side: the library drops the client's and sends its own; a backend's
//! (0x85, as smbd sends them) are dropped here.
//!
//! Every session slot has its relay, with two buffers of `--session-buffer` bytes each,
//! allocated once at start-up. A direction stops reading when its buffer is full (the other
//! side cannot take more), so backpressure reaches the sender: smoltcp's window closes, or the
//! kernel's. The daemon's poll(2) waits on the backend sockets too ([`Forwarder::poll_fds`]:
//! readable while there is room, writable while bytes wait) and on the connect deadlines
//! ([`Forwarder::next_deadline`]).
//!
//! Closes: the client's session ended ([`SessionEvent::Closed`], or any call on it fails) →
//! what is buffered for the backend is written if the socket takes it, then the backend
//! connection is shut down and closed. Backend EOF or error → what it sent is passed on to the
//! client, then the session is closed (FIN after the queued bytes).

use std::io::{self, ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd};
use std::time::{Duration as StdDuration, Instant as StdInstant};

use netbt::node::Node;
use netbt::session::{SessionEvent, Sessions, SlotId};
use netbt::wire::nbss::{self, NegativeCode};
use smoltcp::time::Instant;
use smoltcp::wire::IpEndpoint;

/// How long the backend may take to accept a connection before the client is refused (0x8F).
pub const CONNECT_TIMEOUT: StdDuration = StdDuration::from_secs(3);
/// Length of a direct-hosted SMB header (RFC 1002 §4.3.1's header without flags: 0x00 and a
/// 24-bit length; MS-SMB2 §2.1).
pub const DIRECT_HEADER_LEN: usize = 4;
/// Smallest relay buffer (a header must fit).
const MIN_BUFFER: usize = 64;
/// Message type of a session keepalive, which smbd also sends on direct-hosted connections.
const KEEPALIVE: u8 = 0x85;

/// The direct-hosted header (0x00, 24-bit big-endian length) of a NetBT session message of
/// `length` body bytes (at most [`nbss::MAX_LENGTH`], as the session service guarantees).
pub fn direct_header(length: u32) -> [u8; DIRECT_HEADER_LEN] {
    debug_assert!(length <= nbss::MAX_LENGTH);
    let [_, high, mid, low] = length.to_be_bytes();
    [0x00, high, mid, low]
}

/// A frame header from the backend, as far as a NetBT session can carry it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendFrame {
    /// A message of this many body bytes (at most [`nbss::MAX_LENGTH`]).
    Message(u32),
    /// A keepalive (0x85, no body): dropped.
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

impl std::fmt::Display for FrameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
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

/// Parses a direct-hosted header from the backend: 0x00 and a 24-bit big-endian length.
pub fn parse_direct_header(header: [u8; DIRECT_HEADER_LEN]) -> Result<BackendFrame, FrameError> {
    let length = u32::from_be_bytes([0, header[1], header[2], header[3]]);
    match header[0] {
        0x00 if length <= nbss::MAX_LENGTH => Ok(BackendFrame::Message(length)),
        0x00 => Err(FrameError::TooLong(length)),
        KEEPALIVE if length == 0 => Ok(BackendFrame::KeepAlive),
        other => Err(FrameError::BadType(other)),
    }
}

/// A fixed byte queue: the bytes waiting are `bytes[start..end]`.
struct Buffer {
    bytes: Box<[u8]>,
    start: usize,
    end: usize,
}

impl Buffer {
    fn new(size: usize) -> Buffer {
        Buffer {
            bytes: vec![0u8; size].into_boxed_slice(),
            start: 0,
            end: 0,
        }
    }

    fn data(&self) -> &[u8] {
        &self.bytes[self.start..self.end]
    }

    fn len(&self) -> usize {
        self.end - self.start
    }

    fn is_empty(&self) -> bool {
        self.start == self.end
    }

    /// Bytes that can still be queued (after compaction).
    fn free(&self) -> usize {
        self.bytes.len() - self.len()
    }

    fn consume(&mut self, n: usize) {
        self.start += n;
        debug_assert!(self.start <= self.end);
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
    }

    /// The free space after the bytes waiting, moving them to the front first once the end
    /// is reached. Fill it, then [`Buffer::commit`].
    fn room(&mut self) -> &mut [u8] {
        if self.end == self.bytes.len() {
            self.compact();
        }
        &mut self.bytes[self.end..]
    }

    /// Moves the bytes waiting to the front.
    fn compact(&mut self) {
        if self.start > 0 {
            self.bytes.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
    }

    fn commit(&mut self, n: usize) {
        self.end += n;
        debug_assert!(self.end <= self.bytes.len());
    }

    /// Queues `bytes` (at most [`Buffer::free`] of them).
    fn push(&mut self, bytes: &[u8]) {
        if self.bytes.len() - self.end < bytes.len() {
            self.compact();
        }
        self.bytes[self.end..self.end + bytes.len()].copy_from_slice(bytes);
        self.commit(bytes.len());
    }

    fn clear(&mut self) {
        self.start = 0;
        self.end = 0;
    }
}

/// The backend connection of one relay.
enum Backend {
    Idle,
    /// A non-blocking connect is under way.
    Connecting {
        stream: TcpStream,
        deadline: StdInstant,
    },
    /// The connect could not even start; the request is refused at the next pump.
    Failed(io::Error),
    /// Connected, session accepted: bytes flow.
    Open(TcpStream),
}

/// One session slot's relay.
struct Relay {
    /// The session (or held request) it serves.
    id: Option<SlotId>,
    peer: Option<IpEndpoint>,
    backend: Backend,
    /// Client → backend: direct-hosted frames.
    to_backend: Buffer,
    /// Backend → client: the backend's bytes as they came.
    to_client: Buffer,
    /// Body bytes of the client's current message not yet read from the session.
    client_body: u32,
    /// Body bytes of the backend's current message not yet written to the session.
    backend_body: u32,
    /// The backend sent EOF (or failed): nothing more to read from it.
    backend_done: bool,
}

/// Why a relay ends.
enum End {
    /// The session is gone (the client closed or reset it, or it was closed for an error).
    SessionGone,
    /// The backend is done and everything it sent is with the session.
    BackendDone,
    /// The backend closed in the middle of a frame.
    BackendTruncated,
    /// The backend sent something a session cannot carry.
    Frame(FrameError),
}

impl Relay {
    fn new(buffer: usize) -> Relay {
        Relay {
            id: None,
            peer: None,
            backend: Backend::Idle,
            to_backend: Buffer::new(buffer),
            to_client: Buffer::new(buffer),
            client_body: 0,
            backend_body: 0,
            backend_done: false,
        }
    }

    /// Back to idle: the backend connection (if any) is closed.
    fn release(&mut self) {
        self.id = None;
        self.peer = None;
        self.backend = Backend::Idle;
        self.to_backend.clear();
        self.to_client.clear();
        self.client_body = 0;
        self.backend_body = 0;
        self.backend_done = false;
    }

    /// The client's session ended: hand the backend what is buffered if its socket takes it
    /// now, then shut the connection down and close it.
    fn client_gone(&mut self) {
        if let Backend::Open(stream) = &mut self.backend {
            while !self.to_backend.is_empty() {
                match stream.write(self.to_backend.data()) {
                    Ok(0) => break,
                    Ok(n) => self.to_backend.consume(n),
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    Err(_) => break,
                }
            }
            let _ = stream.shutdown(Shutdown::Both);
        }
        self.release();
    }

    /// Moves bytes both ways as far as the buffers and sockets allow. `Ok(true)`: something
    /// moved.
    fn relay(&mut self, id: SlotId, sessions: &mut Sessions) -> Result<bool, End> {
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

    fn client_to_backend(&mut self, id: SlotId, sessions: &mut Sessions) -> Result<bool, End> {
        let Backend::Open(stream) = &mut self.backend else {
            return Ok(false);
        };
        let mut moved = false;
        // From the session into the buffer, while it has room.
        loop {
            if self.client_body == 0 {
                if self.to_backend.free() < DIRECT_HEADER_LEN {
                    break;
                }
                match sessions.incoming(id) {
                    Ok(None) => break,
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
                    break;
                }
                match sessions.read(id, &mut room[..want]) {
                    Ok(0) => break,
                    Ok(n) => {
                        self.to_backend.commit(n);
                        self.client_body -= n as u32;
                        moved = true;
                    }
                    Err(_) => return Err(End::SessionGone),
                }
            }
        }
        // From the buffer to the backend, while its socket takes it.
        let mut failure = None;
        while !self.to_backend.is_empty() && !self.backend_done {
            match stream.write(self.to_backend.data()) {
                Ok(0) => {
                    failure = Some("it took no bytes".to_string());
                    break;
                }
                Ok(n) => {
                    self.to_backend.consume(n);
                    moved = true;
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) => {
                    failure = Some(e.to_string());
                    break;
                }
            }
        }
        if let Some(why) = failure {
            self.backend_failed(&why);
        }
        if self.backend_done && !self.to_backend.is_empty() {
            // Nobody will take these any more.
            self.to_backend.clear();
            moved = true;
        }
        Ok(moved)
    }

    fn backend_to_client(&mut self, id: SlotId, sessions: &mut Sessions) -> Result<bool, End> {
        let mut moved = false;
        loop {
            // From the buffer into the session, frame by frame.
            loop {
                if self.backend_body == 0 {
                    if self.to_client.len() < DIRECT_HEADER_LEN {
                        break;
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
                            Ok(false) => break,
                            Err(_) => return Err(End::SessionGone),
                        },
                    }
                } else {
                    let data = self.to_client.data();
                    let n = data.len().min(self.backend_body as usize);
                    if n == 0 {
                        break;
                    }
                    match sessions.write(id, &data[..n]) {
                        Ok(0) => break,
                        Ok(sent) => {
                            self.to_client.consume(sent);
                            self.backend_body -= sent as u32;
                            moved = true;
                        }
                        Err(_) => return Err(End::SessionGone),
                    }
                }
            }
            // From the backend into the buffer, while it has room.
            if self.backend_done {
                break;
            }
            let Backend::Open(stream) = &mut self.backend else {
                break;
            };
            let room = self.to_client.room();
            if room.is_empty() {
                break;
            }
            match stream.read(room) {
                Ok(0) => {
                    self.backend_done = true;
                    moved = true;
                    break;
                }
                Ok(n) => {
                    self.to_client.commit(n);
                    moved = true;
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) => {
                    let why = e.to_string();
                    self.backend_failed(&why);
                    moved = true;
                    break;
                }
            }
        }
        Ok(moved)
    }

    fn backend_failed(&mut self, why: &str) {
        if !self.backend_done {
            log::info!(
                "forward: backend connection of the session with {} failed: {why}",
                show_peer(self.peer)
            );
        }
        self.backend_done = true;
    }
}

fn show_peer(peer: Option<IpEndpoint>) -> String {
    peer.map_or_else(|| "?".to_string(), |p| p.to_string())
}

/// Whether a non-blocking connect has finished.
enum ConnectState {
    Pending,
    Connected,
    Failed(io::Error),
}

fn connect_state(stream: &TcpStream) -> ConnectState {
    match stream.take_error() {
        Ok(Some(e)) | Err(e) => ConnectState::Failed(e),
        Ok(None) => match stream.peer_addr() {
            Ok(_) => ConnectState::Connected,
            Err(e) if e.kind() == ErrorKind::NotConnected => ConnectState::Pending,
            Err(e) => ConnectState::Failed(e),
        },
    }
}

/// Starts a non-blocking TCP connect to `to` (the socket is non-blocking from then on).
fn connect_nonblocking(to: SocketAddr) -> io::Result<TcpStream> {
    let domain = match to {
        SocketAddr::V4(_) => libc::AF_INET,
        SocketAddr::V6(_) => libc::AF_INET6,
    };
    // SAFETY: plain system call; the descriptor is checked and owned below.
    #[allow(unsafe_code)]
    let fd = unsafe {
        libc::socket(
            domain,
            libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            0,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is a new socket nobody else owns; the stream closes it.
    #[allow(unsafe_code)]
    let stream = unsafe { TcpStream::from_raw_fd(fd) };
    let fd = stream.as_raw_fd();
    let rc = match to {
        SocketAddr::V4(v4) => {
            // SAFETY: all-zero is a valid sockaddr_in (the fields are set below).
            #[allow(unsafe_code)]
            let mut sin: libc::sockaddr_in = unsafe { std::mem::zeroed() };
            sin.sin_family = libc::AF_INET as libc::sa_family_t;
            sin.sin_port = v4.port().to_be();
            sin.sin_addr.s_addr = u32::from_ne_bytes(v4.ip().octets());
            // SAFETY: `sin` is a sockaddr_in of the length given, alive for the call.
            #[allow(unsafe_code)]
            unsafe {
                libc::connect(
                    fd,
                    (&raw const sin).cast::<libc::sockaddr>(),
                    std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
                )
            }
        }
        SocketAddr::V6(v6) => {
            // SAFETY: all-zero is a valid sockaddr_in6 (the fields are set below).
            #[allow(unsafe_code)]
            let mut sin6: libc::sockaddr_in6 = unsafe { std::mem::zeroed() };
            sin6.sin6_family = libc::AF_INET6 as libc::sa_family_t;
            sin6.sin6_port = v6.port().to_be();
            sin6.sin6_flowinfo = v6.flowinfo();
            sin6.sin6_addr.s6_addr = v6.ip().octets();
            sin6.sin6_scope_id = v6.scope_id();
            // SAFETY: `sin6` is a sockaddr_in6 of the length given, alive for the call.
            #[allow(unsafe_code)]
            unsafe {
                libc::connect(
                    fd,
                    (&raw const sin6).cast::<libc::sockaddr>(),
                    std::mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t,
                )
            }
        }
    };
    // A non-blocking connect goes on in the background (also after EINTR); poll(2) reports
    // writable when it ends, and [`connect_state`] tells how.
    if rc == 0 {
        return Ok(stream);
    }
    let e = io::Error::last_os_error();
    match e.raw_os_error() {
        Some(libc::EINPROGRESS) | Some(libc::EINTR) => Ok(stream),
        _ => Err(e),
    }
}

/// The forward handler: one relay per session slot and the backend's address.
pub struct Forwarder {
    backend: SocketAddr,
    relays: Vec<Relay>,
    /// What the daemon's poll(2) should wait for (rebuilt by [`Forwarder::poll_fds`]).
    poll_fds: Vec<libc::pollfd>,
    /// The session service's lost-event count last seen (a lost `Requested` is found again by
    /// a scan of the ledger).
    events_lost: u32,
    /// Connect failures logged this second, and how many more were not.
    failures_logged: u32,
    failures_suppressed: u32,
    failure_window: StdInstant,
}

impl Forwarder {
    /// A forwarder to `backend` for `sessions` session slots, each with two relay buffers of
    /// `buffer` bytes (all allocated here, once).
    pub fn new(backend: SocketAddr, sessions: usize, buffer: usize) -> Forwarder {
        let buffer = buffer.max(MIN_BUFFER);
        Forwarder {
            backend,
            relays: (0..sessions).map(|_| Relay::new(buffer)).collect(),
            poll_fds: Vec::with_capacity(sessions),
            events_lost: 0,
            failures_logged: 0,
            failures_suppressed: 0,
            failure_window: StdInstant::now(),
        }
    }

    /// The backend.
    pub fn backend(&self) -> SocketAddr {
        self.backend
    }

    /// Acts on a session event: a held request starts a connect, a closed session closes its
    /// backend connection.
    pub fn on_event(&mut self, event: &SessionEvent) {
        match *event {
            SessionEvent::Requested { slot, peer, .. } => self.start(slot, Some(peer)),
            SessionEvent::Closed { slot, .. } => {
                if let Some(relay) = self.relay_of(slot) {
                    log::debug!(
                        "forward: session with {} ended; backend connection closed",
                        show_peer(relay.peer)
                    );
                    relay.client_gone();
                }
            }
            _ => {}
        }
    }

    fn relay_of(&mut self, slot: SlotId) -> Option<&mut Relay> {
        self.relays
            .get_mut(usize::from(slot.index))
            .filter(|relay| relay.id == Some(slot))
    }

    fn start(&mut self, slot: SlotId, peer: Option<IpEndpoint>) {
        let backend = self.backend;
        let Some(relay) = self.relays.get_mut(usize::from(slot.index)) else {
            // Requests are only held on session slots; nothing to relay with otherwise.
            log::warn!(
                "forward: request held on slot {} without a relay",
                slot.index
            );
            return;
        };
        if relay.id.is_some() {
            // A session of an earlier connection of this slot, whose end we missed.
            relay.client_gone();
        }
        relay.id = Some(slot);
        relay.peer = peer;
        relay.backend = match connect_nonblocking(backend) {
            Ok(stream) => Backend::Connecting {
                stream,
                deadline: StdInstant::now() + CONNECT_TIMEOUT,
            },
            Err(e) => Backend::Failed(e),
        };
        log::debug!(
            "forward: session request from {}: connecting to {backend}",
            show_peer(peer)
        );
    }

    /// Does all relay work possible now: finished or failed connects are answered (accept or
    /// refuse), bytes move both ways, ended relays are closed. Returns whether anything
    /// happened (the node should then be polled again at once: there is output to send).
    pub fn pump(&mut self, node: &mut Node, now: Instant) -> bool {
        let lost = node.session_service().counters().events_lost.get();
        if lost != self.events_lost {
            self.events_lost = lost;
            self.find_held_requests(node);
        }
        let mut progress = false;
        let mut sessions = node.sessions(now);
        let wall = StdInstant::now();
        for index in 0..self.relays.len() {
            progress |= self.pump_one(index, &mut sessions, wall);
        }
        progress
    }

    /// Requests held for us whose event was lost.
    fn find_held_requests(&mut self, node: &mut Node) {
        let held: Vec<(SlotId, Option<IpEndpoint>)> = node
            .session_service()
            .slots()
            .filter(|info| info.phase == netbt::session::Phase::Deciding)
            .map(|info| (info.slot, info.peer))
            .collect();
        for (slot, peer) in held {
            if self.relay_of(slot).is_none() {
                self.start(slot, peer);
            }
        }
    }

    fn pump_one(&mut self, index: usize, sessions: &mut Sessions, now: StdInstant) -> bool {
        let backend = self.backend;
        let relay = &mut self.relays[index];
        let Some(id) = relay.id else {
            return false;
        };
        let failure = match &relay.backend {
            Backend::Idle => return false,
            Backend::Failed(e) => Some(e.to_string()),
            Backend::Connecting { stream, deadline } => match connect_state(stream) {
                ConnectState::Pending if now < *deadline => return false,
                ConnectState::Pending => Some(format!("no connection within {CONNECT_TIMEOUT:?}")),
                ConnectState::Failed(e) => Some(e.to_string()),
                ConnectState::Connected => None,
            },
            Backend::Open(_) => {
                return match relay.relay(id, sessions) {
                    Ok(progress) => progress,
                    Err(end) => {
                        self.finish(index, end, sessions);
                        true
                    }
                };
            }
        };
        if let Some(why) = failure {
            let refused = sessions.refuse(id, NegativeCode::Unspecified).is_ok();
            let peer = show_peer(relay.peer);
            relay.release();
            if self.may_log_failure() {
                if refused {
                    log::warn!(
                        "forward: backend {backend} unreachable ({why}); session request from \
                         {peer} refused (0x8F)"
                    );
                } else {
                    log::warn!("forward: backend {backend} unreachable ({why})");
                }
            }
            return true;
        }
        // Connected.
        let Backend::Connecting { stream, .. } =
            std::mem::replace(&mut relay.backend, Backend::Idle)
        else {
            unreachable!("checked above");
        };
        if sessions.accept(id).is_err() {
            // The request deadline passed (the library refused it) or the client left.
            log::info!(
                "forward: backend connected too late for the session request from {}; dropped",
                show_peer(relay.peer)
            );
            relay.release();
            return true;
        }
        let _ = stream.set_nodelay(true);
        log::debug!(
            "forward: session from {} relayed to {backend}",
            show_peer(relay.peer)
        );
        relay.backend = Backend::Open(stream);
        // Bytes may already be waiting on either side.
        if let Err(end) = relay.relay(id, sessions) {
            self.finish(index, end, sessions);
        }
        true
    }

    fn finish(&mut self, index: usize, end: End, sessions: &mut Sessions) {
        let relay = &mut self.relays[index];
        let peer = show_peer(relay.peer);
        let Some(id) = relay.id else { return };
        match end {
            End::SessionGone => {
                log::debug!("forward: session with {peer} ended; backend connection closed");
                relay.client_gone();
                return;
            }
            End::BackendDone => {
                log::debug!("forward: backend closed the session with {peer}; closing it");
            }
            End::BackendTruncated => log::info!(
                "forward: backend closed in the middle of a frame for {peer}; closing the session"
            ),
            End::Frame(error) => log::warn!(
                "forward: backend {} sent {error}; closing the session with {peer} and the \
                 backend connection",
                self.backend
            ),
        }
        let _ = sessions.close(id);
        if let Backend::Open(stream) = &relay.backend {
            let _ = stream.shutdown(Shutdown::Both);
        }
        relay.release();
    }

    /// At most 10 connect-failure lines a second; the rest are summed up.
    fn may_log_failure(&mut self) -> bool {
        if self.failure_window.elapsed() >= StdDuration::from_secs(1) {
            if self.failures_suppressed > 0 {
                log::warn!(
                    "forward: {} more backend failures not logged",
                    self.failures_suppressed
                );
            }
            self.failure_window = StdInstant::now();
            self.failures_logged = 0;
            self.failures_suppressed = 0;
        }
        if self.failures_logged < 10 {
            self.failures_logged += 1;
            true
        } else {
            self.failures_suppressed += 1;
            false
        }
    }

    /// The earliest connect deadline.
    pub fn next_deadline(&self) -> Option<StdInstant> {
        self.relays
            .iter()
            .filter_map(|relay| match &relay.backend {
                Backend::Connecting { deadline, .. } => Some(*deadline),
                // Answered at the next pump.
                Backend::Failed(_) => Some(StdInstant::now()),
                _ => None,
            })
            .min()
    }

    /// The backend sockets and what to wait for on each: a connect's end, room to read into,
    /// bytes to write.
    pub fn poll_fds(&mut self) -> &[libc::pollfd] {
        self.poll_fds.clear();
        for relay in &self.relays {
            let (fd, events) = match &relay.backend {
                Backend::Connecting { stream, .. } => (stream.as_raw_fd(), libc::POLLOUT),
                Backend::Open(stream) => {
                    let mut events = 0;
                    if !relay.backend_done && relay.to_client.free() > 0 {
                        events |= libc::POLLIN;
                    }
                    if !relay.backend_done && !relay.to_backend.is_empty() {
                        events |= libc::POLLOUT;
                    }
                    (stream.as_raw_fd(), events)
                }
                Backend::Idle | Backend::Failed(_) => continue,
            };
            // Nothing wanted: leave it out, or its hang-up would end every wait.
            if events != 0 {
                self.poll_fds.push(libc::pollfd {
                    fd,
                    events,
                    revents: 0,
                });
            }
        }
        &self.poll_fds
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The NetBT session message header of `length` as the library writes it.
    fn nbss_header(length: u32) -> [u8; 4] {
        let mut header = [0u8; nbss::HEADER_LEN];
        let mut packet = nbss::Packet::new_unchecked(&mut header[..]);
        packet.set_msg_type(nbss::MessageType::SessionMessage);
        packet.set_flags(0);
        packet.set_length(length);
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
            assert_eq!(packet.length(), length);
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
        assert!(FrameError::TooLong(0x20000).to_string().contains("131072"));
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

    #[test]
    fn buffer_compacts_and_keeps_order() {
        let mut buffer = Buffer::new(8);
        buffer.push(b"abcdef");
        buffer.consume(4);
        assert_eq!(buffer.data(), b"ef");
        assert_eq!(buffer.free(), 6);
        // Room at the end is 2 bytes; once the end is reached the rest moves to the front.
        assert_eq!(buffer.room().len(), 2);
        buffer.push(b"gh");
        assert_eq!(buffer.room().len(), 4);
        buffer.push(b"ijkl");
        assert_eq!(buffer.data(), b"efghijkl");
        assert_eq!(buffer.free(), 0);
        buffer.consume(8);
        assert!(buffer.is_empty());
        assert_eq!(buffer.room().len(), 8);
        // A header pushed when only part of it fits behind the bytes waiting.
        buffer.push(b"abcdefg");
        buffer.consume(5);
        assert_eq!(buffer.free(), 6);
        buffer.push(&direct_header(0x1FFFF));
        assert_eq!(buffer.data(), b"fg\x00\x01\xff\xff");
    }

    #[test]
    fn a_closed_port_fails_the_connect() {
        // Bind a port, then free it: nobody listens there now.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let to: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let outcome = match connect_nonblocking(to) {
            Err(e) => Some(e.kind()),
            Ok(stream) => {
                let deadline = StdInstant::now() + StdDuration::from_secs(2);
                loop {
                    match connect_state(&stream) {
                        ConnectState::Failed(e) => break Some(e.kind()),
                        ConnectState::Connected => break None,
                        ConnectState::Pending if StdInstant::now() < deadline => {
                            std::thread::sleep(StdDuration::from_millis(5))
                        }
                        ConnectState::Pending => panic!("connect to a closed port still pending"),
                    }
                }
            }
        };
        assert_eq!(outcome, Some(ErrorKind::ConnectionRefused));
    }

    #[test]
    fn a_listening_port_connects_without_blocking() {
        connects_to("127.0.0.1:0");
        // IPv6 where the host has it.
        if std::net::TcpListener::bind("[::1]:0").is_ok() {
            connects_to("[::1]:0");
        }
    }

    fn connects_to(address: &str) {
        let listener = std::net::TcpListener::bind(address).unwrap();
        let stream = connect_nonblocking(listener.local_addr().unwrap()).unwrap();
        let deadline = StdInstant::now() + StdDuration::from_secs(2);
        loop {
            match connect_state(&stream) {
                ConnectState::Connected => break,
                ConnectState::Failed(e) => panic!("{e}"),
                ConnectState::Pending => {
                    assert!(StdInstant::now() < deadline, "still pending");
                    std::thread::sleep(StdDuration::from_millis(5));
                }
            }
        }
        let (mut accepted, _) = listener.accept().unwrap();
        (&stream).write_all(&direct_header(3)).unwrap();
        let mut got = [0u8; 4];
        accepted.read_exact(&mut got).unwrap();
        assert_eq!(got, [0, 0, 0, 3]);
    }
}
