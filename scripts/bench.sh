#!/usr/bin/env bash
# Benchmark of the NetBT session service, every row beside baselines measured in the same
# invocation with the same client (benches/nbss_load.rs):
#
#   smbd       Samba's smbd on the kernel's TCP port 139 (forks per connection)
#   responder  benches/nbss_responder.rs, a minimal epoll NetBT responder on the kernel's TCP:
#              the machine's practical ceiling
#   smoltcp    benches/smoltcp_echo.rs, a plain smoltcp TCP echo server on the same TAP, address
#              and buffer sizes as netbt: the baseline of the echo rows
#   netbt      `netbt serve` on a TAP (192.168.69.1), its command line in NETBT_ARGS below
#
# The echo table compares netbt with the raw smoltcp echo at each session buffer size in
# ECHO_BUFFERS (`--session-buffer B` for netbt, `--buffer B` for smoltcp_echo), in
# BENCH_ECHO_ROUNDS rounds that alternate which of the two goes first; each figure is the median
# over the rounds. The responder's echo over kernel loopback is printed beside it as the
# machine's ceiling (not like-for-like: no TAP, MTU 65536).
#
# Needs root: it creates its own network namespace netbt-bench-$$ (tap0, the kernel at
# 192.168.69.100/24, loopback), deletes it on exit, also on failure, and stops every process it
# started. Every load is bounded in count and time. Installs samba (smbd) with apt if missing.
# Prints the tables and writes them between the markers in BENCHMARKS.md (BENCH_OUT=FILE to write
# elsewhere, BENCH_OUT=/dev/null to skip). Runs in about three minutes, build excluded.
#
#   scripts/bench.sh                 everything
#   BENCH_ONLY="responder smoltcp netbt" scripts/bench.sh     skip smbd
#   BENCH_ONLY=echo scripts/bench.sh    only the echo table (responder ceiling, smoltcp, netbt);
#                                       prints only, unless BENCH_OUT names a file
#   BENCH_ONLY=hostile scripts/bench.sh the hostile table: scripts/lab-hostile.sh with
#                                       HOSTILE_MEASURE=1 (legitimate clients answered within 3 s
#                                       under each attack beside the unloaded figure, resets from
#                                       139), written between the hostile markers of BENCHMARKS.md
#   BENCH_ONLY=capacity scripts/bench.sh  the capacity tables (issue 12): setups/s against
#                                       --sessions 64 ... 16384 (each its own daemon), start-up,
#                                       idle CPU and memory per slot count, and setups and echo
#                                       with 4096 sessions held; written between the capacity
#                                       markers of BENCHMARKS.md (about three minutes)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
. scripts/smbd-lib.sh

# --- What runs. netbt's command line lives here and only here. ---------------------------------
NETBT=./target/release/netbt
NETBT_ARGS="serve --tap tap0 --ip 192.168.69.1/24 --name LABSRV"
# Session slots the overload rows assume (netbt serve's default).
NETBT_SESSIONS=${NETBT_SESSIONS:-8}
# Session slots for the setup and hold rows: at least the highest concurrency, so every setup
# is a session (0x82), as it is for smbd and the responder. The overload rows use NETBT_SESSIONS.
SETUP_SESSIONS=${SETUP_SESSIONS:-128}
NETBT_ADDR=192.168.69.1
KERNEL_ADDR=192.168.69.100
PORT=139
CALLED='LABSRV#20'

# --- The client, the same for every row. -------------------------------------------------------
LOAD=./target/release/examples/nbss_load
RESPONDER=./target/release/examples/nbss_responder
RAW_ECHO=./target/release/examples/smoltcp_echo
CLOSE=${BENCH_CLOSE:-rst}              # SO_LINGER {1,0}: no client TIME_WAIT (see BENCHMARKS.md)
THREADS=${BENCH_CLIENT_THREADS:-1}     # client epoll threads
CONCS=(1 32 128)
FAST_COUNTS=(20000 50000 50000)        # responder and netbt setups per concurrency
SMBD_COUNTS=(300 1000 1000)            # smbd forks per connection (~470/s)
ROW_SECS=${BENCH_ROW_SECS:-10}         # cap of every setup row, seconds
ECHO_SECS=${BENCH_ECHO_SECS:-3}
ECHO_SIZES=(65536 131071)              # session message payload sizes of the echo rows
ECHO_SESSIONS=1                        # nbss_load echo --sessions
ECHO_WINDOW=2                          # nbss_load echo --window
ECHO_BUFFERS=(8192 65536)              # session buffer sizes (each direction) of the echo table
ECHO_ROUNDS=${BENCH_ECHO_ROUNDS:-5}    # raw smoltcp / netbt alternations; figures are medians
HOLD_N=${BENCH_HOLD_N:-200}            # sessions held for the memory rows
HOLD_SECS=3
OVERLOAD_COUNT=40000
OVERLOAD_ROUNDS=${BENCH_OVERLOAD_ROUNDS:-5}   # unloaded / 10×S alternations; figures are medians
# The capacity tables (BENCH_ONLY=capacity): slot counts, each its own `netbt serve` run.
CAP_SLOTS=(${BENCH_CAP_SLOTS:-64 256 1024 4096 16384})
CAP_CONC=32                            # concurrency of the setups/s column
CAP_WIDE_CONC=128                      # the p99 column, run for CAP_WIDE_SLOTS only
CAP_WIDE_SLOTS=4096
CAP_COUNT=50000                        # setups per row (and ROW_SECS at most)
CAP_IDLE_SECS=${BENCH_CAP_IDLE_SECS:-5}   # idle CPU window of every daemon (first round), no traffic
CAP_ROUNDS=${BENCH_CAP_ROUNDS:-3}      # sweeps over CAP_SLOTS, alternating the order; medians
CAP_HELD=${BENCH_CAP_HELD:-4096}       # sessions held open for the held table
CAP_BUFFER=${BENCH_CAP_BUFFER:-8192}   # --session-buffer of the capacity daemons (netbt's default)
ONLY=${BENCH_ONLY:-smbd responder smoltcp netbt}
ECHO_ONLY=0
CAPACITY_ONLY=0
if [[ " $ONLY " == *" capacity "* ]]; then
    # The capacity tables alone, written between their own markers.
    CAPACITY_ONLY=1
    ONLY=""
    OUT=${BENCH_OUT:-$ROOT/BENCHMARKS.md}
elif [[ " $ONLY " == *" echo "* ]]; then
    # The echo table alone: the responder's echo (ceiling), smoltcp_echo and netbt, no other
    # rows. It would leave the other tables empty, so the file is left alone unless asked.
    ECHO_ONLY=1
    ONLY="responder smoltcp netbt"
    OUT=${BENCH_OUT:-/dev/null}
else
    OUT=${BENCH_OUT:-$ROOT/BENCHMARKS.md}
fi

NS="netbt-bench-$$"
WORK=$(mktemp -d /tmp/netbt-bench.XXXXXX)
pids=()

if [ "$(id -u)" -ne 0 ]; then
    cargo build --release --examples --bins --quiet
    exec sudo -E BENCH_SKIP_BUILD=1 "$0" "$@"
fi

# write_section NAME HEADING: puts $WORK/section.md (from "<!-- NAME:begin" to "<!-- NAME:end -->")
# in place of that section of OUT, or appends it under "## HEADING" if OUT has none yet.
write_section() {
    local name=$1 heading=$2
    [ "$OUT" != /dev/null ] || return 0
    if [ -f "$OUT" ] && grep -q "^<!-- $name:begin" "$OUT" && grep -q "^<!-- $name:end" "$OUT"; then
        awk -v sec="$WORK/section.md" -v begin="^<!-- $name:begin" -v end="^<!-- $name:end" '
            $0 ~ begin { while ((getline l < sec) > 0) print l; skip = 1; next }
            $0 ~ end { skip = 0; next }
            !skip { print }' "$OUT" >"$WORK/out.md"
    else
        { [ -f "$OUT" ] && cat "$OUT" && echo; echo "## $heading"; echo; cat "$WORK/section.md"; } >"$WORK/out.md"
    fi
    cat "$WORK/out.md" >"$OUT"
    echo "written to $OUT"
}

# --- The hostile table: its own script and namespaces, then done. -----------------------------
if [[ " $ONLY " == *" hostile "* ]]; then
    OUT=${BENCH_OUT:-$ROOT/BENCHMARKS.md}
    trap 'rm -rf "$WORK"' EXIT
    T0=$EPOCHREALTIME
    LOADAVG=$(cut -d' ' -f1-3 /proc/loadavg)
    HOSTILE_MEASURE=1 HOSTILE_TABLE="$WORK/hostile.md" scripts/lab-hostile.sh >&2
    COMMIT=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
    git -C "$ROOT" diff --quiet 2>/dev/null || COMMIT="$COMMIT (+ uncommitted changes)"
    {
        echo "<!-- hostile:begin (written by BENCH_ONLY=hostile scripts/bench.sh; edits inside are overwritten) -->"
        echo "Run of $(date -u '+%Y-%m-%d %H:%M UTC') at commit $COMMIT: $(nproc) vCPU, Linux $(uname -r);"
        echo "\`scripts/lab-hostile.sh\` with HOSTILE_MEASURE=1, $(awk -v a="$T0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.0f", b - a }') s, load average before: $LOADAVG."
        echo
        cat "$WORK/hostile.md"
        echo "<!-- hostile:end -->"
    } >"$WORK/section.md"
    echo
    cat "$WORK/hostile.md"
    write_section hostile "Hostile peers"
    exit 0
fi

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    if ip netns list 2>/dev/null | awk '{print $1}' | grep -qx "$NS"; then
        # Anything still inside the namespace was started by this script.
        for pid in $(ip netns pids "$NS" 2>/dev/null); do kill "$pid" 2>/dev/null || true; done
        sleep 0.3
        for pid in $(ip netns pids "$NS" 2>/dev/null); do kill -9 "$pid" 2>/dev/null || true; done
        ip netns del "$NS" 2>/dev/null || true
    fi
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    if [ "$rc" -ne 0 ]; then echo "bench failed (exit $rc); logs kept in $WORK" >&2; else rm -rf "$WORK"; fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

in_ns() { ip netns exec "$NS" "$@"; }
want() { [[ " $ONLY " == *" $1 "* ]]; }
say() { echo "== $*" >&2; }

# --- Prerequisites ------------------------------------------------------------------------------
if want smbd; then
    ensure_smbd "$WORK/apt.log"
fi
if [ "${BENCH_SKIP_BUILD:-0}" != 1 ]; then
    say "cargo build --release --examples --bins"
    cargo build --release --examples --bins --quiet
fi

# --- The namespace: loopback, tap0 with the kernel at 192.168.69.100/24. ------------------------
ip netns add "$NS"
ip -n "$NS" link set lo up
ip -n "$NS" tuntap add dev tap0 mode tap
ip -n "$NS" addr add "$KERNEL_ADDR/24" brd + dev tap0
in_ns sysctl -qw net.ipv6.conf.tap0.disable_ipv6=1
in_ns sysctl -qw net.ipv4.tcp_tw_reuse=1     # belt and braces; the setup rows close with RST
ip -n "$NS" link set tap0 up

# --- Helpers ------------------------------------------------------------------------------------
num() { # num VALUE DECIMALS: formatted, or "–" when empty/null
    if [ -z "$1" ] || [ "$1" = null ]; then echo "–"; else awk -v v="$1" -v d="$2" 'BEGIN {printf "%.*f", d, v}'; fi
}
ratio() { # ratio A B: A/B with two decimals, "–" when either is missing or B is 0
    if [ -z "$1" ] || [ -z "$2" ] || [ "$1" = null ] || [ "$2" = null ]; then echo "–"; return; fi
    awk -v a="$1" -v b="$2" 'BEGIN { if (b <= 0 || a < 0) print "–"
        else if (a / b >= 0.1 || a == 0) printf "%.2f", a / b; else printf "%.2g", a / b }'
}

# jget ROW KEY: a value from the row's one-line JSON (flat keys), "" if the row did not run.
jget() {
    local f="$WORK/$1.json"
    [ -s "$f" ] || { echo ""; return; }
    grep -o "\"$2\":[^,}]*" "$f" | head -1 | cut -d: -f2- | tr -d '"'
}
# outcomes ROW...: the non-zero outcome counts of the rows (summed), e.g. "refused 20000".
outcomes() {
    local k v r t s="" ran=0
    for r in "$@"; do [ -s "$WORK/$r.json" ] && ran=1; done
    [ "$ran" = 1 ] || { echo "not run"; return; }
    for k in positive neg_80 neg_81 neg_82 neg_83 neg_8f neg_other retarget refused reset eof \
             bad_response connect_timeout response_timeout connect_error eaddrnotavail other unfinished \
             mismatches errors; do
        t=0
        for r in "$@"; do
            v=$(jget "$r" "$k")
            if [ -n "$v" ] && [ "$v" != null ]; then t=$((t + ${v%.*})); fi
        done
        if [ "$t" != 0 ]; then s="$s${s:+, }$k $t"; fi
    done
    echo "${s:-none}"
}
# load ROW ARGS...: runs the client in the namespace, JSON to ROW.json, human lines to the terminal.
load() {
    local row=$1; shift
    # In the background, so that a signal to this script is handled at once, not after the row.
    timeout --signal=TERM $((ROW_SECS + HOLD_SECS + 40)) \
        ip netns exec "$NS" "$LOAD" "$@" --close "$CLOSE" --threads "$THREADS" --called "$CALLED" \
        --label "$row" --json >"$WORK/$row.json" 2>"$WORK/$row.txt" &
    local lp=$!; pids+=("$lp")
    wait "$lp" || true
    sed 's/^/   /' "$WORK/$row.txt" >&2
}
setup_rows() { # setup_rows PREFIX TARGET COUNT...
    local prefix=$1 target=$2 i; shift 2
    local counts=("$@")
    for i in "${!CONCS[@]}"; do
        load "$prefix-c${CONCS[$i]}" setup --target "$target" --concurrency "${CONCS[$i]}" \
            --count "${counts[$i]}" --duration "$ROW_SECS"
    done
}
# cpu_ticks PID: user + system CPU time of the process so far, in clock ticks.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo ""; }
CLK_TCK=$(getconf CLK_TCK)
echo_rows() { # echo_rows PREFIX TARGET SERVER_PID: rows PREFIX-s65536, PREFIX-s131071
    local size t0 t1
    for size in "${ECHO_SIZES[@]}"; do
        t0=$(cpu_ticks "$3")
        load "$1-s$size" echo --target "$2" --size "$size" --duration "$ECHO_SECS" \
            --sessions "$ECHO_SESSIONS" --window "$ECHO_WINDOW"
        t1=$(cpu_ticks "$3")
        # The server's CPU time over the row (user + system; the system part includes the
        # kernel's TCP work for the client that a TAP write triggers), for cpu_per_byte.
        [ -n "$t0" ] && [ -n "$t1" ] && echo "$((t1 - t0))" >"$WORK/$1-s$size.cpu"
    done
    return 0
}
# cpu_per_byte ROW: the server's CPU nanoseconds per echoed byte over an echo row, "" if unknown.
cpu_per_byte() {
    local bytes ticks
    bytes=$(jget "$1" echoed_bytes)
    [ -s "$WORK/$1.cpu" ] || { echo ""; return; }
    ticks=$(cat "$WORK/$1.cpu")
    awk -v t="$ticks" -v hz="$CLK_TCK" -v b="${bytes:-0}" 'BEGIN { if (b > 0) printf "%.3f", t / hz * 1e9 / b }'
}
# tree PID: the process and all its descendants.
tree() {
    ps -e -o pid=,ppid= | awk -v root="$1" '
        { parent[$1] = $2 }
        END { for (p in parent) { q = p; n = 0
                while (q != root && (q in parent) && q > 1 && n++ < 64) q = parent[q]
                if (q == root) print p } }'
}
# mem PID: "PSS RSS" in KiB summed over the process tree.
mem() {
    local pid
    for pid in $(tree "$1"); do
        awk '/^Pss:/ {p = $2} /^Rss:/ {r = $2} END {print p + 0, r + 0}' "/proc/$pid/smaps_rollup" 2>/dev/null || true
    done | awk '{p += $1; r += $2} END {print p + 0, r + 0}'
}
# hold_row ROW TARGET SERVER_PID: holds HOLD_N sessions, measures the server's memory meanwhile.
hold_row() {
    local row=$1 target=$2 server=$3 before during hp
    before=$(mem "$server")
    ip netns exec "$NS" "$LOAD" hold --target "$target" --count "$HOLD_N" --concurrency 32 \
        --hold "$HOLD_SECS" --duration "$ROW_SECS" --close "$CLOSE" --called "$CALLED" \
        --label "$row" --json >"$WORK/$row.json" 2>"$WORK/$row.txt" &
    hp=$!; pids+=("$hp")
    for _ in $(seq 300); do grep -q '^holding' "$WORK/$row.txt" && break; sleep 0.1; done
    sleep 0.5
    during=$(mem "$server")
    wait "$hp" || true
    sed 's/^/   /' "$WORK/$row.txt" >&2
    local held; held=$(jget "$row" held_at_start); held=${held:-0}
    read -r pb rb <<<"$before"; read -r pd rd <<<"$during"
    echo "$pb $rb $pd $rd $held" >"$WORK/$row.mem"
    echo "   $row memory: PSS $pb -> $pd KiB, RSS $rb -> $rd KiB with $held sessions held" >&2
}
# memget ROW FIELD: idle_pss | held_pss | per_session_pss (KiB) from a hold row.
memget() {
    local f="$WORK/$1.mem"
    [ -s "$f" ] || { echo ""; return; }
    read -r pb _ pd _ held <"$f"
    case $2 in
        idle_pss) echo "$pb" ;;
        per_session_pss) [ "$held" -gt 0 ] && awk -v a="$pb" -v b="$pd" -v n="$held" 'BEGIN {printf "%.1f", (b - a) / n}' || echo "" ;;
    esac
}
wait_listen() { # wait_listen ADDR PORT
    for _ in $(seq 100); do
        in_ns ss -ltnH "sport = :$2" 2>/dev/null | grep -q "$1:$2" && return 0
        sleep 0.1
    done
    return 1
}
stop() { # stop PID: SIGTERM, wait
    kill -TERM "$1" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
}

START=$(date +%s)
LOADAVG=$(cut -d' ' -f1-3 /proc/loadavg)

# --- smbd ---------------------------------------------------------------------------------------
if want smbd; then
    say "smbd on $KERNEL_ADDR:$PORT"
    S="$WORK/smbd"
    write_smb_conf "$S" "$PORT" "$KERNEL_ADDR/24" share
    # In a session and process group of its own (setsid; smbd's own setsid would fail and it
    # would exit): smbd signals its whole process group when it shuts down.
    ip netns exec "$NS" setsid smbd --foreground --no-process-group --configfile="$S/smb.conf" \
        >"$S/stdout" 2>&1 &
    smbd_pid=$!; pids+=("$smbd_pid")
    if wait_listen "$KERNEL_ADDR" "$PORT"; then
        # setsid forks when it has to; the pid file names the real smbd.
        smbd_pid=$(cat "$S/run/smbd.pid" 2>/dev/null || echo "$smbd_pid"); pids+=("$smbd_pid")
        setup_rows smbd "$KERNEL_ADDR:$PORT" "${SMBD_COUNTS[@]}"
        hold_row smbd-hold "$KERNEL_ADDR:$PORT" "$smbd_pid"
    else
        say "smbd did not listen; its rows are empty (see $S/stdout)"
        cat "$S/stdout" >&2 || true
    fi
    for pid in $(tree "$smbd_pid"); do [ "$pid" = "$smbd_pid" ] || kill "$pid" 2>/dev/null || true; done
    stop "$smbd_pid"
fi

# --- the kernel-TCP responder ---------------------------------------------------------------------
if want responder; then
    say "nbss_responder on $KERNEL_ADDR:$PORT"
    ip netns exec "$NS" "$RESPONDER" --listen "$KERNEL_ADDR:$PORT" >"$WORK/responder.out" 2>"$WORK/responder.err" &
    rpid=$!; pids+=("$rpid")
    wait_listen "$KERNEL_ADDR" "$PORT" || { say "nbss_responder did not listen"; exit 1; }
    [ "$ECHO_ONLY" = 1 ] || setup_rows responder "$KERNEL_ADDR:$PORT" "${FAST_COUNTS[@]}"
    echo_rows responder-echo "$KERNEL_ADDR:$PORT" "$rpid"
    [ "$ECHO_ONLY" = 1 ] || hold_row responder-hold "$KERNEL_ADDR:$PORT" "$rpid"
    stop "$rpid"; sed 's/^/   /' "$WORK/responder.err" >&2

    if [ "$ECHO_ONLY" != 1 ]; then
        say "nbss_responder --refuse on $KERNEL_ADDR:$PORT (the refusal ceiling)"
        ip netns exec "$NS" "$RESPONDER" --listen "$KERNEL_ADDR:$PORT" --refuse >"$WORK/refuser.out" 2>"$WORK/refuser.err" &
        rpid=$!; pids+=("$rpid")
        wait_listen "$KERNEL_ADDR" "$PORT" || { say "nbss_responder --refuse did not listen"; exit 1; }
        load responder-refuse setup --target "$KERNEL_ADDR:$PORT" --concurrency $((10 * NETBT_SESSIONS)) \
            --count "$OVERLOAD_COUNT" --duration "$ROW_SECS"
        stop "$rpid"
    fi
fi

# --- netbt ----------------------------------------------------------------------------------------
# netbt's command line: NETBT_ARGS, a control socket of our own (the default path may belong to
# another running netbt), and the slot count of the rows: SETUP_SESSIONS for the setup and hold
# rows, NETBT_SESSIONS for the others.
args="$NETBT_ARGS --control $WORK/netbt.sock"
setup_args="$args --sessions $SETUP_SESSIONS"
args="$args --sessions $NETBT_SESSIONS"
# ledger_bytes FIELD: bytes_per_session_slot | bytes_per_refusal_slot from `netbt status`.
ledger_bytes() {
    "$NETBT" status --control "$WORK/netbt.sock" --json 2>/dev/null |
        sed -n "s/.*\"$1\": \([0-9]*\).*/\1/p" | head -n 1
}
# start_server NAME READY_WORD COMMAND...: starts COMMAND in the namespace, its output in
# NAME.out/.err; waits (10 s at most) for READY_WORD on its stdout. Sets SERVER_PID.
start_server() {
    local name=$1 word=$2; shift 2
    ip netns exec "$NS" "$@" >"$WORK/$name.out" 2>"$WORK/$name.err" &
    SERVER_PID=$!; pids+=("$SERVER_PID")
    for _ in $(seq 100); do
        grep -q "$word" "$WORK/$name.out" && return 0
        kill -0 "$SERVER_PID" 2>/dev/null || break
        sleep 0.1
    done
    say "$name did not print $word; its rows are empty"
    sed 's/^/   /' "$WORK/$name.err" >&2 || true
    return 1
}

# --- capacity (BENCH_ONLY=capacity): cost against slots configured, issue 12 -------------------
# Every daemon of this part: NETBT_ARGS, its own control socket, --session-buffer CAP_BUFFER.
# CAP_ROUNDS sweeps over CAP_SLOTS (odd rounds ascending, even rounds descending, so a drift in
# the machine's load favours no slot count), one daemon per slot count and round: rows
# cap-sS-rR-c32, cap-sS-rR-c128 (CAP_WIDE_SLOTS only) and cap-sS-rR-echo; then one
# daemon with CAP_HELD + CAP_CONC slots for the held table: echo and setups before and while
# CAP_HELD sessions are held open (rows held-echo-idle, held-setup-idle, held-hold,
# held-setup-held, held-echo-held).
if [ "$CAPACITY_ONLY" = 1 ]; then
    cap_max=0
    for s in "${CAP_SLOTS[@]}" $((CAP_HELD + CAP_CONC)); do [ "$s" -gt "$cap_max" ] && cap_max=$s; done
    # What the largest daemon reserves (both buffers of every slot) must fit four times into
    # the memory available (other helpers share the machine); else the smallest buffer netbt
    # takes, said in the table header.
    avail_kib=$(awk '/^MemAvailable:/ {print $2}' /proc/meminfo)
    CAP_BUFFER_NOTE="netbt's default"
    [ "$CAP_BUFFER" = 8192 ] || CAP_BUFFER_NOTE="BENCH_CAP_BUFFER"
    if [ $((2 * CAP_BUFFER * cap_max / 1024 * 4)) -gt "$avail_kib" ]; then
        CAP_BUFFER=1024
        CAP_BUFFER_NOTE="reduced: 2 × 8192 × $cap_max bytes would not fit four times into the $((avail_kib / 1024)) MiB available"
    fi
    # cap_server NAME SLOTS: starts netbt with SLOTS session slots; NAME.start holds "ms to the
    # first status answer, ms to the ready line, uptime_ms the daemon reported", NAME.status the
    # status JSON. Sets SERVER_PID; fails (after stopping it) if it never answered.
    cap_server() {
        local name=$1 slots=$2 t0 t_status="" t_ready="" i
        say "netbt --sessions $slots --session-buffer $CAP_BUFFER"
        rm -f "$WORK/netbt.sock"
        t0=$EPOCHREALTIME
        # shellcheck disable=SC2086  # NETBT_ARGS is a word list on purpose
        ip netns exec "$NS" "$NETBT" $NETBT_ARGS --control "$WORK/netbt.sock" --sessions "$slots" \
            --session-buffer "$CAP_BUFFER" >"$WORK/$name.out" 2>"$WORK/$name.err" &
        SERVER_PID=$!; pids+=("$SERVER_PID")
        # The first answer of the control socket: the node is built (every slot's memory and
        # socket) and its loop runs. Polled every 10 ms for 30 s at most.
        for ((i = 0; i < 3000; i++)); do
            kill -0 "$SERVER_PID" 2>/dev/null || break
            if timeout 5 "$NETBT" status --control "$WORK/netbt.sock" --json >"$WORK/$name.status" 2>/dev/null; then
                t_status=$EPOCHREALTIME; break
            fi
            sleep 0.01
        done
        # Ready: its names registered (B-node registration waits for objections), sessions listen.
        for ((i = 0; i < 300; i++)); do
            grep -q ready "$WORK/$name.out" && { t_ready=$EPOCHREALTIME; break; }
            kill -0 "$SERVER_PID" 2>/dev/null || break
            sleep 0.1
        done
        if [ -z "$t_status" ] || [ -z "$t_ready" ]; then
            say "$name did not answer or get ready; its rows are empty"
            sed 's/^/   /' "$WORK/$name.err" >&2 || true
            stop "$SERVER_PID"
            return 1
        fi
        echo "$(awk -v a="$t0" -v b="$t_status" -v c="$t_ready" 'BEGIN { printf "%.0f %.0f", (b - a) * 1000, (c - a) * 1000 }') $(status_num "$name" uptime_ms)" \
            >"$WORK/$name.start"
        return 0
    }
    # status_num NAME KEY: the first numeric KEY of NAME.status ("" if none).
    status_num() { sed -n "s/.*\"$2\": *\([0-9]*\).*/\1/p" "$WORK/$1.status" 2>/dev/null | head -n 1; }
    # procnum PID KEY: a kB figure of /proc/PID/status (VmRSS, VmSize).
    procnum() { awk -v k="$2:" '$1 == k {print $2}' "/proc/$1/status" 2>/dev/null || true; }
    # idle_cpu PID SECS: the process's CPU over SECS seconds of no traffic, % of one core.
    idle_cpu() {
        local a b
        a=$(cpu_ticks "$1"); sleep "$2"; b=$(cpu_ticks "$1")
        if [ -n "$a" ] && [ -n "$b" ]; then
            awk -v t=$((b - a)) -v hz="$CLK_TCK" -v s="$2" 'BEGIN { printf "%.1f", t / hz / s * 100 }'
        fi
    }
    echo_one() { # echo_one ROW: one session, 65536-byte messages, window ECHO_WINDOW, ECHO_SECS
        load "$1" echo --target "$NETBT_ADDR:$PORT" --size 65536 --duration "$ECHO_SECS" \
            --sessions 1 --window "$ECHO_WINDOW"
    }
    for ((round = 1; round <= CAP_ROUNDS; round++)); do
        order=("${CAP_SLOTS[@]}")
        if [ $((round % 2)) = 0 ]; then
            order=(); for ((i = ${#CAP_SLOTS[@]} - 1; i >= 0; i--)); do order+=("${CAP_SLOTS[$i]}"); done
        fi
        for slots in "${order[@]}"; do
            name="cap-s$slots-r$round"
            say "round $round of $CAP_ROUNDS"
            cap_server "$name" "$slots" || continue
            # Memory right after start (before any session), idle CPU (first round), the rows.
            echo "$(procnum "$SERVER_PID" VmRSS) $(procnum "$SERVER_PID" VmSize)" >"$WORK/$name.mem0"
            [ "$round" = 1 ] && idle_cpu "$SERVER_PID" "$CAP_IDLE_SECS" >"$WORK/$name.idle"
            load "$name-c$CAP_CONC" setup --target "$NETBT_ADDR:$PORT" --concurrency "$CAP_CONC" \
                --count "$CAP_COUNT" --duration "$ROW_SECS"
            if [ "$slots" = "$CAP_WIDE_SLOTS" ]; then
                load "$name-c$CAP_WIDE_CONC" setup --target "$NETBT_ADDR:$PORT" \
                    --concurrency "$CAP_WIDE_CONC" --count "$CAP_COUNT" --duration "$ROW_SECS"
            fi
            echo_one "$name-echo"
            echo "$(procnum "$SERVER_PID" VmRSS) $(procnum "$SERVER_PID" VmSize)" >"$WORK/$name.mem1"
            stop "$SERVER_PID"
        done
    done

    # The held table: one daemon, CAP_HELD sessions held by one client while another measures.
    held_slots=$((CAP_HELD + CAP_CONC))
    HELD_RAN=0
    if cap_server held "$held_slots"; then
        HELD_RAN=1
        hpid=$SERVER_PID
        idle_cpu "$hpid" "$CAP_IDLE_SECS" >"$WORK/held-idle.idle"
        procnum "$hpid" VmRSS >"$WORK/held-idle.rss"
        echo_one held-echo-idle
        load held-setup-idle setup --target "$NETBT_ADDR:$PORT" --concurrency "$CAP_CONC" \
            --count "$CAP_COUNT" --duration "$ROW_SECS"
        # Held until the rows under it are done (release file), at most as long as they can take.
        hold_secs=$((CAP_IDLE_SECS + ROW_SECS + ECHO_SECS + 10))
        ip netns exec "$NS" "$LOAD" hold --target "$NETBT_ADDR:$PORT" --count "$CAP_HELD" \
            --concurrency "$CAP_CONC" --hold "$hold_secs" --release-file "$WORK/held.release" \
            --duration 60 --close "$CLOSE" --called "$CALLED" --label held-hold --json >"$WORK/held-hold.json" 2>"$WORK/held-hold.txt" &
        holder=$!; pids+=("$holder")
        # Every attempt finished (60 s of opening at most, then its response timeout).
        for _ in $(seq 750); do
            grep -q '^holding' "$WORK/held-hold.txt" && break
            kill -0 "$holder" 2>/dev/null || break
            sleep 0.1
        done
        sed 's/^/   /' "$WORK/held-hold.txt" >&2
        if grep -q '^holding' "$WORK/held-hold.txt"; then
            idle_cpu "$hpid" "$CAP_IDLE_SECS" >"$WORK/held-held.idle"
            procnum "$hpid" VmRSS >"$WORK/held-held.rss"
            load held-setup-held setup --target "$NETBT_ADDR:$PORT" --concurrency "$CAP_CONC" \
                --count "$CAP_COUNT" --duration "$ROW_SECS"
            echo_one held-echo-held
        fi
        touch "$WORK/held.release"
        # The holder reports how many were still held at its release (bounded: hold_secs, then
        # the closes).
        timeout $((hold_secs + 90)) tail --pid="$holder" -f /dev/null || kill "$holder" 2>/dev/null || true
        wait "$holder" || true
        sed 's/^/   /' "$WORK/held-hold.txt" >&2
        stop "$hpid"
    fi
    ELAPSED=$(( $(date +%s) - START ))

    mib() { [ -n "$1" ] && awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }' || echo "–"; }
    field_of() { [ -s "$WORK/$1" ] && cut -d' ' -f"$2" "$WORK/$1" || true; }
    TABLE="$WORK/capacity.md"
    median() { # median VALUE...: the median of the numeric values given, "" if there are none
        printf '%s\n' "$@" | awk '$1 ~ /^[0-9.eE+-]+$/ {print $1}' | sort -g |
            awk '{v[NR] = $1} END { if (NR % 2) print v[(NR + 1) / 2]; else if (NR) print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
    }
    # cap_values S SUFFIX KEY: KEY of row cap-sS-rR-SUFFIX in every round, one per line.
    cap_values() { local r; for ((r = 1; r <= CAP_ROUNDS; r++)); do jget "cap-s$1-r$r-$2" "$3"; echo; done; }
    cap_rows() { local r; for ((r = 1; r <= CAP_ROUNDS; r++)); do echo "cap-s$1-r$r-$2"; done; }
    # cap_start S FIELD: the median over the rounds of a start-up figure (1 status, 2 ready).
    cap_start() {
        local r
        # shellcheck disable=SC2046  # one value per round
        median $(for ((r = 1; r <= CAP_ROUNDS; r++)); do field_of "cap-s$1-r$r.start" "$2"; done)
    }
    base=${CAP_SLOTS[0]}
    # shellcheck disable=SC2046  # word lists on purpose
    {
        echo "Setups against \`--sessions\`: one \`netbt serve --sessions S --session-buffer $CAP_BUFFER\` ($CAP_BUFFER_NOTE)"
        echo "per row and round, started afresh; $CAP_ROUNDS rounds (odd ones from the fewest slots up, even ones"
        echo "down), figures the medians over the rounds. \`nbss_load setup --close $CLOSE\` at concurrency $CAP_CONC, up to"
        echo "$CAP_COUNT setups or $ROW_SECS s per row; setups/s counts every answer (0x82 and 0x83; the outcomes say"
        echo "which, summed over the rounds); the ratio is the median of each round's ratio to its $base-slot row."
        echo "Echo: one session, 65 536-byte messages, window $ECHO_WINDOW, $ECHO_SECS s. Targets (issue 12): ≥ 0.8 with"
        echo "4096 slots, ≥ 0.7 with 16384; p99 at c=$CAP_WIDE_CONC with $CAP_WIDE_SLOTS slots ≤ 10 ms."
        echo
        echo "| --sessions | setups/s, c=$CAP_CONC | × the $base-slot row | by round | p50 ms | p99 ms | p99 ms, c=$CAP_WIDE_CONC | echo MB/s | echo × the $base-slot row | outcomes |"
        echo "|---:|---:|---:|---|---:|---:|---:|---:|---:|---|"
        for slots in "${CAP_SLOTS[@]}"; do
            ratios=()
            for ((r = 1; r <= CAP_ROUNDS; r++)); do
                ratios+=("$(ratio "$(jget "cap-s$slots-r$r-c$CAP_CONC" rate)" "$(jget "cap-s$base-r$r-c$CAP_CONC" rate)")")
            done
            wide="–"; rows=$(cap_rows "$slots" "c$CAP_CONC")
            if [ "$slots" = "$CAP_WIDE_SLOTS" ]; then
                wide=$(num "$(median $(cap_values "$slots" "c$CAP_WIDE_CONC" p99_ms))" 2)
                rows="$rows $(cap_rows "$slots" "c$CAP_WIDE_CONC")"
            fi
            echo_m=$(median $(cap_values "$slots" echo mbps))
            printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "$slots" \
                "$(num "$(median $(cap_values "$slots" "c$CAP_CONC" rate))" 0)" \
                "$(num "$(median "${ratios[@]}")" 2)" "${ratios[*]}" \
                "$(num "$(median $(cap_values "$slots" "c$CAP_CONC" p50_ms))" 2)" \
                "$(num "$(median $(cap_values "$slots" "c$CAP_CONC" p99_ms))" 2)" "$wide" \
                "$(num "$echo_m" 1)" "$(ratio "$echo_m" "$(median $(cap_values "$base" echo mbps))")" \
                "$(outcomes $rows $(cap_rows "$slots" echo))"
        done
        echo
        echo "The same daemons: start-up = from spawning the process to the first answer of its control socket"
        echo "(\`netbt status\`, polled every 10 ms: every slot's memory and socket exist and the loop runs;"
        echo "\"ready\" is later by the names' registration, when sessions are accepted), medians over the rounds;"
        echo "idle CPU = the daemon's user + system time over $CAP_IDLE_SECS s without traffic after ready (first round),"
        echo "in % of one core (target ≈ 0); reserved = what the daemon reports (\`netbt status\`: S ×"
        echo "bytes_per_session_slot + R × bytes_per_refusal_slot); RSS and VmSize from \`/proc/PID/status\` after"
        echo "ready and after the rows (first round; VmSize growing would mean memory allocated after start)."
        echo "Target: start-up with 16384 slots under 1 s."
        echo
        echo "| --sessions | start-up to status answer, ms | to ready, ms | idle CPU, % of a core | reserved, MiB (bytes per session slot) | RSS after start → after the rows, MiB | VmSize after start → after the rows, MiB |"
        echo "|---:|---:|---:|---:|---:|---:|---:|"
        for slots in "${CAP_SLOTS[@]}"; do
            n="cap-s$slots-r1"
            per=$(status_num "$n" bytes_per_session_slot); per_r=$(status_num "$n" bytes_per_refusal_slot)
            reserved=""
            [ -n "$per" ] && [ -n "$per_r" ] && reserved=$(awk -v s="$slots" -v p="$per" -v r="$per_r" 'BEGIN { printf "%.1f", (s * p + 2 * r) / 1048576 }')
            printf '| %s | %s | %s | %s | %s (%s) | %s → %s | %s → %s |\n' "$slots" \
                "$(num "$(cap_start "$slots" 1)" 0)" "$(num "$(cap_start "$slots" 2)" 0)" \
                "$(num "$(cat "$WORK/$n.idle" 2>/dev/null)" 1)" "$(num "$reserved" 1)" "$(num "$per" 0)" \
                "$(mib "$(field_of "$n.mem0" 1)")" "$(mib "$(field_of "$n.mem1" 1)")" \
                "$(mib "$(field_of "$n.mem0" 2)")" "$(mib "$(field_of "$n.mem1" 2)")"
        done
        echo
        held=$(jget held-hold held_at_start)
        echo "Held sessions: one daemon with $held_slots session slots ($CAP_HELD held + $CAP_CONC for the measuring"
        echo "client), measured before and while \`nbss_load hold --count $CAP_HELD --concurrency $CAP_CONC\` keeps its sessions"
        echo "open: setups at c=$CAP_CONC as above (time to the answer, 0x82 or 0x83), echo through one more"
        echo "session (65 536-byte messages, window $ECHO_WINDOW, $ECHO_SECS s), the daemon's CPU over $CAP_IDLE_SECS s without other"
        echo "traffic; the echo is also set against the $base-slot daemons of the sweep (median). Targets (issue 12):"
        echo "p99 to the answer ≤ 20 ms and echo ≥ 0.5× the unloaded rate while $CAP_HELD are held."
        echo
        echo "| row | unloaded | ${held:-0} held | held / unloaded | outcomes while held |"
        echo "|---|---:|---:|---:|---|"
        for k in "setups/s, c=$CAP_CONC:rate:0" "p50 ms to the answer, c=$CAP_CONC:p50_ms:2" "p99 ms to the answer, c=$CAP_CONC:p99_ms:2"; do
            IFS=: read -r label key dec <<<"$k"
            a=$(jget held-setup-idle "$key"); b=$(jget held-setup-held "$key")
            printf '| %s | %s | %s | %s | %s |\n' "$label" "$(num "$a" "$dec")" "$(num "$b" "$dec")" \
                "$(ratio "$b" "$a")" "$(outcomes held-setup-held)"
        done
        a=$(jget held-echo-idle mbps); b=$(jget held-echo-held mbps)
        printf '| echo MB/s, one session | %s | %s | %s | %s |\n' "$(num "$a" 1)" "$(num "$b" 1)" \
            "$(ratio "$b" "$a")" "$(outcomes held-echo-held)"
        # shellcheck disable=SC2046  # one value per round
        c=$(median $(cap_values "$base" echo mbps))
        printf '| echo MB/s, against the %s-slot daemon above | %s | %s | %s | |\n' "$base" "$(num "$c" 1)" \
            "$(num "$b" 1)" "$(ratio "$b" "$c")"
        a=$(cat "$WORK/held-idle.idle" 2>/dev/null || true); b=$(cat "$WORK/held-held.idle" 2>/dev/null || true)
        printf '| daemon CPU without traffic, %% of a core | %s | %s | | |\n' "$(num "$a" 1)" "$(num "$b" 1)"
        a=$(cat "$WORK/held-idle.rss" 2>/dev/null || true); b=$(cat "$WORK/held-held.rss" 2>/dev/null || true)
        printf '| daemon RSS, MiB | %s | %s | | |\n' "$(mib "$a")" "$(mib "$b")"
        echo
        if [ "$HELD_RAN" = 1 ]; then
            echo "The holder: ${held:-0} of $CAP_HELD held, opened in $(num "$(jget held-hold open_s)" 2) s (p99 $(num "$(jget held-hold p99_ms)" 2) ms to the"
            echo "answer), $(num "$(jget held-hold held_at_release)" 0) still held at its release, $(num "$(jget held-hold closed_by_peer)" 0) closed by the server; outcomes: $(outcomes held-hold)."
        else
            echo "The held daemon did not start."
        fi
    } >"$TABLE"

    COMMIT=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
    git -C "$ROOT" diff --quiet 2>/dev/null || COMMIT="$COMMIT (+ uncommitted changes)"
    {
        echo "<!-- capacity:begin (written by BENCH_ONLY=capacity scripts/bench.sh; edits inside are overwritten) -->"
        echo "Run of $(date -u '+%Y-%m-%d %H:%M UTC') at commit $COMMIT: $(nproc) vCPU ($(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)), Linux $(uname -r);"
        echo "client \`nbss_load --close $CLOSE --threads $THREADS\`. Rows took $ELAPSED s; load average before: $LOADAVG."
        echo
        cat "$TABLE"
        echo "<!-- capacity:end -->"
    } >"$WORK/section.md"
    echo
    cat "$TABLE"
    write_section capacity "Capacity"
    exit 0
fi

NETBT_RAN=0
if want netbt && [ "$ECHO_ONLY" != 1 ]; then
    say "netbt $setup_args"
    # shellcheck disable=SC2086  # NETBT_ARGS is a word list on purpose
    if start_server netbt ready "$NETBT" $setup_args; then
        npid=$SERVER_PID
        NETBT_RAN=1
        setup_rows netbt "$NETBT_ADDR:$PORT" "${FAST_COUNTS[@]}"
        hold_row netbt-hold "$NETBT_ADDR:$PORT" "$npid"
        ledger_bytes bytes_per_session_slot >"$WORK/netbt-slot-bytes"
    fi
    stop "$SERVER_PID"
    say "netbt $args"
    # shellcheck disable=SC2086  # NETBT_ARGS is a word list on purpose
    if start_server netbt ready "$NETBT" $args; then
        # Rounds netbt-unloaded-rI (c=S) and netbt-overload-rI (c=10×S), alternating which
        # goes first; then one run at 20×S, past what the refusal delay absorbs.
        for ((i = 1; i <= OVERLOAD_ROUNDS; i++)); do
            kinds=(unloaded overload)
            [ $((i % 2)) = 0 ] && kinds=(overload unloaded)
            for kind in "${kinds[@]}"; do
                conc=$NETBT_SESSIONS
                [ "$kind" = overload ] && conc=$((10 * NETBT_SESSIONS))
                load "netbt-$kind-r$i" setup --target "$NETBT_ADDR:$PORT" --concurrency "$conc" \
                    --count "$OVERLOAD_COUNT" --duration "$ROW_SECS"
            done
        done
        load netbt-overload20 setup --target "$NETBT_ADDR:$PORT" --concurrency $((20 * NETBT_SESSIONS)) \
            --count "$OVERLOAD_COUNT" --duration "$ROW_SECS"
    fi
    stop "$SERVER_PID"
    # The same client concurrency (10×S) against a node with 10×S session slots: not
    # overloaded, so the ratio to the overload row isolates what overload costs the server
    # (the one-thread client itself slows down with 10× the connections in flight).
    wide_args=${args/--sessions $NETBT_SESSIONS/--sessions $((10 * NETBT_SESSIONS))}
    say "netbt $wide_args"
    # shellcheck disable=SC2086  # NETBT_ARGS is a word list on purpose
    if [ "$wide_args" != "$args" ] && start_server netbt ready "$NETBT" $wide_args; then
        load netbt-unloaded-wide setup --target "$NETBT_ADDR:$PORT" \
            --concurrency $((10 * NETBT_SESSIONS)) --count "$OVERLOAD_COUNT" --duration "$ROW_SECS"
    fi
    stop "$SERVER_PID"
fi

# --- echo: raw smoltcp vs netbt on the same TAP, address and buffer sizes --------------------------
# Rows echo-raw-bB-rR-sSIZE and echo-netbt-bB-rR-sSIZE. Each round runs both servers at every
# buffer size, one after the other on tap0; odd rounds start with the raw echo, even rounds with
# netbt, so that a drift in the machine's load does not favour one of them.
echo_server() { # echo_server raw|netbt BUFFER ROUND
    local kind=$1 buffer=$2 round=$3 name="echo-$1-b$2-r$3"
    if [ "$kind" = raw ]; then
        say "smoltcp_echo --buffer $buffer (round $round)"
        start_server "$name" ready "$RAW_ECHO" --tap tap0 --ip "$NETBT_ADDR/24" --port "$PORT" \
            --sockets "$NETBT_SESSIONS" --buffer "$buffer" || { stop "$SERVER_PID"; return 0; }
    else
        say "netbt $args --session-buffer $buffer (round $round)"
        # shellcheck disable=SC2086  # NETBT_ARGS is a word list on purpose
        start_server "$name" ready "$NETBT" $args --session-buffer "$buffer" ||
            { stop "$SERVER_PID"; return 0; }
    fi
    echo_rows "$name" "$NETBT_ADDR:$PORT" "$SERVER_PID"
    stop "$SERVER_PID"
    [ "$kind" = raw ] && sed 's/^/   /' "$WORK/$name.err" >&2
    return 0
}
ECHO_RAN=0
if want smoltcp || want netbt; then
    ECHO_RAN=1
    for round in $(seq "$ECHO_ROUNDS"); do
        order="raw netbt"; [ $((round % 2)) = 0 ] && order="netbt raw"
        for buffer in "${ECHO_BUFFERS[@]}"; do
            for kind in $order; do
                { [ "$kind" = raw ] && want smoltcp; } || { [ "$kind" = netbt ] && want netbt; } ||
                    continue
                echo_server "$kind" "$buffer" "$round"
            done
        done
    done
fi
ELAPSED=$(( $(date +%s) - START ))

# --- Tables -------------------------------------------------------------------------------------
row() { # row LABEL SMBD RESPONDER NETBT DECIMALS NETBT_ROW
    printf '| %s | %s | %s | %s | %s | %s | %s |\n' "$1" "$(num "$2" "$5")" "$(num "$3" "$5")" \
        "$(num "$4" "$5")" "$(ratio "$4" "$2")" "$(ratio "$4" "$3")" "$(outcomes "$6")"
}
median() { # median VALUE...: the median of the numeric values given, "" if there are none
    printf '%s\n' "$@" | awk '$1 ~ /^[0-9.eE+-]+$/ {print $1}' | sort -g |
        awk '{v[NR] = $1} END { if (NR % 2) print v[(NR + 1) / 2]; else if (NR) print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
echo_table() {
    local buffer size r raw netbt rows raws netbts per ceiling notes o rawc netbtc rawcs netbtcs
    local ratios cratios
    local -A at_first_buffer=()    # netbt's median at the first buffer size, by message size
    echo "Echo, raw smoltcp against netbt: \`nbss_load echo --sessions $ECHO_SESSIONS --window $ECHO_WINDOW\`, $ECHO_SECS s"
    echo "per row, both servers on tap0 at $NETBT_ADDR with $NETBT_SESSIONS TCP sockets (smoltcp_echo) or session slots"
    echo "(netbt), the same buffer size for both; MB/s = 10^6 echoed payload bytes per second, median of"
    echo "$ECHO_ROUNDS rounds (alternating which server goes first); the ratios are the medians of the"
    echo "rounds' ratios. CPU ns/B: the server process's CPU time (user + system, which includes the"
    echo "kernel's TCP work for the client that its TAP writes trigger) per echoed byte; less sensitive"
    echo "than MB/s to other load on the machine."
    echo
    echo "| echo MB/s | session buffer, bytes | raw smoltcp echo (TAP) | netbt (TAP) | netbt/raw smoltcp | netbt/raw by round | CPU ns/B raw | CPU ns/B netbt | netbt/raw CPU ns/B | netbt outcomes |"
    echo "|---|---:|---:|---:|---:|---|---:|---:|---:|---|"
    for buffer in "${ECHO_BUFFERS[@]}"; do
        for size in "${ECHO_SIZES[@]}"; do
            raws=(); netbts=(); rawcs=(); netbtcs=(); ratios=(); cratios=(); per=""; rows=()
            for r in $(seq "$ECHO_ROUNDS"); do
                raw=$(jget "echo-raw-b$buffer-r$r-s$size" mbps); raws+=("$raw")
                netbt=$(jget "echo-netbt-b$buffer-r$r-s$size" mbps); netbts+=("$netbt")
                ratios+=("$(ratio "$netbt" "$raw")")
                per="$per${per:+ }$(ratio "$netbt" "$raw")"
                rawc=$(cpu_per_byte "echo-raw-b$buffer-r$r-s$size"); rawcs+=("$rawc")
                netbtc=$(cpu_per_byte "echo-netbt-b$buffer-r$r-s$size"); netbtcs+=("$netbtc")
                cratios+=("$(ratio "$netbtc" "$rawc")")
                rows+=("echo-netbt-b$buffer-r$r-s$size")
            done
            [ "$buffer" = "${ECHO_BUFFERS[0]}" ] && at_first_buffer[$size]=$(median "${netbts[@]}")
            printf '| %s-byte messages | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "$size" "$buffer" \
                "$(num "$(median "${raws[@]}")" 1)" "$(num "$(median "${netbts[@]}")" 1)" \
                "$(num "$(median "${ratios[@]}")" 2)" "$per" "$(num "$(median "${rawcs[@]}")" 2)" \
                "$(num "$(median "${netbtcs[@]}")" 2)" "$(num "$(median "${cratios[@]}")" 2)" \
                "$(outcomes "${rows[@]}")"
        done
    done
    echo
    echo "Machine ceiling, not like-for-like (the kernel's TCP over loopback: MTU 65 536, no TAP, no"
    echo "userspace stack): \`nbss_responder\` echoes"
    ceiling=""
    for size in "${ECHO_SIZES[@]}"; do
        raw=$(jget "responder-echo-s$size" mbps)
        netbt=${at_first_buffer[$size]:-}
        [ -n "$ceiling" ] && echo "$ceiling;"
        ceiling="$(num "$raw" 1) MB/s with $size-byte messages (netbt at buffer ${ECHO_BUFFERS[0]}: $(ratio "$netbt" "$raw") of it)"
    done
    echo "$ceiling."
    notes=""
    for buffer in "${ECHO_BUFFERS[@]}"; do
        for size in "${ECHO_SIZES[@]}"; do
            for r in $(seq "$ECHO_ROUNDS"); do
                o=$(outcomes "echo-raw-b$buffer-r$r-s$size")
                [[ $o == "not run" || $o =~ ^positive\ [0-9]+$ ]] ||
                    notes="$notes${notes:+; }echo-raw-b$buffer-r$r-s$size: $o"
            done
        done
    done
    for size in "${ECHO_SIZES[@]}"; do
        o=$(outcomes "responder-echo-s$size")
        [[ $o == "not run" || $o =~ ^positive\ [0-9]+$ ]] || notes="$notes${notes:+; }responder-echo-s$size: $o"
    done
    if [ -n "$notes" ]; then echo; echo "Baseline echo rows with other outcomes: $notes."; fi
}
netbt_col="netbt (TAP, $NETBT_ADDR)"
[ "$NETBT_RAN" = 1 ] || netbt_col="netbt (not run)"

TABLE="$WORK/table.md"
if [ "$ECHO_ONLY" = 1 ]; then
    echo_table >"$TABLE"
else {
    echo "| row | smbd (kernel TCP) | responder (kernel TCP) | $netbt_col | netbt/smbd | netbt/responder | netbt outcomes |"
    echo "|---|---:|---:|---:|---:|---:|---|"
    for c in "${CONCS[@]}"; do
        row "setups/s, c=$c" "$(jget smbd-c$c positive_rate)" "$(jget responder-c$c positive_rate)" \
            "$(jget netbt-c$c positive_rate)" 0 "netbt-c$c"
        row "p99 ms to 0x82, c=$c" "$(jget smbd-c$c pos_p99_ms)" "$(jget responder-c$c pos_p99_ms)" \
            "$(jget netbt-c$c pos_p99_ms)" 2 "netbt-c$c"
    done
    row "server PSS idle, KiB" "$(memget smbd-hold idle_pss)" "$(memget responder-hold idle_pss)" \
        "$(memget netbt-hold idle_pss)" 0 netbt-hold
    row "server PSS per held session, KiB (up to $HOLD_N held)" "$(memget smbd-hold per_session_pss)" \
        "$(memget responder-hold per_session_pss)" "$(memget netbt-hold per_session_pss)" 1 netbt-hold
    slot_kib=$(awk '{ if ($1 > 0) printf "%.1f", $1 / 1024 }' "$WORK/netbt-slot-bytes" 2>/dev/null || true)
    row "memory per session slot, KiB (netbt: reserved at start, from its ledger)" \
        "$(memget smbd-hold per_session_pss)" "" "$slot_kib" 0 netbt-hold
    # Baseline rows that did not end every session with the expected response.
    notes=""
    for r in smbd-c1 smbd-c32 smbd-c128 smbd-hold responder-c1 responder-c32 responder-c128 \
             responder-hold responder-refuse; do
        o=$(outcomes "$r")
        [[ $o == "not run" || $o =~ ^(positive|neg_83)\ [0-9]+$ ]] || notes="$notes${notes:+; }$r: $o"
    done
    [ -n "$notes" ] && { echo; echo "Baseline rows with other outcomes: $notes."; }
    echo
    echo "Overload: S = $NETBT_SESSIONS session slots and netbt's other defaults (2 refusal slots, refusal delay"
    echo "2 ms, SYN backlog 256); 10×S = $((10 * NETBT_SESSIONS)) concurrent setups. Each row up to $OVERLOAD_COUNT sessions;"
    echo "c=S and c=10×S in $OVERLOAD_ROUNDS rounds alternating which goes first, figures the medians over the rounds"
    echo "(ratios: the median of the rounds' ratios); the other rows are single runs."
    echo
    echo "| row | responder --refuse (kernel TCP) | $netbt_col | netbt/responder | netbt outcomes |"
    echo "|---|---:|---:|---:|---|"
    # Per-round figures of the overload rounds: KIND FIELD -> the rounds' values.
    rounds() {
        local i
        for ((i = 1; i <= OVERLOAD_ROUNDS; i++)); do jget "netbt-$1-r$i" "$2"; done
    }
    round_rows() {
        local i
        for ((i = 1; i <= OVERLOAD_ROUNDS; i++)); do echo "netbt-$1-r$i"; done
    }
    ratios_by_round=()
    for ((i = 1; i <= OVERLOAD_ROUNDS; i++)); do
        ratios_by_round+=("$(ratio "$(jget "netbt-overload-r$i" positive_rate)" "$(jget "netbt-unloaded-r$i" positive_rate)")")
    done
    # shellcheck disable=SC2046  # word lists on purpose
    {
        printf '| accepted setups/s, c=S (unloaded) | – | %s | – | %s |\n' \
            "$(num "$(median $(rounds unloaded positive_rate))" 0)" "$(outcomes $(round_rows unloaded))"
        printf '| accepted setups/s, c=10×S | – | %s | – | %s |\n' \
            "$(num "$(median $(rounds overload positive_rate))" 0)" "$(outcomes $(round_rows overload))"
        printf '| accepted at 10×S / unloaded (by round) | – | %s | – | %s |\n' \
            "$(num "$(median "${ratios_by_round[@]}")" 2)" "${ratios_by_round[*]}"
        printf '| accepted setups/s, c=10×S against 10×S slots (not overloaded) | – | %s | – | %s |\n' \
            "$(num "$(jget netbt-unloaded-wide positive_rate)" 0)" "$(outcomes netbt-unloaded-wide)"
        printf '| accepted at 10×S / not overloaded at the same concurrency | – | %s | – | |\n' \
            "$(ratio "$(median $(rounds overload positive_rate))" "$(jget netbt-unloaded-wide positive_rate)")"
        printf '| refusals (0x83) /s, c=10×S | %s | %s | %s | |\n' \
            "$(num "$(jget responder-refuse negative_rate)" 0)" "$(num "$(median $(rounds overload negative_rate))" 0)" \
            "$(ratio "$(median $(rounds overload negative_rate))" "$(jget responder-refuse negative_rate)")"
        printf '| p99 ms to 0x83, c=10×S (by round) | %s | %s | %s | %s |\n' \
            "$(num "$(jget responder-refuse neg_p99_ms)" 2)" "$(num "$(median $(rounds overload neg_p99_ms))" 2)" \
            "$(ratio "$(median $(rounds overload neg_p99_ms))" "$(jget responder-refuse neg_p99_ms)")" \
            "$(for v in $(rounds overload neg_p99_ms); do num "$v" 2; echo; done | xargs)"
        printf '| accepted setups/s, c=20×S | – | %s | – | %s |\n' \
            "$(num "$(jget netbt-overload20 positive_rate)" 0)" "$(outcomes netbt-overload20)"
        printf '| accepted at 20×S / unloaded | – | %s | – | |\n' \
            "$(ratio "$(jget netbt-overload20 positive_rate)" "$(median $(rounds unloaded positive_rate))")"
        printf '| p99 ms to 0x83, c=20×S | – | %s | – | |\n' "$(num "$(jget netbt-overload20 neg_p99_ms)" 2)"
    }
    if [ "$ECHO_RAN" = 1 ]; then echo; echo_table; fi
} >"$TABLE"
fi

CPU=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)
COMMIT=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
git -C "$ROOT" diff --quiet 2>/dev/null || COMMIT="$COMMIT (+ uncommitted changes)"
SECTION="$WORK/section.md"
{
    echo "<!-- bench:begin (written by scripts/bench.sh; edits inside are overwritten) -->"
    echo "Run of $(date -u '+%Y-%m-%d %H:%M UTC') at commit $COMMIT: $(nproc) vCPU ($CPU), Linux $(uname -r),"
    echo "$(smbd --version 2>/dev/null | sed 's/^Version /smbd /' || echo 'smbd not installed'). Client: \`nbss_load --close $CLOSE --threads $THREADS\`;"
    [ "$ECHO_ONLY" = 1 ] && echo "echo rows only (BENCH_ONLY=echo),"
    [ "$ECHO_ONLY" = 1 ] || echo "setup rows $ROW_SECS s at most each (smbd ${SMBD_COUNTS[*]} sessions, the others ${FAST_COUNTS[*]} for c=${CONCS[*]}),"
    echo "echo rows $ECHO_SECS s, $ECHO_SESSIONS session, window $ECHO_WINDOW, $ECHO_ROUNDS rounds. Rows took ${ELAPSED} s; load average before: $LOADAVG."
    echo
    cat "$TABLE"
    echo "<!-- bench:end -->"
} >"$SECTION"

echo
cat "$TABLE"
echo
if [ "$OUT" != /dev/null ]; then
    if [ -f "$OUT" ] && grep -q '^<!-- bench:begin' "$OUT" && grep -q '^<!-- bench:end' "$OUT"; then
        awk -v sec="$SECTION" '
            /^<!-- bench:begin/ { while ((getline l < sec) > 0) print l; skip = 1; next }
            /^<!-- bench:end/ { skip = 0; next }
            !skip { print }' "$OUT" >"$WORK/out.md"
    else
        { [ -f "$OUT" ] && cat "$OUT" && echo; echo "## Latest run"; echo; cat "$SECTION"; } >"$WORK/out.md"
    fi
    cat "$WORK/out.md" >"$OUT"
    echo "written to $OUT"
fi
