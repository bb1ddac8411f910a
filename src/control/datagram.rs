//! `netbt datagram send` and `netbt datagram watch` through the daemon's control socket: the
//! request and line documents, the daemon's side ([`execute`], [`delivery_line`]) and the
//! client's ([`send`], [`watch`]).
//!
//! `datagram send {SendRequest as JSON}` is answered with one [`SendReply`] (or an error
//! document). `datagram watch` keeps the connection open: first `{"watching": true}`, then one
//! [`WatchLine`] per datagram addressed to the node.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;

use netbt::datagram_service::{Delivery, SendError, Target};
use netbt::node::Node;
use netbt::wire::name::Name;
use netbt::wire::smb_mailslot;
use serde::{Deserialize, Serialize};
use smoltcp::wire::Ipv4Address;

use super::client::{CLIENT_TIMEOUT, ask, find_socket};
use super::status::ErrorReply;

/// What `netbt datagram send` asks the daemon.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendRequest {
    /// Our name it comes from: `NAME` (suffix 0x00) or `NAME#XX`.
    pub from: String,
    /// The destination: `NAME[#XX]`, or `*` for a BROADCAST datagram.
    pub to: String,
    /// The destination is a group name (DIRECT_GROUP instead of DIRECT_UNIQUE).
    pub group: bool,
    /// A unique destination's address (default: found with a broadcast name query).
    pub address: Option<Ipv4Address>,
    /// Wrap the data in a mailslot write to this mailslot, e.g. `\MAILSLOT\LAB`.
    pub mailslot: Option<String>,
    /// The data, in hex.
    pub data_hex: String,
}

/// The daemon's answer to a send.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendReply {
    /// `unique`, `group` or `broadcast`.
    pub sent: String,
    /// The source name, `LABSRV<00>`.
    pub from: String,
    /// The destination name.
    pub to: String,
    /// Where it went, `192.168.69.255:138`, or `resolving` (it leaves once a name query found
    /// the destination's address).
    pub address: String,
    /// Bytes of user data (the mailslot write, if any, included).
    pub bytes: usize,
}

/// One datagram addressed to the node, as `datagram watch` reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WatchLine {
    /// `unique`, `group` or `broadcast`.
    pub kind: String,
    /// The source name.
    pub from: String,
    /// The UDP source, `192.168.69.2:138`.
    pub source: String,
    /// The destination name (ours, or `*<00>`).
    pub to: String,
    /// The mailslot, when the user data is a mailslot write.
    pub mailslot: Option<String>,
    /// The data (of the mailslot write, if any) with every byte that is not printable ASCII as
    /// `\xNN`.
    pub data: String,
    /// The data in hex.
    pub data_hex: String,
}

/// Lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Hex back to bytes.
pub fn unhex(text: &str) -> Result<Vec<u8>, String> {
    if !text.len().is_multiple_of(2) {
        return Err("odd number of hex digits".to_string());
    }
    (0..text.len())
        .step_by(2)
        .map(|i| {
            text.get(i..i + 2)
                .and_then(|pair| u8::from_str_radix(pair, 16).ok())
                .ok_or_else(|| format!("not hex: {text:?}"))
        })
        .collect()
}

/// Printable ASCII as is, `\` as `\\`, every other byte as `\xNN`.
fn escaped(bytes: &[u8]) -> String {
    let mut out = String::new();
    for &b in bytes {
        match b {
            b'\\' => out.push_str("\\\\"),
            b' '..=b'~' => out.push(b as char),
            _ => out.push_str(&format!("\\x{b:02x}")),
        }
    }
    out
}

/// Executes a `datagram send` request on the daemon's node; the answer document.
pub fn execute(node: &mut Node, arguments: &str) -> String {
    match try_execute(node, arguments) {
        Ok(reply) => to_json_line(&reply),
        Err(message) => ErrorReply::json(&message),
    }
}

fn try_execute(node: &mut Node, arguments: &str) -> Result<SendReply, String> {
    let request: SendRequest =
        serde_json::from_str(arguments).map_err(|e| format!("bad datagram send request: {e}"))?;
    let from =
        Name::parse_text(&request.from, 0).map_err(|e| format!("from {:?}: {e}", request.from))?;
    let data = unhex(&request.data_hex)?;
    let (target, to_name) = if request.to == "*" {
        (Target::Broadcast, Name::WILDCARD)
    } else {
        let name =
            Name::parse_text(&request.to, 0).map_err(|e| format!("to {:?}: {e}", request.to))?;
        if request.group {
            (Target::Group(name), name)
        } else {
            match request.address {
                Some(address) => (
                    Target::Unique {
                        name,
                        address: Some(address),
                    },
                    name,
                ),
                None => (Target::Resolve(name), name),
            }
        }
    };
    let result = match &request.mailslot {
        Some(mailslot) => node.send_mailslot(from, target, mailslot.as_bytes(), &data),
        None => node.send_datagram(from, target, &data),
    };
    result.map_err(|e| match e {
        SendError::NotOurName => format!("{from} is not one of the daemon's registered names"),
        other => other.to_string(),
    })?;
    let broadcast = node.datagrams.broadcast().address;
    let (kind, address) = match target {
        Target::Unique { address, .. } => {
            ("unique", format!("{}:138", address.unwrap_or(broadcast)))
        }
        Target::Resolve(_) => ("unique", "resolving".to_string()),
        Target::Group(_) => ("group", format!("{broadcast}:138")),
        Target::Broadcast => ("broadcast", format!("{broadcast}:138")),
    };
    let bytes = match &request.mailslot {
        Some(mailslot) => smb_mailslot::Repr::new(mailslot.as_bytes(), &data).buffer_len(),
        None => data.len(),
    };
    Ok(SendReply {
        sent: kind.to_string(),
        from: from.to_string(),
        to: to_name.to_string(),
        address,
        bytes,
    })
}

/// The `datagram watch` line (JSON, no newline) for a delivery.
pub fn delivery_line(delivery: &Delivery) -> String {
    let write = smb_mailslot::Repr::parse(&smb_mailslot::Packet::new_unchecked(&delivery.data[..]));
    let (mailslot, data) = match write {
        Ok(write) => (
            Some(String::from_utf8_lossy(write.mailslot).into_owned()),
            write.data,
        ),
        Err(_) => (None, &delivery.data[..]),
    };
    let line = WatchLine {
        kind: delivery.kind.to_string(),
        from: delivery.source_name.to_string(),
        source: format!("{}:{}", delivery.source.address, delivery.source.port),
        to: delivery.destination_name.to_string(),
        mailslot,
        data: escaped(data),
        data_hex: hex(data),
    };
    serde_json::to_string(&line).expect("a watch line serializes")
}

/// A watch line as text: `unique LABSRV<00> 192.168.69.1:138 -> OTHER<20> \MAILSLOT\LAB 5
/// bytes: hello`.
pub fn render_line(line: &WatchLine) -> String {
    let mailslot = line
        .mailslot
        .as_ref()
        .map(|m| format!(" {m}"))
        .unwrap_or_default();
    format!(
        "{} {} {} -> {}{mailslot} {} bytes: {}",
        line.kind,
        line.from,
        line.source,
        line.to,
        line.data_hex.len() / 2,
        line.data
    )
}

fn to_json_line<T: Serialize>(value: &T) -> String {
    let mut out = serde_json::to_string(value).expect("the reply serializes");
    out.push('\n');
    out
}

/// `netbt datagram send`: asks the daemon to send; prints one line (or the JSON reply).
/// Errors are one line for exit code 1.
pub fn send(
    control: Option<PathBuf>,
    tap: &str,
    request: &SendRequest,
    json: bool,
) -> Result<(), String> {
    let path = find_socket(control, tap)?;
    let line = format!(
        "datagram send {}",
        serde_json::to_string(request).expect("a request serializes")
    );
    let reply = ask(&path, &line, CLIENT_TIMEOUT)?;
    if let Ok(refusal) = serde_json::from_str::<ErrorReply>(&reply) {
        return Err(format!("refused: {}", refusal.error));
    }
    let sent: SendReply = serde_json::from_str(&reply).map_err(|e| {
        format!(
            "the daemon at {} sent an unreadable answer: {e}",
            path.display()
        )
    })?;
    if json {
        print!("{reply}");
    } else if sent.address == "resolving" {
        println!(
            "queued {} datagram {} -> {}, {} bytes: it leaves once a broadcast name query finds \
             {} (dropped after 1 s of silence)",
            sent.sent, sent.from, sent.to, sent.bytes, sent.to
        );
    } else {
        println!(
            "sent {} datagram {} -> {} to {}, {} bytes",
            sent.sent, sent.from, sent.to, sent.address, sent.bytes
        );
    }
    Ok(())
}

/// `netbt datagram watch`: one line per datagram the daemon receives for its names, until the
/// daemon goes away (then an error, exit 1) or the user interrupts.
pub fn watch(control: Option<PathBuf>, tap: &str, json: bool) -> Result<(), String> {
    let path = find_socket(control, tap)?;
    let shown = path.display();
    let mut stream = UnixStream::connect(&path)
        .map_err(|e| format!("no netbt daemon answers at {shown}: {e}"))?;
    // The write side stays open: the daemon takes its close for the end of the watch.
    stream
        .write_all(b"datagram watch\n")
        .map_err(|e| format!("talking to the daemon at {shown}: {e}"))?;
    let mut lines = BufReader::new(stream).lines();
    match lines.next() {
        Some(Ok(first)) if first.contains("\"watching\"") => {}
        Some(Ok(other)) => {
            let why = serde_json::from_str::<ErrorReply>(&other)
                .map(|e| e.error)
                .unwrap_or(other);
            return Err(format!("the daemon at {shown} refused: {why}"));
        }
        _ => {
            return Err(format!(
                "the daemon at {shown} closed the connection without answering"
            ));
        }
    }
    let mut stdout = std::io::stdout().lock();
    for line in lines {
        let line = line.map_err(|e| format!("reading from the daemon at {shown}: {e}"))?;
        let out = if json {
            line
        } else {
            match serde_json::from_str::<WatchLine>(&line) {
                Ok(parsed) => render_line(&parsed),
                Err(_) => line,
            }
        };
        writeln!(stdout, "{out}")
            .and_then(|()| stdout.flush())
            .map_err(|e| format!("cannot write: {e}"))?;
    }
    Err(format!("the daemon at {shown} closed the watch"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use netbt::datagram_service::DatagramKind;
    use netbt::name_service::Destination;

    #[test]
    fn hex_round_trips_and_rejects_junk() {
        assert_eq!(hex(b"\x00\xffA"), "00ff41");
        assert_eq!(unhex("00ff41"), Ok(b"\x00\xffA".to_vec()));
        assert!(unhex("0").is_err());
        assert!(unhex("zz").is_err());
        assert!(unhex("é0").is_err());
    }

    #[test]
    fn a_delivery_becomes_one_json_line_and_text() {
        let write = smb_mailslot::Repr::new(b"\\MAILSLOT\\LAB", b"hi\n\\");
        let mut bytes = vec![0; write.buffer_len()];
        write.emit(&mut smb_mailslot::Packet::new_unchecked(&mut bytes[..]));
        let delivery = Delivery {
            kind: DatagramKind::Unique,
            source_name: Name::parse_text("LABSRV", 0).unwrap(),
            source: Destination {
                address: Ipv4Address::new(192, 168, 69, 1),
                port: 138,
            },
            destination_name: Name::parse_text("OTHER#20", 0).unwrap(),
            data: heapless::Vec::from_slice(&bytes).unwrap(),
        };
        let line = delivery_line(&delivery);
        assert!(!line.contains('\n'));
        let parsed: WatchLine = serde_json::from_str(&line).unwrap();
        assert_eq!(parsed.mailslot.as_deref(), Some("\\MAILSLOT\\LAB"));
        assert_eq!(parsed.data_hex, "68690a5c");
        assert_eq!(
            render_line(&parsed),
            "unique LABSRV<00> 192.168.69.1:138 -> OTHER<20> \\MAILSLOT\\LAB 4 bytes: hi\\x0a\\\\"
        );
    }
}
