#!/usr/bin/env python3
"""preforkd against nginx (and, when it is there, the "floor" server of
../shared/bench/limit.c) on loopback with wrk: server CPU microseconds per
request, req/s, p99 latency and memory (PSS), as a table with ratios and an
SVG chart.

Method (the same as the shared harness): W=1 worker, servers pinned to CPU
0 and wrk to CPU 1; each scenario gets a warm-up, then R runs interleaved
A B C A B C ...; server CPU is read from /proc/PID/task/*/schedstat of every
process of the server before and after each run, so us/req does not depend
on who was the bottleneck (wrk costs about as much as the server). Medians
are reported; ratios are medians of per-run pairs.

Usage: bench/run.sh [-r RUNS] [-d SECONDS] [-s ka-64,close-64,pipe-16,ka-1000] [--svg FILE]
Needs: wrk, nginx (Debian: apt-get install wrk nginx-light), gcc for the floor.
"""
import argparse
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(HERE)
BODY = "Hello, World!\n"

PIPELINE_LUA = r"""
-- wrk: send `depth` pipelined GETs per write, the next batch after all answers.
local depth
init = function(args)
  depth = tonumber(args[1]) or 16
  local r = {}
  for i = 1, depth do r[i] = wrk.format(nil, "/") end
  req = table.concat(r)
end
request = function() return req end
response = function() end
"""


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def session_pids(sid):
    """All processes of a session (a server and its workers)."""
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            if int(fields[3]) == sid and fields[0] != "Z":
                out.append(int(entry))
        except (OSError, IndexError, ValueError):
            pass
    return out


def cpu_ns(pids):
    total = 0
    for pid in pids:
        try:
            for tid in os.listdir(f"/proc/{pid}/task"):
                with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                    total += int(f.read().split()[0])
        except OSError:
            pass
    return total


def pss_kib(pids):
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/smaps_rollup") as f:
                for line in f:
                    if line.startswith("Pss:"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total


class Target:
    def __init__(self, name, argv, port, tmp):
        self.name, self.argv, self.port, self.tmp = name, argv, port, tmp
        self.proc = None

    def start(self):
        log = open(os.path.join(self.tmp, f"{self.name}.log"), "w")
        self.proc = subprocess.Popen(["taskset", "-c", "0"] + self.argv, stdin=subprocess.DEVNULL,
                                     stdout=log, stderr=log, start_new_session=True)
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                if self.ready():
                    return
            except OSError:
                pass
            time.sleep(0.05)
        sys.exit(f"bench: {self.name} did not start (see {self.tmp}/{self.name}.log)")

    def ready(self):
        """`GET /` answers 200."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
            s.sendall(b"GET / HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n")
            data = b""
            while chunk := s.recv(4096):
                data += chunk
        return data.startswith(b"HTTP/1.1 200")

    def pids(self):
        return session_pids(self.proc.pid)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        for pid in self.pids() if self.proc else []:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass


def nginx_conf(tmp, workers, server, http="", main=""):
    """nginx's config for the anchors (W workers, no access log, keep-alive
    without a request limit), with `server` lines (listen and more) in
    front of `location /` answering BODY; written to tmp, its path."""
    conf = os.path.join(tmp, "nginx.conf")
    with open(conf, "w") as f:
        f.write(f"""daemon off;
worker_processes {workers};
pid {tmp}/nginx.pid;
error_log {tmp}/nginx-error.log warn;
{main}
events {{ worker_connections 16384; }}
http {{
  access_log off;
  default_type text/plain;
  keepalive_timeout 65s;
  keepalive_requests 1000000000;
  {http}
  client_body_temp_path {tmp}/body; proxy_temp_path {tmp}/proxy; fastcgi_temp_path {tmp}/fcgi;
  uwsgi_temp_path {tmp}/uwsgi; scgi_temp_path {tmp}/scgi;
  server {{
    {server}
    location / {{ return 200 "{BODY.encode('unicode_escape').decode()}"; }}
  }}
}}
""")
    return conf


def nginx_target(tmp, port, workers):
    conf = nginx_conf(tmp, workers, f"listen 127.0.0.1:{port} backlog=4096;")
    return Target("nginx", ["nginx", "-c", conf, "-p", tmp], port, tmp)


def preforkd_target(tmp, port, workers, binary):
    conf = os.path.join(tmp, "preforkd.toml")
    with open(conf, "w") as f:
        f.write(f'listen = ["127.0.0.1:{port}"]\nworkers = {workers}\nbacklog = 4096\n'
                f'worker_connections = 16384\nkeepalive_timeout = "65s"\n[log]\ntarget = "stderr"\nlevel = "warn"\n')
    return Target("preforkd", [binary, "-c", conf], port, tmp)


def floor_target(tmp, port, workers):
    src = os.path.join(TOP, "..", "shared", "bench", "limit.c")
    if not os.path.exists(src) or not shutil.which("cc"):
        return None
    binary = os.path.join(tmp, "limit")
    subprocess.run(["cc", "-O2", "-o", binary, src], check=True)
    return Target("floor", [binary, "-p", str(port), "-w", str(workers)], port, tmp)


def wrk(target, scenario, seconds, tmp):
    kind, n = scenario.split("-")
    n = int(n)
    url = f"http://127.0.0.1:{target.port}/"
    cmd = ["taskset", "-c", "1", "wrk", "-t1", "--latency", "-d", f"{seconds}s"]
    if kind == "ka":
        cmd += ["-c", str(n), url]
    elif kind == "close":
        cmd += ["-c", str(n), "-H", "Connection: close", url]
    elif kind == "pipe":
        lua = os.path.join(tmp, "pipeline.lua")
        with open(lua, "w") as f:
            f.write(PIPELINE_LUA)
        cmd += ["-c", "64", "-s", lua, url, "--", str(n)]
    else:
        sys.exit(f"bench: unknown scenario {scenario}")
    pids = target.pids()
    before = cpu_ns(pids)
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    time.sleep(seconds * 0.8)
    pss = pss_kib(target.pids())
    out, _ = proc.communicate(timeout=seconds + 30)
    after = cpu_ns(target.pids())
    m = re.search(r"(\d+) requests in", out)
    requests = int(m.group(1)) if m else 0
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)) if "Requests/sec" in out else 0.0
    p99 = None
    m = re.search(r"99%\s+([\d.]+)(us|ms|s)\b", out)
    if m and kind != "pipe":  # wrk's latency correction breaks percentiles when pipelining
        p99 = float(m.group(1)) * {"us": 1, "ms": 1000, "s": 1e6}[m.group(2)]
    errors = 0
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if m:
        errors = sum(int(x) for x in m.groups())
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    non2xx = int(m.group(1)) if m else 0
    us_per_req = (after - before) / 1000 / requests if requests else float("nan")
    return {"rps": rps, "us": us_per_req, "p99": p99, "pss": pss / 1024, "errors": errors, "non2xx": non2xx}


def svg_chart(results, scenarios, names, path):
    """Grouped bars of us/req per scenario, one colour per server."""
    colours = {"preforkd": "#2b7bb9", "nginx": "#4caf50", "floor": "#9e9e9e"}
    width, height, left, top, bottom = 760, 360, 60, 40, 60
    plot_w, plot_h = width - left - 20, height - top - bottom
    vmax = max(statistics.median(r["us"] for r in results[(n, s)]) for n in names for s in scenarios) * 1.15
    group_w = plot_w / len(scenarios)
    bar_w = group_w * 0.8 / len(names)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="12">',
             f'<rect width="{width}" height="{height}" fill="white"/>',
             f'<text x="{width / 2}" y="20" text-anchor="middle" font-size="14">server CPU per request (µs, lower is better), W=1</text>']
    for i in range(5):
        v = vmax * i / 4
        y = top + plot_h - plot_h * i / 4
        parts.append(f'<line x1="{left}" y1="{y:.1f}" x2="{width - 20}" y2="{y:.1f}" stroke="#ddd"/>')
        parts.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{v:.1f}</text>')
    for si, s in enumerate(scenarios):
        x0 = left + si * group_w + group_w * 0.1
        for ni, n in enumerate(names):
            v = statistics.median(r["us"] for r in results[(n, s)])
            h = plot_h * v / vmax
            x = x0 + ni * bar_w
            parts.append(f'<rect x="{x:.1f}" y="{top + plot_h - h:.1f}" width="{bar_w - 2:.1f}" height="{h:.1f}" fill="{colours.get(n, "#888")}"/>')
            parts.append(f'<text x="{x + bar_w / 2 - 1:.1f}" y="{top + plot_h - h - 4:.1f}" text-anchor="middle" font-size="10">{v:.2f}</text>')
        parts.append(f'<text x="{left + si * group_w + group_w / 2:.1f}" y="{top + plot_h + 18}" text-anchor="middle">{s}</text>')
    for ni, n in enumerate(names):
        x = left + ni * 120
        parts.append(f'<rect x="{x}" y="{height - 22}" width="12" height="12" fill="{colours.get(n, "#888")}"/>')
        parts.append(f'<text x="{x + 16}" y="{height - 12}">{n}</text>')
    parts.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(parts) + "\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-r", "--runs", type=int, default=3)
    ap.add_argument("-d", "--duration", type=int, default=5)
    ap.add_argument("-s", "--scenarios", default="ka-64,close-64,pipe-16,ka-1000")
    ap.add_argument("--binary", default=os.path.join(TOP, "target", "release", "preforkd"))
    ap.add_argument("--svg", default=os.path.join(HERE, "results.svg"))
    args = ap.parse_args()
    for tool in ("wrk", "nginx", "taskset"):
        if not shutil.which(tool):
            sys.exit(f"bench: {tool} not found (Debian: apt-get install wrk nginx-light util-linux)")
    scenarios = args.scenarios.split(",")
    tmp = tempfile.mkdtemp(prefix="preforkd-bench-")
    targets = [preforkd_target(tmp, free_port(), 1, args.binary), nginx_target(tmp, free_port(), 1)]
    floor = floor_target(tmp, free_port(), 1)
    if floor:
        targets.append(floor)
    names = [t.name for t in targets]
    results = {(n, s): [] for n in names for s in scenarios}
    try:
        for t in targets:
            t.start()
        with open(f"/proc/loadavg") as f:
            load = f.read().split()[:3]
        print(f"# {time.strftime('%Y-%m-%d %H:%M:%S')}  {os.cpu_count()} CPUs  load {' '.join(load)}  "
              f"servers on CPU 0, wrk on CPU 1, W=1, {args.runs} x {args.duration}s runs")
        for s in scenarios:
            for t in targets:
                wrk(t, s, 1, tmp)  # warm-up
            for r in range(args.runs):
                for t in targets:
                    results[(t.name, s)].append(wrk(t, s, args.duration, tmp))
                    print(f"# {t.name:9s} {s:9s} run {r + 1}: {results[(t.name, s)][-1]['rps']:>10.0f} req/s "
                          f"{results[(t.name, s)][-1]['us']:6.2f} us/req", flush=True)
    finally:
        for t in targets:
            t.stop()

    med = lambda n, s, k: statistics.median(x[k] for x in results[(n, s)] if x[k] is not None) \
        if any(x[k] is not None for x in results[(n, s)]) else None
    print()
    print(f"{'server':9s} {'scenario':9s} {'req/s':>9s} {'us/req':>7s} {'p99 us':>8s} {'PSS MiB':>8s} {'errors':>6s}"
          + "".join(f" {'us/req vs ' + o:>16s}" for o in names if o != "preforkd"))
    for s in scenarios:
        for n in names:
            row = f"{n:9s} {s:9s} {med(n, s, 'rps'):9.0f} {med(n, s, 'us'):7.2f} "
            p99 = med(n, s, "p99")
            row += f"{p99:8.0f} " if p99 is not None else f"{'-':>8s} "
            row += f"{med(n, s, 'pss'):8.2f} {sum(x['errors'] + x['non2xx'] for x in results[(n, s)]):6d}"
            if n == "preforkd":
                for o in names:
                    if o != "preforkd":
                        pairs = [a["us"] / b["us"] for a, b in zip(results[(n, s)], results[(o, s)])]
                        row += f" {statistics.median(pairs):16.2f}"
            print(row)
    svg_chart(results, scenarios, names, args.svg)
    print(f"\nchart: {args.svg}")


if __name__ == "__main__":
    main()
