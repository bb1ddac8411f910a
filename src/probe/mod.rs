//! `netbt probe`: a raw NetBIOS client for labs and for checking any NetBT server. It speaks
//! through `netbt::wire` (session service over TCP, name service over UDP) and prints stable
//! `KEY=value` lines, or one JSON object with `--json`.
//!
//! Exit status: 0 when the probe ran, whatever the server answered; 1 when a check the command
//! line asked for failed (an echo, a hold, a wait, a flood or silent client that ended badly);
//! 2 for bad usage.

mod attack;
mod churn;
mod crowd;
mod names;
mod outcome;
mod pace;
mod query_flood;
mod rng;
mod session;
mod synflood;

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Subcommand};
use netbt::wire::name::{Name, NbName};
use netbt::wire::nbss::MessageType;

use outcome::Out;

/// Output of `netbt probe --help`: what each line means.
const OUTPUT_HELP: &str = "\
Output (one KEY=value line per finding; --json prints one object with the keys in lower case):
  RESULT=POSITIVE | NEGATIVE CODE=0x8N | RETARGET TO=ip:port | OTHER | RST | EOF | TIMEOUT
        | REFUSED | CONNECT_TIMEOUT | ERROR ERROR=Kind     the server's answer to the first frame,
        with BYTES=hex (the answer, up to 24 bytes), MS=time to it, PORT=our local port
  ECHO=OK|FAIL SIZE=n [MS=t | WHY=RST|EOF|TIMEOUT|HEADER|LENGTH|CONTENT ...]   one per --echo size
  RELEASED=FILE|MAX HELD_S=s, then STILL_ALIVE=OK|FAIL SIZE=16 ...             with --hold-until
  AFTER=EOF|RST|DATA|TIMEOUT AFTER_MS=t        with --after: the server's next move
Exit status: 0 the probe ran (whatever the server answered); 1 a check asked for failed (echo,
hold, --wait-free, a bad flood or silent client); 2 bad usage.";

/// Probe a NetBIOS session or name server. Without a subcommand: `netbt probe IP CALLED`, one
/// session request (see `session`).
#[derive(Args)]
#[command(
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true,
    after_help = OUTPUT_HELP
)]
pub struct ProbeArgs {
    #[command(subcommand)]
    kind: Option<Kind>,
    #[command(flatten)]
    session: SessionArgs,
}

#[derive(Subcommand)]
enum Kind {
    /// One session request to CALLED (TCP 139); optionally echo, hold, and watch what follows.
    #[command(after_help = OUTPUT_HELP)]
    Session(SessionArgs),
    /// A bad first frame: `message-first` (a session message before any request) or
    /// `bad-label` (a request whose called name has an 8-byte label). Prints RESULT like
    /// `session`.
    #[command(after_help = OUTPUT_HELP)]
    Malformed {
        /// Server address.
        ip: IpAddr,
        /// message-first or bad-label.
        kind: String,
        #[command(flatten)]
        common: Common,
        /// Then wait for the server's next move (AFTER=...).
        #[arg(long)]
        after: bool,
    },
    /// Connections that never send a byte; the server must close each (EOF) between
    /// --min-close and --max-close after it was made. Prints a CLIENT=i line each,
    /// KEPT_PORTS=, CLOSED_PORTS=, and SUMMARY=silent N= POLITE= BAD= KEPT_RESET= ELAPSED_S=.
    Silent {
        /// Server address.
        ip: IpAddr,
        /// How many connections.
        #[arg(long, default_value_t = 8)]
        count: usize,
        /// How many of them (started 50 ms ahead) close once the server closes; the others keep
        /// their end open for --linger seconds or until the server resets it.
        #[arg(long, default_value_t = 1)]
        polite: usize,
        /// Seconds the others keep their end open after the server's FIN.
        #[arg(long, default_value_t = 6.5)]
        linger: f64,
        /// Earliest acceptable close, seconds after connecting.
        #[arg(long, default_value_t = 1.5)]
        min_close: f64,
        /// Latest acceptable close, seconds after connecting.
        #[arg(long, default_value_t = 4.0)]
        max_close: f64,
        /// Bound of the whole run, seconds.
        #[arg(long, default_value_t = 45.0)]
        deadline: f64,
        #[command(flatten)]
        common: Common,
    },
    /// COUNT concurrent session requests; each client must end with 0x82 or 0x83/0x83.
    /// Prints CLIENT=i RESULT=... for each that did not, then SUMMARY=flood N= POSITIVE= NEG83=
    /// BAD= PEAK= (clients in flight at once) CONNECT_MAX_S= SLOW_CONNECTS= RECONNECTED=
    /// ELAPSED_S=.
    Flood {
        /// Server address.
        ip: IpAddr,
        /// Called name, NAME or NAME#XX (default suffix 20).
        called: String,
        /// Calling name, NAME or NAME#XX (default suffix 00).
        #[arg(long, default_value = "PROBE")]
        calling: String,
        /// How many clients.
        #[arg(long, default_value_t = 120)]
        count: usize,
        /// A positive session is held LO:HI milliseconds, then closed.
        #[arg(long, default_value = "50:200")]
        hold_ms: String,
        /// Each client starts after 0..this many milliseconds.
        #[arg(long, default_value_t = 0)]
        spread_ms: u64,
        /// Give each connect attempt LO:HI milliseconds and try again (until
        /// --connect-timeout), instead of leaving retries to the kernel.
        #[arg(long)]
        retry_ms: Option<String>,
        /// Seconds for all connect attempts of one client.
        #[arg(long, default_value_t = 20.0)]
        connect_timeout: f64,
        /// Bound of the whole flood, seconds.
        #[arg(long, default_value_t = 30.0)]
        deadline: f64,
        /// Seconds from a client's first connect attempt within which its answer counts as
        /// in time (IN_TIME=).
        #[arg(long, default_value_t = 3.0)]
        within: f64,
        #[command(flatten)]
        common: Common,
    },
    /// Slowloris: COUNT connections that send the session request one byte per --interval
    /// seconds until the server closes them (or --deadline). Prints a CONN=a.n END=EOF|RST|
    /// ANSWER|DEADLINE|<connect outcome> PORT= SENT= LIVED_S= line per connection, then
    /// SUMMARY=slow N= OPENED= SERVER_CLOSED= RESETS= ANSWERED= AT_DEADLINE= CONNECT_FAILS=
    /// MAX_LIVED_S= MEAN_LIVED_S= ELAPSED_S=. Exit 1 if the server reset one.
    Slow {
        /// Server address.
        ip: IpAddr,
        /// Called name, NAME or NAME#XX (default suffix 20).
        called: String,
        /// Calling name, NAME or NAME#XX (default suffix 00).
        #[arg(long, default_value = "PROBE")]
        calling: String,
        /// How many connections at once.
        #[arg(long, default_value_t = 10)]
        count: usize,
        /// Seconds between two bytes.
        #[arg(long, default_value_t = 1.0)]
        interval: f64,
        /// Open a new connection as soon as one ends, until --deadline.
        #[arg(long)]
        reopen: bool,
        /// Bound of the whole run, seconds (connections still open then are closed).
        #[arg(long, default_value_t = 30.0)]
        deadline: f64,
        #[command(flatten)]
        common: Common,
    },
    /// Silent connections re-opened the moment the server closes each, until --deadline.
    /// Prints CONN= lines and SUMMARY=reopen as `slow` does. Exit 1 if the server reset one.
    Reopen {
        /// Server address.
        ip: IpAddr,
        /// How many connections at once.
        #[arg(long, default_value_t = 10)]
        count: usize,
        /// Bound of the whole run, seconds.
        #[arg(long, default_value_t = 30.0)]
        deadline: f64,
        #[command(flatten)]
        common: Common,
    },
    /// Spoofed bare SYNs to --port from random hosts of --from (a /24, never the server's
    /// address or ours) through a raw socket (root), --rate per second for --duration seconds.
    /// Prints SUMMARY=synflood SENT= ERRORS= SOURCES= RATE= ELAPSED_S=.
    Synflood {
        /// Server address (IPv4).
        ip: std::net::Ipv4Addr,
        /// The source network, A.B.C.0/24.
        #[arg(long, default_value = "192.168.69.0/24")]
        from: String,
        /// SYNs per second.
        #[arg(long, default_value_t = 50)]
        rate: u32,
        /// Seconds.
        #[arg(long, default_value_t = 10.0)]
        duration: f64,
        /// Seed of the sources, ports and sequence numbers.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Session service port.
        #[arg(long, default_value_t = 139)]
        port: u16,
        /// One JSON object instead of KEY=value lines.
        #[arg(long)]
        json: bool,
    },
    /// COUNT legitimate sessions, CONCURRENCY at a time: connect, request, echo one message of
    /// --echo bytes, close and wait for the server's close. Each must end intact or with
    /// 0x83/0x83. Prints SESSION=i STAGE=connect|request|echo|close RESULT=... S= PORT= for
    /// each that did not, then SUMMARY=churn N= INTACT= NEG83= BAD= RESETS= HANGS= UNFINISHED=
    /// MAX_S= ELAPSED_S=.
    Churn {
        /// Server address.
        ip: IpAddr,
        /// Called name, NAME or NAME#XX (default suffix 20).
        called: String,
        /// Calling name, NAME or NAME#XX (default suffix 00).
        #[arg(long, default_value = "PROBE")]
        calling: String,
        /// How many sessions.
        #[arg(long, default_value_t = 1000)]
        count: usize,
        /// How many at once.
        #[arg(long, default_value_t = 24)]
        concurrency: usize,
        /// Size of the echoed session message (0: none).
        #[arg(long, default_value_t = 512)]
        echo: usize,
        /// No session starts after this many seconds.
        #[arg(long, default_value_t = 120.0)]
        deadline: f64,
        #[command(flatten)]
        common: Common,
    },
    /// Name queries for NAME to IP (UDP 137) at --rate per second for --duration seconds, and
    /// the answers counted. Prints SUMMARY=query-flood SENT= SEND_ERRORS= ANSWERED= POSITIVE=
    /// NEGATIVE= FRACTION= RATE= ELAPSED_S=.
    QueryFlood {
        /// Server address.
        ip: IpAddr,
        /// The name, NAME or NAME#XX (default suffix 00).
        name: String,
        /// Queries per second.
        #[arg(long, default_value_t = 20_000)]
        rate: u32,
        /// Seconds of sending.
        #[arg(long, default_value_t = 10.0)]
        duration: f64,
        /// Name service port.
        #[arg(long, default_value_t = 137)]
        port: u16,
        /// One JSON object instead of KEY=value lines.
        #[arg(long)]
        json: bool,
    },
    /// A name query (UDP 137). Prints RESULT=POSITIVE FROM=ip ADDRESSES=ip,.. GROUP=yes|no or
    /// RESULT=NEGATIVE FROM=ip RCODE=0x03 per answer (MS= each), or RESULT=TIMEOUT.
    Query {
        /// The name, NAME or NAME#XX (default suffix 00).
        name: String,
        /// Ask this node (unicast; the first answer ends the query).
        #[arg(
            long,
            conflicts_with = "broadcast",
            required_unless_present = "broadcast"
        )]
        to: Option<IpAddr>,
        /// Broadcast to this address and collect every answer within --timeout.
        #[arg(long)]
        broadcast: Option<IpAddr>,
        /// Name service port.
        #[arg(long, default_value_t = 137)]
        port: u16,
        /// Seconds to wait for answers.
        #[arg(long, default_value_t = 2.0)]
        timeout: f64,
        /// One JSON object instead of KEY=value lines.
        #[arg(long)]
        json: bool,
    },
    /// A node status request for `*` (UDP 137). Prints RESULT=ANSWERED NAMES=n, NAME=.. FLAGS=..
    /// per name, one line of statistics (UNIT_ID= and the RFC 1002 fields in upper case, e.g.
    /// NUMBER_FREE_COMMAND_BLOCKS=3), and with --wait-free WAIT_FREE=OK|TIMEOUT WANT=n AFTER_S=s;
    /// or RESULT=TIMEOUT.
    NodeStatus {
        /// Server address.
        ip: IpAddr,
        /// Ask again every 200 ms until the node reports this many free command blocks.
        #[arg(long)]
        wait_free: Option<u16>,
        /// Bound of --wait-free, seconds.
        #[arg(long, default_value_t = 30.0)]
        max: f64,
        /// Name service port.
        #[arg(long, default_value_t = 137)]
        port: u16,
        /// Seconds to wait for each answer.
        #[arg(long, default_value_t = 1.0)]
        timeout: f64,
        /// One JSON object instead of KEY=value lines.
        #[arg(long)]
        json: bool,
    },
}

/// Flags every TCP probe takes.
#[derive(Args)]
struct Common {
    /// Session service port.
    #[arg(long, default_value_t = 139)]
    port: u16,
    /// Seconds: bound of the connect and of every read, write and wait.
    #[arg(long, default_value_t = 5.0)]
    timeout: f64,
    /// One JSON object instead of KEY=value lines.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct SessionArgs {
    /// Server address.
    ip: Option<IpAddr>,
    /// Called name, NAME or NAME#XX (default suffix 20), e.g. LABSRV, 'LABSRV#00', '*SMBSERVER'.
    called: Option<String>,
    /// Calling name, NAME or NAME#XX (default suffix 00).
    #[arg(long, default_value = "PROBE")]
    calling: String,
    /// Once the session is up, echo one session message of each size (bytes, at most 131071),
    /// e.g. 1,65536,131071.
    #[arg(long, value_delimiter = ',', value_name = "SIZES")]
    echo: Vec<usize>,
    /// Then hold the session until FILE exists (bounded by --hold-max) and echo 16 bytes once
    /// more (STILL_ALIVE=...).
    #[arg(long, value_name = "FILE")]
    hold_until: Option<PathBuf>,
    /// Seconds --hold-until waits at most.
    #[arg(long, default_value_t = 60.0)]
    hold_max: f64,
    /// At the end, wait for the server's next move (AFTER=EOF|RST|DATA|TIMEOUT).
    #[arg(long)]
    after: bool,
    #[command(flatten)]
    common: Common,
}

/// Runs `netbt probe`; the exit status as documented in the module.
pub fn run(args: ProbeArgs) -> ExitCode {
    let kind = match args.kind {
        Some(kind) => kind,
        None => Kind::Session(args.session),
    };
    match dispatch(kind) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(Failure::Usage(message)) => {
            eprintln!("netbt probe: {message}");
            ExitCode::from(2)
        }
        Err(Failure::Io(message)) => {
            eprintln!("netbt probe: {message}");
            ExitCode::from(1)
        }
    }
}

enum Failure {
    /// Bad usage (exit 2).
    Usage(String),
    /// The probe could not run, e.g. no socket (exit 1).
    Io(String),
}

fn usage<T>(message: String) -> Result<T, Failure> {
    Err(Failure::Usage(message))
}

fn dispatch(kind: Kind) -> Result<bool, Failure> {
    match kind {
        Kind::Session(args) => {
            let (Some(ip), Some(called)) = (args.ip, &args.called) else {
                return usage("give IP and CALLED (netbt probe IP CALLED[#XX])".into());
            };
            let called = name(called, Name::SUFFIX_SERVER, "CALLED")?;
            let calling = name(&args.calling, Name::SUFFIX_WORKSTATION, "--calling")?;
            if let Some(size) = args.echo.iter().find(|&&s| s > 0x1FFFF) {
                return usage(format!(
                    "--echo {size}: a session message holds at most 131071 bytes"
                ));
            }
            let hold_max = duration(args.hold_max, "--hold-max")?;
            let plan = session::Plan {
                addr: SocketAddr::new(ip, args.common.port),
                timeout: duration(args.common.timeout, "--timeout")?,
                first: session::session_request(called, calling),
                echo: args.echo,
                hold: args.hold_until.map(|file| (file, hold_max)),
                after: args.after,
            };
            Ok(with_out(args.common.json, |out| session::probe(&plan, out)))
        }
        Kind::Malformed {
            ip,
            kind,
            common,
            after,
        } => {
            let first = match kind.as_str() {
                "message-first" => {
                    session::raw_frame(MessageType::SessionMessage, &[0xde, 0xad, 0xbe, 0xef])
                }
                "bad-label" => {
                    // A well-framed request whose called name is an 8-byte label, not 32.
                    let calling = NbName::unscoped(probe_name());
                    let mut body = b"\x08ABCDEFGH\x00".to_vec();
                    let at = body.len();
                    body.resize(at + calling.wire_len(), 0);
                    calling.emit(&mut body[at..]);
                    session::raw_frame(MessageType::SessionRequest, &body)
                }
                other => {
                    return usage(format!(
                        "malformed {other:?}: want message-first or bad-label"
                    ));
                }
            };
            let plan = session::Plan {
                addr: SocketAddr::new(ip, common.port),
                timeout: duration(common.timeout, "--timeout")?,
                first,
                echo: Vec::new(),
                hold: None,
                after,
            };
            Ok(with_out(common.json, |out| session::probe(&plan, out)))
        }
        Kind::Silent {
            ip,
            count,
            polite,
            linger,
            min_close,
            max_close,
            deadline,
            common,
        } => {
            let plan = crowd::Silent {
                addr: SocketAddr::new(ip, common.port),
                count: bounded_count(count)?,
                polite,
                linger: duration(linger, "--linger")?,
                min_close: duration(min_close, "--min-close")?,
                max_close: duration(max_close, "--max-close")?,
                connect_timeout: duration(common.timeout, "--timeout")?,
                deadline: duration(deadline, "--deadline")?,
            };
            Ok(with_out(common.json, |out| crowd::silent(&plan, out)))
        }
        Kind::Flood {
            ip,
            called,
            calling,
            count,
            hold_ms,
            spread_ms,
            retry_ms,
            connect_timeout,
            deadline,
            within,
            common,
        } => {
            let called = name(&called, Name::SUFFIX_SERVER, "CALLED")?;
            let calling = name(&calling, Name::SUFFIX_WORKSTATION, "--calling")?;
            let plan = crowd::Flood {
                addr: SocketAddr::new(ip, common.port),
                request: session::session_request(called, calling),
                count: bounded_count(count)?,
                hold_ms: range(&hold_ms, "--hold-ms")?,
                spread_ms,
                retry_ms: retry_ms.map(|r| range(&r, "--retry-ms")).transpose()?,
                connect_timeout: duration(connect_timeout, "--connect-timeout")?,
                timeout: duration(common.timeout, "--timeout")?,
                deadline: duration(deadline, "--deadline")?,
                within: duration(within, "--within")?,
            };
            Ok(with_out(common.json, |out| crowd::flood(&plan, out)))
        }
        Kind::Slow {
            ip,
            called,
            calling,
            count,
            interval,
            reopen,
            deadline,
            common,
        } => {
            let called = name(&called, Name::SUFFIX_SERVER, "CALLED")?;
            let calling = name(&calling, Name::SUFFIX_WORKSTATION, "--calling")?;
            let plan = attack::Attack {
                addr: SocketAddr::new(ip, common.port),
                count: bounded_count(count)?,
                drip: Some((
                    session::session_request(called, calling),
                    duration(interval, "--interval")?,
                )),
                reopen,
                connect_timeout: duration(common.timeout, "--timeout")?,
                deadline: duration(deadline, "--deadline")?,
            };
            Ok(with_out(common.json, |out| {
                attack::attack(&plan, "slow", out)
            }))
        }
        Kind::Reopen {
            ip,
            count,
            deadline,
            common,
        } => {
            let plan = attack::Attack {
                addr: SocketAddr::new(ip, common.port),
                count: bounded_count(count)?,
                drip: None,
                reopen: true,
                connect_timeout: duration(common.timeout, "--timeout")?,
                deadline: duration(deadline, "--deadline")?,
            };
            Ok(with_out(common.json, |out| {
                attack::attack(&plan, "reopen", out)
            }))
        }
        Kind::Synflood {
            ip,
            from,
            rate,
            duration: seconds,
            seed,
            port,
            json,
        } => {
            let Some(net) = from.strip_suffix(".0/24").and_then(|prefix| {
                let octets: Vec<u8> = prefix
                    .split('.')
                    .map(|o| o.parse().ok())
                    .collect::<Option<_>>()?;
                <[u8; 3]>::try_from(octets).ok()
            }) else {
                return usage(format!("--from {from:?}: want A.B.C.0/24"));
            };
            if !(1..=1_000_000).contains(&rate) {
                return usage(format!("--rate {rate}: want 1 to 1000000"));
            }
            let plan = synflood::SynFlood {
                to: std::net::SocketAddrV4::new(ip, port),
                from_net: net,
                rate,
                duration: duration(seconds, "--duration")?,
                seed,
            };
            let mut out = Out::new(json);
            let ok = synflood::syn_flood(&plan, &mut out)
                .map_err(|e| Failure::Io(format!("raw socket towards {ip}: {e}")))?;
            out.finish();
            Ok(ok)
        }
        Kind::Churn {
            ip,
            called,
            calling,
            count,
            concurrency,
            echo,
            deadline,
            common,
        } => {
            let called = name(&called, Name::SUFFIX_SERVER, "CALLED")?;
            let calling = name(&calling, Name::SUFFIX_WORKSTATION, "--calling")?;
            if echo > 0x1FFFF {
                return usage(format!(
                    "--echo {echo}: a session message holds at most 131071 bytes"
                ));
            }
            if !(1..=1_000_000).contains(&count) {
                return usage(format!("--count {count}: want 1 to 1000000"));
            }
            let plan = churn::Churn {
                addr: SocketAddr::new(ip, common.port),
                request: session::session_request(called, calling),
                count,
                concurrency: bounded_count(concurrency)?,
                echo,
                timeout: duration(common.timeout, "--timeout")?,
                deadline: duration(deadline, "--deadline")?,
            };
            Ok(with_out(common.json, |out| churn::churn(plan, out)))
        }
        Kind::QueryFlood {
            ip,
            name: text,
            rate,
            duration: seconds,
            port,
            json,
        } => {
            let name = name(&text, Name::SUFFIX_WORKSTATION, "NAME")?;
            if !(1..=1_000_000).contains(&rate) {
                return usage(format!("--rate {rate}: want 1 to 1000000"));
            }
            let plan = query_flood::QueryFlood {
                to: SocketAddr::new(ip, port),
                name,
                rate,
                duration: duration(seconds, "--duration")?,
                grace: Duration::from_secs(1),
            };
            let mut out = Out::new(json);
            query_flood::query_flood(&plan, &mut out)
                .map_err(|e| Failure::Io(format!("name queries to {ip}: {e}")))?;
            out.finish();
            Ok(true)
        }
        Kind::Query {
            name: text,
            to,
            broadcast,
            port,
            timeout,
            json,
        } => {
            let name = name(&text, Name::SUFFIX_WORKSTATION, "NAME")?;
            let (ip, is_broadcast) = match (to, broadcast) {
                (Some(ip), _) => (ip, false),
                (None, Some(ip)) => (ip, true),
                (None, None) => return usage("give --to IP or --broadcast ADDR".into()),
            };
            let timeout = duration(timeout, "--timeout")?;
            let mut out = Out::new(json);
            names::query(
                name,
                SocketAddr::new(ip, port),
                is_broadcast,
                timeout,
                &mut out,
            )
            .map_err(|e| Failure::Io(format!("name query to {ip}: {e}")))?;
            out.finish();
            Ok(true)
        }
        Kind::NodeStatus {
            ip,
            wait_free,
            max,
            port,
            timeout,
            json,
        } => {
            let (timeout, max) = (duration(timeout, "--timeout")?, duration(max, "--max")?);
            let mut out = Out::new(json);
            let to = SocketAddr::new(ip, port);
            let ok = names::node_status_probe(to, timeout, wait_free, max, &mut out)
                .map_err(|e| Failure::Io(format!("node status to {ip}: {e}")))?;
            out.finish();
            Ok(ok)
        }
    }
}

fn with_out(json: bool, probe: impl FnOnce(&mut Out) -> bool) -> bool {
    let mut out = Out::new(json);
    let ok = probe(&mut out);
    out.finish();
    ok
}

/// The default calling name.
fn probe_name() -> Name {
    Name::new("PROBE", Name::SUFFIX_WORKSTATION).expect("a valid name")
}

/// `NAME` or `NAME#XX`, as `netbt encode` reads it, with `default_suffix`.
fn name(text: &str, default_suffix: u8, what: &str) -> Result<Name, Failure> {
    Name::parse_text(text, default_suffix).or_else(|e| usage(format!("{what} {text:?}: {e}")))
}

/// Positive, finite seconds (at most a day).
fn duration(seconds: f64, what: &str) -> Result<Duration, Failure> {
    if seconds.is_finite() && seconds > 0.0 && seconds <= 86_400.0 {
        Ok(Duration::from_secs_f64(seconds))
    } else {
        usage(format!("{what} {seconds}: want seconds, more than 0"))
    }
}

/// `LO:HI` milliseconds, LO <= HI.
fn range(text: &str, what: &str) -> Result<(u64, u64), Failure> {
    let parsed = text
        .split_once(':')
        .and_then(|(lo, hi)| Some((lo.parse().ok()?, hi.parse().ok()?)));
    match parsed {
        Some((lo, hi)) if lo <= hi => Ok((lo, hi)),
        _ => usage(format!("{what} {text:?}: want LO:HI milliseconds")),
    }
}

/// 1..=1000 clients: one thread each.
fn bounded_count(count: usize) -> Result<usize, Failure> {
    if (1..=1000).contains(&count) {
        Ok(count)
    } else {
        usage(format!("--count {count}: want 1 to 1000"))
    }
}

#[cfg(test)]
mod tests;
