//! The forward handler's glue to the session service and the operating system: one relay per
//! session slot, the backend connects, session events, poll(2) descriptors and deadlines.

use std::io;
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::os::fd::AsRawFd;
use std::time::{Duration as StdDuration, Instant as StdInstant};

use smoltcp::time::Instant;
use smoltcp::wire::IpEndpoint;

use super::connect::{ConnectState, connect_nonblocking, connect_state};
use super::relay::{End, Relay};
use crate::log_limit::LogLimit;
use crate::node::Node;
use crate::session::{Phase, SessionEvent, Sessions, SlotId};
use crate::wire::nbss::NegativeCode;

/// How long the backend may take to accept a connection before the client is refused (0x8F).
pub const CONNECT_TIMEOUT: StdDuration = StdDuration::from_secs(3);

/// The backend connection of one session slot.
enum Backend {
    Idle,
    /// A non-blocking connect is under way.
    Connecting {
        stream: TcpStream,
        deadline: StdInstant,
    },
    /// The connect could not even start; the request is refused at the next pump.
    Failed(io::Error),
    /// Connected, session accepted: the relay holds the stream, bytes flow.
    Open {
        /// The backend-side local address (what the backend sees as its peer).
        local: Option<SocketAddr>,
    },
}

/// One session slot: the session (or held request) it serves and its relay.
struct Link {
    id: Option<SlotId>,
    peer: Option<IpEndpoint>,
    backend: Backend,
    relay: Relay<TcpStream>,
}

impl Link {
    /// Back to idle: the backend connection (if any) is closed.
    fn release(&mut self) {
        self.id = None;
        self.peer = None;
        self.backend = Backend::Idle;
        drop(self.relay.release());
    }

    /// The client's session ended: the backend gets what is buffered for it if its socket
    /// takes it now, then the connection is shut down and closed.
    fn client_gone(&mut self) {
        if let Some(stream) = self.relay.client_gone() {
            let _ = stream.shutdown(Shutdown::Both);
        }
        self.release();
    }

    /// Logs a backend read or write failure, once.
    fn log_failure(&mut self) {
        if let Some(e) = self.relay.take_failure() {
            log::info!(
                "forward: backend connection of the session with {} failed: {e}",
                show_peer(self.peer)
            );
        }
    }
}

/// The forward handler: one relay per session slot and the backend's address.
pub struct Forwarder {
    backend: SocketAddr,
    links: Vec<Link>,
    /// What the daemon's poll(2) should wait for (rebuilt by [`Forwarder::poll_fds`]).
    poll_fds: Vec<libc::pollfd>,
    /// The session service's lost-event count last seen (a lost `Requested` is found again by
    /// a scan of the ledger).
    events_lost: u32,
    /// Connect failure lines: at most 10 a second.
    failure_log: LogLimit,
}

impl Forwarder {
    /// A forwarder to `backend` for `sessions` session slots, each with two relay buffers of
    /// `buffer` bytes (all allocated here, once).
    pub fn new(backend: SocketAddr, sessions: usize, buffer: usize) -> Forwarder {
        Forwarder {
            backend,
            links: (0..sessions)
                .map(|_| Link {
                    id: None,
                    peer: None,
                    backend: Backend::Idle,
                    relay: Relay::new(buffer),
                })
                .collect(),
            poll_fds: Vec::with_capacity(sessions),
            events_lost: 0,
            failure_log: LogLimit::new(10, |n| {
                log::warn!("forward: {n} more backend failures not logged")
            }),
        }
    }

    /// The backend.
    pub fn backend(&self) -> SocketAddr {
        self.backend
    }

    /// The backend-side local address of the session on `slot` while it is relayed: the
    /// address the backend (smbd) sees and logs as its client. `None` for any other slot or
    /// connection (no session, or a request still waiting for the backend).
    pub fn backend_local(&self, slot: SlotId) -> Option<SocketAddr> {
        let link = self.links.get(usize::from(slot.index))?;
        match link.backend {
            Backend::Open { local } if link.id == Some(slot) => local,
            _ => None,
        }
    }

    /// Acts on a session event: a held request starts a connect, a closed session closes its
    /// backend connection. The caller hands over every event it takes from the node.
    pub fn on_event(&mut self, event: &SessionEvent) {
        match *event {
            SessionEvent::Requested { slot, peer, .. } => self.start(slot, Some(peer)),
            SessionEvent::Closed { slot, .. } => {
                if let Some(link) = self.link_of(slot) {
                    log::debug!(
                        "forward: session with {} ended; backend connection closed",
                        show_peer(link.peer)
                    );
                    link.client_gone();
                }
            }
            _ => {}
        }
    }

    fn link_of(&mut self, slot: SlotId) -> Option<&mut Link> {
        self.links
            .get_mut(usize::from(slot.index))
            .filter(|link| link.id == Some(slot))
    }

    fn start(&mut self, slot: SlotId, peer: Option<IpEndpoint>) {
        let backend = self.backend;
        let Some(link) = self.links.get_mut(usize::from(slot.index)) else {
            // Requests are only held on session slots; nothing to relay with otherwise.
            log::warn!(
                "forward: request held on slot {} without a relay",
                slot.index
            );
            return;
        };
        if link.id.is_some() {
            // A session of an earlier connection of this slot, whose end we missed.
            link.client_gone();
        }
        link.id = Some(slot);
        link.peer = peer;
        link.backend = match connect_nonblocking(backend) {
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
        for index in 0..self.links.len() {
            progress |= self.pump_one(index, &mut sessions, wall);
        }
        progress
    }

    /// Requests held for us whose event was lost.
    fn find_held_requests(&mut self, node: &mut Node) {
        let held: Vec<(SlotId, Option<IpEndpoint>)> = node
            .session_service()
            .slots()
            .filter(|info| info.phase == Phase::Deciding)
            .map(|info| (info.slot, info.peer))
            .collect();
        for (slot, peer) in held {
            if self.link_of(slot).is_none() {
                self.start(slot, peer);
            }
        }
    }

    fn pump_one(&mut self, index: usize, sessions: &mut Sessions, now: StdInstant) -> bool {
        let link = &mut self.links[index];
        let Some(id) = link.id else {
            return false;
        };
        let failure = match &link.backend {
            Backend::Idle => return false,
            Backend::Failed(e) => Some(e.to_string()),
            Backend::Connecting { stream, deadline } => match connect_state(stream) {
                ConnectState::Pending if now < *deadline => return false,
                ConnectState::Pending => Some(format!("no connection within {CONNECT_TIMEOUT:?}")),
                ConnectState::Failed(e) => Some(e.to_string()),
                ConnectState::Connected => None,
            },
            Backend::Open { .. } => {
                let result = link.relay.pump(id, sessions);
                link.log_failure();
                return match result {
                    Ok(progress) => progress,
                    Err(end) => {
                        self.finish(index, end, sessions);
                        true
                    }
                };
            }
        };
        if let Some(why) = failure {
            self.refuse(index, &why, sessions);
            return true;
        }
        self.open(index, sessions);
        true
    }

    /// The connect failed or timed out: the request is refused (0x8F).
    fn refuse(&mut self, index: usize, why: &str, sessions: &mut Sessions) {
        let backend = self.backend;
        let link = &mut self.links[index];
        let Some(id) = link.id else { return };
        let refused = sessions.refuse(id, NegativeCode::Unspecified).is_ok();
        let peer = show_peer(link.peer);
        link.release();
        if self.failure_log.allow() {
            if refused {
                log::warn!(
                    "forward: backend {backend} unreachable ({why}); session request from \
                     {peer} refused (0x8F)"
                );
            } else {
                log::warn!("forward: backend {backend} unreachable ({why})");
            }
        }
    }

    /// The connect succeeded: the request is accepted (0x82) and the relay opened.
    fn open(&mut self, index: usize, sessions: &mut Sessions) {
        let backend = self.backend;
        let link = &mut self.links[index];
        let Some(id) = link.id else { return };
        let Backend::Connecting { stream, .. } =
            std::mem::replace(&mut link.backend, Backend::Idle)
        else {
            return;
        };
        if sessions.accept(id).is_err() {
            // The request deadline passed (the library refused it) or the client left.
            log::info!(
                "forward: backend connected too late for the session request from {}; dropped",
                show_peer(link.peer)
            );
            link.release();
            return;
        }
        let _ = stream.set_nodelay(true);
        let local = stream.local_addr().ok();
        // Both ends, so the backend's log (which sees `local`) can be matched to the client.
        log::info!(
            "forward: session from {} relayed to {backend} from {}",
            show_peer(link.peer),
            local.map_or_else(|| "?".to_string(), |a| a.to_string())
        );
        link.backend = Backend::Open { local };
        link.relay.open(stream);
        // Bytes may already be waiting on either side.
        let result = link.relay.pump(id, sessions);
        link.log_failure();
        if let Err(end) = result {
            self.finish(index, end, sessions);
        }
    }

    fn finish(&mut self, index: usize, end: End, sessions: &mut Sessions) {
        let backend = self.backend;
        let link = &mut self.links[index];
        let peer = show_peer(link.peer);
        let Some(id) = link.id else { return };
        match end {
            End::SessionGone => {
                log::debug!("forward: session with {peer} ended; backend connection closed");
                link.client_gone();
                return;
            }
            End::BackendDone => {
                log::debug!("forward: backend closed the session with {peer}; closing it");
            }
            End::BackendTruncated => log::info!(
                "forward: backend closed in the middle of a frame for {peer}; closing the session"
            ),
            End::Frame(error) => log::warn!(
                "forward: backend {backend} sent {error}; closing the session with {peer} and \
                 the backend connection"
            ),
        }
        let _ = sessions.close(id);
        if let Some(stream) = link.relay.backend() {
            let _ = stream.shutdown(Shutdown::Both);
        }
        link.release();
    }

    /// The earliest connect deadline.
    pub fn next_deadline(&self) -> Option<StdInstant> {
        self.links
            .iter()
            .filter_map(|link| match &link.backend {
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
        for link in &self.links {
            let (fd, events) = match &link.backend {
                Backend::Connecting { stream, .. } => (stream.as_raw_fd(), libc::POLLOUT),
                Backend::Open { .. } => {
                    let Some(stream) = link.relay.backend() else {
                        continue;
                    };
                    let mut events = 0;
                    if link.relay.wants_read() {
                        events |= libc::POLLIN;
                    }
                    if link.relay.wants_write() {
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

fn show_peer(peer: Option<IpEndpoint>) -> String {
    peer.map_or_else(|| "?".to_string(), |p| p.to_string())
}
