//! A TAP device as a smoltcp [`Device`] (std only).
//!
//! Opened without packet information (`IFF_NO_PI`; the packet-info mode breaks the link),
//! non-blocking, with one receive and one transmit buffer sized from the interface MTU at start-up
//! and never reallocated. I/O errors are logged and survived.

use std::io;
use std::os::fd::{AsRawFd, RawFd};

use smoltcp::phy::{self, Device, DeviceCapabilities, Medium};
use smoltcp::time::Instant;
use tun_tap::{Iface, Mode};

/// Ethernet header length, added to the IP MTU to get smoltcp's frame size.
const ETHERNET_HEADER: usize = 14;

/// A TAP interface.
pub struct TapDevice {
    iface: Iface,
    rx: Vec<u8>,
    tx: Vec<u8>,
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
        })
    }

    /// The interface name.
    pub fn name(&self) -> &str {
        self.iface.name()
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
        match self.iface.recv(&mut self.rx) {
            Ok(len) => Some((
                RxToken(&self.rx[..len]),
                TxToken {
                    iface: &self.iface,
                    buffer: &mut self.tx,
                },
            )),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => None,
            Err(e) => {
                log::warn!("{}: receive failed: {e}", self.iface.name());
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
