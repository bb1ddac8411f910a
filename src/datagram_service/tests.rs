//! The datagram service's unit tests: a registered name table, datagrams built with the wire
//! codecs, and a record of what the service sends.

use super::*;
use crate::name_service::{NAME_EVENTS, NameServiceConfig};
use crate::wire::nbns;
use smoltcp::time::{Duration, Instant};
use std::vec;
use std::vec::Vec;

const OUR_ADDRESS: Ipv4Address = Ipv4Address::new(192, 168, 69, 1);
const SUBNET_BROADCAST: Ipv4Address = Ipv4Address::new(192, 168, 69, 255);
const PEER: Ipv4Address = Ipv4Address::new(192, 168, 69, 100);
/// Where PEER's datagrams come from: not port 138, so the tests see answers go back to the
/// port a datagram came from.
const PEER_SOURCE: Destination = Destination {
    address: PEER,
    port: 40_138,
};

fn name(text: &str) -> Name {
    Name::parse_text(text, 0).unwrap()
}

/// A name service with LABSRV<00>, LABSRV<20> and the group WORKGROUP<00> registered.
pub(crate) fn registered_names() -> NameService<'static> {
    let mut names = NameService::new(
        NameServiceConfig {
            address: Ipv4Cidr::new(OUR_ADDRESS, 24),
            mac: [2, 0, 0, 0, 0, 1],
            hide_mac: false,
            scope: Scope::NONE,
        },
        7,
        vec![None; NAME_EVENTS].leak(),
    );
    names.add_name(name("LABSRV"), false).unwrap();
    names.add_name(name("LABSRV#20"), false).unwrap();
    names.add_name(name("WORKGROUP"), true).unwrap();
    names.start(Instant::ZERO);
    for step in 0..=4 {
        names.poll(
            Instant::ZERO + Duration::from_millis(250 * step),
            &mut |_, _| {},
        );
    }
    assert!(names.is_ready() && names.owns(&NbName::unscoped(name("WORKGROUP"))));
    names
}

/// Deliveries kept by [`service`].
const DELIVERIES: usize = 8;

fn service() -> DatagramService<'static> {
    DatagramService::new(
        Ipv4Cidr::new(OUR_ADDRESS, 24),
        Scope::NONE,
        99,
        vec![Delivery::EMPTY; DELIVERIES].leak(),
    )
}

fn from(to: Ipv4Address) -> Received {
    Received {
        source: PEER_SOURCE,
        destination: to,
    }
}

fn emit(repr: &nbds::Repr) -> Vec<u8> {
    let mut buf = vec![0; repr.buffer_len()];
    repr.emit(&mut nbds::Packet::new_unchecked(&mut buf[..]));
    buf
}

/// The bytes of a name service packet (the service's queries, or the answers to them).
fn emit_nbns(repr: &nbns::Repr) -> Vec<u8> {
    let mut bytes = vec![0; repr.buffer_len()];
    repr.emit(&mut nbns::Packet::new_unchecked(&mut bytes[..]));
    bytes
}

/// A data datagram of `kind` from PEER's CLIENT<00> to `to`, id 0x4242.
fn datagram(kind: DatagramKind, to: Name, data: &[u8]) -> Vec<u8> {
    let datagram = Datagram {
        source_name: NbName::unscoped(name("CLIENT")),
        destination_name: NbName::unscoped(to),
        packet_offset: 0,
        user_data: data,
    };
    let message = match kind {
        DatagramKind::Unique => Message::DirectUnique(datagram),
        DatagramKind::Group => Message::DirectGroup(datagram),
        DatagramKind::Broadcast => Message::Broadcast(datagram),
    };
    emit(&nbds::Repr {
        datagram_id: 0x4242,
        flags: Flags::unfragmented(NodeType::B),
        source_ip: PEER,
        source_port: 138,
        message,
    })
}

/// What the service sent: (to, bytes).
#[derive(Default)]
struct Wire {
    sent: Vec<(Destination, Vec<u8>)>,
    full: bool,
}

impl Wire {
    fn send(&mut self) -> impl FnMut(Destination, &nbds::Repr) -> bool + '_ {
        |to, repr| {
            if self.full {
                return false;
            }
            self.sent.push((to, emit(repr)));
            true
        }
    }

    fn only(&self) -> (Destination, nbds::Repr<'_>) {
        assert_eq!(self.sent.len(), 1, "one packet sent");
        let (to, bytes) = &self.sent[0];
        (
            *to,
            nbds::Repr::parse(&nbds::Packet::new_unchecked(&bytes[..])).unwrap(),
        )
    }
}

fn receive(
    service: &mut DatagramService,
    names: &NameService,
    bytes: &[u8],
    to: Ipv4Address,
    wire: &mut Wire,
) -> bool {
    service
        .receive(bytes, from(to), names, &mut wire.send())
        .is_some()
}

/// Sends `data` from our LABSRV<00> to `to`, recording on `wire` what goes out.
fn send(
    service: &mut DatagramService,
    names: &NameService,
    to: Target,
    data: &[u8],
    wire: &mut Wire,
) -> Result<(), SendError> {
    service.send(names, name("LABSRV"), to, data, &mut wire.send())
}

#[test]
fn datagrams_to_our_names_are_delivered() {
    let names = registered_names();
    let mut service = service();
    let mut wire = Wire::default();
    for (kind, to, address) in [
        (DatagramKind::Unique, "LABSRV#20", OUR_ADDRESS),
        (DatagramKind::Unique, "LABSRV", SUBNET_BROADCAST),
        (DatagramKind::Group, "WORKGROUP", SUBNET_BROADCAST),
        (DatagramKind::Broadcast, "*", SUBNET_BROADCAST),
        (DatagramKind::Broadcast, "LABSRV", SUBNET_BROADCAST),
    ] {
        let bytes = datagram(kind, name(to), b"hello");
        assert!(receive(&mut service, &names, &bytes, address, &mut wire));
        let delivery = service.take_delivery().expect("delivered");
        assert_eq!(delivery.kind, kind);
        assert_eq!(delivery.source_name, name("CLIENT"));
        assert_eq!(delivery.source, PEER_SOURCE);
        assert_eq!(delivery.destination_name, name(to));
        assert_eq!(&delivery.data[..], b"hello");
    }
    assert!(wire.sent.is_empty(), "nothing answers a delivered datagram");
    assert_eq!(service.counters().delivered, 5);
    assert_eq!(service.counters().received, 5);
    assert_eq!(service.take_delivery(), None);
}

#[test]
fn only_a_unicast_direct_unique_to_an_absent_name_gets_an_error() {
    let names = registered_names();
    let mut service = service();
    // Unicast, unique, not ours: DATAGRAM ERROR 0x82 to the source address and port.
    let mut wire = Wire::default();
    let bytes = datagram(DatagramKind::Unique, name("STRANGER"), b"x");
    receive(&mut service, &names, &bytes, OUR_ADDRESS, &mut wire);
    let (to, repr) = wire.only();
    assert_eq!(to, PEER_SOURCE);
    assert_eq!(repr.datagram_id, 0x4242, "the failed datagram's id");
    assert_eq!(repr.source_ip, OUR_ADDRESS);
    assert_eq!(repr.source_port, 138);
    assert_eq!(
        repr.message,
        Message::Error {
            code: ErrorCode::DestinationNameNotPresent
        }
    );
    assert_eq!(service.counters().errors_sent, 1);
    // Never for a broadcast-addressed one, a group, a broadcast datagram, or our own name.
    for (kind, to, address) in [
        (DatagramKind::Unique, "STRANGER", SUBNET_BROADCAST),
        (DatagramKind::Group, "STRANGER", OUR_ADDRESS),
        (DatagramKind::Broadcast, "STRANGER", OUR_ADDRESS),
        (DatagramKind::Unique, "LABSRV", OUR_ADDRESS),
    ] {
        let mut wire = Wire::default();
        let bytes = datagram(kind, name(to), b"x");
        receive(&mut service, &names, &bytes, address, &mut wire);
        assert!(wire.sent.is_empty(), "{kind} to {to} at {address}");
    }
    assert_eq!(service.counters().errors_sent, 1);
    assert_eq!(service.counters().not_for_us, 4);
    assert_eq!(service.counters().delivered, 1);
}

#[test]
fn queries_are_answered_positively_for_our_names_negatively_when_unicast() {
    let names = registered_names();
    let mut service = service();
    let query = |text: &str| {
        emit(&nbds::Repr {
            datagram_id: 0x0102,
            flags: Flags::unfragmented(NodeType::B),
            source_ip: PEER,
            source_port: 138,
            message: Message::QueryRequest {
                name: NbName::unscoped(name(text)),
            },
        })
    };
    let mut wire = Wire::default();
    receive(
        &mut service,
        &names,
        &query("LABSRV#20"),
        SUBNET_BROADCAST,
        &mut wire,
    );
    let (to, repr) = wire.only();
    assert_eq!(to.address, PEER);
    assert_eq!(to.port, 40_138);
    assert_eq!(repr.datagram_id, 0x0102);
    assert_eq!(
        repr.message,
        Message::PositiveQueryResponse {
            name: NbName::unscoped(name("LABSRV#20"))
        }
    );
    let mut wire = Wire::default();
    receive(
        &mut service,
        &names,
        &query("STRANGER"),
        OUR_ADDRESS,
        &mut wire,
    );
    assert_eq!(
        wire.only().1.message,
        Message::NegativeQueryResponse {
            name: NbName::unscoped(name("STRANGER"))
        }
    );
    let mut wire = Wire::default();
    receive(
        &mut service,
        &names,
        &query("STRANGER"),
        SUBNET_BROADCAST,
        &mut wire,
    );
    assert!(
        wire.sent.is_empty(),
        "a broadcast query for another name: silence"
    );
    assert_eq!(service.counters().queries_answered, 1);
    assert_eq!(service.counters().queries_refused, 1);
    assert_eq!(service.counters().sent, 2);
}

#[test]
fn fragments_malformed_and_oversized_datagrams_are_dropped_and_counted() {
    let names = registered_names();
    let mut service = service();
    let mut wire = Wire::default();
    let whole = datagram(DatagramKind::Unique, name("LABSRV"), b"hello");
    let mut more = whole.clone();
    more[1] |= Flags::MORE;
    let mut offset = whole.clone();
    offset[13] = 1;
    for fragment in [&more, &offset] {
        assert!(!receive(
            &mut service,
            &names,
            fragment,
            OUR_ADDRESS,
            &mut wire
        ));
    }
    assert_eq!(service.counters().fragments_dropped, 2);
    for len in 0..whole.len() - 5 {
        receive(&mut service, &names, &whole[..len], OUR_ADDRESS, &mut wire);
    }
    let big = datagram(
        DatagramKind::Unique,
        name("LABSRV"),
        &[7; MAX_USER_DATA + 1],
    );
    receive(&mut service, &names, &big, OUR_ADDRESS, &mut wire);
    assert_eq!(service.counters().malformed, whole.len() as u32 - 5 + 1);
    assert_eq!(service.counters().delivered, 0);
    assert!(wire.sent.is_empty());
    // Exactly MAX_USER_DATA is delivered.
    let fits = datagram(DatagramKind::Unique, name("LABSRV"), &[7; MAX_USER_DATA]);
    receive(&mut service, &names, &fits, OUR_ADDRESS, &mut wire);
    assert_eq!(service.take_delivery().unwrap().data.len(), MAX_USER_DATA);
}

#[test]
fn our_own_datagrams_and_other_scopes_are_not_delivered() {
    let names = registered_names();
    let mut service = service();
    let mut wire = Wire::default();
    let bytes = datagram(DatagramKind::Unique, name("LABSRV"), b"x");
    let mut own = from(SUBNET_BROADCAST);
    own.source.address = OUR_ADDRESS;
    assert!(
        service
            .receive(&bytes, own, &names, &mut wire.send())
            .is_none()
    );
    let scoped = emit(&nbds::Repr {
        datagram_id: 1,
        flags: Flags::unfragmented(NodeType::B),
        source_ip: PEER,
        source_port: 138,
        message: Message::DirectUnique(Datagram {
            source_name: NbName::unscoped(name("CLIENT")),
            destination_name: NbName::new(name("LABSRV"), Scope::parse_text("other").unwrap()),
            packet_offset: 0,
            user_data: b"x",
        }),
    });
    receive(&mut service, &names, &scoped, OUR_ADDRESS, &mut wire);
    assert_eq!(service.counters().not_for_us, 1);
    assert_eq!(service.take_delivery(), None);
    assert!(wire.sent.is_empty());
}

#[test]
fn the_announcer_sees_datagrams_to_names_we_do_not_own() {
    let names = registered_names();
    let mut service = service();
    let mut wire = Wire::default();
    let bytes = datagram(DatagramKind::Group, name("WORKGROUP#1e"), b"request");
    let inbound = service
        .receive(&bytes, from(SUBNET_BROADCAST), &names, &mut wire.send())
        .unwrap();
    assert_eq!(inbound.destination, name("WORKGROUP#1e"));
    assert_eq!(inbound.data, b"request");
    assert_eq!(service.take_delivery(), None, "not delivered: not ours");
}

#[test]
fn a_full_delivery_queue_drops_the_oldest() {
    let names = registered_names();
    let mut service = service();
    let mut wire = Wire::default();
    for i in 0..DELIVERIES + 2 {
        let bytes = datagram(DatagramKind::Unique, name("LABSRV"), &[i as u8]);
        receive(&mut service, &names, &bytes, OUR_ADDRESS, &mut wire);
    }
    assert_eq!(service.counters().deliveries_lost, 2);
    for i in 2..DELIVERIES + 2 {
        assert_eq!(&service.take_delivery().unwrap().data[..], [i as u8]);
    }
    assert_eq!(service.take_delivery(), None);
    // Without storage every datagram is lost, and counted.
    let mut none = DatagramService::new(Ipv4Cidr::new(OUR_ADDRESS, 24), Scope::NONE, 1, &mut []);
    let bytes = datagram(DatagramKind::Unique, name("LABSRV"), b"x");
    receive(&mut none, &names, &bytes, OUR_ADDRESS, &mut wire);
    assert_eq!(none.counters().deliveries_lost, 1);
    assert_eq!(none.take_delivery(), None);
}

#[test]
fn sending_picks_type_address_and_names() {
    let names = registered_names();
    let mut service = service();
    let from_name = name("LABSRV");
    for (to, kind, address, destination) in [
        (
            Target::Unique {
                name: name("OTHER#20"),
                address: Some(PEER),
            },
            nbds::MessageType::DirectUnique,
            PEER,
            name("OTHER#20"),
        ),
        (
            Target::Unique {
                name: name("OTHER#20"),
                address: None,
            },
            nbds::MessageType::DirectUnique,
            SUBNET_BROADCAST,
            name("OTHER#20"),
        ),
        (
            Target::Group(name("WORKGROUP#1d")),
            nbds::MessageType::DirectGroup,
            SUBNET_BROADCAST,
            name("WORKGROUP#1d"),
        ),
        (
            Target::Broadcast,
            nbds::MessageType::Broadcast,
            SUBNET_BROADCAST,
            Name::WILDCARD,
        ),
    ] {
        let mut wire = Wire::default();
        service
            .send(&names, from_name, to, b"data", &mut wire.send())
            .unwrap();
        let (dest, repr) = wire.only();
        assert_eq!(dest, Destination { address, port: 138 });
        assert_eq!(repr.message.msg_type(), kind);
        assert_eq!(repr.flags, Flags::unfragmented(NodeType::B));
        assert_eq!((repr.source_ip, repr.source_port), (OUR_ADDRESS, 138));
        let (Message::DirectUnique(d) | Message::DirectGroup(d) | Message::Broadcast(d)) =
            repr.message
        else {
            panic!("not a data datagram");
        };
        assert_eq!(d.source_name, NbName::unscoped(from_name));
        assert_eq!(d.destination_name, NbName::unscoped(destination));
        assert_eq!(d.user_data, b"data");
    }
    assert_eq!(service.counters().sent, 4);
}

#[test]
fn sending_fails_for_foreign_names_oversized_data_and_a_full_queue() {
    let names = registered_names();
    let mut service = service();
    let mut wire = Wire::default();
    assert_eq!(
        service.send(
            &names,
            name("STRANGER"),
            Target::Broadcast,
            b"x",
            &mut wire.send()
        ),
        Err(SendError::NotOurName)
    );
    // 576 - 14 - 2 * 34 = 494 bytes of user data fit; one more does not.
    assert!(
        send(
            &mut service,
            &names,
            Target::Broadcast,
            &[0; 494],
            &mut wire
        )
        .is_ok()
    );
    assert_eq!(
        send(
            &mut service,
            &names,
            Target::Broadcast,
            &[0; 495],
            &mut wire
        ),
        Err(SendError::TooLong)
    );
    wire.full = true;
    assert_eq!(
        send(&mut service, &names, Target::Broadcast, b"x", &mut wire),
        Err(SendError::QueueFull)
    );
    assert_eq!(service.counters().send_failures, 3);
    assert_eq!(service.counters().sent, 1);
}

#[test]
fn a_mailslot_write_is_wrapped_in_smb() {
    let names = registered_names();
    let mut service = service();
    let mut wire = Wire::default();
    service
        .send_mailslot(
            &names,
            name("LABSRV"),
            Target::Group(name("WORKGROUP")),
            b"\\MAILSLOT\\TEST",
            b"payload",
            &mut wire.send(),
        )
        .unwrap();
    let (_, repr) = wire.only();
    let Message::DirectGroup(d) = repr.message else {
        panic!("a group datagram");
    };
    let write = smb_mailslot::Repr::parse(&smb_mailslot::Packet::new_unchecked(d.user_data));
    assert_eq!(
        write,
        Ok(smb_mailslot::Repr::new(b"\\MAILSLOT\\TEST", b"payload"))
    );
    // A write that cannot fit 576 bytes is refused.
    assert_eq!(
        service.send_mailslot(
            &names,
            name("LABSRV"),
            Target::Broadcast,
            b"\\MAILSLOT\\TEST",
            &[0; 500],
            &mut wire.send(),
        ),
        Err(SendError::TooLong)
    );
}

#[test]
fn jitter_stays_in_bounds_and_varies() {
    let mut rng = Rng::new(0);
    let draws: Vec<u32> = (0..2000).map(|_| rng.up_to(30_000)).collect();
    assert!(draws.iter().all(|&d| d <= 30_000));
    assert!(draws.iter().any(|&d| d < 3_000) && draws.iter().any(|&d| d > 27_000));
    assert_eq!(Rng::new(5).up_to(0), 0);
    let _ = Rng::new(5).up_to(u32::MAX);
}

/// A positive name query response from PEER (port 137) for `text` with transaction `id`.
fn query_answer(id: u16, text: &str, address: Ipv4Address) -> Vec<u8> {
    let entry = [nbns::AddrEntry {
        flags: nbns::NbFlags::new(false, nbns::NodeType::B),
        address,
    }];
    let repr = nbns::Repr {
        transaction_id: id,
        flags: nbns::Flags::RECURSION_DESIRED,
        message: nbns::Message::PositiveNameQueryResponse {
            name: NbName::unscoped(name(text)),
            ttl: 300,
            entries: nbns::AddrEntries::new(&entry),
        },
    };
    emit_nbns(&repr)
}

/// The name queries `poll` sends at `now`: (to, transaction id, flags word, name).
fn queries(service: &mut DatagramService, now: Instant) -> Vec<(Destination, u16, u16, String)> {
    let mut sent = Vec::new();
    service.poll(now, &mut |to, repr| {
        let bytes = emit_nbns(repr);
        let nbns::Message::NameQueryRequest { name } = repr.message else {
            panic!("not a name query: {repr}");
        };
        sent.push((
            to,
            repr.transaction_id,
            u16::from_be_bytes([bytes[2], bytes[3]]),
            name.to_string(),
        ));
        true
    });
    sent
}

fn from_137() -> Received {
    Received {
        source: Destination {
            address: PEER,
            port: 137,
        },
        destination: OUR_ADDRESS,
    }
}

#[test]
fn a_resolved_datagram_waits_for_the_answer_to_its_broadcast_query() {
    let names = registered_names();
    let mut service = service();
    let mut wire = Wire::default();
    let t0 = Instant::from_secs(5);
    send(
        &mut service,
        &names,
        Target::Resolve(name("OTHER#20")),
        b"hi",
        &mut wire,
    )
    .unwrap();
    assert!(wire.sent.is_empty(), "nothing before the address is known");
    assert_eq!(
        service.poll_at(),
        Some(Instant::ZERO),
        "the query is due at once"
    );
    assert_eq!(
        send(
            &mut service,
            &names,
            Target::Resolve(name("X")),
            b"",
            &mut wire
        ),
        Err(SendError::Busy)
    );
    let first = queries(&mut service, t0);
    assert_eq!(first.len(), 1);
    let (to, id, flags, asked) = first[0].clone();
    assert_eq!(
        to,
        Destination {
            address: SUBNET_BROADCAST,
            port: 137
        }
    );
    assert_eq!(
        flags, 0x0110,
        "a broadcast query with RD, as nmblookup sends"
    );
    assert_eq!(asked, "OTHER<20>");
    assert!(queries(&mut service, t0 + Duration::from_millis(100)).is_empty());
    // Answers for another transaction or another name are ignored.
    for bytes in [
        query_answer(id.wrapping_add(1), "OTHER#20", PEER),
        query_answer(id, "OTHER#00", PEER),
    ] {
        assert!(
            service
                .receive(&bytes, from_137(), &names, &mut wire.send())
                .is_none()
        );
    }
    assert!(wire.sent.is_empty());
    // The answer: the datagram goes to the address it gives.
    let answer = query_answer(id, "OTHER#20", Ipv4Address::new(192, 168, 69, 7));
    service.receive(&answer, from_137(), &names, &mut wire.send());
    let (to, repr) = wire.only();
    assert_eq!(
        to,
        Destination {
            address: Ipv4Address::new(192, 168, 69, 7),
            port: 138
        }
    );
    let Message::DirectUnique(d) = repr.message else {
        panic!("a unique datagram");
    };
    assert_eq!(d.destination_name, NbName::unscoped(name("OTHER#20")));
    assert_eq!(d.user_data, b"hi");
    assert_eq!(service.counters().resolved, 1);
    assert_eq!(service.poll_at(), None);
    assert_eq!(
        service.counters().delivered,
        0,
        "an answer is not a datagram"
    );
}

#[test]
fn an_unanswered_resolution_gives_up_after_three_queries() {
    let names = registered_names();
    let mut service = service();
    let mut wire = Wire::default();
    send(
        &mut service,
        &names,
        Target::Resolve(name("NOBODY")),
        b"x",
        &mut wire,
    )
    .unwrap();
    let t0 = Instant::from_secs(1);
    let mut at = Vec::new();
    for ms in (0..2_000).step_by(50) {
        let now = t0 + Duration::from_millis(ms);
        if !queries(&mut service, now).is_empty() {
            at.push(ms);
        }
    }
    assert_eq!(at, [0, 250, 500]);
    assert_eq!(service.counters().unresolved, 1);
    assert_eq!(service.counters().send_failures, 1);
    assert_eq!(service.poll_at(), None);
    assert!(wire.sent.is_empty());
    // Free again.
    assert!(
        send(
            &mut service,
            &names,
            Target::Resolve(name("NOBODY")),
            b"x",
            &mut wire
        )
        .is_ok()
    );
    // Too long for one datagram, even before any query.
    let mut other = DatagramService::new(Ipv4Cidr::new(OUR_ADDRESS, 24), Scope::NONE, 1, &mut []);
    assert_eq!(
        send(
            &mut other,
            &names,
            Target::Resolve(name("X")),
            &[0; 495],
            &mut wire
        ),
        Err(SendError::TooLong)
    );
}
