#!/usr/bin/env bash
# Static files, preforkd against nginx (issue 19), on loopback only:
#   bench/files.sh [-d SECONDS] [-w WORKERS]
# Serves one directory (a 1 KiB and a 1 MiB file) with preforkd
# (`kind = "files"`) and with nginx twice (`root DIR; sendfile on;
# tcp_nopush on;` with `open_file_cache max=1000` and without), each server
# pinned to CPU 0 (taskset) with WORKERS workers (default 1), wrk on CPU 1;
# then loads each in turn with wrk (bounded: -d SECONDS, default 5) and
# prints req/s, MB/s and the ratio to nginx with open_file_cache.
# Scenarios: 1 KiB keep-alive, 64 connections (ka-64); 1 MiB, 16
# connections (the throughput one). Nothing else should run meanwhile; the
# figures of one run compare with each other, not across machines.
# Needs wrk and nginx (apt-get install wrk nginx-light) and a release build
# (target/release/preforkd; PREFORKD names another).
set -euo pipefail
cd "$(dirname "$0")/.."
duration=5 workers=1
while getopts d:w: opt; do
    case $opt in
    d) duration=$OPTARG ;;
    w) workers=$OPTARG ;;
    *) echo "usage: $0 [-d SECONDS] [-w WORKERS]" >&2; exit 2 ;;
    esac
done
bin=${PREFORKD:-target/release/preforkd}
for t in wrk nginx taskset; do
    command -v "$t" >/dev/null || { echo "$0: $t is not installed" >&2; exit 2; }
done
[ -x "$bin" ] || { echo "$0: no $bin (cargo build --release)" >&2; exit 2; }

dir=$(mktemp -d /tmp/preforkd-bench-files.XXXXXX)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    rm -rf "$dir"
}
trap cleanup EXIT
mkdir -p "$dir/www"
head -c 1024 /dev/urandom >"$dir/www/1k.bin"
head -c 1048576 /dev/urandom >"$dir/www/1m.bin"
chmod -R a+rX "$dir"

pf_port=18180 ng_port=18181 ng2_port=18182
cat >"$dir/preforkd.toml" <<CONF
listen = ["127.0.0.1:$pf_port"]
workers = $workers
backlog = 4096
worker_connections = 16384
keepalive_timeout = "65s"

[[route]]
prefix = "/"
kind = "files"
root = "$dir/www"

[log]
target = "stderr"
level = "warn"
CONF

nginx_conf() { # PORT NAME CACHE
    local user=""
    [ "$(id -u)" = 0 ] && user="user root root;"
    cat >"$dir/$2.conf" <<CONF
daemon off;
$user
pid $dir/$2.pid;
error_log $dir/$2.error.log warn;
worker_processes $workers;
events { worker_connections 16384; }
http {
  access_log off;
  default_type application/octet-stream;
  sendfile on;
  tcp_nopush on;
  keepalive_timeout 65s;
  keepalive_requests 1000000;
  $3
  client_body_temp_path $dir/$2.body;
  proxy_temp_path $dir/$2.proxy;
  fastcgi_temp_path $dir/$2.fastcgi;
  uwsgi_temp_path $dir/$2.uwsgi;
  scgi_temp_path $dir/$2.scgi;
  server {
    listen 127.0.0.1:$1 backlog=4096;
    root $dir/www;
  }
}
CONF
}
nginx_conf $ng_port nginx "open_file_cache max=1000;"
nginx_conf $ng2_port nginx-nocache ""

setsid taskset -c 0 "$bin" -c "$dir/preforkd.toml" 2>"$dir/preforkd.err" &
pids+=($!)
setsid taskset -c 0 nginx -p "$dir/" -c "$dir/nginx.conf" -e "$dir/nginx.error.log" &
pids+=($!)
setsid taskset -c 0 nginx -p "$dir/" -c "$dir/nginx-nocache.conf" -e "$dir/nginx-nocache.error.log" &
pids+=($!)

for port in $pf_port $ng_port $ng2_port; do
    ok=
    for _ in $(seq 100); do
        if [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/1k.bin")" = 200 ]; then
            ok=1
            break
        fi
        sleep 0.1
    done
    [ -n "$ok" ] || { echo "$0: nothing answers on port $port" >&2; cat "$dir"/*.err* >&2; exit 1; }
done

# wrk's summary: "req/s MB/s" (Requests/sec and Transfer/sec, in MB).
load() { # PORT PATH CONNECTIONS
    taskset -c 1 wrk -t1 -c"$3" -d"$duration" "http://127.0.0.1:$1$2" |
        awk '/^Requests\/sec/ { r = $2 }
             /^Transfer\/sec/ { v = $2; u = substr(v, length(v) - 1); v = v + 0
                                if (u == "GB") v *= 1024; else if (u == "KB") v /= 1024
                                printf "%s %.1f\n", r, v }
             /Non-2xx|Socket errors/ { print "wrk: " $0 > "/dev/stderr" }'
}

printf '%-12s %-22s %12s %10s %8s\n' scenario server req/s MB/s ratio
for scenario in "ka-64 /1k.bin 64" "1m-c16 /1m.bin 16"; do
    set -- $scenario
    name=$1 path=$2 conns=$3
    base=
    for target in "nginx+open_file_cache $ng_port" "nginx $ng2_port" "preforkd $pf_port"; do
        set -- $target
        read -r rps mbs < <(load "$2" "$path" "$conns")
        [ -n "$base" ] || base=$rps
        ratio=$(awk -v a="$rps" -v b="$base" 'BEGIN { printf "%.2f", a / b }')
        printf '%-12s %-22s %12s %10s %8s\n' "$name" "$1" "$rps" "$mbs" "$ratio"
    done
done
