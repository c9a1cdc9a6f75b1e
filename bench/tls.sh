#!/bin/sh
# preforkd for `bench.sh --tls` (../shared/bench): bench.sh makes a
# self-signed ECDSA P-256 certificate and replaces {cert} and {key} only in
# the command's arguments, so this script writes the config that names them
# (beside the certificate, in bench.sh's temp dir), with the anchors'
# settings (backlog 4096, 16384 connections per worker, keep-alive 65 s, no
# access log), one TLS listener on 127.0.0.1:PORT, then execs preforkd: the
# process bench.sh started and measures is preforkd itself.
#
#   cargo build --release
#   ../shared/bench/bench.sh --tls --vs nginx -s ka-64,close-64 --name preforkd -- \
#       bench/tls.sh {cert} {key} {port} {workers}
#
# PREFORKD names the binary (default: target/release/preforkd beside this
# script's checkout); PROTOCOLS='"1.2", "1.3"' (the default) varies [tls].
set -eu
[ $# -eq 4 ] || { echo "usage: $0 CERT KEY PORT WORKERS" >&2; exit 2; }
cert=$1 key=$2 port=$3 workers=$4
here=$(cd "$(dirname "$0")" && pwd)
bin=${PREFORKD:-$here/../target/release/preforkd}
protocols=${PROTOCOLS:-'"1.2", "1.3"'}
[ -x "$bin" ] || { echo "$0: no preforkd at $bin (cargo build --release, or set PREFORKD)" >&2; exit 2; }
conf=$(dirname "$cert")/preforkd-tls.toml
cat >"$conf" <<CONF
listen = ["127.0.0.1:$port tls"]
workers = $workers
backlog = 4096
worker_connections = 16384
keepalive_timeout = "65s"

[tls]
certificate = "$cert"
key = "$key"
protocols = [$protocols]

[log]
target = "stderr"
level = "warn"
CONF
exec "$bin" -c "$conf"
