//! The SYN gate: it judges every received frame before the interface sees it, keeps smoltcp
//! from answering a SYN to the session port with a reset, gives it the listen backlog it lacks,
//! and says which socket set each frame goes to.
//!
//! The session slots' sockets live in shards (small socket sets, see
//! [`Shards`](crate::session::Shards)); [`GateContext::next`] reads a frame and hands it,
//! with a [`Verdict`], to a [`Deliver`]er: the node's own sockets ([`Verdict::Home`]), the
//! shard that holds the segment's connection or has a listening slot for a SYN
//! ([`Verdict::Shard`]), or nowhere ([`Verdict::Swallow`]). smoltcp has no listen backlog: a
//! SYN that finds no listening socket gets RST|ACK. The gate swallows:
//!
//! * a bare SYN to the session port that no *session* slot would take: the frame is kept in
//!   the [`SynBacklog`] (a retransmission replaces its earlier copy in place) and handed to
//!   the interface the moment a session slot listens, oldest first, so the client gets its
//!   SYN-ACK then instead of after its next retransmission (1 s, 3 s, 7 s ... later). Kept
//!   SYNs go to refusal slots (and get 0x83) only once the session slots have kept the oldest
//!   waiting the *refusal delay*: a burst the session slots clear within the delay is served,
//!   not refused. Then the youngest are refused first, so a newcomer to a slow queue learns
//!   at once, while the oldest keep their turn for a session slot; a SYN that waits
//!   [`BACKSTOP_FACTOR`] delays, or the oldest when the backlog is full, is refused ahead of
//!   them. When the backlog is full and no slot listens at all, the SYN is dropped, and the
//!   client's retransmission tries again;
//! * a SYN from a peer a slot already holds (half-open, or connected and not yet closing): a
//!   listener earlier in the socket set would otherwise take it, and two slots would own one
//!   connection.
//!
//! * a segment of a connection that has just ended (its slot moved on): the
//!   [`RecentlyClosed`] record answers it the way TIME-WAIT would (a FIN or data is
//!   acknowledged by the gate itself, anything else dropped), where smoltcp would answer a
//!   reset. A SYN from the same peer ends that record and is judged as above.
//!
//! It also looks at every frame the interface sends ([`Watched`], and the room for an answer
//! to a frame) and counts resets leaving the session port, so "no reset from 139" is a
//! counter, not a belief.
//!
//! The gate decides from a [`GateView`] the session service refreshes before every frame;
//! the node therefore feeds the interface one frame at a time ([`OneFrame`]).

use core::cell::Cell;

use smoltcp::phy::{self, Device, DeviceCapabilities, RxToken as _, TxToken as _};
use smoltcp::time::{Duration, Instant};
use smoltcp::wire::Ipv4Address;

use crate::counter::Counter;

mod closed;
mod neighbours;
mod segment;

pub use closed::{ClosedConnection, Duty, LINGER, RecentlyClosed, Remembered};
pub use neighbours::{NEIGHBOUR_LIFETIME, NEIGHBOURS, Neighbours};
pub use segment::{AckReply, Segment};

/// Largest SYN frame kept: Ethernet header, and IPv4 and TCP headers with all options.
pub const MAX_SYN_FRAME: usize = 14 + 60 + 60;
/// How long a kept SYN stays valid (a client retransmits within this, refreshing it).
pub const SYN_HOLD: Duration = Duration::from_secs(3);

/// A kept SYN older than this many refusal delays goes to a refusal slot ahead of younger
/// ones (see [`SynBacklog`]).
pub const BACKSTOP_FACTOR: u32 = 4;

/// Which kept SYN a slot takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pick {
    /// The one that waited longest: for a session slot always; for a refusal slot when the
    /// backlog is full or the oldest waited past the backstop.
    Oldest,
    /// The youngest, for a refusal slot once the session slots are slow (the oldest waited
    /// past the refusal delay): the newcomer learns at once, instead of after a wait that
    /// would end in a refusal anyway, and the older ones keep their turn.
    Newest,
}

/// Which slot a SYN to the session port would land on now (smoltcp gives it to the first
/// listening socket, and session slots come first).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SynTaker {
    /// No slot listens.
    Nobody,
    /// Only refusal slots listen: the SYN would be answered 0x83.
    RefusalSlot,
    /// A session slot listens.
    SessionSlot,
}

/// Which SYNs the gate lets through, and where segments go; written by the session service
/// between frames.
pub trait GateView {
    /// Where a new SYN to the session port would land.
    fn syn_taker(&self) -> SynTaker;
    /// Whether a slot already holds a connection from `address`:`port` (half-open, or
    /// connected and not closing).
    fn holds(&self, address: Ipv4Address, port: u16) -> bool;
    /// The socket shard holding the connection from `address`:`port`, if a slot has one.
    fn route(&self, address: Ipv4Address, port: u16) -> Option<usize>;
    /// The socket shard a SYN that `taker` takes goes to (one with such a slot listening).
    fn syn_route(&self, taker: SynTaker) -> Option<usize>;
}

/// Where the gate sends a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// To the interface with the node's own sockets: anything that is not a segment of a
    /// connection to the session port (and a segment no slot has a connection for, which
    /// smoltcp answers as it answers any unknown connection).
    Home,
    /// To the interface with the node's own sockets, as [`Verdict::Home`]: an ARP packet, which
    /// may answer for a peer a session socket waits to send to.
    Arp,
    /// To the interface with the sockets of this shard: a segment of a connection a slot of
    /// it holds, or a SYN for one of its listening slots.
    Shard(usize),
    /// Nowhere: kept in the backlog, swallowed, dropped or answered by the gate.
    Swallow,
}

/// Where a kept or passed SYN that `taker` takes goes.
fn syn_verdict<V: GateView + ?Sized>(view: &V, taker: SynTaker) -> Verdict {
    match view.syn_route(taker) {
        Some(shard) => Verdict::Shard(shard),
        // The view says a slot listens but names no shard for it: nothing could take the
        // SYN (smoltcp would reset it), so it is not handed on.
        None => Verdict::Swallow,
    }
}

/// Takes a frame the gate judged: the frame, where it goes, and room for the interface's
/// answer (checked for resets leaving the session port).
pub trait Deliver {
    /// What delivering returns.
    type Output;
    /// Delivers `frame` as `verdict` says; `tx` carries the answer, if any.
    fn deliver<T: phy::TxToken>(
        self,
        frame: &[u8],
        verdict: Verdict,
        tx: TxToken<'_, T>,
    ) -> Self::Output;
}

/// What the gate counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
// A field a newer version adds reads as zero from an older daemon's document.
#[cfg_attr(feature = "serde", serde(default))]
pub struct GateCounters {
    /// SYNs no session slot could take at once (kept in the backlog, or dropped when it was
    /// full).
    pub syns_held: Counter,
    /// Of those, SYNs dropped: backlog full, frame too large, or kept past [`SYN_HOLD`].
    pub syns_dropped: Counter,
    /// Kept SYNs handed to the interface once a slot could take them.
    pub syns_replayed: Counter,
    /// SYNs the gate handed to a refusal slot because the session slots kept SYNs waiting
    /// past the refusal delay, or the backlog was full.
    pub syns_to_refusal_slots: Counter,
    /// SYNs from peers a slot already holds (retransmissions), swallowed.
    pub duplicate_syns_swallowed: Counter,
    /// TCP resets sent from the session port, whatever the cause (only aborts should cause
    /// them).
    pub resets_sent: Counter,
    /// Segments of recently closed connections acknowledged by the gate (a FIN or data).
    pub strays_acknowledged: Counter,
    /// Segments of recently closed connections dropped (acknowledgements, resets, anything
    /// after a handshake given up; acknowledgements that found the reply queue full).
    pub strays_dropped: Counter,
    /// Closed connections the record forgot before [`LINGER`] ended to make room.
    pub closed_displaced: Counter,
    /// Kept SYNs from strangers (sources that never spoke ARP with us: forged, most likely)
    /// dropped from a full backlog to make room for a SYN from a neighbour.
    pub strangers_displaced: Counter,
}

/// Peers a SYN-ACK left the session port for, since the session service last looked: it tells
/// a handshake the interface answered from one it could not (a spoofed source: no neighbour
/// answers for it, and smoltcp's SYN-ACK never leaves). A small bounded list; when it
/// overflows, every half-open handshake counts as answered.
#[derive(Debug, Clone, Copy, Default)]
pub struct SynAcks {
    peers: [Option<(Ipv4Address, u16)>; SynAcks::CAPACITY],
    overflowed: bool,
}

impl SynAcks {
    /// Peers it lists before it overflows.
    pub const CAPACITY: usize = 8;

    fn note(&mut self, peer: (Ipv4Address, u16)) {
        match self.peers.iter_mut().find(|p| p.is_none()) {
            Some(free) => *free = Some(peer),
            None => self.overflowed = true,
        }
    }

    /// The peers listed.
    pub fn peers(&self) -> impl Iterator<Item = (Ipv4Address, u16)> + '_ {
        self.peers.iter().flatten().copied()
    }

    /// Whether some were not listed (treat every half-open handshake as answered).
    pub fn overflowed(&self) -> bool {
        self.overflowed
    }

    /// Whether nothing was noted.
    pub fn is_empty(&self) -> bool {
        !self.overflowed && self.peers[0].is_none()
    }
}

/// Counts one event in the gate's counters, which the gate shares with the session service
/// through a `Cell` (the gate only ever holds a shared borrow).
fn bump(counters: &Cell<GateCounters>, counter: fn(&mut GateCounters) -> &mut Counter) {
    let mut all = counters.get();
    counter(&mut all).bump();
    counters.set(all);
}

/// One backlog entry: a SYN kept for later.
#[derive(Debug, Clone, Copy)]
pub struct HeldSyn {
    frame: [u8; MAX_SYN_FRAME],
    len: usize,
    source: (Ipv4Address, u16),
    /// When this copy arrived (it is valid for [`SYN_HOLD`] from then).
    at: Instant,
    /// When the first copy arrived (the wait is counted from then).
    since: Instant,
    /// Its source spoke ARP with us lately ([`Neighbours`]).
    neighbour: bool,
}

impl HeldSyn {
    /// An empty entry (usable in a `static`).
    pub const EMPTY: HeldSyn = HeldSyn {
        frame: [0; MAX_SYN_FRAME],
        len: 0,
        source: (Ipv4Address::new(0, 0, 0, 0), 0),
        at: Instant::ZERO,
        since: Instant::ZERO,
        neighbour: false,
    };
}

/// What became of a SYN the backlog was asked to keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kept {
    /// Kept (or a retransmission refreshed its earlier copy).
    Yes,
    /// Kept in the place of a stranger's SYN, which is dropped.
    InPlaceOfAStranger,
    /// Not kept: full (of neighbours' SYNs, for a neighbour's), or too large.
    No,
}

impl Default for HeldSyn {
    fn default() -> Self {
        HeldSyn::EMPTY
    }
}

/// SYNs to the session port that no session slot could take yet, in order of arrival: a ring
/// over storage the caller provides (one [`HeldSyn`] per SYN it can keep; none: every SYN that
/// finds no listening slot is dropped and retransmitted by its client). Session slots take the
/// oldest. Refusal slots take nothing until the oldest has waited the refusal delay, then the
/// youngest, except that the oldest goes first once it has waited [`BACKSTOP_FACTOR`] delays
/// or when the backlog is full. SYNs from [`Neighbours`] go ahead of strangers' either way,
/// and a full backlog drops its youngest stranger for a neighbour's SYN.
#[derive(Debug)]
pub struct SynBacklog<'a> {
    ring: &'a mut [HeldSyn],
    /// How long a kept SYN waits for a session slot before a refusal slot may take it.
    refusal_delay: Duration,
    /// Index of the oldest entry.
    head: usize,
    /// Entries kept.
    kept: usize,
}

impl<'a> SynBacklog<'a> {
    /// An empty backlog keeping up to `ring.len()` SYNs, each waiting up to `refusal_delay`
    /// for a session slot before a refusal slot may take it.
    pub fn new(ring: &'a mut [HeldSyn], refusal_delay: Duration) -> SynBacklog<'a> {
        SynBacklog {
            ring,
            refusal_delay,
            head: 0,
            kept: 0,
        }
    }

    /// SYNs it can keep.
    pub fn capacity(&self) -> usize {
        self.ring.len()
    }

    /// SYNs kept now.
    pub fn len(&self) -> usize {
        self.kept
    }

    /// Whether nothing is kept.
    pub fn is_empty(&self) -> bool {
        self.kept == 0
    }

    /// Ring index of the `n`th oldest entry (`n` at most the ring's length: `head` is below
    /// it, so one subtraction wraps).
    fn index(&self, n: usize) -> usize {
        let index = self.head + n;
        if index >= self.ring.len() {
            index - self.ring.len()
        } else {
            index
        }
    }

    /// The `n`th oldest entry (`None` only past the ring, which no position below `kept`
    /// is).
    fn entry(&self, n: usize) -> Option<&HeldSyn> {
        self.ring.get(self.index(n))
    }

    /// Position (0: oldest) of the entry from `source`.
    fn position(&self, source: (Ipv4Address, u16)) -> Option<usize> {
        (0..self.kept).find(|&n| self.entry(n).is_some_and(|e| e.source == source))
    }

    /// Keeps `frame`, a SYN from `source` (a neighbour's, if `neighbour`); a retransmission
    /// replaces the earlier copy in its place in the queue.
    fn hold(
        &mut self,
        frame: &[u8],
        source: (Ipv4Address, u16),
        neighbour: bool,
        now: Instant,
    ) -> Kept {
        if frame.len() > MAX_SYN_FRAME {
            return Kept::No;
        }
        let mut kept = Kept::Yes;
        let (index, since) = match self.position(source) {
            Some(n) => (self.index(n), self.ring[self.index(n)].since),
            None if !self.is_full() => {
                self.kept += 1;
                (self.index(self.kept - 1), now)
            }
            None if neighbour => {
                // The youngest stranger gives its place up.
                let Some(n) = (0..self.kept)
                    .rev()
                    .find(|&n| self.entry(n).is_some_and(|e| !e.neighbour))
                else {
                    return Kept::No;
                };
                kept = Kept::InPlaceOfAStranger;
                (self.index(n), now)
            }
            None => return Kept::No,
        };
        let entry = &mut self.ring[index];
        entry.frame[..frame.len()].copy_from_slice(frame);
        entry.len = frame.len();
        entry.source = source;
        entry.at = now;
        entry.since = since;
        entry.neighbour = neighbour;
        kept
    }

    /// Moves the neighbour's SYN nearest the front (or, with `back`, the back) to that end,
    /// so the next pop takes it; nothing moves if no neighbour's SYN is kept.
    fn neighbours_first(&mut self, back: bool) {
        let end = if back { self.kept.wrapping_sub(1) } else { 0 };
        // Positions from that end inwards.
        let found = (0..self.kept)
            .map(|k| if back { end - k } else { k })
            .find(|&n| self.entry(n).is_some_and(|e| e.neighbour));
        if let Some(n) = found
            && n != end
        {
            let (a, b) = (self.index(n), self.index(end));
            self.ring.swap(a, b);
        }
    }

    /// Takes the oldest entry (or, with `back`, the youngest).
    fn pop(&mut self, back: bool) -> Option<HeldSyn> {
        if self.kept == 0 {
            return None;
        }
        self.kept -= 1;
        let index = if back {
            self.index(self.kept)
        } else {
            let head = self.head;
            self.head = self.index(1);
            head
        };
        self.ring.get(index).copied()
    }

    /// The oldest (or, with `newest`, the youngest) SYN still valid at `now`; expired ones
    /// are dropped and counted.
    fn take(
        &mut self,
        now: Instant,
        newest: bool,
        counters: &Cell<GateCounters>,
    ) -> Option<HeldSyn> {
        loop {
            self.neighbours_first(newest);
            let syn = self.pop(newest)?;
            if now < syn.at + SYN_HOLD {
                return Some(syn);
            }
            bump(counters, |c| &mut c.syns_dropped);
        }
    }

    /// The longest a SYN waits for a session slot before a refusal slot takes it ahead of
    /// younger ones: [`BACKSTOP_FACTOR`] refusal delays.
    fn backstop(&self) -> Duration {
        self.refusal_delay * BACKSTOP_FACTOR
    }

    /// When the oldest kept SYN first arrived.
    pub fn oldest_since(&self) -> Option<Instant> {
        (self.kept > 0).then(|| self.ring[self.head].since)
    }

    /// Whether a new SYN would find no room.
    fn is_full(&self) -> bool {
        self.kept == self.ring.len()
    }

    /// What a listening refusal slot takes at `now`, if anything.
    fn refusal_pick(&self, now: Instant) -> Option<Pick> {
        let since = self.oldest_since()?;
        if self.is_full() || now >= since + self.backstop() {
            Some(Pick::Oldest)
        } else if now >= since + self.refusal_delay {
            Some(Pick::Newest)
        } else {
            None
        }
    }

    /// When a listening refusal slot next has something to take: once the oldest kept SYN
    /// has waited the refusal delay; at once if the backlog is full (a new SYN needs the
    /// room). `None`: nothing kept.
    pub fn refusal_due(&self) -> Option<Instant> {
        let since = self.oldest_since()?;
        Some(if self.is_full() {
            Instant::ZERO
        } else {
            since + self.refusal_delay
        })
    }
}

/// What the gate keeps from one frame to the next: owned by the session service, lent to the
/// gate for each frame ([`GateState::context`]).
#[derive(Debug)]
pub struct GateState<'b> {
    /// Its counters (shared with the tokens, hence a `Cell`).
    pub counters: Cell<GateCounters>,
    /// The SYNs kept for a slot.
    pub backlog: SynBacklog<'b>,
    /// The connections that ended lately.
    pub closed: RecentlyClosed<'b>,
    /// The hosts that spoke ARP lately.
    pub neighbours: Neighbours,
    /// A retransmitted SYN of a half-open handshake, for the session service to read.
    pub syn_again: Cell<Option<(Ipv4Address, u16)>>,
    /// The SYN-ACKs the interface sent, for the session service to read.
    pub syn_acks: Cell<SynAcks>,
}

impl<'b> GateState<'b> {
    /// A gate keeping SYNs in `backlog` (waiting `refusal_delay` for a session slot) and
    /// ended connections in `closed`.
    pub fn new(
        backlog: &'b mut [HeldSyn],
        refusal_delay: Duration,
        closed: &'b mut [ClosedConnection],
    ) -> GateState<'b> {
        GateState {
            counters: Cell::new(GateCounters::default()),
            backlog: SynBacklog::new(backlog, refusal_delay),
            closed: RecentlyClosed::new(closed),
            neighbours: Neighbours::new(),
            syn_again: Cell::new(None),
            syn_acks: Cell::new(SynAcks::default()),
        }
    }

    /// Lends the state to the gate for a frame, judged by `view`, for session `port`, at `now`.
    pub fn context<'g, V: ?Sized>(
        &'g mut self,
        view: &'g V,
        port: u16,
        now: Instant,
    ) -> GateContext<'g, 'b, V> {
        GateContext {
            view,
            counters: &self.counters,
            backlog: &mut self.backlog,
            closed: &mut self.closed,
            syn_again: &self.syn_again,
            syn_acks: &self.syn_acks,
            neighbours: &mut self.neighbours,
            port,
            now,
        }
    }
}

/// What the gate judges frames with, borrowed from its [`GateState`] for one frame.
pub struct GateContext<'g, 'b, V: ?Sized> {
    /// What the gate decides from.
    pub view: &'g V,
    /// Where it counts.
    pub counters: &'g Cell<GateCounters>,
    /// Where it keeps SYNs.
    pub backlog: &'g mut SynBacklog<'b>,
    /// The connections that ended lately.
    pub closed: &'g mut RecentlyClosed<'b>,
    /// Where it notes a retransmitted SYN from a peer a slot holds half-open (the handshake is
    /// alive); the session service reads it before the next frame.
    pub syn_again: &'g Cell<Option<(Ipv4Address, u16)>>,
    /// Where it lists the SYN-ACKs the interface sent.
    pub syn_acks: &'g Cell<SynAcks>,
    /// The hosts that spoke ARP lately.
    pub neighbours: &'g mut Neighbours,
    /// The session port.
    pub port: u16,
    /// The time.
    pub now: Instant,
}

/// Answers a segment from a peer whose connection the record remembers: a reset ends the
/// record; a FIN or data is acknowledged when the duty says so; the rest is dropped.
fn answer_stray(
    segment: &Segment,
    duty: Duty,
    closed: &mut RecentlyClosed<'_>,
    counters: &Cell<GateCounters>,
    now: Instant,
) {
    if segment.rst {
        closed.forget(segment.source());
    }
    let reply = match duty {
        Duty::Acknowledge => segment.time_wait_ack(),
        Duty::Drop => None,
    };
    if reply.is_some() {
        // The peer still sends: remember it as long again, as TIME-WAIT restarts its timer.
        closed.renew(segment.source(), now);
    }
    if let Some(reply) = reply
        && closed.queue_reply(reply)
    {
        bump(counters, |c| &mut c.strays_acknowledged);
        net_trace!(
            "gate: stray segment from {}:{} of an ended connection acknowledged",
            segment.src_addr,
            segment.src_port
        );
    } else {
        bump(counters, |c| &mut c.strays_dropped);
        net_trace!(
            "gate: stray segment from {}:{} of an ended connection dropped",
            segment.src_addr,
            segment.src_port
        );
    }
}

impl<'g, 'b, V: GateView + ?Sized> GateContext<'g, 'b, V> {
    /// Hands the next frame to `deliver`, judged: first the acknowledgements owed to ended
    /// connections go out, then a kept SYN whose turn has come (the oldest at once to a
    /// session slot; to a refusal slot only once the session slots have kept it waiting the
    /// refusal delay), else the next frame `device` received. `None`: nothing to read.
    pub fn next<D: Device + ?Sized, E: Deliver>(
        &mut self,
        device: &mut D,
        timestamp: Instant,
        deliver: E,
    ) -> Option<E::Output> {
        while self.closed.has_replies() {
            let Some(tx) = device.transmit(timestamp) else {
                break;
            };
            if let Some(reply) = self.closed.next_reply() {
                tx.consume(reply.buffer_len(), |buffer| reply.emit(buffer));
            }
        }
        if let Some((syn, verdict)) = self.replay() {
            let Some(tx) = device.transmit(timestamp) else {
                bump(self.counters, |c| &mut c.syns_dropped);
                return None;
            };
            let tx = self.watch(tx);
            // (`len` is at most the frame's size: `hold` keeps no larger SYN.)
            let frame = syn.frame.get(..syn.len).unwrap_or_default();
            return Some(deliver.deliver(frame, verdict, tx));
        }
        let (rx, tx) = device.receive(timestamp)?;
        let tx = self.watch(tx);
        Some(rx.consume(|frame| {
            let verdict = self.judge(frame);
            deliver.deliver(frame, verdict, tx)
        }))
    }

    /// `tx`, checked for resets leaving the session port and SYN-ACKs.
    pub fn watch<T: phy::TxToken>(&self, tx: T) -> TxToken<'g, T> {
        TxToken {
            inner: tx,
            counters: self.counters,
            syn_acks: self.syn_acks,
            port: self.port,
        }
    }

    /// The kept SYN whose turn has come, if any, and where it goes.
    fn replay(&mut self) -> Option<(HeldSyn, Verdict)> {
        // (Nothing kept, the common case: no need to look at the slots.)
        if self.backlog.is_empty() {
            return None;
        }
        let taker = self.view.syn_taker();
        let pick = match taker {
            SynTaker::SessionSlot => Pick::Oldest,
            SynTaker::RefusalSlot => self.backlog.refusal_pick(self.now)?,
            SynTaker::Nobody => return None,
        };
        while let Some(syn) = self
            .backlog
            .take(self.now, pick == Pick::Newest, self.counters)
        {
            if self.view.holds(syn.source.0, syn.source.1) {
                bump(self.counters, |c| &mut c.duplicate_syns_swallowed);
                continue;
            }
            bump(self.counters, |c| &mut c.syns_replayed);
            if taker == SynTaker::RefusalSlot {
                bump(self.counters, |c| &mut c.syns_to_refusal_slots);
            }
            net_trace!(
                "gate: kept SYN from {}:{} replayed",
                syn.source.0,
                syn.source.1
            );
            return Some((syn, syn_verdict(self.view, taker)));
        }
        None
    }

    /// Judges a frame from the device: where it goes, or whether the gate keeps, swallows or
    /// answers it itself.
    pub fn judge(&mut self, frame: &[u8]) -> Verdict {
        let now = self.now;
        let Some(segment) = Segment::parse(frame).filter(|s| s.dst_port == self.port) else {
            return match self.neighbours.note_frame(frame, now) {
                true => Verdict::Arp,
                false => Verdict::Home,
            };
        };
        let source = segment.source();
        if !segment.is_bare_syn() {
            return match self.closed.duty(source, now) {
                None => match self.view.route(source.0, source.1) {
                    Some(shard) => Verdict::Shard(shard),
                    None => Verdict::Home,
                },
                Some(duty) => {
                    answer_stray(&segment, duty, self.closed, self.counters, now);
                    Verdict::Swallow
                }
            };
        }
        // A new connection from this peer: whatever ended before is over.
        self.closed.forget(source);
        if self.view.holds(source.0, source.1) {
            bump(self.counters, |c| &mut c.duplicate_syns_swallowed);
            self.syn_again.set(Some(source));
            net_trace!(
                "gate: SYN from {}:{}, already held, swallowed",
                source.0,
                source.1
            );
            return Verdict::Swallow;
        }
        // A SYN is kept whenever no session slot listens (unless refusal slots take SYNs
        // without delay): while the session slots are slow, the kept ones go to refusal
        // slots youngest first, so it is refused as soon as a refusal slot listens.
        let taker = self.view.syn_taker();
        let no_delay = self.backlog.refusal_delay == Duration::ZERO;
        if taker == SynTaker::SessionSlot || (taker == SynTaker::RefusalSlot && no_delay) {
            // Nothing is kept now: before reading the device, `next` handed every kept SYN
            // to such a slot, so no older copy of this one waits behind it.
            return syn_verdict(self.view, taker);
        }
        bump(self.counters, |c| &mut c.syns_held);
        let neighbour = self.neighbours.knows(source.0, now);
        let kept = self.backlog.hold(frame, source, neighbour, now);
        if kept == Kept::InPlaceOfAStranger {
            bump(self.counters, |c| &mut c.syns_dropped);
            bump(self.counters, |c| &mut c.strangers_displaced);
        }
        if kept != Kept::No {
            net_trace!(
                "gate: no session slot free, SYN from {}:{} kept",
                source.0,
                source.1
            );
            return Verdict::Swallow;
        }
        if taker == SynTaker::RefusalSlot {
            // No room to wait in: refused now rather than dropped.
            bump(self.counters, |c| &mut c.syns_to_refusal_slots);
            return syn_verdict(self.view, taker);
        }
        bump(self.counters, |c| &mut c.syns_dropped);
        net_trace!(
            "gate: backlog full, SYN from {}:{} dropped",
            source.0,
            source.1
        );
        Verdict::Swallow
    }
}

/// Room for a frame to send, checked for resets from the session port.
pub struct TxToken<'g, T> {
    inner: T,
    counters: &'g Cell<GateCounters>,
    syn_acks: &'g Cell<SynAcks>,
    port: u16,
}

impl<T: phy::TxToken> phy::TxToken for TxToken<'_, T> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let TxToken {
            inner,
            counters,
            syn_acks,
            port,
        } = self;
        inner.consume(len, |frame| {
            let result = f(frame);
            if let Some(segment) = Segment::parse(frame).filter(|s| s.src_port == port) {
                if segment.rst {
                    bump(counters, |c| &mut c.resets_sent);
                }
                if segment.syn && segment.ack_number.is_some() {
                    let mut listed = syn_acks.get();
                    listed.note((segment.dst_addr, segment.dst_port));
                    syn_acks.set(listed);
                }
            }
            result
        })
    }

    fn set_meta(&mut self, meta: phy::PacketMeta) {
        self.inner.set_meta(meta)
    }
}

/// `device` with every frame it sends checked for resets leaving the session port and for
/// SYN-ACKs (the interface's egress goes through it).
pub struct Watched<'g, D: ?Sized> {
    device: &'g mut D,
    counters: &'g Cell<GateCounters>,
    syn_acks: &'g Cell<SynAcks>,
    port: u16,
}

impl<'g, D: ?Sized> Watched<'g, D> {
    /// `device`, watched with the counters of `state` for session `port`.
    pub fn new(device: &'g mut D, state: &'g GateState<'_>, port: u16) -> Watched<'g, D> {
        Watched {
            device,
            counters: &state.counters,
            syn_acks: &state.syn_acks,
            port,
        }
    }
}

impl<D: Device + ?Sized> Device for Watched<'_, D> {
    type RxToken<'a>
        = D::RxToken<'a>
    where
        Self: 'a;
    type TxToken<'a>
        = TxToken<'a, D::TxToken<'a>>
    where
        Self: 'a;

    /// Nothing: the gate reads the device ([`GateContext::next`]); this is for egress.
    fn receive(&mut self, _: Instant) -> Option<(Self::RxToken<'_>, Self::TxToken<'_>)> {
        None
    }

    fn transmit(&mut self, timestamp: Instant) -> Option<Self::TxToken<'_>> {
        Some(TxToken {
            inner: self.device.transmit(timestamp)?,
            counters: self.counters,
            syn_acks: self.syn_acks,
            port: self.port,
        })
    }

    fn capabilities(&self) -> DeviceCapabilities {
        self.device.capabilities()
    }
}

/// One frame for the interface, with the room for its answer: the device the node hands to
/// `poll_ingress_single` once the gate has judged the frame.
pub struct OneFrame<'f, T> {
    frame: &'f [u8],
    tx: Option<T>,
    capabilities: DeviceCapabilities,
}

impl<'f, T: phy::TxToken> OneFrame<'f, T> {
    /// `frame`, answered through `tx`, on a device with `capabilities`.
    pub fn new(frame: &'f [u8], tx: T, capabilities: DeviceCapabilities) -> OneFrame<'f, T> {
        OneFrame {
            frame,
            tx: Some(tx),
            capabilities,
        }
    }
}

/// The frame of a [`OneFrame`].
pub struct FrameToken<'f>(&'f [u8]);

impl phy::RxToken for FrameToken<'_> {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        f(self.0)
    }
}

impl<'f, T: phy::TxToken> Device for OneFrame<'f, T> {
    type RxToken<'a>
        = FrameToken<'f>
    where
        Self: 'a;
    type TxToken<'a>
        = T
    where
        Self: 'a;

    fn receive(&mut self, _: Instant) -> Option<(Self::RxToken<'_>, Self::TxToken<'_>)> {
        Some((FrameToken(self.frame), self.tx.take()?))
    }

    fn transmit(&mut self, _: Instant) -> Option<Self::TxToken<'_>> {
        None
    }

    fn capabilities(&self) -> DeviceCapabilities {
        self.capabilities.clone()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;
    use smoltcp::phy::{Loopback, Medium};
    use smoltcp::wire::{
        EthernetAddress, EthernetFrame, EthernetProtocol, EthernetRepr, IpAddress, IpProtocol,
        Ipv4Packet, Ipv4Repr, TcpControl, TcpPacket, TcpRepr, TcpSeqNumber,
    };

    struct View {
        taker: SynTaker,
        held: Option<(Ipv4Address, u16)>,
    }

    impl GateView for View {
        fn syn_taker(&self) -> SynTaker {
            self.taker
        }
        fn holds(&self, address: Ipv4Address, port: u16) -> bool {
            self.held == Some((address, port))
        }
        fn route(&self, _: Ipv4Address, _: u16) -> Option<usize> {
            None
        }
        fn syn_route(&self, taker: SynTaker) -> Option<usize> {
            match taker {
                SynTaker::SessionSlot => Some(0),
                SynTaker::RefusalSlot => Some(1),
                SynTaker::Nobody => None,
            }
        }
    }

    /// What the rig's interface gets: the frame, or nothing for a frame the gate kept.
    struct Collect;

    impl Deliver for Collect {
        type Output = std::vec::Vec<u8>;
        fn deliver<T: phy::TxToken>(
            self,
            frame: &[u8],
            verdict: Verdict,
            _: TxToken<'_, T>,
        ) -> Self::Output {
            match verdict {
                Verdict::Swallow => std::vec::Vec::new(),
                Verdict::Home | Verdict::Arp | Verdict::Shard(_) => frame.to_vec(),
            }
        }
    }

    const CLIENT: Ipv4Address = Ipv4Address::new(192, 168, 69, 100);
    const SERVER: Ipv4Address = Ipv4Address::new(192, 168, 69, 1);

    fn at(ms: i64) -> Instant {
        Instant::from_millis(ms)
    }

    fn segment(src: u16, dst: u16, control: TcpControl, ack: bool) -> std::vec::Vec<u8> {
        segment_with(src, dst, control, ack, &[])
    }

    /// A frame from CLIENT:`src` to SERVER:`dst`: sequence number 1000, acknowledging 2000
    /// when `ack`, carrying `payload`.
    pub(crate) fn segment_with(
        src: u16,
        dst: u16,
        control: TcpControl,
        ack: bool,
        payload: &[u8],
    ) -> std::vec::Vec<u8> {
        segment_from(CLIENT, src, dst, control, ack, payload)
    }

    /// [`segment_with`] from `source` instead of CLIENT.
    fn segment_from(
        source: Ipv4Address,
        src: u16,
        dst: u16,
        control: TcpControl,
        ack: bool,
        payload: &[u8],
    ) -> std::vec::Vec<u8> {
        let tcp = TcpRepr {
            src_port: src,
            dst_port: dst,
            control,
            seq_number: TcpSeqNumber(1000),
            ack_number: ack.then_some(TcpSeqNumber(2000)),
            window_len: 1024,
            window_scale: None,
            max_seg_size: None,
            sack_permitted: false,
            sack_ranges: [None; 3],
            timestamp: None,
            payload,
        };
        let ip = Ipv4Repr {
            src_addr: source,
            dst_addr: SERVER,
            next_header: IpProtocol::Tcp,
            payload_len: tcp.buffer_len(),
            hop_limit: 64,
        };
        let eth = EthernetRepr {
            src_addr: EthernetAddress([2, 0, 0, 0, 0, 0x64]),
            dst_addr: EthernetAddress([2, 0, 0, 0, 0, 1]),
            ethertype: EthernetProtocol::Ipv4,
        };
        let mut bytes = std::vec![0; 14 + 20 + tcp.buffer_len()];
        let mut frame = EthernetFrame::new_unchecked(&mut bytes[..]);
        eth.emit(&mut frame);
        let mut packet = Ipv4Packet::new_unchecked(frame.payload_mut());
        ip.emit(&mut packet, &Default::default());
        tcp.emit(
            &mut TcpPacket::new_unchecked(packet.payload_mut()),
            &IpAddress::Ipv4(source),
            &IpAddress::Ipv4(SERVER),
            &Default::default(),
        );
        bytes
    }

    fn syn(src: u16) -> std::vec::Vec<u8> {
        segment(src, 139, TcpControl::Syn, false)
    }

    /// Backlog entries of the usual rig.
    const CAPACITY: usize = 64;
    /// Refusal delay of the usual rig.
    const DELAY_MS: i64 = 2;

    /// A gate in front of a loopback device.
    struct Rig {
        device: Loopback,
        state: GateState<'static>,
    }

    impl Rig {
        fn new() -> Rig {
            Rig::with(CAPACITY, Duration::from_millis(DELAY_MS as u64))
        }

        fn with(capacity: usize, refusal_delay: Duration) -> Rig {
            Rig {
                device: Loopback::new(Medium::Ethernet),
                state: GateState::new(
                    std::vec![HeldSyn::EMPTY; capacity].leak(),
                    refusal_delay,
                    std::vec![ClosedConnection::EMPTY; 64].leak(),
                ),
            }
        }

        /// What the interface sees of the next frame (`None`: nothing to read), `frame`
        /// having arrived first if given.
        fn next(
            &mut self,
            frame: Option<&[u8]>,
            view: &View,
            now: Instant,
        ) -> Option<std::vec::Vec<u8>> {
            if let Some(frame) = frame {
                self.device
                    .transmit(now)
                    .unwrap()
                    .consume(frame.len(), |b| b.copy_from_slice(frame));
            }
            self.state
                .context(view, 139, now)
                .next(&mut self.device, now, Collect)
        }
    }

    /// A session slot listens.
    const OPEN: View = View {
        taker: SynTaker::SessionSlot,
        held: None,
    };
    /// Only a refusal slot listens.
    const REFUSING: View = View {
        taker: SynTaker::RefusalSlot,
        held: None,
    };
    /// Nothing listens.
    const FULL: View = View {
        taker: SynTaker::Nobody,
        held: None,
    };

    #[test]
    fn a_syn_passes_while_a_slot_listens_and_is_kept_otherwise() {
        let mut rig = Rig::new();
        assert_eq!(rig.next(Some(&syn(40000)), &OPEN, at(0)), Some(syn(40000)));
        assert_eq!(rig.next(Some(&syn(40001)), &FULL, at(0)), Some(vec![]));
        assert_eq!(rig.state.counters.get().syns_held.get(), 1);
        assert_eq!(rig.state.backlog.len(), 1);
        // Nothing listens: nothing is replayed.
        assert_eq!(rig.next(None, &FULL, at(10)), None);
        // A slot listens: the kept SYN comes first, byte for byte.
        assert_eq!(rig.next(None, &OPEN, at(20)), Some(syn(40001)));
        assert_eq!(rig.state.counters.get().syns_replayed.get(), 1);
        assert!(rig.state.backlog.is_empty());
    }

    #[test]
    fn kept_syns_are_replayed_oldest_first_before_newer_frames() {
        let mut rig = Rig::new();
        for port in [40001, 40002, 40003] {
            rig.next(Some(&syn(port)), &FULL, at(0));
        }
        // A retransmission keeps its place and replaces the copy.
        rig.next(Some(&syn(40001)), &FULL, at(900));
        assert_eq!(rig.state.backlog.len(), 3);
        let ack = segment(40009, 139, TcpControl::None, true);
        let got: std::vec::Vec<_> = (0..4)
            .map(|i| {
                rig.next((i == 0).then_some(&ack[..]), &OPEN, at(1_000))
                    .unwrap()
            })
            .collect();
        assert_eq!(got, [syn(40001), syn(40002), syn(40003), ack]);
        assert_eq!(rig.state.counters.get().syns_held.get(), 4);
    }

    #[test]
    fn kept_syns_expire_and_a_full_backlog_drops() {
        let mut rig = Rig::new();
        rig.next(Some(&syn(40000)), &FULL, at(0));
        assert_eq!(rig.next(None, &OPEN, at(3_000)), None, "expired");
        assert_eq!(rig.state.counters.get().syns_dropped.get(), 1);
        for port in 0..CAPACITY as u16 + 2 {
            rig.next(Some(&syn(41000 + port)), &FULL, at(4_000));
        }
        assert_eq!(rig.state.backlog.len(), CAPACITY);
        assert_eq!(rig.state.counters.get().syns_dropped.get(), 3);
    }

    #[test]
    fn only_bare_syns_to_the_session_port_are_judged() {
        let mut rig = Rig::new();
        for frame in [
            segment(40000, 445, TcpControl::Syn, false),
            segment(40000, 139, TcpControl::Syn, true),
            segment(40000, 139, TcpControl::None, true),
            segment(40000, 139, TcpControl::Fin, true),
            segment(40000, 139, TcpControl::Rst, false),
            std::vec![0xff; 10],
            std::vec![],
        ] {
            assert_eq!(rig.next(Some(&frame), &FULL, at(0)), Some(frame));
        }
        assert_eq!(rig.state.counters.get().syns_held.get(), 0);
    }

    #[test]
    fn frames_go_home_arp_is_told_apart_and_a_routed_segment_goes_to_its_shard() {
        struct Routed;
        impl GateView for Routed {
            fn syn_taker(&self) -> SynTaker {
                SynTaker::SessionSlot
            }
            fn holds(&self, _: Ipv4Address, _: u16) -> bool {
                false
            }
            fn route(&self, _: Ipv4Address, port: u16) -> Option<usize> {
                (port == 40001).then_some(7)
            }
            fn syn_route(&self, _: SynTaker) -> Option<usize> {
                Some(3)
            }
        }
        let mut rig = Rig::new();
        let mut judge = |frame: &[u8]| rig.state.context(&Routed, 139, at(0)).judge(frame);
        let arp = super::neighbours::tests::arp_request(CLIENT);
        assert_eq!(judge(&arp), Verdict::Arp);
        assert_eq!(
            judge(&segment(40000, 445, TcpControl::Syn, false)),
            Verdict::Home
        );
        assert_eq!(
            judge(&segment(40001, 139, TcpControl::None, true)),
            Verdict::Shard(7)
        );
        // A segment no slot has a connection for: smoltcp answers it as any unknown one.
        assert_eq!(
            judge(&segment(40002, 139, TcpControl::None, true)),
            Verdict::Home
        );
        assert_eq!(judge(&syn(40003)), Verdict::Shard(3));
        assert!(
            rig.state.neighbours.knows(CLIENT, at(0)),
            "the ARP sender is a neighbour"
        );
    }

    #[test]
    fn a_syn_from_a_peer_already_held_is_swallowed_live_or_kept() {
        let mut rig = Rig::new();
        let view = View {
            taker: SynTaker::SessionSlot,
            held: Some((CLIENT, 40000)),
        };
        assert_eq!(rig.next(Some(&syn(40000)), &view, at(0)), Some(vec![]));
        assert_eq!(rig.next(Some(&syn(40001)), &view, at(0)), Some(syn(40001)));
        // A kept copy of a peer that got in meanwhile is not replayed.
        rig.next(Some(&syn(40000)), &FULL, at(0));
        assert_eq!(rig.next(None, &view, at(1)), None);
        assert_eq!(rig.state.counters.get().duplicate_syns_swallowed.get(), 2);
        assert_eq!(rig.state.counters.get().syns_held.get(), 1);
        // The live handshake's retransmission was noted for the session service.
        assert_eq!(rig.state.syn_again.get(), Some((CLIENT, 40000)));
    }

    #[test]
    fn a_neighbours_syn_takes_a_strangers_place_in_a_full_backlog_and_goes_first() {
        let mut rig = Rig::with(2, Duration::from_millis(DELAY_MS as u64));
        let stranger = |port| {
            segment_from(
                Ipv4Address::new(192, 168, 69, 200),
                port,
                139,
                TcpControl::Syn,
                false,
                &[],
            )
        };
        let friend = Ipv4Address::new(192, 168, 69, 50);
        rig.state.neighbours.note(friend, at(0));
        // Two forged SYNs fill the backlog; a third stranger finds no room.
        assert_eq!(rig.next(Some(&stranger(1)), &FULL, at(1)), Some(vec![]));
        assert_eq!(rig.next(Some(&stranger(2)), &FULL, at(2)), Some(vec![]));
        assert_eq!(rig.next(Some(&stranger(3)), &FULL, at(3)), Some(vec![]));
        assert_eq!(rig.state.counters.get().syns_dropped.get(), 1);
        // A neighbour's SYN takes the youngest stranger's place...
        let syn = segment_from(friend, 7, 139, TcpControl::Syn, false, &[]);
        assert_eq!(rig.next(Some(&syn), &FULL, at(4)), Some(vec![]));
        assert_eq!(rig.state.counters.get().strangers_displaced.get(), 1);
        assert_eq!(rig.state.backlog.len(), 2);
        // ...and the next free session slot takes it ahead of the older stranger.
        assert_eq!(rig.next(None, &OPEN, at(5)), Some(syn));
        assert_eq!(rig.next(None, &OPEN, at(6)), Some(stranger(1)));
        // A neighbour's SYN into a backlog full of neighbours' SYNs is dropped as before.
        let mut rig = Rig::with(1, Duration::from_millis(DELAY_MS as u64));
        rig.state.neighbours.note(friend, at(0));
        let first = segment_from(friend, 8, 139, TcpControl::Syn, false, &[]);
        let second = segment_from(friend, 9, 139, TcpControl::Syn, false, &[]);
        rig.next(Some(&first), &FULL, at(1));
        rig.next(Some(&second), &FULL, at(2));
        assert_eq!(rig.state.counters.get().strangers_displaced.get(), 0);
        assert_eq!(rig.next(None, &OPEN, at(3)), Some(first));
    }

    /// The peer whose connection the tests below remember.
    const ENDED: (Ipv4Address, u16) = (CLIENT, 40000);

    #[test]
    fn a_stray_fin_of_an_ended_connection_is_acknowledged_by_the_gate_not_reset() {
        let mut rig = Rig::new();
        rig.state.closed.remember(ENDED, Duty::Acknowledge, at(0));
        let fin = segment_with(40000, 139, TcpControl::Fin, true, b"tail");
        assert_eq!(
            rig.next(Some(&fin), &OPEN, at(5)),
            Some(vec![]),
            "not for smoltcp"
        );
        // The acknowledgement leaves before the next frame is read (the loopback device
        // hands it straight back): TIME-WAIT's answer, from the numbers the FIN carried.
        let reply = rig.next(None, &OPEN, at(6)).expect("an ACK went out");
        let ack = Segment::parse(&reply).unwrap();
        assert_eq!((ack.src_addr, ack.src_port), (SERVER, 139));
        assert_eq!((ack.dst_addr, ack.dst_port), ENDED);
        assert_eq!(ack.seq_number, TcpSeqNumber(2000));
        assert_eq!(ack.ack_number, Some(TcpSeqNumber(1000 + 4 + 1)));
        assert!(!ack.syn && !ack.fin && !ack.rst && ack.payload_len == 0);
        assert_eq!(rig.state.counters.get().strays_acknowledged.get(), 1);
        assert_eq!(rig.next(None, &OPEN, at(7)), None);
    }

    #[test]
    fn other_strays_are_dropped_a_reset_ends_the_record_and_a_syn_starts_afresh() {
        let mut rig = Rig::new();
        rig.state.closed.remember(ENDED, Duty::Acknowledge, at(0));
        let ack = segment(40000, 139, TcpControl::None, true);
        assert_eq!(rig.next(Some(&ack), &OPEN, at(1)), Some(vec![]));
        assert_eq!(
            rig.next(None, &OPEN, at(1)),
            None,
            "a bare ACK gets no answer"
        );
        let rst = segment(40000, 139, TcpControl::Rst, false);
        assert_eq!(rig.next(Some(&rst), &OPEN, at(2)), Some(vec![]));
        assert_eq!(rig.state.counters.get().strays_dropped.get(), 2);
        // The reset ended the record: the peer's next segment is smoltcp's to judge.
        assert_eq!(rig.next(Some(&ack), &OPEN, at(3)), Some(ack.clone()));
        // A new connection from a remembered peer is judged as any SYN, and ends the record.
        rig.state.closed.remember(ENDED, Duty::Acknowledge, at(4));
        assert_eq!(rig.next(Some(&syn(40000)), &OPEN, at(5)), Some(syn(40000)));
        assert_eq!(rig.state.closed.duty(ENDED, at(5)), None);
        // Other peers, and other ports, never were the record's business.
        rig.state.closed.remember(ENDED, Duty::Acknowledge, at(6));
        let other = segment(40001, 139, TcpControl::Fin, true);
        assert_eq!(rig.next(Some(&other), &OPEN, at(7)), Some(other.clone()));
        let elsewhere = segment(40000, 445, TcpControl::Fin, true);
        assert_eq!(
            rig.next(Some(&elsewhere), &OPEN, at(7)),
            Some(elsewhere.clone())
        );
    }

    #[test]
    fn a_handshake_given_up_has_everything_dropped_and_the_record_ends_with_its_linger() {
        let mut rig = Rig::new();
        rig.state.closed.remember(ENDED, Duty::Drop, at(0));
        let request = segment_with(40000, 139, TcpControl::Psh, true, b"request");
        assert_eq!(rig.next(Some(&request), &OPEN, at(1)), Some(vec![]));
        assert_eq!(
            rig.next(None, &OPEN, at(1)),
            None,
            "its data is not acknowledged"
        );
        assert_eq!(rig.state.counters.get().strays_dropped.get(), 1);
        let late = at(0) + LINGER;
        assert_eq!(rig.next(Some(&request), &OPEN, late), Some(request.clone()));
    }

    #[test]
    fn a_syn_waits_the_refusal_delay_for_a_session_slot_before_a_refusal_slot_takes_it() {
        let mut rig = Rig::new();
        assert_eq!(rig.next(Some(&syn(40000)), &REFUSING, at(0)), Some(vec![]));
        assert_eq!(rig.state.backlog.refusal_due(), Some(at(DELAY_MS)));
        assert_eq!(
            rig.next(None, &REFUSING, at(DELAY_MS - 1)),
            None,
            "still waiting"
        );
        assert_eq!(rig.next(None, &REFUSING, at(DELAY_MS)), Some(syn(40000)));
        assert_eq!(rig.state.counters.get().syns_to_refusal_slots.get(), 1);
        assert_eq!(rig.state.counters.get().syns_replayed.get(), 1);
        assert_eq!(rig.state.backlog.refusal_due(), None);
    }

    #[test]
    fn a_waiting_syn_goes_to_a_session_slot_that_frees_within_the_delay() {
        let mut rig = Rig::new();
        rig.next(Some(&syn(40000)), &REFUSING, at(0));
        rig.next(Some(&syn(40001)), &REFUSING, at(1));
        assert_eq!(rig.next(None, &OPEN, at(1)), Some(syn(40000)));
        // The younger one has not waited long enough for the refusal slot.
        assert_eq!(rig.next(None, &REFUSING, at(2)), None);
        assert_eq!(rig.next(None, &REFUSING, at(3)), Some(syn(40001)));
        assert_eq!(rig.state.counters.get().syns_to_refusal_slots.get(), 1);
    }

    #[test]
    fn once_the_session_slots_are_slow_newcomers_are_refused_first_and_the_oldest_at_the_backstop()
    {
        let mut rig = Rig::new();
        rig.next(Some(&syn(40000)), &FULL, at(0));
        rig.next(Some(&syn(40001)), &FULL, at(1));
        // The oldest waited the delay: the refusal slot takes the youngest.
        assert_eq!(rig.next(None, &REFUSING, at(DELAY_MS)), Some(syn(40001)));
        // A newcomer is kept, and is the next one refused.
        assert_eq!(rig.next(Some(&syn(40002)), &FULL, at(3)), Some(vec![]));
        assert_eq!(rig.next(None, &REFUSING, at(3)), Some(syn(40002)));
        assert_eq!(rig.state.counters.get().syns_held.get(), 3);
        // The oldest is not starved: past the backstop it goes ahead of newcomers.
        let backstop = DELAY_MS * BACKSTOP_FACTOR as i64;
        rig.next(Some(&syn(40003)), &FULL, at(backstop - 1));
        assert_eq!(rig.next(None, &REFUSING, at(backstop)), Some(syn(40000)));
        assert_eq!(rig.state.counters.get().syns_to_refusal_slots.get(), 3);
        assert_eq!(rig.state.backlog.len(), 1);
    }

    #[test]
    fn a_retransmission_keeps_its_place_and_its_waiting_time() {
        let mut rig = Rig::with(CAPACITY, Duration::from_millis(500));
        rig.next(Some(&syn(40000)), &FULL, at(0));
        rig.next(Some(&syn(40001)), &FULL, at(100));
        rig.next(Some(&syn(40000)), &FULL, at(400));
        assert_eq!(rig.state.backlog.refusal_due(), Some(at(500)));
        assert_eq!(rig.next(None, &REFUSING, at(499)), None);
        // Waited since 0: the session slots are slow; the youngest (40001) is refused first.
        assert_eq!(rig.next(None, &REFUSING, at(500)), Some(syn(40001)));
        // The replayed copy of 40000 is its latest: still valid at 3.3 s, expired at 3.4 s.
        assert_eq!(rig.next(None, &OPEN, at(3_399)), Some(syn(40000)));
    }

    #[test]
    fn a_full_backlog_hands_its_oldest_to_a_refusal_slot_at_once() {
        let mut rig = Rig::with(2, Duration::from_millis(1_000));
        rig.next(Some(&syn(40000)), &FULL, at(0));
        rig.next(Some(&syn(40001)), &FULL, at(0));
        assert_eq!(rig.state.backlog.refusal_due(), Some(Instant::ZERO));
        // The oldest goes first, before the new frame is read; the new one is then kept.
        assert_eq!(
            rig.next(Some(&syn(40002)), &REFUSING, at(1)),
            Some(syn(40000))
        );
        assert_eq!(rig.next(None, &REFUSING, at(1)), Some(vec![]));
        assert_eq!(rig.state.backlog.len(), 2);
        assert_eq!(rig.state.counters.get().syns_dropped.get(), 0);
        assert_eq!(rig.state.counters.get().syns_to_refusal_slots.get(), 1);
    }

    #[test]
    fn without_a_delay_or_a_backlog_a_refusal_slot_takes_the_syn_at_once() {
        let mut rig = Rig::with(CAPACITY, Duration::ZERO);
        assert_eq!(
            rig.next(Some(&syn(40000)), &REFUSING, at(0)),
            Some(syn(40000))
        );
        assert_eq!(rig.state.counters.get().syns_held.get(), 0);
        let mut rig = Rig::with(0, Duration::from_millis(5));
        assert_eq!(
            rig.next(Some(&syn(40000)), &REFUSING, at(0)),
            Some(syn(40000))
        );
        assert_eq!(rig.state.counters.get().syns_to_refusal_slots.get(), 1);
        // With no backlog and no listener, the SYN is dropped.
        assert_eq!(rig.next(Some(&syn(40001)), &FULL, at(0)), Some(vec![]));
        assert_eq!(rig.state.counters.get().syns_dropped.get(), 1);
        assert_eq!(rig.state.backlog.refusal_due(), None);
    }

    #[test]
    fn the_ring_keeps_order_across_wraps() {
        let mut rig = Rig::with(3, Duration::from_millis(1_000));
        let mut expected = std::collections::VecDeque::new();
        let mut port = 40000;
        for round in 0..10 {
            while rig.state.backlog.len() < 3 {
                rig.next(Some(&syn(port)), &FULL, at(round));
                expected.push_back(port);
                port += 1;
            }
            let front = expected.pop_front().unwrap();
            assert_eq!(rig.next(None, &OPEN, at(round)), Some(syn(front)));
        }
        while let Some(front) = expected.pop_front() {
            assert_eq!(rig.next(None, &OPEN, at(10)), Some(syn(front)));
        }
        assert!(rig.state.backlog.is_empty());
        assert_eq!(rig.next(None, &OPEN, at(10)), None);
    }

    /// What the gate should hand the interface, step by step: a plain queue model of the
    /// backlog rules (kept in arrival order; session slots take the oldest; refusal slots
    /// nothing before the delay, then the youngest, the oldest past the backstop or when
    /// full; expired copies dropped).
    struct Model {
        capacity: usize,
        delay: i64,
        /// (port, first arrival, latest copy), oldest first.
        kept: std::collections::VecDeque<(u16, i64, i64)>,
        device: std::collections::VecDeque<u16>,
        dropped: u32,
    }

    impl Model {
        fn step(&mut self, taker: SynTaker, now: i64) -> Option<std::vec::Vec<u8>> {
            let hold_ms = SYN_HOLD.total_millis() as i64;
            let pick = match (taker, self.kept.front()) {
                (_, None) | (SynTaker::Nobody, _) => None,
                (SynTaker::SessionSlot, _) => Some(Pick::Oldest),
                (SynTaker::RefusalSlot, Some(&(_, since, _))) => {
                    if self.kept.len() == self.capacity
                        || now >= since + self.delay * BACKSTOP_FACTOR as i64
                    {
                        Some(Pick::Oldest)
                    } else if now >= since + self.delay {
                        Some(Pick::Newest)
                    } else {
                        None
                    }
                }
            };
            if let Some(pick) = pick {
                loop {
                    let next = match pick {
                        Pick::Oldest => self.kept.pop_front(),
                        Pick::Newest => self.kept.pop_back(),
                    };
                    let Some((port, _, at)) = next else { break };
                    if now < at + hold_ms {
                        return Some(syn(port));
                    }
                    self.dropped += 1;
                }
            }
            let port = self.device.pop_front()?;
            let position = self.kept.iter().position(|k| k.0 == port);
            if taker == SynTaker::SessionSlot || (taker == SynTaker::RefusalSlot && self.delay == 0)
            {
                if let Some(position) = position {
                    self.kept.remove(position);
                }
                return Some(syn(port));
            }
            if let Some(position) = position {
                self.kept[position].2 = now;
                return Some(vec![]);
            }
            if self.kept.len() < self.capacity {
                self.kept.push_back((port, now, now));
                return Some(vec![]);
            }
            if taker == SynTaker::RefusalSlot {
                return Some(syn(port));
            }
            self.dropped += 1;
            Some(vec![])
        }
    }

    fn taker() -> impl Strategy<Value = SynTaker> {
        prop_oneof![
            Just(SynTaker::Nobody),
            Just(SynTaker::RefusalSlot),
            Just(SynTaker::SessionSlot),
        ]
    }

    proptest! {
        #[test]
        fn the_gate_follows_the_backlog_rules(
            capacity in 0usize..6,
            delay in 0i64..4,
            steps in proptest::collection::vec(
                (proptest::option::of(40000u16..40008), taker(), prop_oneof![0i64..3, 0i64..1500]),
                1..200,
            ),
        ) {
            let mut rig = Rig::with(capacity, Duration::from_millis(delay as u64));
            let mut model = Model {
                capacity,
                delay,
                kept: Default::default(),
                device: Default::default(),
                dropped: 0,
            };
            let mut now = 0;
            for (arrival, taker, dt) in steps {
                now += dt;
                let view = View { taker, held: None };
                if let Some(port) = arrival {
                    model.device.push_back(port);
                }
                let got = rig.next(arrival.map(syn).as_deref(), &view, at(now));
                prop_assert_eq!(got, model.step(taker, now));
                prop_assert_eq!(rig.state.backlog.len(), model.kept.len());
                prop_assert!(rig.state.backlog.len() <= capacity);
                prop_assert_eq!(rig.state.counters.get().syns_dropped.get(), model.dropped);
            }
        }
    }

    #[test]
    fn resets_sent_from_the_session_port_are_counted() {
        let mut rig = Rig::new();
        let mut gated = Watched::new(&mut rig.device, &rig.state, 139);
        for frame in [
            segment(139, 40000, TcpControl::Rst, true),
            segment(139, 40000, TcpControl::Fin, true),
            segment(445, 40000, TcpControl::Rst, true),
        ] {
            gated
                .transmit(Instant::ZERO)
                .unwrap()
                .consume(frame.len(), |b| b.copy_from_slice(&frame));
        }
        assert_eq!(rig.state.counters.get().resets_sent.get(), 1);
    }
}
