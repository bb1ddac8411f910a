//! A bounded queue of events on storage the embedder gives: its depth is the embedder's
//! choice (a static array on a microcontroller), and nothing is allocated.
//!
//! When the queue is full the oldest event is dropped for the new one; the owner counts it.

/// Events kept until taken, oldest first, in `slots` (fill them with `None`; an empty slice keeps
/// none: every event is dropped).
#[derive(Debug)]
pub struct EventQueue<'a, T> {
    slots: &'a mut [Option<T>],
    /// Index of the oldest event.
    head: usize,
    len: usize,
}

impl<'a, T> EventQueue<'a, T> {
    /// An empty queue on `slots` (whatever they hold is forgotten).
    pub fn new(slots: &'a mut [Option<T>]) -> EventQueue<'a, T> {
        for slot in slots.iter_mut() {
            *slot = None;
        }
        EventQueue {
            slots,
            head: 0,
            len: 0,
        }
    }

    /// Appends `event`; if the queue is full the oldest is dropped first. Returns whether an
    /// event was dropped (the new one itself, when the queue has no slot at all).
    pub fn push(&mut self, event: T) -> bool {
        let capacity = self.slots.len();
        if capacity == 0 {
            return true;
        }
        let dropped = self.len == capacity;
        if dropped {
            self.head = (self.head + 1) % capacity;
            self.len -= 1;
        }
        self.slots[(self.head + self.len) % capacity] = Some(event);
        self.len += 1;
        dropped
    }

    /// Takes the oldest event.
    pub fn pop(&mut self) -> Option<T> {
        if self.len == 0 {
            return None;
        }
        let event = self.slots[self.head].take();
        self.head = (self.head + 1) % self.slots.len();
        self.len -= 1;
        event
    }

    /// Events waiting.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no event waits.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Events the queue holds at most.
    pub fn capacity(&self) -> usize {
        self.slots.len()
    }
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn events_come_out_oldest_first_and_a_full_queue_drops_the_oldest() {
        let mut slots = [None; 3];
        let mut queue = EventQueue::new(&mut slots);
        assert_eq!(queue.capacity(), 3);
        assert!(!queue.push(1));
        assert!(!queue.push(2));
        assert_eq!(queue.pop(), Some(1));
        assert!(!queue.push(3));
        assert!(!queue.push(4));
        assert_eq!(queue.len(), 3);
        // Full (2, 3, 4): 5 drops 2, 6 drops 3.
        assert!(queue.push(5));
        assert!(queue.push(6));
        assert_eq!(queue.len(), 3);
        assert_eq!(queue.pop(), Some(4));
        assert_eq!(queue.pop(), Some(5));
        assert_eq!(queue.pop(), Some(6));
        assert_eq!(queue.pop(), None);
        assert!(queue.is_empty());
    }

    #[test]
    fn a_queue_without_slots_drops_every_event() {
        let mut queue = EventQueue::<u8>::new(&mut []);
        assert!(queue.push(1));
        assert_eq!(queue.pop(), None);
        assert_eq!(queue.len(), 0);
    }

    #[test]
    fn new_forgets_what_the_slots_held() {
        let mut slots = [Some(7), Some(8)];
        let mut queue = EventQueue::new(&mut slots);
        assert!(queue.is_empty());
        assert_eq!(queue.pop(), None);
    }
}
