#!/usr/bin/env python3
"""Prints what the bot agents cost, from a results folder of
scenarios/90-agent-efficiency.toml (or any run whose monitor watched
processes named agent-*).

Per group:
- memory per idle bot, for the run's first group only: the growth of agent
  RSS from just before the first arrival to the idle window, divided by the
  group's bots. The idle window runs from one second after the last join
  until talking starts;
- agent CPU per 1,000 received stanzas while talking: agent CPU time in the
  talk window over the stanzas the bots received in it;
- agent CPU as a share of Prosody's CPU in the same window.

Usage: agent_efficiency.py results/NN
"""

import csv
import json
import sys
from pathlib import Path


def mean(values):
    return sum(values) / len(values) if values else float("nan")


def main(folder: Path) -> None:
    run = json.loads((folder / "run.json").read_text())
    phases = {
        (row["group"], row["phase"]): (float(row["start_s"]), float(row["end_s"]))
        for row in csv.DictReader((folder / "phases.csv").open())
    }
    monitor = [row for row in csv.DictReader((folder / "monitor.csv").open()) if row["gap"] != "true"]
    bots = list(csv.DictReader((folder / "bots.csv").open()))
    agents = [name for name in run["monitored_processes"] if name.startswith("agent")]
    if not agents:
        sys.exit(f"{folder}/run.json: no monitored process is named agent-*; watch the agents to measure them")

    def samples(process, start, end, column):
        return [float(row[column]) for row in monitor
                if row["process"] == process and start <= float(row["t_s"]) <= end]

    def last_before(process, time, column):
        values = [float(row[column]) for row in monitor
                  if row["process"] == process and float(row["t_s"]) < time]
        return values[-1] if values else float("nan")

    def received_by(group, time):
        # Cumulative per agent, so take each agent's last row at or before `time`.
        latest = {}
        for row in bots:
            if row["group"] == group and float(row["t_s"]) <= time:
                latest[row["agent"]] = int(row["stanzas_received"])
        return sum(latest.values())

    print(f"results: {folder}  ({run['scenario_name']})\n")
    print("| group | bots | agent memory per idle bot (KiB) | agent CPU per 1,000 received stanzas (ms) "
          "| stanzas received while talking | agent CPU / Prosody CPU while talking |")
    print("| --- | --- | --- | --- | --- | --- |")
    for index, group in enumerate(run["groups"]):
        name, count = group["name"], group["bots"]
        join_start, join_end = phases[(name, "join")]
        talk_start, talk_end = phases[(name, "talk")]

        # The allocator keeps memory that an earlier group freed, so only the
        # run's first group starts from a clean baseline.
        if index == 0:
            grown = sum(mean(samples(agent, join_end + 1.0, talk_start - 0.5, "rss_bytes"))
                        - last_before(agent, join_start, "rss_bytes") for agent in agents)
            memory = f"{grown / count / 1024:.1f}"
        else:
            memory = "n/a (not the first group)"

        window = talk_end - talk_start
        agent_cpu_s = sum(mean(samples(agent, talk_start, talk_end, "cpu_percent")) for agent in agents) / 100 * window
        prosody_cpu_s = mean(samples("prosody", talk_start, talk_end, "cpu_percent")) / 100 * window
        # Reports cover the second before their time stamp, so count from the
        # last report before talking started to the first after it ended.
        received = received_by(name, talk_end + 1.0) - received_by(name, talk_start)
        cpu_per_1000_ms = agent_cpu_s / received * 1000 * 1000 if received else float("nan")

        print(f"| {name} | {count} | {memory} | {cpu_per_1000_ms:.1f} | {received} "
              f"| {agent_cpu_s / prosody_cpu_s:.1%} |")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(Path(sys.argv[1]))
