#!/usr/bin/env bash
# Builds the schedule benchmark (release) and the peers, then compares Octopus with croniter and node's setInterval.
#   Benchmarks/run-schedule-benchmark.sh [ROUNDS=3]
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-3}

python3 -c "import croniter" 2>/dev/null || pip install -q croniter
command -v node >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs; }
swift build -c release --product ScheduleBenchmark >/dev/null
BIN=$(swift build -c release --show-bin-path)
OUT=.build/bench-peers
mkdir -p "$OUT"
cp "$BIN/ScheduleBenchmark" "$OUT/ScheduleBenchmark"
cc -O2 -o "$OUT/timer" Benchmarks/peers/timer.c
python3 Benchmarks/run_schedule_benchmark.py "$ROUNDS" "$OUT"
