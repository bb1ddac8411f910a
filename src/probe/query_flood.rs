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
use super::pace::send_paced;

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
    let start = Instant::now();
    let (sent, errors) = send_paced(plan.rate, plan.duration, |attempt| {
        let id = (attempt as u16) | 1;
        let query = request(
            Message::NameQueryRequest { name },
            Flags::RECURSION_DESIRED,
            id,
        );
        socket.send(&query).is_ok()
    });
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

#[cfg(test)]
mod tests {
    use super::*;
    use netbt::wire::nbns::Rcode;

    /// A name server that answers every other query (negatively) and ignores the rest.
    fn half_deaf_server() -> SocketAddr {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = socket.local_addr().unwrap();
        socket
            .set_read_timeout(Some(Duration::from_secs(3)))
            .unwrap();
        thread::spawn(move || {
            let mut buf = [0u8; 1500];
            let mut n = 0u32;
            while let Ok((len, from)) = socket.recv_from(&mut buf) {
                n += 1;
                let Ok(packet) = nbns::Packet::new_checked(&buf[..len]) else {
                    continue;
                };
                let Ok(nbns::Repr {
                    transaction_id,
                    message: Message::NameQueryRequest { name },
                    ..
                }) = nbns::Repr::parse(&packet)
                else {
                    continue;
                };
                if n.is_multiple_of(2) {
                    let message = Message::NegativeNameQueryResponse {
                        name,
                        rcode: Rcode::NameError,
                    };
                    let _ = socket.send_to(&request(message, Flags::NONE, transaction_id), from);
                }
            }
        });
        addr
    }

    #[test]
    fn answers_are_counted_against_what_was_sent() {
        let plan = QueryFlood {
            to: half_deaf_server(),
            name: Name::parse_text("LABSRV", 0).unwrap(),
            rate: 400,
            duration: Duration::from_millis(250),
            grace: Duration::from_millis(300),
        };
        let mut out = Out::capture(false);
        query_flood(&plan, &mut out).unwrap();
        let line = &out.captured()[0];
        let value = |key: &str| -> u64 {
            let field = line.split(' ').find_map(|f| f.strip_prefix(key)).unwrap();
            field.parse().unwrap()
        };
        let (sent, answered) = (value("SENT="), value("ANSWERED="));
        assert!((90..=110).contains(&sent), "{line}");
        assert_eq!(answered, sent / 2, "{line}");
        assert_eq!((value("NEGATIVE="), value("POSITIVE=")), (answered, 0));
    }
}
