//! [`Counter`]: the one counter type of the library; it wraps on overflow and never panics.

/// An event count that wraps at `u32::MAX` (a long-running node must never panic on a count).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(transparent)
)]
pub struct Counter(u32);

impl Counter {
    /// Zero.
    pub const ZERO: Counter = Counter(0);

    /// A counter that starts at `value`.
    pub const fn new(value: u32) -> Counter {
        Counter(value)
    }

    /// Counts one event.
    pub fn bump(&mut self) {
        self.0 = self.0.wrapping_add(1);
    }

    /// Counts `n` events.
    pub fn add(&mut self, n: u32) {
        self.0 = self.0.wrapping_add(n);
    }

    /// The count so far.
    pub const fn get(self) -> u32 {
        self.0
    }
}

impl From<Counter> for u32 {
    fn from(counter: Counter) -> u32 {
        counter.0
    }
}

impl From<Counter> for u64 {
    fn from(counter: Counter) -> u64 {
        u64::from(counter.0)
    }
}

/// A count compares with a plain number: `assert_eq!(counters.positive, 5)`.
impl PartialEq<u32> for Counter {
    fn eq(&self, other: &u32) -> bool {
        self.0 == *other
    }
}

impl PartialOrd<u32> for Counter {
    fn partial_cmp(&self, other: &u32) -> Option<core::cmp::Ordering> {
        self.0.partial_cmp(other)
    }
}

impl core::fmt::Display for Counter {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{}", self.0)
    }
}

#[cfg(feature = "defmt")]
impl defmt::Format for Counter {
    /// The count, in decimal.
    fn format(&self, f: defmt::Formatter<'_>) {
        defmt::write!(f, "{=u32}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::Counter;

    #[test]
    fn a_counter_wraps_instead_of_panicking() {
        let mut counter = Counter::new(u32::MAX - 1);
        counter.bump();
        assert_eq!(counter.get(), u32::MAX);
        counter.bump();
        assert_eq!(counter.get(), 0);
        counter.add(5);
        assert_eq!(u32::from(counter), 5);
    }

    #[test]
    fn a_counter_compares_with_a_number() {
        let mut counter = Counter::ZERO;
        counter.add(3);
        assert_eq!(counter, 3);
        assert_ne!(counter, 4);
        assert!(counter > 2 && counter < 4);
        assert_eq!(u64::from(counter), 3);
    }
}
