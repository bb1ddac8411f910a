#!/usr/bin/env bash
# Session service lab (TCP 139): the real `netbt serve` on a TAP in a network namespace of its
# own, driven by our raw client (`netbt probe`), smbclient and impacket, every frame
# captured on the kernel side for the whole run and checked by tshark. Needs root. Deletes
# everything it starts, also on failure; every wait is bounded.
#
#   1 session requests: ours -> 82; NOSUCH -> 83/82; *SMBSERVER -> 82; malformed -> 83/8F
#   2 echo of 1, 65536 and 131071 bytes on one session
#   3 capacity (S=2 R=1, refusal delay 20 ms): two held sessions, the next gets 83/83 after
#     waiting the delay, smbclient at capacity; then S clients reconnecting in a loop against
#     S slots all get 82 (a SYN that beats its old slot's recycling waits for it)
#   4 impacket NetBIOSTCPSession and an echo round trip
#   5 flood (S=2 R=1): 120 concurrent clients that reconnect on their own, then 120 in lockstep
#     left to the kernel's SYN retries; every client ends with 82 or 83; no reset from 139;
#     every slot free again (node status)
#   6 silent clients (S=2 R=1, request timeout 2 s): closed by the server at the deadline; one
#     closes in turn, the others never do and are aborted, each with one reset; slots reclaimed
#   8 wide flood (S=4096 R=1): 4096 sessions held by one client, then 120 concurrent clients at
#     capacity, every one 83/83; after the release every held session is still there and a
#     second flood of 120 gets 82 each; no reset from 139; every slot free again
#   7 tshark: nothing malformed, every NBSS frame from 139 decoded as NBSS
#
# SESS_BURST=0 skips the lockstep burst of phase 5. SESS_WIDE_SLOTS=N gives phase 8 N session
# slots instead of 4096 (0 skips it). KEEP_LAB_LOGS=1 keeps the logs. NETBT=path
# tests that binary (and uses its `netbt probe` as the raw client) instead of the release build.
# shellcheck disable=SC2015  # `test && pass || fail`: pass only echoes, it cannot fail
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lab-lib.sh

export NETBT_NS="netbt-sess-$$"
WORK=$(mktemp -d /tmp/netbt-lab-sessions.XXXXXX)
NETBT=${NETBT:-}                # a binary to test instead of building ./target/release/netbt
SERVER=192.168.69.1
PY=/usr/bin/python3             # Debian's python, where python3-impacket lives
LOAD=./target/release/examples/nbss_load   # our Rust load client (examples/nbss_load.rs)
CAP=$WORK/tap0.pcap
S=2                             # session slots of the small instances (phases 3, 5, 6)
R=1                             # refusal slots of the small instances
FLOOD_N=120                     # >= 50 x S concurrent clients
WIDE_S=${SESS_WIDE_SLOTS:-4096} # session slots of the wide instance (phase 8)
serve_pid=""
T_BEGIN=$EPOCHREALTIME

# Everything this script starts runs inside its namespace (tcpdump, netbt, every client).
on_exit

probe() { ns_run 60 "$NETBT" probe "$@"; }   # our raw NBSS / NBNS client (src/probe/)
# flood NAME: FLOOD_N clients at once, each retrying (200-600 ms) until answered, at most 30 s,
# into $WORK/NAME.out; its SUMMARY line printed.
flood() {
    probe flood "$SERVER" LABSRV --count "$FLOOD_N" --retry-ms 200:600 --connect-timeout 20 \
        --deadline 30 --timeout 10 >"$WORK/$1.out" 2>&1 || true
    grep '^SUMMARY=' "$WORK/$1.out" | sed 's/^/       /' || true
}

# Phases: start and end times (epoch, the capture's clock) for per-phase capture checks.
declare -A P_START P_END
PHASES=()
phase() { P_START[$1]=$EPOCHREALTIME; PHASES+=("$1"); echo "phase $1: $2"; }
phase_end() { P_END[$1]=$EPOCHREALTIME; }
window() { echo "frame.time_epoch >= ${P_START[$1]} && frame.time_epoch <= ${P_END[$1]}"; }

start_serve() { # start_serve LABEL SERVE-ARGS...: netbt serve --name LABSRV, waits for ready
    local label=$1
    shift
    RUST_LOG=info ip netns exec "$NETBT_NS" "$NETBT" serve --name LABSRV "$@" \
        >"$WORK/$label.out" 2>"$WORK/$label.err" &
    serve_pid=$!
    wait_for ready "$WORK/$label.out" 50 || true
    expect "$label: netbt serve --name LABSRV${*:+ $*} is ready" "ready on tap0 192\.168\.69\.1/24 names LABSRV<00> LABSRV<20>$" \
        "$WORK/$label.out"
}

stop_serve() { # stop_serve LABEL: SIGTERM, exit 0 within 5 s
    local label=$1
    term_netbt "$label" "$serve_pid"
}

if [ -z "$NETBT" ]; then
    cargo build --release --quiet
    NETBT=./target/release/netbt
fi
cargo build --release --quiet --example nbss_load
scripts/lab.sh up >/dev/null
in_ns tcpdump -i tap0 -U -n -w "$CAP" 2>"$WORK/tcpdump.err" &
tcpdump_pid=$!
wait_for "listening on" "$WORK/tcpdump.err" 50 || true

# ------------------------------------------------------------------------------------------
echo "lab sessions: instance A, defaults (8 session slots, 2 refusal slots)"
start_serve A
phase 1 "session requests"
POSITIVE="^RESULT=POSITIVE BYTES=82000000 "
probe "$SERVER" LABSRV >"$WORK/p1-ours.out" 2>&1 || true
expect "LABSRV<20> -> positive 82 00 00 00" "$POSITIVE" "$WORK/p1-ours.out"
probe "$SERVER" 'LABSRV#00' >"$WORK/p1-ours00.out" 2>&1 || true
expect "LABSRV<00> -> positive 82 00 00 00" "$POSITIVE" "$WORK/p1-ours00.out"
probe "$SERVER" NOSUCH >"$WORK/p1-nosuch.out" 2>&1 || true
expect "NOSUCH<20> -> negative 83 00 00 01 82 (called name not present)" \
    "^RESULT=NEGATIVE CODE=0x82 BYTES=8300000182 " "$WORK/p1-nosuch.out"
probe "$SERVER" '*SMBSERVER' >"$WORK/p1-smbserver.out" 2>&1 || true
expect "*SMBSERVER<20> -> positive 82 00 00 00" "$POSITIVE" "$WORK/p1-smbserver.out"
probe malformed "$SERVER" message-first >"$WORK/p1-message-first.out" 2>&1 || true
expect "session message before any request -> negative 83 00 00 01 8F" \
    "^RESULT=NEGATIVE CODE=0x8f BYTES=830000018f " "$WORK/p1-message-first.out"
probe malformed "$SERVER" bad-label >"$WORK/p1-bad-label.out" 2>&1 || true
expect "request with an 8-byte name label -> negative 83 00 00 01 8F" \
    "^RESULT=NEGATIVE CODE=0x8f BYTES=830000018f " "$WORK/p1-bad-label.out"
phase_end 1

phase 2 "echo on one session"
probe "$SERVER" LABSRV --echo 1,65536,131071 --timeout 10 >"$WORK/p2-echo.out" 2>&1 || true
expect "echo session accepted" "$POSITIVE" "$WORK/p2-echo.out"
for size in 1 65536 131071; do
    expect "echo of $size bytes returned intact, header right" "^ECHO=OK SIZE=$size " "$WORK/p2-echo.out"
done
phase_end 2

phase 4 "impacket NetBIOSTCPSession"
cat >"$WORK/impacket_echo.py" <<'PYEOF'
import os, sys
from impacket import nmb
s = nmb.NetBIOSTCPSession('CLIENT', 'LABSRV', sys.argv[1], sess_port=139, timeout=5)
print("SESSION", s.get_remote_name())
data = os.urandom(3000)
s.send_packet(data)
p = s.recv_packet(5)
print("ECHO type=%d len=%d %s" % (p.get_type(), len(p.get_trailer()),
                                 "same" if p.get_trailer() == data else "different"))
s.close()
PYEOF
ns_run 30 "$PY" "$WORK/impacket_echo.py" "$SERVER" >"$WORK/p4-impacket.out" 2>&1 || true
expect "impacket: session established" "^SESSION LABSRV$" "$WORK/p4-impacket.out"
expect "impacket: send_packet/recv_packet echo of 3000 bytes" "^ECHO type=0 len=3000 same$" "$WORK/p4-impacket.out"
phase_end 4
stop_serve A

# ------------------------------------------------------------------------------------------
echo "lab sessions: instance B, --sessions $S --refusal-slots $R --refusal-delay 20"
start_serve B --sessions "$S" --refusal-slots "$R" --refusal-delay 20
phase 3 "capacity: $S held sessions, then refusals"
hold_pids=()
for i in $(seq "$S"); do   # one session each, held until $WORK/release exists (at most 40 s)
    in_ns timeout 60 "$NETBT" probe "$SERVER" LABSRV --hold-until "$WORK/release" --hold-max 40 \
        >"$WORK/p3-hold-$i.out" 2>&1 &
    hold_pids+=($!)
    wait_for "^RESULT=" "$WORK/p3-hold-$i.out" 50 || true
    expect "held session $i of $S: positive" "$POSITIVE" "$WORK/p3-hold-$i.out"
done
probe "$SERVER" LABSRV >"$WORK/p3-full.out" 2>&1 || true
expect "at capacity: negative 83 00 00 01 83 (insufficient resources)" \
    "^RESULT=NEGATIVE CODE=0x83 BYTES=8300000183 " "$WORK/p3-full.out"
in_ns "$NETBT" status --json >"$WORK/p3-status.json" 2>&1 || true
expect_json "netbt status: the SYN waited for a session slot, then went to the refusal slot" \
    '.counters.sessions.gate.syns_to_refusal_slots == 1' "$WORK/p3-status.json"
probe node-status "$SERVER" --wait-free "$R" --max 5 >"$WORK/p3-status.out" 2>&1 || true
expect "node status at capacity: free $R of $((S + R)), max sessions $S" \
    "NUMBER_FREE_COMMAND_BLOCKS=$R TOTAL_NUMBER_COMMAND_BLOCKS=$((S + R)) .*MAX_TOTAL_SESSIONS_POSSIBLE=$S " \
    "$WORK/p3-status.out"
t=$EPOCHREALTIME
ns_run 40 smbclient -L //LABSRV -p 139 -I "$SERVER" -N >"$WORK/p3-smbclient.out" 2>&1 || true
smb_time=$(secs "$t" "$EPOCHREALTIME")
expect "smbclient at capacity: NT_STATUS_RESOURCE_NAME_NOT_FOUND (${smb_time} s)" \
    "NT_STATUS_RESOURCE_NAME_NOT_FOUND" "$WORK/p3-smbclient.out"
expect_not "smbclient at capacity: no IO_DEVICE_ERROR, no CONNECTION_RESET" \
    "NT_STATUS_IO_DEVICE_ERROR|NT_STATUS_CONNECTION_RESET" "$WORK/p3-smbclient.out"
touch "$WORK/release"
for pid in "${hold_pids[@]}"; do wait "$pid" 2>/dev/null || true; done   # each ends at once now
cat "$WORK"/p3-hold-*.out >"$WORK/p3-hold.out"
expect_count "held sessions still echo at release" "$(grep -c '^STILL_ALIVE=OK ' "$WORK/p3-hold.out")" "$S"
expect_not "no held session failed" "^STILL_ALIVE=FAIL|^RESULT=[^P]" "$WORK/p3-hold.out"
expect_count "held sessions released (closed by the client)" "$(grep -c '^RELEASED=FILE ' "$WORK/p3-hold.out")" "$S"
probe "$SERVER" LABSRV >"$WORK/p3-after.out" 2>&1 || true
expect "after the release a new session gets 82" "$POSITIVE" "$WORK/p3-after.out"
# S clients, each connecting again the moment its session is over, against S session slots: a
# new SYN often arrives while its old slot is still closing. It waits for that slot (up to the
# refusal delay) instead of landing on the refusal slot and getting a needless 83/83.
ns_run 30 "$LOAD" setup --target "$SERVER:139" --concurrency "$S" --count 2000 --duration 20 \
    --close fin >"$WORK/p3-loop.out" 2>&1 || true
expect "$S clients reconnecting in a loop against $S slots: 2000 sessions, every one 82" \
    "outcomes: positive 2000$" "$WORK/p3-loop.out"
phase_end 3

phase 5 "flood: $FLOOD_N concurrent clients (twice), S=$S R=$R"
probe node-status "$SERVER" >"$WORK/p5-before.out" 2>&1 || true
nr_before=$(field NUMBER_NO_RESOURCE_CONDITIONS "$WORK/p5-before.out")
flood p5-flood
expect "flood: every one of $FLOOD_N clients ended with 82 or 83/83" "^SUMMARY=flood N=$FLOOD_N .* BAD=0 " "$WORK/p5-flood.out"
peak=$(field PEAK "$WORK/p5-flood.out")
expect_at_least "flood: $peak clients in flight at once" "$peak" $((50 * S))
if [ "${SESS_BURST:-1}" != 0 ]; then
    # Lockstep: every SYN at once, every retry left to the kernel, which retransmits the SYNs of
    # all waiting clients together. Only the gate's SYN backlog (SYNs kept and replayed when a
    # slot listens) lets them all through; without it about S+R get in per retransmission.
    probe flood "$SERVER" LABSRV --count "$FLOOD_N" --connect-timeout 20 --deadline 25 --timeout 10 \
        >"$WORK/p5-burst.out" 2>&1 || true
    grep '^SUMMARY=' "$WORK/p5-burst.out" | sed 's/^/       /' || true
    grep '^SUMMARY=' "$WORK/p5-burst.out" >"$WORK/p5-burst.summary" || true
    expect "lockstep burst: every one of $FLOOD_N clients ended with 82 or 83/83" \
        "^SUMMARY=flood N=$FLOOD_N .* BAD=0 " "$WORK/p5-burst.summary"
fi
probe node-status "$SERVER" --wait-free $((S + R)) --max 30 >"$WORK/p5-after.out" 2>&1 || true
expect "after the flood every slot is free again ($((S + R)) listening)" "^WAIT_FREE=OK " "$WORK/p5-after.out"
nr_after=$(field NUMBER_NO_RESOURCE_CONDITIONS "$WORK/p5-after.out")
expect_at_least "node status: no-resource conditions grew ($nr_before -> $nr_after)" "$nr_after" $((nr_before + 1))
expect "node status after the flood: no pending session" " NUMBER_PENDING_SESSIONS=0 " "$WORK/p5-after.out"
phase_end 5
expect_not "B: no connection aborted" "aborted" "$WORK/B.err"
stop_serve B

# ------------------------------------------------------------------------------------------
echo "lab sessions: instance C, --sessions $S --refusal-slots $R --request-timeout 2"
start_serve C --sessions "$S" --refusal-slots "$R" --request-timeout 2
phase 6 "silent clients: $((4 * S)) connections that send nothing"
# While other clients wait for a slot, a silent one gives way a second after it connected
# (answered 0x83, then closed: END=NEG83); the last ones meet the 2 s request deadline (EOF).
probe silent "$SERVER" --count $((4 * S)) --polite 1 --timeout 40 --deadline 45 \
    --min-close 0.9 --max-close 4.0 >"$WORK/p6-silent.out" 2>&1 || true
sed 's/^/       /' "$WORK/p6-silent.out"
expect "every silent client was closed by the server 1 to 2 s after connecting (0x83 or EOF)" \
    "^SUMMARY=silent N=$((4 * S)) POLITE=1 BAD=0 " "$WORK/p6-silent.out"
probe node-status "$SERVER" --wait-free $((S + R)) --max 40 >"$WORK/p6-status.out" 2>&1 || true
reclaimed=$(secs "${P_START[6]}" "$EPOCHREALTIME")
expect "slots reclaimed: $((S + R)) free again, ${reclaimed} s after the silent clients began" \
    "^WAIT_FREE=OK " "$WORK/p6-status.out"
probe "$SERVER" LABSRV >"$WORK/p6-after.out" 2>&1 || true
expect "after the silent clients a normal client gets 82" "$POSITIVE" "$WORK/p6-after.out"
phase_end 6
timeouts=$(grep -c "sent no session request in time; closed" "$WORK/C.err" || true)
aborts=$(grep -c "stopped responding in Closing; aborted" "$WORK/C.err" || true)
gave_way=$(grep -c " END=NEG83 " "$WORK/p6-silent.out" || true)
expect_count "C: every silent client met its request deadline ($timeouts) or gave way ($gave_way)" \
    $((timeouts + gave_way)) $((4 * S))
expect_at_least "C: silent clients gave way to waiting ones" "$gave_way" 1
stop_serve C

# ------------------------------------------------------------------------------------------
if [ "$WIDE_S" -gt 0 ]; then
    echo "lab sessions: instance D, --sessions $WIDE_S --refusal-slots $R"
    start_serve D --sessions "$WIDE_S" --refusal-slots "$R"
    phase 8 "wide flood: $WIDE_S sessions held, then $FLOOD_N clients at capacity, S=$WIDE_S R=$R"
    # One client holds every session slot (until the release file, 120 s at most), closing
    # normally at the release.
    in_ns timeout 200 "$LOAD" hold --target "$SERVER:139" --count "$WIDE_S" --concurrency 32 \
        --duration 60 --hold 120 --release-file "$WORK/p8-release" --close fin --json \
        >"$WORK/p8-hold.json" 2>"$WORK/p8-hold.out" &
    wide_holder=$!
    wait_for "^holding" "$WORK/p8-hold.out" 900 || true
    expect "$WIDE_S sessions held" "^holding $WIDE_S sessions" "$WORK/p8-hold.out"
    flood p8-full
    expect "at capacity: every one of $FLOOD_N clients got 83/83" \
        "^SUMMARY=flood N=$FLOOD_N POSITIVE=0 NEG83=$FLOOD_N BAD=0 " "$WORK/p8-full.out"
    touch "$WORK/p8-release"
    wait "$wide_holder" || true
    sed 's/^/       /' "$WORK/p8-hold.out"
    expect "the holder: all $WIDE_S positive, all still held at the release, none closed by the server" \
        "\"held_at_start\":$WIDE_S,\"held_at_release\":$WIDE_S,\"closed_by_peer\":0," "$WORK/p8-hold.json"
    probe node-status "$SERVER" --wait-free $((WIDE_S + R)) --max 30 >"$WORK/p8-free.out" 2>&1 || true
    expect "after the release every slot is free again ($((WIDE_S + R)) listening)" "^WAIT_FREE=OK " "$WORK/p8-free.out"
    flood p8-flood
    expect "with $WIDE_S slots free: every one of $FLOOD_N clients got 82" \
        "^SUMMARY=flood N=$FLOOD_N POSITIVE=$FLOOD_N NEG83=0 BAD=0 " "$WORK/p8-flood.out"
    probe node-status "$SERVER" --wait-free $((WIDE_S + R)) --max 30 >"$WORK/p8-after.out" 2>&1 || true
    expect "after the flood every slot is free again" "^WAIT_FREE=OK " "$WORK/p8-after.out"
    phase_end 8
    expect_not "D: no connection aborted" "aborted" "$WORK/D.err"
    stop_serve D
fi

sleep 0.3
kill "$tcpdump_pid" 2>/dev/null || true
wait "$tcpdump_pid" 2>/dev/null || true

# ------------------------------------------------------------------------------------------
phase 7 "tshark on the kernel-side capture"
T="tshark -2 -n -r $CAP"       # for listings; count -2 counts with the same two passes
RST_139="ip.src == $SERVER && tcp.srcport == 139 && tcp.flags.reset == 1"
FROM_139="ip.src == $SERVER && tcp.srcport == 139"

# Our own bad-label probe (phase 1) shows as "Illegal NetBIOS name"; names from us must not.
BAD="_ws.malformed || _ws.expert.severity == error || (ip.src == $SERVER && nbns.name contains \"Illegal\")"
illegal=$(count -2 "$CAP" "ip.src != $SERVER && nbss.called_name contains \"Illegal\"")
expect_count "tshark: the bad-label probe is the one illegal name on the wire" "$illegal" 1
malformed=$(count -2 "$CAP" '_ws.malformed')
bad=$(count -2 "$CAP" "$BAD")
[ "$malformed" -eq 0 ] && [ "$bad" -eq 0 ] && pass "tshark: no malformed packet, no expert error in the capture" \
    || { fail "tshark: $malformed malformed, $bad flagged:"; $T -Y "$BAD" 2>/dev/null | head -5 | sed 's/^/         /'; }
undecoded=$(count -2 "$CAP" "$FROM_139 && tcp.len > 0 && !nbss && !tcp.reassembled_in")
continuation=$(count -2 "$CAP" "$FROM_139 && nbss.continuation_data")
nbss_139=$(count -2 "$CAP" "$FROM_139 && nbss")
[ "$undecoded" -eq 0 ] && [ "$continuation" -eq 0 ] && [ "$nbss_139" -gt 0 ] \
    && pass "tshark: all $nbss_139 NBSS frames from 139 decoded as NBSS (none undecoded, no continuation)" \
    || fail "tshark: from 139: $undecoded data segments not NBSS, $continuation continuation frames"

rst_flood=$(count -2 "$CAP" "$RST_139 && $(window 5)")
[ "$rst_flood" -eq 0 ] && pass "flood phase: zero TCP resets from $SERVER:139" \
    || { fail "flood phase: $rst_flood TCP resets from $SERVER:139:"; $T -Y "$RST_139 && $(window 5)" 2>/dev/null | head -5 | sed 's/^/         /'; }
rst_other=$(count -2 "$CAP" "$RST_139 && ($(window 1) || $(window 2) || $(window 3) || $(window 4))")
expect_count "phases 1-4: zero TCP resets from $SERVER:139" "$rst_other" 0
if [ -n "${P_END[8]:-}" ]; then
    rst_wide=$(count "$CAP" "$RST_139 && $(window 8)")
    expect_count "wide flood phase ($WIDE_S slots): zero TCP resets from $SERVER:139" "$rst_wide" 0
fi

neg83_3=$(count -2 "$CAP" "$FROM_139 && nbss.type == 0x83 && nbss.error_code == 0x83 && $(window 3)")
smbserver_3=$(count -2 "$CAP" "nbss.type == 0x81 && nbss.called_name contains \"SMBSERVER\" && $(window 3)")
[ "$neg83_3" -eq 3 ] && [ "$smbserver_3" -eq 1 ] \
    && pass "capacity phase on the wire: 3 x 83/83 (raw, smbclient, its *SMBSERVER retry)" \
    || fail "capacity phase on the wire: $neg83_3 x 83/83 (want 3), $smbserver_3 *SMBSERVER requests (want 1)"

pos_5=$(count -2 "$CAP" "$FROM_139 && nbss.type == 0x82 && $(window 5)")
neg_5=$(count -2 "$CAP" "$FROM_139 && nbss.type == 0x83 && nbss.error_code == 0x83 && $(window 5)")
want_pos=$(( $(field POSITIVE "$WORK/p5-flood.out") + $(field POSITIVE "$WORK/p5-burst.out") ))
want_neg=$(( $(field NEG83 "$WORK/p5-flood.out") + $(field NEG83 "$WORK/p5-burst.out") ))
[ "$pos_5" -eq "$want_pos" ] && [ "$neg_5" -eq "$want_neg" ] \
    && pass "flood phase on the wire: $pos_5 positive, $neg_5 x 83/83, as the clients counted" \
    || fail "flood phase on the wire: $pos_5 positive (clients: $want_pos), $neg_5 x 83/83 (clients: $want_neg)"

# Phase 6: the kept clients hold their end open after our FIN, and close 6.5 s later. Their
# close is no reason for a reset: once they acknowledged our FIN the slot handed the rest of
# the close to the gate's record of closed connections, which acknowledges their FIN.
rst_silent=$(count -2 "$CAP" "$RST_139 && $(window 6)")
kept=$(sed -n 's/^KEPT_PORTS=//p' "$WORK/p6-silent.out")
n_kept=$(echo "$kept" | tr ',' '\n' | grep -c . || true)
kept_reset=$(field KEPT_RESET "$WORK/p6-silent.out")
acked_fin=0
[ -n "$kept" ] && acked_fin=$(count -2 "$CAP" "ip.src == $SERVER && tcp.srcport == 139 && tcp.flags == 0x010 && tcp.dstport in {$kept} && $(window 6)")
note "silent phase: $rst_silent resets from 139; $aborts unfinished closes aborted (log);" \
    "$kept_reset of $n_kept kept clients were reset while they held"
expect_count "silent phase: no reset from 139" "$rst_silent" 0
expect_count "silent phase: no close aborted" "$aborts" 0
expect_count "silent phase: no kept client was reset while it held" "$kept_reset" 0
expect_at_least "silent phase: the kept clients' FINs were acknowledged ($acked_fin bare ACKs from 139 to them)" \
    "$acked_fin" "$n_kept"
phase_end 7

# ------------------------------------------------------------------------------------------
echo "summary (seconds per phase):"
for p in "${PHASES[@]}"; do printf '  phase %s  %5s s\n' "$p" "$(secs "${P_START[$p]}" "${P_END[$p]}")"; done
printf '  total    %5s s\n' "$(secs "$T_BEGIN" "$EPOCHREALTIME")"
if [ "$failures" -ne 0 ]; then
    echo "session lab: $failures failed"; KEEP_LAB_LOGS=1; exit 1
fi
echo "session lab: all passed"
