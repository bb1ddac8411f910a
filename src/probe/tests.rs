//! The probe against loopback fakes: a `TcpListener` that answers each way a NetBT server can,
//! and a `UdpSocket` that answers node status and name queries.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::fd::AsRawFd;
use std::thread;
use std::time::Duration;

use netbt::wire::name::{Name, NbName};
use netbt::wire::nbns::{self, AddrEntries, AddrEntry, Message, NbFlags, NodeNames, NodeType};

use super::outcome::Out;
use super::*;

/// What the fake session server does after it read the first frame.
#[derive(Clone, Copy)]
enum Act {
    /// Send these bytes, then close (FIN).
    Answer(&'static [u8]),
    /// Answer 0x82, then echo every session message back (flipping byte `corrupt` if given)
    /// until the client closes.
    Echo(Option<usize>),
    /// Reset the connection (SO_LINGER 0, close).
    Reset,
    /// Close (FIN) without a word.
    Close,
    /// Say nothing for a second, then close.
    Silence,
}

fn reset(stream: TcpStream) {
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: a valid socket and a `linger` of the size we pass.
    let rc = unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&raw const linger).cast(),
            size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    assert_eq!(rc, 0, "SO_LINGER");
    drop(stream);
}

/// A session server on loopback that serves `connections` connections with `act`.
fn fake_server(act: Act, connections: usize) -> SocketAddr {
    fake_server_with(connections, move |_, stream| serve_one(stream, act))
}

/// A loopback listener that hands each of its first `connections` connections (numbered from
/// 0) to `serve` on a thread of its own.
fn fake_server_with(
    connections: usize,
    serve: impl Fn(usize, TcpStream) + Copy + Send + 'static,
) -> SocketAddr {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind");
    let addr = listener.local_addr().expect("address");
    thread::spawn(move || {
        for i in 0..connections {
            let Ok((stream, _)) = listener.accept() else {
                return;
            };
            thread::spawn(move || serve(i, stream));
        }
    });
    addr
}

fn serve_one(mut stream: TcpStream, act: Act) {
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    if session::read_frame(&stream).is_err() {
        return;
    }
    match act {
        Act::Answer(bytes) => {
            let _ = stream.write_all(bytes);
            thread::sleep(Duration::from_millis(50));
        }
        Act::Echo(corrupt) => {
            let _ = stream.write_all(&[0x82, 0, 0, 0]);
            while let Ok(mut frame) = session::read_frame(&stream) {
                if let Some(at) = corrupt {
                    frame[4 + at] ^= 0xff;
                }
                if stream.write_all(&frame).is_err() {
                    return;
                }
            }
        }
        Act::Reset => reset(stream),
        Act::Close => {}
        Act::Silence => thread::sleep(Duration::from_secs(1)),
    }
}

fn plan(addr: SocketAddr) -> session::Plan {
    session::Plan {
        addr,
        timeout: Duration::from_millis(400),
        first: session::session_request(
            Name::parse_text("LABSRV", Name::SUFFIX_SERVER).unwrap(),
            probe_name(),
        ),
        echo: Vec::new(),
        hold: None,
        after: false,
    }
}

/// Runs `plan` and returns whether its checks passed and its lines.
fn run_plan(plan: &session::Plan) -> (bool, Vec<String>) {
    let mut out = Out::capture(false);
    let ok = session::probe(plan, &mut out);
    (ok, out.captured().to_vec())
}

/// The line that starts with `key=`.
#[track_caller]
fn line_of<'a>(lines: &'a [String], key: &str) -> &'a str {
    let prefix = format!("{key}=");
    lines
        .iter()
        .find(|l| l.starts_with(&prefix))
        .unwrap_or_else(|| panic!("no {key}= line in {lines:?}"))
}

/// Asserts that the line starting with `key=` starts with `want` (the rest is timing).
#[track_caller]
fn assert_line(lines: &[String], key: &str, want: &str) {
    assert_starts(line_of(lines, key), want);
}

/// Asserts that `line` starts with `want`.
#[track_caller]
fn assert_starts(line: &str, want: &str) {
    assert!(
        line.starts_with(want),
        "{line:?} does not start with {want:?}"
    );
}

/// Asserts that `line` contains `part`.
#[track_caller]
fn assert_contains(line: &str, part: &str) {
    assert!(line.contains(part), "{line:?} does not contain {part:?}");
}

#[test]
fn positive_answer() {
    let (ok, lines) = run_plan(&plan(fake_server(Act::Answer(&[0x82, 0, 0, 0]), 1)));
    assert!(ok);
    assert_line(&lines, "RESULT", "RESULT=POSITIVE BYTES=82000000 MS=");
}

#[test]
fn each_negative_code_then_the_close() {
    for code in [0x80u8, 0x81, 0x82, 0x83, 0x8f] {
        let answer: &'static [u8] = Box::leak(Box::new([0x83, 0, 0, 1, code]));
        let mut plan = plan(fake_server(Act::Answer(answer), 1));
        plan.after = true;
        let (ok, lines) = run_plan(&plan);
        assert!(ok, "a negative answer is a finding, not a failed check");
        assert_line(
            &lines,
            "RESULT",
            &format!("RESULT=NEGATIVE CODE=0x{code:02x} BYTES=83000001{code:02x} MS="),
        );
        assert_line(&lines, "AFTER", "AFTER=EOF AFTER_MS=");
    }
}

#[test]
fn retarget_names_the_new_address() {
    let answer = &[0x84, 0, 0, 6, 10, 1, 2, 3, 0x01, 0xbd];
    let (_, lines) = run_plan(&plan(fake_server(Act::Answer(answer), 1)));
    assert_line(
        &lines,
        "RESULT",
        "RESULT=RETARGET TO=10.1.2.3:445 BYTES=840000060a01020301bd MS=",
    );
}

#[test]
fn reset_close_silence_and_refusal() {
    let (_, lines) = run_plan(&plan(fake_server(Act::Reset, 1)));
    assert_line(&lines, "RESULT", "RESULT=RST MS=");
    let (_, lines) = run_plan(&plan(fake_server(Act::Close, 1)));
    assert_line(&lines, "RESULT", "RESULT=EOF MS=");
    let (_, lines) = run_plan(&plan(fake_server(Act::Silence, 1)));
    assert_line(&lines, "RESULT", "RESULT=TIMEOUT MS=");
    let (_, lines) = run_plan(&plan(fake_server(Act::Answer(&[0x85, 0, 0, 0]), 1)));
    assert_line(&lines, "RESULT", "RESULT=OTHER BYTES=85000000 MS=");

    let closed = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let addr = closed.local_addr().unwrap();
    drop(closed);
    let mut refused = plan(addr);
    refused.echo = vec![1];
    let (ok, lines) = run_plan(&refused);
    assert_line(&lines, "RESULT", "RESULT=REFUSED MS=");
    assert!(!ok, "an echo was asked for and could not run");
}

#[test]
fn echo_of_each_size_and_a_corrupted_one() {
    let mut good = plan(fake_server(Act::Echo(None), 1));
    good.echo = vec![1, 65536, 131071];
    let (ok, lines) = run_plan(&good);
    assert!(ok, "{lines:?}");
    let echoes: Vec<_> = lines.iter().filter(|l| l.starts_with("ECHO=")).collect();
    assert_eq!(echoes.len(), 3, "{lines:?}");
    for (line, size) in echoes.iter().zip([1, 65536, 131071]) {
        assert_starts(line, &format!("ECHO=OK SIZE={size} MS="));
    }

    let mut bad = plan(fake_server(Act::Echo(Some(70_000)), 1));
    bad.echo = vec![70_001];
    let (ok, lines) = run_plan(&bad);
    assert!(!ok);
    assert_eq!(
        line_of(&lines, "ECHO"),
        "ECHO=FAIL SIZE=70001 WHY=CONTENT AT=70000"
    );
}

#[test]
fn hold_until_a_file_then_still_alive() {
    let file = std::env::temp_dir().join(format!("netbt-probe-hold-{}", std::process::id()));
    let _ = std::fs::remove_file(&file);
    let mut held = plan(fake_server(Act::Echo(None), 1));
    held.hold = Some((file.clone(), Duration::from_secs(5)));
    let release = {
        let file = file.clone();
        thread::spawn(move || {
            thread::sleep(Duration::from_millis(200));
            std::fs::write(&file, b"").unwrap();
        })
    };
    let (ok, lines) = run_plan(&held);
    release.join().unwrap();
    let _ = std::fs::remove_file(&file);
    assert!(ok, "{lines:?}");
    assert_line(&lines, "RELEASED", "RELEASED=FILE HELD_S=");
    assert_line(&lines, "STILL_ALIVE", "STILL_ALIVE=OK SIZE=16 MS=");

    let mut expired = plan(fake_server(Act::Echo(None), 1));
    expired.hold = Some((file, Duration::from_millis(100)));
    let (_, lines) = run_plan(&expired);
    assert_line(&lines, "RELEASED", "RELEASED=MAX HELD_S=");
}

#[test]
fn json_is_one_object() {
    let mut plan = plan(fake_server(Act::Echo(None), 1));
    plan.echo = vec![5];
    let mut out = Out::capture(true);
    assert!(session::probe(&plan, &mut out));
    out.finish();
    let lines = out.captured();
    assert_eq!(lines.len(), 1, "{lines:?}");
    let doc: serde_json::Value = serde_json::from_str(&lines[0]).expect("JSON");
    assert_eq!(doc["result"], "POSITIVE");
    assert_eq!(doc["bytes"], "82000000");
    assert_eq!(doc["echo"][0]["echo"], "OK");
    assert_eq!(doc["echo"][0]["size"], 5);
}

#[test]
fn names_and_arguments_parse() {
    let name = name("LABSRV#1B", Name::SUFFIX_SERVER, "CALLED")
        .ok()
        .unwrap();
    assert_eq!(name.to_string(), "LABSRV<1B>");
    assert_eq!(name.suffix(), 0x1b);
    assert_eq!(
        super::name("LABSRV", Name::SUFFIX_SERVER, "CALLED")
            .ok()
            .unwrap()
            .suffix(),
        0x20
    );
    for bad in ["LABSRV#1G", "LABSRV#123", "", "ABCDEFGHIJKLMNOP"] {
        let Err(Failure::Usage(message)) = super::name(bad, 0x20, "CALLED") else {
            panic!("{bad:?} accepted");
        };
        assert_starts(&message, "CALLED ");
    }
    assert!(matches!(range("200:600", "--retry-ms"), Ok((200, 600))));
    assert!(range("600:200", "--retry-ms").is_err());
    assert!(range("600", "--retry-ms").is_err());
    assert!(duration(0.0, "--timeout").is_err());
    assert!(duration(f64::NAN, "--timeout").is_err());
    assert_eq!(
        duration(0.5, "--timeout").ok(),
        Some(Duration::from_millis(500))
    );
}

#[test]
fn flood_counts_positive_and_refused_clients() {
    // One fake per outcome: 4 clients get 0x82, 4 get 0x83/0x83, all against one listener
    // that alternates.
    let addr = fake_server_with(8, |i, stream| {
        let answer: &'static [u8] = if i % 2 == 0 {
            &[0x82, 0, 0, 0]
        } else {
            &[0x83, 0, 0, 1, 0x83]
        };
        serve_one(stream, Act::Answer(answer));
    });
    let plan = crowd::Flood {
        addr,
        request: plan(addr).first,
        count: 8,
        hold_ms: (1, 5),
        spread_ms: 0,
        retry_ms: None,
        connect_timeout: Duration::from_secs(2),
        timeout: Duration::from_secs(2),
        deadline: Duration::from_secs(5),
        within: Duration::from_secs(3),
    };
    let mut out = Out::capture(false);
    assert!(crowd::flood(&plan, &mut out));
    let summary = line_of(out.captured(), "SUMMARY");
    assert_starts(summary, "SUMMARY=flood N=8 POSITIVE=4 NEG83=4 BAD=0 PEAK=");
    assert_contains(summary, " WITHIN_S=3.0 IN_TIME=8 ANSWERED=8 MEDIAN_S=");
    assert_contains(summary, " RESETS=0");

    let plan = crowd::Flood {
        count: 2,
        ..crowd::Flood {
            addr: fake_server(Act::Reset, 2),
            ..plan
        }
    };
    let mut out = Out::capture(false);
    assert!(
        !crowd::flood(&plan, &mut out),
        "a reset client is a bad one"
    );
    assert_line(out.captured(), "CLIENT", "CLIENT=");
    assert!(line_of(out.captured(), "SUMMARY").contains(" BAD=2 "));
    assert_contains(
        line_of(out.captured(), "SUMMARY"),
        " IN_TIME=0 ANSWERED=0 MEDIAN_S=none WORST_S=none RESETS=2",
    );
}

#[test]
fn silent_clients_see_the_close_and_the_reset() {
    // The server closes every silent connection after 300 ms (FIN) and resets the ones that
    // are still open 300 ms later.
    let addr = fake_server_with(3, |_, stream| {
        thread::sleep(Duration::from_millis(300));
        let _ = stream.shutdown(Shutdown::Write);
        thread::sleep(Duration::from_millis(300));
        let mut probe = [0u8; 1];
        let _ = stream.set_read_timeout(Some(Duration::from_millis(10)));
        // A polite client has closed by now: nothing to reset.
        if !matches!((&stream).read(&mut probe), Ok(0)) {
            reset(stream);
        }
    });
    let plan = crowd::Silent {
        addr,
        count: 3,
        polite: 1,
        linger: Duration::from_secs(2),
        min_close: Duration::from_millis(200),
        max_close: Duration::from_secs(2),
        connect_timeout: Duration::from_secs(2),
        deadline: Duration::from_secs(5),
    };
    let mut out = Out::capture(false);
    let ok = crowd::silent(&plan, &mut out);
    let lines = out.captured();
    assert!(ok, "{lines:?}");
    let clients: Vec<_> = lines.iter().filter(|l| l.starts_with("CLIENT=")).collect();
    assert_eq!(clients.len(), 3, "{lines:?}");
    assert_contains(clients[0], " OK=yes END=EOF MODE=close ");
    assert_contains(clients[1], " OK=yes END=EOF MODE=keep ");
    assert!(!clients[1].ends_with("RESET_S=none"), "{}", clients[1]);
    let summary = line_of(lines, "SUMMARY");
    assert_starts(summary, "SUMMARY=silent N=3 POLITE=1 BAD=0 KEPT_RESET=2 ");
    assert_eq!(line_of(lines, "KEPT_PORTS").split(',').count(), 2);
}

/// A name server on loopback that answers one request with whatever `answer` builds from it.
fn fake_name_server(answer: impl Fn(u16, NbName) -> Vec<u8> + Send + 'static) -> SocketAddr {
    let socket = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let addr = socket.local_addr().unwrap();
    thread::spawn(move || {
        let mut buf = [0u8; 1500];
        let Ok((len, from)) = socket.recv_from(&mut buf) else {
            return;
        };
        let packet = nbns::Packet::new_checked(&buf[..len]).unwrap();
        let repr = nbns::Repr::parse(&packet).unwrap();
        let name = *repr.message.name().unwrap();
        // A stray answer with another transaction id first: it must be ignored.
        let _ = socket.send_to(&answer(repr.transaction_id.wrapping_add(1), name), from);
        let _ = socket.send_to(&answer(repr.transaction_id, name), from);
    });
    addr
}

fn emit(repr: nbns::Repr<'_>) -> Vec<u8> {
    let mut buf = vec![0; repr.buffer_len()];
    repr.emit(&mut nbns::Packet::new_unchecked(&mut buf[..]));
    buf
}

#[test]
fn node_status_reads_names_and_statistics() {
    let addr = fake_name_server(|transaction_id, name| {
        let listed = [nbns::NodeName {
            name: Name::new("LABSRV", 0x20).unwrap(),
            flags: nbns::NameFlags(0x0400),
        }];
        let statistics = nbns::Statistics {
            unit_id: [2, 0, 0, 0, 0, 1],
            number_free_command_blocks: 3,
            total_number_command_blocks: 3,
            max_total_sessions_possible: 2,
            ..Default::default()
        };
        emit(nbns::Repr {
            transaction_id,
            flags: nbns::Flags::AUTHORITATIVE,
            message: Message::NodeStatusResponse {
                name,
                names: NodeNames::new(&listed),
                statistics,
            },
        })
    });
    let mut out = Out::capture(false);
    let ok = names::node_status_probe(
        addr,
        Duration::from_secs(2),
        Some(3),
        Duration::from_secs(2),
        &mut out,
    )
    .unwrap();
    let lines = out.captured();
    assert!(ok, "{lines:?}");
    assert_eq!(lines[0], "RESULT=ANSWERED NAMES=1");
    assert_eq!(lines[1], "NAME=LABSRV<20> FLAGS=0x0400");
    assert_starts(&lines[2], "UNIT_ID=02:00:00:00:00:01 JUMPERS=0 ");
    assert_contains(
        &lines[2],
        " NUMBER_FREE_COMMAND_BLOCKS=3 TOTAL_NUMBER_COMMAND_BLOCKS=3 ",
    );
    assert_line(lines, "WAIT_FREE", "WAIT_FREE=OK WANT=3 AFTER_S=");

    // Nobody answers: a timeout, and a wait that was asked for fails.
    let silent = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let mut out = Out::capture(false);
    let ok = names::node_status_probe(
        silent.local_addr().unwrap(),
        Duration::from_millis(200),
        Some(3),
        Duration::from_millis(300),
        &mut out,
    )
    .unwrap();
    assert!(!ok);
    assert_line(out.captured(), "RESULT", "RESULT=TIMEOUT MS=");
}

#[test]
fn name_query_positive_and_negative() {
    let addr = fake_name_server(|transaction_id, name| {
        let owners = [AddrEntry {
            flags: NbFlags::new(false, NodeType::B),
            address: Ipv4Addr::new(192, 168, 69, 1),
        }];
        emit(nbns::Repr {
            transaction_id,
            flags: nbns::Flags::AUTHORITATIVE,
            message: Message::PositiveNameQueryResponse {
                name,
                ttl: 0,
                entries: AddrEntries::new(&owners),
            },
        })
    });
    let labsrv = Name::new("LABSRV", 0).unwrap();
    let mut out = Out::capture(false);
    names::query(labsrv, addr, false, Duration::from_secs(2), &mut out).unwrap();
    assert_line(
        out.captured(),
        "RESULT",
        "RESULT=POSITIVE FROM=127.0.0.1 ADDRESSES=192.168.69.1 GROUP=no MS=",
    );

    let addr = fake_name_server(|transaction_id, name| {
        emit(nbns::Repr {
            transaction_id,
            flags: nbns::Flags::AUTHORITATIVE,
            message: Message::NegativeNameQueryResponse {
                name,
                rcode: nbns::Rcode::NameError,
            },
        })
    });
    let mut out = Out::capture(false);
    names::query(labsrv, addr, false, Duration::from_secs(2), &mut out).unwrap();
    assert_line(
        out.captured(),
        "RESULT",
        "RESULT=NEGATIVE FROM=127.0.0.1 RCODE=0x03 MS=",
    );
}
