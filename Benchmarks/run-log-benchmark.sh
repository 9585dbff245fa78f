#!/usr/bin/env bash
# Builds Octopus's log benchmark (release) and the peers, then runs them interleaved and prints a comparison.
#   Benchmarks/run-log-benchmark.sh [N=1000000] [ROUNDS=5]
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-1000000}
ROUNDS=${2:-5}

if ! pkg-config --exists spdlog 2>/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libspdlog-dev
fi
swift build -c release --product LogBenchmark >/dev/null
BIN=$(swift build -c release --show-bin-path)
OUT=.build/bench-peers
mkdir -p "$OUT"
cp "$BIN/LogBenchmark" "$OUT/LogBenchmark"
cc -O2 -o "$OUT/c_limit" Benchmarks/peers/c_limit.c
g++ -O2 -std=c++17 -o "$OUT/spdlog_bench" Benchmarks/peers/spdlog_bench.cpp $(pkg-config --cflags --libs spdlog)
python3 Benchmarks/run_log_benchmark.py "$N" "$ROUNDS" "$OUT"
