//! The session slots' sockets, in shards: small smoltcp socket sets the node polls one at a
//! time, so the work per frame follows the connections in use, not the slots configured.
//!
//! smoltcp walks the whole socket set it is given for every received segment (to find the
//! socket that accepts it), for every egress pass and for `poll_at`. With one set of 16 384
//! sockets that walk is the node's cost, whatever the load. Split into sets of
//! [`SHARD_SLOTS`], a received segment goes to the one shard that holds its connection (the
//! session service's [routes](super::routes)) or, for a new SYN, to a shard with a listening
//! slot; only shards that received a segment, were written to, or have a timer due are
//! serviced and polled for egress. Idle shards cost nothing but a glance at their due time.
//!
//! Session slots fill shards from the first; refusal slots have shards of their own, after
//! them. A slot's socket stays in its shard for the life of the node.

use smoltcp::iface::{SocketHandle, SocketSet};
use smoltcp::socket::AnySocket;
use smoltcp::time::Instant;

use super::slot::Role;

/// Slots per shard: a received segment walks at most this many sockets.
pub const SHARD_SLOTS: usize = 32;

/// Shards a ledger of `sessions` session slots and `refusals` refusal slots needs.
pub const fn shards_for(sessions: usize, refusals: usize) -> usize {
    sessions.div_ceil(SHARD_SLOTS) + refusals.div_ceil(SHARD_SLOTS)
}

/// Where a slot's socket lives: its shard, and its handle in that shard's set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SocketAt {
    pub(super) shard: u16,
    pub(super) handle: SocketHandle,
}

impl SocketAt {
    /// The socket of `handle` in shard `shard`.
    pub(crate) fn new(shard: usize, handle: SocketHandle) -> SocketAt {
        SocketAt {
            shard: shard as u16,
            handle,
        }
    }
}

/// What one shard's slots amount to, counted when the session service last refreshed it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Tally {
    /// Slots whose socket listens (a SYN routed here finds one).
    pub listening: u16,
    /// Slots listening without a half-open handshake.
    pub free: u16,
    /// Session slots with a connection (awaiting its request or established).
    pub busy: u16,
    /// Of those, awaiting their request.
    pub pending: u16,
    /// Refusal slots with a connection.
    pub refusing: u16,
    /// Slots draining or closing.
    pub closing: u16,
    /// Slots on their way to a waiting SYN: free, or giving way.
    pub coming: u16,
    /// Slots that are anything but free or idly listening.
    pub active: u16,
    /// Established sessions.
    pub established: u16,
    /// The earliest a half-open handshake here may give way to a waiting SYN.
    pub unanswered_at: Option<Instant>,
    /// The earliest an idle connection here may give way to a waiting SYN.
    pub idle_at: Option<Instant>,
    /// The earliest deadline of a slot here.
    pub slots_due: Option<Instant>,
}

impl Tally {
    /// Takes `other`'s counts away (its times are left alone).
    pub(crate) fn subtract(&mut self, other: &Tally) {
        self.listening -= other.listening;
        self.free -= other.free;
        self.busy -= other.busy;
        self.pending -= other.pending;
        self.refusing -= other.refusing;
        self.closing -= other.closing;
        self.coming -= other.coming;
        self.active -= other.active;
        self.established -= other.established;
    }

    /// Adds `other`'s counts (its times are left alone).
    pub(crate) fn add(&mut self, other: &Tally) {
        self.listening += other.listening;
        self.free += other.free;
        self.busy += other.busy;
        self.pending += other.pending;
        self.refusing += other.refusing;
        self.closing += other.closing;
        self.coming += other.coming;
        self.active += other.active;
        self.established += other.established;
    }
}

/// The earlier of two optional instants.
pub(crate) fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, None) => a,
        (None, b) => b,
    }
}

/// One shard: its socket set, its slots and what they amount to. Fill the storage with
/// [`Shard::EMPTY`]; the node builds each one.
pub struct Shard<'a> {
    set: Option<SocketSet<'a>>,
    /// The ledger index of its first slot.
    pub(crate) first: usize,
    /// How many slots it has.
    pub(crate) len: usize,
    /// The role of its slots.
    pub(crate) role: Role,
    /// Its slots, as of the last refresh.
    pub(crate) tally: Tally,
    /// When it next needs a poll: its sockets' timers (as of its last egress) and its slots'
    /// deadlines.
    pub(crate) due: Option<Instant>,
    /// Whether it needs servicing and an egress pass in this poll (a segment came in, a
    /// socket was written to, a timer fell due).
    pub(crate) dirty: bool,
    /// Whether its sockets were touched since the session service last refreshed it.
    pub(crate) stale: bool,
}

impl<'a> Shard<'a> {
    /// An unbuilt shard (usable in a `static`).
    pub const EMPTY: Shard<'a> = Shard {
        set: None,
        first: 0,
        len: 0,
        role: Role::Session,
        tally: Tally {
            listening: 0,
            free: 0,
            busy: 0,
            pending: 0,
            refusing: 0,
            closing: 0,
            coming: 0,
            active: 0,
            established: 0,
            unanswered_at: None,
            idle_at: None,
            slots_due: None,
        },
        due: None,
        dirty: false,
        stale: false,
    };

    /// Its slots' ledger indices.
    pub(crate) fn slots(&self) -> core::ops::Range<usize> {
        self.first..self.first + self.len
    }
}

impl Default for Shard<'_> {
    fn default() -> Self {
        Shard::EMPTY
    }
}

/// How often ARP frames wake the shards with connections, at most.
pub const ARP_WAKE_EVERY: smoltcp::time::Duration = smoltcp::time::Duration::from_millis(5);

/// Shards a work list names before it gives up and says "look at all of them".
const LISTED: usize = 64;

/// The shards that need one kind of work: listed while few, else all of them.
#[derive(Debug, Clone, Default)]
pub(crate) struct WorkList {
    listed: heapless::Vec<u16, LISTED>,
    overflowed: bool,
}

impl WorkList {
    fn add(&mut self, index: usize) {
        if !self.overflowed && self.listed.push(index as u16).is_err() {
            self.overflowed = true;
        }
    }

    /// The list as it stands, out of `count` shards: read its entries with
    /// [`WorkList::at`] (entries added later are not among them; the list only grows until
    /// it is taken or cleared).
    pub(crate) fn frozen(&self, count: usize) -> Listed {
        let all = self.overflowed;
        Listed {
            all,
            len: if all { count } else { self.listed.len() },
        }
    }

    /// Entry `n` of the list as `listed` froze it.
    pub(crate) fn at(&self, listed: Listed, n: usize) -> Option<usize> {
        match listed.all {
            true => Some(n),
            false => self.listed.get(n).map(|&i| usize::from(i)),
        }
    }

    /// The shards listed, out of `count` (all of them once the list overflowed): the list
    /// frozen and read entry by entry, as the service reads it.
    #[cfg(test)]
    pub(crate) fn shards(&self, count: usize) -> impl Iterator<Item = usize> + '_ {
        let listed = self.frozen(count);
        (0..listed.len).filter_map(move |n| self.at(listed, n))
    }
}

/// A work list as it stood when frozen ([`WorkList::frozen`]): all the shards, or the
/// first `len` entries of the list.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Listed {
    all: bool,
    /// Entries.
    pub(crate) len: usize,
}

/// All the shards of a node, with the lists of those that need work.
pub struct Shards<'a> {
    list: &'a mut [Shard<'a>],
    /// Shards whose sockets were touched since the last refresh.
    stale: WorkList,
    /// Shards to service and poll for egress in this poll.
    dirty: WorkList,
    /// No shard is due before this (a lower bound: the exact time is found when it comes).
    next_due: Option<Instant>,
    /// When an ARP frame last woke the busy shards.
    arp_woken: Option<Instant>,
}

impl<'a> Shards<'a> {
    /// Shards on `list`, built with [`Shards::build`].
    pub(crate) fn new(list: &'a mut [Shard<'a>]) -> Shards<'a> {
        Shards {
            list,
            stale: WorkList::default(),
            dirty: WorkList::default(),
            next_due: None,
            arp_woken: None,
        }
    }

    /// Makes shard `index` a set on `set` for `len` slots of `role` from ledger entry `first`.
    pub(crate) fn build(
        &mut self,
        index: usize,
        set: SocketSet<'a>,
        first: usize,
        len: usize,
        role: Role,
    ) {
        self.list[index] = Shard {
            set: Some(set),
            first,
            len,
            role,
            ..Shard::EMPTY
        };
        self.touch(index);
    }

    /// How many shards there are.
    pub fn len(&self) -> usize {
        self.list.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// Shard `index`.
    pub(crate) fn shard(&self, index: usize) -> &Shard<'a> {
        &self.list[index]
    }

    /// Every shard.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &Shard<'a>> + '_ {
        self.list.iter()
    }

    /// Marks shard `index` for a refresh, servicing and egress.
    pub(crate) fn touch(&mut self, index: usize) {
        let shard = &mut self.list[index];
        if !shard.stale {
            shard.stale = true;
            self.stale.add(index);
        }
        if !shard.dirty {
            shard.dirty = true;
            self.dirty.add(index);
        }
    }

    /// Takes the list of shards touched since the last refresh.
    pub(crate) fn take_stale(&mut self) -> WorkList {
        core::mem::take(&mut self.stale)
    }

    /// Notes that shard `index` was refreshed.
    pub(crate) fn refreshed(&mut self, index: usize) {
        self.list[index].stale = false;
    }

    /// The list of shards to service and poll for egress in this poll.
    #[cfg(test)]
    pub(crate) fn dirty(&self) -> &WorkList {
        &self.dirty
    }

    /// The list of shards to service and poll for egress in this poll, as it stands now
    /// (shards marked later are not on it; the list only grows until [`Shards::clear_dirty`]).
    /// Read its entries with [`Shards::listed_dirty`].
    pub(crate) fn dirty_now(&self) -> Listed {
        self.dirty.frozen(self.list.len())
    }

    /// Entry `n` of `listed`: the shard, if it still needs servicing and egress.
    pub(crate) fn listed_dirty(&self, listed: Listed, n: usize) -> Option<usize> {
        let index = self.dirty.at(listed, n)?;
        self.list.get(index).filter(|s| s.dirty).map(|_| index)
    }

    /// Notes that shard `index` was polled for egress and is next due at `due`.
    pub(crate) fn settled(&mut self, index: usize, due: Option<Instant>) {
        let shard = &mut self.list[index];
        shard.dirty = false;
        shard.due = due;
        self.next_due = earliest(self.next_due, due);
    }

    /// Empties the list of shards to service once each was settled.
    pub(crate) fn clear_dirty(&mut self) {
        let list = core::mem::take(&mut self.dirty);
        let listed = list.frozen(self.list.len());
        for n in 0..listed.len {
            // A shard touched again after its egress (none is, but to be safe) stays listed.
            if let Some(index) = list.at(listed, n)
                && self.list.get(index).is_some_and(|s| s.dirty)
            {
                self.dirty.add(index);
            }
        }
    }

    /// The socket set of shard `index` (marked for a refresh, servicing and egress).
    pub(crate) fn set_mut(&mut self, index: usize) -> &mut SocketSet<'a> {
        self.touch(index);
        self.set_quiet(index)
    }

    /// The socket set of shard `index`, not marked (for the session service's own passes).
    pub(crate) fn set_quiet(&mut self, index: usize) -> &mut SocketSet<'a> {
        match &mut self.list[index].set {
            Some(set) => set,
            None => unreachable!("the node builds every shard"),
        }
    }

    /// The socket set of shard `index`.
    pub(crate) fn set(&self, index: usize) -> &SocketSet<'a> {
        match &self.list[index].set {
            Some(set) => set,
            None => unreachable!("the node builds every shard"),
        }
    }

    /// The socket at `at` (its shard is marked for a refresh, servicing and egress).
    pub fn get_mut<T: AnySocket<'a>>(&mut self, at: SocketAt) -> &mut T {
        self.set_mut(usize::from(at.shard)).get_mut::<T>(at.handle)
    }

    /// The socket at `at`, its shard not marked.
    pub(crate) fn get_quiet<T: AnySocket<'a>>(&mut self, at: SocketAt) -> &mut T {
        self.set_quiet(usize::from(at.shard))
            .get_mut::<T>(at.handle)
    }

    /// The socket at `at`.
    pub fn get<T: AnySocket<'a>>(&self, at: SocketAt) -> &T {
        self.set(usize::from(at.shard)).get::<T>(at.handle)
    }

    /// Gives the socket at `at` fresh interface metadata. smoltcp silences a socket for a
    /// second after it found no neighbour for its peer (a spoofed source never answers ARP),
    /// and `listen` does not undo that: the next client of a slot given up for such a peer
    /// would wait a second for its SYN-ACK. Taking the socket out of its set and putting it
    /// back starts its metadata afresh; it lands in the entry it left, the first free one
    /// (a shard is filled from the start and nothing else is ever removed).
    pub(crate) fn unsilence(&mut self, at: SocketAt) {
        let set = self.set_mut(usize::from(at.shard));
        let socket = set.remove(at.handle);
        let again = set.add(socket);
        debug_assert_eq!(again, at.handle, "the socket went back to its own entry");
    }

    /// Sets the tally of shard `index`, returning the one it had.
    pub(crate) fn set_tally(&mut self, index: usize, tally: Tally) -> Tally {
        core::mem::replace(&mut self.list[index].tally, tally)
    }

    /// Marks every shard with a connection for servicing and egress (a neighbour may have
    /// answered ARP for a socket that waits to send), at most once per [`ARP_WAKE_EVERY`]:
    /// a flood of ARP frames costs a pass over the busy shards that often, not per frame (a
    /// socket that waits for a neighbour tries again by itself after smoltcp's 1 s silence).
    pub(crate) fn mark_active(&mut self, now: Instant) {
        if self
            .arp_woken
            .is_some_and(|at| now >= at && now < at + ARP_WAKE_EVERY)
        {
            return;
        }
        self.arp_woken = Some(now);
        for index in 0..self.list.len() {
            if self.list[index].tally.active > 0 {
                self.touch(index);
            }
        }
    }

    /// The first shard of `role` with a listening slot.
    pub(crate) fn listening(&self, role: Role) -> Option<usize> {
        self.list
            .iter()
            .position(|s| s.role == role && s.tally.listening > 0)
    }

    /// Marks the shards whose due time has come, and returns whether any shard needs work.
    /// Looks at them all only once the earliest due time has come.
    pub(crate) fn mark_due(&mut self, now: Instant) -> bool {
        if self.next_due.is_some_and(|due| due <= now) {
            let mut next = None;
            for index in 0..self.list.len() {
                match self.list[index].due {
                    Some(due) if due <= now => {
                        self.list[index].due = None;
                        self.touch(index);
                    }
                    due => next = earliest(next, due),
                }
            }
            self.next_due = next;
        }
        !self.dirty.listed.is_empty() || self.dirty.overflowed
    }

    /// The earliest due time of any shard (or a little earlier).
    pub(crate) fn due(&self) -> Option<Instant> {
        self.next_due
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec::Vec;

    fn shards(count: usize) -> Shards<'static> {
        let list: &'static mut [Shard<'static>] =
            Vec::leak((0..count).map(|_| Shard::EMPTY).collect());
        let mut shards = Shards::new(list);
        for index in 0..count {
            shards.build(
                index,
                SocketSet::new(Vec::new()),
                index * 2,
                2,
                Role::Session,
            );
        }
        shards
    }

    fn at(ms: i64) -> Instant {
        Instant::from_millis(ms)
    }

    /// Settles every dirty shard with no timer, as an egress pass would.
    fn settle_all(shards: &mut Shards<'_>) {
        let dirty = shards.dirty().clone();
        for index in dirty.shards(shards.len()) {
            shards.settled(index, None);
        }
        shards.clear_dirty();
    }

    #[test]
    fn a_work_list_names_few_shards_and_all_of_them_once_it_overflows() {
        let mut list = WorkList::default();
        for index in [3, 7] {
            list.add(index);
        }
        assert_eq!(list.shards(1000).collect::<Vec<_>>(), [3, 7]);
        for index in 0..LISTED {
            list.add(index);
        }
        assert_eq!(list.shards(1000).count(), 1000);
    }

    #[test]
    fn touched_shards_are_listed_once_for_refresh_and_service() {
        let mut shards = shards(100);
        // Built shards start stale and dirty: the first refresh arms their listeners.
        assert_eq!(shards.take_stale().shards(100).count(), 100);
        for index in 0..100 {
            shards.refreshed(index);
        }
        settle_all(&mut shards);
        assert!(!shards.mark_due(at(0)), "nothing to do");
        shards.touch(5);
        shards.touch(5);
        shards.touch(70);
        assert_eq!(shards.take_stale().shards(100).collect::<Vec<_>>(), [5, 70]);
        assert_eq!(shards.dirty().shards(100).collect::<Vec<_>>(), [5, 70]);
        assert!(shards.mark_due(at(0)));
    }

    /// The shards `listed` names that still need servicing.
    fn listed(shards: &Shards<'_>, listed: Listed) -> Vec<usize> {
        (0..listed.len)
            .filter_map(|n| shards.listed_dirty(listed, n))
            .collect()
    }

    #[test]
    fn the_dirty_list_as_taken_leaves_out_later_marks_and_settled_shards() {
        let mut shards = shards(100);
        for index in 0..100 {
            shards.refreshed(index);
        }
        settle_all(&mut shards);
        shards.touch(5);
        shards.touch(70);
        shards.touch(9);
        let taken = shards.dirty_now();
        shards.touch(40);
        shards.settled(70, None);
        assert_eq!(
            listed(&shards, taken),
            [5, 9],
            "40 came later, 70 is settled"
        );
        assert_eq!(listed(&shards, shards.dirty_now()), [5, 9, 40]);
        // An overflowed list names every shard still dirty.
        for index in 0..LISTED {
            shards.touch(index);
        }
        let all = shards.dirty_now();
        assert_eq!(all.len, 100);
        let dirty: Vec<usize> = (0..LISTED).collect();
        assert_eq!(
            listed(&shards, all),
            dirty,
            "5, 9 and 40 among them; 70 is settled"
        );
    }

    #[test]
    fn a_shard_falls_due_at_its_time_and_the_next_due_time_follows() {
        let mut shards = shards(10);
        for index in 0..10 {
            shards.refreshed(index);
        }
        settle_all(&mut shards);
        let _ = shards.take_stale();
        shards.touch(2);
        shards.touch(6);
        shards.settled(2, Some(at(30)));
        shards.settled(6, Some(at(10)));
        shards.clear_dirty();
        assert_eq!(shards.due(), Some(at(10)));
        assert!(!shards.mark_due(at(9)));
        assert!(shards.mark_due(at(10)));
        assert_eq!(shards.dirty().shards(10).collect::<Vec<_>>(), [6]);
        assert_eq!(shards.due(), Some(at(30)), "shard 2 is next");
        shards.settled(6, None);
        shards.clear_dirty();
        assert!(shards.mark_due(at(31)));
        assert_eq!(shards.dirty().shards(10).collect::<Vec<_>>(), [2]);
    }

    #[test]
    fn arp_frames_wake_the_busy_shards_at_most_every_few_milliseconds() {
        let mut shards = shards(4);
        for index in 0..4 {
            shards.refreshed(index);
        }
        settle_all(&mut shards);
        let _ = shards.take_stale();
        shards.set_tally(
            1,
            Tally {
                active: 1,
                ..Tally::default()
            },
        );
        shards.mark_active(at(100));
        assert_eq!(shards.dirty().shards(4).collect::<Vec<_>>(), [1]);
        settle_all(&mut shards);
        shards.mark_active(at(102));
        assert!(!shards.mark_due(at(102)), "too soon after the last");
        shards.mark_active(at(105));
        assert!(shards.mark_due(at(105)));
    }
}
