#!/usr/bin/env bash
# The process model's figures, release build: start-to-ready of master + agent + 4 workers beside one plain start of
# the same binary (interleaved rounds); the messenger worker -> agent -> worker and `call`, from the global pool and
# from the messenger's executor, beside egg's transport (Node's cluster IPC through the master, when node is here);
# 1,000,000 lines into one file from one process and from two workers, plain and rolled (interleaved rounds); a
# tick handed out -> its run begun, in one process and from the agent to a worker; the cluster client: invoke through
# a follower beside the same call in the leader's process and a raw RPC call, fan-out to 1/4/16 subscriber processes,
# failover over KILLS leader kills.
#   Benchmarks/run-cluster-benchmark.sh [ROUNDS=10] [MESSAGES=100000] [LINES=1000000] [TICKS=500] [CALLS=20000] [KILLS=20]
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-10}
MESSAGES=${2:-100000}
LINES=${3:-1000000}
TICKS=${4:-500}
CALLS=${5:-20000}
KILLS=${6:-20}
swift build -c release --product octopus >/dev/null
swift build -c release --product ClusterBenchmark >/dev/null
BIN=$(swift build -c release --show-bin-path)
"$BIN/ClusterBenchmark" startup "$BIN/octopus" "$ROUNDS"
"$BIN/ClusterBenchmark" messenger "$MESSAGES"
"$BIN/ClusterBenchmark" logs "$(( ROUNDS < 5 ? ROUNDS : 5 ))" "$LINES"
"$BIN/ClusterBenchmark" dispatch "$TICKS"
"$BIN/ClusterBenchmark" client "$CALLS" "$CALLS" "$KILLS"
if command -v node >/dev/null; then
    node Benchmarks/peers/node_messenger.js "$MESSAGES"
else
    echo "node not found: the Node cluster IPC peer is skipped"
fi
