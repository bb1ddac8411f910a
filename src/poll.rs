//! The daemon's one wait: ppoll(2) over every descriptor the loop serves (the TAP, the control
//! socket and its clients, the forwarded sessions' backend sockets).

use std::os::fd::RawFd;
use std::time::Duration as StdDuration;

/// The descriptors of one wait. Kept from turn to turn: no allocation once grown to size.
#[derive(Default)]
pub struct PollSet {
    fds: Vec<libc::pollfd>,
}

impl PollSet {
    /// An empty set.
    pub fn new() -> PollSet {
        PollSet::default()
    }

    /// Empties the set for the next wait.
    pub fn clear(&mut self) {
        self.fds.clear();
    }

    /// Adds `fd`, waited on for `events`; returns its entry, for [`PollSet::is_ready`].
    pub fn push(&mut self, fd: RawFd, events: libc::c_short) -> usize {
        self.fds.push(libc::pollfd {
            fd,
            events,
            revents: 0,
        });
        self.fds.len() - 1
    }

    /// Adds entries made elsewhere (the forwarder's backend sockets).
    pub fn extend(&mut self, fds: &[libc::pollfd]) {
        self.fds.extend_from_slice(fds);
    }

    /// Waits until an entry is ready or `timeout` passes; a signal also ends the wait. ppoll,
    /// not poll: a deadline in microseconds (the gate's refusal delay is a few milliseconds)
    /// neither wakes early nor spins through its last millisecond.
    pub fn wait(&mut self, timeout: StdDuration) {
        for fd in &mut self.fds {
            fd.revents = 0;
        }
        let timeout = libc::timespec {
            tv_sec: timeout.as_secs().min(i32::MAX as u64) as libc::time_t,
            tv_nsec: libc::c_long::from(timeout.subsec_nanos() as i32),
        };
        // SAFETY: `fds.len()` valid pollfds and a timespec, both live for the duration of the
        // call; a null signal mask leaves the mask as it is.
        #[allow(unsafe_code)]
        let ready = unsafe {
            libc::ppoll(
                self.fds.as_mut_ptr(),
                self.fds.len() as libc::nfds_t,
                &timeout,
                std::ptr::null(),
            )
        };
        if ready <= 0 {
            // Timed out, interrupted or failed: nothing is ready.
            for fd in &mut self.fds {
                fd.revents = 0;
            }
        }
    }

    /// Whether the last wait reported entry `index` (anything: readiness, hang-up or error).
    pub fn is_ready(&self, index: usize) -> bool {
        self.fds.get(index).is_some_and(|fd| fd.revents != 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::fd::AsRawFd;
    use std::os::unix::net::UnixStream;
    use std::time::Instant as StdInstant;

    #[test]
    fn a_wait_ends_at_its_deadline_or_when_an_entry_is_ready() {
        let (mut a, b) = UnixStream::pair().unwrap();
        let mut set = PollSet::new();
        let entry = set.push(b.as_raw_fd(), libc::POLLIN);

        let started = StdInstant::now();
        set.wait(StdDuration::from_millis(30));
        let waited = started.elapsed();
        assert!(waited >= StdDuration::from_millis(30), "{waited:?}");
        assert!(!set.is_ready(entry));

        a.write_all(b"x").unwrap();
        let started = StdInstant::now();
        set.wait(StdDuration::from_secs(5));
        assert!(started.elapsed() < StdDuration::from_secs(1));
        assert!(set.is_ready(entry));
        assert!(!set.is_ready(entry + 1), "no such entry");

        set.clear();
        assert!(!set.is_ready(entry));
    }
}
