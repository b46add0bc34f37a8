#!/usr/bin/env bash
# Runs a scenario (by default the WebSocket-vs-c2s study) on this machine:
# builds the binaries, starts a throwaway XMPP server, one monitor agent and
# two bot agents on loopback, runs the coordinator, and stops everything again.
#
#   deploy/local/run-study.sh [SCENARIO]
#   SERVER=ejabberd deploy/local/run-study.sh scenarios/33-ejabberd-websocket-vs-c2s.toml
#
# With ACCOUNTS=N in the environment, accounts bot00001 to botN (password
# $ACCOUNT_PASSWORD, default "xmppload") are created on the registered
# VirtualHosts localhost and sha256.localhost before the run, for scenarios
# that log in with PLAIN or SCRAM, such as scenarios/50-registered-accounts.toml.
#
# SERVER picks the server: prosody (the default) or ejabberd. The ports below
# are the ones scenarios/30-websocket-vs-c2s.toml and
# scenarios/33-ejabberd-websocket-vs-c2s.toml point at; WebSocket and BOSH
# (scenarios/32-websocket-c2s-bosh.toml) share HTTP_PORT.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"

SCENARIO=${1:-scenarios/30-websocket-vs-c2s.toml}
RUN_DIR="$ROOT/deploy/local/run"
C2S_PORT=15222
HTTP_PORT=15280
MONITOR_PORT=15061
AGENT_PORTS=(15051 15052)
SERVER=${SERVER:-prosody}
COMPONENT_PORT=15347

case "$SERVER" in
prosody)
    if ! command -v prosody >/dev/null 2>&1; then
        echo "error: prosody not found; install it with: apt-get install -y prosody" >&2
        exit 1
    fi
    PIDFILE="$RUN_DIR/prosody.pid"
    ;;
ejabberd)
    # Debian keeps ejabberd's code outside the Erlang VM's default path.
    EJABBERD_APP=$(ls -d /usr/lib/*/ejabberd-*/ebin/ejabberd.app /usr/lib/ejabberd-*/ebin/ejabberd.app 2>/dev/null | head -n 1 || true)
    if [ -z "$EJABBERD_APP" ] || ! command -v erl >/dev/null 2>&1; then
        echo "error: ejabberd not found; install it with: apt-get install -y ejabberd" >&2
        exit 1
    fi
    EJABBERD_LIBS=$(dirname "$(dirname "$(dirname "$EJABBERD_APP")")")
    PIDFILE="$RUN_DIR/ejabberd.pid"
    ;;
*)
    echo "error: SERVER=$SERVER is not supported; use SERVER=prosody or SERVER=ejabberd" >&2
    exit 1
    ;;
esac
for port in "$C2S_PORT" "$HTTP_PORT" "$COMPONENT_PORT" "$MONITOR_PORT" "${AGENT_PORTS[@]}"; do
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

# A fresh server data directory each run, so no room or state carries over.
rm -rf "$RUN_DIR"
mkdir -p "$RUN_DIR/data" "$RUN_DIR/certs" "$RUN_DIR/spool"
# MUC_ARCHIVE=1 archives every room (Prosody's mod_muc_mam), for scenarios
# whose web-client bots send MAM queries; it costs a storage write per message.
MUC_EXTRA=""
if [ "${MUC_ARCHIVE:-0}" = 1 ]; then
    MUC_EXTRA='modules_enabled = { "muc_mam" }; muc_log_all_rooms = true'
fi
fill_template() {
    sed -e "s#@RUN_DIR@#$RUN_DIR#g" \
        -e "s#-- @MUC_EXTRA@#$MUC_EXTRA#" \
        -e "s#@C2S_PORT@#$C2S_PORT#g" \
        -e "s#@HTTP_PORT@#$HTTP_PORT#g" \
        -e "s#@DOMAIN@#anon.localhost#g" \
        -e "s#@MUC_DOMAIN@#conference.anon.localhost#g" \
        -e "/@EXTRA_GLOBAL@/d" \
        -e "s#^component_ports = {}#component_ports = { $COMPONENT_PORT }#" \
        "$1"
}
if [ "$SERVER" = prosody ]; then
    fill_template deploy/local/prosody.cfg.lua.template >"$RUN_DIR/prosody.cfg.lua"
else
    fill_template deploy/local/ejabberd.yml.template >"$RUN_DIR/ejabberd.yml"
fi

# Every connection costs Prosody and an agent one descriptor each, and the
# processes below inherit this shell's soft limit (often 1,024), so raise
# it to the hard limit for large scenarios.
ulimit -Sn "$(ulimit -Hn)" 2>/dev/null || echo "warning: could not raise the open-file soft limit to $(ulimit -Hn)" >&2
echo "open-file limit for $SERVER and the agents: $(ulimit -Sn)"

PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    wait 2>/dev/null || true
}
trap cleanup EXIT

if [ "$SERVER" = prosody ]; then
    prosody --config "$RUN_DIR/prosody.cfg.lua" -F >"$RUN_DIR/prosody.out" 2>&1 &
else
    # The Erlang VM runs without distribution (no node name), so it needs
    # no cookie or epmd. erl execs the VM, so $! is the VM's pid, which
    # ejabberd also writes to EJABBERD_PID_PATH for the monitor.
    (
        cd "$RUN_DIR"
        export HOME="$RUN_DIR" ERL_LIBS="$EJABBERD_LIBS" \
            EJABBERD_CONFIG_PATH="$RUN_DIR/ejabberd.yml" \
            EJABBERD_LOG_PATH="$RUN_DIR/ejabberd.log" \
            EJABBERD_PID_PATH="$PIDFILE" \
            ERL_CRASH_DUMP="$RUN_DIR/erl_crash.dump"
        exec erl -noinput -noshell +P 250000 -mnesia dir "\"$RUN_DIR/spool\"" -s ejabberd
    ) >"$RUN_DIR/ejabberd.out" 2>&1 &
fi
PIDS+=($!)
"$BIN/monitor-agent" --listen "127.0.0.1:$MONITOR_PORT" >"$RUN_DIR/monitor-agent.log" 2>&1 &
PIDS+=($!)
for index in "${!AGENT_PORTS[@]}"; do
    "$BIN/agent" --listen "127.0.0.1:${AGENT_PORTS[$index]}" --name "agent-$((index + 1))" \
        >"$RUN_DIR/agent-$((index + 1)).log" 2>&1 &
    PIDS+=($!)
done

# Wait (at most 15 s) until the server wrote its pidfile and everything listens.
for _ in $(seq 150); do
    ready=1
    [ -s "$PIDFILE" ] || ready=0
    for port in "$C2S_PORT" "$HTTP_PORT" "$MONITOR_PORT" "${AGENT_PORTS[@]}"; do
        (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || ready=0
    done
    [ "$ready" = 1 ] && break
    sleep 0.1
done
if [ "$ready" != 1 ]; then
    echo "error: the local stack did not come up within 15 s; see the logs in $RUN_DIR" >&2
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
