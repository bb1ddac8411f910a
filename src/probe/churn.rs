//! Legitimate sessions one after another, `concurrency` at a time: connect, request, echo one
//! message, close, and watch the server close in turn. For loss and reordering tests: every
//! session must end intact or with 0x83, none may hang or be reset.

use std::net::{Shutdown, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::outcome::{Out, Outcome, seconds};
use super::session::{After, EchoFailure, after, ask, connect, echo};

/// The sessions to run.
pub struct Churn {
    /// The server.
    pub addr: SocketAddr,
    /// The request every session sends.
    pub request: Vec<u8>,
    /// How many sessions in all.
    pub count: usize,
    /// How many at once.
    pub concurrency: usize,
    /// The echoed message's size (0: no echo).
    pub echo: usize,
    /// Bound of every connect, read, write and of the wait for the server's close.
    pub timeout: Duration,
    /// No session starts after this; sessions still running at deadline + timeout × 4 are
    /// unfinished.
    pub deadline: Duration,
}

/// Where a session went wrong, and what it saw there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    /// 0x82, the echo came back whole, and the server closed after our close.
    Intact,
    /// 0x83 with code 0x83 (the server closed or we did).
    Refused,
    /// Something else, at a stage: `connect`, `request`, `echo`, `close`.
    Bad(&'static str, Outcome),
}

impl Verdict {
    fn is_reset(&self) -> bool {
        matches!(self, Verdict::Bad(_, Outcome::Reset | Outcome::Refused))
    }

    fn is_hang(&self) -> bool {
        matches!(
            self,
            Verdict::Bad(_, Outcome::Timeout | Outcome::ConnectTimeout)
        )
    }
}

/// What a stream saw after our close, as an [`Outcome`].
fn after_outcome(next: After) -> Result<(), Outcome> {
    match next {
        After::Eof => Ok(()),
        After::Reset => Err(Outcome::Reset),
        After::Timeout => Err(Outcome::Timeout),
        After::Data => Err(Outcome::Other),
    }
}

/// One session: its verdict, how long it took, and our local port (0 if it never connected).
fn session(plan: &Churn) -> (Verdict, Duration, u16) {
    let start = Instant::now();
    let stream = match connect(plan.addr, plan.timeout) {
        Ok(stream) => stream,
        Err(outcome) => return (Verdict::Bad("connect", outcome), start.elapsed(), 0),
    };
    let port = stream.local_addr().map_or(0, |a| a.port());
    let (answer, _) = ask(&stream, &plan.request);
    let verdict = match answer {
        Outcome::Positive => {
            let echoed = match plan.echo {
                0 => Ok(()),
                size => echo(&stream, size),
            };
            match echoed {
                Err(EchoFailure::NoAnswer(outcome)) => Verdict::Bad("echo", outcome),
                Err(_) => Verdict::Bad("echo", Outcome::Other),
                Ok(()) => {
                    let _ = stream.shutdown(Shutdown::Write);
                    match after_outcome(after(&stream, plan.timeout)) {
                        Ok(()) => Verdict::Intact,
                        Err(outcome) => Verdict::Bad("close", outcome),
                    }
                }
            }
        }
        Outcome::Negative(code) if u8::from(code) == 0x83 => {
            let _ = stream.shutdown(Shutdown::Write);
            match after_outcome(after(&stream, plan.timeout)) {
                Ok(()) => Verdict::Refused,
                Err(outcome) => Verdict::Bad("close", outcome),
            }
        }
        other => Verdict::Bad("request", other),
    };
    (verdict, start.elapsed(), port)
}

/// Runs the sessions: a `SESSION=i STAGE=connect|request|echo|close RESULT=... S= PORT=` line
/// (PORT: ours, to find the connection in a capture) for each
/// that was not intact or refused, then `SUMMARY=churn N= INTACT= NEG83= BAD= RESETS= HANGS=
/// UNFINISHED= MAX_S= ELAPSED_S=`. True if every session that ran was intact or refused and all
/// ran.
pub fn churn(plan: Churn, out: &mut Out) -> bool {
    let start = Instant::now();
    let plan = Arc::new(plan);
    let next = Arc::new(AtomicUsize::new(0));
    let (tx, rx) = mpsc::channel();
    for _ in 0..plan.concurrency.min(plan.count) {
        let (plan, next, tx) = (plan.clone(), next.clone(), tx.clone());
        thread::spawn(move || {
            loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= plan.count || start.elapsed() >= plan.deadline {
                    break;
                }
                if tx.send((i, session(&plan))).is_err() {
                    break;
                }
            }
        });
    }
    drop(tx);
    let hard_stop = start + plan.deadline + plan.timeout * 4;
    let (mut intact, mut refused, mut bad, mut resets, mut hangs, mut done) = (0, 0, 0, 0, 0, 0);
    let mut longest = Duration::ZERO;
    while let Ok((i, (verdict, took, port))) =
        rx.recv_timeout(hard_stop.saturating_duration_since(Instant::now()))
    {
        done += 1;
        longest = longest.max(took);
        match verdict {
            Verdict::Intact => intact += 1,
            Verdict::Refused => refused += 1,
            Verdict::Bad(stage, outcome) => {
                bad += 1;
                resets += usize::from(verdict.is_reset());
                hangs += usize::from(verdict.is_hang());
                let mut fields = vec![("SESSION", Value::from(i)), ("STAGE", stage.into())];
                fields.extend(outcome.fields());
                fields.push(("S", seconds(took)));
                fields.push(("PORT", port.into()));
                out.item("bad", &fields);
            }
        }
    }
    // Sessions started but not reported by the hard stop.
    let started = next.load(Ordering::SeqCst).min(plan.count);
    let unfinished = started.saturating_sub(done);
    out.line(&[
        ("SUMMARY", "churn".into()),
        ("N", done.into()),
        ("INTACT", intact.into()),
        ("NEG83", refused.into()),
        ("BAD", bad.into()),
        ("RESETS", resets.into()),
        ("HANGS", hangs.into()),
        ("UNFINISHED", unfinished.into()),
        ("MAX_S", seconds(longest)),
        ("ELAPSED_S", seconds(start.elapsed())),
    ]);
    bad == 0 && unfinished == 0 && done == plan.count
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::session::{read_frame, session_request};
    use netbt::wire::name::Name;
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};

    /// A toy NetBT server: 0x82 and echo for even connections, 0x83/0x83 for odd ones, then it
    /// closes once the client did.
    fn toy_server(accepts: usize) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        thread::spawn(move || {
            for n in 0..accepts {
                let Ok((stream, _)) = listener.accept() else {
                    return;
                };
                thread::spawn(move || serve(stream, n % 2 == 1));
            }
        });
        addr
    }

    fn serve(mut stream: TcpStream, refuse: bool) {
        let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
        if read_frame(&stream).is_err() {
            return;
        }
        if refuse {
            let _ = stream.write_all(&[0x83, 0, 0, 1, 0x83]);
        } else {
            let _ = stream.write_all(&[0x82, 0, 0, 0]);
            match read_frame(&stream) {
                Ok(frame) => {
                    let _ = stream.write_all(&frame);
                }
                Err(_) => return,
            }
        }
        let mut rest = [0u8; 16];
        while matches!(stream.read(&mut rest), Ok(n) if n > 0) {}
    }

    #[test]
    fn sessions_end_intact_or_refused_and_are_counted() {
        let addr = toy_server(12);
        let name = |text| Name::parse_text(text, 0x20).unwrap();
        let plan = Churn {
            addr,
            request: session_request(name("LABSRV"), name("PROBE")),
            count: 12,
            concurrency: 3,
            echo: 300,
            timeout: Duration::from_secs(5),
            deadline: Duration::from_secs(10),
        };
        let mut out = Out::capture(false);
        assert!(churn(plan, &mut out), "{:?}", out.captured());
        let summary = out.captured().last().unwrap();
        assert!(
            summary.starts_with("SUMMARY=churn N=12 INTACT=6 NEG83=6 BAD=0 RESETS=0 HANGS=0 "),
            "{summary}"
        );
    }

    #[test]
    fn a_server_that_never_answers_is_a_hang() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let name = |text| Name::parse_text(text, 0x20).unwrap();
        let plan = Churn {
            addr,
            request: session_request(name("LABSRV"), name("PROBE")),
            count: 1,
            concurrency: 1,
            echo: 0,
            timeout: Duration::from_millis(200),
            deadline: Duration::from_secs(5),
        };
        let mut out = Out::capture(false);
        assert!(!churn(plan, &mut out));
        assert!(
            out.captured()[0].starts_with("SESSION=0 STAGE=request RESULT=TIMEOUT "),
            "{:?}",
            out.captured()
        );
        assert!(out.captured()[1].contains(" BAD=1 RESETS=0 HANGS=1 "));
        drop(listener);
    }
}
