//! The datagram service and the browse announcer over the wire, in process: two netbt nodes and
//! a plain smoltcp peer on the in-memory hub.

mod support;

use netbt::datagram_service::{DatagramKind, SendError, Target};
use netbt::wire::browser::{self, ServerType};
use netbt::wire::name::{Name, NbName};
use netbt::wire::{nbds, smb_mailslot};
use smoltcp::iface::SocketHandle;
use smoltcp::time::Duration;
use smoltcp::wire::{IpAddress, IpEndpoint};
use support::*;

fn name(text: &str) -> Name {
    Name::parse_text(text, 0).unwrap()
}

/// Node 1 (LABSRV, group LABGRP) and node 2 (OTHER, group LABGRP), registered, with the
/// announcer of node 1 commented.
fn two_nodes(hub: &Hub) -> (TestNode, TestNode) {
    let mut one = TestNode::new(hub, NODE_MAC, NODE_IP);
    let mut two = TestNode::new(hub, NODE2_MAC, NODE2_IP);
    for (node, unique) in [(&mut one, "LABSRV"), (&mut two, "OTHER")] {
        for (text, group) in [
            (unique, false),
            (&format!("{unique}#20")[..], false),
            ("LABGRP", true),
        ] {
            node.node.names.add_name(name(text), group).unwrap();
        }
        node.node.names.start(hub.now());
    }
    one.node.browse.set_comment(b"netbt in process").unwrap();
    run(hub, 1_000, &mut [&mut one, &mut two]);
    assert!(one.node.names.is_ready() && two.node.names.is_ready());
    (one, two)
}

/// The NBDS packets `address` sent from port 138, parsed into owned bytes.
fn datagrams_from(hub: &Hub, address: smoltcp::wire::Ipv4Address) -> Vec<(Seen, Vec<u8>)> {
    hub.seen()
        .into_iter()
        .filter(|s| s.source == address)
        .filter_map(|s| {
            let bytes = s.udp(Some(138), None)?.to_vec();
            Some((s, bytes))
        })
        .collect()
}

fn parse(bytes: &[u8]) -> nbds::Repr<'_> {
    nbds::Repr::parse(&nbds::Packet::new_unchecked(bytes)).expect("a datagram that parses")
}

#[test]
fn two_nodes_exchange_unique_group_and_broadcast_datagrams() {
    let hub = Hub::new();
    let (mut one, mut two) = two_nodes(&hub);
    while two.node.datagrams.take_delivery().is_some() {}
    let from = name("LABSRV");
    one.node
        .send_datagram(
            from,
            Target::Unique {
                name: name("OTHER#20"),
                address: Some(NODE2_IP),
            },
            b"unique",
        )
        .unwrap();
    one.node
        .send_datagram(from, Target::Group(name("LABGRP")), b"group")
        .unwrap();
    one.node
        .send_datagram(from, Target::Broadcast, b"broadcast")
        .unwrap();
    one.node
        .send_mailslot(
            from,
            Target::Unique {
                name: name("OTHER"),
                address: None,
            },
            b"\\MAILSLOT\\LAB",
            b"slot",
        )
        .unwrap();
    run(&hub, 10, &mut [&mut one, &mut two]);
    let mut got = Vec::new();
    while let Some(delivery) = two.node.datagrams.take_delivery() {
        got.push(delivery);
    }
    let summary: Vec<(DatagramKind, String, Vec<u8>)> = got
        .iter()
        .map(|d| (d.kind, d.destination_name.to_string(), d.data.to_vec()))
        .collect();
    assert_eq!(
        summary[..3],
        [
            (DatagramKind::Unique, "OTHER<20>".into(), b"unique".to_vec()),
            (DatagramKind::Group, "LABGRP<00>".into(), b"group".to_vec()),
            (
                DatagramKind::Broadcast,
                "*<00>".into(),
                b"broadcast".to_vec()
            ),
        ]
    );
    assert_eq!(got.len(), 4);
    let write = smb_mailslot::Repr::parse(&smb_mailslot::Packet::new_unchecked(&got[3].data[..]));
    assert_eq!(
        write,
        Ok(smb_mailslot::Repr::new(b"\\MAILSLOT\\LAB", b"slot"))
    );
    for delivery in &got {
        assert_eq!(delivery.source_name, from);
        assert_eq!(delivery.source.address, NODE_IP);
        assert_eq!(delivery.source.port, 138);
    }
    // The unique one went to node 2's address, the rest to the broadcast address.
    let sent = datagrams_from(&hub, NODE_IP);
    let data: Vec<_> = sent
        .iter()
        .filter(|(_, bytes)| parse(bytes).message.msg_type().is_data())
        .map(|(seen, _)| seen.destination)
        .collect();
    assert!(data.contains(&NODE2_IP));
    assert!(data.iter().filter(|&&d| d == BROADCAST).count() >= 3);
    assert_eq!(two.node.datagrams.counters().delivered, 4);
    assert_eq!(
        one.node
            .send_datagram(name("OTHER"), Target::Broadcast, b"x"),
        Err(SendError::NotOurName)
    );
    // Node status reports them: node 2 received 4, node 1 sent at least 4.
    let statistics = two.node.node_status_statistics();
    assert_eq!(statistics.number_good_receives, 4);
    assert!(one.node.node_status_statistics().number_good_sends >= 4);
}

/// A peer with a UDP socket on 138.
fn peer_on_138(hub: &Hub) -> (Peer, SocketHandle) {
    let mut peer = Peer::new(hub, PEER_MAC, PEER_IP);
    let socket = peer.udp(138);
    (peer, socket)
}

/// Every NBDS datagram the peer received: (source endpoint, bytes).
fn peer_datagrams(peer: &mut Peer, socket: SocketHandle) -> Vec<(IpEndpoint, Vec<u8>)> {
    peer.received(socket)
}

#[test]
fn the_announcement_reaches_the_segment_and_the_other_node_ignores_it() {
    let hub = Hub::new();
    let (mut peer, socket) = peer_on_138(&hub);
    let (mut one, mut two) = two_nodes(&hub);
    run(&hub, 100, &mut [&mut one, &mut two, &mut peer]);
    let got = peer_datagrams(&mut peer, socket);
    let announcements: Vec<_> = got
        .iter()
        .filter(|(from, _)| from.addr == IpAddress::Ipv4(NODE_IP))
        .collect();
    assert_eq!(announcements.len(), 1, "one announcement at start: {got:?}");
    let (from, bytes) = announcements[0];
    assert_eq!(from.port, 138);
    let repr = parse(bytes);
    let nbds::Message::DirectGroup(datagram) = repr.message else {
        panic!("a DIRECT_GROUP datagram: {repr}");
    };
    assert_eq!(datagram.source_name, NbName::unscoped(name("LABSRV")));
    assert_eq!(
        datagram.destination_name,
        NbName::unscoped(name("LABGRP#1d"))
    );
    let write = smb_mailslot::Repr::parse(&smb_mailslot::Packet::new_unchecked(datagram.user_data))
        .unwrap();
    assert_eq!(write.mailslot, smb_mailslot::BROWSE);
    let Ok(browser::Repr::HostAnnouncement(announcement)) =
        browser::Repr::parse(&browser::Packet::new_unchecked(write.data))
    else {
        panic!("a HostAnnouncement");
    };
    assert_eq!(announcement.server_name, b"LABSRV");
    assert_eq!(announcement.server_type, ServerType::NETBT);
    assert_eq!(announcement.periodicity_ms, 60_000);
    assert_eq!(announcement.comment, b"netbt in process");
    // Node 2 announces too (OTHER), and each saw the other's as a browser frame to ignore.
    assert!(
        got.iter()
            .any(|(from, _)| from.addr == IpAddress::Ipv4(NODE2_IP))
    );
    assert_eq!(two.node.browse.counters().browser_frames_ignored, 1);
    assert_eq!(one.node.browse.counters().browser_frames_ignored, 1);
    assert_eq!(
        two.node.datagrams.take_delivery(),
        None,
        "LABGRP<1D> is not ours"
    );
    // One minute later, the second one.
    run(&hub, 60_000, &mut [&mut one, &mut two, &mut peer]);
    let again = peer_datagrams(&mut peer, socket)
        .into_iter()
        .filter(|(from, _)| from.addr == IpAddress::Ipv4(NODE_IP))
        .count();
    assert_eq!(again, 1);
    // Shutdown: type 0.
    one.node.shut_down_announcements();
    run(&hub, 5, &mut [&mut one, &mut two, &mut peer]);
    let last = peer_datagrams(&mut peer, socket);
    let (_, bytes) = last
        .iter()
        .find(|(from, _)| from.addr == IpAddress::Ipv4(NODE_IP))
        .expect("the shutdown announcement");
    let repr = parse(bytes);
    let nbds::Message::DirectGroup(datagram) = repr.message else {
        panic!()
    };
    let write = smb_mailslot::Repr::parse(&smb_mailslot::Packet::new_unchecked(datagram.user_data))
        .unwrap();
    let Ok(browser::Repr::HostAnnouncement(announcement)) =
        browser::Repr::parse(&browser::Packet::new_unchecked(write.data))
    else {
        panic!()
    };
    assert_eq!(announcement.server_type, ServerType(0));
    assert_eq!(one.node.browse.counters().announcements_sent, 3);
    assert_eq!(one.node.browse.counters().announcements_failed, 0);
    // Once the names are released nothing more is announced.
    one.node.names.release(hub.now());
    run(&hub, 180_000, &mut [&mut one, &mut two, &mut peer]);
    let late = peer_datagrams(&mut peer, socket)
        .into_iter()
        .filter(|(from, _)| from.addr == IpAddress::Ipv4(NODE_IP))
        .count();
    assert_eq!(late, 0);
}

fn emit(repr: &nbds::Repr) -> Vec<u8> {
    let mut bytes = vec![0; repr.buffer_len()];
    repr.emit(&mut nbds::Packet::new_unchecked(&mut bytes[..]));
    bytes
}

#[test]
fn error_and_query_responses_go_back_to_the_requester() {
    let hub = Hub::new();
    let (mut peer, socket) = peer_on_138(&hub);
    let (mut one, mut two) = two_nodes(&hub);
    run(&hub, 100, &mut [&mut one, &mut two, &mut peer]);
    peer_datagrams(&mut peer, socket);
    let header = |message| nbds::Repr {
        datagram_id: 0x7777,
        flags: nbds::Flags::unfragmented(nbds::NodeType::B),
        source_ip: PEER_IP,
        source_port: 138,
        message,
    };
    let stranger = nbds::Datagram {
        source_name: NbName::unscoped(name("PEER")),
        destination_name: NbName::unscoped(name("STRANGER")),
        packet_offset: 0,
        user_data: b"?",
    };
    // Unicast to node 1 for a name it does not own: error 0x82.
    peer.send_to(
        socket,
        (NODE_IP, 138),
        &emit(&header(nbds::Message::DirectUnique(stranger))),
    );
    // The same by broadcast: nothing.
    peer.send_to(
        socket,
        (BROADCAST, 138),
        &emit(&header(nbds::Message::DirectUnique(stranger))),
    );
    // Queries: positive for LABSRV<20>, negative for STRANGER.
    for text in ["LABSRV#20", "STRANGER"] {
        peer.send_to(
            socket,
            (NODE_IP, 138),
            &emit(&header(nbds::Message::QueryRequest {
                name: NbName::unscoped(name(text)),
            })),
        );
    }
    run(&hub, 20, &mut [&mut one, &mut two, &mut peer]);
    let got = peer_datagrams(&mut peer, socket);
    let answers: Vec<String> = got
        .iter()
        .map(|(from, bytes)| {
            assert_eq!(*from, IpEndpoint::new(NODE_IP.into(), 138), "from 138");
            let repr = parse(bytes);
            assert_eq!(repr.datagram_id, 0x7777);
            repr.message.to_string()
        })
        .collect();
    assert_eq!(
        answers,
        [
            "datagram error: destination name not present",
            "positive datagram query response for LABSRV<20>",
            "negative datagram query response for STRANGER<00>",
        ]
    );
    assert_eq!(two.node.datagrams.counters().errors_sent, 0);
    // No ICMP port unreachable from either node: 138 is open.
    let icmp = hub
        .seen()
        .into_iter()
        .filter(|s| matches!(s.transport, Transport::Other))
        .count();
    assert_eq!(icmp, 0);
}

#[test]
fn an_announcement_request_is_answered_within_30_seconds() {
    let hub = Hub::new();
    let (mut peer, socket) = peer_on_138(&hub);
    let (mut one, mut two) = two_nodes(&hub);
    run(&hub, 100, &mut [&mut one, &mut two, &mut peer]);
    peer_datagrams(&mut peer, socket);
    let frame = b"\x02\x00PEER\x00";
    let write = smb_mailslot::Repr::new(smb_mailslot::BROWSE, frame);
    let mut data = vec![0; write.buffer_len()];
    write.emit(&mut smb_mailslot::Packet::new_unchecked(&mut data[..]));
    let request = emit(&nbds::Repr {
        datagram_id: 1,
        flags: nbds::Flags::unfragmented(nbds::NodeType::M),
        source_ip: PEER_IP,
        source_port: 138,
        message: nbds::Message::DirectGroup(nbds::Datagram {
            source_name: NbName::unscoped(name("PEER")),
            destination_name: NbName::unscoped(name("LABGRP#1e")),
            packet_offset: 0,
            user_data: &data,
        }),
    });
    peer.send_to(socket, (BROADCAST, 138), &request);
    let asked = hub.now();
    let mut answered = Vec::new();
    for _ in 0..31 {
        run(&hub, 1_000, &mut [&mut one, &mut two, &mut peer]);
        for (from, _) in peer_datagrams(&mut peer, socket) {
            answered.push((from.addr, hub.now() - asked));
        }
    }
    for node in [NODE_IP, NODE2_IP] {
        let times: Vec<Duration> = answered
            .iter()
            .filter(|(addr, _)| *addr == IpAddress::Ipv4(node))
            .map(|(_, at)| *at)
            .collect();
        assert_eq!(times.len(), 1, "{node}: one announcement: {answered:?}");
        assert!(times[0] <= Duration::from_secs(31), "{node}: {times:?}");
    }
    assert_eq!(one.node.browse.counters().announcement_requests, 1);
    assert_eq!(one.node.browse.counters().requested_announcements, 1);
}

#[test]
fn datagram_storage_too_small_for_one_datagram_is_refused() {
    use netbt::node::{Node, NodeError, NodeStorage};
    use smoltcp::socket::udp::PacketMetadata;
    let hub = Hub::new();
    for (meta, bytes) in [(0, 576), (1, 575), (4, 0)] {
        let mut port = hub.port();
        let mut storage = NodeStorage::leaked(1, 0, 4096, 4);
        storage.datagram_service.rx_meta = vec![PacketMetadata::EMPTY; meta].leak();
        storage.datagram_service.rx = vec![0u8; bytes].leak();
        let node = Node::new(config(NODE_MAC, NODE_IP), &mut port, storage, hub.now());
        assert_eq!(
            node.err(),
            Some(NodeError::DatagramStorageTooSmall),
            "{meta} packets, {bytes} bytes"
        );
    }
    // Exactly one datagram each way, and no delivery storage at all, is enough to build.
    let mut port = hub.port();
    let mut storage = NodeStorage::leaked(1, 0, 4096, 4);
    storage.datagram_service.rx_meta = vec![PacketMetadata::EMPTY; 1].leak();
    storage.datagram_service.rx = vec![0u8; 576].leak();
    storage.deliveries = &mut [];
    assert!(Node::new(config(NODE_MAC, NODE_IP), &mut port, storage, hub.now()).is_ok());
}

#[test]
fn a_unique_datagram_is_resolved_by_a_broadcast_query_first() {
    let hub = Hub::new();
    let (mut one, mut two) = two_nodes(&hub);
    while two.node.datagrams.take_delivery().is_some() {}
    hub.clear_log();
    one.node
        .send_mailslot(
            name("LABSRV"),
            Target::Resolve(name("OTHER#20")),
            b"\\MAILSLOT\\LAB",
            b"found you",
        )
        .unwrap();
    run(&hub, 20, &mut [&mut one, &mut two]);
    let delivery = two.node.datagrams.take_delivery().expect("delivered");
    assert_eq!(delivery.kind, DatagramKind::Unique);
    assert_eq!(delivery.destination_name, name("OTHER#20"));
    assert_eq!(one.node.datagrams.counters().resolved, 1);
    // On the wire: one query from 138 to the broadcast address's 137, node 2's answer back to
    // 138, then the datagram to node 2's own address.
    let seen = hub.seen();
    let query = seen
        .iter()
        .position(|s| {
            s.source == NODE_IP
                && s.destination == BROADCAST
                && s.udp(Some(138), Some(137)).is_some()
        })
        .expect("the query");
    let answer = seen
        .iter()
        .position(|s| s.source == NODE2_IP && s.udp(Some(137), Some(138)).is_some())
        .expect("the answer");
    let datagram = seen
        .iter()
        .position(|s| {
            s.source == NODE_IP
                && s.destination == NODE2_IP
                && s.udp(Some(138), Some(138)).is_some()
        })
        .expect("the datagram");
    assert!(query < answer && answer < datagram);
    // A name nobody owns: three queries, then the datagram is dropped and counted.
    one.node
        .send_datagram(name("LABSRV"), Target::Resolve(name("NOBODY")), b"x")
        .unwrap();
    run(&hub, 2_000, &mut [&mut one, &mut two]);
    assert_eq!(one.node.datagrams.counters().unresolved, 1);
    assert_eq!(two.node.datagrams.take_delivery(), None);
}
