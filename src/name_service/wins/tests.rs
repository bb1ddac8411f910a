//! The WINS client and the resolver on a stepping clock: what goes to the server when, what
//! its answers (and silence, and spoofed answers) do to each name.

use super::super::*;
use super::WINS_BACKOFF_MAX;
use crate::name_service::tests::{Sent, at, emit, record};
use crate::wire::nbns::{NodeType, Repr};
use std::vec::Vec;

mod conflict;

const OUR_ADDRESS: Ipv4Address = Ipv4Address::new(192, 168, 69, 1);
const SUBNET_BROADCAST: Ipv4Address = Ipv4Address::new(192, 168, 69, 255);
const PRIMARY: Ipv4Address = Ipv4Address::new(192, 168, 69, 50);
const SECONDARY: Ipv4Address = Ipv4Address::new(192, 168, 69, 51);
const STRANGER: Ipv4Address = Ipv4Address::new(192, 168, 69, 66);

fn to137(address: Ipv4Address) -> Destination {
    Destination {
        address,
        port: NAME_SERVICE_PORT,
    }
}

fn labsrv() -> Name {
    Name::new("LABSRV", Name::SUFFIX_SERVER).unwrap()
}

fn labgrp() -> Name {
    Name::new("LABGRP", Name::SUFFIX_WORKSTATION).unwrap()
}

struct H {
    service: NameService<'static>,
}

impl H {
    fn new(node_type: NodeType, servers: &[Ipv4Address], names: &[(Name, bool)]) -> H {
        let mut service = NameService::new(
            NameServiceConfig {
                address: Ipv4Cidr::new(OUR_ADDRESS, 24),
                mac: [2, 0, 0, 0, 0, 1],
                hide_mac: false,
                scope: Scope::NONE,
            },
            0x1234_5678_9abc_def0,
            vec![None; NAME_EVENTS].leak(),
        );
        service.configure_wins(WinsConfig::new(node_type, servers).unwrap());
        for &(name, group) in names {
            service.add_name(name, group).unwrap();
        }
        H { service }
    }

    fn started(node_type: NodeType, servers: &[Ipv4Address], names: &[(Name, bool)]) -> H {
        let mut h = H::new(node_type, servers, names);
        h.service.start(at(0));
        h
    }

    fn poll(&mut self, ms: i64) -> Vec<Sent> {
        let mut sent = Vec::new();
        self.service.poll(at(ms), &mut record(&mut sent));
        // poll_at stays honest: never due again at the same instant.
        if let Some(next) = self.service.poll_at() {
            assert!(next > at(ms), "poll_at {next} not after {}", at(ms));
        }
        sent
    }

    /// Polls every 100 ms from `from` to `to` (inclusive), collecting what was sent.
    fn run(&mut self, from: i64, to: i64) -> Vec<(i64, Sent)> {
        let mut all = Vec::new();
        let mut ms = from;
        while ms <= to {
            for sent in self.poll(ms) {
                all.push((ms, sent));
            }
            ms += 100;
        }
        all
    }

    fn receive_bytes(&mut self, bytes: &[u8], from: Ipv4Address, to: Ipv4Address) -> Vec<Sent> {
        let mut sent = Vec::new();
        self.service.receive(
            bytes,
            Received {
                source: to137(from),
                destination: to,
            },
            &SessionFigures::default(),
            &mut record(&mut sent),
        );
        sent
    }

    fn receive(&mut self, repr: &Repr, from: Ipv4Address) -> Vec<Sent> {
        self.receive_bytes(&emit(repr), from, OUR_ADDRESS)
    }

    fn state(&self, name: Name) -> NameState {
        self.index(name)
            .map(|i| self.service.names()[i].state)
            .unwrap()
    }

    fn wins(&self, name: Name) -> WinsName {
        self.index(name)
            .map(|i| self.service.wins_names()[i])
            .unwrap()
    }

    fn index(&self, name: Name) -> Option<usize> {
        self.service.names().iter().position(|n| n.name == name)
    }

    fn events(&mut self) -> Vec<NameEvent> {
        core::iter::from_fn(|| self.service.take_event()).collect()
    }

    fn counters(&self) -> WinsCounters {
        *self.service.wins_counters()
    }

    /// Whether a unicast query (a WINS challenge: RD=0, from `from`) for `name` is answered
    /// positively.
    fn answers(&mut self, name: Name, from: Ipv4Address) -> bool {
        let query = Repr {
            transaction_id: 0x7777,
            flags: Flags::NONE,
            message: Message::NameQueryRequest {
                name: NbName::unscoped(name),
            },
        };
        let sent = self.receive(&query, from);
        assert_eq!(sent.len(), 1, "a unicast query is answered either way");
        assert_eq!(sent[0].to, to137(from));
        assert_eq!(sent[0].transaction_id(), 0x7777);
        matches!(
            sent[0].repr().message,
            Message::PositiveNameQueryResponse { .. }
        )
    }
}

/// The server's answer to request `request` with `rcode`, opcode 5 as Samba sends it.
fn answer(request: &Sent, rcode: Rcode, ttl: u32) -> Vec<u8> {
    let repr = request.repr();
    let Message::NameRegistrationRequest { name, entry, .. } = repr.message else {
        panic!("not a registration-shaped request: {repr:?}");
    };
    emit(&Repr {
        transaction_id: repr.transaction_id,
        flags: Flags::RECURSION_DESIRED | Flags::RECURSION_AVAILABLE,
        message: Message::NameRegistrationResponse {
            name,
            rcode,
            ttl,
            entry,
        },
    })
}

fn wack(request: &Sent, ttl: u32) -> Vec<u8> {
    let repr = request.repr();
    emit(&Repr {
        transaction_id: repr.transaction_id,
        flags: Flags::NONE,
        message: Message::WaitForAcknowledgement {
            name: *repr.message.name().unwrap(),
            ttl,
            request_flags: request.flags_word(),
        },
    })
}

/// Registration requests `sent` holds, as (to, flags word, NB_FLAGS, transaction id).
fn requests(sent: &[(i64, Sent)]) -> Vec<(i64, Destination, u16, u16)> {
    sent.iter()
        .map(|(ms, s)| (*ms, s.to, s.flags_word(), s.transaction_id()))
        .collect()
}

// 1. Registration with the server.

#[test]
fn an_h_node_registers_unicast_with_rd_and_owns_the_name_once_granted() {
    let mut h = H::started(
        NodeType::H,
        &[PRIMARY],
        &[(labsrv(), false), (labgrp(), true)],
    );
    let sent = h.poll(0);
    assert_eq!(
        sent.len(),
        2,
        "one request per name, no broadcast: {sent:?}"
    );
    for (s, group) in sent.iter().zip([false, true]) {
        assert_eq!(s.to, to137(PRIMARY));
        // Opcode 5, RD, not broadcast.
        assert_eq!(s.flags_word(), 0x2900);
        // NB_FLAGS: ONT H (0x6000), G for the group.
        assert_eq!(s.nb_flags(), if group { 0xe000 } else { 0x6000 });
        let Message::NameRegistrationRequest { ttl, entry, .. } = s.repr().message else {
            panic!()
        };
        assert_eq!(ttl, NAME_TTL);
        assert_eq!(entry.address, OUR_ADDRESS);
    }
    assert_ne!(sent[0].transaction_id(), sent[1].transaction_id());
    // Not ours yet: a challenge gets NAM_ERR, the node is not ready.
    assert!(!h.answers(labsrv(), PRIMARY));
    assert!(!h.service.is_ready());

    for s in &sent {
        assert!(
            h.receive_bytes(&answer(s, Rcode::NoError, 60), PRIMARY, OUR_ADDRESS)
                .is_empty()
        );
    }
    assert_eq!(h.state(labsrv()), NameState::Active);
    assert!(h.service.is_ready());
    assert_eq!(h.wins(labsrv()).phase(), WinsPhase::Registered);
    assert_eq!(h.wins(labsrv()).ttl(), 60);
    assert_eq!(
        h.service.wins_server(&h.wins(labsrv())),
        Some(PRIMARY),
        "held by the server that granted it"
    );
    // The refresh timer is armed by the next poll: half the TTL.
    assert!(h.poll(500).is_empty());
    assert_eq!(h.wins(labsrv()).refresh_at(), Some(at(500 + 30_000)));
    assert_eq!(h.wins(labsrv()).expires_at(), Some(at(500 + 60_000)));
    assert!(
        h.answers(labsrv(), PRIMARY),
        "the server's challenge is answered"
    );
    assert_eq!(h.counters().challenges_answered.get(), 1);
    assert_eq!(h.counters().granted.get(), 2);
    let events = h.events();
    assert!(events.contains(&NameEvent::Registered(labsrv())));
    assert!(events.contains(&NameEvent::Wins(WinsEvent::Registered {
        name: labsrv(),
        server: PRIMARY,
        ttl: 60
    })));
}

#[test]
fn registration_is_retransmitted_every_2_s_three_times_with_one_transaction_id() {
    let mut h = H::started(NodeType::P, &[PRIMARY], &[(labsrv(), false)]);
    let sent = requests(&h.run(0, 5_900));
    assert_eq!(sent.len(), 3, "{sent:?}");
    assert_eq!(
        sent.iter().map(|s| s.0).collect::<Vec<_>>(),
        [0, 2_000, 4_000]
    );
    assert!(
        sent.iter()
            .all(|s| s.3 == sent[0].3 && s.1 == to137(PRIMARY))
    );
}

#[test]
fn a_wack_stops_retransmission_and_extends_the_wait_by_its_ttl() {
    let mut h = H::started(NodeType::P, &[PRIMARY, SECONDARY], &[(labsrv(), false)]);
    let first = h.poll(0).remove(0);
    h.receive_bytes(&wack(&first, 20), PRIMARY, OUR_ADDRESS);
    assert_eq!(h.counters().wacks.get(), 1);
    assert_eq!(
        h.wins(labsrv()).phase(),
        WinsPhase::Waiting { refresh: false }
    );
    // The wait is armed at the next poll: 20 s from there, nothing sent meanwhile.
    let quiet = h.run(100, 20_000);
    assert!(quiet.is_empty(), "{quiet:?}");
    // The answer may still come within the wait...
    h.receive_bytes(&answer(&first, Rcode::NoError, 600), PRIMARY, OUR_ADDRESS);
    assert_eq!(h.state(labsrv()), NameState::Active);

    // ...and without one, the next server is asked when it runs out.
    let mut h = H::started(NodeType::P, &[PRIMARY, SECONDARY], &[(labsrv(), false)]);
    let first = h.poll(0).remove(0);
    h.receive_bytes(&wack(&first, 20), PRIMARY, OUR_ADDRESS);
    let sent = requests(&h.run(100, 20_200));
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0].0, 20_100);
    assert_eq!(sent[0].1, to137(SECONDARY));
}

#[test]
fn act_err_or_rfs_err_puts_the_name_in_conflict_with_the_servers_answer() {
    for rcode in [Rcode::Active, Rcode::Refused] {
        let mut h = H::started(NodeType::H, &[PRIMARY], &[(labsrv(), false)]);
        let first = h.poll(0).remove(0);
        h.receive_bytes(&answer(&first, rcode, 0), PRIMARY, OUR_ADDRESS);
        assert_eq!(h.state(labsrv()), NameState::Conflict);
        assert_eq!(h.wins(labsrv()).phase(), WinsPhase::Conflict { rcode });
        assert!(h.service.is_ready());
        assert!(!h.answers(labsrv(), PRIMARY), "a name in conflict: NAM_ERR");
        // No broadcast claim, and no request for it until the back-off (60 s from the poll
        // that armed it) runs out: tests/conflict.rs follows it from there.
        assert!(h.run(100, 60_000).is_empty());
        assert_eq!(h.wins(labsrv()).retry_at(), Some(at(60_100)));
        assert_eq!(h.service.counters().conflicts.get(), 1);
        assert!(h.events().contains(&NameEvent::Wins(WinsEvent::Refused {
            name: labsrv(),
            server: PRIMARY,
            rcode,
            retry_in: 60,
        })));
    }
    assert_eq!(
        format!(
            "{}",
            WinsPhase::Conflict {
                rcode: Rcode::Active
            }
        ),
        "Conflict(ACT_ERR)"
    );
}

#[test]
fn a_server_failure_passes_the_name_to_the_secondary() {
    let mut h = H::started(NodeType::P, &[PRIMARY, SECONDARY], &[(labsrv(), false)]);
    let first = h.poll(0).remove(0);
    h.receive_bytes(
        &answer(&first, Rcode::ServerFailure, 0),
        PRIMARY,
        OUR_ADDRESS,
    );
    let sent = h.poll(100);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].to, to137(SECONDARY));
    assert_ne!(
        sent[0].transaction_id(),
        first.transaction_id(),
        "a new request, a new transaction id"
    );
    assert_eq!(h.state(labsrv()), NameState::Registering { sent: 0 });
}

// 2. Silence.

#[test]
fn a_silent_primary_passes_the_name_to_the_secondary_which_may_grant_it() {
    let mut h = H::started(NodeType::P, &[PRIMARY, SECONDARY], &[(labsrv(), false)]);
    let sent = h.run(0, 11_900);
    let sent: Vec<_> = requests(&sent);
    assert_eq!(
        sent.iter().map(|s| (s.0, s.1.address)).collect::<Vec<_>>(),
        [
            (0, PRIMARY),
            (2_000, PRIMARY),
            (4_000, PRIMARY),
            (6_000, SECONDARY),
            (8_000, SECONDARY),
            (10_000, SECONDARY)
        ]
    );
    // The secondary's answer to its request counts; the primary answering with it does not.
    let mut h = H::started(NodeType::P, &[PRIMARY, SECONDARY], &[(labsrv(), false)]);
    let to_secondary = h.run(0, 6_000).pop().unwrap().1;
    assert_eq!(to_secondary.to, to137(SECONDARY));
    h.receive_bytes(
        &answer(&to_secondary, Rcode::NoError, 60),
        PRIMARY,
        OUR_ADDRESS,
    );
    assert_eq!(h.counters().wrong_source.get(), 1);
    assert_eq!(h.state(labsrv()), NameState::Registering { sent: 0 });
    h.receive_bytes(
        &answer(&to_secondary, Rcode::NoError, 60),
        SECONDARY,
        OUR_ADDRESS,
    );
    assert_eq!(h.state(labsrv()), NameState::Active);
    assert_eq!(h.service.wins_server(&h.wins(labsrv())), Some(SECONDARY));
}

#[test]
fn a_p_node_without_answers_keeps_registering_with_back_off_and_never_broadcasts() {
    let mut h = H::started(NodeType::P, &[PRIMARY], &[(labsrv(), false)]);
    // 3 tries (0, 2, 4 s), silent at 6 s, then rounds after 10, 20, 40, 80 ... s.
    let sent = h.run(0, 200_000);
    assert!(
        sent.iter().all(|(_, s)| s.to == to137(PRIMARY)),
        "never a broadcast"
    );
    let starts: Vec<i64> = sent.iter().step_by(3).map(|(ms, _)| *ms).collect();
    assert_eq!(starts, [0, 16_000, 42_000, 88_000, 174_000]);
    assert_eq!(h.state(labsrv()), NameState::Registering { sent: 0 });
    assert!(!h.service.is_ready());
    // The round at 174 s ended at 180 s: the next one is 160 s later.
    assert_eq!(h.wins(labsrv()).phase(), WinsPhase::Down);
    // The back-off is capped.
    let mut last = 0;
    let sent = h.run(200_100, 3_000_000);
    for (ms, _) in sent.iter().step_by(3) {
        if last != 0 {
            assert!(ms - last <= 6_000 + WINS_BACKOFF_MAX.total_millis() as i64);
        }
        last = *ms;
    }
    // Silence is logged once, not every round.
    let silent = h
        .events()
        .into_iter()
        .filter(|e| matches!(e, NameEvent::Wins(WinsEvent::Silent { .. })))
        .count();
    assert_eq!(silent, 1);
    assert!(h.counters().server_silent.get() > 5);
}

#[test]
fn an_h_node_falls_back_to_broadcast_and_registers_when_the_server_comes_back() {
    let mut h = H::started(NodeType::H, &[PRIMARY], &[(labsrv(), false)]);
    let sent = h.run(0, 7_000);
    let unicast: Vec<_> = sent
        .iter()
        .filter(|(_, s)| s.to == to137(PRIMARY))
        .collect();
    let broadcast: Vec<_> = sent
        .iter()
        .filter(|(_, s)| s.to == to137(SUBNET_BROADCAST))
        .collect();
    assert_eq!(unicast.len(), 3);
    // From 6 s: three registration broadcasts 250 ms apart, then the overwrite demand, ONT H.
    assert_eq!(broadcast.len(), 4, "{broadcast:?}");
    assert_eq!(broadcast[0].0, 6_000);
    assert_eq!(broadcast[0].1.flags_word(), 0x2910);
    assert_eq!(broadcast[3].1.flags_word(), 0x2810);
    assert!(broadcast.iter().all(|(_, s)| s.nb_flags() == 0x6000));
    assert_eq!(h.state(labsrv()), NameState::Active);
    assert_eq!(h.wins(labsrv()).phase(), WinsPhase::Down);
    assert!(h.events().iter().any(|e| matches!(
        e,
        NameEvent::Wins(WinsEvent::Silent {
            claiming: true,
            retry_in: 10,
            ..
        })
    )));
    // The next round, 10 s after the silence; this time the server answers.
    let retry = h.run(7_100, 16_000);
    assert_eq!(retry.len(), 1);
    assert_eq!(retry[0].0, 16_000);
    h.receive_bytes(
        &answer(&retry[0].1, Rcode::NoError, 300),
        PRIMARY,
        OUR_ADDRESS,
    );
    assert_eq!(h.wins(labsrv()).phase(), WinsPhase::Registered);
    assert_eq!(h.state(labsrv()), NameState::Active);
}

#[test]
fn an_m_node_claims_on_the_segment_first_then_registers_with_the_server() {
    let mut h = H::started(NodeType::M, &[PRIMARY], &[(labsrv(), false)]);
    let sent = h.run(0, 1_000);
    let to: Vec<_> = sent
        .iter()
        .map(|(ms, s)| (*ms, s.to.address, s.flags_word()))
        .collect();
    assert_eq!(
        to,
        [
            (0, SUBNET_BROADCAST, 0x2910),
            (300, SUBNET_BROADCAST, 0x2910),
            (600, SUBNET_BROADCAST, 0x2910),
            (900, SUBNET_BROADCAST, 0x2810),
            (900, PRIMARY, 0x2900),
        ]
    );
    assert!(sent.iter().all(|(_, s)| s.nb_flags() == 0x4000), "ONT M");
    assert_eq!(h.state(labsrv()), NameState::Active, "ours on the segment");
    h.receive_bytes(
        &answer(&sent[4].1, Rcode::NoError, 300),
        PRIMARY,
        OUR_ADDRESS,
    );
    assert_eq!(h.wins(labsrv()).phase(), WinsPhase::Registered);
}

// 3. Refresh and expiry.

/// A P-node whose name the primary granted for `ttl` s at +0 (timers armed at +0).
fn granted(ttl: u32, servers: &[Ipv4Address]) -> H {
    let mut h = H::started(NodeType::P, servers, &[(labsrv(), false)]);
    let first = h.poll(0).remove(0);
    h.receive_bytes(&answer(&first, Rcode::NoError, ttl), PRIMARY, OUR_ADDRESS);
    assert!(h.poll(0).is_empty());
    h.events();
    h
}

#[test]
fn refresh_goes_at_half_the_ttl_with_opcode_8_and_takes_opcode_5_8_or_9_back() {
    for reply_opcode in [5u8, 8, 9] {
        let mut h = granted(60, &[PRIMARY]);
        let sent = h.run(100, 30_000);
        assert_eq!(sent.len(), 1);
        let (ms, refresh) = &sent[0];
        assert_eq!(*ms, 30_000);
        assert_eq!(refresh.to, to137(PRIMARY));
        assert_eq!(refresh.flags_word(), 0x4000, "opcode 8, RD=0");
        assert_eq!(h.wins(labsrv()).phase(), WinsPhase::Refreshing { sent: 1 });
        let mut reply = answer(refresh, Rcode::NoError, 120);
        reply[2] = (reply[2] & 0x87) | (reply_opcode << 3);
        h.receive_bytes(&reply, PRIMARY, OUR_ADDRESS);
        assert_eq!(
            h.wins(labsrv()).phase(),
            WinsPhase::Registered,
            "opcode {reply_opcode}"
        );
        assert_eq!(h.wins(labsrv()).ttl(), 120);
        assert!(h.poll(30_100).is_empty());
        assert_eq!(h.wins(labsrv()).refresh_at(), Some(at(30_100 + 60_000)));
        // A refresh is no new registration to log.
        assert!(h.events().is_empty());
    }
}

#[test]
fn a_silent_refresh_is_retried_and_a_ttl_that_runs_out_registers_again() {
    let mut h = granted(60, &[PRIMARY, SECONDARY]);
    let sent = h.run(100, 59_900);
    let tries: Vec<_> = sent
        .iter()
        .map(|(ms, s)| (*ms, s.to.address, s.flags_word()))
        .collect();
    // 3 to the primary from 30 s, then 3 to the secondary after the 10 s back-off.
    assert_eq!(
        tries,
        [
            (30_000, PRIMARY, 0x4000),
            (32_000, PRIMARY, 0x4000),
            (34_000, PRIMARY, 0x4000),
            (46_000, SECONDARY, 0x4000),
            (48_000, SECONDARY, 0x4000),
            (50_000, SECONDARY, 0x4000),
        ]
    );
    assert_eq!(
        h.state(labsrv()),
        NameState::Active,
        "ours until the TTL runs out"
    );
    // At 60 s the TTL ran out: a P-node stops answering and registers from the primary.
    let sent = h.poll(60_000);
    assert_eq!(sent.len(), 1);
    assert_eq!((sent[0].to, sent[0].flags_word()), (to137(PRIMARY), 0x2900));
    assert_eq!(h.state(labsrv()), NameState::Registering { sent: 0 });
    assert!(!h.answers(labsrv(), PRIMARY));
    assert_eq!(h.counters().expired.get(), 1);
    assert!(
        h.events()
            .contains(&NameEvent::Wins(WinsEvent::Expired { name: labsrv() }))
    );
    // Granted again: ours again.
    h.receive_bytes(&answer(&sent[0], Rcode::NoError, 60), PRIMARY, OUR_ADDRESS);
    assert_eq!(h.state(labsrv()), NameState::Active);
}

#[test]
fn a_refused_refresh_registers_again_at_once() {
    let mut h = granted(60, &[PRIMARY]);
    let refresh = h.run(100, 30_000).remove(0).1;
    h.receive_bytes(&answer(&refresh, Rcode::Refused, 0), PRIMARY, OUR_ADDRESS);
    let sent = h.poll(30_050);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].flags_word(), 0x2900);
    assert_ne!(sent[0].transaction_id(), refresh.transaction_id());
    assert_eq!(h.counters().refreshes_refused.get(), 1);
    assert_eq!(
        h.state(labsrv()),
        NameState::Active,
        "still ours while it re-registers"
    );
    h.receive_bytes(&answer(&sent[0], Rcode::NoError, 60), PRIMARY, OUR_ADDRESS);
    assert_eq!(h.wins(labsrv()).phase(), WinsPhase::Registered);
}

// 4. Release.

#[test]
fn release_goes_to_the_server_retried_briefly_and_ends_at_its_answer() {
    let mut h = granted(600, &[PRIMARY]);
    h.service.release(at(1_000));
    assert!(!h.service.is_released());
    let sent = h.poll(1_000);
    assert_eq!(sent.len(), 1, "a P-node sends no release broadcast");
    assert_eq!(sent[0].to, to137(PRIMARY));
    assert_eq!(sent[0].flags_word(), 0x3000);
    assert_eq!(sent[0].nb_flags(), 0x2000, "ONT P");
    // Samba answers NAM_ERR for names it does not hold: still the end.
    let repr = sent[0].repr();
    let reply = emit(&Repr {
        transaction_id: repr.transaction_id,
        flags: Flags::NONE,
        message: Message::NameReleaseResponse {
            name: *repr.message.name().unwrap(),
            rcode: Rcode::NameError,
            entry: AddrEntry {
                flags: NbFlags::new(false, NodeType::P),
                address: OUR_ADDRESS,
            },
        },
    });
    h.receive_bytes(&reply, PRIMARY, OUR_ADDRESS);
    assert!(h.service.is_released());
    assert_eq!(h.state(labsrv()), NameState::Released);
    h.poll(1_100);
    let events = h.events();
    assert!(events.contains(&NameEvent::Released));
    assert!(events.contains(&NameEvent::Wins(WinsEvent::Released {
        name: labsrv(),
        server: PRIMARY,
        answered: true
    })));
}

#[test]
fn release_to_a_silent_server_is_bounded() {
    let mut h = H::started(NodeType::H, &[PRIMARY], &[(labsrv(), false)]);
    let first = h.poll(0).remove(0);
    h.receive_bytes(&answer(&first, Rcode::NoError, 600), PRIMARY, OUR_ADDRESS);
    h.service.release(at(1_000));
    let sent = h.run(1_000, 4_000);
    let unicast: Vec<i64> = sent
        .iter()
        .filter(|(_, s)| s.to == to137(PRIMARY))
        .map(|(ms, _)| *ms)
        .collect();
    let broadcast = sent
        .iter()
        .filter(|(_, s)| s.to == to137(SUBNET_BROADCAST))
        .count();
    assert_eq!(unicast, [1_000, 1_500, 2_000]);
    assert_eq!(broadcast, 3, "an H-node also releases on the segment");
    assert!(h.service.is_released());
    assert_eq!(h.service.poll_at(), None, "nothing left to do");
}

#[test]
fn names_not_held_by_the_server_are_not_released_there() {
    let mut h = H::started(NodeType::P, &[PRIMARY], &[(labsrv(), false)]);
    h.poll(0);
    h.service.release(at(500));
    assert!(h.service.is_released());
    assert!(h.run(500, 5_000).is_empty());
}

// 5. Answers that are not the server's.

#[test]
fn spoofed_and_stray_answers_cannot_take_a_name() {
    let mut h = H::started(NodeType::H, &[PRIMARY], &[(labsrv(), false)]);
    let first = h.poll(0).remove(0);
    let refusal = answer(&first, Rcode::Active, 0);
    // The right transaction id from another address.
    h.receive_bytes(&refusal, STRANGER, OUR_ADDRESS);
    assert_eq!(h.counters().wrong_source.get(), 1);
    // The server with another transaction id.
    let mut other = refusal.clone();
    other[0] ^= 0x55;
    h.receive_bytes(&other, PRIMARY, OUR_ADDRESS);
    assert_eq!(h.counters().wrong_transaction.get(), 1);
    // Another address, another transaction id: the B-node part ignores it too (no claim of
    // ours on the segment is under way).
    h.receive_bytes(&other, STRANGER, OUR_ADDRESS);
    assert_eq!(h.service.counters().unsolicited_responses_ignored.get(), 1);
    // Malformed from the server.
    h.receive_bytes(&refusal[..20], PRIMARY, OUR_ADDRESS);
    assert_eq!(h.counters().malformed.get(), 1);
    assert_eq!(h.state(labsrv()), NameState::Registering { sent: 0 });
    assert_eq!(h.wins(labsrv()).phase(), WinsPhase::Registering { sent: 1 });
    // The real answer still counts.
    h.receive_bytes(&answer(&first, Rcode::NoError, 60), PRIMARY, OUR_ADDRESS);
    assert_eq!(h.state(labsrv()), NameState::Active);
    // Once granted, a replay of a refusal changes nothing.
    h.receive_bytes(&refusal, PRIMARY, OUR_ADDRESS);
    assert_eq!(h.state(labsrv()), NameState::Active);
    assert_eq!(h.counters().wrong_transaction.get(), 2);
}

#[test]
fn a_p_node_ignores_broadcasts() {
    let mut h = granted(600, &[PRIMARY]);
    let query = emit(&Repr {
        transaction_id: 9,
        flags: Flags::RECURSION_DESIRED | Flags::BROADCAST,
        message: Message::NameQueryRequest {
            name: NbName::unscoped(labsrv()),
        },
    });
    assert!(
        h.receive_bytes(&query, STRANGER, SUBNET_BROADCAST)
            .is_empty()
    );
    assert_eq!(h.counters().broadcasts_ignored.get(), 1);
    // Unicast, the same query is answered, with ONT P.
    let sent = h.receive_bytes(&query, STRANGER, OUR_ADDRESS);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].nb_flags(), 0x2000);
}

#[test]
fn node_status_shows_the_node_type() {
    let mut h = granted(600, &[PRIMARY]);
    let request = emit(&Repr {
        transaction_id: 3,
        flags: Flags::NONE,
        message: Message::NodeStatusRequest {
            name: NbName::unscoped(Name::WILDCARD),
        },
    });
    let sent = h.receive_bytes(&request, STRANGER, OUR_ADDRESS);
    let Message::NodeStatusResponse { names, .. } = sent[0].repr().message else {
        panic!()
    };
    assert_eq!(names.get(0).unwrap().flags.node_type(), NodeType::P);
}

#[test]
fn configurations_that_make_no_sense_are_refused() {
    assert_eq!(
        WinsConfig::new(NodeType::H, &[]),
        Err(WinsConfigError::NoServer)
    );
    assert_eq!(
        WinsConfig::new(NodeType::B, &[PRIMARY]),
        Err(WinsConfigError::ServerForBNode)
    );
    assert_eq!(
        WinsConfig::new(NodeType::P, &[PRIMARY, SECONDARY, STRANGER]),
        Err(WinsConfigError::TooManyServers)
    );
    let config = WinsConfig::new(NodeType::M, &[PRIMARY, SECONDARY]).unwrap();
    assert_eq!(config.servers(), [PRIMARY, SECONDARY]);
    assert!(config.broadcasts());
}

// 6. The resolver.

fn positive(request: &Sent, owner: Ipv4Address) -> Vec<u8> {
    let repr = request.repr();
    let entries = [AddrEntry {
        flags: NbFlags::new(false, NodeType::H),
        address: owner,
    }];
    emit(&Repr {
        transaction_id: repr.transaction_id,
        flags: Flags::RECURSION_DESIRED | Flags::RECURSION_AVAILABLE,
        message: Message::PositiveNameQueryResponse {
            name: *repr.message.name().unwrap(),
            ttl: 300,
            entries: AddrEntries::new(&entries),
        },
    })
}

fn negative(request: &Sent) -> Vec<u8> {
    let repr = request.repr();
    emit(&Repr {
        transaction_id: repr.transaction_id,
        flags: Flags::RECURSION_DESIRED | Flags::RECURSION_AVAILABLE,
        message: Message::NegativeNameQueryResponse {
            name: *repr.message.name().unwrap(),
            rcode: Rcode::NameError,
        },
    })
}

fn other() -> Name {
    Name::new("OTHER", Name::SUFFIX_SERVER).unwrap()
}

#[test]
fn an_h_node_resolves_through_the_server_first() {
    let mut h = granted(600, &[PRIMARY]);
    // A P-node's table; the resolver's order is the node type's (here P: the server only).
    let id = h.service.resolve(other(), at(100)).unwrap();
    assert_eq!(h.service.take_resolution(id), None, "still running");
    let sent = h.poll(100);
    assert_eq!(sent.len(), 1);
    assert_eq!((sent[0].to, sent[0].flags_word()), (to137(PRIMARY), 0x0100));
    // From another address: dropped.
    h.receive_bytes(&positive(&sent[0], STRANGER), STRANGER, OUR_ADDRESS);
    assert_eq!(h.service.take_resolution(id), None);
    h.receive_bytes(&positive(&sent[0], STRANGER), PRIMARY, OUR_ADDRESS);
    let Some(Resolution::Found { by, entries, ttl }) = h.service.take_resolution(id) else {
        panic!()
    };
    assert_eq!((by, ttl), (AnsweredBy::Wins(PRIMARY), 300));
    assert_eq!(entries[0].address, STRANGER);
    assert_eq!(h.service.take_resolution(id), None, "taken once");

    // H-node: NAM_ERR from the server, then the broadcast, which someone answers.
    let mut h = H::started(NodeType::H, &[PRIMARY], &[]);
    let id = h.service.resolve(other(), at(0)).unwrap();
    let sent = h.poll(0);
    h.receive_bytes(&negative(&sent[0]), PRIMARY, OUR_ADDRESS);
    let sent = h.poll(50);
    assert_eq!(sent.len(), 1);
    assert_eq!(
        (sent[0].to, sent[0].flags_word()),
        (to137(SUBNET_BROADCAST), 0x0110)
    );
    h.receive_bytes(&positive(&sent[0], STRANGER), STRANGER, SUBNET_BROADCAST);
    // Answers are gathered until the broadcast interval ends; no more broadcasts.
    assert!(h.run(100, 700).is_empty());
    assert_eq!(h.service.take_resolution(id), None);
    assert!(h.poll(800).is_empty());
    let Some(Resolution::Found { by, .. }) = h.service.take_resolution(id) else {
        panic!()
    };
    assert_eq!(by, AnsweredBy::Broadcast(STRANGER));
}

#[test]
fn a_name_nobody_has_is_not_found_in_bounded_time() {
    let mut h = H::started(NodeType::H, &[PRIMARY, SECONDARY], &[]);
    let id = h.service.resolve(other(), at(0)).unwrap();
    let sent = h.run(0, 10_000);
    let to: Vec<_> = sent.iter().map(|(ms, s)| (*ms, s.to.address)).collect();
    assert_eq!(
        to,
        [
            (0, PRIMARY),
            (1_500, PRIMARY),
            (3_000, SECONDARY),
            (4_500, SECONDARY),
            (6_000, SUBNET_BROADCAST),
            (6_800, SUBNET_BROADCAST),
            (7_600, SUBNET_BROADCAST),
        ]
    );
    assert_eq!(
        h.service.take_resolution(id),
        Some(Resolution::NotFound {
            denied_by: None,
            broadcast: true
        })
    );
    assert_eq!(h.service.poll_at(), None);
}

#[test]
fn our_own_names_resolve_locally_and_the_table_is_bounded() {
    let mut h = granted(600, &[PRIMARY]);
    let id = h.service.resolve(labsrv(), at(0)).unwrap();
    let Some(Resolution::Found { by, entries, .. }) = h.service.take_resolution(id) else {
        panic!()
    };
    assert_eq!((by, entries[0].address), (AnsweredBy::Local, OUR_ADDRESS));
    for _ in 0..resolve::MAX_QUERIES {
        h.service.resolve(other(), at(0)).unwrap();
    }
    assert_eq!(h.service.resolve(other(), at(0)), Err(ResolveError::Busy));
}
