#!/usr/bin/env bash
# The one test command: installs what it needs when missing, then runs every tier.
#
#   scripts/test.sh            everything (needs root for the lab tier once it exists)
#
# Tiers: formatting and lints; unit and in-process tests (cargo test, which also checks every
# emitted packet kind with tshark); the no_std build for a Cortex-M4F; the documentation; the
# lab (root: the daemon on a TAP in a namespace, driven by nmblookup and impacket).
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\n==> %s\n' "$*"; }

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
        echo "need root to run: $*" >&2; return 1; fi
}

apt_install() {
    local missing=()
    for pkg in "$@"; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
    [ ${#missing[@]} -eq 0 ] && return 0
    log "installing ${missing[*]}"
    echo "wireshark-common wireshark-common/install-setuid boolean false" | as_root debconf-set-selections
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
}

log "setup"
apt_install tshark tcpdump samba-common-bin smbclient python3-impacket iproute2 jq
rustup component list --installed 2>/dev/null | grep -q '^rustfmt' || rustup component add rustfmt
rustup component list --installed 2>/dev/null | grep -q '^clippy' || rustup component add clippy
rustup target list --installed | grep -qx thumbv7em-none-eabihf || rustup target add thumbv7em-none-eabihf

log "cargo fmt --check"
cargo fmt --all -- --check

log "cargo clippy"
cargo clippy --all-targets -- -D warnings

log "cargo test (unit, property, tshark, cli)"
cargo test

log "no_std build for thumbv7em-none-eabihf"
cargo build --lib --no-default-features --target thumbv7em-none-eabihf
# The log feature must stay no_std as well.
cargo build --lib --no-default-features --features log --target thumbv7em-none-eabihf
# And defmt: every message and event of every feature implements defmt's Format (the level does
# not matter: defmt type-checks the messages it leaves out).
cargo build --lib --no-default-features --features defmt,wins,retarget --target thumbv7em-none-eabihf

log "cargo doc"
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps

log "lab tier: netbt serve on a TAP in a namespace, real clients, tshark"
if [ "$(id -u)" -eq 0 ]; then
    scripts/lab-test.sh
    scripts/lab-sessions.sh
    scripts/lab-firmware.sh
    scripts/lab-forward.sh
    scripts/lab-example.sh
    scripts/lab-wins.sh
    scripts/lab-datagram.sh
    scripts/lab-hostile.sh
    scripts/lab-retarget.sh
else
    echo "lab tier needs root (network namespaces): run scripts/test.sh as root" >&2
    exit 1
fi

log "all tests passed"
