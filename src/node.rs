//! The node: smoltcp's interface and sockets, and the NetBIOS services on top of them.
//!
//! Storage is handed in by the caller: a socket table and the socket buffers (static arrays on
//! a microcontroller; allocated once at start-up by the daemon). Nothing is allocated after
//! [`Node::new`]. One [`Node::poll`] does all pending work and returns when it next needs to be
//! called.

use smoltcp::iface::{Config, Interface, SocketHandle, SocketSet, SocketStorage};
use smoltcp::phy::Device;
use smoltcp::socket::udp;
use smoltcp::time::Instant;
use smoltcp::wire::{
    EthernetAddress, HardwareAddress, IpAddress, IpCidr, IpEndpoint, Ipv4Address, Ipv4Cidr,
};

use crate::name_service::{Destination, NameService, NameServiceConfig, Received};
use crate::wire::name::Scope;
use crate::wire::{NAME_SERVICE_PORT, nbns};

/// Datagrams queued per direction on a UDP service socket.
pub const UDP_PACKETS: usize = 16;
/// Payload bytes per direction on a UDP service socket.
pub const UDP_BYTES: usize = 8 * 1024;
/// Largest datagram the node reads (RFC 1002 packets are at most 576 bytes; longer ones are
/// dropped as malformed).
const DATAGRAM_MAX: usize = 1024;

/// Sockets the node needs in its socket table.
pub const SOCKETS: usize = 1;

/// Buffers of one UDP service socket.
pub struct UdpBuffers {
    rx_meta: [udp::PacketMetadata; UDP_PACKETS],
    rx: [u8; UDP_BYTES],
    tx_meta: [udp::PacketMetadata; UDP_PACKETS],
    tx: [u8; UDP_BYTES],
}

impl UdpBuffers {
    /// Empty buffers (usable in a `static`).
    pub const fn new() -> UdpBuffers {
        UdpBuffers {
            rx_meta: [udp::PacketMetadata::EMPTY; UDP_PACKETS],
            rx: [0; UDP_BYTES],
            tx_meta: [udp::PacketMetadata::EMPTY; UDP_PACKETS],
            tx: [0; UDP_BYTES],
        }
    }

    fn socket(&mut self) -> udp::Socket<'_> {
        udp::Socket::new(
            udp::PacketBuffer::new(&mut self.rx_meta[..], &mut self.rx[..]),
            udp::PacketBuffer::new(&mut self.tx_meta[..], &mut self.tx[..]),
        )
    }
}

impl Default for UdpBuffers {
    fn default() -> Self {
        Self::new()
    }
}

/// Every buffer the node's sockets use.
#[derive(Default)]
pub struct NodeBuffers {
    name_service: UdpBuffers,
}

impl NodeBuffers {
    /// Empty buffers (usable in a `static`).
    pub const fn new() -> NodeBuffers {
        NodeBuffers {
            name_service: UdpBuffers::new(),
        }
    }
}

/// How the node sits on its network.
#[derive(Debug, Clone, Copy)]
pub struct NodeConfig {
    /// Ethernet address.
    pub mac: [u8; 6],
    /// IPv4 address and subnet.
    pub address: Ipv4Cidr,
    /// Default gateway, if any.
    pub gateway: Option<Ipv4Address>,
    /// NetBIOS scope of all names.
    pub scope: Scope,
    /// Report a zero UNIT_ID in node status instead of the MAC.
    pub hide_mac: bool,
    /// Entropy for smoltcp's initial sequence numbers and our transaction ids.
    pub seed: u64,
}

/// Why a node could not be built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeError {
    /// The socket table has fewer than [`SOCKETS`] free entries.
    SocketTableTooSmall,
    /// The address could not be configured.
    BadAddress,
}

/// A NetBIOS node on one Ethernet interface.
pub struct Node<'a> {
    iface: Interface,
    sockets: SocketSet<'a>,
    name_socket: SocketHandle,
    /// The name service (register names before the first poll).
    pub names: NameService,
    scratch: [u8; DATAGRAM_MAX],
}

impl<'a> Node<'a> {
    /// Builds the node on `device` with the storage given.
    pub fn new<D: Device + ?Sized>(
        config: NodeConfig,
        device: &mut D,
        table: &'a mut [SocketStorage<'a>],
        buffers: &'a mut NodeBuffers,
        now: Instant,
    ) -> Result<Node<'a>, NodeError> {
        if table.len() < SOCKETS {
            return Err(NodeError::SocketTableTooSmall);
        }
        let mut iface_config = Config::new(HardwareAddress::Ethernet(EthernetAddress(config.mac)));
        iface_config.random_seed = config.seed;
        let mut iface = Interface::new(iface_config, device, now);
        let mut ok = true;
        iface.update_ip_addrs(|addrs| {
            ok = addrs.push(IpCidr::Ipv4(config.address)).is_ok();
        });
        if !ok {
            return Err(NodeError::BadAddress);
        }
        if let Some(gateway) = config.gateway {
            iface
                .routes_mut()
                .add_default_ipv4_route(gateway)
                .map_err(|_| NodeError::BadAddress)?;
        }
        let mut sockets = SocketSet::new(table);
        let mut name_socket = buffers.name_service.socket();
        name_socket
            .bind(NAME_SERVICE_PORT)
            .map_err(|_| NodeError::BadAddress)?;
        let name_socket = sockets.add(name_socket);
        let names = NameService::new(
            NameServiceConfig {
                address: config.address,
                mac: config.mac,
                hide_mac: config.hide_mac,
                scope: config.scope,
            },
            config.seed.rotate_left(17),
        );
        Ok(Node {
            iface,
            sockets,
            name_socket,
            names,
            scratch: [0; DATAGRAM_MAX],
        })
    }

    /// Our IPv4 address.
    pub fn address(&self) -> Ipv4Address {
        match self.iface.ipv4_addr() {
            Some(address) => address,
            None => Ipv4Address::UNSPECIFIED,
        }
    }

    /// Does everything due at `now`: frames in, services, timers, frames out. Returns when to
    /// call again at the latest (`None`: only when a frame arrives).
    pub fn poll<D: Device + ?Sized>(&mut self, now: Instant, device: &mut D) -> Option<Instant> {
        self.iface.poll(now, device, &mut self.sockets);
        self.service_names(now);
        self.iface.poll_egress(now, device, &mut self.sockets);
        let next = self.iface.poll_at(now, &self.sockets);
        match (next, self.names.poll_at()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn service_names(&mut self, now: Instant) {
        // Receive everything queued, replying as we go; the scratch copy frees the socket for
        // the replies.
        loop {
            let socket = self.sockets.get_mut::<udp::Socket>(self.name_socket);
            let (len, meta) = match socket.recv_slice(&mut self.scratch) {
                Ok(got) => got,
                // Longer than any name service packet: smoltcp has dequeued it; count it.
                Err(udp::RecvError::Truncated) => {
                    self.names.count_oversized();
                    continue;
                }
                Err(udp::RecvError::Exhausted) => break,
            };
            let (IpAddress::Ipv4(source), Some(IpAddress::Ipv4(destination))) =
                (meta.endpoint.addr, meta.local_address)
            else {
                continue;
            };
            let from = Received {
                source: Destination {
                    address: source,
                    port: meta.endpoint.port,
                },
                destination,
            };
            self.names
                .receive(&self.scratch[..len], from, &mut |to, repr| {
                    send_to(socket, to, repr)
                });
        }
        let socket = self.sockets.get_mut::<udp::Socket>(self.name_socket);
        self.names
            .poll(now, &mut |to, repr| send_to(socket, to, repr));
    }
}

/// Queues `repr` for `to` on `socket`, with the source address chosen by smoltcp (our unicast
/// address, never the broadcast address a request came to).
fn send_to(socket: &mut udp::Socket, to: Destination, repr: &nbns::Repr) {
    let endpoint = IpEndpoint::new(to.address.into(), to.port);
    match socket.send(repr.buffer_len(), endpoint) {
        Ok(buffer) => repr.emit(&mut nbns::Packet::new_unchecked(buffer)),
        Err(_) => net_debug!(
            "name service: send queue full, packet to {} dropped",
            to.address
        ),
    }
}
