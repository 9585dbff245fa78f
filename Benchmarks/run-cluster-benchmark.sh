#!/usr/bin/env bash
# The process model's figures, release build: start-to-ready of master + agent + 4 workers beside one plain start of
# the same binary (interleaved rounds); then the messenger worker -> agent -> worker and `call`, from the global pool
# and from the messenger's executor, beside egg's transport (Node's cluster IPC through the master, when node is here).
#   Benchmarks/run-cluster-benchmark.sh [ROUNDS=10] [MESSAGES=100000]
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-10}
MESSAGES=${2:-100000}
swift build -c release --product octopus >/dev/null
swift build -c release --product ClusterBenchmark >/dev/null
BIN=$(swift build -c release --show-bin-path)
"$BIN/ClusterBenchmark" startup "$BIN/octopus" "$ROUNDS"
"$BIN/ClusterBenchmark" messenger "$MESSAGES"
if command -v node >/dev/null; then
    node Benchmarks/peers/node_messenger.js "$MESSAGES"
else
    echo "node not found: the Node cluster IPC peer is skipped"
fi
