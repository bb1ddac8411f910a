//! A NetBIOS node on a TAP device: the smallest std program built on netbt.
//!
//! It owns `NAME<00>` and `NAME<20>` on the segment, answers name queries and node status for
//! them, and echoes every session message of a session called to either name (TCP 139). Ctrl-C
//! (or SIGTERM) releases the names and exits.
//!
//! ```text
//! node_on_tap [TAP] [ADDRESS/PREFIX] [NAME]        (defaults: tap0 192.168.69.1/24 NODE)
//! ```
//!
//! Run it as root in the lab namespace (`scripts/lab.sh up` makes `tap0` there, the kernel at
//! 192.168.69.100), and ask it from the kernel's side:
//!
//! ```sh
//! cargo build --example node_on_tap
//! ip netns exec netbt-lab ./target/debug/examples/node_on_tap tap0 192.168.69.1/24 NODE
//! ip netns exec netbt-lab nmblookup -U 192.168.69.1 NODE        # from another terminal
//! ```
//!
//! `netbt serve` (`src/daemon.rs`) is this loop plus a command line, the control socket, a pcap
//! writer and the forward handler.

use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration as StdDuration, Instant as StdInstant};

use netbt::node::{Node, NodeConfig, NodeStorage};
use netbt::session::SessionConfig;
use netbt::tap::{TapDevice, wait_readable};
use netbt::wire::name::{Name, Scope};
use smoltcp::time::Instant;

/// The longest sleep when nothing is due, so a signal is noticed even if it comes between polls.
const MAX_WAIT: StdDuration = StdDuration::from_millis(200);

fn main() -> Result<(), String> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let mut args = std::env::args().skip(1);
    let tap = args.next().unwrap_or_else(|| "tap0".into());
    let address =
        netbt::host::parse_cidr(&args.next().unwrap_or_else(|| "192.168.69.1/24".into()))?;
    let base = args.next().unwrap_or_else(|| "NODE".into());

    // The device: an existing TAP interface, opened non-blocking.
    let mut device = TapDevice::open(&tap).map_err(|e| format!("cannot open {tap}: {e}"))?;

    // The storage: 4 session slots of 4 KiB per direction, 1 refusal slot, a SYN backlog of 16,
    // allocated once and kept for the life of the process.
    let storage = NodeStorage::leaked(4, 1, 4096, 16);
    let config = NodeConfig {
        mac: [0x02, 0, 0, 0, 0, 0x01],
        address,
        gateway: None,
        scope: Scope::NONE,
        hide_mac: false,
        seed: netbt::host::entropy(),
        session: SessionConfig::DEFAULT,
    };
    let start = StdInstant::now();
    let clock = || Instant::from_micros(start.elapsed().as_micros() as i64);
    let mut node = Node::new(config, &mut device, storage, clock())
        .map_err(|e| format!("cannot set up the node: {e:?}"))?;

    // The names, and a session listener on each (both are unique names).
    for suffix in [Name::SUFFIX_WORKSTATION, Name::SUFFIX_SERVER] {
        let name = Name::new(&base, suffix).map_err(|e| format!("{base:?}: {e}"))?;
        node.names
            .add_name(name, false)
            .map_err(|e| format!("{name}: {e:?}"))?;
        node.session_service()
            .listen(name, None)
            .map_err(|e| format!("{name}: {e:?}"))?;
    }
    node.names.start(clock());

    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, Arc::clone(&stop)).map_err(|e| e.to_string())?;
    }

    let mut ready = false;
    let mut releasing = false;
    loop {
        // All pending work; `next` is when the node wants to run again at the latest.
        let next = node.poll(clock(), &mut device);
        while let Some(event) = node.names.take_event() {
            log::info!("name service: {event:?}");
        }
        while let Some(event) = node.session_service().take_event() {
            log::info!("session service: {event:?}");
        }
        if !ready && node.names.is_ready() {
            ready = true;
            println!("ready: {base} at {address} on {tap}");
        }
        if stop.load(Ordering::Relaxed) && !releasing {
            releasing = true;
            node.shut_down_sessions(clock());
            node.names.release(clock());
            continue;
        }
        if releasing && node.names.is_released() && node.session_service().is_idle() {
            node.poll(clock(), &mut device);
            println!("names released");
            return Ok(());
        }

        // Sleep until a frame arrives or the node's deadline passes.
        let now = clock();
        let wait = match next {
            Some(at) if at <= now => StdDuration::ZERO,
            Some(at) => StdDuration::from_micros((at - now).total_micros()),
            None => MAX_WAIT,
        };
        if !wait.is_zero() {
            wait_readable(device.as_raw_fd(), wait.min(MAX_WAIT));
        }
    }
}
