//! A TAP device as a smoltcp [`Device`] (std only).
//!
//! Opened without packet information (`IFF_NO_PI`; the packet-info mode breaks the link),
//! non-blocking, with one receive and one transmit buffer sized from the interface MTU at start-up
//! and never reallocated.
//!
//! A receive error is judged once ([`ReadFailure`]): a device that went away (deleted under us)
//! is recorded for the owner to see ([`TapDevice::gone`]) and read no more; any other error is
//! retried with a doubling back-off ([`Backoff`], 1 ms to 1 s), never in a hot loop, and logged
//! at most once a second plus a count of the lines held back.

use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::time::{Duration as StdDuration, Instant as StdInstant};

use smoltcp::phy::{self, Device, DeviceCapabilities, Medium};
use smoltcp::time::Instant;
use tun_tap::{Iface, Mode};

use crate::log_limit::LogLimit;

/// Ethernet header length, added to the IP MTU to get smoltcp's frame size.
const ETHERNET_HEADER: usize = 14;

/// What a failed read of the TAP means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadFailure {
    /// Nothing to read now, or a signal: not a failure.
    NotNow,
    /// The device is gone (deleted, or its descriptor no longer refers to a working TAP):
    /// every later read fails the same way.
    Gone,
    /// Anything else: worth another try after a pause.
    Transient,
}

impl ReadFailure {
    /// Judges a receive error.
    pub fn of(error: &io::Error) -> ReadFailure {
        match error.kind() {
            io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted => return ReadFailure::NotNow,
            _ => {}
        }
        match error.raw_os_error() {
            // EBADFD is what a read returns once the interface was deleted (`ip link del`).
            Some(libc::EBADFD | libc::ENODEV | libc::ENXIO | libc::EBADF) => ReadFailure::Gone,
            _ => ReadFailure::Transient,
        }
    }
}

/// The pause before the next read after transient failures: 1 ms after the first, doubling
/// with each failure in a row, at most 1 s; a successful read starts over.
#[derive(Debug, Default, Clone, Copy)]
pub struct Backoff {
    failures: u32,
    until: Option<StdInstant>,
}

impl Backoff {
    /// The first pause.
    pub const FIRST: StdDuration = StdDuration::from_millis(1);
    /// The longest pause.
    pub const MAX: StdDuration = StdDuration::from_secs(1);

    /// Records a failure at `now`; returns the pause before the next read.
    pub fn failed(&mut self, now: StdInstant) -> StdDuration {
        let pause = Self::FIRST
            .saturating_mul(1 << self.failures.min(10))
            .min(Self::MAX);
        self.failures = self.failures.saturating_add(1);
        self.until = Some(now + pause);
        pause
    }

    /// Records a successful read.
    pub fn succeeded(&mut self) {
        *self = Backoff::default();
    }

    /// Until when reads pause, if they do at `now`.
    pub fn pausing(&self, now: StdInstant) -> Option<StdInstant> {
        self.until.filter(|&until| until > now)
    }
}

/// A TAP interface.
pub struct TapDevice {
    iface: Iface,
    rx: Vec<u8>,
    tx: Vec<u8>,
    gone: Option<io::Error>,
    backoff: Backoff,
    failure_log: LogLimit,
}

impl TapDevice {
    /// Attaches to the existing TAP interface `name`: `NotFound` if there is none,
    /// `ResourceBusy` if another process (another netbt, QEMU) is attached to it.
    pub fn open(name: &str) -> io::Result<TapDevice> {
        // Opening a name that does not exist would create a new TAP attached to nothing, and
        // the node would "own" its names on an empty segment. Demand an existing device.
        let sysfs = format!("/sys/class/net/{name}");
        if name.is_empty() || name.contains('/') || !std::path::Path::new(&sysfs).exists() {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                "no such network interface",
            ));
        }
        let iface = Iface::without_packet_info(name, Mode::Tap).map_err(|e| {
            // EBUSY: a TAP takes one process at a time.
            if e.kind() == io::ErrorKind::ResourceBusy {
                io::Error::new(
                    e.kind(),
                    "in use by another process (is another netbt running on it? stop it, or \
                     give this one another TAP)",
                )
            } else {
                e
            }
        })?;
        iface.set_non_blocking()?;
        let mtu = std::fs::read_to_string(format!("/sys/class/net/{name}/mtu"))
            .ok()
            .and_then(|text| text.trim().parse::<usize>().ok())
            .unwrap_or(1500);
        let frame = mtu + ETHERNET_HEADER;
        Ok(TapDevice {
            iface,
            rx: vec![0; frame],
            tx: vec![0; frame],
            gone: None,
            backoff: Backoff::default(),
            failure_log: LogLimit::new(1, |n| {
                log::warn!("TAP receive failed {n} more times in the last second")
            }),
        })
    }

    /// The interface name.
    pub fn name(&self) -> &str {
        self.iface.name()
    }

    /// The error that showed the device is gone, once a read has shown it; the device reads
    /// nothing more. The owner should end (a supervisor can restart it on a new device).
    pub fn gone(&self) -> Option<&io::Error> {
        self.gone.as_ref()
    }

    /// Until when reads pause after transient failures, if they do now: the owner should not
    /// wait for the descriptor to be readable meanwhile (it may stay readable and spin).
    pub fn pausing(&self) -> Option<StdInstant> {
        // The clock is read only while a pause is pending: receive asks on every frame.
        self.backoff.until?;
        self.backoff.pausing(StdInstant::now())
    }
}

impl AsRawFd for TapDevice {
    fn as_raw_fd(&self) -> RawFd {
        self.iface.as_raw_fd()
    }
}

/// A received frame.
pub struct RxToken<'a>(&'a [u8]);

/// Room for one frame to send.
pub struct TxToken<'a> {
    iface: &'a Iface,
    buffer: &'a mut [u8],
}

impl Device for TapDevice {
    type RxToken<'a> = RxToken<'a>;
    type TxToken<'a> = TxToken<'a>;

    fn receive(&mut self, _now: Instant) -> Option<(RxToken<'_>, TxToken<'_>)> {
        if self.gone.is_some() || self.pausing().is_some() {
            return None;
        }
        match self.iface.recv(&mut self.rx) {
            Ok(len) => {
                self.backoff.succeeded();
                Some((
                    RxToken(&self.rx[..len]),
                    TxToken {
                        iface: &self.iface,
                        buffer: &mut self.tx,
                    },
                ))
            }
            Err(e) => {
                match ReadFailure::of(&e) {
                    ReadFailure::NotNow => {}
                    ReadFailure::Gone => self.gone = Some(e),
                    ReadFailure::Transient => {
                        let pause = self.backoff.failed(StdInstant::now());
                        if self.failure_log.allow() {
                            log::warn!(
                                "{}: receive failed: {e}; trying again in {pause:?}",
                                self.iface.name()
                            );
                        }
                    }
                }
                None
            }
        }
    }

    fn transmit(&mut self, _now: Instant) -> Option<TxToken<'_>> {
        Some(TxToken {
            iface: &self.iface,
            buffer: &mut self.tx,
        })
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ethernet;
        caps.max_transmission_unit = self.tx.len();
        caps
    }
}

impl phy::RxToken for RxToken<'_> {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        f(self.0)
    }
}

impl phy::TxToken for TxToken<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let frame = &mut self.buffer[..len];
        let result = f(frame);
        if let Err(e) = self.iface.send(frame) {
            // A full kernel queue drops the frame, as a busy wire would.
            log::debug!("{}: send failed: {e}", self.iface.name());
        }
        result
    }
}

/// Waits until `fd` is readable or `timeout` passes (a signal also ends the wait).
pub fn wait_readable(fd: RawFd, timeout: std::time::Duration) {
    let mut pollfd = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    let ms = timeout.as_millis().min(i32::MAX as u128) as i32;
    // SAFETY: one valid pollfd for the duration of the call.
    #[allow(unsafe_code)]
    unsafe {
        libc::poll(&mut pollfd, 1, ms);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os_error(code: i32) -> io::Error {
        io::Error::from_raw_os_error(code)
    }

    #[test]
    fn a_deleted_device_is_gone_and_nothing_else_is() {
        assert_eq!(ReadFailure::of(&os_error(libc::EBADFD)), ReadFailure::Gone);
        assert_eq!(ReadFailure::of(&os_error(libc::ENODEV)), ReadFailure::Gone);
        assert_eq!(
            ReadFailure::of(&os_error(libc::EAGAIN)),
            ReadFailure::NotNow
        );
        assert_eq!(ReadFailure::of(&os_error(libc::EINTR)), ReadFailure::NotNow);
        assert_eq!(
            ReadFailure::of(&os_error(libc::EIO)),
            ReadFailure::Transient
        );
        assert_eq!(
            ReadFailure::of(&os_error(libc::ENOBUFS)),
            ReadFailure::Transient
        );
    }

    #[test]
    fn the_back_off_doubles_to_a_second_and_starts_over_after_a_read() {
        let start = StdInstant::now();
        let mut backoff = Backoff::default();
        assert_eq!(backoff.pausing(start), None);
        let pauses: Vec<_> = (0..14).map(|_| backoff.failed(start)).collect();
        assert_eq!(pauses[0], StdDuration::from_millis(1));
        assert_eq!(pauses[1], StdDuration::from_millis(2));
        assert_eq!(pauses[9], StdDuration::from_millis(512));
        assert!(pauses[10..].iter().all(|&p| p == Backoff::MAX));
        assert_eq!(backoff.pausing(start), Some(start + Backoff::MAX));
        assert_eq!(
            backoff.pausing(start + Backoff::MAX),
            None,
            "the pause is over"
        );
        backoff.succeeded();
        assert_eq!(backoff.pausing(start), None);
        assert_eq!(backoff.failed(start), Backoff::FIRST);
    }
}
