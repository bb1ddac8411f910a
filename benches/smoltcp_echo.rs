//! `smoltcp_echo`: a plain smoltcp TCP echo server on a TAP device, no NetBIOS.
//!
//! The baseline of the echo rows in `scripts/bench.sh`, which measure netbt's echo throughput
//! *against raw smoltcp TCP echo on the same TAP and buffer sizes*. This program is that raw
//! smoltcp echo: the same smoltcp 0.14, the same [`netbt::tap::TapDevice`] and
//! [`netbt::tap::wait_readable`], the same socket options as netbt's session slots (Nagle off,
//! everything else smoltcp's default) and the same buffer size per direction (`--buffer` means
//! what `netbt serve --session-buffer` means), but none of netbt's machinery: no SYN gate, no
//! slot ledger, no session framing, no name service.
//!
//! ```text
//! smoltcp_echo [--tap tap0] [--ip 192.168.69.1/24] [--mac 02:00:00:00:00:01] [--port 139]
//!              [--sockets 8] [--buffer 8192]
//! ```
//!
//! * `--sockets N` TCP sockets listen on `--port`, each with `--buffer` bytes of receive and of
//!   send buffer. A socket that returns to Closed listens again.
//! * Every received byte is echoed back: copied from the receive buffer to the send buffer
//!   through a scratch buffer of `--buffer` bytes, as much as both buffers allow at each turn.
//!   When the peer closes, the socket closes after what is queued.
//! * **A trivial NetBT-compatible handshake**, so that `nbss_load echo` (which sends a SESSION
//!   REQUEST and waits for a 4-byte response before it starts echoing) can drive this server
//!   unchanged: if the first byte of a connection is 0x81 (SESSION REQUEST), the first 4 + length
//!   bytes (the whole request, its 17-bit length honoured) are consumed and answered with
//!   `82 00 00 00` (POSITIVE SESSION RESPONSE), whatever the names. Everything after that, or
//!   everything from the start if the first byte is anything else, is pure byte echo (the
//!   client's session messages come back unchanged because they are echoed byte for byte, not
//!   because they are parsed).
//! * The loop is the one of a simple smoltcp server: `iface.poll`, then service the sockets,
//!   then `poll_egress` until nothing more leaves, then wait on the TAP's fd for `poll_delay`
//!   (at most 100 ms, so signals are seen promptly).
//!
//! Prints `smoltcp_echo ready on TAP ...` on stdout once it runs, and its counters on stderr when
//! it exits (SIGINT/SIGTERM, exit 0). Needs root or CAP_NET_ADMIN for the TAP, and the `std`
//! feature (the default): `cargo run --release --example smoltcp_echo -- --help`.

use std::io::Write as _;
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration as StdDuration, Instant as StdInstant};

use clap::Parser;
use netbt::host::{entropy, parse_cidr, parse_mac, parse_session_buffer};
use netbt::tap::{TapDevice, wait_readable};
use smoltcp::iface::{Config, Interface, PollResult, SocketHandle, SocketSet, SocketStorage};
use smoltcp::socket::tcp;
use smoltcp::time::Instant;
use smoltcp::wire::{EthernetAddress, HardwareAddress, IpCidr, Ipv4Cidr};

/// Plain smoltcp TCP echo server on a TAP device (the raw-smoltcp baseline of the echo bench),
/// with a trivial NetBT handshake: a first message starting with 0x81 is answered 82 00 00 00.
#[derive(Parser)]
#[command(name = "smoltcp_echo")]
struct Cli {
    /// TAP interface to attach to (it must exist).
    #[arg(long, default_value = "tap0")]
    tap: String,
    /// Our IPv4 address and prefix length.
    #[arg(long, default_value = "192.168.69.1/24", value_parser = parse_cidr)]
    ip: Ipv4Cidr,
    /// Our Ethernet address.
    #[arg(long, default_value = "02:00:00:00:00:01", value_parser = parse_mac)]
    mac: [u8; 6],
    /// TCP port to listen on.
    #[arg(long, default_value_t = 139)]
    port: u16,
    /// Listening TCP sockets (connections served at once).
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=1024))]
    sockets: u16,
    /// Receive and send buffer of each socket, in bytes (each direction), like `netbt serve
    /// --session-buffer`.
    #[arg(long, default_value_t = 8192, value_name = "BYTES", value_parser = parse_session_buffer)]
    buffer: usize,
}

/// Longest wait in one loop turn, so a signal is seen promptly.
const MAX_WAIT: StdDuration = StdDuration::from_millis(100);
/// SESSION REQUEST (RFC 1002 §4.3.2).
const SESSION_REQUEST: u8 = 0x81;
/// POSITIVE SESSION RESPONSE (RFC 1002 §4.3.3).
const POSITIVE_RESPONSE: [u8; 4] = [0x82, 0, 0, 0];

/// Where a connection is.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Conn {
    /// Listening, or connected with nothing received yet.
    Start,
    /// Consuming a session request: this many bytes of it are still to come.
    Request(usize),
    /// The request is consumed; the positive response is still to be queued.
    Respond,
    /// Pure byte echo.
    Echo,
}

#[derive(Default)]
struct Counters {
    connections: u64,
    handshakes: u64,
    echoed: u64,
}

fn main() {
    let cli = Cli::parse();
    env_logger::init();
    let mut device = match TapDevice::open(&cli.tap) {
        Ok(device) => device,
        Err(e) => {
            eprintln!(
                "smoltcp_echo: cannot open TAP device {}: {e} (create it as root with `ip tuntap \
                 add dev {} mode tap`)",
                cli.tap, cli.tap
            );
            std::process::exit(2);
        }
    };
    let fd = device.as_raw_fd();
    let start = StdInstant::now();
    let clock = || Instant::from_micros(start.elapsed().as_micros() as i64);

    let mut config = Config::new(HardwareAddress::Ethernet(EthernetAddress(cli.mac)));
    config.random_seed = entropy();
    let mut iface = Interface::new(config, &mut device, clock());
    iface.update_ip_addrs(|addrs| {
        addrs.push(IpCidr::Ipv4(cli.ip)).expect("one address fits");
    });

    // All storage allocated once, as netbt does.
    let count = usize::from(cli.sockets);
    let storage: Vec<SocketStorage<'static>> = (0..count).map(|_| SocketStorage::EMPTY).collect();
    let mut sockets = SocketSet::new(storage);
    let mut conns: Vec<(SocketHandle, Conn)> = Vec::with_capacity(count);
    for _ in 0..count {
        let rx = tcp::SocketBuffer::new(vec![0u8; cli.buffer]);
        let tx = tcp::SocketBuffer::new(vec![0u8; cli.buffer]);
        let mut socket = tcp::Socket::new(rx, tx);
        // As netbt's session slots: no Nagle, smoltcp's defaults otherwise.
        socket.set_nagle_enabled(false);
        socket.listen(cli.port).expect("a fresh socket listens");
        conns.push((sockets.add(socket), Conn::Start));
    }
    let mut scratch = vec![0u8; cli.buffer];

    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        if let Err(e) = signal_hook::flag::register(signal, Arc::clone(&stop)) {
            eprintln!("smoltcp_echo: cannot install signal handler: {e}");
            std::process::exit(2);
        }
    }
    println!(
        "smoltcp_echo ready on {} {} port {} sockets {} buffer {}",
        device.name(),
        cli.ip,
        cli.port,
        count,
        cli.buffer
    );
    let _ = std::io::stdout().flush();

    let mut counters = Counters::default();
    while !stop.load(Ordering::Relaxed) {
        let now = clock();
        iface.poll(now, &mut device, &mut sockets);
        for (handle, conn) in conns.iter_mut() {
            let socket = sockets.get_mut::<tcp::Socket>(*handle);
            service(socket, conn, cli.port, &mut scratch, &mut counters);
        }
        while iface.poll_egress(now, &mut device, &mut sockets) != PollResult::None {}
        let wait = match iface.poll_delay(clock(), &sockets) {
            Some(delay) => StdDuration::from_micros(delay.total_micros()).min(MAX_WAIT),
            None => MAX_WAIT,
        };
        if !wait.is_zero() {
            wait_readable(fd, wait);
        }
    }
    eprintln!(
        "smoltcp_echo: {} connections, {} session requests answered, {} bytes echoed",
        counters.connections, counters.handshakes, counters.echoed
    );
}

/// One socket's turn: re-listen when closed, the handshake, the echo, the close.
fn service(
    socket: &mut tcp::Socket,
    conn: &mut Conn,
    port: u16,
    scratch: &mut [u8],
    counters: &mut Counters,
) {
    match socket.state() {
        tcp::State::Closed => {
            *conn = Conn::Start;
            if socket.listen(port).is_err() {
                log::warn!("socket cannot listen on port {port}");
            }
            return;
        }
        tcp::State::Listen | tcp::State::SynReceived => {
            *conn = Conn::Start;
            return;
        }
        _ => {}
    }
    if *conn == Conn::Start && socket.recv_queue() > 0 {
        let mut header = [0u8; 4];
        let _ = socket.peek_slice(&mut header[..1]);
        if header[0] != SESSION_REQUEST {
            *conn = Conn::Echo;
        } else if socket.peek_slice(&mut header) == Ok(header.len()) {
            let length = (usize::from(header[1] & 0x01) << 16)
                | usize::from(u16::from_be_bytes([header[2], header[3]]));
            *conn = Conn::Request(header.len() + length);
        } else if !socket.may_recv() {
            // A partial header and the peer closed: echo what there is.
            *conn = Conn::Echo;
        }
        // (Otherwise wait for the rest of the header: its length field.)
        if *conn != Conn::Start {
            counters.connections += 1;
        }
    }
    if let Conn::Request(left) = *conn {
        let taken = socket
            .recv(|buffer| {
                let n = buffer.len().min(left);
                (n, n)
            })
            .unwrap_or(0);
        *conn = if taken == left {
            Conn::Respond
        } else {
            Conn::Request(left - taken)
        };
    }
    if *conn == Conn::Respond && socket.send_capacity() - socket.send_queue() >= 4 {
        let _ = socket.send_slice(&POSITIVE_RESPONSE);
        counters.handshakes += 1;
        *conn = Conn::Echo;
    }
    if *conn == Conn::Echo {
        // Copy rx -> tx as far as both buffers allow (the receive buffer may wrap, the send
        // buffer too: loop until one of them is exhausted).
        loop {
            let room = socket.send_capacity() - socket.send_queue();
            let n = room.min(socket.recv_queue()).min(scratch.len());
            if n == 0 {
                break;
            }
            let got = socket.recv_slice(&mut scratch[..n]).unwrap_or(0);
            if got == 0 {
                break;
            }
            let sent = socket.send_slice(&scratch[..got]).unwrap_or(0);
            debug_assert_eq!(sent, got, "room was checked");
            counters.echoed += got as u64;
        }
    }
    // The peer closed: close our side once everything it sent has been handled and echoed.
    if !socket.may_recv() && socket.may_send() && socket.recv_queue() == 0 && *conn != Conn::Respond
    {
        socket.close();
    }
}
