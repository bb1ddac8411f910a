//! One NBSS connection over a std `TcpStream`: connect, send a first frame, read the answer,
//! echo session messages, hold, and see what the server does next. Every wait is bounded.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use netbt::wire::name::{Name, NbName};
use netbt::wire::nbss::{self, MessageType};

use super::outcome::{Out, Outcome, hex_bytes, millis};

/// One session probe: what to send first and what to check after the answer.
pub struct Plan {
    /// The server.
    pub addr: SocketAddr,
    /// Bound of the connect, of each read and write, and of `--after`.
    pub timeout: Duration,
    /// The first frame (a session request, or a malformed frame).
    pub first: Vec<u8>,
    /// Session messages to echo once the session is up, by size.
    pub echo: Vec<usize>,
    /// Hold the session until this file exists (at most `.1`), then echo 16 bytes once more.
    pub hold: Option<(std::path::PathBuf, Duration)>,
    /// Wait for the server's next move at the end.
    pub after: bool,
}

/// Runs `plan`, printing `RESULT=...` (with `CODE`, `TO`, `BYTES`, `MS`), then `ECHO=...`,
/// `RELEASED=...`, `STILL_ALIVE=...` and `AFTER=...` lines. Returns false if a check the plan
/// asked for failed (an echo, the session for the echo or hold never came up).
pub fn probe(plan: &Plan, out: &mut Out) -> bool {
    let start = Instant::now();
    let stream = match connect(plan.addr, plan.timeout) {
        Ok(stream) => stream,
        Err(outcome) => {
            let mut fields = outcome.fields();
            fields.push(("MS", millis(start.elapsed())));
            out.line(&fields);
            return plan.echo.is_empty() && plan.hold.is_none();
        }
    };
    let sent = Instant::now();
    let (outcome, answer) = ask(&stream, &plan.first);
    let mut fields = outcome.fields();
    if !answer.is_empty() {
        fields.push(("BYTES", hex_bytes(&answer[..answer.len().min(24)]).into()));
    }
    fields.push(("MS", millis(sent.elapsed())));
    if let Ok(local) = stream.local_addr() {
        fields.push(("PORT", local.port().into()));
    }
    out.line(&fields);
    let mut ok = true;
    if outcome == Outcome::Positive {
        for &size in &plan.echo {
            ok &= echo_line(&stream, size, "ECHO", out);
        }
        if let Some((file, max)) = &plan.hold {
            let held = Instant::now();
            let by = if wait_for_file(file, *max) {
                "FILE"
            } else {
                "MAX"
            };
            out.line(&[
                ("RELEASED", by.into()),
                ("HELD_S", super::outcome::seconds(held.elapsed())),
            ]);
            ok &= echo_line(&stream, 16, "STILL_ALIVE", out);
        }
    } else {
        ok = plan.echo.is_empty() && plan.hold.is_none();
    }
    if plan.after {
        let waited = Instant::now();
        let next = after(&stream, plan.timeout);
        out.line(&[
            ("AFTER", next.word().into()),
            ("AFTER_MS", millis(waited.elapsed())),
        ]);
    }
    ok
}

/// One echo of `size` bytes, printed as `KEY=OK SIZE=n MS=t` or `KEY=FAIL SIZE=n WHY=...`
/// (in JSON an item of the list `key` in lower case). True if it came back intact.
fn echo_line(stream: &TcpStream, size: usize, key: &'static str, out: &mut Out) -> bool {
    let start = Instant::now();
    let result = echo(stream, size);
    let mut fields = vec![
        (key, if result.is_ok() { "OK" } else { "FAIL" }.into()),
        ("SIZE", size.into()),
    ];
    match &result {
        Ok(()) => fields.push(("MS", millis(start.elapsed()))),
        Err(failure) => fields.extend(failure.fields()),
    }
    out.item(&key.to_ascii_lowercase(), &fields);
    result.is_ok()
}

/// Connects within `timeout`; reads and writes are then bounded by `timeout` too.
pub fn connect(addr: SocketAddr, timeout: Duration) -> Result<TcpStream, Outcome> {
    let stream =
        TcpStream::connect_timeout(&addr, timeout).map_err(|e| Outcome::from_connect_error(&e))?;
    let setup = stream
        .set_read_timeout(Some(timeout))
        .and_then(|()| stream.set_write_timeout(Some(timeout)))
        .and_then(|()| stream.set_nodelay(true));
    setup.map_err(|e| Outcome::from_stream_error(&e))?;
    Ok(stream)
}

/// A SESSION REQUEST frame from `calling` to `called` (no scope).
pub fn session_request(called: Name, calling: Name) -> Vec<u8> {
    let repr = nbss::Repr::SessionRequest {
        called: NbName::unscoped(called),
        calling: NbName::unscoped(calling),
    };
    let mut frame = vec![0; repr.buffer_len()];
    repr.emit(&mut nbss::Packet::new_unchecked(&mut frame[..]));
    frame
}

/// A frame of any type with `body`, its length field set from the body (the `E` bit included).
pub fn raw_frame(msg_type: MessageType, body: &[u8]) -> Vec<u8> {
    let mut frame = vec![0; nbss::HEADER_LEN + body.len()];
    let mut packet = nbss::Packet::new_unchecked(&mut frame[..]);
    packet.set_msg_type(msg_type);
    packet.set_flags(0);
    packet.set_length(body.len() as u32);
    packet.payload_mut().copy_from_slice(body);
    frame
}

/// Reads one whole frame, header included.
pub fn read_frame(mut stream: &TcpStream) -> io::Result<Vec<u8>> {
    let mut frame = vec![0; nbss::HEADER_LEN];
    stream.read_exact(&mut frame)?;
    let total = nbss::Packet::new_unchecked(&frame[..]).total_len();
    frame.resize(total, 0);
    stream.read_exact(&mut frame[nbss::HEADER_LEN..])?;
    Ok(frame)
}

/// Sends `first` and reads one frame: how the server answered, and the answer's bytes (empty
/// when there was no whole frame).
pub fn ask(mut stream: &TcpStream, first: &[u8]) -> (Outcome, Vec<u8>) {
    if let Err(e) = stream.write_all(first) {
        return (Outcome::from_stream_error(&e), Vec::new());
    }
    match read_frame(stream) {
        Ok(frame) => (Outcome::from_frame(&frame), frame),
        Err(e) => (Outcome::from_stream_error(&e), Vec::new()),
    }
}

/// Why an echo failed: one word for `WHY=`, and the detail for the line.
#[derive(Debug, PartialEq, Eq)]
pub enum EchoFailure {
    /// No whole answer: the read ended with this outcome (RST, EOF, TIMEOUT, ...).
    NoAnswer(Outcome),
    /// The answer was no session message of the right `E` bit (its first two bytes).
    Header(u8, u8),
    /// The answer's length.
    Length(usize),
    /// The first byte that differs.
    Content(usize),
}

impl EchoFailure {
    /// `WHY=...` and its detail, as `KEY=value` fields.
    pub fn fields(&self) -> Vec<(&'static str, serde_json::Value)> {
        match self {
            EchoFailure::NoAnswer(outcome) => vec![("WHY", outcome.word().into())],
            EchoFailure::Header(kind, flags) => vec![
                ("WHY", "HEADER".into()),
                ("TYPE", super::outcome::hex(*kind).into()),
                ("FLAGS", super::outcome::hex(*flags).into()),
            ],
            EchoFailure::Length(got) => vec![("WHY", "LENGTH".into()), ("GOT", (*got).into())],
            EchoFailure::Content(at) => vec![("WHY", "CONTENT".into()), ("AT", (*at).into())],
        }
    }
}

/// The bytes an echo of `size` sends: a fixed pattern, so a failure can be repeated.
pub fn echo_payload(size: usize) -> Vec<u8> {
    (0..size).map(|i| (i.wrapping_mul(7) + 3) as u8).collect()
}

/// Sends one session message of `size` bytes and checks that the same message comes back: type
/// 0x00, the `E` bit exactly when `size` > 65 535, the same bytes. Writes while it reads, so a
/// server that echoes before the whole message arrived does not deadlock us.
pub fn echo(stream: &TcpStream, size: usize) -> Result<(), EchoFailure> {
    let payload = echo_payload(size);
    let frame = raw_frame(MessageType::SessionMessage, &payload);
    let answer = thread::scope(|scope| {
        let writer = scope.spawn(|| {
            let mut out = stream;
            out.write_all(&frame)
        });
        let answer = read_frame(stream);
        let written = writer
            .join()
            .unwrap_or_else(|_| Err(io::ErrorKind::Other.into()));
        answer.and_then(|frame| written.map(|()| frame))
    });
    let answer = answer.map_err(|e| EchoFailure::NoAnswer(Outcome::from_stream_error(&e)))?;
    let want_flags = u8::from(size > 0xFFFF);
    if answer[0] != 0x00 || answer[1] != want_flags {
        return Err(EchoFailure::Header(answer[0], answer[1]));
    }
    let body = &answer[nbss::HEADER_LEN..];
    if body.len() != size {
        return Err(EchoFailure::Length(body.len()));
    }
    match body.iter().zip(&payload).position(|(a, b)| a != b) {
        Some(at) => Err(EchoFailure::Content(at)),
        None => Ok(()),
    }
}

/// What the server did after the answer (or after the checks), waited for at most `timeout`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum After {
    /// It closed (FIN).
    Eof,
    /// It reset the connection.
    Reset,
    /// It sent more bytes.
    Data,
    /// Nothing within the timeout.
    Timeout,
}

impl After {
    /// The `AFTER` word.
    pub fn word(&self) -> &'static str {
        match self {
            After::Eof => "EOF",
            After::Reset => "RST",
            After::Data => "DATA",
            After::Timeout => "TIMEOUT",
        }
    }
}

/// Waits up to `timeout` for the server's next move on `stream`.
pub fn after(mut stream: &TcpStream, timeout: Duration) -> After {
    if stream.set_read_timeout(Some(timeout)).is_err() {
        return After::Reset;
    }
    let mut byte = [0u8; 1];
    match stream.read(&mut byte) {
        Ok(0) => After::Eof,
        Ok(_) => After::Data,
        Err(e) => match Outcome::from_stream_error(&e) {
            Outcome::Timeout => After::Timeout,
            _ => After::Reset,
        },
    }
}

/// Sleeps in 50 ms steps until `file` exists or `max` has passed; true if the file appeared.
pub fn wait_for_file(file: &Path, max: Duration) -> bool {
    let start = Instant::now();
    loop {
        if file.exists() {
            return true;
        }
        if start.elapsed() >= max {
            return false;
        }
        thread::sleep(Duration::from_millis(50));
    }
}
