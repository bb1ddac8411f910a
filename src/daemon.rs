//! `netbt serve`: the node on a TAP device, until SIGINT or SIGTERM.

use std::io::Write;
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration as StdDuration, Instant as StdInstant};

use netbt::forward::Forwarder;
use netbt::log_limit::LogLimit;
use netbt::name_service::NameEvent;
use netbt::node::{Node, NodeConfig, NodeStorage};
use netbt::session::{SessionConfig, SessionEvent};
use netbt::tap::TapDevice;
use netbt::wire::name::{Name, Scope};
use smoltcp::phy::{Device, PcapMode, PcapWriter};
use smoltcp::time::Instant;
use smoltcp::wire::{Ipv4Address, Ipv4Cidr};

use crate::control::query::QueryReply;
use crate::control::server::Requests;
use crate::control::status::ErrorReply;
use crate::control::{self, ControlServer, DaemonInfo, Status, TapCounters};
use crate::poll::PollSet;
use netbt::name_service::QueryId;

/// Longest wait in one loop turn, so signals are seen promptly even if the wait restarts. The
/// wait also ends when the control socket has a client or a forwarded session's backend socket
/// is ready (one ppoll(2) over the TAP, the control listener and its clients, and the backend
/// sockets: [`wait`]), so `netbt status` is answered and backend bytes are relayed at once.
const MAX_WAIT: StdDuration = StdDuration::from_millis(100);
/// How long release may take before the daemon exits anyway.
const RELEASE_BOUND: StdDuration = StdDuration::from_secs(3);

/// Everything `serve` needs, validated.
pub struct ServeConfig {
    pub session: SessionConfig,
    pub sessions: usize,
    pub refusal_slots: usize,
    /// SYNs the gate keeps while no session slot is free.
    pub syn_backlog: usize,
    pub session_buffer: usize,
    pub allow_calling: Option<Name>,
    pub tap: String,
    pub address: Ipv4Cidr,
    pub gateway: Option<Ipv4Address>,
    pub mac: [u8; 6],
    /// (name, group)
    pub names: Vec<(Name, bool)>,
    pub scope: Scope,
    pub pcap: Option<std::path::PathBuf>,
    pub hide_mac: bool,
    /// The control socket (`None`: [`control::server_path`] of the TAP).
    pub control: Option<std::path::PathBuf>,
    /// `--handler forward=HOST:PORT`: the backend every session is relayed to (the session
    /// config then has the application handler and deferred accept).
    pub forward: Option<std::net::SocketAddr>,
    /// `--node-type` and `--wins`.
    pub wins: netbt::name_service::WinsConfig,
    /// The browse list's comment for this server.
    pub comment: String,
    /// `--announce-interval`: a fixed interval instead of the MS-BRWS schedule.
    pub announce_interval: Option<smoltcp::time::Duration>,
}

/// Runs the daemon; returns an error line for exit code 2 on set-up failures.
pub fn serve(config: ServeConfig) -> Result<(), String> {
    let device = TapDevice::open(&config.tap).map_err(|e| {
        if e.kind() == std::io::ErrorKind::ResourceBusy {
            // The TAP exists and works: the advice to create it would mislead.
            return format!("cannot open TAP device {}: {e}", config.tap);
        }
        format!(
            "cannot open TAP device {}: {e} (create it as root with `ip tuntap add dev {} mode tap` \
             and run netbt with CAP_NET_ADMIN)",
            config.tap, config.tap
        )
    })?;
    // The control socket once the TAP is ours (a start that fails on the TAP leaves nothing
    // behind). Dropping it, on every return from here, errors included, removes the file.
    let path = match &config.control {
        Some(path) => path.clone(),
        None => control::server_path(&config.tap),
    };
    let mut control = ControlServer::bind(&path)?;
    match &config.pcap {
        Some(path) => {
            let file = std::fs::File::create(path)
                .map_err(|e| format!("cannot create pcap file {}: {e}", path.display()))?;
            let fd = device.as_raw_fd();
            let name = device.name().to_string();
            let mut device = PcapWriter::new(device, file, PcapMode::Both);
            run(
                &config,
                &mut device,
                PcapWriter::get_ref,
                fd,
                &name,
                &mut control,
            )
        }
        None => {
            let fd = device.as_raw_fd();
            let name = device.name().to_string();
            let mut device = device;
            run(&config, &mut device, |tap| tap, fd, &name, &mut control)
        }
    }
}

/// The loop. `tap` finds the TAP under `device` (which may wrap it), to see whether it is gone
/// or pausing after read errors.
fn run<D: Device>(
    config: &ServeConfig,
    device: &mut D,
    tap: fn(&D) -> &TapDevice,
    fd: std::os::fd::RawFd,
    ifname: &str,
    control: &mut ControlServer,
) -> Result<(), String> {
    let start = StdInstant::now();
    let clock = || Instant::from_micros(start.elapsed().as_micros() as i64);

    // All storage, allocated once here and never again.
    let storage = NodeStorage::leaked(
        config.sessions,
        config.refusal_slots,
        config.session_buffer,
        config.syn_backlog,
    );
    let node_config = NodeConfig {
        mac: config.mac,
        address: config.address,
        gateway: config.gateway,
        scope: config.scope,
        hide_mac: config.hide_mac,
        seed: netbt::host::entropy(),
        session: config.session,
    };
    let mut node = Node::new(node_config, device, storage, clock())
        .map_err(|e| format!("cannot set up the node: {e}"))?;
    node.names.configure_wins(config.wins);
    for &(name, group) in &config.names {
        node.names
            .add_name(name, group)
            .map_err(|e| format!("name {name}: {e}"))?;
        if !group {
            node.session_service()
                .listen(name, config.allow_calling)
                .map_err(|e| format!("cannot listen on {name}: {e}"))?;
        }
    }
    node.browse
        .set_comment(config.comment.as_bytes())
        .map_err(|e| format!("--comment {:?}: {e}", config.comment))?;
    node.browse.set_interval(config.announce_interval);
    let workgroup = config
        .names
        .iter()
        .find(|(n, group)| *group && n.suffix() == 0);
    let server = config
        .names
        .iter()
        .find(|(n, group)| !*group && n.suffix() == 0);
    match (workgroup, server) {
        (Some((workgroup, _)), Some((server, _))) => log::info!(
            "browse list: announcing {server} to {}<1D> (comment {:?}, {})",
            String::from_utf8_lossy(workgroup.base()),
            config.comment,
            match config.announce_interval {
                Some(every) => format!("every {} s", every.secs()),
                None => "after 1, 1, 2, 4, 8 min, then every 12 min".to_string(),
            }
        ),
        (None, _) => log::info!("browse list: no --group NAME with suffix 00, not announced"),
        (_, None) => log::info!("browse list: no unique NAME<00> to announce, not announced"),
    }
    let mut refusal_log = LogLimit::new(10, |n| log::info!("{n} more session refusals not logged"));
    // The forward handler's relays: two buffers per session slot, allocated here, once.
    let mut forwarder = config
        .forward
        .map(|backend| Forwarder::new(backend, config.sessions, config.session_buffer));

    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, Arc::clone(&stop))
            .map_err(|e| format!("cannot install signal handler: {e}"))?;
    }

    log::info!(
        "{ifname}: {} ({}), registering {} names; control socket {}",
        config.address,
        format_mac(&config.mac),
        config.names.len(),
        control.path().display()
    );
    let ledger = node.session_service().ledger();
    let reserved = u64::from(ledger.session_slots) * u64::from(ledger.bytes_per_session_slot)
        + u64::from(ledger.refusal_slots) * u64::from(ledger.bytes_per_refusal_slot);
    log::info!(
        "{} session slots of {} bytes and {} refusal slots of {} bytes: {:.1} MiB reserved",
        ledger.session_slots,
        ledger.bytes_per_session_slot,
        ledger.refusal_slots,
        ledger.bytes_per_refusal_slot,
        reserved as f64 / (1024.0 * 1024.0)
    );
    if let Some(forwarder) = &forwarder {
        log::info!("sessions are forwarded to {}", forwarder.backend());
    }
    if !config.wins.servers().is_empty() {
        let servers: Vec<String> = config
            .wins
            .servers()
            .iter()
            .map(|s| s.to_string())
            .collect();
        log::info!(
            "{:?}-node, WINS server {}",
            config.wins.node_type(),
            servers.join(", secondary ")
        );
    }
    node.names.start(clock());
    let mut announced = false;
    let mut releasing_since: Option<StdInstant> = None;
    let mut poll = PollSet::new();
    let mut queries = Queries::default();
    loop {
        let now = clock();
        let next = node.poll(now, device);
        if let Some(error) = tap(device).gone() {
            // Nothing can be sent or received any more (no release either): end at once, so a
            // supervisor can start the node again; the control socket goes with `control`.
            return Err(format!("TAP device {ifname} is gone ({error}); exiting"));
        }
        report_events(&mut node);
        report_datagrams(&mut node, control);
        report_session_events(&mut node, &mut refusal_log, forwarder.as_mut());
        let relayed = forwarder
            .as_mut()
            .is_some_and(|forwarder| forwarder.pump(&mut node, clock()));
        let mut status = |node: &mut Node| {
            let info = DaemonInfo {
                tap: ifname,
                address: config.address.to_string(),
                mac: format_mac(&config.mac),
                scope: config.scope.to_string(),
                uptime: start.elapsed(),
                ready: node.names.is_ready(),
                stopping: releasing_since.is_some(),
                tap_counters: TapCounters::read(ifname),
            };
            // The backend-side local address of each forwarded session (smbd's log shows it).
            let backend = |slot| forwarder.as_ref().and_then(|f| f.backend_local(slot));
            Status::new(node, &info, clock(), &backend).to_json()
        };
        let mut answering = Answering {
            node: &mut node,
            status: &mut status,
            queries: &mut queries,
            now: clock(),
            sent: false,
        };
        control.serve(&mut answering);
        // A datagram queued for a client goes out at the next poll, without a wait first.
        let sent = answering.sent;

        if !announced && node.names.is_ready() {
            announced = true;
            let names: Vec<String> = node
                .names
                .names()
                .iter()
                .map(|n| {
                    let group = if n.group { "(group)" } else { "" };
                    // A name another node owns is not ours: say so on the line scripts read.
                    let conflict = if n.state == netbt::name_service::NameState::Conflict {
                        "(conflict)"
                    } else {
                        ""
                    };
                    format!("{}{group}{conflict}", n.name)
                })
                .collect();
            let scope = if config.scope.is_empty() {
                String::new()
            } else {
                format!(" scope {}", config.scope)
            };
            println!(
                "netbt ready on {ifname} {} names {}{scope}",
                config.address,
                names.join(" ")
            );
            let _ = std::io::stdout().flush();
        }

        if stop.load(Ordering::Relaxed) && releasing_since.is_none() {
            log::info!("signal received: closing sessions, releasing names");
            releasing_since = Some(StdInstant::now());
            node.shut_down_sessions(clock());
            // The last host announcement (server type 0) leaves before the names' releases.
            node.shut_down_announcements();
            node.poll(clock(), device);
            node.names.release(clock());
            continue;
        }
        if let Some(since) = releasing_since {
            if node.names.is_released() && node.session_service().is_idle() {
                // Let the last broadcasts leave.
                node.poll(clock(), device);
                log::info!("names released, exiting");
                return Ok(());
            }
            if since.elapsed() > RELEASE_BOUND {
                let ledger = node.session_service().ledger();
                log::warn!(
                    "shutdown did not finish in {RELEASE_BOUND:?} ({} sessions, {} closing); exiting",
                    ledger.busy,
                    ledger.closing
                );
                return Ok(());
            }
        }

        // Relay work moves bytes into and out of the session sockets: no sleep, poll again.
        if !relayed && !sent {
            let mut timeout = sleep_for(next, clock(), forwarder.as_ref());
            // After read errors the TAP may stay readable: sleep out its pause instead of
            // waiting on it.
            let pausing = tap(device).pausing();
            if let Some(until) = pausing {
                timeout = timeout.min(until.saturating_duration_since(StdInstant::now()));
            }
            if !timeout.is_zero() {
                let backends = forwarder.as_mut().map_or(&[][..], Forwarder::poll_fds);
                let tap_fd = if pausing.is_none() { Some(fd) } else { None };
                wait(&mut poll, tap_fd, control, backends, timeout);
            }
        }
    }
}

/// How long the loop may sleep: until the node's next timer (`next`, as [`Node::poll`] at `now`
/// returned it) or the forwarder's next deadline, at most [`MAX_WAIT`]. In microseconds, not
/// rounded to milliseconds: the gate's refusal delay is a few milliseconds.
fn sleep_for(next: Option<Instant>, now: Instant, forwarder: Option<&Forwarder>) -> StdDuration {
    let mut sleep = match next {
        Some(at) if at <= now => StdDuration::ZERO,
        Some(at) => StdDuration::from_micros((at - now).total_micros()),
        None => MAX_WAIT,
    };
    if let Some(deadline) = forwarder.and_then(Forwarder::next_deadline) {
        sleep = sleep.min(deadline.saturating_duration_since(StdInstant::now()));
    }
    sleep.min(MAX_WAIT)
}

/// Sleeps until the TAP `tap` (unless its reads pause), the control socket or one of `backends`
/// (the forward handler's backend sockets) is ready, or `timeout` passes (a signal also ends
/// the wait).
fn wait(
    poll: &mut PollSet,
    tap: Option<std::os::fd::RawFd>,
    control: &mut ControlServer,
    backends: &[libc::pollfd],
    timeout: StdDuration,
) {
    poll.clear();
    if let Some(tap) = tap {
        poll.push(tap, libc::POLLIN);
    }
    let listener = control.watch(poll);
    poll.extend(backends);
    poll.wait(timeout);
    control.woken(poll, listener);
}

/// `netbt query` requests under way: ticket, the resolution, the name, when it started.
#[derive(Default)]
struct Queries {
    next_ticket: u64,
    open: Vec<(u64, QueryId, Name, StdInstant)>,
}

/// How long an unanswered query's ticket is kept (its client is gone by then).
const QUERY_KEPT: StdDuration = StdDuration::from_secs(30);

/// The control socket's requests, answered from the node.
struct Answering<'x, 'a> {
    node: &'x mut Node<'a>,
    status: &'x mut dyn FnMut(&mut Node<'a>) -> String,
    queries: &'x mut Queries,
    now: Instant,
    /// A `datagram send` was executed.
    sent: bool,
}

impl Requests for Answering<'_, '_> {
    fn status(&mut self) -> String {
        (self.status)(self.node)
    }

    fn start_query(&mut self, encoded: &str) -> Result<u64, String> {
        let name = Name::decode(encoded.as_bytes())
            .map_err(|_| ErrorReply::json("query: not a first-level encoded name"))?;
        let id = self
            .node
            .names
            .resolve(name, self.now)
            .map_err(|e| ErrorReply::json(&format!("query: {e}")))?;
        let queries = &mut *self.queries;
        queries.open.retain(|q| q.3.elapsed() < QUERY_KEPT);
        queries.next_ticket += 1;
        let ticket = queries.next_ticket;
        queries.open.push((ticket, id, name, StdInstant::now()));
        log::debug!("query {name} started");
        Ok(ticket)
    }

    fn query_reply(&mut self, ticket: u64) -> Option<String> {
        let at = self.queries.open.iter().position(|q| q.0 == ticket)?;
        let (_, id, name, _) = self.queries.open[at];
        let resolution = self.node.names.take_resolution(id)?;
        self.queries.open.remove(at);
        Some(QueryReply::new(name, &resolution).to_json())
    }

    fn datagram_send(&mut self, request: &str) -> String {
        self.sent = true;
        control::datagram::execute(self.node, request)
    }
}

fn report_events(node: &mut Node) {
    while let Some(event) = node.names.take_event() {
        match event {
            NameEvent::Conflict { .. }
            | NameEvent::Wins(netbt::name_service::WinsEvent::Refused { .. }) => {
                log::error!("{event}")
            }
            NameEvent::Wins(netbt::name_service::WinsEvent::Silent { .. }) => {
                log::warn!("{event}")
            }
            _ => log::info!("{event}"),
        }
    }
}

/// Datagrams addressed to us: one debug line each, and one line to every `datagram watch`.
fn report_datagrams(node: &mut Node, control: &mut ControlServer) {
    while let Some(delivery) = node.datagrams.take_delivery() {
        log::debug!(
            "{} datagram {} ({}:{}) -> {}, {} bytes",
            delivery.kind,
            delivery.source_name,
            delivery.source.address,
            delivery.source.port,
            delivery.destination_name,
            delivery.data.len()
        );
        if control.has_watchers() {
            control.publish(&control::datagram::delivery_line(&delivery));
        }
    }
}

fn report_session_events(
    node: &mut Node,
    refusals: &mut LogLimit,
    mut forwarder: Option<&mut Forwarder>,
) {
    while let Some(event) = node.session_service().take_event() {
        if let Some(forwarder) = forwarder.as_deref_mut() {
            forwarder.on_event(&event);
        }
        match event {
            SessionEvent::Opened { .. }
            | SessionEvent::Requested { .. }
            | SessionEvent::Closed { .. } => log::debug!("{event}"),
            SessionEvent::Refused { .. } | SessionEvent::Retargeted { .. } => {
                if refusals.allow() {
                    log::info!("{event}");
                }
            }
            SessionEvent::RequestTimeout { .. } | SessionEvent::Aborted { .. } => {
                log::info!("{event}")
            }
        }
    }
}

fn format_mac(mac: &[u8; 6]) -> String {
    mac.map(|b| format!("{b:02x}")).join(":")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_loop_sleeps_until_the_next_timer_to_the_microsecond_at_most_max_wait() {
        let now = Instant::from_micros(1_000_000);
        assert_eq!(sleep_for(None, now, None), MAX_WAIT);
        assert_eq!(sleep_for(Some(now), now, None), StdDuration::ZERO);
        let overdue = Instant::from_micros(999_000);
        assert_eq!(sleep_for(Some(overdue), now, None), StdDuration::ZERO);
        let soon = Instant::from_micros(1_002_345);
        assert_eq!(
            sleep_for(Some(soon), now, None),
            StdDuration::from_micros(2_345)
        );
        let late = Instant::from_micros(60_000_000);
        assert_eq!(sleep_for(Some(late), now, None), MAX_WAIT);
    }
}
