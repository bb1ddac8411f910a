//! `nbss_responder`: a minimal NetBIOS session service responder on the kernel's TCP.
//!
//! The machine's practical ceiling for `nbss_load`: what a session service costs when it does
//! nothing but the protocol. Each thread owns a listening socket (SO_REUSEPORT when there are
//! several) and a level-triggered epoll loop; frames are parsed and built with
//! `netbt::wire::nbss`.
//!
//! ```text
//! nbss_responder [--listen IP:PORT] [--refuse] [--refuse-code XX] [--threads N]
//!                [--backlog N] [--duration SECS]
//! ```
//!
//! * `--listen IP:PORT` (default `0.0.0.0:139`).
//! * Any well-formed SESSION REQUEST (whatever the names) is answered with a POSITIVE SESSION
//!   RESPONSE (0x82) and the session is established. With `--refuse` it is answered with a
//!   NEGATIVE SESSION RESPONSE (0x83) carrying `--refuse-code` (hex, default 83: "called name
//!   present, but insufficient resources") and the responder closes.
//! * A malformed request, or a session message before any request, gets 0x83 with 0x8F
//!   (unspecified error) and a close. Keep-alives (0x85) are ignored, before and after the
//!   request.
//! * In an established session every session message is echoed back unchanged (the 17-bit
//!   length with the `E` bit is honoured, bodies are streamed); other frames are dropped.
//!   The session is closed when the peer closes or resets it.
//! * `--threads N` (default 1) listening sockets and loops; `--backlog N` (default 4096) for
//!   `listen`; `--duration SECS` exits after that long (default: run until SIGINT/SIGTERM).
//!
//! Prints `nbss_responder listening on IP:PORT ...` on stdout once it listens, and its counters
//! on stderr when it exits (SIGINT/SIGTERM or the duration). Needs the `std` feature (the
//! default): `cargo run --release --example nbss_responder -- --help`.

mod common;

use std::io;
use std::net::SocketAddrV4;
use std::os::fd::RawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clap::Parser;
use common::{errno, raise_nofile};
use netbt::wire::nbss::{HEADER_LEN, MessageType, NegativeCode, Packet, Repr};

/// Minimal NetBIOS session service (RFC 1002, TCP 139) on the kernel's TCP: answers session
/// requests with 0x82 (or 0x83 with --refuse) and echoes session messages.
#[derive(Parser)]
#[command(name = "nbss_responder")]
struct Cli {
    /// Address and port to listen on.
    #[arg(long, default_value = "0.0.0.0:139")]
    listen: SocketAddrV4,
    /// Refuse every session request with a negative session response, then close.
    #[arg(long)]
    refuse: bool,
    /// The error code of the negative response with --refuse, in hex.
    #[arg(long = "refuse-code", value_name = "XX", default_value = "83", value_parser = parse_hex)]
    refuse_code: u8,
    /// Listening sockets (SO_REUSEPORT when more than one), each with its own thread and epoll
    /// loop.
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// listen(2) backlog.
    #[arg(long, default_value_t = 4096)]
    backlog: i32,
    /// Exit after SECS seconds (default: run until SIGINT or SIGTERM).
    #[arg(long, value_name = "SECS")]
    duration: Option<f64>,
}

fn parse_hex(text: &str) -> Result<u8, String> {
    let digits = text.trim_start_matches("0x");
    u8::from_str_radix(digits, 16).map_err(|e| e.to_string())
}

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

fn install_signals() {
    for sig in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_signal as *const () as libc::sighandler_t;
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaction(sig, &action, std::ptr::null_mut());
        }
    }
    // SAFETY: ignoring SIGPIPE is always sound; writes then fail with EPIPE instead.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
    }
}

fn fail(what: &str) -> ! {
    eprintln!("nbss_responder: {what}: {}", io::Error::last_os_error());
    std::process::exit(1);
}

fn set_int_opt(fd: RawFd, level: libc::c_int, name: libc::c_int, value: libc::c_int) -> bool {
    // SAFETY: fd is a socket we own; value is a local c_int.
    unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (&value as *const libc::c_int).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        ) == 0
    }
}

fn listener(addr: SocketAddrV4, backlog: i32, reuse_port: bool) -> RawFd {
    // SAFETY: plain syscall.
    let fd = unsafe {
        libc::socket(
            libc::AF_INET,
            libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            0,
        )
    };
    if fd < 0 {
        fail("socket");
    }
    set_int_opt(fd, libc::SOL_SOCKET, libc::SO_REUSEADDR, 1);
    // Only for several threads: a second responder on the same port must fail, not share.
    if reuse_port {
        set_int_opt(fd, libc::SOL_SOCKET, libc::SO_REUSEPORT, 1);
    }
    // Accepted sockets inherit TCP_NODELAY from the listener on Linux.
    set_int_opt(fd, libc::IPPROTO_TCP, libc::TCP_NODELAY, 1);
    let sin = libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: addr.port().to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from(*addr.ip()).to_be(),
        },
        sin_zero: [0; 8],
    };
    // SAFETY: fd is our socket; sin is a valid sockaddr_in of the given length.
    let rc = unsafe {
        libc::bind(
            fd,
            (&sin as *const libc::sockaddr_in).cast(),
            size_of::<libc::sockaddr_in>() as libc::socklen_t,
        )
    };
    if rc < 0 {
        fail(&format!("bind {addr}"));
    }
    // SAFETY: fd is our bound socket.
    if unsafe { libc::listen(fd, backlog) } < 0 {
        fail("listen");
    }
    fd
}

/// Counters, shared by the threads.
#[derive(Default)]
struct Stats {
    accepted: AtomicU64,
    positive: AtomicU64,
    refused: AtomicU64,
    malformed: AtomicU64,
    messages: AtomicU64,
    echoed_bytes: AtomicU64,
    resets: AtomicU64,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Waiting for the session request.
    Request,
    /// Established: echoing.
    Session,
}

/// Longest session request accepted: two names of at most 255 bytes each.
const MAX_REQUEST_BODY: usize = 2 * 255;
/// Stop reading from a session while this much echo output is still unsent.
const OUT_HIGH_WATER: usize = 1 << 20;

struct Conn {
    phase: Phase,
    /// The request phase's partial frame.
    inbuf: Vec<u8>,
    out: Vec<u8>,
    out_off: usize,
    /// Session phase: partial frame header.
    hdr: [u8; HEADER_LEN],
    hdr_len: usize,
    /// Session phase: body bytes of the current frame still to come.
    body_left: usize,
    /// Session phase: whether the current frame's body is echoed.
    echo_body: bool,
    /// Close once the output is written (after a negative response).
    close_after_flush: bool,
    /// The epoll interest currently registered.
    interest: u32,
}

impl Conn {
    fn new() -> Conn {
        Conn {
            phase: Phase::Request,
            inbuf: Vec::new(),
            out: Vec::new(),
            out_off: 0,
            hdr: [0; HEADER_LEN],
            hdr_len: 0,
            body_left: 0,
            echo_body: false,
            close_after_flush: false,
            interest: libc::EPOLLIN as u32,
        }
    }

    fn pending(&self) -> usize {
        self.out.len() - self.out_off
    }
}

struct Responder {
    refuse: Option<u8>,
    stats: Arc<Stats>,
}

fn emit(repr: &Repr, out: &mut Vec<u8>) {
    let at = out.len();
    out.resize(at + repr.buffer_len(), 0);
    repr.emit(&mut Packet::new_unchecked(&mut out[at..]));
}

impl Responder {
    /// Feeds received bytes to a connection: the request phase first, then the echo.
    fn feed(&self, conn: &mut Conn, mut data: &[u8]) {
        if conn.phase == Phase::Request {
            match self.request(conn, data) {
                Some(rest) => data = rest,
                None => return,
            }
        }
        while !data.is_empty() {
            if conn.body_left == 0 {
                let take = (HEADER_LEN - conn.hdr_len).min(data.len());
                conn.hdr[conn.hdr_len..conn.hdr_len + take].copy_from_slice(&data[..take]);
                conn.hdr_len += take;
                data = &data[take..];
                if conn.hdr_len < HEADER_LEN {
                    break;
                }
                conn.hdr_len = 0;
                let packet = Packet::new_unchecked(&conn.hdr[..]);
                conn.body_left = packet.length() as usize;
                conn.echo_body = packet.msg_type() == MessageType::SessionMessage;
                if conn.echo_body {
                    conn.out.extend_from_slice(&conn.hdr);
                    self.stats.messages.fetch_add(1, Ordering::Relaxed);
                }
            } else {
                let take = conn.body_left.min(data.len());
                if conn.echo_body {
                    conn.out.extend_from_slice(&data[..take]);
                    self.stats
                        .echoed_bytes
                        .fetch_add(take as u64, Ordering::Relaxed);
                }
                conn.body_left -= take;
                data = &data[take..];
            }
        }
    }

    /// The request phase. Returns the bytes after the request once the session is established,
    /// `None` while more is needed or after a refusal.
    fn request<'d>(&self, conn: &mut Conn, data: &'d [u8]) -> Option<&'d [u8]> {
        let mut consumed = 0;
        loop {
            // Top up the header, then the body, a frame at a time.
            let have = conn.inbuf.len();
            let want = if have < HEADER_LEN {
                HEADER_LEN
            } else {
                Packet::new_unchecked(&conn.inbuf[..]).total_len()
            };
            let take = (want - have).min(data.len() - consumed);
            conn.inbuf
                .extend_from_slice(&data[consumed..consumed + take]);
            consumed += take;
            if conn.inbuf.len() < HEADER_LEN {
                return None;
            }
            let packet = Packet::new_unchecked(&conn.inbuf[..]);
            let body = packet.length() as usize;
            let kind = packet.msg_type();
            if kind == MessageType::SessionMessage || body > MAX_REQUEST_BODY {
                self.negative(conn, NegativeCode::Unspecified);
                self.stats.malformed.fetch_add(1, Ordering::Relaxed);
                return None;
            }
            if conn.inbuf.len() < HEADER_LEN + body {
                if consumed == data.len() {
                    return None;
                }
                continue;
            }
            let parsed = Repr::parse(&Packet::new_unchecked(&conn.inbuf[..]));
            conn.inbuf.clear();
            match parsed {
                Ok(Repr::KeepAlive) => continue,
                Ok(Repr::SessionRequest { .. }) => match self.refuse {
                    Some(code) => {
                        self.negative(conn, NegativeCode::from(code));
                        self.stats.refused.fetch_add(1, Ordering::Relaxed);
                        return None;
                    }
                    None => {
                        emit(&Repr::PositiveResponse, &mut conn.out);
                        conn.phase = Phase::Session;
                        conn.inbuf = Vec::new();
                        self.stats.positive.fetch_add(1, Ordering::Relaxed);
                        return Some(&data[consumed..]);
                    }
                },
                _ => {
                    self.negative(conn, NegativeCode::Unspecified);
                    self.stats.malformed.fetch_add(1, Ordering::Relaxed);
                    return None;
                }
            }
        }
    }

    fn negative(&self, conn: &mut Conn, code: NegativeCode) {
        emit(&Repr::NegativeResponse { code }, &mut conn.out);
        conn.close_after_flush = true;
    }
}

/// Writes what is pending. Returns false if the connection failed.
fn flush(fd: RawFd, conn: &mut Conn, stats: &Stats) -> bool {
    while conn.pending() > 0 {
        let rest = &conn.out[conn.out_off..];
        // SAFETY: fd is our socket; rest is a valid buffer.
        let n = unsafe { libc::send(fd, rest.as_ptr().cast(), rest.len(), libc::MSG_NOSIGNAL) };
        if n < 0 {
            let e = errno();
            if e == libc::EAGAIN || e == libc::EINTR {
                break;
            }
            if e == libc::ECONNRESET || e == libc::EPIPE {
                stats.resets.fetch_add(1, Ordering::Relaxed);
            }
            return false;
        }
        conn.out_off += n as usize;
    }
    if conn.pending() == 0 {
        conn.out.clear();
        conn.out_off = 0;
    } else if conn.out_off > OUT_HIGH_WATER {
        conn.out.drain(..conn.out_off);
        conn.out_off = 0;
    }
    true
}

fn close_conn(fd: RawFd, conns: &mut [Option<Conn>]) {
    conns[fd as usize] = None;
    // SAFETY: fd is an accepted socket we close exactly once; closing removes it from epoll.
    unsafe {
        libc::close(fd);
    }
}

fn run(lfd: RawFd, responder: Responder, deadline: Option<Instant>) {
    // SAFETY: plain syscall.
    let ep = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
    if ep < 0 {
        fail("epoll_create1");
    }
    let mut ev = libc::epoll_event {
        events: libc::EPOLLIN as u32,
        u64: u64::MAX,
    };
    // SAFETY: ep and lfd are ours; ev is a local.
    if unsafe { libc::epoll_ctl(ep, libc::EPOLL_CTL_ADD, lfd, &mut ev) } < 0 {
        fail("epoll_ctl");
    }
    let stats = Arc::clone(&responder.stats);
    let mut conns: Vec<Option<Conn>> = Vec::new();
    let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; 512];
    let mut rbuf = vec![0u8; 256 * 1024];
    while !STOP.load(Ordering::Relaxed) && deadline.is_none_or(|d| Instant::now() < d) {
        // SAFETY: ep is ours; events has 512 entries.
        let n = unsafe { libc::epoll_wait(ep, events.as_mut_ptr(), events.len() as i32, 100) };
        for ev in events.iter().take(n.max(0) as usize) {
            let (token, bits) = (ev.u64, ev.events);
            if token == u64::MAX {
                accept_all(lfd, ep, &mut conns, &stats);
                continue;
            }
            let fd = token as RawFd;
            let Some(conn) = conns.get_mut(fd as usize).and_then(Option::as_mut) else {
                continue;
            };
            let mut alive = true;
            if bits & (libc::EPOLLIN | libc::EPOLLHUP | libc::EPOLLERR) as u32 != 0 {
                alive = read_conn(fd, conn, &responder, &mut rbuf);
            }
            if alive && conn.pending() > 0 {
                alive = flush(fd, conn, &stats);
            }
            if alive && conn.close_after_flush && conn.pending() == 0 {
                alive = false;
            }
            if !alive {
                close_conn(fd, &mut conns);
                continue;
            }
            let mut want = 0u32;
            if conn.pending() < OUT_HIGH_WATER && !conn.close_after_flush {
                want |= libc::EPOLLIN as u32;
            }
            if conn.pending() > 0 {
                want |= libc::EPOLLOUT as u32;
            }
            if want != conn.interest {
                conn.interest = want;
                let mut ev = libc::epoll_event {
                    events: want,
                    u64: fd as u64,
                };
                // SAFETY: ep and fd are ours; ev is a local.
                unsafe { libc::epoll_ctl(ep, libc::EPOLL_CTL_MOD, fd, &mut ev) };
            }
        }
    }
    for (fd, conn) in conns.iter().enumerate() {
        if conn.is_some() {
            // SAFETY: an accepted socket still open.
            unsafe { libc::close(fd as RawFd) };
        }
    }
    // SAFETY: our epoll descriptor.
    unsafe { libc::close(ep) };
}

/// Reads until the socket would block (or a bounded amount), feeding the connection. Returns
/// false when the connection is over.
fn read_conn(fd: RawFd, conn: &mut Conn, responder: &Responder, rbuf: &mut [u8]) -> bool {
    // Level-triggered: a few reads per wakeup keep one busy session from starving the rest.
    for _ in 0..4 {
        if conn.pending() >= OUT_HIGH_WATER || conn.close_after_flush {
            return true;
        }
        // SAFETY: fd is our socket; rbuf is a valid writable buffer.
        let n = unsafe { libc::recv(fd, rbuf.as_mut_ptr().cast(), rbuf.len(), 0) };
        if n == 0 {
            return false;
        }
        if n < 0 {
            let e = errno();
            if e == libc::EAGAIN || e == libc::EINTR {
                return true;
            }
            if e == libc::ECONNRESET {
                responder.stats.resets.fetch_add(1, Ordering::Relaxed);
            }
            return false;
        }
        responder.feed(conn, &rbuf[..n as usize]);
        if (n as usize) < rbuf.len() {
            return true;
        }
    }
    true
}

fn accept_all(lfd: RawFd, ep: RawFd, conns: &mut Vec<Option<Conn>>, stats: &Stats) {
    loop {
        // SAFETY: lfd is our listening socket; no peer address is asked for.
        let fd = unsafe {
            libc::accept4(
                lfd,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            )
        };
        if fd < 0 {
            let e = errno();
            if e != libc::EAGAIN && e != libc::EINTR && e != libc::ECONNABORTED {
                eprintln!(
                    "nbss_responder: accept: {}",
                    io::Error::from_raw_os_error(e)
                );
                if e == libc::EMFILE || e == libc::ENFILE {
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
            if e == libc::ECONNABORTED || e == libc::EINTR {
                continue;
            }
            return;
        }
        stats.accepted.fetch_add(1, Ordering::Relaxed);
        let mut ev = libc::epoll_event {
            events: libc::EPOLLIN as u32,
            u64: fd as u64,
        };
        // SAFETY: ep and fd are ours; ev is a local.
        if unsafe { libc::epoll_ctl(ep, libc::EPOLL_CTL_ADD, fd, &mut ev) } < 0 {
            // SAFETY: the socket we just accepted.
            unsafe { libc::close(fd) };
            continue;
        }
        let index = fd as usize;
        if conns.len() <= index {
            conns.resize_with(index + 1, || None);
        }
        conns[index] = Some(Conn::new());
    }
}

fn main() {
    let cli = Cli::parse();
    install_signals();
    raise_nofile();
    let threads = cli.threads.max(1);
    let deadline = cli.duration.map(|s| {
        if !(s > 0.0 && s.is_finite()) {
            eprintln!("nbss_responder: --duration must be positive");
            std::process::exit(2);
        }
        Instant::now() + Duration::from_secs_f64(s)
    });
    let refuse = cli.refuse.then_some(cli.refuse_code);
    let listeners: Vec<RawFd> = (0..threads)
        .map(|_| listener(cli.listen, cli.backlog, threads > 1))
        .collect();
    let stats = Arc::new(Stats::default());
    println!(
        "nbss_responder listening on {} threads {} {}",
        cli.listen,
        threads,
        match refuse {
            Some(code) => format!("refusing with 0x83/{code:#04x}"),
            None => "answering 0x82, echoing".to_string(),
        }
    );
    let handles: Vec<_> = listeners
        .into_iter()
        .map(|lfd| {
            let responder = Responder {
                refuse,
                stats: Arc::clone(&stats),
            };
            std::thread::spawn(move || run(lfd, responder, deadline))
        })
        .collect();
    for h in handles {
        let _ = h.join();
    }
    let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
    eprintln!(
        "nbss_responder: accepted {}, positive {}, refused {}, malformed {}, messages {}, echoed {} bytes, resets seen {}",
        get(&stats.accepted),
        get(&stats.positive),
        get(&stats.refused),
        get(&stats.malformed),
        get(&stats.messages),
        get(&stats.echoed_bytes),
        get(&stats.resets),
    );
}
