#!/usr/bin/env bash
# Lab check of the embedding example (examples/node_on_tap.rs): the example on tap0 in a namespace
# of its own answers nmblookup and node status for its name and echoes a session; a `netbt serve`
# started on the same TAP meanwhile fails with one line saying the TAP is in use; SIGTERM
# releases the names and ends the example with exit 0. Needs root. Deletes everything it starts,
# also on failure.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lab-lib.sh

export NETBT_NS="netbt-example-$$"
WORK=$(mktemp -d /tmp/netbt-lab-example.XXXXXX)
EXAMPLE=./target/debug/examples/node_on_tap
NETBT=./target/debug/netbt
LOAD=./target/debug/examples/nbss_load
SERVER=192.168.69.1
NAME=EXNODE

on_exit

cargo build --quiet --bin netbt --example node_on_tap --example nbss_load
scripts/lab.sh up >/dev/null

echo "lab: examples/node_on_tap tap0 $SERVER/24 $NAME"
# timeout: the example stops on its own after 60 s even if this script is killed outright (it
# passes SIGTERM on). Not in_ns: $! must be the process itself, not a subshell.
ip netns exec "$NETBT_NS" timeout 60 "$EXAMPLE" tap0 "$SERVER/24" "$NAME" >"$WORK/example.out" 2>"$WORK/example.err" &
example_pid=$!
for _ in $(seq 50); do grep -q ready "$WORK/example.out" && break; sleep 0.1; done
expect "ready line" "^ready: $NAME at $SERVER/24 on tap0$" "$WORK/example.out"

in_ns nmblookup -U "$SERVER" "$NAME" >"$WORK/u.out" 2>&1 || true
expect "nmblookup -U finds $NAME<00>" "^192\.168\.69\.1 $NAME<00>$" "$WORK/u.out"
in_ns nmblookup -A "$SERVER" >"$WORK/a.out" 2>&1 || true
expect "node status lists $NAME<20>" "$NAME +<20> - +B <ACTIVE>" "$WORK/a.out"

in_ns "$LOAD" echo --target "$SERVER:139" --called "$NAME#20" --size 5000 --bytes 50000 \
    --duration 5 >"$WORK/echo.out" 2>&1 || true
expect "a session to $NAME<20> is accepted" "outcomes: positive 1$" "$WORK/echo.out"
expect "its messages come back unchanged" " 50000 bytes echoed .* 0 content mismatches$" "$WORK/echo.out"

# The TAP is the example's: a second program on it must fail at once, with one line.
rc=0
in_ns timeout 10 "$NETBT" serve --tap tap0 --control "$WORK/netbt.sock" \
    >"$WORK/busy.out" 2>"$WORK/busy.err" || rc=$?
if [ "$rc" -eq 2 ]; then pass "netbt serve on the busy TAP exits 2"; else fail "netbt serve on the busy TAP exits $rc, not 2"; fi
expect "it says the TAP is in use" "^netbt: cannot open TAP device tap0: in use by another process \(is another netbt running on it\?" "$WORK/busy.err"
if [ "$(wc -l <"$WORK/busy.err")" -eq 1 ]; then pass "in one line"; else fail "not one line:"; sed 's/^/         /' "$WORK/busy.err"; fi
expect_not "it does not advise creating the TAP" "ip tuntap add" "$WORK/busy.err"

# term_netbt: SIGTERM, exit 0 within 5 s, no panic or ERROR in example.err.
term_netbt example "$example_pid"
expect "names released before the exit" "^names released$" "$WORK/example.out"

# The device goes away under `netbt serve` (ip link del): one clear line naming it, exit
# non-zero within about a second, no log flood, the control socket removed.
ip netns exec "$NETBT_NS" timeout 30 "$NETBT" serve --tap tap0 --ip "$SERVER/24" --name GONE \
    --control "$WORK/gone.sock" >"$WORK/gone.out" 2>"$WORK/gone.err" &
gone_pid=$!
wait_for "ready on tap0" "$WORK/gone.err" 50 || wait_for "ready on tap0" "$WORK/gone.out" 10 || true
[ -S "$WORK/gone.sock" ] && pass "netbt serve is up (control socket present)" || fail "netbt serve did not start"
ip -n "$NETBT_NS" link del tap0
deleted=$(date +%s%N)
for _ in $(seq 50); do kill -0 "$gone_pid" 2>/dev/null || break; sleep 0.05; done
ms=$((($(date +%s%N) - deleted) / 1000000))
if kill -0 "$gone_pid" 2>/dev/null; then
    fail "netbt serve still runs 2.5 s after its TAP was deleted"
    kill -KILL "$gone_pid" 2>/dev/null || true
fi
rc=0
wait "$gone_pid" || rc=$?
[ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] && [ "$rc" -ne 137 ] \
    && pass "TAP deleted: netbt serve exits $rc (non-zero) after ${ms} ms" \
    || fail "TAP deleted: netbt serve exit $rc after ${ms} ms"
[ "$ms" -le 1000 ] && pass "within 1 s of the deletion" || fail "it took ${ms} ms, want at most 1000"
expect "one line names the device" "^netbt: TAP device tap0 is gone \(" "$WORK/gone.err"
lines=$(wc -l <"$WORK/gone.err")
[ "$lines" -le 10 ] && pass "no log flood ($lines lines in all)" || fail "$lines lines of log, want at most 10"
[ -e "$WORK/gone.sock" ] && fail "the control socket is still there" || pass "the control socket is removed"

if [ "$failures" -eq 0 ]; then
    echo "lab-example: all checks passed"
else
    echo "lab-example: $failures check(s) failed"
    KEEP_LAB_LOGS=1
    exit 1
fi
