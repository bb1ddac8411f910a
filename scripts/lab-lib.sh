# Helpers shared by the lab scripts (scripts/lab-*.sh): sourced, never run. The sourcing script
# sets NETBT_NS (the namespace it owns) and WORK (its scratch directory); the helpers read them
# when called. Checks print one line each and count failures in $failures.
# shellcheck shell=bash

failures=0
# The terminal, also while a check's or a client's output goes to a file (a trap that fires then
# runs with that redirection).
exec 3>&1

in_ns() { ip netns exec "$NETBT_NS" "$@"; }
# Run a bounded command in the namespace as a child we wait for: `wait` returns at once when a
# signal arrives, so Ctrl-C or SIGTERM cleans up now, not when the command is done.
ns_run() { # ns_run SECONDS CMD...
    local limit=$1 child
    shift
    in_ns timeout "$limit" "$@" &
    child=$!
    wait "$child"
}
# secs T0 T1: the seconds from T0 to T1 ($EPOCHREALTIME values), one decimal.
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }
pass() { echo "  ok   $*"; }
fail() { echo "  FAIL $*"; failures=$((failures + 1)); }
note() { echo "  note $*"; }
expect() { # expect DESCRIPTION PATTERN FILE: passes when an ERE matches a line of FILE
    if grep -Eq -- "$2" "$3"; then pass "$1"; else fail "$1: no /$2/ in:"; sed 's/^/         /' "$3"; fi
}
expect_not() { # expect_not DESCRIPTION PATTERN FILE: passes when no line of FILE matches
    if grep -Eq -- "$2" "$3"; then fail "$1: /$2/ in:"; sed 's/^/         /' "$3"; else pass "$1"; fi
}
# expect_count DESCRIPTION ACTUAL EXPECTED: passes when the number ACTUAL equals EXPECTED.
expect_count() {
    if [ "$2" -eq "$3" ]; then pass "$1"; else fail "$1: $2, want $3"; fi
}
# expect_at_least DESCRIPTION ACTUAL MINIMUM: passes when the number ACTUAL is MINIMUM or more.
expect_at_least() {
    if [ "$2" -ge "$3" ]; then pass "$1"; else fail "$1: $2, want at least $3"; fi
}
# count [-2] CAPTURE FILTER: frames of the capture file that match a tshark display filter
# (-2: two passes, so segments of a reassembled PDU know where it ends).
count() {
    local passes=()
    if [ "$1" = -2 ]; then passes=(-2); shift; fi
    tshark "${passes[@]}" -n -r "$1" -Y "$2" 2>/dev/null | wc -l
}
# wait_for PATTERN FILE TENTHS: waits until an ERE matches a line of FILE (which may not exist
# yet), checking every 0.1 s, at most TENTHS times; fails if it never did.
wait_for() {
    local _
    for _ in $(seq "$3"); do
        grep -Eq -- "$1" "$2" 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}
# field KEY FILE: the value of KEY=value on the last line of FILE that has it (0: none). The
# lines are `netbt probe` output.
field() {
    local value
    value=$(grep -Eo "(^| )$1=[^ ]*" "$2" 2>/dev/null | tail -1 | cut -d= -f2 || true)
    echo "${value:-0}"
}

# term_netbt LABEL PID: SIGTERM to a `netbt serve` (PID), which must exit 0 within 5 s (it
# closes its sessions and releases its names first) and leave no panic or ERROR in
# $WORK/LABEL.err; SIGKILL if it does not exit.
term_netbt() {
    local label=$1 pid=$2 rc=0
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then
        kill -KILL "$pid" 2>/dev/null || true
        fail "$label: still running 5 s after SIGTERM"
        wait "$pid" 2>/dev/null || true
    else
        wait "$pid" || rc=$?
        if [ "$rc" -eq 0 ]; then pass "$label: SIGTERM, exit 0"; else fail "$label: SIGTERM, exit $rc"; fi
    fi
    expect_not "$label: no panic, no error in the log" "panicked|ERROR" "$WORK/$label.err"
}

# stop_ns NS: stops every process in network namespace NS. Everything a lab starts runs inside
# a namespace of its own, so that list is exactly what to stop, never anyone else's process.
# SIGTERM every 0.1 s for up to 4 s (netbt closes its sessions and releases its names before it
# exits), then SIGKILL for what is left.
stop_ns() {
    local ns=$1 left pid
    for _ in $(seq 40); do
        left=$(ip netns pids "$ns" 2>/dev/null || true)
        [ -z "$left" ] && return 0
        for pid in $left; do kill "$pid" 2>/dev/null || true; done
        sleep 0.1
    done
    for pid in $(ip netns pids "$ns" 2>/dev/null || true); do kill -KILL "$pid" 2>/dev/null || true; done
}

# bridge_with_taps NS ADDRESS TAP...: creates network namespace NS with a bridge br0 that holds
# ADDRESS/24 (the lab's own station: nmbd, a client) and has every TAP attached (one per
# `netbt serve --tap TAP`); IPv6 is off on all of them, so no router solicitation or MLD report
# enters a capture; lo, br0 and the TAPs are up. The caller deletes NS in its cleanup.
bridge_with_taps() {
    local ns=$1 address=$2 tap
    shift 2
    ip netns add "$ns"
    ip -n "$ns" link set lo up
    ip -n "$ns" link add br0 type bridge
    ip netns exec "$ns" sysctl -qw net.ipv6.conf.br0.disable_ipv6=1
    ip -n "$ns" addr add "$address/24" brd + dev br0
    for tap in "$@"; do
        ip -n "$ns" tuntap add dev "$tap" mode tap
        ip netns exec "$ns" sysctl -qw "net.ipv6.conf.$tap.disable_ipv6=1"
        ip -n "$ns" link set "$tap" master br0
        ip -n "$ns" link set "$tap" up
    done
    ip -n "$ns" link set br0 up
}

# drop_work: removes $WORK; with KEEP_LAB_LOGS=1 (set by a run with failures) keeps it and says
# where.
drop_work() {
    if [ "${KEEP_LAB_LOGS:-0}" = 1 ]; then echo "logs kept in $WORK" >&3; else rm -rf "$WORK"; fi
}

# on_signals: Ctrl-C or SIGTERM ends the script at once (the EXIT trap then cleans up).
on_signals() {
    trap 'echo "interrupted" >&3; exit 130' INT
    trap 'echo "terminated" >&3; exit 143' TERM
}

# lab_cleanup: the end of every lab: stops everything in $NETBT_NS (each lab starts all it runs
# there), takes the lab down and drops $WORK. A lab with more to undo calls it last in its own
# cleanup.
lab_cleanup() {
    stop_ns "$NETBT_NS"
    scripts/lab.sh down >/dev/null 2>&1 || true
    drop_work
}

# on_exit [CLEANUP]: runs CLEANUP (default lab_cleanup) when the script exits, however it exits;
# Ctrl-C or SIGTERM end it at once.
on_exit() {
    # shellcheck disable=SC2064  # the name is fixed now, on purpose
    trap "${1:-lab_cleanup}" EXIT
    on_signals
}

# expect_json DESCRIPTION FILTER FILE: passes when the jq FILTER is true for the JSON document in
# FILE (`jq -e`: false, null, no output or a document that does not parse all fail).
expect_json() {
    if jq -e "$2" "$3" >/dev/null 2>&1; then pass "$1"; else fail "$1: jq '$2' is not true for:"; sed 's/^/         /' "$3"; fi
}
