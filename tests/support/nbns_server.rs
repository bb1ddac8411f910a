//! A scripted NBNS (WINS) server for the in-process tests: a [`Peer`] with a UDP socket on
//! port 137 that logs every datagram and answers each unicast request as its script says (or
//! not at all).

use netbt::wire::NAME_SERVICE_PORT;
use netbt::wire::nbns::{self, Flags, Message, Rcode, Repr};
use smoltcp::iface::SocketHandle;
use smoltcp::time::Instant;
use smoltcp::wire::{IpAddress, Ipv4Address};

use super::{Hub, Peer, Station};

/// How the server answers one request: the datagrams it sends back to the request's source
/// (none: silence).
pub type Script = Box<dyn FnMut(&Repr<'_>) -> Vec<Vec<u8>>>;

/// A received request: when, from where, its bytes.
#[derive(Debug, Clone)]
pub struct Logged {
    /// When it arrived.
    pub at: Instant,
    /// Its source address.
    pub from: Ipv4Address,
    /// Its bytes.
    pub bytes: Vec<u8>,
}

impl Logged {
    /// The request, parsed.
    #[track_caller]
    pub fn repr(&self) -> Repr<'_> {
        Repr::parse(&nbns::Packet::new_checked(&self.bytes[..]).unwrap()).unwrap()
    }

    /// The flags word (opcode, NM_FLAGS, RCODE).
    pub fn flags_word(&self) -> u16 {
        u16::from_be_bytes([self.bytes[2], self.bytes[3]])
    }
}

/// The server.
pub struct ScriptedNbns {
    /// Its smoltcp side.
    pub peer: Peer,
    socket: SocketHandle,
    /// What it answers.
    pub script: Script,
    /// Every datagram it received.
    pub log: Vec<Logged>,
}

impl ScriptedNbns {
    /// A server at `address` answering as `script` says.
    pub fn new(hub: &Hub, mac: [u8; 6], address: Ipv4Address, script: Script) -> ScriptedNbns {
        let mut peer = Peer::new(hub, mac, address);
        let socket = peer.udp(NAME_SERVICE_PORT);
        ScriptedNbns {
            peer,
            socket,
            script,
            log: Vec::new(),
        }
    }

    /// Sends `bytes` to port 137 of `to` (a challenge, say).
    pub fn send(&mut self, to: Ipv4Address, bytes: &[u8]) {
        self.peer
            .send_to(self.socket, (to, NAME_SERVICE_PORT), bytes);
    }

    /// Datagrams received on the socket that are responses (answers to what it sent).
    pub fn responses(&self) -> Vec<&Logged> {
        self.log.iter().filter(|l| l.bytes[2] & 0x80 != 0).collect()
    }

    /// Unicast requests received (the B bit clear), in order.
    pub fn requests(&self) -> Vec<&Logged> {
        self.log
            .iter()
            .filter(|l| l.bytes[2] & 0x80 == 0 && l.flags_word() & 0x0010 == 0)
            .collect()
    }
}

impl Station for ScriptedNbns {
    fn poll(&mut self, now: Instant) {
        self.peer.poll(now);
        for (source, bytes) in self.peer.received(self.socket) {
            let IpAddress::Ipv4(from) = source.addr;
            self.log.push(Logged {
                at: now,
                from,
                bytes: bytes.clone(),
            });
            let Ok(repr) = Repr::parse(&nbns::Packet::new_unchecked(&bytes[..])) else {
                continue;
            };
            // Responses are logged only; broadcasts are not for a WINS server (Samba: B=1 is
            // not WINS).
            if repr.message.is_response() || repr.flags.contains(Flags::BROADCAST) {
                continue;
            }
            for reply in (self.script)(&repr) {
                self.peer.send_to(self.socket, (from, source.port), &reply);
            }
        }
        self.peer.poll(now);
    }
}

/// Emits `repr`.
pub fn emit(repr: &Repr) -> Vec<u8> {
    let mut bytes = vec![0; repr.buffer_len()];
    repr.emit(&mut nbns::Packet::new_unchecked(&mut bytes[..]));
    bytes
}

/// What Samba's WINS server answers to a registration, refresh or release: opcode 5 (6 for a
/// release), AA RD RA, the request's entry, `ttl` granted; `rcode` for the answer.
pub fn samba_answer(request: &Repr<'_>, rcode: Rcode, ttl: u32) -> Option<Vec<u8>> {
    let flags = Flags::RECURSION_DESIRED | Flags::RECURSION_AVAILABLE;
    let message = match request.message {
        Message::NameRegistrationRequest { name, entry, .. } => Message::NameRegistrationResponse {
            name,
            rcode,
            ttl,
            entry,
        },
        Message::NameReleaseRequest { name, entry } => {
            Message::NameReleaseResponse { name, rcode, entry }
        }
        _ => return None,
    };
    Some(emit(&Repr {
        transaction_id: request.transaction_id,
        flags,
        message,
    }))
}

/// A WACK for `request`, asking to wait `ttl` seconds (Samba: 60).
pub fn wack(request: &Repr<'_>, flags_word: u16, ttl: u32) -> Vec<u8> {
    emit(&Repr {
        transaction_id: request.transaction_id,
        flags: Flags::NONE,
        message: Message::WaitForAcknowledgement {
            name: *request.message.name().unwrap(),
            ttl,
            request_flags: flags_word,
        },
    })
}
