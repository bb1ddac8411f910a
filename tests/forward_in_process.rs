//! The forward handler in process: our node (application handler, deferred accept) on the
//! in-memory hub, a plain smoltcp NetBT client, and a `netbt::forward::Forwarder` relaying
//! every session to a direct-hosted echo backend on a real loopback `TcpListener`. No root,
//! no TAP; these are the relay behaviours `scripts/lab-forward.sh` used to check with a Python
//! client and backend.
//!
//! The backend runs on its own thread in real time, so the bench steps the hub clock 1 ms per
//! step and sleeps about as long: connect timeouts (wall clock) and session deadlines (hub
//! clock) stay in step. Every wait is bounded.

mod support;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration as StdDuration, Instant as StdInstant};

use netbt::forward::Forwarder;
use netbt::session::{Handler, Phase, SessionEvent};
use netbt::wire::SESSION_SERVICE_PORT as NBSS;
use netbt::wire::name::{Name, NbName};
use netbt::wire::nbss;
use smoltcp::iface::SocketHandle;
use smoltcp::time::Duration;
use support::*;

/// The daemon's default `--session-buffer`.
const BUFFER: usize = 8192;
/// Longest body of a NetBT session message.
const MAX: usize = nbss::MAX_LENGTH as usize;

fn name(text: &str) -> Name {
    Name::parse_text(text, 0x20).unwrap()
}

fn request() -> Vec<u8> {
    let repr = nbss::Repr::SessionRequest {
        called: NbName::unscoped(name("LABSRV#20")),
        calling: NbName::unscoped(Name::parse_text("LABCLIENT", 0x00).unwrap()),
    };
    let mut bytes = vec![0; repr.buffer_len()];
    repr.emit(&mut nbss::Packet::new_unchecked(&mut bytes[..]));
    bytes
}

/// A NetBT session message (the E bit is bit 16 of the length).
fn message(body: &[u8]) -> Vec<u8> {
    let mut bytes = vec![0; nbss::HEADER_LEN];
    nbss::Repr::SessionMessage {
        length: body.len() as u32,
    }
    .emit(&mut nbss::Packet::new_unchecked(&mut bytes[..]));
    bytes.extend_from_slice(body);
    bytes
}

/// `n` bytes that differ from message to message.
fn body(n: usize, seed: u32) -> Vec<u8> {
    let mut x = seed.wrapping_mul(2_654_435_761) | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

const POSITIVE: [u8; 4] = [0x82, 0, 0, 0];
const REFUSED_UNSPECIFIED: [u8; 5] = [0x83, 0, 0, 1, 0x8F];

// ------------------------------------------------------------------------------ the backend

/// A listener on 127.0.0.1 at a port the kernel picks, with an accept queue of `backlog` and,
/// if given, `recv_buffer` bytes of receive buffer (inherited by the sockets it accepts).
fn loopback_listener(backlog: i32, recv_buffer: Option<usize>) -> TcpListener {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    if let Some(size) = recv_buffer {
        socket.set_recv_buffer_size(size).unwrap();
    }
    socket
        .bind(&"127.0.0.1:0".parse::<SocketAddr>().unwrap().into())
        .unwrap();
    socket.listen(backlog).unwrap();
    socket.into()
}

/// A direct-hosted echo backend on 127.0.0.1 (a thread per connection, each bounded to 60 s):
/// every frame comes back as it came, except the lab's special messages: `pause` stops
/// reading for 1 s first (backpressure), `too-long` is answered with a frame longer than
/// 0x1FFFF, `bye` is echoed and then the connection is closed (backend EOF).
struct EchoBackend {
    address: SocketAddr,
    /// The address of every connection the backend accepted (its client: the relay's side).
    accepted: mpsc::Receiver<SocketAddr>,
}

impl EchoBackend {
    fn start() -> EchoBackend {
        // A small, fixed receive buffer (no autotuning), so a backend that stops reading
        // pushes back through the relay within a few hundred kilobytes.
        let listener = loopback_listener(16, Some(64 * 1024));
        let address = listener.local_addr().unwrap();
        let (tell, accepted) = mpsc::channel();
        thread::spawn(move || {
            for connection in listener.incoming().take(16) {
                let Ok(connection) = connection else { break };
                let _ = tell.send(connection.peer_addr().unwrap());
                thread::spawn(move || echo(connection));
            }
        });
        EchoBackend { address, accepted }
    }
}

fn echo(mut connection: TcpStream) {
    connection
        .set_read_timeout(Some(StdDuration::from_secs(60)))
        .unwrap();
    loop {
        let mut header = [0u8; 4];
        if connection.read_exact(&mut header).is_err() {
            return;
        }
        let length = u32::from_be_bytes([0, header[1], header[2], header[3]]) as usize;
        let mut body = vec![0; length];
        if connection.read_exact(&mut body).is_err() {
            return;
        }
        let answer = match &body[..] {
            b"too-long" => [&[0u8, 2, 0, 0][..], &[0u8; 64]].concat(),
            b"pause" => {
                thread::sleep(StdDuration::from_secs(1));
                [&header[..], &body].concat()
            }
            _ => [&header[..], &body].concat(),
        };
        if connection.write_all(&answer).is_err() {
            return;
        }
        if body == b"bye" {
            return;
        }
    }
}

/// A port nobody listens on (bound, then freed).
fn closed_port() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

// -------------------------------------------------------------------------------- the bench

/// Our node (LABSRV<20>), the forwarder driving it as the daemon does, one client host.
struct Bench {
    hub: Hub,
    node: TestNode,
    forwarder: Forwarder,
    client: Peer,
    next_port: u16,
    /// Bytes waiting to be queued on the client's socket.
    outgoing: Vec<u8>,
    /// Bytes the client received and has not parsed yet.
    incoming: Vec<u8>,
    events: Vec<SessionEvent>,
}

impl Bench {
    fn new(backend: SocketAddr) -> Bench {
        let hub = Hub::new();
        let mut config = config(NODE_MAC, NODE_IP);
        config.session.handler = Handler::Application;
        config.session.defer_accept = true;
        let mut node = TestNode::with_slots(&hub, config, 2, 1, BUFFER);
        node.node.names.add_name(name("LABSRV#20"), false).unwrap();
        node.node
            .session_service()
            .listen(name("LABSRV#20"), None)
            .unwrap();
        node.node.names.start(hub.now());
        let mut bench = Bench {
            hub: hub.clone(),
            node,
            forwarder: Forwarder::new(backend, 2, BUFFER),
            client: Peer::new(&hub, PEER_MAC, PEER_IP),
            next_port: 40000,
            outgoing: Vec::new(),
            incoming: Vec::new(),
            events: Vec::new(),
        };
        // Names register in simulated time only.
        run(&bench.hub, 800, &mut [&mut bench.node, &mut bench.client]);
        assert!(bench.node.node.names.is_ready());
        bench
    }

    /// One millisecond, in simulated and (about) in real time: the node, the daemon's event
    /// and relay work, the client.
    fn step(&mut self, client: Option<SocketHandle>) {
        self.hub.advance(Duration::from_millis(1));
        let now = self.hub.now();
        for _ in 0..2 {
            self.node.poll(now);
            while let Some(event) = self.node.node.session_service().take_event() {
                self.forwarder.on_event(&event);
                self.events.push(event);
            }
            if self.forwarder.pump(&mut self.node.node, now) {
                self.node.poll(now);
            }
            self.client.poll(now);
            if let Some(handle) = client {
                self.move_client_bytes(handle);
            }
        }
        thread::sleep(StdDuration::from_millis(1));
    }

    fn move_client_bytes(&mut self, handle: SocketHandle) {
        let socket = self.client.tcp(handle);
        if !self.outgoing.is_empty() && socket.can_send() {
            let sent = socket.send_slice(&self.outgoing).unwrap();
            self.outgoing.drain(..sent);
        }
        while socket.can_recv() {
            let incoming = &mut self.incoming;
            socket
                .recv(|b| {
                    incoming.extend_from_slice(b);
                    (b.len(), ())
                })
                .unwrap();
        }
    }

    /// Steps until `done` holds, at most `ms` steps; panics otherwise.
    #[track_caller]
    fn run_until(
        &mut self,
        ms: u64,
        client: Option<SocketHandle>,
        mut done: impl FnMut(&mut Bench) -> bool,
    ) {
        for _ in 0..ms {
            if done(self) {
                return;
            }
            self.step(client);
        }
        let phases = self.phases();
        assert!(
            done(self),
            "condition not reached in {ms} steps (slots {phases:?})"
        );
    }

    /// Connects and sends a session request; returns the socket and the answer (its first
    /// 4 or 5 bytes) once it came.
    #[track_caller]
    fn call(&mut self) -> (SocketHandle, Vec<u8>) {
        self.next_port += 1;
        self.incoming.clear();
        self.outgoing.clear();
        let handle = self
            .client
            .connect((NODE_IP, NBSS), self.next_port, 256 * 1024);
        self.outgoing = request();
        self.run_until(5_000, Some(handle), |b| match b.incoming.first() {
            Some(0x82) => b.incoming.len() >= 4,
            Some(_) => b.incoming.len() >= 5,
            None => false,
        });
        let answer_len = if self.incoming[0] == 0x82 { 4 } else { 5 };
        let answer = self.incoming.drain(..answer_len).collect();
        (handle, answer)
    }

    /// The next complete session message the client received, if any: (flags, body).
    fn take_message(&mut self) -> Option<(u8, Vec<u8>)> {
        let packet = nbss::Packet::new_checked(&self.incoming[..]).ok()?;
        assert_eq!(
            packet.msg_type(),
            nbss::MessageType::SessionMessage,
            "only session messages"
        );
        let total = packet.total_len();
        if self.incoming.len() < total {
            return None;
        }
        let flags = packet.flags();
        let body = self.incoming[nbss::HEADER_LEN..total].to_vec();
        self.incoming.drain(..total);
        Some((flags, body))
    }

    /// Sends `bodies` as session messages and waits for as many messages back (at most `ms`
    /// steps); returns them as (flags, body).
    #[track_caller]
    fn exchange(
        &mut self,
        handle: SocketHandle,
        bodies: &[Vec<u8>],
        ms: u64,
    ) -> Vec<(u8, Vec<u8>)> {
        for body in bodies {
            self.outgoing.extend_from_slice(&message(body));
        }
        let mut got = Vec::new();
        self.run_until(ms, Some(handle), |b| {
            while let Some(message) = b.take_message() {
                got.push(message);
            }
            got.len() >= bodies.len()
        });
        got
    }

    /// Whether the node's side of the client's connection has sent its FIN.
    fn closed_by_node(&mut self, handle: SocketHandle) -> bool {
        !self.client.tcp(handle).may_recv()
    }

    /// Steps `ms` times without a client to serve.
    fn run(&mut self, ms: u64) {
        for _ in 0..ms {
            self.step(None);
        }
    }

    fn phases(&mut self) -> Vec<Phase> {
        self.node
            .node
            .session_service()
            .slots()
            .map(|s| s.phase)
            .collect()
    }

    #[track_caller]
    fn assert_no_reset(&mut self) {
        assert_no_reset(&self.hub, &mut self.node);
    }

    /// Segments from port 139 that advertised a zero window.
    fn zero_windows_from_139(&self) -> usize {
        self.hub
            .seen()
            .iter()
            .filter(|s| s.is_zero_window_from(NBSS))
            .count()
    }
}

/// A bench in front of a fresh echo backend, with one client session accepted (0x82). Keep
/// the backend alive for as long as the session is used.
#[track_caller]
fn echo_session() -> (EchoBackend, Bench, SocketHandle) {
    let backend = EchoBackend::start();
    let mut b = Bench::new(backend.address);
    let (client, answer) = b.call();
    assert_eq!(answer, POSITIVE, "accepted once the backend connected");
    (backend, b, client)
}

// ---------------------------------------------------------------------------------- tests

#[test]
fn messages_of_1_65536_and_131071_bytes_echo_through_the_backend_intact() {
    let (backend, mut b, client) = echo_session();
    for (i, size) in [1, 65536, MAX, 0, 4096].into_iter().enumerate() {
        let sent = body(size, i as u32);
        let got = b.exchange(client, std::slice::from_ref(&sent), 5_000);
        let want_flags = u8::from(size > 0xFFFF);
        assert_eq!(got[0].0, want_flags, "E bit of the echo of {size} bytes");
        assert!(got[0].1 == sent, "echo of {size} bytes differs");
    }
    // The status lookup: the relay's backend-side address is the client the backend saw.
    let seen_by_backend = backend
        .accepted
        .recv_timeout(StdDuration::from_secs(1))
        .unwrap();
    let slot = b.node.node.session_service().slots().next().unwrap();
    assert_eq!(slot.phase, Phase::Established);
    assert_eq!(b.forwarder.backend_local(slot.slot), Some(seen_by_backend));
    let info = b.node.node.session_service().slots().nth(1).unwrap();
    assert_eq!(b.forwarder.backend_local(info.slot), None, "an idle slot");
    b.assert_no_reset();
}

#[test]
fn forty_max_size_messages_behind_a_backend_pause_all_arrive_intact() {
    let (_backend, mut b, client) = echo_session();
    let mut bodies = vec![b"pause".to_vec()];
    bodies.extend((0..40).map(|i| body(MAX, 100 + i)));
    let started = StdInstant::now();
    let got = b.exchange(client, &bodies, 30_000);
    assert!(
        started.elapsed() >= StdDuration::from_secs(1),
        "the backend paused"
    );
    assert_eq!(got.len(), bodies.len());
    for (i, ((flags, back), sent)) in got.iter().zip(&bodies).enumerate() {
        assert!(back == sent, "message {i} differs");
        assert_eq!(*flags, u8::from(sent.len() > 0xFFFF), "message {i}");
    }
    // The backend stopped reading, the relay stopped reading the session, and the node's
    // receive window closed: flow control reached the client, nothing was dropped.
    assert!(
        b.zero_windows_from_139() > 0,
        "no zero window from 139 while the backend did not read"
    );
    b.assert_no_reset();
}

#[test]
fn a_backend_frame_longer_than_0x1ffff_closes_the_session_with_a_fin() {
    let (_backend, mut b, client) = echo_session();
    b.outgoing.extend_from_slice(&message(b"too-long"));
    b.run_until(5_000, Some(client), |b| b.closed_by_node(client));
    assert!(
        b.incoming.is_empty(),
        "nothing of the frame reached the client"
    );
    let slot = b.node.node.session_service().slots().next().unwrap().slot;
    assert_eq!(
        b.forwarder.backend_local(slot),
        None,
        "the relay is released"
    );
    b.client.tcp(client).close();
    // Our FIN was acknowledged: slot 0 hands the rest of its close to the gate's record and
    // serves the next session (no 10 s TIME-WAIT).
    b.run_until(1_000, None, |b| b.phases()[0] == Phase::Listening);
    let (_, answer) = b.call();
    assert_eq!(answer, POSITIVE, "after that a new session gets 0x82");
    assert_eq!(b.phases()[0], Phase::Established);
    b.assert_no_reset();
}

#[test]
fn backend_eof_after_its_last_frame_closes_the_session_after_that_frame() {
    let (_backend, mut b, client) = echo_session();
    let got = b.exchange(client, &[b"bye".to_vec()], 5_000);
    assert_eq!(got, [(0, b"bye".to_vec())], "the last frame came first");
    b.run_until(1_000, Some(client), |b| b.closed_by_node(client));
    assert!(b.incoming.is_empty(), "nothing after the last frame");
    let slot = b.node.node.session_service().slots().next().unwrap().slot;
    assert_eq!(
        b.forwarder.backend_local(slot),
        None,
        "the relay is released"
    );
    assert!(
        b.events
            .iter()
            .any(|e| matches!(e, SessionEvent::Opened { .. })),
        "the session was opened"
    );
    b.client.tcp(client).close();
    b.run(50);
    b.assert_no_reset();
}

#[test]
fn a_refused_backend_connect_refuses_the_request_with_0x8f_then_a_fin() {
    let mut b = Bench::new(closed_port());
    let (client, answer) = b.call();
    assert_eq!(answer, REFUSED_UNSPECIFIED);
    // The client does not close: netbt closes (FIN) once the drain time is over.
    b.run_until(4_000, Some(client), |b| b.closed_by_node(client));
    assert!(b.incoming.is_empty());
    let counters = b.node.node.session_service().counters();
    assert_eq!(counters.positive, 0);
    assert!(counters.negative() >= 1);
    b.assert_no_reset();
}

#[test]
fn a_backend_that_never_accepts_gets_0x8f_after_the_connect_timeout() {
    // A listener whose accept queue is full: the kernel drops further SYNs, so the relay's
    // connect stays pending (as towards a host that does not answer).
    let listener = loopback_listener(0, None);
    let address = listener.local_addr().unwrap();
    let fillers: Vec<TcpStream> = (0..4)
        .filter_map(|_| TcpStream::connect_timeout(&address, StdDuration::from_millis(200)).ok())
        .collect();
    assert!(!fillers.is_empty());
    // Confirm the queue is full: one more connect does not finish.
    let probe = TcpStream::connect_timeout(&address, StdDuration::from_millis(300));
    assert!(
        probe
            .as_ref()
            .is_err_and(|e| e.kind() == ErrorKind::TimedOut || e.kind() == ErrorKind::WouldBlock),
        "the accept queue is not full: {probe:?}"
    );

    let mut b = Bench::new(address);
    let started = StdInstant::now();
    let (client, answer) = b.call();
    let took = started.elapsed();
    assert_eq!(answer, REFUSED_UNSPECIFIED);
    assert!(
        took >= netbt::forward::CONNECT_TIMEOUT && took < StdDuration::from_secs(6),
        "refused after {took:?}"
    );
    b.run_until(4_000, Some(client), |b| b.closed_by_node(client));
    b.assert_no_reset();
    drop((listener, fillers));
}
