//! The WINS client over the wire, in process: our node (P-, M- or H-node) and a scripted NBNS
//! server ([`support::nbns_server::ScriptedNbns`]) on the in-memory hub, with a deterministic
//! clock. Every assertion is about datagrams that crossed the hub.

mod support;

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use netbt::name_service::{AnsweredBy, NameState, Resolution, WinsConfig, WinsPhase};
use netbt::wire::NAME_SERVICE_PORT;
use netbt::wire::name::{Name, NbName};
use netbt::wire::nbns::{AddrEntries, AddrEntry, Flags, Message, NbFlags, NodeType, Rcode, Repr};
use smoltcp::wire::Ipv4Address;
use support::nbns_server::{ScriptedNbns, emit, samba_answer, wack};
use support::*;

const WINS_IP: Ipv4Address = Ipv4Address::new(192, 168, 69, 50);
const WINS_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x50];
const OWNER_IP: Ipv4Address = Ipv4Address::new(192, 168, 69, 77);

fn name(text: &str) -> Name {
    Name::parse_text(text, 0x20).unwrap()
}

/// A node of `node_type` with WINS at [`WINS_IP`], owning LABSRV<20> and group LABGRP<20>.
fn node(hub: &Hub, node_type: NodeType) -> TestNode {
    let mut node = TestNode::new(hub, NODE_MAC, NODE_IP);
    node.node
        .names
        .configure_wins(WinsConfig::new(node_type, &[WINS_IP]).unwrap());
    node.node.names.add_name(name("LABSRV"), false).unwrap();
    node.node.names.add_name(name("LABGRP"), true).unwrap();
    node
}

/// A server that grants everything for `ttl` seconds while `up` is true, silent otherwise.
fn samba(hub: &Hub, ttl: u32, up: Rc<Cell<bool>>) -> ScriptedNbns {
    ScriptedNbns::new(
        hub,
        WINS_MAC,
        WINS_IP,
        Box::new(move |request| {
            if !up.get() {
                return vec![];
            }
            samba_answer(request, Rcode::NoError, ttl)
                .into_iter()
                .collect()
        }),
    )
}

/// Datagrams our node sent: (ms, destination, flags word).
fn sent_by_node(hub: &Hub) -> Vec<(i64, Ipv4Address, u16)> {
    hub.seen()
        .iter()
        .filter(|s| s.source == NODE_IP)
        .filter_map(|s| {
            let payload = s.udp(Some(NAME_SERVICE_PORT), None)?;
            Some((
                s.at.total_millis(),
                s.destination,
                u16::from_be_bytes([payload[2], payload[3]]),
            ))
        })
        .collect()
}

fn phase(node: &TestNode, text: &str) -> WinsPhase {
    let i = node
        .node
        .names
        .names()
        .iter()
        .position(|n| n.name == name(text))
        .unwrap();
    node.node.names.wins_names()[i].phase()
}

fn challenge(text: &str) -> Vec<u8> {
    emit(&Repr {
        transaction_id: 0x4242,
        flags: Flags::NONE,
        message: Message::NameQueryRequest {
            name: NbName::unscoped(name(text)),
        },
    })
}

#[test]
fn an_h_node_registers_refreshes_answers_the_challenge_and_releases_with_the_server() {
    let hub = Hub::new();
    let mut node = node(&hub, NodeType::H);
    let mut wins = samba(&hub, 60, Rc::new(Cell::new(true)));
    node.node.names.start(hub.now());
    run(&hub, 100, &mut [&mut node, &mut wins]);
    assert!(node.node.names.is_ready());
    assert_eq!(node.name_state(name("LABSRV")), NameState::Active);
    assert_eq!(phase(&node, "LABGRP"), WinsPhase::Registered);
    // Two unicast registrations with RD, ONT H in NB_FLAGS, no broadcast.
    let requests = wins.requests();
    assert_eq!(requests.len(), 2);
    for (request, group) in requests.iter().zip([false, true]) {
        assert_eq!(request.flags_word(), 0x2900);
        let Message::NameRegistrationRequest { entry, .. } = request.repr().message else {
            panic!()
        };
        assert_eq!(entry.flags, NbFlags::new(group, NodeType::H));
        assert_eq!(entry.address, NODE_IP);
    }
    assert!(
        sent_by_node(&hub).iter().all(|s| s.1 == WINS_IP),
        "an H-node with a server broadcasts nothing"
    );

    // The challenge: a unicast query with RD=0 from the server, answered at once.
    wins.send(NODE_IP, &challenge("LABSRV"));
    run(&hub, 10, &mut [&mut node, &mut wins]);
    let answers = wins.responses();
    assert_eq!(answers.len(), 1);
    let Message::PositiveNameQueryResponse { entries, .. } = answers[0].repr().message else {
        panic!("{:?}", answers[0].repr())
    };
    assert_eq!(entries.get(0).unwrap().address, NODE_IP);
    assert_eq!(node.node.names.wins_counters().challenges_answered.get(), 1);

    // Refreshes at half the TTL, opcode 8, answered with opcode 5: twice in 65 s.
    hub.clear_log();
    wins.log.clear();
    run(&hub, 65_000, &mut [&mut node, &mut wins]);
    let refreshes: Vec<_> = wins.requests().iter().map(|r| r.flags_word()).collect();
    assert_eq!(refreshes, [0x4000; 4], "2 names x 2 refreshes");
    assert_eq!(phase(&node, "LABSRV"), WinsPhase::Registered);

    // Release: unicast to the server (answered), and broadcasts.
    wins.log.clear();
    node.node.names.release(hub.now());
    run(&hub, 1_000, &mut [&mut node, &mut wins]);
    assert!(node.node.names.is_released());
    let releases: Vec<_> = wins.requests().iter().map(|r| r.flags_word()).collect();
    assert_eq!(releases, [0x3000, 0x3000]);
    let broadcasts = sent_by_node(&hub)
        .iter()
        .filter(|s| s.1 == BROADCAST && s.2 == 0x3010)
        .count();
    assert_eq!(broadcasts, 6);
}

#[test]
fn an_h_node_falls_back_to_broadcast_while_the_server_is_down_then_registers() {
    let hub = Hub::new();
    let mut node = node(&hub, NodeType::H);
    let up = Rc::new(Cell::new(false));
    let mut wins = samba(&hub, 600, up.clone());
    node.node.names.start(hub.now());
    run(&hub, 8_000, &mut [&mut node, &mut wins]);
    // 3 tries 2 s apart, then the claim on the segment: ours, answered by broadcast.
    assert_eq!(wins.requests().len(), 6);
    assert!(node.node.names.is_ready());
    assert_eq!(node.name_state(name("LABSRV")), NameState::Active);
    assert_eq!(phase(&node, "LABSRV"), WinsPhase::Down);
    let overwrites = sent_by_node(&hub)
        .iter()
        .filter(|s| s.1 == BROADCAST && s.2 == 0x2810)
        .count();
    assert_eq!(overwrites, 2);
    // The server comes back; the next round (10 s after the silence) registers.
    up.set(true);
    run(&hub, 10_000, &mut [&mut node, &mut wins]);
    assert_eq!(phase(&node, "LABSRV"), WinsPhase::Registered);
    assert_eq!(phase(&node, "LABGRP"), WinsPhase::Registered);
}

#[test]
fn a_p_node_sends_no_broadcast_at_all() {
    let hub = Hub::new();
    let mut node = node(&hub, NodeType::P);
    let up = Rc::new(Cell::new(false));
    let mut wins = samba(&hub, 20, up.clone());
    node.node.names.start(hub.now());
    // Server down: registering, not answered, retried.
    run(&hub, 20_000, &mut [&mut node, &mut wins]);
    assert_eq!(
        node.name_state(name("LABSRV")),
        NameState::Registering { sent: 0 }
    );
    assert!(!node.node.names.is_ready());
    up.set(true);
    run(&hub, 40_000, &mut [&mut node, &mut wins]);
    assert_eq!(node.name_state(name("LABSRV")), NameState::Active);
    node.node.names.release(hub.now());
    run(&hub, 2_000, &mut [&mut node, &mut wins]);
    assert!(node.node.names.is_released());
    let sent = sent_by_node(&hub);
    assert!(sent.len() > 10);
    assert!(
        sent.iter().all(|s| s.1 == WINS_IP),
        "a P-node sent a broadcast: {sent:?}"
    );
}

#[test]
fn a_wack_then_act_err_leaves_the_name_in_conflict() {
    let hub = Hub::new();
    let mut node = node(&hub, NodeType::H);
    // The server holds LABSRV<20> for another owner that defends it: WACK, then ACT_ERR 5 s
    // later (it answers immediately here; the WACK already stopped retransmission).
    let mut wins = ScriptedNbns::new(
        &hub,
        WINS_MAC,
        WINS_IP,
        Box::new(|request| {
            let unique = match request.message {
                Message::NameRegistrationRequest { entry, .. } => !entry.flags.is_group(),
                _ => false,
            };
            if unique {
                vec![
                    wack(request, 0x2900, 60),
                    samba_answer(request, Rcode::Active, 0).unwrap(),
                ]
            } else {
                samba_answer(request, Rcode::NoError, 600)
                    .into_iter()
                    .collect()
            }
        }),
    );
    node.node.names.start(hub.now());
    run(&hub, 10_000, &mut [&mut node, &mut wins]);
    assert_eq!(node.name_state(name("LABSRV")), NameState::Conflict);
    assert_eq!(
        phase(&node, "LABSRV"),
        WinsPhase::Conflict {
            rcode: Rcode::Active
        }
    );
    assert_eq!(node.name_state(name("LABGRP")), NameState::Active);
    assert_eq!(wins.requests().len(), 2, "no retransmission after the WACK");
    // A challenge for the name in conflict: NAM_ERR.
    wins.send(NODE_IP, &challenge("LABSRV"));
    run(&hub, 10, &mut [&mut node, &mut wins]);
    assert!(matches!(
        wins.responses()[0].repr().message,
        Message::NegativeNameQueryResponse { .. }
    ));
}

#[test]
fn the_resolver_asks_the_server_first() {
    let hub = Hub::new();
    let mut node = node(&hub, NodeType::H);
    let owner = [AddrEntry {
        flags: NbFlags::new(false, NodeType::H),
        address: OWNER_IP,
    }];
    let mut wins = ScriptedNbns::new(
        &hub,
        WINS_MAC,
        WINS_IP,
        Box::new(move |request| match request.message {
            Message::NameQueryRequest { name } => vec![emit(&Repr {
                transaction_id: request.transaction_id,
                flags: Flags::RECURSION_DESIRED | Flags::RECURSION_AVAILABLE,
                message: Message::PositiveNameQueryResponse {
                    name,
                    ttl: 300,
                    entries: AddrEntries::new(&owner),
                },
            })],
            _ => samba_answer(request, Rcode::NoError, 600)
                .into_iter()
                .collect(),
        }),
    );
    node.node.names.start(hub.now());
    run(&hub, 100, &mut [&mut node, &mut wins]);
    let id = node.node.names.resolve(name("OTHER"), hub.now()).unwrap();
    run(&hub, 50, &mut [&mut node, &mut wins]);
    let query = wins.requests().pop().unwrap().clone();
    assert_eq!(query.flags_word(), 0x0100, "unicast, RD=1");
    let Some(Resolution::Found { by, entries, .. }) = node.node.names.take_resolution(id) else {
        panic!()
    };
    assert_eq!(by, AnsweredBy::Wins(WINS_IP));
    assert_eq!(entries[0].address, OWNER_IP);
}

#[test]
fn a_silent_primary_hands_the_names_to_the_secondary() {
    const SECONDARY_IP: Ipv4Address = Ipv4Address::new(192, 168, 69, 51);
    let hub = Hub::new();
    let mut node = TestNode::new(&hub, NODE_MAC, NODE_IP);
    node.node
        .names
        .configure_wins(WinsConfig::new(NodeType::P, &[WINS_IP, SECONDARY_IP]).unwrap());
    node.node.names.add_name(name("LABSRV"), false).unwrap();
    let mut primary = samba(&hub, 600, Rc::new(Cell::new(false)));
    let mut secondary = ScriptedNbns::new(
        &hub,
        [0x02, 0, 0, 0, 0, 0x51],
        SECONDARY_IP,
        Box::new(|request| {
            samba_answer(request, Rcode::NoError, 600)
                .into_iter()
                .collect()
        }),
    );
    node.node.names.start(hub.now());
    run(&hub, 7_000, &mut [&mut node, &mut primary, &mut secondary]);
    assert_eq!(primary.requests().len(), 3, "3 tries at the primary");
    assert_eq!(
        secondary.requests().len(),
        1,
        "then the secondary, which answers"
    );
    assert_eq!(
        secondary.requests()[0].at.total_millis(),
        6_000,
        "after the primary's 3 tries 2 s apart"
    );
    assert_eq!(node.name_state(name("LABSRV")), NameState::Active);
    let held = node.node.names.wins_names()[0];
    assert_eq!(node.node.names.wins_server(&held), Some(SECONDARY_IP));
    // Its refresh goes to the secondary, which granted it.
    run(
        &hub,
        300_000,
        &mut [&mut node, &mut primary, &mut secondary],
    );
    assert_eq!(primary.requests().len(), 3);
    let refreshes: Vec<u16> = secondary
        .requests()
        .iter()
        .map(|r| r.flags_word())
        .collect();
    assert_eq!(refreshes, [0x2900, 0x4000]);
}

#[test]
fn a_refused_name_is_asked_for_again_and_granted_once_its_other_owner_is_gone() {
    let hub = Hub::new();
    let mut node = node(&hub, NodeType::H);
    // LABSRV<20> is on record for another owner. While it answers the server's challenge, the
    // server refuses (a WACK, then ACT_ERR); once it is gone, the server sends a WACK, challenges
    // it in vain and grants the name 3 s later (sent by the test below).
    let owner_alive = Rc::new(Cell::new(true));
    let grant: Rc<RefCell<Option<Vec<u8>>>> = Rc::new(RefCell::new(None));
    let mut wins = ScriptedNbns::new(&hub, WINS_MAC, WINS_IP, {
        let owner_alive = owner_alive.clone();
        let grant = grant.clone();
        Box::new(move |request| {
            let contested = match request.message {
                Message::NameRegistrationRequest { name: asked, .. } => {
                    asked.name == name("LABSRV")
                }
                _ => false,
            };
            if !contested {
                return samba_answer(request, Rcode::NoError, 600)
                    .into_iter()
                    .collect();
            }
            if owner_alive.get() {
                vec![
                    wack(request, 0x2900, 60),
                    samba_answer(request, Rcode::Active, 0).unwrap(),
                ]
            } else {
                *grant.borrow_mut() = samba_answer(request, Rcode::NoError, 600);
                vec![wack(request, 0x2900, 60)]
            }
        })
    });
    let tries = |wins: &ScriptedNbns| -> Vec<i64> {
        wins.requests()
            .iter()
            .filter(|r| matches!(r.repr().message, Message::NameRegistrationRequest { name: asked, .. } if asked.name == name("LABSRV")))
            .map(|r| r.at.total_millis())
            .collect()
    };
    node.node.names.start(hub.now());
    run(&hub, 1_000, &mut [&mut node, &mut wins]);
    assert_eq!(node.name_state(name("LABSRV")), NameState::Conflict);
    assert_eq!(node.name_state(name("LABGRP")), NameState::Active);
    let refused = WinsPhase::Conflict {
        rcode: Rcode::Active,
    };
    assert_eq!(phase(&node, "LABSRV"), refused);
    let retry_at = node.node.names.wins_names()[0].retry_at().unwrap();
    // The refusal crossed the hub within a few ms of the request at 0.
    assert!(
        (60_000..60_010).contains(&retry_at.total_millis()),
        "60 s after the refusal: {retry_at}"
    );

    // The first try, 60 s later: refused again (the owner answers), the next one 120 s later.
    run(&hub, 60_010, &mut [&mut node, &mut wins]);
    let at = tries(&wins);
    assert_eq!(at.len(), 2);
    assert_eq!(at[1], retry_at.total_millis());
    assert_eq!(phase(&node, "LABSRV"), refused);
    let next = node.node.names.wins_names()[0].retry_at().unwrap();
    assert!(
        (120_000..120_010).contains(&(next.total_millis() - at[1])),
        "120 s after the second refusal: {next}"
    );
    wins.send(NODE_IP, &challenge("LABSRV"));
    run(&hub, 10, &mut [&mut node, &mut wins]);
    assert!(matches!(
        wins.responses()[0].repr().message,
        Message::NegativeNameQueryResponse { .. }
    ));

    // The owner goes. The next try gets a WACK, then the grant.
    owner_alive.set(false);
    run(&hub, 120_000, &mut [&mut node, &mut wins]);
    let at = tries(&wins);
    assert_eq!(at.len(), 3);
    assert_eq!(at[2], next.total_millis());
    assert_eq!(
        phase(&node, "LABSRV"),
        refused,
        "still waiting after the WACK"
    );
    run(&hub, 3_000, &mut [&mut node, &mut wins]);
    assert_eq!(tries(&wins).len(), 3, "no retransmission after the WACK");
    let grant = grant.borrow_mut().take().expect("the server was asked");
    wins.send(NODE_IP, &grant);
    run(&hub, 10, &mut [&mut node, &mut wins]);
    assert_eq!(node.name_state(name("LABSRV")), NameState::Active);
    assert_eq!(phase(&node, "LABSRV"), WinsPhase::Registered);
    let counters = node.node.names.wins_counters();
    assert_eq!(
        (
            counters.refused.get(),
            counters.conflict_retries.get(),
            counters.conflicts_resolved.get()
        ),
        (2, 2, 1)
    );
    // The server's challenge is now answered with our address.
    wins.log.clear();
    wins.send(NODE_IP, &challenge("LABSRV"));
    run(&hub, 10, &mut [&mut node, &mut wins]);
    let Message::PositiveNameQueryResponse { entries, .. } = wins.responses()[0].repr().message
    else {
        panic!("{:?}", wins.responses()[0].repr())
    };
    assert_eq!(entries.get(0).unwrap().address, NODE_IP);
    assert!(
        sent_by_node(&hub).iter().all(|s| s.1 == WINS_IP),
        "no broadcast claim while in conflict, nor after"
    );
}
