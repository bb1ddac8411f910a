//! The name service of an RFC 1001/1002 B-node, without I/O.
//!
//! [`NameService`] owns the node's name table and its timers. The caller hands it every datagram
//! received on UDP 137 ([`NameService::receive`]) and asks it for due work
//! ([`NameService::poll`]); both hand the packets to send to a closure, as a destination and a
//! [`nbns::Repr`] to emit. The [`crate::node::Node`] glues it to a smoltcp UDP socket.
//!
//! What it does, as a B-node (RFC 1001 §15, RFC 1002 §5.1.1):
//!
//! * **Registration**: each name is broadcast in a NAME REGISTRATION REQUEST
//!   [`BCAST_REQ_RETRY_COUNT`] times, [`BCAST_REQ_RETRY_TIMEOUT`] apart, with one transaction id.
//!   A negative response or a conflict demand answering that transaction puts the name in
//!   conflict; silence makes it ours, announced with a NAME OVERWRITE DEMAND.
//! * **Queries and node status** for names we own are answered to the request's source address
//!   and port. A unicast query for a name we do not own gets NAM_ERR; a broadcast one, silence.
//! * **Defence**: another node's registration of one of our unique names (or a group
//!   registration of it) gets a negative registration response with ACT_ERR.
//! * **Attacks ignored** (the MS00-047 lesson): a release of our name by another node, a
//!   conflict demand that answers nothing we sent, and any response whose transaction id we did
//!   not send are counted and dropped.
//! * **Release**: every name we own is broadcast in a NAME RELEASE REQUEST, three times.
//!   Names still registering are not released (they may be another node's), only dropped.
//!
//! Names still registering are neither answered nor listed in node status. Node status is
//! answered whether it arrives by broadcast or unicast (one reply of at most 576 bytes, like a
//! query's). There is no per-source rate limit on 137: every answer is one datagram, no larger
//! than a few times the request, to the request's source.
//!
//! A name in conflict does not logically exist (RFC 1001 §15.1.3.5): it is listed with CNF in
//! node status and otherwise treated as not ours. If every unique name ends in conflict the node
//! keeps running, answering node status and (later) refusing sessions; the daemon logs it.
//!
//! Beyond one segment, the node can be a P-, M- or H-node with a WINS server ([`wins`]:
//! [`NameService::configure_wins`]); its node type goes into every NB_FLAGS and NAME_FLAGS it
//! sends. [`resolve`] finds other nodes' names the way the node type says.

use smoltcp::time::{Duration, Instant};
use smoltcp::wire::{Ipv4Address, Ipv4Cidr};

use crate::counter::Counter;
use crate::event_queue::EventQueue;
use crate::session::SessionFigures;
use crate::wire::NAME_SERVICE_PORT;
use crate::wire::name::{Name, NbName, Scope};
use crate::wire::nbns::{
    self, AddrEntries, AddrEntry, Flags, Message, NameFlags, NbFlags, NodeName, Rcode,
    RegistrationKind, Statistics,
};

pub mod resolve;
pub mod wins;

pub use self::resolve::{AnsweredBy, QueryId, Resolution, ResolveError};
pub use self::wins::{WinsConfig, WinsConfigError, WinsCounters, WinsEvent, WinsName, WinsPhase};

/// Most names one node owns.
pub const MAX_NAMES: usize = 16;
/// RFC 1002 BCAST_REQ_RETRY_COUNT: broadcasts per registration or release.
pub const BCAST_REQ_RETRY_COUNT: u8 = 3;
/// RFC 1002 BCAST_REQ_RETRY_TIMEOUT: time between them.
pub const BCAST_REQ_RETRY_TIMEOUT: Duration = Duration::from_millis(250);
/// TTL we give our names in registrations and answers (lwIP and Windows use the same).
pub const NAME_TTL: u32 = 300_000;
/// Events the daemon keeps until taken (its [`NameService::new`] storage): room for one poll
/// that registers (or releases) a full table, and then some.
pub const NAME_EVENTS: usize = 2 * MAX_NAMES;

/// Where a packet goes: IPv4 address and UDP port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Destination {
    /// IPv4 address (unicast or our subnet's broadcast address).
    pub address: Ipv4Address,
    /// UDP port.
    pub port: u16,
}

/// Where a received packet came from and where it was sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Received {
    /// Source address and port.
    pub source: Destination,
    /// The destination address: ours, or a broadcast address.
    pub destination: Ipv4Address,
}

/// The state of one name in the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameState {
    /// Registration broadcasts under way; `sent` so far.
    Registering {
        /// Broadcasts sent.
        sent: u8,
    },
    /// Ours: answered, defended, listed.
    Active,
    /// Another node owns it: listed with CNF, otherwise treated as not ours. Final for a name
    /// lost on the segment; a name the WINS server refused becomes `Active` once the server
    /// grants it (see [`wins`]).
    Conflict,
    /// Release broadcasts under way; listed with DRG.
    Releasing {
        /// Broadcasts sent.
        sent: u8,
    },
    /// Released (or never registered because of a conflict).
    Released,
}

impl core::fmt::Display for NameState {
    /// `Registering`, `Registered` (for [`NameState::Active`], as `nbtstat -n` words it),
    /// `Conflict`, `Releasing` or `Released`.
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            NameState::Registering { .. } => "Registering",
            NameState::Active => "Registered",
            NameState::Conflict => "Conflict",
            NameState::Releasing { .. } => "Releasing",
            NameState::Released => "Released",
        })
    }
}

/// One entry of the name table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OwnedName {
    /// The 16-byte name (its scope is the node's).
    pub name: Name,
    /// Group or unique.
    pub group: bool,
    /// Where it stands.
    pub state: NameState,
    /// The transaction id of its registration or release.
    transaction_id: u16,
    /// When the next broadcast of it is due.
    next_at: Option<Instant>,
}

/// Counters of the name service; all wrap on overflow.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
// A field a newer version adds reads as zero from an older daemon's document.
#[cfg_attr(feature = "serde", serde(default))]
pub struct NameCounters {
    /// Datagrams received on UDP 137.
    pub received: Counter,
    /// Datagrams that did not parse.
    pub malformed: Counter,
    /// Positive query responses sent.
    pub queries_answered: Counter,
    /// Negative query responses sent (unicast queries for names we do not own).
    pub queries_refused: Counter,
    /// Node status responses sent.
    pub node_status_answered: Counter,
    /// Negative registration responses sent in defence of our names.
    pub defences: Counter,
    /// Names lost to another node during registration.
    pub conflicts: Counter,
    /// Releases of our names by other nodes, ignored.
    pub foreign_releases_ignored: Counter,
    /// Conflict demands that answered nothing we sent, ignored.
    pub unsolicited_conflicts_ignored: Counter,
    /// Responses whose transaction id we did not send, ignored.
    pub unsolicited_responses_ignored: Counter,
    /// Packets sent.
    pub sent: Counter,
    /// Packets not sent because the socket's send queue was full (under a flood of queries:
    /// the answers the node could not queue).
    pub unsent: Counter,
    /// Events dropped because the owner did not take them.
    pub events_lost: Counter,
}

/// Why a name could not be added.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum AddNameError {
    /// The table holds [`MAX_NAMES`] names already.
    TableFull,
    /// The name is in the table already.
    Duplicate,
}

impl core::fmt::Display for AddNameError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            // A constant text: formatting the number would bring usize's Display into the
            // firmware for this one message.
            AddNameError::TableFull => {
                const _: () = assert!(MAX_NAMES == 16, "the message says 16 names");
                f.write_str("the name table is full (16 names)")
            }
            AddNameError::Duplicate => f.write_str("the name is in the table already"),
        }
    }
}

impl core::error::Error for AddNameError {}

/// Things the name service reports to its owner (for logging); see [`NameService::take_event`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameEvent {
    /// A name finished registration and is ours.
    Registered(Name),
    /// Another node owns a name we tried to register.
    Conflict {
        /// The name.
        name: Name,
        /// The node that answered.
        by: Ipv4Address,
    },
    /// We refused another node's registration of one of our names.
    Defended {
        /// The name.
        name: Name,
        /// The node that tried.
        by: Ipv4Address,
    },
    /// Every name finished its release broadcasts.
    Released,
    /// A name's standing with the WINS server changed (never without the `wins` feature: a
    /// B-node has no server).
    Wins(WinsEvent),
}

log_text! {
    /// One line for a log, e.g. `registered LABSRV<20>` or `defended LABSRV<00> against
    /// registration by 192.168.69.2`.
    NameEvent {
        NameEvent::Registered(name) => ("registered {}", name),
        NameEvent::Conflict { name, by } => (
            "name {} is owned by {}: in conflict, not answered",
            name,
            by
        ),
        NameEvent::Defended { name, by } => (
            "defended {} against registration by {}",
            name,
            by
        ),
        NameEvent::Released => ("all names released"),
        // Without the `wins` feature no such event is made: its words are left out of the image.
        NameEvent::Wins(event) if cfg!(feature = "wins") => ("{}", event),
        NameEvent::Wins(_) => (""),
    }
}

/// Static facts the name service needs about its node.
#[derive(Debug, Clone, Copy)]
pub struct NameServiceConfig {
    /// Our address and subnet.
    pub address: Ipv4Cidr,
    /// Our MAC address, reported as UNIT_ID in node status (unless `hide_mac`).
    pub mac: [u8; 6],
    /// Report zeros instead of the MAC in node status.
    pub hide_mac: bool,
    /// The NetBIOS scope of all our names.
    pub scope: Scope,
}

/// Pseudo-random 16-bit transaction ids (xorshift64*, seeded from real entropy by the caller).
#[derive(Debug, Clone)]
struct TransactionIds(u64);

impl TransactionIds {
    fn next(&mut self) -> u16 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        (x.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 48) as u16
    }
}

/// The B-node name service; see the module documentation.
#[derive(Debug)]
pub struct NameService<'a> {
    config: NameServiceConfig,
    names: heapless::Vec<OwnedName, MAX_NAMES>,
    ids: TransactionIds,
    counters: NameCounters,
    /// The statistics block of node status, apart from UNIT_ID and the session figures (which
    /// come with each [`NameService::receive`]).
    statistics: Statistics,
    events: EventQueue<'a, NameEvent>,
    release_requested: bool,
    release_reported: bool,
    /// The node type, the WINS servers and each name's standing with them.
    wins: wins::WinsClient,
    resolver: resolve::Resolver,
}

impl<'a> NameService<'a> {
    /// A name service with an empty table, keeping its events in `events` until taken (fill it
    /// with `None`; [`NAME_EVENTS`] is the daemon's depth; when it is full the oldest event is
    /// dropped and counted). `seed` must come from real entropy.
    pub fn new(
        config: NameServiceConfig,
        seed: u64,
        events: &'a mut [Option<NameEvent>],
    ) -> NameService<'a> {
        NameService {
            config,
            names: heapless::Vec::new(),
            ids: TransactionIds(seed | 1),
            counters: NameCounters::default(),
            statistics: Statistics::default(),
            events: EventQueue::new(events),
            release_requested: false,
            release_reported: false,
            wins: wins::WinsClient::new(),
            resolver: resolve::Resolver::new(),
        }
    }

    /// Adds a name to register at the next [`NameService::start`].
    pub fn add_name(&mut self, name: Name, group: bool) -> Result<(), AddNameError> {
        if self.names.iter().any(|n| n.name == name) {
            return Err(AddNameError::Duplicate);
        }
        self.names
            .push(OwnedName {
                name,
                group,
                state: NameState::Released,
                transaction_id: 0,
                next_at: None,
            })
            .map_err(|_| AddNameError::TableFull)?;
        self.wins.add_name();
        Ok(())
    }

    /// Starts registering every name now: by broadcast (B, M) or with the WINS server (P, H).
    pub fn start(&mut self, now: Instant) {
        let on_segment_first = self.wins_start(now);
        for entry in self.names.iter_mut() {
            entry.state = NameState::Registering { sent: 0 };
            entry.transaction_id = self.ids.next();
            entry.next_at = on_segment_first.then_some(now);
        }
    }

    /// Starts releasing every name we own. Names in conflict are not ours to release, and
    /// neither are names still registering: another node may own them, and a release would
    /// make caches forget the real owner. Their registration simply stops.
    ///
    /// A name the WINS server holds is released there too; a P-node releases only there.
    pub fn release(&mut self, now: Instant) {
        self.release_requested = true;
        let broadcasts = self.wins.config.broadcasts();
        for entry in self.names.iter_mut() {
            match entry.state {
                NameState::Active if broadcasts => {
                    entry.state = NameState::Releasing { sent: 0 };
                    entry.transaction_id = self.ids.next();
                    entry.next_at = Some(now);
                }
                NameState::Active => {
                    // No broadcasts: only the server's release, which ends it.
                    entry.state = NameState::Releasing {
                        sent: BCAST_REQ_RETRY_COUNT,
                    };
                    entry.next_at = None;
                }
                NameState::Conflict | NameState::Registering { .. } => {
                    entry.state = NameState::Released;
                    entry.next_at = None;
                }
                NameState::Releasing { .. } | NameState::Released => {}
            }
        }
        self.wins_release(now);
        if !broadcasts {
            for (entry, state) in self.names.iter_mut().zip(self.wins.names.iter()) {
                let waiting = matches!(state.phase(), WinsPhase::Releasing { .. });
                if matches!(entry.state, NameState::Releasing { .. }) && !waiting {
                    entry.state = NameState::Released;
                }
            }
        }
    }

    /// Whether every name has finished registering (ours or in conflict).
    pub fn is_ready(&self) -> bool {
        self.names
            .iter()
            .all(|n| !matches!(n.state, NameState::Registering { .. }))
    }

    /// Whether a release was asked for, every release broadcast has been sent and every
    /// release to a WINS server has ended.
    pub fn is_released(&self) -> bool {
        self.release_requested
            && !self.wins_releasing()
            && self
                .names
                .iter()
                .all(|n| matches!(n.state, NameState::Released | NameState::Conflict))
    }

    /// The scope of every name of the node.
    pub fn scope(&self) -> &Scope {
        &self.config.scope
    }

    /// The name table.
    pub fn names(&self) -> &[OwnedName] {
        &self.names
    }

    /// The counters.
    pub fn counters(&self) -> &NameCounters {
        &self.counters
    }

    /// The statistics block node status answers carry, apart from the session figures (which
    /// come with each [`NameService::receive`]; they are zero here): UNIT_ID is the MAC, or
    /// zeros when the configuration hides it. See [`NameService::node_status_statistics`] for
    /// the whole block.
    pub fn statistics(&self) -> Statistics {
        let mut statistics = self.statistics;
        statistics.unit_id = if self.config.hide_mac {
            [0; 6]
        } else {
            self.config.mac
        };
        statistics
    }

    /// The whole statistics block a node status answer carries, given the session service's
    /// `figures`.
    pub fn node_status_statistics(&self, figures: &SessionFigures) -> Statistics {
        let mut statistics = self.statistics();
        statistics.number_no_resource_conditions = figures.no_resource_conditions;
        statistics.number_free_command_blocks = figures.free_slots;
        statistics.total_number_command_blocks = figures.total_slots;
        statistics.max_total_number_command_blocks = figures.total_slots;
        statistics.number_pending_sessions = figures.pending_sessions;
        statistics.max_number_pending_sessions = figures.total_slots;
        statistics.max_total_sessions_possible = figures.max_sessions;
        statistics.session_data_packet_size = figures.packet_size;
        statistics.number_send_aborts = self.counters.unsent.get().min(u32::from(u16::MAX)) as u16;
        statistics
    }

    /// Counts `count` packets the node could not queue for sending (see
    /// [`NameCounters::unsent`]); node status reports them as send aborts.
    pub fn count_unsent(&mut self, count: u32) {
        self.counters.unsent.add(count);
    }

    /// Sets the datagram service's figures node status reports: NUMBER_GOOD_SENDS (datagrams
    /// sent) and NUMBER_GOOD_RECEIVES (datagrams delivered).
    pub fn set_datagram_counts(&mut self, sends: u32, receives: u32) {
        self.statistics.number_good_sends = sends;
        self.statistics.number_good_receives = receives;
    }

    /// Counts a datagram too long to be a name service packet, which the node dropped unread.
    pub fn count_oversized(&mut self) {
        self.counters.received.bump();
        self.counters.malformed.bump();
    }

    /// The next event to report, if any.
    pub fn take_event(&mut self) -> Option<NameEvent> {
        self.events.pop()
    }

    /// Whether `name` (in our scope) is one we own and may answer for.
    pub fn owns(&self, name: &NbName) -> bool {
        self.active(name).is_some()
    }

    fn active(&self, name: &NbName) -> Option<&OwnedName> {
        if !name.scope.matches(&self.config.scope) {
            return None;
        }
        self.names
            .iter()
            .find(|n| n.name == name.name && n.state == NameState::Active)
    }

    fn our_address(&self) -> Ipv4Address {
        self.config.address.address()
    }

    fn broadcast(&self) -> Destination {
        Destination {
            address: self
                .config
                .address
                .broadcast()
                .unwrap_or(Ipv4Address::BROADCAST),
            port: NAME_SERVICE_PORT,
        }
    }

    fn our_entry(&self, group: bool) -> AddrEntry {
        AddrEntry {
            flags: NbFlags::new(group, self.wins.config.node_type()),
            address: self.our_address(),
        }
    }

    fn note(&mut self, event: NameEvent) {
        if self.events.push(event) {
            self.counters.events_lost.bump();
        }
    }

    /// When [`NameService::poll`] next has work, if ever.
    pub fn poll_at(&self) -> Option<Instant> {
        let broadcasts = self.names.iter().filter_map(|n| n.next_at).min();
        [broadcasts, self.wins_poll_at(), self.resolver_poll_at()]
            .into_iter()
            .flatten()
            .min()
    }

    /// Sends due registration, overwrite and release broadcasts, WINS requests and resolver
    /// queries through `send`.
    // Out of line: the node's service pass calls it once, and inlined there (fat LTO, opt-level
    // s) it cost the firmware about 20 KiB of flash more.
    #[inline(never)]
    pub fn poll(&mut self, now: Instant, send: &mut dyn FnMut(Destination, &nbns::Repr)) {
        // The WINS part may start a claim on the segment (an H-node whose servers are silent),
        // and a claim that ends may start a registration with the server (an M-node): the WINS
        // part runs before and after the broadcasts, so both go out in this poll.
        self.wins_poll(now, send);
        let broadcast = self.broadcast();
        for i in 0..self.names.len() {
            let entry = self.names[i];
            let Some(due) = entry.next_at else { continue };
            if due > now {
                continue;
            }
            // The registration kind to send (`None`: a release) and the state after it.
            let (kind, next) = match entry.state {
                NameState::Registering { sent } if sent < BCAST_REQ_RETRY_COUNT => (
                    Some(RegistrationKind::Registration),
                    NameState::Registering { sent: sent + 1 },
                ),
                // Silence: the name is ours. Tell everyone (RFC 1002 §5.1.1.1).
                NameState::Registering { .. } => {
                    (Some(RegistrationKind::Overwrite), NameState::Active)
                }
                NameState::Releasing { sent } if sent < BCAST_REQ_RETRY_COUNT => {
                    (None, NameState::Releasing { sent: sent + 1 })
                }
                _ => {
                    self.names[i].next_at = None;
                    if matches!(entry.state, NameState::Releasing { .. }) {
                        self.names[i].state = NameState::Released;
                    }
                    continue;
                }
            };
            let name = NbName::new(entry.name, self.config.scope);
            let our_entry = self.our_entry(entry.group);
            let message = match kind {
                Some(kind) => Message::NameRegistrationRequest {
                    kind,
                    name,
                    ttl: NAME_TTL,
                    entry: our_entry,
                },
                None => Message::NameReleaseRequest {
                    name,
                    entry: our_entry,
                },
            };
            let repr = nbns::Repr {
                transaction_id: entry.transaction_id,
                flags: Flags::BROADCAST,
                message,
            };
            self.transmit(send, broadcast, &repr);
            let slot = &mut self.names[i];
            slot.state = next;
            slot.next_at = match next {
                NameState::Active => None,
                _ => Some(now + BCAST_REQ_RETRY_TIMEOUT),
            };
            if next == NameState::Active {
                net_debug!("name {} registered", entry.name);
                self.note(NameEvent::Registered(entry.name));
                self.wins_claimed_on_segment(i, now);
            }
        }
        self.wins_poll(now, send);
        self.resolver_poll(now, send);
        if self.is_released() && !self.release_reported {
            self.release_reported = true;
            self.note(NameEvent::Released);
        }
    }

    /// Handles one datagram received on UDP 137; replies go through `send`. A node status
    /// answer reports the session service's `figures`.
    // Out of line: the node's service pass calls it once, and inlined there (fat LTO, opt-level
    // s) it cost the firmware about 20 KiB of flash more.
    #[inline(never)]
    pub fn receive(
        &mut self,
        bytes: &[u8],
        from: Received,
        figures: &SessionFigures,
        send: &mut dyn FnMut(Destination, &nbns::Repr),
    ) {
        self.counters.received.bump();
        if from.source.address == self.our_address() {
            return; // our own broadcast, looped back by a bridge
        }
        if !self.wins.config.broadcasts() && from.destination != self.our_address() {
            // A P-node ignores broadcasts (RFC 1001 §15.2).
            self.wins.counters.broadcasts_ignored.bump();
            return;
        }
        // Looked at where it was parsed, not moved out of the result.
        let parsed = nbns::Repr::parse(&nbns::Packet::new_unchecked(bytes));
        let Ok(repr) = &parsed else {
            if self.wins.config.is_server(from.source.address) {
                self.wins.counters.malformed.bump();
            }
            self.counters.malformed.bump();
            net_debug!("malformed name service packet from {}", from.source.address);
            return;
        };
        net_trace!(
            "nbns from {}:{}: {}",
            from.source.address,
            from.source.port,
            repr
        );
        let id = repr.transaction_id;
        if repr.message.is_response()
            && (self.wins_receive(repr, from) || self.resolver_receive(repr, from))
        {
            return;
        }
        match &repr.message {
            Message::NameQueryRequest { name } => self.answer_query(id, name, from, send),
            Message::NodeStatusRequest { name } => {
                self.answer_node_status(id, name, from, figures, send)
            }
            Message::NameRegistrationRequest {
                kind:
                    RegistrationKind::Registration
                    | RegistrationKind::Overwrite
                    | RegistrationKind::MultiHomed,
                name,
                entry,
                ..
            } => self.defend(id, name, *entry, from, send),
            Message::NameRegistrationRequest { .. } => {}
            Message::NameReleaseRequest { name, .. } if self.owns(name) => {
                self.counters.foreign_releases_ignored.bump();
                net_debug!(
                    "ignored release of our name {} by {}",
                    name,
                    from.source.address
                );
            }
            Message::NameRegistrationResponse { name, rcode, .. } if *rcode != Rcode::NoError => {
                self.answer_to_registration(id, name, from, false)
            }
            Message::NameConflictDemand { name, .. } => {
                self.answer_to_registration(id, name, from, true)
            }
            message if message.is_response() => {
                self.counters.unsolicited_responses_ignored.bump();
                net_debug!("ignored unsolicited response from {}", from.source.address);
            }
            _ => {}
        }
    }

    /// Hands `repr` for `to` to `send` and counts it: the one place packets leave the name
    /// service.
    fn transmit(
        &mut self,
        send: &mut dyn FnMut(Destination, &nbns::Repr),
        to: Destination,
        repr: &nbns::Repr,
    ) {
        send(to, repr);
        self.counters.sent.bump();
    }

    /// Sends `message` to `to` as the response to transaction `id`, with RD set as RFC 1002
    /// §4.2.13 draws responses, and `extra` (defence also sets RA: 0xAD86).
    fn respond(
        &mut self,
        id: u16,
        to: Destination,
        extra: Flags,
        message: Message<'_>,
        send: &mut dyn FnMut(Destination, &nbns::Repr),
    ) {
        let repr = nbns::Repr {
            transaction_id: id,
            flags: (Flags::RECURSION_DESIRED | extra).without(message.fixed_flags().0),
            message,
        };
        self.transmit(send, to, &repr);
    }

    /// A name query: our address for a name we own; NAM_ERR to a unicast query for any other
    /// name, silence to a broadcast one.
    fn answer_query(
        &mut self,
        id: u16,
        name: &NbName,
        from: Received,
        send: &mut dyn FnMut(Destination, &nbns::Repr),
    ) {
        if let Some(owned) = self.active(name) {
            let entry = [self.our_entry(owned.group)];
            self.counters.queries_answered.bump();
            if self.wins.config.is_server(from.source.address) {
                self.wins.counters.challenges_answered.bump();
            }
            let message = Message::PositiveNameQueryResponse {
                name: *name,
                ttl: NAME_TTL,
                entries: AddrEntries::new(&entry),
            };
            self.respond(id, from.source, Flags::NONE, message, send);
        } else if from.destination == self.our_address() {
            self.counters.queries_refused.bump();
            let message = Message::NegativeNameQueryResponse {
                name: *name,
                rcode: Rcode::NameError,
            };
            self.respond(id, from.source, Flags::NONE, message, send);
        }
    }

    /// A node status request for the wildcard or a name we own: every name we own, registered
    /// or in conflict or releasing, and the statistics with the session service's `figures`.
    fn answer_node_status(
        &mut self,
        id: u16,
        name: &NbName,
        from: Received,
        figures: &SessionFigures,
        send: &mut dyn FnMut(Destination, &nbns::Repr),
    ) {
        let asks_us =
            name.scope.matches(&self.config.scope) && (name.name.is_wildcard() || self.owns(name));
        if !asks_us {
            return;
        }
        let mut list: heapless::Vec<NodeName, MAX_NAMES> = heapless::Vec::new();
        for owned in self.names.iter() {
            let flags = NameFlags::new(owned.group, self.wins.config.node_type())
                .with(NameFlags::CONFLICT, owned.state == NameState::Conflict)
                .with(
                    NameFlags::DEREGISTERING,
                    matches!(owned.state, NameState::Releasing { .. }),
                );
            // Names still registering are not ours yet, and released ones no more.
            let listed = !matches!(
                owned.state,
                NameState::Registering { .. } | NameState::Released
            );
            if listed {
                let _ = list.push(NodeName {
                    name: owned.name,
                    flags,
                });
            }
        }
        let statistics = self.node_status_statistics(figures);
        self.counters.node_status_answered.bump();
        let response = nbns::Repr::node_status_response(id, *name, &list, statistics);
        self.transmit(send, from.source, &response);
    }

    /// Another node's registration of a name: refused with ACT_ERR if it is one of our unique
    /// names (group names are not defended).
    fn defend(
        &mut self,
        id: u16,
        name: &NbName,
        entry: AddrEntry,
        from: Received,
        send: &mut dyn FnMut(Destination, &nbns::Repr),
    ) {
        let Some(owned) = self.active(name) else {
            return;
        };
        if owned.group || entry.address == self.our_address() {
            return;
        }
        self.counters.defences.bump();
        self.note(NameEvent::Defended {
            name: name.name,
            by: from.source.address,
        });
        let message = Message::NameRegistrationResponse {
            name: *name,
            rcode: Rcode::Active,
            ttl: 0,
            entry,
        };
        self.respond(id, from.source, Flags::RECURSION_AVAILABLE, message, send);
    }

    /// A negative registration response or a conflict demand: it puts a name in conflict only
    /// if it answers that name's outstanding registration.
    fn answer_to_registration(
        &mut self,
        transaction_id: u16,
        name: &NbName,
        from: Received,
        demand: bool,
    ) {
        let scope = self.config.scope;
        // Only a claim under way on the segment (a P- or H-node's name waiting for the server
        // is not broadcast, and its transaction id answers nothing).
        let target = self.names.iter().position(|n| {
            n.name == name.name
                && name.scope.matches(&scope)
                && n.transaction_id == transaction_id
                && matches!(n.state, NameState::Registering { .. })
                && n.next_at.is_some()
        });
        match target {
            Some(i) => {
                let entry = &mut self.names[i];
                entry.state = NameState::Conflict;
                entry.next_at = None;
                let name = entry.name;
                // Without the `wins` feature a name never leaves the idle WINS phase: nothing
                // to stop.
                if cfg!(feature = "wins") {
                    self.wins_lost_on_segment(i);
                }
                self.counters.conflicts.bump();
                self.note(NameEvent::Conflict {
                    name,
                    by: from.source.address,
                });
            }
            None if demand => {
                self.counters.unsolicited_conflicts_ignored.bump();
                net_debug!(
                    "ignored unsolicited conflict demand from {}",
                    from.source.address
                );
            }
            None => {
                self.counters.unsolicited_responses_ignored.bump();
                net_debug!("ignored unsolicited response from {}", from.source.address);
            }
        }
    }
}

#[cfg(test)]
mod tests;
