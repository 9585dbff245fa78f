#!/usr/bin/env python3
"""Runs the common log workload through Octopus and its peers, interleaved in one run, and compares them.

Each round runs every implementation once, in turn, on the same machine state; the table reports medians and
the ratio Octopus / peer, because on a shared machine absolute figures drift while ratios hold. Every file an
implementation writes is verified: exactly N lines, each the expected line for its n, in order.

    Benchmarks/run-log-benchmark.sh [N] [ROUNDS]     (builds everything, then runs this)
"""
import os
import re
import statistics
import subprocess
import sys
import tempfile

N = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
ROUNDS = int(sys.argv[2]) if len(sys.argv) > 2 else 5
BIN = sys.argv[3]  # the folder with LogBenchmark, c_limit and spdlog_basic
HERE = os.path.dirname(os.path.abspath(__file__))

LINE = re.compile(
    rb"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} \[(INFO|info)\] app - user 12345 logged in from 10\.0\.0\.1 reqid=abcdef0123 n=(\d+)$"
)

IMPLEMENTATIONS = [
    ("octopus", lambda out: [f"{BIN}/LogBenchmark", out, str(N)]),
    ("spdlog-basic", lambda out: [f"{BIN}/spdlog_basic", out, str(N)]),
    ("python-logging", lambda out: [sys.executable, f"{HERE}/peers/python_logging.py", out, str(N)]),
    ("c-limit", lambda out: [f"{BIN}/c_limit", out, str(N)]),
]
# swift-log with a handler that does nothing but read the message: what every swift-log backend pays first.
FLOOR = lambda: [f"{BIN}/LogBenchmark", "floor", str(N)]


def run(command):
    """Runs a command; returns its key=value output."""
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = process.communicate()
    if process.returncode != 0:
        sys.exit(f"{command[0]} failed ({process.returncode}): {err.decode()}")
    fields = dict(pair.split("=", 1) for pair in out.decode().split() if "=" in pair)
    return fields


def peak_rss_mib(command):
    """Peak RSS of one more run of the command, read from the kernel by wait4, the same way for every implementation."""
    pid = os.fork()
    if pid == 0:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
        os.execv(command[0], command)
    _, status, usage = os.wait4(pid, 0)
    return usage.ru_maxrss / 1024


def verify(path):
    """Exactly N lines, each the expected line, n in order. Returns an error string or None."""
    expected = 0
    with open(path, "rb") as f:
        for line in f:
            match = LINE.match(line.rstrip(b"\n"))
            if not match or not line.endswith(b"\n"):
                return f"line {expected + 1} malformed: {line[:120]!r}"
            if int(match.group(2)) != expected:
                return f"line {expected + 1} has n={match.group(2).decode()}, expected {expected}"
            expected += 1
    return None if expected == N else f"{expected} lines, expected {N}"


def main():
    floor = []
    results = {name: {"lines_per_s": [], "MB_per_s": [], "rss": [], "p50": [], "p99": []} for name, _ in IMPLEMENTATIONS}
    with tempfile.TemporaryDirectory(prefix="octopus-bench-") as directory:
        for round_number in range(1, ROUNDS + 1):
            for name, make in IMPLEMENTATIONS:
                out = os.path.join(directory, f"{name}.log")
                if os.path.exists(out):
                    os.remove(out)
                fields = run(make(out))
                problem = verify(out)
                if problem:
                    sys.exit(f"{name}: verification failed: {problem}")
                size = os.path.getsize(out)
                secs = float(fields["secs"])
                results[name]["lines_per_s"].append(N / secs)
                results[name]["MB_per_s"].append(size / 1e6 / secs)
                if "p50_ns" in fields:
                    results[name]["p50"].append(int(fields["p50_ns"]))
                    results[name]["p99"].append(int(fields["p99_ns"]))
                os.remove(out)
                results[name]["rss"].append(peak_rss_mib(make(out)))
                os.remove(out)
            floor.append(float(run(FLOOR())["lines_per_s"]))
            print(f"round {round_number}/{ROUNDS}: " + ", ".join(
                f"{name} {results[name]['lines_per_s'][-1] / 1e6:.2f} M/s" for name, _ in IMPLEMENTATIONS), flush=True)

    octopus = statistics.median(results["octopus"]["lines_per_s"])
    print()
    print(f"Common log workload: {N:,} lines of ~100 bytes into one file, {ROUNDS} interleaved rounds, medians; "
          "every file verified line by line.")
    print()
    print("| implementation | lines/s | MB/s | peak RSS | Octopus / this |")
    print("|---|---:|---:|---:|---:|")
    for name, _ in IMPLEMENTATIONS:
        r = results[name]
        speed = statistics.median(r["lines_per_s"])
        print(f"| {name} | {speed / 1e6:.2f} M | {statistics.median(r['MB_per_s']):.0f} | "
              f"{max(r['rss']):.1f} MiB | {octopus / speed:.2f}× |")
    print(f"| swift-log floor (no backend work, nothing written) | {statistics.median(floor) / 1e6:.2f} M | – | – | "
          f"{octopus / statistics.median(floor):.2f}× |")
    p50 = statistics.median(results["octopus"]["p50"])
    p99 = statistics.median(results["octopus"]["p99"])
    print()
    print(f"Octopus latency of one `logger.info` call (1 in 64 calls timed): p50 {p50:.0f} ns, p99 {p99:.0f} ns.")


if __name__ == "__main__":
    main()
