//! The announcer's unit tests: the schedule on a stepping clock, the AnnouncementRequest delay,
//! the shutdown announcement, what is ignored.

use super::*;
use crate::datagram_service::tests::registered_names;
use crate::name_service::{NAME_EVENTS, NameServiceConfig};
use crate::wire::browser::Repr;
use smoltcp::wire::{Ipv4Address, Ipv4Cidr};
use std::vec::Vec;

fn name(text: &str) -> Name {
    Name::parse_text(text, 0).unwrap()
}

fn at_secs(secs: i64) -> Instant {
    Instant::from_secs(secs)
}

/// The browser frame of an announcement, parsed.
fn parsed(announcement: &HostAnnouncement) -> Announcement<'_> {
    match Repr::parse(&browser::Packet::new_unchecked(announcement.frame())) {
        Ok(Repr::HostAnnouncement(a)) => a,
        other => panic!("not a host announcement: {other:?}"),
    }
}

/// Polls every second from `from` to `to` (seconds), collecting (second, announcement).
fn run(
    announcer: &mut BrowseAnnouncer,
    names: &NameService,
    from: i64,
    to: i64,
) -> Vec<(i64, HostAnnouncement)> {
    let mut sent = Vec::new();
    for second in from..=to {
        while let Some(a) = announcer.poll(at_secs(second), names) {
            sent.push((second, a));
        }
    }
    sent
}

/// A mailslot write of `frame` to `mailslot`, as the announcer receives it.
fn write(mailslot: &[u8], frame: &[u8]) -> Vec<u8> {
    let repr = smb_mailslot::Repr::new(mailslot, frame);
    let mut buf = std::vec![0; repr.buffer_len()];
    repr.emit(&mut smb_mailslot::Packet::new_unchecked(&mut buf[..]));
    buf
}

const REQUEST: &[u8] = b"\x02\x00NMBD\x00";

fn request(announcer: &mut BrowseAnnouncer, to: &str, mailslot: &[u8], now: Instant) {
    let bytes = write(mailslot, REQUEST);
    announcer.receive(
        Inbound {
            destination: name(to),
            data: &bytes,
        },
        now,
    );
}

#[test]
fn the_schedule_is_1_1_2_4_8_then_12_minutes_with_periodicity_the_next_interval() {
    let names = registered_names();
    let mut announcer = BrowseAnnouncer::new(1);
    announcer.set_comment(b"netbt test").unwrap();
    let sent = run(&mut announcer, &names, 0, 60 * 60);
    let minutes: Vec<i64> = sent.iter().map(|(s, _)| s / 60).collect();
    assert_eq!(minutes, [0, 1, 2, 4, 8, 16, 28, 40, 52]);
    assert!(sent.iter().all(|(s, _)| s % 60 == 0), "on the minute");
    let periods: Vec<u32> = sent.iter().map(|(_, a)| parsed(a).periodicity_ms).collect();
    assert_eq!(
        periods,
        [
            60_000, 60_000, 120_000, 240_000, 480_000, 720_000, 720_000, 720_000, 720_000
        ]
    );
    let (_, first) = &sent[0];
    assert_eq!(first.source, name("LABSRV"));
    assert_eq!(first.destination, name("WORKGROUP#1d"));
    let frame = parsed(first);
    assert_eq!(frame.server_name, b"LABSRV");
    assert_eq!(frame.server_type, ServerType::NETBT);
    assert_eq!(
        frame.server_type.0 & ServerType::BROWSER_BITS.0,
        0,
        "never a browser"
    );
    assert_eq!(frame.comment, b"netbt test");
    assert_eq!(frame.update_count, 0);
    assert_eq!(frame.signature, 0xaa55);
    assert_eq!(announcer.counters().announcements_sent, 9);
    assert_eq!(announcer.workgroup(), Some(name("WORKGROUP")));
    assert_eq!(announcer.next_due(), Some(at_secs(64 * 60)));
}

#[test]
fn a_fixed_interval_replaces_the_schedule() {
    let names = registered_names();
    let mut announcer = BrowseAnnouncer::new(1);
    announcer.set_interval(Some(Duration::from_secs(5)));
    let sent = run(&mut announcer, &names, 100, 120);
    let seconds: Vec<i64> = sent.iter().map(|(s, _)| *s).collect();
    assert_eq!(seconds, [100, 105, 110, 115, 120]);
    assert!(sent.iter().all(|(_, a)| parsed(a).periodicity_ms == 5_000));
}

#[test]
fn nothing_is_announced_without_a_registered_workgroup() {
    let mut names = names_added("WORKGROUP");
    let mut announcer = BrowseAnnouncer::new(1);
    // Added but not registered yet.
    assert!(run(&mut announcer, &names, 0, 10).is_empty());
    assert_eq!(announcer.poll_at(), None);
    names.start(at_secs(20));
    for ms in [0, 250, 500, 750] {
        names.poll(at_secs(20) + Duration::from_millis(ms), &mut |_, _| {});
    }
    let sent = run(&mut announcer, &names, 21, 21);
    assert_eq!(sent.len(), 1, "at once when the names are ours");
    // A group with another suffix is not a workgroup.
    let mut names = registered_names_without_workgroup();
    let mut announcer = BrowseAnnouncer::new(1);
    assert!(run(&mut announcer, &names, 0, 100).is_empty());
    names.release(at_secs(0));
}

/// A name service at 192.168.69.1 with LABSRV<00> and the group `group` added, not started.
fn names_added(group: &str) -> NameService<'static> {
    let mut names = NameService::new(
        NameServiceConfig {
            address: Ipv4Cidr::new(Ipv4Address::new(192, 168, 69, 1), 24),
            mac: [2, 0, 0, 0, 0, 1],
            hide_mac: false,
            scope: crate::wire::name::Scope::NONE,
        },
        3,
        vec![None; NAME_EVENTS].leak(),
    );
    names.add_name(name("LABSRV"), false).unwrap();
    names.add_name(name(group), true).unwrap();
    names
}

fn registered_names_without_workgroup() -> NameService<'static> {
    let mut names = names_added("TEAM#03");
    names.start(Instant::ZERO);
    for ms in [0, 250, 500, 750] {
        names.poll(Instant::from_millis(ms), &mut |_, _| {});
    }
    assert!(names.is_ready());
    names
}

#[test]
fn an_announcement_request_adds_one_announcement_within_30_seconds() {
    let names = registered_names();
    let mut delays = Vec::new();
    for seed in 0..200u64 {
        let mut announcer = BrowseAnnouncer::new(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        assert_eq!(run(&mut announcer, &names, 0, 0).len(), 1);
        // A request at 10 s, and for half the seeds two more (to <1E>, and on LANMAN): still
        // one extra announcement.
        request(
            &mut announcer,
            "WORKGROUP",
            smb_mailslot::BROWSE,
            at_secs(10),
        );
        if seed % 2 == 1 {
            request(
                &mut announcer,
                "WORKGROUP#1e",
                smb_mailslot::BROWSE,
                at_secs(10),
            );
            request(
                &mut announcer,
                "WORKGROUP#1e",
                smb_mailslot::LANMAN,
                at_secs(11),
            );
            assert_eq!(announcer.counters().announcement_requests, 3);
        }
        let mut extra = Vec::new();
        for ms in (10_000..59_000).step_by(100) {
            while let Some(a) = announcer.poll(Instant::from_millis(ms), &names) {
                extra.push((ms, a));
            }
        }
        assert_eq!(extra.len(), 1, "seed {seed}: one extra announcement");
        let (ms, a) = &extra[0];
        assert!((10_000..=40_000).contains(ms), "seed {seed}: at {ms} ms");
        assert_eq!(parsed(a).server_type, ServerType::NETBT);
        if seed % 2 == 0 {
            delays.push(ms - 10_000);
        }
        // The schedule goes on: the next one at 1 minute.
        let next = run(&mut announcer, &names, 59, 61);
        assert_eq!(next.len(), 1);
        assert_eq!(next[0].0, 60);
        assert_eq!(announcer.counters().requested_announcements, 1);
    }
    assert!(
        delays.iter().any(|&d| d < 5_000),
        "delays spread: {delays:?}"
    );
    assert!(
        delays.iter().any(|&d| d > 25_000),
        "delays spread: {delays:?}"
    );
}

#[test]
fn requests_for_other_workgroups_and_other_frames_are_ignored_and_counted() {
    let names = registered_names();
    let mut announcer = BrowseAnnouncer::new(1);
    run(&mut announcer, &names, 0, 0);
    request(
        &mut announcer,
        "OTHERGROUP#1e",
        smb_mailslot::BROWSE,
        at_secs(1),
    );
    request(
        &mut announcer,
        "WORKGROUP#1d",
        smb_mailslot::BROWSE,
        at_secs(1),
    );
    let election = write(smb_mailslot::BROWSE, b"\x08\x01\x00\x00\x00\x00");
    let lanman = write(smb_mailslot::LANMAN, b"\x01\x00\x00\x00");
    let logon = write(smb_mailslot::NETLOGON, b"\x07\x00");
    let other = write(b"\\MAILSLOT\\APP", b"\x02\x00");
    for bytes in [&election, &lanman, &logon, &other] {
        announcer.receive(
            Inbound {
                destination: name("WORKGROUP#1e"),
                data: bytes,
            },
            at_secs(1),
        );
    }
    // Not a mailslot write at all.
    announcer.receive(
        Inbound {
            destination: name("WORKGROUP"),
            data: b"raw",
        },
        at_secs(1),
    );
    let counters = announcer.counters();
    assert_eq!(counters.announcement_requests, 0);
    assert_eq!(counters.browser_frames_ignored, 3);
    assert_eq!(counters.lanman_frames_ignored, 1);
    assert_eq!(counters.logon_frames_ignored, 1);
    assert!(
        run(&mut announcer, &names, 1, 59).is_empty(),
        "no extra announcement"
    );
}

#[test]
fn shutdown_sends_server_type_zero_once_then_nothing() {
    let names = registered_names();
    let mut announcer = BrowseAnnouncer::new(1);
    assert_eq!(
        announcer.shut_down(),
        None,
        "nothing announced, nothing to take back"
    );
    let mut announcer = BrowseAnnouncer::new(1);
    announcer.set_comment(b"bye").unwrap();
    run(&mut announcer, &names, 0, 90);
    let last = announcer.shut_down().expect("the last announcement");
    let frame = parsed(&last);
    assert_eq!(frame.server_type, ServerType(0));
    assert_eq!(frame.server_name, b"LABSRV");
    assert_eq!(last.destination, name("WORKGROUP#1d"));
    assert_eq!(announcer.shut_down(), None);
    assert!(run(&mut announcer, &names, 91, 2000).is_empty());
    assert_eq!(announcer.next_due(), None);
    assert_eq!(announcer.counters().announcements_sent, 3);
}

#[test]
fn comments_are_printable_ascii_up_to_43_bytes() {
    let mut announcer = BrowseAnnouncer::new(1);
    assert!(announcer.set_comment(&[b'x'; COMMENT_MAX]).is_ok());
    assert_eq!(
        announcer.set_comment(&[b'x'; COMMENT_MAX + 1]),
        Err(CommentError)
    );
    assert_eq!(announcer.set_comment(b"nul\0"), Err(CommentError));
    assert_eq!(announcer.set_comment("é".as_bytes()), Err(CommentError));
    assert_eq!(announcer.comment(), &[b'x'; COMMENT_MAX]);
}

#[test]
fn scheduled_intervals() {
    let minutes: Vec<u64> = (0..8).map(|n| scheduled_interval(n).secs() / 60).collect();
    assert_eq!(minutes, [1, 1, 2, 4, 8, 12, 12, 12]);
    assert_eq!(scheduled_interval(u32::MAX).secs(), 720);
}
