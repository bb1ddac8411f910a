//! The record of recently closed connections: the part of TIME-WAIT the gate keeps for
//! connections whose slot has already moved on.
//!
//! smoltcp answers a segment that matches no connection with a reset, and a listening socket
//! answers an ACK the same way. Under loss and reordering, segments of a connection that has
//! just ended (a late ACK, a retransmitted FIN or data) keep arriving after the slot closed
//! and listens again; each would draw a reset from the session port. The record remembers,
//! for [`LINGER`], the peers of connections that ended, and the gate answers their stray
//! segments the way TIME-WAIT would ([`Duty`]) instead of passing them to smoltcp. A new SYN
//! from the same peer ends the record of the old connection.
//!
//! The record is a small open-addressing table over storage the caller provides: a lookup
//! looks at no more than [`PROBES`] entries, whatever the size. When those are all live, the
//! one closest to its end is replaced (and counted): a bounded record forgets its oldest.

use smoltcp::time::{Duration, Instant};
use smoltcp::wire::Ipv4Address;

use super::segment::AckReply;

/// How long a closed connection is remembered, and again after each segment it still sends
/// that calls for an answer (TIME-WAIT restarts its timer on a retransmitted FIN): Linux's
/// TIME-WAIT, 60 s, not smoltcp's 10 s. A peer that lost our answers backs its
/// retransmissions off to 8, 16, 32 s apart, and one that arrives after the record forgot
/// would draw a reset.
pub const LINGER: Duration = Duration::from_secs(60);
/// Entries looked at per peer.
pub const PROBES: usize = 8;
/// Acknowledgements queued between two reads of the device (more are dropped: the peer
/// retransmits).
pub const MAX_REPLIES: usize = 4;

/// What the gate does with stray segments of a remembered connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Duty {
    /// The connection ended after a handshake: a segment with a FIN or data is acknowledged
    /// (TIME-WAIT's duty, and FIN-WAIT-2's once the slot handed it over), anything else
    /// dropped.
    Acknowledge,
    /// The handshake was given up without a word: everything is dropped (acknowledging a
    /// client's data would tell it its request arrived).
    Drop,
}

/// One entry of the record. Fill the storage with [`ClosedConnection::EMPTY`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClosedConnection {
    peer: Ipv4Address,
    /// 0: the entry is unused (no TCP peer sends from port 0).
    port: u16,
    duty: Duty,
    until: Instant,
}

impl ClosedConnection {
    /// An unused entry (usable in a `static`).
    pub const EMPTY: ClosedConnection = ClosedConnection {
        peer: Ipv4Address::new(0, 0, 0, 0),
        port: 0,
        duty: Duty::Drop,
        until: Instant::ZERO,
    };

    fn is(&self, peer: (Ipv4Address, u16)) -> bool {
        self.port != 0 && (self.peer, self.port) == peer
    }

    fn live(&self, now: Instant) -> bool {
        self.port != 0 && now < self.until
    }
}

impl Default for ClosedConnection {
    fn default() -> Self {
        ClosedConnection::EMPTY
    }
}

/// The record; see the module documentation.
#[derive(Debug)]
pub struct RecentlyClosed<'a> {
    table: &'a mut [ClosedConnection],
    replies: heapless::Deque<AckReply, MAX_REPLIES>,
}

/// What [`RecentlyClosed::remember`] had to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Remembered {
    /// Kept.
    Kept,
    /// Kept in place of a connection remembered less than [`LINGER`] ago.
    Displaced,
    /// Not kept: the record has no storage.
    NoRoom,
}

impl<'a> RecentlyClosed<'a> {
    /// A record over `table` (empty: nothing is remembered, and smoltcp answers stray
    /// segments as it always does).
    pub fn new(table: &'a mut [ClosedConnection]) -> RecentlyClosed<'a> {
        RecentlyClosed {
            table,
            replies: heapless::Deque::new(),
        }
    }

    /// Entries it can hold.
    pub fn capacity(&self) -> usize {
        self.table.len()
    }

    /// Whether it can remember anything at all.
    pub fn is_enabled(&self) -> bool {
        !self.table.is_empty()
    }

    /// Entries looked at for `peer`, in order.
    fn probes(&self, peer: (Ipv4Address, u16)) -> impl Iterator<Item = usize> + use<> {
        let len = self.table.len();
        let start = if len == 0 { 0 } else { hash(peer) % len };
        (0..PROBES.min(len)).map(move |n| (start + n) % len)
    }

    /// Remembers that the connection from `peer` ended at `now`, with `duty` for its strays
    /// (a connection remembered already gets the new duty and a new [`LINGER`]).
    pub fn remember(&mut self, peer: (Ipv4Address, u16), duty: Duty, now: Instant) -> Remembered {
        let mut chosen: Option<usize> = None;
        for index in self.probes(peer) {
            let entry = &self.table[index];
            if entry.is(peer) || !entry.live(now) {
                chosen = Some(index);
                break;
            }
            // All live so far: the one closest to its end gives way.
            if chosen.is_none_or(|c| entry.until < self.table[c].until) {
                chosen = Some(index);
            }
        }
        let Some(index) = chosen else {
            return Remembered::NoRoom;
        };
        let displaced = self.table[index].live(now) && !self.table[index].is(peer);
        self.table[index] = ClosedConnection {
            peer: peer.0,
            port: peer.1,
            duty,
            until: now + LINGER,
        };
        if displaced {
            Remembered::Displaced
        } else {
            Remembered::Kept
        }
    }

    /// The duty for a segment from `peer` at `now`, if its connection is remembered.
    pub fn duty(&self, peer: (Ipv4Address, u16), now: Instant) -> Option<Duty> {
        if self.table.is_empty() {
            return None;
        }
        self.probes(peer)
            .map(|index| &self.table[index])
            .find(|entry| entry.is(peer) && entry.live(now))
            .map(|entry| entry.duty)
    }

    /// Remembers the connection from `peer` for another [`LINGER`] from `now`, if it is
    /// remembered (it still sends: a retransmission of its FIN or data).
    pub fn renew(&mut self, peer: (Ipv4Address, u16), now: Instant) {
        for index in self.probes(peer) {
            let entry = &mut self.table[index];
            if entry.is(peer) && entry.live(now) {
                entry.until = now + LINGER;
            }
        }
    }

    /// Forgets the connection from `peer` (it reset, or opens a new one).
    pub fn forget(&mut self, peer: (Ipv4Address, u16)) {
        for index in self.probes(peer) {
            if self.table[index].is(peer) {
                self.table[index] = ClosedConnection::EMPTY;
            }
        }
    }

    /// Queues an acknowledgement to send; `false`: the queue is full, and it is dropped.
    pub fn queue_reply(&mut self, reply: AckReply) -> bool {
        self.replies.push_back(reply).is_ok()
    }

    /// The next acknowledgement to send, if any.
    pub fn next_reply(&mut self) -> Option<AckReply> {
        self.replies.pop_front()
    }

    /// Whether acknowledgements wait to be sent.
    pub fn has_replies(&self) -> bool {
        !self.replies.is_empty()
    }
}

/// Spreads peers over the table: FNV-1a over address and port, then MurmurHash3's finaliser
/// (consecutive ports from one client would otherwise land in runs).
fn hash((address, port): (Ipv4Address, u16)) -> usize {
    let mut hash: u32 = 0x811c_9dc5;
    for byte in address.octets().into_iter().chain(port.to_be_bytes()) {
        hash = (hash ^ u32::from(byte)).wrapping_mul(0x0100_0193);
    }
    hash ^= hash >> 16;
    hash = hash.wrapping_mul(0x85eb_ca6b);
    hash ^= hash >> 13;
    hash = hash.wrapping_mul(0xc2b2_ae35);
    hash ^= hash >> 16;
    hash as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    const PEER: (Ipv4Address, u16) = (Ipv4Address::new(192, 168, 69, 100), 40000);

    fn at(ms: i64) -> Instant {
        Instant::from_millis(ms)
    }

    fn record(capacity: usize) -> RecentlyClosed<'static> {
        RecentlyClosed::new(std::vec![ClosedConnection::EMPTY; capacity].leak())
    }

    #[test]
    fn a_remembered_peer_has_its_duty_until_the_linger_ends() {
        let mut closed = record(16);
        assert_eq!(closed.duty(PEER, at(0)), None);
        assert_eq!(
            closed.remember(PEER, Duty::Acknowledge, at(0)),
            Remembered::Kept
        );
        assert_eq!(closed.duty(PEER, at(1)), Some(Duty::Acknowledge));
        assert_eq!(closed.duty((PEER.0, PEER.1 + 1), at(1)), None);
        let end = at(0) + LINGER;
        assert_eq!(
            closed.duty(PEER, end - Duration::from_millis(1)),
            Some(Duty::Acknowledge)
        );
        assert_eq!(closed.duty(PEER, end), None);
    }

    #[test]
    fn remembering_again_renews_and_forgetting_ends() {
        let mut closed = record(16);
        closed.remember(PEER, Duty::Drop, at(0));
        assert_eq!(
            closed.remember(PEER, Duty::Acknowledge, at(5_000)),
            Remembered::Kept
        );
        assert_eq!(closed.duty(PEER, at(12_000)), Some(Duty::Acknowledge));
        closed.forget(PEER);
        assert_eq!(closed.duty(PEER, at(12_000)), None);
    }

    #[test]
    fn a_full_neighbourhood_gives_up_the_entry_closest_to_its_end() {
        // One probe window covers the whole table: the 9th peer displaces the oldest.
        let mut closed = record(PROBES);
        let peer = |n: u16| (PEER.0, 40000 + n);
        for n in 0..PROBES as u16 {
            assert_eq!(
                closed.remember(peer(n), Duty::Acknowledge, at(i64::from(n))),
                Remembered::Kept
            );
        }
        assert_eq!(
            closed.remember(peer(100), Duty::Acknowledge, at(100)),
            Remembered::Displaced
        );
        assert_eq!(closed.duty(peer(0), at(101)), None, "the oldest went");
        for n in 1..PROBES as u16 {
            assert!(closed.duty(peer(n), at(101)).is_some());
        }
        assert!(closed.duty(peer(100), at(101)).is_some());
        // An expired entry is reused without displacing anyone.
        let later = at(0) + LINGER + Duration::from_millis(50);
        assert_eq!(
            closed.remember(peer(200), Duty::Drop, later),
            Remembered::Kept
        );
    }

    #[test]
    fn without_storage_nothing_is_remembered() {
        let mut closed = record(0);
        assert!(!closed.is_enabled());
        assert_eq!(
            closed.remember(PEER, Duty::Acknowledge, at(0)),
            Remembered::NoRoom
        );
        assert_eq!(closed.duty(PEER, at(0)), None);
        closed.forget(PEER);
    }

    #[test]
    fn a_large_record_keeps_many_peers_apart() {
        // A quarter full (four entries per slot, a slot turning over every 10 s), every peer
        // finds room within its probes.
        let mut closed = record(1024);
        let mut displaced = 0;
        for n in 0..256u16 {
            let peer = (
                Ipv4Address::new(192, 168, 69, (n % 200) as u8 + 2),
                30000 + n,
            );
            if closed.remember(peer, Duty::Acknowledge, at(0)) == Remembered::Displaced {
                displaced += 1;
            }
        }
        assert_eq!(displaced, 0);
        for n in 0..256u16 {
            let peer = (
                Ipv4Address::new(192, 168, 69, (n % 200) as u8 + 2),
                30000 + n,
            );
            assert_eq!(closed.duty(peer, at(1)), Some(Duty::Acknowledge));
        }
    }

    #[test]
    fn replies_queue_up_to_the_bound() {
        let mut closed = record(4);
        let frame =
            crate::gate::tests::segment_with(40000, 139, smoltcp::wire::TcpControl::Fin, true, &[]);
        let reply = crate::gate::segment::Segment::parse(&frame)
            .unwrap()
            .time_wait_ack()
            .unwrap();
        for _ in 0..MAX_REPLIES {
            assert!(closed.queue_reply(reply));
        }
        assert!(!closed.queue_reply(reply));
        assert!(closed.has_replies());
        assert_eq!(closed.next_reply(), Some(reply));
    }
}
