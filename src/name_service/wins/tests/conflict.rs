//! A name the WINS server refused, on the stepping clock: asked for again after the back-off
//! (60 s, doubling to 15 min), never claimed by broadcast meanwhile, ours once the server grants
//! it; released without a word to the server; a name lost on the segment stays lost.

use super::*;
use crate::name_service::wins::{WINS_CONFLICT_RETRY_MAX, WINS_CONFLICT_RETRY_MIN};

/// `h` (a P- or H-node, just started) after the primary refused LABSRV<20> with ACT_ERR at +0
/// (its other names granted); the back-off is armed by a poll at +100. Returns the refused
/// request.
fn refused(mut h: H) -> (H, Sent) {
    let mut first = None;
    for request in h.poll(0) {
        let Message::NameRegistrationRequest { name, .. } = request.repr().message else {
            panic!("{request:?}")
        };
        let rcode = if name.name == labsrv() {
            Rcode::Active
        } else {
            Rcode::NoError
        };
        h.receive_bytes(&answer(&request, rcode, 600), PRIMARY, OUR_ADDRESS);
        if name.name == labsrv() {
            first = Some(request);
        }
    }
    assert!(h.poll(100).is_empty());
    assert_eq!(h.state(labsrv()), NameState::Conflict);
    (h, first.expect("LABSRV<20> was asked for"))
}

fn refused_events(h: &mut H) -> usize {
    h.events()
        .into_iter()
        .filter(|e| matches!(e, NameEvent::Wins(WinsEvent::Refused { .. })))
        .count()
}

#[test]
fn a_refused_name_is_asked_for_again_after_60_s_and_is_ours_once_the_server_grants_it() {
    let h = H::started(NodeType::H, &[PRIMARY], &[(labsrv(), false)]);
    let (mut h, first) = refused(h);
    assert_eq!(h.wins(labsrv()).retry_at(), Some(at(60_100)));
    assert!(
        h.run(200, 60_000).is_empty(),
        "nothing before the back-off ends"
    );

    // The try: the same registration (unicast, RD, ONT H), a new transaction id.
    let sent = h.poll(60_100);
    assert_eq!(sent.len(), 1, "{sent:?}");
    let retry = &sent[0];
    assert_eq!(retry.to, to137(PRIMARY));
    assert_eq!(retry.flags_word(), 0x2900);
    assert_eq!(retry.nb_flags(), 0x6000);
    assert_ne!(retry.transaction_id(), first.transaction_id());
    assert_eq!(h.counters().conflict_retries.get(), 1);
    // Still in conflict while the server thinks: not answered, listed as Conflict.
    assert_eq!(h.state(labsrv()), NameState::Conflict);
    assert_eq!(
        h.wins(labsrv()).phase(),
        WinsPhase::Conflict {
            rcode: Rcode::Active
        }
    );
    assert!(!h.answers(labsrv(), PRIMARY));

    // The other owner is gone: nmbd sends a WACK, challenges it, gets no answer and grants.
    h.receive_bytes(&wack(retry, 5), PRIMARY, OUR_ADDRESS);
    assert!(
        h.run(60_200, 65_100).is_empty(),
        "a WACK: no retransmission"
    );
    assert_eq!(h.wins(labsrv()).retry_at(), Some(at(60_200 + 5_000)));
    assert_eq!(h.state(labsrv()), NameState::Conflict);
    h.receive_bytes(&answer(retry, Rcode::NoError, 40), PRIMARY, OUR_ADDRESS);
    assert_eq!(h.state(labsrv()), NameState::Active);
    assert_eq!(h.wins(labsrv()).phase(), WinsPhase::Registered);
    assert!(
        h.answers(labsrv(), PRIMARY),
        "ours: the challenge is answered"
    );
    assert!(h.poll(65_150).is_empty());
    assert_eq!(h.wins(labsrv()).refresh_at(), Some(at(65_150 + 20_000)));
    assert_eq!(h.wins(labsrv()).retry_at(), None);

    // Counted; logged once each: the refusal, the grant.
    assert_eq!(h.counters().refused.get(), 1);
    assert_eq!(h.counters().conflicts_resolved.get(), 1);
    assert_eq!(h.service.counters().conflicts.get(), 1);
    let events = h.events();
    assert_eq!(
        events,
        [
            NameEvent::Wins(WinsEvent::Refused {
                name: labsrv(),
                server: PRIMARY,
                rcode: Rcode::Active,
                retry_in: 60,
            }),
            NameEvent::Registered(labsrv()),
            NameEvent::Wins(WinsEvent::ConflictResolved {
                name: labsrv(),
                server: PRIMARY,
                ttl: 40,
            }),
        ]
    );
    assert_eq!(
        format!("{}", events[0]),
        "WINS 192.168.69.50 refused LABSRV<20> (ACT_ERR): in conflict, not answered; asking \
         again in 60 s"
    );
    assert_eq!(
        format!("{}", events[2]),
        "WINS 192.168.69.50 registered LABSRV<20> for 40 s, which it had refused: out of conflict"
    );
}

#[test]
fn refused_again_the_next_try_waits_twice_as_long_up_to_15_minutes() {
    let h = H::started(NodeType::P, &[PRIMARY], &[(labsrv(), false)]);
    let (mut h, _) = refused(h);
    let mut tries = Vec::new();
    let mut ms = 200;
    while ms <= 5_000_000 {
        for request in h.poll(ms) {
            assert_eq!((request.to, request.flags_word()), (to137(PRIMARY), 0x2900));
            tries.push(ms);
            h.receive_bytes(&answer(&request, Rcode::Active, 0), PRIMARY, OUR_ADDRESS);
            assert_eq!(h.state(labsrv()), NameState::Conflict);
        }
        ms += 100;
    }
    // Each wait is armed by the poll after the refusal (+100 ms): 60, 120, 240, 480, then
    // 900 s (960 capped), 900 s...
    assert_eq!(
        tries,
        [
            60_100, 180_200, 420_300, 900_400, 1_800_500, 2_700_600, 3_600_700, 4_500_800
        ]
    );
    assert_eq!(WINS_CONFLICT_RETRY_MIN, Duration::from_secs(60));
    assert_eq!(WINS_CONFLICT_RETRY_MAX, Duration::from_secs(900));
    assert_eq!(h.counters().conflict_retries.get(), 8);
    assert_eq!(h.counters().refused.get(), 9);
    assert_eq!(h.service.counters().conflicts.get(), 1, "one conflict");
    assert_eq!(refused_events(&mut h), 1, "logged once, not at every try");
    assert!(!h.service.is_released());
}

#[test]
fn unanswered_tries_keep_the_conflict_pass_to_the_secondary_and_never_broadcast() {
    let h = H::started(NodeType::H, &[PRIMARY, SECONDARY], &[(labsrv(), false)]);
    let (mut h, _) = refused(h);
    let sent = h.run(200, 198_100);
    let tries: Vec<_> = sent.iter().map(|(ms, s)| (*ms, s.to.address)).collect();
    // 3 tries 2 s apart at each server, then 120 s (doubled) from the end of the round.
    assert_eq!(
        tries,
        [
            (60_100, PRIMARY),
            (62_100, PRIMARY),
            (64_100, PRIMARY),
            (66_100, SECONDARY),
            (68_100, SECONDARY),
            (70_100, SECONDARY),
            (192_100, PRIMARY),
            (194_100, PRIMARY),
            (196_100, PRIMARY),
            (198_100, SECONDARY),
        ]
    );
    assert!(
        sent.iter().all(|(_, s)| s.flags_word() == 0x2900),
        "registrations only: no broadcast claim for an H-node's refused name"
    );
    assert_eq!(
        h.wins(labsrv()).phase(),
        WinsPhase::Conflict {
            rcode: Rcode::Active
        }
    );
    assert_eq!(h.state(labsrv()), NameState::Conflict);
    assert!(
        !h.events()
            .iter()
            .any(|e| matches!(e, NameEvent::Wins(WinsEvent::Silent { .. }))),
        "silence during a try is not the silence of a registration"
    );
    // The secondary grants it.
    let last = &sent.last().unwrap().1;
    h.receive_bytes(&answer(last, Rcode::NoError, 600), SECONDARY, OUR_ADDRESS);
    assert_eq!(h.state(labsrv()), NameState::Active);
    assert_eq!(h.service.wins_server(&h.wins(labsrv())), Some(SECONDARY));
}

#[test]
fn an_m_node_makes_no_broadcast_claim_while_the_server_refuses_the_name() {
    let mut h = H::started(NodeType::M, &[PRIMARY], &[(labsrv(), false)]);
    let claim = h.run(0, 900);
    let registration = &claim.last().unwrap().1;
    assert_eq!(registration.to, to137(PRIMARY));
    h.receive_bytes(
        &answer(registration, Rcode::Refused, 0),
        PRIMARY,
        OUR_ADDRESS,
    );
    assert_eq!(
        h.state(labsrv()),
        NameState::Conflict,
        "ours on the segment, not any more"
    );
    let sent = h.run(1_000, 61_000);
    assert_eq!(
        sent.iter().map(|(ms, s)| (*ms, s.to)).collect::<Vec<_>>(),
        [(61_000, to137(PRIMARY))],
        "one try at the server, nothing on the segment"
    );
    h.receive_bytes(
        &answer(&sent[0].1, Rcode::NoError, 600),
        PRIMARY,
        OUR_ADDRESS,
    );
    assert_eq!(h.state(labsrv()), NameState::Active);
    assert!(
        h.run(61_100, 70_000).is_empty(),
        "no claim after the grant either"
    );
}

#[test]
fn a_name_lost_on_the_segment_stays_in_conflict_for_good() {
    // An M-node's claim meets a defender (RFC 1001 §15.1.3.5): the name must not be used, and
    // the server is never asked for it.
    let mut h = H::started(NodeType::M, &[PRIMARY], &[(labsrv(), false)]);
    let claim = h.poll(0).remove(0);
    assert_eq!(claim.to, to137(SUBNET_BROADCAST));
    h.receive_bytes(&answer(&claim, Rcode::Active, 0), STRANGER, OUR_ADDRESS);
    assert_eq!(h.state(labsrv()), NameState::Conflict);
    assert_eq!(h.wins(labsrv()).phase(), WinsPhase::Idle);
    assert_eq!(h.wins(labsrv()).retry_at(), None);
    assert!(h.run(100, 2_000_000).is_empty());
    assert_eq!(h.service.poll_at(), None);
    assert_eq!(h.counters().conflict_retries.get(), 0);
}

#[test]
fn release_sends_nothing_to_the_server_for_a_name_in_conflict() {
    // Between tries: only the granted name is released at the server.
    let h = H::started(
        NodeType::P,
        &[PRIMARY],
        &[(labsrv(), false), (labgrp(), true)],
    );
    let (mut h, _) = refused(h);
    h.service.release(at(1_000));
    let sent = h.run(1_000, 200_000);
    assert_eq!(sent.len(), 3, "{sent:?}");
    for (_, s) in &sent {
        let Message::NameReleaseRequest { name, .. } = s.repr().message else {
            panic!("{s:?}")
        };
        assert_eq!(name.name, labgrp());
    }
    assert!(h.service.is_released());
    assert_eq!(h.service.poll_at(), None);
    assert_eq!(h.wins(labsrv()).retry_at(), None);

    // During a try: it stops, and a late grant does not take the name.
    let h = H::started(NodeType::H, &[PRIMARY], &[(labsrv(), false)]);
    let (mut h, _) = refused(h);
    let retry = h.poll(60_100).remove(0);
    h.service.release(at(61_000));
    assert!(h.run(61_000, 200_000).is_empty());
    assert!(h.service.is_released());
    h.receive_bytes(&answer(&retry, Rcode::NoError, 600), PRIMARY, OUR_ADDRESS);
    assert_eq!(h.counters().wrong_transaction.get(), 1);
    assert_eq!(h.state(labsrv()), NameState::Released);
    assert_eq!(h.counters().conflicts_resolved.get(), 0);
}

#[test]
fn spoofed_or_stale_grants_cannot_take_a_name_out_of_conflict() {
    let h = H::started(NodeType::H, &[PRIMARY], &[(labsrv(), false)]);
    let (mut h, first) = refused(h);
    // Before a try: nothing is awaited, not even the refused request's id.
    h.receive_bytes(&answer(&first, Rcode::NoError, 600), PRIMARY, OUR_ADDRESS);
    assert_eq!(h.counters().wrong_transaction.get(), 1);
    let retry = h.poll(60_100).remove(0);
    // The try's id from another address; the old id from the server.
    h.receive_bytes(&answer(&retry, Rcode::NoError, 600), STRANGER, OUR_ADDRESS);
    assert_eq!(h.counters().wrong_source.get(), 1);
    h.receive_bytes(&answer(&first, Rcode::NoError, 600), PRIMARY, OUR_ADDRESS);
    assert_eq!(h.counters().wrong_transaction.get(), 2);
    assert_eq!(h.state(labsrv()), NameState::Conflict);
    assert!(!h.answers(labsrv(), PRIMARY));
}

#[test]
fn the_first_wait_is_configurable_and_the_longest_never_below_it() {
    let config = WinsConfig::new(NodeType::H, &[PRIMARY]).unwrap();
    assert_eq!(config.conflict_retry(), WINS_CONFLICT_RETRY_MIN);
    let short = config.with_conflict_retry(Duration::from_secs(5));
    assert_eq!(short.conflict_retry_max(), WINS_CONFLICT_RETRY_MAX);
    let long = config.with_conflict_retry(Duration::from_secs(2_000));
    assert_eq!(long.conflict_retry_max(), Duration::from_secs(2_000));
    assert_eq!(
        config.with_conflict_retry(Duration::ZERO).conflict_retry(),
        Duration::from_secs(1),
        "never a tight loop"
    );

    let mut h = H::new(NodeType::H, &[PRIMARY], &[(labsrv(), false)]);
    h.service.configure_wins(short);
    h.service.start(at(0));
    let (mut h, _) = refused(h);
    let first_try = h.run(200, 5_100);
    assert_eq!(first_try.len(), 1);
    assert_eq!(first_try[0].0, 5_100);
    h.receive_bytes(
        &answer(&first_try[0].1, Rcode::Active, 0),
        PRIMARY,
        OUR_ADDRESS,
    );
    let second_try = h.run(5_200, 15_200);
    assert_eq!(
        second_try.iter().map(|(ms, _)| *ms).collect::<Vec<_>>(),
        [15_200]
    );
}

#[test]
fn an_end_node_challenge_answer_is_a_refusal_asked_about_again_too() {
    // An NBNS that leaves the challenge to us names the other owner: not ours, asked again.
    let mut h = H::started(NodeType::P, &[PRIMARY], &[(labsrv(), false)]);
    let first = h.poll(0).remove(0);
    let Message::NameRegistrationRequest { name, entry, .. } = first.repr().message else {
        panic!()
    };
    let challenge = emit(&Repr {
        transaction_id: first.transaction_id(),
        flags: Flags::RECURSION_DESIRED,
        message: Message::EndNodeChallengeResponse {
            name,
            ttl: 600,
            entry: AddrEntry {
                address: STRANGER,
                ..entry
            },
        },
    });
    h.receive_bytes(&challenge, PRIMARY, OUR_ADDRESS);
    assert_eq!(h.state(labsrv()), NameState::Conflict);
    assert_eq!(
        h.wins(labsrv()).phase(),
        WinsPhase::Conflict {
            rcode: Rcode::NoError
        }
    );
    assert_eq!(
        format!("{}", h.wins(labsrv()).phase()),
        "Conflict(challenge)"
    );
    let sent = h.run(100, 60_100);
    assert_eq!(
        sent.iter().map(|(ms, s)| (*ms, s.to)).collect::<Vec<_>>(),
        [(60_100, to137(PRIMARY))]
    );
}
