//! A polled driver for the SMSC LAN9118 Ethernet controller (as QEMU's mps2-an385 has it at
//! 0x4020_0000), as a smoltcp [`Device`] with one fixed receive and one fixed transmit buffer.
//!
//! The controller is driven through its FIFO ports, 32 bits at a time, little-endian:
//!
//! * receive: a non-zero count in `RX_FIFO_INF` means a status word waits in `RX_STATUS_FIFO`;
//!   its bits 29:16 give the frame length including the 4-byte FCS, and the frame follows as
//!   that many bytes rounded up to whole words in `RX_DATA_FIFO`. Every word must be read (or
//!   the next frame starts in the middle of this one), bad frames included.
//! * transmit: TX command A (buffer size, first and last segment), TX command B (a tag and the
//!   frame length), then the frame as words into `TX_DATA_FIFO`. The MAC pads short frames and
//!   appends the FCS. TX status words are allowed to overrun (`TXSAO`): nobody reads them.
//! * the MAC's own registers (`MAC_CR`, `ADDRH`, `ADDRL`, the MII port) sit behind
//!   `MAC_CSR_CMD`/`MAC_CSR_DATA`, one indirect access at a time.
//!
//! No interrupts: the main loop asks [`Lan9118::frame_waiting`] and sleeps on SysTick.

use core::ptr::{read_volatile, write_volatile};

use smoltcp::phy::{self, Device, DeviceCapabilities, Medium};
use smoltcp::time::Instant;

/// Largest frame smoltcp sends or receives: 1500-byte IP MTU plus the Ethernet header.
pub const FRAME: usize = 1514;
/// Receive buffer: the largest frame and its FCS, in whole words.
const RX_BUFFER: usize = (FRAME + 4).div_ceil(4) * 4;

/// Controller registers (byte offsets from the base).
mod reg {
    pub const RX_DATA_FIFO: usize = 0x00;
    pub const TX_DATA_FIFO: usize = 0x20;
    pub const RX_STATUS_FIFO: usize = 0x40;
    pub const ID_REV: usize = 0x50;
    pub const IRQ_CFG: usize = 0x54;
    pub const INT_STS: usize = 0x58;
    pub const INT_EN: usize = 0x5c;
    pub const BYTE_TEST: usize = 0x64;
    pub const RX_CFG: usize = 0x6c;
    pub const TX_CFG: usize = 0x70;
    pub const HW_CFG: usize = 0x74;
    pub const RX_FIFO_INF: usize = 0x7c;
    pub const TX_FIFO_INF: usize = 0x80;
    pub const PMT_CTRL: usize = 0x84;
    pub const FREE_RUN: usize = 0x9c;
    pub const RX_DROP: usize = 0xa0;
    pub const MAC_CSR_CMD: usize = 0xa4;
    pub const MAC_CSR_DATA: usize = 0xa8;
}

/// MAC control and status registers (indices behind `MAC_CSR_CMD`).
mod mac {
    pub const CR: u32 = 1;
    pub const ADDRH: u32 = 2;
    pub const ADDRL: u32 = 3;
    pub const MII_ACC: u32 = 6;
    pub const MII_DATA: u32 = 7;
}

const BYTE_TEST_VALUE: u32 = 0x8765_4321;
const HW_CFG_SRST: u32 = 1 << 0;
const PMT_CTRL_READY: u32 = 1 << 0;
const TX_CFG_TX_ON: u32 = 1 << 1;
const TX_CFG_TXSAO: u32 = 1 << 2;
const MAC_CSR_BUSY: u32 = 1 << 31;
const MAC_CSR_READ: u32 = 1 << 30;
const MAC_CR_FDPX: u32 = 1 << 20;
const MAC_CR_TXEN: u32 = 1 << 3;
const MAC_CR_RXEN: u32 = 1 << 2;
const MII_BUSY: u32 = 1 << 0;
/// The internal PHY's MII address.
const PHY_ADDRESS: u32 = 1;
const PHY_BASIC_STATUS: u32 = 1;
const PHY_LINK_UP: u32 = 1 << 2;
const RX_STATUS_ERROR: u32 = 1 << 15;
const TX_CMD_A_FIRST: u32 = 1 << 13;
const TX_CMD_A_LAST: u32 = 1 << 12;
/// TX data FIFO room one frame may take: two command words and the frame in whole words.
const TX_WORST_CASE: usize = 8 + FRAME.div_ceil(4) * 4;
/// How often a busy bit is polled before the controller is declared dead.
const SPIN_LIMIT: u32 = 100_000;

/// Why the controller could not be brought up.
#[derive(Debug, Clone, Copy)]
pub enum InitError {
    /// `BYTE_TEST` did not read 0x87654321: no LAN9118 at this address.
    NotFound(u32),
    /// A reset or a MAC register access did not finish.
    Timeout(&'static str),
}

impl core::fmt::Display for InitError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            InitError::NotFound(value) => {
                write!(f, "BYTE_TEST reads {value:#010x}: no LAN9118 here")
            }
            InitError::Timeout(what) => write!(f, "{what} stayed busy"),
        }
    }
}

#[cfg(feature = "defmt")]
impl defmt::Format for InitError {
    fn format(&self, f: defmt::Formatter<'_>) {
        match self {
            InitError::NotFound(value) => {
                defmt::write!(f, "BYTE_TEST reads {=u32:#010x}: no LAN9118 here", value)
            }
            InitError::Timeout(what) => defmt::write!(f, "{=str} stayed busy", what),
        }
    }
}

/// What the driver counted.
#[derive(Debug, Clone, Copy, Default)]
pub struct Counters {
    /// Frames handed to smoltcp.
    pub received: u32,
    /// Frames sent.
    pub sent: u32,
    /// Received frames dropped: error status, or longer than [`FRAME`].
    pub rx_bad: u32,
    /// Frames not sent because the TX data FIFO had no room.
    pub tx_full: u32,
}

/// The register window of one controller.
#[derive(Clone, Copy)]
struct Regs(usize);

impl Regs {
    fn read(self, offset: usize) -> u32 {
        // SAFETY: `self.0` is the base of the controller's 256-byte register window (checked
        // by BYTE_TEST at start-up) and `offset` one of its word-aligned registers.
        unsafe { read_volatile((self.0 + offset) as *const u32) }
    }

    fn write(self, offset: usize, value: u32) {
        // SAFETY: as in `read`.
        unsafe { write_volatile((self.0 + offset) as *mut u32, value) }
    }

    fn wait_clear(self, offset: usize, bit: u32, what: &'static str) -> Result<(), InitError> {
        for _ in 0..SPIN_LIMIT {
            if self.read(offset) & bit == 0 {
                return Ok(());
            }
        }
        Err(InitError::Timeout(what))
    }

    fn mac_read(self, index: u32) -> Result<u32, InitError> {
        self.wait_clear(reg::MAC_CSR_CMD, MAC_CSR_BUSY, "MAC_CSR_CMD")?;
        self.write(reg::MAC_CSR_CMD, MAC_CSR_BUSY | MAC_CSR_READ | index);
        self.wait_clear(reg::MAC_CSR_CMD, MAC_CSR_BUSY, "MAC_CSR_CMD")?;
        Ok(self.read(reg::MAC_CSR_DATA))
    }

    fn mac_write(self, index: u32, value: u32) -> Result<(), InitError> {
        self.wait_clear(reg::MAC_CSR_CMD, MAC_CSR_BUSY, "MAC_CSR_CMD")?;
        self.write(reg::MAC_CSR_DATA, value);
        self.write(reg::MAC_CSR_CMD, MAC_CSR_BUSY | index);
        self.wait_clear(reg::MAC_CSR_CMD, MAC_CSR_BUSY, "MAC_CSR_CMD")
    }

    fn phy_read(self, register: u32) -> Result<u32, InitError> {
        self.wait_clear_mii()?;
        self.mac_write(
            mac::MII_ACC,
            (PHY_ADDRESS << 11) | (register << 6) | MII_BUSY,
        )?;
        self.wait_clear_mii()?;
        Ok(self.mac_read(mac::MII_DATA)? & 0xffff)
    }

    fn wait_clear_mii(self) -> Result<(), InitError> {
        for _ in 0..SPIN_LIMIT {
            if self.mac_read(mac::MII_ACC)? & MII_BUSY == 0 {
                return Ok(());
            }
        }
        Err(InitError::Timeout("MII_ACC"))
    }

    /// Frames waiting in the RX status FIFO.
    fn rx_frames(self) -> u32 {
        (self.read(reg::RX_FIFO_INF) >> 16) & 0xff
    }

    /// Free bytes in the TX data FIFO.
    fn tx_free(self) -> usize {
        (self.read(reg::TX_FIFO_INF) & 0xffff) as usize
    }
}

/// The LAN9118 whose registers start at `BASE`, with its frame buffers. All-zero when new, so a
/// `static` of it costs .bss only.
pub struct Lan9118<const BASE: usize> {
    rx: [u8; RX_BUFFER],
    /// Length of the frame held in `rx` and not yet handed to smoltcp (0: none).
    held: usize,
    tx: [u8; FRAME],
    counters: Counters,
}

/// What [`Lan9118::init`] found.
#[derive(Debug, Clone, Copy)]
pub struct Identity {
    /// `ID_REV`: chip id in the upper half, revision in the lower.
    pub id_rev: u32,
    /// Whether the PHY reports a link.
    pub link_up: bool,
}

impl<const BASE: usize> Lan9118<BASE> {
    const REGS: Regs = Regs(BASE);

    /// A driver for the controller (nothing touched yet; usable in a `static`).
    pub const fn new() -> Self {
        Lan9118 {
            rx: [0; RX_BUFFER],
            held: 0,
            tx: [0; FRAME],
            counters: Counters {
                received: 0,
                sent: 0,
                rx_bad: 0,
                tx_full: 0,
            },
        }
    }

    /// Soft reset, our MAC address, the transmitter and receiver on (unicast to `mac` and
    /// broadcast; no multicast, no promiscuous mode), interrupts off.
    pub fn init(&mut self, mac_address: [u8; 6]) -> Result<Identity, InitError> {
        let regs = Self::REGS;
        let test = regs.read(reg::BYTE_TEST);
        if test != BYTE_TEST_VALUE {
            return Err(InitError::NotFound(test));
        }
        regs.write(reg::HW_CFG, HW_CFG_SRST);
        regs.wait_clear(reg::HW_CFG, HW_CFG_SRST, "HW_CFG.SRST")?;
        let mut ready = false;
        for _ in 0..SPIN_LIMIT {
            if regs.read(reg::PMT_CTRL) & PMT_CTRL_READY != 0 {
                ready = true;
                break;
            }
        }
        if !ready {
            return Err(InitError::Timeout("PMT_CTRL.READY"));
        }
        // Polled: no interrupt line, every status cleared.
        regs.write(reg::IRQ_CFG, 0);
        regs.write(reg::INT_EN, 0);
        regs.write(reg::INT_STS, u32::MAX);
        let [a, b, c, d, e, f] = mac_address;
        regs.mac_write(mac::ADDRL, u32::from_le_bytes([a, b, c, d]))?;
        regs.mac_write(mac::ADDRH, u32::from_le_bytes([e, f, 0, 0]))?;
        // Frames start on a word boundary, no offset, 4-byte end alignment.
        regs.write(reg::RX_CFG, 0);
        regs.write(reg::TX_CFG, TX_CFG_TX_ON | TX_CFG_TXSAO);
        regs.mac_write(mac::CR, MAC_CR_TXEN | MAC_CR_RXEN | MAC_CR_FDPX)?;
        let link_up = regs.phy_read(PHY_BASIC_STATUS)? & PHY_LINK_UP != 0;
        Ok(Identity {
            id_rev: regs.read(reg::ID_REV),
            link_up,
        })
    }

    /// Whether a received frame waits (in the controller or in our buffer).
    pub fn frame_waiting(&self) -> bool {
        self.held != 0 || Self::REGS.rx_frames() != 0
    }

    /// The controller's free-running 25 MHz counter (for entropy).
    pub fn free_run(&self) -> u32 {
        Self::REGS.read(reg::FREE_RUN)
    }

    /// Frames the controller dropped for lack of room.
    pub fn rx_dropped(&self) -> u32 {
        Self::REGS.read(reg::RX_DROP)
    }

    /// What the driver counted.
    pub fn counters(&self) -> Counters {
        self.counters
    }

    /// Moves the next good frame out of the controller into our buffer and returns it (without
    /// handing it over: [`Device::receive`] will). Bad frames on the way are dropped.
    pub fn peek(&mut self) -> Option<&[u8]> {
        while self.held == 0 {
            if Self::REGS.rx_frames() == 0 {
                return None;
            }
            self.held = self.pop_frame();
        }
        Some(&self.rx[..self.held])
    }

    /// Reads one frame's status and all its words; returns its length without the FCS, or 0
    /// when it was dropped.
    fn pop_frame(&mut self) -> usize {
        let regs = Self::REGS;
        let status = regs.read(reg::RX_STATUS_FIFO);
        let length = ((status >> 16) & 0x3fff) as usize;
        let words = length.div_ceil(4);
        let good = status & RX_STATUS_ERROR == 0 && length > 14 + 4 && length <= RX_BUFFER;
        if !good {
            for _ in 0..words {
                regs.read(reg::RX_DATA_FIFO);
            }
            self.counters.rx_bad = self.counters.rx_bad.wrapping_add(1);
            return 0;
        }
        for chunk in self.rx[..words * 4].chunks_exact_mut(4) {
            chunk.copy_from_slice(&regs.read(reg::RX_DATA_FIFO).to_le_bytes());
        }
        length - 4
    }
}

impl<const BASE: usize> Device for Lan9118<BASE> {
    type RxToken<'a> = RxToken<'a>;
    type TxToken<'a> = TxToken<'a>;

    fn receive(&mut self, _now: Instant) -> Option<(RxToken<'_>, TxToken<'_>)> {
        self.peek()?;
        let len = core::mem::take(&mut self.held);
        self.counters.received = self.counters.received.wrapping_add(1);
        Some((
            RxToken(&self.rx[..len]),
            TxToken {
                regs: Self::REGS,
                buffer: &mut self.tx,
                counters: &mut self.counters,
            },
        ))
    }

    fn transmit(&mut self, _now: Instant) -> Option<TxToken<'_>> {
        // No room for a whole frame yet: smoltcp keeps its packet and asks again next poll.
        if Self::REGS.tx_free() < TX_WORST_CASE {
            return None;
        }
        Some(TxToken {
            regs: Self::REGS,
            buffer: &mut self.tx,
            counters: &mut self.counters,
        })
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ethernet;
        caps.max_transmission_unit = FRAME;
        caps
    }
}

/// A received frame.
pub struct RxToken<'a>(&'a [u8]);

impl phy::RxToken for RxToken<'_> {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        f(self.0)
    }
}

/// Room for one frame to send.
pub struct TxToken<'a> {
    regs: Regs,
    buffer: &'a mut [u8; FRAME],
    counters: &'a mut Counters,
}

impl phy::TxToken for TxToken<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let len = len.min(FRAME);
        let frame = &mut self.buffer[..len];
        let result = f(frame);
        // Two command words and the frame, in whole words.
        if self.regs.tx_free() < 8 + len.div_ceil(4) * 4 {
            // As a busy wire would: the frame is lost, TCP retransmits.
            self.counters.tx_full = self.counters.tx_full.wrapping_add(1);
            return result;
        }
        let length = len as u32;
        let tag = self.counters.sent & 0xffff;
        self.regs
            .write(reg::TX_DATA_FIFO, TX_CMD_A_FIRST | TX_CMD_A_LAST | length);
        self.regs.write(reg::TX_DATA_FIFO, (tag << 16) | length);
        let mut chunks = frame.chunks_exact(4);
        for chunk in &mut chunks {
            let word = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
            self.regs.write(reg::TX_DATA_FIFO, word);
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut last = [0u8; 4];
            last[..rest.len()].copy_from_slice(rest);
            self.regs.write(reg::TX_DATA_FIFO, u32::from_le_bytes(last));
        }
        self.counters.sent = self.counters.sent.wrapping_add(1);
        result
    }
}
