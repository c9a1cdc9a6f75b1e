#!/usr/bin/env python3
"""HTTP/2: preforkd against nginx (its listeners flagged `http2`) on
loopback with h2load, in one run: server CPU microseconds per request,
req/s and errors per scenario, and the memory (PSS) of 10,000 idle HTTP/2
connections.

Scenarios:
  h2c-64x10   h2load -c 64 -m 10 over h2c (prior knowledge)
  tls-64x10   h2load -c 64 -m 10 over TLS (ALPN h2)
  tls-new     a new TLS connection per request (h2load -c N -n N, paced
              with --rate), so the handshake and the HTTP/2 setup count
  idle-10k    10,000 h2c connections that did the preface and SETTINGS
              and then stay idle: PSS of the server's processes above its
              idle baseline

Method as bench.py: W=1 worker, servers pinned to CPU 0 and h2load to CPU 1,
R runs interleaved A B A B, server CPU from /proc/PID/task/*/schedstat of
every process of the server; medians and median per-run ratios.

Usage: bench/h2.sh [-r RUNS] [-n REQUESTS] [-s h2c-64x10,tls-64x10,tls-new,idle-10k]
Needs: h2load (apt-get install nghttp2-client), nginx-light, openssl.
"""
import argparse
import os
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench import Target, cpu_ns, free_port, nginx_conf, pss_kib  # noqa: E402

IDLE = 10_000
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"


class H2Target(Target):
    """A server whose port may speak only HTTP/2: ready once it accepts
    a connection and answers the preface with a SETTINGS frame."""

    def ready(self):
        with socket.create_connection(("127.0.0.1", self.h2c_port), timeout=1) as s:
            s.sendall(PREFACE)
            return s.recv(9)[3:4] == b"\x04"


def certificate(tmp):
    cert, key = os.path.join(tmp, "cert.pem"), os.path.join(tmp, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                    "-nodes", "-keyout", key, "-out", cert, "-days", "30", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
                   check=True, capture_output=True)
    return cert, key


def nginx(tmp, h2c, tls, cert, key):
    conf = nginx_conf(
        tmp, 1,
        f"""listen 127.0.0.1:{h2c} http2 backlog=4096;
    listen 127.0.0.1:{tls} ssl http2 backlog=4096;
    ssl_certificate {cert};
    ssl_certificate_key {key};
    ssl_protocols TLSv1.2 TLSv1.3;""",
        http="http2_max_requests 1000000000;\n  ssl_session_cache shared:SSL:10m;",
        main="worker_rlimit_nofile 65536;",
    )
    t = H2Target("nginx", ["nginx", "-c", conf, "-p", tmp], h2c, tmp)
    t.h2c_port, t.tls_port = h2c, tls
    return t


def preforkd(tmp, h2c, tls, cert, key, binary):
    conf = os.path.join(tmp, "preforkd.toml")
    with open(conf, "w") as f:
        f.write(f'listen = ["127.0.0.1:{h2c} h2c", "127.0.0.1:{tls} tls"]\nworkers = 1\nbacklog = 4096\n'
                f'worker_connections = 16384\nkeepalive_timeout = "65s"\n'
                f'[tls]\ncertificate = "{cert}"\nkey = "{key}"\n[log]\ntarget = "stderr"\nlevel = "warn"\n')
    t = H2Target("preforkd", [binary, "-c", conf], h2c, tmp)
    t.h2c_port, t.tls_port = h2c, tls
    return t


def h2load(target, scenario, n):
    if scenario == "tls-new":
        # One request per connection, the connections paced over ~2 s so
        # that they come and go rather than pile up.
        conns = min(max(n // 20, 100), 4000)
        url = f"https://127.0.0.1:{target.tls_port}/"
        args = ["-n", str(conns), "-c", str(conns), "-m", "1", "-r", str(max(conns // 20, 1)),
                "--rate-period", "100ms"]
    else:
        scheme, port = ("http", target.h2c_port) if scenario.startswith("h2c") else ("https", target.tls_port)
        url = f"{scheme}://127.0.0.1:{port}/"
        args = ["-n", str(n), "-c", "64", "-m", "10"]
    before = cpu_ns(target.pids())
    start = time.monotonic()
    run = subprocess.run(["taskset", "-c", "1", "h2load", *args, url], capture_output=True, text=True,
                         timeout=300)
    out = run.stdout + run.stderr
    took = time.monotonic() - start
    used = cpu_ns(target.pids()) - before
    done = failed = errored = 0
    for line in out.splitlines():
        if line.startswith("requests:"):
            words = line.replace(",", "").split()
            done = int(words[words.index("succeeded") - 1])
            failed = int(words[words.index("failed") - 1])
            errored = int(words[words.index("errored") - 1])
    if done == 0:
        sys.exit(f"bench: h2load got nothing from {target.name}:\n{out}")
    return {"rps": done / took, "us": used / 1000 / done, "errors": failed + errored}


def idle_memory(target):
    """PSS above the idle baseline with IDLE h2c connections open."""
    base = pss_kib(target.pids())
    socks = []
    try:
        for _ in range(IDLE):
            s = socket.create_connection(("127.0.0.1", target.h2c_port), timeout=5)
            s.sendall(PREFACE)
            socks.append(s)
        # Each must have had its SETTINGS: the server holds the connection.
        for s in socks:
            s.settimeout(5)
            s.recv(9)
            s.sendall(b"\x00\x00\x00\x04\x01\x00\x00\x00\x00")  # SETTINGS ACK
        time.sleep(1)  # what is measured: connections at rest
        return pss_kib(target.pids()) - base
    finally:
        for s in socks:
            s.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-r", "--runs", type=int, default=3)
    ap.add_argument("-n", "--requests", type=int, default=200_000)
    ap.add_argument("-s", "--scenarios", default="h2c-64x10,tls-64x10,tls-new,idle-10k")
    ap.add_argument("--binary", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..",
                                                     "target", "release", "preforkd"))
    args = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    tmp = tempfile.mkdtemp(prefix="h2bench-")
    cert, key = certificate(tmp)
    targets = [preforkd(tmp, free_port(), free_port(), cert, key, args.binary),
               nginx(tmp, free_port(), free_port(), cert, key)]
    for t in targets:
        t.start()
    try:
        print(f"{'scenario':12} {'target':9} {'req/s':>9} {'us/req':>8} {'errors':>7}   us/req ratio")
        for scenario in args.scenarios.split(","):
            if scenario == "idle-10k":
                kib = {t.name: idle_memory(t) for t in targets}
                ratio = kib["preforkd"] / max(kib["nginx"], 1)
                for t in targets:
                    print(f"{scenario:12} {t.name:9} {'':>9} {'':>8} {'':>7}   PSS {kib[t.name] / 1024:.1f} MiB")
                print(f"{'':12} preforkd/nginx memory: {ratio:.2f}")
                continue
            for t in targets:
                h2load(t, scenario, max(args.requests // 10, 1000))  # warm-up
            runs = {t.name: [h2load(t, scenario, args.requests) for _ in range(1)] for t in targets}
            for _ in range(args.runs - 1):
                for t in targets:
                    runs[t.name].append(h2load(t, scenario, args.requests))
            ratios = [a["us"] / b["us"] for a, b in zip(runs["preforkd"], runs["nginx"])]
            for t in targets:
                r = runs[t.name]
                print(f"{scenario:12} {t.name:9} {statistics.median(x['rps'] for x in r):9.0f} "
                      f"{statistics.median(x['us'] for x in r):8.2f} {sum(x['errors'] for x in r):7d}"
                      + (f"   {statistics.median(ratios):.2f} ({min(ratios):.2f} - {max(ratios):.2f})"
                         if t.name == "preforkd" else ""))
            sys.stdout.flush()
    finally:
        for t in targets:
            t.stop()


if __name__ == "__main__":
    main()
