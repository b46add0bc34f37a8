#!/usr/bin/env python3
"""Shows whether agent and coordinator memory stays flat over a long run.

Reads a results folder whose monitor watched the bot agents and the
coordinator (processes named agent-* and coordinator, as in
scenarios/40-soak-10k.toml). The hold is the time from the end of the
join phase to the start of the leave phase, when the number of bots does
not change. For each process the script prints the RSS at the start of
the hold, at its end, the peak, and the slope of a least-squares line
through the hold's samples in MiB per minute. Flat memory means a slope
near zero: a leak of one allocation per message or per report would show
as a steady climb.

Usage: soak_memory.py results/NN
"""

import csv
import sys
from pathlib import Path


def slope_per_minute(points):
    n = len(points)
    mean_t = sum(t for t, _ in points) / n
    mean_v = sum(v for _, v in points) / n
    covariance = sum((t - mean_t) * (v - mean_v) for t, v in points)
    variance = sum((t - mean_t) ** 2 for t, _ in points)
    return covariance / variance * 60 if variance else float("nan")


def main(folder: Path) -> None:
    phases = list(csv.DictReader((folder / "phases.csv").open()))
    join_end = max(float(p["end_s"]) for p in phases if p["phase"] == "join")
    leave_start = min(float(p["start_s"]) for p in phases if p["phase"] == "leave")
    if leave_start - join_end < 60:
        sys.exit(f"{folder}: the hold between joins and leaves is {leave_start - join_end:.0f} s; "
                 "a soak needs minutes")
    series = {}
    for row in csv.DictReader((folder / "monitor.csv").open()):
        name = row["process"]
        if row["gap"] == "true" or not (name.startswith("agent") or name == "coordinator"):
            continue
        t = float(row["t_s"])
        if join_end <= t <= leave_start:
            series.setdefault(name, []).append((t, int(row["rss_bytes"]) / 2**20))
    if not series:
        sys.exit(f"{folder}/monitor.csv: no samples of agent-* or coordinator during the hold")

    print(f"hold: {join_end:.0f} s to {leave_start:.0f} s ({(leave_start - join_end) / 60:.1f} min)\n")
    print("| process | RSS at start of hold (MiB) | RSS at end (MiB) | peak (MiB) | slope (MiB/min) |")
    print("| --- | --- | --- | --- | --- |")
    for name, points in sorted(series.items()):
        # A median over the first and last 30 s keeps one sample's noise out.
        first = sorted(v for t, v in points if t <= points[0][0] + 30)
        last = sorted(v for t, v in points if t >= points[-1][0] - 30)
        peak = max(v for _, v in points)
        print(f"| {name} | {first[len(first) // 2]:.1f} | {last[len(last) // 2]:.1f} | {peak:.1f} "
              f"| {slope_per_minute(points):+.2f} |")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(Path(sys.argv[1]))
