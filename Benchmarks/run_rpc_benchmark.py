#!/usr/bin/env python3
"""RPC round trips: Octopus (a branch calling a master's typed action over a Unix socket, two processes) beside the
C ping-pong floor (one blocking 64-byte write/read per round trip) and the NIO floor (64 bytes echoed by bare NIO
channel handlers: epoll, non-blocking read and write, no framing, no Swift tasks), in the same run.

    Benchmarks/run-rpc-benchmark.sh [CALLS] [ROUNDS]     (builds everything, then runs this)

Each round runs, pinned to CPU 0 (`taskset -c 0` on both processes) and unpinned: the C floor; the NIO floor; Octopus one call
at a time from a task on the global pool, and from a task that prefers the branch's event-loop executor; Octopus
with 64 calls in flight (2x CALLS calls), from the pool and from the executor. Rounds are interleaved; the tables give medians.
The Octopus / C floor column is the median of the rounds' ratios. Pinned figures are the steadier ones: unpinned, each hand-off between two idle cores pays a wake-up.
"""
import contextlib
import re
import statistics
import subprocess
import sys
import tempfile

CALLS = int(sys.argv[1]) if len(sys.argv) > 1 else 100000
ROUNDS = int(sys.argv[2]) if len(sys.argv) > 2 else 3
BIN = sys.argv[3]


def parse(text):
    client = re.search(r"rt_per_s=(\d+) mean_us=([\d.]+) p50_us=([\d.]+) p99_us=([\d.]+)", text)
    aggregate = re.search(r"aggregate_rt_per_s=(\d+)", text)
    if not client or not aggregate:
        raise SystemExit("unexpected output:\n" + text)
    return {"rate": float(aggregate.group(1)), "p50": float(client.group(3)), "p99": float(client.group(4))}


def run_c(pin):
    out = subprocess.run(pin + [f"{BIN}/pingpong", "unix", str(CALLS), "1"], capture_output=True, text=True, check=True)
    return parse(out.stdout)


@contextlib.contextmanager
def server(pin, command):
    """Starts `RPCBenchmark COMMAND PATH` (it prints "ready" once listening, and stops when its stdin closes)."""
    path = tempfile.mktemp(prefix="octo-rpc-bench-", suffix=".sock", dir="/tmp")
    process = subprocess.Popen(pin + [f"{BIN}/RPCBenchmark", command, path], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert process.stdout.readline().strip() == "ready"
    try:
        yield path
    finally:
        process.stdin.close()
        process.wait(timeout=30)


def client(pin, *arguments):
    out = subprocess.run(pin + [f"{BIN}/RPCBenchmark", *arguments], capture_output=True, text=True, check=True)
    return parse(out.stdout)


def run_nio(pin):
    with server(pin, "echo-serve") as path:
        return client(pin, "echo-client", path, str(CALLS))


def run_octopus(pin):
    with server(pin, "serve") as path:
        return {name: client(pin, "client", path, str(calls), str(inflight), *extra)
                for name, calls, inflight, extra in [("octopus-1", CALLS, 1, []), ("octopus-1-loop", CALLS, 1, ["loop"]),
                                                     ("octopus-64", 2 * CALLS, 64, []),
                                                     ("octopus-64-loop", 2 * CALLS, 64, ["loop"])]}


modes = {"pinned to one CPU": ["taskset", "-c", "0"], "unpinned": []}
samples = {mode: {"c": [], "nio": [], "octopus-1": [], "octopus-1-loop": [], "octopus-64": [], "octopus-64-loop": []}
           for mode in modes}
for r in range(ROUNDS):
    for mode, pin in modes.items():
        samples[mode]["c"].append(run_c(pin))
        samples[mode]["nio"].append(run_nio(pin))
        for name, result in run_octopus(pin).items():
            samples[mode][name].append(result)
        s = samples[mode]
        print(f"round {r + 1}/{ROUNDS} {mode}: C {s['c'][-1]['rate']:.0f}/s, NIO {s['nio'][-1]['rate']:.0f}/s, octopus one at a time "
              f"{s['octopus-1'][-1]['rate']:.0f}/s (on the loop {s['octopus-1-loop'][-1]['rate']:.0f}/s), 64 in flight "
          f"{s['octopus-64'][-1]['rate']:.0f}/s (on the loop {s['octopus-64-loop'][-1]['rate']:.0f}/s)", flush=True)


def med(rows, key):
    return statistics.median(row[key] for row in rows)


print(f"\nRound trips over a Unix socket ({CALLS} calls one at a time, {2 * CALLS} with 64 in flight; "
      f"medians of {ROUNDS} rounds):\n")
print("| CPUs | implementation | round trips/s | p50 µs | p99 µs | Octopus / C floor |")
print("|---|---|---:|---:|---:|---:|")
for mode in modes:
    s = samples[mode]
    labels = {"c": "C ping-pong floor (blocking write/read, 64 B)",
              "nio": "NIO floor (bare channel handlers echoing 64 B)",
              "octopus-1": "Octopus typed call, one at a time",
              "octopus-1-loop": "Octopus typed call, one at a time, caller on `branch.executor`",
              "octopus-64": "Octopus typed call, 64 in flight",
              "octopus-64-loop": "Octopus typed call, 64 in flight, callers on `branch.executor`"}
    for key, label in labels.items():
        rate = med(s[key], "rate")
        # The ratio is the median of each round's ratio (the C floor and Octopus ran seconds apart in a round).
        ratio = "–" if key == "c" else \
            f"{statistics.median(o['rate'] / c['rate'] for o, c in zip(s[key], s['c'])):.2f}×"
        print(f"| {mode} | {label} | {rate:,.0f} | {med(s[key], 'p50'):.1f} | {med(s[key], 'p99'):.1f} | {ratio} |")
