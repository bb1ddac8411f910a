//! What a probe saw and how it is printed: stable `KEY=value` lines, or one JSON object.

use std::fmt;
use std::io::{self, ErrorKind, Write};
use std::net::SocketAddrV4;
use std::time::Duration;

use netbt::wire::nbss::{self, NegativeCode};
use serde_json::{Map, Value};

/// How a server answered one session request, or why there was no answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// `0x82`: the session was accepted.
    Positive,
    /// `0x83` with its error code.
    Negative(NegativeCode),
    /// `0x84`: retry at this address and port.
    Retarget(SocketAddrV4),
    /// A whole frame that is no session response (a keep-alive, a session message, bad flags).
    Other,
    /// The connection was reset (a TCP RST), before or instead of an answer.
    Reset,
    /// The server closed the connection (FIN) before a whole answer.
    Eof,
    /// No (whole) answer within the timeout.
    Timeout,
    /// The connection attempt was refused (RST to our SYN).
    Refused,
    /// The connection attempt got no answer within the timeout.
    ConnectTimeout,
    /// Another socket error, by its kind.
    Error(ErrorKind),
}

impl Outcome {
    /// Classifies one whole frame (header and body) read as the answer to a request.
    pub fn from_frame(frame: &[u8]) -> Outcome {
        let Ok(packet) = nbss::Packet::new_checked(frame) else {
            return Outcome::Other;
        };
        match nbss::Repr::parse(&packet) {
            Ok(nbss::Repr::PositiveResponse) => Outcome::Positive,
            Ok(nbss::Repr::NegativeResponse { code }) => Outcome::Negative(code),
            Ok(nbss::Repr::RetargetResponse { address, port }) => {
                Outcome::Retarget(SocketAddrV4::new(address, port))
            }
            _ => Outcome::Other,
        }
    }

    /// Classifies an error of reading or writing an established connection.
    pub fn from_stream_error(error: &io::Error) -> Outcome {
        match error.kind() {
            ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted => Outcome::Reset,
            ErrorKind::UnexpectedEof => Outcome::Eof,
            ErrorKind::WouldBlock | ErrorKind::TimedOut => Outcome::Timeout,
            kind => Outcome::Error(kind),
        }
    }

    /// Classifies an error of `connect`.
    pub fn from_connect_error(error: &io::Error) -> Outcome {
        match error.kind() {
            ErrorKind::ConnectionRefused => Outcome::Refused,
            ErrorKind::WouldBlock | ErrorKind::TimedOut => Outcome::ConnectTimeout,
            kind => Outcome::Error(kind),
        }
    }

    /// The `RESULT` word: `POSITIVE`, `NEGATIVE`, `RETARGET`, `OTHER`, `RST`, `EOF`, `TIMEOUT`,
    /// `REFUSED`, `CONNECT_TIMEOUT` or `ERROR`.
    pub fn word(&self) -> &'static str {
        match self {
            Outcome::Positive => "POSITIVE",
            Outcome::Negative(_) => "NEGATIVE",
            Outcome::Retarget(_) => "RETARGET",
            Outcome::Other => "OTHER",
            Outcome::Reset => "RST",
            Outcome::Eof => "EOF",
            Outcome::Timeout => "TIMEOUT",
            Outcome::Refused => "REFUSED",
            Outcome::ConnectTimeout => "CONNECT_TIMEOUT",
            Outcome::Error(_) => "ERROR",
        }
    }

    /// `RESULT=word`, then `CODE=0x83` (negative), `TO=ip:port` (retarget) or `ERROR=Kind`.
    pub fn fields(&self) -> Vec<(&'static str, Value)> {
        let mut fields = vec![("RESULT", Value::from(self.word()))];
        match self {
            Outcome::Negative(code) => fields.push(("CODE", hex(u8::from(*code)).into())),
            Outcome::Retarget(to) => fields.push(("TO", to.to_string().into())),
            Outcome::Error(kind) => fields.push(("ERROR", format!("{kind:?}").into())),
            _ => {}
        }
        fields
    }
}

impl fmt::Display for Outcome {
    /// The [`Outcome::fields`] as one `KEY=value` line, e.g. `RESULT=NEGATIVE CODE=0x83`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&line(&self.fields()))
    }
}

/// `0x83`: a byte as the scripts match it.
pub fn hex(byte: u8) -> String {
    format!("0x{byte:02x}")
}

/// Bytes as lowercase hex without separators (`8300000183`).
pub fn hex_bytes(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Milliseconds with one decimal.
pub fn millis(elapsed: Duration) -> Value {
    Value::from((elapsed.as_secs_f64() * 10_000.0).round() / 10.0)
}

/// Seconds with two decimals.
pub fn seconds(elapsed: Duration) -> Value {
    Value::from((elapsed.as_secs_f64() * 100.0).round() / 100.0)
}

/// `KEY=value KEY=value`: strings unquoted, other values as JSON writes them.
pub fn line(fields: &[(&str, Value)]) -> String {
    let mut text = String::new();
    for (key, value) in fields {
        if !text.is_empty() {
            text.push(' ');
        }
        text.push_str(key);
        text.push('=');
        match value {
            Value::String(s) => text.push_str(s),
            other => text.push_str(&other.to_string()),
        }
    }
    text
}

/// Where a probe's findings go.
///
/// As text, every call prints one `KEY=value` line at once (flushed, so a script can wait for
/// it while the probe still runs). As JSON, nothing is printed until [`Out::finish`], which
/// prints one object: [`Out::line`] fields at the top level, [`Out::item`] lines as objects in
/// an array, [`Out::group`] lines as a nested object; keys in lower case.
pub struct Out {
    json: Option<Map<String, Value>>,
    /// Lines kept instead of printed (tests).
    captured: Option<Vec<String>>,
}

impl Out {
    /// Text output, or with `json` one object at the end.
    pub fn new(json: bool) -> Out {
        Out {
            json: json.then(Map::new),
            captured: None,
        }
    }

    /// Like [`Out::new`], but the lines are kept for [`Out::captured`] instead of printed.
    #[cfg(test)]
    pub fn capture(json: bool) -> Out {
        Out {
            json: json.then(Map::new),
            captured: Some(Vec::new()),
        }
    }

    /// The lines kept so far (after [`Out::finish`], the JSON object as one line).
    #[cfg(test)]
    pub fn captured(&self) -> &[String] {
        self.captured.as_deref().unwrap_or_default()
    }

    /// One line whose fields belong to the whole probe.
    pub fn line(&mut self, fields: &[(&str, Value)]) {
        match &mut self.json {
            Some(map) => map.extend(object(fields)),
            None => self.print(line(fields)),
        }
    }

    /// One line of a repeated record (an echo, a client), appended to the JSON array `list`.
    pub fn item(&mut self, list: &str, fields: &[(&str, Value)]) {
        match &mut self.json {
            Some(map) => {
                let entry = map.entry(list).or_insert_with(|| Value::Array(Vec::new()));
                if let Value::Array(items) = entry {
                    items.push(Value::Object(object(fields)));
                }
            }
            None => self.print(line(fields)),
        }
    }

    /// One line that is a JSON object of its own, under `name`.
    pub fn group(&mut self, name: &str, fields: &[(&str, Value)]) {
        match &mut self.json {
            Some(map) => {
                map.insert(name.to_owned(), Value::Object(object(fields)));
            }
            None => self.print(line(fields)),
        }
    }

    /// Prints the JSON object, if that is the format.
    pub fn finish(&mut self) {
        if let Some(map) = self.json.take() {
            self.print(Value::Object(map).to_string());
        }
    }

    fn print(&mut self, text: String) {
        match &mut self.captured {
            Some(lines) => lines.push(text),
            None => {
                let mut stdout = io::stdout().lock();
                // A closed stdout must not kill a probe that still holds a session.
                let _ = writeln!(stdout, "{text}");
                let _ = stdout.flush();
            }
        }
    }
}

fn object(fields: &[(&str, Value)]) -> Map<String, Value> {
    fields
        .iter()
        .map(|(key, value)| (key.to_ascii_lowercase(), value.clone()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_classify_by_type_and_code() {
        assert_eq!(Outcome::from_frame(&[0x82, 0, 0, 0]), Outcome::Positive);
        for code in [0x80u8, 0x81, 0x82, 0x83, 0x8f] {
            let outcome = Outcome::from_frame(&[0x83, 0, 0, 1, code]);
            assert_eq!(outcome, Outcome::Negative(NegativeCode::from(code)));
            assert_eq!(
                outcome.to_string(),
                format!("RESULT=NEGATIVE CODE=0x{code:02x}")
            );
        }
        let retarget = Outcome::from_frame(&[0x84, 0, 0, 6, 10, 0, 0, 9, 0x01, 0xbd]);
        assert_eq!(retarget.to_string(), "RESULT=RETARGET TO=10.0.0.9:445");
        // A keep-alive, a session message, reserved flag bits, a wrong length: not an answer.
        for frame in [
            &[0x85, 0, 0, 0][..],
            &[0x00, 0, 0, 1, 7],
            &[0x82, 0x02, 0, 0],
            &[0x83, 0, 0, 2, 0x83, 0],
            &[0x82, 0],
        ] {
            assert_eq!(Outcome::from_frame(frame), Outcome::Other, "{frame:02x?}");
        }
    }

    #[test]
    fn socket_errors_classify() {
        let err = |kind| io::Error::from(kind);
        for (kind, want) in [
            (ErrorKind::ConnectionReset, Outcome::Reset),
            (ErrorKind::UnexpectedEof, Outcome::Eof),
            (ErrorKind::WouldBlock, Outcome::Timeout),
        ] {
            assert_eq!(Outcome::from_stream_error(&err(kind)), want, "{kind:?}");
        }
        for (kind, want) in [
            (ErrorKind::ConnectionRefused, Outcome::Refused),
            (ErrorKind::TimedOut, Outcome::ConnectTimeout),
        ] {
            assert_eq!(Outcome::from_connect_error(&err(kind)), want, "{kind:?}");
        }
        assert_eq!(
            Outcome::from_stream_error(&err(ErrorKind::BrokenPipe)).to_string(),
            "RESULT=ERROR ERROR=BrokenPipe"
        );
    }

    #[test]
    fn lines_and_numbers_print_stably() {
        let fields = [
            ("RESULT", Value::from("POSITIVE")),
            ("MS", millis(Duration::from_micros(1_234_567))),
            ("SIZE", Value::from(65536)),
        ];
        assert_eq!(line(&fields), "RESULT=POSITIVE MS=1234.6 SIZE=65536");
        assert_eq!(seconds(Duration::from_millis(2_004)), Value::from(2.0));
        assert_eq!(hex_bytes(&[0x83, 0, 0, 1, 0x8f]), "830000018f");
        assert_eq!(
            object(&fields).keys().collect::<Vec<_>>(),
            ["ms", "result", "size"]
        );
    }
}
