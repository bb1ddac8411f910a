//! Browser frames: `Repr::parse` never panics; a parsed frame emits into exactly `buffer_len()`
//! bytes and parses back to the same `Repr` (bytes after a NUL the parser stopped at are not
//! compared).
#![no_main]

use core::fmt::Write as _;

use libfuzzer_sys::fuzz_target;
use netbt::wire::browser::{Packet, Repr};

fuzz_target!(|data: &[u8]| {
    if let Ok(packet) = Packet::new_checked(data) {
        let _ = (packet.opcode(), packet.body());
    }
    let Ok(repr) = Repr::parse(&Packet::new_unchecked(data)) else {
        return;
    };
    let mut text = String::new();
    let _ = write!(text, "{repr} {repr:?}");
    let mut buf = vec![0u8; repr.buffer_len()];
    repr.emit(&mut buf);
    let reparsed = Repr::parse(&Packet::new_unchecked(&buf[..]))
        .unwrap_or_else(|_| panic!("emitted frame does not parse\nrepr: {repr:?}\nemitted: {buf:02x?}"));
    assert_eq!(repr, reparsed, "round trip changed the frame\nemitted: {buf:02x?}");
});
