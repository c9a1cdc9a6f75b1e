#!/usr/bin/env bash
# Builds the release binary and benchmarks it against nginx (and the floor
# server of ../shared/bench when present): bench/run.sh [-r 5] [-d 5]
# Needs wrk and nginx: apt-get install wrk nginx-light
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
exec python3 bench/bench.py "$@"
