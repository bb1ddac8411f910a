//! The NetBIOS session service on TCP 139 (RFC 1002 §4.3).
//!
//! Every session service frame on the TCP stream starts with a 4-byte header:
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |      TYPE     |     FLAGS   |E|            LENGTH             |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//!
//! `E` (the low bit of `FLAGS`) is the 17th, most significant bit of the body length, so a body
//! has at most [`MAX_LENGTH`] (131 071) bytes. The other seven flag bits are reserved and must be
//! zero. The body follows the header; its meaning depends on the [`MessageType`].
//!
//! * [`Packet`] is a zero-copy view of one frame. Its length check covers the header only: the
//!   body of a session message is streamed and may be incomplete in the buffer.
//! * [`Repr`] is the validated meaning of a frame. For session messages it carries only the
//!   declared length (the payload is the caller's business, as in smoltcp's `UdpRepr`); every
//!   other frame must be present in full and its length must fit its type exactly.

use core::fmt;

use smoltcp::wire::Ipv4Address;

use super::name::{NbName, Pointers};
use super::{Error, Result, read_u16};

/// Bytes in the session service header.
pub const HEADER_LEN: usize = field::LENGTH.end;

/// Largest body length the 17-bit length field (`E` bit and 16 bits) can carry.
pub const MAX_LENGTH: u32 = 0x1FFFF;

mod field {
    #![allow(non_snake_case)]

    use crate::wire::field::Field;

    /// The message type.
    pub const TYPE: usize = 0;
    /// The flags; bit 0 is `E`, the others are reserved.
    pub const FLAGS: usize = 1;
    /// The low 16 bits of the body length.
    pub const LENGTH: Field = 2..4;

    /// The `E` flag: bit 16 of the body length.
    pub const FLAG_E: u8 = 0x01;
    /// Flag bits that must be zero.
    pub const FLAGS_RESERVED: u8 = !FLAG_E;

    /// The body, for a frame of `total` bytes (header included) in a buffer of `available`
    /// bytes: as much of it as the buffer holds.
    pub const fn BODY(total: usize, available: usize) -> Field {
        let end = if total < available { total } else { available };
        LENGTH.end..end
    }

    /// Error code of a negative session response.
    pub const NEGATIVE_CODE: usize = LENGTH.end;
    /// Address of a retarget session response.
    pub const RETARGET_ADDRESS: Field = LENGTH.end..LENGTH.end + 4;
    /// Port of a retarget session response.
    pub const RETARGET_PORT: Field = RETARGET_ADDRESS.end..RETARGET_ADDRESS.end + 2;
}

/// Body length of a negative session response.
const NEGATIVE_BODY_LEN: u32 = 1;
/// Body length of a retarget session response.
const RETARGET_BODY_LEN: u32 = (field::RETARGET_PORT.end - HEADER_LEN) as u32;

wire_enum! {
    /// The `TYPE` of a session service frame (RFC 1002 §4.3.1).
    pub enum MessageType(u8) {
        /// `SESSION MESSAGE`: data of an established session.
        SessionMessage = 0x00,
        /// `SESSION REQUEST`: the calling node asks for a session with the called name.
        SessionRequest = 0x81,
        /// `POSITIVE SESSION RESPONSE`: the called name accepted the session.
        PositiveResponse = 0x82,
        /// `NEGATIVE SESSION RESPONSE`: the session request was refused; the body is an error
        /// code.
        NegativeResponse = 0x83,
        /// `RETARGET SESSION RESPONSE`: the caller should retry at another address and port.
        RetargetResponse = 0x84,
        /// `SESSION KEEP ALIVE`: keeps an idle session open; the receiver ignores it.
        KeepAlive = 0x85,
    }
}

wire_enum! {
    /// The error code of a negative session response (RFC 1002 §4.3.4).
    pub enum NegativeCode(u8) {
        /// `0x80`: not listening on called name.
        NotListeningOnCalledName = 0x80,
        /// `0x81`: not listening for calling name.
        NotListeningForCallingName = 0x81,
        /// `0x82`: called name not present.
        CalledNameNotPresent = 0x82,
        /// `0x83`: called name present, but insufficient resources.
        InsufficientResources = 0x83,
        /// `0x8F`: unspecified error.
        Unspecified = 0x8F,
    }
}

words! {
    /// The meaning of the code as RFC 1002 §4.3.4 words it (`"Called name not present"`), or
    /// `"Unknown error code"` for a code the RFC does not define.
    pub fn description / format_description for NegativeCode {
        NegativeCode::NotListeningOnCalledName => "Not listening on called name",
        NegativeCode::NotListeningForCallingName => "Not listening for calling name",
        NegativeCode::CalledNameNotPresent => "Called name not present",
        NegativeCode::InsufficientResources => "Called name present, but insufficient resources",
        NegativeCode::Unspecified => "Unspecified error",
        NegativeCode::Unknown(_) => "Unknown error code",
    }
}

impl fmt::Display for NegativeCode {
    /// The RFC's words and the code, e.g. `Called name present, but insufficient resources
    /// (0x83)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({:#04x})", self.description(), u8::from(*self))
    }
}

/// A read/write wrapper around one session service frame.
///
/// The buffer starts with the frame header. It may end before the frame does (a session message
/// that is still arriving) or after it (the next frames of the stream); [`Packet::total_len`]
/// tells how many bytes the frame takes.
#[derive(Debug, PartialEq, Eq, Clone)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Imbues a raw octet buffer with session service frame structure.
    pub const fn new_unchecked(buffer: T) -> Packet<T> {
        Packet { buffer }
    }

    /// Shorthand for a combination of [`Packet::new_unchecked`] and [`Packet::check_len`].
    pub fn new_checked(buffer: T) -> Result<Packet<T>> {
        let packet = Self::new_unchecked(buffer);
        packet.check_len()?;
        Ok(packet)
    }

    /// Ensures that no accessor method will panic if called.
    ///
    /// Returns `Err(Error)` if the buffer is shorter than the 4-byte header. Only the header is
    /// required: the body of a session message is streamed and may be partial, so the buffer
    /// may hold fewer than [`Packet::total_len`] bytes, and [`Packet::payload`] then returns the
    /// part that is present. [`Repr::parse`] checks the body where the type needs one.
    pub fn check_len(&self) -> Result<()> {
        if self.buffer.as_ref().len() < HEADER_LEN {
            Err(Error)
        } else {
            Ok(())
        }
    }

    /// Consumes the packet, returning the underlying buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Returns the message type field.
    #[inline]
    pub fn msg_type(&self) -> MessageType {
        let data = self.buffer.as_ref();
        MessageType::from(data[field::TYPE])
    }

    /// Returns the raw flags field, `E` bit included.
    #[inline]
    pub fn flags(&self) -> u8 {
        let data = self.buffer.as_ref();
        data[field::FLAGS]
    }

    /// Returns the 17-bit body length: the `E` flag as bit 16, then the 16-bit length field.
    /// The header is not counted.
    #[inline]
    pub fn length(&self) -> u32 {
        let data = self.buffer.as_ref();
        let high = u32::from(data[field::FLAGS] & field::FLAG_E) << 16;
        let low = u16::from_be_bytes([data[field::LENGTH.start], data[field::LENGTH.start + 1]]);
        high | u32::from(low)
    }

    /// Returns the bytes the whole frame takes: the header and the body length.
    #[inline]
    pub fn total_len(&self) -> usize {
        HEADER_LEN + self.length() as usize
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> Packet<&'a T> {
    /// Returns the body: the bytes after the header, up to [`Packet::length`] of them, or fewer
    /// if the buffer ends first. Bytes after the frame are not included.
    #[inline]
    pub fn payload(&self) -> &'a [u8] {
        let total = self.total_len();
        let data = self.buffer.as_ref();
        &data[field::BODY(total, data.len())]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Sets the message type field.
    #[inline]
    pub fn set_msg_type(&mut self, value: MessageType) {
        let data = self.buffer.as_mut();
        data[field::TYPE] = value.into();
    }

    /// Sets the raw flags field, `E` bit included.
    #[inline]
    pub fn set_flags(&mut self, value: u8) {
        let data = self.buffer.as_mut();
        data[field::FLAGS] = value;
    }

    /// Sets the 17-bit body length: bit 16 goes to the `E` flag (the reserved flag bits are
    /// left alone), the low 16 bits to the length field. Only the low 17 bits of `value` are
    /// used; a length above [`MAX_LENGTH`] cannot be represented.
    #[inline]
    pub fn set_length(&mut self, value: u32) {
        let data = self.buffer.as_mut();
        let e = ((value >> 16) as u8) & field::FLAG_E;
        data[field::FLAGS] = (data[field::FLAGS] & !field::FLAG_E) | e;
        data[field::LENGTH].copy_from_slice(&(value as u16).to_be_bytes());
    }

    /// Returns the body, mutably: the bytes after the header, up to [`Packet::length`] of them,
    /// or fewer if the buffer ends first. Set the length first.
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let total = self.total_len();
        let data = self.buffer.as_mut();
        let body = field::BODY(total, data.len());
        &mut data[body]
    }
}

impl<T: AsRef<[u8]>> AsRef<[u8]> for Packet<T> {
    fn as_ref(&self) -> &[u8] {
        self.buffer.as_ref()
    }
}

/// A high-level representation of a session service frame.
///
/// The representation is a plain `Copy` value without allocation, so a session request (two
/// names with their scopes) makes it about half a kilobyte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(
    clippy::large_enum_variant,
    reason = "no_std without alloc: the names cannot be boxed"
)]
pub enum Repr {
    /// A session message whose body (the session data) has `length` bytes. The body is not
    /// part of the representation: it is read from [`Packet::payload`] as it arrives and
    /// written by the caller after [`Repr::emit`].
    SessionMessage {
        /// Body length, at most [`MAX_LENGTH`].
        length: u32,
    },
    /// A session request from `calling` to `called`.
    SessionRequest {
        /// The name the session is asked for.
        called: NbName,
        /// The name of the node that asks.
        calling: NbName,
    },
    /// The session was accepted.
    PositiveResponse,
    /// The session was refused.
    NegativeResponse {
        /// Why.
        code: NegativeCode,
    },
    /// The caller should send its request to another address and port.
    RetargetResponse {
        /// Where to retry.
        address: Ipv4Address,
        /// The TCP port to retry at.
        port: u16,
    },
    /// A keep-alive; it carries nothing.
    KeepAlive,
}

impl Repr {
    /// Parses a session service frame.
    ///
    /// Never panics, on any input (the length check is done here). Fails if the buffer is
    /// shorter than the header, a reserved flag bit is set, or the type is unknown. For a
    /// session message only the header is needed and `length` is the declared body length,
    /// whether or not the body is in the buffer. Every other frame must be complete (the buffer
    /// holds at least [`Packet::total_len`] bytes) and its length must fit its type exactly:
    /// 0 for positive responses and keep-alives, 1 for negative responses, 6 for retarget
    /// responses, and for session requests two uncompressed names that together take exactly
    /// the length. Bytes after the frame are not an error: on a stream they belong to the next
    /// frame.
    pub fn parse<T>(packet: &Packet<&T>) -> Result<Repr>
    where
        T: AsRef<[u8]> + ?Sized,
    {
        packet.check_len()?;
        let flags = packet.flags();
        if flags & field::FLAGS_RESERVED != 0 {
            net_trace!("nbss: reserved flag bits set: {:#04x}", flags);
            return Err(Error);
        }
        let length = packet.length();
        let msg_type = packet.msg_type();
        if msg_type == MessageType::SessionMessage {
            return Ok(Repr::SessionMessage { length });
        }

        let body = packet.payload();
        if body.len() != length as usize {
            // Truncated: the frame is not complete in the buffer.
            return Err(Error);
        }
        let exact = |expected: u32| {
            if length == expected {
                Ok(())
            } else {
                net_trace!(
                    "nbss: {:?} with length {}, expected {}",
                    msg_type,
                    length,
                    expected
                );
                Err(Error)
            }
        };

        match msg_type {
            MessageType::SessionRequest => {
                let (called, end) = NbName::parse(body, 0, Pointers::Forbidden)?;
                let (calling, end) = NbName::parse(body, end, Pointers::Forbidden)?;
                if end != body.len() {
                    net_trace!("nbss: session request with {} bytes after the names", {
                        body.len() - end
                    });
                    return Err(Error);
                }
                Ok(Repr::SessionRequest { called, calling })
            }
            MessageType::PositiveResponse => {
                exact(0)?;
                Ok(Repr::PositiveResponse)
            }
            MessageType::NegativeResponse => {
                exact(NEGATIVE_BODY_LEN)?;
                let data = packet.buffer.as_ref();
                let code = *data.get(field::NEGATIVE_CODE).ok_or(Error)?;
                Ok(Repr::NegativeResponse {
                    code: NegativeCode::from(code),
                })
            }
            MessageType::RetargetResponse => {
                exact(RETARGET_BODY_LEN)?;
                let data = packet.buffer.as_ref();
                let octets = data.get(field::RETARGET_ADDRESS).ok_or(Error)?;
                let address = Ipv4Address::new(octets[0], octets[1], octets[2], octets[3]);
                let port = read_u16(data, field::RETARGET_PORT.start)?;
                Ok(Repr::RetargetResponse { address, port })
            }
            MessageType::KeepAlive => {
                exact(0)?;
                Ok(Repr::KeepAlive)
            }
            MessageType::SessionMessage | MessageType::Unknown(_) => {
                net_trace!("nbss: unknown message type {:?}", msg_type);
                Err(Error)
            }
        }
    }

    /// The message type of the frame.
    pub fn msg_type(&self) -> MessageType {
        match self {
            Repr::SessionMessage { .. } => MessageType::SessionMessage,
            Repr::SessionRequest { .. } => MessageType::SessionRequest,
            Repr::PositiveResponse => MessageType::PositiveResponse,
            Repr::NegativeResponse { .. } => MessageType::NegativeResponse,
            Repr::RetargetResponse { .. } => MessageType::RetargetResponse,
            Repr::KeepAlive => MessageType::KeepAlive,
        }
    }

    /// The body length the header declares: the session data length of a session message, the
    /// length of both names of a session request, 1 for a negative response, 6 for a retarget
    /// response and 0 otherwise.
    pub fn body_len(&self) -> u32 {
        match self {
            Repr::SessionMessage { length } => *length,
            Repr::SessionRequest { called, calling } => {
                (called.wire_len() + calling.wire_len()) as u32
            }
            Repr::PositiveResponse | Repr::KeepAlive => 0,
            Repr::NegativeResponse { .. } => NEGATIVE_BODY_LEN,
            Repr::RetargetResponse { .. } => RETARGET_BODY_LEN,
        }
    }

    /// The bytes of the whole frame: the header and [`Repr::body_len`]. For a session message
    /// this includes the payload, which [`Repr::emit`] leaves to the caller.
    pub fn buffer_len(&self) -> usize {
        HEADER_LEN + self.body_len() as usize
    }

    /// Writes the frame into `packet`: the header (flags zero except the `E` bit) and the body.
    /// For a session message only the header is written; the caller writes the payload into
    /// [`Packet::payload_mut`] afterwards.
    ///
    /// Never panics into a buffer of at least [`Repr::buffer_len`] bytes (for a session message
    /// the header alone suffices). A session message length above [`MAX_LENGTH`] cannot be
    /// represented; only its low 17 bits are written.
    pub fn emit<T>(&self, packet: &mut Packet<&mut T>)
    where
        T: AsRef<[u8]> + AsMut<[u8]> + ?Sized,
    {
        packet.set_msg_type(self.msg_type());
        packet.set_flags(0);
        packet.set_length(self.body_len());
        match self {
            Repr::SessionMessage { .. } | Repr::PositiveResponse | Repr::KeepAlive => {}
            Repr::SessionRequest { called, calling } => {
                let body = packet.payload_mut();
                let end = called.emit(body);
                calling.emit(&mut body[end..]);
            }
            Repr::NegativeResponse { code } => {
                packet.payload_mut()[0] = u8::from(*code);
            }
            Repr::RetargetResponse { address, port } => {
                let data = packet.buffer.as_mut();
                data[field::RETARGET_ADDRESS].copy_from_slice(&address.octets());
                data[field::RETARGET_PORT].copy_from_slice(&port.to_be_bytes());
            }
        }
    }
}

impl fmt::Display for Repr {
    /// One line, e.g. `session request to LABSRV<20> from CLIENT<00>` or
    /// `negative session response (0x83: called name present, but insufficient resources)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Repr::SessionMessage { length } => write!(f, "session message of {length} bytes"),
            Repr::SessionRequest { called, calling } => {
                write!(f, "session request to {called} from {calling}")
            }
            Repr::PositiveResponse => f.write_str("positive session response"),
            Repr::NegativeResponse { code } => {
                write!(f, "negative session response ({:#04x}: ", u8::from(*code))?;
                let mut text = code.description().chars();
                if let Some(first) = text.next() {
                    write!(f, "{}{}", first.to_ascii_lowercase(), text.as_str())?;
                }
                f.write_str(")")
            }
            Repr::RetargetResponse { address, port } => {
                write!(f, "retarget session response to {address}:{port}")
            }
            Repr::KeepAlive => f.write_str("session keep-alive"),
        }
    }
}

#[cfg(test)]
mod test {
    use super::*;
    use crate::wire::name::{Name, Scope};
    use crate::wire::strategies::nb_name;
    use proptest::prelude::*;

    const ALL_CODES: [(NegativeCode, u8); 5] = [
        (NegativeCode::NotListeningOnCalledName, 0x80),
        (NegativeCode::NotListeningForCallingName, 0x81),
        (NegativeCode::CalledNameNotPresent, 0x82),
        (NegativeCode::InsufficientResources, 0x83),
        (NegativeCode::Unspecified, 0x8f),
    ];

    fn emit(repr: &Repr) -> Vec<u8> {
        let mut buf = vec![0xa5; repr.buffer_len()];
        repr.emit(&mut Packet::new_unchecked(&mut buf[..]));
        buf
    }

    fn parse(bytes: &[u8]) -> Result<Repr> {
        Repr::parse(&Packet::new_unchecked(bytes))
    }

    fn unscoped(text: &str) -> NbName {
        NbName::unscoped(Name::parse_text(text, 0).unwrap())
    }

    /// `CALLED<20>` to `CALLER<00>`, encoded by hand: C=0x43 → "ED", A=0x41 → "EB",
    /// L=0x4C → "EM", E=0x45 → "EF", D=0x44 → "EE", R=0x52 → "FC", space=0x20 → "CA",
    /// 0x00 → "AA".
    fn called_caller_bytes() -> Vec<u8> {
        let mut v = vec![0x81, 0x00, 0x00, 0x44];
        v.push(0x20);
        v.extend_from_slice(b"EDEBEMEMEFEECACACACACACACACACACA");
        v.push(0x00);
        v.push(0x20);
        v.extend_from_slice(b"EDEBEMEMEFFCCACACACACACACACACAAA");
        v.push(0x00);
        v
    }

    /// One valid, complete frame of every non-message kind.
    fn non_message_frames() -> Vec<Vec<u8>> {
        vec![
            called_caller_bytes(),
            vec![0x82, 0, 0, 0],
            vec![0x83, 0, 0, 1, 0x83],
            vec![0x84, 0, 0, 6, 0xc0, 0xa8, 0x45, 0x01, 0x04, 0x73],
            vec![0x85, 0, 0, 0],
        ]
    }

    #[test]
    fn positive_response_vector() {
        assert_eq!(emit(&Repr::PositiveResponse), [0x82, 0, 0, 0]);
        assert_eq!(parse(&[0x82, 0, 0, 0]), Ok(Repr::PositiveResponse));
    }

    #[test]
    fn negative_response_vectors() {
        for (code, raw) in ALL_CODES {
            let repr = Repr::NegativeResponse { code };
            assert_eq!(emit(&repr), [0x83, 0, 0, 1, raw]);
            assert_eq!(parse(&[0x83, 0, 0, 1, raw]), Ok(repr));
        }
        assert_eq!(
            parse(&[0x83, 0, 0, 1, 0x42]),
            Ok(Repr::NegativeResponse {
                code: NegativeCode::Unknown(0x42)
            })
        );
    }

    #[test]
    fn unknown_code_with_known_value_reads_back_as_known() {
        let repr = Repr::NegativeResponse {
            code: NegativeCode::Unknown(0x83),
        };
        assert_eq!(emit(&repr), [0x83, 0, 0, 1, 0x83]);
        assert_eq!(
            parse(&emit(&repr)),
            Ok(Repr::NegativeResponse {
                code: NegativeCode::InsufficientResources
            })
        );
    }

    #[test]
    fn keep_alive_vector() {
        assert_eq!(emit(&Repr::KeepAlive), [0x85, 0, 0, 0]);
        assert_eq!(parse(&[0x85, 0, 0, 0]), Ok(Repr::KeepAlive));
    }

    #[test]
    fn retarget_vector() {
        let bytes = [0x84, 0, 0, 6, 0xc0, 0xa8, 0x45, 0x01, 0x04, 0x73];
        let repr = Repr::RetargetResponse {
            address: Ipv4Address::new(192, 168, 69, 1),
            port: 1139,
        };
        assert_eq!(emit(&repr), bytes);
        assert_eq!(parse(&bytes), Ok(repr));
    }

    #[test]
    fn session_request_vector() {
        let repr = Repr::SessionRequest {
            called: unscoped("CALLED#20"),
            calling: unscoped("CALLER#00"),
        };
        let expected = called_caller_bytes();
        assert_eq!(expected.len(), 72);
        assert_eq!(
            &expected[..9],
            [0x81, 0, 0, 0x44, 0x20, 0x45, 0x44, 0x45, 0x42]
        );
        assert_eq!(repr.buffer_len(), 72);
        assert_eq!(repr.body_len(), 68);
        assert_eq!(emit(&repr), expected);
        assert_eq!(parse(&expected), Ok(repr));
    }

    #[test]
    fn smbserver_request_vector() {
        let repr = Repr::SessionRequest {
            called: unscoped("*SMBSERVER#20"),
            calling: unscoped("CLIENT#00"),
        };
        let bytes = emit(&repr);
        let mut called = vec![0x20];
        called.extend_from_slice(b"CKFDENECFDEFFCFGEFFCCACACACACACA");
        called.push(0);
        assert_eq!(&bytes[4..38], &called[..]);
        assert_eq!(parse(&bytes), Ok(repr));
    }

    #[test]
    fn scoped_request_is_longer() {
        let scope = Scope::parse_text("netbios.com").unwrap();
        let called = NbName::new(Name::new("FRED", 0x20).unwrap(), scope);
        let calling = NbName::new(Name::new("BOB", 0x00).unwrap(), scope);
        let repr = Repr::SessionRequest { called, calling };
        assert_eq!(repr.body_len(), 2 * 46);
        let bytes = emit(&repr);
        assert_eq!(&bytes[..4], [0x81, 0, 0, 92]);
        assert_eq!(&bytes[37..49], b"\x07NETBIOS\x03COM");
        assert_eq!(parse(&bytes), Ok(repr));
    }

    #[test]
    fn session_message_headers() {
        let mut buf = [0xa5u8; 4];
        Repr::SessionMessage { length: 0x1FFFF }.emit(&mut Packet::new_unchecked(&mut buf[..]));
        assert_eq!(buf, [0x00, 0x01, 0xff, 0xff]);
        Repr::SessionMessage { length: 65536 }.emit(&mut Packet::new_unchecked(&mut buf[..]));
        assert_eq!(buf, [0x00, 0x01, 0x00, 0x00]);
        Repr::SessionMessage { length: 0x1234 }.emit(&mut Packet::new_unchecked(&mut buf[..]));
        assert_eq!(buf, [0x00, 0x00, 0x12, 0x34]);
        assert_eq!(
            parse(&[0x00, 0x01, 0xff, 0xff]),
            Ok(Repr::SessionMessage { length: 0x1FFFF })
        );
        assert_eq!(
            Repr::SessionMessage { length: 0x1FFFF }.buffer_len(),
            0x20003
        );
    }

    #[test]
    fn session_message_with_e_bit_is_17_bits_and_streamed() {
        let bytes = [0x00, 0x01, 0x00, 0x10, 0xde, 0xad];
        let packet = Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(packet.msg_type(), MessageType::SessionMessage);
        assert_eq!(packet.flags(), 0x01);
        assert_eq!(packet.length(), 0x10010);
        assert_eq!(packet.total_len(), 0x10014);
        // Only part of the payload has arrived.
        assert_eq!(packet.payload(), [0xde, 0xad]);
        assert_eq!(
            Repr::parse(&packet),
            Ok(Repr::SessionMessage { length: 0x10010 })
        );
    }

    #[test]
    fn payload_stops_at_the_frame_end() {
        let bytes = [0x00, 0x00, 0x00, 0x02, 0x11, 0x22, 0x85, 0, 0, 0];
        let packet = Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(packet.payload(), [0x11, 0x22]);
        assert_eq!(packet.total_len(), 6);
        let next = Packet::new_checked(&bytes[packet.total_len()..]).unwrap();
        assert_eq!(Repr::parse(&next), Ok(Repr::KeepAlive));
    }

    #[test]
    fn setters_and_payload_mut() {
        let mut buf = [0u8; 8];
        let mut packet = Packet::new_unchecked(&mut buf[..]);
        packet.set_msg_type(MessageType::SessionMessage);
        packet.set_flags(0x01);
        packet.set_length(3);
        assert_eq!(packet.flags(), 0x00);
        assert_eq!(packet.length(), 3);
        packet.payload_mut().copy_from_slice(b"abc");
        packet.set_length(0x10001);
        assert_eq!(packet.flags(), 0x01);
        assert_eq!(packet.length(), 0x10001);
        // The buffer ends before the frame: the mutable payload is what the buffer holds.
        assert_eq!(packet.payload_mut().len(), 4);
        packet.set_msg_type(MessageType::Unknown(0x99));
        assert_eq!(packet.msg_type(), MessageType::Unknown(0x99));
        assert_eq!(buf, [0x99, 0x01, 0x00, 0x01, b'a', b'b', b'c', 0]);
    }

    #[test]
    fn trailing_bytes_are_not_an_error() {
        for frame in non_message_frames() {
            let expected = parse(&frame).unwrap();
            let mut longer = frame.clone();
            longer.extend_from_slice(&[0x00, 0x00, 0x00, 0x10, 0xff]);
            assert_eq!(parse(&longer), Ok(expected));
        }
    }

    #[test]
    fn truncation_at_every_byte_is_an_error() {
        for frame in non_message_frames() {
            assert!(parse(&frame).is_ok());
            for len in 0..frame.len() {
                assert_eq!(
                    parse(&frame[..len]),
                    Err(Error),
                    "{frame:02x?} cut at {len}"
                );
            }
        }
        // A session message needs the header only.
        for len in 0..HEADER_LEN {
            assert_eq!(parse(&[0, 0, 0, 5][..len]), Err(Error));
        }
    }

    #[test]
    fn new_checked_needs_the_header() {
        let bytes = [0x85u8, 0, 0, 0];
        for len in 0..HEADER_LEN {
            assert_eq!(Packet::new_checked(&bytes[..len]), Err(Error));
        }
        assert!(Packet::new_checked(&bytes[..]).is_ok());
        assert_eq!(
            Packet::new_checked(&bytes[..]).unwrap().into_inner(),
            &bytes[..]
        );
    }

    #[test]
    fn reserved_flag_bits_are_an_error() {
        let mut frames = non_message_frames();
        frames.push(vec![0x00, 0x00, 0x00, 0x01, 0x55]);
        frames.push(vec![0x00, 0x01, 0x00, 0x00]);
        for frame in frames {
            assert!(parse(&frame).is_ok());
            for bit in 1..8 {
                let mut bad = frame.clone();
                bad[1] |= 1 << bit;
                assert_eq!(parse(&bad), Err(Error), "{bad:02x?}");
            }
        }
    }

    #[test]
    fn lengths_that_do_not_fit_the_type_are_an_error() {
        let bad: [&[u8]; 8] = [
            &[0x82, 0, 0, 1, 0],
            &[0x83, 0, 0, 0],
            &[0x83, 0, 0, 2, 0x83, 0],
            &[0x84, 0, 0, 4, 0xc0, 0xa8, 0x45, 0x01],
            &[0x84, 0, 0, 7, 0xc0, 0xa8, 0x45, 0x01, 0x04, 0x73, 0],
            &[0x85, 0, 0, 1, 0],
            // E bit makes these 65 536 bytes longer than the body present.
            &[0x82, 0x01, 0, 0],
            &[0x85, 0x01, 0, 0],
        ];
        for bytes in bad {
            assert_eq!(parse(bytes), Err(Error), "{bytes:02x?}");
        }
    }

    #[test]
    fn a_retarget_response_cut_short_is_an_error() {
        let whole = [0x84, 0, 0, 6, 0xc0, 0xa8, 0x45, 0x01, 0x04, 0x73];
        assert!(parse(&whole).is_ok());
        // Declared length 6, but the address or the port is not all there.
        for cut in 4..whole.len() {
            assert_eq!(parse(&whole[..cut]), Err(Error), "{cut} bytes");
        }
    }

    #[test]
    fn request_lengths_must_match_the_names() {
        let good = called_caller_bytes();
        for length in [0u8, 34, 67, 69, 70, 100] {
            let mut bad = good.clone();
            bad[3] = length;
            // Enough bytes after the frame so that the body is always complete.
            bad.resize(4 + 100, 0);
            assert_eq!(parse(&bad), Err(Error), "length {length}");
        }
        let mut with_tail = good.clone();
        with_tail.resize(4 + 100, 0);
        assert!(parse(&with_tail).is_ok());
        let mut e_bit = good;
        e_bit[1] = 0x01;
        assert_eq!(parse(&e_bit), Err(Error));
    }

    #[test]
    fn request_names_must_not_be_compressed() {
        // The calling name is a pointer to the called name.
        let good = called_caller_bytes();
        let mut bad = good[..38].to_vec();
        bad.extend_from_slice(&[0xc0, 0x04]);
        bad[3] = 36;
        assert_eq!(parse(&bad), Err(Error));
        // The scope of the calling name is a pointer.
        let mut bad = good[..71].to_vec();
        bad.extend_from_slice(&[0xc0, 0x04]);
        bad[3] = 69;
        assert_eq!(parse(&bad), Err(Error));
    }

    #[test]
    fn request_names_must_be_well_formed() {
        let good = called_caller_bytes();
        for (offset, byte) in [(5, b'Q'), (20, b'a'), (50, b'@'), (70, 0), (4, 0x1f)] {
            let mut bad = good.clone();
            bad[offset] = byte;
            assert_eq!(parse(&bad), Err(Error), "{offset}: {byte:#04x}");
        }
        // Three names: the length covers a third one.
        let mut three = good.clone();
        three.extend_from_slice(&good[4..38]);
        three[3] = 102;
        assert_eq!(parse(&three), Err(Error));
    }

    #[test]
    fn unknown_types_are_an_error() {
        for t in [0x01u8, 0x80, 0x86, 0xff] {
            assert_eq!(parse(&[t, 0, 0, 0]), Err(Error), "type {t:#04x}");
        }
        assert_eq!(MessageType::from(0x86), MessageType::Unknown(0x86));
    }

    #[test]
    fn descriptions() {
        assert_eq!(
            NegativeCode::InsufficientResources.description(),
            "Called name present, but insufficient resources"
        );
        assert_eq!(
            NegativeCode::NotListeningOnCalledName.description(),
            "Not listening on called name"
        );
        assert_eq!(
            NegativeCode::NotListeningForCallingName.description(),
            "Not listening for calling name"
        );
        assert_eq!(
            NegativeCode::CalledNameNotPresent.description(),
            "Called name not present"
        );
        assert_eq!(NegativeCode::Unspecified.description(), "Unspecified error");
    }

    #[test]
    fn negative_codes_display_the_rfc_words_and_the_code() {
        assert_eq!(
            NegativeCode::InsufficientResources.to_string(),
            "Called name present, but insufficient resources (0x83)"
        );
        assert_eq!(
            NegativeCode::Unspecified.to_string(),
            "Unspecified error (0x8f)"
        );
        assert_eq!(
            NegativeCode::Unknown(0x90).to_string(),
            "Unknown error code (0x90)"
        );
    }

    #[test]
    fn display() {
        let request = Repr::SessionRequest {
            called: unscoped("LABSRV#20"),
            calling: unscoped("CLIENT#00"),
        };
        assert_eq!(
            request.to_string(),
            "session request to LABSRV<20> from CLIENT<00>"
        );
        assert_eq!(
            Repr::NegativeResponse {
                code: NegativeCode::InsufficientResources
            }
            .to_string(),
            "negative session response (0x83: called name present, but insufficient resources)"
        );
        assert_eq!(
            Repr::NegativeResponse {
                code: NegativeCode::Unspecified
            }
            .to_string(),
            "negative session response (0x8f: unspecified error)"
        );
        assert_eq!(
            Repr::RetargetResponse {
                address: Ipv4Address::new(192, 168, 69, 1),
                port: 1139
            }
            .to_string(),
            "retarget session response to 192.168.69.1:1139"
        );
        assert_eq!(
            Repr::SessionMessage { length: 5 }.to_string(),
            "session message of 5 bytes"
        );
        assert_eq!(
            Repr::PositiveResponse.to_string(),
            "positive session response"
        );
        assert_eq!(Repr::KeepAlive.to_string(), "session keep-alive");
    }

    fn non_message_repr() -> impl Strategy<Value = Repr> {
        prop_oneof![
            (nb_name(), nb_name())
                .prop_map(|(called, calling)| Repr::SessionRequest { called, calling }),
            Just(Repr::PositiveResponse),
            // `From<u8>` never yields `Unknown(x)` for a known `x`, which would read back as
            // the known variant.
            any::<u8>().prop_map(|raw| Repr::NegativeResponse {
                code: NegativeCode::from(raw)
            }),
            (any::<[u8; 4]>(), any::<u16>()).prop_map(|(octets, port)| {
                Repr::RetargetResponse {
                    address: Ipv4Address::from(octets),
                    port,
                }
            }),
            Just(Repr::KeepAlive),
        ]
    }

    /// A header of a known type (sometimes with the `E` bit or a reserved bit), a body whose
    /// length is close to the declared one, and random bytes.
    fn plausible_frame() -> impl Strategy<Value = Vec<u8>> {
        (
            prop::sample::select(vec![0x00u8, 0x81, 0x82, 0x83, 0x84, 0x85]),
            prop::sample::select(vec![0x00u8, 0x00, 0x00, 0x01, 0x02]),
            prop::collection::vec(any::<u8>(), 0..600),
            -2i32..3,
        )
            .prop_map(|(t, flags, body, delta)| {
                let length = (body.len() as i32 + delta).max(0) as u16;
                let mut v = vec![t, flags];
                v.extend_from_slice(&length.to_be_bytes());
                v.extend_from_slice(&body);
                v
            })
    }

    proptest! {
        #[test]
        fn non_message_round_trip(repr in non_message_repr()) {
            let bytes = emit(&repr);
            prop_assert_eq!(bytes.len(), repr.buffer_len());
            let packet = Packet::new_checked(&bytes[..]).unwrap();
            prop_assert_eq!(packet.total_len(), bytes.len());
            prop_assert_eq!(packet.flags(), 0);
            prop_assert_eq!(packet.msg_type(), repr.msg_type());
            prop_assert_eq!(Repr::parse(&packet), Ok(repr));
        }

        #[test]
        fn session_request_round_trip(called in nb_name(), calling in nb_name()) {
            let repr = Repr::SessionRequest { called, calling };
            prop_assert_eq!(
                repr.body_len() as usize,
                called.wire_len() + calling.wire_len()
            );
            prop_assert_eq!(parse(&emit(&repr)), Ok(repr));
        }

        #[test]
        fn unknown_codes_round_trip(raw in any::<u8>()) {
            prop_assume!(!ALL_CODES.iter().any(|&(_, known)| known == raw));
            let repr = Repr::NegativeResponse { code: NegativeCode::Unknown(raw) };
            prop_assert_eq!(parse(&emit(&repr)), Ok(repr));
        }

        #[test]
        fn session_message_round_trip(length in 0..=MAX_LENGTH) {
            let repr = Repr::SessionMessage { length };
            let mut bytes = emit(&repr);
            prop_assert_eq!(bytes.len(), HEADER_LEN + length as usize);
            prop_assert_eq!(bytes[1], (length >> 16) as u8);
            {
                let mut packet = Packet::new_unchecked(&mut bytes[..]);
                prop_assert_eq!(packet.payload_mut().len(), length as usize);
            }
            let packet = Packet::new_checked(&bytes[..]).unwrap();
            prop_assert_eq!(packet.length(), length);
            prop_assert_eq!(packet.payload().len(), length as usize);
            prop_assert_eq!(Repr::parse(&packet), Ok(repr));
            // The header alone is enough to parse a session message.
            prop_assert_eq!(parse(&bytes[..HEADER_LEN]), Ok(repr));
        }

        #[test]
        fn parse_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
            let _ = parse(&bytes);
        }

        #[test]
        fn parsed_frames_emit_the_same_bytes(bytes in plausible_frame()) {
            if let Ok(repr) = parse(&bytes) {
                let packet = Packet::new_checked(&bytes[..]).unwrap();
                let end = match repr {
                    Repr::SessionMessage { .. } => HEADER_LEN,
                    _ => packet.total_len(),
                };
                let mut again = vec![0u8; repr.buffer_len()];
                repr.emit(&mut Packet::new_unchecked(&mut again[..]));
                prop_assert_eq!(&again[..end], &bytes[..end]);
            }
        }
    }
}
