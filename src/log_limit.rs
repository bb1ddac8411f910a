//! A log rate limit (std only): at most so many lines a second, the rest summed up.

use std::time::{Duration, Instant};

/// At most `per_second` lines a second; the lines held back are counted, and once the second
/// is over `summary` is called with their number (to log one line about them).
pub struct LogLimit {
    per_second: u32,
    summary: fn(u32),
    window: Instant,
    used: u32,
    suppressed: u32,
}

impl LogLimit {
    /// A limit of `per_second` lines; `summary(n)` logs that `n` lines were held back.
    pub fn new(per_second: u32, summary: fn(u32)) -> LogLimit {
        LogLimit {
            per_second,
            summary,
            window: Instant::now(),
            used: 0,
            suppressed: 0,
        }
    }

    /// Whether a line may be logged now. The first call after a second with lines held back
    /// calls the summary first.
    pub fn allow(&mut self) -> bool {
        if self.window.elapsed() >= Duration::from_secs(1) {
            if self.suppressed > 0 {
                (self.summary)(self.suppressed);
            }
            self.window = Instant::now();
            self.used = 0;
            self.suppressed = 0;
        }
        if self.used < self.per_second {
            self.used += 1;
            true
        } else {
            self.suppressed += 1;
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    static HELD_BACK: AtomicU32 = AtomicU32::new(0);

    #[test]
    fn lines_over_the_limit_are_held_back_and_summed_up_in_the_next_second() {
        let mut limit = LogLimit::new(3, |n| HELD_BACK.store(n, Ordering::Relaxed));
        let allowed = (0..10).filter(|_| limit.allow()).count();
        assert_eq!(allowed, 3);
        assert_eq!(HELD_BACK.load(Ordering::Relaxed), 0);
        // Start the next second now rather than waiting for it.
        limit.window -= Duration::from_secs(1);
        assert!(limit.allow());
        assert_eq!(HELD_BACK.load(Ordering::Relaxed), 7);
    }
}
