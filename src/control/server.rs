//! The control socket's transport: a non-blocking Unix stream listener that the daemon's loop
//! serves between polls of the node.
//!
//! Protocol: the client sends one line, `status` (or `status json`, the same), at most
//! [`REQUEST_MAX`] bytes; the daemon answers with one JSON document and closes. Anything else is
//! answered with `{"error": "..."}` ([`ErrorReply`]). `datagram send {JSON}` sends one datagram
//! ([`Requests::datagram_send`], answered with one document); `datagram watch` keeps the
//! connection open and gets one JSON line per datagram addressed to the node
//! ([`ControlServer::publish`]) until the client closes it (a watcher that does not read loses
//! lines beyond [`WATCH_BACKLOG`] bytes). The daemon never blocks on a client:
//! connections are accepted, read and written non-blocking, at most [`MAX_CLIENTS`] at once,
//! each for at most [`CLIENT_BOUND`]. The daemon's wait covers the listener and the clients
//! ([`ControlServer::watch`]), so a request is answered at once, not at the next timer.
//!
//! `query NAME` (NAME first-level encoded, 32 letters) asks the daemon to resolve a name
//! ([`Requests::start_query`]); the answer comes when the resolution ends
//! ([`Requests::query_reply`]), within [`QUERY_BOUND`].

use std::io::{ErrorKind, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::{Duration as StdDuration, Instant as StdInstant};

use netbt::host::nonblocking;

use super::status::ErrorReply;
use crate::poll::PollSet;

/// Clients served at once; more are closed at once (the client reports no answer).
pub const MAX_CLIENTS: usize = 8;
/// Longest request line (a `datagram send` carries up to 576 bytes of data in hex).
pub const REQUEST_MAX: usize = 4096;
/// Bytes of unsent lines a `datagram watch` client may have queued; later lines are dropped.
pub const WATCH_BACKLOG: usize = 64 * 1024;
/// Time a client has from connect until its answer is written.
pub const CLIENT_BOUND: StdDuration = StdDuration::from_secs(2);
/// Time a `query` client has from connect until its answer is written (a resolution takes
/// up to about 8 s: two silent WINS servers, then broadcasts).
pub const QUERY_BOUND: StdDuration = StdDuration::from_secs(15);

/// What the daemon answers with. A closure `FnMut() -> String` answers `status` only.
pub trait Requests {
    /// The status document.
    fn status(&mut self) -> String;

    /// Starts resolving the name `encoded` (first-level encoded); a ticket for
    /// [`Requests::query_reply`], or the reply at once (an error document).
    fn start_query(&mut self, encoded: &str) -> Result<u64, String> {
        let _ = encoded;
        Err(ErrorReply::json("this daemon answers no queries"))
    }

    /// The reply to query `ticket` once its resolution has ended.
    fn query_reply(&mut self, ticket: u64) -> Option<String> {
        let _ = ticket;
        None
    }

    /// Executes `datagram send` with its JSON argument; returns the answer document.
    fn datagram_send(&mut self, request: &str) -> String {
        let _ = request;
        ErrorReply::json("this daemon does not send datagrams")
    }
}

impl<F: FnMut() -> String> Requests for F {
    fn status(&mut self) -> String {
        self()
    }
}
/// Connections accepted per loop turn.
const ACCEPTS_PER_TURN: usize = 16;
/// The listener is tried at least this often even if the wait did not report it (the loop skips
/// the wait when work is due at once); otherwise only when the wait says a client is waiting, so
/// an idle control socket costs the busy loop no system call.
const ACCEPT_FALLBACK: StdDuration = StdDuration::from_millis(100);

/// The daemon's end: a non-blocking listener and the clients being served. Dropping it removes
/// the socket file (if it is still ours).
pub struct ControlServer {
    path: PathBuf,
    listener: UnixListener,
    /// Device and inode of the socket file we created.
    identity: (u64, u64),
    clients: Vec<Client>,
    /// The wait reported the listener readable.
    listener_ready: bool,
    /// When to try the listener even if the wait did not report it.
    next_accept: StdInstant,
}

struct Client {
    stream: UnixStream,
    request: [u8; REQUEST_MAX],
    len: usize,
    reply: Option<Vec<u8>>,
    sent: usize,
    deadline: StdInstant,
    /// A query waiting for its resolution.
    pending: Option<u64>,
    /// A `datagram watch` client: kept open, `reply` gets one line per datagram.
    watching: bool,
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
        })
    }

    /// Where the socket is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Accepts new clients, reads requests, writes answers, drops clients that are done or out
    /// of time. Never blocks. `status` builds the status document when a request needs it.
    pub fn serve(&mut self, status: &mut dyn Requests) {
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
            match nonblocking(|| self.listener.accept()) {
                Ok(Some((stream, _))) => {
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
                            pending: None,
                            watching: false,
                        });
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    log::debug!("control socket: accept: {e}");
                    break;
                }
            }
        }
    }

    /// Adds the listener and the clients to the daemon's wait: the listener for a new client, a
    /// client for its request or for room for its answer. Returns the listener's entry, for
    /// [`ControlServer::woken`].
    pub fn watch(&self, set: &mut PollSet) -> usize {
        let listener = set.push(self.listener.as_raw_fd(), libc::POLLIN);
        for client in &self.clients {
            if client.pending.is_some() {
                // Its request is read (the client may have closed its side: always readable);
                // the answer comes with the node's timers, which end the wait anyway.
                continue;
            }
            let unsent = client.reply.as_ref().is_some_and(|r| r.len() > client.sent);
            let events = if client.watching {
                // A watcher: its close, and room for queued lines.
                libc::POLLIN | if unsent { libc::POLLOUT } else { 0 }
            } else if client.reply.is_some() {
                libc::POLLOUT
            } else {
                libc::POLLIN
            };
            set.push(client.stream.as_raw_fd(), events);
        }
        listener
    }

    /// Takes the wait's word on the listener (entry `listener` of `set`, from
    /// [`ControlServer::watch`]): the next [`ControlServer::serve`] accepts if it is ready.
    pub fn woken(&mut self, set: &PollSet, listener: usize) {
        self.listener_ready |= set.is_ready(listener);
    }

    /// Whether any `datagram watch` client is connected.
    pub fn has_watchers(&self) -> bool {
        self.clients.iter().any(|c| c.watching)
    }

    /// Queues `line` (one JSON object, no newline) for every `datagram watch` client; a client
    /// with [`WATCH_BACKLOG`] bytes unsent misses it. Written by the next
    /// [`ControlServer::serve`].
    pub fn publish(&mut self, line: &str) {
        for client in self.clients.iter_mut().filter(|c| c.watching) {
            let Some(reply) = &mut client.reply else {
                continue;
            };
            if reply.len() - client.sent + line.len() < WATCH_BACKLOG {
                reply.extend_from_slice(line.as_bytes());
                reply.push(b'\n');
            } else {
                log::debug!("control socket: a datagram watcher does not read; line dropped");
            }
        }
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
    fn advance(&mut self, now: StdInstant, status: &mut dyn Requests) -> bool {
        if self.watching {
            return self.watch();
        }
        if now >= self.deadline {
            return false;
        }
        if let Some(ticket) = self.pending {
            match status.query_reply(ticket) {
                Some(reply) => {
                    self.pending = None;
                    self.reply = Some(reply.into_bytes());
                }
                None => return true,
            }
        }
        if self.reply.is_none() && self.pending.is_none() {
            loop {
                if self.request[..self.len].contains(&b'\n') {
                    break;
                }
                if self.len == REQUEST_MAX {
                    break;
                }
                match nonblocking(|| self.stream.read(&mut self.request[self.len..])) {
                    // End of input ends the line too; a connection that sent nothing (a probe)
                    // is closed without an answer.
                    Ok(Some(0)) if self.len == 0 => return false,
                    Ok(Some(0)) => break,
                    Ok(Some(n)) => self.len += n,
                    Ok(None) => return true,
                    Err(_) => return false,
                }
            }
            let request = &self.request[..self.len];
            let line = match request.iter().position(|&b| b == b'\n') {
                Some(end) => Some(&request[..end]),
                None if self.len == REQUEST_MAX => None,
                None => Some(request),
            };
            let reply = match line {
                None => Answer::Now(ErrorReply::json(&format!(
                    "request longer than {REQUEST_MAX} bytes"
                ))),
                Some(line) if is_watch(line) => {
                    self.watching = true;
                    self.reply = Some(b"{\"watching\": true}\n".to_vec());
                    return self.watch();
                }
                Some(line) => match datagram_send(line) {
                    Some(arguments) => Answer::Now(status.datagram_send(&arguments)),
                    None => answer(line, status),
                },
            };
            match reply {
                Answer::Now(reply) => self.reply = Some(reply.into_bytes()),
                Answer::Later(ticket) => {
                    self.pending = Some(ticket);
                    self.deadline = self.deadline.max(now + QUERY_BOUND);
                    return true;
                }
            }
        }
        let Some(reply) = &self.reply else {
            return false;
        };
        while self.sent < reply.len() {
            match nonblocking(|| self.stream.write(&reply[self.sent..])) {
                Ok(Some(0)) | Err(_) => return false,
                Ok(Some(n)) => self.sent += n,
                Ok(None) => return true,
            }
        }
        false
    }
}

impl Client {
    /// A watcher's turn: write what is queued; `false` once the client has closed its end or a
    /// write failed.
    fn watch(&mut self) -> bool {
        let mut scratch = [0u8; 256];
        loop {
            match nonblocking(|| self.stream.read(&mut scratch)) {
                Ok(Some(0)) | Err(_) => return false,
                Ok(Some(_)) => continue, // anything after the request is ignored
                Ok(None) => break,
            }
        }
        let Some(reply) = &mut self.reply else {
            return false;
        };
        while self.sent < reply.len() {
            match nonblocking(|| self.stream.write(&reply[self.sent..])) {
                Ok(Some(0)) | Err(_) => return false,
                Ok(Some(n)) => self.sent += n,
                Ok(None) => break,
            }
        }
        // Keep only what is still to send, so a slow reader's queue stays within the backlog.
        reply.drain(..self.sent);
        self.sent = 0;
        true
    }
}

/// Whether the line is `datagram watch` (with or without `json`).
fn is_watch(line: &[u8]) -> bool {
    let line = String::from_utf8_lossy(line);
    let words: Vec<&str> = line.split_whitespace().collect();
    matches!(
        words[..],
        ["datagram", "watch"] | ["datagram", "watch", "json"]
    )
}

/// The JSON argument of a `datagram send {...}` line.
fn datagram_send(line: &[u8]) -> Option<String> {
    let line = String::from_utf8_lossy(line);
    let rest = line.trim_start().strip_prefix("datagram")?;
    let rest = rest.trim_start().strip_prefix("send")?;
    Some(rest.trim().to_string())
}

/// A reply now, or a ticket for a query's reply later.
enum Answer {
    Now(String),
    Later(u64),
}

/// The answer to one request line.
fn answer(line: &[u8], status: &mut dyn Requests) -> Answer {
    let line = String::from_utf8_lossy(line);
    let words: Vec<&str> = line.split_whitespace().collect();
    match words[..] {
        ["status"] | ["status", "json"] => Answer::Now(status.status()),
        ["query", encoded] => match status.start_query(encoded) {
            Ok(ticket) => Answer::Later(ticket),
            Err(reply) => Answer::Now(reply),
        },
        _ => Answer::Now(ErrorReply::json(&format!(
            "unknown request {:?} (the daemon knows: status, query, datagram send, datagram watch)",
            line.trim()
        ))),
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

    /// The daemon's wait, on the control socket alone.
    fn wait(server: &mut ControlServer, timeout: StdDuration) {
        let mut set = PollSet::new();
        let listener = server.watch(&mut set);
        set.wait(timeout);
        server.woken(&set, listener);
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
        wait(&mut server, StdDuration::from_secs(1));
        let started = StdInstant::now();
        server.serve(&mut status);
        assert!(started.elapsed() < StdDuration::from_millis(50));
        assert_eq!(server.clients.len(), 2);
        slow.write_all(b"tus\n").unwrap();
        wait(&mut server, StdDuration::from_millis(100));
        server.serve(&mut status);
        let mut reply = String::new();
        slow.read_to_string(&mut reply).unwrap();
        assert_eq!(reply, "{\"ok\": true}\n");
        assert_eq!(server.clients.len(), 1, "the silent client waits, bounded");

        // An unknown request gets an error document; the status is not built for it.
        let mut odd = UnixStream::connect(&path).unwrap();
        odd.write_all(b"reboot\n").unwrap();
        wait(&mut server, StdDuration::from_secs(1));
        server.serve(&mut status);
        let mut reply = String::new();
        odd.read_to_string(&mut reply).unwrap();
        let refused: ErrorReply = serde_json::from_str(&reply).unwrap();
        assert!(refused.error.starts_with("unknown request"), "{reply}");

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

    /// A handler that records datagram sends.
    struct Recorder {
        sends: Vec<String>,
    }

    impl Requests for Recorder {
        fn status(&mut self) -> String {
            "{\"ok\": true}\n".to_string()
        }

        fn datagram_send(&mut self, request: &str) -> String {
            self.sends.push(request.to_string());
            "{\"sent\": \"unique\"}\n".to_string()
        }
    }

    #[test]
    fn datagram_send_and_watch() {
        let dir = scratch("datagram");
        let path = dir.join("netbt.sock");
        let mut server = ControlServer::bind(&path).unwrap();
        let mut handler = Recorder { sends: Vec::new() };

        // A send with a long argument (beyond the old 64-byte limit) goes to the handler.
        let mut sender = UnixStream::connect(&path).unwrap();
        let argument = format!("{{\"data_hex\": \"{}\"}}", "ab".repeat(600));
        sender
            .write_all(format!("datagram send {argument}\n").as_bytes())
            .unwrap();
        wait(&mut server, StdDuration::from_secs(1));
        server.serve(&mut handler);
        let mut reply = String::new();
        sender.read_to_string(&mut reply).unwrap();
        assert_eq!(reply, "{\"sent\": \"unique\"}\n");
        assert_eq!(handler.sends, [argument]);

        // A watcher stays, gets every published line, and leaves when it closes.
        let mut watcher = UnixStream::connect(&path).unwrap();
        watcher.write_all(b"datagram watch\n").unwrap();
        wait(&mut server, StdDuration::from_secs(1));
        server.serve(&mut handler);
        assert!(server.has_watchers());
        server.publish("{\"n\": 1}");
        server.publish("{\"n\": 2}");
        server.serve(&mut handler);
        watcher
            .set_read_timeout(Some(StdDuration::from_secs(2)))
            .unwrap();
        let mut got = Vec::new();
        let mut buffer = [0u8; 256];
        while !String::from_utf8_lossy(&got).contains("{\"n\": 2}\n") {
            let n = watcher.read(&mut buffer).unwrap();
            assert!(n > 0, "the watch ended early");
            got.extend_from_slice(&buffer[..n]);
        }
        assert_eq!(
            String::from_utf8_lossy(&got),
            "{\"watching\": true}\n{\"n\": 1}\n{\"n\": 2}\n"
        );
        // Past the client deadline it is still there.
        for client in &mut server.clients {
            client.deadline = StdInstant::now();
        }
        server.serve(&mut handler);
        assert!(server.has_watchers());
        // A watcher that does not read loses lines beyond the backlog; the daemon's memory
        // stays bounded.
        let line = "x".repeat(100);
        for _ in 0..2 * WATCH_BACKLOG / 100 {
            server.publish(&line);
        }
        let queued = server.clients[0].reply.as_ref().map_or(0, Vec::len);
        assert!(
            queued < WATCH_BACKLOG && queued > WATCH_BACKLOG / 2,
            "{queued}"
        );
        drop(watcher);
        wait(&mut server, StdDuration::from_millis(200));
        server.serve(&mut handler);
        assert!(!server.has_watchers(), "a closed watcher is dropped");
        drop(server);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A daemon whose one query ends when the test says.
    struct Resolving {
        done: bool,
        started: Vec<String>,
    }

    impl Requests for Resolving {
        fn status(&mut self) -> String {
            "{}\n".to_string()
        }

        fn start_query(&mut self, encoded: &str) -> Result<u64, String> {
            self.started.push(encoded.to_string());
            Ok(7)
        }

        fn query_reply(&mut self, ticket: u64) -> Option<String> {
            assert_eq!(ticket, 7);
            self.done.then(|| "{\"found\": true}\n".to_string())
        }
    }

    #[test]
    fn a_query_is_answered_when_its_resolution_ends_without_a_busy_wait() {
        let dir = scratch("query");
        let path = dir.join("netbt.sock");
        let mut server = ControlServer::bind(&path).unwrap();
        let mut daemon = Resolving {
            done: false,
            started: Vec::new(),
        };
        let mut client = UnixStream::connect(&path).unwrap();
        client.write_all(b"query EMEBECFDFCFG\n").unwrap();
        // As `netbt query` does: its side closed, so its socket stays readable for the daemon.
        client.shutdown(std::net::Shutdown::Write).unwrap();
        wait(&mut server, StdDuration::from_secs(1));
        server.serve(&mut daemon);
        wait(&mut server, StdDuration::from_millis(10));
        server.serve(&mut daemon);
        assert_eq!(daemon.started, ["EMEBECFDFCFG"]);
        assert_eq!(server.clients.len(), 1, "waiting for the resolution");
        assert!(
            server.clients[0].deadline >= StdInstant::now() + QUERY_BOUND / 2,
            "a query has the longer bound"
        );
        // While it waits, the daemon's wait does not watch it: a readable socket would end
        // every wait at once.
        let mut set = PollSet::new();
        server.watch(&mut set);
        let started = StdInstant::now();
        set.wait(StdDuration::from_millis(50));
        assert!(started.elapsed() >= StdDuration::from_millis(40));
        // The resolution ends: the answer goes out and the client is done.
        daemon.done = true;
        server.serve(&mut daemon);
        let mut reply = String::new();
        client.read_to_string(&mut reply).unwrap();
        assert_eq!(reply, "{\"found\": true}\n");
        assert!(server.clients.is_empty());
        drop(server);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn requests_are_answered_exactly() {
        let mut status = || "{\"ok\": true}\n".to_string();
        let now = |line: &[u8], status: &mut dyn Requests| match answer(line, status) {
            Answer::Now(reply) => reply,
            Answer::Later(_) => panic!("a status request is answered at once"),
        };
        assert_eq!(now(b"status", &mut status), "{\"ok\": true}\n");
        assert_eq!(now(b"status json\r", &mut status), "{\"ok\": true}\n");
        assert_eq!(now(b"  status  ", &mut status), "{\"ok\": true}\n");
        // A closure answers no queries: an error document at once.
        let refused: ErrorReply = serde_json::from_str(&now(b"query ABC", &mut status)).unwrap();
        assert!(refused.error.contains("no queries"), "{refused:?}");
        let refused: ErrorReply = serde_json::from_str(&now(b"shutdown", &mut status)).unwrap();
        assert!(
            refused.error.contains("unknown request \"shutdown\""),
            "{refused:?}"
        );
    }
}
