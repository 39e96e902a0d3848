#!/usr/bin/env python3
"""report.py WORK RUNS: the table of lifecycle.sh from the files timings.sh
left in WORK: medians per runtime and estiba's ratio to each other one
(below 1: estiba is faster or smaller)."""
import csv
import glob
import json
import os
import statistics
import sys

work, runs = sys.argv[1], sys.argv[2]
names = [line.split()[0] for line in open(os.path.join(work, "runtimes"))]
bins = dict(line.split(maxsplit=1) for line in open(os.path.join(work, "runtimes")))
others = [n for n in names if n != "estiba"]


def medians(name):
    """Command name -> median seconds: over every round's times where
    timings.sh timed the path in rounds (NAME.<k>.json), else from a
    hyperfine CSV export (a runtime that did not finish a path has no row:
    "-" in the table; nor has any, where nothing finished)."""
    rounds = sorted(glob.glob(os.path.join(work, glob.escape(name) + ".[0-9]*.json")))
    if rounds:
        times = {}
        for path in rounds:
            with open(path) as f:
                for result in json.load(f)["results"]:
                    times.setdefault(result["command"], []).extend(result["times"])
        return {command: statistics.median(t) for command, t in times.items() if t}
    try:
        with open(os.path.join(work, name + ".csv")) as f:
            return {row["command"]: float(row["median"]) for row in csv.DictReader(f)}
    except FileNotFoundError:
        return {}


def kib(name):
    with open(os.path.join(work, name + ".txt")) as f:
        return {k: float(v) for k, v in (line.split() for line in f)}


rows = []  # (title, unit, {runtime: value})
for title, file in [
    ("run /bin/true", "run"),
    ("create", "create"),
    ("start", "start"),
    ("delete", "delete"),
    ("create+start+delete", "csd"),
    ("exec /bin/true", "exec"),
    ("create, 0.3 s after the last", "cold-create"),
    ("exec, 0.3 s after the last", "cold-exec"),
    ("state (20 containers)", "state"),
    ("list (20 containers)", "list"),
]:
    rows.append((title, "ms", {k: v * 1000 for k, v in medians(file).items()}))
rows.append(("50 runs, 8 in flight", "s", medians("par")))
rows.append(("peak RSS of run", "MiB", {k: v / 1024 for k, v in kib("rss-run").items()}))
rows.append(("peak RSS of create", "MiB", {k: v / 1024 for k, v in kib("rss-create").items()}))
for what in ("create", "exec"):
    m = medians("prot-" + what)
    rows.append(
        (f"protection per {what}", "ms", {n: (m[n] - m[n + "-sealed"]) * 1000 for n in names})
    )
sizes = {}
for n in names:
    path = bins[n].strip()
    sizes[n] = os.path.getsize(path) / 1e6
rows.append(("binary (file)", "MB", sizes))

head = ["path"] + names + [f"estiba/{o}" for o in others]
# The parallel row's batches: one par.<round>-<runtime>.json each (timings.sh).
par_rounds = {
    os.path.basename(p).split(".")[1].split("-")[0]
    for p in glob.glob(os.path.join(work, "par.[0-9]*.json"))
}
print(f"median of {runs} runs each (50 runs: of {len(par_rounds)} batches), "
      "same bundle, same mount namespace")
print("| " + " | ".join(head) + " |")
print("|" + "---|" * len(head))
for title, unit, v in rows:
    cells = [title]
    for n in names:
        x = v.get(n)
        cells.append("-" if x is None else f"{x:.3f} {unit}" if abs(x) < 10 else f"{x:.1f} {unit}")
    for o in others:
        a, b = v.get("estiba"), v.get(o)
        cells.append(f"{a / b:.2f}" if a is not None and b and b > 0 else "-")
    print("| " + " | ".join(cells) + " |")
print("binaries: " + ", ".join(f"{n} {bins[n].strip()}" for n in names))

# The floor (floor.c, timed in the rows that have it): what is left of
# each runtime's time above it.
for title, unit, v in rows:
    floor = v.get("floor")
    if floor is None:
        continue
    fmt = "{:.2f} ms" if unit == "ms" else "{:.3f} s"
    above = {n: v[n] - floor for n in names if n in v}
    line = f"{title}: floor {fmt.format(floor)}"
    if v.get("crun"):
        line += f" (floor/crun {floor / v['crun']:.2f})"
    line += "; above it: " + ", ".join(f"{n} {fmt.format(a)}" for n, a in above.items())
    ratios = [f"estiba/{o} {above['estiba'] / above[o]:.2f}"
              for o in others if "estiba" in above and above.get(o, 0) > 0]
    if ratios:
        line += "; " + ", ".join(ratios)
    print(line)
