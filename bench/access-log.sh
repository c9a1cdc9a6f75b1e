#!/bin/sh
# preforkd for `bench.sh --access-log` (../shared/bench): writes a config
# that logs as the nginx anchor does (combined, buffer 64k, flush 1s) to the
# file bench.sh names, with the anchors' settings (backlog 4096, 16384
# connections per worker, keep-alive 65 s), beside that file, then execs
# preforkd, so the process bench.sh started and measures is preforkd itself.
#
#   cargo build --release
#   ../shared/bench/bench.sh --access-log --vs nginx -s ka-64 --name preforkd -- \
#       bench/access-log.sh target/release/preforkd {access_log} -l 127.0.0.1:{port} -w {workers}
#
# The same build without an access log, for the "at most 10% above" check
# (compare us/req, and the us/req ratios to nginx of the two runs):
#
#   ../shared/bench/bench.sh --vs nginx -s ka-64 --name preforkd -- \
#       target/release/preforkd -c bench/no-access-log.toml -l 127.0.0.1:{port} -w {workers}
#
# FORMAT=json or FORMAT=common, BUFFER=0 etc. in the environment vary the log.
set -eu
[ $# -ge 2 ] || { echo "usage: $0 PREFORKD ACCESS_LOG [preforkd options]" >&2; exit 2; }
bin=$1 log=$2
shift 2
conf=$log.toml
cat >"$conf" <<CONF
backlog = 4096
worker_connections = 16384
keepalive_timeout = "65s"

[access_log]
path = "$log"
format = "${FORMAT:-combined}"
buffer = "${BUFFER:-64k}"
flush = "${FLUSH:-1s}"

[log]
target = "stderr"
level = "warn"
CONF
exec "$bin" -c "$conf" "$@"
