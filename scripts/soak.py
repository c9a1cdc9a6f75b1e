#!/usr/bin/env python3
"""Soak run for preforkd: mixed good, malformed and slow traffic against a
release build on 127.0.0.1 for a given number of minutes, then a report:
requests served, errors by kind, worker restarts, and memory (RSS) of the
master and workers at the start and the end.

Exit status 0 only if no good request failed, no worker died unexpectedly,
and no worker's RSS grew by more than --max-growth-kib.

Usage: scripts/soak.sh --minutes 10   (builds the release binary first)
"""
import argparse
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter

GOOD = b"GET / HTTP/1.1\r\nHost: soak\r\n\r\n"
CLOSE = b"GET / HTTP/1.1\r\nHost: soak\r\nConnection: close\r\n\r\n"
MALFORMED = [
    (b"GET / HTTP/1.1\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
    (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
    (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400),
    (b"GET / HTTP/1.1\nHost: a\n\n", 400),
    (b"GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505),
    (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501),
    (b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: a\r\n\r\n", 414),
    (b"GET / HTTP/1.1\r\nHost: a\r\nX: " + b"a" * 9000 + b"\r\n\r\n", 431),
    (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999\r\n\r\n", 413),
    (b"G\x00T / HTTP/1.1\r\nHost: a\r\n\r\n", 400),
]


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.c = Counter()

    def add(self, key, n=1):
        with self.lock:
            self.c[key] += n


def read_response(sock, buf):
    """One response from sock (buf holds leftovers). Returns (status, close, rest)."""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            raise EOFError("closed before a response head")
        buf += chunk
    head, rest = buf.split(b"\r\n\r\n", 1)
    lines = head.split(b"\r\n")
    status = int(lines[0][9:12])
    length = 0
    close = False
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        if name.lower() == b"content-length":
            length = int(value.strip())
        if name.lower() == b"connection" and value.strip().lower() == b"close":
            close = True
    while len(rest) < length:
        chunk = sock.recv(65536)
        if not chunk:
            raise EOFError("closed inside a response body")
        rest += chunk
    return status, close, rest[length:]


def good_keepalive(addr, stop, st):
    sock, buf = None, b""
    while not stop.is_set():
        try:
            if sock is None:
                sock = socket.create_connection(addr, timeout=10)
                buf = b""
            sock.sendall(GOOD)
            status, close, buf = read_response(sock, buf)
            st.add("good ok" if status == 200 else f"good FAILED status {status}")
            if close:
                sock.close()
                sock = None
        except (OSError, EOFError, ValueError) as e:
            st.add(f"good FAILED {type(e).__name__}")
            if sock:
                sock.close()
            sock = None


def good_fresh(addr, stop, st):
    while not stop.is_set():
        try:
            with socket.create_connection(addr, timeout=10) as sock:
                sock.sendall(CLOSE)
                status, _, _ = read_response(sock, b"")
                st.add("good ok" if status == 200 else f"good FAILED status {status}")
        except (OSError, EOFError, ValueError) as e:
            st.add(f"good FAILED {type(e).__name__}")


def malformed(addr, stop, st):
    rng = random.Random(1)
    while not stop.is_set():
        data, want = rng.choice(MALFORMED)
        try:
            with socket.create_connection(addr, timeout=10) as sock:
                sock.sendall(data)
                status, close, _ = read_response(sock, b"")
                if status == want and close:
                    st.add(f"malformed answered {status}")
                else:
                    st.add(f"malformed UNEXPECTED {status} close={close}")
        except (OSError, EOFError, ValueError) as e:
            st.add(f"malformed UNEXPECTED {type(e).__name__}")
        time.sleep(0.005)


def slow(addr, stop, st, header_timeout):
    """Slowloris: a head dripped slower than header_timeout must get 408."""
    while not stop.is_set():
        try:
            with socket.create_connection(addr, timeout=header_timeout * 4) as sock:
                for b in b"GET / HTTP/1.1\r\nHost: slo":
                    if stop.is_set():
                        break
                    sock.sendall(bytes([b]))
                    time.sleep(header_timeout / 4)
                    # The server may already have answered 408 and closed.
                    sock.settimeout(0.001)
                    try:
                        if sock.recv(1, socket.MSG_PEEK):
                            break
                    except (BlockingIOError, socket.timeout):
                        pass
                    sock.settimeout(header_timeout * 4)
                else:
                    continue
                status, close, _ = read_response(sock, b"")
                st.add(f"slow answered {status}" if status == 408 and close else f"slow UNEXPECTED {status}")
        except (OSError, EOFError, ValueError) as e:
            st.add(f"slow UNEXPECTED {type(e).__name__}")


def children(pid):
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                if int(fields[1]) == pid and fields[0] != "Z":
                    out.append(int(entry))
            except OSError:
                pass
    return sorted(out)


def rss_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=10)
    ap.add_argument("--binary", default="target/release/preforkd")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--max-growth-kib", type=int, default=2048)
    args = ap.parse_args()

    tmp = tempfile.mkdtemp(prefix="preforkd-soak-")
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    header_timeout = 1.0
    config = os.path.join(tmp, "soak.toml")
    with open(config, "w") as f:
        f.write(f'listen = ["127.0.0.1:{port}"]\nworkers = {args.workers}\nheader_timeout = "1s"\n'
                f'keepalive_timeout = "5s"\npid_file = "{tmp}/soak.pid"\n[log]\ntarget = "stderr"\n')
    log_path = os.path.join(tmp, "soak.log")
    log = open(log_path, "w")
    server = subprocess.Popen([args.binary, "-c", config], stdin=subprocess.DEVNULL,
                              stdout=log, stderr=log, start_new_session=True)
    addr = ("127.0.0.1", port)
    try:
        deadline = time.time() + 10
        while True:
            try:
                socket.create_connection(addr, timeout=1).close()
                break
            except OSError:
                if time.time() > deadline:
                    sys.exit("soak: the server did not start")
                time.sleep(0.05)
        time.sleep(0.5)
        start_workers = children(server.pid)
        seen_workers = set(start_workers)
        rss_start = {p: rss_kib(p) for p in [server.pid] + start_workers}
        st, stop = Stats(), threading.Event()
        threads = [threading.Thread(target=good_keepalive, args=(addr, stop, st)) for _ in range(4)]
        threads += [threading.Thread(target=good_fresh, args=(addr, stop, st)) for _ in range(2)]
        threads += [threading.Thread(target=malformed, args=(addr, stop, st))]
        threads += [threading.Thread(target=slow, args=(addr, stop, st, header_timeout)) for _ in range(8)]
        for t in threads:
            t.daemon = True
            t.start()
        t0 = time.time()
        end = t0 + args.minutes * 60
        warmed = False
        while time.time() < end:
            time.sleep(min(10, max(0, end - time.time())))
            seen_workers.update(children(server.pid))
            if not warmed:
                # Buffers and pools fill in the first seconds; growth is
                # measured from here.
                warmed = True
                rss_warm = {p: rss_kib(p) for p in [server.pid] + children(server.pid)}
            with st.lock:
                snap = dict(st.c)
            print(f"soak: {time.time() - t0:6.0f}s good ok={snap.get('good ok', 0)} "
                  f"failed={sum(v for k, v in snap.items() if 'FAILED' in k)} "
                  f"rss={[rss_kib(p) for p in [server.pid] + children(server.pid)]} KiB", flush=True)
        stop.set()
        for t in threads:
            t.join(timeout=15)
        end_workers = children(server.pid)
        rss_end = {p: rss_kib(p) for p in [server.pid] + end_workers}
        server.send_signal(signal.SIGTERM)
        code = server.wait(timeout=15)
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
        log.close()

    with open(log_path) as f:
        log_text = f.read()
    restarts = len(seen_workers) - len(start_workers)
    deaths = [l for l in log_text.splitlines() if ("exited status=" in l and "status=0" not in l) or "killed signal=" in l or "crashed" in l or "hung" in l]
    elapsed = args.minutes * 60
    print()
    print(f"soak report: {args.minutes:g} min, {args.workers} workers, binary {args.binary}")
    for key in sorted(st.c):
        print(f"  {key:40s} {st.c[key]:>10d}")
    good = st.c.get("good ok", 0)
    failed = sum(v for k, v in st.c.items() if "FAILED" in k)
    unexpected = sum(v for k, v in st.c.items() if "UNEXPECTED" in k)
    print(f"  good requests served: {good} ({good / elapsed:.0f}/s), failed: {failed}, unexpected answers: {unexpected}")
    print(f"  worker restarts: {restarts}; unexpected worker exits in the log: {len(deaths)}")
    for line in deaths[:10]:
        print(f"    {line}")
    print(f"  master exit status after TERM: {code}")
    growth_ok = True
    for pid in sorted(rss_start):
        start, warm, finish = rss_start[pid], rss_warm.get(pid), rss_end.get(pid)
        role = "master" if pid == server.pid else "worker"
        growth = None if finish is None or warm is None else finish - warm
        print(f"  RSS {role} pid {pid}: start {start} KiB, after 10 s {warm} KiB, end {finish} KiB, "
              f"growth since 10 s {growth} KiB")
        if growth is not None and growth > args.max_growth_kib:
            growth_ok = False
    ok = failed == 0 and unexpected == 0 and not deaths and restarts == 0 and code == 0 and growth_ok
    print("soak: " + ("ok" if ok else "FAILED") + f" (log: {log_path})")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
