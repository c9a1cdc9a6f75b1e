#!/usr/bin/env bash
# Kill storm: kill -9 of a random worker every 300 ms for 20 s under
# wrk -t1 -c64, keep-alive and then Connection: close, each after an
# unperturbed baseline; prints requests, socket errors by kind, kills and the
# longest stretch with no live worker, and checks the targets of issue 10.
#   scripts/chaos.sh [--nginx] [--seconds 20] [--interval-ms 300] [--workers 2]
#   scripts/chaos.sh --binary PATH ...   (a given binary; else builds release)
# Not part of `cargo test`: it runs for minutes. See scripts/chaos.py.
set -euo pipefail
cd "$(dirname "$0")/.."
case " $* " in
  *" --binary "*) ;;
  *) cargo build --release --quiet ;;
esac
exec python3 scripts/chaos.py "$@"
