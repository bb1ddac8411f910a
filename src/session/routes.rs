//! The routes of the session port: which ledger slot holds the connection from a peer.
//!
//! The gate hands each segment to the one socket shard that can own it, so it needs to find
//! a connection's slot from the segment's source without walking the ledger. Every slot whose
//! socket has a remote endpoint (half-open, connected or closing) has a route; the session
//! service adds and removes them as it sees the sockets change.
//!
//! An open-addressing table with linear probing over storage the caller provides, at least
//! one entry more than the ledger has slots (twice as many keeps probes short): a route is
//! never dropped for lack of room, since a segment of a live connection without a route would
//! reach no socket and draw a reset.

use smoltcp::wire::Ipv4Address;

/// One entry of the table. Fill the storage with [`Route::EMPTY`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    peer: Ipv4Address,
    /// 0: the entry is unused (no TCP peer sends from port 0).
    port: u16,
    slot: u16,
}

impl Route {
    /// An unused entry (usable in a `static`).
    pub const EMPTY: Route = Route {
        peer: Ipv4Address::new(0, 0, 0, 0),
        port: 0,
        slot: 0,
    };

    fn is_used(&self) -> bool {
        self.port != 0
    }
}

impl Default for Route {
    fn default() -> Self {
        Route::EMPTY
    }
}

/// Route entries a ledger of `slots` slots is given: twice as many (half the table stays
/// free, so a lookup ends within a few entries).
pub const fn routes_for(slots: usize) -> usize {
    2 * slots + 1
}

/// The table; see the module documentation.
#[derive(Debug)]
pub struct Routes<'a> {
    table: &'a mut [Route],
}

impl<'a> Routes<'a> {
    /// A table on `table` (all of it is cleared).
    pub fn new(table: &'a mut [Route]) -> Routes<'a> {
        table.fill(Route::EMPTY);
        Routes { table }
    }

    /// Where the probe for `peer` starts: its hash scaled to the table (a multiply, not a
    /// division: below the table's length, and 0 for an empty table).
    fn home(&self, peer: (Ipv4Address, u16)) -> usize {
        let key = (u64::from(u32::from_be_bytes(peer.0.octets())) << 16) | u64::from(peer.1);
        let mixed = key.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        (((mixed >> 32) * self.table.len() as u64) >> 32) as usize
    }

    /// The entry after `at`, cyclically (`at` is below the table's length).
    fn next(&self, at: usize) -> usize {
        if at + 1 == self.table.len() {
            0
        } else {
            at + 1
        }
    }

    fn position(&self, peer: (Ipv4Address, u16)) -> Option<usize> {
        if self.table.is_empty() {
            return None;
        }
        let mut at = self.home(peer);
        for _ in 0..self.table.len() {
            let entry = &self.table[at];
            if !entry.is_used() {
                return None;
            }
            if (entry.peer, entry.port) == peer {
                return Some(at);
            }
            at = self.next(at);
        }
        None
    }

    /// The slot holding the connection from `peer`, if any.
    pub fn get(&self, peer: (Ipv4Address, u16)) -> Option<usize> {
        self.position(peer)
            .map(|at| usize::from(self.table[at].slot))
    }

    /// Routes `peer` to `slot` (replacing its route to another slot, if any). `false`: the
    /// table is full (it has fewer entries than the ledger has slots), or `peer` has port 0.
    pub fn insert(&mut self, peer: (Ipv4Address, u16), slot: usize) -> bool {
        if peer.1 == 0 || self.table.is_empty() {
            return false;
        }
        let Ok(slot) = u16::try_from(slot) else {
            return false;
        };
        let mut at = self.home(peer);
        for _ in 0..self.table.len() {
            let entry = &mut self.table[at];
            if !entry.is_used() || (entry.peer, entry.port) == peer {
                *entry = Route {
                    peer: peer.0,
                    port: peer.1,
                    slot,
                };
                return true;
            }
            at = self.next(at);
        }
        false
    }

    /// Removes the route of `peer` if it leads to `slot` (a newer connection from the same
    /// peer on another slot keeps its route).
    pub fn remove(&mut self, peer: (Ipv4Address, u16), slot: usize) {
        let Some(mut hole) = self.position(peer) else {
            return;
        };
        if usize::from(self.table[hole].slot) != slot {
            return;
        }
        // Backward-shift deletion: move up every later entry of the run that may live in
        // the hole, so no lookup stops early at it.
        let mut next = self.next(hole);
        while self.table[next].is_used() {
            let entry = self.table[next];
            let home = self.home((entry.peer, entry.port));
            // Whether `home` lies cyclically in (hole, next]: then the entry stays.
            let stays = if hole < next {
                hole < home && home <= next
            } else {
                hole < home || home <= next
            };
            if !stays {
                self.table[hole] = entry;
                hole = next;
            }
            next = self.next(next);
        }
        self.table[hole] = Route::EMPTY;
    }

    /// Routes in the table (a walk over all of it: for tests).
    #[cfg(test)]
    fn len(&self) -> usize {
        self.table.iter().filter(|r| r.is_used()).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashMap;
    use std::vec;

    fn peer(n: u32) -> (Ipv4Address, u16) {
        (
            Ipv4Address::from_bits(0xc0a8_4500 | (n >> 8)),
            1024 + (n & 0xff) as u16,
        )
    }

    #[test]
    fn a_route_is_found_replaced_and_removed_only_by_its_slot() {
        let mut storage = vec![Route::EMPTY; routes_for(4)];
        let mut routes = Routes::new(&mut storage);
        assert_eq!(routes.get(peer(1)), None);
        assert!(routes.insert(peer(1), 3));
        assert_eq!(routes.get(peer(1)), Some(3));
        assert!(routes.insert(peer(1), 2));
        assert_eq!(routes.get(peer(1)), Some(2));
        routes.remove(peer(1), 3);
        assert_eq!(routes.get(peer(1)), Some(2), "another slot's route stays");
        routes.remove(peer(1), 2);
        assert_eq!(routes.get(peer(1)), None);
        assert!(!routes.insert((Ipv4Address::new(1, 2, 3, 4), 0), 1));
    }

    #[test]
    fn a_full_table_refuses_and_an_empty_one_finds_nothing() {
        let mut storage = vec![Route::EMPTY; 2];
        let mut routes = Routes::new(&mut storage);
        assert!(routes.insert(peer(1), 0));
        assert!(routes.insert(peer(2), 1));
        assert!(!routes.insert(peer(3), 2));
        assert_eq!(routes.get(peer(3)), None);
        let mut none: [Route; 0] = [];
        let mut routes = Routes::new(&mut none);
        assert!(!routes.insert(peer(1), 0));
        assert_eq!(routes.get(peer(1)), None);
    }

    proptest! {
        /// Any sequence of inserts and removes leaves the table answering as a map would
        /// (collisions, wrap-around and backward shifts included: the table is small).
        #[test]
        fn the_table_agrees_with_a_map(ops in proptest::collection::vec((0u32..24, 0usize..8, any::<bool>()), 0..300)) {
            let mut storage = vec![Route::EMPTY; routes_for(12)];
            let mut routes = Routes::new(&mut storage);
            let mut model: HashMap<(Ipv4Address, u16), usize> = HashMap::new();
            for (n, slot, insert) in ops {
                let p = peer(n);
                if insert {
                    if model.len() < 12 || model.contains_key(&p) {
                        prop_assert!(routes.insert(p, slot));
                        model.insert(p, slot);
                    }
                } else {
                    routes.remove(p, slot);
                    if model.get(&p) == Some(&slot) {
                        model.remove(&p);
                    }
                }
                for m in 0..24 {
                    prop_assert_eq!(routes.get(peer(m)), model.get(&peer(m)).copied());
                }
                prop_assert_eq!(routes.len(), model.len());
            }
        }
    }
}
