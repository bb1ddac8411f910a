#!/usr/bin/env bash
# Lab tier: the real `netbt serve` on a TAP inside a network namespace this script creates,
# driven by real clients (nmblookup, impacket), every frame captured on the kernel side and
# checked by tshark. Needs root. Deletes everything it starts, also on failure.
set -euo pipefail
cd "$(dirname "$0")/.."

export NETBT_NS="netbt-test-$$"
WORK=$(mktemp -d /tmp/netbt-lab-test.XXXXXX)
NETBT=./target/release/netbt
SERVER=192.168.69.1
PY=/usr/bin/python3            # Debian's python, where python3-impacket lives
failures=0
pids=()

cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    sleep 0.3
    scripts/lab.sh down >/dev/null 2>&1 || true
    [ "${KEEP_LAB_LOGS:-0}" = 1 ] && echo "logs kept in $WORK" || rm -rf "$WORK"
}
trap cleanup EXIT

in_ns() { ip netns exec "$NETBT_NS" "$@"; }
pass() { echo "  ok   $*"; }
fail() { echo "  FAIL $*"; failures=$((failures + 1)); }
expect() { # expect DESCRIPTION PATTERN FILE
    if grep -Eq -- "$2" "$3"; then pass "$1"; else fail "$1: no /$2/ in:"; sed 's/^/         /' "$3"; fi
}

cargo build --release --quiet
scripts/lab.sh up >/dev/null

ip netns exec "$NETBT_NS" tcpdump -i tap0 -U -n -w "$WORK/tap0.pcap" 2>"$WORK/tcpdump.err" &
pids+=($!)
for _ in $(seq 50); do grep -q "listening on" "$WORK/tcpdump.err" 2>/dev/null && break; sleep 0.1; done

echo "lab: netbt serve --name LABSRV --group LABGRP"
ip netns exec "$NETBT_NS" "$NETBT" serve --name LABSRV --group LABGRP >"$WORK/serve.out" 2>"$WORK/serve.err" &
serve_pid=$!
pids+=($serve_pid)
for _ in $(seq 50); do grep -q ready "$WORK/serve.out" && break; sleep 0.1; done
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

kill -TERM "$serve_pid"
rc=0
wait "$serve_pid" || rc=$?
[ "$rc" -eq 0 ] && pass "SIGTERM: exit 0" || fail "SIGTERM: exit $rc"
expect "release logged" "names released, exiting" "$WORK/serve.err"
sleep 0.3
kill "${pids[0]}" 2>/dev/null || true
wait "${pids[0]}" 2>/dev/null || true

T="tshark -n -r $WORK/tap0.pcap"
count() { $T -Y "$1" 2>/dev/null | wc -l; }
releases=$(count "nbns.flags.opcode == 6 && ip.src == $SERVER")
[ "$releases" -eq 9 ] && pass "9 releases on the wire (3 names x 3)" || fail "releases on the wire: $releases, want 9"
registrations=$(count "nbns.flags == 0x2910 && ip.src == $SERVER")
[ "$registrations" -eq 9 ] && pass "9 registration broadcasts (3 names x 3)" || fail "registration broadcasts: $registrations"
overwrites=$(count "nbns.flags == 0x2810 && ip.src == $SERVER")
[ "$overwrites" -eq 3 ] && pass "3 overwrite demands" || fail "overwrite demands: $overwrites"
wrong_port=$(count "nbns && ip.src == $SERVER && udp.srcport != 137")
[ "$wrong_port" -eq 0 ] && pass "every NBNS packet from us leaves UDP 137" || fail "$wrong_port NBNS packets not from port 137"
bcast_src=$(count "nbns && (ip.src == 192.168.69.255 || ip.src == 255.255.255.255)")
[ "$bcast_src" -eq 0 ] && pass "no NBNS packet with a broadcast source" || fail "$bcast_src packets with a broadcast source"
bad=$(count '_ws.malformed || nbss.continuation_data || _ws.expert.severity == error || nbns.name contains "Illegal"')
[ "$bad" -eq 0 ] && pass "tshark: nothing malformed" || fail "tshark flags $bad frames"

if [ "$failures" -ne 0 ]; then
    echo "lab tests: $failures failed"; KEEP_LAB_LOGS=1; exit 1
fi
echo "lab tests: all passed"
