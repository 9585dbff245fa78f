#!/usr/bin/env bash
# Heap allocations per log line on the hot path: runs the log benchmark (release) with N and 2N lines under a
# malloc-counting preload and prints the allocations per line of each, beside swift-log's floor (a handler that does
# nothing: the message string the caller's interpolation makes is allocated there, before any backend runs), and the
# direct call (`logger.direct.info`), whose message is interpolated into memory on the stack.
#   Benchmarks/count-allocations.sh [N=200000]
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-200000}
swift build -c release --product LogBenchmark >/dev/null
BIN=$(swift build -c release --show-bin-path)
OUT=.build/bench-peers
mkdir -p "$OUT"
cc -O2 -shared -fPIC -o "$OUT/malloc_count.so" Benchmarks/peers/malloc_count.c -ldl
count() { LD_PRELOAD="$PWD/$OUT/malloc_count.so" "$BIN/LogBenchmark" "$@" 2>&1 >/dev/null | sed -n 's/^allocations=//p' | tail -1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for run in "floor" "plain" "plain --threads 4" "plain --layout basic --metadata" "plain --direct" "plain --direct --threads 4"; do
    set -- $run
    if [ "$1" = floor ]; then a=$(count floor "$N"); b=$(count floor $((2 * N))); name="swift-log floor"
    else shift; a=$(count "$@" "$work/a.log" "$N"); b=$(count "$@" "$work/b.log" $((2 * N))); name="octopus $run"; fi
    awk -v name="$name" -v a="$a" -v b="$b" -v n="$N" 'BEGIN { v = (b - a) / n; if (v < 0 && v > -0.0005) v = 0; printf "%-40s %.3f allocations per line (%d for %d lines, %d for %d)\n", name, v, a, n, b, 2 * n }'
done
