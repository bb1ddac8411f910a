//! The in-process twin of `scripts/lab-hostile.sh`'s lossy link: the hub's [`Impairment`]
//! (seeded loss, reordering, delay) checked on its own, and sessions over it between our node
//! and a plain smoltcp client, with every reset on the hub set beside the node's own count.

mod support;

use netbt::wire::name::{Name, NbName};
use netbt::wire::nbss;
use smoltcp::phy::{Device, RxToken as _, TxToken as _};
use smoltcp::socket::tcp::State;
use smoltcp::time::Duration;
use support::*;

const NBSS: u16 = 139;

/// Sends `count` numbered frames from `from` (one per millisecond) and returns the numbers
/// `to` received, in the order it received them, once everything is due.
fn numbered(hub: &Hub, from: &mut Port, to: &mut Port, count: u8) -> Vec<u8> {
    let mut got = Vec::new();
    for n in 0..count {
        let tx = from.transmit(hub.now()).unwrap();
        tx.consume(60, |frame| frame[0] = n);
        hub.advance(Duration::from_millis(1));
        while let Some((rx, _)) = to.receive(hub.now()) {
            got.push(rx.consume(|frame| frame[0]));
        }
    }
    hub.advance(Duration::from_millis(100));
    while let Some((rx, _)) = to.receive(hub.now()) {
        got.push(rx.consume(|frame| frame[0]));
    }
    got
}

#[test]
fn impairment_loses_delays_and_reorders_the_same_way_every_run() {
    let run = || {
        let hub = Hub::new();
        let (mut a, mut b) = (hub.port(), hub.port());
        hub.impair(b.index(), Some(Impairment::LOSSY));
        let got = numbered(&hub, &mut a, &mut b, 200);
        (
            got,
            hub.impair_counts(b.index()),
            hub.impair_counts(a.index()),
        )
    };
    let (got, counts, clean) = run();
    assert_eq!(run().0, got, "the same seed, the same fate");
    assert_eq!(clean, ImpairCounts::default(), "the sender's side is clean");
    assert_eq!(counts.frames, 200);
    assert_eq!(got.len() as u64, 200 - counts.lost);
    // 10 % loss and 25 % reordering of 200 frames, within generous bounds.
    assert!((8..=35).contains(&counts.lost), "{counts:?}");
    assert!((25..=75).contains(&counts.held_back), "{counts:?}");
    let overtaken = got.windows(2).filter(|w| w[0] > w[1]).count();
    assert!(overtaken > 10, "frames overtaken: {overtaken} in {got:?}");

    // A clean link again: in order, nothing lost, and nothing before its time.
    let hub = Hub::new();
    let (mut a, mut b) = (hub.port(), hub.port());
    assert_eq!(
        numbered(&hub, &mut a, &mut b, 50),
        (0..50).collect::<Vec<_>>()
    );
    hub.impair(
        b.index(),
        Some(Impairment {
            loss_percent: 0,
            reorder_percent: 0,
            delay: Duration::from_millis(5),
            ..Impairment::LOSSY
        }),
    );
    a.transmit(hub.now())
        .unwrap()
        .consume(60, |frame| frame[0] = 7);
    hub.advance(Duration::from_millis(4));
    assert!(b.receive(hub.now()).is_none(), "delivered before the delay");
    hub.advance(Duration::from_millis(1));
    assert!(b.receive(hub.now()).is_some());
}

fn request() -> Vec<u8> {
    let repr = nbss::Repr::SessionRequest {
        called: NbName::unscoped(Name::parse_text("LABSRV", 0x20).unwrap()),
        calling: NbName::unscoped(Name::parse_text("CLIENT", 0x00).unwrap()),
    };
    let mut bytes = vec![0; repr.buffer_len()];
    repr.emit(&mut nbss::Packet::new_unchecked(&mut bytes[..]));
    bytes
}

/// Sessions one after another over a lossy link both ways: each connects, asks, echoes a
/// message and closes. smoltcp's retransmissions carry every one through; whatever resets the
/// node sends on the way are all in its own count (the control document's `resets_sent`).
#[test]
fn sessions_over_a_lossy_link_complete_without_a_reset() {
    let hub = Hub::new();
    let mut node = TestNode::with_slots(&hub, config(NODE_MAC, NODE_IP), 2, 1, 4096);
    for text in ["LABSRV#00", "LABSRV#20"] {
        let name = Name::parse_text(text, 0x20).unwrap();
        node.node.names.add_name(name, false).unwrap();
        node.node.session_service().listen(name, None).unwrap();
    }
    node.node.names.start(hub.now());
    let mut client = Peer::new(&hub, PEER_MAC, PEER_IP);
    run(&hub, 800, &mut [&mut node, &mut client]);
    assert!(node.node.names.is_ready());
    hub.impair(node.port.index(), Some(Impairment::LOSSY));
    hub.impair(
        client.port.index(),
        Some(Impairment {
            seed: 51,
            ..Impairment::LOSSY
        }),
    );

    let body: Vec<u8> = (0..300u32).map(|i| (i * 7) as u8).collect();
    let mut message = vec![0, 0, 1, 44];
    message.extend_from_slice(&body);
    let mut intact = 0;
    for session in 0..12u16 {
        let handle = client.connect((NODE_IP, NBSS), 41000 + session, 64 * 1024);
        let mut got = Vec::new();
        let (mut asked, mut echoed, mut closed) = (false, false, false);
        for _ in 0..60_000 {
            run(&hub, 1, &mut [&mut node, &mut client]);
            let socket = client.tcp(handle);
            if !asked && socket.may_send() {
                socket.send_slice(&request()).unwrap();
                asked = true;
            }
            got.extend(client.read_all(handle));
            let socket = client.tcp(handle);
            if asked && !echoed && got.len() == 4 {
                assert_eq!(got, [0x82, 0, 0, 0], "session {session}: the answer");
                socket.send_slice(&message).unwrap();
                echoed = true;
            }
            if echoed && !closed && got.len() == 4 + message.len() {
                assert_eq!(got[4..], message, "session {session}: the echo");
                socket.close();
                closed = true;
            }
            if closed && matches!(socket.state(), State::Closed | State::TimeWait) {
                intact += 1;
                break;
            }
        }
        // The socket stays: a closed client keeps TIME-WAIT, as a real one does, and answers
        // a retransmitted FIN with an ACK rather than a reset.
    }
    // Let every close finish (TIME-WAIT, retransmissions, the node's close bound).
    run(&hub, 15_000, &mut [&mut node, &mut client]);
    let lost =
        hub.impair_counts(node.port.index()).lost + hub.impair_counts(client.port.index()).lost;
    let counted = node.node.session_service().counters().gate.resets_sent;
    let on_the_wire = hub.resets_from(NBSS);
    eprintln!(
        "lossy link: {intact} of 12 sessions intact, {lost} frames lost, {on_the_wire} resets from \
         139 on the hub, {} counted by the node",
        u32::from(counted)
    );
    // The conversation of every connection that drew a reset from 139, as the hub saw it.
    let seen = hub.seen();
    for reset in seen.iter().filter(|s| s.is_reset_from(NBSS)) {
        let Transport::Tcp { destination, .. } = reset.transport else {
            continue;
        };
        for s in seen.iter().filter(|s| {
            matches!(s.transport, Transport::Tcp { source, destination: d, .. }
                if source == destination || d == destination)
        }) {
            eprintln!("  {:>6} ms {:?}", s.at.total_millis(), s.transport);
        }
    }
    assert_eq!(intact, 12, "every session completes through the losses");
    assert!(lost > 10, "the link did lose frames ({lost})");
    assert_eq!(
        u32::from(counted) as usize,
        on_the_wire,
        "every reset sent is counted"
    );
    assert_eq!(
        on_the_wire, 0,
        "no reset from 139: the record answers late segments"
    );
}
