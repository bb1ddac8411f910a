//! `__aeabi_uldivmod`, the 64-bit unsigned division the compiler calls on a 32-bit processor
//! (smoltcp's `Duration::total_millis` for its round-trip samples, the browse announcer's
//! timing), in 52 bytes of Thumb-2 instead of `compiler_builtins`' 934 (its weak version, this
//! strong one takes its place). One quotient bit per round, 64 rounds: a few hundred cycles a
//! division, for the few divisions a frame costs at most.
//!
//! In: the dividend in r1:r0, the divisor in r3:r2 (high:low). Out: the quotient in r1:r0, the
//! remainder in r3:r2. The divisor is never 0 here: Rust checks before it divides.

core::arch::global_asm!(
    ".pushsection .text.netbt_uldivmod, \"ax\", %progbits",
    ".syntax unified",
    ".thumb",
    ".global __aeabi_uldivmod",
    ".type __aeabi_uldivmod, %function",
    ".thumb_func",
    "__aeabi_uldivmod:",
    "    push {{r4, r5, r6, lr}}",
    // r5:r4 the remainder so far; the dividend shifts out of r1:r0 at the top while the
    // quotient's bits shift in at the bottom.
    "    movs r4, #0",
    "    movs r5, #0",
    "    movs r6, #64",
    "1:  adds r0, r0, r0",
    "    adcs r1, r1, r1",
    "    adcs r4, r4, r4",
    "    adcs r5, r5, r5",
    // A bit shifted out of the remainder: it is over 2^64, so over the divisor.
    "    bcs 2f",
    "    subs r12, r4, r2",
    "    sbcs lr, r5, r3",
    "    blo 3f",
    "    b 4f",
    "2:  subs r12, r4, r2",
    "    sbc lr, r5, r3",
    "4:  mov r4, r12",
    "    mov r5, lr",
    "    orr r0, r0, #1",
    "3:  subs r6, #1",
    "    bne 1b",
    "    mov r2, r4",
    "    mov r3, r5",
    "    pop {{r4, r5, r6, pc}}",
    ".popsection",
);
