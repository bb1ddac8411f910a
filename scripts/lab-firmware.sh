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
#   5 tshark: no reset from port 139, the 0x83 response on the wire, nothing malformed; the
#     firmware counted no reset either
#
# KEEP_LAB_LOGS=1 keeps the logs.
# shellcheck disable=SC2015  # `test && pass || fail`: pass only echoes, it cannot fail
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lab-lib.sh

export NETBT_NS="netbt-fw-$$"
WORK=$(mktemp -d /tmp/netbt-lab-firmware.XXXXXX)
SERVER=192.168.69.1
PY=/usr/bin/python3

# Everything this script starts runs inside its namespace (tcpdump, QEMU, the clients).
cleanup() {
    stop_ns "$NETBT_NS"
    scripts/lab.sh down >/dev/null 2>&1 || true
    drop_work
}
trap cleanup EXIT
on_signals

echo "firmware lab: build"
scripts/firmware.sh build | tee "$WORK/build.out"
expect "footprint printed" "^  flash +[0-9]+ bytes" "$WORK/build.out"
expect "per-slot cost printed" "per session slot [0-9]+ bytes of RAM" "$WORK/build.out"

scripts/lab.sh up >/dev/null
in_ns tcpdump -i tap0 --immediate-mode -U -n -w "$WORK/tap0.pcap" 2>"$WORK/tcpdump.err" &
tcpdump_pid=$!
for _ in $(seq 50); do grep -q "listening on" "$WORK/tcpdump.err" 2>/dev/null && break; sleep 0.1; done

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
in_ns timeout 60 "$PY" - "$SERVER" >"$WORK/sessions.out" 2>&1 <<'PYEOF' || true
import socket, struct, sys, time

SERVER = sys.argv[1]

def enc(name, suffix):
    raw = name.encode().ljust(15, b" ") + bytes([suffix])
    return b"\x20" + bytes(x for c in raw for x in (0x41 + (c >> 4), 0x41 + (c & 15))) + b"\0"

def recv_exact(s, n):
    data = b""
    while len(data) < n:
        chunk = s.recv(n - len(data))
        if not chunk:
            raise EOFError("closed after %d of %d bytes" % (len(data), n))
        data += chunk
    return data

def request(calling):
    s = socket.create_connection((SERVER, 139), timeout=10)
    body = enc("NETBT", 0x20) + enc(calling, 0x00)
    s.sendall(struct.pack(">BBH", 0x81, 0, len(body)) + body)
    header = recv_exact(s, 4)
    length = ((header[1] & 1) << 16) | struct.unpack(">H", header[2:4])[0]
    return s, header + recv_exact(s, length)

def echo(s, payload):
    n = len(payload)
    s.sendall(bytes([0, n >> 16]) + struct.pack(">H", n & 0xFFFF) + payload)
    header = recv_exact(s, 4)
    length = ((header[1] & 1) << 16) | struct.unpack(">H", header[2:4])[0]
    return header[0], length, recv_exact(s, length)

a, answer = request("CLIENTA")
print("A response", answer.hex(" "), flush=True)
kind, length, body = echo(a, b"hello")
print("A echo", "%02x" % kind, length, body.decode(errors="replace"), flush=True)
big = bytes((i * 7 + 3) & 0xFF for i in range(70000))
kind, length, body = echo(a, big)
print("A echo 70000", "%02x" % kind, length, "same" if body == big else "DIFFERENT", flush=True)

b, answer = request("CLIENTB")
print("B response", answer.hex(" "), flush=True)
c, answer = request("CLIENTC")
print("C response", answer.hex(" "), flush=True)
# The refused client closes first, as it should; the held sessions close after.
c.close()
kind, length, body = echo(b, b"still here")
print("B echo", "%02x" % kind, length, body.decode(errors="replace"), flush=True)
time.sleep(0.5)
a.close()
b.close()
time.sleep(1)
print("done", flush=True)
PYEOF
expect "session to NETBT<20> accepted: 82 00 00 00" "^A response 82 00 00 00$" "$WORK/sessions.out"
expect "session message echoed" "^A echo 00 5 hello$" "$WORK/sessions.out"
expect "70000-byte message echoed (length extension bit, streamed through 2 KiB windows)" \
    "^A echo 70000 00 70000 same$" "$WORK/sessions.out"
expect "second concurrent session accepted" "^B response 82 00 00 00$" "$WORK/sessions.out"
expect "third concurrent session refused: 83 00 00 01 83" "^C response 83 00 00 01 83$" "$WORK/sessions.out"
expect "held session still echoes after the refusal" "^B echo 00 10 still here$" "$WORK/sessions.out"
expect "client finished" "^done$" "$WORK/sessions.out"

# Let the firmware log its status after the closes.
sleep 1
kill "$tcpdump_pid" 2>/dev/null || true
wait "$tcpdump_pid" 2>/dev/null || true
kill -0 "$qemu_pid" 2>/dev/null && pass "firmware still running" || fail "QEMU exited; UART: $(tail -3 "$WORK/uart.out")"
expect "UART: refusal logged" "refused: Called name present, but insufficient resources \(0x83\)" "$WORK/uart.out"
{ grep "status:" "$WORK/uart.out" || true; } | tail -1 | tr -d '\r' >"$WORK/status.out"
expect "UART: the firmware sent no reset" "resets sent 0;" "$WORK/status.out"

T="tshark -n -r $WORK/tap0.pcap"
resets=$(count "tcp.srcport == 139 && tcp.flags.reset == 1")
[ "$resets" -eq 0 ] && pass "capture: no RST from port 139" || fail "capture: $resets RSTs from port 139"
refusals=$(count "nbss.type == 0x83 && tcp.srcport == 139")
[ "$refusals" -eq 1 ] && pass "capture: one negative session response from 139" || fail "capture: $refusals negative responses"
bad=$(count '_ws.malformed || _ws.expert.severity == error')
[ "$bad" -eq 0 ] && pass "capture: nothing malformed" || fail "capture: tshark flags $bad frames"

echo "firmware: $(grep -Eo 'start-up stack [0-9]+ bytes' "$WORK/uart.out" | head -1), loop $(grep -Eo 'stack used [0-9]+ bytes' "$WORK/status.out")"
if [ "$failures" -ne 0 ]; then
    echo "firmware lab: $failures failed; UART log:"
    tr -d '\r' <"$WORK/uart.out" | sed 's/^/    /'
    exit 1
fi
echo "firmware lab: all passed"
