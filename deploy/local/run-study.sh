#!/usr/bin/env bash
# Runs a scenario (by default the WebSocket-vs-c2s study) on this machine:
# builds the binaries, starts a throwaway Prosody, one monitor agent and two
# bot agents on loopback, runs the coordinator, and stops everything again.
#
#   deploy/local/run-study.sh [SCENARIO]
#
# With ACCOUNTS=N in the environment, accounts bot00001 to botN (password
# $ACCOUNT_PASSWORD, default "xmppload") are created on the registered
# VirtualHosts localhost and sha256.localhost before the run, for scenarios
# that log in with PLAIN or SCRAM, such as scenarios/50-registered-accounts.toml.
#
# The ports below are the ones scenarios/30-websocket-vs-c2s.toml points at.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"

SCENARIO=${1:-scenarios/30-websocket-vs-c2s.toml}
RUN_DIR="$ROOT/deploy/local/run"
C2S_PORT=15222
HTTP_PORT=15280
MONITOR_PORT=15061
AGENT_PORTS=(15051 15052)

if ! command -v prosody >/dev/null 2>&1; then
    echo "error: prosody not found; install it with: apt-get install -y prosody" >&2
    exit 1
fi
for port in "$C2S_PORT" "$HTTP_PORT" "$MONITOR_PORT" "${AGENT_PORTS[@]}"; do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
        echo "error: port $port on 127.0.0.1 is already in use; stop whatever listens there (an earlier run?)" >&2
        exit 1
    fi
done

# PROFILE=debug skips the release build, for a quick functional trial.
PROFILE=${PROFILE:-release}
echo "building $PROFILE binaries..."
if [ "$PROFILE" = release ]; then
    cargo build --release --locked --bins
else
    cargo build --locked --bins
fi
BIN="target/$PROFILE"

# A fresh Prosody data directory each run, so no room or state carries over.
rm -rf "$RUN_DIR"
mkdir -p "$RUN_DIR/data" "$RUN_DIR/certs"
sed -e "s#@RUN_DIR@#$RUN_DIR#g" \
    -e "s#@C2S_PORT@#$C2S_PORT#g" \
    -e "s#@HTTP_PORT@#$HTTP_PORT#g" \
    -e "s#@DOMAIN@#anon.localhost#g" \
    -e "s#@MUC_DOMAIN@#conference.anon.localhost#g" \
    -e "/@EXTRA_GLOBAL@/d" \
    deploy/local/prosody.cfg.lua.template > "$RUN_DIR/prosody.cfg.lua"

# Every connection costs Prosody and an agent one descriptor each, and the
# processes below inherit this shell's soft limit (often 1,024), so raise
# it to the hard limit for large scenarios.
ulimit -Sn "$(ulimit -Hn)" 2>/dev/null || echo "warning: could not raise the open-file soft limit to $(ulimit -Hn)" >&2
echo "open-file limit for Prosody and the agents: $(ulimit -Sn)"

PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    wait 2>/dev/null || true
}
trap cleanup EXIT

prosody --config "$RUN_DIR/prosody.cfg.lua" -F >"$RUN_DIR/prosody.out" 2>&1 &
PIDS+=($!)
"$BIN/monitor-agent" --listen "127.0.0.1:$MONITOR_PORT" >"$RUN_DIR/monitor-agent.log" 2>&1 &
PIDS+=($!)
for index in "${!AGENT_PORTS[@]}"; do
    "$BIN/agent" --listen "127.0.0.1:${AGENT_PORTS[$index]}" --name "agent-$((index + 1))" \
        >"$RUN_DIR/agent-$((index + 1)).log" 2>&1 &
    PIDS+=($!)
done

# Wait (at most 15 s) until Prosody wrote its pidfile and everything listens.
for _ in $(seq 150); do
    ready=1
    [ -s "$RUN_DIR/prosody.pid" ] || ready=0
    for port in "$C2S_PORT" "$HTTP_PORT" "$MONITOR_PORT" "${AGENT_PORTS[@]}"; do
        (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || ready=0
    done
    [ "$ready" = 1 ] && break
    sleep 0.1
done
if [ "$ready" != 1 ]; then
    echo "error: the local stack did not come up within 15 s; see $RUN_DIR/*.log and $RUN_DIR/prosody.log" >&2
    exit 1
fi

if [ -n "${ACCOUNTS:-}" ]; then
    export XMPPLOAD_ACCOUNT_PASSWORD="${ACCOUNT_PASSWORD:-xmppload}"
    for host in localhost sha256.localhost; do
        "$BIN/xmppload-accounts" --c2s "127.0.0.1:$C2S_PORT" --domain "$host" \
            --pattern 'bot%05d' --count "$ACCOUNTS" --tls never
    done
fi

"$BIN/coordinator" run "$SCENARIO"
