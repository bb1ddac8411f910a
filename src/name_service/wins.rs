//! The NBNS (WINS) client of a P-, M- or H-node (RFC 1001 §15.1–15.3, RFC 1002 §5.1.2), without
//! I/O: one state machine per name of the table, driven by [`NameService::poll`] and
//! [`NameService::receive`] like the B-node part.
//!
//! The node type decides how the name service claims a name (set it with
//! [`NameService::configure_wins`] before [`NameService::start`]). Without the `wins` cargo
//! feature (on with `std`) there is no `configure_wins`: the node is a B-node and none of the
//! client's code is in the build.
//!
//! * **B-node** (the default, no server): broadcasts only; nothing here runs.
//! * **P-node**: unicast only. A name is ours once the server grants it; while no server answers
//!   it stays `Registering` (not answered) and is retried with a back-off. A P-node sends no
//!   broadcast and ignores every datagram that arrived by broadcast.
//! * **M-node**: the B-node claim on the segment first (broadcasts); once it went unchallenged
//!   the name is ours and is registered with the server.
//! * **H-node**: the server first. A name is ours once the server grants it; if no server
//!   answers, the node falls back to the B-node claim (the name becomes ours on the segment)
//!   and keeps retrying the server with a back-off.
//!
//! The server conversation, per name:
//!
//! * **Registration**: NAME REGISTRATION REQUEST, RD=1, unicast to port 137 of the server,
//!   requesting [`NAME_TTL`]; sent [`WINS_RETRY_COUNT`] times, [`WINS_RETRY_TIMEOUT`]
//!   apart, with one transaction id (RFC 1002 UCAST_REQ_RETRY_COUNT; the RFC's 5 s timeout is
//!   shortened to Samba 4's and Windows' scale so a dead server is noticed within seconds). A
//!   silent primary passes the name to the secondary. A WACK stops retransmission and extends
//!   the wait by its TTL (at most [`WACK_MAX`]). A positive answer makes the name registered
//!   with the TTL the server granted; ACT_ERR, RFS_ERR or CFT_ERR (or an end-node challenge)
//!   puts it in conflict, kept with the server's answer; other errors count as a failed server.
//! * **A refused name** stays in conflict (not answered, listed with CNF) and is asked for
//!   again: the same registration (primary first, retransmitted and passed on as above, a WACK
//!   waited for) after [`WINS_CONFLICT_RETRY_MIN`] (or [`WinsConfig::with_conflict_retry`]),
//!   the wait doubling after each refused or unanswered try up to [`WINS_CONFLICT_RETRY_MAX`].
//!   The server refuses while the other owner answers its challenge; once that owner is gone
//!   it grants the name, which is then ours (registered, answered) without a broadcast. No
//!   broadcast claim is made for the name meanwhile, whatever the node type. Only the first
//!   refusal and the grant are logged; every try is counted. A name lost on the segment (a
//!   defender answered our broadcast claim, RFC 1001 §15.1.3.5) is not the server's refusal:
//!   it stays in conflict for good, as on a B-node.
//! * **Silence** from every server: back-off from [`WINS_BACKOFF_MIN`] doubling to
//!   [`WINS_BACKOFF_MAX`], then a new round from the primary. Never given up.
//! * **Refresh**: NAME REFRESH REQUEST (opcode 8, RD=0) at half the granted TTL, to the server
//!   that granted it; answers with opcode 5, 8 or 9 are accepted. While the server is silent
//!   the refresh is retried (the other server in turn) with the back-off; an error answer
//!   re-registers at once; a TTL that runs out sends the name back to registration (a P-node
//!   stops answering for it meanwhile).
//! * **Release** ([`NameService::release`]): NAME RELEASE REQUEST to the server that holds the
//!   name, [`WINS_RELEASE_COUNT`] tries [`WINS_RELEASE_TIMEOUT`] apart, done at the first answer
//!   (Samba answers NAM_ERR for a name it does not hold: fine at shutdown). Bounded.
//! * **The server's challenge** (a unicast NAME QUERY, RD=0, for a name it has on record for us)
//!   is an ordinary unicast query: answered positively for a name we own, NAM_ERR otherwise,
//!   never rate-limited.
//!
//! A response is taken only from the server the request went to and only with that request's
//! transaction id (random, per request); anything else from a server is dropped and counted, and
//! a response from elsewhere is left to the B-node part (which takes only answers to its own
//! broadcasts). So a spoofed negative answer cannot take a name.
//!
//! Time: [`NameService::receive`] has no clock. A response that starts a timer (WACK, a granted
//! TTL) leaves it pending; the next [`NameService::poll`] (the node runs one right after every
//! receive) arms it with its `now`, and [`NameService::poll_at`] says "now" while one is pending.

use smoltcp::time::{Duration, Instant};
use smoltcp::wire::Ipv4Address;

use super::{Destination, NAME_TTL, NameEvent, NameService, NameState, Received};
use crate::wire::NAME_SERVICE_PORT;
use crate::wire::name::NbName;
use crate::wire::nbns::{self, Flags, Message, NodeType, Rcode, RegistrationKind};

mod types;

pub use self::types::{RcodeName, WinsConfig, WinsConfigError, WinsCounters, WinsEvent, WinsPhase};

/// Most WINS servers: a primary and a secondary.
pub const MAX_SERVERS: usize = 2;
/// Time between unicast retransmissions of a registration or refresh.
pub const WINS_RETRY_TIMEOUT: Duration = Duration::from_secs(2);
/// Requests sent to one server before it counts as silent (RFC 1002 UCAST_REQ_RETRY_COUNT).
pub const WINS_RETRY_COUNT: u8 = 3;
/// First wait after every server was silent.
pub const WINS_BACKOFF_MIN: Duration = Duration::from_secs(10);
/// Longest wait between rounds while every server is silent.
pub const WINS_BACKOFF_MAX: Duration = Duration::from_secs(320);
/// Longest wait a WACK can ask for (Samba asks 60 s; Samba 4 `5 + 4n`).
pub const WACK_MAX: Duration = Duration::from_secs(300);
/// Time between release requests to the server.
pub const WINS_RELEASE_TIMEOUT: Duration = Duration::from_millis(500);
/// Release requests sent to the server before the release counts as done.
pub const WINS_RELEASE_COUNT: u8 = 3;
/// First wait before a name the server refused is asked for again (the default of
/// [`WinsConfig::with_conflict_retry`]).
pub const WINS_CONFLICT_RETRY_MIN: Duration = Duration::from_secs(60);
/// Longest wait between tries for a name the server refused.
pub const WINS_CONFLICT_RETRY_MAX: Duration = Duration::from_secs(900);
/// Shortest refresh interval, whatever TTL the server grants.
const REFRESH_MIN: Duration = Duration::from_secs(1);

/// A timer a response started, armed by the next poll (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pending {
    /// Due at once.
    Now,
    /// Due after this long (a WACK's wait, the back-off after a refusal).
    After(Duration),
    /// A granted TTL: refresh at half, expire at the end.
    Granted(u32),
}

/// Where a try to register a refused name stands; its phase stays
/// [`WinsPhase::Conflict`] throughout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Retry {
    /// No try under way: the next one is due at `next_at` (none after release).
    Idle,
    /// Registration requests under way; `sent` to the current server.
    Asking { sent: u8 },
    /// The server sent a WACK: waiting for its answer without retransmitting.
    Waiting,
}

/// One name's WINS state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WinsName {
    phase: WinsPhase,
    /// Index of the server asked, or holding the name.
    server: u8,
    /// TTL granted (seconds; 0 while none).
    ttl: u32,
    /// When the granted TTL runs out.
    expires_at: Option<Instant>,
    transaction_id: u16,
    next_at: Option<Instant>,
    pending: Option<Pending>,
    backoff: Duration,
    /// The registration round under way started from `Down` (silence is not logged again).
    retrying: bool,
    /// The server has granted the name since start (a refresh is not a first registration).
    granted_once: bool,
    /// In conflict with the server: the try under way.
    retry: Retry,
    /// In conflict with the server: the wait before the next try (the last one waited).
    conflict_wait: Duration,
}

impl WinsName {
    const IDLE: WinsName = WinsName {
        phase: WinsPhase::Idle,
        server: 0,
        ttl: 0,
        expires_at: None,
        transaction_id: 0,
        next_at: None,
        pending: None,
        backoff: WINS_BACKOFF_MIN,
        retrying: false,
        granted_once: false,
        retry: Retry::Idle,
        conflict_wait: WINS_CONFLICT_RETRY_MIN,
    };

    /// Where the name stands.
    pub fn phase(&self) -> WinsPhase {
        self.phase
    }

    /// The TTL the server granted, in seconds (0: none yet).
    pub fn ttl(&self) -> u32 {
        self.ttl
    }

    /// When the next refresh is due, while registered (the timer of that phase).
    pub fn refresh_at(&self) -> Option<Instant> {
        match self.phase {
            WinsPhase::Registered => self.next_at,
            _ => None,
        }
    }

    /// When the server is next asked for a name it refused, while in conflict (during a try:
    /// its next request, or the end of the wait a WACK asked for). `None` after release.
    pub fn retry_at(&self) -> Option<Instant> {
        match self.phase {
            WinsPhase::Conflict { .. } => self.next_at,
            _ => None,
        }
    }

    /// When the granted TTL runs out, while the server holds the name.
    pub fn expires_at(&self) -> Option<Instant> {
        match self.phase {
            WinsPhase::Registered
            | WinsPhase::Refreshing { .. }
            | WinsPhase::Waiting { refresh: true } => self.expires_at,
            _ => None,
        }
    }

    /// The server holds the name for us (a refresh may be under way).
    fn held(&self) -> bool {
        matches!(
            self.phase,
            WinsPhase::Registered
                | WinsPhase::Refreshing { .. }
                | WinsPhase::Waiting { refresh: true }
        )
    }

    /// Waiting for an answer to a request with `transaction_id`.
    fn awaits(&self, transaction_id: u16) -> bool {
        self.transaction_id == transaction_id
            && match self.phase {
                WinsPhase::Registering { .. }
                | WinsPhase::Waiting { .. }
                | WinsPhase::Refreshing { .. }
                | WinsPhase::Releasing { .. } => true,
                WinsPhase::Conflict { .. } => self.retry != Retry::Idle,
                _ => false,
            }
    }

    /// In conflict with the server, a try under way.
    fn retrying_conflict(&self) -> bool {
        matches!(self.phase, WinsPhase::Conflict { .. }) && self.retry != Retry::Idle
    }
}

/// The WINS part of the name service: configuration, one [`WinsName`] per name (in the order
/// of [`NameService::names`]), counters.
#[derive(Debug)]
pub(super) struct WinsClient {
    pub(super) config: WinsConfig,
    pub(super) names: heapless::Vec<WinsName, { super::MAX_NAMES }>,
    pub(super) counters: WinsCounters,
}

impl WinsClient {
    pub(super) fn new() -> WinsClient {
        WinsClient {
            config: WinsConfig::B_NODE,
            names: heapless::Vec::new(),
            counters: WinsCounters::default(),
        }
    }

    pub(super) fn add_name(&mut self) {
        // The name table has the same capacity and checked it first.
        let _ = self.names.push(WinsName::IDLE);
    }

    pub(super) fn server(&self, index: u8) -> Ipv4Address {
        self.config.servers()[usize::from(index) % self.config.servers().len().max(1)]
    }
}

fn doubled(backoff: Duration) -> Duration {
    (backoff * 2).min(WINS_BACKOFF_MAX)
}

/// The request a name's phase sends.
#[derive(Clone, Copy)]
enum Request {
    Registration,
    Refresh,
    Release,
}

impl NameService<'_> {
    /// Sets the node type and the WINS servers. Call before [`NameService::start`]; the
    /// default is a B-node.
    #[cfg(feature = "wins")]
    pub fn configure_wins(&mut self, config: WinsConfig) {
        self.wins.config = config;
    }

    /// The node type and the WINS servers.
    pub fn wins_config(&self) -> &WinsConfig {
        &self.wins.config
    }

    /// The node type (in every NB_FLAGS and NAME_FLAGS we send).
    pub fn node_type(&self) -> NodeType {
        self.wins.config.node_type()
    }

    /// Each name's WINS state, in the order of [`NameService::names`].
    pub fn wins_names(&self) -> &[WinsName] {
        &self.wins.names
    }

    /// The WINS server a name is asked at or held by (`None` for a node without servers).
    pub fn wins_server(&self, state: &WinsName) -> Option<Ipv4Address> {
        if self.wins.config.servers().is_empty() {
            None
        } else {
            Some(self.wins.server(state.server))
        }
    }

    /// The WINS client's counters.
    pub fn wins_counters(&self) -> &WinsCounters {
        &self.wins.counters
    }

    /// [`NameService::start`] for the server: a P- or H-node registers every name at once
    /// (the names stay `Registering` without broadcasts); an M-node waits for its claims on the
    /// segment. Returns whether names are claimed on the segment first (B, M).
    pub(super) fn wins_start(&mut self, now: Instant) -> bool {
        if !cfg!(feature = "wins") {
            return true;
        }
        match self.wins.config.node_type() {
            NodeType::B | NodeType::M => true,
            NodeType::P | NodeType::H => {
                for i in 0..self.wins.names.len() {
                    self.wins_register(i, 0, now, false);
                }
                false
            }
        }
    }

    /// A claim on the segment went unchallenged: an M-node now registers the name with the
    /// server.
    pub(super) fn wins_claimed_on_segment(&mut self, i: usize, now: Instant) {
        if cfg!(feature = "wins")
            && self.wins.config.node_type() == NodeType::M
            && matches!(self.wins.names[i].phase, WinsPhase::Idle)
        {
            self.wins_register(i, 0, now, false);
        }
    }

    /// A claim on the segment met a defender: the name is not ours, stop asking the server
    /// for it (unless the server holds it already).
    pub(super) fn wins_lost_on_segment(&mut self, i: usize) {
        let state = &mut self.wins.names[i];
        if !state.held() {
            state.phase = WinsPhase::Idle;
            state.next_at = None;
            state.pending = None;
        }
    }

    /// [`NameService::release`] for the server: names it holds are released there; every
    /// other registration stops, and so do the tries for names it refused (nothing is sent
    /// for them: they are not ours).
    pub(super) fn wins_release(&mut self, now: Instant) {
        if !cfg!(feature = "wins") {
            return;
        }
        for i in 0..self.wins.names.len() {
            let transaction_id = self.ids.next();
            let state = &mut self.wins.names[i];
            if state.held() {
                state.phase = WinsPhase::Releasing { sent: 0 };
                state.transaction_id = transaction_id;
                state.next_at = Some(now);
            } else if matches!(state.phase, WinsPhase::Conflict { .. }) {
                state.retry = Retry::Idle;
                state.next_at = None;
            } else if state.phase != WinsPhase::Released {
                state.phase = WinsPhase::Idle;
                state.next_at = None;
            }
            state.pending = None;
        }
    }

    /// Whether release requests to a server are still under way.
    pub(super) fn wins_releasing(&self) -> bool {
        cfg!(feature = "wins")
            && self
                .wins
                .names
                .iter()
                .any(|n| matches!(n.phase, WinsPhase::Releasing { .. }))
    }

    /// When the WINS part next has work.
    pub(super) fn wins_poll_at(&self) -> Option<Instant> {
        if !cfg!(feature = "wins") {
            return None;
        }
        self.wins
            .names
            .iter()
            .filter_map(|n| {
                if n.pending.is_some() {
                    // Armed by the next poll, whenever it comes.
                    return Some(Instant::ZERO);
                }
                match (n.next_at, n.expires_at()) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                }
            })
            .min()
    }

    /// Starts a registration round for name `i` at server `server` now.
    fn wins_register(&mut self, i: usize, server: u8, now: Instant, retrying: bool) {
        let transaction_id = self.ids.next();
        let state = &mut self.wins.names[i];
        state.phase = WinsPhase::Registering { sent: 0 };
        state.server = server;
        state.transaction_id = transaction_id;
        state.next_at = Some(now);
        state.pending = None;
        state.retrying = retrying;
    }

    /// Sends due registrations, refreshes and releases; arms timers responses left pending.
    pub(super) fn wins_poll(
        &mut self,
        now: Instant,
        send: &mut dyn FnMut(Destination, &nbns::Repr),
    ) {
        if !cfg!(feature = "wins") {
            return;
        }
        for i in 0..self.wins.names.len() {
            self.arm(i, now);
            if let Some(expiry) = self.wins.names[i].expires_at()
                && expiry <= now
            {
                self.expire(i, now);
            }
            // A round that ends may start the next one at once (another server): a few turns.
            for _ in 0..4 {
                let Some(due) = self.wins.names[i].next_at else {
                    break;
                };
                if due > now || !self.wins_step(i, now, send) {
                    break;
                }
            }
        }
    }

    /// Arms a timer a response left pending.
    fn arm(&mut self, i: usize, now: Instant) {
        let state = &mut self.wins.names[i];
        match state.pending.take() {
            None => {}
            Some(Pending::Now) => state.next_at = Some(now),
            Some(Pending::After(wait)) => state.next_at = Some(now + wait),
            Some(Pending::Granted(ttl)) => {
                if ttl == 0 {
                    // Infinite: nothing to refresh.
                    state.next_at = None;
                    state.expires_at = None;
                } else {
                    let ttl = Duration::from_secs(u64::from(ttl));
                    state.next_at = Some(now + (ttl / 2).max(REFRESH_MIN));
                    state.expires_at = Some(now + ttl);
                }
            }
        }
    }

    /// One due step of name `i`; returns whether another may be due at once.
    fn wins_step(
        &mut self,
        i: usize,
        now: Instant,
        send: &mut dyn FnMut(Destination, &nbns::Repr),
    ) -> bool {
        let servers = self.wins.config.servers().len() as u8;
        let state = self.wins.names[i];
        match state.phase {
            WinsPhase::Registering { sent } if sent < WINS_RETRY_COUNT => {
                self.wins_send(i, Request::Registration, send);
                let state = &mut self.wins.names[i];
                state.phase = WinsPhase::Registering { sent: sent + 1 };
                state.next_at = Some(now + WINS_RETRY_TIMEOUT);
                false
            }
            WinsPhase::Registering { .. } | WinsPhase::Waiting { refresh: false } => {
                // This server was silent (or failed): the next one, or a back-off.
                self.wins.counters.server_silent.bump();
                if state.server + 1 < servers {
                    self.wins_register(i, state.server + 1, now, state.retrying);
                    true
                } else {
                    self.all_silent(i, now);
                    false
                }
            }
            WinsPhase::Down => {
                self.wins_register(i, 0, now, true);
                true
            }
            WinsPhase::Registered => {
                let transaction_id = self.ids.next();
                let state = &mut self.wins.names[i];
                state.phase = WinsPhase::Refreshing { sent: 0 };
                state.transaction_id = transaction_id;
                true
            }
            WinsPhase::Refreshing { sent } if sent < WINS_RETRY_COUNT => {
                self.wins_send(i, Request::Refresh, send);
                let state = &mut self.wins.names[i];
                state.phase = WinsPhase::Refreshing { sent: sent + 1 };
                state.next_at = Some(now + WINS_RETRY_TIMEOUT);
                false
            }
            WinsPhase::Refreshing { .. } | WinsPhase::Waiting { refresh: true } => {
                // Silent: the other server in turn, after the back-off, until the TTL runs out.
                self.wins.counters.server_silent.bump();
                let transaction_id = self.ids.next();
                let state = &mut self.wins.names[i];
                state.server = (state.server + 1) % servers.max(1);
                state.phase = WinsPhase::Refreshing { sent: 0 };
                state.transaction_id = transaction_id;
                let retry = now + state.backoff;
                state.next_at = Some(state.expires_at.map_or(retry, |end| end.min(retry)));
                state.backoff = doubled(state.backoff);
                false
            }
            WinsPhase::Releasing { sent } if sent < WINS_RELEASE_COUNT => {
                self.wins_send(i, Request::Release, send);
                let state = &mut self.wins.names[i];
                state.phase = WinsPhase::Releasing { sent: sent + 1 };
                state.next_at = Some(now + WINS_RELEASE_TIMEOUT);
                false
            }
            WinsPhase::Releasing { .. } => {
                self.released(i, false);
                false
            }
            WinsPhase::Conflict { .. } => self.conflict_step(i, now, send),
            WinsPhase::Idle | WinsPhase::Released => {
                self.wins.names[i].next_at = None;
                false
            }
        }
    }

    /// One due step of name `i`, which the server refused: a try (a registration, primary
    /// first), its retransmissions, and after silence the next server or the next wait. The
    /// phase stays `Conflict` until the server grants the name; never a broadcast.
    fn conflict_step(
        &mut self,
        i: usize,
        now: Instant,
        send: &mut dyn FnMut(Destination, &nbns::Repr),
    ) -> bool {
        let servers = self.wins.config.servers().len() as u8;
        let state = self.wins.names[i];
        match state.retry {
            Retry::Idle => {
                self.wins.counters.conflict_retries.bump();
                net_debug!(
                    "asking WINS again for {}, which it refused",
                    self.names[i].name
                );
                self.conflict_ask(i, 0, now);
                true
            }
            Retry::Asking { sent } if sent < WINS_RETRY_COUNT => {
                self.wins_send(i, Request::Registration, send);
                let state = &mut self.wins.names[i];
                state.retry = Retry::Asking { sent: sent + 1 };
                state.next_at = Some(now + WINS_RETRY_TIMEOUT);
                false
            }
            Retry::Asking { .. } | Retry::Waiting => {
                self.wins.counters.server_silent.bump();
                if state.server + 1 < servers {
                    self.conflict_ask(i, state.server + 1, now);
                    true
                } else {
                    // Nobody answered: still in conflict, asked again after a longer wait.
                    let wait = self.next_conflict_wait(i);
                    let state = &mut self.wins.names[i];
                    state.retry = Retry::Idle;
                    state.next_at = Some(now + wait);
                    false
                }
            }
        }
    }

    /// Starts a try for refused name `i` at server `server` now.
    fn conflict_ask(&mut self, i: usize, server: u8, now: Instant) {
        let transaction_id = self.ids.next();
        let state = &mut self.wins.names[i];
        state.retry = Retry::Asking { sent: 0 };
        state.server = server;
        state.transaction_id = transaction_id;
        state.next_at = Some(now);
        state.pending = None;
    }

    /// The wait before refused name `i`'s next try: the last one doubled, capped.
    fn next_conflict_wait(&mut self, i: usize) -> Duration {
        let max = self.wins.config.conflict_retry_max();
        let state = &mut self.wins.names[i];
        state.conflict_wait = (state.conflict_wait * 2).min(max);
        state.conflict_wait
    }

    /// Sends name `i`'s request to its server.
    fn wins_send(
        &mut self,
        i: usize,
        request: Request,
        send: &mut dyn FnMut(Destination, &nbns::Repr),
    ) {
        let owned = self.names[i];
        let state = self.wins.names[i];
        let name = NbName::new(owned.name, self.config.scope);
        let entry = self.our_entry(owned.group);
        let message = match request {
            Request::Registration => {
                self.wins.counters.registrations_sent.bump();
                Message::NameRegistrationRequest {
                    kind: RegistrationKind::Registration,
                    name,
                    ttl: NAME_TTL,
                    entry,
                }
            }
            Request::Refresh => {
                self.wins.counters.refreshes_sent.bump();
                Message::NameRegistrationRequest {
                    kind: RegistrationKind::Refresh,
                    name,
                    ttl: NAME_TTL,
                    entry,
                }
            }
            Request::Release => {
                self.wins.counters.releases_sent.bump();
                Message::NameReleaseRequest { name, entry }
            }
        };
        let repr = nbns::Repr {
            transaction_id: state.transaction_id,
            flags: Flags::NONE,
            message,
        };
        let to = Destination {
            address: self.wins.server(state.server),
            port: NAME_SERVICE_PORT,
        };
        self.transmit(send, to, &repr);
    }

    /// Every server was silent for name `i`: back off; an H-node claims the name on the segment
    /// meanwhile.
    fn all_silent(&mut self, i: usize, now: Instant) {
        let node_type = self.wins.config.node_type();
        let claim = node_type == NodeType::H
            && matches!(self.names[i].state, NameState::Registering { .. })
            && self.names[i].next_at.is_none();
        if claim {
            let transaction_id = self.ids.next();
            let owned = &mut self.names[i];
            owned.state = NameState::Registering { sent: 0 };
            owned.transaction_id = transaction_id;
            owned.next_at = Some(now);
        }
        let state = &mut self.wins.names[i];
        state.phase = WinsPhase::Down;
        state.next_at = Some(now + state.backoff);
        let retry_in = state.backoff.secs() as u32;
        state.backoff = doubled(state.backoff);
        if !state.retrying {
            let name = self.names[i].name;
            net_debug!("no WINS server answered for {}", name);
            self.note(NameEvent::Wins(WinsEvent::Silent {
                name,
                claiming: claim,
                retry_in,
            }));
        }
    }

    /// Name `i`'s TTL ran out without a refresh: register again; a P-node stops answering.
    fn expire(&mut self, i: usize, now: Instant) {
        self.wins.counters.expired.bump();
        if self.wins.config.node_type() == NodeType::P && self.names[i].state == NameState::Active {
            self.names[i].state = NameState::Registering { sent: 0 };
            self.names[i].next_at = None;
        }
        self.wins.names[i].ttl = 0;
        self.wins.names[i].expires_at = None;
        self.wins_register(i, 0, now, false);
        let name = self.names[i].name;
        self.note(NameEvent::Wins(WinsEvent::Expired { name }));
    }

    /// Name `i`'s release at the server is over.
    fn released(&mut self, i: usize, answered: bool) {
        let server = self.wins.server(self.wins.names[i].server);
        let state = &mut self.wins.names[i];
        state.phase = WinsPhase::Released;
        state.next_at = None;
        state.pending = None;
        if self.wins.config.node_type() == NodeType::P
            && matches!(self.names[i].state, NameState::Releasing { .. })
        {
            self.names[i].state = NameState::Released;
            self.names[i].next_at = None;
        }
        let name = self.names[i].name;
        self.note(NameEvent::Wins(WinsEvent::Released {
            name,
            server,
            answered,
        }));
    }

    /// A response to one of our server requests. Returns `false` if it is not the WINS
    /// client's (the B-node part and the resolver look at it then).
    pub(super) fn wins_receive(&mut self, repr: &nbns::Repr, from: Received) -> bool {
        if !cfg!(feature = "wins") {
            return false;
        }
        let (name, rcode, ttl) = match repr.message {
            Message::NameRegistrationResponse {
                name, rcode, ttl, ..
            }
            | Message::NameRefreshResponse {
                name, rcode, ttl, ..
            } => (name, rcode, ttl),
            Message::EndNodeChallengeResponse { name, ttl, .. } => (name, Rcode::NoError, ttl),
            Message::WaitForAcknowledgement { name, ttl, .. } => (name, Rcode::NoError, ttl),
            Message::NameReleaseResponse { name, rcode, .. } => (name, rcode, 0),
            _ => return false,
        };
        let from_server = self.wins.config.is_server(from.source.address);
        let scope = self.config.scope;
        let found = (0..self.names.len()).find(|&i| {
            self.names[i].name == name.name
                && name.scope.matches(&scope)
                && self.wins.names[i].awaits(repr.transaction_id)
        });
        let Some(i) = found else {
            if from_server {
                self.wins.counters.wrong_transaction.bump();
                net_debug!("WINS {}: response to nothing we asked", from.source.address);
                return true;
            }
            return false;
        };
        let state = self.wins.names[i];
        let server = self.wins.server(state.server);
        if from.source.address != server {
            self.wins.counters.wrong_source.bump();
            net_debug!(
                "response for {} from {}, asked {}: dropped",
                name,
                from.source.address,
                server
            );
            return true;
        }
        let owned_name = self.names[i].name;
        let refresh = matches!(
            state.phase,
            WinsPhase::Refreshing { .. } | WinsPhase::Waiting { refresh: true }
        );
        let retrying = state.retrying_conflict();
        match repr.message {
            Message::WaitForAcknowledgement { .. } => {
                self.wins.counters.wacks.bump();
                if !matches!(state.phase, WinsPhase::Releasing { .. }) {
                    let wait = Duration::from_secs(u64::from(ttl)).min(WACK_MAX);
                    let wait = if wait == Duration::ZERO {
                        WINS_RETRY_TIMEOUT
                    } else {
                        wait
                    };
                    let state = &mut self.wins.names[i];
                    if retrying {
                        state.retry = Retry::Waiting;
                    } else {
                        state.phase = WinsPhase::Waiting { refresh };
                    }
                    state.next_at = None;
                    state.pending = Some(Pending::After(wait));
                }
            }
            Message::NameReleaseResponse { .. } => {
                if matches!(state.phase, WinsPhase::Releasing { .. }) {
                    self.released(i, true);
                }
            }
            _ if matches!(state.phase, WinsPhase::Releasing { .. }) => {
                self.wins.counters.wrong_transaction.bump();
            }
            Message::EndNodeChallengeResponse { .. } if !refresh => {
                // The server names another owner and leaves the challenge to us; netbt does
                // not take names from others: the name is theirs.
                self.wins_refused(i, Rcode::NoError);
            }
            _ if rcode == Rcode::NoError => self.granted(i, ttl),
            _ if refresh => {
                self.wins.counters.refreshes_refused.bump();
                self.wins_register(i, state.server, Instant::ZERO, false);
                self.wins.names[i].next_at = None;
                self.wins.names[i].pending = Some(Pending::Now);
                self.note(NameEvent::Wins(WinsEvent::RefreshRefused {
                    name: owned_name,
                    server,
                    rcode,
                }));
            }
            _ if matches!(rcode, Rcode::Active | Rcode::Refused | Rcode::Conflict) => {
                self.wins_refused(i, rcode);
            }
            _ => {
                // FMT_ERR, SRV_ERR, ...: the server failed; the next one, or a back-off.
                let state = &mut self.wins.names[i];
                if retrying {
                    state.retry = Retry::Asking {
                        sent: WINS_RETRY_COUNT,
                    };
                } else {
                    state.phase = WinsPhase::Registering {
                        sent: WINS_RETRY_COUNT,
                    };
                }
                state.next_at = None;
                state.pending = Some(Pending::Now);
            }
        }
        true
    }

    /// The server granted name `i` for `ttl` seconds; a name it had refused is ours again.
    fn granted(&mut self, i: usize, ttl: u32) {
        self.wins.counters.granted.bump();
        let server = self.wins.server(self.wins.names[i].server);
        let first = !self.wins.names[i].granted_once;
        let from_conflict = matches!(self.wins.names[i].phase, WinsPhase::Conflict { .. });
        let state = &mut self.wins.names[i];
        state.phase = WinsPhase::Registered;
        state.retry = Retry::Idle;
        state.ttl = ttl;
        state.next_at = None;
        state.pending = Some(Pending::Granted(ttl));
        state.backoff = WINS_BACKOFF_MIN;
        state.granted_once = true;
        let owned = &mut self.names[i];
        let name = owned.name;
        // Out of a conflict with the server, not one on the segment (that one is final).
        let ours_now = matches!(owned.state, NameState::Registering { .. })
            || (from_conflict && owned.state == NameState::Conflict);
        if ours_now {
            owned.state = NameState::Active;
            owned.next_at = None;
            self.note(NameEvent::Registered(name));
        }
        if from_conflict {
            self.wins.counters.conflicts_resolved.bump();
            self.note(NameEvent::Wins(WinsEvent::ConflictResolved {
                name,
                server,
                ttl,
            }));
        } else if first {
            self.note(NameEvent::Wins(WinsEvent::Registered { name, server, ttl }));
        } else {
            net_debug!("WINS {} refreshed {} for {} s", server, name, ttl);
        }
    }

    /// The server refused name `i` with `rcode`: in conflict, asked again after the first
    /// wait; refused again, after a longer one.
    fn wins_refused(&mut self, i: usize, rcode: Rcode) {
        self.wins.counters.refused.bump();
        let server = self.wins.server(self.wins.names[i].server);
        let again = matches!(self.wins.names[i].phase, WinsPhase::Conflict { .. });
        let wait = if again {
            self.next_conflict_wait(i)
        } else {
            self.wins.config.conflict_retry()
        };
        let state = &mut self.wins.names[i];
        state.phase = WinsPhase::Conflict { rcode };
        state.retry = Retry::Idle;
        state.conflict_wait = wait;
        state.next_at = None;
        state.pending = Some(Pending::After(wait));
        let name = self.names[i].name;
        if again {
            net_debug!(
                "WINS {} refused {} again ({}): next try in {} s",
                server,
                name,
                RcodeName(rcode),
                wait.secs()
            );
            return;
        }
        self.counters.conflicts.bump();
        let owned = &mut self.names[i];
        owned.state = NameState::Conflict;
        owned.next_at = None;
        self.note(NameEvent::Wins(WinsEvent::Refused {
            name,
            server,
            rcode,
            retry_in: wait.secs() as u32,
        }));
    }
}

#[cfg(test)]
mod tests;
