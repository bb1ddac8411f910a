//! netbt as `no_std` firmware: the same node, name service and session service as `netbt serve`,
//! on an ARM Cortex-M3 (QEMU's `mps2-an385`) with its LAN9118 Ethernet controller.
//!
//! * storage: static arrays only, no allocator ([`app`]);
//! * network: a polled LAN9118 driver implementing smoltcp's `phy::Device` ([`lan9118`]);
//! * `memcpy`, `memmove`, `memset`: small word-at-a-time versions ([`mem`]);
//! * 64-bit division: a small shift-and-subtract `__aeabi_uldivmod` ([`div`]);
//! * the vector table's device part: one entry, no interrupt enabled ([`vectors`]);
//! * time: a millisecond clock from SysTick ([`clock`]);
//! * logs: the `log` crate on UART0 ([`uart`]), or none (built without the `log` feature:
//!   `NETBT_FW_LOG=off`); a panic or hard fault prints and ends QEMU through semihosting.
//!
//! Build and run it with `scripts/firmware.sh build` and `scripts/firmware.sh run [TAP]`. On the
//! host this example is a stub, so `cargo test` and `cargo clippy --all-targets` stay host-only.
#![cfg_attr(target_os = "none", no_std)]
#![cfg_attr(target_os = "none", no_main)]

// Logging through `log` with the `log` feature; without it (NETBT_FW_LOG=off) the messages
// are not in the build, their arguments only type-checked.
#[cfg(all(target_os = "none", feature = "log"))]
macro_rules! info { ($($arg:tt)*) => { log::info!($($arg)*) }; }
#[cfg(all(target_os = "none", feature = "log"))]
macro_rules! warn { ($($arg:tt)*) => { log::warn!($($arg)*) }; }
#[cfg(all(target_os = "none", feature = "log"))]
macro_rules! error { ($($arg:tt)*) => { log::error!($($arg)*) }; }
#[cfg(all(target_os = "none", not(feature = "log")))]
macro_rules! info { ($($arg:tt)*) => {{ let _ = format_args!($($arg)*); }}; }
#[cfg(all(target_os = "none", not(feature = "log")))]
macro_rules! warn { ($($arg:tt)*) => {{ let _ = format_args!($($arg)*); }}; }
#[cfg(all(target_os = "none", not(feature = "log")))]
macro_rules! error { ($($arg:tt)*) => {{ let _ = format_args!($($arg)*); }}; }

#[cfg(target_os = "none")]
mod app;
#[cfg(target_os = "none")]
mod clock;
#[cfg(target_os = "none")]
mod div;
#[cfg(target_os = "none")]
mod lan9118;
#[cfg(target_os = "none")]
mod mem;
#[cfg(target_os = "none")]
mod uart;
#[cfg(target_os = "none")]
mod vectors;

#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!(
        "the firmware runs on a Cortex-M3 in QEMU: scripts/firmware.sh build, then \
         scripts/firmware.sh run [TAP]"
    );
}
