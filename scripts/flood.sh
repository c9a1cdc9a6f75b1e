#!/usr/bin/env bash
# Connection floods (issue 16), not part of `cargo test`: for each of three
# floods (idle, slowloris, keepalive; 3,000 connections from 127.0.0.2,
# 15 s each), a fresh release-build preforkd with 2 workers and default
# settings, and a legit client on 127.0.0.1 sending one request every 0.2 s
# with a 3 s timeout (scripts/flood.py). Prints, per flood, the legit
# requests answered, their latency, what the attacker saw, and what the
# server evicted (from its workers' exit lines).
#   scripts/flood.sh [--nginx]   (--nginx: the same floods against nginx)
# Loopback only; every run is bounded in time; stops only what it started.
set -euo pipefail
cd "$(dirname "$0")/.."

CONNS=${CONNS:-3000}
SECONDS_EACH=${SECONDS_EACH:-15}
FLOODS=${FLOODS:-"idle slowloris keepalive"}
# Extra preforkd config lines, e.g. EXTRA='max_connections_per_client = 0'
# to see room-making at worker_connections do the work alone.
EXTRA=${EXTRA:-}
# 3,000 attacker sockets in this shell's python, as many in the server.
ulimit -n "$(ulimit -Hn)"
[ "$(ulimit -n)" -ge $((CONNS * 2 + 1000)) ] || { echo "ulimit -n too low: $(ulimit -n)" >&2; exit 1; }

cargo build --release --quiet
bin=target/release/preforkd
tmp=$(mktemp -d)
server=
cleanup() {
    if [ -n "$server" ] && kill -0 "$server" 2>/dev/null; then kill -KILL "$server" 2>/dev/null || true; fi
    rm -rf "$tmp"
}
trap cleanup EXIT

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

wait_listening() { # port
    for _ in $(seq 100); do
        if python3 -c "import socket,sys; socket.create_connection(('127.0.0.1',$1),timeout=0.2).close()" 2>/dev/null; then
            return 0
        fi
        sleep 0.1
    done
    echo "server did not listen on $1" >&2
    return 1
}

stop_server() { # signal
    kill -"$1" "$server"
    for _ in $(seq 400); do
        kill -0 "$server" 2>/dev/null || break
        sleep 0.1
    done
    wait "$server" 2>/dev/null || true
    server=
}

run_preforkd() { # flood
    local port; port=$(free_port)
    cat >"$tmp/preforkd.toml" <<EOF
listen = ["127.0.0.1:$port"]
workers = 2
$EXTRA
[log]
target = "stderr"
level = "info"
EOF
    "$bin" -c "$tmp/preforkd.toml" 2>"$tmp/$1.log" &
    server=$!
    wait_listening "$port"
    local line; line=$(python3 scripts/flood.py "$port" "$1" "$CONNS" "$SECONDS_EACH")
    stop_server QUIT
    # What the workers evicted, summed over their exit lines, and what the
    # log said about it (one line per cause per episode).
    local evicted; evicted=$(grep -o 'exiting: requests=.*' "$tmp/$1.log" | tr ' ' '\n' | grep '=' |
        awk -F= '{s[$1]+=$2} END {for (k in s) if (k != "requests") printf "%s=%d ", k, s[k]}' | tr ' ' '\n' | sort | tr '\n' ' ')
    local warned; warned=$(grep -c 'pressure' "$tmp/$1.log" || true)
    echo "preforkd $line"
    echo "    server: ${evicted:-nothing evicted} pressure_log_lines=$warned"
    grep -o 'pressure: [a-z_ ]*\(=[^;]*\)\?' "$tmp/$1.log" | sort | uniq -c | sed 's/^/    log: /' || true
}

run_nginx() { # flood
    local port; port=$(free_port)
    mkdir -p "$tmp/nginx"
    cat >"$tmp/nginx/nginx.conf" <<EOF
daemon off;
worker_processes 2;
worker_rlimit_nofile 20000;
pid $tmp/nginx/nginx.pid;
error_log $tmp/nginx/error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path $tmp/nginx; proxy_temp_path $tmp/nginx; fastcgi_temp_path $tmp/nginx;
    uwsgi_temp_path $tmp/nginx; scgi_temp_path $tmp/nginx;
    server { listen 127.0.0.1:$port; location / { return 200 "Hello, World!\n"; } }
}
EOF
    /usr/sbin/nginx -p "$tmp/nginx/" -c "$tmp/nginx/nginx.conf" -e "$tmp/nginx/error.log" &
    server=$!
    wait_listening "$port"
    local line; line=$(python3 scripts/flood.py "$port" "$1" "$CONNS" "$SECONDS_EACH")
    stop_server QUIT
    echo "nginx    $line"
    echo "    server: $(grep -c 'worker_connections are not enough' "$tmp/nginx/error.log" || true) 'worker_connections are not enough' lines"
}

for flood in $FLOODS; do
    run_preforkd "$flood"
    if [ "${1:-}" = --nginx ] && [ -x /usr/sbin/nginx ]; then
        run_nginx "$flood"
    fi
done
