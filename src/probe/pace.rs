//! A steady send rate for a bounded time, shared by the floods.

use std::thread;
use std::time::{Duration, Instant};

/// Calls `send` `rate` times a second until `duration` has passed, and returns how many calls
/// succeeded and how many failed.
///
/// `send` gets the attempt's number (0, 1, 2, …) and says whether it got its packet out. Each
/// round catches up with the schedule (one attempt at once, then `rate` a second from the
/// start), then sleeps a millisecond; a slow `send` therefore lowers the rate achieved but
/// never stretches the time past `duration` by more than one round.
pub fn send_paced(rate: u32, duration: Duration, mut send: impl FnMut(u64) -> bool) -> (u64, u64) {
    let (mut sent, mut errors) = (0u64, 0u64);
    let start = Instant::now();
    let end = start + duration;
    loop {
        let now = Instant::now();
        if now >= end {
            break;
        }
        let due = ((now - start).as_secs_f64() * f64::from(rate)) as u64 + 1;
        while sent + errors < due {
            if send(sent + errors) {
                sent += 1;
            } else {
                errors += 1;
            }
        }
        thread::sleep(Duration::from_millis(1));
    }
    (sent, errors)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attempts_follow_the_rate_and_failures_are_counted_apart() {
        let mut numbers = Vec::new();
        let (sent, errors) = send_paced(200, Duration::from_millis(100), |n| {
            numbers.push(n);
            n % 4 != 3
        });
        let attempts = sent + errors;
        // At most one at once plus 200 a second for 0.1 s; a stalled machine may fall behind.
        assert!((10..=21).contains(&attempts), "{attempts} attempts");
        assert_eq!(errors, attempts / 4);
        assert_eq!(numbers, (0..attempts).collect::<Vec<_>>());
    }
}
