//! SMB mailslot write: `Repr::parse` never panics; a parsed write emits into exactly
//! `buffer_len()` bytes and parses back to the same `Repr` (the header fields the parser does not
//! look at are not compared).
#![no_main]

use core::fmt::Write as _;

use libfuzzer_sys::fuzz_target;
use netbt::wire::smb_mailslot::{Packet, Repr};

fuzz_target!(|data: &[u8]| {
    if let Ok(packet) = Packet::new_checked(data) {
        let _ = (
            packet.protocol(),
            packet.command(),
            packet.word_count(),
            packet.total_data_count(),
            packet.data_count(),
            packet.data_offset(),
            packet.setup_count(),
            packet.opcode(),
            packet.priority(),
            packet.class(),
            packet.byte_count(),
        );
    }
    let Ok(repr) = Repr::parse(&Packet::new_unchecked(data)) else {
        return;
    };
    let mut text = String::new();
    let _ = write!(text, "{repr} {repr:?}");
    let mut buf = vec![0u8; repr.buffer_len()];
    repr.emit(&mut Packet::new_unchecked(&mut buf[..]));
    // A mailslot name with a NUL cannot be what the parser returned (it stops at the first).
    let reparsed = Repr::parse(&Packet::new_unchecked(&buf[..]))
        .unwrap_or_else(|_| panic!("emitted write does not parse\nrepr: {repr:?}\nemitted: {buf:02x?}"));
    assert_eq!(repr, reparsed, "round trip changed the write\nemitted: {buf:02x?}");
});
