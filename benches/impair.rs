//! `impair`: an impairing Ethernet relay for the lab (the lab kernel has no `sch_netem`).
//!
//! It sits between the kernel and netbt inside one network namespace, with two TAP devices:
//!
//! ```text
//! kernel TCP ─ KERNEL_TAP (the namespace's IP) ═ impair ═ NETBT_TAP (no IP) ─ netbt serve
//!               the relay owns its descriptor      a packet socket on its kernel side
//! ```
//!
//! Frames the kernel sends out of `--kernel-tap` are read from that TAP's descriptor and, after
//! the `to-netbt` impairment, sent through a packet socket bound to `--netbt-tap`, where netbt
//! reads them from its own descriptor; frames netbt writes arrive on that packet socket and go,
//! after the `from-netbt` impairment, into the kernel TAP. It is a transparent bridge: ARP, MACs
//! and addresses pass unchanged.
//!
//! Per direction: `loss` % of frames dropped; `reorder` % held back `--reorder-gap` ms beyond
//! the delay so that later frames overtake them; `delay` ms added to every frame. Decisions come
//! from a SplitMix64 generator per direction seeded from `--seed`, so the same frame sequence
//! meets the same fate in every run. Each direction's queue holds at most `--queue` frames; a
//! frame that finds it full is dropped and counted as `OVERFLOW`. ARP passes unimpaired unless
//! `--impair-arp` (so the neighbour caches behave and only the transport is tested).
//!
//! ```text
//! impair --kernel-tap nbhok --netbt-tap tap0 [--seed 1] [--queue 4096] [--reorder-gap 10]
//!        [--both loss=10,reorder=25,delay=5] [--to-netbt SPEC] [--from-netbt SPEC] [--impair-arp]
//! ```
//!
//! Prints `READY KERNEL_TAP= NETBT_TAP=` once both ends are open, and on SIGTERM or SIGINT, one
//! line per direction: `DIR=to-netbt IN= OUT= DROPPED= REORDERED= HELD_BACK= OVERFLOW=
//! SEND_ERRORS= QUEUE_PEAK=` (`REORDERED`: frames that left after a frame that arrived later;
//! `HELD_BACK`: frames the reorder draw picked). Frames still queued at exit are not sent.
//!
//! Needs root (the TAPs and the packet socket) and the `std` feature (the default).

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use clap::Parser;

/// Impairing relay between the kernel's TAP and netbt's TAP: loss, reordering, delay.
#[derive(Parser)]
#[command(name = "impair")]
struct Cli {
    /// The TAP whose kernel side carries the namespace's address; the relay owns its descriptor.
    #[arg(long)]
    kernel_tap: String,
    /// The TAP netbt opens (no address on its kernel side); the relay bridges it through a
    /// packet socket.
    #[arg(long)]
    netbt_tap: String,
    /// Impairment of both directions: loss=P,reorder=P,delay=MS (percent, milliseconds).
    #[arg(long, value_parser = parse_spec)]
    both: Option<Spec>,
    /// Impairment of frames from the kernel to netbt (overrides --both).
    #[arg(long, value_parser = parse_spec)]
    to_netbt: Option<Spec>,
    /// Impairment of frames from netbt to the kernel (overrides --both).
    #[arg(long, value_parser = parse_spec)]
    from_netbt: Option<Spec>,
    /// How long a reordered frame is held beyond the delay, ms.
    #[arg(long, default_value_t = 10)]
    reorder_gap: u64,
    /// Seed of the generators (the same seed, the same fate for the same frames).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Frames each direction's queue holds at most.
    #[arg(long, default_value_t = 4096)]
    queue: usize,
    /// Impair ARP frames too (by default they pass untouched).
    #[arg(long)]
    impair_arp: bool,
}

/// One direction's impairment.
#[derive(Clone, Copy, Debug, Default)]
struct Spec {
    /// Percent of frames dropped.
    loss: f64,
    /// Percent of frames held back so that later ones overtake them.
    reorder: f64,
    /// Delay of every frame.
    delay: Duration,
}

fn parse_spec(text: &str) -> Result<Spec, String> {
    let mut spec = Spec::default();
    for part in text.split(',').filter(|p| !p.is_empty()) {
        let (key, value) = part
            .split_once('=')
            .ok_or_else(|| format!("{part:?}: want KEY=VALUE"))?;
        let number: f64 = value
            .parse()
            .map_err(|_| format!("{part:?}: not a number"))?;
        if !number.is_finite() || number < 0.0 {
            return Err(format!("{part:?}: want a number >= 0"));
        }
        match key {
            "loss" if number <= 100.0 => spec.loss = number,
            "reorder" if number <= 100.0 => spec.reorder = number,
            "delay" if number <= 10_000.0 => spec.delay = Duration::from_secs_f64(number / 1e3),
            "loss" | "reorder" | "delay" => return Err(format!("{part:?}: out of range")),
            other => return Err(format!("{other:?}: want loss, reorder or delay")),
        }
    }
    Ok(spec)
}

/// SplitMix64: small, seeded, the same sequence on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// True with probability `percent` / 100.
    fn chance(&mut self, percent: f64) -> bool {
        percent > 0.0 && (self.next() >> 11) as f64 / (1u64 << 53) as f64 * 100.0 < percent
    }
}

/// What one direction counted.
#[derive(Default)]
struct Counts {
    frames_in: u64,
    frames_out: u64,
    dropped: u64,
    reordered: u64,
    held_back: u64,
    overflow: u64,
    send_errors: u64,
    queue_peak: usize,
}

/// One direction: its impairment, generator, queue (ordered by departure time, then arrival)
/// and counters.
struct Direction {
    name: &'static str,
    spec: Spec,
    gap: Duration,
    rng: Rng,
    capacity: usize,
    impair_arp: bool,
    queue: BinaryHeap<Reverse<(Instant, u64, Vec<u8>)>>,
    arrivals: u64,
    /// The arrival number of the latest-arriving frame that has left so far.
    newest_out: Option<u64>,
    counts: Counts,
}

impl Direction {
    fn new(name: &'static str, spec: Spec, cli: &Cli, salt: u64) -> Direction {
        Direction {
            name,
            spec,
            gap: Duration::from_millis(cli.reorder_gap),
            rng: Rng(cli.seed ^ salt),
            capacity: cli.queue.max(1),
            impair_arp: cli.impair_arp,
            queue: BinaryHeap::new(),
            arrivals: 0,
            newest_out: None,
            counts: Counts::default(),
        }
    }

    /// A frame arrived: drop it, or queue it for its departure time.
    fn arrive(&mut self, frame: &[u8], now: Instant) {
        self.counts.frames_in += 1;
        let is_arp = frame.len() >= 14 && frame[12..14] == [0x08, 0x06];
        let mut due = now;
        if !is_arp || self.impair_arp {
            if self.rng.chance(self.spec.loss) {
                self.counts.dropped += 1;
                return;
            }
            due += self.spec.delay;
            if self.rng.chance(self.spec.reorder) {
                self.counts.held_back += 1;
                due += self.gap;
            }
        }
        if self.queue.len() >= self.capacity {
            self.counts.overflow += 1;
            return;
        }
        self.arrivals += 1;
        self.queue
            .push(Reverse((due, self.arrivals, frame.to_vec())));
        self.counts.queue_peak = self.counts.queue_peak.max(self.queue.len());
    }

    /// Sends every frame that is due through `send`.
    fn flush(&mut self, now: Instant, mut send: impl FnMut(&[u8]) -> io::Result<()>) {
        while let Some(Reverse((due, _, _))) = self.queue.peek() {
            if *due > now {
                break;
            }
            let Some(Reverse((_, arrival, frame))) = self.queue.pop() else {
                break;
            };
            match self.newest_out {
                Some(newest) if arrival < newest => self.counts.reordered += 1,
                _ => self.newest_out = Some(arrival),
            }
            match send(&frame) {
                Ok(()) => self.counts.frames_out += 1,
                Err(_) => self.counts.send_errors += 1,
            }
        }
    }

    fn next_due(&self) -> Option<Instant> {
        self.queue.peek().map(|Reverse((due, _, _))| *due)
    }

    fn report(&self) -> String {
        let c = &self.counts;
        format!(
            "DIR={} IN={} OUT={} DROPPED={} REORDERED={} HELD_BACK={} OVERFLOW={} SEND_ERRORS={} \
             QUEUE_PEAK={} QUEUED_AT_EXIT={}",
            self.name,
            c.frames_in,
            c.frames_out,
            c.dropped,
            c.reordered,
            c.held_back,
            c.overflow,
            c.send_errors,
            c.queue_peak,
            self.queue.len()
        )
    }
}

/// A raw packet socket bound to one interface, in promiscuous mode: it sees every frame netbt
/// writes to its TAP, and what it sends, netbt reads.
struct PacketSocket {
    fd: RawFd,
    ifindex: i32,
}

impl PacketSocket {
    fn open(interface: &str) -> io::Result<PacketSocket> {
        let name = std::ffi::CString::new(interface)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in interface name"))?;
        // SAFETY: plain syscalls with valid pointers to local values; the descriptor is owned
        // by the returned value and closed in Drop.
        unsafe {
            let ifindex = libc::if_nametoindex(name.as_ptr()) as i32;
            if ifindex == 0 {
                return Err(io::Error::last_os_error());
            }
            let protocol = (libc::ETH_P_ALL as u16).to_be();
            let fd = libc::socket(
                libc::AF_PACKET,
                libc::SOCK_RAW | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                i32::from(protocol),
            );
            if fd < 0 {
                return Err(io::Error::last_os_error());
            }
            let socket = PacketSocket { fd, ifindex };
            let mut addr: libc::sockaddr_ll = std::mem::zeroed();
            addr.sll_family = libc::AF_PACKET as u16;
            addr.sll_protocol = protocol;
            addr.sll_ifindex = ifindex;
            if libc::bind(
                fd,
                (&raw const addr).cast(),
                size_of::<libc::sockaddr_ll>() as u32,
            ) != 0
            {
                return Err(io::Error::last_os_error());
            }
            let mut mreq: libc::packet_mreq = std::mem::zeroed();
            mreq.mr_ifindex = ifindex;
            mreq.mr_type = libc::PACKET_MR_PROMISC as u16;
            if libc::setsockopt(
                fd,
                libc::SOL_PACKET,
                libc::PACKET_ADD_MEMBERSHIP,
                (&raw const mreq).cast(),
                size_of::<libc::packet_mreq>() as u32,
            ) != 0
            {
                return Err(io::Error::last_os_error());
            }
            let size: libc::c_int = 4 << 20;
            libc::setsockopt(
                fd,
                libc::SOL_SOCKET,
                libc::SO_RCVBUF,
                (&raw const size).cast(),
                size_of::<libc::c_int>() as u32,
            );
            Ok(socket)
        }
    }

    /// One frame netbt sent (not one we sent, not another interface's), or None when there is
    /// none waiting.
    fn recv(&self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        loop {
            // SAFETY: buf and addr are valid for the lengths given.
            let (n, addr) = unsafe {
                let mut addr: libc::sockaddr_ll = std::mem::zeroed();
                let mut len = size_of::<libc::sockaddr_ll>() as u32;
                let n = libc::recvfrom(
                    self.fd,
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                    0,
                    (&raw mut addr).cast(),
                    &mut len,
                );
                (n, addr)
            };
            if n < 0 {
                let e = io::Error::last_os_error();
                return match e.kind() {
                    io::ErrorKind::WouldBlock => Ok(None),
                    io::ErrorKind::Interrupted => continue,
                    _ => Err(e),
                };
            }
            if addr.sll_ifindex != self.ifindex || addr.sll_pkttype == libc::PACKET_OUTGOING {
                continue;
            }
            return Ok(Some(n as usize));
        }
    }

    fn send(&self, frame: &[u8]) -> io::Result<()> {
        // SAFETY: frame is valid for its length.
        let n = unsafe { libc::send(self.fd, frame.as_ptr().cast(), frame.len(), 0) };
        if n < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(())
        }
    }
}

impl Drop for PacketSocket {
    fn drop(&mut self) {
        // SAFETY: we own the descriptor.
        unsafe { libc::close(self.fd) };
    }
}

/// Waits until one of the descriptors is readable or `timeout` passed (EINTR counts as woken).
fn wait(fds: [RawFd; 2], timeout: Duration) {
    let mut polls = fds.map(|fd| libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    });
    let ms = timeout.as_millis().clamp(0, 100) as i32;
    // SAFETY: polls is a valid array of two pollfd.
    unsafe { libc::poll(polls.as_mut_ptr(), 2, ms) };
}

fn main() {
    let cli = Cli::parse();
    let both = cli.both.unwrap_or_default();
    let mut to_netbt = Direction::new("to-netbt", cli.to_netbt.unwrap_or(both), &cli, 0x746f);
    let mut from_netbt = Direction::new("from-netbt", cli.from_netbt.unwrap_or(both), &cli, 0x6672);

    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        if let Err(e) = signal_hook::flag::register(signal, stop.clone()) {
            eprintln!("impair: signal handler: {e}");
            std::process::exit(1);
        }
    }
    let kernel = match tun_tap::Iface::without_packet_info(&cli.kernel_tap, tun_tap::Mode::Tap)
        .and_then(|tap| tap.set_non_blocking().map(|()| tap))
    {
        Ok(tap) => tap,
        Err(e) => {
            eprintln!("impair: open TAP {}: {e}", cli.kernel_tap);
            std::process::exit(1);
        }
    };
    let netbt = match PacketSocket::open(&cli.netbt_tap) {
        Ok(socket) => socket,
        Err(e) => {
            eprintln!("impair: packet socket on {}: {e}", cli.netbt_tap);
            std::process::exit(1);
        }
    };
    for (dir, spec) in [(&to_netbt, to_netbt.spec), (&from_netbt, from_netbt.spec)] {
        eprintln!(
            "impair: {}: loss {} %, reorder {} % (+{} ms), delay {} ms, seed {}",
            dir.name,
            spec.loss,
            spec.reorder,
            cli.reorder_gap,
            spec.delay.as_millis(),
            cli.seed
        );
    }
    println!(
        "READY KERNEL_TAP={} NETBT_TAP={}",
        cli.kernel_tap, cli.netbt_tap
    );

    let mut buf = vec![0u8; 65536];
    while !stop.load(Ordering::Relaxed) {
        let now = Instant::now();
        let next = [to_netbt.next_due(), from_netbt.next_due()]
            .into_iter()
            .flatten()
            .min();
        let timeout = next.map_or(Duration::from_millis(100), |due| {
            due.saturating_duration_since(now)
        });
        if !timeout.is_zero() {
            wait([kernel.as_raw_fd(), netbt.fd], timeout);
        }
        let now = Instant::now();
        // Bounded batches, so one busy direction cannot starve the other.
        for _ in 0..256 {
            match kernel.recv(&mut buf) {
                Ok(n) => to_netbt.arrive(&buf[..n], now),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    eprintln!("impair: read {}: {e}", cli.kernel_tap);
                    stop.store(true, Ordering::Relaxed);
                    break;
                }
            }
        }
        for _ in 0..256 {
            match netbt.recv(&mut buf) {
                Ok(Some(n)) => from_netbt.arrive(&buf[..n], now),
                Ok(None) => break,
                Err(e) => {
                    eprintln!("impair: packet socket on {}: {e}", cli.netbt_tap);
                    stop.store(true, Ordering::Relaxed);
                    break;
                }
            }
        }
        let now = Instant::now();
        to_netbt.flush(now, |frame| netbt.send(frame));
        from_netbt.flush(now, |frame| kernel.send(frame).map(drop));
    }
    println!("{}", to_netbt.report());
    println!("{}", from_netbt.report());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_parse_and_reject() {
        let spec = parse_spec("loss=10,reorder=25,delay=5").unwrap();
        assert_eq!(
            (spec.loss, spec.reorder, spec.delay),
            (10.0, 25.0, Duration::from_millis(5))
        );
        for bad in ["loss=101", "delay=-1", "jitter=3", "loss", "loss=x"] {
            assert!(parse_spec(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn chance_follows_the_percentage_and_the_seed() {
        let (mut a, mut b) = (Rng(9), Rng(9));
        let hits = (0..100_000).filter(|_| a.chance(10.0)).count();
        assert!((9_000..11_000).contains(&hits), "{hits}");
        let mut a = Rng(9);
        for _ in 0..1000 {
            assert_eq!(a.chance(25.0), b.chance(25.0));
        }
        assert!(!Rng(1).chance(0.0));
    }
}
