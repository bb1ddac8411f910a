//! Many connections at once, one thread each: a flood of session requests, and silent clients
//! that never send a byte. Both are bounded by a deadline; a client still running then counts
//! as unfinished.

use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::outcome::{Out, Outcome, seconds};
use super::rng::Rng;
use super::session::{ask, connect};

/// A flood of concurrent session requests.
pub struct Flood {
    /// The server.
    pub addr: SocketAddr,
    /// The request every client sends.
    pub request: Vec<u8>,
    /// How many clients.
    pub count: usize,
    /// A positive session is held for a time in this range (ms), then closed.
    pub hold_ms: (u64, u64),
    /// Each client starts after 0..this (ms).
    pub spread_ms: u64,
    /// With `Some`, each connect attempt gets a time in this range (ms) and the client tries
    /// again until `connect_timeout`; with `None` one attempt, retried by the kernel.
    pub retry_ms: Option<(u64, u64)>,
    /// Bound of all connect attempts of one client.
    pub connect_timeout: Duration,
    /// Bound of the answer, once connected.
    pub timeout: Duration,
    /// Bound of the whole flood.
    pub deadline: Duration,
    /// A client counts as answered in time when its 0x82 or 0x83 came within this of its
    /// first connect attempt.
    pub within: Duration,
}

struct FloodResult {
    outcome: Outcome,
    connect_wait: Duration,
    /// From the first connect attempt to the answer (or the failure).
    answered_after: Duration,
    attempts: u32,
}

/// Runs the flood: a `CLIENT=i RESULT=...` line for every client that did not end with 0x82 or
/// 0x83/0x83, then `SUMMARY=flood N= POSITIVE= NEG83= BAD= PEAK= CONNECT_MAX_S= SLOW_CONNECTS=
/// RECONNECTED= ELAPSED_S= WITHIN_S= IN_TIME= ANSWERED= MEDIAN_S= WORST_S= RESETS=` (IN_TIME:
/// clients answered 0x82 or 0x83/0x83 within `within` of their first connect attempt; MEDIAN_S,
/// WORST_S: over the answered ones; RESETS: clients reset or refused). True if no client was
/// bad.
pub fn flood(plan: &Flood, out: &mut Out) -> bool {
    let start = Instant::now();
    let in_flight = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let go = Arc::new(Barrier::new(plan.count + 1));
    let (tx, rx) = mpsc::channel();
    for i in 0..plan.count {
        let (tx, go, in_flight, peak) = (tx.clone(), go.clone(), in_flight.clone(), peak.clone());
        let (addr, request) = (plan.addr, plan.request.clone());
        let (hold_ms, spread_ms, retry_ms) = (plan.hold_ms, plan.spread_ms, plan.retry_ms);
        let (connect_timeout, timeout) = (plan.connect_timeout, plan.timeout);
        thread::spawn(move || {
            // Client `i` waits the same times in every run.
            let mut rng = Rng::new(i as u64);
            go.wait();
            thread::sleep(Duration::from_millis(rng.between(0, spread_ms)));
            let now = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
            peak.fetch_max(now, Ordering::SeqCst);
            let t = Instant::now();
            let mut attempts = 0;
            let connected = loop {
                attempts += 1;
                let left = connect_timeout.saturating_sub(t.elapsed());
                let wait = match retry_ms {
                    Some((lo, hi)) => left.min(Duration::from_millis(rng.between(lo, hi))),
                    None => left,
                };
                let result = connect(addr, wait.max(Duration::from_millis(10)));
                if !matches!(result, Err(Outcome::ConnectTimeout)) || wait >= left {
                    break result;
                }
            };
            let connect_wait = t.elapsed();
            let mut answered_after = connect_wait;
            let outcome = match connected {
                Err(outcome) => outcome,
                Ok(stream) => {
                    let _ = stream.set_read_timeout(Some(timeout));
                    let (outcome, _) = ask(&stream, &request);
                    answered_after = t.elapsed();
                    if outcome == Outcome::Positive {
                        thread::sleep(Duration::from_millis(rng.between(hold_ms.0, hold_ms.1)));
                    }
                    outcome
                }
            };
            in_flight.fetch_sub(1, Ordering::SeqCst);
            let _ = tx.send((
                i,
                FloodResult {
                    outcome,
                    connect_wait,
                    answered_after,
                    attempts,
                },
            ));
        });
    }
    drop(tx);
    go.wait();
    let results = collect(rx, plan.count, start + plan.deadline);
    let (mut positive, mut neg83, mut bad) = (0, 0, 0);
    for (i, result) in results.iter().enumerate() {
        match result.as_ref().map(|r| r.outcome) {
            Some(Outcome::Positive) => positive += 1,
            Some(Outcome::Negative(code)) if u8::from(code) == 0x83 => neg83 += 1,
            other => {
                bad += 1;
                let mut fields = vec![("CLIENT", Value::from(i))];
                match other {
                    Some(outcome) => fields.extend(outcome.fields()),
                    None => fields.push(("RESULT", "UNFINISHED".into())),
                }
                out.item("bad", &fields);
            }
        }
    }
    let finished = results.iter().flatten();
    let connect_max = finished.clone().map(|r| r.connect_wait).max();
    let slow = finished
        .clone()
        .filter(|r| r.connect_wait > Duration::from_millis(900))
        .count();
    let reconnected = finished.clone().filter(|r| r.attempts > 1).count();
    let resets = finished
        .clone()
        .filter(|r| matches!(r.outcome, Outcome::Reset | Outcome::Refused))
        .count();
    let mut answer_times: Vec<Duration> = finished
        .filter(|r| is_answer(r.outcome))
        .map(|r| r.answered_after)
        .collect();
    answer_times.sort();
    let in_time = answer_times.iter().filter(|&&t| t <= plan.within).count();
    let median = answer_times.get(answer_times.len() / 2).copied();
    out.line(&[
        ("SUMMARY", "flood".into()),
        ("N", plan.count.into()),
        ("POSITIVE", positive.into()),
        ("NEG83", neg83.into()),
        ("BAD", bad.into()),
        ("PEAK", peak.load(Ordering::SeqCst).into()),
        ("CONNECT_MAX_S", seconds(connect_max.unwrap_or_default())),
        ("SLOW_CONNECTS", slow.into()),
        ("RECONNECTED", reconnected.into()),
        ("ELAPSED_S", seconds(start.elapsed())),
        ("WITHIN_S", seconds(plan.within)),
        ("IN_TIME", in_time.into()),
        ("ANSWERED", answer_times.len().into()),
        ("MEDIAN_S", median.map_or("none".into(), seconds)),
        (
            "WORST_S",
            answer_times.last().map_or("none".into(), |&t| seconds(t)),
        ),
        ("RESETS", resets.into()),
    ]);
    bad == 0
}

/// 0x82, or 0x83 with code 0x83: the answers a legitimate client may get.
fn is_answer(outcome: Outcome) -> bool {
    match outcome {
        Outcome::Positive => true,
        Outcome::Negative(code) => u8::from(code) == 0x83,
        _ => false,
    }
}

/// Silent clients: they connect and never send a byte.
pub struct Silent {
    /// The server.
    pub addr: SocketAddr,
    /// How many clients.
    pub count: usize,
    /// The first this many clients (started 50 ms ahead) close once the server closes; the
    /// others keep their end open for `linger` or until the server resets it.
    pub polite: usize,
    /// How long the others keep their end after the server's FIN.
    pub linger: Duration,
    /// The server must close each connection no sooner than this after it was made...
    pub min_close: Duration,
    /// ...and no later than this.
    pub max_close: Duration,
    /// Bound of one connect.
    pub connect_timeout: Duration,
    /// Bound of the whole run.
    pub deadline: Duration,
}

struct SilentResult {
    end: &'static str,
    port: u16,
    polite: bool,
    connect_wait: Duration,
    close_after: Duration,
    reset_after: Option<Duration>,
}

/// Runs the silent clients: a line per client (`CLIENT=i OK=yes|no END=EOF|NEG83|DATA|RST|TIMEOUT|...
/// MODE=close|keep PORT= CONNECT_S= CLOSE_S= [RESET_S=s|none]`), `KEPT_PORTS=p,p`,
/// `CLOSED_PORTS=p`, then `SUMMARY=silent N= POLITE= BAD= KEPT_RESET= ELAPSED_S=`. A client is
/// OK when the server closed it (EOF, or 0x83 then EOF) between `min_close` and `max_close`
/// after connecting. True
/// if every client was OK.
pub fn silent(plan: &Silent, out: &mut Out) -> bool {
    let start = Instant::now();
    let deadline = start + plan.deadline;
    let (tx, rx) = mpsc::channel();
    for i in 0..plan.count {
        let tx = tx.clone();
        let (addr, polite, linger) = (plan.addr, i < plan.polite, plan.linger);
        let connect_timeout = plan.connect_timeout;
        thread::spawn(move || {
            if !polite {
                thread::sleep(Duration::from_millis(50));
            }
            let _ = tx.send((
                i,
                silent_client(addr, polite, linger, connect_timeout, deadline),
            ));
        });
    }
    drop(tx);
    let results = collect(rx, plan.count, deadline + Duration::from_secs(1));
    let mut bad = 0;
    for (i, result) in results.iter().enumerate() {
        let ok = result.as_ref().is_some_and(|r| {
            matches!(r.end, "EOF" | "NEG83")
                && (plan.min_close..=plan.max_close).contains(&r.close_after)
        });
        bad += usize::from(!ok);
        let mut fields = vec![
            ("CLIENT", Value::from(i)),
            ("OK", if ok { "yes" } else { "no" }.into()),
        ];
        match result {
            None => fields.push(("END", "UNFINISHED".into())),
            Some(r) => {
                fields.extend([
                    ("END", r.end.into()),
                    ("MODE", if r.polite { "close" } else { "keep" }.into()),
                    ("PORT", r.port.into()),
                    ("CONNECT_S", seconds(r.connect_wait)),
                    ("CLOSE_S", seconds(r.close_after)),
                ]);
                if !r.polite {
                    fields.push(("RESET_S", r.reset_after.map_or("none".into(), seconds)));
                }
            }
        }
        out.item("clients", &fields);
    }
    let ports = |polite: bool| {
        let list: Vec<String> = results
            .iter()
            .flatten()
            .filter(|r| r.polite == polite && r.port != 0)
            .map(|r| r.port.to_string())
            .collect();
        Value::from(list.join(","))
    };
    out.line(&[("KEPT_PORTS", ports(false))]);
    out.line(&[("CLOSED_PORTS", ports(true))]);
    let kept_reset = results
        .iter()
        .flatten()
        .filter(|r| !r.polite && r.reset_after.is_some())
        .count();
    out.line(&[
        ("SUMMARY", "silent".into()),
        ("N", plan.count.into()),
        ("POLITE", plan.polite.min(plan.count).into()),
        ("BAD", bad.into()),
        ("KEPT_RESET", kept_reset.into()),
        ("ELAPSED_S", seconds(start.elapsed())),
    ]);
    bad == 0
}

fn silent_client(
    addr: SocketAddr,
    polite: bool,
    linger: Duration,
    connect_timeout: Duration,
    deadline: Instant,
) -> SilentResult {
    let t = Instant::now();
    let mut result = SilentResult {
        end: "",
        port: 0,
        polite,
        connect_wait: Duration::ZERO,
        close_after: Duration::ZERO,
        reset_after: None,
    };
    let stream = match TcpStream::connect_timeout(&addr, connect_timeout) {
        Ok(stream) => stream,
        Err(e) => {
            result.end = Outcome::from_connect_error(&e).word();
            return result;
        }
    };
    result.port = stream.local_addr().map_or(0, |a| a.port());
    let connected = Instant::now();
    result.connect_wait = connected - t;
    let wait = deadline
        .saturating_duration_since(connected)
        .max(Duration::from_millis(100));
    result.end = silent_end(&stream, wait);
    let closed = Instant::now();
    result.close_after = closed - connected;
    if !polite {
        // Keep our end open after the server's FIN, until the server resets it or `linger`
        // ends. A reset of a half-closed connection leaves its error (EPIPE) on the socket.
        let until = (closed + linger).min(deadline);
        while Instant::now() < until {
            if let Ok(Some(_)) = stream.take_error() {
                result.reset_after = Some(closed.elapsed());
                break;
            }
            thread::sleep(Duration::from_millis(50));
        }
    }
    result
}

/// How the server ended a silent client's connection within `wait`: `EOF` (closed), `NEG83`
/// (answered 0x83 "insufficient resources", then closed: the slot gave way to a waiting
/// client), `DATA` (anything else), `RST` or `TIMEOUT`.
fn silent_end(mut stream: &TcpStream, wait: Duration) -> &'static str {
    use std::io::Read;
    if stream.set_read_timeout(Some(wait)).is_err() {
        return "RST";
    }
    let mut got = Vec::new();
    let mut chunk = [0u8; 64];
    loop {
        match stream.read(&mut chunk) {
            Ok(0) if got.is_empty() => return "EOF",
            Ok(0) => {
                let refused = Outcome::from_frame(&got)
                    == Outcome::Negative(netbt::wire::nbss::NegativeCode::InsufficientResources);
                return if refused { "NEG83" } else { "DATA" };
            }
            Ok(n) if got.len() + n <= 64 => got.extend_from_slice(&chunk[..n]),
            Ok(_) => return "DATA",
            Err(e) => {
                return match Outcome::from_stream_error(&e) {
                    Outcome::Timeout if got.is_empty() => "TIMEOUT",
                    Outcome::Timeout => "DATA",
                    _ => "RST",
                };
            }
        }
    }
}

/// Receives `(index, result)` from the clients until all `count` answered or `deadline`;
/// a client that did not answer stays `None` (later answers are not counted).
fn collect<T>(rx: mpsc::Receiver<(usize, T)>, count: usize, deadline: Instant) -> Vec<Option<T>> {
    let mut results: Vec<Option<T>> = (0..count).map(|_| None).collect();
    for _ in 0..count {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok((i, result)) => results[i] = Some(result),
            Err(_) => break,
        }
    }
    results
}
