//! Logs on UART0 (an ARM CMSDK APB UART at 0x4000_4000; QEMU's `-serial stdio`): the library's
//! messages and the firmware's own, as `defmt` frames (feature `defmt`; the host's `defmt-print
//! -e ELF` formats them) or as text through the `log` crate (feature `log`).

use core::fmt::{self, Write};
use core::ptr::{read_volatile, write_volatile};

const BASE: usize = 0x4000_4000;
const DATA: usize = 0x00;
const STATE: usize = 0x04;
const CTRL: usize = 0x08;
const BAUDDIV: usize = 0x10;
const STATE_TX_FULL: u32 = 1 << 0;
const CTRL_TX_ENABLE: u32 = 1 << 0;

/// The transmit side of UART0.
pub struct Uart;

impl Uart {
    /// Enables the transmitter at 115200 baud (QEMU ignores the rate).
    pub fn init() {
        // SAFETY: UART0's registers; the firmware is their only user.
        unsafe {
            write_volatile(
                (BASE + BAUDDIV) as *mut u32,
                super::clock::CORE_HZ / 115_200,
            );
            write_volatile((BASE + CTRL) as *mut u32, CTRL_TX_ENABLE);
        }
    }

    /// Writes `text` and a line break, unformatted (the fatal path of a build without a logger).
    #[cfg_attr(any(feature = "log", feature = "defmt"), allow(dead_code))]
    pub fn line(text: &str) {
        let _ = Uart.write_str(text);
        let _ = Uart.write_str("\n");
    }

    fn put(byte: u8) {
        // SAFETY: as in `init`.
        unsafe {
            while read_volatile((BASE + STATE) as *const u32) & STATE_TX_FULL != 0 {}
            write_volatile((BASE + DATA) as *mut u32, u32::from(byte));
        }
    }
}

impl Write for Uart {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        for byte in text.bytes() {
            if byte == b'\n' {
                Uart::put(b'\r');
            }
            Uart::put(byte);
        }
        Ok(())
    }
}

#[cfg(feature = "log")]
struct UartLogger;

#[cfg(feature = "log")]
impl log::Log for UartLogger {
    fn enabled(&self, metadata: &log::Metadata) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &log::Record) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let ms = super::clock::millis32();
        let _ = writeln!(
            Uart,
            "[{:5}.{:03}] {:<5} {}: {}",
            ms / 1000,
            ms % 1000,
            record.level(),
            record.target(),
            record.args()
        );
    }

    fn flush(&self) {}
}

#[cfg(feature = "log")]
static LOGGER: UartLogger = UartLogger;

/// Starts UART0 and, with the `log` feature, routes `log` to it at the build's level
/// (`NETBT_FW_LOG`). (`defmt` needs no start: its level is fixed at build time by `DEFMT_LOG`.)
pub fn init_logger() {
    Uart::init();
    #[cfg(feature = "log")]
    if log::set_logger(&LOGGER).is_ok() {
        log::set_max_level(log_level());
    }
}

/// The log level (`NETBT_FW_LOG` at build time: error, warn, info, debug or trace;
/// scripts/firmware.sh also caps the `log` crate's static level to it, so the messages under it
/// are not in the build).
#[cfg(feature = "log")]
fn log_level() -> log::LevelFilter {
    match option_env!("NETBT_FW_LOG") {
        Some("error") => log::LevelFilter::Error,
        Some("warn") => log::LevelFilter::Warn,
        Some("debug") => log::LevelFilter::Debug,
        Some("trace") => log::LevelFilter::Trace,
        _ => log::LevelFilter::Info,
    }
}

/// The `defmt` logger: each message is one rzCOBS frame, written to UART0 byte for byte. The
/// firmware has no interrupt handler that logs, so a message is never interrupted by another;
/// `acquire` still refuses a nested one (a fatal error inside a message).
#[cfg(feature = "defmt")]
mod frames {
    use core::cell::UnsafeCell;
    use core::sync::atomic::{AtomicBool, Ordering};

    use super::Uart;

    #[defmt::global_logger]
    struct Frames;

    /// The encoder, used only between `acquire` and `release`.
    struct Encoder(UnsafeCell<defmt::Encoder>);

    // SAFETY: one message at a time (`TAKEN`), on the one core.
    unsafe impl Sync for Encoder {}

    static ENCODER: Encoder = Encoder(UnsafeCell::new(defmt::Encoder::new()));
    static TAKEN: AtomicBool = AtomicBool::new(false);

    fn send(bytes: &[u8]) {
        for &byte in bytes {
            Uart::put(byte);
        }
    }

    // SAFETY: the encoder is touched only by the holder of `TAKEN`.
    unsafe impl defmt::Logger for Frames {
        fn acquire() {
            if TAKEN.swap(true, Ordering::Acquire) {
                // A message inside a message: give up (only a fault could get here).
                crate::app::halt();
            }
            // SAFETY: `TAKEN` was ours to take.
            unsafe { (*ENCODER.0.get()).start_frame(send) }
        }

        unsafe fn flush() {}

        unsafe fn release() {
            // SAFETY: the caller holds the logger (`acquire`).
            unsafe { (*ENCODER.0.get()).end_frame(send) };
            TAKEN.store(false, Ordering::Release);
        }

        unsafe fn write(bytes: &[u8]) {
            // SAFETY: the caller holds the logger (`acquire`).
            unsafe { (*ENCODER.0.get()).write(bytes, send) }
        }
    }

    // Milliseconds since start-up, shown as seconds by the host.
    defmt::timestamp!("{=u32:ms}", crate::clock::millis32());
}
