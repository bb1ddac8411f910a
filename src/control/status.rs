//! The status document: one typed value that the daemon serializes and `netbt status` parses.
//!
//! Keys are the field names and come in field order. The ledger and the counters are the
//! library's own structs ([`LedgerCounts`], [`SessionCounters`], [`NameCounters`],
//! [`Statistics`]), serialized as they are: a field added there appears here without a change.

use std::net::SocketAddr;
use std::time::Duration as StdDuration;

use netbt::browse::BrowseCounters;
use netbt::datagram_service::DatagramCounters;
use netbt::name_service::{NameCounters, NameState, OwnedName, WinsCounters, WinsName};
use netbt::node::Node;
use netbt::session::{LedgerCounts, Listener, Phase, SessionCounters, SessionInfo, SlotId};
use netbt::wire::nbns::Statistics;
use serde::{Deserialize, Serialize};
use smoltcp::time::Instant;

/// The answer to `status`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Status {
    /// The daemon's version.
    pub netbt: String,
    /// The daemon's process id.
    pub pid: u32,
    /// The TAP device.
    pub tap: String,
    /// Address and prefix, `192.168.69.1/24`.
    pub address: String,
    /// Ethernet address, `02:00:00:00:00:01`.
    pub mac: String,
    /// The NetBIOS scope (empty: none).
    pub scope: String,
    /// Time since start.
    pub uptime_ms: u64,
    /// Every name has left `Registering`.
    pub ready: bool,
    /// A signal came: sessions are closing and names are being released.
    pub stopping: bool,
    /// The name table.
    pub names: Vec<NameRow>,
    /// The session service's listeners.
    pub listeners: Vec<ListenerRow>,
    /// Every slot that is neither free nor listening.
    pub sessions: Vec<SessionRow>,
    /// How the slot ledger stands.
    pub ledger: LedgerCounts,
    /// The siblings a request that finds every session slot busy is retargeted to (0x84), in
    /// turn, as `ip:port` (absent without `--retarget`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub retarget: Vec<String>,
    /// Everything counted.
    pub counters: Counters,
    /// A P-, M- or H-node: its node type, WINS servers and WINS counters (absent for a
    /// B-node).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wins: Option<WinsInfo>,
    /// The browse announcer (UDP 138); absent from a daemon without one.
    #[serde(default)]
    pub browse: BrowseRow,
}

/// The node type and its WINS servers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WinsInfo {
    /// `P`, `M` or `H`.
    pub node_type: String,
    /// The servers, primary first.
    pub servers: Vec<String>,
    /// The WINS client's counters.
    pub counters: WinsCounters,
}

/// One name's standing with the WINS server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WinsRow {
    /// Idle, Registering, Waiting, Down, Registered, Refreshing, Conflict(ACT_ERR), Releasing,
    /// Released.
    pub state: String,
    /// The server asked, or holding the name.
    pub server: Option<String>,
    /// TTL the server granted, in seconds (0: none).
    pub ttl: u32,
    /// Time until the next refresh, while registered.
    pub refresh_in_ms: Option<u64>,
    /// Time until the granted TTL runs out, while the server holds the name.
    pub expires_in_ms: Option<u64>,
    /// Time until the server is next asked for a name it refused, while in Conflict (absent
    /// from older daemons' documents).
    #[serde(default)]
    pub retry_in_ms: Option<u64>,
}

/// Where the browse announcer stands.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrowseRow {
    /// The workgroup we announce in (`None`: not announcing: no `--group NAME` with suffix
    /// 00, its names not registered yet, or stopped).
    pub workgroup: Option<String>,
    /// The comment the browse list shows.
    pub comment: String,
    /// `--announce-interval` in seconds (`None`: the MS-BRWS schedule).
    pub interval_s: Option<u64>,
    /// HostAnnouncements sent.
    pub announcements_sent: u32,
    /// Milliseconds until the next one (`None`: none due).
    pub next_announcement_ms: Option<u64>,
}

/// One name of the table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NameRow {
    /// `LABSRV<20>`.
    pub name: String,
    /// The 16th byte.
    pub suffix: u8,
    /// Group or unique.
    pub group: bool,
    /// Registering, Registered, Conflict, Releasing or Released.
    pub state: String,
    /// A session request to this name would be accepted: a unique name that is ours
    /// (Registered) with a listener. A name in Conflict or Released is not listening, even
    /// with a listener.
    pub listening: bool,
    /// Its standing with the WINS server (a P-, M- or H-node only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wins: Option<WinsRow>,
}

/// One listener of the session service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListenerRow {
    /// The called name.
    pub name: String,
    /// The only calling name accepted (`None`: anyone).
    pub calling: Option<String>,
}

/// One connection in a slot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionRow {
    /// Position in the ledger.
    pub slot: u16,
    /// Which connection of that slot.
    pub generation: u32,
    /// `session` or `refusal`.
    pub role: String,
    /// Listening, AwaitingRequest, Deciding, Established, Draining or Closing.
    pub phase: String,
    /// The peer's address and port.
    pub peer: Option<String>,
    /// The called name, once a request was accepted.
    pub called: Option<String>,
    /// The calling name, once a request arrived.
    pub calling: Option<String>,
    /// Time since the connection was established.
    pub age_ms: u64,
    /// Session message bytes received.
    pub bytes_in: u64,
    /// Session message bytes sent.
    pub bytes_out: u64,
    /// A forwarded session's backend-side local address and port (absent otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backend: Option<String>,
}

/// Every counter, by service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Counters {
    /// The session service (TCP 139), its gate included.
    pub sessions: SessionCounters,
    /// The name service (UDP 137).
    pub names: NameCounters,
    /// The node status statistics block (RFC 1002 §4.2.18) as the node answers it now.
    pub node_status: Statistics,
    /// The datagram service (UDP 138).
    #[serde(default)]
    pub datagrams: DatagramCounters,
    /// The browse announcer.
    #[serde(default)]
    pub browse: BrowseCounters,
    /// What the kernel counted on the TAP device.
    #[serde(default)]
    pub tap: TapCounters,
}

/// What the kernel counted on the TAP device, read from sysfs when the status was asked (zero
/// where it could not be read).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct TapCounters {
    /// Frames for netbt the kernel dropped because its queue on the TAP was full (netbt had not
    /// read the frames before them yet): under a flood, the drops netbt itself cannot see.
    pub kernel_dropped: u64,
    /// Frames netbt sent that the kernel dropped.
    pub kernel_rx_dropped: u64,
}

impl TapCounters {
    /// The kernel's counters of the interface `ifname` (`/sys/class/net/IF/statistics`).
    pub fn read(ifname: &str) -> TapCounters {
        let read = |name: &str| {
            std::fs::read_to_string(format!("/sys/class/net/{ifname}/statistics/{name}"))
                .ok()
                .and_then(|text| text.trim().parse().ok())
                .unwrap_or(0)
        };
        TapCounters {
            // The kernel transmits towards netbt: what it could not queue is a TX drop.
            kernel_dropped: read("tx_dropped"),
            kernel_rx_dropped: read("rx_dropped"),
        }
    }
}

/// The answer to a request the daemon does not know.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorReply {
    /// What was wrong.
    pub error: String,
}

/// What the daemon knows about itself beyond the node.
pub struct DaemonInfo<'a> {
    pub tap: &'a str,
    pub address: String,
    pub mac: String,
    pub scope: String,
    pub uptime: StdDuration,
    pub ready: bool,
    pub stopping: bool,
    pub tap_counters: TapCounters,
}

impl Status {
    /// The status of `node` at `now`. `backend` tells a forwarded session's backend-side local
    /// address from its slot id (`None` for a session that is not forwarded).
    pub fn new(
        node: &mut Node,
        info: &DaemonInfo,
        now: Instant,
        backend: &dyn Fn(SlotId) -> Option<SocketAddr>,
    ) -> Status {
        let service = node.session_service();
        let listeners = service.listeners().to_vec();
        let sessions = service
            .slots()
            .filter(|s| !matches!(s.phase, Phase::Free | Phase::Listening))
            .map(|s| SessionRow::new(&s, now, backend(s.slot)))
            .collect();
        let ledger = service.ledger();
        let retarget = service
            .config()
            .retarget
            .as_slice()
            .iter()
            .map(|sibling| sibling.to_string())
            .collect();
        let session_counters = service.counters();
        let node_status = node.node_status_statistics();
        let names = &node.names;
        let wins_node = !names.wins_config().servers().is_empty();
        let wins = wins_node.then(|| WinsInfo {
            node_type: format!("{:?}", names.node_type()),
            servers: names
                .wins_config()
                .servers()
                .iter()
                .map(|s| s.to_string())
                .collect(),
            counters: *names.wins_counters(),
        });
        Status {
            netbt: env!("CARGO_PKG_VERSION").to_string(),
            pid: std::process::id(),
            tap: info.tap.to_string(),
            address: info.address.clone(),
            mac: info.mac.clone(),
            scope: info.scope.clone(),
            uptime_ms: u64::try_from(info.uptime.as_millis()).unwrap_or(u64::MAX),
            ready: info.ready,
            stopping: info.stopping,
            names: names
                .names()
                .iter()
                .zip(names.wins_names())
                .map(|(owned, state)| {
                    let mut row = NameRow::new(owned, &listeners);
                    if wins_node {
                        row.wins = Some(WinsRow::new(state, names.wins_server(state), now));
                    }
                    row
                })
                .collect(),
            listeners: listeners.iter().map(ListenerRow::new).collect(),
            sessions,
            ledger,
            retarget,
            counters: Counters {
                sessions: session_counters,
                names: *node.names.counters(),
                node_status,
                tap: info.tap_counters,
                datagrams: *node.datagrams.counters(),
                browse: *node.browse.counters(),
            },
            browse: BrowseRow {
                workgroup: node.browse.workgroup().map(|w| w.to_string()),
                comment: String::from_utf8_lossy(node.browse.comment()).into_owned(),
                interval_s: node.browse.interval().map(|i| i.secs()),
                announcements_sent: node.browse.counters().announcements_sent.get(),
                next_announcement_ms: node.browse.next_due().map(|at| {
                    if at > now {
                        (at - now).total_millis()
                    } else {
                        0
                    }
                }),
            },
            wins,
        }
    }

    /// The document as the daemon sends it: pretty JSON and a final newline.
    pub fn to_json(&self) -> String {
        to_json(self)
    }
}

impl NameRow {
    fn new(owned: &OwnedName, listeners: &[Listener]) -> NameRow {
        let ours = owned.state == NameState::Active && !owned.group;
        NameRow {
            name: owned.name.to_string(),
            suffix: owned.name.suffix(),
            group: owned.group,
            state: owned.state.to_string(),
            listening: ours && listeners.iter().any(|l| l.name == owned.name),
            wins: None,
        }
    }
}

impl WinsRow {
    fn new(state: &WinsName, server: Option<smoltcp::wire::Ipv4Address>, now: Instant) -> WinsRow {
        let until = |at: Option<Instant>| {
            at.map(|at| {
                if at > now {
                    (at - now).total_millis()
                } else {
                    0
                }
            })
        };
        WinsRow {
            state: state.phase().to_string(),
            server: server.map(|s| s.to_string()),
            ttl: state.ttl(),
            refresh_in_ms: until(state.refresh_at()),
            expires_in_ms: until(state.expires_at()),
            retry_in_ms: until(state.retry_at()),
        }
    }
}

impl ListenerRow {
    fn new(listener: &Listener) -> ListenerRow {
        ListenerRow {
            name: listener.name.to_string(),
            calling: listener.calling.map(|n| n.to_string()),
        }
    }
}

impl SessionRow {
    fn new(slot: &SessionInfo, now: Instant, backend: Option<SocketAddr>) -> SessionRow {
        let age_ms = if now > slot.connected_at {
            (now - slot.connected_at).total_millis()
        } else {
            0
        };
        SessionRow {
            slot: slot.slot.index,
            generation: slot.slot.generation,
            role: slot.role.to_string(),
            phase: slot.phase.to_string(),
            peer: slot.peer.map(|p| p.to_string()),
            called: slot.called.map(|n| n.to_string()),
            calling: slot.calling.map(|n| n.to_string()),
            age_ms,
            bytes_in: slot.bytes_in,
            bytes_out: slot.bytes_out,
            backend: backend.map(|a| a.to_string()),
        }
    }
}

impl ErrorReply {
    /// The error document for `message`.
    pub fn json(message: &str) -> String {
        to_json(&ErrorReply {
            error: message.to_string(),
        })
    }
}

fn to_json<T: Serialize>(value: &T) -> String {
    // The document holds strings, numbers, booleans and nulls only: it always serializes.
    let mut out = serde_json::to_string_pretty(value).expect("the status document serializes");
    out.push('\n');
    out
}

/// The in-process bench of the integration tests: real nodes on an in-memory hub.
#[cfg(test)]
#[path = "../../tests/support/mod.rs"]
mod support;

#[cfg(test)]
mod tests {
    use super::support::*;
    use super::*;
    use crate::control::text::render_text;
    use netbt::wire::name::{Name, NbName};
    use netbt::wire::nbss;

    fn name(text: &str) -> Name {
        Name::parse_text(text, 0x20).unwrap()
    }

    fn request(called: &str, calling: &str) -> Vec<u8> {
        let repr = nbss::Repr::SessionRequest {
            called: NbName::unscoped(name(called)),
            calling: NbName::unscoped(name(calling)),
        };
        let mut bytes = vec![0; repr.buffer_len()];
        repr.emit(&mut nbss::Packet::new_unchecked(&mut bytes[..]));
        bytes
    }

    const BACKEND: &str = "127.0.0.1:50445";

    /// Node 2 after it lost LABSRV<20> to node 1, registered OTHER<20> and the group
    /// WORKGROUP<00>, listens on LABSRV<20> and OTHER<20> (from PROBE<00> only), and holds one
    /// established session from the peer to OTHER<20>, which carried 5 bytes each way. The
    /// session's backend is reported as [`BACKEND`].
    #[track_caller]
    fn node_with_a_session() -> Status {
        let hub = Hub::new();
        let mut owner = TestNode::new(&hub, NODE_MAC, NODE_IP);
        owner.node.names.add_name(name("LABSRV"), false).unwrap();
        owner.node.names.start(hub.now());
        run(&hub, 1_000, &mut [&mut owner]);

        let mut node = TestNode::new(&hub, NODE2_MAC, NODE2_IP);
        for (text, group) in [("LABSRV", false), ("OTHER", false), ("WORKGROUP#00", true)] {
            node.node.names.add_name(name(text), group).unwrap();
        }
        let sessions = node.node.session_service();
        sessions.listen(name("LABSRV"), None).unwrap();
        sessions.listen(name("OTHER"), Some(name("PROBE"))).unwrap();
        node.node.names.start(hub.now());
        run(&hub, 1_000, &mut [&mut owner, &mut node]);

        let mut peer = Peer::new(&hub, PEER_MAC, PEER_IP);
        let connection = peer.connect((NODE2_IP, 139), 40_000, 4096);
        run(&hub, 50, &mut [&mut owner, &mut node, &mut peer]);
        peer.tcp(connection)
            .send_slice(&request("OTHER", "PROBE"))
            .unwrap();
        run(&hub, 50, &mut [&mut owner, &mut node, &mut peer]);
        assert_eq!(peer.read_all(connection), [0x82, 0, 0, 0], "accepted");
        peer.tcp(connection)
            .send_slice(&[0, 0, 0, 1, b'x'])
            .unwrap();
        run(&hub, 2_400, &mut [&mut owner, &mut node, &mut peer]);
        assert_eq!(peer.read_all(connection), [0, 0, 0, 1, b'x'], "echoed");

        let info = DaemonInfo {
            tap: "tap0",
            address: "192.168.69.2/24".to_string(),
            mac: "02:00:00:00:00:02".to_string(),
            scope: String::new(),
            uptime: StdDuration::from_millis(12_345),
            ready: node.node.names.is_ready(),
            stopping: false,
            tap_counters: TapCounters {
                kernel_dropped: 7,
                kernel_rx_dropped: 0,
            },
        };
        let backend = |slot: SlotId| (slot.index == 0).then(|| BACKEND.parse().unwrap());
        Status::new(&mut node.node, &info, hub.now(), &backend)
    }

    #[test]
    fn a_real_node_goes_through_json_and_comes_out_as_text() {
        let status = node_with_a_session();
        let json = status.to_json();
        let parsed: Status = serde_json::from_str(&json).unwrap();
        assert_eq!(
            parsed, status,
            "what the daemon writes is what the client reads"
        );

        // Today's keys, in today's order (struct order, not sorted).
        let top: Vec<&str> = json
            .lines()
            .filter_map(|line| line.strip_prefix("  \""))
            .filter_map(|line| line.split_once('"').map(|(key, _)| key))
            .collect();
        assert_eq!(
            top,
            [
                "netbt",
                "pid",
                "tap",
                "address",
                "mac",
                "scope",
                "uptime_ms",
                "ready",
                "stopping",
                "names",
                "listeners",
                "sessions",
                "ledger",
                "counters",
                "browse"
            ]
        );
        let value: serde_json::Value = serde_json::from_str(&json).unwrap();
        let at = |pointer: &str| {
            value
                .pointer(pointer)
                .unwrap_or_else(|| panic!("{pointer} not in {json}"))
        };
        assert_eq!(at("/counters/sessions/gate/resets_sent"), 0);
        assert_eq!(at("/counters/tap/kernel_dropped"), 7);
        assert!(
            value.pointer("/counters/sessions/resets_sent").is_none(),
            "the gate counters are nested, once"
        );
        assert_eq!(at("/counters/sessions/positive"), 1);
        assert_eq!(at("/counters/sessions/high_water"), 1);
        assert!(
            value.pointer("/ledger/high_water").is_none(),
            "moved to the counters"
        );
        assert_eq!(at("/ledger/session_slots"), 2);
        assert!(at("/counters/names/received").as_u64().unwrap() > 0);
        assert_eq!(at("/counters/node_status/max_total_sessions_possible"), 2);
        assert_eq!(at("/sessions/0/backend"), BACKEND);
        // Node 2 has the workgroup but no unique <00> name (LABSRV<00> is not in its table):
        // it has no server name to announce.
        assert!(at("/browse/workgroup").is_null());
        assert_eq!(at("/browse/announcements_sent"), 0);
        assert!(at("/browse/next_announcement_ms").is_null());
        assert_eq!(at("/counters/browse/announcements_sent"), 0);
        assert_eq!(at("/counters/datagrams/sent"), 0);
        assert_eq!(at("/sessions/0/calling"), "PROBE<20>");
        assert!(
            !json.contains("\"backend\": null"),
            "a session that is not forwarded has no backend key"
        );

        let text = render_text(&parsed);
        let pid = std::process::id();
        for needle in [
            &format!(
                "netbt {} (pid {pid}) on tap0 192.168.69.2/24 02:00:00:00:00:02, up 12.3 s, \
                 ready\n",
                env!("CARGO_PKG_VERSION")
            )[..],
            "\nNames\n\
             \x20 NAME           TYPE    STATE       SESSIONS\n\
             \x20 LABSRV<20>     unique  Conflict    -\n\
             \x20 OTHER<20>      unique  Registered  listening (from PROBE<20> only)\n\
             \x20 WORKGROUP<00>  group   Registered  -\n",
            "\nSessions\n\
             \x20 SLOT  ROLE     PHASE        PEER                  CALLED     CALLING    BACKEND          \
             AGE s  IN  OUT\n\
             \x20 0     session  Established  192.168.69.100:40000  OTHER<20>  PROBE<20>  127.0.0.1:50445  \
             2.4    1   1\n",
            "\nLedger\n  session slots           2\n  refusal slots           1\n",
            "\nCounters\n  session service (TCP 139)\n",
            "\n  name service (UDP 137)\n",
            "\n  node status statistics (RFC 1002)\n",
            "\n  TAP device (kernel side)\n",
            "\nBrowse\n  workgroup           - (not announcing)\n  comment\n",
            "\n  announcements sent  0\n  next announcement   -\n",
            "\n  datagram service (UDP 138)\n",
            "\n  browse announcer\n",
        ] {
            assert!(text.contains(needle), "{needle:?} not in:\n{text}");
        }
        // Counter lines, whatever the alignment of their block.
        for (key, expected) in [
            ("positive", "1"),
            ("resets sent", "0"),
            ("high water", "1"),
            ("max total sessions possible", "2"),
            ("unit id", "02:00:00:00:00:02"),
            ("kernel dropped", "7"),
        ] {
            let line = text
                .lines()
                .find(|line| line.trim_start().starts_with(&format!("{key}  ")))
                .unwrap_or_else(|| panic!("no {key:?} line in:\n{text}"));
            assert_eq!(
                line.split("  ").last().map(str::trim),
                Some(expected),
                "{line:?}"
            );
        }
    }

    #[test]
    fn retarget_siblings_are_listed_only_when_there_are_some() {
        let mut status = node_with_a_session();
        assert!(status.retarget.is_empty());
        let json = status.to_json();
        assert!(!json.contains("\"retarget\""), "no key without --retarget");
        assert!(!render_text(&status).contains("retarget to"));

        status.retarget = vec![
            "192.168.69.3:139".to_string(),
            "192.168.69.4:1139".to_string(),
        ];
        let json = status.to_json();
        let parsed: Status = serde_json::from_str(&json).unwrap();
        assert_eq!(parsed.retarget, status.retarget);
        let text = render_text(&parsed);
        assert!(
            text.contains("\n  retarget to             192.168.69.3:139 192.168.69.4:1139\n"),
            "{text}"
        );
    }

    #[test]
    fn a_name_in_conflict_is_not_listening() {
        let status = node_with_a_session();
        let row = |text: &str| {
            status
                .names
                .iter()
                .find(|row| row.name == text)
                .unwrap_or_else(|| panic!("{text} not in {:?}", status.names))
        };
        let lost = row("LABSRV<20>");
        assert_eq!(lost.state, "Conflict");
        assert!(
            status.listeners.iter().any(|l| l.name == "LABSRV<20>"),
            "the listener stays"
        );
        assert!(
            !lost.listening,
            "but a session to a name in conflict is refused"
        );
        assert!(row("OTHER<20>").listening);
        assert!(
            !row("WORKGROUP<00>").listening,
            "sessions go to unique names"
        );
    }

    #[test]
    fn an_empty_table_renders_as_none() {
        let mut status = node_with_a_session();
        status.names.clear();
        status.sessions.clear();
        let text = render_text(&status);
        assert!(text.contains("Names\n  (none)\n"), "{text}");
        assert!(text.contains("Sessions\n  (none)\n"), "{text}");
        assert!(!text.contains("BACKEND"), "{text}");
    }

    #[test]
    fn an_h_node_shows_its_wins_state_in_json_and_text() {
        use super::support::nbns_server::{ScriptedNbns, samba_answer};
        use netbt::name_service::WinsConfig;
        use netbt::wire::nbns::{NodeType, Rcode};
        use smoltcp::wire::Ipv4Address;

        let wins = Ipv4Address::new(192, 168, 69, 50);
        let hub = Hub::new();
        let mut server = ScriptedNbns::new(
            &hub,
            [2, 0, 0, 0, 0, 0x50],
            wins,
            // OTHER<20> is another owner's: refused.
            Box::new(|request| {
                let taken = request
                    .message
                    .name()
                    .is_some_and(|n| n.name == name("OTHER"));
                let rcode = if taken { Rcode::Active } else { Rcode::NoError };
                samba_answer(request, rcode, 60).into_iter().collect()
            }),
        );
        let mut node = TestNode::new(&hub, NODE_MAC, NODE_IP);
        node.node
            .names
            .configure_wins(WinsConfig::new(NodeType::H, &[wins]).unwrap());
        node.node.names.add_name(name("LABSRV"), false).unwrap();
        node.node.names.add_name(name("OTHER"), false).unwrap();
        node.node.names.start(hub.now());
        run(&hub, 1_000, &mut [&mut node, &mut server]);
        let info = DaemonInfo {
            tap: "tap0",
            address: "192.168.69.1/24".to_string(),
            mac: "02:00:00:00:00:01".to_string(),
            scope: String::new(),
            uptime: StdDuration::from_millis(1_000),
            ready: node.node.names.is_ready(),
            stopping: false,
            tap_counters: TapCounters::default(),
        };
        let status = Status::new(&mut node.node, &info, hub.now(), &|_| None);
        let json = status.to_json();
        let parsed: Status = serde_json::from_str(&json).unwrap();
        assert_eq!(parsed, status);
        let value: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(value["wins"]["node_type"], "H");
        assert_eq!(value["wins"]["servers"][0], "192.168.69.50");
        assert_eq!(value["wins"]["counters"]["granted"], 1);
        let row = &value["names"][0]["wins"];
        assert_eq!(row["state"], "Registered");
        assert_eq!(row["server"], "192.168.69.50");
        assert_eq!(row["ttl"], 60);
        // Granted 1 ms in (the hub's round trip), refresh at half the TTL, read at 1 s.
        assert_eq!(row["refresh_in_ms"], 29_001);
        assert_eq!(row["expires_in_ms"], 59_001);
        assert_eq!(row["retry_in_ms"], serde_json::Value::Null);
        // Refused 1 ms in: in conflict, asked again 60 s later.
        let row = &value["names"][1]["wins"];
        assert_eq!(value["names"][1]["state"], "Conflict");
        assert_eq!(row["state"], "Conflict(ACT_ERR)");
        assert_eq!(row["refresh_in_ms"], serde_json::Value::Null);
        assert_eq!(row["retry_in_ms"], 59_001);

        let text = render_text(&parsed);
        for needle in [
            ", H-node, WINS 192.168.69.50, up 1.0 s, ready\n",
            "\n  WINS client\n",
        ] {
            assert!(text.contains(needle), "{needle:?} not in:\n{text}");
        }
        let cells = |first: &str| -> Vec<&str> {
            text.lines()
                .find(|l| l.trim_start().starts_with(first))
                .unwrap_or_else(|| panic!("no {first} row in:\n{text}"))
                .split_whitespace()
                .collect()
        };
        assert_eq!(
            cells("NAME"),
            [
                "NAME", "TYPE", "STATE", "SESSIONS", "WINS", "SERVER", "TTL", "s", "NEXT", "IN",
                "s"
            ]
        );
        assert_eq!(
            cells("LABSRV<20>"),
            [
                "LABSRV<20>",
                "unique",
                "Registered",
                "-",
                "Registered",
                "192.168.69.50",
                "60",
                "29.0"
            ]
        );
        assert_eq!(
            cells("OTHER<20>"),
            [
                "OTHER<20>",
                "unique",
                "Conflict",
                "-",
                "Conflict(ACT_ERR)",
                "192.168.69.50",
                "-",
                "59.0"
            ]
        );

        // A B-node's document has no WINS keys at all.
        let b_node = node_with_a_session().to_json();
        assert!(!b_node.contains("\"wins\""), "{b_node}");
    }

    #[test]
    fn an_error_reply_is_not_a_status() {
        let reply = ErrorReply::json("unknown request \"x\"");
        assert_eq!(
            serde_json::from_str::<ErrorReply>(&reply).unwrap().error,
            "unknown request \"x\""
        );
        assert!(serde_json::from_str::<Status>(&reply).is_err());
        let status = node_with_a_session().to_json();
        assert!(serde_json::from_str::<ErrorReply>(&status).is_err());
    }
}
