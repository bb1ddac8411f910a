//! Datagram service (UDP 138): `Repr::parse` never panics; a parsed packet emits into exactly
//! `buffer_len()` bytes and parses back to the same `Repr`, byte for byte (bytes the parser
//! ignores, after `DGM_LENGTH`, the error code or the query name, are not compared).
#![no_main]

use core::fmt::Write as _;

use libfuzzer_sys::fuzz_target;
use netbt::wire::nbds::{Packet, Repr};

/// Calls every read accessor; none may panic once `new_checked` accepted the buffer.
fn touch_accessors(data: &[u8]) {
    if let Ok(packet) = Packet::new_checked(data) {
        let _ = packet.msg_type();
        let _ = packet.flags();
        let _ = packet.datagram_id();
        let _ = packet.source_ip();
        let _ = packet.source_port();
        let _ = packet.datagram_length();
        let _ = packet.packet_offset();
        let _ = packet.error_code();
        let _ = packet.payload();
    }
    // These promise never to panic, checked or not (`payload` needs the type byte).
    let packet = Packet::new_unchecked(data);
    let _ = packet.datagram_length();
    let _ = packet.packet_offset();
    let _ = packet.error_code();
    if !data.is_empty() {
        let _ = packet.payload();
    }
}

fuzz_target!(|data: &[u8]| {
    touch_accessors(data);

    let Ok(repr) = Repr::parse(&Packet::new_unchecked(data)) else {
        return;
    };
    let mut text = String::new();
    let _ = write!(text, "{repr} {repr:?}");

    let len = repr.buffer_len();
    let mut buf = vec![0u8; len];
    repr.emit(&mut Packet::new_unchecked(&mut buf[..]));
    touch_accessors(&buf);

    let packet = Packet::new_checked(&buf[..]).expect("emitted packet fails check_len");
    let reparsed = Repr::parse(&packet).unwrap_or_else(|_| {
        panic!("emitted packet does not parse\nrepr: {repr:?}\nemitted: {buf:02x?}")
    });
    assert_eq!(repr, reparsed, "round trip changed the packet\nemitted: {buf:02x?}");

    assert!(len <= data.len(), "emit is longer than the parsed input");
    assert_eq!(
        &buf[..],
        &data[..len],
        "emit is not byte-identical to the parsed input\nrepr: {repr:?}"
    );
});
