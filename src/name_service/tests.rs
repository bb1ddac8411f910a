//! The name service's unit tests: a harness that records what the service sends, then one
//! numbered section per job (registration, conflicts, queries, node status, defence, attacks,
//! malformed packets, release, the table).

use super::*;
use crate::wire::nbns::{NodeType, Packet, Repr};
use std::vec;
use std::vec::Vec;

/// The clock origin of every test, away from zero.
const T0: i64 = 10_000;
const OUR_ADDRESS: Ipv4Address = Ipv4Address::new(192, 168, 69, 1);
const SUBNET_BROADCAST: Ipv4Address = Ipv4Address::new(192, 168, 69, 255);
const PEER: Ipv4Address = Ipv4Address::new(192, 168, 69, 100);
const MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
const BROADCAST_137: Destination = Destination {
    address: SUBNET_BROADCAST,
    port: NAME_SERVICE_PORT,
};
const SEED: u64 = 0x1234_5678_9abc_def0;

/// `T0 + ms`.
pub(super) fn at(ms: i64) -> Instant {
    Instant::from_millis(T0 + ms)
}

fn peer(port: u16) -> Destination {
    Destination {
        address: PEER,
        port,
    }
}

fn config() -> NameServiceConfig {
    NameServiceConfig {
        address: Ipv4Cidr::new(OUR_ADDRESS, 24),
        mac: MAC,
        hide_mac: false,
        scope: Scope::NONE,
    }
}

#[track_caller]
fn labsrv() -> Name {
    Name::new("LABSRV", Name::SUFFIX_WORKSTATION).unwrap()
}

#[track_caller]
fn labsrv_server() -> Name {
    Name::new("LABSRV", Name::SUFFIX_SERVER).unwrap()
}

#[track_caller]
fn workgroup() -> Name {
    Name::new("WORKGROUP", Name::SUFFIX_WORKSTATION).unwrap()
}

#[track_caller]
fn stranger() -> Name {
    Name::new("STRANGER", Name::SUFFIX_WORKSTATION).unwrap()
}

/// Our usual table: two unique names and a group name.
#[track_caller]
fn our_names() -> [(Name, bool); 3] {
    [
        (labsrv(), false),
        (labsrv_server(), false),
        (workgroup(), true),
    ]
}

fn nb(name: Name) -> NbName {
    NbName::unscoped(name)
}

fn our_entry(group: bool) -> AddrEntry {
    AddrEntry {
        flags: NbFlags::new(group, NodeType::B),
        address: OUR_ADDRESS,
    }
}

fn peer_entry(group: bool) -> AddrEntry {
    AddrEntry {
        flags: NbFlags::new(group, NodeType::B),
        address: PEER,
    }
}

/// The bytes of `repr`, emitted into a buffer filled with 0xa5 first (a byte `emit` failed to
/// write shows up).
pub(super) fn emit(repr: &Repr) -> Vec<u8> {
    let mut buf = vec![0xa5; repr.buffer_len()];
    repr.emit(&mut Packet::new_unchecked(&mut buf[..]));
    buf
}

/// A packet the service handed to its send closure, emitted to bytes (shared with the WINS
/// client's tests).
#[derive(Debug, Clone)]
pub(super) struct Sent {
    pub(super) to: Destination,
    pub(super) bytes: Vec<u8>,
}

/// A send closure for the service that appends every packet it sends to `sent`.
pub(super) fn record(sent: &mut Vec<Sent>) -> impl FnMut(Destination, &Repr) + '_ {
    |to, repr| {
        sent.push(Sent {
            to,
            bytes: emit(repr),
        })
    }
}

impl Sent {
    #[track_caller]
    pub(super) fn repr(&self) -> Repr<'_> {
        Repr::parse(&Packet::new_unchecked(&self.bytes[..]))
            .expect("the service sent a packet that does not parse")
    }

    pub(super) fn message(&self) -> Message<'_> {
        self.repr().message
    }

    pub(super) fn transaction_id(&self) -> u16 {
        u16::from_be_bytes([self.bytes[0], self.bytes[1]])
    }

    pub(super) fn flags_word(&self) -> u16 {
        u16::from_be_bytes([self.bytes[2], self.bytes[3]])
    }

    /// NB_FLAGS of the last address entry (requests and responses with one entry).
    pub(super) fn nb_flags(&self) -> u16 {
        let n = self.bytes.len();
        u16::from_be_bytes([self.bytes[n - 6], self.bytes[n - 5]])
    }

    #[track_caller]
    pub(super) fn name(&self) -> NbName {
        *self
            .message()
            .name()
            .expect("a packet without a NetBIOS name")
    }
}

struct Harness {
    service: NameService<'static>,
    /// The session figures handed to every receive.
    figures: SessionFigures,
}

impl Harness {
    #[track_caller]
    fn with_config(config: NameServiceConfig, names: &[(Name, bool)]) -> Harness {
        let mut service = NameService::new(config, SEED, vec![None; NAME_EVENTS].leak());
        for &(name, group) in names {
            service.add_name(name, group).unwrap();
        }
        Harness {
            service,
            figures: SessionFigures::default(),
        }
    }

    fn new(names: &[(Name, bool)]) -> Harness {
        Harness::with_config(config(), names)
    }

    /// A service whose names all went through registration unchallenged (events drained).
    #[track_caller]
    fn registered(names: &[(Name, bool)]) -> Harness {
        let mut harness = Harness::new(names);
        harness.register();
        harness
    }

    /// Starts at `T0` and polls at +0, +250, +500 and +750 ms.
    #[track_caller]
    fn register(&mut self) {
        self.service.start(at(0));
        for ms in [0, 250, 500, 750] {
            self.poll(ms);
        }
        assert!(self.service.is_ready());
        self.events();
    }

    fn poll(&mut self, ms: i64) -> Vec<Sent> {
        let mut sent = Vec::new();
        self.service.poll(at(ms), &mut record(&mut sent));
        sent
    }

    fn receive_bytes(
        &mut self,
        bytes: &[u8],
        source: Destination,
        destination: Ipv4Address,
    ) -> Vec<Sent> {
        let mut sent = Vec::new();
        self.service.receive(
            bytes,
            Received {
                source,
                destination,
            },
            &self.figures,
            &mut record(&mut sent),
        );
        sent
    }

    fn receive(&mut self, repr: &Repr, source: Destination, destination: Ipv4Address) -> Vec<Sent> {
        self.receive_bytes(&emit(repr), source, destination)
    }

    /// A name query from a client at port 50000: broadcast to the subnet, or unicast to us.
    fn ask(&mut self, id: u16, name: NbName, broadcast: bool) -> Vec<Sent> {
        let destination = if broadcast {
            SUBNET_BROADCAST
        } else {
            OUR_ADDRESS
        };
        self.receive(&query(id, name, broadcast), peer(50000), destination)
    }

    fn events(&mut self) -> Vec<NameEvent> {
        core::iter::from_fn(|| self.service.take_event()).collect()
    }

    #[track_caller]
    fn state(&self, name: Name) -> NameState {
        self.service
            .names()
            .iter()
            .find(|n| n.name == name)
            .expect("name not in the table")
            .state
    }

    fn counters(&self) -> NameCounters {
        *self.service.counters()
    }
}

// Requests and responses other nodes send.

#[track_caller]
fn query(transaction_id: u16, name: NbName, broadcast: bool) -> Repr<'static> {
    Repr {
        transaction_id,
        flags: Flags::RECURSION_DESIRED.with(Flags::BROADCAST, broadcast),
        message: Message::NameQueryRequest { name },
    }
}

fn node_status(transaction_id: u16, name: NbName) -> Repr<'static> {
    Repr {
        transaction_id,
        flags: Flags::NONE,
        message: Message::NodeStatusRequest { name },
    }
}

#[track_caller]
fn registration(
    transaction_id: u16,
    kind: RegistrationKind,
    name: NbName,
    entry: AddrEntry,
    broadcast: bool,
) -> Repr<'static> {
    Repr {
        transaction_id,
        flags: Flags::NONE.with(Flags::BROADCAST, broadcast),
        message: Message::NameRegistrationRequest {
            kind,
            name,
            ttl: NAME_TTL,
            entry,
        },
    }
}

fn release_request(transaction_id: u16, name: NbName, entry: AddrEntry) -> Repr<'static> {
    Repr {
        transaction_id,
        flags: Flags::BROADCAST,
        message: Message::NameReleaseRequest { name, entry },
    }
}

/// What a defending node answers to our registration.
fn negative_registration_response(transaction_id: u16, name: NbName) -> Repr<'static> {
    Repr {
        transaction_id,
        flags: Flags::RECURSION_DESIRED | Flags::RECURSION_AVAILABLE,
        message: Message::NameRegistrationResponse {
            name,
            rcode: Rcode::Active,
            ttl: 0,
            entry: our_entry(false),
        },
    }
}

fn conflict_demand(transaction_id: u16, name: NbName) -> Repr<'static> {
    Repr {
        transaction_id,
        flags: Flags::RECURSION_DESIRED | Flags::RECURSION_AVAILABLE,
        message: Message::NameConflictDemand {
            name,
            entry: our_entry(false),
        },
    }
}

// Checks of what the service sent.

/// A broadcast registration (`0x2910`) or overwrite demand (`0x2810`) of `name`.
#[track_caller]
fn assert_registration(sent: &Sent, name: Name, group: bool, flags_word: u16) {
    assert_eq!(sent.to, BROADCAST_137, "{sent:?}");
    assert_eq!(sent.flags_word(), flags_word, "{name}");
    // QDCOUNT 1, ANCOUNT 0, NSCOUNT 0, ARCOUNT 1.
    assert_eq!(sent.bytes[4..12], [0, 1, 0, 0, 0, 0, 0, 1]);
    // The additional record ends with NB_FLAGS (G bit, B node) and our address.
    let tail = &sent.bytes[sent.bytes.len() - 6..];
    assert_eq!(tail, [if group { 0x80 } else { 0 }, 0, 192, 168, 69, 1]);
    let kind = if flags_word == 0x2910 {
        RegistrationKind::Registration
    } else {
        RegistrationKind::Overwrite
    };
    assert_eq!(
        sent.message(),
        Message::NameRegistrationRequest {
            kind,
            name: nb(name),
            ttl: NAME_TTL,
            entry: our_entry(group),
        }
    );
}

/// One positive query response for `name` to `to`.
#[track_caller]
fn assert_positive_answer(sent: &[Sent], transaction_id: u16, to: Destination, name: NbName) {
    assert_eq!(sent.len(), 1, "{sent:?}");
    let answer = &sent[0];
    assert_eq!(answer.to, to);
    assert_eq!(answer.transaction_id(), transaction_id);
    assert_eq!(answer.flags_word(), 0x8500);
    let Message::PositiveNameQueryResponse {
        name: answered,
        ttl,
        entries,
    } = answer.message()
    else {
        panic!("not a positive query response: {answer:?}");
    };
    assert_eq!(answered, name);
    assert_eq!(ttl, NAME_TTL);
    assert_eq!(entries.len(), 1);
    let entry = entries.get(0).unwrap();
    assert_eq!(entry.address, OUR_ADDRESS);
    assert_eq!(entry.flags.node_type(), NodeType::B);
}

/// One negative query response (NAM_ERR) for `name` to `to`.
#[track_caller]
fn assert_negative_answer(sent: &[Sent], transaction_id: u16, to: Destination, name: NbName) {
    assert_eq!(sent.len(), 1, "{sent:?}");
    let answer = &sent[0];
    assert_eq!(answer.to, to);
    assert_eq!(answer.transaction_id(), transaction_id);
    assert_eq!(answer.flags_word(), 0x8503);
    assert_eq!(
        answer.message(),
        Message::NegativeNameQueryResponse {
            name,
            rcode: Rcode::NameError,
        }
    );
}

/// Whether a unicast query for `name` gets a positive answer.
#[track_caller]
fn answers(h: &mut Harness, name: Name) -> bool {
    let sent = h.ask(0x0abc, nb(name), false);
    assert_eq!(sent.len(), 1, "a unicast query must be answered either way");
    matches!(sent[0].message(), Message::PositiveNameQueryResponse { .. })
}

/// The names and statistics of one node status response to `to`.
#[track_caller]
fn node_status_answer(
    sent: &[Sent],
    transaction_id: u16,
    to: Destination,
    asked: NbName,
) -> (Vec<NodeName>, Statistics) {
    assert_eq!(sent.len(), 1, "{sent:?}");
    let answer = &sent[0];
    assert_eq!(answer.to, to);
    assert_eq!(answer.transaction_id(), transaction_id);
    assert_eq!(answer.flags_word(), 0x8400);
    assert!(answer.bytes.len() <= crate::wire::MAX_DATAGRAM_LENGTH);
    let Message::NodeStatusResponse {
        name,
        names,
        statistics,
    } = answer.message()
    else {
        panic!("not a node status response: {answer:?}");
    };
    assert_eq!(name, asked);
    (names.iter().collect(), statistics)
}

fn node_name(name: Name, flags: u16) -> NodeName {
    NodeName {
        name,
        flags: NameFlags(flags),
    }
}

// 1. Registration.

#[test]
fn registration_broadcasts_three_times_then_claims_with_an_overwrite() {
    let mut h = Harness::new(&our_names());
    assert_eq!(h.service.poll_at(), None);
    assert!(h.poll(0).is_empty(), "nothing before start");
    h.service.start(at(0));
    assert!(!h.service.is_ready());
    assert_eq!(h.service.poll_at(), Some(at(0)));
    assert!(h.poll(-1).is_empty(), "nothing before the first deadline");

    let first = h.poll(0);
    assert_eq!(first.len(), 3, "one broadcast per name");
    let ids: Vec<u16> = first.iter().map(Sent::transaction_id).collect();
    for (sent, (name, group)) in first.iter().zip(our_names()) {
        assert_registration(sent, name, group, 0x2910);
        assert_eq!(h.state(name), NameState::Registering { sent: 1 });
    }
    assert_eq!(h.service.poll_at(), Some(at(250)));
    assert!(h.poll(249).is_empty());
    assert_eq!(h.service.poll_at(), Some(at(250)));

    for (ms, count) in [(250, 2), (500, 3)] {
        let retry = h.poll(ms);
        assert_eq!(retry.len(), 3, "retry at +{ms} ms");
        for ((sent, (name, group)), id) in retry.iter().zip(our_names()).zip(&ids) {
            assert_registration(sent, name, group, 0x2910);
            assert_eq!(sent.transaction_id(), *id, "same transaction id on retries");
            assert_eq!(h.state(name), NameState::Registering { sent: count });
        }
        assert_eq!(h.service.poll_at(), Some(at(ms + 250)));
        assert!(h.poll(ms + 249).is_empty());
        assert!(!h.service.is_ready());
        assert!(
            h.service
                .names()
                .iter()
                .all(|n| n.state != NameState::Active)
        );
    }
    assert_eq!(h.events(), vec![], "nothing registered before +750 ms");
    // Not ours yet: a unicast query is refused.
    assert!(!answers(&mut h, labsrv()));

    let overwrite = h.poll(750);
    assert_eq!(overwrite.len(), 3);
    for ((sent, (name, group)), id) in overwrite.iter().zip(our_names()).zip(&ids) {
        assert_registration(sent, name, group, 0x2810);
        assert_eq!(sent.transaction_id(), *id);
        assert_eq!(h.state(name), NameState::Active);
    }
    assert!(h.service.is_ready());
    assert!(!h.service.is_released());
    assert_eq!(h.service.poll_at(), None);
    assert_eq!(
        h.events(),
        vec![
            NameEvent::Registered(labsrv()),
            NameEvent::Registered(labsrv_server()),
            NameEvent::Registered(workgroup()),
        ]
    );
    // 12 broadcasts and the refusal of the query above.
    assert_eq!(h.counters().sent, 13);
    // Done: nothing more, ever.
    assert!(h.poll(1_000).is_empty());
    assert!(h.poll(1_000_000).is_empty());
    assert_eq!(h.events(), vec![]);
    for (name, _) in our_names() {
        assert!(h.service.owns(&nb(name)));
    }
}

#[test]
fn names_get_distinct_transaction_ids() {
    let mut h = Harness::new(&our_names());
    h.service.start(at(0));
    let sent = h.poll(0);
    let mut ids: Vec<u16> = sent.iter().map(Sent::transaction_id).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 3);
    // Another seed, other ids.
    let mut other = Harness::with_config(config(), &our_names());
    other.service = NameService::new(config(), SEED ^ 0xffff_0000, vec![None; NAME_EVENTS].leak());
    for (name, group) in our_names() {
        other.service.add_name(name, group).unwrap();
    }
    other.service.start(at(0));
    let other_ids: Vec<u16> = other.poll(0).iter().map(Sent::transaction_id).collect();
    assert_ne!(
        other_ids,
        sent.iter().map(Sent::transaction_id).collect::<Vec<_>>()
    );
}

#[test]
fn late_polls_keep_broadcasts_250_ms_apart() {
    let mut h = Harness::new(&[(labsrv(), false)]);
    h.service.start(at(0));
    assert_eq!(h.poll(0).len(), 1);
    // The caller comes back late: one broadcast, and the next one 250 ms after it.
    assert_eq!(h.poll(400).len(), 1);
    assert_eq!(h.service.poll_at(), Some(at(650)));
    assert!(h.poll(649).is_empty());
    assert_eq!(h.poll(650)[0].flags_word(), 0x2910);
    assert_eq!(h.state(labsrv()), NameState::Registering { sent: 3 });
    assert!(h.poll(899).is_empty());
    assert_eq!(h.poll(900)[0].flags_word(), 0x2810);
    assert_eq!(h.state(labsrv()), NameState::Active);
}

#[test]
fn a_full_table_reports_every_registration() {
    let names: Vec<(Name, bool)> = (0..MAX_NAMES)
        .map(|i| (Name::new("HOST", i as u8).unwrap(), i.is_multiple_of(4)))
        .collect();
    let mut h = Harness::new(&names);
    h.service.start(at(0));
    for ms in [0, 250, 500] {
        assert_eq!(h.poll(ms).len(), MAX_NAMES);
    }
    let overwrites = h.poll(750);
    assert_eq!(overwrites.len(), MAX_NAMES);
    for (sent, &(name, group)) in overwrites.iter().zip(&names) {
        assert_registration(sent, name, group, 0x2810);
    }
    let expected: Vec<NameEvent> = names
        .iter()
        .map(|&(name, _)| NameEvent::Registered(name))
        .collect();
    assert_eq!(h.events(), expected, "no event lost in one poll");
}

// 2. Conflicts during registration.

/// Starts our three names and sends the first broadcasts; returns their transaction ids.
fn start_registration(h: &mut Harness) -> Vec<u16> {
    h.service.start(at(0));
    h.poll(0).iter().map(Sent::transaction_id).collect()
}

/// Polls through +750 ms; returns the overwrite demands' names.
fn finish_registration(h: &mut Harness) -> Vec<Name> {
    let mut overwritten = Vec::new();
    for ms in [250, 500, 750] {
        for sent in h.poll(ms) {
            if sent.flags_word() == 0x2810 {
                overwritten.push(sent.name().name);
            }
        }
    }
    overwritten
}

#[test]
fn negative_registration_response_puts_the_name_in_conflict() {
    let mut h = Harness::new(&our_names());
    let ids = start_registration(&mut h);
    let reply = h.receive(
        &negative_registration_response(ids[0], nb(labsrv())),
        peer(NAME_SERVICE_PORT),
        OUR_ADDRESS,
    );
    assert!(reply.is_empty(), "{reply:?}");
    assert_eq!(h.state(labsrv()), NameState::Conflict);
    assert_eq!(
        h.events(),
        vec![NameEvent::Conflict {
            name: labsrv(),
            by: PEER,
        }]
    );
    assert_eq!(h.counters().conflicts, 1);
    assert_eq!(h.counters().unsolicited_responses_ignored, 0);
    assert!(
        !h.service.is_ready(),
        "the other names are still registering"
    );

    // The retries and the overwrite leave it out; the other names carry on.
    let retry = h.poll(250);
    assert_eq!(retry.len(), 2);
    assert!(retry.iter().all(|s| s.name().name != labsrv()));
    assert_eq!(
        finish_registration(&mut h),
        vec![labsrv_server(), workgroup()]
    );
    assert!(h.service.is_ready());
    assert_eq!(h.state(labsrv()), NameState::Conflict);
    assert_eq!(h.state(labsrv_server()), NameState::Active);
    assert_eq!(h.state(workgroup()), NameState::Active);
    assert_eq!(
        h.events(),
        vec![
            NameEvent::Registered(labsrv_server()),
            NameEvent::Registered(workgroup()),
        ]
    );
    // A name in conflict is not ours.
    assert!(!h.service.owns(&nb(labsrv())));
    assert!(!answers(&mut h, labsrv()));
    assert!(answers(&mut h, labsrv_server()));
    // A second refusal changes nothing more.
    h.receive(
        &negative_registration_response(ids[0], nb(labsrv())),
        peer(NAME_SERVICE_PORT),
        OUR_ADDRESS,
    );
    assert_eq!(h.counters().conflicts, 1);
    assert_eq!(h.counters().unsolicited_responses_ignored, 1);
}

#[test]
fn conflict_demand_answering_our_registration_puts_the_name_in_conflict() {
    let mut h = Harness::new(&our_names());
    let ids = start_registration(&mut h);
    h.poll(250);
    h.poll(500);
    // Late, in the last 250 ms before the overwrite.
    let reply = h.receive(
        &conflict_demand(ids[1], nb(labsrv_server())),
        peer(NAME_SERVICE_PORT),
        SUBNET_BROADCAST,
    );
    assert!(reply.is_empty());
    assert_eq!(h.state(labsrv_server()), NameState::Conflict);
    assert_eq!(
        h.events(),
        vec![NameEvent::Conflict {
            name: labsrv_server(),
            by: PEER,
        }]
    );
    assert_eq!(h.counters().conflicts, 1);
    assert_eq!(h.counters().unsolicited_conflicts_ignored, 0);
    assert_eq!(finish_registration(&mut h), vec![labsrv(), workgroup()]);
    assert_eq!(h.state(labsrv_server()), NameState::Conflict);
    assert_eq!(h.state(labsrv()), NameState::Active);
}

#[test]
fn every_name_in_conflict_leaves_nothing_to_poll() {
    let mut h = Harness::new(&our_names());
    let ids = start_registration(&mut h);
    for ((name, _), id) in our_names().into_iter().zip(ids) {
        h.receive(
            &negative_registration_response(id, nb(name)),
            peer(NAME_SERVICE_PORT),
            OUR_ADDRESS,
        );
    }
    assert!(h.service.is_ready());
    assert_eq!(h.service.poll_at(), None);
    assert!(h.poll(250).is_empty());
    assert!(h.poll(750).is_empty());
    assert_eq!(h.counters().conflicts, 3);
    assert!(
        h.events()
            .iter()
            .all(|e| matches!(e, NameEvent::Conflict { .. }))
    );
}

#[test]
fn refusals_with_another_transaction_id_are_ignored() {
    let mut h = Harness::new(&our_names());
    let ids = start_registration(&mut h);
    let wrong = ids[0].wrapping_add(1);
    assert!(!ids.contains(&wrong));
    assert!(
        h.receive(
            &negative_registration_response(wrong, nb(labsrv())),
            peer(NAME_SERVICE_PORT),
            OUR_ADDRESS,
        )
        .is_empty()
    );
    assert_eq!(h.counters().unsolicited_responses_ignored, 1);
    assert!(
        h.receive(
            &conflict_demand(wrong, nb(labsrv())),
            peer(NAME_SERVICE_PORT),
            OUR_ADDRESS,
        )
        .is_empty()
    );
    assert_eq!(h.counters().unsolicited_conflicts_ignored, 1);
    // The right id for the wrong name (another of ours) is no answer either.
    h.receive(
        &negative_registration_response(ids[0], nb(labsrv_server())),
        peer(NAME_SERVICE_PORT),
        OUR_ADDRESS,
    );
    h.receive(
        &conflict_demand(ids[0], nb(labsrv_server())),
        peer(NAME_SERVICE_PORT),
        OUR_ADDRESS,
    );
    // Nor is the right id and name in another scope.
    let other_scope = NbName::new(labsrv(), Scope::parse_text("OTHER").unwrap());
    h.receive(
        &negative_registration_response(ids[0], other_scope),
        peer(NAME_SERVICE_PORT),
        OUR_ADDRESS,
    );
    assert_eq!(h.counters().unsolicited_responses_ignored, 3);
    assert_eq!(h.counters().unsolicited_conflicts_ignored, 2);
    assert_eq!(h.counters().conflicts, 0);
    assert_eq!(h.events(), vec![]);
    assert_eq!(
        finish_registration(&mut h),
        vec![labsrv(), labsrv_server(), workgroup()]
    );
    assert_eq!(h.state(labsrv()), NameState::Active);
    assert_eq!(h.state(labsrv_server()), NameState::Active);
}

#[test]
fn a_refusal_after_registration_is_ignored() {
    let mut h = Harness::new(&our_names());
    let ids = start_registration(&mut h);
    finish_registration(&mut h);
    h.events();
    h.receive(
        &negative_registration_response(ids[0], nb(labsrv())),
        peer(NAME_SERVICE_PORT),
        OUR_ADDRESS,
    );
    h.receive(
        &conflict_demand(ids[0], nb(labsrv())),
        peer(NAME_SERVICE_PORT),
        OUR_ADDRESS,
    );
    assert_eq!(h.state(labsrv()), NameState::Active);
    assert_eq!(h.counters().conflicts, 0);
    assert_eq!(h.counters().unsolicited_responses_ignored, 1);
    assert_eq!(h.counters().unsolicited_conflicts_ignored, 1);
    assert_eq!(h.events(), vec![]);
    assert!(answers(&mut h, labsrv()));
}

#[test]
fn a_positive_registration_response_is_no_refusal() {
    let mut h = Harness::new(&our_names());
    let ids = start_registration(&mut h);
    let positive = Repr {
        transaction_id: ids[0],
        flags: Flags::RECURSION_DESIRED,
        message: Message::NameRegistrationResponse {
            name: nb(labsrv()),
            rcode: Rcode::NoError,
            ttl: NAME_TTL,
            entry: our_entry(false),
        },
    };
    h.receive(&positive, peer(NAME_SERVICE_PORT), OUR_ADDRESS);
    assert_eq!(h.counters().unsolicited_responses_ignored, 1);
    assert_eq!(h.state(labsrv()), NameState::Registering { sent: 1 });
    finish_registration(&mut h);
    assert_eq!(h.state(labsrv()), NameState::Active);
}

// 3. Queries.

#[test]
fn queries_for_our_names_are_answered_to_their_source() {
    let mut h = Harness::registered(&our_names());
    let cases = [
        // (name, broadcast query, destination, source port)
        (labsrv(), true, SUBNET_BROADCAST, 50000),
        (labsrv(), true, Ipv4Address::BROADCAST, 50001),
        (labsrv_server(), false, OUR_ADDRESS, 50002),
        (workgroup(), true, SUBNET_BROADCAST, NAME_SERVICE_PORT),
        (workgroup(), false, OUR_ADDRESS, 1024),
    ];
    for (i, &(name, broadcast, destination, port)) in cases.iter().enumerate() {
        let id = 0x1000 + i as u16;
        let sent = h.receive(&query(id, nb(name), broadcast), peer(port), destination);
        assert_positive_answer(&sent, id, peer(port), nb(name));
        let Message::PositiveNameQueryResponse { entries, .. } = sent[0].message() else {
            unreachable!()
        };
        assert_eq!(
            entries.get(0),
            Some(our_entry(name == workgroup())),
            "G bit for the group name only"
        );
        // The entry on the wire: NB_FLAGS, then 192.168.69.1.
        let tail = &sent[0].bytes[sent[0].bytes.len() - 6..];
        let g = if name == workgroup() { 0x80 } else { 0 };
        assert_eq!(tail, [g, 0, 192, 168, 69, 1]);
        assert_eq!(h.counters().queries_answered, i as u32 + 1);
    }
    assert_eq!(h.counters().queries_refused, 0);
    assert_eq!(h.events(), vec![]);
}

#[test]
fn unicast_queries_for_unknown_names_are_refused() {
    let mut h = Harness::registered(&our_names());
    let other_scope = NbName::new(labsrv(), Scope::parse_text("OTHER.SCOPE").unwrap());
    for (i, name) in [nb(stranger()), other_scope, nb(Name::WILDCARD)]
        .into_iter()
        .enumerate()
    {
        let id = 0x2000 + i as u16;
        let sent = h.ask(id, name, false);
        assert_negative_answer(&sent, id, peer(50000), name);
    }
    assert_eq!(h.counters().queries_refused, 3);
    assert_eq!(h.counters().queries_answered, 0);
}

#[test]
fn broadcast_queries_for_unknown_names_get_silence() {
    let mut h = Harness::registered(&our_names());
    let other_scope = NbName::new(labsrv(), Scope::parse_text("OTHER.SCOPE").unwrap());
    for destination in [SUBNET_BROADCAST, Ipv4Address::BROADCAST] {
        for name in [nb(stranger()), other_scope] {
            let sent = h.receive(&query(0x2100, name, true), peer(50000), destination);
            assert!(sent.is_empty(), "{name} to {destination}: {sent:?}");
        }
    }
    assert_eq!(h.counters().queries_refused, 0);
    assert_eq!(h.counters().sent, 12, "only the registration broadcasts");
}

#[test]
fn names_still_registering_are_not_answered() {
    let mut h = Harness::new(&our_names());
    start_registration(&mut h);
    h.poll(250);
    h.poll(500);
    let sent = h.ask(0x2200, nb(labsrv()), true);
    assert!(sent.is_empty());
    let sent = h.ask(0x2201, nb(labsrv()), false);
    assert_negative_answer(&sent, 0x2201, peer(50000), nb(labsrv()));
    assert!(!h.service.owns(&nb(labsrv())));
    h.poll(750);
    let sent = h.ask(0x2202, nb(labsrv()), true);
    assert_positive_answer(&sent, 0x2202, peer(50000), nb(labsrv()));
}

#[test]
fn names_in_conflict_are_not_answered() {
    let mut h = Harness::new(&our_names());
    let ids = start_registration(&mut h);
    h.receive(
        &conflict_demand(ids[2], nb(workgroup())),
        peer(NAME_SERVICE_PORT),
        OUR_ADDRESS,
    );
    finish_registration(&mut h);
    assert_eq!(h.state(workgroup()), NameState::Conflict);
    let sent = h.ask(0x2300, nb(workgroup()), true);
    assert!(sent.is_empty());
    let sent = h.ask(0x2301, nb(workgroup()), false);
    assert_negative_answer(&sent, 0x2301, peer(50000), nb(workgroup()));
}

#[test]
fn a_scoped_node_lives_in_its_scope_only() {
    let scope = Scope::parse_text("NETBIOS.COM").unwrap();
    let mut h = Harness::with_config(
        NameServiceConfig { scope, ..config() },
        &[(labsrv(), false)],
    );
    h.service.start(at(0));
    let sent = h.poll(0);
    assert_eq!(sent[0].name(), NbName::new(labsrv(), scope));
    for ms in [250, 500, 750] {
        h.poll(ms);
    }
    assert_eq!(h.state(labsrv()), NameState::Active);

    // The same scope spelled in lower case on the wire is our scope.
    let mut bytes = emit(&query(0x2400, NbName::new(labsrv(), scope), false));
    let scope_end = bytes.len() - 5;
    bytes[12 + 34..scope_end].make_ascii_lowercase();
    let (lower, _) = NbName::parse(&bytes, 12, crate::wire::name::Pointers::Forbidden)
        .expect("the patched query still holds a name");
    assert_ne!(lower.scope, scope);
    let answer = h.receive_bytes(&bytes, peer(50000), OUR_ADDRESS);
    assert_positive_answer(&answer, 0x2400, peer(50000), lower);

    // Without the scope, the name is not ours.
    let sent = h.ask(0x2401, nb(labsrv()), false);
    assert_negative_answer(&sent, 0x2401, peer(50000), nb(labsrv()));
    assert!(
        h.receive(
            &node_status(0x2402, nb(Name::WILDCARD)),
            peer(50000),
            OUR_ADDRESS
        )
        .is_empty()
    );
    let star = NbName::new(Name::WILDCARD, scope);
    let sent = h.receive(&node_status(0x2403, star), peer(50000), OUR_ADDRESS);
    let (names, _) = node_status_answer(&sent, 0x2403, peer(50000), star);
    assert_eq!(names, vec![node_name(labsrv(), 0x0400)]);
}

#[test]
fn states_events_and_errors_display_for_logs() {
    let states = [
        (NameState::Registering { sent: 1 }, "Registering"),
        (NameState::Active, "Registered"),
        (NameState::Conflict, "Conflict"),
        (NameState::Releasing { sent: 2 }, "Releasing"),
        (NameState::Released, "Released"),
    ];
    for (state, word) in states {
        assert_eq!(state.to_string(), word);
    }
    let events = [
        (NameEvent::Registered(labsrv()), "registered LABSRV<00>"),
        (
            NameEvent::Conflict {
                name: labsrv(),
                by: PEER,
            },
            "name LABSRV<00> is owned by 192.168.69.100: in conflict, not answered",
        ),
        (
            NameEvent::Defended {
                name: labsrv(),
                by: PEER,
            },
            "defended LABSRV<00> against registration by 192.168.69.100",
        ),
        (NameEvent::Released, "all names released"),
    ];
    for (event, line) in events {
        assert_eq!(event.to_string(), line);
    }
    assert_eq!(
        AddNameError::Duplicate.to_string(),
        "the name is in the table already"
    );
    assert_eq!(
        AddNameError::TableFull.to_string(),
        "the name table is full (16 names)"
    );
}

// 4. Node status.

fn some_statistics() -> Statistics {
    Statistics {
        unit_id: [0xee; 6], // replaced by the MAC (or zeros)
        jumpers: 1,
        test_result: 2,
        version_number: 0x0300,
        period_of_statistics: 60,
        number_good_sends: 100_000,
        number_good_receives: 200_000,
        number_retransmits: 4,
        number_no_resource_conditions: 3,
        number_free_command_blocks: 6,
        total_number_command_blocks: 10,
        max_total_number_command_blocks: 10,
        number_pending_sessions: 1,
        max_number_pending_sessions: 10,
        max_total_sessions_possible: 8,
        session_data_packet_size: 0xffff,
        ..Statistics::default()
    }
}

/// The session figures [`some_statistics`] reports.
fn some_figures() -> SessionFigures {
    SessionFigures {
        no_resource_conditions: 3,
        free_slots: 6,
        total_slots: 10,
        pending_sessions: 1,
        max_sessions: 8,
        packet_size: 0xffff,
    }
}

/// Our three names and `STRANGER<00>`, which another node refused us.
#[track_caller]
fn with_a_conflict() -> Harness {
    let mut names = our_names().to_vec();
    names.push((stranger(), false));
    let mut h = Harness::new(&names);
    let ids = start_registration(&mut h);
    h.receive(
        &negative_registration_response(ids[3], nb(stranger())),
        peer(NAME_SERVICE_PORT),
        OUR_ADDRESS,
    );
    finish_registration(&mut h);
    h.events();
    h
}

#[test]
fn node_status_lists_every_name_with_its_flags_and_the_statistics() {
    let mut h = with_a_conflict();
    h.service.statistics = some_statistics();
    h.figures = some_figures();
    let expected = vec![
        node_name(labsrv(), 0x0400),
        node_name(labsrv_server(), 0x0400),
        node_name(workgroup(), 0x8400),
        node_name(stranger(), 0x0c00),
    ];
    let asks = [
        (nb(Name::WILDCARD), OUR_ADDRESS, 50000),
        (nb(Name::WILDCARD), SUBNET_BROADCAST, NAME_SERVICE_PORT),
        (nb(labsrv()), OUR_ADDRESS, 50001),
        (nb(workgroup()), OUR_ADDRESS, 50002),
    ];
    for (i, &(asked, destination, port)) in asks.iter().enumerate() {
        let id = 0x3000 + i as u16;
        let sent = h.receive(&node_status(id, asked), peer(port), destination);
        let (names, statistics) = node_status_answer(&sent, id, peer(port), asked);
        assert_eq!(names, expected);
        assert_eq!(
            statistics,
            Statistics {
                unit_id: MAC,
                ..some_statistics()
            }
        );
        // UNIT_ID on the wire: the first 6 bytes of the statistics block.
        let stats_at = sent[0].bytes.len() - nbns::STATISTICS_LEN;
        assert_eq!(sent[0].bytes[stats_at..stats_at + 6], MAC);
        assert_eq!(h.counters().node_status_answered, i as u32 + 1);
    }
    // The node's figures change, the next answer carries them.
    h.figures.pending_sessions = 7;
    let sent = h.receive(
        &node_status(1, nb(Name::WILDCARD)),
        peer(50000),
        OUR_ADDRESS,
    );
    let (_, statistics) = node_status_answer(&sent, 1, peer(50000), nb(Name::WILDCARD));
    assert_eq!(statistics.number_pending_sessions, 7);
}

#[test]
fn node_status_leaves_out_names_still_registering() {
    let mut h = Harness::new(&our_names());
    start_registration(&mut h);
    h.poll(250);
    let asked = nb(Name::WILDCARD);
    let sent = h.receive(&node_status(0x3100, asked), peer(50000), OUR_ADDRESS);
    let (names, _) = node_status_answer(&sent, 0x3100, peer(50000), asked);
    assert_eq!(names, vec![], "nothing is ours yet");
    finish_registration(&mut h);
    let sent = h.receive(&node_status(0x3101, asked), peer(50000), OUR_ADDRESS);
    let (names, _) = node_status_answer(&sent, 0x3101, peer(50000), asked);
    assert_eq!(names.len(), our_names().len());
}

#[test]
fn node_status_hides_the_mac_when_asked() {
    let mut h = Harness::with_config(
        NameServiceConfig {
            hide_mac: true,
            ..config()
        },
        &our_names(),
    );
    h.register();
    h.service.statistics = some_statistics();
    h.figures = some_figures();
    let sent = h.receive(
        &node_status(7, nb(Name::WILDCARD)),
        peer(50000),
        OUR_ADDRESS,
    );
    let (names, statistics) = node_status_answer(&sent, 7, peer(50000), nb(Name::WILDCARD));
    assert_eq!(names.len(), 3);
    assert_eq!(statistics.unit_id, [0; 6]);
    assert_eq!(
        statistics,
        Statistics {
            unit_id: [0; 6],
            ..some_statistics()
        }
    );
}

#[test]
fn node_status_for_names_not_ours_gets_silence() {
    let mut h = with_a_conflict();
    let other_scope = NbName::new(Name::WILDCARD, Scope::parse_text("OTHER").unwrap());
    for asked in [
        nb(Name::new("NOBODY", 0).unwrap()),
        nb(stranger()),
        other_scope,
    ] {
        for destination in [OUR_ADDRESS, SUBNET_BROADCAST] {
            let sent = h.receive(&node_status(9, asked), peer(50000), destination);
            assert!(sent.is_empty(), "{asked}: {sent:?}");
        }
    }
    assert_eq!(h.counters().node_status_answered, 0);
}

#[test]
fn node_status_of_a_full_table_fits_576_bytes() {
    let names: Vec<(Name, bool)> = (0..MAX_NAMES)
        .map(|i| (Name::new("HOST", i as u8).unwrap(), !i.is_multiple_of(2)))
        .collect();
    let mut h = Harness::registered(&names);
    let sent = h.receive(
        &node_status(3, nb(Name::WILDCARD)),
        peer(50000),
        OUR_ADDRESS,
    );
    let (listed, _) = node_status_answer(&sent, 3, peer(50000), nb(Name::WILDCARD));
    assert!(sent[0].bytes.len() <= 576);
    assert!(!sent[0].repr().flags.contains(Flags::TRUNCATED));
    let expected: Vec<NodeName> = names
        .iter()
        .map(|&(name, group)| node_name(name, if group { 0x8400 } else { 0x0400 }))
        .collect();
    assert_eq!(listed, expected);
}

// 5. Defence.

#[test]
fn registrations_of_our_unique_name_are_refused() {
    let mut h = Harness::registered(&our_names());
    let cases = [
        // (kind, group entry, broadcast, destination, source port)
        (
            RegistrationKind::Registration,
            false,
            true,
            SUBNET_BROADCAST,
            137,
        ),
        (
            RegistrationKind::Registration,
            false,
            false,
            OUR_ADDRESS,
            50000,
        ),
        (
            RegistrationKind::Overwrite,
            false,
            true,
            SUBNET_BROADCAST,
            50001,
        ),
        (RegistrationKind::MultiHomed, false, false, OUR_ADDRESS, 137),
        (
            RegistrationKind::Registration,
            true,
            true,
            SUBNET_BROADCAST,
            50002,
        ),
    ];
    for (i, &(kind, group, broadcast, destination, port)) in cases.iter().enumerate() {
        let id = 0x4000 + i as u16;
        let name = if i % 2 == 0 {
            labsrv()
        } else {
            labsrv_server()
        };
        let request = registration(id, kind, nb(name), peer_entry(group), broadcast);
        let sent = h.receive(&request, peer(port), destination);
        assert_eq!(sent.len(), 1, "{kind:?}: {sent:?}");
        let refusal = &sent[0];
        assert_eq!(refusal.to, peer(port), "{kind:?}");
        assert_eq!(refusal.transaction_id(), id);
        assert_eq!(refusal.flags_word(), 0xad86, "{kind:?}");
        let Message::NameRegistrationResponse {
            name: refused,
            rcode,
            ttl,
            ..
        } = refusal.message()
        else {
            panic!("not a registration response: {refusal:?}");
        };
        assert_eq!((refused, rcode, ttl), (nb(name), Rcode::Active, 0));
        assert_eq!(h.events(), vec![NameEvent::Defended { name, by: PEER }]);
        assert_eq!(h.counters().defences, i as u32 + 1);
        assert_eq!(h.state(name), NameState::Active);
    }
    assert!(answers(&mut h, labsrv()));
    assert!(answers(&mut h, labsrv_server()));
}

#[test]
fn events_the_owner_does_not_take_are_dropped_and_counted() {
    let mut h = Harness::registered(&our_names());
    let extra = 5;
    for i in 0..(NAME_EVENTS + extra) as u16 {
        let request = registration(
            0x4200 + i,
            RegistrationKind::Registration,
            nb(labsrv()),
            peer_entry(false),
            true,
        );
        h.receive(&request, peer(NAME_SERVICE_PORT), SUBNET_BROADCAST);
    }
    assert_eq!(h.counters().defences, (NAME_EVENTS + extra) as u32);
    assert_eq!(h.counters().events_lost, extra as u32);
    let events = h.events();
    assert_eq!(events.len(), NAME_EVENTS);
    assert!(events.iter().all(|e| *e
        == NameEvent::Defended {
            name: labsrv(),
            by: PEER
        }));
}

#[test]
fn the_event_queue_is_as_deep_as_the_storage_given() {
    // Two slots for three registrations: the newest two are kept, the first is counted lost.
    let mut slots = [None; 2];
    let mut service = NameService::new(config(), SEED, &mut slots);
    for (name, group) in our_names() {
        service.add_name(name, group).unwrap();
    }
    service.start(at(0));
    for ms in [0, 250, 500, 750] {
        service.poll(at(ms), &mut |_, _| {});
    }
    assert!(service.is_ready());
    assert_eq!(service.counters().events_lost, 1);
    assert_eq!(
        service.take_event(),
        Some(NameEvent::Registered(labsrv_server()))
    );
    assert_eq!(
        service.take_event(),
        Some(NameEvent::Registered(workgroup()))
    );
    assert_eq!(service.take_event(), None);
}

#[test]
fn group_and_unknown_names_are_not_defended() {
    let mut h = with_a_conflict();
    let requests = [
        // Our group name, as a member and as a unique name.
        (workgroup(), true, RegistrationKind::Registration),
        (workgroup(), false, RegistrationKind::Registration),
        (workgroup(), false, RegistrationKind::Overwrite),
        // Names we do not own, or lost.
        (
            Name::new("NOBODY", 0).unwrap(),
            false,
            RegistrationKind::Registration,
        ),
        (stranger(), false, RegistrationKind::Registration),
    ];
    for (name, group, kind) in requests {
        for destination in [SUBNET_BROADCAST, OUR_ADDRESS] {
            let request = registration(0x4100, kind, nb(name), peer_entry(group), true);
            let sent = h.receive(&request, peer(NAME_SERVICE_PORT), destination);
            assert!(sent.is_empty(), "{name} {kind:?}: {sent:?}");
        }
    }
    // Our unique name in another scope is another name.
    let other_scope = NbName::new(labsrv(), Scope::parse_text("OTHER").unwrap());
    let request = registration(
        0x4101,
        RegistrationKind::Registration,
        other_scope,
        peer_entry(false),
        true,
    );
    assert!(h.receive(&request, peer(137), SUBNET_BROADCAST).is_empty());
    assert_eq!(h.counters().defences, 0);
    assert_eq!(h.events(), vec![]);
    assert_eq!(h.state(workgroup()), NameState::Active);
}

// 6. Attacks.

#[test]
fn releases_of_our_names_by_others_are_ignored() {
    let mut h = Harness::registered(&our_names());
    for (i, (name, group)) in our_names().into_iter().enumerate() {
        let release = release_request(0x5000, nb(name), peer_entry(group));
        assert!(h.receive(&release, peer(137), SUBNET_BROADCAST).is_empty());
        // Even one naming our address as the owner.
        let release = release_request(0x5001, nb(name), our_entry(group));
        assert!(h.receive(&release, peer(137), OUR_ADDRESS).is_empty());
        assert_eq!(h.counters().foreign_releases_ignored, 2 * (i as u32 + 1));
        assert_eq!(h.state(name), NameState::Active);
        assert!(answers(&mut h, name));
    }
    // Releases of other nodes' names are none of our business and not counted.
    let release = release_request(0x5002, nb(stranger()), peer_entry(false));
    assert!(h.receive(&release, peer(137), SUBNET_BROADCAST).is_empty());
    assert_eq!(h.counters().foreign_releases_ignored, 6);
    assert_eq!(h.events(), vec![]);
}

#[test]
fn unsolicited_conflict_demands_are_ignored() {
    let mut h = Harness::registered(&our_names());
    for (i, destination) in [OUR_ADDRESS, SUBNET_BROADCAST].into_iter().enumerate() {
        let sent = h.receive(
            &conflict_demand(0x6000 + i as u16, nb(labsrv())),
            peer(NAME_SERVICE_PORT),
            destination,
        );
        assert!(sent.is_empty());
    }
    assert_eq!(h.counters().unsolicited_conflicts_ignored, 2);
    assert_eq!(h.counters().conflicts, 0);
    assert_eq!(h.state(labsrv()), NameState::Active);
    assert!(h.service.owns(&nb(labsrv())));
    assert!(answers(&mut h, labsrv()));
    assert_eq!(h.events(), vec![]);
}

#[test]
fn unsolicited_responses_are_ignored() {
    let mut h = Harness::registered(&our_names());
    let entries = [peer_entry(false)];
    let responses = [
        Message::PositiveNameQueryResponse {
            name: nb(labsrv()),
            ttl: NAME_TTL,
            entries: AddrEntries::new(&entries),
        },
        Message::NegativeNameQueryResponse {
            name: nb(labsrv()),
            rcode: Rcode::NameError,
        },
        Message::NameRegistrationResponse {
            name: nb(labsrv()),
            rcode: Rcode::NoError,
            ttl: NAME_TTL,
            entry: peer_entry(false),
        },
        Message::EndNodeChallengeResponse {
            name: nb(labsrv()),
            ttl: NAME_TTL,
            entry: peer_entry(false),
        },
        Message::NameReleaseResponse {
            name: nb(labsrv()),
            rcode: Rcode::NoError,
            entry: peer_entry(false),
        },
        Message::WaitForAcknowledgement {
            name: nb(labsrv()),
            ttl: 2,
            request_flags: 0x2910,
        },
    ];
    for (i, message) in responses.into_iter().enumerate() {
        let response = Repr {
            transaction_id: 0x7000 + i as u16,
            flags: Flags::NONE,
            message,
        };
        assert!(h.receive(&response, peer(137), OUR_ADDRESS).is_empty());
        assert_eq!(h.counters().unsolicited_responses_ignored, i as u32 + 1);
    }
    assert_eq!(h.state(labsrv()), NameState::Active);
    assert!(answers(&mut h, labsrv()));
    assert_eq!(h.events(), vec![]);
}

// 7. Malformed packets and our own packets.

#[test]
fn malformed_packets_are_counted_and_dropped() {
    let mut h = Harness::registered(&our_names());
    let good_query = emit(&query(0x8000, nb(labsrv()), false));
    let good_registration = emit(&registration(
        0x8001,
        RegistrationKind::Registration,
        nb(labsrv()),
        peer_entry(false),
        true,
    ));
    let mut reserved_bit = good_query.clone();
    reserved_bit[3] |= 0x20;
    let mut bad_label = good_query.clone();
    bad_label[13] = b'z';
    let garbage: Vec<Vec<u8>> = vec![
        vec![],
        vec![0; 5],
        vec![0; 11],
        good_query[..20].to_vec(),
        good_query[..good_query.len() - 1].to_vec(),
        good_registration[..good_registration.len() - 1].to_vec(),
        good_registration[..50].to_vec(),
        vec![0xff; 60],
        reserved_bit,
        bad_label,
    ];
    let before = h.counters();
    for (i, bytes) in garbage.iter().enumerate() {
        for destination in [OUR_ADDRESS, SUBNET_BROADCAST] {
            let sent = h.receive_bytes(bytes, peer(50000), destination);
            assert!(sent.is_empty(), "garbage {i}: {sent:?}");
        }
    }
    let after = h.counters();
    let n = 2 * garbage.len() as u32;
    assert_eq!(after.malformed, before.malformed.get() + n);
    assert_eq!(after.received, before.received.get() + n);
    assert_eq!(after.sent, before.sent);
    assert_eq!(after.defences, 0);
    assert_eq!(h.events(), vec![]);
    // Datagrams the node drops unread for their size count the same way.
    h.service.count_oversized();
    assert_eq!(h.counters().malformed, after.malformed.get() + 1);
    assert_eq!(h.counters().received, after.received.get() + 1);
    // The good packets still work.
    let sent = h.receive_bytes(&good_query, peer(50000), OUR_ADDRESS);
    assert_positive_answer(&sent, 0x8000, peer(50000), nb(labsrv()));
}

#[test]
fn no_packet_from_another_node_takes_an_active_name() {
    let mut h = Harness::registered(&our_names());
    let seeds = [
        emit(&query(1, nb(labsrv()), true)),
        emit(&node_status(2, nb(Name::WILDCARD))),
        emit(&conflict_demand(3, nb(labsrv()))),
        emit(&negative_registration_response(4, nb(labsrv_server()))),
        emit(&release_request(5, nb(labsrv()), our_entry(false))),
        emit(&registration(
            6,
            RegistrationKind::Overwrite,
            nb(labsrv()),
            peer_entry(false),
            true,
        )),
    ];
    let mut rng = TransactionIds(0x9e37_79b9_7f4a_7c15);
    let mut packets = 0u32;
    for seed in &seeds {
        for at in 0..seed.len() {
            for _ in 0..8 {
                let mut bytes = seed.clone();
                bytes[at] = rng.next() as u8;
                // Some cut short too.
                let keep = bytes.len() - usize::from(rng.next().is_multiple_of(4));
                h.receive_bytes(&bytes[..keep], peer(137), SUBNET_BROADCAST);
                packets += 1;
            }
        }
    }
    assert_eq!(h.counters().received, packets);
    assert!(h.counters().malformed > 0);
    for (name, _) in our_names() {
        assert_eq!(h.state(name), NameState::Active, "{name}");
    }
    assert_eq!(h.counters().conflicts, 0);
}

#[test]
fn our_own_packets_are_ignored() {
    let mut h = Harness::new(&our_names());
    let ids = start_registration(&mut h);
    let us = Destination {
        address: OUR_ADDRESS,
        port: NAME_SERVICE_PORT,
    };
    // Our own registration broadcast, looped back.
    let looped = h.poll(250);
    for sent in &looped {
        assert!(
            h.receive_bytes(&sent.bytes, us, SUBNET_BROADCAST)
                .is_empty()
        );
    }
    // A refusal claiming to come from us.
    h.receive(
        &negative_registration_response(ids[0], nb(labsrv())),
        us,
        OUR_ADDRESS,
    );
    h.receive(
        &conflict_demand(ids[1], nb(labsrv_server())),
        us,
        OUR_ADDRESS,
    );
    assert_eq!(h.state(labsrv()), NameState::Registering { sent: 2 });
    assert_eq!(h.state(labsrv_server()), NameState::Registering { sent: 2 });
    finish_registration(&mut h);
    h.events();
    // Queries, node status, registrations from our own address: silence.
    let from_us = [
        emit(&query(1, nb(labsrv()), false)),
        emit(&query(2, nb(stranger()), false)),
        emit(&node_status(3, nb(Name::WILDCARD))),
        emit(&registration(
            4,
            RegistrationKind::Registration,
            nb(labsrv()),
            peer_entry(false),
            true,
        )),
        vec![0xff; 3],
    ];
    for bytes in &from_us {
        assert!(h.receive_bytes(bytes, us, OUR_ADDRESS).is_empty());
    }
    let counters = h.counters();
    assert_eq!(counters.received, 3 + 2 + from_us.len() as u32);
    assert_eq!(counters.malformed, 0);
    assert_eq!(counters.conflicts, 0);
    assert_eq!(counters.defences, 0);
    assert_eq!(counters.unsolicited_responses_ignored, 0);
    assert_eq!(counters.unsolicited_conflicts_ignored, 0);
    assert_eq!(h.events(), vec![]);
    assert_eq!(h.state(labsrv()), NameState::Active);
}

// 8. Release.

#[test]
fn release_broadcasts_three_times_and_reports_once() {
    let mut h = Harness::registered(&our_names());
    assert!(!h.service.is_released());
    let sent_before = h.counters().sent;
    h.service.release(at(5_000));
    assert!(!h.service.is_released());
    assert_eq!(h.service.poll_at(), Some(at(5_000)));
    let mut ids: Vec<u16> = Vec::new();
    for (count, ms) in [(1u8, 5_000), (2, 5_250), (3, 5_500)] {
        assert!(h.poll(ms - 1).is_empty(), "nothing before +{ms} ms");
        let sent = h.poll(ms);
        assert_eq!(sent.len(), 3, "release broadcast {count}");
        for (i, (s, (name, group))) in sent.iter().zip(our_names()).enumerate() {
            assert_eq!(s.to, BROADCAST_137);
            assert_eq!(s.flags_word(), 0x3010);
            assert_eq!(
                s.message(),
                Message::NameReleaseRequest {
                    name: nb(name),
                    entry: our_entry(group),
                }
            );
            if count == 1 {
                ids.push(s.transaction_id());
            } else {
                assert_eq!(s.transaction_id(), ids[i], "same id on every broadcast");
            }
            assert_eq!(h.state(name), NameState::Releasing { sent: count });
        }
        assert_eq!(h.service.poll_at(), Some(at(ms + 250)));
        assert!(!h.service.is_released());
        assert_eq!(h.events(), vec![]);
        // Releasing names are no longer ours to answer for.
        assert!(!answers(&mut h, labsrv()));
    }
    assert!(h.poll(5_749).is_empty());
    assert!(!h.service.is_released());
    assert!(h.poll(5_750).is_empty(), "no fourth broadcast");
    assert!(h.service.is_released());
    assert_eq!(h.events(), vec![NameEvent::Released]);
    assert_eq!(h.service.poll_at(), None);
    for (name, _) in our_names() {
        assert_eq!(h.state(name), NameState::Released);
    }
    assert!(h.poll(6_000).is_empty());
    assert!(h.poll(60_000).is_empty());
    assert_eq!(h.events(), vec![], "Released is reported once");
    // 9 release broadcasts and 3 refused queries.
    assert_eq!(h.counters().sent, sent_before.get() + 9 + 3);
    // Nothing is listed any more.
    let sent = h.receive(
        &node_status(1, nb(Name::WILDCARD)),
        peer(50000),
        OUR_ADDRESS,
    );
    let (names, _) = node_status_answer(&sent, 1, peer(50000), nb(Name::WILDCARD));
    assert_eq!(names, vec![]);
    assert!(h.ask(2, nb(labsrv()), true).is_empty());
}

#[test]
fn release_skips_names_in_conflict_and_shows_drg_meanwhile() {
    let mut h = with_a_conflict();
    h.service.release(at(5_000));
    assert_eq!(h.state(stranger()), NameState::Released);
    let mut released = Vec::new();
    for ms in [5_000, 5_250, 5_500] {
        let sent = h.poll(ms);
        assert!(sent.iter().all(|s| s.flags_word() == 0x3010));
        released.extend(sent.iter().map(|s| s.name().name));
        let status = h.receive(
            &node_status(1, nb(Name::WILDCARD)),
            peer(50000),
            OUR_ADDRESS,
        );
        let (names, _) = node_status_answer(&status, 1, peer(50000), nb(Name::WILDCARD));
        assert_eq!(
            names,
            vec![
                node_name(labsrv(), 0x1400),
                node_name(labsrv_server(), 0x1400),
                node_name(workgroup(), 0x9400),
            ]
        );
    }
    assert!(!released.contains(&stranger()));
    assert_eq!(released.len(), 9);
    assert!(!h.service.is_released());
    h.poll(5_750);
    assert!(h.service.is_released());
    assert_eq!(h.events(), vec![NameEvent::Released]);
}

#[test]
fn release_during_registration_stops_it() {
    let mut h = Harness::new(&our_names());
    start_registration(&mut h);
    h.poll(250);
    h.service.release(at(300));
    assert!(h.service.is_ready(), "nothing is registering any more");
    assert!(h.service.is_released(), "nothing was ours to release");
    for ms in [300, 550, 800, 1_050, 2_000] {
        assert!(
            h.poll(ms).is_empty(),
            "no release and no overwrite for a name never ours ({ms} ms)"
        );
    }
    assert_eq!(
        h.events(),
        vec![NameEvent::Released],
        "nothing was registered"
    );
}

#[test]
fn a_second_release_request_does_not_restart_the_broadcasts() {
    let mut h = Harness::registered(&our_names());
    h.service.release(at(5_000));
    assert_eq!(h.poll(5_000).len(), 3);
    assert_eq!(h.poll(5_250).len(), 3);
    h.service.release(at(5_300));
    assert_eq!(h.service.poll_at(), Some(at(5_500)));
    assert_eq!(h.poll(5_500).len(), 3);
    h.poll(5_750);
    assert!(h.service.is_released());
    h.service.release(at(6_000));
    assert!(h.poll(6_000).is_empty());
    assert_eq!(h.events(), vec![NameEvent::Released]);
}

#[test]
fn releasing_an_empty_table_is_immediate() {
    let mut h = Harness::new(&[]);
    h.service.start(at(0));
    assert!(h.service.is_ready());
    assert!(!h.service.is_released());
    h.service.release(at(0));
    assert!(h.service.is_released());
    assert!(h.poll(0).is_empty());
    assert_eq!(h.events(), vec![NameEvent::Released]);
}

// 9. The table.

#[test]
fn add_name_refuses_duplicates_and_a_full_table() {
    let mut service = NameService::new(config(), SEED, vec![None; NAME_EVENTS].leak());
    service.add_name(labsrv(), false).unwrap();
    assert_eq!(
        service.add_name(labsrv(), false),
        Err(AddNameError::Duplicate)
    );
    assert_eq!(
        service.add_name(labsrv(), true),
        Err(AddNameError::Duplicate)
    );
    // Another suffix is another name.
    service.add_name(labsrv_server(), false).unwrap();
    for i in 2..MAX_NAMES {
        service
            .add_name(Name::new("FILL", i as u8).unwrap(), false)
            .unwrap();
    }
    assert_eq!(service.names().len(), MAX_NAMES);
    assert_eq!(
        service.add_name(stranger(), false),
        Err(AddNameError::TableFull)
    );
    assert_eq!(
        service.add_name(labsrv(), false),
        Err(AddNameError::Duplicate)
    );
    assert_eq!(service.names().len(), MAX_NAMES);
    assert_eq!(service.names()[0].name, labsrv());
    assert!(!service.names()[0].group);
    assert!(service.names().iter().all(|n| n.name != stranger()));
}
