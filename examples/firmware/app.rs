//! The firmware proper: static storage, the node, the main loop.

use core::cell::UnsafeCell;
use core::mem::MaybeUninit;
use core::panic::PanicInfo;
use core::sync::atomic::{AtomicBool, Ordering};

use cortex_m_rt::{ExceptionFrame, entry, exception};
use netbt::datagram_service::Delivery;
use netbt::gate::{ClosedConnection, HeldSyn};
use netbt::name_service::{NameEvent, OwnedName, WinsEvent};
use netbt::node::{
    MIN_SCRATCH, Node, NodeConfig, NodeStorage, RefusalBuffers, UdpStorage, sockets_needed,
};
use netbt::session::{Route, SessionConfig, SessionEvent, Shard, Slot, routes_for, shards_for};
use netbt::wire::name::{Name, Scope};
use smoltcp::iface::SocketStorage;
use smoltcp::socket::udp::PacketMetadata;
use smoltcp::wire::{Ipv4Address, Ipv4Cidr};

use crate::clock::Clock;
use crate::lan9118;
use crate::uart::init_logger;

/// Session slots (`NETBT_FW_SESSIONS` at build time; `scripts/firmware.sh build` builds with
/// one more to measure what a slot costs).
const SESSIONS: usize = parse_count(option_env!("NETBT_FW_SESSIONS"), 2);
/// Refusal slots: they answer 0x83 while every session slot is busy.
const REFUSALS: usize = 1;
/// Ledger entries.
const SLOTS: usize = SESSIONS + REFUSALS;
/// Receive and send buffer of each session slot (the TCP window; the echo handler streams
/// messages of any length through it).
const SESSION_BUFFER: usize = 2048;
/// SYNs kept while no session slot is free (about 170 bytes each).
const SYN_BACKLOG: usize = 4;
/// Entries of the gate's record of recently closed connections (16 bytes each).
const CLOSED_RECORD: usize = 8;
/// Datagrams queued per direction on UDP 138.
const DATAGRAMS: usize = 4;
/// Datagrams for our names kept for the application (about 560 bytes each; the loop logs and
/// drops them after every poll).
const DELIVERIES_KEPT: usize = 2;
/// Payload bytes per direction on UDP 138: two datagrams of the largest size (576).
const DATAGRAM_BYTES: usize = 2 * 576;
/// Name service packets received and queued (UDP 137): the node answers each received one
/// before it reads the next frame, so a few suffice.
const NAME_RX_PACKETS: usize = 4;
/// Name service bytes received: one packet of the largest size (576) and smaller ones (the
/// queue is emptied after every frame).
const NAME_RX_BYTES: usize = 1024;
/// Name service packets queued to send: one poll's registrations, refreshes and answers.
const NAME_TX_PACKETS: usize = 8;
/// Name service bytes queued to send: two packets of the largest size (a poll's registrations
/// are under 100 bytes each).
const NAME_TX_BYTES: usize = 2 * 576;
/// Name service events kept until the loop takes them (after every poll; 28 bytes each).
const NAME_EVENTS: usize = 8;
/// Session events kept until the loop takes them (after every poll; 48 bytes each).
const SESSION_EVENTS: usize = 8;
/// Scratch memory: received datagrams are read into it, the echo handler copies through it.
const SCRATCH: usize = MIN_SCRATCH;

const MAC: [u8; 6] = [0x02, 0x00, 0x00, 0x00, 0x00, 0x01];
const ADDRESS: Ipv4Cidr = Ipv4Cidr::new(Ipv4Address::new(192, 168, 69, 1), 24);
const NAME: &str = "NETBT";
/// The workgroup the firmware registers (group `<00>`) and announces itself in to the master
/// browser (`NETBT_FW_WORKGROUP` at build time; empty: none, no announcements).
const WORKGROUP: &str = match option_env!("NETBT_FW_WORKGROUP") {
    Some(workgroup) => workgroup,
    None => "WORKGROUP",
};
/// The comment the browse list shows.
const COMMENT: &str = concat!("netbt firmware ", env!("CARGO_PKG_VERSION"));
/// The LAN9118 of mps2-an385, registers at 0x4020_0000.
type Lan9118 = lan9118::Lan9118<0x4020_0000>;
/// How long the firmware waits for a first frame to time (entropy) before it starts.
// (u32: the log prints it without 64-bit formatting.)
const SEED_WAIT_MS: u32 = 2000;
/// A line with the counters at most this often (and after each session event).
const STATUS_EVERY_MS: u64 = 60_000;

/// A decimal count from the build environment, or `default`.
const fn parse_count(text: Option<&str>, default: usize) -> usize {
    let Some(text) = text else {
        return default;
    };
    let bytes = text.as_bytes();
    if bytes.is_empty() {
        return default;
    }
    let mut value = 0;
    let mut i = 0;
    while i < bytes.len() {
        assert!(bytes[i].is_ascii_digit(), "NETBT_FW_SESSIONS: not a number");
        value = value * 10 + (bytes[i] - b'0') as usize;
        i += 1;
    }
    assert!(value > 0, "NETBT_FW_SESSIONS: at least one session slot");
    value
}

// A WINS server needs the library's WINS client (scripts/firmware.sh adds the feature).
#[cfg(not(feature = "wins"))]
const _: () = assert!(
    option_env!("NETBT_FW_WINS").is_none(),
    "NETBT_FW_WINS needs --features wins"
);

/// The WINS server (`NETBT_FW_WINS` at build time, an IPv4 address): with one the firmware is
/// an H-node that registers its names there; without, a B-node.
#[cfg(feature = "wins")]
fn wins_server() -> Option<Ipv4Address> {
    let text = option_env!("NETBT_FW_WINS")?;
    if text.is_empty() {
        return None;
    }
    match text.parse() {
        Ok(address) => Some(address),
        Err(_) => fatal!("NETBT_FW_WINS: not an IPv4 address"),
    }
}

// All storage is static: nothing is allocated, ever. Each static is taken exactly once, at
// start-up, as a `&'static mut`. The empty values of the socket table, of the UDP packet
// metadata, of the event queues and of the ledger are not all zeros: they are filled in place
// at start-up, entry by entry, rather than kept as an image in flash (.data) or built as a
// temporary on the stack. Everything else is zeros (.bss). The node itself is built in place,
// in `NODE`.
static SOCKETS: Once<MaybeUninit<[SocketStorage<'static>; sockets_needed(SLOTS)]>> =
    Once::new(MaybeUninit::uninit());
static NAME_RX_META: Once<MaybeUninit<[PacketMetadata; NAME_RX_PACKETS]>> =
    Once::new(MaybeUninit::uninit());
static NAME_RX: Once<[u8; NAME_RX_BYTES]> = Once::new([0; NAME_RX_BYTES]);
static NAME_TX_META: Once<MaybeUninit<[PacketMetadata; NAME_TX_PACKETS]>> =
    Once::new(MaybeUninit::uninit());
static NAME_TX: Once<[u8; NAME_TX_BYTES]> = Once::new([0; NAME_TX_BYTES]);
static DATAGRAM_RX_META: Once<MaybeUninit<[PacketMetadata; DATAGRAMS]>> =
    Once::new(MaybeUninit::uninit());
static DATAGRAM_RX: Once<[u8; DATAGRAM_BYTES]> = Once::new([0; DATAGRAM_BYTES]);
static DATAGRAM_TX_META: Once<MaybeUninit<[PacketMetadata; DATAGRAMS]>> =
    Once::new(MaybeUninit::uninit());
static DATAGRAM_TX: Once<[u8; DATAGRAM_BYTES]> = Once::new([0; DATAGRAM_BYTES]);
static SCRATCH_MEMORY: Once<[u8; SCRATCH]> = Once::new([0; SCRATCH]);
static NAME_EVENT_QUEUE: Once<MaybeUninit<[Option<NameEvent>; NAME_EVENTS]>> =
    Once::new(MaybeUninit::uninit());
static SESSION_EVENT_QUEUE: Once<MaybeUninit<[Option<SessionEvent>; SESSION_EVENTS]>> =
    Once::new(MaybeUninit::uninit());
static DELIVERIES: Once<[Delivery; DELIVERIES_KEPT]> =
    Once::new([Delivery::EMPTY; DELIVERIES_KEPT]);
static SESSION_MEMORY: Once<[u8; 2 * SESSION_BUFFER * SESSIONS]> =
    Once::new([0; 2 * SESSION_BUFFER * SESSIONS]);
static REFUSAL_BUFFERS: Once<[RefusalBuffers; REFUSALS]> =
    Once::new([const { RefusalBuffers::new() }; REFUSALS]);
static LEDGER: Once<MaybeUninit<[Slot; SLOTS]>> = Once::new(MaybeUninit::uninit());
static SHARDS: Once<[Shard<'static>; shards_for(SESSIONS, REFUSALS)]> =
    Once::new([const { Shard::EMPTY }; shards_for(SESSIONS, REFUSALS)]);
static ROUTES: Once<[Route; routes_for(SLOTS)]> = Once::new([Route::EMPTY; routes_for(SLOTS)]);
static BACKLOG: Once<[HeldSyn; SYN_BACKLOG]> = Once::new([HeldSyn::EMPTY; SYN_BACKLOG]);
static CLOSED: Once<[ClosedConnection; CLOSED_RECORD]> =
    Once::new([ClosedConnection::EMPTY; CLOSED_RECORD]);
static DEVICE: Once<Lan9118> = Once::new(Lan9118::new());
static NODE: Once<MaybeUninit<Node<'static>>> = Once::new(MaybeUninit::uninit());

/// A static handed out once, as `&'static mut`, at start-up (a second take halts).
struct Once<T> {
    value: UnsafeCell<T>,
    taken: AtomicBool,
}

// SAFETY: the value is reachable only through the one `&'static mut` that `take` hands out.
unsafe impl<T> Sync for Once<T> {}

impl<T> Once<T> {
    const fn new(value: T) -> Once<T> {
        Once {
            value: UnsafeCell::new(value),
            taken: AtomicBool::new(false),
        }
    }

    // One `&mut` from a shared static is the point; `taken` makes it the only one.
    #[allow(clippy::mut_from_ref)]
    fn take(&'static self) -> &'static mut T {
        claim(&self.taken);
        // SAFETY: first and only take (checked by `claim`): no other reference exists.
        unsafe { &mut *self.value.get() }
    }
}

/// Marks a [`Once`] taken, or halts if it already was. Not inlined: one copy of the atomic
/// swap and its branch for all the statics `start` takes.
#[inline(never)]
fn claim(taken: &AtomicBool) {
    if taken.swap(true, Ordering::AcqRel) {
        fatal!("a static was taken twice");
    }
}

#[entry]
fn main() -> ! {
    stack::paint();
    init_logger();
    let Some(core) = cortex_m::Peripherals::take() else {
        fatal!("core peripherals taken twice");
    };
    let mut clock = Clock::start(core.SYST);
    let (node, device) = start(&mut clock);
    // Note the start-up stack peak (the node is built in place, one part at a time), then
    // paint again to measure the loop alone.
    let startup_stack = stack::used();
    stack::paint();
    info!(
        "{} ({}), registering {} names; node {} bytes, statics {} bytes, start-up stack {} bytes",
        ADDRESS,
        Mac(&MAC),
        node.names.names().len(),
        core::mem::size_of::<Node>(),
        stack::static_ram(),
        startup_stack
    );
    node.names.start(clock.now());

    let mut announced = false;
    let mut status_at = STATUS_EVERY_MS;
    let mut next = Some(clock.now());
    loop {
        let ms = clock.millis();
        let now = clock.now();
        let due = next.is_some_and(|at| at <= now);
        if !due && !device.frame_waiting() && ms < status_at {
            // SysTick wakes us every millisecond; a frame waits at most that long.
            cortex_m::asm::wfi();
            continue;
        }
        next = node.poll(now, device);
        let mut changed = report_name_events(node);
        changed |= report_session_events(node);
        report_datagrams(node);
        if !announced && node.names.is_ready() {
            announced = true;
            report_ready(node);
            changed = true;
        }
        if changed || ms >= status_at {
            status_at = ms + STATUS_EVERY_MS;
            status(node, device);
        }
    }
}

/// Brings up the controller and builds the node on the static storage, with our names
/// registered and listened on. Not inlined: its temporaries leave the stack when it returns.
#[inline(never)]
fn start(clock: &mut Clock) -> (&'static mut Node<'static>, &'static mut Lan9118) {
    info!(
        "netbt firmware {} on mps2-an385 (Cortex-M3, LAN9118): {} session slots + {} refusal \
         slot, {} bytes per direction",
        env!("CARGO_PKG_VERSION"),
        SESSIONS,
        REFUSALS,
        SESSION_BUFFER
    );
    let device = DEVICE.take();
    match device.init(MAC) {
        Ok(identity) => info!(
            "lan9118: id {:08x}, MAC {}, link {}",
            identity.id_rev,
            Mac(&MAC),
            if identity.link_up { "up" } else { "down" }
        ),
        Err(error) => fatal!("lan9118", error),
    }

    let seed = seed(device, clock);
    let storage = NodeStorage {
        sockets: fill(SOCKETS.take(), || SocketStorage::EMPTY),
        shards: SHARDS.take(),
        routes: ROUTES.take(),
        name_service: UdpStorage {
            rx_meta: fill(NAME_RX_META.take(), || PacketMetadata::EMPTY),
            rx: NAME_RX.take(),
            tx_meta: fill(NAME_TX_META.take(), || PacketMetadata::EMPTY),
            tx: NAME_TX.take(),
        },
        datagram_service: UdpStorage {
            rx_meta: fill(DATAGRAM_RX_META.take(), || PacketMetadata::EMPTY),
            rx: DATAGRAM_RX.take(),
            tx_meta: fill(DATAGRAM_TX_META.take(), || PacketMetadata::EMPTY),
            tx: DATAGRAM_TX.take(),
        },
        name_events: fill(NAME_EVENT_QUEUE.take(), || None),
        session_events: fill(SESSION_EVENT_QUEUE.take(), || None),
        deliveries: DELIVERIES.take(),
        session_memory: SESSION_MEMORY.take(),
        refusals: REFUSAL_BUFFERS.take(),
        ledger: fill(LEDGER.take(), || Slot::EMPTY),
        syn_backlog: BACKLOG.take(),
        recently_closed: CLOSED.take(),
        scratch: SCRATCH_MEMORY.take(),
    };
    let config = NodeConfig {
        mac: MAC,
        address: ADDRESS,
        gateway: None,
        scope: Scope::default(),
        hide_mac: false,
        seed,
        session: SessionConfig::DEFAULT,
    };
    let node = match Node::new_in(NODE.take(), config, device, storage, clock.now()) {
        Ok(node) => node,
        Err(error) => fatal!("node", error),
    };
    for suffix in [0x00, 0x20] {
        let Ok(name) = Name::new(NAME, suffix) else {
            fatal!("bad name");
        };
        if let Err(error) = node.names.add_name(name, false) {
            fatal!("adding our name", error);
        }
        if let Err(error) = node.session_service().listen(name, None) {
            fatal!("listening on our name", error);
        }
    }
    #[cfg(feature = "wins")]
    if let Some(server) = wins_server() {
        match netbt::name_service::WinsConfig::new(netbt::wire::nbns::NodeType::H, &[server]) {
            Ok(wins) => node.names.configure_wins(wins),
            Err(error) => fatal!("WINS", error),
        }
        info!("H-node, WINS server {}", server);
    }
    if !WORKGROUP.is_empty() {
        let Ok(workgroup) = Name::new(WORKGROUP, 0x00) else {
            fatal!("bad workgroup");
        };
        if let Err(error) = node.names.add_name(workgroup, true) {
            fatal!("adding the workgroup", error);
        }
        if node.browse.set_comment(COMMENT.as_bytes()).is_err() {
            fatal!("bad comment");
        }
    }
    (node, device)
}

/// Fills a table in place, entry by entry (no table-sized temporary or image).
fn fill<T, const N: usize>(
    table: &'static mut MaybeUninit<[T; N]>,
    empty: impl Fn() -> T,
) -> &'static mut [T; N] {
    let first = table.as_mut_ptr().cast::<T>();
    for i in 0..N {
        // SAFETY: `i < N`, inside the table; each entry is written before the table is used.
        unsafe { first.add(i).write(empty()) };
    }
    // SAFETY: every entry was written above.
    unsafe { table.assume_init_mut() }
}

/// Entropy for smoltcp's sequence numbers and the name service's transaction ids. The board
/// has no random number generator, so the seed comes from timing: when (to the processor cycle,
/// 40 ns) the first frame arrives after start-up, the controller's free-running counter at that
/// moment, and the frame's bytes, mixed with the MAC address. The firmware spins (no sleep) for
/// at most [`SEED_WAIT_MS`] waiting for that frame; without one, only start-up timing remains,
/// which is weak, and the log says so.
fn seed(device: &mut Lan9118, clock: &mut Clock) -> u64 {
    let mut state = mix(
        0x6e65_7462_7466_7700,
        u64::from_le_bytes([MAC[0], MAC[1], MAC[2], MAC[3], MAC[4], MAC[5], 0, 0]),
    );
    state = mix(state, u64::from(device.free_run()));
    let start = clock.millis();
    loop {
        let ms = clock.millis();
        if device.frame_waiting() {
            state = mix(state, (ms << 32) | u64::from(clock.cycles_in_tick()));
            state = mix(state, u64::from(device.free_run()));
            if let Some(frame) = device.peek() {
                for chunk in frame.chunks(8) {
                    let mut word = [0u8; 8];
                    word[..chunk.len()].copy_from_slice(chunk);
                    state = mix(state, u64::from_le_bytes(word));
                }
            }
            // At most SEED_WAIT_MS: a u32, printed without 64-bit formatting.
            let waited = u32::try_from(ms - start).unwrap_or(u32::MAX);
            info!(
                "seed: timing of the first frame ({} ms after start-up)",
                waited
            );
            return state;
        }
        if ms - start >= u64::from(SEED_WAIT_MS) {
            state = mix(state, u64::from(clock.cycles_in_tick()));
            state = mix(state, u64::from(device.free_run()));
            warn!(
                "seed: no frame within {} ms; start-up timing only (weak: sequence numbers are \
                 more predictable)",
                SEED_WAIT_MS
            );
            return state;
        }
    }
}

/// One step of splitmix64 over `value`.
fn mix(state: u64, value: u64) -> u64 {
    let mut z = (state ^ value).wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The line the lab waits for: every name registered.
// Not inlined: its frame stays out of `main`'s, which the start-up stack peak includes.
#[inline(never)]
fn report_ready(node: &Node) {
    info!(
        "netbt ready on lan9118 {} names{}",
        ADDRESS,
        Names(node.names.names())
    );
}

// Not inlined: its frame stays out of `main`'s, which the start-up stack peak includes.
#[inline(never)]
fn report_name_events(node: &mut Node) -> bool {
    let mut any = false;
    while let Some(event) = node.names.take_event() {
        any = true;
        match event {
            NameEvent::Conflict { .. } | NameEvent::Wins(WinsEvent::Refused { .. }) => {
                warn!("{}", event)
            }
            _ => info!("{}", event),
        }
    }
    any
}

/// One line per datagram addressed to us (no application takes them here).
// Not inlined: its frame stays out of `main`'s, which the start-up stack peak includes.
#[inline(never)]
fn report_datagrams(node: &mut Node) {
    while let Some(datagram) = node.datagrams.take_delivery() {
        info!(
            "{} datagram from {} ({}) to {}, {} bytes",
            datagram.kind,
            datagram.source_name,
            datagram.source.address,
            datagram.destination_name,
            datagram.data.len()
        );
    }
}

// Not inlined: its frame stays out of `main`'s, which the start-up stack peak includes.
#[inline(never)]
fn report_session_events(node: &mut Node) -> bool {
    let mut any = false;
    while let Some(event) = node.session_service().take_event() {
        any = true;
        info!("{}", event);
    }
    any
}

/// One line with the ledger, the counters that matter and the stack high-water mark.
// Not inlined: its frame stays out of `main`'s, which the start-up stack peak includes.
#[inline(never)]
fn status(node: &mut Node, device: &Lan9118) {
    let names = *node.names.counters();
    let announcements = node.browse.counters().announcements_sent;
    let announcement_requests = node.browse.counters().announcement_requests;
    let datagrams = *node.datagrams.counters();
    let sessions = node.session_service();
    let ledger = sessions.ledger();
    let counters = sessions.counters();
    let frames = device.counters();
    info!(
        "status: slots busy {}/{} refusing {}/{} closing {}; positive {} negative {} (0x83: {}); \
         resets sent {}; queries answered {} node status {}; datagrams in {} out {}; \
         announcements {} (requested {}); frames in {} out {} bad {} dropped {}; stack used {} \
         bytes",
        ledger.busy,
        ledger.session_slots,
        ledger.refusing,
        ledger.refusal_slots,
        ledger.closing,
        counters.positive,
        counters.negative(),
        counters.insufficient_resources,
        counters.gate.resets_sent,
        names.queries_answered,
        names.node_status_answered,
        datagrams.received,
        datagrams.sent,
        announcements,
        announcement_requests,
        frames.received,
        frames.sent,
        frames.rx_bad,
        device.rx_dropped(),
        stack::used()
    );
}

/// A MAC address for the log.
struct Mac<'a>(&'a [u8; 6]);

impl core::fmt::Display for Mac<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let [a, b, c, d, e, g] = *self.0;
        write!(f, "{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{g:02x}")
    }
}

#[cfg(feature = "defmt")]
impl defmt::Format for Mac<'_> {
    fn format(&self, f: defmt::Formatter<'_>) {
        let [a, b, c, d, e, g] = *self.0;
        defmt::write!(
            f,
            "{=u8:02x}:{=u8:02x}:{=u8:02x}:{=u8:02x}:{=u8:02x}:{=u8:02x}",
            a,
            b,
            c,
            d,
            e,
            g
        )
    }
}

/// The node's names for the log, each after a space: ` NETBT<00> NETBT<20>`.
struct Names<'a>(&'a [OwnedName]);

impl core::fmt::Display for Names<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        self.0
            .iter()
            .try_for_each(|owned| write!(f, " {}", owned.name))
    }
}

#[cfg(feature = "defmt")]
impl defmt::Format for Names<'_> {
    fn format(&self, f: defmt::Formatter<'_>) {
        for owned in self.0 {
            defmt::write!(f, " {}", owned.name);
        }
    }
}

/// Ends the emulation with a failure (semihosting), after `fatal!` has said why; on a board
/// without a debugger attached, the breakpoint locks the core up instead, which a watchdog
/// would reset.
pub fn halt() -> ! {
    cortex_m::interrupt::disable();
    cortex_m_semihosting::debug::exit(cortex_m_semihosting::debug::EXIT_FAILURE);
    loop {
        cortex_m::asm::wfi();
    }
}

/// A panic halts with one line; built with `NETBT_FW_PANIC=full` (and a logger) it says the
/// panic's message and location too. (Each panic site's message and location cost flash:
/// 15 KiB with defmt, 12 KiB with text logs.)
#[panic_handler]
fn panic(info: &PanicInfo) -> ! {
    #[cfg(feature = "defmt")]
    if option_env!("NETBT_FW_PANIC").is_some_and(|how| how == "full") {
        fatal!("panic", defmt::Display2Format(info));
    }
    #[cfg(feature = "log")]
    if option_env!("NETBT_FW_PANIC").is_some_and(|how| how == "full") {
        fatal!("panic", info);
    }
    let _ = info;
    fatal!("panic (NETBT_FW_PANIC=full builds say where)")
}

#[exception]
unsafe fn HardFault(frame: &ExceptionFrame) -> ! {
    // The registers that locate the fault, in hex (the frame's Debug output would bring
    // core::fmt's debug builders into the image for this one line).
    #[cfg(any(feature = "log", feature = "defmt"))]
    error!(
        "hard fault: pc {:#010x} lr {:#010x} xpsr {:#010x} r0 {:#010x} r12 {:#010x}",
        frame.pc(),
        frame.lr(),
        frame.xpsr(),
        frame.r0(),
        frame.r12()
    );
    let _ = frame;
    fatal!("hard fault")
}

/// Stack use, measured: the stack below `main`'s frame is painted at start-up, and the lowest
/// word no longer carrying the paint marks how deep it went.
mod stack {
    use core::ptr::{read_volatile, write_volatile};

    const PAINT: u32 = 0x5a5a_a5a5;
    /// Paint this far below the stack pointer at start-up (the stack is assumed to stay within).
    const SPAN: usize = 256 * 1024;
    /// Leave this much under the stack pointer alone while painting (the painter's own frame).
    const MARGIN: usize = 256;

    unsafe extern "C" {
        /// The top of the stack (cortex-m-rt's linker script).
        static _stack_start: u32;
        /// The end of .bss and .uninit: where the heap would start.
        static __sheap: u32;
        /// The start of .data in RAM.
        static __sdata: u32;
    }

    fn top() -> usize {
        &raw const _stack_start as usize
    }

    fn bottom() -> usize {
        let floor = &raw const __sheap as usize;
        top().saturating_sub(SPAN).max(floor)
    }

    /// RAM taken by statics: .data, .bss and .uninit.
    pub fn static_ram() -> usize {
        (&raw const __sheap as usize) - (&raw const __sdata as usize)
    }

    /// Paints the unused stack (call first thing in `main`).
    pub fn paint() {
        let sp = cortex_m::register::msp::read() as usize;
        let mut at = bottom();
        while at + 4 <= sp - MARGIN {
            // SAFETY: between the end of the statics and the live stack: unused RAM.
            unsafe { write_volatile(at as *mut u32, PAINT) };
            at += 4;
        }
    }

    /// Deepest stack use so far, in bytes.
    pub fn used() -> usize {
        let mut at = bottom();
        // SAFETY: reads of RAM between the statics and the top of the stack.
        while at < top() && unsafe { read_volatile(at as *const u32) } == PAINT {
            at += 4;
        }
        top() - at
    }
}
