#!/usr/bin/env bash
# Measures what the bot agents cost (memory per idle bot, CPU per received
# stanza, CPU relative to Prosody's) with scenarios/90-agent-efficiency.toml
# and 91-agent-efficiency-c2s-first.toml on the local stack, and prints the
# figures kept in BENCHMARKS.md.
# Needs python3 for the arithmetic.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"

# Memory per idle bot is only measured on a run's first group, so each
# transport gets a run where it goes first.
for scenario in scenarios/90-agent-efficiency.toml scenarios/91-agent-efficiency-c2s-first.toml; do
    output=$(deploy/local/run-study.sh "$scenario" | tee /dev/stderr)
    folder=$(printf '%s\n' "$output" | sed -n 's/^results: //p')
    if [ -z "$folder" ]; then
        echo "error: the run of $scenario printed no results folder" >&2
        exit 1
    fi
    python3 deploy/local/agent_efficiency.py "$folder"
    echo
done
