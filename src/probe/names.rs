//! NBNS over a std `UdpSocket`: a name query (unicast or broadcast) and a node status request.

use std::io;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use netbt::wire::name::{Name, NbName};
use netbt::wire::nbns::{self, Flags, Message, Statistics};
use serde_json::Value;

use super::outcome::{Out, hex, millis, seconds};

/// A transaction id that differs from run to run (never 0).
fn transaction_id() -> u16 {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(1, |d| d.subsec_nanos());
    (nanos as u16) | 1
}

pub(super) fn request(message: Message<'_>, flags: Flags, transaction_id: u16) -> Vec<u8> {
    let repr = nbns::Repr {
        transaction_id,
        flags,
        message,
    };
    let mut buf = vec![0; repr.buffer_len()];
    repr.emit(&mut nbns::Packet::new_unchecked(&mut buf[..]));
    buf
}

/// Receives datagrams until `until`, handing each response with our transaction id to `on`
/// (with its sender) until `on` returns false.
fn responses(
    socket: &UdpSocket,
    transaction_id: u16,
    until: Instant,
    mut on: impl FnMut(SocketAddr, nbns::Repr<'_>) -> bool,
) -> io::Result<()> {
    let mut buf = [0u8; 1500];
    loop {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(());
        }
        socket.set_read_timeout(Some(left))?;
        let (len, from) = match socket.recv_from(&mut buf) {
            Ok(got) => got,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        let Ok(packet) = nbns::Packet::new_checked(&buf[..len]) else {
            continue;
        };
        if packet.transaction_id() != transaction_id {
            continue;
        }
        if let Ok(repr) = nbns::Repr::parse(&packet)
            && repr.message.is_response()
            && !on(from, repr)
        {
            return Ok(());
        }
    }
}

/// A name query for `name`: sent to `to` (unicast, stops at the first answer) or broadcast to
/// it (collects every answer within `timeout`). Prints per answer `RESULT=POSITIVE FROM=ip
/// ADDRESSES=ip,ip GROUP=yes|no MS=` or `RESULT=NEGATIVE FROM=ip RCODE=0x3 MS=` (or another
/// response: `RESULT=OTHER FROM=ip`); `RESULT=TIMEOUT MS=` when none came.
pub fn query(
    name: Name,
    to: SocketAddr,
    broadcast: bool,
    timeout: Duration,
    out: &mut Out,
) -> io::Result<()> {
    let socket = UdpSocket::bind(unspecified(to.ip()))?;
    socket.set_broadcast(broadcast)?;
    let id = transaction_id();
    let mut flags = Flags::RECURSION_DESIRED;
    if broadcast {
        flags = flags.union(Flags::BROADCAST);
    }
    let name = NbName::unscoped(name);
    let start = Instant::now();
    socket.send_to(&request(Message::NameQueryRequest { name }, flags, id), to)?;
    let mut answers = 0;
    responses(&socket, id, start + timeout, |from, repr| {
        answers += 1;
        let mut fields = match repr.message {
            Message::PositiveNameQueryResponse { entries, .. } => {
                let addresses: Vec<String> =
                    entries.iter().map(|e| e.address.to_string()).collect();
                let group = entries.iter().any(|e| e.flags.is_group());
                vec![
                    ("RESULT", "POSITIVE".into()),
                    ("FROM", from.ip().to_string().into()),
                    ("ADDRESSES", addresses.join(",").into()),
                    ("GROUP", if group { "yes" } else { "no" }.into()),
                ]
            }
            Message::NegativeNameQueryResponse { rcode, .. } => vec![
                ("RESULT", "NEGATIVE".into()),
                ("FROM", from.ip().to_string().into()),
                ("RCODE", hex(u8::from(rcode)).into()),
            ],
            _ => vec![
                ("RESULT", "OTHER".into()),
                ("FROM", from.ip().to_string().into()),
            ],
        };
        fields.push(("MS", millis(start.elapsed())));
        out.item("answers", &fields);
        broadcast
    })?;
    if answers == 0 {
        out.line(&[
            ("RESULT", "TIMEOUT".into()),
            ("MS", millis(start.elapsed())),
        ]);
    }
    Ok(())
}

/// What a node status request returned.
pub struct NodeStatus {
    /// The names the node lists, with their NAME_FLAGS.
    pub names: Vec<(Name, u16)>,
    /// The statistics block.
    pub statistics: Statistics,
}

/// One node status request for `*` to `to`; `None` if no answer came within `timeout`.
pub fn node_status(to: SocketAddr, timeout: Duration) -> io::Result<Option<NodeStatus>> {
    let socket = UdpSocket::bind(unspecified(to.ip()))?;
    let id = transaction_id();
    let name = NbName::unscoped(Name::WILDCARD);
    let query = request(Message::NodeStatusRequest { name }, Flags::NONE, id);
    socket.send_to(&query, to)?;
    let mut status = None;
    responses(&socket, id, Instant::now() + timeout, |_, repr| {
        if let Message::NodeStatusResponse {
            names, statistics, ..
        } = repr.message
        {
            let names = names.iter().map(|n| (n.name, n.flags.0)).collect();
            status = Some(NodeStatus { names, statistics });
            return false;
        }
        true
    })?;
    Ok(status)
}

/// Asks for node status every 200 ms until the node reports `wait_free` free command blocks
/// (or once, without `wait_free`), for at most `max`. Prints `RESULT=ANSWERED NAMES=n`, a
/// `NAME=LABSRV<20> FLAGS=0x0400` line per name, the statistics as one line of their field
/// names in upper case (`NUMBER_FREE_COMMAND_BLOCKS=1 ...`, `UNIT_ID=02:00:00:00:00:01`), and
/// with `wait_free` `WAIT_FREE=OK|TIMEOUT WANT=n AFTER_S=s`; or `RESULT=TIMEOUT`. Returns false
/// if the wait was asked for and not met.
pub fn node_status_probe(
    to: SocketAddr,
    timeout: Duration,
    wait_free: Option<u16>,
    max: Duration,
    out: &mut Out,
) -> io::Result<bool> {
    let start = Instant::now();
    let mut status;
    loop {
        status = node_status(to, timeout)?;
        let free = status
            .as_ref()
            .map(|s| s.statistics.number_free_command_blocks);
        if wait_free.is_none() || free == wait_free || start.elapsed() >= max {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let Some(status) = status else {
        out.line(&[
            ("RESULT", "TIMEOUT".into()),
            ("MS", millis(start.elapsed())),
        ]);
        return Ok(wait_free.is_none());
    };
    out.line(&[
        ("RESULT", "ANSWERED".into()),
        ("NAMES", status.names.len().into()),
    ]);
    for (name, flags) in &status.names {
        let flags = format!("0x{flags:04x}");
        out.item(
            "names",
            &[("NAME", name.to_string().into()), ("FLAGS", flags.into())],
        );
    }
    out.group("statistics", &statistics_fields(&status.statistics));
    let Some(want) = wait_free else {
        return Ok(true);
    };
    let reached = status.statistics.number_free_command_blocks == want;
    out.line(&[
        ("WAIT_FREE", if reached { "OK" } else { "TIMEOUT" }.into()),
        ("WANT", want.into()),
        ("AFTER_S", seconds(start.elapsed())),
    ]);
    Ok(reached)
}

/// The statistics as `KEY=value` fields: the library's field names in upper case (in JSON
/// the same names, lower case), in wire order; the unit id as `02:00:00:00:00:01`.
fn statistics_fields(s: &Statistics) -> Vec<(&'static str, Value)> {
    let unit_id: Vec<String> = s.unit_id.iter().map(|b| format!("{b:02x}")).collect();
    vec![
        ("UNIT_ID", unit_id.join(":").into()),
        ("JUMPERS", s.jumpers.into()),
        ("TEST_RESULT", s.test_result.into()),
        ("VERSION_NUMBER", s.version_number.into()),
        ("PERIOD_OF_STATISTICS", s.period_of_statistics.into()),
        ("NUMBER_OF_CRCS", s.number_of_crcs.into()),
        ("NUMBER_ALIGNMENT_ERRORS", s.number_alignment_errors.into()),
        ("NUMBER_OF_COLLISIONS", s.number_of_collisions.into()),
        ("NUMBER_SEND_ABORTS", s.number_send_aborts.into()),
        ("NUMBER_GOOD_SENDS", s.number_good_sends.into()),
        ("NUMBER_GOOD_RECEIVES", s.number_good_receives.into()),
        ("NUMBER_RETRANSMITS", s.number_retransmits.into()),
        (
            "NUMBER_NO_RESOURCE_CONDITIONS",
            s.number_no_resource_conditions.into(),
        ),
        (
            "NUMBER_FREE_COMMAND_BLOCKS",
            s.number_free_command_blocks.into(),
        ),
        (
            "TOTAL_NUMBER_COMMAND_BLOCKS",
            s.total_number_command_blocks.into(),
        ),
        (
            "MAX_TOTAL_NUMBER_COMMAND_BLOCKS",
            s.max_total_number_command_blocks.into(),
        ),
        ("NUMBER_PENDING_SESSIONS", s.number_pending_sessions.into()),
        (
            "MAX_NUMBER_PENDING_SESSIONS",
            s.max_number_pending_sessions.into(),
        ),
        (
            "MAX_TOTAL_SESSIONS_POSSIBLE",
            s.max_total_sessions_possible.into(),
        ),
        (
            "SESSION_DATA_PACKET_SIZE",
            s.session_data_packet_size.into(),
        ),
    ]
}

fn unspecified(peer: IpAddr) -> SocketAddr {
    match peer {
        IpAddr::V4(_) => SocketAddr::from(([0, 0, 0, 0], 0)),
        IpAddr::V6(_) => SocketAddr::from(([0u16; 8], 0)),
    }
}
