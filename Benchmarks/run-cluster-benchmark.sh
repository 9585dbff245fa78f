#!/usr/bin/env bash
# The process model's figures, release build: start-to-ready of master + agent + 4 workers beside one plain start of
# the same binary (interleaved rounds); the messenger worker -> agent -> worker and `call`, from the global pool and
# from the messenger's executor, beside egg's transport (Node's cluster IPC through the master, when node is here);
# 1,000,000 lines into one file from one process and from two workers, plain and rolled (interleaved rounds); a
# tick handed out -> its run begun, in one process and from the agent to a worker.
#   Benchmarks/run-cluster-benchmark.sh [ROUNDS=10] [MESSAGES=100000] [LINES=1000000] [TICKS=500]
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-10}
MESSAGES=${2:-100000}
LINES=${3:-1000000}
TICKS=${4:-500}
swift build -c release --product octopus >/dev/null
swift build -c release --product ClusterBenchmark >/dev/null
BIN=$(swift build -c release --show-bin-path)
"$BIN/ClusterBenchmark" startup "$BIN/octopus" "$ROUNDS"
"$BIN/ClusterBenchmark" messenger "$MESSAGES"
"$BIN/ClusterBenchmark" logs "$(( ROUNDS < 5 ? ROUNDS : 5 ))" "$LINES"
"$BIN/ClusterBenchmark" dispatch "$TICKS"
if command -v node >/dev/null; then
    node Benchmarks/peers/node_messenger.js "$MESSAGES"
else
    echo "node not found: the Node cluster IPC peer is skipped"
fi
