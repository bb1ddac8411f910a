//! The WINS client's vocabulary: the node type and servers ([`WinsConfig`]), where a name
//! stands ([`WinsPhase`]), what is counted ([`WinsCounters`]) and logged ([`WinsEvent`]).

use smoltcp::time::Duration;
use smoltcp::wire::Ipv4Address;

use super::{MAX_SERVERS, WINS_CONFLICT_RETRY_MAX, WINS_CONFLICT_RETRY_MIN};
use crate::counter::Counter;
use crate::wire::name::Name;
use crate::wire::nbns::{NodeType, Rcode};

#[cfg(doc)]
use crate::name_service::NameEvent;
/// The node type, its WINS servers, and the first wait before a refused name is asked for
/// again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WinsConfig {
    node_type: NodeType,
    servers: [Ipv4Address; MAX_SERVERS],
    count: u8,
    conflict_retry: Duration,
}

/// Why a [`WinsConfig`] cannot be made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum WinsConfigError {
    /// A P-, M- or H-node needs a WINS server.
    NoServer,
    /// A B-node uses no WINS server.
    ServerForBNode,
    /// More than [`MAX_SERVERS`] servers.
    TooManyServers,
}

impl core::fmt::Display for WinsConfigError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            WinsConfigError::NoServer => f.write_str("a P-, M- or H-node needs a WINS server"),
            WinsConfigError::ServerForBNode => f.write_str("a B-node uses no WINS server"),
            WinsConfigError::TooManyServers => {
                write!(f, "at most {MAX_SERVERS} WINS servers (primary, secondary)")
            }
        }
    }
}

impl core::error::Error for WinsConfigError {}

impl WinsConfig {
    /// A B-node: broadcasts only.
    pub const B_NODE: WinsConfig = WinsConfig {
        node_type: NodeType::B,
        servers: [Ipv4Address::UNSPECIFIED; MAX_SERVERS],
        count: 0,
        conflict_retry: WINS_CONFLICT_RETRY_MIN,
    };

    /// A node of `node_type` with `servers` (first the primary). A B-node takes none, the
    /// others at least one.
    pub fn new(
        node_type: NodeType,
        servers: &[Ipv4Address],
    ) -> Result<WinsConfig, WinsConfigError> {
        match (node_type, servers.len()) {
            (_, n) if n > MAX_SERVERS => Err(WinsConfigError::TooManyServers),
            (NodeType::B, 0) => Ok(WinsConfig::B_NODE),
            (NodeType::B, _) => Err(WinsConfigError::ServerForBNode),
            (_, 0) => Err(WinsConfigError::NoServer),
            (node_type, n) => {
                let mut config = WinsConfig {
                    node_type,
                    ..WinsConfig::B_NODE
                };
                config.servers[..n].copy_from_slice(servers);
                config.count = n as u8;
                Ok(config)
            }
        }
    }

    /// The node type (always a B-node without the `wins` feature).
    pub fn node_type(&self) -> NodeType {
        if cfg!(feature = "wins") {
            self.node_type
        } else {
            NodeType::B
        }
    }

    /// The servers, primary first (none without the `wins` feature).
    pub fn servers(&self) -> &[Ipv4Address] {
        if !cfg!(feature = "wins") {
            return &[];
        }
        &self.servers[..usize::from(self.count)]
    }

    /// Whether `address` is one of the servers.
    pub fn is_server(&self, address: Ipv4Address) -> bool {
        self.servers().contains(&address)
    }

    /// Whether the node broadcasts (B, M, H).
    pub fn broadcasts(&self) -> bool {
        self.node_type() != NodeType::P
    }

    /// The same configuration, waiting `first` (at least a second) before a name the server
    /// refused is asked for again; the wait doubles at each further refusal up to
    /// [`WINS_CONFLICT_RETRY_MAX`] (or `first`, if longer). The default,
    /// [`WINS_CONFLICT_RETRY_MIN`], suits a network; labs that cannot wait take less.
    pub fn with_conflict_retry(self, first: Duration) -> WinsConfig {
        WinsConfig {
            conflict_retry: first.max(Duration::from_secs(1)),
            ..self
        }
    }

    /// The first wait before a refused name is asked for again.
    pub fn conflict_retry(&self) -> Duration {
        self.conflict_retry
    }

    /// The longest wait between tries for a refused name.
    pub fn conflict_retry_max(&self) -> Duration {
        self.conflict_retry.max(WINS_CONFLICT_RETRY_MAX)
    }
}

/// Where one name stands with the WINS server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WinsPhase {
    /// Nothing with a server: a B-node, before start, an M-node still claiming on the
    /// segment, a name lost on the segment, or after release.
    Idle,
    /// Registration requests under way; `sent` to the current server.
    Registering {
        /// Requests sent to the current server.
        sent: u8,
    },
    /// The server sent a WACK: waiting for its answer without retransmitting.
    Waiting {
        /// The request waited on is a refresh (else a registration).
        refresh: bool,
    },
    /// No server answered the last round: the next one comes after a back-off.
    Down,
    /// The server holds the name for us.
    Registered,
    /// Refresh requests under way; `sent` to the current server.
    Refreshing {
        /// Requests sent to the current server.
        sent: u8,
    },
    /// The server refused the name (its answer is kept): not ours, not answered. The server is
    /// asked again on a back-off ([`super::WinsName::retry_at`]); the name stays here until it
    /// grants the name (the other owner is gone), also while a try is under way.
    Conflict {
        /// The server's RCODE (ACT_ERR, RFS_ERR, CFT_ERR; NoError for an end-node challenge).
        rcode: Rcode,
    },
    /// Release requests under way; `sent` so far.
    Releasing {
        /// Requests sent.
        sent: u8,
    },
    /// Released at the server (or the release went unanswered).
    Released,
}

impl core::fmt::Display for WinsPhase {
    /// One word: `Idle`, `Registering`, `Waiting`, `Down`, `Registered`, `Refreshing`,
    /// `Conflict(ACT_ERR)`, `Releasing`, `Released`.
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            WinsPhase::Idle => f.write_str("Idle"),
            WinsPhase::Registering { .. } => f.write_str("Registering"),
            WinsPhase::Waiting { .. } => f.write_str("Waiting"),
            WinsPhase::Down => f.write_str("Down"),
            WinsPhase::Registered => f.write_str("Registered"),
            WinsPhase::Refreshing { .. } => f.write_str("Refreshing"),
            WinsPhase::Conflict { rcode } => write!(f, "Conflict({})", RcodeName(*rcode)),
            WinsPhase::Releasing { .. } => f.write_str("Releasing"),
            WinsPhase::Released => f.write_str("Released"),
        }
    }
}

/// An RCODE as RFC 1002 names it.
#[derive(Debug, Clone, Copy)]
pub struct RcodeName(pub Rcode);

impl RcodeName {
    /// The RFC's name, `None` for a code it does not name.
    fn known(&self) -> Option<&'static str> {
        Some(match self.0 {
            Rcode::NoError => "challenge",
            Rcode::FormatError => "FMT_ERR",
            Rcode::ServerFailure => "SRV_ERR",
            Rcode::NameError => "NAM_ERR",
            Rcode::NotImplemented => "IMP_ERR",
            Rcode::Refused => "RFS_ERR",
            Rcode::Active => "ACT_ERR",
            Rcode::Conflict => "CFT_ERR",
            Rcode::Unknown(_) => return None,
        })
    }
}

impl core::fmt::Display for RcodeName {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self.known() {
            Some(name) => f.write_str(name),
            None => write!(f, "RCODE {}", u8::from(self.0)),
        }
    }
}

#[cfg(feature = "defmt")]
impl defmt::Format for RcodeName {
    /// As [`Display`](core::fmt::Display).
    fn format(&self, f: defmt::Formatter<'_>) {
        match self.known() {
            Some(name) => defmt::write!(f, "{=str}", name),
            None => defmt::write!(f, "RCODE {=u8}", u8::from(self.0)),
        }
    }
}

/// Counters of the WINS client; all wrap on overflow.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct WinsCounters {
    /// Registration requests sent (retransmissions included).
    pub registrations_sent: Counter,
    /// Refresh requests sent.
    pub refreshes_sent: Counter,
    /// Release requests sent.
    pub releases_sent: Counter,
    /// Name queries sent to a server by the resolver.
    pub queries_sent: Counter,
    /// Registrations and refreshes the server granted.
    pub granted: Counter,
    /// Registrations the server refused: the first refusal of a name (it went into conflict)
    /// and every refused try afterwards.
    pub refused: Counter,
    /// Tries to register a name the server had refused (rounds started after the back-off).
    pub conflict_retries: Counter,
    /// Names the server granted after it had refused them (out of conflict).
    pub conflicts_resolved: Counter,
    /// Refreshes the server answered with an error (the name was registered again).
    pub refreshes_refused: Counter,
    /// WACKs received.
    pub wacks: Counter,
    /// Rounds in which a server answered none of the requests.
    pub server_silent: Counter,
    /// Times a TTL ran out without a refresh.
    pub expired: Counter,
    /// Challenges answered: queries from a server for one of our names.
    pub challenges_answered: Counter,
    /// Responses from a server that answered no request of ours (transaction id or name).
    pub wrong_transaction: Counter,
    /// Responses with one of our transaction ids from an address the request did not go to.
    pub wrong_source: Counter,
    /// Datagrams from a server that did not parse.
    pub malformed: Counter,
    /// Datagrams a P-node ignored because they arrived by broadcast.
    pub broadcasts_ignored: Counter,
}

/// WINS state changes, one per change, for the log (inside [`NameEvent::Wins`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WinsEvent {
    /// The server granted a name.
    Registered {
        /// The name.
        name: Name,
        /// The server.
        server: Ipv4Address,
        /// TTL granted, in seconds.
        ttl: u32,
    },
    /// The server refused a name: in conflict (logged at the first refusal only; a refused
    /// try afterwards is counted, not logged again).
    Refused {
        /// The name.
        name: Name,
        /// The server.
        server: Ipv4Address,
        /// Its answer.
        rcode: Rcode,
        /// Seconds until the server is asked again.
        retry_in: u32,
    },
    /// The server granted a name it had refused (its other owner is gone): out of conflict,
    /// ours and answered.
    ConflictResolved {
        /// The name.
        name: Name,
        /// The server.
        server: Ipv4Address,
        /// TTL granted, in seconds.
        ttl: u32,
    },
    /// No server answered a registration round.
    Silent {
        /// The name.
        name: Name,
        /// The node claims the name on the segment meanwhile (H-node).
        claiming: bool,
        /// Seconds until the next round.
        retry_in: u32,
    },
    /// The server refused a refresh: registering again.
    RefreshRefused {
        /// The name.
        name: Name,
        /// The server.
        server: Ipv4Address,
        /// Its answer.
        rcode: Rcode,
    },
    /// A TTL ran out without a refresh: registering again.
    Expired {
        /// The name.
        name: Name,
    },
    /// A release finished.
    Released {
        /// The name.
        name: Name,
        /// The server.
        server: Ipv4Address,
        /// The server answered (else every try went unanswered).
        answered: bool,
    },
}

log_text! {
    /// One line for a log, e.g. `WINS 192.168.69.100 registered LABSRV<20> for 300 s`.
    WinsEvent {
        WinsEvent::Registered { name, server, ttl } => (
            "WINS {} registered {} for {} s",
            server,
            name,
            ttl
        ),
        WinsEvent::Refused {
            name,
            server,
            rcode,
            retry_in,
        } => (
            "WINS {} refused {} ({}): in conflict, not answered; asking again in {} s",
            server,
            name,
            RcodeName(*rcode),
            retry_in
        ),
        WinsEvent::ConflictResolved { name, server, ttl } => (
            "WINS {} registered {} for {} s, which it had refused: out of conflict",
            server,
            name,
            ttl
        ),
        WinsEvent::Silent {
            name,
            claiming,
            retry_in,
        } => (
            "no WINS server answered for {}{}; trying again in {} s",
            name,
            if *claiming {
                ": claiming it on the segment"
            } else {
                ""
            },
            retry_in
        ),
        WinsEvent::RefreshRefused {
            name,
            server,
            rcode,
        } => (
            "WINS {} refused the refresh of {} ({}): registering again",
            server,
            name,
            RcodeName(*rcode)
        ),
        WinsEvent::Expired { name } => ("the WINS TTL of {} ran out: registering again", name),
        WinsEvent::Released {
            name,
            server,
            answered,
        } => (
            "released {} at WINS {}{}",
            name,
            server,
            if *answered { "" } else { " (no answer)" }
        ),
    }
}
