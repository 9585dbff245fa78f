#!/usr/bin/env python3
"""Scheduling benchmarks: Octopus beside croniter (next fire time) and node's setInterval (firing accuracy).

    Benchmarks/run-schedule-benchmark.sh [ROUNDS]     (builds everything, then runs this)

Next fire time: the same expressions and start times for both (the reference cases, plus seeded random
expressions in UTC and four zones), parse once, then 100 successive next() calls each, repeated for ~1 s; rounds
interleaved; medians and the ratio. Only lines where croniter and Octopus agree on the first five fire times are
timed (the script prints how many disagree and shows them).

Firing accuracy: a 100 ms interval over 50 ticks and `* * * * * *` over 20 ticks through Octopus's Scheduler on
the system clock, lateness of each task start against its ideal time; node's setInterval (grid lateness) and the C
timerfd floor in the same run.
"""
import datetime
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
from zoneinfo import ZoneInfo

from croniter import croniter

ROUNDS = int(sys.argv[1]) if len(sys.argv) > 1 else 3
BIN = sys.argv[2]
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
K = 100


def random_expressions(count, seed=7):
    rng = random.Random(seed)

    def field(lo, hi):
        k = rng.random()
        if k < 0.3:
            return "*"
        if k < 0.45:
            return f"*/{rng.randint(2, max(2, (hi - lo) // 2))}"
        if k < 0.65:
            a = rng.randint(lo, hi - 1)
            b = rng.randint(a + 1, hi)  # never a-a: croniter mis-reads single-value ranges
            return f"{a}-{b}" + (f"/{rng.randint(2, 5)}" if rng.random() < 0.3 else "")
        if k < 0.85:
            return ",".join(str(x) for x in sorted({rng.randint(lo, hi) for _ in range(rng.randint(2, 4))}))
        return str(rng.randint(lo, hi))

    rows = []
    for _ in range(count):
        parts = [field(0, 59), field(0, 23), field(1, 31), field(1, 12), field(0, 6)]
        if rng.random() < 0.3:
            parts = [field(0, 59)] + parts
        start = f"{rng.randint(2026, 2028)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}T{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}"
        zone = rng.choice(["UTC", "UTC", "America/New_York", "Europe/Berlin", "Asia/Kolkata", "Australia/Sydney"])
        rows.append((" ".join(parts), start, zone))
    return rows


def reference_rows():
    rows = []
    with open(os.path.join(ROOT, "Tests/OctopusScheduleTests/Cases/cron-public.tsv")) as f:
        for line in f:
            if line.startswith("#") or not line.strip():
                continue
            expr, start, zone = line.rstrip("\n").split("\t")[:3]
            rows.append((expr, start, zone))
    return rows


def parse_start(text, zone):
    d = datetime.datetime.fromisoformat(text)
    return d.replace(tzinfo=zone) if d.tzinfo is None else d.astimezone(zone)


def croniter_times(expr, start, zone):
    try:
        it = croniter(expr, parse_start(start, ZoneInfo(zone)), second_at_beginning=len(expr.split()) == 6,
                      ret_type=datetime.datetime)
        return "\t".join(it.get_next(datetime.datetime).isoformat() for _ in range(5))
    except Exception as error:  # croniter does not read every form (L-n, LW, nW …)
        return f"ERROR {error}"


def croniter_ns_per_call(rows):
    prepared = [(expr, parse_start(start, ZoneInfo(zone)), len(expr.split()) == 6) for expr, start, zone in rows]
    calls = 0
    began = time.perf_counter()
    while time.perf_counter() - began < 1.0:
        for expr, start, six in prepared:
            it = croniter(expr, start, second_at_beginning=six, ret_type=datetime.datetime)
            for _ in range(K):
                it.get_next(datetime.datetime)
            calls += K
    return (time.perf_counter() - began) * 1e9 / calls


def run(command):
    out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    return dict(pair.split("=", 1) for pair in out.split() if "=" in pair)


def main():
    rows = reference_rows() + random_expressions(200)
    work = tempfile.mkdtemp(prefix="octopus-schedule-bench-")
    every = os.path.join(work, "all.tsv")
    with open(every, "w") as f:
        f.writelines(f"{e}\t{s}\t{z}\n" for e, s, z in rows)
    ours = subprocess.run([f"{BIN}/ScheduleBenchmark", "cron-times", every], check=True, capture_output=True,
                          text=True).stdout.split("\n")
    agreed, unsupported, differ = [], 0, []
    for row, mine in zip(rows, ours):
        theirs = croniter_times(*row)
        if theirs.startswith("ERROR"):
            unsupported += 1
        elif theirs == mine:
            agreed.append(row)
        else:
            differ.append((row, mine, theirs))
    timed = os.path.join(work, "agreed.tsv")
    with open(timed, "w") as f:
        f.writelines(f"{e}\t{s}\t{z}\n" for e, s, z in agreed)
    print(f"{len(rows)} expressions: {len(agreed)} agree with croniter on the first five fire times, "
          f"{unsupported} use forms croniter does not read, {len(differ)} differ")
    for (expr, start, zone), mine, theirs in differ:
        print(f"  differ: {expr!r} from {start} in {zone}\n    octopus:  {mine}\n    croniter: {theirs}")

    octopus, peer = [], []
    for round_number in range(1, ROUNDS + 1):
        octopus.append(float(run([f"{BIN}/ScheduleBenchmark", "cron", timed, str(K)])["ns_per_call"]))
        peer.append(croniter_ns_per_call(agreed))
        print(f"round {round_number}/{ROUNDS}: octopus {octopus[-1]:.0f} ns, croniter {peer[-1]:.0f} ns per next()", flush=True)
    o, c = statistics.median(octopus), statistics.median(peer)
    print(f"\nNext fire time ({len(agreed)} expressions, {K} successive next() each, {ROUNDS} interleaved rounds, medians):\n")
    print("| implementation | time per next() | Octopus speed / this |")
    print("|---|---:|---:|")
    print(f"| Octopus `CronExpression.next(after:)` | {o:.0f} ns | 1.0× |")
    print(f"| croniter 7 (Python) `get_next` | {c / 1000:.1f} µs | {c / o:.0f}× |")

    print("\nFiring accuracy (lateness of the task's start against its ideal time; µs):\n")
    results = []
    results.append(("Octopus Scheduler, interval 100 ms, 50 ticks", run([f"{BIN}/ScheduleBenchmark", "timer", "interval", "100", "50"])))
    results.append(("Octopus Scheduler, `* * * * * *`, 20 ticks", run([f"{BIN}/ScheduleBenchmark", "timer", "cron", "* * * * * *", "20"])))
    node = subprocess.run(["node", os.path.join(HERE, "peers/interval.js"), "100", "50"], check=True, capture_output=True, text=True).stdout
    grid = dict(re.findall(r"(\w+)=(-?[\d.]+)", node.split("grid_late_us:")[1]))
    results.append((f"node {node.split()[0][10:]} setInterval 100 ms, 50 ticks", {
        "p50_us": grid["p50"], "p99_us": grid["p99"], "max_us": grid["max"], "min_us": grid["min"], "early": grid["early"],
        "drift_us": grid["drift"]}))
    results.append(("C timerfd floor, 100 ms, 50 wakes", run([f"{BIN}/timer", "timerfd", "100", "50"])))
    print("| timer | p50 | p99 | max | min | early ticks | drift (last 5 − first 5) |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, r in results:
        print(f"| {name} | {float(r['p50_us']):.0f} | {float(r['p99_us']):.0f} | {float(r['max_us']):.0f} | "
              f"{float(r['min_us']):.0f} | {r.get('early', '–')} | {r['drift_us'] if 'drift_us' in r else '–'} |")
    subprocess.run(["rm", "-rf", work])


if __name__ == "__main__":
    main()
