#!/usr/bin/env bash
# Builds the release binary and benchmarks its HTTP/2 against nginx's:
# bench/h2.sh [-r 3] [-n 200000] [-s h2c-64x10,tls-64x10,tls-new,idle-10k]
# Needs h2load, nginx and openssl: apt-get install nghttp2-client nginx-light openssl
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
exec python3 bench/h2.py "$@"
