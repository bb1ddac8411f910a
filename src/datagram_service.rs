//! The datagram service of an RFC 1001/1002 B-node (UDP 138), without I/O.
//!
//! [`DatagramService`] is handed every datagram received on UDP 138
//! ([`DatagramService::receive`]) and the datagrams its owner wants to send
//! ([`DatagramService::send`]); both hand the packets to send to a closure, as a destination and
//! an [`nbds::Repr`] to emit. The [`crate::node::Node`] glues it to a smoltcp UDP socket, like the
//! name service.
//!
//! What it does:
//!
//! * **Delivery**: a DIRECT_UNIQUE or DIRECT_GROUP datagram to one of our names (registered,
//!   in our scope), or a BROADCAST datagram to `*` or one of our names, is queued for the owner
//!   ([`DatagramService::take_delivery`]) in a ring on storage the caller sizes (one
//!   [`Delivery`] each, about 560 bytes); when it is full the oldest is dropped and counted.
//!   Data datagrams for other names (or another scope) are dropped and counted.
//! * **Errors**: only a DIRECT_UNIQUE datagram sent to our unicast address for a name we do not
//!   own is answered, with DATAGRAM ERROR 0x82 (destination name not present). Group and
//!   broadcast datagrams, and anything sent to a broadcast address, never get an error.
//! * **Queries**: a DATAGRAM QUERY REQUEST for one of our names gets the positive response; for
//!   any other name, the negative one if it was sent to our unicast address (silence otherwise).
//! * **Fragments** (`M` set or `PACKET_OFFSET` ≠ 0) are dropped and counted: nobody sends them
//!   (Samba neither fragments nor reassembles, and refuses to send more than 576 bytes).
//! * **Malformed** datagrams, and datagrams whose user data exceeds [`MAX_USER_DATA`], are dropped
//!   and counted.
//!
//! Every reply goes to the requester's UDP source address and port (not the `SOURCE_IP` field),
//! from port 138 (the node's socket).
//!
//! Sending: from one of our registered names, to a unique name at a given address (or, without
//! one, to the subnet's broadcast address, where its owner picks it up), to a unique name
//! resolved first ([`Target::Resolve`]), to a group name or to everyone (BROADCAST to `*`), both
//! on the subnet's broadcast address. Datagrams are never fragmented: user data that does not
//! fit 576 bytes is refused.
//!
//! Resolution is the B-node's ([RFC 1001] §17.1.1): a broadcast NAME QUERY REQUEST from port
//! 138, [`RESOLVE_QUERIES`] times [`RESOLVE_INTERVAL`] apart; the first positive response for
//! that transaction (it comes back to port 138, the query's source) sends the datagram to the
//! address it gives. Silence after the last query drops it and counts it as unresolved. One
//! datagram resolves at a time ([`SendError::Busy`] meanwhile); nothing is cached.

use smoltcp::time::{Duration, Instant};
use smoltcp::wire::{Ipv4Address, Ipv4Cidr};

use crate::counter::Counter;
use crate::name_service::{Destination, NameService, Received};
use crate::wire::name::{Name, NbName, Scope};
use crate::wire::nbds::{self, Datagram, ErrorCode, Flags, Message, NodeType};
use crate::wire::{
    DATAGRAM_SERVICE_PORT, MAX_DATAGRAM_LENGTH, NAME_SERVICE_PORT, nbns, smb_mailslot,
};

/// Broadcast name queries for one resolution (RFC 1002 BCAST_REQ_RETRY_COUNT).
pub const RESOLVE_QUERIES: u8 = 3;
/// Time between them, and after the last one (RFC 1002 BCAST_REQ_RETRY_TIMEOUT).
pub const RESOLVE_INTERVAL: Duration = Duration::from_millis(250);

/// Most user data bytes a delivered datagram carries (576 bytes less the 14-byte header and two
/// unscoped names is 494; a little more is kept for senders that go past 576).
pub const MAX_USER_DATA: usize = 512;

/// Which of the three data datagrams.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DatagramKind {
    /// DIRECT_UNIQUE.
    Unique,
    /// DIRECT_GROUP.
    Group,
    /// BROADCAST.
    Broadcast,
}

words! {
    /// `unique`, `group` or `broadcast`.
    pub fn as_str / format_str for DatagramKind {
        DatagramKind::Unique => "unique",
        DatagramKind::Group => "group",
        DatagramKind::Broadcast => "broadcast",
    }
}

impl core::fmt::Display for DatagramKind {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(feature = "defmt")]
impl defmt::Format for DatagramKind {
    /// As [`Display`](core::fmt::Display).
    fn format(&self, f: defmt::Formatter<'_>) {
        self.format_str(f)
    }
}

/// A datagram addressed to us, for the owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// How it was sent.
    pub kind: DatagramKind,
    /// The sender's name.
    pub source_name: Name,
    /// The UDP source address and port it came from.
    pub source: Destination,
    /// The name it was sent to (ours, or `*` for a broadcast).
    pub destination_name: Name,
    /// The user data.
    pub data: heapless::Vec<u8, MAX_USER_DATA>,
}

impl Delivery {
    /// An empty entry, to fill the caller's delivery storage with (usable in a `static`).
    pub const EMPTY: Delivery = Delivery {
        kind: DatagramKind::Unique,
        source_name: Name::from_bytes([0; 16]),
        source: Destination {
            address: Ipv4Address::UNSPECIFIED,
            port: 0,
        },
        destination_name: Name::from_bytes([0; 16]),
        data: heapless::Vec::new(),
    };
}

/// A ring of deliveries on the caller's storage.
#[derive(Debug)]
struct Ring<'a> {
    slots: &'a mut [Delivery],
    head: usize,
    len: usize,
}

impl Ring<'_> {
    /// Makes room for one more (dropping the oldest if full: `kept` is then `false`, as it is
    /// without any room) and returns the entry to fill.
    fn push(&mut self) -> (Option<&mut Delivery>, bool) {
        let capacity = self.slots.len();
        if capacity == 0 {
            return (None, false);
        }
        let mut kept = true;
        if self.len == capacity {
            self.head = (self.head + 1) % capacity;
            self.len -= 1;
            kept = false;
        }
        let at = (self.head + self.len) % capacity;
        self.len += 1;
        (Some(&mut self.slots[at]), kept)
    }

    fn pop(&mut self) -> Option<Delivery> {
        if self.len == 0 {
            return None;
        }
        let taken = core::mem::replace(&mut self.slots[self.head], Delivery::EMPTY);
        self.head = (self.head + 1) % self.slots.len();
        self.len -= 1;
        Some(taken)
    }
}

/// Where a datagram goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// DIRECT_UNIQUE to `name`: at `address`, or on the subnet's broadcast address.
    Unique {
        /// The unique name.
        name: Name,
        /// Its owner's address, if known.
        address: Option<Ipv4Address>,
    },
    /// DIRECT_GROUP to the group `name`, on the subnet's broadcast address.
    Group(Name),
    /// BROADCAST to `*`, on the subnet's broadcast address.
    Broadcast,
    /// DIRECT_UNIQUE to `name` at the address a broadcast name query finds (see the module
    /// documentation); the datagram leaves once an answer came.
    Resolve(Name),
}

/// Why a datagram was not sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum SendError {
    /// The source name is not one of our registered names.
    NotOurName,
    /// The datagram would exceed 576 bytes (nothing is fragmented).
    TooLong,
    /// The socket's send queue is full.
    QueueFull,
    /// Another datagram is being resolved.
    Busy,
}

impl core::fmt::Display for SendError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            SendError::NotOurName => "the source name is not one of our registered names",
            SendError::TooLong => "the datagram would exceed 576 bytes (no fragmentation)",
            SendError::QueueFull => "the send queue of UDP 138 is full",
            SendError::Busy => "another datagram is waiting for its destination's address",
        })
    }
}

impl core::error::Error for SendError {}

/// Counters of the datagram service; all wrap on overflow.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct DatagramCounters {
    /// Datagrams received on UDP 138.
    pub received: Counter,
    /// Datagrams that did not parse, or whose user data exceeds [`MAX_USER_DATA`].
    pub malformed: Counter,
    /// Fragments (M set or an offset), dropped.
    pub fragments_dropped: Counter,
    /// Data datagrams for names we do not own, dropped.
    pub not_for_us: Counter,
    /// Data datagrams queued for the owner.
    pub delivered: Counter,
    /// Deliveries dropped because the owner did not take them.
    pub deliveries_lost: Counter,
    /// DATAGRAM ERROR (0x82) sent.
    pub errors_sent: Counter,
    /// DATAGRAM ERROR packets received (logged, nothing else).
    pub errors_received: Counter,
    /// Positive query responses sent.
    pub queries_answered: Counter,
    /// Negative query responses sent.
    pub queries_refused: Counter,
    /// Packets sent (data datagrams and replies).
    pub sent: Counter,
    /// Data datagrams the owner asked to send that were not sent.
    pub send_failures: Counter,
    /// Datagrams sent to an address a name query found.
    pub resolved: Counter,
    /// Datagrams dropped because no node answered their name queries.
    pub unresolved: Counter,
}

/// The data part of a received datagram that passed the checks, for the browse announcer
/// (which also looks at datagrams to workgroup names we do not own).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Inbound<'a> {
    /// The destination name.
    pub destination: Name,
    /// The user data.
    pub data: &'a [u8],
}

/// Pseudo-random numbers (xorshift64*, seeded from the node's entropy).
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator seeded with `seed` (must come from real entropy; zero is made odd).
    pub const fn new(seed: u64) -> Rng {
        Rng(seed | 1)
    }

    /// The next 32 random bits.
    pub fn next_u32(&mut self) -> u32 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        (x.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 32) as u32
    }

    /// A number in `0..=max`.
    pub fn up_to(&mut self, max: u32) -> u32 {
        match max.checked_add(1) {
            Some(span) => self.next_u32() % span,
            None => self.next_u32(),
        }
    }
}

/// A unique datagram waiting for its destination's address.
#[derive(Debug)]
struct Resolving {
    from: Name,
    name: Name,
    transaction_id: u16,
    queries: u8,
    /// When the next query (or, after the last, the give-up) is due; `None`: at once.
    next_at: Option<Instant>,
    data: heapless::Vec<u8, MAX_DATAGRAM_LENGTH>,
}

/// The datagram service; see the module documentation.
#[derive(Debug)]
pub struct DatagramService<'a> {
    address: Ipv4Cidr,
    scope: Scope,
    rng: Rng,
    counters: DatagramCounters,
    deliveries: Ring<'a>,
    resolving: Option<Resolving>,
}

impl<'a> DatagramService<'a> {
    /// The service of a node at `address` whose names have `scope`, keeping up to
    /// `deliveries.len()` datagrams for the owner (none: every one is dropped and counted as
    /// lost). `seed` must come from real entropy (datagram ids).
    pub fn new(
        address: Ipv4Cidr,
        scope: Scope,
        seed: u64,
        deliveries: &'a mut [Delivery],
    ) -> DatagramService<'a> {
        DatagramService {
            address,
            scope,
            rng: Rng::new(seed),
            counters: DatagramCounters::default(),
            deliveries: Ring {
                slots: deliveries,
                head: 0,
                len: 0,
            },
            resolving: None,
        }
    }

    /// The counters.
    pub fn counters(&self) -> &DatagramCounters {
        &self.counters
    }

    /// The oldest datagram addressed to us that the owner has not taken yet.
    pub fn take_delivery(&mut self) -> Option<Delivery> {
        self.deliveries.pop()
    }

    /// Counts a datagram too long to read, which the node dropped.
    pub fn count_oversized(&mut self) {
        self.counters.received.bump();
        self.counters.malformed.bump();
    }

    fn our_address(&self) -> Ipv4Address {
        self.address.address()
    }

    /// The subnet's broadcast address, port 138.
    pub fn broadcast(&self) -> Destination {
        Destination {
            address: self.address.broadcast().unwrap_or(Ipv4Address::BROADCAST),
            port: DATAGRAM_SERVICE_PORT,
        }
    }

    /// A datagram of ours with a fresh random id.
    fn header<'m>(&mut self, message: Message<'m>) -> nbds::Repr<'m> {
        let datagram_id = self.rng.next_u32() as u16;
        self.reply_header(datagram_id, message)
    }

    /// A datagram of ours with the id given (a reply carries the request's).
    fn reply_header<'m>(&self, datagram_id: u16, message: Message<'m>) -> nbds::Repr<'m> {
        nbds::Repr {
            datagram_id,
            flags: Flags::unfragmented(NodeType::B),
            source_ip: self.our_address(),
            source_port: DATAGRAM_SERVICE_PORT,
            message,
        }
    }

    /// Handles one datagram received on UDP 138: replies (error, query responses) go through
    /// `send`; a datagram for us is queued for the owner. Returns the destination name and user
    /// data of every well-formed, unfragmented data datagram in our scope (whoever it is for),
    /// for the browse announcer.
    // Out of line (as is `deliver`): inlined into the node's receive loop, the two made the
    // firmware 188 bytes bigger. Not a hot path.
    #[inline(never)]
    pub fn receive<'b>(
        &mut self,
        bytes: &'b [u8],
        from: Received,
        names: &NameService,
        send: &mut dyn FnMut(Destination, &nbds::Repr) -> bool,
    ) -> Option<Inbound<'b>> {
        self.counters.received.bump();
        if from.source.address == self.our_address() {
            return None; // our own broadcast, looped back by a bridge
        }
        if from.source.port == NAME_SERVICE_PORT {
            // The answer to a name query of ours (sent from 138), not a datagram.
            self.answer_to_query(bytes, names, send);
            return None;
        }
        let Ok(repr) = nbds::Repr::parse(&nbds::Packet::new_unchecked(bytes)) else {
            self.counters.malformed.bump();
            net_debug!("malformed datagram from {}", from.source.address);
            return None;
        };
        net_trace!(
            "nbds from {}:{}: {}",
            from.source.address,
            from.source.port,
            repr
        );
        let (kind, datagram) = match repr.message {
            Message::DirectUnique(d) => (DatagramKind::Unique, d),
            Message::DirectGroup(d) => (DatagramKind::Group, d),
            Message::Broadcast(d) => (DatagramKind::Broadcast, d),
            Message::QueryRequest { name } => {
                self.answer_query(repr.datagram_id, name, from, names, send);
                return None;
            }
            Message::Error { code } => {
                self.counters.errors_received.bump();
                net_debug!("datagram error from {}: {}", from.source.address, code);
                return None;
            }
            Message::PositiveQueryResponse { .. } | Message::NegativeQueryResponse { .. } => {
                return None;
            }
        };
        if repr.flags.more || datagram.packet_offset != 0 {
            self.counters.fragments_dropped.bump();
            net_debug!("dropped a datagram fragment from {}", from.source.address);
            return None;
        }
        if datagram.user_data.len() > MAX_USER_DATA {
            self.counters.malformed.bump();
            return None;
        }
        let destination = datagram.destination_name;
        if !destination.scope.matches(&self.scope) {
            self.counters.not_for_us.bump();
            return None;
        }
        let ours = names.owns(&destination)
            || (kind == DatagramKind::Broadcast && destination.name.is_wildcard());
        if ours {
            self.deliver(kind, &datagram, from);
        } else {
            self.counters.not_for_us.bump();
            if kind == DatagramKind::Unique && from.destination == self.our_address() {
                self.send_error(repr.datagram_id, from, send);
            }
        }
        Some(Inbound {
            destination: destination.name,
            data: datagram.user_data,
        })
    }

    #[inline(never)]
    fn deliver(&mut self, kind: DatagramKind, datagram: &Datagram<'_>, from: Received) {
        self.counters.delivered.bump();
        let (entry, kept) = self.deliveries.push();
        if !kept {
            self.counters.deliveries_lost.bump();
        }
        let Some(entry) = entry else { return };
        entry.kind = kind;
        entry.source_name = datagram.source_name.name;
        entry.source = from.source;
        entry.destination_name = datagram.destination_name.name;
        entry.data.clear();
        // Checked against MAX_USER_DATA by the caller.
        let _ = entry.data.extend_from_slice(datagram.user_data);
    }

    fn send_error(
        &mut self,
        datagram_id: u16,
        from: Received,
        send: &mut dyn FnMut(Destination, &nbds::Repr) -> bool,
    ) {
        let repr = self.reply_header(
            datagram_id,
            Message::Error {
                code: ErrorCode::DestinationNameNotPresent,
            },
        );
        if send(from.source, &repr) {
            self.counters.errors_sent.bump();
            self.counters.sent.bump();
        }
    }

    fn answer_query(
        &mut self,
        datagram_id: u16,
        name: NbName,
        from: Received,
        names: &NameService,
        send: &mut dyn FnMut(Destination, &nbds::Repr) -> bool,
    ) {
        let message = if names.owns(&name) {
            Message::PositiveQueryResponse { name }
        } else if from.destination == self.our_address() {
            Message::NegativeQueryResponse { name }
        } else {
            return;
        };
        let positive = matches!(message, Message::PositiveQueryResponse { .. });
        let repr = self.reply_header(datagram_id, message);
        if send(from.source, &repr) {
            self.counters.sent.bump();
            if positive {
                self.counters.queries_answered.bump();
            } else {
                self.counters.queries_refused.bump();
            }
        }
    }

    /// When [`DatagramService::poll`] next has work, if ever.
    pub fn poll_at(&self) -> Option<Instant> {
        self.resolving
            .as_ref()
            .map(|r| r.next_at.unwrap_or(Instant::ZERO))
    }

    /// Sends the due name query of a datagram being resolved (through `query`, an NBNS packet
    /// for the subnet's broadcast address, port 137), or gives the datagram up after the last.
    pub fn poll(&mut self, now: Instant, query: &mut dyn FnMut(Destination, &nbns::Repr) -> bool) {
        let scope = self.scope;
        let broadcast = Destination {
            port: NAME_SERVICE_PORT,
            ..self.broadcast()
        };
        let Some(resolving) = &mut self.resolving else {
            return;
        };
        if resolving.next_at.is_some_and(|at| at > now) {
            return;
        }
        if resolving.queries >= RESOLVE_QUERIES {
            net_debug!("no answer for {}: datagram dropped", resolving.name);
            self.resolving = None;
            self.counters.unresolved.bump();
            self.counters.send_failures.bump();
            return;
        }
        let repr = nbns::Repr {
            transaction_id: resolving.transaction_id,
            flags: nbns::Flags::RECURSION_DESIRED | nbns::Flags::BROADCAST,
            message: nbns::Message::NameQueryRequest {
                name: NbName::new(resolving.name, scope),
            },
        };
        if query(broadcast, &repr) {
            resolving.queries += 1;
        }
        resolving.next_at = Some(now + RESOLVE_INTERVAL);
    }

    /// A name service packet that came to 138: the answer to our query sends the datagram
    /// waiting for it; anything else is ignored.
    // Out of line: smaller so (measured on the firmware).
    #[inline(never)]
    fn answer_to_query(
        &mut self,
        bytes: &[u8],
        names: &NameService,
        send: &mut dyn FnMut(Destination, &nbds::Repr) -> bool,
    ) {
        let Some(resolving) = &self.resolving else {
            return;
        };
        // Looked at where it was parsed, not moved out of the result.
        let parsed = nbns::Repr::parse(&nbns::Packet::new_unchecked(bytes));
        let Ok(repr) = &parsed else {
            return;
        };
        let nbns::Message::PositiveNameQueryResponse { name, entries, .. } = &repr.message else {
            return;
        };
        // NbName::matches, without building the NbName (and copying the scope) to compare with.
        if repr.transaction_id != resolving.transaction_id
            || name.name != resolving.name
            || !name.scope.matches(&self.scope)
        {
            return;
        }
        let Some(entry) = entries.get(0) else { return };
        let Some(resolving) = self.resolving.take() else {
            return;
        };
        let to = Target::Unique {
            name: resolving.name,
            address: Some(entry.address),
        };
        match self.try_send(names, resolving.from, to, &resolving.data, send) {
            Ok(()) => self.counters.resolved.bump(),
            Err(_) => self.counters.send_failures.bump(),
        }
    }

    /// Sends `user_data` from our name `from` to `to`; see the module documentation.
    pub fn send(
        &mut self,
        names: &NameService,
        from: Name,
        to: Target,
        user_data: &[u8],
        send: &mut dyn FnMut(Destination, &nbds::Repr) -> bool,
    ) -> Result<(), SendError> {
        let result = self.try_send(names, from, to, user_data, send);
        if result.is_err() {
            self.counters.send_failures.bump();
        }
        result
    }

    fn try_send(
        &mut self,
        names: &NameService,
        from: Name,
        to: Target,
        user_data: &[u8],
        send: &mut dyn FnMut(Destination, &nbds::Repr) -> bool,
    ) -> Result<(), SendError> {
        let source_name = NbName::new(from, self.scope);
        if !names.owns(&source_name) {
            return Err(SendError::NotOurName);
        }
        // Both names have our scope, so one length: the datagram is the 14-byte header, two
        // names of that length and the user data.
        let len = nbds::DATA_HEADER_LEN + 2 * source_name.wire_len() + user_data.len();
        if len > MAX_DATAGRAM_LENGTH {
            return Err(SendError::TooLong);
        }
        let broadcast = self.broadcast();
        let (destination, name) = match to {
            Target::Unique { name, address } => (
                address.map_or(broadcast, |address| Destination {
                    address,
                    port: DATAGRAM_SERVICE_PORT,
                }),
                name,
            ),
            Target::Group(name) => (broadcast, name),
            Target::Broadcast => (broadcast, Name::WILDCARD),
            Target::Resolve(name) => return self.resolve(source_name.name, name, user_data),
        };
        let datagram = Datagram {
            source_name,
            destination_name: NbName::new(name, self.scope),
            packet_offset: 0,
            user_data,
        };
        let message = match to {
            Target::Unique { .. } | Target::Resolve(_) => Message::DirectUnique(datagram),
            Target::Group(_) => Message::DirectGroup(datagram),
            Target::Broadcast => Message::Broadcast(datagram),
        };
        let repr = self.header(message);
        if !send(destination, &repr) {
            return Err(SendError::QueueFull);
        }
        self.counters.sent.bump();
        Ok(())
    }

    /// Keeps a unique datagram (its length checked) until its destination's address is known;
    /// the first query leaves at the next [`DatagramService::poll`].
    fn resolve(&mut self, from: Name, name: Name, user_data: &[u8]) -> Result<(), SendError> {
        if self.resolving.is_some() {
            return Err(SendError::Busy);
        }
        let transaction_id = self.rng.next_u32() as u16;
        // Built in place: the data is copied once.
        let resolving = self.resolving.insert(Resolving {
            from,
            name,
            transaction_id,
            queries: 0,
            next_at: None,
            data: heapless::Vec::new(),
        });
        // Fits: shorter than the whole datagram, checked by the caller.
        let _ = resolving.data.extend_from_slice(user_data);
        Ok(())
    }

    /// Sends `data` as a mailslot write to `mailslot` (e.g. [`smb_mailslot::BROWSE`]) from our
    /// name `from` to `to`.
    pub fn send_mailslot(
        &mut self,
        names: &NameService,
        from: Name,
        to: Target,
        mailslot: &[u8],
        data: &[u8],
        send: &mut dyn FnMut(Destination, &nbds::Repr) -> bool,
    ) -> Result<(), SendError> {
        let write = smb_mailslot::Repr::new(mailslot, data);
        let mut buffer = [0u8; MAX_DATAGRAM_LENGTH];
        let len = write.buffer_len();
        let Some(room) = buffer.get_mut(..len) else {
            self.counters.send_failures.bump();
            return Err(SendError::TooLong);
        };
        write.emit(&mut smb_mailslot::Packet::new_unchecked(&mut *room));
        self.send(names, from, to, &buffer[..len], send)
    }
}

#[cfg(test)]
pub(crate) mod tests;
