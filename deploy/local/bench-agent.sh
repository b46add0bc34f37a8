#!/usr/bin/env bash
# Measures what the bot agents cost (memory per idle bot, CPU per received
# stanza, CPU relative to Prosody's) with scenarios/90-agent-efficiency.toml
# on the local stack, and prints the figures kept in BENCHMARKS.md.
# Needs python3 for the arithmetic.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"

output=$(deploy/local/run-study.sh scenarios/90-agent-efficiency.toml | tee /dev/stderr)
folder=$(printf '%s\n' "$output" | sed -n 's/^results: //p')
if [ -z "$folder" ]; then
    echo "error: the run printed no results folder" >&2
    exit 1
fi
python3 deploy/local/agent_efficiency.py "$folder"
