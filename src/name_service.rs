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
//!
//! A name in conflict does not logically exist (RFC 1001 §15.1.3.5): it is listed with CNF in
//! node status and otherwise treated as not ours. If every unique name ends in conflict the node
//! keeps running, answering node status and (later) refusing sessions; the daemon logs it.

use smoltcp::time::{Duration, Instant};
use smoltcp::wire::{Ipv4Address, Ipv4Cidr};

use crate::wire::NAME_SERVICE_PORT;
use crate::wire::name::{Name, NbName, Scope};
use crate::wire::nbns::{
    self, AddrEntries, AddrEntry, Flags, Message, NameFlags, NbFlags, NodeName, NodeType, Rcode,
    RegistrationKind, Statistics,
};

/// Most names one node owns.
pub const MAX_NAMES: usize = 16;
/// RFC 1002 BCAST_REQ_RETRY_COUNT: broadcasts per registration or release.
pub const BCAST_REQ_RETRY_COUNT: u8 = 3;
/// RFC 1002 BCAST_REQ_RETRY_TIMEOUT: time between them.
pub const BCAST_REQ_RETRY_TIMEOUT: Duration = Duration::from_millis(250);
/// TTL we give our names in registrations and answers (lwIP and Windows use the same).
pub const NAME_TTL: u32 = 300_000;

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
    /// Another node owns it: listed with CNF, otherwise treated as not ours.
    Conflict,
    /// Release broadcasts under way; listed with DRG.
    Releasing {
        /// Broadcasts sent.
        sent: u8,
    },
    /// Released (or never registered because of a conflict).
    Released,
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
pub struct NameCounters {
    /// Datagrams received on UDP 137.
    pub received: u32,
    /// Datagrams that did not parse.
    pub malformed: u32,
    /// Positive query responses sent.
    pub queries_answered: u32,
    /// Negative query responses sent (unicast queries for names we do not own).
    pub queries_refused: u32,
    /// Node status responses sent.
    pub node_status_answered: u32,
    /// Negative registration responses sent in defence of our names.
    pub defences: u32,
    /// Names lost to another node during registration.
    pub conflicts: u32,
    /// Releases of our names by other nodes, ignored.
    pub foreign_releases_ignored: u32,
    /// Conflict demands that answered nothing we sent, ignored.
    pub unsolicited_conflicts_ignored: u32,
    /// Responses whose transaction id we did not send, ignored.
    pub unsolicited_responses_ignored: u32,
    /// Packets sent.
    pub sent: u32,
}

/// Why a name could not be added.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddNameError {
    /// The table holds [`MAX_NAMES`] names already.
    TableFull,
    /// The name is in the table already.
    Duplicate,
}

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
pub struct NameService {
    config: NameServiceConfig,
    names: heapless::Vec<OwnedName, MAX_NAMES>,
    ids: TransactionIds,
    counters: NameCounters,
    /// The statistics block of node status, apart from UNIT_ID; the node keeps the session
    /// figures in it current.
    pub statistics: Statistics,
    events: heapless::Deque<NameEvent, 8>,
    release_requested: bool,
    release_reported: bool,
}

impl NameService {
    /// A name service with an empty table. `seed` must come from real entropy.
    pub fn new(config: NameServiceConfig, seed: u64) -> NameService {
        NameService {
            config,
            names: heapless::Vec::new(),
            ids: TransactionIds(seed | 1),
            counters: NameCounters::default(),
            statistics: Statistics::default(),
            events: heapless::Deque::new(),
            release_requested: false,
            release_reported: false,
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
            .map_err(|_| AddNameError::TableFull)
    }

    /// Starts registering every name now.
    pub fn start(&mut self, now: Instant) {
        for entry in self.names.iter_mut() {
            entry.state = NameState::Registering { sent: 0 };
            entry.transaction_id = self.ids.next();
            entry.next_at = Some(now);
        }
    }

    /// Starts releasing every name we own (or are still registering); names in conflict are
    /// not ours to release.
    pub fn release(&mut self, now: Instant) {
        self.release_requested = true;
        for entry in self.names.iter_mut() {
            match entry.state {
                NameState::Active | NameState::Registering { .. } => {
                    entry.state = NameState::Releasing { sent: 0 };
                    entry.transaction_id = self.ids.next();
                    entry.next_at = Some(now);
                }
                NameState::Conflict => {
                    entry.state = NameState::Released;
                    entry.next_at = None;
                }
                NameState::Releasing { .. } | NameState::Released => {}
            }
        }
    }

    /// Whether every name has finished registering (ours or in conflict).
    pub fn is_ready(&self) -> bool {
        self.names
            .iter()
            .all(|n| !matches!(n.state, NameState::Registering { .. }))
    }

    /// Whether a release was asked for and every release broadcast has been sent.
    pub fn is_released(&self) -> bool {
        self.release_requested
            && self
                .names
                .iter()
                .all(|n| matches!(n.state, NameState::Released | NameState::Conflict))
    }

    /// The name table.
    pub fn names(&self) -> &[OwnedName] {
        &self.names
    }

    /// The counters.
    pub fn counters(&self) -> &NameCounters {
        &self.counters
    }

    /// The next event to report, if any.
    pub fn take_event(&mut self) -> Option<NameEvent> {
        self.events.pop_front()
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
            flags: NbFlags::new(group, NodeType::B),
            address: self.our_address(),
        }
    }

    fn note(&mut self, event: NameEvent) {
        if self.events.is_full() {
            self.events.pop_front();
        }
        let _ = self.events.push_back(event);
    }

    /// When [`NameService::poll`] next has work, if ever.
    pub fn poll_at(&self) -> Option<Instant> {
        self.names.iter().filter_map(|n| n.next_at).min()
    }

    /// Sends due registration, overwrite and release broadcasts through `send`.
    pub fn poll(&mut self, now: Instant, send: &mut dyn FnMut(Destination, &nbns::Repr)) {
        let broadcast = self.broadcast();
        for i in 0..self.names.len() {
            let entry = self.names[i];
            let Some(due) = entry.next_at else { continue };
            if due > now {
                continue;
            }
            let nb = NbName::new(entry.name, self.config.scope);
            let our_entry = self.our_entry(entry.group);
            let (message, next) = match entry.state {
                NameState::Registering { sent } if sent < BCAST_REQ_RETRY_COUNT => (
                    Message::NameRegistrationRequest {
                        kind: RegistrationKind::Registration,
                        name: nb,
                        ttl: NAME_TTL,
                        entry: our_entry,
                    },
                    NameState::Registering { sent: sent + 1 },
                ),
                NameState::Registering { .. } => (
                    // Silence: the name is ours. Tell everyone (RFC 1002 §5.1.1.1).
                    Message::NameRegistrationRequest {
                        kind: RegistrationKind::Overwrite,
                        name: nb,
                        ttl: NAME_TTL,
                        entry: our_entry,
                    },
                    NameState::Active,
                ),
                NameState::Releasing { sent } if sent < BCAST_REQ_RETRY_COUNT => (
                    Message::NameReleaseRequest {
                        name: nb,
                        entry: our_entry,
                    },
                    NameState::Releasing { sent: sent + 1 },
                ),
                _ => {
                    self.names[i].next_at = None;
                    if matches!(entry.state, NameState::Releasing { .. }) {
                        self.names[i].state = NameState::Released;
                    }
                    continue;
                }
            };
            let repr = nbns::Repr {
                transaction_id: entry.transaction_id,
                flags: Flags::BROADCAST,
                message,
            };
            send(broadcast, &repr);
            self.counters.sent = self.counters.sent.wrapping_add(1);
            let slot = &mut self.names[i];
            slot.state = next;
            slot.next_at = match next {
                NameState::Active => None,
                _ => Some(now + BCAST_REQ_RETRY_TIMEOUT),
            };
            if next == NameState::Active {
                net_debug!("name {} registered", entry.name);
                self.note(NameEvent::Registered(entry.name));
            }
        }
        if self.is_released() && !self.release_reported {
            self.release_reported = true;
            self.note(NameEvent::Released);
        }
    }

    /// Handles one datagram received on UDP 137; replies go through `send`.
    pub fn receive(
        &mut self,
        bytes: &[u8],
        from: Received,
        send: &mut dyn FnMut(Destination, &nbns::Repr),
    ) {
        self.counters.received = self.counters.received.wrapping_add(1);
        if from.source.address == self.our_address() {
            return; // our own broadcast, looped back by a bridge
        }
        let Ok(repr) = nbns::Repr::parse(&nbns::Packet::new_unchecked(bytes)) else {
            self.counters.malformed = self.counters.malformed.wrapping_add(1);
            net_debug!("malformed name service packet from {}", from.source.address);
            return;
        };
        net_trace!(
            "nbns from {}:{}: {}",
            from.source.address,
            from.source.port,
            repr
        );
        let unicast = from.destination == self.our_address();
        // Responses carry RD as RFC 1002 §4.2.13 draws them; defence also RA (0xAD86).
        let mut reply = |this: &mut NameService, extra: Flags, message: Message| {
            let repr = nbns::Repr {
                transaction_id: repr.transaction_id,
                flags: (Flags::RECURSION_DESIRED | extra).without(message.fixed_flags().0),
                message,
            };
            send(from.source, &repr);
            this.counters.sent = this.counters.sent.wrapping_add(1);
        };
        match repr.message {
            Message::NameQueryRequest { name } => {
                if let Some(owned) = self.active(&name) {
                    let entry = [self.our_entry(owned.group)];
                    self.counters.queries_answered = self.counters.queries_answered.wrapping_add(1);
                    reply(
                        self,
                        Flags::NONE,
                        Message::PositiveNameQueryResponse {
                            name,
                            ttl: NAME_TTL,
                            entries: AddrEntries::new(&entry),
                        },
                    );
                } else if unicast {
                    self.counters.queries_refused = self.counters.queries_refused.wrapping_add(1);
                    reply(
                        self,
                        Flags::NONE,
                        Message::NegativeNameQueryResponse {
                            name,
                            rcode: Rcode::NameError,
                        },
                    );
                }
            }
            Message::NodeStatusRequest { name } => {
                let asks_us = name.scope.matches(&self.config.scope)
                    && (name.name.is_wildcard() || self.owns(&name));
                if !asks_us {
                    return;
                }
                let mut list: heapless::Vec<NodeName, MAX_NAMES> = heapless::Vec::new();
                for owned in self.names.iter() {
                    let flags = NameFlags::new(owned.group, NodeType::B)
                        .with(NameFlags::CONFLICT, owned.state == NameState::Conflict)
                        .with(
                            NameFlags::DEREGISTERING,
                            matches!(owned.state, NameState::Releasing { .. }),
                        );
                    if owned.state != NameState::Released {
                        let _ = list.push(NodeName {
                            name: owned.name,
                            flags,
                        });
                    }
                }
                let mut statistics = self.statistics;
                statistics.unit_id = if self.config.hide_mac {
                    [0; 6]
                } else {
                    self.config.mac
                };
                self.counters.node_status_answered =
                    self.counters.node_status_answered.wrapping_add(1);
                let response =
                    nbns::Repr::node_status_response(repr.transaction_id, name, &list, statistics);
                send(from.source, &response);
                self.counters.sent = self.counters.sent.wrapping_add(1);
            }
            Message::NameRegistrationRequest {
                kind:
                    RegistrationKind::Registration
                    | RegistrationKind::Overwrite
                    | RegistrationKind::MultiHomed,
                name,
                entry,
                ..
            } => {
                let Some(owned) = self.active(&name) else {
                    return;
                };
                if owned.group || entry.address == self.our_address() {
                    return; // group names are not defended
                }
                self.counters.defences = self.counters.defences.wrapping_add(1);
                self.note(NameEvent::Defended {
                    name: name.name,
                    by: from.source.address,
                });
                reply(
                    self,
                    Flags::RECURSION_AVAILABLE,
                    Message::NameRegistrationResponse {
                        name,
                        rcode: Rcode::Active,
                        ttl: 0,
                        entry,
                    },
                );
            }
            Message::NameRegistrationRequest { .. } => {}
            Message::NameReleaseRequest { name, .. } => {
                if self.owns(&name) {
                    self.counters.foreign_releases_ignored =
                        self.counters.foreign_releases_ignored.wrapping_add(1);
                    net_debug!(
                        "ignored release of our name {} by {}",
                        name,
                        from.source.address
                    );
                }
            }
            Message::NameRegistrationResponse { name, rcode, .. } if rcode != Rcode::NoError => {
                self.answer_to_registration(repr.transaction_id, &name, from, false)
            }
            Message::NameConflictDemand { name, .. } => {
                self.answer_to_registration(repr.transaction_id, &name, from, true)
            }
            message if message.is_response() => {
                self.counters.unsolicited_responses_ignored =
                    self.counters.unsolicited_responses_ignored.wrapping_add(1);
                net_debug!("ignored unsolicited response from {}", from.source.address);
            }
            _ => {}
        }
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
        let target = self.names.iter_mut().find(|n| {
            n.name == name.name
                && name.scope.matches(&scope)
                && n.transaction_id == transaction_id
                && matches!(n.state, NameState::Registering { .. })
        });
        match target {
            Some(entry) => {
                entry.state = NameState::Conflict;
                entry.next_at = None;
                let name = entry.name;
                self.counters.conflicts = self.counters.conflicts.wrapping_add(1);
                self.note(NameEvent::Conflict {
                    name,
                    by: from.source.address,
                });
            }
            None if demand => {
                self.counters.unsolicited_conflicts_ignored =
                    self.counters.unsolicited_conflicts_ignored.wrapping_add(1);
                net_debug!(
                    "ignored unsolicited conflict demand from {}",
                    from.source.address
                );
            }
            None => {
                self.counters.unsolicited_responses_ignored =
                    self.counters.unsolicited_responses_ignored.wrapping_add(1);
                net_debug!("ignored unsolicited response from {}", from.source.address);
            }
        }
    }
}
