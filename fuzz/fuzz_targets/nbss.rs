//! Session service (TCP 139): `Repr::parse` never panics; a parsed frame emits and parses back
//! to the same `Repr`. A session message's emit writes only the 4-byte header, which must equal
//! the input's header; every other frame must come back byte for byte.
#![no_main]

use core::fmt::Write as _;

use libfuzzer_sys::fuzz_target;
use netbt::wire::nbss::{HEADER_LEN, Packet, Repr};

/// Calls every read accessor; none may panic once `new_checked` accepted the buffer.
fn touch_accessors(data: &[u8]) {
    if let Ok(packet) = Packet::new_checked(data) {
        let _ = packet.msg_type();
        let _ = packet.flags();
        let _ = packet.length();
        let _ = packet.total_len();
        let payload = packet.payload();
        assert!(payload.len() <= packet.length() as usize);
        assert!(HEADER_LEN + payload.len() <= data.len());
    }
}

fuzz_target!(|data: &[u8]| {
    touch_accessors(data);

    let Ok(repr) = Repr::parse(&Packet::new_unchecked(data)) else {
        return;
    };
    let mut text = String::new();
    let _ = write!(text, "{repr} {repr:?}");
    let _ = repr.msg_type();
    let _ = repr.body_len();

    let mut buf = match repr {
        // The body is the caller's business: the header alone must be enough.
        Repr::SessionMessage { .. } => vec![0u8; HEADER_LEN],
        _ => vec![0u8; repr.buffer_len()],
    };
    repr.emit(&mut Packet::new_unchecked(&mut buf[..]));
    touch_accessors(&buf);

    let packet = Packet::new_checked(&buf[..]).expect("emitted frame fails check_len");
    let reparsed = Repr::parse(&packet).unwrap_or_else(|_| {
        panic!("emitted frame does not parse\nrepr: {repr:?}\nemitted: {buf:02x?}")
    });
    assert_eq!(repr, reparsed, "round trip changed the frame\nemitted: {buf:02x?}");

    // Parsing only accepts what emit writes: the header (and, but for a session message, the
    // body) comes back byte for byte.
    assert_eq!(
        &buf[..],
        &data[..buf.len()],
        "emit is not byte-identical to the parsed input\nrepr: {repr:?}"
    );
});
