//! A name-query flood on UDP 137: queries for one name at a steady rate for a bounded time, and
//! a count of the answers that came back, so a script can set them beside the server's own
//! counters and see where every unanswered query went.

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use netbt::wire::name::{Name, NbName};
use netbt::wire::nbns::{self, Flags, Message};

use super::names::request;
use super::outcome::{Out, seconds};

/// The flood's plan.
pub struct QueryFlood {
    /// The server's name service.
    pub to: SocketAddr,
    /// The name asked for.
    pub name: Name,
    /// Queries per second.
    pub rate: u32,
    /// How long to send.
    pub duration: Duration,
    /// How long to keep counting answers after the last query.
    pub grace: Duration,
}

/// Runs the flood and prints `SUMMARY=query-flood SENT= SEND_ERRORS= ANSWERED= POSITIVE=
/// NEGATIVE= FRACTION= RATE= ELAPSED_S=` (FRACTION: answered / sent; RATE: queries per second
/// achieved).
pub fn query_flood(plan: &QueryFlood, out: &mut Out) -> io::Result<()> {
    let socket = UdpSocket::bind(match plan.to {
        SocketAddr::V4(_) => "0.0.0.0:0",
        SocketAddr::V6(_) => "[::]:0",
    })?;
    socket.connect(plan.to)?;
    socket.set_read_timeout(Some(Duration::from_millis(100)))?;
    let receiver = socket.try_clone()?;
    let stop = Arc::new(AtomicBool::new(false));
    let (positive, negative) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let counting = {
        let (stop, positive, negative) = (stop.clone(), positive.clone(), negative.clone());
        thread::spawn(move || {
            let mut buf = [0u8; 1500];
            while !stop.load(Ordering::Relaxed) {
                let Ok(len) = receiver.recv(&mut buf) else {
                    continue;
                };
                let Ok(packet) = nbns::Packet::new_checked(&buf[..len]) else {
                    continue;
                };
                match nbns::Repr::parse(&packet).map(|r| r.message) {
                    Ok(Message::PositiveNameQueryResponse { .. }) => {
                        positive.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(Message::NegativeNameQueryResponse { .. }) => {
                        negative.fetch_add(1, Ordering::Relaxed);
                    }
                    _ => {}
                }
            }
        })
    };
    let name = NbName::unscoped(plan.name);
    let (mut sent, mut errors) = (0u64, 0u64);
    let start = Instant::now();
    let end = start + plan.duration;
    loop {
        let now = Instant::now();
        if now >= end {
            break;
        }
        let due = ((now - start).as_secs_f64() * f64::from(plan.rate)) as u64 + 1;
        while sent + errors < due {
            let id = ((sent + errors) as u16) | 1;
            let query = request(
                Message::NameQueryRequest { name },
                Flags::RECURSION_DESIRED,
                id,
            );
            match socket.send(&query) {
                Ok(_) => sent += 1,
                Err(_) => errors += 1,
            }
        }
        thread::sleep(Duration::from_millis(1));
    }
    let sending = start.elapsed();
    thread::sleep(plan.grace);
    stop.store(true, Ordering::Relaxed);
    let _ = counting.join();
    let (positive, negative) = (
        positive.load(Ordering::Relaxed),
        negative.load(Ordering::Relaxed),
    );
    let answered = positive + negative;
    let fraction = if sent == 0 {
        0.0
    } else {
        answered as f64 / sent as f64
    };
    out.line(&[
        ("SUMMARY", "query-flood".into()),
        ("SENT", sent.into()),
        ("SEND_ERRORS", errors.into()),
        ("ANSWERED", answered.into()),
        ("POSITIVE", positive.into()),
        ("NEGATIVE", negative.into()),
        ("FRACTION", ((fraction * 1000.0).round() / 1000.0).into()),
        (
            "RATE",
            ((sent as f64 / sending.as_secs_f64()).round() as u64).into(),
        ),
        ("ELAPSED_S", seconds(start.elapsed())),
    ]);
    Ok(())
}
