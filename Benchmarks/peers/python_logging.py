#!/usr/bin/env python3
"""Python's logging.FileHandler on the common log workload (the formatter closest to Octopus's pattern).

    python_logging.py OUTFILE N
"""
import logging
import sys
import time

path, n = sys.argv[1], int(sys.argv[2])
handler = logging.FileHandler(path, mode="w")
handler.setFormatter(logging.Formatter("%(asctime)s.%(msecs)03d [%(levelname)s] %(name)s - %(message)s", "%Y-%m-%d %H:%M:%S"))
logger = logging.getLogger("app")
logger.setLevel(logging.INFO)
logger.addHandler(handler)
logger.propagate = False
start = time.perf_counter()
for i in range(n):
    logger.info("user 12345 logged in from 10.0.0.1 reqid=abcdef0123 n=%d", i)
handler.close()
secs = time.perf_counter() - start
print(f"impl=python-logging lines={n} secs={secs:.4f} lines_per_s={n / secs:.0f}")
