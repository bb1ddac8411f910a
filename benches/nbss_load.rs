//! `nbss_load`: a load client for a NetBIOS session service (RFC 1002 §4.3, TCP 139).
//!
//! It drives any NetBT session server — `netbt serve`, Samba's smbd on port 139, the
//! `nbss_responder` example — with the same code, so their figures can be compared. Requests are
//! encoded and responses decoded with `netbt::wire::nbss` and `netbt::wire::name`. The client is
//! a hand-written edge-triggered epoll loop per thread (one thread by default), so it does not
//! become the bottleneck before the server does.
//!
//! ```text
//! nbss_load setup [COMMON] [--concurrency N] [--count N] [--duration SECS]
//! nbss_load echo  [COMMON] [--sessions K] [--size M] [--duration SECS] [--bytes N] [--window W]
//! nbss_load hold  [COMMON] [--count N] [--concurrency N] [--hold SECS] [--duration SECS]
//!                 [--release-file PATH]
//!
//! COMMON: --target IP:PORT (127.0.0.1:139)   --called NAME#XX (LABSRV#20; NAME<XX> works too)
//!         --calling NAME#XX (LOADGEN#00)      --scope SCOPE ("")
//!         --close fin|rst (fin)               --threads T (1)
//!         --connect-timeout MS (5000)         --response-timeout MS (10000)
//!         --max-retargets N (3)               --json   --label TEXT
//! ```
//!
//! * `setup`: each session is a TCP connect, a SESSION REQUEST from `--calling` to `--called`,
//!   the response read (4 bytes, 5 for a negative one), then a close. `--concurrency` sessions
//!   are in flight at once. The run is always bounded: by `--count` (default 10 000 when neither
//!   `--count` nor `--duration` is given) and by `--duration` (default 60 s, at most 600 s);
//!   sessions still in flight when the duration ends finish within their timeouts. Reports
//!   sessions/s, positive and negative responses per second, p50/p99/max of the time to the
//!   response (from just before `connect` to the response's last byte), and one count per
//!   outcome.
//! * `echo`: `--sessions` sessions (default 1) each send session messages of `--size` bytes
//!   (default 65 536, at most 131 071, so the `E` bit is exercised) with up to `--window`
//!   messages in flight (default 2) and read the echoes back, checking length and content, for
//!   `--duration` seconds (default 5) or until `--bytes` payload bytes per session were sent.
//!   Reports MB/s (10^6 bytes of echoed payload per second, summed over the sessions).
//! * `hold`: opens `--count` sessions (default 100, `--concurrency` at a time), prints `holding N
//!   sessions` on stderr once every attempt has finished, keeps the positive ones open for
//!   `--hold` seconds (default 10, or until the `--release-file` exists), then closes them. Reports the outcomes and how many held
//!   sessions the server closed during the hold. For capacity and memory measurements.
//!
//! Retargets (0x84, RFC 1002 §4.3.5): `setup` and `hold` follow them (as a Windows client does,
//! and unlike Samba's smbclient and impacket): the client closes and sends the same request to
//! the address and port named, at most `--max-retargets` times per session (default 3, at most
//! 8; 0: not followed). Each session's time runs from its first connect to its last answer.
//! The report counts the positive sessions by the hops they took (`positive_hops_0` answered
//! by the target, `positive_hops_1` after one retarget, ...) and the retargets followed; a
//! retarget to an address the session was already sent to is `retarget_loop`, one past the
//! limit `retarget_limit` (both failures). `echo` does not follow retargets.
//!
//! Outcomes: `positive` (0x82); `neg_80`, `neg_81`, `neg_82`, `neg_83`, `neg_8f`, `neg_other`
//! (0x83 by error code); `retarget` (0x84, not followed: `--max-retargets 0`, or `echo`);
//! `retarget_loop`, `retarget_limit` (see above); `refused` (the SYN was answered with a RST:
//! ECONNREFUSED); `reset` (a RST after the connection was established: ECONNRESET/EPIPE); `eof`
//! (the server closed without a complete response); `bad_response` (anything else on the wire);
//! `connect_timeout`, `response_timeout` (our deadlines, or the kernel's ETIMEDOUT);
//! `connect_error` (any other connect failure); `eaddrnotavail` (no local port left: client-side
//! TIME_WAIT, use `--close rst`); `other`; `unfinished` (still in flight at the hard stop).
//!
//! `--close rst` sets SO_LINGER {1, 0}, so closing sends a RST and leaves no TIME_WAIT on the
//! client; `fin` closes normally. `--json` prints one JSON object per run on stdout (flat keys)
//! and the human-readable lines on stderr; without it the human lines go to stdout.
//!
//! Needs the `std` feature (the default): `cargo run --release --example nbss_load -- --help`.

mod common;

use std::fmt::Write as _;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, SocketAddrV4, TcpStream};
use std::os::fd::{AsRawFd, RawFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use clap::{Args, Parser, Subcommand, ValueEnum};
use common::{errno, raise_nofile};
use netbt::wire::name::{Name, NbName, Scope};
use netbt::wire::nbss::{HEADER_LEN, MAX_LENGTH, MessageType, Packet, Repr};

/// Load client for a NetBIOS session service (RFC 1002, TCP 139): session setups, echo
/// throughput, held sessions.
#[derive(Parser)]
#[command(name = "nbss_load", after_help = AFTER_HELP)]
struct Cli {
    #[command(subcommand)]
    mode: Mode,
}

const AFTER_HELP: &str = "\
Outcomes counted per session: positive (0x82); neg_80, neg_81, neg_82, neg_83, neg_8f, neg_other
(0x83 by error code); retarget (0x84 not followed: --max-retargets 0, or echo); retarget_loop (a
retarget to an address already tried); retarget_limit (more than --max-retargets); refused (SYN
answered with RST); reset (RST after the
connection was established); eof (closed without a complete response); bad_response;
connect_timeout; response_timeout; connect_error; eaddrnotavail (no local port left: client
TIME_WAIT, use --close rst); other; unfinished (in flight at the hard stop).

Human-readable lines go to stdout, or to stderr with --json, which prints one flat JSON object per
run on stdout. Every run is bounded in count and time.";

#[derive(Subcommand)]
enum Mode {
    /// Session setups: connect, SESSION REQUEST, read the response, close; repeated.
    Setup(SetupArgs),
    /// Echo throughput: session messages sent and their echoes read back.
    Echo(EchoArgs),
    /// Open sessions and keep them open (capacity and memory tests).
    Hold(HoldArgs),
}

#[derive(Args, Clone)]
struct Common {
    /// Server address.
    #[arg(long, default_value = "127.0.0.1:139")]
    target: SocketAddrV4,
    /// Called name: NAME, NAME#XX or NAME<XX> (default suffix 20).
    #[arg(long, default_value = "LABSRV#20", value_parser = parse_called)]
    called: Name,
    /// Calling name: NAME, NAME#XX or NAME<XX> (default suffix 00).
    #[arg(long, default_value = "LOADGEN", value_parser = parse_calling)]
    calling: Name,
    /// NetBIOS scope of both names (dotted).
    #[arg(long, default_value = "")]
    scope: String,
    /// How the client closes: fin (normal close) or rst (SO_LINGER {1,0}: no client TIME_WAIT).
    #[arg(long, value_enum, default_value_t = Close::Fin)]
    close: Close,
    /// Client threads, each with its own epoll loop and a share of the concurrency.
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Connect deadline in milliseconds.
    #[arg(long = "connect-timeout", value_name = "MS", default_value_t = 5000)]
    connect_timeout: u64,
    /// Deadline for the response after the request was sent, in milliseconds.
    #[arg(long = "response-timeout", value_name = "MS", default_value_t = 10000)]
    response_timeout: u64,
    /// Retargets (0x84) followed per session in setup and hold (0: none, a 0x84 is the
    /// outcome `retarget`).
    #[arg(long = "max-retargets", value_name = "N", default_value_t = 3,
          value_parser = clap::value_parser!(u8).range(0..=MAX_RETARGETS as i64))]
    max_retargets: u8,
    /// Print one JSON object on stdout (the human lines go to stderr).
    #[arg(long)]
    json: bool,
    /// Free text copied into the output (for scripts).
    #[arg(long, default_value = "")]
    label: String,
}

#[derive(Args)]
struct SetupArgs {
    #[command(flatten)]
    common: Common,
    /// Sessions in flight at once.
    #[arg(long, default_value_t = 1)]
    concurrency: usize,
    /// Sessions to run (default 10000 when --duration is not given either).
    #[arg(long)]
    count: Option<u64>,
    /// Stop starting sessions after SECS seconds (default 60, at most 600).
    #[arg(long, value_name = "SECS")]
    duration: Option<f64>,
}

#[derive(Args)]
struct EchoArgs {
    #[command(flatten)]
    common: Common,
    /// Parallel sessions.
    #[arg(long, default_value_t = 1)]
    sessions: usize,
    /// Session message payload size in bytes (at most 131071).
    #[arg(long, default_value_t = 65536)]
    size: u32,
    /// Seconds of sending per session (at most 600).
    #[arg(long, value_name = "SECS", default_value_t = 5.0)]
    duration: f64,
    /// Stop after this many payload bytes sent per session (rounded up to whole messages).
    #[arg(long)]
    bytes: Option<u64>,
    /// Messages in flight per session.
    #[arg(long, default_value_t = 2)]
    window: u64,
}

#[derive(Args)]
struct HoldArgs {
    #[command(flatten)]
    common: Common,
    /// Sessions to open.
    #[arg(long, default_value_t = 100)]
    count: u64,
    /// Session setups in flight at once while opening.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Seconds to keep the sessions open once every attempt has finished (at most 600).
    #[arg(long, value_name = "SECS", default_value_t = 10.0)]
    hold: f64,
    /// Stop starting sessions after SECS seconds of opening (at most 600).
    #[arg(long, value_name = "SECS", default_value_t = 60.0)]
    duration: f64,
    /// Release the held sessions early, as soon as this file exists (checked every 20 ms).
    #[arg(long, value_name = "PATH")]
    release_file: Option<std::path::PathBuf>,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Close {
    /// Normal close (FIN); the client keeps TIME_WAIT.
    Fin,
    /// SO_LINGER {1, 0}: the close sends a RST, no TIME_WAIT.
    Rst,
}

impl Close {
    fn as_str(self) -> &'static str {
        match self {
            Close::Fin => "fin",
            Close::Rst => "rst",
        }
    }
}

/// Longest run any mode accepts, in seconds.
const MAX_SECS: f64 = 600.0;

/// Most retargets `--max-retargets` lets a session follow.
const MAX_RETARGETS: usize = 8;

fn parse_name(text: &str, default_suffix: u8) -> Result<Name, String> {
    // Accept Samba's NAME#XX and the NAME<XX> that tools print.
    let owned;
    let text = match text.strip_suffix('>').and_then(|t| t.rsplit_once('<')) {
        Some((base, suffix)) => {
            owned = format!("{base}#{suffix}");
            owned.as_str()
        }
        None => text,
    };
    Name::parse_text(text, default_suffix).map_err(|e| format!("{e:?}"))
}

fn parse_called(text: &str) -> Result<Name, String> {
    parse_name(text, Name::SUFFIX_SERVER)
}

fn parse_calling(text: &str) -> Result<Name, String> {
    parse_name(text, Name::SUFFIX_WORKSTATION)
}

fn secs(value: f64, what: &str) -> Duration {
    if !(value > 0.0 && value <= MAX_SECS) {
        eprintln!("nbss_load: {what} must be more than 0 and at most {MAX_SECS} seconds");
        std::process::exit(2);
    }
    Duration::from_secs_f64(value)
}

// ---------------------------------------------------------------------------------------------
// Outcomes

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Outcome {
    Positive,
    Neg80,
    Neg81,
    Neg82,
    Neg83,
    Neg8F,
    NegOther,
    Retarget,
    RetargetLoop,
    RetargetLimit,
    Refused,
    Reset,
    Eof,
    BadResponse,
    ConnectTimeout,
    ResponseTimeout,
    ConnectError,
    AddrNotAvail,
    Other,
    Unfinished,
}

const OUTCOMES: usize = 20;

const OUTCOME_NAMES: [&str; OUTCOMES] = [
    "positive",
    "neg_80",
    "neg_81",
    "neg_82",
    "neg_83",
    "neg_8f",
    "neg_other",
    "retarget",
    "retarget_loop",
    "retarget_limit",
    "refused",
    "reset",
    "eof",
    "bad_response",
    "connect_timeout",
    "response_timeout",
    "connect_error",
    "eaddrnotavail",
    "other",
    "unfinished",
];

impl Outcome {
    fn negative(code: u8) -> Outcome {
        match code {
            0x80 => Outcome::Neg80,
            0x81 => Outcome::Neg81,
            0x82 => Outcome::Neg82,
            0x83 => Outcome::Neg83,
            0x8F => Outcome::Neg8F,
            _ => Outcome::NegOther,
        }
    }

    fn is_negative(self) -> bool {
        matches!(
            self,
            Outcome::Neg80
                | Outcome::Neg81
                | Outcome::Neg82
                | Outcome::Neg83
                | Outcome::Neg8F
                | Outcome::NegOther
        )
    }

    /// A session response arrived (its latency is recorded).
    fn is_response(self) -> bool {
        self == Outcome::Positive || self == Outcome::Retarget || self.is_negative()
    }

    /// Classifies an errno of the connect phase.
    fn connect_errno(errno: i32) -> Outcome {
        match errno {
            libc::ECONNREFUSED => Outcome::Refused,
            libc::ETIMEDOUT => Outcome::ConnectTimeout,
            libc::EADDRNOTAVAIL => Outcome::AddrNotAvail,
            libc::ECONNRESET => Outcome::Reset,
            _ => Outcome::ConnectError,
        }
    }

    /// Classifies an errno after the connection was established.
    fn io_errno(errno: i32) -> Outcome {
        match errno {
            libc::ECONNRESET | libc::EPIPE => Outcome::Reset,
            libc::ETIMEDOUT => Outcome::ResponseTimeout,
            _ => Outcome::Other,
        }
    }
}

type Counts = [u64; OUTCOMES];

/// What a response buffer holds so far.
enum Parsed {
    /// Not a complete frame yet.
    Need,
    /// A keep-alive of this many bytes precedes the response: skip it.
    Skip(usize),
    /// The response, complete.
    Done(Outcome),
    /// A retarget response, complete: go there.
    Retarget(SocketAddrV4),
}

/// Longest response frame: a retarget response (4 + 6 bytes).
const RESPONSE_BUF: usize = 16;

fn parse_response(buf: &[u8]) -> Parsed {
    if buf.len() < HEADER_LEN {
        return Parsed::Need;
    }
    let packet = Packet::new_unchecked(buf);
    if packet.msg_type() == MessageType::KeepAlive && packet.length() == 0 {
        return Parsed::Skip(HEADER_LEN);
    }
    let total = packet.total_len();
    if total > RESPONSE_BUF {
        return Parsed::Done(Outcome::BadResponse);
    }
    if buf.len() < total {
        return Parsed::Need;
    }
    match Repr::parse(&Packet::new_unchecked(&buf[..total])) {
        Ok(Repr::PositiveResponse) => Parsed::Done(Outcome::Positive),
        Ok(Repr::NegativeResponse { code }) => Parsed::Done(Outcome::negative(u8::from(code))),
        Ok(Repr::RetargetResponse { address, port }) => {
            Parsed::Retarget(SocketAddrV4::new(address, port))
        }
        _ => Parsed::Done(Outcome::BadResponse),
    }
}

/// What a session does with a retarget to `to`, having connected to `chain` so far (its
/// target first, then each retarget's address) and allowed `max` retargets: `None` to follow
/// it, else the outcome that ends it (`Retarget` when none are followed, `RetargetLoop` for an
/// address already tried, `RetargetLimit` past `max`).
fn retarget_verdict(chain: &[SocketAddrV4], to: SocketAddrV4, max: usize) -> Option<Outcome> {
    if max == 0 {
        Some(Outcome::Retarget)
    } else if chain.contains(&to) {
        Some(Outcome::RetargetLoop)
    } else if chain.len() > max {
        Some(Outcome::RetargetLimit)
    } else {
        None
    }
}

fn session_request(common: &Common) -> Vec<u8> {
    let scope = Scope::parse_text(&common.scope).unwrap_or_else(|e| {
        eprintln!("nbss_load: bad --scope: {e:?}");
        std::process::exit(2);
    });
    let repr = Repr::SessionRequest {
        called: NbName::new(common.called, scope),
        calling: NbName::new(common.calling, scope),
    };
    let mut bytes = vec![0u8; repr.buffer_len()];
    repr.emit(&mut Packet::new_unchecked(&mut bytes[..]));
    bytes
}

/// The `--label` as it appears in the human lines.
fn label(common: &Common) -> String {
    if common.label.is_empty() {
        String::new()
    } else {
        format!(" [{}]", common.label)
    }
}

fn called_text(common: &Common) -> String {
    let scope = Scope::parse_text(&common.scope).unwrap_or(Scope::NONE);
    NbName::new(common.called, scope).to_string()
}

/// The first line of a report: the mode, its label, the target and the called name, then what
/// the mode adds (`rest`).
fn headline(mode: &str, common: &Common, rest: std::fmt::Arguments) -> String {
    format!(
        "{mode}{} target {} called {} {rest}\n",
        label(common),
        common.target,
        called_text(common)
    )
}

fn sockaddr(target: SocketAddrV4) -> libc::sockaddr_in {
    libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: target.port().to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from(*target.ip()).to_be(),
        },
        sin_zero: [0; 8],
    }
}

fn set_linger_rst(fd: RawFd) {
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: fd is a socket we own; the option value is a local struct of the right size.
    unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            size_of::<libc::linger>() as libc::socklen_t,
        );
    }
}

fn so_error(fd: RawFd) -> i32 {
    let mut err: libc::c_int = 0;
    let mut len = size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: fd is a socket we own; err and len are locals of the right size.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_ERROR,
            (&mut err as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    if rc < 0 { errno() } else { err }
}

fn close_fd(fd: RawFd) {
    // SAFETY: fd is a descriptor this program opened and closes exactly once.
    unsafe {
        libc::close(fd);
    }
}

// ---------------------------------------------------------------------------------------------
// The setup engine (setup and hold): one epoll loop per thread.

/// Everything the worker threads share.
struct Shared {
    request: Vec<u8>,
    target: SocketAddrV4,
    /// Retargets followed per session at most.
    max_retargets: u8,
    close: Close,
    connect_timeout: Duration,
    response_timeout: Duration,
    /// Sessions to start in all (u64::MAX: bounded by time only).
    count: u64,
    started: AtomicU64,
    /// No session starts at or after this instant.
    stop_starting_at: Instant,
    /// Sessions still in flight at this instant are abandoned as `unfinished`.
    hard_stop_at: Instant,
    /// Hold mode: keep positive sessions open until `release`.
    hold: bool,
    /// Hold mode: threads that finished opening.
    opened_threads: AtomicUsize,
    /// Hold mode: sessions open right now.
    held: AtomicU64,
    release: AtomicBool,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Phase {
    Free,
    Connecting,
    Awaiting,
    Held,
}

struct Slot {
    fd: RawFd,
    phase: Phase,
    /// When the session's first connect began.
    start: Instant,
    deadline: Instant,
    sent: usize,
    buf: [u8; RESPONSE_BUF],
    len: usize,
    /// Retargets followed so far.
    hops: usize,
    /// The addresses connected to: the target, then each retarget's (`hops + 1` of them).
    chain: [SocketAddrV4; MAX_RETARGETS + 1],
}

/// What one worker measured.
struct WorkerOut {
    counts: Counts,
    /// Time to a positive response, in nanoseconds.
    lat_pos: Vec<u64>,
    /// Time to any other response, in nanoseconds.
    lat_neg: Vec<u64>,
    /// When the last session of this worker finished.
    last_finish: Option<Instant>,
    /// Hold mode: held sessions the server closed before the release.
    closed_by_peer: u64,
    /// Positive sessions by the retargets they followed (index: hops).
    positive_by_hops: [u64; MAX_RETARGETS + 1],
    /// Retargets followed (a new connection each).
    retargets_followed: u64,
}

struct Worker<'a> {
    sh: &'a Shared,
    ep: RawFd,
    slots: Vec<Slot>,
    free: Vec<usize>,
    in_progress: usize,
    out: WorkerOut,
}

const EPOLL_BATCH: usize = 256;
/// How often the worker looks for sessions past their deadline.
const SCAN_EVERY: Duration = Duration::from_millis(5);

impl<'a> Worker<'a> {
    fn new(sh: &'a Shared, expected: usize) -> Worker<'a> {
        // SAFETY: plain syscall.
        let ep = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if ep < 0 {
            eprintln!("nbss_load: epoll_create1: {}", io::Error::last_os_error());
            std::process::exit(1);
        }
        Worker {
            sh,
            ep,
            slots: Vec::new(),
            free: Vec::new(),
            in_progress: 0,
            out: WorkerOut {
                counts: [0; OUTCOMES],
                lat_pos: Vec::with_capacity(expected),
                lat_neg: Vec::new(),
                last_finish: None,
                closed_by_peer: 0,
                positive_by_hops: [0; MAX_RETARGETS + 1],
                retargets_followed: 0,
            },
        }
    }

    /// Starts one session. Failures that happen at once are counted here.
    fn start(&mut self) {
        let start = Instant::now();
        let target = self.sh.target;
        let index = match self.free.pop() {
            Some(i) => i,
            None => {
                self.slots.push(Slot {
                    fd: -1,
                    phase: Phase::Free,
                    start,
                    deadline: start,
                    sent: 0,
                    buf: [0; RESPONSE_BUF],
                    len: 0,
                    hops: 0,
                    chain: [target; MAX_RETARGETS + 1],
                });
                self.slots.len() - 1
            }
        };
        let slot = &mut self.slots[index];
        slot.start = start;
        slot.hops = 0;
        slot.chain[0] = target;
        self.in_progress += 1;
        self.connect(index, target, start);
    }

    /// Opens the connection of session `index` to `to` (its target, or where a retarget sent
    /// it) and sends the request once it is up. Failures that happen at once end the session.
    fn connect(&mut self, index: usize, to: SocketAddrV4, now: Instant) {
        self.slots[index].fd = -1;
        // SAFETY: plain syscall.
        let fd = unsafe {
            libc::socket(
                libc::AF_INET,
                libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                0,
            )
        };
        if fd < 0 {
            self.finish(index, Outcome::Other, Instant::now());
            return;
        }
        if self.sh.close == Close::Rst {
            set_linger_rst(fd);
        }
        let addr = sockaddr(to);
        // SAFETY: fd is our socket; addr is a valid sockaddr_in of the given length.
        let rc = unsafe {
            libc::connect(
                fd,
                (&addr as *const libc::sockaddr_in).cast(),
                size_of::<libc::sockaddr_in>() as libc::socklen_t,
            )
        };
        if rc < 0 {
            let e = errno();
            if e != libc::EINPROGRESS {
                close_fd(fd);
                self.finish(index, Outcome::connect_errno(e), Instant::now());
                return;
            }
        }
        let mut ev = libc::epoll_event {
            events: (libc::EPOLLIN | libc::EPOLLOUT | libc::EPOLLRDHUP | libc::EPOLLET) as u32,
            u64: index as u64,
        };
        // SAFETY: ep and fd are ours; ev is a local.
        if unsafe { libc::epoll_ctl(self.ep, libc::EPOLL_CTL_ADD, fd, &mut ev) } < 0 {
            close_fd(fd);
            self.finish(index, Outcome::Other, Instant::now());
            return;
        }
        let slot = &mut self.slots[index];
        slot.fd = fd;
        slot.phase = Phase::Connecting;
        slot.deadline = now + self.sh.connect_timeout;
        slot.sent = 0;
        slot.len = 0;
    }

    /// Session `index` was retargeted to `to`: closes its connection and sends the request
    /// there, unless it was sent there before (a loop), it followed `--max-retargets` already,
    /// or retargets are not followed.
    fn follow(&mut self, index: usize, to: SocketAddrV4, now: Instant) {
        let max = usize::from(self.sh.max_retargets);
        let slot = &mut self.slots[index];
        if let Some(end) = retarget_verdict(&slot.chain[..=slot.hops], to, max) {
            return self.finish(index, end, now);
        }
        // Closing the descriptor also takes it out of the epoll set.
        close_fd(slot.fd);
        slot.fd = -1;
        slot.hops += 1;
        slot.chain[slot.hops] = to;
        self.out.retargets_followed += 1;
        self.connect(index, to, now);
    }

    /// Ends the session setup in `index` with `outcome`.
    fn finish(&mut self, index: usize, outcome: Outcome, now: Instant) {
        let sh = self.sh;
        let slot = &mut self.slots[index];
        if outcome.is_response() {
            let ns = now.saturating_duration_since(slot.start).as_nanos() as u64;
            if outcome == Outcome::Positive {
                self.out.lat_pos.push(ns);
            } else {
                self.out.lat_neg.push(ns);
            }
        }
        self.out.counts[outcome as usize] += 1;
        if outcome == Outcome::Positive {
            self.out.positive_by_hops[slot.hops] += 1;
        }
        self.out.last_finish = Some(now);
        self.in_progress -= 1;
        if sh.hold && outcome == Outcome::Positive {
            slot.phase = Phase::Held;
            sh.held.fetch_add(1, Ordering::Relaxed);
            return;
        }
        close_fd(slot.fd);
        slot.fd = -1;
        slot.phase = Phase::Free;
        self.free.push(index);
    }

    fn release_held(&mut self, index: usize, by_peer: bool) {
        let slot = &mut self.slots[index];
        close_fd(slot.fd);
        slot.fd = -1;
        slot.phase = Phase::Free;
        self.free.push(index);
        self.sh.held.fetch_sub(1, Ordering::Relaxed);
        if by_peer {
            self.out.closed_by_peer += 1;
        }
    }

    fn on_event(&mut self, index: usize, events: u32, now: Instant) {
        let err_mask = (libc::EPOLLERR | libc::EPOLLHUP) as u32;
        let in_mask = (libc::EPOLLIN | libc::EPOLLRDHUP | libc::EPOLLHUP | libc::EPOLLERR) as u32;
        let Some(slot) = self.slots.get_mut(index) else {
            return;
        };
        match slot.phase {
            Phase::Free => {}
            Phase::Connecting => {
                if events & err_mask != 0 {
                    let e = so_error(slot.fd);
                    if e != 0 {
                        self.finish(index, Outcome::connect_errno(e), now);
                        return;
                    }
                }
                if events & libc::EPOLLOUT as u32 == 0 {
                    return;
                }
                let request = &self.sh.request;
                while slot.sent < request.len() {
                    let rest = &request[slot.sent..];
                    // SAFETY: fd is our socket; rest is a valid buffer.
                    let n = unsafe {
                        libc::send(
                            slot.fd,
                            rest.as_ptr().cast(),
                            rest.len(),
                            libc::MSG_NOSIGNAL,
                        )
                    };
                    if n < 0 {
                        let e = errno();
                        if e == libc::EAGAIN {
                            return;
                        }
                        let outcome = if e == libc::ECONNREFUSED {
                            Outcome::Refused
                        } else {
                            Outcome::io_errno(e)
                        };
                        self.finish(index, outcome, now);
                        return;
                    }
                    slot.sent += n as usize;
                }
                slot.phase = Phase::Awaiting;
                slot.deadline = now + self.sh.response_timeout;
                if events & in_mask != 0 {
                    self.read_response(index, now);
                }
            }
            Phase::Awaiting => {
                if events & in_mask != 0 {
                    self.read_response(index, now);
                }
            }
            Phase::Held => {
                if events & in_mask != 0 {
                    self.read_held(index);
                }
            }
        }
    }

    fn read_response(&mut self, index: usize, now: Instant) {
        loop {
            let slot = &mut self.slots[index];
            if slot.len == RESPONSE_BUF {
                self.finish(index, Outcome::BadResponse, now);
                return;
            }
            let room = &mut slot.buf[slot.len..];
            // SAFETY: fd is our socket; room is a valid writable buffer.
            let n = unsafe { libc::recv(slot.fd, room.as_mut_ptr().cast(), room.len(), 0) };
            if n < 0 {
                let e = errno();
                if e != libc::EAGAIN {
                    self.finish(index, Outcome::io_errno(e), now);
                }
                return;
            }
            if n == 0 {
                let outcome = if slot.len == 0 {
                    Outcome::Eof
                } else {
                    Outcome::BadResponse
                };
                self.finish(index, outcome, now);
                return;
            }
            slot.len += n as usize;
            loop {
                let slot = &mut self.slots[index];
                match parse_response(&slot.buf[..slot.len]) {
                    Parsed::Need => break,
                    Parsed::Skip(k) => {
                        slot.buf.copy_within(k..slot.len, 0);
                        slot.len -= k;
                    }
                    Parsed::Done(outcome) => {
                        self.finish(index, outcome, now);
                        return;
                    }
                    Parsed::Retarget(to) => {
                        self.follow(index, to, now);
                        return;
                    }
                }
            }
        }
    }

    /// A held session became readable: keep-alives are discarded, a close or a reset ends it.
    fn read_held(&mut self, index: usize) {
        let mut scratch = [0u8; 512];
        loop {
            let fd = self.slots[index].fd;
            // SAFETY: fd is our socket; scratch is a valid writable buffer.
            let n = unsafe { libc::recv(fd, scratch.as_mut_ptr().cast(), scratch.len(), 0) };
            if n > 0 {
                continue;
            }
            if n < 0 && errno() == libc::EAGAIN {
                return;
            }
            self.release_held(index, true);
            return;
        }
    }

    fn scan_deadlines(&mut self, now: Instant) {
        for index in 0..self.slots.len() {
            let slot = &self.slots[index];
            if now < slot.deadline {
                continue;
            }
            match slot.phase {
                Phase::Connecting => self.finish(index, Outcome::ConnectTimeout, now),
                Phase::Awaiting => self.finish(index, Outcome::ResponseTimeout, now),
                Phase::Free | Phase::Held => {}
            }
        }
    }

    fn run(mut self, concurrency: usize) -> WorkerOut {
        let sh = self.sh;
        let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; EPOLL_BATCH];
        let mut starting = true;
        let mut opened = false;
        let mut last_scan = Instant::now();
        loop {
            let now = Instant::now();
            // At most `concurrency` attempts per turn: connects that fail at once (no local
            // port left) must not spin past the deadline without a fresh clock.
            let mut attempts = 0;
            while starting && self.in_progress < concurrency && attempts < concurrency {
                attempts += 1;
                if now >= sh.stop_starting_at
                    || sh.started.fetch_add(1, Ordering::Relaxed) >= sh.count
                {
                    starting = false;
                    break;
                }
                self.start();
            }
            if !starting && self.in_progress == 0 {
                if !sh.hold {
                    break;
                }
                if !opened {
                    opened = true;
                    sh.opened_threads.fetch_add(1, Ordering::SeqCst);
                }
                if sh.release.load(Ordering::SeqCst) {
                    break;
                }
            }
            if now >= sh.hard_stop_at && self.in_progress > 0 {
                for index in 0..self.slots.len() {
                    let phase = self.slots[index].phase;
                    if phase == Phase::Connecting || phase == Phase::Awaiting {
                        self.finish(index, Outcome::Unfinished, now);
                    }
                }
                starting = false;
                continue;
            }
            let timeout = if self.in_progress > 0 { 5 } else { 50 };
            // SAFETY: ep is our epoll descriptor; events has EPOLL_BATCH entries.
            let n = unsafe {
                libc::epoll_wait(self.ep, events.as_mut_ptr(), EPOLL_BATCH as i32, timeout)
            };
            let now = Instant::now();
            for ev in events.iter().take(n.max(0) as usize) {
                let (index, bits) = (ev.u64 as usize, ev.events);
                self.on_event(index, bits, now);
            }
            if now.duration_since(last_scan) >= SCAN_EVERY {
                last_scan = now;
                self.scan_deadlines(now);
            }
        }
        // Close what is still open (held sessions at the release).
        for index in 0..self.slots.len() {
            if self.slots[index].phase == Phase::Held {
                self.release_held(index, false);
            }
        }
        close_fd(self.ep);
        self.out
    }
}

/// Runs `concurrency` session setups at a time over `threads` workers.
fn run_setups(sh: &Arc<Shared>, concurrency: usize, threads: usize) -> Vec<WorkerOut> {
    let threads = threads.clamp(1, concurrency.max(1));
    let expected = sh.count.min(1 << 20) as usize / threads;
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let sh = Arc::clone(sh);
            let conc = concurrency / threads + usize::from(t < concurrency % threads);
            std::thread::spawn(move || Worker::new(&sh, expected).run(conc.max(1)))
        })
        .collect();
    handles
        .into_iter()
        .map(|h| h.join().expect("worker panicked"))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Reports

/// Nearest-rank percentile of sorted nanoseconds, in milliseconds.
fn percentile_ms(sorted: &[u64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1] as f64 / 1e6)
}

struct Latency {
    n: usize,
    p50: Option<f64>,
    p99: Option<f64>,
    max: Option<f64>,
}

impl Latency {
    fn of(mut ns: Vec<u64>) -> Latency {
        ns.sort_unstable();
        Latency {
            n: ns.len(),
            p50: percentile_ms(&ns, 50.0),
            p99: percentile_ms(&ns, 99.0),
            max: ns.last().map(|&v| v as f64 / 1e6),
        }
    }

    fn human(&self) -> String {
        match (self.p50, self.p99, self.max) {
            (Some(p50), Some(p99), Some(max)) => {
                format!(
                    "n={} p50 {p50:.3} ms, p99 {p99:.3} ms, max {max:.3} ms",
                    self.n
                )
            }
            _ => "n=0".to_string(),
        }
    }

    fn json(&self, prefix: &str, out: &mut Json) {
        out.num(&format!("{prefix}n"), self.n as f64);
        out.opt(&format!("{prefix}p50_ms"), self.p50);
        out.opt(&format!("{prefix}p99_ms"), self.p99);
        out.opt(&format!("{prefix}max_ms"), self.max);
    }
}

/// A hand-formatted flat JSON object.
struct Json(String);

impl Json {
    fn new() -> Json {
        Json(String::from("{"))
    }

    fn key(&mut self, key: &str) {
        if self.0.len() > 1 {
            self.0.push(',');
        }
        json_string(&mut self.0, key);
        self.0.push(':');
    }

    fn str(&mut self, key: &str, value: &str) {
        self.key(key);
        json_string(&mut self.0, value);
    }

    fn num(&mut self, key: &str, value: f64) {
        self.key(key);
        if value.is_finite() {
            if value.fract() == 0.0 && value.abs() < 1e15 {
                let _ = write!(self.0, "{}", value as i64);
            } else {
                let _ = write!(self.0, "{value:.4}");
            }
        } else {
            self.0.push_str("null");
        }
    }

    fn opt(&mut self, key: &str, value: Option<f64>) {
        match value {
            Some(v) => self.num(key, v),
            None => {
                self.key(key);
                self.0.push_str("null");
            }
        }
    }

    fn finish(mut self) -> String {
        self.0.push('}');
        self.0
    }
}

fn json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Prints the human lines (stdout, or stderr with `--json`) and the JSON object.
fn emit(common: &Common, human: &str, json: Json) {
    if common.json {
        eprint!("{human}");
        println!("{}", json.finish());
    } else {
        print!("{human}");
    }
    let _ = io::stdout().flush();
}

fn common_json(mode: &str, common: &Common, json: &mut Json) {
    json.str("mode", mode);
    json.str("label", &common.label);
    json.str("target", &common.target.to_string());
    json.str("called", &called_text(common));
    json.str("close", common.close.as_str());
    json.num("threads", common.threads as f64);
}

fn outcome_lines(counts: &Counts) -> String {
    let mut s = String::from("  outcomes:");
    let mut any = false;
    for (name, &n) in OUTCOME_NAMES.iter().zip(counts) {
        if n > 0 {
            let _ = write!(s, " {name} {n}");
            any = true;
        }
    }
    if !any {
        s.push_str(" none");
    }
    s.push('\n');
    s
}

struct Merged {
    counts: Counts,
    all: Latency,
    pos: Latency,
    neg: Latency,
    last_finish: Option<Instant>,
    closed_by_peer: u64,
    positive_by_hops: [u64; MAX_RETARGETS + 1],
    retargets_followed: u64,
}

fn merge(outs: Vec<WorkerOut>) -> Merged {
    let mut counts = [0u64; OUTCOMES];
    let mut pos = Vec::new();
    let mut neg = Vec::new();
    let mut last_finish: Option<Instant> = None;
    let mut closed_by_peer = 0;
    let mut positive_by_hops = [0u64; MAX_RETARGETS + 1];
    let mut retargets_followed = 0;
    for out in outs {
        for (sum, n) in positive_by_hops.iter_mut().zip(out.positive_by_hops) {
            *sum += n;
        }
        retargets_followed += out.retargets_followed;
        for (c, n) in counts.iter_mut().zip(out.counts) {
            *c += n;
        }
        pos.extend(out.lat_pos);
        neg.extend(out.lat_neg);
        last_finish = last_finish.max(out.last_finish);
        closed_by_peer += out.closed_by_peer;
    }
    let mut all = pos.clone();
    all.extend_from_slice(&neg);
    Merged {
        counts,
        all: Latency::of(all),
        pos: Latency::of(pos),
        neg: Latency::of(neg),
        last_finish,
        closed_by_peer,
        positive_by_hops,
        retargets_followed,
    }
}

/// The retarget lines of a report: positive sessions by hops, retargets followed.
fn retarget_lines(common: &Common, m: &Merged) -> String {
    if common.max_retargets == 0 {
        return String::new();
    }
    let mut s = String::from("  positive by retarget hops:");
    for (hops, n) in m.positive_by_hops[..=usize::from(common.max_retargets)]
        .iter()
        .enumerate()
    {
        let _ = write!(s, " {hops}: {n}");
    }
    let _ = writeln!(
        s,
        "; {} retargets followed (at most {} a session)",
        m.retargets_followed, common.max_retargets
    );
    s
}

/// The retarget keys of the JSON object: `max_retargets`, `retargets_followed`,
/// `positive_hops_0` to `positive_hops_N` (N = `--max-retargets`).
fn retarget_json(common: &Common, m: &Merged, json: &mut Json) {
    json.num("max_retargets", f64::from(common.max_retargets));
    json.num("retargets_followed", m.retargets_followed as f64);
    for (hops, &n) in m.positive_by_hops[..=usize::from(common.max_retargets)]
        .iter()
        .enumerate()
    {
        json.num(&format!("positive_hops_{hops}"), n as f64);
    }
}

fn negatives(counts: &Counts) -> u64 {
    (Outcome::Neg80 as usize..=Outcome::NegOther as usize)
        .map(|i| counts[i])
        .sum()
}

fn shared(common: &Common, count: u64, run_for: Duration, hold: bool) -> Arc<Shared> {
    let now = Instant::now();
    let connect_timeout = Duration::from_millis(common.connect_timeout.max(1));
    let response_timeout = Duration::from_millis(common.response_timeout.max(1));
    let stop_starting_at = now + run_for;
    Arc::new(Shared {
        request: session_request(common),
        target: common.target,
        max_retargets: common.max_retargets,
        close: common.close,
        connect_timeout,
        response_timeout,
        count,
        started: AtomicU64::new(0),
        stop_starting_at,
        hard_stop_at: stop_starting_at
            + connect_timeout
            + response_timeout
            + Duration::from_secs(1),
        hold,
        opened_threads: AtomicUsize::new(0),
        held: AtomicU64::new(0),
        release: AtomicBool::new(false),
    })
}

// ---------------------------------------------------------------------------------------------
// Modes

fn setup(args: SetupArgs) {
    let common = &args.common;
    let count = match (args.count, args.duration) {
        (Some(n), _) => n,
        (None, Some(_)) => u64::MAX,
        (None, None) => 10_000,
    };
    let run_for = secs(args.duration.unwrap_or(60.0), "--duration");
    let concurrency = args.concurrency.max(1);
    let start = Instant::now();
    let sh = shared(common, count, run_for, false);
    let m = merge(run_setups(&sh, concurrency, common.threads));
    let elapsed = m
        .last_finish
        .map_or(0.0, |t| t.saturating_duration_since(start).as_secs_f64());
    let sessions: u64 = m.counts.iter().sum::<u64>() - m.counts[Outcome::Unfinished as usize];
    let positive = m.counts[Outcome::Positive as usize];
    let negative = negatives(&m.counts);
    let rate = |n: u64| {
        if elapsed > 0.0 {
            n as f64 / elapsed
        } else {
            0.0
        }
    };

    let mut human = headline(
        "setup",
        common,
        format_args!(
            "concurrency {} threads {} close {}",
            concurrency,
            common.threads,
            common.close.as_str()
        ),
    );
    let _ = writeln!(
        human,
        "  {sessions} sessions in {elapsed:.3} s = {:.0}/s; positive {:.0}/s, negative {:.0}/s",
        rate(sessions),
        rate(positive),
        rate(negative)
    );
    let _ = writeln!(human, "  time to response: {}", m.all.human());
    if negative > 0 && positive > 0 {
        let _ = writeln!(human, "  time to 0x82: {}", m.pos.human());
        let _ = writeln!(human, "  time to 0x83: {}", m.neg.human());
    }
    human.push_str(&retarget_lines(common, &m));
    human.push_str(&outcome_lines(&m.counts));

    let mut json = Json::new();
    common_json("setup", common, &mut json);
    json.num("concurrency", concurrency as f64);
    json.num("elapsed_s", elapsed);
    json.num("sessions", sessions as f64);
    json.num("rate", rate(sessions));
    json.num("positive_rate", rate(positive));
    json.num("negative_rate", rate(negative));
    m.all.json("", &mut json);
    m.pos.json("pos_", &mut json);
    m.neg.json("neg_", &mut json);
    retarget_json(common, &m, &mut json);
    for (name, &n) in OUTCOME_NAMES.iter().zip(&m.counts) {
        json.num(name, n as f64);
    }
    emit(common, &human, json);
}

fn hold(args: HoldArgs) {
    let common = &args.common;
    let hold_for = secs(args.hold, "--hold");
    let open_for = secs(args.duration, "--duration");
    let concurrency = args.concurrency.max(1);
    let threads = common.threads.clamp(1, concurrency);
    let start = Instant::now();
    let sh = shared(common, args.count, open_for, true);
    let worker_sh = Arc::clone(&sh);
    let runner = std::thread::spawn(move || run_setups(&worker_sh, concurrency, threads));
    while sh.opened_threads.load(Ordering::SeqCst) < threads && !runner.is_finished() {
        std::thread::sleep(Duration::from_millis(10));
    }
    let opened_after = start.elapsed().as_secs_f64();
    let held_at_start = sh.held.load(Ordering::SeqCst);
    eprintln!(
        "holding {held_at_start} sessions for {:.1} s (opened in {opened_after:.3} s)",
        hold_for.as_secs_f64()
    );
    let hold_end = Instant::now() + hold_for;
    let released = || args.release_file.as_ref().is_some_and(|path| path.exists());
    while Instant::now() < hold_end && !runner.is_finished() && !released() {
        std::thread::sleep(Duration::from_millis(20));
    }
    let held_at_release = sh.held.load(Ordering::SeqCst);
    sh.release.store(true, Ordering::SeqCst);
    let m = merge(runner.join().expect("hold runner panicked"));

    let mut human = headline(
        "hold",
        common,
        format_args!(
            "count {} concurrency {} close {}",
            args.count,
            concurrency,
            common.close.as_str()
        ),
    );
    let _ = writeln!(
        human,
        "  opened in {opened_after:.3} s; held {held_at_start} at start, {held_at_release} at the release; {} closed by the server during the hold",
        m.closed_by_peer
    );
    let _ = writeln!(human, "  time to response: {}", m.all.human());
    human.push_str(&retarget_lines(common, &m));
    human.push_str(&outcome_lines(&m.counts));

    let mut json = Json::new();
    common_json("hold", common, &mut json);
    json.num("count", args.count as f64);
    json.num("concurrency", concurrency as f64);
    json.num("open_s", opened_after);
    json.num("hold_s", hold_for.as_secs_f64());
    json.num("held_at_start", held_at_start as f64);
    json.num("held_at_release", held_at_release as f64);
    json.num("closed_by_peer", m.closed_by_peer as f64);
    m.all.json("", &mut json);
    retarget_json(common, &m, &mut json);
    for (name, &n) in OUTCOME_NAMES.iter().zip(&m.counts) {
        json.num(name, n as f64);
    }
    emit(common, &human, json);
}

/// What one echo session measured.
struct EchoOut {
    outcome: Outcome,
    /// Payload bytes echoed back and checked.
    echoed: u64,
    messages: u64,
    /// Echoed chunks whose content differed from what was sent.
    mismatches: u64,
    /// Why the data phase ended early, if it did.
    error: Option<String>,
    data_start: Option<Instant>,
    data_end: Option<Instant>,
}

fn io_outcome(e: &io::Error, connecting: bool) -> Outcome {
    if e.kind() == io::ErrorKind::TimedOut || e.kind() == io::ErrorKind::WouldBlock {
        return if connecting {
            Outcome::ConnectTimeout
        } else {
            Outcome::ResponseTimeout
        };
    }
    match e.raw_os_error() {
        Some(code) if connecting => Outcome::connect_errno(code),
        Some(code) => Outcome::io_errno(code),
        None => Outcome::Other,
    }
}

struct EchoPlan {
    request: Vec<u8>,
    message: Vec<u8>,
    stop_after: Duration,
    bytes: Option<u64>,
    window: u64,
}

fn echo_session(common: &Common, plan: &EchoPlan) -> EchoOut {
    let mut out = EchoOut {
        outcome: Outcome::Other,
        echoed: 0,
        messages: 0,
        mismatches: 0,
        error: None,
        data_start: None,
        data_end: None,
    };
    let connect_timeout = Duration::from_millis(common.connect_timeout.max(1));
    let response_timeout = Duration::from_millis(common.response_timeout.max(1));
    let mut stream =
        match TcpStream::connect_timeout(&SocketAddr::V4(common.target), connect_timeout) {
            Ok(s) => s,
            Err(e) => {
                out.outcome = io_outcome(&e, true);
                out.error = Some(format!("connect: {e}"));
                return out;
            }
        };
    if common.close == Close::Rst {
        set_linger_rst(stream.as_raw_fd());
    }
    let _ = stream.set_nodelay(true);
    let _ = stream.set_read_timeout(Some(response_timeout));
    if let Err(e) = stream.write_all(&plan.request) {
        out.outcome = io_outcome(&e, false);
        out.error = Some(format!("request: {e}"));
        return out;
    }
    let mut buf = [0u8; RESPONSE_BUF];
    let mut len = 0;
    out.outcome = loop {
        match parse_response(&buf[..len]) {
            Parsed::Done(o) => break o,
            // Echo sessions do not follow retargets.
            Parsed::Retarget(_) => break Outcome::Retarget,
            Parsed::Skip(k) => {
                buf.copy_within(k..len, 0);
                len -= k;
                continue;
            }
            Parsed::Need => {}
        }
        if len == RESPONSE_BUF {
            break Outcome::BadResponse;
        }
        match stream.read(&mut buf[len..]) {
            Ok(0) => {
                break if len == 0 {
                    Outcome::Eof
                } else {
                    Outcome::BadResponse
                };
            }
            Ok(n) => len += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => break io_outcome(&e, false),
        }
    };
    if out.outcome != Outcome::Positive {
        out.error = Some(format!("no positive session response ({:?})", out.outcome));
        return out;
    }
    if len > HEADER_LEN {
        out.error = Some("bytes after the positive response".to_string());
        return out;
    }
    if let Err(e) = stream.set_nonblocking(true) {
        out.error = Some(format!("set_nonblocking: {e}"));
        return out;
    }
    echo_data(&mut stream, plan, response_timeout, &mut out);
    out
}

/// The data phase of one echo session: messages out, echoes in, both non-blocking.
fn echo_data(stream: &mut TcpStream, plan: &EchoPlan, grace: Duration, out: &mut EchoOut) {
    let msg = &plan.message;
    let size = (msg.len() - HEADER_LEN) as u64;
    let mut rbuf = vec![0u8; 256 * 1024];
    let (mut sent, mut out_off) = (0u64, 0usize);
    let (mut hdr, mut hdr_len) = ([0u8; HEADER_LEN], 0usize);
    let (mut body_left, mut body_pos) = (0usize, 0usize);
    let start = Instant::now();
    out.data_start = Some(start);
    let end = start + plan.stop_after;
    let mut last_progress = start;
    loop {
        let now = Instant::now();
        let enough = now >= end || plan.bytes.is_some_and(|b| sent * size >= b);
        let may_start = !enough && sent - out.messages < plan.window;
        let want_write = out_off > 0 || may_start;
        if !want_write && sent == out.messages {
            break;
        }
        if now.duration_since(last_progress) > grace {
            out.error = Some("echo stalled past the response timeout".to_string());
            break;
        }
        let mut pfd = libc::pollfd {
            fd: stream.as_raw_fd(),
            events: libc::POLLIN | if want_write { libc::POLLOUT } else { 0 },
            revents: 0,
        };
        // SAFETY: pfd is a local pollfd for our socket.
        unsafe { libc::poll(&mut pfd, 1, 100) };
        if pfd.revents & libc::POLLOUT != 0 {
            loop {
                let may_start = !enough && sent - out.messages < plan.window;
                if out_off == 0 && !may_start {
                    break;
                }
                match stream.write(&msg[out_off..]) {
                    Ok(n) => {
                        out_off += n;
                        if out_off == msg.len() {
                            out_off = 0;
                            sent += 1;
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        out.error = Some(format!("write: {e}"));
                        out.data_end = Some(Instant::now());
                        return;
                    }
                }
            }
        }
        if pfd.revents & (libc::POLLIN | libc::POLLHUP | libc::POLLERR) != 0 {
            loop {
                match stream.read(&mut rbuf) {
                    Ok(0) => {
                        out.error = Some("the server closed the session".to_string());
                        out.data_end = Some(Instant::now());
                        return;
                    }
                    Ok(n) => {
                        last_progress = Instant::now();
                        let mut data = &rbuf[..n];
                        while !data.is_empty() {
                            if body_left == 0 {
                                let take = (HEADER_LEN - hdr_len).min(data.len());
                                hdr[hdr_len..hdr_len + take].copy_from_slice(&data[..take]);
                                hdr_len += take;
                                data = &data[take..];
                                if hdr_len < HEADER_LEN {
                                    break;
                                }
                                hdr_len = 0;
                                let packet = Packet::new_unchecked(&hdr[..]);
                                match Repr::parse(&packet) {
                                    Ok(Repr::SessionMessage { length }) => {
                                        if u64::from(length) != size {
                                            out.error = Some(format!(
                                                "echo of {length} bytes, sent {size}"
                                            ));
                                            out.data_end = Some(Instant::now());
                                            return;
                                        }
                                        body_left = length as usize;
                                        body_pos = 0;
                                        if body_left == 0 {
                                            out.messages += 1;
                                        }
                                    }
                                    Ok(Repr::KeepAlive) => {}
                                    other => {
                                        out.error = Some(format!("unexpected frame {other:?}"));
                                        out.data_end = Some(Instant::now());
                                        return;
                                    }
                                }
                            } else {
                                let take = body_left.min(data.len());
                                let at = HEADER_LEN + body_pos;
                                if data[..take] != msg[at..at + take] {
                                    out.mismatches += 1;
                                }
                                body_pos += take;
                                body_left -= take;
                                out.echoed += take as u64;
                                data = &data[take..];
                                if body_left == 0 {
                                    out.messages += 1;
                                }
                            }
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        out.error = Some(format!("read: {e}"));
                        out.outcome = io_outcome(&e, false);
                        out.data_end = Some(Instant::now());
                        return;
                    }
                }
            }
        }
    }
    out.data_end = Some(Instant::now());
}

fn echo(args: EchoArgs) {
    let common = &args.common;
    if args.size > MAX_LENGTH {
        eprintln!("nbss_load: --size is at most {MAX_LENGTH}");
        std::process::exit(2);
    }
    let repr = Repr::SessionMessage { length: args.size };
    let mut message = vec![0u8; repr.buffer_len()];
    repr.emit(&mut Packet::new_unchecked(&mut message[..]));
    for (i, b) in message[HEADER_LEN..].iter_mut().enumerate() {
        *b = (i % 251) as u8;
    }
    let plan = Arc::new(EchoPlan {
        request: session_request(common),
        message,
        stop_after: secs(args.duration, "--duration"),
        bytes: args.bytes,
        window: args.window.max(1),
    });
    let sessions = args.sessions.max(1);
    raise_nofile();
    let handles: Vec<_> = (0..sessions)
        .map(|_| {
            let (common, plan) = (common.clone(), Arc::clone(&plan));
            std::thread::spawn(move || echo_session(&common, &plan))
        })
        .collect();
    let outs: Vec<EchoOut> = handles
        .into_iter()
        .map(|h| h.join().expect("echo session panicked"))
        .collect();

    let mut counts = [0u64; OUTCOMES];
    let (mut echoed, mut messages, mut mismatches) = (0u64, 0u64, 0u64);
    let mut first: Option<Instant> = None;
    let mut last: Option<Instant> = None;
    let mut errors = Vec::new();
    for out in &outs {
        counts[out.outcome as usize] += 1;
        echoed += out.echoed;
        messages += out.messages;
        mismatches += out.mismatches;
        if let Some(s) = out.data_start {
            first = Some(first.map_or(s, |f| f.min(s)));
        }
        last = last.max(out.data_end);
        if let Some(e) = &out.error {
            errors.push(e.clone());
        }
    }
    let elapsed = match (first, last) {
        (Some(f), Some(l)) => l.saturating_duration_since(f).as_secs_f64(),
        _ => 0.0,
    };
    let mbps = if elapsed > 0.0 {
        echoed as f64 / elapsed / 1e6
    } else {
        0.0
    };

    let mut human = headline(
        "echo",
        common,
        format_args!(
            "sessions {} size {} window {}",
            sessions, args.size, plan.window
        ),
    );
    let _ = writeln!(
        human,
        "  {echoed} bytes echoed in {messages} messages over {elapsed:.3} s = {mbps:.1} MB/s; {mismatches} content mismatches"
    );
    human.push_str(&outcome_lines(&counts));
    errors.sort();
    errors.dedup();
    for e in &errors {
        let _ = writeln!(human, "  error: {e}");
    }

    let mut json = Json::new();
    common_json("echo", common, &mut json);
    json.num("sessions", sessions as f64);
    json.num("size", f64::from(args.size));
    json.num("window", plan.window as f64);
    json.num("elapsed_s", elapsed);
    json.num("echoed_bytes", echoed as f64);
    json.num("messages", messages as f64);
    json.num("mbps", mbps);
    json.num("mismatches", mismatches as f64);
    json.num("errors", errors.len() as f64);
    json.str("first_error", errors.first().map_or("", |s| s.as_str()));
    for (name, &n) in OUTCOME_NAMES.iter().zip(&counts) {
        json.num(name, n as f64);
    }
    emit(common, &human, json);
}

fn main() {
    let cli = Cli::parse();
    raise_nofile();
    match cli.mode {
        Mode::Setup(args) => setup(args),
        Mode::Echo(args) => echo(args),
        Mode::Hold(args) => hold(args),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(last: u8) -> SocketAddrV4 {
        SocketAddrV4::new(std::net::Ipv4Addr::new(192, 168, 69, last), 139)
    }

    #[test]
    fn retargets_are_followed_up_to_the_limit_and_never_in_a_loop() {
        let (a, b, c) = (at(1), at(2), at(3));
        assert_eq!(retarget_verdict(&[a], b, 3), None);
        assert_eq!(retarget_verdict(&[a, b], c, 3), None);
        assert_eq!(retarget_verdict(&[a, b], a, 3), Some(Outcome::RetargetLoop));
        assert_eq!(retarget_verdict(&[a], a, 3), Some(Outcome::RetargetLoop));
        assert_eq!(
            retarget_verdict(&[a, b], c, 1),
            Some(Outcome::RetargetLimit)
        );
        assert_eq!(retarget_verdict(&[a], b, 1), None);
        assert_eq!(retarget_verdict(&[a], b, 0), Some(Outcome::Retarget));
    }

    #[test]
    fn a_retarget_response_names_where_to_go() {
        let frame = [0x84, 0, 0, 6, 192, 168, 69, 2, 0, 139];
        assert!(matches!(parse_response(&frame), Parsed::Retarget(to) if to == at(2)));
        assert!(matches!(parse_response(&frame[..9]), Parsed::Need));
        assert!(matches!(
            parse_response(&[0x84, 0, 0, 4, 192, 168, 69, 2]),
            Parsed::Done(Outcome::BadResponse)
        ));
    }
}
