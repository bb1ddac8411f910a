//! The control socket: `netbt serve` answers `status` on a Unix stream socket inside its poll
//! loop, `netbt status` asks and prints the answer (std only).
//!
//! Protocol: the client sends one line, `status` (or `status json`, the same), at most
//! [`REQUEST_MAX`] bytes; the daemon answers with one JSON document (see [`status_json`]) and
//! closes. Anything else is answered with `{"error": "..."}`. The daemon never blocks on a
//! client: connections are accepted, read and written non-blocking, at most [`MAX_CLIENTS`] at
//! once, each for at most [`CLIENT_BOUND`]; the loop's poll(2) waits on the TAP, the listener and
//! the clients together, so a request is answered at once, not at the next timer.

use std::fmt::Write as _;
use std::io::{ErrorKind, Read, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::{Duration as StdDuration, Instant as StdInstant};

use netbt::gate::GateCounters;
use netbt::name_service::{NameCounters, NameState};
use netbt::node::Node;
use netbt::session::{LedgerCounts, Phase, Role, SessionCounters};
use netbt::wire::nbns::Statistics;
use smoltcp::time::Instant;

/// Clients served at once; more are closed at once (the client reports no answer).
pub const MAX_CLIENTS: usize = 8;
/// Longest request line.
pub const REQUEST_MAX: usize = 64;
/// Time a client has from connect until its answer is written.
pub const CLIENT_BOUND: StdDuration = StdDuration::from_secs(2);
/// Connections accepted per loop turn.
const ACCEPTS_PER_TURN: usize = 16;
/// The listener is tried at least this often even if poll(2) did not report it (the loop skips
/// the wait when work is due at once); otherwise only when poll(2) says a client is waiting, so
/// an idle control socket costs the busy loop no system call.
const ACCEPT_FALLBACK: StdDuration = StdDuration::from_millis(100);
/// How long `netbt status` waits for the answer.
const CLIENT_TIMEOUT: StdDuration = StdDuration::from_secs(5);
/// Largest answer `netbt status` reads.
const REPLY_MAX: u64 = 16 << 20;

// ---------------------------------------------------------------------------------- paths

/// The default socket of the daemon on `tap`: `/run/netbt/<tap>.sock` when `/run/netbt` is (or
/// can be made) writable, else `$XDG_RUNTIME_DIR/netbt-<tap>.sock`, else
/// `/tmp/netbt-<tap>.sock`. Creates `/run/netbt` if needed. In a named network namespace
/// (`ip netns`) `<tap>` is `<tap>@<namespace>`: every lab namespace has its own `tap0`, and their
/// daemons must not claim one socket.
pub fn server_path(tap: &str) -> PathBuf {
    let stem = socket_stem(tap);
    let run = Path::new("/run");
    let dir = run.join("netbt");
    if writable(&dir)
        || (!dir.exists() && writable(run) && std::fs::create_dir(&dir).is_ok() && writable(&dir))
    {
        return dir.join(format!("{stem}.sock"));
    }
    if let Some(xdg) = xdg_runtime_dir().filter(|dir| writable(dir)) {
        return xdg.join(format!("netbt-{stem}.sock"));
    }
    PathBuf::from(format!("/tmp/netbt-{stem}.sock"))
}

/// Where `netbt status` looks for the daemon on `tap`, in order (the first that exists wins).
fn client_candidates(tap: &str) -> Vec<PathBuf> {
    let stem = socket_stem(tap);
    let mut candidates = vec![PathBuf::from(format!("/run/netbt/{stem}.sock"))];
    if let Some(xdg) = xdg_runtime_dir() {
        candidates.push(xdg.join(format!("netbt-{stem}.sock")));
    }
    candidates.push(PathBuf::from(format!("/tmp/netbt-{stem}.sock")));
    candidates
}

/// Default sockets of daemons on `tap` in other network namespaces (for a hint).
fn other_namespaces(tap: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut dirs = vec![(PathBuf::from("/run/netbt"), format!("{tap}@"))];
    if let Some(xdg) = xdg_runtime_dir() {
        dirs.push((xdg, format!("netbt-{tap}@")));
    }
    dirs.push((PathBuf::from("/tmp"), format!("netbt-{tap}@")));
    for (dir, prefix) in dirs {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.starts_with(&prefix) && name.ends_with(".sock") {
                found.push(entry.path());
            }
        }
    }
    found.sort();
    found
}

/// `tap`, or `tap@namespace` inside a named network namespace.
fn socket_stem(tap: &str) -> String {
    match netns_name() {
        Some(namespace) => format!("{tap}@{namespace}"),
        None => tap.to_string(),
    }
}

/// The name of our network namespace, found as `ip netns identify` finds it: the entry of
/// /run/netns that is the same namespace (device and inode) as /proc/self/ns/net. `None` in the
/// initial namespace (it has no entry there) or when it cannot be told.
fn netns_name() -> Option<String> {
    let own = std::fs::metadata("/proc/self/ns/net").ok()?;
    let entries = std::fs::read_dir("/run/netns").ok()?;
    let mut names: Vec<String> = entries
        .flatten()
        .filter(|entry| {
            std::fs::metadata(entry.path())
                .is_ok_and(|meta| (meta.dev(), meta.ino()) == (own.dev(), own.ino()))
        })
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .collect();
    // One namespace may have several names; take the same one every time.
    names.sort();
    names.into_iter().next()
}

fn xdg_runtime_dir() -> Option<PathBuf> {
    std::env::var_os("XDG_RUNTIME_DIR")
        .map(PathBuf::from)
        .filter(|dir| dir.is_absolute() && dir.is_dir())
}

/// Whether this process may create files in `dir` (effective ids, as bind(2) checks).
fn writable(dir: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let Ok(path) = std::ffi::CString::new(dir.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: a valid NUL-terminated path for the duration of the call.
    #[allow(unsafe_code)]
    let rc = unsafe {
        libc::faccessat(
            libc::AT_FDCWD,
            path.as_ptr(),
            libc::W_OK | libc::X_OK,
            libc::AT_EACCESS,
        )
    };
    rc == 0 && dir.is_dir()
}

// ---------------------------------------------------------------------------------- server

/// The daemon's end: a non-blocking listener and the clients being served. Dropping it removes
/// the socket file (if it is still ours).
pub struct ControlServer {
    path: PathBuf,
    listener: UnixListener,
    /// Device and inode of the socket file we created.
    identity: (u64, u64),
    clients: Vec<Client>,
    /// poll(2) reported the listener readable.
    listener_ready: bool,
    /// When to try the listener even if poll(2) did not report it.
    next_accept: StdInstant,
    /// The poll(2) set of [`ControlServer::wait`], kept between turns.
    poll_fds: Vec<libc::pollfd>,
}

struct Client {
    stream: UnixStream,
    request: [u8; REQUEST_MAX],
    len: usize,
    reply: Option<Vec<u8>>,
    sent: usize,
    deadline: StdInstant,
}

impl ControlServer {
    /// Creates the socket at `path`. A socket file nobody answers on is a leftover and removed;
    /// one a daemon answers on is an error (exit 2), as is a file that is not a socket.
    pub fn bind(path: &Path) -> Result<ControlServer, String> {
        let shown = path.display();
        match std::fs::symlink_metadata(path) {
            Ok(meta) if !meta.file_type().is_socket() => {
                return Err(format!(
                    "control socket {shown} exists and is not a socket; remove it or choose \
                     another with --control PATH"
                ));
            }
            Ok(_) => match UnixStream::connect(path) {
                Ok(_) => {
                    return Err(format!(
                        "another netbt daemon answers on control socket {shown}; stop it or \
                         give this one --control PATH"
                    ));
                }
                Err(e) if e.kind() == ErrorKind::ConnectionRefused => {
                    std::fs::remove_file(path)
                        .map_err(|e| format!("cannot remove stale control socket {shown}: {e}"))?;
                    log::info!("removed stale control socket {shown}");
                }
                Err(e) => {
                    return Err(format!("cannot probe existing control socket {shown}: {e}"));
                }
            },
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => return Err(format!("cannot check control socket {shown}: {e}")),
        }
        let listener = UnixListener::bind(path)
            .map_err(|e| format!("cannot create control socket {shown}: {e}"))?;
        let remove = |message: String| {
            let _ = std::fs::remove_file(path);
            message
        };
        let meta = std::fs::symlink_metadata(path)
            .map_err(|e| remove(format!("cannot create control socket {shown}: {e}")))?;
        // Only our user may ask (the answer lists peers); independent of the umask.
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
            .map_err(|e| remove(format!("cannot restrict control socket {shown}: {e}")))?;
        listener
            .set_nonblocking(true)
            .map_err(|e| remove(format!("control socket {shown}: {e}")))?;
        Ok(ControlServer {
            path: path.to_path_buf(),
            listener,
            identity: (meta.dev(), meta.ino()),
            clients: Vec::with_capacity(MAX_CLIENTS),
            listener_ready: true,
            next_accept: StdInstant::now(),
            poll_fds: Vec::with_capacity(2 + MAX_CLIENTS),
        })
    }

    /// Where the socket is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Accepts new clients, reads requests, writes answers, drops clients that are done or out
    /// of time. Never blocks. `status` builds the status document when a request needs it.
    pub fn serve(&mut self, status: &mut dyn FnMut() -> String) {
        let now = StdInstant::now();
        if self.listener_ready || now >= self.next_accept {
            self.listener_ready = false;
            self.next_accept = now + ACCEPT_FALLBACK;
            self.accept(now);
        }
        if !self.clients.is_empty() {
            self.clients
                .retain_mut(|client| client.advance(now, &mut *status));
        }
    }

    fn accept(&mut self, now: StdInstant) {
        for _ in 0..ACCEPTS_PER_TURN {
            match self.listener.accept() {
                Ok((stream, _)) => {
                    // Accepted sockets do not inherit O_NONBLOCK on Linux.
                    if self.clients.len() >= MAX_CLIENTS {
                        log::debug!("control socket: {MAX_CLIENTS} clients already; closing one");
                    } else if stream.set_nonblocking(true).is_ok() {
                        self.clients.push(Client {
                            stream,
                            request: [0; REQUEST_MAX],
                            len: 0,
                            reply: None,
                            sent: 0,
                            deadline: now + CLIENT_BOUND,
                        });
                    }
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) => {
                    log::debug!("control socket: accept: {e}");
                    break;
                }
            }
        }
    }

    /// Waits until the TAP `tap`, the listener, a client or one of `extra` (the forward
    /// handler's backend sockets) is ready, or `timeout` passes (a signal also ends the wait).
    pub fn wait(&mut self, tap: RawFd, extra: &[libc::pollfd], timeout: StdDuration) {
        let pollfd = |fd: RawFd, events: libc::c_short| libc::pollfd {
            fd,
            events,
            revents: 0,
        };
        // Reused from turn to turn: no allocation once it has grown to size.
        let mut fds = std::mem::take(&mut self.poll_fds);
        fds.clear();
        fds.push(pollfd(tap, libc::POLLIN));
        fds.push(pollfd(self.listener.as_raw_fd(), libc::POLLIN));
        for client in &self.clients {
            let events = if client.reply.is_some() {
                libc::POLLOUT
            } else {
                libc::POLLIN
            };
            fds.push(pollfd(client.stream.as_raw_fd(), events));
        }
        fds.extend_from_slice(extra);
        // ppoll, not poll: a deadline in microseconds (the gate's refusal delay is a few
        // milliseconds) neither wakes early nor spins through its last millisecond.
        let timeout = libc::timespec {
            tv_sec: timeout.as_secs().min(i32::MAX as u64) as libc::time_t,
            tv_nsec: libc::c_long::from(timeout.subsec_nanos() as i32),
        };
        // SAFETY: `fds.len()` valid pollfds and a timespec, both live for the duration of the
        // call; a null signal mask leaves the mask as it is.
        #[allow(unsafe_code)]
        let ready = unsafe {
            libc::ppoll(
                fds.as_mut_ptr(),
                fds.len() as libc::nfds_t,
                &timeout,
                std::ptr::null(),
            )
        };
        self.listener_ready |= ready > 0 && fds[1].revents != 0;
        self.poll_fds = fds;
    }
}

impl Drop for ControlServer {
    fn drop(&mut self) {
        // Remove the file only if it is still the one we created (not a successor's).
        if let Ok(meta) = std::fs::symlink_metadata(&self.path)
            && (meta.dev(), meta.ino()) == self.identity
        {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

impl Client {
    /// Moves the exchange on; `false` when the client is done with (it is then closed).
    fn advance(&mut self, now: StdInstant, status: &mut dyn FnMut() -> String) -> bool {
        if now >= self.deadline {
            return false;
        }
        if self.reply.is_none() {
            loop {
                if self.request[..self.len].contains(&b'\n') {
                    break;
                }
                if self.len == REQUEST_MAX {
                    break;
                }
                match self.stream.read(&mut self.request[self.len..]) {
                    // End of input ends the line too; a connection that sent nothing (a probe)
                    // is closed without an answer.
                    Ok(0) if self.len == 0 => return false,
                    Ok(0) => break,
                    Ok(n) => self.len += n,
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    Err(e) if e.kind() == ErrorKind::WouldBlock => return true,
                    Err(_) => return false,
                }
            }
            let request = &self.request[..self.len];
            let reply = match request.iter().position(|&b| b == b'\n') {
                Some(end) => answer(&request[..end], status),
                None if self.len == REQUEST_MAX => {
                    error_json(&format!("request longer than {REQUEST_MAX} bytes"))
                }
                None => answer(request, status),
            };
            self.reply = Some(reply.into_bytes());
        }
        let Some(reply) = &self.reply else {
            return false;
        };
        while self.sent < reply.len() {
            match self.stream.write(&reply[self.sent..]) {
                Ok(0) => return false,
                Ok(n) => self.sent += n,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => return true,
                Err(_) => return false,
            }
        }
        false
    }
}

/// The answer to one request line.
fn answer(line: &[u8], status: &mut dyn FnMut() -> String) -> String {
    let line = String::from_utf8_lossy(line);
    let words: Vec<&str> = line.split_whitespace().collect();
    match words[..] {
        ["status"] | ["status", "json"] => status(),
        _ => error_json(&format!(
            "unknown request {:?} (the daemon knows: status)",
            line.trim()
        )),
    }
}

fn error_json(message: &str) -> String {
    let mut out = String::from("{\"error\": ");
    json_string(&mut out, message);
    out.push_str("}\n");
    out
}

// ---------------------------------------------------------------------------------- status

/// What the daemon knows about itself beyond the node.
pub struct DaemonInfo<'a> {
    pub tap: &'a str,
    pub address: String,
    pub mac: String,
    pub scope: String,
    pub uptime: StdDuration,
    pub ready: bool,
    pub stopping: bool,
}

/// Writes `"key": value` pairs of plain numeric fields, one per line. The struct is
/// destructured without `..`, so a field added to it later fails to compile here instead of
/// going missing from the status.
macro_rules! numeric_fields {
    ($out:expr, $indent:expr, $value:expr, $ty:ident { $($field:ident),* $(,)? } $(skip { $($skip:ident),* })?) => {{
        let $ty { $($field,)* $($($skip: _,)*)? } = $value;
        let fields: &[(&str, u64)] = &[$((stringify!($field), u64::from($field))),*];
        write_numeric_object($out, $indent, fields);
    }};
}

fn write_numeric_object(out: &mut String, indent: &str, fields: &[(&str, u64)]) {
    out.push_str("{\n");
    for (i, (key, value)) in fields.iter().enumerate() {
        let comma = if i + 1 < fields.len() { "," } else { "" };
        let _ = writeln!(out, "{indent}  \"{key}\": {value}{comma}");
    }
    let _ = write!(out, "{indent}}}");
}

/// The status document: the daemon, the name table (with the session listeners), every slot
/// that is not free or listening, the ledger, and every counter. Names and sessions are one
/// object per line, so line-oriented tools can pick them out.
pub fn status_json(node: &mut Node, info: &DaemonInfo, now: Instant) -> String {
    let mut out = String::with_capacity(4096);
    out.push_str("{\n  \"netbt\": ");
    json_string(&mut out, env!("CARGO_PKG_VERSION"));
    let _ = write!(out, ",\n  \"pid\": {},\n  \"tap\": ", std::process::id());
    json_string(&mut out, info.tap);
    out.push_str(",\n  \"address\": ");
    json_string(&mut out, &info.address);
    out.push_str(",\n  \"mac\": ");
    json_string(&mut out, &info.mac);
    out.push_str(",\n  \"scope\": ");
    json_string(&mut out, &info.scope);
    let _ = write!(
        out,
        ",\n  \"uptime_ms\": {},\n  \"ready\": {},\n  \"stopping\": {},\n",
        info.uptime.as_millis(),
        info.ready,
        info.stopping
    );

    let listeners: Vec<_> = node.session_service().listeners().to_vec();
    out.push_str("  \"names\": [");
    for (i, owned) in node.names.names().iter().enumerate() {
        out.push_str(if i == 0 { "\n    " } else { ",\n    " });
        out.push_str("{\"name\": ");
        json_string(&mut out, &owned.name.to_string());
        let _ = write!(
            out,
            ", \"suffix\": {}, \"group\": {}, \"state\": \"{}\", \"listening\": {}}}",
            owned.name.suffix(),
            owned.group,
            name_state(owned.state),
            listeners.iter().any(|l| l.name == owned.name)
        );
    }
    out.push_str(if node.names.names().is_empty() {
        "],\n"
    } else {
        "\n  ],\n"
    });

    out.push_str("  \"listeners\": [");
    for (i, listener) in listeners.iter().enumerate() {
        out.push_str(if i == 0 { "\n    " } else { ",\n    " });
        out.push_str("{\"name\": ");
        json_string(&mut out, &listener.name.to_string());
        out.push_str(", \"calling\": ");
        json_option(&mut out, listener.calling.map(|n| n.to_string()));
        out.push('}');
    }
    out.push_str(if listeners.is_empty() {
        "],\n"
    } else {
        "\n  ],\n"
    });

    let service = node.session_service();
    out.push_str("  \"sessions\": [");
    let mut any = false;
    for slot in service
        .slots()
        .filter(|s| !matches!(s.phase, Phase::Free | Phase::Listening))
    {
        out.push_str(if any { ",\n    " } else { "\n    " });
        any = true;
        let age_ms = if now > slot.connected_at {
            (now - slot.connected_at).total_millis()
        } else {
            0
        };
        let _ = write!(
            out,
            "{{\"slot\": {}, \"generation\": {}, \"role\": \"{}\", \"phase\": \"{}\", \"peer\": ",
            slot.slot.index,
            slot.slot.generation,
            role(slot.role),
            phase(slot.phase)
        );
        json_option(&mut out, slot.peer.map(|p| p.to_string()));
        out.push_str(", \"called\": ");
        json_option(&mut out, slot.called.map(|n| n.to_string()));
        out.push_str(", \"calling\": ");
        json_option(&mut out, slot.calling.map(|n| n.to_string()));
        let _ = write!(
            out,
            ", \"age_ms\": {age_ms}, \"bytes_in\": {}, \"bytes_out\": {}}}",
            slot.bytes_in, slot.bytes_out
        );
    }
    out.push_str(if any { "\n  ],\n" } else { "],\n" });

    let counters = service.counters();
    out.push_str("  \"ledger\": ");
    let LedgerCounts {
        session_slots,
        refusal_slots,
        free,
        busy,
        pending,
        refusing,
        closing,
        waiting,
        syn_backlog,
        bytes_per_session_slot,
        bytes_per_refusal_slot,
    } = service.ledger();
    write_numeric_object(
        &mut out,
        "  ",
        &[
            ("session_slots", session_slots.into()),
            ("refusal_slots", refusal_slots.into()),
            ("free", free.into()),
            ("busy", busy.into()),
            ("pending", pending.into()),
            ("refusing", refusing.into()),
            ("closing", closing.into()),
            ("high_water", counters.high_water.into()),
            ("waiting", waiting.into()),
            ("syn_backlog", syn_backlog.into()),
            ("bytes_per_session_slot", bytes_per_session_slot.into()),
            ("bytes_per_refusal_slot", bytes_per_refusal_slot.into()),
        ],
    );

    out.push_str(",\n  \"counters\": {\n    \"sessions\": ");
    write_session_counters(&mut out, "    ", counters);
    out.push_str(",\n    \"names\": ");
    write_name_counters(&mut out, "    ", *node.names.counters());
    out.push_str(",\n    \"node_status\": ");
    write_statistics(&mut out, "    ", node.node_status_statistics());
    out.push_str("\n  }\n}\n");
    out
}

fn write_session_counters(out: &mut String, indent: &str, counters: SessionCounters) {
    // Flat, as before: the gate's counters sit among the session service's own.
    let SessionCounters {
        positive,
        not_listening_on_called,
        not_listening_for_calling,
        called_not_present,
        insufficient_resources,
        unspecified,
        gate:
            GateCounters {
                syns_held,
                syns_dropped,
                syns_replayed,
                syns_to_refusal_slots,
                duplicate_syns_swallowed,
                resets_sent,
            },
        request_timeouts,
        drains,
        drain_timeouts,
        aborts_handshake,
        aborts_close,
        aborts_stalled,
        peer_resets,
        peer_closes,
        keepalives_sent,
        keepalives_received,
        protocol_errors,
        high_water,
        events_lost,
    } = counters;
    let fields: &[(&str, u64)] = &[
        ("positive", positive.into()),
        ("not_listening_on_called", not_listening_on_called.into()),
        (
            "not_listening_for_calling",
            not_listening_for_calling.into(),
        ),
        ("called_not_present", called_not_present.into()),
        ("insufficient_resources", insufficient_resources.into()),
        ("unspecified", unspecified.into()),
        ("syns_held", syns_held.into()),
        ("syns_dropped", syns_dropped.into()),
        ("syns_replayed", syns_replayed.into()),
        ("syns_to_refusal_slots", syns_to_refusal_slots.into()),
        ("duplicate_syns_swallowed", duplicate_syns_swallowed.into()),
        ("resets_sent", resets_sent.into()),
        ("request_timeouts", request_timeouts.into()),
        ("drains", drains.into()),
        ("drain_timeouts", drain_timeouts.into()),
        ("aborts_handshake", aborts_handshake.into()),
        ("aborts_close", aborts_close.into()),
        ("aborts_stalled", aborts_stalled.into()),
        ("peer_resets", peer_resets.into()),
        ("peer_closes", peer_closes.into()),
        ("keepalives_sent", keepalives_sent.into()),
        ("keepalives_received", keepalives_received.into()),
        ("protocol_errors", protocol_errors.into()),
        ("high_water", high_water.into()),
        ("events_lost", events_lost.into()),
    ];
    write_numeric_object(out, indent, fields);
}

fn write_name_counters(out: &mut String, indent: &str, counters: NameCounters) {
    numeric_fields!(
        out,
        indent,
        counters,
        NameCounters {
            received,
            malformed,
            queries_answered,
            queries_refused,
            node_status_answered,
            defences,
            conflicts,
            foreign_releases_ignored,
            unsolicited_conflicts_ignored,
            unsolicited_responses_ignored,
            sent,
            events_lost,
        }
    );
}

/// The node status statistics block, UNIT_ID left out (the MAC is in the document already).
fn write_statistics(out: &mut String, indent: &str, statistics: Statistics) {
    numeric_fields!(
        out,
        indent,
        statistics,
        Statistics {
            jumpers,
            test_result,
            version_number,
            period_of_statistics,
            number_of_crcs,
            number_alignment_errors,
            number_of_collisions,
            number_send_aborts,
            number_good_sends,
            number_good_receives,
            number_retransmits,
            number_no_resource_conditions,
            number_free_command_blocks,
            total_number_command_blocks,
            max_total_number_command_blocks,
            number_pending_sessions,
            max_number_pending_sessions,
            max_total_sessions_possible,
            session_data_packet_size,
        } skip { unit_id }
    );
}

/// Names as `nbtstat -n` words them (Active is "Registered").
fn name_state(state: NameState) -> &'static str {
    match state {
        NameState::Registering { .. } => "Registering",
        NameState::Active => "Registered",
        NameState::Conflict => "Conflict",
        NameState::Releasing { .. } => "Releasing",
        NameState::Released => "Released",
    }
}

fn role(role: Role) -> &'static str {
    match role {
        Role::Session => "session",
        Role::Refusal => "refusal",
    }
}

fn phase(phase: Phase) -> &'static str {
    match phase {
        Phase::Free => "Free",
        Phase::Listening => "Listening",
        Phase::AwaitingRequest => "AwaitingRequest",
        Phase::Deciding => "Deciding",
        Phase::Established => "Established",
        Phase::Draining => "Draining",
        Phase::Closing => "Closing",
    }
}

fn json_option(out: &mut String, value: Option<String>) {
    match value {
        Some(text) => json_string(out, &text),
        None => out.push_str("null"),
    }
}

fn json_string(out: &mut String, text: &str) {
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 || c == '\u{7f}' => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

// ---------------------------------------------------------------------------------- client

/// `netbt status`: asks the daemon and prints its answer (the JSON as is with `json`, else
/// text tables). Errors are one line for exit code 1.
pub fn status(control: Option<PathBuf>, tap: &str, json: bool) -> Result<(), String> {
    let path = match control {
        Some(path) => path,
        None => {
            let candidates = client_candidates(tap);
            match candidates
                .iter()
                .find(|p| std::fs::symlink_metadata(p).is_ok())
            {
                Some(path) => path.clone(),
                None => {
                    let listed: Vec<String> =
                        candidates.iter().map(|p| p.display().to_string()).collect();
                    let others: Vec<String> = other_namespaces(tap)
                        .iter()
                        .map(|p| p.display().to_string())
                        .collect();
                    let hint = if others.is_empty() {
                        String::new()
                    } else {
                        format!(
                            "; daemons in other network namespaces: {} (--control PATH, or ask \
                             from inside with `ip netns exec`)",
                            others.join(", ")
                        )
                    };
                    return Err(format!(
                        "no netbt daemon for {tap}: no control socket at {} (is `netbt serve` \
                         running? --control PATH names its socket){hint}",
                        listed.join(", ")
                    ));
                }
            }
        }
    };
    let reply = ask(&path, "status")?;
    let document = parse_json(&reply).map_err(|e| {
        format!(
            "the daemon at {} sent an unreadable answer: {e}",
            path.display()
        )
    })?;
    if let Some(message) = document.get("error").and_then(Value::as_str) {
        return Err(format!(
            "the daemon at {} refused: {message}",
            path.display()
        ));
    }
    let out = if json { reply } else { render_text(&document) };
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(out.as_bytes())
        .and_then(|()| stdout.flush())
        .map_err(|e| format!("cannot write the status: {e}"))
}

/// Sends one request line and reads the whole answer.
fn ask(path: &Path, request: &str) -> Result<String, String> {
    let shown = path.display();
    if let Ok(meta) = std::fs::metadata(path)
        && !meta.file_type().is_socket()
    {
        return Err(format!(
            "{shown} is not a socket (--control names the daemon's socket)"
        ));
    }
    let mut stream = UnixStream::connect(path).map_err(|e| match e.kind() {
        ErrorKind::NotFound => {
            format!("no netbt daemon at {shown}: no such socket (is `netbt serve` running?)")
        }
        ErrorKind::ConnectionRefused => format!(
            "no netbt daemon answers at {shown} (a leftover socket; is `netbt serve` running?)"
        ),
        ErrorKind::PermissionDenied => {
            format!("permission denied on {shown} (ask as the daemon's user, e.g. with sudo)")
        }
        _ => format!("cannot connect to {shown}: {e}"),
    })?;
    let timeout = |e: std::io::Error| {
        if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) {
            format!(
                "the daemon at {shown} did not answer within {} s",
                CLIENT_TIMEOUT.as_secs()
            )
        } else {
            format!("talking to the daemon at {shown}: {e}")
        }
    };
    stream
        .set_read_timeout(Some(CLIENT_TIMEOUT))
        .and_then(|()| stream.set_write_timeout(Some(CLIENT_TIMEOUT)))
        .map_err(timeout)?;
    stream
        .write_all(format!("{request}\n").as_bytes())
        .map_err(timeout)?;
    let _ = stream.shutdown(std::net::Shutdown::Write);
    let mut reply = Vec::new();
    (&mut stream)
        .take(REPLY_MAX)
        .read_to_end(&mut reply)
        .map_err(timeout)?;
    if reply.is_empty() {
        return Err(format!(
            "the daemon at {shown} closed the connection without answering (busy or shutting \
             down?)"
        ));
    }
    String::from_utf8(reply)
        .map_err(|_| format!("the daemon at {shown} sent an answer that is not UTF-8"))
}

// ---------------------------------------------------------------------------------- JSON in

/// A parsed JSON value; objects keep their order, numbers their text.
#[derive(Debug, Clone, PartialEq)]
enum Value {
    Null,
    Bool(bool),
    Number(String),
    String(String),
    Array(Vec<Value>),
    Object(Vec<(String, Value)>),
}

impl Value {
    fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Object(fields) => fields.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(text) => Some(text),
            _ => None,
        }
    }

    fn as_array(&self) -> &[Value] {
        match self {
            Value::Array(items) => items,
            _ => &[],
        }
    }

    fn as_object(&self) -> &[(String, Value)] {
        match self {
            Value::Object(fields) => fields,
            _ => &[],
        }
    }

    /// The value as a table cell: strings bare, null as `-`.
    fn cell(&self) -> String {
        match self {
            Value::Null => "-".to_string(),
            Value::Bool(b) => b.to_string(),
            Value::Number(n) => n.clone(),
            Value::String(s) => s.clone(),
            Value::Array(_) | Value::Object(_) => "…".to_string(),
        }
    }

    fn field(&self, key: &str) -> String {
        self.get(key).map_or_else(|| "-".to_string(), Value::cell)
    }
}

const MAX_DEPTH: usize = 16;

fn parse_json(text: &str) -> Result<Value, String> {
    let mut parser = JsonParser {
        bytes: text.as_bytes(),
        at: 0,
    };
    let value = parser.value(0)?;
    parser.skip_space();
    if parser.at != parser.bytes.len() {
        return Err(format!("trailing bytes at offset {}", parser.at));
    }
    Ok(value)
}

struct JsonParser<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl JsonParser<'_> {
    fn skip_space(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.bytes.get(self.at) {
            self.at += 1;
        }
    }

    fn error<T>(&self, what: &str) -> Result<T, String> {
        Err(format!("{what} at offset {}", self.at))
    }

    fn eat(&mut self, byte: u8) -> bool {
        self.skip_space();
        if self.bytes.get(self.at) == Some(&byte) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    fn literal(&mut self, word: &str, value: Value) -> Result<Value, String> {
        if self.bytes[self.at..].starts_with(word.as_bytes()) {
            self.at += word.len();
            Ok(value)
        } else {
            self.error("unexpected word")
        }
    }

    fn value(&mut self, depth: usize) -> Result<Value, String> {
        if depth > MAX_DEPTH {
            return self.error("nested too deeply");
        }
        self.skip_space();
        match self.bytes.get(self.at) {
            None => self.error("unexpected end"),
            Some(b'n') => self.literal("null", Value::Null),
            Some(b't') => self.literal("true", Value::Bool(true)),
            Some(b'f') => self.literal("false", Value::Bool(false)),
            Some(b'"') => self.string().map(Value::String),
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(b'[') => {
                self.at += 1;
                let mut items = Vec::new();
                if self.eat(b']') {
                    return Ok(Value::Array(items));
                }
                loop {
                    items.push(self.value(depth + 1)?);
                    if self.eat(b']') {
                        return Ok(Value::Array(items));
                    }
                    if !self.eat(b',') {
                        return self.error("expected , or ]");
                    }
                }
            }
            Some(b'{') => {
                self.at += 1;
                let mut fields = Vec::new();
                if self.eat(b'}') {
                    return Ok(Value::Object(fields));
                }
                loop {
                    self.skip_space();
                    if self.bytes.get(self.at) != Some(&b'"') {
                        return self.error("expected a key");
                    }
                    let key = self.string()?;
                    if !self.eat(b':') {
                        return self.error("expected :");
                    }
                    fields.push((key, self.value(depth + 1)?));
                    if self.eat(b'}') {
                        return Ok(Value::Object(fields));
                    }
                    if !self.eat(b',') {
                        return self.error("expected , or }");
                    }
                }
            }
            Some(_) => self.error("unexpected character"),
        }
    }

    fn number(&mut self) -> Result<Value, String> {
        let start = self.at;
        while let Some(b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9') = self.bytes.get(self.at) {
            self.at += 1;
        }
        let text = std::str::from_utf8(&self.bytes[start..self.at]).unwrap_or("");
        if text.parse::<f64>().is_err() {
            self.at = start;
            return self.error("bad number");
        }
        Ok(Value::Number(text.to_string()))
    }

    fn hex4(&mut self) -> Result<u32, String> {
        let digits = self
            .bytes
            .get(self.at..self.at + 4)
            .and_then(|d| std::str::from_utf8(d).ok())
            .and_then(|d| u32::from_str_radix(d, 16).ok());
        match digits {
            Some(value) => {
                self.at += 4;
                Ok(value)
            }
            None => self.error("bad \\u escape"),
        }
    }

    fn string(&mut self) -> Result<String, String> {
        self.at += 1; // the opening quote
        let mut out = String::new();
        loop {
            let start = self.at;
            while let Some(&b) = self.bytes.get(self.at) {
                if b == b'"' || b == b'\\' || b < 0x20 {
                    break;
                }
                self.at += 1;
            }
            // The input is a &str and we stopped at ASCII bytes: a character boundary.
            out.push_str(std::str::from_utf8(&self.bytes[start..self.at]).unwrap_or("\u{fffd}"));
            match self.bytes.get(self.at) {
                Some(b'"') => {
                    self.at += 1;
                    return Ok(out);
                }
                Some(b'\\') => {
                    self.at += 1;
                    let escape = self.bytes.get(self.at).copied();
                    self.at += 1;
                    match escape {
                        Some(b'"') => out.push('"'),
                        Some(b'\\') => out.push('\\'),
                        Some(b'/') => out.push('/'),
                        Some(b'b') => out.push('\u{8}'),
                        Some(b'f') => out.push('\u{c}'),
                        Some(b'n') => out.push('\n'),
                        Some(b'r') => out.push('\r'),
                        Some(b't') => out.push('\t'),
                        Some(b'u') => {
                            let unit = self.hex4()?;
                            // Surrogates (never sent by netbt) become U+FFFD.
                            out.push(char::from_u32(unit).unwrap_or('\u{fffd}'));
                        }
                        _ => {
                            self.at -= 1;
                            return self.error("bad escape");
                        }
                    }
                }
                Some(_) => return self.error("control character in string"),
                None => return self.error("unterminated string"),
            }
        }
    }
}

// ---------------------------------------------------------------------------------- text out

/// The status as text: a header line, then Names, Sessions, Ledger and Counters.
fn render_text(status: &Value) -> String {
    let mut out = String::new();
    let scope = status
        .get("scope")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(|s| format!(" scope {s}"))
        .unwrap_or_default();
    let uptime = status
        .get("uptime_ms")
        .map(Value::cell)
        .and_then(|ms| ms.parse::<u64>().ok())
        .map_or("-".to_string(), seconds);
    let state = match (status.get("stopping"), status.get("ready")) {
        (Some(Value::Bool(true)), _) => "stopping",
        (_, Some(Value::Bool(true))) => "ready",
        _ => "registering",
    };
    let _ = writeln!(
        out,
        "netbt {} (pid {}) on {} {} {}{scope}, up {uptime} s, {state}",
        status.field("netbt"),
        status.field("pid"),
        status.field("tap"),
        status.field("address"),
        status.field("mac"),
    );

    out.push_str("\nNames\n");
    let listeners = status.get("listeners").map_or(&[][..], Value::as_array);
    let rows: Vec<Vec<String>> = status
        .get("names")
        .map_or(&[][..], Value::as_array)
        .iter()
        .map(|name| {
            let group = matches!(name.get("group"), Some(Value::Bool(true)));
            let sessions = match listeners.iter().find(|l| l.get("name") == name.get("name")) {
                Some(listener) => match listener.get("calling").and_then(Value::as_str) {
                    Some(calling) => format!("listening (from {calling} only)"),
                    None => "listening".to_string(),
                },
                None => "-".to_string(),
            };
            vec![
                name.field("name"),
                if group { "group" } else { "unique" }.to_string(),
                name.field("state"),
                sessions,
            ]
        })
        .collect();
    table(&mut out, &["NAME", "TYPE", "STATE", "SESSIONS"], &rows);

    out.push_str("\nSessions\n");
    let rows: Vec<Vec<String>> = status
        .get("sessions")
        .map_or(&[][..], Value::as_array)
        .iter()
        .map(|s| {
            let age = s
                .get("age_ms")
                .map(Value::cell)
                .and_then(|ms| ms.parse::<u64>().ok())
                .map_or("-".to_string(), seconds);
            vec![
                s.field("slot"),
                s.field("role"),
                s.field("phase"),
                s.field("peer"),
                s.field("called"),
                s.field("calling"),
                age,
                s.field("bytes_in"),
                s.field("bytes_out"),
            ]
        })
        .collect();
    table(
        &mut out,
        &[
            "SLOT", "ROLE", "PHASE", "PEER", "CALLED", "CALLING", "AGE s", "IN", "OUT",
        ],
        &rows,
    );

    out.push_str("\nLedger\n");
    key_values(
        &mut out,
        "  ",
        status.get("ledger").map_or(&[][..], Value::as_object),
    );

    out.push_str("\nCounters\n");
    let counters = status.get("counters").map_or(&[][..], Value::as_object);
    for (group, values) in counters {
        let title = match group.as_str() {
            "sessions" => "session service (TCP 139)",
            "names" => "name service (UDP 137)",
            "node_status" => "node status statistics (RFC 1002)",
            other => other,
        };
        let _ = writeln!(out, "  {title}");
        key_values(&mut out, "    ", values.as_object());
    }
    out
}

/// Milliseconds as seconds with one decimal.
fn seconds(ms: u64) -> String {
    format!("{}.{}", ms / 1000, ms % 1000 / 100)
}

/// Columns padded to their widest cell; the last column is not padded. `(none)` for no rows.
fn table(out: &mut String, header: &[&str], rows: &[Vec<String>]) {
    if rows.is_empty() {
        out.push_str("  (none)\n");
        return;
    }
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let header: Vec<String> = header.iter().map(|h| h.to_string()).collect();
    for row in std::iter::once(&header).chain(rows) {
        let mut line = String::from("  ");
        for (i, (cell, width)) in row.iter().zip(&widths).enumerate() {
            let gap = if i == 0 { "" } else { "  " };
            let _ = write!(line, "{gap}{cell:<width$}");
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
}

/// `key  value` lines, keys with spaces for underscores, values aligned.
fn key_values(out: &mut String, indent: &str, fields: &[(String, Value)]) {
    let width = fields.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    for (key, value) in fields {
        let key = key.replace('_', " ");
        let _ = writeln!(out, "{indent}{key:<width$}  {}", value.cell());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(test: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("netbt-control-{}-{test}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn bind_replaces_only_a_stale_socket() {
        let dir = scratch("bind");
        let path = dir.join("netbt.sock");

        // Another daemon answers: refused, its socket kept.
        let other = UnixListener::bind(&path).unwrap();
        let refused = ControlServer::bind(&path).err().unwrap();
        assert!(
            refused.contains("another netbt daemon answers"),
            "{refused}"
        );
        assert!(path.exists());
        drop(other);

        // Now nobody answers: the leftover is replaced; ours goes away with the server.
        let server = ControlServer::bind(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        drop(server);
        assert!(!path.exists());

        // A successor's socket at the same path is not ours to remove.
        let server = ControlServer::bind(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        let successor = UnixListener::bind(&path).unwrap();
        drop(server);
        assert!(path.exists());
        drop(successor);

        // Not a socket: refused, left alone.
        let file = dir.join("plain");
        std::fs::write(&file, "keep").unwrap();
        let refused = ControlServer::bind(&file).err().unwrap();
        assert!(refused.contains("is not a socket"), "{refused}");
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "keep");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn server_answers_without_blocking() {
        let dir = scratch("serve");
        let path = dir.join("netbt.sock");
        let mut server = ControlServer::bind(&path).unwrap();
        let mut calls = 0;
        let mut status = || {
            calls += 1;
            "{\"ok\": true}\n".to_string()
        };
        // Nothing to do: returns at once.
        server.serve(&mut status);

        // A client that connects but says nothing does not hold the loop up; one that sends
        // its line in two pieces is answered once the line is whole.
        let silent = UnixStream::connect(&path).unwrap();
        let mut slow = UnixStream::connect(&path).unwrap();
        slow.write_all(b"sta").unwrap();
        // As in the daemon's loop: the wait wakes for the listener, then serve accepts.
        server.wait(-1, &[], StdDuration::from_secs(1));
        let started = StdInstant::now();
        server.serve(&mut status);
        assert!(started.elapsed() < StdDuration::from_millis(50));
        assert_eq!(server.clients.len(), 2);
        slow.write_all(b"tus\n").unwrap();
        server.wait(-1, &[], StdDuration::from_millis(100));
        server.serve(&mut status);
        let mut reply = String::new();
        slow.read_to_string(&mut reply).unwrap();
        assert_eq!(reply, "{\"ok\": true}\n");
        assert_eq!(server.clients.len(), 1, "the silent client waits, bounded");

        // An unknown request gets an error document; the status is not built for it.
        let mut odd = UnixStream::connect(&path).unwrap();
        odd.write_all(b"reboot\n").unwrap();
        server.wait(-1, &[], StdDuration::from_secs(1));
        server.serve(&mut status);
        let mut reply = String::new();
        odd.read_to_string(&mut reply).unwrap();
        assert!(
            reply.starts_with("{\"error\": \"unknown request"),
            "{reply}"
        );

        // The silent client is dropped at its deadline.
        for client in &mut server.clients {
            client.deadline = StdInstant::now();
        }
        server.serve(&mut status);
        assert!(server.clients.is_empty());
        drop(silent);
        drop(server);
        assert_eq!(calls, 1);
        assert!(!path.exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn excess_clients_are_closed_not_queued() {
        let dir = scratch("excess");
        let path = dir.join("netbt.sock");
        let mut server = ControlServer::bind(&path).unwrap();
        let clients: Vec<UnixStream> = (0..MAX_CLIENTS + 2)
            .map(|_| UnixStream::connect(&path).unwrap())
            .collect();
        server.serve(&mut || String::new());
        assert_eq!(server.clients.len(), MAX_CLIENTS);
        let mut last = &clients[MAX_CLIENTS + 1];
        let mut buffer = Vec::new();
        assert_eq!(last.read_to_end(&mut buffer).unwrap(), 0, "closed at once");
        drop(server);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn json_strings_round_trip() {
        for text in ["LABSRV<20>", "a\"b\\c", "tab\tnew\nline\u{1}\u{7f}", "ünï"] {
            let mut out = String::new();
            json_string(&mut out, text);
            assert_eq!(parse_json(&out), Ok(Value::String(text.to_string())));
        }
    }

    #[test]
    fn parser_reads_documents_and_rejects_garbage() {
        let value = parse_json(r#" {"a": [1, -2.5e3, true, null, {}], "b": "x\u0041"} "#).unwrap();
        assert_eq!(value.get("b"), Some(&Value::String("xA".to_string())));
        assert_eq!(value.get("a").unwrap().as_array().len(), 5);
        for bad in [
            "",
            "{",
            "[1,]",
            "{\"a\" 1}",
            "\"open",
            "nul",
            "1 2",
            "{\"a\": 1,}",
            "\"\\q\"",
            "\"\\u12\"",
            "-",
            &"[".repeat(100),
        ] {
            assert!(parse_json(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn requests_are_answered_exactly() {
        let mut status = || "{\"ok\": true}\n".to_string();
        assert_eq!(answer(b"status", &mut status), "{\"ok\": true}\n");
        assert_eq!(answer(b"status json\r", &mut status), "{\"ok\": true}\n");
        assert_eq!(answer(b"  status  ", &mut status), "{\"ok\": true}\n");
        let refused = parse_json(&answer(b"shutdown", &mut status)).unwrap();
        assert!(
            refused
                .get("error")
                .and_then(Value::as_str)
                .unwrap()
                .contains("unknown request \"shutdown\"")
        );
    }

    #[test]
    fn numeric_objects_are_valid_json() {
        let mut out = String::new();
        let counters = SessionCounters {
            positive: netbt::counter::Counter::new(3),
            high_water: 2,
            ..SessionCounters::default()
        };
        write_session_counters(&mut out, "", counters);
        let value = parse_json(&out).unwrap();
        assert_eq!(value.as_object().len(), 25);
        assert_eq!(value.field("positive"), "3");
        assert_eq!(value.field("high_water"), "2");
    }

    const SAMPLE: &str = r#"{
  "netbt": "0.1.0",
  "pid": 42,
  "tap": "tap0",
  "address": "192.168.69.1/24",
  "mac": "02:00:00:00:00:01",
  "scope": "",
  "uptime_ms": 12345,
  "ready": true,
  "stopping": false,
  "names": [
    {"name": "LABSRV<20>", "suffix": 32, "group": false, "state": "Registered", "listening": true},
    {"name": "LABGRP<00>", "suffix": 0, "group": true, "state": "Conflict", "listening": false}
  ],
  "listeners": [
    {"name": "LABSRV<20>", "calling": "CLIENT<00>"}
  ],
  "sessions": [
    {"slot": 0, "generation": 3, "role": "session", "phase": "Established", "peer": "192.168.69.100:40000", "called": "LABSRV<20>", "calling": "CLIENT<00>", "age_ms": 2500, "bytes_in": 10, "bytes_out": 10},
    {"slot": 9, "generation": 1, "role": "refusal", "phase": "Draining", "peer": null, "called": null, "calling": null, "age_ms": 0, "bytes_in": 0, "bytes_out": 0}
  ],
  "ledger": {
    "session_slots": 8,
    "high_water": 1
  },
  "counters": {
    "sessions": {
      "positive": 1,
      "insufficient_resources": 0
    },
    "names": {
      "received": 5
    }
  }
}
"#;

    #[test]
    fn text_has_every_section() {
        let text = render_text(&parse_json(SAMPLE).unwrap());
        let expected = "\
netbt 0.1.0 (pid 42) on tap0 192.168.69.1/24 02:00:00:00:00:01, up 12.3 s, ready

Names
  NAME        TYPE    STATE       SESSIONS
  LABSRV<20>  unique  Registered  listening (from CLIENT<00> only)
  LABGRP<00>  group   Conflict    -

Sessions
  SLOT  ROLE     PHASE        PEER                  CALLED      CALLING     AGE s  IN  OUT
  0     session  Established  192.168.69.100:40000  LABSRV<20>  CLIENT<00>  2.5    10  10
  9     refusal  Draining     -                     -           -           0.0    0   0

Ledger
  session slots  8
  high water     1

Counters
  session service (TCP 139)
    positive                1
    insufficient resources  0
  name service (UDP 137)
    received  5
";
        assert_eq!(text, expected);
        let empty = render_text(&parse_json(r#"{"names": [], "sessions": []}"#).unwrap());
        assert!(empty.contains("Names\n  (none)\n"));
        assert!(empty.contains("Sessions\n  (none)\n"));
    }
}
