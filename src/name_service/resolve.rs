//! The resolver: finds the owners of a NetBIOS name the way the node type says, without I/O and
//! without allocation ([`MAX_QUERIES`] at a time, [`MAX_ADDRESSES`] addresses an answer).
//!
//! The order of the steps ([`NameService::resolve`]):
//!
//! | node | steps |
//! |---|---|
//! | B | broadcast |
//! | P | primary WINS, secondary WINS |
//! | M | broadcast, primary WINS, secondary WINS |
//! | H | primary WINS, secondary WINS, broadcast |
//!
//! A name the node owns is answered from the table at once. A WINS step sends a NAME QUERY
//! REQUEST with RD=1 unicast to the server, [`WINS_QUERY_COUNT`] times [`WINS_QUERY_TIMEOUT`]
//! apart; a positive answer from that server ends the search, NAM_ERR or silence goes on to the
//! next step. A broadcast step sends [`BCAST_QUERY_COUNT`] broadcasts [`BCAST_QUERY_TIMEOUT`]
//! apart; after the first positive answer it stops sending and gathers the answers of the rest
//! of that interval (several owners of a group name), then ends the search. Answers are taken
//! only with the query's transaction id, and in a WINS step only from that server.

use smoltcp::time::{Duration, Instant};
use smoltcp::wire::Ipv4Address;

use super::{Destination, NameService, Received};
use crate::wire::NAME_SERVICE_PORT;
use crate::wire::name::{Name, NbName};
use crate::wire::nbns::{self, AddrEntry, Flags, Message, NodeType};

/// Resolutions under way (or finished and not yet taken) at once.
pub const MAX_QUERIES: usize = 4;
/// Addresses one resolution keeps.
pub const MAX_ADDRESSES: usize = 8;
/// Time between unicast queries to a server (Windows' NameSrvQueryTimeout).
pub const WINS_QUERY_TIMEOUT: Duration = Duration::from_millis(1500);
/// Queries to one server before it counts as silent.
pub const WINS_QUERY_COUNT: u8 = 2;
/// Time between broadcast queries (Windows' BcastQueryTimeout; RFC 1002 says 250 ms).
pub const BCAST_QUERY_TIMEOUT: Duration = Duration::from_millis(750);
/// Broadcast queries per resolution (RFC 1002 BCAST_REQ_RETRY_COUNT).
pub const BCAST_QUERY_COUNT: u8 = 3;

/// Names one resolution, for [`NameService::take_resolution`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueryId(u16);

/// Who answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnsweredBy {
    /// Our own name table.
    Local,
    /// A WINS server.
    Wins(Ipv4Address),
    /// The segment, by broadcast (the first node that answered).
    Broadcast(Ipv4Address),
}

impl core::fmt::Display for AnsweredBy {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            AnsweredBy::Local => f.write_str("local"),
            AnsweredBy::Wins(server) => write!(f, "wins {server}"),
            AnsweredBy::Broadcast(node) => write!(f, "broadcast {node}"),
        }
    }
}

/// How a resolution ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolution {
    /// The owners (at most [`MAX_ADDRESSES`]).
    Found {
        /// Who answered.
        by: AnsweredBy,
        /// The TTL of the answer, in seconds.
        ttl: u32,
        /// The owners' entries.
        entries: heapless::Vec<AddrEntry, MAX_ADDRESSES>,
    },
    /// Nobody knows the name.
    NotFound {
        /// A WINS server that answered NAM_ERR (else the servers were silent or not asked).
        denied_by: Option<Ipv4Address>,
        /// The segment was asked by broadcast.
        broadcast: bool,
    },
}

/// Why a resolution cannot start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResolveError {
    /// [`MAX_QUERIES`] resolutions are under way.
    Busy,
}

impl core::fmt::Display for ResolveError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{MAX_QUERIES} name queries are under way already")
    }
}

impl core::error::Error for ResolveError {}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Wins(u8),
    Broadcast,
}

/// One resolution.
#[derive(Debug, Clone)]
pub(super) struct Query {
    id: u16,
    /// The name (its scope is the node's).
    name: Name,
    steps: heapless::Vec<Step, 3>,
    step: usize,
    sent: u8,
    transaction_id: u16,
    next_at: Option<Instant>,
    /// Answers gathered by a broadcast step.
    found: Option<(Ipv4Address, u32)>,
    entries: heapless::Vec<AddrEntry, MAX_ADDRESSES>,
    denied_by: Option<Ipv4Address>,
    result: Option<Resolution>,
}

/// The resolver's table.
#[derive(Debug)]
pub(super) struct Resolver {
    queries: [Option<Query>; MAX_QUERIES],
    next_id: u16,
}

impl Resolver {
    pub(super) const fn new() -> Resolver {
        Resolver {
            queries: [None, None, None, None],
            next_id: 1,
        }
    }
}

impl NameService<'_> {
    /// Starts resolving `name` (in the node's scope) at `now`; the next [`NameService::poll`]
    /// sends the first query. Take the answer with [`NameService::take_resolution`]. When all
    /// [`MAX_QUERIES`] are taken, the oldest finished one nobody took is given up; if none is
    /// finished, [`ResolveError::Busy`].
    pub fn resolve(&mut self, name: Name, now: Instant) -> Result<QueryId, ResolveError> {
        let free = self.resolver.queries.iter().position(Option::is_none);
        let slot = match free {
            Some(slot) => slot,
            None => self
                .resolver
                .queries
                .iter()
                .position(|q| q.as_ref().is_some_and(|q| q.result.is_some()))
                .ok_or(ResolveError::Busy)?,
        };
        let id = self.resolver.next_id;
        self.resolver.next_id = id.wrapping_add(1).max(1);
        let nb = NbName::new(name, self.config.scope);
        let mut steps = heapless::Vec::new();
        let servers = self.wins.config.servers().len() as u8;
        let wins = (0..servers).map(Step::Wins);
        match self.wins.config.node_type() {
            NodeType::B => steps.extend([Step::Broadcast]),
            NodeType::P => steps.extend(wins),
            NodeType::M => {
                steps.extend([Step::Broadcast]);
                steps.extend(wins);
            }
            NodeType::H => {
                steps.extend(wins);
                steps.extend([Step::Broadcast]);
            }
        }
        let mut query = Query {
            id,
            name,
            steps,
            step: 0,
            sent: 0,
            transaction_id: self.ids.next(),
            next_at: Some(now),
            found: None,
            entries: heapless::Vec::new(),
            denied_by: None,
            result: None,
        };
        if let Some(owned) = self.active(&nb) {
            let _ = query.entries.push(self.our_entry(owned.group));
            query.result = Some(Resolution::Found {
                by: AnsweredBy::Local,
                ttl: super::NAME_TTL,
                entries: query.entries.clone(),
            });
            query.next_at = None;
        }
        self.resolver.queries[slot] = Some(query);
        Ok(QueryId(id))
    }

    /// The answer of resolution `id` once it has finished (the resolution is then over), or
    /// `None` while it runs (or if it was given up).
    pub fn take_resolution(&mut self, id: QueryId) -> Option<Resolution> {
        let slot = self.resolver.queries.iter_mut().find(|q| {
            q.as_ref()
                .is_some_and(|q| q.id == id.0 && q.result.is_some())
        })?;
        slot.take().and_then(|q| q.result)
    }

    /// When the resolver next has work.
    pub(super) fn resolver_poll_at(&self) -> Option<Instant> {
        self.resolver
            .queries
            .iter()
            .flatten()
            .filter_map(|q| q.next_at)
            .min()
    }

    /// Sends due queries and ends steps whose time ran out.
    pub(super) fn resolver_poll(
        &mut self,
        now: Instant,
        send: &mut dyn FnMut(Destination, &nbns::Repr),
    ) {
        for slot in 0..MAX_QUERIES {
            // A step that ends starts the next at once: at most one turn per step, and one more.
            for _ in 0..4 {
                let Some(query) = &self.resolver.queries[slot] else {
                    break;
                };
                match query.next_at {
                    Some(due) if due <= now => {}
                    _ => break,
                }
                self.query_step(slot, now, send);
            }
        }
    }

    fn query_step(
        &mut self,
        slot: usize,
        now: Instant,
        send: &mut dyn FnMut(Destination, &nbns::Repr),
    ) {
        let broadcast = self.broadcast();
        let scope = self.config.scope;
        let Some(query) = self.resolver.queries[slot].as_mut() else {
            return;
        };
        let Some(&step) = query.steps.get(query.step) else {
            query.result = Some(Resolution::NotFound {
                denied_by: query.denied_by,
                broadcast: query.steps.contains(&Step::Broadcast),
            });
            query.next_at = None;
            return;
        };
        let (count, timeout) = match step {
            Step::Wins(_) => (WINS_QUERY_COUNT, WINS_QUERY_TIMEOUT),
            Step::Broadcast => (BCAST_QUERY_COUNT, BCAST_QUERY_TIMEOUT),
        };
        if query.sent >= count {
            // The step is over: found (a broadcast step gathers until here), or the next step.
            if let Some((first, ttl)) = query.found {
                query.result = Some(Resolution::Found {
                    by: AnsweredBy::Broadcast(first),
                    ttl,
                    entries: query.entries.clone(),
                });
                query.next_at = None;
            } else {
                query.step += 1;
                query.sent = 0;
                query.transaction_id = self.ids.next();
                query.next_at = Some(now);
            }
            return;
        }
        let (to, flags) = match step {
            Step::Wins(index) => (
                Destination {
                    address: self.wins.server(index),
                    port: NAME_SERVICE_PORT,
                },
                Flags::RECURSION_DESIRED,
            ),
            Step::Broadcast => (broadcast, Flags::RECURSION_DESIRED | Flags::BROADCAST),
        };
        query.sent += 1;
        query.next_at = Some(now + timeout);
        let repr = nbns::Repr {
            transaction_id: query.transaction_id,
            flags,
            message: Message::NameQueryRequest {
                name: NbName::new(query.name, scope),
            },
        };
        self.transmit(send, to, &repr);
        if matches!(step, Step::Wins(_)) {
            self.wins.counters.queries_sent.bump();
        }
    }

    /// An answer to one of our queries. Returns `false` if it answers none.
    pub(super) fn resolver_receive(&mut self, repr: &nbns::Repr, from: Received) -> bool {
        let (name, positive) = match &repr.message {
            Message::PositiveNameQueryResponse { name, .. } => (name, true),
            Message::NegativeNameQueryResponse { name, .. } => (name, false),
            _ => return false,
        };
        let scope = self.config.scope;
        let Some(slot) = self.resolver.queries.iter().position(|q| {
            q.as_ref().is_some_and(|q| {
                q.result.is_none()
                    && q.transaction_id == repr.transaction_id
                    && q.name == name.name
                    && name.scope.matches(&scope)
            })
        }) else {
            return false;
        };
        let server = match self.resolver.queries[slot]
            .as_ref()
            .map(|q| q.steps[q.step])
        {
            Some(Step::Wins(index)) => Some(self.wins.server(index)),
            _ => None,
        };
        if server.is_some_and(|server| server != from.source.address) {
            self.wins.counters.wrong_source.bump();
            return true;
        }
        let Some(query) = self.resolver.queries[slot].as_mut() else {
            return false;
        };
        match (repr.message, server) {
            (Message::PositiveNameQueryResponse { ttl, entries, .. }, Some(server)) => {
                let mut kept = heapless::Vec::new();
                kept.extend(entries.iter().take(MAX_ADDRESSES));
                query.result = Some(Resolution::Found {
                    by: AnsweredBy::Wins(server),
                    ttl,
                    entries: kept,
                });
                query.next_at = None;
            }
            (Message::PositiveNameQueryResponse { ttl, entries, .. }, None) => {
                // Broadcast: keep gathering until the step's interval ends, sending no more.
                if query.found.is_none() {
                    query.found = Some((from.source.address, ttl));
                }
                for entry in entries.iter() {
                    if !query.entries.contains(&entry) {
                        let _ = query.entries.push(entry);
                    }
                }
                query.sent = BCAST_QUERY_COUNT;
            }
            (_, Some(server)) if !positive => {
                // NAM_ERR from the server: the next step at once.
                query.denied_by = Some(server);
                query.sent = WINS_QUERY_COUNT;
                query.next_at = Some(Instant::ZERO);
            }
            _ => {} // a negative answer to a broadcast: others may still answer
        }
        true
    }
}
