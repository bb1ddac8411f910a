//! A millisecond clock from SysTick: the exception counts milliseconds, the main loop widens
//! the 32-bit count to 64 bits (it reads the clock far more often than every 49 days).

use core::sync::atomic::{AtomicU32, Ordering};

use cortex_m::peripheral::SYST;
use cortex_m::peripheral::syst::SystClkSource;
use cortex_m_rt::exception;
use smoltcp::time::Instant;

/// The processor clock of the MPS2 FPGA images (SYSCLK), which SysTick counts.
pub const CORE_HZ: u32 = 25_000_000;
/// SysTick reload for one millisecond.
const RELOAD: u32 = CORE_HZ / 1000 - 1;

static MILLIS: AtomicU32 = AtomicU32::new(0);

#[exception]
fn SysTick() {
    MILLIS.fetch_add(1, Ordering::Relaxed);
}

/// Milliseconds since start, wrapping after 49 days (for log lines).
#[cfg(any(feature = "log", feature = "defmt"))]
pub fn millis32() -> u32 {
    MILLIS.load(Ordering::Relaxed)
}

/// The clock; owns SysTick.
pub struct Clock {
    _syst: SYST,
    last: u32,
    high: u64,
}

impl Clock {
    /// Starts SysTick: one exception a millisecond from the processor clock.
    pub fn start(mut syst: SYST) -> Clock {
        syst.set_clock_source(SystClkSource::Core);
        syst.set_reload(RELOAD);
        syst.clear_current();
        syst.enable_counter();
        syst.enable_interrupt();
        Clock {
            _syst: syst,
            last: 0,
            high: 0,
        }
    }

    /// Milliseconds since [`Clock::start`].
    pub fn millis(&mut self) -> u64 {
        let now = MILLIS.load(Ordering::Relaxed);
        if now < self.last {
            self.high += 1 << 32;
        }
        self.last = now;
        self.high | u64::from(now)
    }

    /// The current instant for smoltcp.
    pub fn now(&mut self) -> Instant {
        Instant::from_millis(self.millis() as i64)
    }

    /// Processor cycles into the current millisecond (SysTick counts down from [`RELOAD`]):
    /// where, at a 40 ns grain, something happened.
    pub fn cycles_in_tick(&self) -> u32 {
        RELOAD - SYST::get_current().min(RELOAD)
    }
}
