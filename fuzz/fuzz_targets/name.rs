//! NetBIOS and domain names: the label parsers never panic, with or without compression
//! pointers, at any offset; a parsed name emits into exactly `wire_len()` bytes and parses back
//! to the same name. The text parsers never panic, and what they accept round-trips too.
//!
//! Input layout: byte 0 picks the offset, the rest is the message.
#![no_main]

use core::fmt::Write as _;

use libfuzzer_sys::fuzz_target;
use netbt::wire::name::{DomainName, Name, NbName, Pointers, Scope};

const COMPRESSED: Pointers = Pointers::Backwards { floor: 12 };

/// Emits `name`, checks the length, parses it back (no pointers) and compares.
fn round_trip_nb(name: &NbName) {
    let len = name.wire_len();
    let mut buf = vec![0u8; len];
    assert_eq!(name.emit(&mut buf), len, "NbName::emit length != wire_len");
    let (again, end) = NbName::parse(&buf, 0, Pointers::Forbidden).unwrap_or_else(|_| {
        panic!("emitted NbName does not parse\nname: {name:?}\nemitted: {buf:02x?}")
    });
    assert_eq!(end, len, "re-parse of {name:?} stops at {end}, not {len}");
    assert_eq!(*name, again, "NbName round trip\nemitted: {buf:02x?}");
    assert!(name.matches(&again));
}

fn round_trip_domain(name: &DomainName) {
    let len = name.wire_len();
    let mut buf = vec![0u8; len];
    assert_eq!(name.emit(&mut buf), len, "DomainName::emit length != wire_len");
    let (again, end) = DomainName::parse(&buf, 0, Pointers::Forbidden).unwrap_or_else(|_| {
        panic!("emitted DomainName does not parse\nname: {name:?}\nemitted: {buf:02x?}")
    });
    assert_eq!(end, len, "re-parse of {name:?} stops at {end}, not {len}");
    assert_eq!(*name, again, "DomainName round trip\nemitted: {buf:02x?}");
}

fn wire(message: &[u8], offset: usize) {
    for pointers in [Pointers::Forbidden, COMPRESSED] {
        if let Ok((name, end)) = NbName::parse(message, offset, pointers) {
            assert!(end > offset && end <= message.len(), "NbName end {end} out of range");
            let mut text = String::new();
            let _ = write!(text, "{name} {name:?}");
            let _ = name.name.base();
            let _ = name.name.is_wildcard();
            let _ = name.scope.labels().count();
            round_trip_nb(&name);
            if pointers == Pointers::Forbidden {
                // Without pointers the parser read exactly what emit writes.
                let mut buf = vec![0u8; name.wire_len()];
                name.emit(&mut buf);
                assert_eq!(&message[offset..end], &buf[..], "NbName not read verbatim");
            }
        }
        if let Ok((name, end)) = DomainName::parse(message, offset, pointers) {
            assert!(end > offset && end <= message.len(), "DomainName end {end} out of range");
            let mut text = String::new();
            let _ = write!(text, "{name} {name:?}");
            round_trip_domain(&name);
            if pointers == Pointers::Forbidden {
                let mut buf = vec![0u8; name.wire_len()];
                name.emit(&mut buf);
                assert_eq!(&message[offset..end], &buf[..], "DomainName not read verbatim");
            }
        }
    }
}

fn text(input: &str) {
    if let Ok(name) = Name::parse_text(input, Name::SUFFIX_SERVER) {
        let mut text = String::new();
        let _ = write!(text, "{name} {name:?}");
        assert_eq!(Name::decode(&name.encode()), Ok(name), "first-level encoding round trip");
        round_trip_nb(&NbName::unscoped(name));
    }
    if let Ok(scope) = Scope::parse_text(input) {
        let mut text = String::new();
        let _ = write!(text, "{scope} {scope:?}");
        round_trip_nb(&NbName::new(Name::WILDCARD, scope));
    }
    if let Ok(domain) = DomainName::parse_text(input) {
        round_trip_domain(&domain);
    }
    // `NAME#XX` and a scope from one input, split at the first '/'.
    if let Some((name, scope)) = input.split_once('/') {
        if let Ok(nb) = NbName::parse_text(name, 0, scope) {
            round_trip_nb(&nb);
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&first, message)) = data.split_first() else {
        return;
    };
    // Any offset up to and including the end (the end itself must fail cleanly).
    let offset = usize::from(first) % (message.len() + 1);
    wire(message, offset);
    if offset != 12 {
        // Where a name sits in a name service packet: pointers can reach back to 12.
        wire(message, 12);
    }
    if offset != 0 {
        wire(message, 0);
    }

    if let Ok(input) = core::str::from_utf8(data) {
        text(input);
    } else {
        text(&String::from_utf8_lossy(data));
    }
    // Exercise decode directly on any 32-byte window.
    if let Some(window) = message.get(..32) {
        if let Ok(name) = Name::decode(window) {
            assert_eq!(&name.encode()[..], window, "decode/encode round trip");
        }
    }
});
