#!/usr/bin/env python3
"""Plots run_bench.sh's results.tsv: lunfs (and the FUSE null server) relative to the
baseline measured in the same run. usage: plot.py RESULTS.tsv OUT.png"""
import csv
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

rows = list(csv.DictReader(open(sys.argv[1]), delimiter="\t"))
by = {(r["group"], r["job"], r["target"]): r for r in rows}
labels, lunfs, null = [], [], []
for (group, job, target), r in by.items():
    if target != "lunfs":
        continue
    base = by.get((group, job, "raw")) or by.get((group, job, "host"))
    key = "MBps" if job.startswith("seq") else "IOPS"
    b = float(base[key])
    labels.append(f"{group}\n{job}")
    lunfs.append(float(r[key]) / b)
    n = by.get((group, job, "null"))
    null.append(float(n[key]) / b if n else 0)

fig, ax = plt.subplots(figsize=(14, 5))
x = range(len(labels))
ax.bar([i - 0.2 for i in x], lunfs, width=0.4, label="lunfs / baseline")
ax.bar([i + 0.2 for i in x], null, width=0.4, label="FUSE null / baseline")
ax.axhline(1.0, color="grey", linewidth=0.8)
ax.set_xticks(list(x))
ax.set_xticklabels(labels, fontsize=7, rotation=35, ha="right")
ax.set_ylabel("ratio (same run)")
ax.set_yscale("log")
ax.set_title("lunfs through FUSE vs the raw LUN file (fio) and the host file system (metadata)")
ax.legend()
fig.tight_layout()
fig.savefig(sys.argv[2], dpi=110)
