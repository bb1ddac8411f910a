#!/usr/bin/env bash
# Firmware lab: the no_std firmware (examples/firmware/) in QEMU (mps2-an385, Cortex-M3 with a
# LAN9118) on a TAP in a network namespace of its own, answering real clients; every frame
# captured on the kernel side and checked by tshark. Needs root. Deletes everything it starts,
# also on failure; every wait is bounded.
#
#   1 the firmware builds (footprint printed) and says it is ready on the UART
#   2 nmblookup -U finds NETBT<00>; nmblookup -A lists NETBT<00>, NETBT<20> and the MAC
#   3 a session to NETBT<20>: 82 00 00 00, then messages of 5 and 70000 bytes echoed
#   4 two sessions held, a third gets 83 00 00 01 83 (insufficient resources)
#   5 the browse list: Samba's nmbd, started as local master browser of WORKGROUP (the
#     firmware's default workgroup), sends an AnnouncementRequest when it becomes master; the
#     firmware answers within 30 s and nmbd lists NETBT with the firmware's comment
#   6 tshark: no reset from port 139, the 0x83 response on the wire, nothing malformed (the
#     browser frames included), no ICMP port unreachable; the firmware counted no reset either
#
# KEEP_LAB_LOGS=1 keeps the logs.
# shellcheck disable=SC2015  # `test && pass || fail`: pass only echoes, it cannot fail
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lab-lib.sh
. scripts/smbd-lib.sh

# LAB_PREFIX names the namespace (parallel runs keep apart by prefix and process id).
export NETBT_NS="${LAB_PREFIX:-netbt-fw}-$$"
WORK=$(mktemp -d /tmp/netbt-lab-firmware.XXXXXX)
SERVER=192.168.69.1
NETBT=./target/release/netbt   # its `probe` is the session client

# Everything this script starts runs inside its namespace (tcpdump, QEMU, the clients).
on_exit

echo "firmware lab: build"
cargo build --release --quiet
scripts/firmware.sh build | tee "$WORK/build.out"
expect "footprint printed" "^  flash +[0-9]+ bytes" "$WORK/build.out"
expect "per-slot cost printed" "per session slot [0-9]+ bytes of RAM" "$WORK/build.out"

scripts/lab.sh up >/dev/null
in_ns tcpdump -i tap0 --immediate-mode -U -n -w "$WORK/tap0.pcap" 2>"$WORK/tcpdump.err" &
tcpdump_pid=$!
wait_for "listening on" "$WORK/tcpdump.err" 50 || true

echo "firmware lab: QEMU mps2-an385 on tap0 of $NETBT_NS"
in_ns scripts/firmware.sh run tap0 >"$WORK/uart.out" 2>"$WORK/qemu.err" &
qemu_pid=$!
# The firmware waits up to 2 s for a first frame to seed from, then registers its names (about
# 1 s). The queries below provide that frame.
ready=0
for _ in $(seq 30); do
    kill -0 "$qemu_pid" 2>/dev/null || break
    if in_ns timeout 5 nmblookup -U "$SERVER" NETBT >"$WORK/u.out" 2>&1 && grep -q "NETBT<00>" "$WORK/u.out"; then
        ready=1
        break
    fi
    sleep 0.5
done
if [ "$ready" -ne 1 ]; then
    fail "no answer to nmblookup -U $SERVER NETBT within the bound; UART:"
    sed 's/^/         /' "$WORK/uart.out" "$WORK/qemu.err"
    exit 1
fi
expect "UART: ready line" "netbt ready on lan9118 192\.168\.69\.1/24 names NETBT<00> NETBT<20>" "$WORK/uart.out"
expect "UART: seeded from the first frame's timing" "seed: timing of the first frame" "$WORK/uart.out"
expect "nmblookup -U finds NETBT<00>" "^192\.168\.69\.1 NETBT<00>" "$WORK/u.out"

in_ns timeout 10 nmblookup -A "$SERVER" >"$WORK/a.out" 2>&1 || true
expect "node status lists NETBT<00>" "NETBT +<00> - +B <ACTIVE>" "$WORK/a.out"
expect "node status lists NETBT<20>" "NETBT +<20> - +B <ACTIVE>" "$WORK/a.out"
expect "node status carries the MAC" "MAC Address = 02-00-00-00-00-01" "$WORK/a.out"

echo "firmware lab: sessions (2 session slots + 1 refusal slot)"
# A echoes 5 and 70000 bytes, then holds its session; B holds one; C, refused while both are
# held, closes first; then A and B are released, echo 16 bytes once more, and close.
fw_probe() { # fw_probe OUT ARGS...: a session to NETBT<20>, held until $WORK/release exists
    local out=$1
    shift
    in_ns timeout 60 "$NETBT" probe "$SERVER" NETBT --timeout 10 --hold-until "$WORK/release" \
        --hold-max 30 "$@" >"$out" 2>&1
}
fw_probe "$WORK/a.session" --calling CLIENTA --echo 5,70000 &
a_pid=$!
wait_for "^ECHO=[A-Z]+ SIZE=70000 |^RESULT=[^P]" "$WORK/a.session" 200 || true
fw_probe "$WORK/b.session" --calling CLIENTB &
b_pid=$!
wait_for "^RESULT=" "$WORK/b.session" 100 || true
in_ns timeout 30 "$NETBT" probe "$SERVER" NETBT --calling CLIENTC --timeout 10 >"$WORK/c.session" 2>&1 || true
touch "$WORK/release"
wait "$a_pid" "$b_pid" || true
expect "session to NETBT<20> accepted: 82 00 00 00" "^RESULT=POSITIVE BYTES=82000000 " "$WORK/a.session"
expect "session message echoed" "^ECHO=OK SIZE=5 " "$WORK/a.session"
expect "70000-byte message echoed (length extension bit, streamed through 2 KiB windows)" \
    "^ECHO=OK SIZE=70000 " "$WORK/a.session"
expect "second concurrent session accepted" "^RESULT=POSITIVE BYTES=82000000 " "$WORK/b.session"
expect "third concurrent session refused: 83 00 00 01 83" "^RESULT=NEGATIVE CODE=0x83 BYTES=8300000183 " \
    "$WORK/c.session"
expect "held session still echoes after the refusal" "^STILL_ALIVE=OK " "$WORK/b.session"
expect_count "clients finished: both held sessions released by the client" \
    "$(cat "$WORK/a.session" "$WORK/b.session" | grep -c '^RELEASED=FILE ')" 2

echo "firmware lab: nmbd as master browser of WORKGROUP lists the firmware"
command -v nmbd >/dev/null || ensure_smbd "$WORK/apt.log"
NMBD="$WORK/nmbd"
write_nmbd_conf "$NMBD" WORKGROUP tap0
in_ns setsid nmbd --foreground --no-process-group -s "$NMBD/smb.conf" >"$WORK/nmbd.out" 2>&1 &
if wait_for "is now a local master browser for workgroup WORKGROUP" "$NMBD/log/nmbd.log" 600; then
    pass "nmbd is the local master browser of WORKGROUP"
else
    fail "nmbd did not become the local master browser within 60 s"
fi
# nmbd's AnnouncementRequest gets the firmware's answer within 30 s; nmbd writes browse.dat
# within 5 s of a change.
listed=0
for _ in $(seq 400); do
    browse_listed "$NMBD" NETBT >"$WORK/listed.out" && { listed=1; break; }
    sleep 0.1
done
[ "$listed" = 1 ] && pass "browse.dat lists NETBT" || fail "NETBT not in nmbd's browse list 40 s after it became master"
expect "browse.dat: NETBT with the firmware's comment, server and workstation" \
    '^"NETBT" +[0-9a-f]*9003 +"netbt firmware [0-9.]+" +"WORKGROUP"' "$WORK/listed.out"

# Let the firmware log its status after the closes.
sleep 1
kill "$tcpdump_pid" 2>/dev/null || true
wait "$tcpdump_pid" 2>/dev/null || true
kill -0 "$qemu_pid" 2>/dev/null && pass "firmware still running" || fail "QEMU exited; UART: $(tail -3 "$WORK/uart.out")"
expect "UART: refusal logged" "refused: Called name present, but insufficient resources \(0x83\)" "$WORK/uart.out"
{ grep "status:" "$WORK/uart.out" || true; } | tail -1 | tr -d '\r' >"$WORK/status.out"
expect "UART: the firmware sent no reset" "resets sent 0;" "$WORK/status.out"

CAP="$WORK/tap0.pcap"
expect_count "capture: no RST from port 139" "$(count "$CAP" "tcp.srcport == 139 && tcp.flags.reset == 1")" 0
expect_count "capture: one negative session response from 139" "$(count "$CAP" "nbss.type == 0x83 && tcp.srcport == 139")" 1
expect_count "capture: nothing malformed" "$(count "$CAP" '_ws.malformed || _ws.expert.severity == error')" 0
expect_at_least "capture: HostAnnouncements of NETBT to WORKGROUP<1d>" \
    "$(count "$CAP" 'browser.command == 0x01 && browser.server == "NETBT" && nbdgm.destination_name == "WORKGROUP<1d>" && ip.src == 192.168.69.1 && udp.srcport == 138')" 2
expect_count "capture: no ICMP port unreachable from the firmware" "$(count "$CAP" "icmp.type == 3 && ip.src == $SERVER")" 0
# nmbd's AnnouncementRequest, and the firmware's next announcement within 30 s of it (the
# firmware draws a delay of 0-30 s by its own clock, which QEMU runs a little slow on a busy
# host: up to 2 s more by the capture's clock).
request_at=$(tshark -n -r "$CAP" -Y "browser.command == 0x02" -T fields -e frame.time_epoch 2>/dev/null | head -1)
if [ -n "$request_at" ]; then
    answer=$(tshark -n -r "$CAP" -Y "browser.command == 0x01 && ip.src == $SERVER" -T fields \
        -e frame.time_epoch 2>/dev/null | awk -v r="$request_at" '$1 > r {printf "%.1f", $1 - r; exit}')
    if [ -n "$answer" ] && awk -v a="$answer" 'BEGIN{exit !(a <= 32)}'; then
        pass "capture: the firmware answered nmbd's AnnouncementRequest after $answer s"
    else
        fail "capture: no announcement within 30 s of nmbd's AnnouncementRequest (${answer:-none})"
    fi
else
    fail "capture: no AnnouncementRequest from nmbd"
fi

echo "firmware: $(grep -Eo 'start-up stack [0-9]+ bytes' "$WORK/uart.out" | head -1), loop $(grep -Eo 'stack used [0-9]+ bytes' "$WORK/status.out")"
if [ "$failures" -ne 0 ]; then
    echo "firmware lab: $failures failed; UART log:"
    tr -d '\r' <"$WORK/uart.out" | sed 's/^/    /'
    exit 1
fi
echo "firmware lab: all passed"
