//! Independent check of every packet kind netbt emits: each is written into a pcap inside
//! Ethernet/IPv4/UDP or TCP headers (built with smoltcp's wire module) and decoded by tshark.
//! Every field tshark decodes must equal what was emitted, and nothing may be flagged malformed
//! or as "NBSS Continuation".
//!
//! tshark must be installed (`scripts/test.sh` installs it). Set `NETBT_SKIP_TSHARK=1` to skip
//! this test on a machine without it; it then prints that it was skipped.
//!
//! Known tshark 4.0 quirk: its NBSTAT dissector reads one command-block counter where RFC 1002
//! has three, so every statistics field after NUMBER_NO_RESOURCE_CONDITIONS is shifted by two
//! fields. The expectations below say which raw field each tshark label really shows.

use std::collections::BTreeMap;
use std::process::Command;

use netbt::wire::name::{Name, NbName, Scope};
use netbt::wire::{browser, nbds, nbns, nbss, smb_mailslot};
use smoltcp::phy::{ChecksumCapabilities, PcapLinkType, PcapSink};
use smoltcp::time::Instant;
use smoltcp::wire::{
    EthernetAddress, EthernetFrame, EthernetProtocol, EthernetRepr, IpAddress, IpProtocol,
    Ipv4Address, Ipv4Packet, Ipv4Repr, TcpControl, TcpPacket, TcpRepr, TcpSeqNumber, UdpPacket,
    UdpRepr,
};

const SERVER: Ipv4Address = Ipv4Address::new(192, 168, 69, 1);
const CLIENT: Ipv4Address = Ipv4Address::new(192, 168, 69, 100);
const SERVER_MAC: EthernetAddress = EthernetAddress([2, 0, 0, 0, 0, 1]);
const CLIENT_MAC: EthernetAddress = EthernetAddress([2, 0, 0, 0, 0, 0x64]);

/// One frame of the capture and what tshark must decode from it.
struct Case {
    what: String,
    frame: Vec<u8>,
    /// tshark field name → expected value (all occurrences, joined by ',').
    expect: Vec<(&'static str, String)>,
}

fn ip_frame(protocol: IpProtocol, l4: &[u8]) -> Vec<u8> {
    let ip = Ipv4Repr {
        src_addr: SERVER,
        dst_addr: CLIENT,
        next_header: protocol,
        payload_len: l4.len(),
        hop_limit: 64,
    };
    let eth = EthernetRepr {
        src_addr: SERVER_MAC,
        dst_addr: CLIENT_MAC,
        ethertype: EthernetProtocol::Ipv4,
    };
    let mut frame = vec![0u8; eth.buffer_len() + ip.buffer_len() + l4.len()];
    let mut eth_frame = EthernetFrame::new_unchecked(&mut frame[..]);
    eth.emit(&mut eth_frame);
    let mut ip_packet = Ipv4Packet::new_unchecked(eth_frame.payload_mut());
    ip.emit(&mut ip_packet, &ChecksumCapabilities::default());
    ip_packet.payload_mut().copy_from_slice(l4);
    frame
}

fn udp_frame(src_port: u16, dst_port: u16, payload: &[u8]) -> Vec<u8> {
    let udp = UdpRepr { src_port, dst_port };
    let mut l4 = vec![0u8; udp.header_len() + payload.len()];
    udp.emit(
        &mut UdpPacket::new_unchecked(&mut l4[..]),
        &IpAddress::Ipv4(SERVER),
        &IpAddress::Ipv4(CLIENT),
        payload.len(),
        |buf| buf.copy_from_slice(payload),
        &ChecksumCapabilities::default(),
    );
    ip_frame(IpProtocol::Udp, &l4)
}

/// A segment from our port 139 to a client port; every case gets its own connection so each
/// NBSS PDU starts a stream, as on the wire.
fn tcp_frame(client_port: u16, payload: &[u8]) -> Vec<u8> {
    let tcp = TcpRepr {
        src_port: 139,
        dst_port: client_port,
        control: TcpControl::Psh,
        seq_number: TcpSeqNumber(1000),
        ack_number: Some(TcpSeqNumber(2000)),
        window_len: 4096,
        window_scale: None,
        max_seg_size: None,
        sack_permitted: false,
        sack_ranges: [None; 3],
        timestamp: None,
        payload,
    };
    let mut l4 = vec![0u8; tcp.buffer_len()];
    tcp.emit(
        &mut TcpPacket::new_unchecked(&mut l4[..]),
        &IpAddress::Ipv4(SERVER),
        &IpAddress::Ipv4(CLIENT),
        &ChecksumCapabilities::default(),
    );
    ip_frame(IpProtocol::Tcp, &l4)
}

fn emit_nbns(repr: &nbns::Repr) -> Vec<u8> {
    let mut buf = vec![0u8; repr.buffer_len()];
    repr.emit(&mut nbns::Packet::new_unchecked(&mut buf[..]));
    buf
}

fn emit_nbss(repr: &nbss::Repr, payload: &[u8]) -> Vec<u8> {
    let mut buf = vec![0u8; repr.buffer_len()];
    repr.emit(&mut nbss::Packet::new_unchecked(&mut buf[..]));
    if let nbss::Repr::SessionMessage { .. } = repr {
        buf[nbss::HEADER_LEN..].copy_from_slice(payload);
    }
    buf
}

fn emit_nbds(repr: &nbds::Repr) -> Vec<u8> {
    let mut buf = vec![0u8; repr.buffer_len()];
    repr.emit(&mut nbds::Packet::new_unchecked(&mut buf[..]));
    buf
}

fn name(text: &str) -> NbName {
    NbName::unscoped(Name::parse_text(text, 0).unwrap())
}

/// How tshark writes a 16-bit flags word.
fn hex16(value: u16) -> String {
    format!("0x{value:04x}")
}

/// How tshark writes a NetBIOS name: the first 15 bytes without trailing spaces, bytes that are
/// not printable as `<xx>`, then `<suffix>`, then the scope.
fn nbns_name(name: &NbName) -> String {
    let mut text = tshark_base(&name.name);
    text.push_str(&format!("<{:02x}>", name.name.suffix()));
    if !name.scope.is_empty() {
        text.push_str(&format!(".{}", name.scope));
    }
    text
}

/// The first 15 bytes of a name as tshark writes them.
fn tshark_base(name: &Name) -> String {
    let base = &name.as_bytes()[..15];
    let end = base.iter().rposition(|&b| b != b' ').map_or(0, |i| i + 1);
    base[..end]
        .iter()
        .map(|&b| {
            if b.is_ascii_graphic() || b == b' ' {
                (b as char).to_string()
            } else {
                format!("<{b:02x}>")
            }
        })
        .collect()
}

fn nbns_cases() -> Vec<Case> {
    let labsrv20 = name("LABSRV#20");
    let entry = nbns::AddrEntry {
        flags: nbns::NbFlags::new(false, nbns::NodeType::B),
        address: SERVER,
    };
    let group_entry = nbns::AddrEntry {
        flags: nbns::NbFlags::new(true, nbns::NodeType::H),
        address: Ipv4Address::new(192, 168, 69, 2),
    };
    let entries = [entry, group_entry];
    let node_names = [
        nbns::NodeName {
            name: Name::new("LABSRV", 0x00).unwrap(),
            flags: nbns::NameFlags::new(false, nbns::NodeType::B),
        },
        nbns::NodeName {
            name: Name::new("LABSRV", 0x20).unwrap(),
            flags: nbns::NameFlags::new(false, nbns::NodeType::B)
                .with(nbns::NameFlags::CONFLICT, true),
        },
        nbns::NodeName {
            name: Name::new("LABGRP", 0x00).unwrap(),
            flags: nbns::NameFlags::new(true, nbns::NodeType::B)
                .with(nbns::NameFlags::DEREGISTERING, true),
        },
    ];
    let statistics = nbns::Statistics {
        unit_id: [2, 0, 0, 0, 0, 1],
        number_good_sends: 1234,
        number_good_receives: 5678,
        number_no_resource_conditions: 7,
        number_free_command_blocks: 3,
        total_number_command_blocks: 10,
        max_total_number_command_blocks: 10,
        number_pending_sessions: 2,
        max_number_pending_sessions: 4,
        max_total_sessions_possible: 8,
        session_data_packet_size: 4096,
        ..nbns::Statistics::default()
    };
    let scoped = NbName::new(
        Name::new("SCOPED", 0x20).unwrap(),
        Scope::parse_text("lab.example").unwrap(),
    );
    let reprs: Vec<(&str, nbns::Repr)> = vec![
        (
            "name query request",
            nbns::Repr {
                transaction_id: 0x0101,
                flags: nbns::Flags::BROADCAST | nbns::Flags::RECURSION_DESIRED,
                message: nbns::Message::NameQueryRequest { name: labsrv20 },
            },
        ),
        (
            "scoped name query request",
            nbns::Repr {
                transaction_id: 0x0102,
                flags: nbns::Flags::NONE,
                message: nbns::Message::NameQueryRequest { name: scoped },
            },
        ),
        (
            "positive name query response",
            nbns::Repr {
                transaction_id: 0x0103,
                flags: nbns::Flags::RECURSION_DESIRED,
                message: nbns::Message::PositiveNameQueryResponse {
                    name: labsrv20,
                    ttl: 300_000,
                    entries: nbns::AddrEntries::new(&entries),
                },
            },
        ),
        (
            "negative name query response",
            nbns::Repr {
                transaction_id: 0x0104,
                flags: nbns::Flags::RECURSION_DESIRED,
                message: nbns::Message::NegativeNameQueryResponse {
                    name: name("NOSUCH"),
                    rcode: nbns::Rcode::NameError,
                },
            },
        ),
        (
            "name registration request",
            nbns::Repr {
                transaction_id: 0x0105,
                flags: nbns::Flags::BROADCAST,
                message: nbns::Message::NameRegistrationRequest {
                    kind: nbns::RegistrationKind::Registration,
                    name: labsrv20,
                    ttl: 300_000,
                    entry,
                },
            },
        ),
        (
            "name overwrite demand",
            nbns::Repr {
                transaction_id: 0x0105,
                flags: nbns::Flags::BROADCAST,
                message: nbns::Message::NameRegistrationRequest {
                    kind: nbns::RegistrationKind::Overwrite,
                    name: labsrv20,
                    ttl: 300_000,
                    entry,
                },
            },
        ),
        (
            "name refresh request (opcode 9)",
            nbns::Repr {
                transaction_id: 0x0106,
                flags: nbns::Flags::NONE,
                message: nbns::Message::NameRegistrationRequest {
                    kind: nbns::RegistrationKind::RefreshAlternate,
                    name: labsrv20,
                    ttl: 3600,
                    entry,
                },
            },
        ),
        (
            "multi-homed registration request",
            nbns::Repr {
                transaction_id: 0x0107,
                flags: nbns::Flags::NONE,
                message: nbns::Message::NameRegistrationRequest {
                    kind: nbns::RegistrationKind::MultiHomed,
                    name: labsrv20,
                    ttl: 3600,
                    entry,
                },
            },
        ),
        (
            "negative name registration response (ACT_ERR)",
            nbns::Repr {
                transaction_id: 0x0108,
                flags: nbns::Flags::RECURSION_DESIRED | nbns::Flags::RECURSION_AVAILABLE,
                message: nbns::Message::NameRegistrationResponse {
                    name: labsrv20,
                    rcode: nbns::Rcode::Active,
                    ttl: 0,
                    entry,
                },
            },
        ),
        (
            "refresh response (opcode 8)",
            nbns::Repr {
                transaction_id: 0x0110,
                flags: nbns::Flags::RECURSION_DESIRED | nbns::Flags::RECURSION_AVAILABLE,
                message: nbns::Message::NameRefreshResponse {
                    alternate: false,
                    name: labsrv20,
                    rcode: nbns::Rcode::NoError,
                    ttl: 3600,
                    entry,
                },
            },
        ),
        (
            "end-node challenge",
            nbns::Repr {
                transaction_id: 0x0109,
                flags: nbns::Flags::RECURSION_DESIRED,
                message: nbns::Message::EndNodeChallengeResponse {
                    name: labsrv20,
                    ttl: 3600,
                    entry: group_entry,
                },
            },
        ),
        (
            "name conflict demand",
            nbns::Repr {
                transaction_id: 0x010a,
                flags: nbns::Flags::RECURSION_DESIRED | nbns::Flags::RECURSION_AVAILABLE,
                message: nbns::Message::NameConflictDemand {
                    name: labsrv20,
                    entry,
                },
            },
        ),
        (
            "name release request",
            nbns::Repr {
                transaction_id: 0x010b,
                flags: nbns::Flags::BROADCAST,
                message: nbns::Message::NameReleaseRequest {
                    name: labsrv20,
                    entry,
                },
            },
        ),
        (
            "positive name release response",
            nbns::Repr {
                transaction_id: 0x010c,
                flags: nbns::Flags::NONE,
                message: nbns::Message::NameReleaseResponse {
                    name: labsrv20,
                    rcode: nbns::Rcode::NoError,
                    entry,
                },
            },
        ),
        (
            "WACK",
            nbns::Repr {
                transaction_id: 0x010d,
                flags: nbns::Flags::NONE,
                message: nbns::Message::WaitForAcknowledgement {
                    name: labsrv20,
                    ttl: 60,
                    request_flags: 0x2910,
                },
            },
        ),
        (
            "node status request",
            nbns::Repr {
                transaction_id: 0x010e,
                flags: nbns::Flags::NONE,
                message: nbns::Message::NodeStatusRequest {
                    name: NbName::unscoped(Name::WILDCARD),
                },
            },
        ),
        (
            "node status response",
            nbns::Repr::node_status_response(
                0x010e,
                NbName::unscoped(Name::WILDCARD),
                &node_names,
                statistics,
            ),
        ),
    ];
    reprs
        .into_iter()
        .map(|(what, repr)| {
            let bytes = emit_nbns(&repr);
            let packet = nbns::Packet::new_unchecked(&bytes[..]);
            let mut expect = vec![
                ("nbns.id", hex16(repr.transaction_id)),
                ("nbns.flags", hex16(packet.flags_word())),
                (
                    "nbns.flags.response",
                    u8::from(packet.is_response()).to_string(),
                ),
                ("nbns.flags.opcode", u8::from(packet.opcode()).to_string()),
                (
                    "nbns.flags.broadcast",
                    u8::from(packet.flags().contains(nbns::Flags::BROADCAST)).to_string(),
                ),
                (
                    "nbns.flags.truncated",
                    u8::from(packet.flags().contains(nbns::Flags::TRUNCATED)).to_string(),
                ),
            ];
            if packet.is_response() {
                // tshark shows RCODE for responses only.
                expect.push(("nbns.flags.rcode", u8::from(packet.rcode()).to_string()));
            }
            let mut names = Vec::new();
            let mut types = Vec::new();
            match repr.message {
                nbns::Message::NameQueryRequest { name } => {
                    names.push(nbns_name(&name));
                    types.push("32");
                }
                nbns::Message::NodeStatusRequest { name } => {
                    names.push(nbns_name(&name));
                    types.push("33");
                }
                nbns::Message::NameRegistrationRequest {
                    name, ttl, entry, ..
                } => {
                    names.extend([nbns_name(&name), nbns_name(&name)]);
                    types.extend(["32", "32"]);
                    expect.push(("nbns.ttl", ttl.to_string()));
                    expect.push(("nbns.addr", entry.address.to_string()));
                    expect.push(("nbns.nb_flags", hex16(entry.flags.0)));
                }
                nbns::Message::NameReleaseRequest { name, entry } => {
                    names.extend([nbns_name(&name), nbns_name(&name)]);
                    types.extend(["32", "32"]);
                    expect.push(("nbns.ttl", "0".into()));
                    expect.push(("nbns.addr", entry.address.to_string()));
                }
                nbns::Message::PositiveNameQueryResponse { name, ttl, entries } => {
                    names.push(nbns_name(&name));
                    types.push("32");
                    expect.push(("nbns.ttl", ttl.to_string()));
                    let addrs: Vec<String> =
                        entries.iter().map(|e| e.address.to_string()).collect();
                    expect.push(("nbns.addr", addrs.join(",")));
                    let flags: Vec<String> = entries.iter().map(|e| hex16(e.flags.0)).collect();
                    expect.push(("nbns.nb_flags", flags.join(",")));
                    let groups: Vec<String> = entries
                        .iter()
                        .map(|e| u8::from(e.flags.is_group()).to_string())
                        .collect();
                    expect.push(("nbns.nb_flags.group", groups.join(",")));
                }
                nbns::Message::NegativeNameQueryResponse { name, .. } => {
                    names.push(nbns_name(&name));
                    types.push("10");
                    expect.push(("nbns.data_length", "0".into()));
                }
                nbns::Message::NodeStatusResponse {
                    name,
                    names: list,
                    statistics: s,
                } => {
                    names.push(nbns_name(&name));
                    types.push("33");
                    expect.push(("nbns.number_of_names", list.len().to_string()));
                    let listed: Vec<String> = list
                        .iter()
                        .map(|n| {
                            // tshark lists the name without its suffix here.
                            tshark_base(&n.name)
                        })
                        .collect();
                    expect.push(("nbns.netbios_name", listed.join(",")));
                    let flags: Vec<String> = list.iter().map(|n| hex16(n.flags.0)).collect();
                    expect.push(("nbns.name_flags", flags.join(",")));
                    let bit = |b: u16| {
                        list.iter()
                            .map(|n| u8::from(n.flags.has(b)).to_string())
                            .collect::<Vec<_>>()
                            .join(",")
                    };
                    expect.push(("nbns.name_flags.group", bit(nbns::NameFlags::GROUP)));
                    expect.push(("nbns.name_flags.cnf", bit(nbns::NameFlags::CONFLICT)));
                    expect.push(("nbns.name_flags.drg", bit(nbns::NameFlags::DEREGISTERING)));
                    expect.push(("nbns.name_flags.act", bit(nbns::NameFlags::ACTIVE)));
                    let mac = s.unit_id.map(|b| format!("{b:02x}")).join(":");
                    expect.push(("nbns.unit_id", mac));
                    let counts: [(&str, &dyn ToString); 8] = [
                        ("nbns.num_good_sends", &s.number_good_sends),
                        ("nbns.num_good_receives", &s.number_good_receives),
                        (
                            "nbns.num_no_resource_conditions",
                            &s.number_no_resource_conditions,
                        ),
                        // tshark's shifted labels (see the module comment).
                        ("nbns.numcommand_blocks", &s.number_free_command_blocks),
                        ("nbns.numpending_sessions", &s.total_number_command_blocks),
                        (
                            "nbns.max_num_pending_sessions",
                            &s.max_total_number_command_blocks,
                        ),
                        (
                            "nbns.max_total_sessions_possible",
                            &s.number_pending_sessions,
                        ),
                        (
                            "nbns.session_data_packet_size",
                            &s.max_number_pending_sessions,
                        ),
                    ];
                    expect.extend(counts.map(|(field, value)| (field, value.to_string())));
                }
                nbns::Message::NameRegistrationResponse {
                    name, ttl, entry, ..
                }
                | nbns::Message::NameRefreshResponse {
                    name, ttl, entry, ..
                }
                | nbns::Message::EndNodeChallengeResponse { name, ttl, entry } => {
                    names.push(nbns_name(&name));
                    types.push("32");
                    expect.push(("nbns.ttl", ttl.to_string()));
                    expect.push(("nbns.addr", entry.address.to_string()));
                    expect.push(("nbns.nb_flags.ont", ((entry.flags.0 >> 13) & 3).to_string()));
                }
                nbns::Message::NameConflictDemand { name, entry }
                | nbns::Message::NameReleaseResponse { name, entry, .. } => {
                    names.push(nbns_name(&name));
                    types.push("32");
                    expect.push(("nbns.addr", entry.address.to_string()));
                }
                nbns::Message::WaitForAcknowledgement { name, ttl, .. } => {
                    names.push(nbns_name(&name));
                    types.push("10");
                    expect.push(("nbns.ttl", ttl.to_string()));
                    expect.push(("nbns.data_length", "2".into()));
                }
                nbns::Message::RedirectNameQueryResponse { .. } => unreachable!(),
            }
            expect.push(("nbns.name", names.join(",")));
            expect.push(("nbns.type", types.join(",")));
            Case {
                what: format!("NBNS {what}"),
                frame: udp_frame(137, 137, &bytes),
                expect,
            }
        })
        .collect()
}

fn nbss_cases() -> Vec<Case> {
    let called = name("LABSRV#20");
    let calling = name("CLIENT");
    let mut reprs: Vec<(String, nbss::Repr, Vec<u8>)> = vec![
        (
            "session request".into(),
            nbss::Repr::SessionRequest { called, calling },
            vec![],
        ),
        (
            "session request to *SMBSERVER".into(),
            nbss::Repr::SessionRequest {
                called: name("*SMBSERVER#20"),
                calling,
            },
            vec![],
        ),
        (
            "positive session response".into(),
            nbss::Repr::PositiveResponse,
            vec![],
        ),
        (
            "retarget session response".into(),
            nbss::Repr::RetargetResponse {
                address: Ipv4Address::new(192, 168, 69, 2),
                port: 1139,
            },
            vec![],
        ),
        ("keepalive".into(), nbss::Repr::KeepAlive, vec![]),
        (
            "session message".into(),
            nbss::Repr::SessionMessage { length: 11 },
            b"hello netbt".to_vec(),
        ),
    ];
    for code in [0x80u8, 0x81, 0x82, 0x83, 0x8f] {
        reprs.push((
            format!("negative session response {code:#x}"),
            nbss::Repr::NegativeResponse {
                code: nbss::NegativeCode::from(code),
            },
            vec![],
        ));
    }
    reprs
        .into_iter()
        .enumerate()
        .map(|(i, (what, repr, payload))| {
            let bytes = emit_nbss(&repr, &payload);
            let mut expect = vec![
                ("nbss.type", format!("0x{:02x}", u8::from(repr.msg_type()))),
                ("nbss.length", repr.body_len().to_string()),
                ("nbss.flags.e", "0".into()),
            ];
            match repr {
                nbss::Repr::SessionRequest { called, calling } => {
                    expect.push(("nbss.called_name", nbss_name(&called)));
                    expect.push(("nbss.calling_name", nbss_name(&calling)));
                }
                nbss::Repr::NegativeResponse { code } => {
                    expect.push(("nbss.error_code", format!("0x{:02x}", u8::from(code))));
                }
                nbss::Repr::RetargetResponse { address, port } => {
                    expect.push(("nbss.retarget_ip_address", address.to_string()));
                    expect.push(("nbss.retarget_port", port.to_string()));
                }
                _ => {}
            }
            Case {
                what: format!("NBSS {what}"),
                frame: tcp_frame(40000 + i as u16, &bytes),
                expect,
            }
        })
        .collect()
}

/// How tshark shows a session request name.
fn nbss_name(name: &NbName) -> String {
    nbns_name(name)
}

fn nbds_cases() -> Vec<Case> {
    let source = name("LABSRV");
    let destination = name("LABGRP#1e");
    let datagram = nbds::Datagram {
        source_name: source,
        destination_name: destination,
        packet_offset: 0,
        user_data: b"browse announcement",
    };
    let flags = nbds::Flags {
        more: false,
        first: true,
        node_type: nbds::NodeType::B,
    };
    let messages: Vec<(&str, nbds::Message)> = vec![
        ("direct unique", nbds::Message::DirectUnique(datagram)),
        ("direct group", nbds::Message::DirectGroup(datagram)),
        ("broadcast", nbds::Message::Broadcast(datagram)),
        (
            "error",
            nbds::Message::Error {
                code: nbds::ErrorCode::DestinationNameNotPresent,
            },
        ),
        (
            "query request",
            nbds::Message::QueryRequest { name: destination },
        ),
        (
            "positive query response",
            nbds::Message::PositiveQueryResponse { name: destination },
        ),
        (
            "negative query response",
            nbds::Message::NegativeQueryResponse { name: destination },
        ),
    ];
    messages
        .into_iter()
        .enumerate()
        .map(|(i, (what, message))| {
            let repr = nbds::Repr {
                datagram_id: 0x4200 + i as u16,
                flags,
                source_ip: SERVER,
                source_port: 138,
                message,
            };
            let bytes = emit_nbds(&repr);
            let mut expect = vec![
                ("nbdgm.type", u8::from(message.msg_type()).to_string()),
                ("nbdgm.dgram_id", hex16(repr.datagram_id)),
                ("nbdgm.src.ip", SERVER.to_string()),
                ("nbdgm.src.port", "138".into()),
                ("nbdgm.first", "1".into()),
                ("nbdgm.next", "0".into()),
                ("nbdgm.node_type", "0".into()),
            ];
            match message {
                nbds::Message::DirectUnique(d)
                | nbds::Message::DirectGroup(d)
                | nbds::Message::Broadcast(d) => {
                    expect.push(("nbdgm.dgram_len", d.body_len().to_string()));
                    expect.push(("nbdgm.pkt_offset", d.packet_offset.to_string()));
                    expect.push(("nbdgm.source_name", nbns_name(&d.source_name)));
                    expect.push(("nbdgm.destination_name", nbns_name(&d.destination_name)));
                }
                nbds::Message::Error { code } => {
                    expect.push(("nbdgm.error_code", format!("0x{:02x}", u8::from(code))));
                }
                nbds::Message::QueryRequest { name }
                | nbds::Message::PositiveQueryResponse { name }
                | nbds::Message::NegativeQueryResponse { name } => {
                    expect.push(("nbdgm.destination_name", nbns_name(&name)));
                }
            }
            Case {
                what: format!("NBDS {what}"),
                frame: udp_frame(138, 138, &bytes),
                expect,
            }
        })
        .collect()
}

/// The datagrams the datagram service and the browse announcer emit: a HostAnnouncement (and
/// the shutdown one, type 0) and a mailslot write of user data, each in a DIRECT_GROUP datagram
/// as the node sends it; tshark's SMB, mailslot and browser dissectors must show our fields.
fn browser_cases() -> Vec<Case> {
    let announcement = |server_type: browser::ServerType| {
        browser::Repr::HostAnnouncement(browser::Announcement {
            update_count: 0,
            periodicity_ms: 720_000,
            server_name: b"LABSRV",
            os_version: (6, 1),
            server_type,
            browser_version: browser::BROWSER_VERSION,
            signature: browser::SIGNATURE,
            comment: b"netbt 0.1.0",
        })
    };
    let mut cases = Vec::new();
    let frames = [
        ("HostAnnouncement", announcement(browser::ServerType::NETBT)),
        (
            "HostAnnouncement at shutdown",
            announcement(browser::ServerType(0)),
        ),
    ];
    for (i, (what, frame)) in frames.into_iter().enumerate() {
        let mut bytes = vec![0u8; frame.buffer_len()];
        frame.emit(&mut bytes);
        let server_type = match frame {
            browser::Repr::HostAnnouncement(a) => a.server_type.0,
            _ => unreachable!(),
        };
        let datagram =
            mailslot_datagram(0x5100 + i as u16, "LABGRP#1d", smb_mailslot::BROWSE, &bytes);
        cases.push(Case {
            what: what.to_string(),
            frame: udp_frame(138, 138, &datagram),
            expect: vec![
                ("nbdgm.type", "17".into()),
                ("nbdgm.destination_name", "LABGRP<1d>".into()),
                ("smb.cmd", "0x25".into()),
                ("mailslot.opcode", "1".into()),
                ("mailslot.priority", "1".into()),
                ("mailslot.class", "2".into()),
                ("mailslot.name", "\\MAILSLOT\\BROWSE".into()),
                ("browser.command", "0x01".into()),
                ("browser.update_count", "0".into()),
                ("browser.period", "720000".into()),
                ("browser.server", "LABSRV".into()),
                ("browser.server_type", format!("0x{server_type:08x}")),
                ("browser.server_type.browser.potential", "0".into()),
                ("browser.server_type.browser.master", "0".into()),
                ("browser.comment", "netbt 0.1.0".into()),
            ],
        });
    }
    let datagram = mailslot_datagram(0x5200, "OTHER#20", b"\\MAILSLOT\\LAB", b"hello from netbt");
    cases.push(Case {
        what: "mailslot write of user data".to_string(),
        frame: udp_frame(138, 138, &datagram),
        expect: vec![
            ("nbdgm.type", "17".into()),
            ("smb.cmd", "0x25".into()),
            ("mailslot.opcode", "1".into()),
            ("mailslot.name", "\\MAILSLOT\\LAB".into()),
        ],
    });
    cases
}

/// A DIRECT_GROUP datagram from LABSRV<00> to `to` carrying a mailslot write.
fn mailslot_datagram(id: u16, to: &str, mailslot: &[u8], data: &[u8]) -> Vec<u8> {
    let write = smb_mailslot::Repr::new(mailslot, data);
    let mut user_data = vec![0u8; write.buffer_len()];
    write.emit(&mut smb_mailslot::Packet::new_unchecked(&mut user_data[..]));
    emit_nbds(&nbds::Repr {
        datagram_id: id,
        flags: nbds::Flags::unfragmented(nbds::NodeType::B),
        source_ip: SERVER,
        source_port: 138,
        message: nbds::Message::DirectGroup(nbds::Datagram {
            source_name: name("LABSRV"),
            destination_name: name(to),
            packet_offset: 0,
            user_data: &user_data,
        }),
    })
}

/// tshark appends the suffix's meaning to NB record names (`LABSRV<20> (Server service)`);
/// drop it from every aggregated value so the name itself is compared.
fn strip_descriptions(value: &str) -> String {
    value
        .split(',')
        .map(|v| match v.find(" (") {
            Some(at) if v.ends_with(')') => &v[..at],
            _ => v,
        })
        .collect::<Vec<_>>()
        .join(",")
}

fn tshark_available() -> bool {
    Command::new("tshark").arg("--version").output().is_ok()
}

#[test]
fn tshark_decodes_every_emitted_packet_as_emitted() {
    if !tshark_available() {
        if std::env::var_os("NETBT_SKIP_TSHARK").is_some() {
            eprintln!("tshark not installed: test skipped (NETBT_SKIP_TSHARK is set)");
            return;
        }
        panic!("tshark is not installed: run scripts/test.sh or apt-get install tshark");
    }
    let cases: Vec<Case> = nbns_cases()
        .into_iter()
        .chain(nbss_cases())
        .chain(nbds_cases())
        .chain(browser_cases())
        .collect();

    let dir = std::env::temp_dir().join(format!("netbt-tshark-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let pcap = dir.join("emitted.pcap");
    let mut sink = std::fs::File::create(&pcap).unwrap();
    sink.global_header(PcapLinkType::Ethernet);
    for (i, case) in cases.iter().enumerate() {
        sink.packet(Instant::from_millis(i as i64 * 10), &case.frame);
    }
    drop(sink);

    let mut fields: Vec<&str> = vec![
        "frame.number",
        "_ws.malformed",
        "_ws.expert.severity",
        "nbss.continuation_data",
        "_ws.col.Info",
    ];
    for case in &cases {
        for (field, _) in &case.expect {
            if !fields.contains(field) {
                fields.push(field);
            }
        }
    }
    let mut command = Command::new("tshark");
    command.args(["-n", "-r"]).arg(&pcap).args([
        "-T",
        "fields",
        "-E",
        "separator=\t",
        "-E",
        "occurrence=a",
        "-E",
        "aggregator=,",
    ]);
    for field in &fields {
        command.args(["-e", field]);
    }
    let output = command.output().expect("run tshark");
    assert!(
        output.status.success(),
        "tshark failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8(output.stdout).unwrap();
    let rows: Vec<BTreeMap<&str, &str>> = stdout
        .lines()
        .map(|line| fields.iter().copied().zip(line.split('\t')).collect())
        .collect();
    assert_eq!(
        rows.len(),
        cases.len(),
        "one decoded row per frame:\n{stdout}"
    );

    let mut problems = Vec::new();
    for (case, row) in cases.iter().zip(&rows) {
        let info = row.get("_ws.col.Info").copied().unwrap_or("");
        for flagged in ["_ws.malformed", "nbss.continuation_data"] {
            if !row.get(flagged).copied().unwrap_or("").is_empty() {
                problems.push(format!("{}: tshark flags {flagged} ({info})", case.what));
            }
        }
        // Expert severity: 8388608 = error (4194304 warning, 2097152 note, 1048576 chat).
        let severities = row.get("_ws.expert.severity").copied().unwrap_or("");
        if severities.split(',').any(|s| s == "8388608") {
            problems.push(format!("{}: tshark reports an error ({info})", case.what));
        }
        if info.contains("Continuation") || info.contains("Malformed") {
            problems.push(format!("{}: Info column says {info}", case.what));
        }
        for (field, expected) in &case.expect {
            let got = row.get(field).copied().unwrap_or("");
            let got = &strip_descriptions(got);
            if got != expected {
                problems.push(format!(
                    "{}: {field} = {got:?}, emitted {expected:?}",
                    case.what
                ));
            }
        }
    }
    std::fs::remove_dir_all(&dir).ok();
    assert!(
        problems.is_empty(),
        "tshark disagrees with what we emitted:\n{}\n\ntshark output:\n{stdout}",
        problems.join("\n")
    );
}
