//! Peers that pin session slots: slowloris clients that send their session request one byte per
//! interval, and silent clients that re-open their connection the moment the server closes it.
//! Each of `count` attackers runs connections one after the other (or just one without
//! `reopen`) until the deadline, then closes what it holds. Every connection is recorded: how it
//! ended, how long it lived, how many bytes it sent.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use super::outcome::{Out, Outcome, seconds};

/// The attackers' plan.
pub struct Attack {
    /// The server.
    pub addr: SocketAddr,
    /// How many connections at once.
    pub count: usize,
    /// What each connection sends: with `Some((request, interval))` the request one byte per
    /// interval (slowloris); with `None` nothing (silent).
    pub drip: Option<(Vec<u8>, Duration)>,
    /// Open a new connection as soon as one ends, until the deadline.
    pub reopen: bool,
    /// Bound of one connect attempt.
    pub connect_timeout: Duration,
    /// Bound of the whole run; connections still open then are closed by us.
    pub deadline: Duration,
}

/// How one attacking connection ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// The server closed it (FIN) before we were done.
    ServerClosed,
    /// The server reset it.
    Reset,
    /// The server sent bytes (an answer to the request, when all of it arrived).
    Answered,
    /// It was still open at the deadline; we closed it.
    Deadline,
    /// The connect did not succeed (refused, timed out or failed).
    ConnectFailed(Outcome),
}

impl End {
    fn word(&self) -> &'static str {
        match self {
            End::ServerClosed => "EOF",
            End::Reset => "RST",
            End::Answered => "ANSWER",
            End::Deadline => "DEADLINE",
            End::ConnectFailed(outcome) => outcome.word(),
        }
    }
}

/// One connection's record.
struct Conn {
    attacker: usize,
    end: End,
    port: u16,
    sent: usize,
    lived: Duration,
}

/// Runs the attack: one `CONN=attacker.n END=EOF|RST|ANSWER|DEADLINE|<connect outcome> PORT=
/// SENT= LIVED_S=` line per connection (in the order they ended), then `SUMMARY=KIND N= OPENED=
/// SERVER_CLOSED= RESETS= ANSWERED= AT_DEADLINE= CONNECT_FAILS= MAX_LIVED_S= MEAN_LIVED_S=
/// ELAPSED_S=` (KIND `slow` or `reopen`). True if the server never reset an attacker.
pub fn attack(plan: &Attack, kind: &str, out: &mut Out) -> bool {
    let start = Instant::now();
    let deadline = start + plan.deadline;
    let (tx, rx) = mpsc::channel();
    let mut workers = Vec::new();
    for attacker in 0..plan.count {
        let tx = tx.clone();
        let (addr, drip, reopen) = (plan.addr, plan.drip.clone(), plan.reopen);
        let connect_timeout = plan.connect_timeout;
        workers.push(thread::spawn(move || {
            loop {
                let conn = one(attacker, addr, drip.as_ref(), connect_timeout, deadline);
                let failed = matches!(conn.end, End::ConnectFailed(_));
                let _ = tx.send(conn);
                if !reopen || Instant::now() >= deadline {
                    break;
                }
                if failed {
                    // Do not spin on a refusing server.
                    thread::sleep(Duration::from_millis(100));
                }
            }
        }));
    }
    drop(tx);
    let mut conns = Vec::new();
    let mut seq = vec![0usize; plan.count];
    // Every connection ends by the deadline (reads and connects are bounded by it).
    while let Ok(conn) = rx.recv_timeout(
        (deadline + plan.connect_timeout + Duration::from_secs(2))
            .saturating_duration_since(Instant::now()),
    ) {
        let n = seq[conn.attacker];
        seq[conn.attacker] += 1;
        out.item(
            "connections",
            &[
                ("CONN", format!("{}.{n}", conn.attacker).into()),
                ("END", conn.end.word().into()),
                ("PORT", conn.port.into()),
                ("SENT", conn.sent.into()),
                ("LIVED_S", seconds(conn.lived)),
            ],
        );
        conns.push(conn);
    }
    for worker in workers {
        let _ = worker.join();
    }
    let count = |f: fn(&End) -> bool| conns.iter().filter(|c| f(&c.end)).count();
    let opened = conns.len() - count(|e| matches!(e, End::ConnectFailed(_)));
    let resets = count(|e| *e == End::Reset);
    let lived: Vec<Duration> = conns
        .iter()
        .filter(|c| !matches!(c.end, End::ConnectFailed(_)))
        .map(|c| c.lived)
        .collect();
    let mean = match lived.len() {
        0 => Duration::ZERO,
        n => lived.iter().sum::<Duration>() / n as u32,
    };
    out.line(&[
        ("SUMMARY", kind.into()),
        ("N", plan.count.into()),
        ("OPENED", opened.into()),
        ("SERVER_CLOSED", count(|e| *e == End::ServerClosed).into()),
        ("RESETS", resets.into()),
        ("ANSWERED", count(|e| *e == End::Answered).into()),
        ("AT_DEADLINE", count(|e| *e == End::Deadline).into()),
        (
            "CONNECT_FAILS",
            count(|e| matches!(e, End::ConnectFailed(_))).into(),
        ),
        (
            "MAX_LIVED_S",
            seconds(lived.iter().max().copied().unwrap_or_default()),
        ),
        ("MEAN_LIVED_S", seconds(mean)),
        ("ELAPSED_S", seconds(start.elapsed())),
    ]);
    resets == 0
}

/// One connection: connect, then drip the request (or stay silent) until the server ends it or
/// the deadline comes.
fn one(
    attacker: usize,
    addr: SocketAddr,
    drip: Option<&(Vec<u8>, Duration)>,
    connect_timeout: Duration,
    deadline: Instant,
) -> Conn {
    let t = Instant::now();
    let mut conn = Conn {
        attacker,
        end: End::Deadline,
        port: 0,
        sent: 0,
        lived: Duration::ZERO,
    };
    let wait = connect_timeout.min(deadline.saturating_duration_since(t));
    let stream = match TcpStream::connect_timeout(&addr, wait.max(Duration::from_millis(10))) {
        Ok(stream) => stream,
        Err(e) => {
            conn.end = End::ConnectFailed(Outcome::from_connect_error(&e));
            return conn;
        }
    };
    let connected = Instant::now();
    conn.port = stream.local_addr().map_or(0, |a| a.port());
    let _ = stream.set_nodelay(true);
    let (bytes, interval): (&[u8], Duration) = match drip {
        Some((request, interval)) => (request, *interval),
        None => (&[], Duration::from_secs(3600)),
    };
    let mut next = connected;
    conn.end = loop {
        let now = Instant::now();
        if now >= deadline {
            break End::Deadline;
        }
        if now >= next && conn.sent < bytes.len() {
            if let Err(e) = (&stream).write_all(&bytes[conn.sent..conn.sent + 1]) {
                break match Outcome::from_stream_error(&e) {
                    Outcome::Reset => End::Reset,
                    _ => End::ServerClosed,
                };
            }
            conn.sent += 1;
            next += interval;
        }
        // Wait for the server's move until the next byte is due (or the deadline).
        let until = if conn.sent < bytes.len() {
            next.min(deadline)
        } else {
            deadline
        };
        let wait = until.saturating_duration_since(Instant::now());
        if wait.is_zero() {
            continue;
        }
        if stream.set_read_timeout(Some(wait)).is_err() {
            break End::Reset;
        }
        let mut byte = [0u8; 1];
        match (&stream).read(&mut byte) {
            Ok(0) => break End::ServerClosed,
            Ok(_) => break End::Answered,
            Err(e) => match Outcome::from_stream_error(&e) {
                Outcome::Timeout => continue,
                Outcome::Reset => break End::Reset,
                _ => break End::ServerClosed,
            },
        }
    };
    conn.lived = connected.elapsed();
    conn
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    /// A server that closes every connection after `after`, having read what came.
    fn closing_server(after: Duration, accepts: usize) -> (SocketAddr, thread::JoinHandle<()>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let handle = thread::spawn(move || {
            for _ in 0..accepts {
                let Ok((stream, _)) = listener.accept() else {
                    return;
                };
                thread::spawn(move || {
                    let _ = stream.set_read_timeout(Some(after));
                    let mut sink = [0u8; 128];
                    let until = Instant::now() + after;
                    while Instant::now() < until {
                        if matches!((&stream).read(&mut sink), Ok(0) | Err(_)) {
                            break;
                        }
                    }
                });
            }
        });
        (addr, handle)
    }

    #[test]
    fn reopening_silent_attackers_count_every_server_close() {
        let (addr, _server) = closing_server(Duration::from_millis(100), 64);
        let plan = Attack {
            addr,
            count: 2,
            drip: None,
            reopen: true,
            connect_timeout: Duration::from_secs(1),
            deadline: Duration::from_millis(650),
        };
        let mut out = Out::capture(false);
        assert!(attack(&plan, "reopen", &mut out));
        let summary = out.captured().last().unwrap().clone();
        assert!(summary.starts_with("SUMMARY=reopen N=2 "), "{summary}");
        // Each attacker lives ~100 ms per connection for 650 ms: 4 to 7 closes each.
        let closed = out
            .captured()
            .iter()
            .filter(|l| l.contains(" END=EOF "))
            .count();
        assert!((6..=14).contains(&closed), "{closed}: {:?}", out.captured());
        assert!(out.captured().iter().any(|l| l.contains(" END=DEADLINE ")));
    }

    #[test]
    fn slow_attacker_drips_one_byte_per_interval_until_closed() {
        let (addr, _server) = closing_server(Duration::from_millis(300), 1);
        let plan = Attack {
            addr,
            count: 1,
            drip: Some((vec![0x81; 72], Duration::from_millis(50))),
            reopen: false,
            connect_timeout: Duration::from_secs(1),
            deadline: Duration::from_secs(5),
        };
        let mut out = Out::capture(false);
        assert!(attack(&plan, "slow", &mut out));
        let line = &out.captured()[0];
        assert!(line.starts_with("CONN=0.0 END=EOF "), "{line}");
        let sent: usize = line
            .split(' ')
            .find_map(|f| f.strip_prefix("SENT="))
            .unwrap()
            .parse()
            .unwrap();
        // 300 ms at one byte per 50 ms: about 6 or 7 bytes, never the whole request.
        assert!((4..=9).contains(&sent), "{line}");
        let words: Vec<_> = [
            End::ServerClosed,
            End::Reset,
            End::Answered,
            End::Deadline,
            End::ConnectFailed(Outcome::Refused),
        ]
        .iter()
        .map(End::word)
        .collect();
        assert_eq!(words, ["EOF", "RST", "ANSWER", "DEADLINE", "REFUSED"]);
    }
}
