//! Name service (UDP 137): `Repr::parse` never panics; a parsed packet emits into exactly
//! `buffer_len()` bytes and parses back to the same `Repr`.
#![no_main]

use core::fmt::Write as _;

use libfuzzer_sys::fuzz_target;
use netbt::wire::nbns::{Packet, Repr};

/// Calls every read accessor; none may panic once `new_checked` accepted the buffer.
fn touch_accessors(data: &[u8]) {
    if let Ok(packet) = Packet::new_checked(data) {
        let _ = packet.transaction_id();
        let _ = packet.flags_word();
        let _ = packet.is_response();
        let _ = packet.opcode();
        let _ = packet.flags();
        let _ = packet.reserved_bits();
        let _ = packet.rcode();
        let _ = packet.question_count();
        let _ = packet.answer_count();
        let _ = packet.authority_count();
        let _ = packet.additional_count();
        let _ = packet.payload();
    }
}

fuzz_target!(|data: &[u8]| {
    touch_accessors(data);

    let Ok(repr) = Repr::parse(&Packet::new_unchecked(data)) else {
        return;
    };
    // Display and Debug must not panic either.
    let mut text = String::new();
    let _ = write!(text, "{repr} {repr:?}");
    let _ = repr.message.name();
    let _ = repr.message.is_response();
    let _ = repr.wire_flags();

    let len = repr.buffer_len();
    let mut buf = vec![0u8; len];
    repr.emit(&mut Packet::new_unchecked(&mut buf[..]));
    touch_accessors(&buf);

    let packet = Packet::new_checked(&buf[..]).expect("emitted packet fails check_len");
    let reparsed = Repr::parse(&packet).unwrap_or_else(|_| {
        panic!("emitted packet does not parse\nrepr: {repr:?}\nemitted: {buf:02x?}")
    });
    assert_eq!(
        repr, reparsed,
        "round trip changed the packet\nemitted: {buf:02x?}"
    );
});
