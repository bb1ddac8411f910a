//! The device interrupts' part of the vector table (cortex-m-rt's `device` feature): one
//! entry, the least its linker script accepts. The firmware enables no interrupt in the NVIC
//! (the driver is polled; SysTick, the only source it waits for, is one of the core's
//! exceptions, in cortex-m-rt's part of the table), so no other entry is ever read; without
//! the feature cortex-m-rt would place 240 entries, 960 bytes, all to its default handler.

unsafe extern "C" {
    fn DefaultHandler();
}

/// IRQ 0 (never enabled): cortex-m-rt's default handler.
#[unsafe(link_section = ".vector_table.interrupts")]
#[unsafe(no_mangle)]
static __INTERRUPTS: [unsafe extern "C" fn(); 1] = [DefaultHandler];
