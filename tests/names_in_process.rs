//! The name service over the wire, in process: our [`netbt::node::Node`] and a plain smoltcp
//! peer (or a second netbt node) on an in-memory Ethernet hub, with a deterministic clock.
//! Every assertion is about frames that crossed the hub.

mod support;

use netbt::name_service::{NameEvent, NameState};
use netbt::wire::NAME_SERVICE_PORT;
use netbt::wire::name::{Name, NbName};
use netbt::wire::nbns::{
    self, AddrEntry, Flags, Message, NbFlags, NodeNames, NodeType, Rcode, RegistrationKind, Repr,
};
use smoltcp::iface::SocketHandle;
use smoltcp::time::Instant;
use smoltcp::wire::{EthernetAddress, IpEndpoint, Ipv4Address};
use support::nbns_server::emit;
use support::*;

const ASKER_PORT: u16 = 50000;

#[track_caller]
fn name(text: &str) -> Name {
    Name::parse_text(text, 0x00).unwrap()
}

fn nb(text: &str) -> NbName {
    NbName::unscoped(name(text))
}

#[track_caller]
fn parse(bytes: &[u8]) -> Repr<'_> {
    Repr::parse(&nbns::Packet::new_checked(bytes).unwrap()).unwrap()
}

#[track_caller]
fn query(id: u16, name: &str, broadcast: bool) -> Vec<u8> {
    emit(&Repr {
        transaction_id: id,
        flags: Flags::RECURSION_DESIRED.with(Flags::BROADCAST, broadcast),
        message: Message::NameQueryRequest { name: nb(name) },
    })
}

fn node_status(id: u16, name: &str) -> Vec<u8> {
    emit(&Repr {
        transaction_id: id,
        flags: Flags::NONE,
        message: Message::NodeStatusRequest { name: nb(name) },
    })
}

/// Asserts that a node status response lists exactly `want` (name, NAME_FLAGS), in order.
#[track_caller]
fn assert_lists(names: &NodeNames<'_>, want: &[(&str, u16)], why: &str) {
    let listed: Vec<(Name, u16)> = names.iter().map(|n| (n.name, n.flags.0)).collect();
    let want: Vec<(Name, u16)> = want
        .iter()
        .map(|&(text, flags)| (name(text), flags))
        .collect();
    assert_eq!(listed, want, "{why}");
}

fn entry(group: bool, address: Ipv4Address) -> AddrEntry {
    AddrEntry {
        flags: NbFlags::new(group, NodeType::B),
        address,
    }
}

fn registration(id: u16, name: &str, group: bool) -> Vec<u8> {
    emit(&Repr {
        transaction_id: id,
        flags: Flags::BROADCAST,
        message: Message::NameRegistrationRequest {
            kind: RegistrationKind::Registration,
            name: nb(name),
            ttl: 300_000,
            entry: entry(group, PEER_IP),
        },
    })
}

/// The lab's node: LABSRV<00>, LABSRV<20>, group LABGRP<00>.
#[track_caller]
fn labsrv(hub: &Hub) -> TestNode {
    let mut node = TestNode::new(hub, NODE_MAC, NODE_IP);
    for (text, group) in [
        ("LABSRV#00", false),
        ("LABSRV#20", false),
        ("LABGRP#00", true),
    ] {
        node.node.names.add_name(name(text), group).unwrap();
    }
    node
}

/// A peer with a UDP socket on `port`.
#[track_caller]
fn asker(hub: &Hub, port: u16) -> (Peer, SocketHandle) {
    let mut peer = Peer::new(hub, PEER_MAC, PEER_IP);
    let socket = peer.udp(port);
    (peer, socket)
}

fn events(node: &mut TestNode) -> Vec<NameEvent> {
    core::iter::from_fn(|| node.node.names.take_event()).collect()
}

/// Starts `node` now and runs the hub until its registration is over.
fn register(hub: &Hub, node: &mut TestNode, peer: Option<&mut Peer>) {
    node.node.names.start(hub.now());
    match peer {
        Some(peer) => run(hub, 800, &mut [node, peer]),
        None => run(hub, 800, &mut [node]),
    }
}

/// A node with its names registered, and a peer asking it from a UDP socket.
struct Asking {
    hub: Hub,
    node: TestNode,
    peer: Peer,
    socket: SocketHandle,
}

impl Asking {
    /// Registers `node`'s names (on `hub`) with a peer listening on `port`; clears the log.
    #[track_caller]
    fn new(hub: Hub, mut node: TestNode, port: u16) -> Asking {
        let (mut peer, socket) = asker(&hub, port);
        register(&hub, &mut node, Some(&mut peer));
        assert!(node.node.names.is_ready());
        events(&mut node);
        peer.received(socket); // our registration broadcasts, when the peer listens on 137
        hub.clear_log();
        Asking {
            hub,
            node,
            peer,
            socket,
        }
    }

    /// Sends `bytes` from the peer to `to` and runs the hub for 50 ms; returns what the peer
    /// got.
    #[track_caller]
    fn exchange(&mut self, to: Ipv4Address, bytes: &[u8]) -> Vec<(IpEndpoint, Vec<u8>)> {
        self.peer
            .send_to(self.socket, (to, NAME_SERVICE_PORT), bytes);
        run(&self.hub, 50, &mut [&mut self.node, &mut self.peer]);
        self.peer.received(self.socket)
    }
}

/// The lab's node with its names registered, and a peer asking from `port`.
#[track_caller]
fn registered(port: u16) -> Asking {
    let hub = Hub::new();
    let node = labsrv(&hub);
    Asking::new(hub, node, port)
}

/// Every name service datagram sent from `address` (a node with a workgroup also sends host
/// announcements from 138).
#[track_caller]
fn sent_by(hub: &Hub, address: Ipv4Address) -> Vec<Seen> {
    hub.seen()
        .into_iter()
        .filter(|s| s.source == address && s.udp(Some(137), None).is_some())
        .collect()
}

fn ms(at: Instant) -> i64 {
    at.total_millis()
}

#[test]
fn registration_is_three_broadcasts_250_ms_apart_then_an_overwrite_demand() {
    let hub = Hub::new();
    let mut node = labsrv(&hub);
    node.node.names.start(hub.now());
    let mut became_ready = None;
    for step in 0..1_000 {
        run(&hub, 1, &mut [&mut node]);
        if became_ready.is_none() && node.node.names.is_ready() {
            became_ready = Some(step);
        }
    }
    let sent = sent_by(&hub, NODE_IP);
    for (text, group) in [
        ("LABSRV#00", false),
        ("LABSRV#20", false),
        ("LABGRP#00", true),
    ] {
        let mine: Vec<&Seen> = sent
            .iter()
            .filter(|s| parse(s.udp(None, None).unwrap()).message.name() == Some(&nb(text)))
            .collect();
        let schedule: Vec<(i64, u16)> = mine
            .iter()
            .map(|s| {
                let bytes = s.udp(None, None).unwrap();
                (
                    ms(s.at),
                    nbns::Packet::new_checked(bytes).unwrap().flags_word(),
                )
            })
            .collect();
        assert_eq!(
            schedule,
            vec![(0, 0x2910), (250, 0x2910), (500, 0x2910), (750, 0x2810)],
            "{text}: registration ×3 then overwrite demand"
        );
        let ids: Vec<u16> = mine
            .iter()
            .map(|s| parse(s.udp(None, None).unwrap()).transaction_id)
            .collect();
        assert!(ids.windows(2).all(|w| w[0] == w[1]), "one transaction id");
        for s in &mine {
            assert!(s.udp(Some(137), Some(137)).is_some(), "{s:?}");
            assert_eq!(s.destination, BROADCAST);
            assert_eq!(s.eth_destination, EthernetAddress::BROADCAST);
            let Message::NameRegistrationRequest { entry: e, .. } =
                parse(s.udp(None, None).unwrap()).message
            else {
                panic!("{s:?}")
            };
            assert_eq!(e, entry(group, NODE_IP));
        }
    }
    assert_eq!(sent.len(), 12, "nothing else");
    // Ready once the last silence ran out, not before.
    assert!(matches!(became_ready, Some(749..=751)), "{became_ready:?}");
    assert_eq!(
        events(&mut node),
        ["LABSRV#00", "LABSRV#20", "LABGRP#00"]
            .map(|t| NameEvent::Registered(name(t)))
            .to_vec()
    );
}

#[test]
fn queries_are_answered_from_port_137_to_the_askers_address_and_port() {
    let mut lab = registered(ASKER_PORT);
    let asker = IpEndpoint::new(NODE_IP.into(), NAME_SERVICE_PORT);
    let cases = [
        (0x0101, "LABSRV#00", NODE_IP, Some(true)),
        (0x0102, "LABSRV#20", BROADCAST, Some(true)),
        (0x0103, "LABGRP#00", BROADCAST, Some(true)),
        (0x0104, "NOSUCH#00", NODE_IP, Some(false)),
        (0x0105, "NOSUCH#00", BROADCAST, None),
        (0x0106, "LABSRV#03", NODE_IP, Some(false)),
    ];
    for (id, text, to, answer) in cases {
        let got = lab.exchange(to, &query(id, text, to == BROADCAST));
        let Some(positive) = answer else {
            assert!(got.is_empty(), "{text} to {to}: silence, got {got:?}");
            continue;
        };
        assert_eq!(got.len(), 1, "{text} to {to}");
        let (from, bytes) = &got[0];
        assert_eq!(
            *from, asker,
            "{text}: answered from our unicast address, port 137"
        );
        let repr = parse(bytes);
        assert_eq!(repr.transaction_id, id);
        match repr.message {
            Message::PositiveNameQueryResponse { name, entries, .. } if positive => {
                assert_eq!(name, nb(text));
                assert_eq!(entries.len(), 1);
                let e = entries.get(0).unwrap();
                assert_eq!(e.address, NODE_IP);
                assert_eq!(e.flags.is_group(), text.starts_with("LABGRP"));
            }
            Message::NegativeNameQueryResponse { name, rcode } if !positive => {
                assert_eq!(name, nb(text));
                assert_eq!(rcode, Rcode::NameError);
            }
            other => panic!("{text} to {to}: {other:?}"),
        }
    }
    // On the wire: every reply from 192.168.69.1:137 to the asker's port, never a broadcast
    // source.
    let replies = sent_by(&lab.hub, NODE_IP);
    assert_eq!(replies.len(), 5);
    for reply in &replies {
        assert!(
            reply.udp(Some(137), Some(ASKER_PORT)).is_some(),
            "{reply:?}"
        );
        assert_eq!(reply.destination, PEER_IP);
    }
    assert!(lab.hub.seen().iter().all(|s| s.source != BROADCAST));
    assert_eq!(lab.node.node.names.counters().queries_answered, 3);
    assert_eq!(lab.node.node.names.counters().queries_refused, 2);
}

#[test]
fn node_status_lists_every_name_with_flags_and_the_mac() {
    let mut lab = registered(ASKER_PORT);
    for (id, asked, to) in [
        (7, "*", NODE_IP),
        (8, "LABSRV#20", NODE_IP),
        (9, "*", BROADCAST),
    ] {
        let got = lab.exchange(to, &node_status(id, asked));
        assert_eq!(got.len(), 1, "node status of {asked} to {to}");
        let repr = parse(&got[0].1);
        assert_eq!(repr.transaction_id, id);
        assert!(got[0].1.len() <= 576);
        let Message::NodeStatusResponse {
            name: answered,
            names,
            statistics,
        } = repr.message
        else {
            panic!("{repr:?}");
        };
        assert_eq!(answered, nb(asked));
        assert_lists(
            &names,
            &[
                ("LABSRV#00", 0x0400),
                ("LABSRV#20", 0x0400),
                ("LABGRP#00", 0x8400),
            ],
            "every name with its flags",
        );
        assert_eq!(statistics.unit_id, NODE_MAC);
    }
    // A name we don't own: silence.
    let got = lab.exchange(NODE_IP, &node_status(10, "NOSUCH"));
    assert!(got.is_empty());
}

#[test]
fn node_status_hides_the_mac_when_configured() {
    let hub = Hub::new();
    let mut config = config(NODE_MAC, NODE_IP);
    config.hide_mac = true;
    let mut node = TestNode::with(&hub, config);
    node.node.names.add_name(name("HIDDEN"), false).unwrap();
    let mut lab = Asking::new(hub, node, ASKER_PORT);
    let got = lab.exchange(NODE_IP, &node_status(1, "*"));
    let Message::NodeStatusResponse { statistics, .. } = parse(&got[0].1).message else {
        panic!()
    };
    assert_eq!(statistics.unit_id, [0; 6]);
}

#[test]
fn registrations_of_our_unique_names_are_defended_with_act_err() {
    let mut lab = registered(NAME_SERVICE_PORT);
    // (name, as group, sent to)
    let cases = [
        ("LABSRV#00", false, BROADCAST),
        ("LABSRV#20", false, NODE_IP),
        ("LABSRV#00", true, BROADCAST),
    ];
    for (i, &(text, group, to)) in cases.iter().enumerate() {
        let id = 0x0500 + i as u16;
        let got = lab.exchange(to, &registration(id, text, group));
        assert_eq!(got.len(), 1, "{text} (group {group}) to {to}");
        let (from, bytes) = &got[0];
        assert_eq!(*from, IpEndpoint::new(NODE_IP.into(), 137));
        let repr = parse(bytes);
        assert_eq!(repr.transaction_id, id);
        let Message::NameRegistrationResponse {
            name: refused,
            rcode,
            entry: e,
            ..
        } = repr.message
        else {
            panic!("{repr:?}");
        };
        assert_eq!(refused, nb(text));
        assert_eq!(rcode, Rcode::Active, "ACT_ERR");
        assert_eq!(e.address, PEER_IP, "the registrant's entry, copied");
    }
    // Group names are not defended.
    let got = lab.exchange(BROADCAST, &registration(0x0600, "LABGRP#00", true));
    assert!(got.is_empty());
    for text in ["LABSRV#00", "LABSRV#20", "LABGRP#00"] {
        assert_eq!(lab.node.name_state(name(text)), NameState::Active);
    }
    assert_eq!(lab.node.node.names.counters().defences, 3);
    assert_eq!(
        events(&mut lab.node),
        vec![
            NameEvent::Defended {
                name: name("LABSRV#00"),
                by: PEER_IP
            },
            NameEvent::Defended {
                name: name("LABSRV#20"),
                by: PEER_IP
            },
            NameEvent::Defended {
                name: name("LABSRV#00"),
                by: PEER_IP
            },
        ]
    );
}

#[test]
fn two_nodes_one_name_the_second_loses_and_says_so() {
    let hub = Hub::new();
    let mut first = labsrv(&hub);
    register(&hub, &mut first, None);
    events(&mut first);

    let mut second = TestNode::new(&hub, NODE2_MAC, NODE2_IP);
    for text in ["LABSRV#00", "LABSRV#20", "OTHER#00"] {
        second.node.names.add_name(name(text), false).unwrap();
    }
    second.node.names.start(hub.now());
    run(&hub, 1_000, &mut [&mut first, &mut second]);

    assert!(second.node.names.is_ready());
    assert_eq!(second.name_state(name("LABSRV#00")), NameState::Conflict);
    assert_eq!(second.name_state(name("LABSRV#20")), NameState::Conflict);
    assert_eq!(second.name_state(name("OTHER#00")), NameState::Active);
    assert_eq!(
        events(&mut second),
        vec![
            NameEvent::Conflict {
                name: name("LABSRV#00"),
                by: NODE_IP
            },
            NameEvent::Conflict {
                name: name("LABSRV#20"),
                by: NODE_IP
            },
            NameEvent::Registered(name("OTHER#00")),
        ]
    );
    for text in ["LABSRV#00", "LABSRV#20"] {
        assert_eq!(
            first.name_state(name(text)),
            NameState::Active,
            "the owner keeps {text}"
        );
    }
    assert_eq!(
        events(&mut first),
        ["LABSRV#00", "LABSRV#20"]
            .map(|t| NameEvent::Defended {
                name: name(t),
                by: NODE2_IP
            })
            .to_vec()
    );
    // The loser stopped at the first refusal and never claimed the name.
    let second_sent = sent_by(&hub, NODE2_IP);
    let claims = second_sent
        .iter()
        .map(|s| parse(s.udp(None, None).unwrap()))
        .filter(|r| r.message.name() == Some(&nb("LABSRV#00")))
        .count();
    assert_eq!(
        claims, 1,
        "one registration, answered at once; no overwrite"
    );

    // A third party asks both.
    let (mut peer, socket) = asker(&hub, ASKER_PORT);
    let mut ask = |to: Ipv4Address, bytes: &[u8]| {
        exchange_with(
            &hub,
            &mut [&mut first, &mut second],
            &mut peer,
            socket,
            to,
            bytes,
        )
    };
    let got = ask(NODE2_IP, &query(1, "LABSRV", false));
    assert!(matches!(
        parse(&got[0].1).message,
        Message::NegativeNameQueryResponse { .. }
    ));
    let got = ask(BROADCAST, &query(2, "LABSRV", true));
    assert_eq!(got.len(), 1, "only the owner answers a broadcast query");
    assert_eq!(got[0].0.addr, NODE_IP.into());
    let got = ask(NODE2_IP, &node_status(3, "*"));
    let Message::NodeStatusResponse { names, .. } = parse(&got[0].1).message else {
        panic!()
    };
    assert_lists(
        &names,
        &[
            ("LABSRV#00", 0x0c00),
            ("LABSRV#20", 0x0c00),
            ("OTHER#00", 0x0400),
        ],
        "CNF on the names in conflict",
    );
}

/// [`exchange`] with several nodes on the hub.
#[track_caller]
fn exchange_with(
    hub: &Hub,
    nodes: &mut [&mut TestNode],
    peer: &mut Peer,
    socket: SocketHandle,
    to: Ipv4Address,
    bytes: &[u8],
) -> Vec<(IpEndpoint, Vec<u8>)> {
    peer.send_to(socket, (to, NAME_SERVICE_PORT), bytes);
    let mut stations: Vec<&mut dyn Station> = nodes
        .iter_mut()
        .map(|n| &mut **n as &mut dyn Station)
        .collect();
    stations.push(peer);
    run(hub, 50, &mut stations);
    peer.received(socket)
}

#[test]
fn a_conflict_demand_answering_our_registration_puts_the_name_in_conflict() {
    let hub = Hub::new();
    let mut node = labsrv(&hub);
    let (mut peer, socket) = asker(&hub, NAME_SERVICE_PORT);
    node.node.names.start(hub.now());
    run(&hub, 10, &mut [&mut node, &mut peer]);
    // The peer saw our first registration of LABSRV<20> and demands it back.
    let heard = peer.received(socket);
    let (_, ours) = heard
        .iter()
        .find(|(_, b)| parse(b).message.name() == Some(&nb("LABSRV#20")))
        .unwrap();
    let demand = emit(&Repr {
        transaction_id: parse(ours).transaction_id,
        flags: Flags::RECURSION_DESIRED | Flags::RECURSION_AVAILABLE,
        message: Message::NameConflictDemand {
            name: nb("LABSRV#20"),
            entry: entry(false, NODE_IP),
        },
    });
    peer.send_to(socket, (NODE_IP, NAME_SERVICE_PORT), &demand);
    run(&hub, 1_000, &mut [&mut node, &mut peer]);
    assert_eq!(node.name_state(name("LABSRV#20")), NameState::Conflict);
    assert_eq!(node.name_state(name("LABSRV#00")), NameState::Active);
}

#[test]
fn release_broadcasts_three_times_and_the_names_stop_answering() {
    let mut lab = registered(ASKER_PORT);
    let start = ms(lab.hub.now());
    lab.node.node.names.release(lab.hub.now());
    run(&lab.hub, 800, &mut [&mut lab.node, &mut lab.peer]);
    assert!(lab.node.node.names.is_released());
    assert_eq!(events(&mut lab.node), vec![NameEvent::Released]);
    let sent = sent_by(&lab.hub, NODE_IP);
    assert_eq!(sent.len(), 9, "3 names × 3");
    for s in &sent {
        assert!(s.udp(Some(137), Some(137)).is_some());
        assert_eq!(s.destination, BROADCAST);
        let bytes = s.udp(None, None).unwrap();
        assert_eq!(
            nbns::Packet::new_checked(bytes).unwrap().flags_word(),
            0x3010
        );
        let Message::NameReleaseRequest { entry: e, .. } = parse(bytes).message else {
            panic!()
        };
        assert_eq!(e.address, NODE_IP);
    }
    let times: Vec<i64> = sent.iter().map(|s| ms(s.at) - start).collect();
    assert_eq!(times, vec![0, 0, 0, 250, 250, 250, 500, 500, 500]);
    // Released names are not answered.
    let got = lab.exchange(NODE_IP, &query(1, "LABSRV", false));
    assert!(matches!(
        parse(&got[0].1).message,
        Message::NegativeNameQueryResponse { .. }
    ));
}

#[test]
fn attacks_on_our_names_are_ignored_and_counted() {
    let mut lab = registered(NAME_SERVICE_PORT);
    let ours = entry(false, NODE_IP);
    let attacks = [
        // MS00-047: a release of our name by someone else, with our entry or theirs.
        Repr {
            transaction_id: 0x0a01,
            flags: Flags::BROADCAST,
            message: Message::NameReleaseRequest {
                name: nb("LABSRV#00"),
                entry: ours,
            },
        },
        Repr {
            transaction_id: 0x0a02,
            flags: Flags::BROADCAST,
            message: Message::NameReleaseRequest {
                name: nb("LABSRV#20"),
                entry: entry(false, PEER_IP),
            },
        },
        // An unsolicited conflict demand.
        Repr {
            transaction_id: 0x0a03,
            flags: Flags::RECURSION_DESIRED | Flags::RECURSION_AVAILABLE,
            message: Message::NameConflictDemand {
                name: nb("LABSRV#00"),
                entry: ours,
            },
        },
        // Responses to transactions we never started.
        Repr {
            transaction_id: 0x0a04,
            flags: Flags::RECURSION_DESIRED | Flags::RECURSION_AVAILABLE,
            message: Message::NameRegistrationResponse {
                name: nb("LABSRV#20"),
                rcode: Rcode::Active,
                ttl: 0,
                entry: ours,
            },
        },
        Repr {
            transaction_id: 0x0a05,
            flags: Flags::NONE,
            message: Message::NegativeNameQueryResponse {
                name: nb("LABSRV#00"),
                rcode: Rcode::NameError,
            },
        },
    ];
    for attack in &attacks {
        for to in [NODE_IP, BROADCAST] {
            let got = lab.exchange(to, &emit(attack));
            assert!(got.is_empty(), "{attack:?}: no answer");
        }
    }
    for text in ["LABSRV#00", "LABSRV#20", "LABGRP#00"] {
        assert_eq!(lab.node.name_state(name(text)), NameState::Active, "{text}");
    }
    let counters = *lab.node.node.names.counters();
    assert_eq!(counters.foreign_releases_ignored, 4);
    assert_eq!(counters.unsolicited_conflicts_ignored, 2);
    assert_eq!(counters.unsolicited_responses_ignored, 4);
    assert_eq!(counters.conflicts, 0);
    assert_eq!(events(&mut lab.node), vec![]);
    // And the name still answers.
    let got = lab.exchange(NODE_IP, &query(1, "LABSRV", false));
    assert!(matches!(
        parse(&got[0].1).message,
        Message::PositiveNameQueryResponse { .. }
    ));
}

#[test]
fn a_burst_of_queries_far_over_the_socket_queues_is_answered_whole() {
    let mut lab = registered(ASKER_PORT);
    let got = lab.exchange(NODE_IP, &query(0x0200, "LABSRV#00", false));
    assert_eq!(got.len(), 1);
    let asked: Vec<Frame> = lab
        .hub
        .frames()
        .into_iter()
        .filter(|f| f.port == lab.peer.port.index())
        .filter(|f| Seen::decode(f).is_some_and(|s| s.udp(None, Some(137)).is_some()))
        .collect();
    assert_eq!(asked.len(), 1);
    // 300 copies arrive at once: many times what the socket queues hold (16 datagrams each
    // way), more than the node reads in one poll.
    lab.hub.clear_log();
    for _ in 0..300 {
        lab.hub.replay(&asked[0]);
    }
    run(&lab.hub, 50, &mut [&mut lab.node]);
    let answers = sent_by(&lab.hub, NODE_IP).len();
    let counters = lab.node.node.names.counters();
    assert_eq!(counters.unsent, 0, "{counters:?}");
    assert_eq!(answers, 300, "every query answered");
    assert_eq!(counters.queries_answered, 301);
}
