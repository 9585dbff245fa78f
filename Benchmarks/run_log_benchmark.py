#!/usr/bin/env python3
"""Runs the common log workload through Octopus and its peers, interleaved in one run, and compares them.

Each round runs every implementation once, in turn, on the same machine state; tables report medians and ratios,
because on a shared machine absolute figures drift while ratios hold. Every file an implementation writes is
verified: the lines it keeps are exactly the expected lines for their n, in order, ending with the last one (and
all N of them where nothing is deleted by retention).

    Benchmarks/run-log-benchmark.sh [N] [ROUNDS]     (builds everything, then runs this)
"""
import glob
import gzip
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time

N = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
ROUNDS = int(sys.argv[2]) if len(sys.argv) > 2 else 5
BIN = sys.argv[3]  # the folder with LogBenchmark, c_limit and spdlog_bench
HERE = os.path.dirname(os.path.abspath(__file__))
THREADS = 4

LINE = re.compile(
    rb"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} \[(INFO|info)\] app - user 12345 logged in from 10\.0\.0\.1 reqid=abcdef0123 n=(\d+)$"
)


def lines(path):
    """The lines of a file, read as a stream (the driver stays small: a child forked from it inherits its RSS)."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        for line in f:
            yield line.rstrip(b"\n")


class Malformed(Exception):
    pass


def numbers(files):
    """(file name, n) of every line of `files`, oldest first; raises Malformed at a line of another shape."""
    for path in files:
        for line in lines(path):
            match = LINE.match(line)
            if not match:
                raise Malformed(f"{os.path.basename(path)}: malformed line {line[:100]!r}")
            yield os.path.basename(path), int(match.group(2))


def verify(files, complete):
    """The lines of `files` (oldest first): well-formed, n consecutive, ending at N-1; all N when `complete`."""
    expected = None
    count = 0
    try:
        for name, n in numbers(files):
            if expected is not None and n != expected:
                return f"{name}: n={n} where {expected} was expected"
            expected = n + 1
            count += 1
    except Malformed as problem:
        return str(problem)
    if expected != N:
        return f"the last line is n={None if expected is None else expected - 1}, expected {N - 1}"
    if complete and count != N:
        return f"{count} lines, expected {N}"
    return None


def verify_threads(files, threads):
    """Lines logged by `threads` threads, thread t logging n = t*N/threads ... in order: every n once, each thread's
    in order (lines of different threads interleave)."""
    per = N // threads
    last = [t * per - 1 for t in range(threads)]
    count = 0
    try:
        for name, n in numbers(files):
            t = n // per
            if t >= threads or n != last[t] + 1:
                return f"{name}: n={n} out of its thread's order"
            last[t] = n
            count += 1
    except Malformed as problem:
        return str(problem)
    if count != per * threads:
        return f"{count} lines, expected {per * threads}"
    return None


def index_of(path, pattern):
    match = re.search(pattern, os.path.basename(path))
    return int(match.group(1)) if match else 0


# Each implementation: the command, where its files are (oldest first), and whether all N lines are kept (True), or
# the number of threads that logged them (every line kept, each thread's in order).
IMPLEMENTATIONS = {
    "octopus": (lambda d: [f"{BIN}/LogBenchmark", f"{d}/o.log", str(N)], lambda d: [f"{d}/o.log"], True),
    "octopus-direct": (lambda d: [f"{BIN}/LogBenchmark", "--direct", f"{d}/od.log", str(N)], lambda d: [f"{d}/od.log"], True),
    "spdlog-basic": (lambda d: [f"{BIN}/spdlog_bench", "basic", f"{d}/s.log", str(N)], lambda d: [f"{d}/s.log"], True),
    "python-logging": (lambda d: [sys.executable, f"{HERE}/peers/python_logging.py", f"{d}/p.log", str(N)], lambda d: [f"{d}/p.log"], True),
    "c-limit": (lambda d: [f"{BIN}/c_limit", f"{d}/c.log", str(N)], lambda d: [f"{d}/c.log"], True),
    "octopus-4-threads": (
        lambda d: [f"{BIN}/LogBenchmark", "--threads", str(THREADS), f"{d}/o4.log", str(N)], lambda d: [f"{d}/o4.log"], THREADS
    ),
    "octopus-direct-4-threads": (
        lambda d: [f"{BIN}/LogBenchmark", "--direct", "--threads", str(THREADS), f"{d}/od4.log", str(N)],
        lambda d: [f"{d}/od4.log"], THREADS
    ),
    "spdlog-basic_mt-4-threads": (
        lambda d: [f"{BIN}/spdlog_bench", "basic", f"{d}/s4.log", str(N), str(THREADS)], lambda d: [f"{d}/s4.log"], THREADS
    ),
    "octopus-rotating": (
        lambda d: [f"{BIN}/LogBenchmark", "--mode", "rotating", f"{d}/r.log", str(N)],
        lambda d: sorted(glob.glob(f"{d}/r.log.*.gz"), key=lambda p: -index_of(p, r"\.(\d+)\.gz$")) + [f"{d}/r.log"],
        False,
    ),
    "spdlog-rotating": (
        lambda d: [f"{BIN}/spdlog_bench", "rotating", f"{d}/sr.log", str(N)],
        lambda d: sorted(glob.glob(f"{d}/sr.*.log"), key=lambda p: -index_of(p, r"\.(\d+)\.log$")) + [f"{d}/sr.log"],
        False,
    ),
    "octopus-hourly": (
        lambda d: [f"{BIN}/LogBenchmark", "--mode", "hourly", f"{d}/h.log", str(N)],
        lambda d: sorted(glob.glob(f"{d}/h.log.*")) + [f"{d}/h.log"],
        True,
    ),
    "spdlog-daily": (
        lambda d: [f"{BIN}/spdlog_bench", "daily", f"{d}/sd.log", str(N)],
        lambda d: sorted(glob.glob(f"{d}/sd_*.log")),
        True,
    ),
}


def run(command):
    """Runs a command; returns its key=value output, its peak RSS in MiB and its CPU time (user + system) in seconds,
    all its threads together (from wait4)."""
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out = process.stdout.read()
    err = process.stderr.read()
    _, status, usage = os.wait4(process.pid, 0)
    if status != 0:
        sys.exit(f"{command[0]} failed ({status}): {err.decode()}")
    fields = dict(pair.split("=", 1) for pair in out.decode().split() if "=" in pair)
    return fields, usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime


def make_logs(directory):
    """A template log (one line shape, like the workload) and a varied one (random fields), ~100 MB each."""
    paths = {"template": f"{directory}/template.log", "varied": f"{directory}/varied.log"}
    with open(paths["template"], "w") as f:
        for i in range(N):
            f.write(f"2026-11-21 12:00:00.{i % 1000:03d} [INFO] app - user 12345 logged in from 10.0.0.1 reqid=abcdef0123 n={i}\n")
    rng = random.Random(7)
    with open(paths["varied"], "w") as f:
        for i in range(N):
            f.write(
                f"2026-11-21 {rng.randrange(24):02d}:{rng.randrange(60):02d}:{rng.randrange(60):02d}.{rng.randrange(1000):03d} "
                f"[{rng.choice(['INFO', 'WARN', 'DEBUG', 'ERROR'])}] {rng.choice(['app', 'db.pool', 'http', 'auth'])} - "
                f"user {rng.randrange(10**6)} from 10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(256)} "
                f"reqid={rng.getrandbits(48):012x} took {rng.random() * 100:.3f} ms n={i}\n")
    return paths


def table(title, rows, reference, extra=None):
    print(f"\n{title}\n")
    print("| implementation | lines/s | peak RSS | " + " | ".join(f"Octopus / {r}" for r in reference) + " |")
    print("|---|---:|---:|" + "---:|" * len(reference))
    for name, speed, rss in rows:
        print(f"| {name} | {speed / 1e6:.2f} M | {rss:.1f} MiB | " + " | ".join(
            f"{value:.2f}×" for value in (extra(name, speed, r) for r in reference)) + " |")


# Octopus's runs whose call latency is reported (`logger.info`, the direct call; one thread and four).
LATENCY_REPORTED = ["octopus", "octopus-direct", "octopus-4-threads", "octopus-direct-4-threads"]

# The implementations whose CPU time per line is compared (the others' start-up is not measured).
CPU_COMPARED = {
    "octopus", "octopus-direct", "spdlog-basic", "c-limit", "octopus-4-threads", "octopus-direct-4-threads",
    "spdlog-basic_mt-4-threads",
}


def main():
    speeds = {name: [] for name in IMPLEMENTATIONS}
    rss = {name: [] for name in IMPLEMENTATIONS}
    cpu = {name: [] for name in IMPLEMENTATIONS}
    floor_cpu = []
    latency = {}
    floor = []
    totals = {}
    archive = {"octopus": {"template": [], "varied": []}, "gzip -6": {"template": [], "varied": []}}
    with tempfile.TemporaryDirectory(prefix="octopus-bench-") as directory:
        logs = make_logs(directory)
        sizes = {kind: os.path.getsize(path) for kind, path in logs.items()}
        for round_number in range(1, ROUNDS + 1):
            # Every other round in the reverse order, so that no implementation always runs first (after the
            # previous round's archiving) or last.
            order = list(IMPLEMENTATIONS.items())
            if round_number % 2 == 0:
                order.reverse()
            for name, (command, files, complete) in order:
                work = tempfile.mkdtemp(dir=directory)
                # The previous runs' files written back before this one starts, not while it runs.
                os.sync()
                fields, peak, seconds = run(command(work))
                problem = verify(files(work), complete) if isinstance(complete, bool) else verify_threads(files(work), complete)
                if problem:
                    sys.exit(f"{name}: verification failed: {problem}")
                speeds[name].append(N / float(fields["secs"]))
                if "total_secs" in fields:
                    totals.setdefault(name, []).append(N / float(fields["total_secs"]))
                rss[name].append(peak)
                if name in CPU_COMPARED:
                    # Less the process's start-up and exit (a Swift process's ~12 ms to spdlog's ~3 ms): a 1-line run.
                    one_line = [("1" if argument == str(N) else argument) for argument in command(work)]
                    seconds -= run(one_line)[2]
                cpu[name].append(seconds)
                if name in LATENCY_REPORTED:
                    latency.setdefault(name, {"p50": [], "p99": []})
                    latency[name]["p50"].append(int(fields["p50_ns"]))
                    latency[name]["p99"].append(int(fields["p99_ns"]))
                subprocess.run(["rm", "-rf", work])
            fields, _, seconds = run([f"{BIN}/LogBenchmark", "floor", str(N)])
            floor.append(float(fields["lines_per_s"]))
            floor_cpu.append(seconds - run([f"{BIN}/LogBenchmark", "floor", "1"])[2])
            for kind, path in logs.items():
                fields, _, _ = run([f"{BIN}/LogBenchmark", "archive", path])
                archive["octopus"][kind].append(float(fields["MB_per_s"]))
                start = time.perf_counter()
                subprocess.run(f"gzip -6 -c {path} > /dev/null", shell=True, check=True)
                archive["gzip -6"][kind].append(sizes[kind] / 1e6 / (time.perf_counter() - start))
            print(f"round {round_number}/{ROUNDS}: " + ", ".join(
                f"{name} {speeds[name][-1] / 1e6:.2f} M/s" for name in IMPLEMENTATIONS), flush=True)

    median = {name: statistics.median(values) for name, values in speeds.items()}
    peak = {name: max(values) for name, values in rss.items()}
    print(f"\nCommon log workload: {N:,} lines of ~100 bytes, {ROUNDS} interleaved rounds, medians; every file verified.")
    plain = ["octopus", "octopus-direct", "spdlog-basic", "python-logging", "c-limit"]
    table("One file:", [(n, median[n], peak[n]) for n in plain] + [("swift-log floor (no backend work)", statistics.median(floor), 0)],
          ["this"], lambda name, speed, _: median["octopus"] / speed)
    print("\nOctopus latency of one call (1 in 64 calls timed): " + "; ".join(
        f"{name} p50 {statistics.median(latency[name]['p50']):.0f} ns, p99 {statistics.median(latency[name]['p99']):.0f} ns"
        for name in LATENCY_REPORTED) + ".")
    threaded = ["octopus-4-threads", "octopus-direct-4-threads", "spdlog-basic_mt-4-threads"]
    table(f"{THREADS} threads logging into one file ({os.cpu_count()} CPUs):", [(n, median[n], peak[n]) for n in threaded],
          ["this"], lambda name, speed, _: median["octopus-4-threads"] / speed)
    matching = {"octopus-rotating": "spdlog-rotating", "octopus-hourly": "spdlog-daily"}
    rows = [(n, median[n], peak[n]) for n in ["octopus-rotating", "spdlog-rotating", "octopus-hourly", "spdlog-daily"]]
    print("\nRotation (Octopus: file 10M x 5 with gzip; dateFile hourly with a clock moving an hour every 100,000 lines; "
          "spdlog: rotating 10M x 5 without compression; daily, which does not roll within a run):\n")
    print("| implementation | lines/s | lines/s incl. last archives | peak RSS | / Octopus without rotation | Octopus / spdlog's matching sink |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, speed, peak_rss in rows:
        own = f"{speed / median['octopus']:.2f}×" if name.startswith("octopus") else "–"
        versus = f"{speed / median[matching[name]]:.2f}×" if name in matching else "–"
        total = f"{statistics.median(totals[name]) / 1e6:.2f} M" if name in totals else "–"
        print(f"| {name} | {speed / 1e6:.2f} M | {total} | {peak_rss:.1f} MiB | {own} | {versus} |")
    # CPU time: what a line costs when no second core is free (the writer's work counted with the caller's).
    print("\nCPU time per line (user + system, every thread of the process, less a 1-line run's; medians):\n")
    print("| implementation | CPU per line | / spdlog's, each round's ratio: median (lowest–highest) |")
    print("|---|---:|---:|")
    cpu_rows = [(n, cpu[n], "spdlog-basic") for n in plain if n in CPU_COMPARED]
    cpu_rows.append(("swift-log floor (no backend work)", floor_cpu, "spdlog-basic"))
    cpu_rows += [(n, cpu[n], "spdlog-basic_mt-4-threads") for n in threaded]
    for name, values, reference in cpu_rows:
        ratios = [a / b for a, b in zip(values, cpu[reference])]
        print(f"| {name} | {statistics.median(values) / N * 1e9:.0f} ns | "
              f"{statistics.median(ratios):.2f}× ({min(ratios):.2f}–{max(ratios):.2f}) |")
    print("\nOctopus / peer, each round's ratio (the machine's swings move both sides of a round together):\n")
    print("| Octopus | peer | median of the rounds' ratios | lowest | highest |")
    print("|---|---|---:|---:|---:|")
    for ours, theirs in [("octopus", "spdlog-basic"), ("octopus", "c-limit"), ("octopus-direct", "spdlog-basic"),
                         ("octopus-4-threads", "spdlog-basic_mt-4-threads"),
                         ("octopus-direct-4-threads", "spdlog-basic_mt-4-threads"),
                         ("octopus-rotating", "spdlog-rotating"), ("octopus-hourly", "spdlog-daily")]:
        ratios = [a / b for a, b in zip(speeds[ours], speeds[theirs])]
        print(f"| {ours} | {theirs} | {statistics.median(ratios):.2f}× | {min(ratios):.2f}× | {max(ratios):.2f}× |")
    print("\nArchiver (zlib level 6, crash-safe: temporary file, fsync, rename) against `gzip -6 -c FILE > /dev/null`, "
          f"{sizes['template'] / 1e6:.0f} MB template log and {sizes['varied'] / 1e6:.0f} MB varied log:\n")
    print("| file | Octopus MB/s | gzip -6 MB/s | Octopus / gzip |")
    print("|---|---:|---:|---:|")
    for kind in ["template", "varied"]:
        o = statistics.median(archive["octopus"][kind])
        g = statistics.median(archive["gzip -6"][kind])
        print(f"| {kind} | {o:.0f} | {g:.0f} | {o / g:.2f}× |")


if __name__ == "__main__":
    main()
