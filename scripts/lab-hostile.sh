#!/usr/bin/env bash
# Hostile peers and a faulty link (issue 15): the real `netbt serve` on a TAP in namespaces of its
# own, attacked by `netbt probe` (src/probe/), legitimate clients measured while it is, every
# frame on 139 captured and every reset from 139 counted and explained. Needs root. Deletes
# everything it starts, also on failure; every load is bounded in count and time (about 5 min).
#
#   unloaded  LEGIT clients against an idle server: the reference figure
#   loss      benches/impair.rs between the kernel and netbt: 10 % loss, 25 % reordering, 5 ms
#             delay both ways; LOSS_N echo sessions (`probe churn`), 24 at a time, 8 slots:
#             every session intact or 0x83, no client hang or reset, 0 bare RSTs from 139,
#             aborts (RST|ACK) <= 1 % of the sessions
#   slow      S+R slowloris connections (`probe slow --reopen`, 1 byte/s) pin every slot; 30
#             legitimate clients: >= 90 % answered 0x82/0x83 within 3 s, no reset
#   reopen    10 silent connections re-opened the moment each closes (`probe reopen`); 55
#             legitimate clients: the same target
#   syn50     spoofed SYNs from the /24, 50/s (`probe synflood`); 54 legitimate clients: the same
#   syn5000   the same at 5 000/s: the figure is reported, not asserted
#   names     20 000 name queries/s for 10 s on 137 (`probe query-flood`) with 30 legitimate
#             session clients: sessions unaffected (the same target), and every query that went
#             unanswered is visible somewhere: the kernel's TAP drops, or a netbt counter
#
# The legitimate clients (`probe flood`) start spread over LEGIT_SPREAD_MS while the attack runs;
# each counts as answered in time when its 0x82 or 0x83 came within 3 s of its first SYN.
#
# Every scenario prints one `SUMMARY` line, and at the end a table of them all. Resets from 139
# are listed by what drew them: the last segment the peer sent on that connection before the
# reset, and netbt's own last segment before it (a bare RST answering the peer's ACK or FIN after
# netbt's FIN is a connection netbt had already forgotten).
#
# HOSTILE_MEASURE=1 prints the figures and exits 0 whatever they are (a baseline);
# HOSTILE_LOSS_N (1000) sets the echo sessions of the loss scenario, HOSTILE_QUERY_RATE (20000) and
# HOSTILE_QUERY_SECS (10) the name-query flood (issue 15 measured 100 000/s for 30 s);
# HOSTILE_ONLY="unloaded slow ..." runs only those scenarios; HOSTILE_TABLE=FILE also writes the
# table there (scripts/bench.sh uses it); KEEP_LAB_LOGS=1 keeps the logs; NETBT=path tests that
# binary instead of the release build.
# shellcheck disable=SC2015  # `test && pass || fail`: pass only echoes, it cannot fail
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lab-lib.sh

PLAIN_NS="nbho-$$"              # tap0 with the kernel at .100 (lab.sh up)
LOSS_NS="nbho-l-$$"             # tap0 for netbt (no address), nbhok for the kernel, the relay between
export NETBT_NS=$PLAIN_NS
WORK=$(mktemp -d /tmp/netbt-lab-hostile.XXXXXX)
NETBT=${NETBT:-}
IMPAIR=./target/release/examples/impair
SERVER=192.168.69.1
KERNEL=192.168.69.100
MEASURE=${HOSTILE_MEASURE:-0}
ONLY=${HOSTILE_ONLY:-unloaded loss slow reopen syn50 syn5000 names}
S=8                              # netbt serve's default session slots
R=2                              # and refusal slots
LOSS_N=${HOSTILE_LOSS_N:-1000}   # echo sessions through the impairing relay
IMPAIRMENT="loss=10,reorder=25,delay=5"
WITHIN=3                         # seconds: the legitimate clients' target
TARGET_PCT=90
QUERY_RATE=${HOSTILE_QUERY_RATE:-20000}   # name queries per second of the names scenario...
QUERY_SECS=${HOSTILE_QUERY_SECS:-10}      # ...for this long
LEGIT_SPREAD_MS=15000            # the legitimate clients start over this window...
ATTACK_S=20                      # ...inside the attack, which runs this long after a 1.5 s head start
T_BEGIN=$EPOCHREALTIME
serve_pid=""
SUMMARIES=()

cleanup() {
    stop_ns "$PLAIN_NS"
    stop_ns "$LOSS_NS"
    scripts/lab.sh down >/dev/null 2>&1 || true
    if ip netns list | awk '{print $1}' | grep -qx "$LOSS_NS"; then ip netns del "$LOSS_NS" || true; fi
    drop_work
}
on_exit cleanup

want() { [[ " $ONLY " == *" $1 "* ]]; }
nsx() { local ns=$1; shift; ip netns exec "$ns" "$@"; }
# Bounded, in the namespace, as a child we wait for (a signal ends the script at once).
ns_run_in() { # ns_run_in NS SECONDS CMD... (lab-lib.sh's ns_run, in namespace NS)
    local ns=$1 limit=$2 child
    shift 2
    ip netns exec "$ns" timeout "$limit" "$@" &
    child=$!
    wait "$child"
}
# A target check: a failure in assert mode, a note in measure mode.
target() { # target DESCRIPTION CONDITION-RESULT(0|1)
    if [ "$2" = 0 ]; then pass "$1"; elif [ "$MEASURE" = 1 ]; then note "target missed: $1"; else fail "$1"; fi
}
pct() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.0f", 100 * a / b; else print 0 }'; }

start_serve() { # start_serve NS LABEL SERVE-ARGS...: netbt serve --name LABSRV, waits for ready
    local ns=$1 label=$2
    shift 2
    RUST_LOG=info ip netns exec "$ns" "$NETBT" serve --name LABSRV "$@" \
        >"$WORK/$label.out" 2>"$WORK/$label.err" &
    serve_pid=$!
    wait_for ready "$WORK/$label.out" 50 || true
    expect "$label: netbt serve ${*:+$* }is ready" "^netbt ready on tap0 " "$WORK/$label.out"
}

capture() { # capture NS LABEL [EXTRA-FILTER]: tcpdump on tap0 (netbt's side) into $WORK/LABEL.pcap
    local ns=$1 label=$2 filter="tcp port 139${3:+ and ($3)}"
    ip netns exec "$ns" tcpdump -i tap0 -U -n -s 128 -w "$WORK/$label.pcap" "$filter" 2>"$WORK/$label.tcpdump" &
    tcpdump_pid=$!
    wait_for "listening on" "$WORK/$label.tcpdump" 50 || true
}
end_capture() { sleep 0.5; kill "$tcpdump_pid" 2>/dev/null || true; wait "$tcpdump_pid" 2>/dev/null || true; }

# rst_causes CAPTURE: every reset from 139, grouped by what drew it. Per connection (tcp.stream)
# it remembers the peer's last segment and netbt's last one before the reset.
rst_causes() {
    tshark -n -r "$1" -Y tcp -T fields -E separator=' ' -e tcp.stream -e ip.src -e tcp.srcport \
        -e tcp.flags.syn -e tcp.flags.fin -e tcp.flags.reset -e tcp.flags.ack -e tcp.len \
        -e frame.time_epoch 2>/dev/null | awk -v srv="$SERVER" '
        function on(x) { return x == "1" || x == "True" }
        function flags(syn, fin, rst, ack, len,   s) {
            s = ""
            if (on(syn)) s = s "S"
            if (on(fin)) s = s "F"
            if (on(rst)) s = s "R"
            if (on(ack)) s = s "A"
            if (len > 0) s = s "+data"
            return s
        }
        {
            f = flags($4, $5, $6, $7, $8)
            if ($2 == srv && $3 == 139) {
                if (on($6)) {
                    kind = on($7) ? "RST|ACK" : "bare RST"
                    k = kind ", the peer'"'"'s last segment before it " (($1 in peer) ? peer[$1] : "-") \
                        ", netbt'"'"'s " (($1 in mine) ? mine[$1] : "-")
                    n[k]++
                    gap = ($1 in mine_t) ? $9 - mine_t[$1] : -1
                    if (!(k in maxgap) || gap > maxgap[k]) maxgap[k] = gap
                    heard = ($1 in peer_t) ? $9 - peer_t[$1] : -1
                    if (!(k in minheard) || heard < minheard[k]) minheard[k] = heard
                    if (!(k in maxheard) || heard > maxheard[k]) maxheard[k] = heard
                } else { mine[$1] = f; mine_t[$1] = $9 }
            } else { peer[$1] = f; peer_t[$1] = $9 }
        }
        END {
            for (k in n)
                printf "%6d  %s (netbt'"'"'s at most %.2f s before; the peer last heard %.2f-%.2f s before)\n",
                    n[k], k, maxgap[k], minheard[k], maxheard[k]
        }' | sort -rn
}
rst_counts() { # rst_counts CAPTURE [EXTRA]: "BARE ABORT" resets from 139
    local extra=${2:+ && ($2)}
    echo "$(count "$1" "ip.src == $SERVER && tcp.srcport == 139 && tcp.flags.reset == 1 && tcp.flags.ack == 0$extra")" \
        "$(count "$1" "ip.src == $SERVER && tcp.srcport == 139 && tcp.flags.reset == 1 && tcp.flags.ack == 1$extra")"
}
show_rsts() { # show_rsts LABEL: the reset counts, and what drew them
    local causes
    causes=$(rst_causes "$WORK/$1.pcap")
    if [ -n "$causes" ]; then
        echo "       resets from 139 by what drew them:"
        echo "$causes" | head -12 | sed 's/^/         /'
    fi
}

# legit NS LABEL COUNT: COUNT legitimate clients spread over LEGIT_SPREAD_MS, into $WORK/LABEL-legit.out
legit() {
    local ns=$1 label=$2 n=$3 spread=${4:-$LEGIT_SPREAD_MS}
    ns_run_in "$ns" 70 "$NETBT" probe flood "$SERVER" LABSRV --calling LEGIT --count "$n" \
        --spread-ms "$spread" --connect-timeout 25 --timeout 10 --deadline 50 --within "$WITHIN" \
        >"$WORK/$label-legit.out" 2>&1 || true
    grep '^SUMMARY=' "$WORK/$label-legit.out" | sed 's/^/       /' || true
}

# attacked LABEL LEGIT PROBE-ARGS...: runs `netbt probe PROBE-ARGS` in $PLAIN_NS as the attack (at
# most 60 s; its output in $WORK/LABEL-attack.out), starts LEGIT legitimate clients 1.5 s into it
# (legit), then waits for the attack to end and prints its SUMMARY line.
attacked() {
    local label=$1 n=$2 attack_pid
    shift 2
    nsx "$PLAIN_NS" timeout 60 "$NETBT" probe "$@" >"$WORK/$label-attack.out" 2>&1 &
    attack_pid=$!
    sleep 1.5
    legit "$PLAIN_NS" "$label" "$n"
    wait "$attack_pid" || true
    grep '^SUMMARY=' "$WORK/$label-attack.out" | sed 's/^/       attack: /' || true
}

# judge_legit LABEL N ATTACK: the legitimate clients' target, and the scenario's summary line.
judge_legit() {
    local label=$1 n=$2 attack=$3 f=$WORK/$1-legit.out in_time resets worst bare abort to_kernel answered
    in_time=$(field IN_TIME "$f"); resets=$(field RESETS "$f"); worst=$(field WORST_S "$f")
    answered=$(field ANSWERED "$f")
    read -r bare abort <<<"$(rst_counts "$WORK/$label.pcap")"
    to_kernel=$(count "$WORK/$label.pcap" "ip.src == $SERVER && tcp.srcport == 139 && tcp.flags.reset == 1 && ip.dst == $KERNEL")
    target "$label: $in_time of $n legitimate clients ($(pct "$in_time" "$n") %) answered 0x82/0x83 within $WITHIN s (want >= $TARGET_PCT %)" \
        "$([ $((100 * in_time)) -ge $((TARGET_PCT * n)) ] && echo 0 || echo 1)"
    target "$label: no legitimate client reset ($resets)" "$([ "$resets" -eq 0 ] && echo 0 || echo 1)"
    target "$label: no reset from 139 to the clients' address $KERNEL ($to_kernel)" "$([ "$to_kernel" -eq 0 ] && echo 0 || echo 1)"
    show_rsts "$label"
    summary "$label" "$attack" "$in_time/$n ($(pct "$in_time" "$n") %)" "$worst" "$resets" "$bare" "$abort" \
        "$([ "$answered" -lt "$n" ] && echo "$((n - answered)) never answered within 25 s")"
}

# summary SCENARIO ATTACK ANSWERED WORST LEGIT_RESETS BARE ABORT [NOTE]
summary() {
    local line
    line=$(printf 'SUMMARY scenario=%s answered_in_%ss=%s worst_s=%s legit_resets=%s rst_bare=%s rst_abort=%s' \
        "$1" "$WITHIN" "${3// /_}" "$4" "$5" "$6" "$7")
    echo "$line${8:+ note=${8// /_}}"
    SUMMARIES+=("$1|$2|$3|$4|$5|$6|$7|${8:-}")
}

stop_serve() { term_netbt "$1" "$serve_pid"; }
status_json() { nsx "$1" "$NETBT" status --json >"$2" 2>&1 || true; }

if [ -z "$NETBT" ]; then
    cargo build --release --quiet
    NETBT=./target/release/netbt
fi
cargo build --release --quiet --example impair
echo "lab hostile: scenarios: $ONLY$([ "$MEASURE" = 1 ] && echo " (HOSTILE_MEASURE=1: targets reported, not asserted)")"

# ------------------------------------------------------------------------------------------
if want unloaded || want slow || want reopen || want syn50 || want syn5000 || want names; then
    scripts/lab.sh up >/dev/null
fi

if want unloaded; then
    echo "scenario unloaded: 30 legitimate clients, no attack"
    start_serve "$PLAIN_NS" unloaded
    capture "$PLAIN_NS" unloaded
    legit "$PLAIN_NS" unloaded 30 3000
    end_capture
    stop_serve unloaded
    judge_legit unloaded 30 "none"
fi

if want slow; then
    echo "scenario slow: $((S + R)) slowloris connections (1 byte/s, re-opened), 30 legitimate clients"
    start_serve "$PLAIN_NS" slow
    capture "$PLAIN_NS" slow
    attacked slow 30 slow "$SERVER" LABSRV --count $((S + R)) --interval 1 --reopen \
        --timeout "$ATTACK_S" --deadline "$ATTACK_S"
    end_capture
    stop_serve slow
    judge_legit slow 30 "$((S + R)) slowloris, 1 byte/s"
fi

if want reopen; then
    echo "scenario reopen: 10 silent connections re-opened as each closes, 55 legitimate clients"
    start_serve "$PLAIN_NS" reopen
    capture "$PLAIN_NS" reopen
    attacked reopen 55 reopen "$SERVER" --count 10 --timeout "$ATTACK_S" --deadline "$ATTACK_S"
    end_capture
    stop_serve reopen
    judge_legit reopen 55 "10 silent, re-opened"
fi

for rate in 50 5000; do
    want "syn$rate" || continue
    label=syn$rate
    echo "scenario $label: spoofed SYNs from 192.168.69.0/24 at $rate/s, 54 legitimate clients"
    start_serve "$PLAIN_NS" "$label"
    # The spoofed SYNs themselves stay out of the capture (the probe counts them).
    capture "$PLAIN_NS" "$label" "not (tcp[13] == 2 and not src host $KERNEL)"
    attacked "$label" 54 synflood "$SERVER" --rate "$rate" --duration "$ATTACK_S"
    status_json "$PLAIN_NS" "$WORK/$label-status.json"
    jq -c '.counters.sessions | .gate + {aborts_handshake}' "$WORK/$label-status.json" 2>/dev/null \
        | sed 's/^/       gate: /' || true
    end_capture
    stop_serve "$label"
    if [ "$rate" = 50 ]; then
        judge_legit "$label" 54 "spoofed SYNs $rate/s"
    else
        # Reported, not asserted: the issue asks for the figure and the limit that binds.
        MEASURE_SAVED=$MEASURE; MEASURE=1
        judge_legit "$label" 54 "spoofed SYNs $rate/s (reported)"
        MEASURE=$MEASURE_SAVED
    fi
done

if want names; then
    echo "scenario names: $QUERY_RATE name queries/s for $QUERY_SECS s on 137, 30 legitimate session clients"
    start_serve "$PLAIN_NS" names
    capture "$PLAIN_NS" names
    status_json "$PLAIN_NS" "$WORK/names-before.json"
    tapdrop_before=$(nsx "$PLAIN_NS" cat /sys/class/net/tap0/statistics/tx_dropped)
    nsx "$PLAIN_NS" timeout 60 "$NETBT" probe query-flood "$SERVER" LABSRV --rate "$QUERY_RATE" --duration "$QUERY_SECS" \
        >"$WORK/names-attack.out" 2>&1 &
    attack_pid=$!
    sleep 1
    legit "$PLAIN_NS" names 30 8000
    wait "$attack_pid" || true
    grep '^SUMMARY=' "$WORK/names-attack.out" | sed 's/^/       attack: /' || true
    status_json "$PLAIN_NS" "$WORK/names-after.json"
    tapdrop_after=$(nsx "$PLAIN_NS" cat /sys/class/net/tap0/statistics/tx_dropped)
    end_capture
    stop_serve names
    sent=$(field SENT "$WORK/names-attack.out"); answered=$(field ANSWERED "$WORK/names-attack.out")
    nsdelta() { # nsdelta JQ: after - before of a number in the status documents
        echo $(( $(jq "$1" "$WORK/names-after.json" 2>/dev/null || echo 0) - $(jq "$1" "$WORK/names-before.json" 2>/dev/null || echo 0) ))
    }
    received=$(nsdelta '.counters.names.received')
    # Any name-service counter with "drop" in its name (there is none today).
    DROPS='[.counters.names | to_entries[] | select(.key | test("drop")) | .value] | add // 0'
    counted=$(nsdelta "$DROPS")
    tapdrop=$((tapdrop_after - tapdrop_before))
    lost=$((sent - tapdrop - received - counted))
    echo "       queries: $sent sent, $answered answered ($(pct "$answered" "$sent") %); netbt received $received," \
        "counted as dropped $counted; the kernel's TAP dropped $tapdrop; unaccounted $lost"
    target "names: every query accounted for (sent = TAP drops + received + counted drops; $lost unaccounted)" \
        "$([ "$lost" -eq 0 ] && echo 0 || echo 1)"
    judge_legit names 30 "name queries $QUERY_RATE/s"
    last=${SUMMARIES[-1]}
    note=${last##*|}
    SUMMARIES[-1]="${last%|*}|${note:+$note; }queries answered $answered/$sent ($(pct "$answered" "$sent") %), $lost unaccounted"
    echo "SUMMARY scenario=names queries_sent=$sent answered=$answered tap_dropped=$tapdrop received=$received counted_drops=$counted unaccounted=$lost"
fi

if want loss; then
    echo "scenario loss: impair $IMPAIRMENT both ways; $LOSS_N echo sessions, 24 at a time, $S slots"
    ip netns add "$LOSS_NS"
    nsx "$LOSS_NS" ip link set lo up
    nsx "$LOSS_NS" ip tuntap add dev tap0 mode tap
    nsx "$LOSS_NS" ip tuntap add dev nbhok mode tap
    nsx "$LOSS_NS" ip addr add "$KERNEL/24" brd + dev nbhok
    for dev in tap0 nbhok; do
        nsx "$LOSS_NS" sysctl -qw "net.ipv6.conf.$dev.disable_ipv6=1"
        nsx "$LOSS_NS" ip link set "$dev" up
    done
    # Directly (not through a function), so $! is the relay itself and SIGTERM reaches it.
    ip netns exec "$LOSS_NS" "$IMPAIR" --kernel-tap nbhok --netbt-tap tap0 --both "$IMPAIRMENT" --seed 15 \
        >"$WORK/impair.out" 2>"$WORK/impair.err" &
    impair_pid=$!
    wait_for READY "$WORK/impair.out" 50 || true
    expect "impair relay is up between nbhok and tap0" "^READY " "$WORK/impair.out"
    start_serve "$LOSS_NS" loss --sessions "$S"
    capture "$LOSS_NS" loss
    # A stage may wait for a segment netbt retransmits on smoltcp's backed-off timer: after a
    # few losses in a row it is 8, 16, 32 s (one run: our FIN lost at +0 and +8 s, the client's
    # close done at +24 s). A client counts as hung after 60 s, smoltcp's longest timer.
    ns_run_in "$LOSS_NS" 420 "$NETBT" probe churn "$SERVER" LABSRV --count "$LOSS_N" --concurrency 24 \
        --echo 512 --timeout 60 --deadline 150 >"$WORK/loss-churn.out" 2>&1 || true
    grep -v '^SUMMARY=' "$WORK/loss-churn.out" | head -10 | sed 's/^/       /' || true
    grep '^SUMMARY=' "$WORK/loss-churn.out" | sed 's/^/       /' || true
    status_json "$LOSS_NS" "$WORK/loss-status.json"
    jq -c '.counters.sessions | {aborts_handshake, aborts_close, aborts_stalled, resets_sent: .gate.resets_sent}' \
        "$WORK/loss-status.json" 2>/dev/null | sed 's/^/       netbt: /' || true
    end_capture
    stop_serve loss
    kill -TERM "$impair_pid" 2>/dev/null || true
    wait "$impair_pid" 2>/dev/null || true
    sed 's/^/       impair: /' "$WORK/impair.out" | grep DIR= || true
    for dir in to-netbt from-netbt; do
        dropped=$(grep "^DIR=$dir " "$WORK/impair.out" | grep -Eo 'DROPPED=[0-9]+' | cut -d= -f2 || true)
        reordered=$(grep "^DIR=$dir " "$WORK/impair.out" | grep -Eo 'REORDERED=[0-9]+' | cut -d= -f2 || true)
        [ "${dropped:-0}" -gt 0 ] && [ "${reordered:-0}" -gt 0 ] \
            && pass "impair $dir: ${dropped} frames lost, ${reordered} overtaken (the link was impaired)" \
            || fail "impair $dir: ${dropped:-no} frames lost, ${reordered:-no} overtaken: the relay did not impair"
    done
    f=$WORK/loss-churn.out
    n=$(field N "$f"); intact=$(field INTACT "$f"); neg=$(field NEG83 "$f"); bad=$(field BAD "$f")
    resets=$(field RESETS "$f"); hangs=$(field HANGS "$f"); unfinished=$(field UNFINISHED "$f")
    read -r bare abort <<<"$(rst_counts "$WORK/loss.pcap")"
    expect_at_least "loss: $n sessions ran (want $LOSS_N)" "$n" "$LOSS_N"
    target "loss: every session intact ($intact) or 0x83 ($neg): $bad others, $unfinished unfinished" \
        "$([ "$bad" -eq 0 ] && [ "$unfinished" -eq 0 ] && echo 0 || echo 1)"
    target "loss: no client hang ($hangs) or reset ($resets)" "$([ "$hangs" -eq 0 ] && [ "$resets" -eq 0 ] && echo 0 || echo 1)"
    target "loss: 0 bare RSTs from 139 ($bare)" "$([ "$bare" -eq 0 ] && echo 0 || echo 1)"
    target "loss: aborts (RST|ACK from 139) <= 1 % of the sessions ($abort of $n)" \
        "$([ $((100 * abort)) -le "$n" ] && echo 0 || echo 1)"
    show_rsts loss
    summary loss "loss 10 %, reorder 25 %, delay 5 ms" "intact $intact, 0x83 $neg, bad $bad of $n" \
        "$(field MAX_S "$f")" "$resets" "$bare" "$abort" "hangs $hangs"
fi

# ------------------------------------------------------------------------------------------
TABLE=$WORK/table.md
{
    echo "| scenario | attack | legitimate clients answered 0x82/0x83 within $WITHIN s | worst answer, s | legitimate clients reset | bare RSTs from 139 | RST\\|ACK aborts from 139 | note |"
    echo "|---|---|---:|---:|---:|---:|---:|---|"
    for s in "${SUMMARIES[@]}"; do
        IFS='|' read -r sc at an wo lr rb ra no <<<"$s"
        echo "| $sc | $at | $an | $wo | $lr | $rb | $ra | $no |"
    done
} >"$TABLE"
echo "summary:"
cat "$TABLE"
[ -n "${HOSTILE_TABLE:-}" ] && cp "$TABLE" "$HOSTILE_TABLE"
printf 'total %s s\n' "$(secs "$T_BEGIN" "$EPOCHREALTIME")"
if [ "$failures" -ne 0 ]; then
    if [ "$MEASURE" = 1 ]; then
        echo "hostile lab (HOSTILE_MEASURE=1): $failures checks failed besides the targets"
    else
        echo "hostile lab: $failures failed"; KEEP_LAB_LOGS=1; exit 1
    fi
else
    echo "hostile lab: all passed$([ "$MEASURE" = 1 ] && echo " (targets reported only)")"
fi
