#!/usr/bin/env bash
# Forward lab (`netbt serve --handler forward=HOST:PORT`): the real netbt on a TAP in a network
# namespace of its own relays NetBT sessions (TCP 139) to backends on the namespace's loopback,
# reached through the kernel's TCP. Needs root. Deletes everything it starts, also on failure;
# every wait is bounded. Every frame on tap0 is captured for the whole run. Installs samba (smbd)
# with apt if it is missing.
#
#   A  forward=127.0.0.1:445, a real Samba smbd listening on 127.0.0.1:445 only:
#      smbclient -L over port 139 lists the share; smbclient ls and get (one, then four at once)
#      through the relays;
#      then smbd is stopped: a raw session request gets 83 00 00 01 8F (never 82 then a close)
#   B  forward=127.0.0.1:$ECHO_PORT, a direct-hosted echo backend (python): messages of 1, 65536
#      and 131071 bytes both ways; 40 x 131071 bytes while the backend stops reading for 1 s
#      (backpressure); `netbt status` during a session; a backend frame longer than 0x1FFFF
#      closes the session
#   C  forward=$BLACKHOLE:445 (nobody answers ARP there): 0x8F after the 3 s connect timeout
#   and: no TCP reset from 139 in the capture; `netbt status --json` counts no resets sent.
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
PY=/usr/bin/python3
ECHO_PORT=4445
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

client() { in_ns timeout 30 "$PY" "$WORK/client.py" "$@"; }
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

# ---------------------------------------------------------------------------- helper programs
# A raw NetBT client (standard library only; every wait bounded by --timeout).
cat >"$WORK/client.py" <<'PYEOF'
import argparse, os, socket, struct, sys, threading

def name(text, suffix):
    raw = text.upper().encode()[:15].ljust(15, b" ") + bytes([suffix])
    return b"\x20" + bytes(x for c in raw for x in (0x41 + (c >> 4), 0x41 + (c & 15))) + b"\0"

def frame(kind, body):
    return struct.pack(">BBH", kind, len(body) >> 16, len(body) & 0xFFFF) + body

def recv_exact(s, n):
    data = b""
    while len(data) < n:
        chunk = s.recv(min(n - len(data), 65536))
        if not chunk:
            raise EOFError
        data += chunk
    return data

def read_frame(s):
    kind, flags, length = struct.unpack(">BBH", recv_exact(s, 4))
    length |= (flags & 1) << 16
    return kind, flags, recv_exact(s, length) if length else b""

def session(a):
    """-> (socket, answer text)"""
    s = socket.create_connection((a.ip, 139), timeout=a.timeout)
    s.sendall(frame(0x81, name(a.called, 0x20) + name("LABCLIENT", 0x00)))
    try:
        kind, flags, body = read_frame(s)
    except ConnectionResetError:
        return s, "RESULT=RST"
    except EOFError:
        return s, "RESULT=EOF"
    except socket.timeout:
        return s, "RESULT=TIMEOUT"
    raw = struct.pack(">BBH", kind, flags, len(body)) + body
    if kind == 0x82:
        return s, "RESULT=POSITIVE bytes=" + raw.hex()
    if kind == 0x83:
        return s, "RESULT=NEGATIVE code=0x%02x bytes=%s" % (body[0] if body else 0, raw.hex())
    return s, "RESULT=OTHER bytes=" + raw.hex()

def after_answer(s):
    """What follows the answer: EOF (the server closes first), DATA or RST within the timeout."""
    try:
        data = s.recv(1)
        return "AFTER=EOF" if not data else "AFTER=DATA"
    except ConnectionResetError:
        return "AFTER=RST"
    except socket.timeout:
        return "AFTER=TIMEOUT"

def cmd_request(a):
    t = os.times().elapsed
    s, text = session(a)
    print(text, "ms=%d" % ((os.times().elapsed - t) * 1000))
    if text.startswith("RESULT=NEGATIVE"):
        print(after_answer(s))
    s.close()

def cmd_echo(a):
    s, text = session(a)
    print(text)
    if not text.startswith("RESULT=POSITIVE"):
        return 1
    bad = 0
    for size in map(int, a.sizes.split(",")):
        body = os.urandom(size)
        sender = threading.Thread(target=s.sendall, args=(frame(0x00, body),))
        sender.start()
        try:
            kind, flags, back = read_frame(s)
        except (OSError, EOFError) as e:
            print("ECHO_FAIL size=%d %r" % (size, e)); bad += 1; break
        finally:
            sender.join()
        want_flags = 1 if size > 0xFFFF else 0
        ok = kind == 0 and flags == want_flags and back == body
        print("%s size=%d type=0x%02x flags=%d got=%d" % ("ECHO_OK" if ok else "ECHO_FAIL", size, kind, flags, len(back)))
        bad += 0 if ok else 1
    s.close()
    return 1 if bad else 0

def cmd_oversize(a):
    """Asks the echo backend for a frame longer than 0x1FFFF: the session must end (EOF)."""
    s, text = session(a)
    print(text)
    s.sendall(frame(0x00, b"too-long"))
    try:
        kind, flags, body = read_frame(s)
        print("OVERSIZE_GOT type=0x%02x len=%d" % (kind, len(body)))
    except EOFError:
        print("OVERSIZE_CLOSED")
    except ConnectionResetError:
        print("OVERSIZE_RST")
    except socket.timeout:
        print("OVERSIZE_TIMEOUT")
    s.close()

def cmd_stream(a):
    """N messages of --size bytes sent back to back behind a 'pause' message (the backend stops
    reading for 1 s: backpressure from the backend through netbt to us), every echo checked."""
    s, text = session(a)
    print(text)
    if not text.startswith("RESULT=POSITIVE"):
        return 1
    bodies = [b"pause"] + [os.urandom(a.size) for _ in range(a.n)]
    failure = []
    def send():
        try:
            for body in bodies:
                s.sendall(frame(0x00, body))
        except OSError as e:
            failure.append(repr(e))
    sender = threading.Thread(target=send)
    sender.start()
    good = 0
    try:
        for body in bodies:
            kind, flags, back = read_frame(s)
            good += kind == 0 and back == body
    except (OSError, EOFError) as e:
        failure.append(repr(e))
    sender.join()
    print("STREAM n=%d size=%d intact=%d %s" % (a.n, a.size, good - 1, " ".join(failure) or "ok"))
    s.close()

def cmd_hold(a):
    """One session with one echoed message, held until FILE exists (at most --timeout s)."""
    s, text = session(a)
    print(text, flush=True)
    s.sendall(frame(0x00, b"held"))
    print("HELD_ECHO", read_frame(s)[2].decode(), flush=True)
    for _ in range(int(a.timeout * 20)):
        if os.path.exists(a.until):
            break
        threading.Event().wait(0.05)
    s.close()

def cmd_echo_backend(a):
    """Direct-hosted echo server on 127.0.0.1:PORT: each frame back; 'too-long' -> a 0x20000 frame."""
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", a.port))
    srv.listen(16)
    print("listening", flush=True)
    def serve(c):
        with c:
            try:
                while True:
                    header = recv_exact(c, 4)
                    body = recv_exact(c, int.from_bytes(header[1:], "big"))
                    if body == b"too-long":
                        c.sendall(b"\x00\x02\x00\x00" + b"\0" * 64)
                    elif body == b"pause":
                        threading.Event().wait(1.0)
                        c.sendall(header + body)
                    else:
                        c.sendall(header + body)
            except (OSError, EOFError):
                pass
    while True:
        c, _ = srv.accept()
        threading.Thread(target=serve, args=(c,), daemon=True).start()

ap = argparse.ArgumentParser()
sub = ap.add_subparsers(dest="cmd", required=True)
for cmd in ("request", "echo", "oversize", "hold", "stream"):
    p = sub.add_parser(cmd)
    p.add_argument("ip")
    p.add_argument("called")
    p.add_argument("--timeout", type=float, default=10)
    p.add_argument("--sizes", default="1,65536,131071")
    p.add_argument("--until", default="/nonexistent")
    p.add_argument("--n", type=int, default=40)
    p.add_argument("--size", type=int, default=131071)
p = sub.add_parser("echo-backend")
p.add_argument("--port", type=int, required=True)
a = ap.parse_args()
sys.exit({"request": cmd_request, "echo": cmd_echo, "oversize": cmd_oversize, "hold": cmd_hold,
          "stream": cmd_stream, "echo-backend": cmd_echo_backend}[a.cmd](a) or 0)
PYEOF

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

client request "$SERVER" LABSRV >"$WORK/a-up.out" 2>&1 || true
expect "raw session request with the backend up: 82 00 00 00" "^RESULT=POSITIVE bytes=82000000 " "$WORK/a-up.out"

# Stop the backend; netbt stays.
if [ -n "$smbd_pid" ]; then kill -TERM "$smbd_pid" 2>/dev/null || true; fi
for _ in $(seq 100); do listening 445 || break; sleep 0.1; done
listening 445 && fail "smbd still listens 10 s after SIGTERM" || pass "smbd stopped: nothing listens on 127.0.0.1:445"
client request "$SERVER" LABSRV >"$WORK/a-down.out" 2>&1 || true
expect "backend down: raw session request gets 83 00 00 01 8F" \
    "^RESULT=NEGATIVE code=0x8f bytes=830000018f " "$WORK/a-down.out"
expect "backend down: then netbt closes (FIN, no reset)" "^AFTER=EOF$" "$WORK/a-down.out"
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

# ------------------------------------------------------------------------------------------
echo "lab forward B: a direct-hosted echo backend on 127.0.0.1:$ECHO_PORT"
ip netns exec "$NETBT_NS" timeout 120 "$PY" "$WORK/client.py" echo-backend --port "$ECHO_PORT" >"$WORK/echo-backend.out" 2>&1 &
pids+=($!)
for _ in $(seq 100); do listening "$ECHO_PORT" && break; sleep 0.05; done
start_serve B --handler "forward=127.0.0.1:$ECHO_PORT"
client echo "$SERVER" LABSRV --sizes 1,65536,131071,0,4096 >"$WORK/b-echo.out" 2>&1 || true
for size in 1 65536 131071 0 4096; do
    expect "echo of $size bytes through the backend: intact, 17-bit header right" "^ECHO_OK size=$size " "$WORK/b-echo.out"
done
client stream "$SERVER" LABSRV --n 40 --size 131071 >"$WORK/b-stream.out" 2>&1 || true
sed -n 's/^STREAM/       STREAM/p' "$WORK/b-stream.out"
expect "40 x 131071 bytes back to back while the backend stops reading for 1 s: all echoed intact" \
    "^STREAM n=40 size=131071 intact=40 ok$" "$WORK/b-stream.out"
client hold "$SERVER" LABSRV --until "$WORK/release" --timeout 10 >"$WORK/b-hold.out" 2>&1 &
hold_pid=$!
pids+=("$hold_pid")
for _ in $(seq 100); do grep -qs '^HELD_ECHO' "$WORK/b-hold.out" && break; sleep 0.05; done
in_ns timeout 10 "$NETBT" status --control "$WORK/B.sock" >"$WORK/b-status.out" 2>&1 || true
touch "$WORK/release"
wait "$hold_pid" 2>/dev/null || true
expect "held session: echoed through the backend" "^HELD_ECHO held$" "$WORK/b-hold.out"
expect "netbt status lists the forwarded session as usual (Established, 4 body bytes each way)" \
    "session +Established +192\.168\.69\.100:[0-9]+ +LABSRV<20> +LABCLIENT<00> .* 4 +4$" "$WORK/b-status.out"
client oversize "$SERVER" LABSRV >"$WORK/b-oversize.out" 2>&1 || true
expect "oversize: the session was accepted" "^RESULT=POSITIVE bytes=82000000$" "$WORK/b-oversize.out"
expect "a backend frame of 0x20000 bytes closes the session (FIN)" "^OVERSIZE_CLOSED$" "$WORK/b-oversize.out"
expect "B: the oversized frame is logged" "sent a frame of 131072 bytes, longer than a NetBT session message" "$WORK/B.err"
client request "$SERVER" LABSRV >"$WORK/b-after.out" 2>&1 || true
expect "after that a new session gets 82" "^RESULT=POSITIVE bytes=82000000 " "$WORK/b-after.out"
stop_serve B

# ------------------------------------------------------------------------------------------
echo "lab forward C: a backend that never answers ($BLACKHOLE:445)"
start_serve C --handler "forward=$BLACKHOLE:445"
client request "$SERVER" LABSRV >"$WORK/c-timeout.out" 2>&1 || true
expect "unanswered backend: 83 00 00 01 8F" "^RESULT=NEGATIVE code=0x8f bytes=830000018f " "$WORK/c-timeout.out"
ms=$(sed -n 's/.* ms=\([0-9]*\)$/\1/p' "$WORK/c-timeout.out")
[ "${ms:-0}" -ge 2500 ] && [ "${ms:-0}" -le 5000 ] && pass "the refusal came after the connect timeout (${ms} ms)" \
    || fail "the refusal came after ${ms:-?} ms, want about 3000"
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

# The stream of phase B: the backend stopped reading, netbt stopped reading the session, and
# its receive window closed (flow control reached the client, nothing was dropped).
zero_windows=$(tcpdump -n -r "$CAP" "src host $SERVER and tcp src port 139 and tcp[14:2] = 0" 2>/dev/null | wc -l)
[ "$zero_windows" -gt 0 ] && pass "capture: backpressure reached the client ($zero_windows zero-window segments from 139)" \
    || fail "capture: no zero window from 139 while the backend did not read"

if [ "$failures" -ne 0 ]; then
    echo "forward lab: $failures failed"; KEEP_LAB_LOGS=1; exit 1
fi
echo "forward lab: all passed"
