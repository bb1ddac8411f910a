//! The SMB mailslot write that datagram-service user data carries: an `SMB_COM_TRANSACTION`
//! (0x25) with three setup words (opcode 1 "write mailslot", priority, class), the mailslot
//! name (`\MAILSLOT\BROWSE`, `\MAILSLOT\LANMAN`, ...) and the data ([MS-MAIL] 2.2.1, [MS-BRWS]
//! 4.1, the layout Samba's `send_mailslot` writes).
//!
//! ```text
//!  0      4    5        9     10      12      14           22     24    26    28    30    32
//! +-------+----+--------+-----+-------+-------+------------+------+-----+-----+-----+-----+
//! |FF SMB |0x25| status |flags|flags2 |PIDHigh|  security  | rsvd | TID |PIDLo| UID | MID |
//! +-------+----+--------+-----+-------+-------+------------+------+-----+-----+-----+-----+
//! 32: WordCount = 17, then 17 little-endian words:
//!   TotalParameterCount, TotalDataCount, MaxParameterCount, MaxDataCount,
//!   MaxSetupCount|Reserved1, Flags, Timeout (2 words), Reserved2, ParameterCount,
//!   ParameterOffset, DataCount, DataOffset, SetupCount|Reserved3,
//!   Setup[0] = 1 (write mailslot), Setup[1] = priority, Setup[2] = class
//! 67: ByteCount, then the NUL-terminated mailslot name and the data
//! ```
//!
//! Every header field but the command is zero in a mailslot write ("PID, TID, MID, UID, and
//! flags are all 0 in mailslot requests", [MS-BRWS] 4.1). `DataOffset` counts from the start of
//! the SMB header; with the data right after the name it is `70 + strlen(name)` (86 for
//! `\MAILSLOT\BROWSE`). Samba writes priority 1 and class 2 ("unreliable and broadcast").
//!
//! Parsing is as lenient as Samba's reader: the header fields other than the signature and the
//! command, the timeout and the parameter words are not checked; the word count must be 17,
//! the first setup word 1, the name NUL-terminated inside the byte block, and the data
//! (`DataOffset`, `DataCount`) inside the packet.

use core::fmt;

use super::{Error, Result, buffer_too_short, get, put, put_nul_terminated, put_slice};

mod field {
    use crate::wire::field::Field;

    pub const PROTOCOL: Field = 0..4;
    pub const COMMAND: usize = 4;
    pub const WORD_COUNT: usize = 32;
    // The words, little endian.
    pub const TOTAL_DATA_COUNT: Field = 35..37;
    pub const DATA_COUNT: Field = 55..57;
    pub const DATA_OFFSET: Field = 57..59;
    pub const SETUP_COUNT: usize = 59;
    pub const OPCODE: Field = 61..63;
    pub const PRIORITY: Field = 63..65;
    pub const CLASS: Field = 65..67;
    pub const BYTE_COUNT: Field = 67..69;
    pub const NAME: usize = 69;
}

/// The SMB signature, `\xFFSMB`.
pub const PROTOCOL: [u8; 4] = *b"\xffSMB";
/// `SMB_COM_TRANSACTION`.
pub const COMMAND_TRANSACTION: u8 = 0x25;
/// Words of a mailslot transaction (14 + 3 setup words).
pub const WORD_COUNT: u8 = 17;
/// Setup word 0 of a mailslot write.
pub const OPCODE_WRITE_MAILSLOT: u16 = 1;
/// Bytes before the mailslot name: SMB header, word count, words, byte count.
pub const HEADER_LEN: usize = field::NAME;
/// Priority Samba and Windows write.
pub const PRIORITY: u16 = 1;
/// Class 2: unreliable and broadcast ("second-class" mailslot).
pub const CLASS_UNRELIABLE: u16 = 2;

/// `\MAILSLOT\BROWSE`: the browser protocol of [MS-BRWS].
pub const BROWSE: &[u8] = b"\\MAILSLOT\\BROWSE";
/// `\MAILSLOT\LANMAN`: LAN Manager announcements (also accepted for browser requests).
pub const LANMAN: &[u8] = b"\\MAILSLOT\\LANMAN";
/// `\MAILSLOT\NET\NETLOGON`: the logon protocol (domain controllers).
pub const NETLOGON: &[u8] = b"\\MAILSLOT\\NET\\NETLOGON";
/// `\MAILSLOT\NET\NTLOGON`: the NT logon protocol (domain controllers).
pub const NTLOGON: &[u8] = b"\\MAILSLOT\\NET\\NTLOGON";

fn get_u16(data: &[u8], field: core::ops::Range<usize>) -> u16 {
    u16::from_le_bytes([data[field.start], data[field.start + 1]])
}

/// A read/write view of an SMB mailslot write.
#[derive(Debug, PartialEq, Eq, Clone)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps a buffer without checking it; see [`Packet::check_len`].
    pub const fn new_unchecked(buffer: T) -> Packet<T> {
        Packet { buffer }
    }

    /// [`Packet::new_unchecked`] followed by [`Packet::check_len`].
    pub fn new_checked(buffer: T) -> Result<Packet<T>> {
        let packet = Self::new_unchecked(buffer);
        packet.check_len()?;
        Ok(packet)
    }

    /// Ensures that no accessor panics: the buffer holds the fixed part ([`HEADER_LEN`]
    /// bytes) and the byte block `ByteCount` announces.
    pub fn check_len(&self) -> Result<()> {
        let data = self.buffer.as_ref();
        if data.len() < HEADER_LEN || data.len() < HEADER_LEN + usize::from(self.byte_count()) {
            return Err(Error);
        }
        Ok(())
    }

    /// Consumes the view and returns the buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// The first four bytes (`\xFFSMB` for SMB 1).
    pub fn protocol(&self) -> [u8; 4] {
        let d = &self.buffer.as_ref()[field::PROTOCOL];
        [d[0], d[1], d[2], d[3]]
    }

    /// The command byte.
    pub fn command(&self) -> u8 {
        self.buffer.as_ref()[field::COMMAND]
    }

    /// `WordCount`.
    pub fn word_count(&self) -> u8 {
        self.buffer.as_ref()[field::WORD_COUNT]
    }

    /// `TotalDataCount`.
    pub fn total_data_count(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::TOTAL_DATA_COUNT)
    }

    /// `DataCount`: data bytes in this packet.
    pub fn data_count(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::DATA_COUNT)
    }

    /// `DataOffset`: where the data starts, from the start of the SMB header.
    pub fn data_offset(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::DATA_OFFSET)
    }

    /// `SetupCount`.
    pub fn setup_count(&self) -> u8 {
        self.buffer.as_ref()[field::SETUP_COUNT]
    }

    /// Setup word 0: 1 for a mailslot write.
    pub fn opcode(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::OPCODE)
    }

    /// Setup word 1: the priority.
    pub fn priority(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::PRIORITY)
    }

    /// Setup word 2: the class.
    pub fn class(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::CLASS)
    }

    /// `ByteCount`: bytes after it (the name and the data).
    pub fn byte_count(&self) -> u16 {
        // Read before `check_len` (which needs it): 0 if the buffer does not hold it.
        match self.buffer.as_ref().get(field::BYTE_COUNT) {
            Some(b) => u16::from_le_bytes([b[0], b[1]]),
            None => 0,
        }
    }
}

/// A validated mailslot write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Repr<'a> {
    /// The mailslot name without its NUL, e.g. [`BROWSE`].
    pub mailslot: &'a [u8],
    /// Setup word 1 ([`PRIORITY`] when we send).
    pub priority: u16,
    /// Setup word 2 ([`CLASS_UNRELIABLE`] when we send).
    pub class: u16,
    /// The data written to the mailslot.
    pub data: &'a [u8],
}

impl<'a> Repr<'a> {
    /// A write of `data` to `mailslot` with Samba's priority and class.
    pub const fn new(mailslot: &'a [u8], data: &'a [u8]) -> Repr<'a> {
        Repr {
            mailslot,
            priority: PRIORITY,
            class: CLASS_UNRELIABLE,
            data,
        }
    }

    /// Parses a mailslot write; never panics. Fails unless the signature is `\xFFSMB`, the
    /// command `SMB_COM_TRANSACTION`, the word count 17 with 3 setup words, setup word 0 is 1,
    /// the mailslot name is NUL-terminated in the byte block and the data lies in the packet.
    pub fn parse<T: AsRef<[u8]> + ?Sized>(packet: &Packet<&'a T>) -> Result<Repr<'a>> {
        let data: &'a [u8] = packet.buffer.as_ref();
        // `check_len`'s two checks, with the fixed part split off as an array: no field read
        // after them can panic.
        let (header, rest) = data.split_first_chunk::<HEADER_LEN>().ok_or(Error)?;
        let word = |at: usize| u16::from_le_bytes(get(header, at));
        let block = rest
            .get(..usize::from(word(field::BYTE_COUNT.start)))
            .ok_or(Error)?;
        if get(header, field::PROTOCOL.start) != PROTOCOL
            || header[field::COMMAND] != COMMAND_TRANSACTION
            || header[field::WORD_COUNT] != WORD_COUNT
            || header[field::SETUP_COUNT] != 3
            || word(field::OPCODE.start) != OPCODE_WRITE_MAILSLOT
        {
            return Err(Error);
        }
        let nul = block.iter().position(|&b| b == 0).ok_or(Error)?;
        let mailslot = block.get(..nul).ok_or(Error)?;
        let start = usize::from(word(field::DATA_OFFSET.start));
        let end = start + usize::from(word(field::DATA_COUNT.start));
        if start < HEADER_LEN + nul + 1 {
            return Err(Error);
        }
        let payload = data.get(start..end).ok_or(Error)?;
        Ok(Repr {
            mailslot,
            priority: word(field::PRIORITY.start),
            class: word(field::CLASS.start),
            data: payload,
        })
    }

    /// Bytes [`Repr::emit`] writes: 70 + the name + the data.
    pub fn buffer_len(&self) -> usize {
        HEADER_LEN + self.mailslot.len() + 1 + self.data.len()
    }

    /// Writes the packet to the start of the buffer; never panics into a buffer of
    /// [`Repr::buffer_len`] bytes. Counts that do not fit 16 bits are written as 65535 (a
    /// datagram is at most 576 bytes anyway).
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]> + ?Sized>(&self, packet: &mut Packet<&mut T>) {
        let clamp = |n: usize| u16::try_from(n).unwrap_or(u16::MAX).to_le_bytes();
        let name_end = HEADER_LEN + self.mailslot.len();
        // The fixed part is an array: its fields are written without bounds checks.
        let Some((header, block)) = packet.buffer.as_mut().split_first_chunk_mut::<HEADER_LEN>()
        else {
            buffer_too_short()
        };
        *header = [0; HEADER_LEN];
        put(header, field::PROTOCOL.start, PROTOCOL);
        header[field::COMMAND] = COMMAND_TRANSACTION;
        header[field::WORD_COUNT] = WORD_COUNT;
        put(
            header,
            field::TOTAL_DATA_COUNT.start,
            clamp(self.data.len()),
        );
        put(header, field::DATA_COUNT.start, clamp(self.data.len()));
        put(header, field::DATA_OFFSET.start, clamp(name_end + 1));
        header[field::SETUP_COUNT] = 3;
        put(
            header,
            field::OPCODE.start,
            OPCODE_WRITE_MAILSLOT.to_le_bytes(),
        );
        put(header, field::PRIORITY.start, self.priority.to_le_bytes());
        put(header, field::CLASS.start, self.class.to_le_bytes());
        put(
            header,
            field::BYTE_COUNT.start,
            clamp(self.buffer_len() - HEADER_LEN),
        );
        put_nul_terminated(block, self.mailslot);
        put_slice(block, self.mailslot.len() + 1, self.data);
    }
}

impl fmt::Display for Repr<'_> {
    /// `mailslot write to \MAILSLOT\BROWSE, 33 bytes`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("mailslot write to ")?;
        for &b in self.mailslot {
            if b.is_ascii_graphic() {
                write!(f, "{}", b as char)?;
            } else {
                write!(f, "\\x{b:02x}")?;
            }
        }
        write!(f, ", {} bytes", self.data.len())
    }
}

#[cfg(test)]
mod test {
    use super::*;
    use proptest::prelude::*;

    /// A mailslot write of "hello" to `\MAILSLOT\BROWSE`, worked out from [MS-BRWS] 4.1 and
    /// Samba's `send_mailslot`: everything zero but the command, WordCount 17, TotalDataCount =
    /// DataCount = 5, DataOffset 86 (70 + 16), SetupCount 3, setup 1/1/2, ByteCount 22 (17 + 5).
    const HELLO: &[u8] = b"\xffSMB\x25\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\
        \x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\
        \x11\x00\x00\x05\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\
        \x00\x00\x05\x00\x56\x00\x03\x00\x01\x00\x01\x00\x02\x00\
        \x16\x00\\MAILSLOT\\BROWSE\x00hello";

    fn parse(bytes: &[u8]) -> Result<Repr<'_>> {
        Repr::parse(&Packet::new_unchecked(bytes))
    }

    fn emit(repr: &Repr<'_>) -> Vec<u8> {
        let mut buf = vec![0xa5u8; repr.buffer_len()];
        repr.emit(&mut Packet::new_unchecked(&mut buf[..]));
        buf
    }

    #[test]
    fn hello_vector() {
        assert_eq!(HELLO.len(), 86 + 5);
        let packet = Packet::new_checked(HELLO).unwrap();
        assert_eq!(packet.protocol(), PROTOCOL);
        assert_eq!(packet.command(), 0x25);
        assert_eq!(packet.word_count(), 17);
        assert_eq!(packet.total_data_count(), 5);
        assert_eq!(packet.data_count(), 5);
        assert_eq!(packet.data_offset(), 86);
        assert_eq!(packet.setup_count(), 3);
        assert_eq!(
            (packet.opcode(), packet.priority(), packet.class()),
            (1, 1, 2)
        );
        assert_eq!(packet.byte_count(), 22);
        let repr = Repr::new(BROWSE, b"hello");
        assert_eq!(parse(HELLO), Ok(repr));
        assert_eq!(repr.buffer_len(), HELLO.len());
        assert_eq!(emit(&repr), HELLO);
        assert_eq!(
            format!("{repr}"),
            "mailslot write to \\MAILSLOT\\BROWSE, 5 bytes"
        );
    }

    #[test]
    fn truncation_at_every_byte_fails() {
        for len in 0..HELLO.len() {
            assert_eq!(parse(&HELLO[..len]), Err(Error), "len {len}");
        }
        // Trailing bytes beyond the byte block are ignored.
        let mut long = HELLO.to_vec();
        long.extend_from_slice(b"junk");
        assert_eq!(parse(&long), Ok(Repr::new(BROWSE, b"hello")));
    }

    #[test]
    fn what_is_checked_fails() {
        for (at, value) in [
            (0, 0xfe),  // signature
            (4, 0x32),  // SMB_COM_TRANSACTION2
            (32, 0x10), // word count
            (59, 0x02), // setup count
            (61, 0x02), // setup word 0: not a write
        ] {
            let mut bad = HELLO.to_vec();
            bad[at] = value;
            assert_eq!(parse(&bad), Err(Error), "byte {at} = {value:#04x}");
        }
        // No NUL after the name inside the byte block.
        let mut bad = HELLO.to_vec();
        bad[85] = b'X';
        bad[57] = 91; // data offset beyond the name's would-be NUL
        assert_eq!(parse(&bad), Err(Error));
        // Data beyond the packet, or overlapping the name.
        let mut bad = HELLO.to_vec();
        bad[55] = 6;
        assert_eq!(parse(&bad), Err(Error));
        let mut bad = HELLO.to_vec();
        bad[57] = 85;
        assert_eq!(parse(&bad), Err(Error));
    }

    #[test]
    fn what_is_not_checked_is_accepted() {
        // Header flags, a TID, the timeout: Samba does not look, neither do we.
        let mut odd = HELLO.to_vec();
        odd[9] = 0x18;
        odd[24] = 7;
        odd[45] = 0xe8;
        assert_eq!(parse(&odd), Ok(Repr::new(BROWSE, b"hello")));
    }

    proptest! {
        #[test]
        fn round_trip(
            mailslot in "\\\\MAILSLOT\\\\[A-Z\\\\]{0,20}",
            priority in any::<u16>(),
            class in any::<u16>(),
            data in proptest::collection::vec(any::<u8>(), 0..500),
        ) {
            let repr = Repr { mailslot: mailslot.as_bytes(), priority, class, data: &data };
            let bytes = emit(&repr);
            prop_assert_eq!(bytes.len(), repr.buffer_len());
            prop_assert_eq!(parse(&bytes), Ok(repr));
        }

        #[test]
        fn parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = parse(&bytes);
            let mut framed = HELLO[..69].to_vec();
            framed.extend_from_slice(&bytes);
            let _ = parse(&framed);
        }

        /// A valid header with arbitrary counts, offsets and byte block: whatever parses emits
        /// to a write that parses to the same thing.
        #[test]
        fn whatever_parses_re_parses_the_same(
            data_count in 0u16..64,
            data_offset in 60u16..140,
            byte_count in 0u16..80,
            block in proptest::collection::vec(any::<u8>(), 0..90),
        ) {
            let mut bytes = HELLO[..69].to_vec();
            bytes[55..57].copy_from_slice(&data_count.to_le_bytes());
            bytes[57..59].copy_from_slice(&data_offset.to_le_bytes());
            bytes[67..69].copy_from_slice(&byte_count.to_le_bytes());
            bytes.extend_from_slice(&block);
            if let Ok(repr) = parse(&bytes) {
                let emitted = emit(&repr);
                prop_assert_eq!(parse(&emitted), Ok(repr));
            }
        }
    }
}
