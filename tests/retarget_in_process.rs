//! Retarget (0x84) over the wire, in process: a node with one session slot, one refusal slot
//! and a list of siblings, and plain smoltcp TCP clients on the in-memory hub. A request that
//! finds the session slot busy is sent to the next sibling (round robin) instead of refused
//! with 0x83; every other refusal keeps its code; without siblings nothing changes; never a
//! reset from port 139.

mod support;

use netbt::session::{Duration, Retargets, SessionConfig, SessionEvent, Sibling};
use netbt::wire::SESSION_SERVICE_PORT as NBSS;
use netbt::wire::name::{Name, NbName};
use netbt::wire::nbss;
use smoltcp::iface::SocketHandle;
use smoltcp::socket::tcp::State;
use smoltcp::wire::Ipv4Address;
use support::*;

const POSITIVE: [u8; 4] = [0x82, 0, 0, 0];

/// The two siblings of these tests: another node on 139, and a service on another port.
const FIRST: Sibling = Sibling {
    address: Ipv4Address::new(192, 168, 69, 2),
    port: 139,
};
const SECOND: Sibling = Sibling {
    address: Ipv4Address::new(192, 168, 69, 3),
    port: 1139,
};

#[track_caller]
fn name(text: &str) -> Name {
    Name::parse_text(text, 0x20).unwrap()
}

fn request(called: &str) -> Vec<u8> {
    let repr = nbss::Repr::SessionRequest {
        called: NbName::unscoped(name(called)),
        calling: NbName::unscoped(Name::parse_text("CLIENT", 0x00).unwrap()),
    };
    let mut bytes = vec![0; repr.buffer_len()];
    repr.emit(&mut nbss::Packet::new_unchecked(&mut bytes[..]));
    bytes
}

/// RFC 1002 §4.3.5: type 0x84, length 6, the IPv4 address, the port (both big-endian).
fn retarget_to(sibling: Sibling) -> Vec<u8> {
    let mut bytes = vec![0x84, 0, 0, 6];
    bytes.extend_from_slice(&sibling.address.octets());
    bytes.extend_from_slice(&sibling.port.to_be_bytes());
    bytes
}

/// Our node (LABSRV<20>, listened on) with one session slot, one refusal slot and a refusal
/// delay of 50 ms, and a client host.
struct Bench {
    hub: Hub,
    node: TestNode,
    client: Peer,
    next_port: u16,
}

impl Bench {
    fn new(siblings: &[Sibling]) -> Bench {
        let mut retarget = Retargets::NONE;
        for &sibling in siblings {
            retarget.push(sibling).unwrap();
        }
        let hub = Hub::new();
        let mut config = config(NODE_MAC, NODE_IP);
        config.session = SessionConfig {
            refusal_delay: Duration::from_millis(50),
            retarget,
            ..SessionConfig::DEFAULT
        };
        let mut node = TestNode::with_slots(&hub, config, 1, 1, 4096);
        node.node.names.add_name(name("LABSRV#20"), false).unwrap();
        node.node
            .session_service()
            .listen(name("LABSRV#20"), None)
            .unwrap();
        node.node.names.start(hub.now());
        let client = Peer::new(&hub, PEER_MAC, PEER_IP);
        let mut bench = Bench {
            hub,
            node,
            client,
            next_port: 40000,
        };
        bench.run(800);
        assert!(bench.node.node.names.is_ready());
        bench
    }

    fn run(&mut self, ms: u64) {
        run(&self.hub, ms, &mut [&mut self.node, &mut self.client]);
    }

    #[track_caller]
    fn run_until(&mut self, ms: u64, mut done: impl FnMut(&mut Bench) -> bool) -> u64 {
        for step in 0..ms {
            if done(self) {
                return step;
            }
            self.run(1);
        }
        panic!("condition not reached in {ms} ms");
    }

    /// Connects and waits until the connection is established (past the refusal delay when
    /// the session slot is busy); returns it and the ms the handshake took.
    #[track_caller]
    fn connect(&mut self) -> (SocketHandle, u64) {
        self.next_port += 1;
        let handle = self
            .client
            .connect((NODE_IP, NBSS), self.next_port, 64 * 1024);
        let took = self.run_until(1_000, |b| {
            b.client.tcp(handle).state() == State::Established
        });
        (handle, took)
    }

    /// Sends a request for `called` on `handle`; returns the answer.
    #[track_caller]
    fn ask(&mut self, handle: SocketHandle, called: &str) -> Vec<u8> {
        assert!(self.client.tcp(handle).send_slice(&request(called)).is_ok());
        self.run(20);
        self.client.read_all(handle)
    }

    /// Closes `handle` as a client following a retarget does, and waits until the refusal
    /// slot listens again.
    fn close(&mut self, handle: SocketHandle) {
        self.client.tcp(handle).close();
        self.run_until(1_000, |b| {
            b.node.node.session_service().ledger().refusing == 0
                && b.node.node.session_service().ledger().closing == 0
        });
    }

    fn events(&mut self) -> Vec<SessionEvent> {
        core::iter::from_fn(|| self.node.node.session_service().take_event()).collect()
    }

    #[track_caller]
    fn assert_no_reset(&mut self) {
        assert_no_reset(&self.hub, &mut self.node);
        assert_eq!(self.node.node.session_service().counters().aborts(), 0);
    }
}

/// A bench whose only session slot holds an established session.
fn full(siblings: &[Sibling]) -> Bench {
    let mut b = Bench::new(siblings);
    let (first, _) = b.connect();
    assert_eq!(b.ask(first, "LABSRV#20"), POSITIVE);
    b.events();
    b
}

#[test]
fn at_capacity_requests_are_retargeted_to_the_siblings_in_turn_after_the_refusal_delay() {
    let mut b = full(&[FIRST, SECOND]);
    let mut answers = Vec::new();
    for _ in 0..3 {
        let (client, took) = b.connect();
        // The refusal slot takes the SYN only once it waited the refusal delay, as without
        // siblings.
        assert!((50..=70).contains(&took), "handshake after {took} ms");
        answers.push(b.ask(client, "LABSRV#20"));
        b.close(client);
    }
    assert_eq!(
        answers,
        [retarget_to(FIRST), retarget_to(SECOND), retarget_to(FIRST)]
    );
    let counters = b.node.node.session_service().counters();
    assert_eq!(counters.retargets, 3);
    assert_eq!(counters.insufficient_resources, 0, "no 0x83 with siblings");
    assert_eq!(counters.negative(), 0);
    assert_eq!(counters.drains, 3, "every retargeted client closed first");
    assert_eq!(counters.gate.syns_to_refusal_slots, 3);
    let retargeted: Vec<(u16, Sibling)> = b
        .events()
        .into_iter()
        .filter_map(|event| match event {
            SessionEvent::Retargeted { peer, called, to } => {
                assert_eq!(called, name("LABSRV#20"));
                Some((peer.port, to))
            }
            _ => None,
        })
        .collect();
    assert_eq!(
        retargeted,
        [(40002, FIRST), (40003, SECOND), (40004, FIRST)]
    );
    // Node status counts each as a no-resource condition.
    let statistics = b.node.node.node_status_statistics();
    assert_eq!(statistics.number_no_resource_conditions, 3);
    b.assert_no_reset();
}

#[test]
fn a_retargeted_client_that_stays_is_drained_like_a_refused_one() {
    let mut b = full(&[FIRST]);
    let (client, _) = b.connect();
    assert_eq!(b.ask(client, "LABSRV#20"), retarget_to(FIRST));
    // It neither closes nor sends: our FIN comes at the drain deadline (2 s), not a reset.
    b.run_until(3_000, |b| b.client.tcp(client).state() == State::CloseWait);
    b.client.tcp(client).close();
    b.run(200);
    let counters = b.node.node.session_service().counters();
    assert_eq!(
        (counters.retargets.get(), counters.drain_timeouts.get()),
        (1, 1)
    );
    b.assert_no_reset();
}

#[test]
fn refusals_for_other_reasons_keep_their_code_with_siblings() {
    let mut b = full(&[FIRST, SECOND]);
    // A name we do not own, on the refusal slot: 0x82, not a retarget.
    let (client, _) = b.connect();
    assert_eq!(b.ask(client, "NOSUCH#20"), [0x83, 0, 0, 1, 0x82]);
    b.close(client);
    // A malformed request: 0x8F.
    let (client, _) = b.connect();
    assert!(b.client.tcp(client).send_slice(&[0x81, 0x02, 0, 0]).is_ok());
    b.run(20);
    assert_eq!(b.client.read_all(client), [0x83, 0, 0, 1, 0x8f]);
    b.close(client);
    // The round robin starts where it was: nothing above was a retarget.
    let (client, _) = b.connect();
    assert_eq!(b.ask(client, "LABSRV#20"), retarget_to(FIRST));
    b.close(client);
    let counters = b.node.node.session_service().counters();
    assert_eq!(
        (
            counters.retargets.get(),
            counters.called_not_present.get(),
            counters.unspecified.get(),
            counters.insufficient_resources.get()
        ),
        (1, 1, 1, 0)
    );
    b.assert_no_reset();
}

#[test]
fn with_a_free_session_slot_a_request_is_served_not_retargeted() {
    let mut b = Bench::new(&[FIRST]);
    for _ in 0..3 {
        let (client, took) = b.connect();
        assert!(took < 10, "no refusal delay for a free slot: {took} ms");
        assert_eq!(b.ask(client, "LABSRV#20"), POSITIVE);
        b.client.tcp(client).close();
        b.run_until(1_000, |b| b.node.node.session_service().ledger().free == 1);
    }
    let counters = b.node.node.session_service().counters();
    assert_eq!((counters.positive.get(), counters.retargets.get()), (3, 0));
    b.assert_no_reset();
}

#[test]
fn without_siblings_capacity_is_refused_with_0x83_as_before() {
    let mut b = full(&[]);
    let (client, took) = b.connect();
    assert!((50..=70).contains(&took), "handshake after {took} ms");
    assert_eq!(b.ask(client, "LABSRV#20"), [0x83, 0, 0, 1, 0x83]);
    b.close(client);
    let counters = b.node.node.session_service().counters();
    assert_eq!(
        (
            counters.insufficient_resources.get(),
            counters.retargets.get()
        ),
        (1, 0)
    );
    assert!(matches!(b.events()[..], [SessionEvent::Refused { .. }, ..]));
    b.assert_no_reset();
}
