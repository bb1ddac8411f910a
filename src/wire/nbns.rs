//! Name service packets (RFC 1002 §4.2, UDP 137).
//!
//! [`Packet`] is a view of the 12-byte header; [`Repr`] is one packet of the RFC 1002 §4.2
//! catalog, with its transaction id and the header flags its kind does not fix. Every packet in
//! the catalog is a [`Message`] variant; packets that share one layout (registration, overwrite,
//! refresh, multi-homed registration) share a variant and differ in [`RegistrationKind`].
//!
//! Flags: each message kind fixes some `NM_FLAGS` bits (responses are authoritative, a
//! registration request asks for recursion, an overwrite does not, ...); [`Message::fixed_flags`]
//! tells which bits and their values. [`Repr::flags`] carries the others (`B`, `TC`, `RD` where
//! free, ...) so parse and emit are faithful. [`Repr::emit`] writes the fixed bits whatever
//! `flags` says; [`Repr::parse`] strips them from `flags`.
//!
//! Names are emitted uncompressed, except the additional record of registration-shaped and
//! release requests, which RFC 1002 §4.2.2 requires to be the pointer `C0 0C` to the question
//! name. Parsing accepts compression pointers that point backwards into the packet body.

use core::fmt;

use smoltcp::wire::Ipv4Address;

use super::field::Field;
use super::name::{DomainName, Name, NbName, Pointers};
use super::{Error, MAX_DATAGRAM_LENGTH, Result};

/// Length of the name service header.
pub const HEADER_LEN: usize = 12;
/// Length of the node status statistics block.
pub const STATISTICS_LEN: usize = 46;
/// Length of one address entry (NB_FLAGS + NB_ADDRESS).
pub const ADDR_ENTRY_LEN: usize = 6;
/// Length of one node status name entry (16-byte name + NAME_FLAGS).
pub const NODE_NAME_LEN: usize = 18;

/// The pointer to the question name at offset 12 (`C0 0C`).
const QUESTION_POINTER: [u8; 2] = [0xc0, HEADER_LEN as u8];
/// Where compression pointers may point: the packet body.
const POINTERS: Pointers = Pointers::Backwards { floor: HEADER_LEN };

mod field {
    use super::Field;

    pub const TRANSACTION_ID: Field = 0..2;
    pub const FLAGS: Field = 2..4;
    pub const QDCOUNT: Field = 4..6;
    pub const ANCOUNT: Field = 6..8;
    pub const NSCOUNT: Field = 8..10;
    pub const ARCOUNT: Field = 10..12;
}

/// The R bit of the flags word: the packet is a response.
const RESPONSE: u16 = 0x8000;
const OPCODE_MASK: u16 = 0x7800;
const OPCODE_SHIFT: u32 = 11;
const RCODE_MASK: u16 = 0x000f;
/// Bits of the flags word that must be zero.
const RESERVED_MASK: u16 = 0x0060;

wire_enum! {
    /// The OPCODE of a name service packet.
    pub enum Opcode(u8) {
        /// Name query and node status.
        Query = 0x0,
        /// Registration, overwrite, and (as responses) conflict demand and challenge.
        Registration = 0x5,
        /// Release.
        Release = 0x6,
        /// Wait for acknowledgement.
        Wack = 0x7,
        /// Refresh (RFC 1002).
        Refresh = 0x8,
        /// Refresh as Microsoft sends it.
        RefreshAlternate = 0x9,
        /// Multi-homed registration (Microsoft).
        MultiHomedRegistration = 0xf,
    }
}

wire_enum! {
    /// The RCODE of a name service response.
    pub enum Rcode(u8) {
        /// No error (positive response).
        NoError = 0x0,
        /// FMT_ERR: the request was malformed.
        FormatError = 0x1,
        /// SRV_ERR: the server failed.
        ServerFailure = 0x2,
        /// NAM_ERR: the name does not exist (queries only).
        NameError = 0x3,
        /// IMP_ERR: unsupported request.
        NotImplemented = 0x4,
        /// RFS_ERR: refused for policy reasons.
        Refused = 0x5,
        /// ACT_ERR: the name is owned by another node.
        Active = 0x6,
        /// CFT_ERR: a unique name is owned by more than one node.
        Conflict = 0x7,
    }
}

wire_enum! {
    /// QUESTION_TYPE and RR_TYPE.
    pub enum RrType(u16) {
        /// IPv4 address.
        A = 0x0001,
        /// Name server.
        Ns = 0x0002,
        /// Null.
        Null = 0x000a,
        /// NetBIOS general name service record.
        Nb = 0x0020,
        /// NetBIOS node status.
        NbStat = 0x0021,
    }
}

/// QUESTION_CLASS and RR_CLASS `IN`, the only class RFC 1002 uses.
pub const CLASS_IN: u16 = 0x0001;

/// The `NM_FLAGS` bits of the header's flags word, in their positions in that word.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Flags(u16);

impl Flags {
    /// AA: authoritative answer.
    pub const AUTHORITATIVE: Flags = Flags(0x0400);
    /// TC: truncated to fit 576 bytes.
    pub const TRUNCATED: Flags = Flags(0x0200);
    /// RD: recursion desired.
    pub const RECURSION_DESIRED: Flags = Flags(0x0100);
    /// RA: recursion available.
    pub const RECURSION_AVAILABLE: Flags = Flags(0x0080);
    /// B: the packet was broadcast.
    pub const BROADCAST: Flags = Flags(0x0010);
    /// Every defined bit.
    pub const ALL: Flags = Flags(0x0790);
    /// No bit.
    pub const NONE: Flags = Flags(0);

    /// The bits as they sit in the flags word.
    pub const fn bits(self) -> u16 {
        self.0
    }

    /// The defined bits of `word`; other bits are dropped.
    pub const fn from_word(word: u16) -> Flags {
        Flags(word & Flags::ALL.0)
    }

    /// Whether every bit of `other` is set.
    pub const fn contains(self, other: Flags) -> bool {
        self.0 & other.0 == other.0
    }

    /// Both sets.
    pub const fn union(self, other: Flags) -> Flags {
        Flags(self.0 | other.0)
    }

    /// The bits in both sets.
    pub const fn intersection(self, other: Flags) -> Flags {
        Flags(self.0 & other.0)
    }

    /// The bits of `self` that are not in `other`.
    pub const fn without(self, other: Flags) -> Flags {
        Flags(self.0 & !other.0)
    }

    /// `self` with `flag` set or cleared.
    pub const fn with(self, flag: Flags, on: bool) -> Flags {
        if on {
            self.union(flag)
        } else {
            self.without(flag)
        }
    }
}

impl core::ops::BitOr for Flags {
    type Output = Flags;
    fn bitor(self, other: Flags) -> Flags {
        self.union(other)
    }
}

impl fmt::Debug for Flags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Flags(")?;
        let mut first = true;
        for (flag, name) in [
            (Flags::AUTHORITATIVE, "AA"),
            (Flags::TRUNCATED, "TC"),
            (Flags::RECURSION_DESIRED, "RD"),
            (Flags::RECURSION_AVAILABLE, "RA"),
            (Flags::BROADCAST, "B"),
        ] {
            if self.contains(flag) {
                if !first {
                    f.write_str("|")?;
                }
                f.write_str(name)?;
                first = false;
            }
        }
        f.write_str(")")
    }
}

/// A read/write view of a name service packet's header.
#[derive(Debug, Clone)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps a buffer without checking its length.
    pub const fn new_unchecked(buffer: T) -> Packet<T> {
        Packet { buffer }
    }

    /// Wraps a buffer and checks that it holds a whole header.
    pub fn new_checked(buffer: T) -> Result<Packet<T>> {
        let packet = Self::new_unchecked(buffer);
        packet.check_len()?;
        Ok(packet)
    }

    /// Ensures the 12-byte header is present; after this no accessor panics.
    pub fn check_len(&self) -> Result<()> {
        if self.buffer.as_ref().len() < HEADER_LEN {
            Err(Error)
        } else {
            Ok(())
        }
    }

    /// Returns the wrapped buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    fn u16_at(&self, field: Field) -> u16 {
        let data = self.buffer.as_ref();
        u16::from_be_bytes([data[field.start], data[field.start + 1]])
    }

    /// NAME_TRN_ID.
    pub fn transaction_id(&self) -> u16 {
        self.u16_at(field::TRANSACTION_ID)
    }

    /// The whole flags word: R, OPCODE, NM_FLAGS, RCODE.
    pub fn flags_word(&self) -> u16 {
        self.u16_at(field::FLAGS)
    }

    /// R: whether this is a response.
    pub fn is_response(&self) -> bool {
        self.flags_word() & RESPONSE != 0
    }

    /// OPCODE.
    pub fn opcode(&self) -> Opcode {
        Opcode::from(((self.flags_word() & OPCODE_MASK) >> OPCODE_SHIFT) as u8)
    }

    /// NM_FLAGS.
    pub fn flags(&self) -> Flags {
        Flags::from_word(self.flags_word())
    }

    /// The two NM_FLAGS bits that must be zero.
    pub fn reserved_bits(&self) -> u16 {
        self.flags_word() & RESERVED_MASK
    }

    /// RCODE.
    pub fn rcode(&self) -> Rcode {
        Rcode::from((self.flags_word() & RCODE_MASK) as u8)
    }

    /// QDCOUNT.
    pub fn question_count(&self) -> u16 {
        self.u16_at(field::QDCOUNT)
    }

    /// ANCOUNT.
    pub fn answer_count(&self) -> u16 {
        self.u16_at(field::ANCOUNT)
    }

    /// NSCOUNT.
    pub fn authority_count(&self) -> u16 {
        self.u16_at(field::NSCOUNT)
    }

    /// ARCOUNT.
    pub fn additional_count(&self) -> u16 {
        self.u16_at(field::ARCOUNT)
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> Packet<&'a T> {
    /// The bytes after the header.
    pub fn payload(&self) -> &'a [u8] {
        &self.buffer.as_ref()[HEADER_LEN..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    fn set_u16_at(&mut self, field: Field, value: u16) {
        self.buffer.as_mut()[field].copy_from_slice(&value.to_be_bytes());
    }

    /// Sets NAME_TRN_ID.
    pub fn set_transaction_id(&mut self, value: u16) {
        self.set_u16_at(field::TRANSACTION_ID, value)
    }

    /// Sets the whole flags word.
    pub fn set_flags_word(&mut self, value: u16) {
        self.set_u16_at(field::FLAGS, value)
    }

    /// Sets R, OPCODE, NM_FLAGS and RCODE.
    pub fn set_header_flags(&mut self, response: bool, opcode: Opcode, flags: Flags, rcode: Rcode) {
        let word = if response { RESPONSE } else { 0 }
            | (u16::from(u8::from(opcode) & 0x0f) << OPCODE_SHIFT)
            | flags.bits()
            | u16::from(u8::from(rcode) & 0x0f);
        self.set_flags_word(word)
    }

    /// Sets QDCOUNT, ANCOUNT, NSCOUNT and ARCOUNT.
    pub fn set_counts(&mut self, questions: u16, answers: u16, authority: u16, additional: u16) {
        self.set_u16_at(field::QDCOUNT, questions);
        self.set_u16_at(field::ANCOUNT, answers);
        self.set_u16_at(field::NSCOUNT, authority);
        self.set_u16_at(field::ARCOUNT, additional);
    }

    /// The bytes after the header, writable.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[HEADER_LEN..]
    }
}

/// The owner node type (ONT) in NB_FLAGS and NAME_FLAGS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NodeType {
    /// Broadcast node.
    B,
    /// Point-to-point node.
    P,
    /// Mixed node.
    M,
    /// Hybrid node (Microsoft; RFC 1002 reserves the value).
    H,
}

impl NodeType {
    const MASK: u16 = 0x6000;

    const fn from_flags(word: u16) -> NodeType {
        match (word & NodeType::MASK) >> 13 {
            0 => NodeType::B,
            1 => NodeType::P,
            2 => NodeType::M,
            _ => NodeType::H,
        }
    }

    const fn to_flags(self) -> u16 {
        (match self {
            NodeType::B => 0,
            NodeType::P => 1,
            NodeType::M => 2,
            NodeType::H => 3,
        }) << 13
    }
}

/// NB_FLAGS of an address entry: group bit, owner node type, 13 reserved bits (kept as
/// received).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct NbFlags(pub u16);

impl NbFlags {
    const GROUP: u16 = 0x8000;

    /// Flags for a unique or group name owned by a node of `node_type`.
    pub const fn new(group: bool, node_type: NodeType) -> NbFlags {
        NbFlags(if group { NbFlags::GROUP } else { 0 } | node_type.to_flags())
    }

    /// G: the name is a group name.
    pub const fn is_group(self) -> bool {
        self.0 & NbFlags::GROUP != 0
    }

    /// ONT: the owner's node type.
    pub const fn node_type(self) -> NodeType {
        NodeType::from_flags(self.0)
    }
}

impl fmt::Debug for NbFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "NbFlags({}{:?}",
            if self.is_group() { "group " } else { "" },
            self.node_type()
        )?;
        if self.0 & 0x1fff != 0 {
            write!(f, " reserved={:#06x}", self.0 & 0x1fff)?;
        }
        f.write_str(")")
    }
}

/// One ADDR_ENTRY: who owns a name, at which IPv4 address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AddrEntry {
    /// NB_FLAGS.
    pub flags: NbFlags,
    /// NB_ADDRESS.
    pub address: Ipv4Address,
}

impl AddrEntry {
    fn parse(bytes: &[u8]) -> AddrEntry {
        AddrEntry {
            flags: NbFlags(u16::from_be_bytes([bytes[0], bytes[1]])),
            address: Ipv4Address::new(bytes[2], bytes[3], bytes[4], bytes[5]),
        }
    }

    fn emit(&self, w: &mut Writer<'_>) {
        w.u16(self.flags.0);
        w.bytes(&self.address.octets());
    }
}

/// NAME_FLAGS of a node status entry.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct NameFlags(pub u16);

impl NameFlags {
    /// G: group name.
    pub const GROUP: u16 = 0x8000;
    /// DRG: the name is being released.
    pub const DEREGISTERING: u16 = 0x1000;
    /// CNF: the name is in conflict.
    pub const CONFLICT: u16 = 0x0800;
    /// ACT: the name is active (always set).
    pub const ACTIVE: u16 = 0x0400;
    /// PRM: the permanent node name.
    pub const PERMANENT: u16 = 0x0200;

    /// Flags for an active name of a node of `node_type`, without the other state bits.
    pub const fn new(group: bool, node_type: NodeType) -> NameFlags {
        NameFlags(
            if group { NameFlags::GROUP } else { 0 } | node_type.to_flags() | NameFlags::ACTIVE,
        )
    }

    /// Whether `bit` (one of the constants) is set.
    pub const fn has(self, bit: u16) -> bool {
        self.0 & bit == bit
    }

    /// `self` with `bit` set or cleared.
    pub const fn with(self, bit: u16, on: bool) -> NameFlags {
        NameFlags(if on { self.0 | bit } else { self.0 & !bit })
    }

    /// ONT: the owner's node type.
    pub const fn node_type(self) -> NodeType {
        NodeType::from_flags(self.0)
    }
}

impl fmt::Debug for NameFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NameFlags({:?}", self.node_type())?;
        for (bit, name) in [
            (NameFlags::GROUP, " GROUP"),
            (NameFlags::DEREGISTERING, " DRG"),
            (NameFlags::CONFLICT, " CNF"),
            (NameFlags::ACTIVE, " ACT"),
            (NameFlags::PERMANENT, " PRM"),
        ] {
            if self.has(bit) {
                f.write_str(name)?;
            }
        }
        f.write_str(")")
    }
}

/// One entry of a node status response: a name the node owns and its state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NodeName {
    /// The 16-byte name (not encoded on the wire).
    pub name: Name,
    /// NAME_FLAGS.
    pub flags: NameFlags,
}

impl NodeName {
    fn parse(bytes: &[u8]) -> NodeName {
        let mut name = [0u8; 16];
        name.copy_from_slice(&bytes[..16]);
        NodeName {
            name: Name::from_bytes(name),
            flags: NameFlags(u16::from_be_bytes([bytes[16], bytes[17]])),
        }
    }

    fn emit(&self, w: &mut Writer<'_>) {
        w.bytes(self.name.as_bytes());
        w.u16(self.flags.0);
    }
}

/// A list of fixed-size records that is either still on the wire (parsed) or a slice of values
/// (to emit); both compare equal when their records do.
#[derive(Clone, Copy)]
enum Records<'a, R> {
    Wire(&'a [u8]),
    Values(&'a [R]),
}

/// A record with a fixed wire size.
trait FixedRecord: Copy {
    const LEN: usize;
    fn read(bytes: &[u8]) -> Self;
    fn write(&self, w: &mut Writer<'_>);
}

impl FixedRecord for AddrEntry {
    const LEN: usize = ADDR_ENTRY_LEN;
    fn read(bytes: &[u8]) -> Self {
        AddrEntry::parse(bytes)
    }
    fn write(&self, w: &mut Writer<'_>) {
        self.emit(w)
    }
}

impl FixedRecord for NodeName {
    const LEN: usize = NODE_NAME_LEN;
    fn read(bytes: &[u8]) -> Self {
        NodeName::parse(bytes)
    }
    fn write(&self, w: &mut Writer<'_>) {
        self.emit(w)
    }
}

impl<'a, R: FixedRecord> Records<'a, R> {
    fn len(&self) -> usize {
        match self {
            Records::Wire(bytes) => bytes.len() / R::LEN,
            Records::Values(values) => values.len(),
        }
    }

    fn get(&self, index: usize) -> Option<R> {
        match self {
            Records::Wire(bytes) => bytes.get(index * R::LEN..(index + 1) * R::LEN).map(R::read),
            Records::Values(values) => values.get(index).copied(),
        }
    }

    fn iter(&self) -> impl Iterator<Item = R> + '_ {
        (0..self.len()).filter_map(|i| self.get(i))
    }

    /// Writes the records: a parsed list as the bytes it was read from (each record reads
    /// and writes its bytes unchanged), a list of values one after the other.
    fn emit(&self, w: &mut Writer<'_>) {
        match self {
            Records::Wire(bytes) => w.bytes(bytes),
            Records::Values(values) => values.iter().for_each(|record| record.write(w)),
        }
    }
}

impl<R: FixedRecord + PartialEq> PartialEq for Records<'_, R> {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl<R: FixedRecord + fmt::Debug> fmt::Debug for Records<'_, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

macro_rules! record_list {
    ($(#[$attr:meta])* $name:ident, $record:ty) => {
        $(#[$attr])*
        #[derive(Clone, Copy, PartialEq)]
        pub struct $name<'a>(Records<'a, $record>);

        impl<'a> $name<'a> {
            /// A list to emit.
            pub const fn new(values: &'a [$record]) -> Self {
                $name(Records::Values(values))
            }

            /// How many records there are.
            pub fn len(&self) -> usize {
                self.0.len()
            }

            /// Whether there is none.
            pub fn is_empty(&self) -> bool {
                self.0.len() == 0
            }

            /// The record at `index`.
            pub fn get(&self, index: usize) -> Option<$record> {
                self.0.get(index)
            }

            /// The records, in order.
            pub fn iter(&self) -> impl Iterator<Item = $record> + '_ {
                self.0.iter()
            }
        }

        impl Eq for $name<'_> {}

        impl fmt::Debug for $name<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

record_list! {
    /// The ADDR_ENTRY array of an NB record: borrowed from the packet when parsed, from a slice
    /// when built to emit.
    AddrEntries, AddrEntry
}

record_list! {
    /// The names of a node status response: borrowed from the packet when parsed, from a slice
    /// when built to emit.
    NodeNames, NodeName
}

/// The 46-byte STATISTICS block of a node status response (RFC 1002 §4.2.18).
///
/// netbt fills the session fields with its live slot ledger.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[allow(missing_docs)]
pub struct Statistics {
    /// UNIT_ID: the MAC address (or zeros).
    pub unit_id: [u8; 6],
    pub jumpers: u8,
    pub test_result: u8,
    pub version_number: u16,
    pub period_of_statistics: u16,
    pub number_of_crcs: u16,
    pub number_alignment_errors: u16,
    pub number_of_collisions: u16,
    pub number_send_aborts: u16,
    pub number_good_sends: u32,
    pub number_good_receives: u32,
    pub number_retransmits: u16,
    /// Times the node could not serve a request for lack of resources.
    pub number_no_resource_conditions: u16,
    pub number_free_command_blocks: u16,
    pub total_number_command_blocks: u16,
    pub max_total_number_command_blocks: u16,
    pub number_pending_sessions: u16,
    pub max_number_pending_sessions: u16,
    pub max_total_sessions_possible: u16,
    pub session_data_packet_size: u16,
}

impl Statistics {
    fn parse(bytes: &[u8; STATISTICS_LEN]) -> Statistics {
        // After UNIT_ID, JUMPERS and TEST_RESULT come 19 big-endian 16-bit words (two pairs of
        // them are the 32-bit send and receive counts).
        let (head, tail) = bytes.split_at(8);
        let mut words = [0u16; 19];
        for (word, pair) in words.iter_mut().zip(tail.chunks_exact(2)) {
            *word = u16::from_be_bytes([pair[0], pair[1]]);
        }
        let u32_at = |at: usize| (u32::from(words[at]) << 16) | u32::from(words[at + 1]);
        let mut unit_id = [0u8; 6];
        unit_id.copy_from_slice(&head[..6]);
        Statistics {
            unit_id,
            jumpers: head[6],
            test_result: head[7],
            version_number: words[0],
            period_of_statistics: words[1],
            number_of_crcs: words[2],
            number_alignment_errors: words[3],
            number_of_collisions: words[4],
            number_send_aborts: words[5],
            number_good_sends: u32_at(6),
            number_good_receives: u32_at(8),
            number_retransmits: words[10],
            number_no_resource_conditions: words[11],
            number_free_command_blocks: words[12],
            total_number_command_blocks: words[13],
            max_total_number_command_blocks: words[14],
            number_pending_sessions: words[15],
            max_number_pending_sessions: words[16],
            max_total_sessions_possible: words[17],
            session_data_packet_size: words[18],
        }
    }

    /// Writes the block: UNIT_ID, JUMPERS, TEST_RESULT, then 19 big-endian 16-bit words.
    fn emit(&self, w: &mut Writer<'_>) {
        w.bytes(&self.unit_id);
        w.bytes(&[self.jumpers, self.test_result]);
        let high = |value: u32| (value >> 16) as u16;
        let words = [
            self.version_number,
            self.period_of_statistics,
            self.number_of_crcs,
            self.number_alignment_errors,
            self.number_of_collisions,
            self.number_send_aborts,
            high(self.number_good_sends),
            self.number_good_sends as u16,
            high(self.number_good_receives),
            self.number_good_receives as u16,
            self.number_retransmits,
            self.number_no_resource_conditions,
            self.number_free_command_blocks,
            self.total_number_command_blocks,
            self.max_total_number_command_blocks,
            self.number_pending_sessions,
            self.max_number_pending_sessions,
            self.max_total_sessions_possible,
            self.session_data_packet_size,
        ];
        words.into_iter().for_each(|word| w.u16(word));
    }
}

/// The request packets that share the registration layout (question + one NB record).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RegistrationKind {
    /// NAME REGISTRATION REQUEST (§4.2.2): opcode 5, RD set.
    Registration,
    /// NAME OVERWRITE REQUEST & DEMAND (§4.2.3): opcode 5, RD clear; what a B-node broadcasts
    /// once its registration went unchallenged.
    Overwrite,
    /// NAME REFRESH REQUEST (§4.2.4): opcode 8.
    Refresh,
    /// NAME REFRESH REQUEST with Microsoft's opcode 9.
    RefreshAlternate,
    /// Multi-homed NAME REGISTRATION REQUEST (Microsoft): opcode 0xF.
    MultiHomed,
}

impl RegistrationKind {
    const fn opcode(self) -> Opcode {
        match self {
            RegistrationKind::Registration | RegistrationKind::Overwrite => Opcode::Registration,
            RegistrationKind::Refresh => Opcode::Refresh,
            RegistrationKind::RefreshAlternate => Opcode::RefreshAlternate,
            RegistrationKind::MultiHomed => Opcode::MultiHomedRegistration,
        }
    }
}

/// One packet of the RFC 1002 §4.2 catalog, without its transaction id and free flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(
    clippy::large_enum_variant,
    reason = "no allocator to box the redirect's two domain names; a Message lives on the stack briefly"
)]
// C layout, the name first in every variant that has one: the name is at the same place in
// each, so the parser copies it into a message once, not once per variant (code size).
#[repr(C)]
pub enum Message<'a> {
    /// NAME QUERY REQUEST (§4.2.12).
    NameQueryRequest {
        /// The name asked for.
        name: NbName,
    },
    /// NODE STATUS REQUEST (§4.2.17).
    NodeStatusRequest {
        /// The name whose node is asked (usually `*`).
        name: NbName,
    },
    /// NAME REGISTRATION, OVERWRITE, REFRESH or multi-homed REGISTRATION REQUEST
    /// (§4.2.2–4.2.4).
    NameRegistrationRequest {
        /// The name.
        name: NbName,
        /// Which of the requests.
        kind: RegistrationKind,
        /// TTL in seconds (0 = infinite).
        ttl: u32,
        /// Flags and address of the registrant.
        entry: AddrEntry,
    },
    /// NAME RELEASE REQUEST & DEMAND (§4.2.9).
    NameReleaseRequest {
        /// The name.
        name: NbName,
        /// Flags and address of the releasing node.
        entry: AddrEntry,
    },
    /// POSITIVE NAME QUERY RESPONSE (§4.2.13).
    PositiveNameQueryResponse {
        /// The name asked for.
        name: NbName,
        /// TTL in seconds.
        ttl: u32,
        /// The owners.
        entries: AddrEntries<'a>,
    },
    /// NEGATIVE NAME QUERY RESPONSE (§4.2.14).
    NegativeNameQueryResponse {
        /// The name asked for.
        name: NbName,
        /// Why (NAM_ERR for an unknown name); never [`Rcode::NoError`].
        rcode: Rcode,
    },
    /// REDIRECT NAME QUERY RESPONSE (§4.2.15).
    RedirectNameQueryResponse {
        /// The domain the name server has authority over (authority record name).
        domain: DomainName,
        /// TTL of the authority record.
        ttl: u32,
        /// NSD_NAME: the name server to ask.
        server_name: DomainName,
        /// TTL of the address record.
        server_ttl: u32,
        /// NSD_IP_ADDR.
        server_address: Ipv4Address,
    },
    /// NODE STATUS RESPONSE (§4.2.18).
    NodeStatusResponse {
        /// The name asked for.
        name: NbName,
        /// The names the node owns.
        names: NodeNames<'a>,
        /// The statistics block.
        statistics: Statistics,
    },
    /// POSITIVE (rcode 0) or NEGATIVE NAME REGISTRATION RESPONSE (§4.2.5–4.2.6).
    ///
    /// A negative registration response with CFT_ERR has the bytes of a NAME CONFLICT DEMAND
    /// and parses as [`Message::NameConflictDemand`].
    NameRegistrationResponse {
        /// The name.
        name: NbName,
        /// NoError, or why the registration is refused (ACT_ERR: owned by another node).
        rcode: Rcode,
        /// TTL in seconds.
        ttl: u32,
        /// The registrant's entry, copied from the request.
        entry: AddrEntry,
    },
    /// A response to a NAME REFRESH REQUEST that carries the refresh opcode (8, or 9 when
    /// `alternate`). RFC 1002 draws no refresh response (Samba answers refreshes with a
    /// [`Message::NameRegistrationResponse`], opcode 5); servers that echo the request's opcode
    /// send this. Same layout as the registration response.
    NameRefreshResponse {
        /// The name.
        name: NbName,
        /// Opcode 9 (Microsoft's alternate refresh) rather than 8.
        alternate: bool,
        /// NoError, or why the refresh is refused.
        rcode: Rcode,
        /// TTL in seconds.
        ttl: u32,
        /// The registrant's entry, copied from the request.
        entry: AddrEntry,
    },
    /// END-NODE CHALLENGE NAME REGISTRATION RESPONSE (§4.2.7): the entry is the current owner.
    EndNodeChallengeResponse {
        /// The name.
        name: NbName,
        /// TTL in seconds.
        ttl: u32,
        /// The current owner.
        entry: AddrEntry,
    },
    /// NAME CONFLICT DEMAND (§4.2.8).
    NameConflictDemand {
        /// The name in conflict.
        name: NbName,
        /// The entry of the node told to give the name up.
        entry: AddrEntry,
    },
    /// POSITIVE (rcode 0) or NEGATIVE NAME RELEASE RESPONSE (§4.2.10–4.2.11).
    NameReleaseResponse {
        /// The name.
        name: NbName,
        /// NoError, or why the release is refused.
        rcode: Rcode,
        /// The releasing node's entry.
        entry: AddrEntry,
    },
    /// WAIT FOR ACKNOWLEDGEMENT RESPONSE (§4.2.16).
    WaitForAcknowledgement {
        /// The name of the pending request.
        name: NbName,
        /// Seconds to wait (0: unknown).
        ttl: u32,
        /// The pending request's OPCODE and NM_FLAGS (its flags word with RCODE zero).
        request_flags: u16,
    },
}

/// A name service packet: transaction id, the header flags its kind leaves free, and the
/// message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Repr<'a> {
    /// NAME_TRN_ID.
    pub transaction_id: u16,
    /// The NM_FLAGS bits not fixed by the message kind (see [`Message::fixed_flags`]).
    pub flags: Flags,
    /// The packet.
    pub message: Message<'a>,
}

/// Flags word layout of one message kind: the bits it fixes (R, OPCODE, the fixed NM_FLAGS
/// bits, RCODE) as they sit in the flags word, which NM_FLAGS bits are fixed, and how many
/// records each section holds.
struct Layout {
    word: u16,
    fixed_mask: Flags,
    sections: Sections,
}

/// The section counts of a message kind.
#[derive(Clone, Copy)]
enum Sections {
    /// One question.
    Question,
    /// One question and one additional record.
    QuestionAndRecord,
    /// One answer.
    Answer,
    /// One authority and one additional record (a redirect).
    AuthorityAndRecord,
}

impl Sections {
    /// QDCOUNT, ANCOUNT, NSCOUNT and ARCOUNT.
    const fn counts(self) -> [u16; 4] {
        match self {
            Sections::Question => [1, 0, 0, 0],
            Sections::QuestionAndRecord => [1, 0, 0, 1],
            Sections::Answer => [0, 1, 0, 0],
            Sections::AuthorityAndRecord => [0, 0, 1, 1],
        }
    }
}

impl Message<'_> {
    /// The NM_FLAGS bits this kind of message fixes (`.0`) and the values it fixes them to
    /// (`.1`). A [`Repr::flags`] value should not contain bits of the mask.
    pub fn fixed_flags(&self) -> (Flags, Flags) {
        let layout = self.layout();
        (
            layout.fixed_mask,
            Flags::from_word(layout.word).intersection(layout.fixed_mask),
        )
    }

    fn layout(&self) -> Layout {
        const AA: u16 = Flags::AUTHORITATIVE.bits();
        const RD: u16 = Flags::RECURSION_DESIRED.bits();
        const RA: u16 = Flags::RECURSION_AVAILABLE.bits();
        let opcode = |opcode: Opcode| u16::from(u8::from(opcode) & 0x0f) << OPCODE_SHIFT;
        let rcode = |rcode: Rcode| u16::from(u8::from(rcode) & 0x0f);
        // The fixed bits of the word, the fixed NM_FLAGS bits, the sections.
        let (word, mask, sections) = match *self {
            Message::NameQueryRequest { .. } | Message::NodeStatusRequest { .. } => {
                (opcode(Opcode::Query), 0, Sections::Question)
            }
            Message::NameRegistrationRequest { kind, .. } => {
                // A registration asks for recursion, an overwrite does not; the others leave
                // RD free.
                let (mask, value) = match kind {
                    RegistrationKind::Registration => (RD, RD),
                    RegistrationKind::Overwrite => (RD, 0),
                    _ => (0, 0),
                };
                (
                    opcode(kind.opcode()) | value,
                    mask,
                    Sections::QuestionAndRecord,
                )
            }
            Message::NameReleaseRequest { .. } => {
                (opcode(Opcode::Release), 0, Sections::QuestionAndRecord)
            }
            Message::PositiveNameQueryResponse { .. } | Message::NodeStatusResponse { .. } => {
                (RESPONSE | opcode(Opcode::Query) | AA, AA, Sections::Answer)
            }
            Message::NegativeNameQueryResponse { rcode: r, .. } => (
                RESPONSE | opcode(Opcode::Query) | AA | rcode(r),
                AA,
                Sections::Answer,
            ),
            Message::RedirectNameQueryResponse { .. } => (
                RESPONSE | opcode(Opcode::Query),
                0,
                Sections::AuthorityAndRecord,
            ),
            Message::NameRegistrationResponse { rcode: r, .. } => {
                // A positive response offers recursion, a negative one leaves RA free.
                let ra = if r == Rcode::NoError { RA } else { 0 };
                (
                    RESPONSE | opcode(Opcode::Registration) | AA | ra | rcode(r),
                    AA | ra,
                    Sections::Answer,
                )
            }
            Message::NameRefreshResponse {
                alternate,
                rcode: r,
                ..
            } => {
                let refresh = if alternate {
                    Opcode::RefreshAlternate
                } else {
                    Opcode::Refresh
                };
                (
                    RESPONSE | opcode(refresh) | AA | rcode(r),
                    AA,
                    Sections::Answer,
                )
            }
            Message::EndNodeChallengeResponse { .. } => (
                RESPONSE | opcode(Opcode::Registration) | AA,
                AA | RA,
                Sections::Answer,
            ),
            Message::NameConflictDemand { .. } => (
                RESPONSE | opcode(Opcode::Registration) | AA | rcode(Rcode::Conflict),
                AA,
                Sections::Answer,
            ),
            Message::NameReleaseResponse { rcode: r, .. } => (
                RESPONSE | opcode(Opcode::Release) | AA | rcode(r),
                AA,
                Sections::Answer,
            ),
            Message::WaitForAcknowledgement { .. } => {
                (RESPONSE | opcode(Opcode::Wack) | AA, AA, Sections::Answer)
            }
        };
        Layout {
            word,
            fixed_mask: Flags(mask),
            sections,
        }
    }

    /// The name the packet is about, if it is a NetBIOS name (all but redirects).
    pub fn name(&self) -> Option<&NbName> {
        match self {
            Message::NameQueryRequest { name }
            | Message::NodeStatusRequest { name }
            | Message::NameRegistrationRequest { name, .. }
            | Message::NameReleaseRequest { name, .. }
            | Message::PositiveNameQueryResponse { name, .. }
            | Message::NegativeNameQueryResponse { name, .. }
            | Message::NodeStatusResponse { name, .. }
            | Message::NameRegistrationResponse { name, .. }
            | Message::NameRefreshResponse { name, .. }
            | Message::EndNodeChallengeResponse { name, .. }
            | Message::NameConflictDemand { name, .. }
            | Message::NameReleaseResponse { name, .. }
            | Message::WaitForAcknowledgement { name, .. } => Some(name),
            Message::RedirectNameQueryResponse { .. } => None,
        }
    }

    /// Whether this is a response (R bit).
    pub fn is_response(&self) -> bool {
        !matches!(
            self,
            Message::NameQueryRequest { .. }
                | Message::NodeStatusRequest { .. }
                | Message::NameRegistrationRequest { .. }
                | Message::NameReleaseRequest { .. }
        )
    }
}

/// Reads the fixed part of a resource record after its name, and finds its RDATA.
struct RecordHeader<'a> {
    rr_type: RrType,
    ttl: u32,
    /// Where the RDATA starts in the message.
    rdata_start: usize,
    rdata: &'a [u8],
}

impl<'a> RecordHeader<'a> {
    fn parse(message: &'a [u8], at: usize) -> Result<RecordHeader<'a>> {
        // RR_TYPE, RR_CLASS, TTL, RDLENGTH: one length check for the four.
        let fixed: &[u8; 10] = message
            .get(at..)
            .and_then(|rest| rest.first_chunk())
            .ok_or(Error)?;
        let rr_type = RrType::from(u16::from_be_bytes([fixed[0], fixed[1]]));
        let class = u16::from_be_bytes([fixed[2], fixed[3]]);
        let ttl = u32::from_be_bytes([fixed[4], fixed[5], fixed[6], fixed[7]]);
        let rdlength = usize::from(u16::from_be_bytes([fixed[8], fixed[9]]));
        let rdata_start = at + 10;
        let rdata = message
            .get(rdata_start..rdata_start + rdlength)
            .ok_or(Error)?;
        if class != CLASS_IN {
            return Err(Error);
        }
        Ok(RecordHeader {
            rr_type,
            ttl,
            rdata_start,
            rdata,
        })
    }

    /// Where the RDATA ends in the message.
    fn rdata_end(&self) -> usize {
        self.rdata_start + self.rdata.len()
    }
}

/// Reads a name and the record header after it; `name` must be an NB-style NetBIOS name.
fn parse_record(message: &[u8], at: usize) -> Result<(NbName, RecordHeader<'_>)> {
    let (name, after) = NbName::parse(message, at, POINTERS)?;
    let header = RecordHeader::parse(message, after)?;
    Ok((name, header))
}

/// Reads a 6-byte NB record's single address entry.
fn single_entry(record: &RecordHeader<'_>) -> Result<AddrEntry> {
    let rdata = record.rdata;
    if record.rr_type != RrType::Nb || rdata.len() != ADDR_ENTRY_LEN {
        return Err(Error);
    }
    Ok(AddrEntry::parse(rdata))
}

impl<'a> Repr<'a> {
    /// Parses a name service packet. Never panics; anything that is not exactly one packet of
    /// the catalog is an error. Bytes after the last record are ignored.
    pub fn parse<T: AsRef<[u8]> + ?Sized>(packet: &Packet<&'a T>) -> Result<Repr<'a>> {
        packet.check_len()?;
        if packet.reserved_bits() != 0 {
            return Err(Error);
        }
        let message: &'a [u8] = packet.buffer.as_ref();
        let counts = [
            packet.question_count(),
            packet.answer_count(),
            packet.authority_count(),
            packet.additional_count(),
        ];
        let parsed = if packet.is_response() {
            Self::parse_response(packet, message, counts)?
        } else {
            Self::parse_request(packet, message, counts)?
        };
        let (mask, _) = parsed.fixed_flags();
        Ok(Repr {
            transaction_id: packet.transaction_id(),
            flags: packet.flags().without(mask),
            message: parsed,
        })
    }

    #[inline(never)]
    fn parse_request<T: AsRef<[u8]> + ?Sized>(
        packet: &Packet<&'a T>,
        message: &'a [u8],
        counts: [u16; 4],
    ) -> Result<Message<'a>> {
        if packet.rcode() != Rcode::NoError {
            return Err(Error);
        }
        let (name, after) = NbName::parse(message, HEADER_LEN, POINTERS)?;
        // QUESTION_TYPE and QUESTION_CLASS.
        let question: &[u8; 4] = message
            .get(after..)
            .and_then(|rest| rest.first_chunk())
            .ok_or(Error)?;
        let question_type = RrType::from(u16::from_be_bytes([question[0], question[1]]));
        if u16::from_be_bytes([question[2], question[3]]) != CLASS_IN {
            return Err(Error);
        }
        let question_end = after + 4;
        let kind = match packet.opcode() {
            Opcode::Query => {
                if counts != [1, 0, 0, 0] {
                    return Err(Error);
                }
                return match question_type {
                    RrType::Nb => Ok(Message::NameQueryRequest { name }),
                    RrType::NbStat => Ok(Message::NodeStatusRequest { name }),
                    _ => Err(Error),
                };
            }
            Opcode::Registration if packet.flags().contains(Flags::RECURSION_DESIRED) => {
                Some(RegistrationKind::Registration)
            }
            Opcode::Registration => Some(RegistrationKind::Overwrite),
            Opcode::Refresh => Some(RegistrationKind::Refresh),
            Opcode::RefreshAlternate => Some(RegistrationKind::RefreshAlternate),
            Opcode::MultiHomedRegistration => Some(RegistrationKind::MultiHomed),
            Opcode::Release => None,
            _ => return Err(Error),
        };
        if counts != [1, 0, 0, 1] || question_type != RrType::Nb {
            return Err(Error);
        }
        let (record_name, record) = parse_record(message, question_end)?;
        if record_name != name {
            return Err(Error);
        }
        let entry = single_entry(&record)?;
        Ok(match kind {
            Some(kind) => Message::NameRegistrationRequest {
                kind,
                name,
                ttl: record.ttl,
                entry,
            },
            None => Message::NameReleaseRequest { name, entry },
        })
    }

    #[inline(never)]
    fn parse_response<T: AsRef<[u8]> + ?Sized>(
        packet: &Packet<&'a T>,
        message: &'a [u8],
        counts: [u16; 4],
    ) -> Result<Message<'a>> {
        let rcode = packet.rcode();
        if counts == [0, 0, 1, 1] && packet.opcode() == Opcode::Query && rcode == Rcode::NoError {
            return Self::parse_redirect(message);
        }
        if counts != [0, 1, 0, 0] {
            return Err(Error);
        }
        let (name, record) = parse_record(message, HEADER_LEN)?;
        let rdata = record.rdata;
        // The registration, refresh and release responses carry one address entry.
        let entry = single_entry(&record);
        match packet.opcode() {
            Opcode::Query => match (record.rr_type, rcode) {
                (RrType::Nb, Rcode::NoError) => {
                    if rdata.len() % ADDR_ENTRY_LEN != 0 {
                        return Err(Error);
                    }
                    Ok(Message::PositiveNameQueryResponse {
                        name,
                        ttl: record.ttl,
                        entries: AddrEntries(Records::Wire(rdata)),
                    })
                }
                (RrType::NbStat, Rcode::NoError) => {
                    let (&count, rest) = rdata.split_first().ok_or(Error)?;
                    let names_len = usize::from(count) * NODE_NAME_LEN;
                    let names = rest.get(..names_len).ok_or(Error)?;
                    let statistics = rest
                        .get(names_len..names_len + STATISTICS_LEN)
                        .and_then(|s| <&[u8; STATISTICS_LEN]>::try_from(s).ok())
                        .ok_or(Error)?;
                    Ok(Message::NodeStatusResponse {
                        name,
                        names: NodeNames(Records::Wire(names)),
                        statistics: Statistics::parse(statistics),
                    })
                }
                // RFC 1002 says NULL; some implementations answer with an empty NB record.
                (RrType::Null | RrType::Nb, rcode) if rcode != Rcode::NoError => {
                    Ok(Message::NegativeNameQueryResponse { name, rcode })
                }
                _ => Err(Error),
            },
            Opcode::Registration => {
                let entry = entry?;
                let ttl = record.ttl;
                Ok(match rcode {
                    Rcode::Conflict => Message::NameConflictDemand { name, entry },
                    Rcode::NoError if !packet.flags().contains(Flags::RECURSION_AVAILABLE) => {
                        Message::EndNodeChallengeResponse { name, ttl, entry }
                    }
                    rcode => Message::NameRegistrationResponse {
                        name,
                        rcode,
                        ttl,
                        entry,
                    },
                })
            }
            opcode @ (Opcode::Refresh | Opcode::RefreshAlternate) => {
                Ok(Message::NameRefreshResponse {
                    alternate: opcode == Opcode::RefreshAlternate,
                    name,
                    rcode,
                    ttl: record.ttl,
                    entry: entry?,
                })
            }
            Opcode::Release => Ok(Message::NameReleaseResponse {
                name,
                rcode,
                entry: entry?,
            }),
            Opcode::Wack if rcode == Rcode::NoError => {
                if record.rr_type != RrType::Null || rdata.len() != 2 {
                    return Err(Error);
                }
                Ok(Message::WaitForAcknowledgement {
                    name,
                    ttl: record.ttl,
                    request_flags: u16::from_be_bytes([rdata[0], rdata[1]]),
                })
            }
            _ => Err(Error),
        }
    }

    #[inline(never)]
    fn parse_redirect(message: &'a [u8]) -> Result<Message<'a>> {
        let (domain, after) = DomainName::parse(message, HEADER_LEN, POINTERS)?;
        let ns = RecordHeader::parse(message, after)?;
        if ns.rr_type != RrType::Ns {
            return Err(Error);
        }
        let (server_name, name_end) = DomainName::parse(message, ns.rdata_start, POINTERS)?;
        if name_end != ns.rdata_end() {
            return Err(Error);
        }
        let (a_name, after) = DomainName::parse(message, name_end, POINTERS)?;
        let a = RecordHeader::parse(message, after)?;
        let address: [u8; 4] = a.rdata.try_into().map_err(|_| Error)?;
        if a.rr_type != RrType::A || a_name != server_name {
            return Err(Error);
        }
        Ok(Message::RedirectNameQueryResponse {
            domain,
            ttl: ns.ttl,
            server_name,
            server_ttl: a.ttl,
            server_address: Ipv4Address::from(address),
        })
    }

    /// The message's flag bits as they go on the wire.
    pub fn wire_flags(&self) -> Flags {
        let (mask, value) = self.message.fixed_flags();
        self.flags.without(mask).union(value)
    }

    /// Bytes [`Repr::emit`] writes.
    pub fn buffer_len(&self) -> usize {
        HEADER_LEN
            + match self.message.body() {
                Some(body) => body.len(),
                None => self.message.redirect_len(),
            }
    }

    /// Writes the packet into `packet`, whose buffer must be at least [`Repr::buffer_len`]
    /// bytes long (only that many are written).
    ///
    /// # Panics
    /// If the buffer is shorter than [`Repr::buffer_len`], or a list is longer than a 16-bit
    /// RDLENGTH or an 8-bit name count can say (never for packets that fit 576 bytes).
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]> + ?Sized>(&self, packet: &mut Packet<&mut T>) {
        let layout = self.message.layout();
        let mut w = Writer {
            buf: packet.buffer.as_mut(),
            pos: 0,
        };
        // The header: NAME_TRN_ID, the flags word, the four counts.
        w.u16(self.transaction_id);
        w.u16(layout.word | self.flags.without(layout.fixed_mask).bits());
        layout
            .sections
            .counts()
            .into_iter()
            .for_each(|count| w.u16(count));
        match self.message.body() {
            Some(body) => body.emit(&mut w),
            None => self.message.emit_redirect(&mut w),
        }
    }

    /// How many node status names fit in one packet of at most 576 bytes answering a query
    /// for `name` (26 without a scope).
    pub fn max_node_status_names(name: &NbName) -> usize {
        let fixed = HEADER_LEN + name.wire_len() + 10 + node_status_rdata_len(0);
        MAX_DATAGRAM_LENGTH.saturating_sub(fixed) / NODE_NAME_LEN
    }

    /// A NODE STATUS RESPONSE that fits 576 bytes: if `names` does not fit, only the first ones
    /// that do are listed and the TC flag is set.
    pub fn node_status_response(
        transaction_id: u16,
        name: NbName,
        names: &'a [NodeName],
        statistics: Statistics,
    ) -> Repr<'a> {
        let fit = Self::max_node_status_names(&name).min(usize::from(u8::MAX));
        let truncated = names.len() > fit;
        let names = &names[..names.len().min(fit)];
        Repr {
            transaction_id,
            flags: Flags::NONE.with(Flags::TRUNCATED, truncated),
            message: Message::NodeStatusResponse {
                name,
                names: NodeNames::new(names),
                statistics,
            },
        }
    }
}

fn node_status_rdata_len(names: usize) -> usize {
    1 + names * NODE_NAME_LEN + STATISTICS_LEN
}

/// The RDATA of the one resource record a message (other than a redirect) carries.
enum Rdata<'m, 'a> {
    /// None (a negative query response).
    Empty,
    /// One ADDR_ENTRY.
    Entry(&'m AddrEntry),
    /// The ADDR_ENTRY array of a positive query response.
    Entries(&'m AddrEntries<'a>),
    /// NUM_NAMES, the node names and the statistics of a node status response.
    NodeStatus(&'m NodeNames<'a>, &'m Statistics),
    /// The pending request's flags word of a WACK.
    RequestFlags(u16),
}

impl Rdata<'_, '_> {
    /// RDLENGTH.
    fn len(&self) -> usize {
        match self {
            Rdata::Empty => 0,
            Rdata::Entry(_) => ADDR_ENTRY_LEN,
            Rdata::Entries(entries) => entries.len() * ADDR_ENTRY_LEN,
            Rdata::NodeStatus(names, _) => node_status_rdata_len(names.len()),
            Rdata::RequestFlags(_) => 2,
        }
    }

    fn emit(&self, w: &mut Writer<'_>) {
        match self {
            Rdata::Empty => {}
            Rdata::Entry(entry) => entry.emit(w),
            Rdata::Entries(entries) => entries.0.emit(w),
            Rdata::NodeStatus(names, statistics) => {
                w.bytes(&[u8::try_from(names.len()).expect("too many names")]);
                names.0.emit(w);
                statistics.emit(w);
            }
            Rdata::RequestFlags(flags) => w.u16(*flags),
        }
    }
}

/// A message other than a redirect, part by part as it goes on the wire: the name, then its
/// question, then its record (RR_TYPE, TTL, RDATA). A request has a question; a registration-
/// shaped or release request also a record, whose name is the pointer to the question's. A
/// response has the record only, under the full name.
struct Body<'m, 'a> {
    name: &'m NbName,
    question: Option<RrType>,
    record: Option<(RrType, u32, Rdata<'m, 'a>)>,
}

impl Body<'_, '_> {
    const QUESTION_TAIL: usize = 4;
    const RECORD_TAIL: usize = 10;

    /// Bytes after the header.
    fn len(&self) -> usize {
        let mut len = self.name.wire_len();
        if self.question.is_some() {
            len += Self::QUESTION_TAIL;
        }
        if let Some((_, _, rdata)) = &self.record {
            if self.question.is_some() {
                len += QUESTION_POINTER.len();
            }
            len += Self::RECORD_TAIL + rdata.len();
        }
        len
    }

    fn emit(&self, w: &mut Writer<'_>) {
        w.name(self.name);
        if let Some(question_type) = self.question {
            w.u16(question_type.into());
            w.u16(CLASS_IN);
        }
        if let Some((rr_type, ttl, rdata)) = &self.record {
            if self.question.is_some() {
                w.bytes(&QUESTION_POINTER);
            }
            w.record_header(*rr_type, *ttl, rdata.len());
            rdata.emit(w);
        }
    }
}

impl<'a> Message<'a> {
    /// The parts of the message, `None` for a redirect (the one message without a NetBIOS name).
    fn body(&self) -> Option<Body<'_, 'a>> {
        let (name, question, record) = match self {
            Message::NameQueryRequest { name } => (name, Some(RrType::Nb), None),
            Message::NodeStatusRequest { name } => (name, Some(RrType::NbStat), None),
            Message::NameRegistrationRequest {
                name, ttl, entry, ..
            } => (
                name,
                Some(RrType::Nb),
                Some((RrType::Nb, *ttl, Rdata::Entry(entry))),
            ),
            Message::NameReleaseRequest { name, entry } => (
                name,
                Some(RrType::Nb),
                Some((RrType::Nb, 0, Rdata::Entry(entry))),
            ),
            Message::PositiveNameQueryResponse { name, ttl, entries } => (
                name,
                None,
                Some((RrType::Nb, *ttl, Rdata::Entries(entries))),
            ),
            Message::NegativeNameQueryResponse { name, .. } => {
                (name, None, Some((RrType::Null, 0, Rdata::Empty)))
            }
            Message::RedirectNameQueryResponse { .. } => return None,
            Message::NodeStatusResponse {
                name,
                names,
                statistics,
            } => (
                name,
                None,
                Some((RrType::NbStat, 0, Rdata::NodeStatus(names, statistics))),
            ),
            Message::NameRegistrationResponse {
                name, ttl, entry, ..
            }
            | Message::NameRefreshResponse {
                name, ttl, entry, ..
            }
            | Message::EndNodeChallengeResponse { name, ttl, entry } => {
                (name, None, Some((RrType::Nb, *ttl, Rdata::Entry(entry))))
            }
            Message::NameConflictDemand { name, entry }
            | Message::NameReleaseResponse { name, entry, .. } => {
                (name, None, Some((RrType::Nb, 0, Rdata::Entry(entry))))
            }
            Message::WaitForAcknowledgement {
                name,
                ttl,
                request_flags,
            } => (
                name,
                None,
                Some((RrType::Null, *ttl, Rdata::RequestFlags(*request_flags))),
            ),
        };
        Some(Body {
            name,
            question,
            record,
        })
    }

    /// Bytes of a redirect after the header (0 for any other message).
    fn redirect_len(&self) -> usize {
        let Message::RedirectNameQueryResponse {
            domain,
            server_name,
            ..
        } = self
        else {
            return 0;
        };
        domain.wire_len() + 2 * Body::RECORD_TAIL + 2 * server_name.wire_len() + 4
    }

    /// Writes a redirect after the header (nothing for any other message).
    fn emit_redirect(&self, w: &mut Writer<'_>) {
        let Message::RedirectNameQueryResponse {
            domain,
            ttl,
            server_name,
            server_ttl,
            server_address,
        } = self
        else {
            return;
        };
        w.domain_name(domain);
        w.record_header(RrType::Ns, *ttl, server_name.wire_len());
        // NSD_NAME, then the same name again as the address record's RR_NAME.
        w.domain_name(server_name);
        w.domain_name(server_name);
        w.record_header(RrType::A, *server_ttl, 4);
        w.bytes(&server_address.octets());
    }
}

/// Sequential writer over an emit buffer; callers guarantee the buffer is long enough.
struct Writer<'b> {
    buf: &'b mut [u8],
    pos: usize,
}

impl Writer<'_> {
    fn take(&mut self, len: usize) -> &mut [u8] {
        let start = self.pos;
        self.pos += len;
        &mut self.buf[start..start + len]
    }

    fn rest(&mut self) -> &mut [u8] {
        &mut self.buf[self.pos..]
    }

    fn bytes(&mut self, bytes: &[u8]) {
        self.take(bytes.len()).copy_from_slice(bytes);
    }

    fn u16(&mut self, value: u16) {
        self.bytes(&value.to_be_bytes());
    }

    fn u32(&mut self, value: u32) {
        self.bytes(&value.to_be_bytes());
    }

    fn name(&mut self, name: &NbName) {
        let len = name.emit(self.rest());
        self.pos += len;
    }

    fn domain_name(&mut self, name: &DomainName) {
        let len = name.emit(self.rest());
        self.pos += len;
    }

    fn record_header(&mut self, rr_type: RrType, ttl: u32, rdlength: usize) {
        self.u16(rr_type.into());
        self.u16(CLASS_IN);
        self.u32(ttl);
        self.u16(u16::try_from(rdlength).expect("RDLENGTH over 65535"));
    }
}

#[cfg(feature = "defmt")]
impl defmt::Format for Repr<'_> {
    /// A summary: transaction id, opcode, request or response, and the name it is about.
    fn format(&self, f: defmt::Formatter<'_>) {
        let word = self.message.layout().word;
        defmt::write!(
            f,
            "[{=u16:#06x}] {} {=str}",
            self.transaction_id,
            Opcode::from(((word & OPCODE_MASK) >> OPCODE_SHIFT) as u8),
            if word & RESPONSE != 0 {
                "response"
            } else {
                "request"
            }
        );
        if let Some(name) = self.message.name() {
            defmt::write!(f, " for {}", name);
        }
    }
}

impl fmt::Display for Repr<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{:#06x}] ", self.transaction_id)?;
        let broadcast = if self.flags.contains(Flags::BROADCAST) {
            "broadcast "
        } else {
            ""
        };
        match &self.message {
            Message::NameQueryRequest { name } => write!(f, "{broadcast}name query for {name}"),
            Message::NodeStatusRequest { name } => {
                write!(f, "{broadcast}node status request for {name}")
            }
            Message::NameRegistrationRequest {
                kind, name, entry, ..
            } => write!(
                f,
                "{broadcast}{kind:?} request for {name} by {} ({})",
                entry.address,
                if entry.flags.is_group() {
                    "group"
                } else {
                    "unique"
                }
            ),
            Message::NameReleaseRequest { name, entry } => {
                write!(
                    f,
                    "{broadcast}release request for {name} by {}",
                    entry.address
                )
            }
            Message::PositiveNameQueryResponse { name, entries, .. } => {
                write!(f, "positive query response for {name}:")?;
                for entry in entries.iter() {
                    write!(f, " {}", entry.address)?;
                }
                Ok(())
            }
            Message::NegativeNameQueryResponse { name, rcode } => {
                write!(f, "negative query response for {name} ({rcode:?})")
            }
            Message::RedirectNameQueryResponse {
                server_name,
                server_address,
                ..
            } => write!(
                f,
                "redirect to name server {server_name} at {server_address}"
            ),
            Message::NodeStatusResponse { name, names, .. } => {
                write!(f, "node status response for {name}, {} names", names.len())
            }
            Message::NameRegistrationResponse { name, rcode, .. } => {
                write!(f, "registration response for {name} ({rcode:?})")
            }
            Message::NameRefreshResponse { name, rcode, .. } => {
                write!(f, "refresh response for {name} ({rcode:?})")
            }
            Message::EndNodeChallengeResponse { name, entry, .. } => {
                write!(f, "end-node challenge for {name}, owner {}", entry.address)
            }
            Message::NameConflictDemand { name, .. } => write!(f, "conflict demand for {name}"),
            Message::NameReleaseResponse { name, rcode, .. } => {
                write!(f, "release response for {name} ({rcode:?})")
            }
            Message::WaitForAcknowledgement { name, ttl, .. } => {
                write!(f, "WACK for {name}, wait {ttl} s")
            }
        }
    }
}

#[cfg(test)]
mod test {
    use super::*;
    use crate::wire::Scope;
    use crate::wire::strategies;
    use proptest::prelude::*;

    /// Bytes from hex text; spaces and newlines are ignored.
    fn hex(text: &str) -> Vec<u8> {
        let digits: Vec<u8> = text.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
        digits
            .chunks(2)
            .map(|pair| u8::from_str_radix(core::str::from_utf8(pair).unwrap(), 16).unwrap())
            .collect()
    }

    /// `FRED<00>` as RFC 1001 encodes it, written out by hand: 0x20, "EGFCEFEE" + 11 × "CA" +
    /// "AA", 0x00.
    const FRED00: &str =
        "20 4547 4643 4546 4545 4341 4341 4341 4341 4341 4341 4341 4341 4341 4341 4341 4141 00";
    /// `FRED<00>` as two ASCII-letter strings, for readability of the vectors above.
    const FRED00_LETTERS: &[u8; 32] = b"EGFCEFEECACACACACACACACACACACAAA";

    fn fred00() -> NbName {
        NbName::unscoped(Name::new("FRED", 0).unwrap())
    }

    fn lab_entry() -> AddrEntry {
        AddrEntry {
            flags: NbFlags::new(false, NodeType::B),
            address: Ipv4Address::new(192, 168, 69, 1),
        }
    }

    fn parse(bytes: &[u8]) -> Result<Repr<'_>> {
        Repr::parse(&Packet::new_unchecked(bytes))
    }

    fn emit(repr: &Repr) -> Vec<u8> {
        let mut buf = vec![0xa5; repr.buffer_len()];
        repr.emit(&mut Packet::new_unchecked(&mut buf[..]));
        buf
    }

    #[test]
    fn fred_constant_is_the_rfc_encoding() {
        let bytes = hex(FRED00);
        assert_eq!(bytes.len(), 34);
        assert_eq!(&bytes[1..33], FRED00_LETTERS);
    }

    /// Each vector: the RFC 1002 layout written out by hand, and the Repr it must be.
    fn vectors() -> Vec<(&'static str, String, Repr<'static>)> {
        static ENTRIES: [AddrEntry; 2] = [
            AddrEntry {
                flags: NbFlags(0x0000),
                address: Ipv4Address::new(192, 168, 69, 1),
            },
            AddrEntry {
                flags: NbFlags(0x8000),
                address: Ipv4Address::new(192, 168, 69, 2),
            },
        ];
        static NODE_NAMES: [NodeName; 2] = [
            NodeName {
                name: Name::from_bytes(*b"FRED           \x00"),
                flags: NameFlags(0x0400),
            },
            NodeName {
                name: Name::from_bytes(*b"WORKGROUP      \x00"),
                flags: NameFlags(0x8400),
            },
        ];
        let stats = Statistics {
            unit_id: [2, 0, 0, 0, 0, 1],
            number_no_resource_conditions: 3,
            number_free_command_blocks: 6,
            total_number_command_blocks: 10,
            max_total_number_command_blocks: 10,
            number_pending_sessions: 1,
            max_number_pending_sessions: 2,
            max_total_sessions_possible: 8,
            session_data_packet_size: 0xffff,
            ..Statistics::default()
        };
        let f = FRED00;
        let repr = |trn, flags, message| Repr {
            transaction_id: trn,
            flags,
            message,
        };
        vec![
            (
                "name query request (broadcast, RD)",
                format!("1234 0110 0001 0000 0000 0000 {f} 0020 0001"),
                repr(
                    0x1234,
                    Flags::BROADCAST | Flags::RECURSION_DESIRED,
                    Message::NameQueryRequest { name: fred00() },
                ),
            ),
            (
                "positive name query response, 2 entries",
                format!(
                    "1234 8500 0000 0001 0000 0000 {f} 0020 0001 000493e0 000c
                     0000 c0a84501 8000 c0a84502"
                ),
                repr(
                    0x1234,
                    Flags::RECURSION_DESIRED,
                    Message::PositiveNameQueryResponse {
                        name: fred00(),
                        ttl: 300_000,
                        entries: AddrEntries::new(&ENTRIES),
                    },
                ),
            ),
            (
                "negative name query response (NAM_ERR)",
                format!("0007 8583 0000 0001 0000 0000 {f} 000a 0001 00000000 0000"),
                repr(
                    7,
                    Flags::RECURSION_DESIRED | Flags::RECURSION_AVAILABLE,
                    Message::NegativeNameQueryResponse {
                        name: fred00(),
                        rcode: Rcode::NameError,
                    },
                ),
            ),
            (
                "name registration request (broadcast)",
                format!(
                    "0001 2910 0001 0000 0000 0001 {f} 0020 0001 c00c 0020 0001 000493e0 0006
                     0000 c0a84501"
                ),
                repr(
                    1,
                    Flags::BROADCAST,
                    Message::NameRegistrationRequest {
                        kind: RegistrationKind::Registration,
                        name: fred00(),
                        ttl: 300_000,
                        entry: lab_entry(),
                    },
                ),
            ),
            (
                "name overwrite demand (broadcast)",
                format!(
                    "0001 2810 0001 0000 0000 0001 {f} 0020 0001 c00c 0020 0001 00000000 0006
                     0000 c0a84501"
                ),
                repr(
                    1,
                    Flags::BROADCAST,
                    Message::NameRegistrationRequest {
                        kind: RegistrationKind::Overwrite,
                        name: fred00(),
                        ttl: 0,
                        entry: lab_entry(),
                    },
                ),
            ),
            (
                "name refresh request",
                format!(
                    "0002 4000 0001 0000 0000 0001 {f} 0020 0001 c00c 0020 0001 00000e10 0006
                     0000 c0a84501"
                ),
                repr(
                    2,
                    Flags::NONE,
                    Message::NameRegistrationRequest {
                        kind: RegistrationKind::Refresh,
                        name: fred00(),
                        ttl: 3600,
                        entry: lab_entry(),
                    },
                ),
            ),
            (
                "name refresh request, Microsoft opcode 9",
                format!(
                    "0002 4800 0001 0000 0000 0001 {f} 0020 0001 c00c 0020 0001 00000e10 0006
                     0000 c0a84501"
                ),
                repr(
                    2,
                    Flags::NONE,
                    Message::NameRegistrationRequest {
                        kind: RegistrationKind::RefreshAlternate,
                        name: fred00(),
                        ttl: 3600,
                        entry: lab_entry(),
                    },
                ),
            ),
            (
                "multi-homed registration request",
                format!(
                    "0003 7900 0001 0000 0000 0001 {f} 0020 0001 c00c 0020 0001 00000e10 0006
                     0000 c0a84501"
                ),
                repr(
                    3,
                    Flags::RECURSION_DESIRED,
                    Message::NameRegistrationRequest {
                        kind: RegistrationKind::MultiHomed,
                        name: fred00(),
                        ttl: 3600,
                        entry: lab_entry(),
                    },
                ),
            ),
            (
                "positive name registration response",
                format!("0004 ad80 0000 0001 0000 0000 {f} 0020 0001 00000e10 0006 0000 c0a84501"),
                repr(
                    4,
                    Flags::RECURSION_DESIRED,
                    Message::NameRegistrationResponse {
                        name: fred00(),
                        rcode: Rcode::NoError,
                        ttl: 3600,
                        entry: lab_entry(),
                    },
                ),
            ),
            (
                "negative name registration response (ACT_ERR)",
                format!("0004 ad86 0000 0001 0000 0000 {f} 0020 0001 00000000 0006 0000 c0a84501"),
                repr(
                    4,
                    Flags::RECURSION_DESIRED | Flags::RECURSION_AVAILABLE,
                    Message::NameRegistrationResponse {
                        name: fred00(),
                        rcode: Rcode::Active,
                        ttl: 0,
                        entry: lab_entry(),
                    },
                ),
            ),
            (
                "end-node challenge registration response",
                format!("0005 ad00 0000 0001 0000 0000 {f} 0020 0001 00000e10 0006 0000 c0a84502"),
                repr(
                    5,
                    Flags::RECURSION_DESIRED,
                    Message::EndNodeChallengeResponse {
                        name: fred00(),
                        ttl: 3600,
                        entry: ENTRIES[1].clone_with_flags(NbFlags(0)),
                    },
                ),
            ),
            (
                "name conflict demand",
                format!("0006 ad87 0000 0001 0000 0000 {f} 0020 0001 00000000 0006 0000 c0a84501"),
                repr(
                    6,
                    Flags::RECURSION_DESIRED | Flags::RECURSION_AVAILABLE,
                    Message::NameConflictDemand {
                        name: fred00(),
                        entry: lab_entry(),
                    },
                ),
            ),
            (
                "name release request (broadcast)",
                format!(
                    "0008 3010 0001 0000 0000 0001 {f} 0020 0001 c00c 0020 0001 00000000 0006
                     0000 c0a84501"
                ),
                repr(
                    8,
                    Flags::BROADCAST,
                    Message::NameReleaseRequest {
                        name: fred00(),
                        entry: lab_entry(),
                    },
                ),
            ),
            (
                "negative name release response (ACT_ERR)",
                format!("0009 b406 0000 0001 0000 0000 {f} 0020 0001 00000000 0006 0000 c0a84501"),
                repr(
                    9,
                    Flags::NONE,
                    Message::NameReleaseResponse {
                        name: fred00(),
                        rcode: Rcode::Active,
                        entry: lab_entry(),
                    },
                ),
            ),
            (
                "WACK",
                format!("000a bc00 0000 0001 0000 0000 {f} 000a 0001 0000003c 0002 2910"),
                repr(
                    10,
                    Flags::NONE,
                    Message::WaitForAcknowledgement {
                        name: fred00(),
                        ttl: 60,
                        request_flags: 0x2910,
                    },
                ),
            ),
            (
                "node status request",
                "000b 0000 0001 0000 0000 0000
                 20 434b 4141 4141 4141 4141 4141 4141 4141 4141 4141 4141 4141 4141 4141 4141 4141 00
                 0021 0001"
                    .to_string(),
                repr(
                    11,
                    Flags::NONE,
                    Message::NodeStatusRequest {
                        name: NbName::unscoped(Name::WILDCARD),
                    },
                ),
            ),
            (
                "node status response, 2 names",
                format!(
                    "000b 8400 0000 0001 0000 0000 {f} 0021 0001 00000000 0053
                     02
                     4652 4544 2020 2020 2020 2020 2020 2000 0400
                     574f 524b 4752 4f55 5020 2020 2020 2000 8400
                     020000000001 00 00 0000 0000 0000 0000 0000 0000 00000000 00000000 0000
                     0003 0006 000a 000a 0001 0002 0008 ffff"
                ),
                repr(
                    11,
                    Flags::NONE,
                    Message::NodeStatusResponse {
                        name: fred00(),
                        names: NodeNames::new(&NODE_NAMES),
                        statistics: stats,
                    },
                ),
            ),
            (
                "redirect name query response",
                "000c 8180 0000 0000 0001 0001
                 03 4c4142 00 0002 0001 00000e10 0006 04 57494e53 00
                 04 57494e53 00 0001 0001 00000e10 0004 c0a84564"
                    .to_string(),
                repr(
                    12,
                    Flags::RECURSION_DESIRED | Flags::RECURSION_AVAILABLE,
                    Message::RedirectNameQueryResponse {
                        domain: DomainName::parse_text("LAB").unwrap(),
                        ttl: 3600,
                        server_name: DomainName::parse_text("WINS").unwrap(),
                        server_ttl: 3600,
                        server_address: Ipv4Address::new(192, 168, 69, 100),
                    },
                ),
            ),
        ]
    }

    impl AddrEntry {
        fn clone_with_flags(&self, flags: NbFlags) -> AddrEntry {
            AddrEntry { flags, ..*self }
        }
    }

    #[test]
    fn rfc_vectors_parse_and_emit_byte_for_byte() {
        for (what, text, repr) in vectors() {
            let bytes = hex(&text);
            assert_eq!(parse(&bytes), Ok(repr), "parse {what}");
            assert_eq!(emit(&repr), bytes, "emit {what}");
            assert_eq!(repr.buffer_len(), bytes.len(), "buffer_len {what}");
        }
    }

    #[test]
    fn vectors_have_rfc_sizes() {
        let sizes: Vec<usize> = vectors().iter().map(|(_, t, _)| hex(t).len()).collect();
        // Query request 50, one-address positive response 62 (+6 for the second).
        assert_eq!(sizes[0], 50);
        assert_eq!(sizes[1], 68);
        // Registration request: 12 + 34 + 4 + 2 + 10 + 6.
        assert_eq!(sizes[3], 68);
        // Node status response: 103 + 18 n.
        assert_eq!(sizes[16], 103 + 18 * 2);
    }

    #[test]
    fn truncation_at_every_byte_is_an_error() {
        for (what, text, _) in vectors() {
            let bytes = hex(&text);
            for len in 0..bytes.len() {
                assert_eq!(parse(&bytes[..len]), Err(Error), "{what} cut at {len}");
            }
        }
    }

    #[test]
    fn trailing_bytes_are_ignored() {
        for (what, text, repr) in vectors() {
            let mut bytes = hex(&text);
            bytes.extend_from_slice(&[0xde, 0xad]);
            assert_eq!(parse(&bytes), Ok(repr), "{what}");
        }
    }

    /// The vector named `what`, as bytes.
    fn vector(what: &str) -> Vec<u8> {
        let (_, text, _) = vectors().into_iter().find(|(w, _, _)| *w == what).unwrap();
        hex(&text)
    }

    #[test]
    fn rejects_bad_headers() {
        let query = vector("name query request (broadcast, RD)");
        // Reserved NM_FLAGS bits.
        for bit in [0x20u8, 0x40] {
            let mut bad = query.clone();
            bad[3] |= bit;
            assert_eq!(parse(&bad), Err(Error), "reserved bit {bit:#x}");
        }
        // RCODE in a request.
        let mut bad = query.clone();
        bad[3] |= 0x03;
        assert_eq!(parse(&bad), Err(Error));
        // Unknown opcodes, as request and as response.
        for opcode in [1u8, 2, 3, 4, 10, 14] {
            for response in [0u8, 0x80] {
                let mut bad = query.clone();
                bad[2] = response | (opcode << 3) | (bad[2] & 0x07);
                assert_eq!(parse(&bad), Err(Error), "opcode {opcode}");
            }
        }
        // Counts larger than the packet, or not the packet's.
        for (at, count) in [(5, 2u8), (7, 1), (9, 1), (11, 1), (4, 0xff)] {
            let mut bad = query.clone();
            bad[at] = count;
            assert_eq!(parse(&bad), Err(Error), "count at {at}");
        }
        let mut bad = query.clone();
        bad[5] = 0;
        assert_eq!(parse(&bad), Err(Error), "no question");
        // Question type and class.
        let mut bad = query.clone();
        bad[47] = 0x22;
        assert_eq!(parse(&bad), Err(Error), "question type");
        let mut bad = query.clone();
        bad[49] = 0x03;
        assert_eq!(parse(&bad), Err(Error), "question class");
    }

    #[test]
    fn rejects_bad_records() {
        let response = vector("positive name query response, 2 entries");
        // RDLENGTH past the end.
        let mut bad = response.clone();
        bad[55] = 0x0d;
        assert_eq!(parse(&bad), Err(Error));
        // RDLENGTH not a multiple of 6 (a truncated entry).
        let mut bad = response.clone();
        bad[55] = 0x0b;
        assert_eq!(parse(&bad), Err(Error));
        // RR class not IN.
        let mut bad = response.clone();
        bad[49] = 0x02;
        assert_eq!(parse(&bad), Err(Error));
        // A NULL record in a positive response.
        let mut bad = response.clone();
        bad[47] = 0x0a;
        assert_eq!(parse(&bad), Err(Error));
        // Registration: additional record of the wrong size, or for another name.
        let registration = vector("name registration request (broadcast)");
        let mut bad = registration.clone();
        bad[61] = 0x05;
        assert_eq!(parse(&bad[..bad.len() - 1]), Err(Error));
        let mut bad = registration.clone();
        bad[61] = 0x0c;
        bad.extend_from_slice(&[0, 0, 1, 2, 3, 4]);
        assert_eq!(parse(&bad), Err(Error), "12-byte registration record");
        let mut other = registration[..50].to_vec();
        let mut name = hex(FRED00);
        name[32] = b'B'; // FRED<01>
        other.extend_from_slice(&name);
        other.extend_from_slice(&registration[52..]);
        assert_eq!(
            parse(&other),
            Err(Error),
            "additional record for another name"
        );
        // A full copy of the same name instead of the pointer is fine.
        let mut full = registration[..50].to_vec();
        full.extend_from_slice(&hex(FRED00));
        full.extend_from_slice(&registration[52..]);
        assert_eq!(parse(&full), parse(&registration));
        // Forward pointer and pointer into the header in the additional record.
        for target in [0x02u8, 0x3a, 0x40] {
            let mut bad = registration.clone();
            bad[51] = target;
            assert_eq!(parse(&bad), Err(Error), "pointer to {target:#x}");
        }
        // Node status: name count larger than the record, statistics missing.
        let status = vector("node status response, 2 names");
        let mut bad = status.clone();
        bad[56] = 3;
        assert_eq!(parse(&bad), Err(Error));
        let mut bad = status.clone();
        bad[55] -= 1;
        assert_eq!(parse(&bad[..bad.len() - 1]), Err(Error));
        // WACK RDATA of the wrong size.
        let wack = vector("WACK");
        let mut bad = wack.clone();
        bad[55] = 3;
        bad.push(0);
        assert_eq!(parse(&bad), Err(Error));
        // Redirect whose address record names another server.
        let redirect = vector("redirect name query response");
        let mut bad = redirect.clone();
        let at = redirect.len() - 19;
        assert_eq!(bad[at], b'W');
        bad[at] = b'X';
        assert_eq!(parse(&bad), Err(Error));
    }

    #[test]
    fn conflict_demand_and_challenge_are_told_apart_by_flags() {
        let positive = vector("positive name registration response");
        assert!(matches!(
            parse(&positive).unwrap().message,
            Message::NameRegistrationResponse {
                rcode: Rcode::NoError,
                ..
            }
        ));
        let mut challenge = positive.clone();
        challenge[3] &= !0x80; // RA off
        assert!(matches!(
            parse(&challenge).unwrap().message,
            Message::EndNodeChallengeResponse { .. }
        ));
        // A negative registration response with CFT_ERR is a conflict demand.
        let mut cft = positive.clone();
        cft[3] |= 0x07;
        assert!(matches!(
            parse(&cft).unwrap().message,
            Message::NameConflictDemand { .. }
        ));
    }

    #[test]
    fn refresh_responses_keep_their_opcode() {
        // A server that echoes the refresh opcode: 8 (0xC580) or Microsoft's 9 (0xCD80).
        let positive = vector("positive name registration response");
        for (opcode, alternate) in [(0x8u8, false), (0x9, true)] {
            let mut refresh = positive.clone();
            refresh[2] = (refresh[2] & 0x87) | (opcode << 3);
            let repr = parse(&refresh).unwrap();
            let Message::NameRefreshResponse {
                alternate: parsed,
                rcode,
                ..
            } = repr.message
            else {
                panic!("not a refresh response: {repr:?}");
            };
            assert_eq!((parsed, rcode), (alternate, Rcode::NoError));
            assert_eq!(emit(&repr), refresh, "emits the bytes it parsed");
            // A negative one carries its RCODE.
            let mut refused = refresh.clone();
            refused[3] |= 0x05;
            assert!(matches!(
                parse(&refused).unwrap().message,
                Message::NameRefreshResponse {
                    rcode: Rcode::Refused,
                    ..
                }
            ));
        }
    }

    #[test]
    fn node_status_respects_576_bytes() {
        let names: Vec<NodeName> = (0..40u8)
            .map(|i| NodeName {
                name: Name::new("N", i).unwrap(),
                flags: NameFlags::new(false, NodeType::B),
            })
            .collect();
        let star = NbName::unscoped(Name::WILDCARD);
        assert_eq!(Repr::max_node_status_names(&star), 26);
        let fits = Repr::node_status_response(1, star, &names[..26], Statistics::default());
        assert_eq!(fits.buffer_len(), 103 + 18 * 26);
        assert!(fits.buffer_len() <= MAX_DATAGRAM_LENGTH);
        assert!(!fits.flags.contains(Flags::TRUNCATED));
        let cut = Repr::node_status_response(1, star, &names, Statistics::default());
        assert!(cut.flags.contains(Flags::TRUNCATED));
        assert!(cut.buffer_len() <= MAX_DATAGRAM_LENGTH);
        let bytes = emit(&cut);
        assert_eq!(bytes[2..4], [0x86, 0x00]);
        let Message::NodeStatusResponse { names: parsed, .. } = parse(&bytes).unwrap().message
        else {
            panic!("not a node status response");
        };
        assert_eq!(parsed.len(), 26);
        assert_eq!(parsed.get(25), Some(names[25]));
        // A scope leaves room for fewer names.
        let scoped = NbName::new(
            Name::WILDCARD,
            Scope::parse_text("A.VERY.LONG.SCOPE.EXAMPLE").unwrap(),
        );
        let cut = Repr::node_status_response(1, scoped, &names, Statistics::default());
        assert!(cut.buffer_len() <= MAX_DATAGRAM_LENGTH);
        assert_eq!(Repr::max_node_status_names(&scoped), 24);
    }

    #[test]
    fn packet_accessors() {
        let bytes = vector("negative name query response (NAM_ERR)");
        let packet = Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(packet.transaction_id(), 7);
        assert!(packet.is_response());
        assert_eq!(packet.opcode(), Opcode::Query);
        assert_eq!(packet.rcode(), Rcode::NameError);
        assert!(packet.flags().contains(Flags::AUTHORITATIVE));
        assert_eq!(packet.answer_count(), 1);
        assert_eq!(packet.payload().len(), bytes.len() - HEADER_LEN);
        assert!(Packet::new_checked(&bytes[..11]).is_err());
    }

    /// Owned parts a generated message borrows from.
    #[derive(Debug, Clone)]
    struct Parts {
        choice: u8,
        name: NbName,
        ttl: u32,
        entry: AddrEntry,
        entries: Vec<AddrEntry>,
        names: Vec<NodeName>,
        statistics: Statistics,
        rcode: Rcode,
        kind: RegistrationKind,
        flags: u16,
        transaction_id: u16,
    }

    fn addr_entry() -> impl Strategy<Value = AddrEntry> {
        (any::<u16>(), any::<[u8; 4]>()).prop_map(|(flags, a)| AddrEntry {
            flags: NbFlags(flags),
            address: Ipv4Address::from(a),
        })
    }

    fn statistics() -> impl Strategy<Value = Statistics> {
        (
            any::<[u8; 6]>(),
            any::<[u16; 15]>(),
            any::<(u32, u32, u8, u8)>(),
        )
            .prop_map(
                |(unit_id, w, (sends, receives, jumpers, test_result))| Statistics {
                    unit_id,
                    jumpers,
                    test_result,
                    version_number: w[0],
                    period_of_statistics: w[1],
                    number_of_crcs: w[2],
                    number_alignment_errors: w[3],
                    number_of_collisions: w[4],
                    number_send_aborts: w[5],
                    number_good_sends: sends,
                    number_good_receives: receives,
                    number_retransmits: w[6],
                    number_no_resource_conditions: w[7],
                    number_free_command_blocks: w[8],
                    total_number_command_blocks: w[9],
                    max_total_number_command_blocks: w[10],
                    number_pending_sessions: w[11],
                    max_number_pending_sessions: w[12],
                    max_total_sessions_possible: w[13],
                    session_data_packet_size: w[14],
                },
            )
    }

    fn parts() -> impl Strategy<Value = Parts> {
        (
            (0u8..14, strategies::nb_name(), any::<u32>(), addr_entry()),
            (
                proptest::collection::vec(addr_entry(), 0..20),
                proptest::collection::vec(
                    (strategies::name(), any::<u16>()).prop_map(|(name, flags)| NodeName {
                        name,
                        flags: NameFlags(flags),
                    }),
                    0..20,
                ),
                statistics(),
            ),
            (
                (0u8..16).prop_map(Rcode::from),
                prop_oneof![
                    Just(RegistrationKind::Registration),
                    Just(RegistrationKind::Overwrite),
                    Just(RegistrationKind::Refresh),
                    Just(RegistrationKind::RefreshAlternate),
                    Just(RegistrationKind::MultiHomed),
                ],
                any::<u16>(),
                any::<u16>(),
            ),
        )
            .prop_map(
                |(
                    (choice, name, ttl, entry),
                    (entries, names, statistics),
                    (rcode, kind, flags, transaction_id),
                )| Parts {
                    choice,
                    name,
                    ttl,
                    entry,
                    entries,
                    names,
                    statistics,
                    rcode,
                    kind,
                    flags,
                    transaction_id,
                },
            )
    }

    fn build(p: &Parts) -> Repr<'_> {
        let name = p.name;
        let negative = if p.rcode == Rcode::NoError {
            Rcode::NameError
        } else {
            p.rcode
        };
        let message = match p.choice {
            0 => Message::NameQueryRequest { name },
            1 => Message::NodeStatusRequest { name },
            2 => Message::NameRegistrationRequest {
                kind: p.kind,
                name,
                ttl: p.ttl,
                entry: p.entry,
            },
            3 => Message::NameReleaseRequest {
                name,
                entry: p.entry,
            },
            4 => Message::PositiveNameQueryResponse {
                name,
                ttl: p.ttl,
                entries: AddrEntries::new(&p.entries),
            },
            5 => Message::NegativeNameQueryResponse {
                name,
                rcode: negative,
            },
            6 => Message::RedirectNameQueryResponse {
                domain: DomainName::parse_text("LAB.EXAMPLE").unwrap(),
                ttl: p.ttl,
                server_name: DomainName::parse_text("WINS.LAB.EXAMPLE").unwrap(),
                server_ttl: p.ttl ^ 1,
                server_address: p.entry.address,
            },
            7 => Message::NodeStatusResponse {
                name,
                names: NodeNames::new(&p.names),
                statistics: p.statistics,
            },
            8 => Message::NameRegistrationResponse {
                name,
                // CFT_ERR is the conflict demand's encoding.
                rcode: if p.rcode == Rcode::Conflict {
                    Rcode::Active
                } else {
                    p.rcode
                },
                ttl: p.ttl,
                entry: p.entry,
            },
            9 => Message::EndNodeChallengeResponse {
                name,
                ttl: p.ttl,
                entry: p.entry,
            },
            10 => Message::NameConflictDemand {
                name,
                entry: p.entry,
            },
            11 => Message::NameReleaseResponse {
                name,
                rcode: p.rcode,
                entry: p.entry,
            },
            12 => Message::NameRefreshResponse {
                alternate: p.flags & 1 == 1,
                name,
                rcode: p.rcode,
                ttl: p.ttl,
                entry: p.entry,
            },
            _ => Message::WaitForAcknowledgement {
                name,
                ttl: p.ttl,
                request_flags: p.flags,
            },
        };
        let (mask, _) = message.fixed_flags();
        Repr {
            transaction_id: p.transaction_id,
            flags: Flags::from_word(p.flags).without(mask),
            message,
        }
    }

    proptest! {
        #[test]
        fn round_trip(parts in parts()) {
            let repr = build(&parts);
            // The R bit the header gets is the one is_response tells.
            prop_assert_eq!(
                repr.message.is_response(),
                repr.message.layout().word & RESPONSE != 0
            );
            let mut buf = vec![0x5a; repr.buffer_len() + 8];
            repr.emit(&mut Packet::new_unchecked(&mut buf[..]));
            // emit writes exactly buffer_len bytes.
            prop_assert!(buf[repr.buffer_len()..].iter().all(|&b| b == 0x5a));
            let parsed = Repr::parse(&Packet::new_unchecked(&buf[..repr.buffer_len()]));
            prop_assert_eq!(parsed, Ok(repr));
        }

        #[test]
        fn parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            let _ = Repr::parse(&Packet::new_unchecked(&bytes[..]));
        }

        #[test]
        fn parse_never_panics_on_mutated_vectors(which in 0usize..18, at in any::<prop::sample::Index>(), byte in any::<u8>()) {
            let vectors = vectors();
            let mut bytes = hex(&vectors[which % vectors.len()].1);
            let at = at.index(bytes.len());
            bytes[at] = byte;
            if let Ok(repr) = Repr::parse(&Packet::new_unchecked(&bytes[..])) {
                // Whatever parses must emit and parse back to itself.
                let again = emit(&repr);
                prop_assert_eq!(Repr::parse(&Packet::new_unchecked(&again[..])), Ok(repr));
            }
        }
    }
}
