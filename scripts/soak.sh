#!/usr/bin/env bash
# Builds the release binary and runs the soak test against it:
#   scripts/soak.sh --minutes 10 [--workers 2]
# Not part of `cargo test`: it runs for minutes. See scripts/soak.py.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
exec python3 scripts/soak.py --binary target/release/preforkd "$@"
