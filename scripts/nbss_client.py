#!/usr/bin/env python3
"""A small raw NetBIOS session service (TCP 139) and node status client for scripts/lab-sessions.sh.

Standard library only. Every subcommand prints plain `key=value` lines for the shell to grep, and
every wait is bounded.

  request IP CALLED[#XX] [--calling N]    one session request: RESULT=POSITIVE | NEGATIVE code=0x.. |
                                          RST | EOF | TIMEOUT | REFUSED | CONNECT_TIMEOUT | ...,
                                          with the answer's bytes in hex
  malformed IP --kind message-first|bad-label
                                          a bad first frame; prints the answer like `request`
  echo IP CALLED --sizes 1,65536          one session, one echoed message per size
  hold IP CALLED --n N --until FILE       N sessions, held until FILE exists (bounded by --max),
                                          each checked with an echo, then closed by us (FIN)
  flood IP CALLED --n N [--retry-ms L:H]  N concurrent clients: request, response, a positive
                                          session held briefly, close; each must end in 0x82 or
                                          0x83/0x83. Connect retries are the kernel's SYN
                                          retransmissions, or with --retry-ms our own attempts
  silent IP --n N [--polite P]            N concurrent connections that never send a byte; the
                                          server must close each (EOF) at its request deadline
  status IP [--wait-free N --max S]       node status (NBSTAT for `*`): the RFC 1002 statistics
"""
import argparse
import errno
import os
import random
import socket
import struct
import sys
import threading
import time

CALLING = "LABCLIENT"


def parse_name(text):
    """NAME or NAME#XX (suffix in hex) -> (name, suffix); the default suffix is 0x20."""
    if "#" in text:
        name, suffix = text.rsplit("#", 1)
        return name, int(suffix, 16)
    return text, 0x20


def encode_name(name, suffix):
    """RFC 1001 first-level encoding: 0x20, 32 letters, 0x00 (no scope)."""
    if name == "*":
        raw = b"*" + b"\0" * 15
    else:
        raw = name.upper().encode("ascii")[:15].ljust(15, b" ") + bytes([suffix])
    return b"\x20" + bytes(x for c in raw for x in (0x41 + (c >> 4), 0x41 + (c & 15))) + b"\0"


def frame(msg_type, body):
    if len(body) > 0x1FFFF:
        raise ValueError("NBSS frame body too long")
    return struct.pack(">BBH", msg_type, len(body) >> 16, len(body) & 0xFFFF) + body


def session_request(called, calling=CALLING, calling_suffix=0x00):
    name, suffix = parse_name(called)
    return frame(0x81, encode_name(name, suffix) + encode_name(calling, calling_suffix))


def recv_exact(sock, n):
    chunks = []
    got = 0
    while got < n:
        data = sock.recv(min(n - got, 1 << 16))
        if not data:
            raise EOFError
        chunks.append(data)
        got += len(data)
    return b"".join(chunks)


def read_frame(sock):
    """-> (type, flags, body) of the next NBSS frame."""
    header = recv_exact(sock, 4)
    msg_type, flags, length = struct.unpack(">BBH", header)
    length |= (flags & 1) << 16
    return msg_type, flags, recv_exact(sock, length) if length else b""


def connect(ip, port, timeout):
    """-> (socket, None) or (None, RESULT text)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        sock.connect((ip, port))
        return sock, None
    except ConnectionRefusedError:
        err = "REFUSED"
    except socket.timeout:
        err = "CONNECT_TIMEOUT"
    except OSError as e:
        err = "CONNECT_ERROR errno=%s" % errno.errorcode.get(e.errno, e.errno)
    sock.close()
    return None, err


def classify(sock, first_bytes):
    """Send `first_bytes`, read one answer -> (kind, RESULT text). kind: pos, neg83, rst, ..."""
    try:
        sock.sendall(first_bytes)
        msg_type, flags, body = read_frame(sock)
    except ConnectionResetError:
        return "rst", "RESULT=RST"
    except EOFError:
        return "eof", "RESULT=EOF"
    except socket.timeout:
        return "timeout", "RESULT=TIMEOUT"
    except OSError as e:
        return "oserror", "RESULT=OSERROR errno=%s" % errno.errorcode.get(e.errno, e.errno)
    raw = struct.pack(">BBH", msg_type, flags, len(body) & 0xFFFF) + body
    if msg_type == 0x82 and flags == 0 and not body:
        return "pos", "RESULT=POSITIVE bytes=%s" % raw.hex()
    if msg_type == 0x83 and flags == 0 and len(body) == 1:
        return "neg%02x" % body[0], "RESULT=NEGATIVE code=0x%02x bytes=%s" % (body[0], raw.hex())
    return "other", "RESULT=OTHER bytes=%s" % raw[:24].hex()


def one_shot(ip, port, first_bytes, timeout):
    sock, err = connect(ip, port, timeout)
    if sock is None:
        return "connect", "RESULT=" + err
    try:
        return classify(sock, first_bytes)
    finally:
        sock.close()


def echo_once(sock, size, rng):
    """Send one session message of `size` bytes and read it back -> error text or None."""
    body = rng.randbytes(size)
    failure = []

    def send():
        try:
            sock.sendall(frame(0x00, body))
        except OSError as e:
            failure.append("send failed: %r" % e)

    sender = threading.Thread(target=send)
    sender.start()
    try:
        msg_type, flags, back = read_frame(sock)
    except (OSError, EOFError) as e:
        sender.join()
        return "echo of %d bytes: no answer (%r)" % (size, e)
    sender.join()
    if failure:
        return failure[0]
    want_flags = 1 if size > 0xFFFF else 0
    if msg_type != 0x00 or flags != want_flags:
        return "echo of %d bytes: header type=0x%02x flags=0x%02x, want 0x00/0x%02x" % (
            size, msg_type, flags, want_flags)
    if back != body:
        same = next((i for i, (a, b) in enumerate(zip(back, body)) if a != b), min(len(back), len(body)))
        return "echo of %d bytes: got %d bytes, first difference at %d" % (size, len(back), same)
    return None


def cmd_request(a):
    _, text = one_shot(a.ip, a.port, session_request(a.called, a.calling), a.timeout)
    print(text)


def cmd_malformed(a):
    if a.kind == "message-first":
        first = frame(0x00, b"\xde\xad\xbe\xef")
    else:  # a well-framed request whose called-name label is 8 bytes instead of 32
        called = b"\x08ABCDEFGH\x00"
        first = frame(0x81, called + encode_name(CALLING, 0x00))
    _, text = one_shot(a.ip, a.port, first, a.timeout)
    print(text)


def cmd_echo(a):
    sock, err = connect(a.ip, a.port, a.timeout)
    if sock is None:
        print("RESULT=" + err)
        return 1
    rng = random.Random(139)
    with sock:
        kind, text = classify(sock, session_request(a.called))
        print(text)
        if kind != "pos":
            return 1
        failures = 0
        for size in (int(s) for s in a.sizes.split(",")):
            t = time.monotonic()
            problem = echo_once(sock, size, rng)
            if problem:
                print("ECHO_FAIL size=%d %s" % (size, problem))
                failures += 1
            else:
                print("ECHO_OK size=%d ms=%.1f" % (size, (time.monotonic() - t) * 1000))
    return 1 if failures else 0


def cmd_hold(a):
    socks = []
    rng = random.Random(7)
    status = 0
    for i in range(a.n):
        sock, err = connect(a.ip, a.port, a.timeout)
        if sock is None:
            print("HOLD_FAIL %d RESULT=%s" % (i, err))
            status = 1
            break
        kind, text = classify(sock, session_request(a.called))
        if kind != "pos":
            print("HOLD_FAIL %d %s" % (i, text))
            sock.close()
            status = 1
            break
        socks.append(sock)
        print("HELD %d port=%d %s" % (i, sock.getsockname()[1], text), flush=True)
    deadline = time.monotonic() + a.max
    while not os.path.exists(a.until) and time.monotonic() < deadline:
        time.sleep(0.05)
    # Still alive? One small echo on each before we let go.
    for i, sock in enumerate(socks):
        problem = echo_once(sock, 16, rng)
        print("STILL_ALIVE %d %s" % (i, problem or "ok"))
        if problem:
            status = 1
        sock.close()
    print("RELEASED %d" % len(socks), flush=True)
    return status


def cmd_flood(a):
    lo, hi = (int(x) for x in a.hold_ms.split(":"))
    retry_lo, retry_hi = (int(x) for x in a.retry_ms.split(":")) if a.retry_ms else (0, 0)
    results = {}
    spans = []  # (time, +1 started / -1 finished): the most clients in flight at once
    lock = threading.Lock()
    start = time.monotonic()
    go = threading.Event()

    def client(i):
        rng = random.Random(i)
        go.wait()
        time.sleep(rng.uniform(0, a.spread_ms / 1000.0))
        t = time.monotonic()
        with lock:
            spans.append((t, 1))
        attempts = 0
        while True:
            attempts += 1
            left = t + a.connect_timeout - time.monotonic()
            wait = min(left, rng.uniform(retry_lo, retry_hi) / 1000.0) if retry_lo else left
            sock, err = connect(a.ip, a.port, max(0.01, wait))
            if sock is not None or err != "CONNECT_TIMEOUT" or wait >= left:
                break
        connected = time.monotonic()
        if sock is None:
            kind, text = "connect", "RESULT=" + err
        else:
            sock.settimeout(a.timeout)
            kind, text = classify(sock, session_request(a.called))
            if kind == "pos":
                time.sleep(rng.uniform(lo, hi) / 1000.0)
            sock.close()
        with lock:
            results[i] = (kind, text, connected - t, time.monotonic() - t, attempts)
            spans.append((time.monotonic(), -1))

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(a.n)]
    for t in threads:
        t.start()
    go.set()
    deadline = start + a.deadline
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()))
    elapsed = time.monotonic() - start
    with lock:  # clients still running past the deadline must not change what we count
        final = dict(results)
        steps = sorted(spans)
    hist = {}
    bad = 0
    for i in range(a.n):
        kind = final.get(i, ("unfinished",))[0]
        hist[kind] = hist.get(kind, 0) + 1
        if kind not in ("pos", "neg83"):
            bad += 1
            print("FLOOD_BAD client=%d %s" % (i, final.get(i, ("unfinished", "RESULT=UNFINISHED"))[1]))
    in_flight = peak = 0
    for _, step in steps:
        in_flight += step
        peak = max(peak, in_flight)
    waits = sorted(r[2] for r in final.values())
    slow = sum(1 for w in waits if w > 0.9)  # needed a retransmitted SYN or a new attempt
    retried = sum(1 for r in final.values() if len(r) > 4 and r[4] > 1)
    print("FLOOD n=%d elapsed=%.2fs pos=%d neg83=%d bad=%d peak_in_flight=%d connect_max=%.2fs "
          "connects_over_0.9s=%d clients_that_reconnected=%d hist=%s" % (
        a.n, elapsed, hist.get("pos", 0), hist.get("neg83", 0), bad, peak,
        waits[-1] if waits else 0.0, slow, retried, dict(sorted(hist.items()))))
    return 1 if bad else 0


TCP_CLOSE = 7  # tcpi_state of a connection that is gone (for us: reset by the server)


def tcp_state(sock):
    try:
        return sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 8)[0]
    except OSError:
        return TCP_CLOSE


def cmd_silent(a):
    """N connections that never send a byte. The first --polite clients (started 50 ms ahead of
    the rest) close once they see the server's FIN, as a normal client would; the others do not
    close after the FIN: they hold their end until the server resets it or for --hold seconds
    (past the server's close timeout, when it gives the connection up), then close."""
    results = {}
    lock = threading.Lock()
    start = time.monotonic()
    deadline = start + a.deadline

    def client(i):
        polite = i < a.polite
        mode = "close" if polite else "keep"
        if not polite:
            time.sleep(0.05)
        t = time.monotonic()
        sock, err = connect(a.ip, a.port, a.connect_timeout)
        if sock is None:
            with lock:
                results[i] = ("connect", "RESULT=" + err, 0.0, mode, 0, None)
            return
        port = sock.getsockname()[1]
        connected = time.monotonic()
        sock.settimeout(max(0.1, deadline - connected))
        try:
            data = sock.recv(1)
            kind = "eof" if not data else "data"
        except ConnectionResetError:
            kind = "rst"
        except socket.timeout:
            kind = "timeout"
        closed_at = time.monotonic()
        reset = None
        if not polite:  # do not close after the FIN: hold until reset by the server or --hold
            until = min(deadline, closed_at + a.hold)
            while tcp_state(sock) != TCP_CLOSE and time.monotonic() < until:
                time.sleep(0.05)
            reset = time.monotonic() - closed_at if tcp_state(sock) == TCP_CLOSE else None
        sock.close()
        text = "port=%d mode=%s connect_after=%.2fs server_fin_after=%.2fs" % (
            port, mode, connected - t, closed_at - connected)
        if not polite:
            text += " reset_after_fin=%s" % ("%.2fs" % reset if reset is not None else "none")
        with lock:
            results[i] = (kind, text, closed_at - connected, mode, port, reset)

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(a.n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(max(0.0, deadline + 1 - time.monotonic()))
    elapsed = time.monotonic() - start
    with lock:  # clients still running past the deadline must not change what we count
        final = dict(results)
    bad = 0
    for i in range(a.n):
        r = final.get(i, ("unfinished", "RESULT=UNFINISHED", 0.0, "?", 0, None))
        ok = r[0] == "eof" and a.min_close <= r[2] <= a.max_close
        bad += 0 if ok else 1
        print("SILENT %s client=%d %s %s" % ("ok" if ok else "BAD", i, r[0].upper(), r[1]))
    for mode, label in (("keep", "KEPT"), ("close", "CLOSED")):
        print("SILENT_%s_PORTS %s" % (label, ",".join(str(r[4]) for r in final.values() if r[3] == mode and r[4])))
    resets = sum(1 for r in final.values() if r[3] == "keep" and r[5] is not None)
    print("SILENT n=%d polite=%d bad=%d kept_reset_by_server=%d elapsed=%.2fs" % (
        a.n, a.polite, bad, resets, elapsed))
    return 1 if bad else 0


STAT_FIELDS = [  # RFC 1002 4.2.18 STATISTICS after UNIT_ID(6) JUMPERS(1) TEST_RESULT(1)
    ("version", 2), ("period", 2), ("crcs", 2), ("align", 2), ("collisions", 2),
    ("send_aborts", 2), ("good_sends", 4), ("good_receives", 4), ("retransmits", 2),
    ("no_resource_conditions", 2), ("free_command_blocks", 2), ("total_command_blocks", 2),
    ("max_total_command_blocks", 2), ("pending_sessions", 2), ("max_pending", 2),
    ("max_total_sessions", 2), ("session_data_packet_size", 2),
]


def skip_name(data, pos):
    while True:
        length = data[pos]
        if length & 0xC0 == 0xC0:
            return pos + 2
        pos += 1 + length
        if length == 0:
            return pos


def node_status(ip, timeout=1.0):
    """-> dict of statistics (and names), or None on no answer."""
    trn = random.randrange(1, 0xFFFF)
    query = struct.pack(">HHHHHH", trn, 0x0000, 1, 0, 0, 0) + encode_name("*", 0) + struct.pack(">HH", 0x21, 1)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.settimeout(timeout)
    try:
        sock.sendto(query, (ip, 137))
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            data, peer = sock.recvfrom(2048)
            if len(data) >= 12 and struct.unpack(">H", data[:2])[0] == trn:
                break
        else:
            return None
    except socket.timeout:
        return None
    finally:
        sock.close()
    pos = skip_name(data, 12)
    rr_type, _, _, rdlength = struct.unpack(">HHIH", data[pos:pos + 10])
    rdata = data[pos + 10:pos + 10 + rdlength]
    count = rdata[0]
    names = [rdata[1 + 18 * i:1 + 18 * i + 16] for i in range(count)]
    stats = rdata[1 + 18 * count:]
    if rr_type != 0x21 or len(stats) != 46:
        raise ValueError("NBSTAT: type 0x%x, %d statistics bytes (want 46)" % (rr_type, len(stats)))
    out = {"unit_id": stats[:6].hex(":"), "names": count}
    pos = 8
    for field, width in STAT_FIELDS:
        out[field] = int.from_bytes(stats[pos:pos + width], "big")
        pos += width
    out["_names"] = [n[:15].decode("ascii", "replace").rstrip() + "<%02x>" % n[15] for n in names]
    return out


def cmd_status(a):
    start = time.monotonic()
    stats = None
    while True:
        stats = node_status(a.ip)
        if a.wait_free is None or (stats and stats["free_command_blocks"] == a.wait_free):
            break
        if time.monotonic() - start > a.max:
            break
        time.sleep(0.2)
    if stats is None:
        print("STATUS none")
        return 1
    print("STATUS " + " ".join("%s=%s" % (k, v) for k, v in stats.items() if not k.startswith("_")))
    print("STATUS_NAMES " + " ".join(stats["_names"]))
    if a.wait_free is not None:
        reached = stats["free_command_blocks"] == a.wait_free
        print("WAIT_FREE %s want=%d after=%.2fs" % ("ok" if reached else "TIMEOUT", a.wait_free,
                                                   time.monotonic() - start))
        return 0 if reached else 1
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--port", type=int, default=139)
    sub = ap.add_subparsers(dest="cmd", required=True)

    p = sub.add_parser("request")
    p.add_argument("ip")
    p.add_argument("called")
    p.add_argument("--calling", default=CALLING)
    p.add_argument("--timeout", type=float, default=5)
    p.set_defaults(func=cmd_request)

    p = sub.add_parser("malformed")
    p.add_argument("ip")
    p.add_argument("--kind", choices=["message-first", "bad-label"], required=True)
    p.add_argument("--timeout", type=float, default=5)
    p.set_defaults(func=cmd_malformed)

    p = sub.add_parser("echo")
    p.add_argument("ip")
    p.add_argument("called")
    p.add_argument("--sizes", default="1,65536,131071")
    p.add_argument("--timeout", type=float, default=10)
    p.set_defaults(func=cmd_echo)

    p = sub.add_parser("hold")
    p.add_argument("ip")
    p.add_argument("called")
    p.add_argument("--n", type=int, required=True)
    p.add_argument("--until", required=True, help="release once this file exists")
    p.add_argument("--max", type=float, default=30)
    p.add_argument("--timeout", type=float, default=5)
    p.set_defaults(func=cmd_hold)

    p = sub.add_parser("flood")
    p.add_argument("ip")
    p.add_argument("called")
    p.add_argument("--n", type=int, default=120)
    p.add_argument("--hold-ms", default="50:200", help="how long a positive session is held, LO:HI")
    p.add_argument("--spread-ms", type=float, default=0, help="start each client after 0..this")
    p.add_argument("--connect-timeout", type=float, default=20)
    p.add_argument("--retry-ms", help="LO:HI: give each connect attempt a random LO..HI ms and try "
                   "again (until --connect-timeout), instead of leaving every retry to the kernel")
    p.add_argument("--timeout", type=float, default=10, help="for the response, once connected")
    p.add_argument("--deadline", type=float, default=30, help="for the whole flood")
    p.set_defaults(func=cmd_flood)

    p = sub.add_parser("silent")
    p.add_argument("ip")
    p.add_argument("--n", type=int, default=8)
    p.add_argument("--polite", type=int, default=1,
                   help="how many clients (started first) close after the server's FIN; the rest hold")
    p.add_argument("--hold", type=float, default=6.5,
                   help="how long the others hold after the server's FIN unless reset (s)")
    p.add_argument("--connect-timeout", type=float, default=45)
    p.add_argument("--deadline", type=float, default=45)
    p.add_argument("--min-close", type=float, default=1.5, help="earliest acceptable server close (s)")
    p.add_argument("--max-close", type=float, default=4.0, help="latest acceptable server close (s)")
    p.set_defaults(func=cmd_silent)

    p = sub.add_parser("status")
    p.add_argument("ip")
    p.add_argument("--wait-free", type=int)
    p.add_argument("--max", type=float, default=30)
    p.set_defaults(func=cmd_status)

    a = ap.parse_args()
    sys.exit(a.func(a) or 0)


if __name__ == "__main__":
    main()
