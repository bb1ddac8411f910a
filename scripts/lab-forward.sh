#!/usr/bin/env bash
# Forward lab (`netbt serve --handler forward=HOST:PORT`): the real netbt on a TAP in a network
# namespace of its own relays NetBT sessions (TCP 139) to backends on the namespace's loopback,
# reached through the kernel's TCP. Needs root. Deletes everything it starts, also on failure;
# every wait is bounded. Every frame on tap0 is captured for the whole run. Installs samba (smbd)
# with apt if it is missing.
#
#   A  forward=127.0.0.1:445, a real Samba smbd listening on 127.0.0.1:445 only:
#      smbclient -L over port 139 lists the share; smbclient ls and get (one, then four at once)
#      through the relays; a held smbclient session shows in `netbt status`, and the log line
#      that opened it names the backend-side port smbd sees;
#      then smbd is stopped: smbclient gets NT_STATUS_RESOURCE_NAME_NOT_FOUND (0x8F), no reset
#   C  forward=$BLACKHOLE:445 (nobody answers ARP there): 0x8F after the 3 s connect timeout
#   and: no TCP reset from 139 in the capture; `netbt status --json` counts no resets sent.
#
# The relay's own behaviours (echo of 1, 65536 and 131071 bytes, 40 x 131071 bytes behind a
# backend pause with zero windows from 139, an oversize backend frame, backend EOF, a refused
# or unanswered connect answered 83 00 00 01 8F then FIN) are checked without root by
# tests/forward_in_process.rs (cargo test), against a loopback echo backend.
#
# KEEP_LAB_LOGS=1 keeps the logs.
# shellcheck disable=SC2015  # `test && pass || fail`: pass only echoes, it cannot fail
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lab-lib.sh
. scripts/smbd-lib.sh

export NETBT_NS="netbt-fwd-$$"
WORK=$(mktemp -d /tmp/netbt-lab-forward.XXXXXX)
NETBT=./target/release/netbt
SERVER=192.168.69.1
BLACKHOLE=192.168.69.200        # on tap0's subnet; nobody answers ARP for it
CAP=$WORK/tap0.pcap
pids=()
serve_pid=""

cleanup() {
    local pid
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    # netbt closes its sessions and releases its names before it exits (bounded); smbd's helpers
    # (samba-dcerpcd) outlive smbd: everything left in the namespace is ours.
    stop_ns "$NETBT_NS"
    scripts/lab.sh down >/dev/null 2>&1 || true
    drop_work
}
trap cleanup EXIT
on_signals

listening() { in_ns ss -ltnH "sport = :$1" 2>/dev/null | grep -q "127.0.0.1:$1"; }

start_serve() { # start_serve LABEL SERVE-ARGS...: netbt serve --name LABSRV, waits for ready
    local label=$1
    shift
    # `ip netns exec` itself, not in_ns: $! must be netbt's pid, not a subshell's.
    RUST_LOG=info ip netns exec "$NETBT_NS" "$NETBT" serve --name LABSRV --control "$WORK/$label.sock" "$@" \
        >"$WORK/$label.out" 2>"$WORK/$label.err" &
    serve_pid=$!
    pids+=("$serve_pid")
    for _ in $(seq 100); do grep -qs ready "$WORK/$label.out" && break; sleep 0.05; done
    expect "$label: netbt serve --name LABSRV $* is ready" "ready on tap0 " "$WORK/$label.out"
}

stop_serve() { # stop_serve LABEL: status --json first, then SIGTERM, exit 0 within 5 s
    local label=$1
    in_ns timeout 10 "$NETBT" status --control "$WORK/$label.sock" --json >"$WORK/$label.json" 2>&1 || true
    expect_json "$label: status --json: no resets from 139" '.counters.sessions.gate.resets_sent == 0' "$WORK/$label.json"
    term_netbt "$label" "$serve_pid"
}

# Samba's smbd on 127.0.0.1:445 only, everything it writes in $WORK/smbd.
SMB=$WORK/smbd
# A NetBT session message carries at most 0x1FFFF bytes; smbd offers 8 MiB reads on
# direct-hosted TCP unless told otherwise (netbt closes a session that gets a longer frame).
write_smb_conf "$SMB" 445 lo labshare "smb2 max read = 65536
smb2 max write = 65536
smb2 max trans = 65536"
# Guests are nobody (uid 65534): the share must be reachable for them (mktemp makes 0700).
chmod 0755 "$WORK" "$SMB" "$SMB/share"
echo "hello from labshare" >"$SMB/share/hello-labshare.txt"
head -c 1000000 /dev/urandom >"$SMB/share/big.bin"

ensure_smbd "$WORK/apt.log"
cargo build --release --quiet
scripts/lab.sh up >/dev/null
ip netns exec "$NETBT_NS" tcpdump -i tap0 --immediate-mode -U -n -w "$CAP" 2>"$WORK/tcpdump.err" &
tcpdump_pid=$!
pids+=("$tcpdump_pid")
for _ in $(seq 50); do grep -q "listening on" "$WORK/tcpdump.err" 2>/dev/null && break; sleep 0.1; done

# ------------------------------------------------------------------------------------------
echo "lab forward A: smbd on 127.0.0.1:445, netbt --handler forward=127.0.0.1:445"
# In a session and process group of its own (setsid): smbd signals its whole process group when
# it stops, which would otherwise hit this script.
ip netns exec "$NETBT_NS" setsid smbd --foreground --no-process-group --debug-stdout -s "$SMB/smb.conf" \
    >"$WORK/smbd.out" 2>&1 &
pids+=($!)
for _ in $(seq 100); do listening 445 && break; sleep 0.1; done
listening 445 && pass "smbd listens on 127.0.0.1:445" || { fail "smbd did not listen:"; sed 's/^/         /' "$WORK/smbd.out"; }
# setsid forks when it has to; the pid file names the real smbd.
smbd_pid=$(cat "$SMB/run/smbd.pid" 2>/dev/null || true)
[ -n "$smbd_pid" ] && pids+=("$smbd_pid")

start_serve A --handler forward=127.0.0.1:445
expect "A: the log names the backend" "sessions are forwarded to 127\.0\.0\.1:445" "$WORK/A.err"

in_ns timeout 30 smbclient -L //LABSRV -p 139 -I "$SERVER" -N >"$WORK/a-list.out" 2>&1 || true
echo "       smbclient -L //LABSRV -p 139 -I $SERVER -N:"
sed 's/^/         | /' "$WORK/a-list.out"
expect "smbclient -L over 139 lists labshare" "^[[:space:]]+labshare[[:space:]]+Disk" "$WORK/a-list.out"
expect "smbclient -L over 139 lists IPC\$ of Samba" "IPC\\\$[[:space:]]+IPC[[:space:]]+IPC Service \(Samba" "$WORK/a-list.out"

in_ns timeout 30 smbclient //LABSRV/labshare -p 139 -I "$SERVER" -N -c 'ls' >"$WORK/a-ls.out" 2>&1 || true
echo "       smbclient //LABSRV/labshare -p 139 -I $SERVER -N -c ls:"
sed 's/^/         | /' "$WORK/a-ls.out"
expect "smbclient ls over 139 lists hello-labshare.txt" "^[[:space:]]+hello-labshare\.txt[[:space:]]+N[[:space:]]+20 " "$WORK/a-ls.out"

in_ns timeout 60 smbclient //LABSRV/labshare -p 139 -I "$SERVER" -N \
    -c "get big.bin $WORK/big.got; get hello-labshare.txt $WORK/hello.got" >"$WORK/a-get.out" 2>&1 || true
grep -h "^getting file" "$WORK/a-get.out" | sed 's/^/       /' || true
cmp -s "$SMB/share/big.bin" "$WORK/big.got" && pass "smbclient get of 1000000 bytes over 139: identical" \
    || { fail "smbclient get of big.bin differs or failed:"; sed 's/^/         /' "$WORK/a-get.out"; }
cmp -s "$SMB/share/hello-labshare.txt" "$WORK/hello.got" && pass "smbclient get of hello-labshare.txt: identical" \
    || fail "smbclient get of hello-labshare.txt differs or failed"

get_pids=()
for i in 1 2 3 4; do
    in_ns timeout 60 smbclient //LABSRV/labshare -p 139 -I "$SERVER" -N \
        -c "get big.bin $WORK/big.got$i" >"$WORK/a-get$i.out" 2>&1 &
    get_pids+=($!)
done
for pid in "${get_pids[@]}"; do wait "$pid" 2>/dev/null || true; done
same=0
for i in 1 2 3 4; do cmp -s "$SMB/share/big.bin" "$WORK/big.got$i" && same=$((same + 1)); done
[ "$same" -eq 4 ] && pass "4 concurrent smbclient gets through 4 relays: all identical" \
    || { fail "4 concurrent gets: only $same identical"; cat "$WORK"/a-get[1-4].out | sed 's/^/         /'; }

# A session held open (smbclient reads its commands from a FIFO): `netbt status` lists it, and
# the line that opened it names both ends; the backend side is the connection smbd sees.
mkfifo "$WORK/hold.fifo"
in_ns timeout 30 smbclient //LABSRV/labshare -p 139 -I "$SERVER" -N <"$WORK/hold.fifo" >"$WORK/a-hold.out" 2>&1 &
hold_pid=$!
pids+=("$hold_pid")
exec 3<>"$WORK/hold.fifo"  # read-write: never blocks, even if smbclient did not start
echo ls >&3
for _ in $(seq 100); do grep -qs hello-labshare "$WORK/a-hold.out" && break; sleep 0.1; done
in_ns timeout 10 "$NETBT" status --control "$WORK/A.sock" >"$WORK/a-status.out" 2>&1 || true
in_ns timeout 10 "$NETBT" status --control "$WORK/A.sock" --json >"$WORK/a-status.json" 2>&1 || true
in_ns ss -tnH state established "dport = :445" >"$WORK/a-ss.out" 2>&1 || true
echo quit >&3
exec 3>&-
wait "$hold_pid" 2>/dev/null || true
expect "held session: smbclient ls through the relay" "hello-labshare\.txt" "$WORK/a-hold.out"
expect "netbt status lists the forwarded session as usual (Established)" \
    "session +Established +192\.168\.69\.100:[0-9]+ +LABSRV<20> " "$WORK/a-status.out"
opened=$(sed -n 's/.*forward: session from 192\.168\.69\.100:[0-9]* relayed to 127\.0\.0\.1:445 from 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$WORK/A.err" | tail -1)
[ -n "$opened" ] && pass "the opening log line names the NetBT peer and the backend side (127.0.0.1:$opened)" \
    || fail "no 'forward: session from PEER relayed to BACKEND from LOCAL' line in the log"
[ -n "$opened" ] && grep -q "127\.0\.0\.1:$opened \+127\.0\.0\.1:445" "$WORK/a-ss.out" \
    && pass "smbd's peer of the held session is that backend-side port ($opened)" \
    || { fail "the logged backend-side port ${opened:-?} is not a connection to smbd:"; sed 's/^/         /' "$WORK/a-ss.out"; }
expect_json "netbt status --json shows that backend-side address in the session's row" \
    "any(.sessions[]; .phase == \"Established\" and .backend == \"127.0.0.1:${opened:-none}\")" "$WORK/a-status.json"
in_ns timeout 30 "$NETBT" probe "$SERVER" LABSRV --after --timeout 3 >"$WORK/a-probe-up.out" 2>&1 || true
expect "backend up: a raw session request is answered positively (82)" "RESULT=POSITIVE" "$WORK/a-probe-up.out"

# Stop the backend; netbt stays.
if [ -n "$smbd_pid" ]; then kill -TERM "$smbd_pid" 2>/dev/null || true; fi
for _ in $(seq 100); do listening 445 || break; sleep 0.1; done
listening 445 && fail "smbd still listens 10 s after SIGTERM" || pass "smbd stopped: nothing listens on 127.0.0.1:445"
# The exact answer (83 00 00 01 8F, then FIN) is checked by tests/forward_in_process.rs
# (a_refused_backend_connect_refuses_the_request_with_0x8f_then_a_fin).
in_ns timeout 30 "$NETBT" probe "$SERVER" LABSRV --after >"$WORK/a-probe-down.out" 2>&1 || true
expect "backend down: a raw session request gets 83 8F, then the server closes first" \
    "RESULT=NEGATIVE CODE=0x8f" "$WORK/a-probe-down.out"
expect "backend down: after the 0x8F the server closes (FIN, no reset)" "AFTER=EOF" "$WORK/a-probe-down.out"
in_ns timeout 30 smbclient -L //LABSRV -p 139 -I "$SERVER" -N >"$WORK/a-list-down.out" 2>&1 || true
expect "backend down: smbclient -L says NT_STATUS_RESOURCE_NAME_NOT_FOUND" \
    "NT_STATUS_RESOURCE_NAME_NOT_FOUND" "$WORK/a-list-down.out"
expect_not "backend down: smbclient sees no reset and no I/O error" \
    "NT_STATUS_CONNECTION_RESET|NT_STATUS_IO_DEVICE_ERROR|NT_STATUS_CONNECTION_DISCONNECTED" "$WORK/a-list-down.out"
expect "A: the refusal is logged with its reason" \
    "backend 127\.0\.0\.1:445 unreachable \(Connection refused.*refused \(0x8F\)" "$WORK/A.err"
stop_serve A
expect_json "A: status counted positive responses" '.counters.sessions.positive > 0' "$WORK/A.json"
expect_json "A: status counted the 0x8F refusals" '.counters.sessions.unspecified > 0' "$WORK/A.json"

# (Lab B, a Python echo backend behind netbt, is now tests/forward_in_process.rs.)

# ------------------------------------------------------------------------------------------
echo "lab forward C: a backend that never answers ($BLACKHOLE:445)"
start_serve C --handler "forward=$BLACKHOLE:445"
# smbclient -L: a negative response (0x8F) is NT_STATUS_RESOURCE_NAME_NOT_FOUND; timed here.
started=$(date +%s%N)
in_ns timeout 30 smbclient -L //LABSRV -p 139 -I "$SERVER" -N >"$WORK/c-list.out" 2>&1 || true
ms=$((($(date +%s%N) - started) / 1000000))
expect "unanswered backend: smbclient -L says NT_STATUS_RESOURCE_NAME_NOT_FOUND" \
    "NT_STATUS_RESOURCE_NAME_NOT_FOUND" "$WORK/c-list.out"
expect "C: the refusal after the connect timeout is logged" \
    "backend $BLACKHOLE:445 unreachable \(no connection within 3s\); session request from .* refused \(0x8F\)" "$WORK/C.err"
[ "$ms" -ge 2500 ] && [ "$ms" -le 5000 ] && pass "the refusal came after the connect timeout (${ms} ms)" \
    || fail "smbclient was answered after ${ms} ms, want about 3000 (the connect timeout)"
in_ns timeout 30 "$NETBT" probe "$SERVER" LABSRV --timeout 10 >"$WORK/c-probe.out" 2>&1 || true
expect "unanswered backend: a raw session request gets 83 8F" "RESULT=NEGATIVE CODE=0x8f" "$WORK/c-probe.out"
ms=$(field MS "$WORK/c-probe.out"); ms=${ms%.*}
[ "$ms" -ge 2500 ] && [ "$ms" -le 5000 ] && pass "the raw request's 0x8F came after the connect timeout (${ms} ms)" \
    || fail "the raw request was answered after ${ms} ms, want about 3000 (the connect timeout)"
stop_serve C

sleep 0.3
kill "$tcpdump_pid" 2>/dev/null || true
wait "$tcpdump_pid" 2>/dev/null || true

# ------------------------------------------------------------------------------------------
echo "capture of tap0"
tcpdump -n -r "$CAP" "src host $SERVER and tcp src port 139 and tcp[tcpflags] & tcp-rst != 0" \
    >"$WORK/rst.txt" 2>/dev/null || true
sessions=$(tcpdump -n -r "$CAP" "src host $SERVER and tcp src port 139 and tcp[tcpflags] & tcp-syn != 0" 2>/dev/null | wc -l)
rsts=$(wc -l <"$WORK/rst.txt")
[ "$sessions" -gt 0 ] && [ "$rsts" -eq 0 ] && pass "capture: $sessions connections to 139, zero TCP resets from $SERVER:139" \
    || { fail "capture: $rsts TCP resets from $SERVER:139 ($sessions connections)"; head -5 "$WORK/rst.txt" | sed 's/^/         /'; }

# Backpressure (zero windows from 139 while the backend does not read) is checked by
# tests/forward_in_process.rs (forty_max_size_messages_behind_a_backend_pause_all_arrive_intact).

if [ "$failures" -ne 0 ]; then
    echo "forward lab: $failures failed"; KEEP_LAB_LOGS=1; exit 1
fi
echo "forward lab: all passed"
