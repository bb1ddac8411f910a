#!/usr/bin/env bash
# The no_std firmware (examples/firmware/): netbt on QEMU's mps2-an385, a Cortex-M3 with a
# LAN9118 Ethernet controller.
#
#   scripts/firmware.sh build        build it (release, opt-level z, fat LTO) and print its
#                                    footprint: flash (also without logs, and with text logs),
#                                    RAM, and the RAM one session slot costs
#   scripts/firmware.sh run [TAP]    build if needed, then run it in QEMU attached to the existing
#                                    TAP (default tap0) of the current network namespace, until
#                                    killed; logs (UART0) on stdout
#   scripts/firmware.sh elf          print the firmware's path
#
# The firmware is 192.168.69.1/24, MAC 02:00:00:00:00:01, NETBT<00> and NETBT<20>, 2 session
# slots + 1 refusal slot, the echo handler. Installs the rustup target, qemu-system-arm and
# defmt-print when missing. Environment, all read at build time:
#   NETBT_FW_LOGGER=defmt|log   how logs leave the board (default defmt: compact frames, formatted
#                               on the host by defmt-print, which `run` pipes the UART through;
#                               log: text formatted on the board, the `log` crate)
#   NETBT_FW_LOG=off|error|warn|info|debug|trace   the level (default info); messages under it
#                               are left out of the build; off: no logger at all
#   NETBT_FW_WINS=IP            an H-node registering with that WINS server (the library's `wins`
#                               feature)
#   NETBT_FW_PANIC=full         a panic says its message and location, not just "panic" (12-15 KiB)
# Every build other than the default (defmt, info, no WINS) has a target directory of its own,
# target/firmware-LOGGER-LEVEL (target/firmware-log-off without logs), with NETBT_FW_WINS
# target/firmware-wins-LOGGER-LEVEL.
set -euo pipefail
cd "$(dirname "$0")/.."

TARGET=thumbv7m-none-eabi
ELF=target/$TARGET/release/examples/firmware
# One more session slot, built apart (its own target directory keeps both builds cached).
SLOT_DIR=target/firmware-extra-slot
# The logging-off and text-log builds `build` measures beside the default one.
NOLOG_DIR=target/firmware-log-off
TEXTLOG_DIR=target/firmware-log-info
# The host decoder of the defmt frames (the version that reads defmt 1's wire format).
DEFMT_PRINT_VERSION=1.2.0

# log_features LOGGER LEVEL: the cargo features of that build. With `log` the level caps the
# crate's static level too: messages under it (the library's and smoltcp's debug and trace
# messages at the default, info) are not in the build; with `defmt`, DEFMT_LOG does the same.
log_features() {
    case "$2" in
        off) echo "--no-default-features"; return ;;
        error | warn | info | debug | trace) ;;
        *) echo "NETBT_FW_LOG: off, error, warn, info, debug or trace" >&2; exit 2 ;;
    esac
    case "$1" in
        defmt) echo "--no-default-features --features defmt" ;;
        log) if [ "$2" = trace ]; then echo "--no-default-features --features log"
             else echo "--no-default-features --features log,log/release_max_level_$2"; fi ;;
        *) echo "NETBT_FW_LOGGER: defmt or log" >&2; exit 2 ;;
    esac
}
LOGGER=${NETBT_FW_LOGGER:-defmt}
LOG_LEVEL=${NETBT_FW_LOG:-info}
read -r -a FEATURES <<<"$(log_features "$LOGGER" "$LOG_LEVEL")"
# Other builds live apart, so the default firmware stays cached.
FW_DIR=()
if [ "$LOG_LEVEL" = off ]; then
    FW_DIR=(--target-dir "$NOLOG_DIR")
elif [ "$LOGGER" != defmt ] || [ "$LOG_LEVEL" != info ]; then
    FW_DIR=(--target-dir "target/firmware-$LOGGER-$LOG_LEVEL")
fi
if [ -n "${NETBT_FW_WINS:-}" ]; then
    FEATURES+=(--features wins)
    FW_DIR=(--target-dir "target/firmware-wins-$LOGGER-$LOG_LEVEL")
fi
if [ "${#FW_DIR[@]}" -gt 0 ]; then
    ELF=${FW_DIR[1]}/$TARGET/release/examples/firmware
fi

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
        echo "need root to run: $*" >&2; return 1; fi
}

# Whether this build's logs are defmt frames.
defmt_logs() { [ "$LOGGER" = defmt ] && [ "$LOG_LEVEL" != off ]; }

setup() {
    rustup target list --installed | grep -qx "$TARGET" || rustup target add "$TARGET"
    if defmt_logs && ! command -v defmt-print >/dev/null; then
        cargo install --quiet --locked defmt-print --version "$DEFMT_PRINT_VERSION"
    fi
    if ! command -v qemu-system-arm >/dev/null; then
        as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
            qemu-system-arm
    fi
}

# cargo build of the firmware; extra arguments go to cargo. The linker script (cortex-m-rt's
# link.x, which includes examples/firmware/memory.x) and the size-oriented profile apply to this
# target only: host builds and the library's thumbv7em check are untouched.
cargo_firmware() {
    # Panic locations name their source files: without the registry's path prefix they take
    # less flash.
    local remap=() dir
    for dir in "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/; do
        [ -d "$dir" ] && remap+=("--remap-path-prefix=$dir=")
    done
    # --icf=all: the linker keeps one copy of functions (and constants) with identical code;
    # Rust promises no distinct addresses for them.
    # defmt's linker script keeps its interned strings in the ELF, outside the loaded sections.
    local defmt_link=""
    defmt_logs && defmt_link="-C link-arg=-Tdefmt.x"
    DEFMT_LOG=$LOG_LEVEL \
    CARGO_TARGET_THUMBV7M_NONE_EABI_RUSTFLAGS="-C link-arg=-Tlink.x $defmt_link -C link-arg=--icf=all -L $PWD/examples/firmware ${remap[*]}" \
    CARGO_PROFILE_RELEASE_OPT_LEVEL=z \
    CARGO_PROFILE_RELEASE_LTO=fat \
    CARGO_PROFILE_RELEASE_CODEGEN_UNITS=1 \
        cargo build --quiet --release --example firmware --target "$TARGET" "${FEATURES[@]}" \
            "${FW_DIR[@]}" "$@"
}

# Allocated section sizes of an ELF file: "name size" lines (read with python, so no ARM
# binutils are needed).
sections() {
    python3 - "$1" <<'PY'
import struct, sys
data = open(sys.argv[1], "rb").read()
assert data[:4] == b"\x7fELF" and data[4] == 1, "not a 32-bit ELF file"
shoff, = struct.unpack_from("<I", data, 0x20)
shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x2E)
def header(i):
    return struct.unpack_from("<IIIIIIIIII", data, shoff + i * shentsize)
strtab = header(shstrndx)[4]
for i in range(shnum):
    name, kind, flags, addr, offset, size = header(i)[:6]
    if flags & 2 and size:  # SHF_ALLOC
        end = data.index(b"\0", strtab + name)
        print(data[strtab + name:end].decode(), size)
PY
}

# footprint ELF -> "flash ram data bss" (flash: vector table, code and constants; RAM: .data,
# .bss and .uninit; the stack comes on top, measured at run time)
footprint() {
    sections "$1" | awk '
        $1 == ".vector_table" || $1 == ".text" || $1 == ".rodata" { flash += $2 }
        $1 == ".data" { data += $2 }
        $1 == ".bss" || $1 == ".uninit" { bss += $2 }
        END { printf "%d %d %d %d\n", flash, data + bss, data, bss }'
}

build() {
    setup
    cargo_firmware
    # (The default firmware plus one slot, and without logging, whatever NETBT_FW_WINS says.)
    (FW_DIR=(); unset NETBT_FW_WINS; NETBT_FW_SESSIONS=3 cargo_firmware --target-dir "$SLOT_DIR")
    (FW_DIR=(); unset NETBT_FW_WINS; LOG_LEVEL=off
        read -r -a FEATURES <<<"$(log_features "$LOGGER" off)"
        cargo_firmware --target-dir "$NOLOG_DIR")
    (FW_DIR=(); unset NETBT_FW_WINS; LOGGER=log LOG_LEVEL=info
        read -r -a FEATURES <<<"$(log_features log info)"
        cargo_firmware --target-dir "$TEXTLOG_DIR")
    local flash ram data bss flash3 ram3 flash_nolog data_nolog flash_text data_text
    read -r flash ram data bss < <(footprint "$ELF")
    read -r flash3 ram3 _ _ < <(footprint "$SLOT_DIR/$TARGET/release/examples/firmware")
    read -r flash_nolog _ data_nolog _ < <(footprint "$NOLOG_DIR/$TARGET/release/examples/firmware")
    read -r flash_text _ data_text _ < <(footprint "$TEXTLOG_DIR/$TARGET/release/examples/firmware")
    echo "firmware: $ELF"
    sections "$ELF" | awk '{ printf "  %-14s %8d\n", $1, $2 }'
    printf 'footprint (2 session slots + 1 refusal slot):\n'
    printf '  flash %7d bytes (%.1f KiB) = .vector_table + .text + .rodata + .data initial values %d (logs: %s, %s)\n' \
        "$((flash + data))" "$(echo "($flash + $data) / 1024" | bc -l)" "$data" "$LOGGER" "$LOG_LEVEL"
    printf '  flash %7d bytes (%.1f KiB) with logging off (NETBT_FW_LOG=off)\n' \
        "$((flash_nolog + data_nolog))" "$(echo "($flash_nolog + $data_nolog) / 1024" | bc -l)"
    printf '  flash %7d bytes (%.1f KiB) with text logs at info (NETBT_FW_LOGGER=log)\n' \
        "$((flash_text + data_text))" "$(echo "($flash_text + $data_text) / 1024" | bc -l)"
    printf '  RAM   %7d bytes (%.1f KiB) = .data %d + .bss %d, plus the stack\n' "$ram" \
        "$(echo "$ram / 1024" | bc -l)" "$data" "$bss"
    printf '  per session slot %d bytes of RAM (3 slots minus 2), %d bytes of flash\n' \
        "$((ram3 - ram))" "$((flash3 - flash))"
}

run() {
    local tap=${1:-tap0}
    if [ ! -e "/sys/class/net/$tap" ]; then
        echo "no TAP $tap in this network namespace (scripts/lab.sh up makes one)" >&2
        exit 2
    fi
    setup
    cargo_firmware
    # -nic: the board's on-board LAN9118 (nd_table[0]) on the TAP. Semihosting lets a fatal
    # error end QEMU with a failure exit code. UART0 goes to stdout, through defmt-print when
    # it carries defmt frames. Either way this process becomes QEMU (exec): its exit code is
    # QEMU's, and a signal to it stops QEMU; defmt-print then reads the end of its input and
    # exits too.
    local qemu=(qemu-system-arm -M mps2-an385 -kernel "$ELF"
        -nic "tap,ifname=$tap,script=no,downscript=no,model=lan9118,mac=02:00:00:00:00:01"
        -semihosting-config enable=on,target=native
        -display none -monitor none -serial stdio)
    if defmt_logs; then
        exec "${qemu[@]}" > >(exec defmt-print -e "$ELF" --log-format '[{t}] {L} {s}')
    else
        exec "${qemu[@]}"
    fi
}

case "${1:-}" in
    build) build ;;
    run) shift; run "$@" ;;
    elf) echo "$ELF" ;;
    *) sed -n '2,26p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
