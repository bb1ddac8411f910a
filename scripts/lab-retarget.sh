#!/usr/bin/env bash
# Retarget lab (RETARGET SESSION RESPONSE 0x84): two `netbt serve` on one bridge in a network
# namespace of its own (nbrt-PID), A with 2 session slots and `--retarget B:139`, B with room
# for the rest (and, for phase 5, C with 1 slot and `--retarget A:139`); real kernel clients;
# every TAP captured for the whole run and checked by tshark. Needs root. Deletes everything it starts, also on failure; every wait and every load
# is bounded in count and time.
#
#   1 our raw client at A's capacity gets 84 00 00 06 + B's address and port 139
#   2 smbclient against the full A fails cleanly (NT_STATUS_RESOURCE_NAME_NOT_FOUND: it treats
#     0x84 as a failure, retries *SMBSERVER once, gets 0x84 again), within its timeout
#   3 nbss_load hold: HOLD_N concurrent clients against A (more than its 2 slots): every one
#     answered 0x82, 2 by A after 0 hops, the rest by B after 1 hop; no loop, no hop limit
#   4 nbss_load setup: SETUP_N sessions, SETUP_C at a time, against A: all 0x82, after 0 or 1
#     hop
#   5 a chain: C (1 slot, --retarget A:139) and A both full: nbss_load against C gets 0x82 from
#     B after 2 hops; with --max-retargets 1 each session ends as retarget_limit
#   6 status: A lists its sibling and counted its retargets (JSON and text; node status
#     no-resource conditions), no 0x83; its log has them at info; B refused nothing
#   7 captures: no reset from port 139 of A, B or C; tshark decodes every 0x84 of A as an NBSS
#     retarget naming B:139, as many as A counted, and C's as naming A:139
#
# KEEP_LAB_LOGS=1 keeps the logs.
# shellcheck disable=SC2015  # `test && pass || fail`: pass only echoes, it cannot fail
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lab-lib.sh

export NETBT_NS="nbrt-$$"
WORK=$(mktemp -d /tmp/netbt-lab-retarget.XXXXXX)
NETBT=./target/release/netbt
LOAD=./target/release/examples/nbss_load
A=192.168.69.1
B=192.168.69.2
C=192.168.69.3                  # phase 5 only: 1 slot, --retarget A:139
STATION=192.168.69.100          # br0: the kernel clients
S_A=2                           # A's session slots
S_B=32                          # B's session slots
HOLD_N=12                       # concurrent held sessions against A (> S_A)
SETUP_N=400                     # setups against A
SETUP_C=32                      # of them at a time (> S_A)
CHAIN_N=5                       # phase 5: sessions against C, one at a time, per run

# Everything this script starts runs inside its namespace (tcpdump, both daemons, the
# clients); stop_ns ends them, then the namespace goes.
cleanup() {
    stop_ns "$NETBT_NS"
    ip netns del "$NETBT_NS" 2>/dev/null || true
    drop_work
}
on_exit cleanup

# json_num KEY FILE: a number from nbss_load's flat JSON object (0 when absent).
json_num() { jq -r ".$1 // 0" "$2" 2>/dev/null || echo 0; }

cargo build --release --quiet --bin netbt --example nbss_load

echo "retarget lab: namespace $NETBT_NS, br0 ($STATION) with nbrt0 (A $A) and nbrt1 (B $B)"
bridge_with_taps "$NETBT_NS" "$STATION" nbrt0 nbrt1 nbrt2
for tap in nbrt0 nbrt1 nbrt2; do
    in_ns tcpdump -i "$tap" -U -n -w "$WORK/$tap.pcap" tcp 2>"$WORK/$tap.tcpdump" &
    wait_for "listening on" "$WORK/$tap.tcpdump" 50 || true
done

RUST_LOG=info ip netns exec "$NETBT_NS" "$NETBT" serve --tap nbrt0 --ip "$A/24" --mac 02:00:00:00:00:01 \
    --name LABSRV --sessions "$S_A" --refusal-slots 2 --retarget "$B:139" --control "$WORK/a.sock" \
    >"$WORK/a.out" 2>"$WORK/a.err" &
a_pid=$!
RUST_LOG=info ip netns exec "$NETBT_NS" "$NETBT" serve --tap nbrt1 --ip "$B/24" --mac 02:00:00:00:00:02 \
    --name OTHER --sessions "$S_B" --control "$WORK/b.sock" >"$WORK/b.out" 2>"$WORK/b.err" &
b_pid=$!
RUST_LOG=info ip netns exec "$NETBT_NS" "$NETBT" serve --tap nbrt2 --ip "$C/24" --mac 02:00:00:00:00:03 \
    --name THIRD --sessions 1 --refusal-slots 1 --retarget "$A:139" --control "$WORK/c.sock" \
    >"$WORK/c.out" 2>"$WORK/c.err" &
c_pid=$!
wait_for ready "$WORK/a.out" 50 || true
wait_for ready "$WORK/b.out" 50 || true
wait_for ready "$WORK/c.out" 50 || true
expect "A ready (--sessions $S_A --retarget $B:139)" "ready on nbrt0 $A/24 names LABSRV<00> LABSRV<20>$" "$WORK/a.out"
expect "B ready (--sessions $S_B)" "ready on nbrt1 $B/24 names OTHER<00> OTHER<20>$" "$WORK/b.out"
expect "C ready (--sessions 1 --retarget $A:139)" "ready on nbrt2 $C/24 names THIRD<00> THIRD<20>$" "$WORK/c.out"

# The siblings share no NetBIOS name (a unique name has one owner on a segment): the load
# calls *SMBSERVER<20>, which both accept as themselves.
ALIAS='*SMBSERVER#20'

echo "phase 1: A at capacity answers 0x84 naming B"
hold() { # hold LABEL ADDRESS NAME N: N held sessions until $WORK/release-LABEL exists
    local label=$1 address=$2 name=$3 n=$4 i
    for i in $(seq "$n"); do
        ns_run 60 "$NETBT" probe "$address" "$name" --hold-until "$WORK/release-$label" \
            >"$WORK/$label-hold-$name-$i.out" 2>&1 &
    done
    for _ in $(seq 50); do
        [ "$(cat "$WORK/$label-hold-$name"-*.out 2>/dev/null | grep -c '^RESULT=POSITIVE')" -ge "$n" ] && break
        sleep 0.1
    done
    expect_count "$label: $name's $n session slot(s) held" \
        "$(cat "$WORK/$label-hold-$name"-*.out | grep -c '^RESULT=POSITIVE')" "$n"
}
hold p1 "$A" LABSRV "$S_A"
ns_run 20 "$NETBT" probe "$A" LABSRV >"$WORK/p1-full.out" 2>&1 || true
expect "at capacity: 84 00 00 06 c0 a8 45 02 00 8b (retarget to $B:139)" \
    "^RESULT=RETARGET TO=$B:139 BYTES=84000006c0a84502008b " "$WORK/p1-full.out"
ns_run 20 "$NETBT" probe "$A" NOSUCH >"$WORK/p1-nosuch.out" 2>&1 || true
expect "at capacity, a name A does not own: still 83 82" "^RESULT=NEGATIVE CODE=0x82 " "$WORK/p1-nosuch.out"

echo "phase 2: smbclient against the full A"
t=$EPOCHREALTIME
smb_rc=0
ns_run 30 smbclient -L //LABSRV -p 139 -I "$A" -N >"$WORK/p2-smbclient.out" 2>&1 || smb_rc=$?
smb_time=$(secs "$t" "$EPOCHREALTIME")
[ "$smb_rc" != 124 ] && pass "smbclient returned in $smb_time s (exit $smb_rc, no hang)" \
    || fail "smbclient still waiting after 30 s"
expect "smbclient: NT_STATUS_RESOURCE_NAME_NOT_FOUND (it does not follow 0x84)" \
    "NT_STATUS_RESOURCE_NAME_NOT_FOUND" "$WORK/p2-smbclient.out"
expect_not "smbclient: no IO_DEVICE_ERROR, no CONNECTION_RESET" \
    "NT_STATUS_IO_DEVICE_ERROR|NT_STATUS_CONNECTION_RESET" "$WORK/p2-smbclient.out"
touch "$WORK/release-p1"
wait_for_free() { # wait_for_free: until A's session slots are all free again (at most 5 s)
    local _
    for _ in $(seq 50); do
        in_ns "$NETBT" status --control "$WORK/a.sock" --json >"$WORK/a-free.json" 2>/dev/null || true
        jq -e ".ledger.free == $S_A and .ledger.closing == 0" "$WORK/a-free.json" >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    return 1
}
wait_for_free && pass "A's slots free again" || fail "A's slots not free 5 s after the release"

echo "phase 3: nbss_load hold, $HOLD_N clients at once against A ($S_A slots)"
ns_run 60 "$LOAD" hold --target "$A:139" --called "$ALIAS" --count "$HOLD_N" --concurrency "$HOLD_N" \
    --hold 1 --duration 20 --connect-timeout 5000 --response-timeout 5000 --max-retargets 3 --json \
    >"$WORK/p3-hold.json" 2>"$WORK/p3-hold.err" || true
sed 's/^/         /' "$WORK/p3-hold.err"
hold_pos=$(json_num positive "$WORK/p3-hold.json")
hold_h0=$(json_num positive_hops_0 "$WORK/p3-hold.json")
hold_h1=$(json_num positive_hops_1 "$WORK/p3-hold.json")
expect_count "hold: every one of $HOLD_N sessions answered 0x82" "$hold_pos" "$HOLD_N"
expect_count "hold: $S_A by A after 0 hops" "$hold_h0" "$S_A"
expect_count "hold: $((HOLD_N - S_A)) by B after 1 hop" "$hold_h1" "$((HOLD_N - S_A))"
expect_count "hold: $((HOLD_N - S_A)) retargets followed" "$(json_num retargets_followed "$WORK/p3-hold.json")" "$((HOLD_N - S_A))"
expect_count "hold: no loop, no hop limit, no 0x83, no reset" \
    "$(jq -r '.retarget_loop + .retarget_limit + .neg_83 + .reset + .refused' "$WORK/p3-hold.json" 2>/dev/null || echo 1)" 0
expect_count "hold: no held session closed by a server" "$(json_num closed_by_peer "$WORK/p3-hold.json")" 0
wait_for_free || fail "A's slots not free 5 s after the hold"

echo "phase 4: nbss_load setup, $SETUP_N sessions, $SETUP_C at a time, against A"
ns_run 60 "$LOAD" setup --target "$A:139" --called "$ALIAS" --count "$SETUP_N" --concurrency "$SETUP_C" \
    --duration 30 --connect-timeout 5000 --response-timeout 5000 --max-retargets 3 --json \
    >"$WORK/p4-setup.json" 2>"$WORK/p4-setup.err" || true
sed 's/^/         /' "$WORK/p4-setup.err"
setup_pos=$(json_num positive "$WORK/p4-setup.json")
setup_h0=$(json_num positive_hops_0 "$WORK/p4-setup.json")
setup_h1=$(json_num positive_hops_1 "$WORK/p4-setup.json")
setup_followed=$(json_num retargets_followed "$WORK/p4-setup.json")
expect_count "setup: every one of $SETUP_N sessions answered 0x82" "$setup_pos" "$SETUP_N"
expect_count "setup: after 0 hops ($setup_h0, by A) or 1 hop ($setup_h1, by B)" "$((setup_h0 + setup_h1))" "$SETUP_N"
expect_at_least "setup: B served some (A holds $S_A at a time)" "$setup_h1" 1
expect_at_least "setup: A served some" "$setup_h0" 1

echo "phase 5: a chain C -> A -> B, $CHAIN_N sessions against C while C and A are full"
hold p5 "$A" LABSRV "$S_A"
hold p5 "$C" THIRD 1
for max in 3 1; do
    ns_run 60 "$LOAD" setup --target "$C:139" --called "$ALIAS" --count "$CHAIN_N" --concurrency 1 \
        --duration 20 --connect-timeout 5000 --response-timeout 5000 --max-retargets "$max" --json \
        >"$WORK/p5-max$max.json" 2>"$WORK/p5-max$max.err" || true
    sed 's/^/         /' "$WORK/p5-max$max.err"
done
expect_count "chain, --max-retargets 3: all $CHAIN_N answered 0x82 by B after 2 hops" \
    "$(json_num positive_hops_2 "$WORK/p5-max3.json")" "$CHAIN_N"
expect_count "chain, --max-retargets 3: $((2 * CHAIN_N)) retargets followed" \
    "$(json_num retargets_followed "$WORK/p5-max3.json")" "$((2 * CHAIN_N))"
expect_count "chain, --max-retargets 1: all $CHAIN_N end as retarget_limit" \
    "$(json_num retarget_limit "$WORK/p5-max1.json")" "$CHAIN_N"
expect_count "chain, --max-retargets 1: none positive" "$(json_num positive "$WORK/p5-max1.json")" 0
touch "$WORK/release-p5"
wait_for_free || fail "A's slots not free 5 s after the chain"

echo "phase 6: status"
in_ns "$NETBT" status --control "$WORK/a.sock" --json >"$WORK/a-status.json" 2>&1 || true
in_ns "$NETBT" status --control "$WORK/a.sock" >"$WORK/a-status.txt" 2>&1 || true
in_ns "$NETBT" status --control "$WORK/b.sock" --json >"$WORK/b-status.json" 2>&1 || true
a_retargets=$(jq -r '.counters.sessions.retargets // 0' "$WORK/a-status.json" 2>/dev/null || echo 0)
# phase 1's probe, smbclient's two requests, the hold's and the setup run's retargets
want=$((1 + 2 + HOLD_N - S_A + setup_followed + 2 * CHAIN_N))
expect_count "A counted its retargets: probe 1, smbclient 2, hold $((HOLD_N - S_A)), setup $setup_followed, chain $((2 * CHAIN_N))" "$a_retargets" "$want"
expect_json "A refused nothing for lack of room (0x83 0x83)" '.counters.sessions.insufficient_resources == 0' "$WORK/a-status.json"
expect_json "A's node status: no-resource conditions = retargets" \
    ".counters.node_status.number_no_resource_conditions == $a_retargets" "$WORK/a-status.json"
expect "status text: the retargets line" "^ +retargets +$a_retargets$" "$WORK/a-status.txt"
expect_json "status: A's siblings" ".retarget == [\"$B:139\"]" "$WORK/a-status.json"
expect "status text: A's siblings in the ledger" "^  retarget to +$B:139$" "$WORK/a-status.txt"
expect_json "status: B has none (no key)" '.retarget == null' "$WORK/b-status.json"
expect_json "B refused nothing" '.counters.sessions.insufficient_resources == 0' "$WORK/b-status.json"
expect_json "B served the retargeted sessions" ".counters.sessions.positive == $((HOLD_N - S_A + setup_h1 + CHAIN_N))" "$WORK/b-status.json"
in_ns "$NETBT" status --control "$WORK/c.sock" --json >"$WORK/c-status.json" 2>&1 || true
expect_json "C retargeted each chain session once ($((2 * CHAIN_N)))" ".counters.sessions.retargets == $((2 * CHAIN_N))" "$WORK/c-status.json"
expect "A's log: retargets at info" "INFO.*session request from $STATION:[0-9]+ for LABSRV<20> retargeted to $B:139: no session slot free \(0x84\)" "$WORK/a.err"

term_netbt a "$a_pid"
term_netbt b "$b_pid"
term_netbt c "$c_pid"
sleep 0.5
stop_ns "$NETBT_NS"    # tcpdump (the daemons are gone)

echo "phase 7: captures"
for tap in nbrt0 nbrt1 nbrt2; do
    expect_count "$tap: no reset from port 139" "$(count "$WORK/$tap.pcap" 'tcp.flags.reset == 1 && tcp.srcport == 139')" 0
done
wire_84=$(count "$WORK/nbrt0.pcap" 'nbss.type == 0x84 && tcp.srcport == 139 && !tcp.analysis.retransmission')
expect_count "nbrt0: tshark decodes A's $a_retargets retargets as NBSS 0x84" "$wire_84" "$a_retargets"
expect_count "nbrt0: each names $B port 139 (nbss.retarget_ip_address, nbss.retarget_port)" \
    "$(count "$WORK/nbrt0.pcap" "nbss.type == 0x84 && nbss.retarget_ip_address == $B && nbss.retarget_port == 139 && !tcp.analysis.retransmission")" "$wire_84"
expect_count "nbrt1: B sent no 0x84 and no 0x83" "$(count "$WORK/nbrt1.pcap" 'nbss.type == 0x84 || nbss.type == 0x83')" 0
expect_count "nbrt2: C's $((2 * CHAIN_N)) retargets name $A port 139" \
    "$(count "$WORK/nbrt2.pcap" "nbss.type == 0x84 && nbss.retarget_ip_address == $A && nbss.retarget_port == 139 && !tcp.analysis.retransmission")" "$((2 * CHAIN_N))"
for tap in nbrt0 nbrt1 nbrt2; do
    expect_count "$tap: nothing malformed" "$(count "$WORK/$tap.pcap" '_ws.malformed')" 0
done

echo "retarget lab: measured: hold $HOLD_N: hops 0 $hold_h0, hops 1 $hold_h1; setup $SETUP_N: hops 0 $setup_h0, hops 1 $setup_h1; chain $CHAIN_N: hops 2 $(json_num positive_hops_2 "$WORK/p5-max3.json"); A retargets $a_retargets"
if [ "$failures" -gt 0 ]; then
    echo "retarget lab: $failures check(s) FAILED"
    KEEP_LAB_LOGS=1
    exit 1
fi
echo "retarget lab: all checks passed"
