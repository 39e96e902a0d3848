#!/usr/bin/env python3
"""phases.py ESTIBA BUNDLE [RUNS]: where a `run` of BUNDLE spends its time.
Runs `ESTIBA --debug --log FILE run` RUNS times (default 40) and prints, for
each step between two of its debug lines (nanosecond timestamps; the first
step starts at the spawn, the last ends at the exit), the median over the
runs. The debug lines cost a little themselves; compare steps, not totals."""
import collections
import datetime
import json
import os
import re
import shutil
import statistics
import sys
import tempfile
import time


def stamp(text):
    """2026-12-03T17:10:00.123456789Z -> nanoseconds since the epoch."""
    whole, frac = text.rstrip("Z").split(".")
    t = datetime.datetime.strptime(whole, "%Y-%m-%dT%H:%M:%S")
    secs = int(t.replace(tzinfo=datetime.timezone.utc).timestamp())
    return secs * 10**9 + int(frac.ljust(9, "0"))


def main():
    estiba, bundle = sys.argv[1], sys.argv[2]
    runs = int(sys.argv[3]) if len(sys.argv) > 3 else 40
    work = tempfile.mkdtemp(prefix="estiba-phases.")
    steps = collections.defaultdict(list)
    totals = []
    try:
        for i in range(runs):
            log = os.path.join(work, "log")
            args = [estiba, "--root", os.path.join(work, "root"), "--debug", "--log", log,
                    "--log-format", "json", "run", "--bundle", bundle, f"phases-{i}"]
            start = time.time_ns()
            pid = os.posix_spawn(estiba, args, os.environ)
            os.waitpid(pid, 0)
            end = time.time_ns()
            prev, name = start, "spawn"
            with open(log) as f:
                for line in f:
                    entry = json.loads(line)
                    # Ids and pids vary from run to run; the step does not.
                    msg = re.sub(r"\b(phases-\d+|\d+)\b", "N", entry["msg"])
                    t = stamp(entry["time"])
                    steps[f"{name} -> {msg}"].append((t - prev) / 1e6)
                    prev, name = t, msg
            steps[f"{name} -> exit"].append((end - prev) / 1e6)
            totals.append((end - start) / 1e6)
            os.unlink(log)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    for step, ms in steps.items():
        print(f"{statistics.median(ms):7.3f} ms  {step}")
    print(f"{statistics.median(totals):7.3f} ms  spawn to exit (median of {runs})")


main()
