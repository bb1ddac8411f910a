//! netbt as `no_std` firmware: the same node, name service and session service as `netbt serve`,
//! on an ARM Cortex-M3 (QEMU's `mps2-an385`) with its LAN9118 Ethernet controller.
//!
//! * storage: static arrays only, no allocator ([`app`]);
//! * network: a polled LAN9118 driver implementing smoltcp's `phy::Device` ([`lan9118`]);
//! * `memcpy`, `memmove`, `memset`: small word-at-a-time versions ([`mem`]);
//! * 64-bit division: a small shift-and-subtract `__aeabi_uldivmod` ([`div`]);
//! * the vector table's device part: one entry, no interrupt enabled ([`vectors`]);
//! * time: a millisecond clock from SysTick ([`clock`]);
//! * logs on UART0 ([`uart`]): `defmt` frames (the default; the host's `defmt-print` formats
//!   them), text through the `log` crate (`NETBT_FW_LOGGER=log`), or none (`NETBT_FW_LOG=off`);
//!   a fatal error, panic or hard fault says so and ends QEMU through semihosting.
//!
//! Build and run it with `scripts/firmware.sh build` and `scripts/firmware.sh run [TAP]`. On the
//! host this example is a stub, so `cargo test` and `cargo clippy --all-targets` stay host-only.
#![cfg_attr(target_os = "none", no_std)]
#![cfg_attr(target_os = "none", no_main)]

// Logging through `defmt` with the `defmt` feature (formatted on the host), through `log` with
// the `log` feature (formatted here, text on the UART); with neither (NETBT_FW_LOG=off) the
// messages are not in the build, their arguments only type-checked. Messages are written in
// the syntax both take: positional `{}` arguments, hints such as `{:#010x}`; every argument
// implements both `Display` and `defmt::Format`.
#[cfg(all(target_os = "none", feature = "defmt"))]
macro_rules! info { ($($arg:tt)*) => { defmt::info!($($arg)*) }; }
#[cfg(all(target_os = "none", feature = "defmt"))]
macro_rules! warn { ($($arg:tt)*) => { defmt::warn!($($arg)*) }; }
#[cfg(all(target_os = "none", feature = "defmt"))]
macro_rules! error { ($($arg:tt)*) => { defmt::error!($($arg)*) }; }
#[cfg(all(target_os = "none", feature = "log"))]
macro_rules! info { ($($arg:tt)*) => { log::info!($($arg)*) }; }
#[cfg(all(target_os = "none", feature = "log"))]
macro_rules! warn { ($($arg:tt)*) => { log::warn!($($arg)*) }; }
#[cfg(all(target_os = "none", feature = "log"))]
macro_rules! error { ($($arg:tt)*) => { log::error!($($arg)*) }; }
#[cfg(all(target_os = "none", not(any(feature = "log", feature = "defmt"))))]
macro_rules! info { ($($arg:tt)*) => {{ let _ = format_args!($($arg)*); }}; }
#[cfg(all(target_os = "none", not(any(feature = "log", feature = "defmt"))))]
macro_rules! warn { ($($arg:tt)*) => {{ let _ = format_args!($($arg)*); }}; }

// A fatal error: `fatal!("what")` or `fatal!("what", error)` says why (`fatal: what: error`)
// and ends the firmware (`app::halt`). Without a logger only `what` is printed, as fixed text.
#[cfg(all(target_os = "none", feature = "defmt"))]
macro_rules! fatal {
    ($what:literal) => {{
        defmt::error!("fatal: {=istr}", defmt::intern!($what));
        crate::app::halt()
    }};
    ($what:literal, $error:expr) => {{
        defmt::error!("fatal: {=istr}: {}", defmt::intern!($what), $error);
        crate::app::halt()
    }};
}
#[cfg(all(target_os = "none", feature = "log"))]
macro_rules! fatal {
    ($what:literal) => {{
        log::error!("fatal: {}", $what);
        crate::app::halt()
    }};
    ($what:literal, $error:expr) => {{
        log::error!("fatal: {}: {}", $what, $error);
        crate::app::halt()
    }};
}
#[cfg(all(target_os = "none", not(any(feature = "log", feature = "defmt"))))]
macro_rules! fatal {
    ($what:literal $(, $error:expr)?) => {{
        $( let _ = &$error; )?
        crate::uart::Uart::line(concat!("fatal: ", $what));
        crate::app::halt()
    }};
}

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
