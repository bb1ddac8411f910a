#!/usr/bin/env bash
# Lab tier: the real `netbt serve` on a TAP inside a network namespace this script creates,
# driven by real clients (nmblookup, impacket), every frame captured on the kernel side and
# checked by tshark. A second namespace holds two netbt instances on one bridge claiming the same
# name. Needs root. Deletes everything it starts, also on failure.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lab-lib.sh

export NETBT_NS="netbt-test-$$"
PAIR_NS="netbt-pair-$$"         # the two-instance conflict lab: br0 with tap0 and tap1
WORK=$(mktemp -d /tmp/netbt-lab-test.XXXXXX)
NETBT=./target/release/netbt
SERVER=192.168.69.1
PY=/usr/bin/python3            # Debian's python, where python3-impacket lives
pids=()

# Everything this script starts runs inside its two namespaces. netbt releases its names before
# it exits (bounded by 3 s); stop_ns waits for that, then insists.
cleanup() {
    local pid
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    stop_ns "$NETBT_NS"
    scripts/lab.sh down >/dev/null 2>&1 || true
    if ip netns list | awk '{print $1}' | grep -qx "$PAIR_NS"; then
        stop_ns "$PAIR_NS"
        ip netns del "$PAIR_NS" 2>/dev/null || true
    fi
    drop_work
}
trap cleanup EXIT
on_signals

cargo build --release --quiet
scripts/lab.sh up >/dev/null

# tcpdump runs with --immediate-mode: otherwise libpcap keeps the last frames in a ring block the
# kernel has not yet handed over (up to 1 s), and tcpdump exits without them.

ip netns exec "$NETBT_NS" tcpdump -i tap0 --immediate-mode -U -n -w "$WORK/tap0.pcap" 2>"$WORK/tcpdump.err" &
tcpdump_pid=$!
pids+=("$tcpdump_pid")
wait_for "listening on" "$WORK/tcpdump.err" 50 || true

echo "lab: netbt serve --name LABSRV --group LABGRP"
ip netns exec "$NETBT_NS" "$NETBT" serve --name LABSRV --group LABGRP >"$WORK/serve.out" 2>"$WORK/serve.err" &
serve_pid=$!
pids+=("$serve_pid")
wait_for ready "$WORK/serve.out" 50 || true
expect "ready line names every name" "ready on tap0 192.168.69.1/24 names LABSRV<00> LABSRV<20> LABGRP<00>" "$WORK/serve.out"

in_ns nmblookup -U "$SERVER" LABSRV >"$WORK/u.out" 2>&1 || true
expect "nmblookup -U finds LABSRV<00>" "^192\.168\.69\.1 LABSRV<00>$" "$WORK/u.out"

in_ns nmblookup -B 192.168.69.255 'LABSRV#20' >"$WORK/b.out" 2>&1 || true
expect "nmblookup -B finds LABSRV<20>" "^192\.168\.69\.1 LABSRV<20>$" "$WORK/b.out"

in_ns nmblookup -A "$SERVER" >"$WORK/a.out" 2>&1 || true
expect "node status lists LABSRV<00>" "LABSRV +<00> - +B <ACTIVE>" "$WORK/a.out"
expect "node status lists LABSRV<20>" "LABSRV +<20> - +B <ACTIVE>" "$WORK/a.out"
expect "node status lists group LABGRP<00>" "LABGRP +<00> - <GROUP> B <ACTIVE>" "$WORK/a.out"
expect "node status carries the MAC" "MAC Address = 02-00-00-00-00-01" "$WORK/a.out"

in_ns nmblookup -U "$SERVER" -d 3 --debug-stdout NOSUCH >"$WORK/n.out" 2>&1 || true
expect "unknown name answered negatively (not a timeout)" "Negative name query response, rcode 0x03" "$WORK/n.out"

in_ns "$PY" - "$SERVER" >"$WORK/imp.out" 2>&1 <<'PYEOF' || true
import sys
from impacket.nmb import NetBIOS
n = NetBIOS()
entries = n.getnodestatus('*', sys.argv[1], timeout=2)
for e in entries:
    print("NAME", e['NAME'].decode().strip(), "%02x" % e['TYPE'], e['NAME_FLAGS'])
print("MAC", n.getmacaddress())
PYEOF
expect "impacket getnodestatus lists LABSRV<20>" "^NAME LABSRV 20 1024$" "$WORK/imp.out"
expect "impacket getnodestatus lists group LABGRP<00>" "^NAME LABGRP 00 33792$" "$WORK/imp.out"
expect "impacket reads the MAC" "^MAC 02-00-00-00-00-01$" "$WORK/imp.out"

# netbt status over the control socket: names, a held session, the ledger, the counters.
CONTROL="/run/netbt/tap0@$NETBT_NS.sock"
[ -S "$CONTROL" ] && pass "control socket at $CONTROL" || fail "no control socket at $CONTROL"
# A session from PROBE<00> to LABSRV<20>, held until the status is read (at most 10 s).
in_ns "$NETBT" probe "$SERVER" LABSRV --calling PROBE --hold-until "$WORK/release" --hold-max 10 \
    >"$WORK/hold.out" 2>&1 &
hold_pid=$!
pids+=("$hold_pid")
wait_for "^RESULT=" "$WORK/hold.out" 30 || true
in_ns "$NETBT" status >"$WORK/status.txt" 2>&1 || true
in_ns "$NETBT" status --json >"$WORK/status.json" 2>&1 || true
touch "$WORK/release"
wait "$hold_pid" 2>/dev/null || true
expect "the held session was accepted" "^RESULT=POSITIVE " "$WORK/hold.out"
expect "status: LABSRV<20> registered and listening" "^  LABSRV<20> +unique +Registered +listening$" "$WORK/status.txt"
expect "status: LABGRP<00> a registered group" "^  LABGRP<00> +group +Registered +-$" "$WORK/status.txt"
expect "status: the held session" "^  [0-9]+ +session +Established +192\.168\.69\.100:[0-9]+ +LABSRV<20> +PROBE<00> " "$WORK/status.txt"
expect "status: ledger" "^  busy +[1-9]$" "$WORK/status.txt"
expect_json "status --json: names" \
    'any(.names[]; .name == "LABSRV<20>" and .suffix == 32 and .group == false and .state == "Registered" and .listening)' "$WORK/status.json"
expect_json "status --json: the session" \
    'any(.sessions[]; .phase == "Established" and (.peer | test("^192\\.168\\.69\\.100:[0-9]+$")) and .called == "LABSRV<20>" and .calling == "PROBE<00>")' "$WORK/status.json"
expect_json "status --json: positive responses counted" '.counters.sessions.positive > 0' "$WORK/status.json"
expect_json "status --json: node status counted" '.counters.names.node_status_answered > 0' "$WORK/status.json"
expect_json "status --json: no resets from 139" '.counters.sessions.gate.resets_sent == 0' "$WORK/status.json"
kernel_dropped=$(ip netns exec "$NETBT_NS" cat /sys/class/net/tap0/statistics/tx_dropped 2>/dev/null || echo missing)
expect_json "status --json: the kernel's drops on the TAP ($kernel_dropped in the namespace's sysfs now)" \
    '.counters.tap.kernel_dropped | type == "number"' "$WORK/status.json"
expect_json "status --json: the name service counts what it could not send" \
    '.counters.names.unsent == 0' "$WORK/status.json"

kill -TERM "$serve_pid"
rc=0
wait "$serve_pid" || rc=$?
expect_count "SIGTERM: exit 0" "$rc" 0
expect "release logged" "names released, exiting" "$WORK/serve.err"
[ ! -e "$CONTROL" ] && pass "control socket removed on exit" || fail "control socket $CONTROL left behind"
sleep 0.3
kill "$tcpdump_pid" 2>/dev/null || true
wait "$tcpdump_pid" 2>/dev/null || true

CAP="$WORK/tap0.pcap"
expect_count "9 releases on the wire (3 names x 3)" "$(count "$CAP" "nbns.flags.opcode == 6 && ip.src == $SERVER")" 9
expect_count "9 registration broadcasts (3 names x 3)" "$(count "$CAP" "nbns.flags == 0x2910 && ip.src == $SERVER")" 9
expect_count "3 overwrite demands" "$(count "$CAP" "nbns.flags == 0x2810 && ip.src == $SERVER")" 3
expect_count "every NBNS packet from us leaves UDP 137" \
    "$(count "$CAP" "nbns && ip.src == $SERVER && udp.srcport != 137")" 0
expect_count "no NBNS packet with a broadcast source" \
    "$(count "$CAP" "nbns && (ip.src == 192.168.69.255 || ip.src == 255.255.255.255)")" 0
expect_count "tshark: nothing malformed" \
    "$(count "$CAP" '_ws.malformed || nbss.continuation_data || _ws.expert.severity == error || nbns.name contains "Illegal"')" 0

echo "lab: two instances on one bridge claim LABSRV"
A=192.168.69.1
B=192.168.69.2
bridge_with_taps "$PAIR_NS" 192.168.69.100 tap0 tap1
in_pair() { ip netns exec "$PAIR_NS" "$@"; }

ip netns exec "$PAIR_NS" tcpdump -i br0 --immediate-mode -U -n -w "$WORK/br0.pcap" 2>"$WORK/pair-tcpdump.err" &
pair_tcpdump=$!
pids+=("$pair_tcpdump")
wait_for "listening on" "$WORK/pair-tcpdump.err" 50 || true

RUST_LOG=info ip netns exec "$PAIR_NS" "$NETBT" serve --tap tap0 --ip "$A/24" --mac 02:00:00:00:00:01 \
    --name LABSRV >"$WORK/a.serve.out" 2>"$WORK/a.serve.err" &
a_pid=$!
pids+=("$a_pid")
wait_for ready "$WORK/a.serve.out" 50 || true
expect "A ready with LABSRV" "ready on tap0 192\.168\.69\.1/24 names LABSRV<00> LABSRV<20>$" "$WORK/a.serve.out"

RUST_LOG=info ip netns exec "$PAIR_NS" "$NETBT" serve --tap tap1 --ip "$B/24" --mac 02:00:00:00:00:02 \
    --name LABSRV --name OTHER >"$WORK/b.serve.out" 2>"$WORK/b.serve.err" &
b_pid=$!
pids+=("$b_pid")
wait_for ready "$WORK/b.serve.out" 50 || true
expect "B ready" "ready on tap1 192\.168\.69\.2/24" "$WORK/b.serve.out"
expect "B's ready line marks the lost names" "names LABSRV<00>\(conflict\) LABSRV<20>\(conflict\) OTHER<00> OTHER<20>" "$WORK/b.serve.out"
expect "B reports LABSRV<00> in conflict with A" \
    "ERROR .*name LABSRV<00> is owned by 192\.168\.69\.1: in conflict, not answered" "$WORK/b.serve.err"
expect "B reports LABSRV<20> in conflict with A" \
    "ERROR .*name LABSRV<20> is owned by 192\.168\.69\.1: in conflict, not answered" "$WORK/b.serve.err"
expect "B registers OTHER<00>" "registered OTHER<00>$" "$WORK/b.serve.err"
expect "A defends LABSRV<00> against B" \
    "defended LABSRV<00> against registration by 192\.168\.69\.2$" "$WORK/a.serve.err"

in_pair nmblookup -U "$B" -d 3 --debug-stdout LABSRV >"$WORK/pair-b-labsrv.out" 2>&1 || true
expect "B answers LABSRV negatively (in conflict)" "Negative name query response, rcode 0x03" "$WORK/pair-b-labsrv.out"
if grep -Eq "^192\.168\.69\.[0-9]+ LABSRV<" "$WORK/pair-b-labsrv.out"; then
    fail "B gave an address for LABSRV:"; sed 's/^/         /' "$WORK/pair-b-labsrv.out"
else
    pass "B gives no address for LABSRV"
fi
in_pair nmblookup -U "$A" LABSRV >"$WORK/pair-a-labsrv.out" 2>&1 || true
expect "A still answers LABSRV<00>" "^192\.168\.69\.1 LABSRV<00>$" "$WORK/pair-a-labsrv.out"
in_pair nmblookup -U "$B" OTHER >"$WORK/pair-b-other.out" 2>&1 || true
expect "B answers its other name OTHER<00>" "^192\.168\.69\.2 OTHER<00>$" "$WORK/pair-b-other.out"
in_pair nmblookup -A "$B" >"$WORK/pair-b-status.out" 2>&1 || true
expect "B node status: LABSRV<00> in conflict" "LABSRV +<00> - +B <CONFLICT> <ACTIVE>" "$WORK/pair-b-status.out"
expect "B node status: LABSRV<20> in conflict" "LABSRV +<20> - +B <CONFLICT> <ACTIVE>" "$WORK/pair-b-status.out"
expect "B node status: OTHER<00> active" "OTHER +<00> - +B <ACTIVE> *$" "$WORK/pair-b-status.out"

kill -TERM "$a_pid" "$b_pid" 2>/dev/null || true
for who in A B; do
    [ "$who" = A ] && pid=$a_pid || pid=$b_pid
    rc=0
    wait "$pid" || rc=$?
    expect_count "$who: SIGTERM: exit 0" "$rc" 0
done
sleep 0.3
kill "$pair_tcpdump" 2>/dev/null || true
wait "$pair_tcpdump" 2>/dev/null || true

PAIR_CAP="$WORK/br0.pcap"
FROM_AB="ip.src == $A || ip.src == $B"
expect_at_least "NBNS packets from A and B on br0" "$(count "$PAIR_CAP" "nbns && ($FROM_AB)")" 1
expect_count "every NBNS packet from A and B leaves UDP 137" \
    "$(count "$PAIR_CAP" "nbns && ($FROM_AB) && udp.srcport != 137")" 0
expect_at_least "negative registration responses (ACT_ERR) from A to B on the wire" \
    "$(count "$PAIR_CAP" "nbns.flags.response == 1 && nbns.flags.opcode == 5 && nbns.flags.rcode == 6 && ip.src == $A && ip.dst == $B")" 1
expect_count "6 releases of LABSRV from A (2 names x 3)" \
    "$(count "$PAIR_CAP" "nbns.flags.opcode == 6 && ip.src == $A && nbns.name contains \"LABSRV\"")" 6
expect_count "6 releases of OTHER from B (2 names x 3)" \
    "$(count "$PAIR_CAP" "nbns.flags.opcode == 6 && ip.src == $B && nbns.name contains \"OTHER\"")" 6
expect_count "B never claims (overwrite) nor releases LABSRV" \
    "$(count "$PAIR_CAP" "ip.src == $B && (nbns.flags == 0x2810 || nbns.flags.opcode == 6) && nbns.name contains \"LABSRV\"")" 0
expect_count "tshark: nothing malformed on br0" \
    "$(count "$PAIR_CAP" '_ws.malformed || _ws.expert.severity == error || nbns.name contains "Illegal"')" 0

if [ "$failures" -ne 0 ]; then
    echo "lab tests: $failures failed"; KEEP_LAB_LOGS=1; exit 1
fi
echo "lab tests: all passed"
