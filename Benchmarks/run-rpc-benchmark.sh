#!/usr/bin/env bash
# Builds the RPC benchmark (release) and the C ping-pong floor, then compares them over a Unix socket,
# pinned to one CPU and unpinned.
#   Benchmarks/run-rpc-benchmark.sh [CALLS=100000] [ROUNDS=3]
set -euo pipefail
cd "$(dirname "$0")/.."
CALLS=${1:-100000}
ROUNDS=${2:-3}

command -v taskset >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq util-linux; }
swift build -c release --product RPCBenchmark >/dev/null
BIN=$(swift build -c release --show-bin-path)
OUT=.build/bench-peers
mkdir -p "$OUT"
cp "$BIN/RPCBenchmark" "$OUT/RPCBenchmark"
cc -O2 -o "$OUT/pingpong" Benchmarks/peers/pingpong.c
python3 Benchmarks/run_rpc_benchmark.py "$CALLS" "$ROUNDS" "$OUT"
