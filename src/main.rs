//! `netbt`: the command-line front end of the netbt stack.
//!
//! `netbt serve` runs the node on a TAP device; `netbt status` asks it how it stands (over its
//! control socket); `encode` and `decode` expose the name codec to lab scripts.

mod control;
mod daemon;
mod poll;
mod probe;

use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use netbt::host::{parse_cidr, parse_mac, parse_session_buffer};
use netbt::wire::name::{Name, NbName, Scope};
use smoltcp::wire::{Ipv4Address, Ipv4Cidr};

/// A userspace TCP/IP stack with NetBIOS over TCP/IP (RFC 1001/1002) that answers running out of
/// sessions with a negative session response, never a reset.
#[derive(Parser)]
#[command(name = "netbt", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the node on a TAP device: register the names (RFC 1001 B-node, or with --wins a P-,
    /// M- or H-node), answer queries and node status, defend the names; release them on
    /// SIGINT/SIGTERM and exit 0. Prints one
    /// line containing "ready" on stdout once the names are registered. Logs go to stderr
    /// (RUST_LOG=debug for more).
    Serve(ServeArgs),
    /// Ask the running daemon (over its control socket) what `nbtstat -n` and `nbtstat -s`
    /// would show: the names and their state, the sessions, the slot ledger, the counters.
    /// Exits 1 with one line if no daemon answers.
    Status(StatusArgs),
    /// Ask the running daemon to resolve a name the way its node type says (B: broadcast; P:
    /// WINS; M: broadcast, then WINS; H: WINS, then broadcast); prints one line per owner with
    /// who answered. A name nobody owns, or no daemon, exits 1 with one line.
    Query(QueryArgs),
    /// Print the RFC 1001 first-level encoding of NetBIOS names (NAME or NAME#XX, default
    /// suffix <00>), as they appear on the wire.
    Encode {
        /// Names in Samba syntax: LABSRV, LABSRV#20, '*'.
        #[arg(required = true, value_name = "NAME[#XX]")]
        names: Vec<String>,
        /// NetBIOS scope appended to every name, e.g. lab.example.
        #[arg(long, default_value = "")]
        scope: String,
    },
    /// Decode 32 letters A..P back into a NetBIOS name.
    Decode {
        /// First-level encoded names, e.g. CKFDENECFDEFFCFGEFFCCACACACACACA.
        #[arg(required = true, value_name = "ENCODED")]
        encoded: Vec<String>,
    },
    /// Probe any NetBT server as a raw client: a session request (classified: positive, each
    /// negative code, retarget, reset, refused, timeout), echo, hold, malformed frames, silent
    /// clients, a flood, a name query, node status. Prints KEY=value lines (or --json).
    Probe(probe::ProbeArgs),
    /// Send a NetBIOS datagram (UDP 138) through the running daemon, or watch the datagrams
    /// addressed to its names. Exits 1 with one line if no daemon answers or it refuses, 2 for
    /// bad usage.
    #[command(subcommand)]
    Datagram(DatagramCommand),
}

#[derive(Subcommand)]
enum DatagramCommand {
    /// Send one datagram from one of the daemon's names: to a unique name (at --ip, or where a
    /// broadcast name query finds it), to a group name (--group) or to everyone (--to '*').
    Send(DatagramSendArgs),
    /// Print one line per datagram addressed to the daemon's names until interrupted
    /// (--json: one JSON object per line).
    Watch(DatagramWatchArgs),
}

/// How a client command finds the running daemon.
#[derive(Args)]
struct DaemonArgs {
    /// The daemon's control socket (default: the one `netbt serve --tap TAP` in this network
    /// namespace creates: /run/netbt/TAP.sock, $XDG_RUNTIME_DIR/netbt-TAP.sock or
    /// /tmp/netbt-TAP.sock, with TAP@NS for a namespace named NS by `ip netns`).
    #[arg(long, value_name = "PATH")]
    control: Option<std::path::PathBuf>,
    /// The daemon's TAP interface, to find its default control socket.
    #[arg(long, default_value = "tap0", value_parser = parse_ifname)]
    tap: String,
}

#[derive(Args)]
struct DatagramSendArgs {
    /// One of the daemon's names the datagram comes from: NAME (suffix 00) or NAME#XX.
    #[arg(long, value_name = "NAME[#XX]")]
    from: Option<String>,
    /// The destination name (NAME or NAME#XX), or '*' for a broadcast datagram.
    #[arg(long, value_name = "NAME#XX")]
    to: Option<String>,
    /// The destination is a group name: a DIRECT_GROUP datagram.
    #[arg(long)]
    group: bool,
    /// The address of a unique destination (default: a broadcast name query finds it; the
    /// datagram is dropped if nobody answers within 1 s).
    #[arg(long, value_name = "IP")]
    ip: Option<Ipv4Address>,
    /// Wrap the data in an SMB mailslot write to this mailslot, e.g. '\MAILSLOT\LAB'.
    #[arg(long, value_name = "MAILSLOT")]
    mailslot: Option<String>,
    /// The data, as text.
    #[arg(long, value_name = "TEXT")]
    data: Option<String>,
    /// The data, from a file.
    #[arg(long, value_name = "FILE")]
    file: Option<std::path::PathBuf>,
    /// Print the daemon's JSON answer.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    daemon: DaemonArgs,
}

#[derive(Args)]
struct DatagramWatchArgs {
    /// One JSON object per line.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    daemon: DaemonArgs,
}

#[derive(Args)]
struct ServeArgs {
    /// TAP interface to attach to.
    #[arg(long, default_value = "tap0", value_parser = parse_ifname)]
    tap: String,
    /// Our IPv4 address and prefix length.
    #[arg(long, default_value = "192.168.69.1/24", value_parser = parse_cidr)]
    ip: Ipv4Cidr,
    /// Default gateway.
    #[arg(long)]
    gateway: Option<Ipv4Address>,
    /// Our Ethernet address.
    #[arg(long, default_value = "02:00:00:00:00:01", value_parser = parse_mac)]
    mac: [u8; 6],
    /// A unique name to own: NAME registers NAME<00> and NAME<20>; NAME#XX just that one.
    /// Repeatable; default NETBT.
    #[arg(long = "name", value_name = "NAME[#XX]")]
    names: Vec<String>,
    /// A group name to own: NAME registers NAME<00>; NAME#XX just that one. Repeatable.
    #[arg(long = "group", value_name = "NAME[#XX]")]
    groups: Vec<String>,
    /// NetBIOS scope of all names, e.g. lab.example.
    #[arg(long, default_value = "")]
    scope: String,
    /// Write every frame sent and received to this pcap file.
    #[arg(long, value_name = "FILE")]
    pcap: Option<std::path::PathBuf>,
    /// Report a zero UNIT_ID instead of the MAC address in node status.
    #[arg(long)]
    hide_mac: bool,
    /// Session slots: sessions that can be open at once on TCP 139 (up to 65 000; each takes
    /// twice --session-buffer plus about 600 bytes, all reserved at start-up).
    #[arg(long, default_value_t = 8, value_name = "S", value_parser = clap::value_parser!(u16).range(1..=65_000))]
    sessions: u16,
    /// Refusal slots: connections beyond S that are answered 0x83 (insufficient resources)
    /// once they have waited --refusal-delay for a session slot; past S+R, SYNs wait
    /// unanswered until a slot frees (never a reset).
    #[arg(long, default_value_t = 2, value_name = "R", value_parser = clap::value_parser!(u16).range(0..=64))]
    refusal_slots: u16,
    /// Milliseconds a connection that finds every session slot busy waits for one to free
    /// before a refusal slot answers it 0x83 (0: at once).
    #[arg(long, default_value = "2", value_name = "MS", value_parser = parse_millis)]
    refusal_delay: netbt::session::Duration,
    /// A sibling node (IP:PORT, e.g. 192.168.69.2:139) that a request finding every session
    /// slot busy is sent to with a RETARGET SESSION RESPONSE (0x84) instead of 0x83, once it
    /// waited --refusal-delay; repeat for more (at most 8), taken in turn. Samba's smbclient
    /// and impacket treat 0x84 as a failure.
    #[arg(long = "retarget", value_name = "IP:PORT", value_parser = parse_retarget)]
    retarget: Vec<netbt::session::Sibling>,
    /// SYNs kept while no session slot is free (about 160 bytes each), replayed the moment a
    /// slot frees; when it is full and no slot listens, SYNs are dropped and the client
    /// retransmits (0: keep none).
    #[arg(long, default_value_t = 256, value_name = "N", value_parser = clap::value_parser!(u16).range(0..=8192))]
    syn_backlog: u16,
    /// Receive and send buffer of each session slot, in bytes (each direction).
    #[arg(long, default_value_t = 8192, value_name = "BYTES", value_parser = parse_session_buffer)]
    session_buffer: usize,
    /// Seconds a connected client has to send its session request.
    #[arg(long, default_value = "10", value_name = "SECS", value_parser = parse_seconds)]
    request_timeout: netbt::session::Duration,
    /// Seconds of idleness before a session keepalive is sent (0: never).
    #[arg(long, default_value = "60", value_name = "SECS", value_parser = parse_seconds)]
    keepalive: netbt::session::Duration,
    /// What established sessions do: echo (every message is sent back), discard, or
    /// forward=HOST:PORT (each session is relayed to a TCP backend reached through the host's
    /// own network, e.g. smbd on 127.0.0.1:445, as direct-hosted SMB; a request is answered
    /// 0x82 only once the backend accepted the connection, else 0x83 0x8F). HOST is an address
    /// or a name, resolved once at start.
    #[arg(long, default_value = "echo", value_name = "HANDLER")]
    handler: String,
    /// Accept sessions only from this calling name (others get 0x81).
    #[arg(long, value_name = "NAME[#XX]")]
    allow_calling: Option<String>,
    /// Control socket that `netbt status` asks (default: /run/netbt/TAP.sock as root, else
    /// $XDG_RUNTIME_DIR/netbt-TAP.sock or /tmp/netbt-TAP.sock; TAP@NS in a network namespace
    /// named NS by `ip netns`). Removed on exit.
    #[arg(long, value_name = "PATH")]
    control: Option<std::path::PathBuf>,
    /// A WINS server (NBNS) to register the names with and resolve through: the first is the
    /// primary, a second the secondary. Makes the node an H-node unless --node-type says.
    #[arg(long = "wins", value_name = "IP")]
    wins: Vec<Ipv4Address>,
    /// b (broadcast only), p (WINS only), m (broadcast, then WINS) or h (WINS, then
    /// broadcast). Default: b without --wins, h with it; p, m and h need --wins.
    #[arg(long, value_name = "TYPE")]
    node_type: Option<String>,
    /// Seconds before the WINS server is asked again for a name it refused (its other owner
    /// answered the server's challenge): the wait doubles after each refused try, up to 15
    /// minutes. Default 60; labs that cannot wait take less. Needs --wins.
    #[arg(long, value_name = "SECS", value_parser = parse_whole_seconds)]
    wins_conflict_retry: Option<netbt::session::Duration>,
    /// The comment the workgroup's browse list shows for this server (at most 43 printable
    /// ASCII characters). The node announces itself (MS-BRWS HostAnnouncement to the local master
    /// browser) in the workgroup of its first --group NAME with suffix 00.
    #[arg(long, value_name = "TEXT")]
    comment: Option<String>,
    /// Announce every SECS seconds instead of on the MS-BRWS schedule (1, 1, 2, 4, 8, then every
    /// 12 minutes), for labs that cannot wait.
    #[arg(long, value_name = "SECS", value_parser = parse_whole_seconds)]
    announce_interval: Option<netbt::session::Duration>,
}

#[derive(Args)]
struct StatusArgs {
    #[command(flatten)]
    daemon: DaemonArgs,
    /// Print the daemon's JSON document as is (for scripts) instead of tables.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct QueryArgs {
    /// The name: NAME (NAME<20>) or NAME#XX.
    #[arg(value_name = "NAME[#XX]")]
    name: String,
    #[command(flatten)]
    daemon: DaemonArgs,
    /// Print the daemon's JSON answer as is.
    #[arg(long)]
    json: bool,
}

/// An interface name as Linux allows it (no '/', ':' or spaces, not "." or ".."); it becomes
/// part of the default control socket's file name. Whether it exists is checked at open.
fn parse_ifname(text: &str) -> Result<String, String> {
    if text.is_empty()
        || text == "."
        || text == ".."
        || text.contains(|c: char| c == '/' || c == ':' || c.is_whitespace() || c.is_control())
    {
        return Err(format!(
            "{text:?} is not an interface name (no '/', ':' or spaces)"
        ));
    }
    Ok(text.to_string())
}

fn parse_millis(text: &str) -> Result<netbt::session::Duration, String> {
    let millis: u64 = text
        .parse()
        .map_err(|_| format!("not a whole number of milliseconds: {text}"))?;
    if millis > 10_000 {
        return Err(format!("must be between 0 and 10000 milliseconds: {text}"));
    }
    Ok(netbt::session::Duration::from_millis(millis))
}

/// A whole number of seconds from 1 to 3600 (`--announce-interval`, `--wins-conflict-retry`).
fn parse_whole_seconds(text: &str) -> Result<netbt::session::Duration, String> {
    let seconds: u64 = text
        .parse()
        .map_err(|_| format!("not a whole number of seconds: {text}"))?;
    if !(1..=3600).contains(&seconds) {
        return Err(format!("must be between 1 and 3600 seconds: {text}"));
    }
    Ok(netbt::session::Duration::from_secs(seconds))
}

fn parse_seconds(text: &str) -> Result<netbt::session::Duration, String> {
    let seconds: f64 = text
        .parse()
        .map_err(|_| format!("not a number of seconds: {text}"))?;
    if !(0.0..=86_400.0).contains(&seconds) {
        return Err(format!("must be between 0 and 86400 seconds: {text}"));
    }
    Ok(netbt::session::Duration::from_millis(
        (seconds * 1000.0).round() as u64,
    ))
}

/// A `--retarget` value: an IPv4 address and a port 1..65535.
fn parse_retarget(text: &str) -> Result<netbt::session::Sibling, String> {
    let (address, port) = text
        .rsplit_once(':')
        .ok_or_else(|| format!("{text:?} is not IP:PORT (e.g. 192.168.69.2:139)"))?;
    let address: Ipv4Address = address
        .parse()
        .map_err(|_| format!("{text:?}: {address:?} is not an IPv4 address (want IP:PORT)"))?;
    let port: u16 = port
        .parse()
        .ok()
        .filter(|&p| p != 0)
        .ok_or_else(|| format!("{text:?}: {port:?} is not a port 1..65535 (want IP:PORT)"))?;
    if address.is_unspecified() || address.is_broadcast() || address.is_multicast() {
        return Err(format!("{text:?}: {address} is not a node's address"));
    }
    Ok(netbt::session::Sibling { address, port })
}

/// The `--retarget` siblings, in the order given; none may be this node's own session port.
fn retargets(
    siblings: &[netbt::session::Sibling],
    own: Ipv4Address,
) -> Result<netbt::session::Retargets, String> {
    let mut list = netbt::session::Retargets::NONE;
    for &sibling in siblings {
        if sibling.address == own && sibling.port == netbt::wire::SESSION_SERVICE_PORT {
            return Err(format!(
                "--retarget {sibling}: that is this node itself (--ip); name a sibling"
            ));
        }
        list.push(sibling).map_err(|_| {
            format!(
                "--retarget given {} times: at most {}",
                siblings.len(),
                netbt::session::MAX_RETARGETS
            )
        })?;
    }
    Ok(list)
}

/// A `--handler` value: a built-in handler, or the backend sessions are forwarded to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum HandlerChoice {
    Builtin(netbt::session::Handler),
    Forward(std::net::SocketAddr),
}

/// `echo`, `discard` or `forward=HOST:PORT` (HOST resolved here, once; the first address
/// wins). Parsed in `serve`, not by clap, so that a bad value is one line.
fn parse_handler(text: &str) -> Result<HandlerChoice, String> {
    let usage = "echo, discard or forward=HOST:PORT";
    match text {
        "echo" => return Ok(HandlerChoice::Builtin(netbt::session::Handler::Echo)),
        "discard" => return Ok(HandlerChoice::Builtin(netbt::session::Handler::Discard)),
        _ => {}
    }
    let Some(target) = text.strip_prefix("forward=") else {
        return Err(format!("--handler {text:?}: unknown handler ({usage})"));
    };
    let bad = |why: &str| format!("--handler {text:?}: {why} (want forward=HOST:PORT)");
    let (host, port) = target
        .rsplit_once(':')
        .ok_or_else(|| bad("no port after the host"))?;
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    if host.is_empty() {
        return Err(bad("no host"));
    }
    let port: u16 = port
        .parse()
        .ok()
        .filter(|&p| p != 0)
        .ok_or_else(|| bad(&format!("{port:?} is not a port 1..65535")))?;
    if let Ok(address) = host.parse::<std::net::IpAddr>() {
        return Ok(HandlerChoice::Forward(std::net::SocketAddr::new(
            address, port,
        )));
    }
    use std::net::ToSocketAddrs;
    let mut addresses = (host, port)
        .to_socket_addrs()
        .map_err(|e| format!("--handler {text:?}: cannot resolve {host:?}: {e}"))?;
    addresses
        .next()
        .map(HandlerChoice::Forward)
        .ok_or_else(|| format!("--handler {text:?}: {host:?} has no address"))
}

/// `NAME` → the given default suffixes; `NAME#XX` → just that one.
fn expand_names(
    texts: &[String],
    defaults: &[u8],
    group: bool,
    out: &mut Vec<(Name, bool)>,
) -> Result<(), String> {
    for text in texts {
        if text.contains('#') {
            let name = Name::parse_text(text, 0).map_err(|e| format!("{text:?}: {e}"))?;
            out.push((name, group));
        } else {
            for &suffix in defaults {
                let name = Name::new(text, suffix).map_err(|e| format!("{text:?}: {e}"))?;
                out.push((name, group));
            }
        }
    }
    Ok(())
}

/// `--node-type` and `--wins`: b, p, m or h (default b without servers, h with), one line
/// for each mistake.
fn parse_wins(
    node_type: Option<&str>,
    servers: &[Ipv4Address],
) -> Result<netbt::name_service::WinsConfig, String> {
    use netbt::wire::nbns::NodeType;
    let node_type = match node_type.map(str::to_ascii_lowercase).as_deref() {
        None if servers.is_empty() => NodeType::B,
        None => NodeType::H,
        Some("b") => NodeType::B,
        Some("p") => NodeType::P,
        Some("m") => NodeType::M,
        Some("h") => NodeType::H,
        Some(other) => {
            return Err(format!(
                "--node-type {other:?}: unknown node type (b, p, m or h)"
            ));
        }
    };
    netbt::name_service::WinsConfig::new(node_type, servers).map_err(|e| match e {
        netbt::name_service::WinsConfigError::NoServer => format!(
            "--node-type {}: a {node_type:?}-node needs a WINS server (--wins IP)",
            node_type_letter(node_type)
        ),
        netbt::name_service::WinsConfigError::ServerForBNode => {
            "--node-type b: a B-node uses no WINS server (drop --wins, or choose p, m or h)"
                .to_string()
        }
        netbt::name_service::WinsConfigError::TooManyServers => {
            format!(
                "--wins given {} times: at most 2 (primary, secondary)",
                servers.len()
            )
        }
    })
}

fn node_type_letter(node_type: netbt::wire::nbns::NodeType) -> char {
    use netbt::wire::nbns::NodeType;
    match node_type {
        NodeType::B => 'b',
        NodeType::P => 'p',
        NodeType::M => 'm',
        NodeType::H => 'h',
    }
}

fn serve(args: ServeArgs) -> Result<(), String> {
    let handler = parse_handler(&args.handler)?;
    let mut wins = parse_wins(args.node_type.as_deref(), &args.wins)?;
    if let Some(first) = args.wins_conflict_retry {
        if wins.servers().is_empty() {
            return Err(
                "--wins-conflict-retry: a B-node has no WINS server to ask (add --wins IP)"
                    .to_string(),
            );
        }
        wins = wins.with_conflict_retry(first);
    }
    let scope =
        Scope::parse_text(&args.scope).map_err(|e| format!("--scope {:?}: {e}", args.scope))?;
    let mut names = Vec::new();
    let unique: Vec<String> = if args.names.is_empty() {
        vec!["NETBT".to_string()]
    } else {
        args.names
    };
    expand_names(&unique, &[0x00, 0x20], false, &mut names)?;
    expand_names(&args.groups, &[0x00], true, &mut names)?;
    let mut seen = std::collections::HashSet::new();
    names.retain(|(name, _)| seen.insert(*name));
    if names.len() > netbt::name_service::MAX_NAMES {
        return Err(format!(
            "{} names given; a node owns at most {}",
            names.len(),
            netbt::name_service::MAX_NAMES
        ));
    }
    let allow_calling = args
        .allow_calling
        .as_deref()
        .map(|text| {
            Name::parse_text(text, 0x00).map_err(|e| format!("--allow-calling {text:?}: {e}"))
        })
        .transpose()?;
    let comment = args
        .comment
        .unwrap_or_else(|| format!("netbt {}", env!("CARGO_PKG_VERSION")));
    if comment.len() > netbt::browse::COMMENT_MAX
        || !comment.bytes().all(|b| matches!(b, b' '..=b'~'))
    {
        return Err(format!(
            "--comment {comment:?}: at most {} printable ASCII characters",
            netbt::browse::COMMENT_MAX
        ));
    }
    let mut session = netbt::session::SessionConfig::DEFAULT;
    session.request_timeout = args.request_timeout;
    session.refusal_delay = args.refusal_delay;
    session.retarget = retargets(&args.retarget, args.ip.address())?;
    session.keepalive =
        (args.keepalive != netbt::session::Duration::ZERO).then_some(args.keepalive);
    let forward = match handler {
        HandlerChoice::Builtin(builtin) => {
            session.handler = builtin;
            None
        }
        HandlerChoice::Forward(backend) => {
            // The daemon reads and writes the sessions, and answers a request only once the
            // backend is connected.
            session.handler = netbt::session::Handler::Application;
            session.defer_accept = true;
            Some(backend)
        }
    };
    daemon::serve(daemon::ServeConfig {
        session,
        sessions: usize::from(args.sessions),
        refusal_slots: usize::from(args.refusal_slots),
        syn_backlog: usize::from(args.syn_backlog),
        session_buffer: args.session_buffer,
        allow_calling,
        tap: args.tap,
        address: args.ip,
        gateway: args.gateway,
        mac: args.mac,
        names,
        scope,
        pcap: args.pcap,
        hide_mac: args.hide_mac,
        control: args.control,
        forward,
        wins,
        comment,
        announce_interval: args.announce_interval,
    })
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Command::Status(args) = cli.command {
        // Not reaching the daemon is an operational failure (1), not bad usage (2).
        return match control::client::print_status(args.daemon.control, &args.daemon.tap, args.json)
        {
            Ok(()) => ExitCode::SUCCESS,
            Err(message) => {
                eprintln!("netbt: {message}");
                ExitCode::from(1)
            }
        };
    }
    if let Command::Query(args) = cli.command {
        let name = match Name::parse_text(&args.name, Name::SUFFIX_SERVER) {
            Ok(name) => name,
            Err(e) => {
                eprintln!("netbt: {:?}: {e}", args.name);
                return ExitCode::from(2);
            }
        };
        return match control::query::print_query(
            args.daemon.control,
            &args.daemon.tap,
            name,
            args.json,
        ) {
            Ok(()) => ExitCode::SUCCESS,
            Err(message) => {
                eprintln!("netbt: {message}");
                ExitCode::from(1)
            }
        };
    }
    if let Command::Datagram(command) = cli.command {
        return datagram(command);
    }
    if let Command::Probe(args) = cli.command {
        // Exit 0 ran, 1 a check failed, 2 bad usage (src/probe/mod.rs).
        return probe::run(args);
    }
    match run(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("netbt: {message}");
            ExitCode::from(2)
        }
    }
}

/// `netbt datagram send|watch`: exit 0 done, 1 no daemon or a refusal, 2 bad usage (one line).
fn datagram(command: DatagramCommand) -> ExitCode {
    let outcome = match command {
        DatagramCommand::Send(args) => match send_request(&args) {
            Ok(request) => {
                control::datagram::send(args.daemon.control, &args.daemon.tap, &request, args.json)
            }
            Err(usage) => {
                eprintln!("netbt datagram send: {usage}");
                return ExitCode::from(2);
            }
        },
        DatagramCommand::Watch(args) => {
            control::datagram::watch(args.daemon.control, &args.daemon.tap, args.json)
        }
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("netbt: {message}");
            ExitCode::from(1)
        }
    }
}

/// The request `netbt datagram send` makes of its arguments; a usage error is one line.
fn send_request(args: &DatagramSendArgs) -> Result<control::datagram::SendRequest, String> {
    let (Some(from), Some(to)) = (&args.from, &args.to) else {
        return Err("give --from NAME and --to NAME#XX".to_string());
    };
    Name::parse_text(from, 0).map_err(|e| format!("--from {from:?}: {e}"))?;
    if to != "*" {
        Name::parse_text(to, 0).map_err(|e| format!("--to {to:?}: {e}"))?;
    } else if args.group || args.ip.is_some() {
        return Err("--to '*' is a broadcast: no --group, no --ip".to_string());
    }
    if args.group && args.ip.is_some() {
        return Err("--group goes to the broadcast address: no --ip".to_string());
    }
    let data = match (&args.data, &args.file) {
        (Some(text), None) => text.as_bytes().to_vec(),
        (None, Some(file)) => {
            std::fs::read(file).map_err(|e| format!("--file {}: {e}", file.display()))?
        }
        _ => return Err("give exactly one of --data TEXT and --file FILE".to_string()),
    };
    if let Some(mailslot) = &args.mailslot
        && (!mailslot.is_ascii()
            || mailslot.is_empty()
            || mailslot.contains('\0')
            || !mailslot.to_ascii_uppercase().starts_with("\\MAILSLOT\\"))
    {
        return Err(format!(
            "--mailslot {mailslot:?}: a mailslot name starts with \\MAILSLOT\\"
        ));
    }
    // 576 bytes less the header and two unscoped names; less the SMB wrapping for a mailslot.
    let room = 576
        - 14
        - 2 * 34
        - args
            .mailslot
            .as_ref()
            .map_or(0, |m| netbt::wire::smb_mailslot::HEADER_LEN + m.len() + 1);
    if data.len() > room {
        return Err(format!(
            "{} bytes of data; at most {room} fit one datagram (576 bytes, no fragments)",
            data.len()
        ));
    }
    Ok(control::datagram::SendRequest {
        from: from.clone(),
        to: to.clone(),
        group: args.group,
        address: args.ip,
        mailslot: args.mailslot.clone(),
        data_hex: control::datagram::hex(&data),
    })
}

fn run(command: Command) -> Result<(), String> {
    match command {
        Command::Serve(args) => {
            env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"))
                .init();
            serve(args)?;
        }
        Command::Encode { names, scope } => {
            let scope = Scope::parse_text(&scope).map_err(|e| format!("--scope {scope:?}: {e}"))?;
            for text in names {
                let name = Name::parse_text(&text, Name::SUFFIX_WORKSTATION)
                    .map_err(|e| format!("{text:?}: {e}"))?;
                let nb = NbName::new(name, scope);
                let encoded = String::from_utf8_lossy(&name.encode()).into_owned();
                if scope.is_empty() {
                    println!("{nb}\t{encoded}");
                } else {
                    println!("{nb}\t{encoded}.{scope}");
                }
            }
        }
        Command::Status(_) | Command::Probe(_) | Command::Query(_) | Command::Datagram(_) => {
            unreachable!("handled in main")
        }
        Command::Decode { encoded } => {
            for text in encoded {
                let name = Name::decode(text.as_bytes()).map_err(|_| {
                    format!("{text:?}: not a first-level encoded name (32 letters A..P)")
                })?;
                println!("{name}");
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use netbt::session::Handler;

    #[test]
    fn retarget_siblings_parse_and_take_their_turns_in_order() {
        let sibling = parse_retarget("192.168.69.2:139").unwrap();
        assert_eq!(sibling.to_string(), "192.168.69.2:139");
        let other = parse_retarget("192.168.69.3:1139").unwrap();
        let own = Ipv4Address::new(192, 168, 69, 1);
        let list = retargets(&[sibling, other], own).unwrap();
        assert_eq!(list.as_slice(), [sibling, other]);
        assert!(retargets(&[], own).unwrap().is_empty());
        // The node itself on 139 would send callers back to where they are refused.
        let error = retargets(&[parse_retarget("192.168.69.1:139").unwrap()], own).unwrap_err();
        assert!(error.contains("this node itself"), "{error}");
        // Its own address on another port is another service: allowed.
        assert!(retargets(&[parse_retarget("192.168.69.1:1139").unwrap()], own).is_ok());
        let nine = vec![sibling; 9];
        assert_eq!(
            retargets(&nine, own).unwrap_err(),
            "--retarget given 9 times: at most 8"
        );
        for text in [
            "192.168.69.2",
            "192.168.69.2:",
            "192.168.69.2:0",
            "192.168.69.2:65536",
            "192.168.69:139",
            "host:139",
            "[::1]:139",
            ":139",
            "0.0.0.0:139",
            "255.255.255.255:139",
            "224.0.0.1:139",
        ] {
            let error = parse_retarget(text).unwrap_err();
            assert!(error.contains(text), "{text}: {error}");
            assert!(!error.contains('\n'), "{error}");
        }
    }

    #[test]
    fn handlers_parse() {
        assert_eq!(
            parse_handler("echo"),
            Ok(HandlerChoice::Builtin(Handler::Echo))
        );
        assert_eq!(
            parse_handler("discard"),
            Ok(HandlerChoice::Builtin(Handler::Discard))
        );
        for (text, want) in [
            ("forward=127.0.0.1:445", "127.0.0.1:445"),
            ("forward=[::1]:445", "[::1]:445"),
            ("forward=::1:139", "[::1]:139"),
            ("forward=localhost:445", "127.0.0.1:445"),
        ] {
            let Ok(HandlerChoice::Forward(address)) = parse_handler(text) else {
                panic!("{text}: {:?}", parse_handler(text));
            };
            if text.contains("localhost") {
                // Whatever /etc/hosts lists first: a loopback address.
                assert!(
                    address.ip().is_loopback() && address.port() == 445,
                    "{address}"
                );
            } else {
                assert_eq!(address.to_string(), want);
            }
        }
        for text in [
            "teleport",
            "forward",
            "forward=",
            "forward=127.0.0.1",
            "forward=127.0.0.1:",
            "forward=127.0.0.1:0",
            "forward=127.0.0.1:65536",
            "forward=:445",
            "forward=[]:445",
        ] {
            let error = parse_handler(text).unwrap_err();
            assert!(error.starts_with("--handler "), "{error}");
            assert!(!error.contains('\n'), "{error}");
        }
    }
}
