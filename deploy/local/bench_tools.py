#!/usr/bin/env python3
"""Compares what three load generators cost on the same Prosody, in one run.

The tools: the xmppload bot agent (driven by the coordinator), Tsung 1.7
(Debian package `tsung`, its jabber plugin over TCP) and bots written with
@xmpp/client on Node.js (deploy/local/xmppjs). One throwaway Prosody serves
every measurement. It has two anonymous hosts: `anon.localhost` offers no TLS
and `tls.localhost` has a self-signed certificate and offers STARTTLS. The
HTTP port serves `ws://` and the HTTPS port serves `wss://`.

Two measurements per tool and transport:

- idle: N bots connect, join one of R rooms and stay idle. Memory per bot is
  the tool's RSS growth from just before the first connection to the idle
  plateau, divided by N;
- busy: M bots join one room and each sends one message a second. The
  tool's CPU time per 1,000 received stanzas and its ratio to Prosody's CPU
  time come from the window where every bot is in the room and talking.

Received stanzas in the busy window are counted from the schedule (every
message reaches every occupant). For xmppload and @xmpp/client the bots'
own counters are printed next to it to check the count; Tsung has no per-
stanza counter.

Process figures come from /proc (RSS, utime+stime) sampled every 250 ms;
connection counts from /proc/net/tcp. Prosody runs without stream
management (smacks), because Tsung does not speak it and @xmpp/client
would enable it on its own: all tools then do the same protocol work.

Usage: bench_tools.py OUT_DIR [--idle-bots N] [--rooms R] [--busy-bots M]
"""

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
C2S_PORT = 15322
HTTP_PORT = 15380
HTTPS_PORT = 15381
AGENT_PORT = 15351
MUC = "conference.anon.localhost"
TICKS = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")
SAMPLE_S = 0.25


# ---- /proc -----------------------------------------------------------------

def cpu_seconds(pid):
    """utime + stime of a process, or None once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return (int(fields[11]) + int(fields[12])) / TICKS


def rss_bytes(pid):
    try:
        return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE
    except (FileNotFoundError, ProcessLookupError):
        return None


def server_connections(ports):
    """Established TCP connections whose local side is one of `ports`."""
    wanted = {f"{port:04X}" for port in ports}
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except FileNotFoundError:
            continue
        for line in lines:
            parts = line.split()
            if parts[3] == "01" and parts[1].rsplit(":", 1)[1] in wanted:
                count += 1
    return count


def find_pid(needle, parent_tree):
    """Oldest process whose command line contains `needle` and that descends
    from `parent_tree` (the pid of a process this script started)."""
    def ancestors(pid):
        while pid > 1:
            try:
                pid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
            except (FileNotFoundError, ValueError):
                return
            yield pid

    for entry in sorted(Path("/proc").iterdir(), key=lambda p: int(p.name) if p.name.isdigit() else 0):
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (FileNotFoundError, ProcessLookupError):
            continue
        pid = int(entry.name)
        if needle in cmdline and (pid == parent_tree or parent_tree in ancestors(pid)):
            return pid
    return None


class Sampler:
    """Samples a tool process, Prosody and the connection count until stopped."""

    def __init__(self, prosody_pid, ports):
        self.prosody_pid = prosody_pid
        self.ports = ports
        self.tool_pid = None
        self.rows = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        while not self._stop.is_set():
            pid = self.tool_pid
            self.rows.append({
                "t": time.time(),
                "tool_cpu": cpu_seconds(pid) if pid else None,
                "tool_rss": rss_bytes(pid) if pid else None,
                "prosody_cpu": cpu_seconds(self.prosody_pid),
                "connections": server_connections(self.ports),
            })
            self._stop.wait(SAMPLE_S)

    def stop(self):
        self._stop.set()
        self._thread.join()
        return self.rows


def value_at(rows, column, t):
    """Linear interpolation of a cumulative column at time t."""
    before = [r for r in rows if r["t"] <= t and r[column] is not None]
    after = [r for r in rows if r["t"] >= t and r[column] is not None]
    if not before or not after:
        raise RuntimeError(f"no {column} samples around t={t:.2f}")
    a, b = before[-1], after[0]
    if b["t"] == a["t"]:
        return a[column]
    return a[column] + (b[column] - a[column]) * (t - a["t"]) / (b["t"] - a["t"])


# ---- Prosody -----------------------------------------------------------------

def start_prosody(run_dir):
    certs = run_dir / "certs"
    (run_dir / "data").mkdir(parents=True)
    certs.mkdir()
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-subj", "/CN=tls.localhost", "-addext", "subjectAltName=DNS:tls.localhost,IP:127.0.0.1",
         "-keyout", str(certs / "tls.localhost.key"), "-out", str(certs / "tls.localhost.crt")],
        check=True, capture_output=True)

    template = (ROOT / "deploy/local/prosody.cfg.lua.template").read_text()
    extra = "\n".join([
        f"https_ports = {{ {HTTPS_PORT} }}",
        'https_interfaces = { "127.0.0.1" }',
        f'https_ssl = {{ certificate = "{certs}/tls.localhost.crt", key = "{certs}/tls.localhost.key" }}',
        # Tsung does not speak XEP-0198 and @xmpp/client turns it on by
        # itself, so the server does not offer it: every tool does the same work.
        'modules_disabled = { "s2s", "smacks" }',
    ])
    config = (template.replace("@RUN_DIR@", str(run_dir))
              .replace("@C2S_PORT@", str(C2S_PORT))
              .replace("@HTTP_PORT@", str(HTTP_PORT))
              .replace("@MUC_DOMAIN@", MUC)
              .replace("@DOMAIN@", "anon.localhost")
              .replace("-- @EXTRA_GLOBAL@", extra))
    # The plain host must not offer STARTTLS (a client that sees the offer
    # takes it), the TLS host must.
    config += "\n".join([
        "",
        'VirtualHost "anon.localhost"',
        '    modules_disabled = { "s2s", "smacks", "tls" }',
        'VirtualHost "tls.localhost"',
        '    authentication = "anonymous"',
        "",
    ])
    (run_dir / "prosody.cfg.lua").write_text(config)

    out = open(run_dir / "prosody.out", "w")
    process = subprocess.Popen(["prosody", "--config", str(run_dir / "prosody.cfg.lua"), "-F"],
                               stdout=out, stderr=subprocess.STDOUT,
                               preexec_fn=raise_fd_limit)
    wait_for_port(C2S_PORT, "Prosody c2s", run_dir / "prosody.log")
    wait_for_port(HTTPS_PORT, "Prosody https", run_dir / "prosody.log")
    pid = int((run_dir / "prosody.pid").read_text())
    return process, pid


def raise_fd_limit():
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def wait_for_port(port, what, log):
    deadline = time.time() + 15
    while time.time() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    sys.exit(f"error: {what} did not listen on 127.0.0.1:{port} within 15 s; see {log}")


# ---- the three tools -------------------------------------------------------------

class Case:
    """One measurement: a tool, a transport, TLS or not, idle or busy."""

    def __init__(self, tool, transport, tls, kind, bots, rooms, out_dir):
        self.tool, self.transport, self.tls, self.kind = tool, transport, tls, kind
        self.bots, self.rooms = bots, rooms
        self.name = f"{kind}-{tool}-{transport}{'-tls' if tls else ''}"
        self.dir = out_dir / self.name
        self.domain = "tls.localhost" if tls else "anon.localhost"
        if kind == "idle":
            # 100 arrivals a second, then at least 15 s idle before leaving.
            self.join_rate = 100.0
            self.talk_rate = 0.0
            self.talk_after_s = 0.0
            self.talk_duration_s = 0.0
            self.leave_after_s = bots / self.join_rate + 15.0
        else:
            self.join_rate = 10.0
            self.talk_rate = 1.0
            self.talk_after_s = 10.0
            self.talk_duration_s = 40.0
            self.leave_after_s = 55.0

    def room(self, index):
        return f"{self.name}-{index % self.rooms}"

    def service_url(self):
        if self.transport == "websocket":
            return (f"wss://127.0.0.1:{HTTPS_PORT}/xmpp-websocket" if self.tls
                    else f"ws://127.0.0.1:{HTTP_PORT}/xmpp-websocket")
        return f"xmpp://127.0.0.1:{C2S_PORT}"


def run_xmppload(case, sampler):
    scenario = case.dir / "scenario.toml"
    lines = [
        f'name = "{case.name}"',
        "[server]",
        f'domain = "{case.domain}"',
        f'muc_domain = "{MUC}"',
        f'c2s = "127.0.0.1:{C2S_PORT}"',
        # A c2s case has no WebSocket endpoint to name.
        f'websocket_url = "{case.service_url()}"' if case.transport == "websocket" else "",
        f'tls = "{"starttls-required" if case.tls and case.transport == "c2s" else "none"}"',
        f"accept_invalid_certs = {'true' if case.tls else 'false'}",
        "[agents]",
        f'addresses = ["http://127.0.0.1:{AGENT_PORT}"]',
        "[[timeline]]",
        "wait_s = 2.0",
        "[[timeline]]",
        f'group = "{case.kind}"',
        f'transport = "{case.transport}"',
        f"bots = {case.bots}",
        f'room = "{case.name}"',
        f"rooms = {case.rooms}",
        f"join_rate = {case.join_rate}",
        f"talk_after_s = {case.talk_after_s}",
        f"talk_rate = {case.talk_rate}",
        f"talk_duration_s = {case.talk_duration_s}",
        f"leave_after_s = {case.leave_after_s}",
        "body_bytes = 64",
        "stream_management = false",
    ]
    scenario.write_text("\n".join(lines) + "\n")
    log = open(case.dir / "agent.log", "w")
    agent = subprocess.Popen([str(ROOT / "target/release/agent"), "--listen", f"127.0.0.1:{AGENT_PORT}",
                              "--name", "bench-agent"], stdout=log, stderr=subprocess.STDOUT,
                             preexec_fn=raise_fd_limit)
    try:
        wait_for_port(AGENT_PORT, "the agent", case.dir / "agent.log")
        sampler.tool_pid = agent.pid
        results = case.dir / "results"
        coordinator = subprocess.run(
            [str(ROOT / "target/release/coordinator"), "run", str(scenario), "--results-dir", str(results)],
            capture_output=True, text=True)
        (case.dir / "coordinator.log").write_text(coordinator.stdout + coordinator.stderr)
        time.sleep(1.0)
    finally:
        agent.send_signal(signal.SIGINT)
        agent.wait(timeout=30)
    folders = sorted(p for p in results.iterdir() if p.is_dir()) if results.is_dir() else []
    if coordinator.returncode != 0 or not folders:
        raise RuntimeError(f"xmppload run failed (exit {coordinator.returncode}); see {case.dir}/coordinator.log")
    return xmppload_counts(folders[-1])


def xmppload_counts(folder):
    import csv
    run = json.loads((folder / "run.json").read_text())
    start = run["started_unix_micros"] / 1e6
    rows = list(csv.DictReader((folder / "bots.csv").open()))
    last = rows[-1]
    return {
        "joined": int(last["joined_total"]),
        "failed": int(last["failed_total"]),
        "sent": int(last["messages_sent"]),
        "received_series": [(start + float(r["t_s"]), int(r["messages_received"])) for r in rows],
    }


def run_tsung(case, sampler):
    if case.transport != "c2s":
        raise ValueError("Tsung's jabber plugin runs over TCP only")
    tls_steps = ""
    if case.tls:
        tls_steps = ('<request><jabber type="starttls" ack="bidi_ack"/></request>\n'
                     '      <request><jabber type="connect" ack="local"/></request>\n')
    if case.kind == "idle":
        # Spread the idle bots over the rooms like the other tools do.
        room_var = ('<setdynvars sourcetype="eval" code="fun({_Pid,DynVars}) -> '
                    '{ok,Id} = ts_dynvars:lookup(tsung_userid,DynVars), '
                    f'integer_to_list(Id rem {case.rooms}) end."><var name="room"/></setdynvars>')
        room = f"{case.name}-%%_room%%"
        talk = f'<thinktime value="{int(case.leave_after_s)}" random="false"/>'
    else:
        room_var = ""
        room = f"{case.name}-0"
        messages = int(case.talk_duration_s * case.talk_rate)
        talk = (f'<thinktime value="{int(case.talk_after_s)}" random="false"/>\n'
                f'      <for from="1" to="{messages}" var="i">\n'
                f'        <request><jabber type="muc:chat" ack="no_ack" size="64" room="{room}"/></request>\n'
                f'        <thinktime value="1" random="false"/>\n'
                f'      </for>\n'
                f'      <thinktime value="{int(case.leave_after_s - case.talk_after_s - messages)}" random="false"/>')
    config = f"""<?xml version="1.0"?>
<!DOCTYPE tsung SYSTEM "/usr/share/tsung/tsung-1.0.dtd">
<tsung loglevel="notice" version="1.0">
  <clients><client host="localhost" use_controller_vm="true" maxusers="60000"/></clients>
  <servers><server host="127.0.0.1" port="{C2S_PORT}" type="tcp"/></servers>
  <load>
    <arrivalphase phase="1" duration="{int(2 * case.bots / case.join_rate) + 2}" unit="second">
      <users maxnumber="{case.bots}" interarrival="{1 / case.join_rate:.4f}" unit="second"/>
    </arrivalphase>
  </load>
  <options>
    <option type="ts_jabber" name="domain" value="{case.domain}"/>
    <option type="ts_jabber" name="userid_max" value="1000000"/>
    <option type="ts_jabber" name="username" value="unused"/>
    <option type="ts_jabber" name="passwd" value="unused"/>
    <option type="ts_jabber" name="muc_service" value="{MUC}"/>
  </options>
  <sessions>
    <session bidi="true" probability="100" name="bot" type="ts_jabber">
      <request><jabber type="connect" ack="local"/></request>
      {tls_steps}<request><jabber type="auth_sasl_anonymous" ack="local"/></request>
      <request><jabber type="connect" ack="local"/></request>
      <request><jabber type="auth_sasl_bind" ack="local"/></request>
      {room_var}
      <request subst="true"><jabber type="muc:join" ack="local" room="{room}" nick="t%%_tsung_userid%%"/></request>
      {talk}
      <request><jabber type="close" ack="no_ack"/></request>
    </session>
  </sessions>
</tsung>
"""
    path = case.dir / "tsung.xml"
    path.write_text(config)
    logs = case.dir / "tsung-log"
    out = open(case.dir / "tsung.out", "w")
    tsung = subprocess.Popen(["tsung", "-f", str(path), "-l", str(logs), "start"],
                             stdout=out, stderr=subprocess.STDOUT, preexec_fn=raise_fd_limit)
    deadline = time.time() + 10
    while sampler.tool_pid is None and time.time() < deadline:
        sampler.tool_pid = find_pid("tsung_controller", tsung.pid)
        time.sleep(0.05)
    if sampler.tool_pid is None:
        tsung.kill()
        raise RuntimeError(f"Tsung's Erlang VM did not start; see {case.dir}/tsung.out")
    tsung.wait(timeout=case.leave_after_s + case.bots / case.join_rate + 120)
    return tsung_counts(logs)


def tsung_counts(logs):
    """Last cumulative values of Tsung's own counters in tsung.log."""
    log = next(logs.glob("*/tsung.log"))
    counts = {}
    for line in log.read_text().splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[0] == "stats:":
            counts[parts[1]] = parts[-1] if len(parts) == 3 else parts[-1]
    errors = sum(int(v) for k, v in counts.items() if k.startswith("error"))
    return {"users": int(counts.get("users_count", 0)), "errors": errors,
            "sent_noack": int(counts.get("request_noack", 0))}


def run_xmppjs(case, sampler):
    modules = ROOT / "deploy/local/xmppjs/node_modules"
    if not modules.is_dir():
        raise RuntimeError("deploy/local/xmppjs/node_modules is missing; run npm ci in deploy/local/xmppjs")
    settings = {
        "service": case.service_url(), "domain": case.domain, "bots": case.bots,
        "join_rate": case.join_rate, "talk_after_s": case.talk_after_s, "talk_rate": case.talk_rate,
        "talk_duration_s": case.talk_duration_s, "leave_after_s": case.leave_after_s,
        "body_bytes": 64, "deadline_s": case.leave_after_s + case.bots / case.join_rate + 60,
        "start_delay_s": 2.0,
        "rooms": [f"{case.room(i)}@{MUC}" for i in range(case.rooms)],
    }
    (case.dir / "settings.json").write_text(json.dumps(settings, indent=2))
    env = dict(os.environ)
    if case.tls:
        # The bench Prosody's certificate is self-signed.
        env["NODE_TLS_REJECT_UNAUTHORIZED"] = "0"
    node = subprocess.Popen(["node", str(ROOT / "deploy/local/xmppjs/bots.js"), json.dumps(settings)],
                            stdout=subprocess.PIPE, stderr=open(case.dir / "node.err", "w"),
                            text=True, env=env, preexec_fn=raise_fd_limit)
    sampler.tool_pid = node.pid
    series = []
    last = {}
    for line in node.stdout:
        last = json.loads(line)
        series.append((time.time(), last["received"]))
    node.wait(timeout=30)
    (case.dir / "node.out").write_text(json.dumps(last) + "\n")
    return {"joined": last.get("joined", 0), "failed": last.get("failed", 0),
            "sent": last.get("sent", 0), "received_series": series}


TOOLS = {"xmppload": run_xmppload, "tsung": run_tsung, "xmppjs": run_xmppjs}


# ---- figures ---------------------------------------------------------------

def idle_figures(case, rows):
    first = next((r for r in rows if r["connections"] > 0), None)
    if first is None:
        raise RuntimeError(f"{case.name}: no connection reached Prosody")
    baseline = [r["tool_rss"] for r in rows if r["t"] < first["t"] and r["tool_rss"]]
    full = next((r for r in rows if r["connections"] >= case.bots), None)
    if full is None:
        most = max(r["connections"] for r in rows)
        raise RuntimeError(f"{case.name}: only {most} of {case.bots} connections were up at once")
    plateau = [r["tool_rss"] for r in rows
               if full["t"] + 2.0 <= r["t"] <= full["t"] + 10.0 and r["tool_rss"]]
    per_bot = (statistics.median(plateau) - baseline[-1]) / case.bots
    return {"kib_per_bot": per_bot / 1024, "baseline_mib": baseline[-1] / 2**20,
            "plateau_mib": statistics.median(plateau) / 2**20}


def busy_figures(case, rows, counts):
    first = next((r for r in rows if r["connections"] > 0), None)
    if first is None:
        raise RuntimeError(f"{case.name}: no connection reached Prosody")
    t0 = first["t"]
    # Every bot is in the room and talking from the last arrival's first
    # message until the first bot's last message. The window keeps 2 s clear
    # of each end.
    last_arrival = (case.bots - 1) / case.join_rate
    start = t0 + last_arrival + case.talk_after_s + 2.0
    end = t0 + case.talk_after_s + case.talk_duration_s - 2.0
    tool_cpu = value_at(rows, "tool_cpu", end) - value_at(rows, "tool_cpu", start)
    prosody_cpu = value_at(rows, "prosody_cpu", end) - value_at(rows, "prosody_cpu", start)
    scheduled = case.bots * case.talk_rate * case.bots * (end - start)
    figures = {"window_s": end - start, "tool_cpu_s": tool_cpu, "prosody_cpu_s": prosody_cpu,
               "stanzas_scheduled": scheduled,
               "cpu_ms_per_1000": tool_cpu / scheduled * 1e6,
               "tool_to_prosody": tool_cpu / prosody_cpu}
    series = counts.get("received_series")
    if series:
        def received_at(t):
            before = [n for (ts, n) in series if ts <= t]
            return before[-1] if before else 0
        figures["stanzas_counted"] = received_at(end) - received_at(start)
    return figures


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--idle-bots", type=int, default=1000)
    parser.add_argument("--rooms", type=int, default=50)
    parser.add_argument("--busy-bots", type=int, default=50)
    parser.add_argument("--only", help="comma-separated case names to run (for trials)")
    args = parser.parse_args()
    for tool in ("tsung", "node", "openssl", "prosody"):
        if shutil.which(tool) is None:
            sys.exit(f"error: `{tool}` is not on the PATH; deploy/local/bench-tools.sh says what to install")
    # --only adds cases to an earlier run's folder, for example after one failed.
    args.out.mkdir(parents=True, exist_ok=bool(args.only))
    run_dir = Path(tempfile.mkdtemp(prefix="xmppload-bench-"))
    prosody, prosody_pid = start_prosody(run_dir)

    cases = []
    for tool, transport, tls in [
        ("xmppload", "websocket", False), ("xmppload", "websocket", True),
        ("xmppload", "c2s", False), ("xmppload", "c2s", True),
        ("tsung", "c2s", False), ("tsung", "c2s", True),
        ("xmppjs", "websocket", False), ("xmppjs", "websocket", True),
        ("xmppjs", "c2s", False), ("xmppjs", "c2s", True),
    ]:
        cases.append(Case(tool, transport, tls, "idle", args.idle_bots, args.rooms, args.out))
    for tool, transport in [("xmppload", "websocket"), ("xmppload", "c2s"), ("tsung", "c2s"),
                            ("xmppjs", "websocket"), ("xmppjs", "c2s")]:
        cases.append(Case(tool, transport, False, "busy", args.busy_bots, 1, args.out))
    if args.only:
        wanted = set(args.only.split(","))
        cases = [c for c in cases if c.name in wanted]

    results = []
    try:
        for case in cases:
            print(f"== {case.name}: {case.bots} bots", file=sys.stderr, flush=True)
            case.dir.mkdir(parents=True)
            sampler = Sampler(prosody_pid, [C2S_PORT, HTTP_PORT, HTTPS_PORT])
            try:
                counts = TOOLS[case.tool](case, sampler)
            finally:
                rows = sampler.stop()
            (case.dir / "samples.json").write_text(json.dumps(rows))
            figures = idle_figures(case, rows) if case.kind == "idle" else busy_figures(case, rows, counts)
            counts.pop("received_series", None)
            failed = counts.get("failed", 0) + counts.get("errors", 0)
            if failed:
                print(f"warning: {case.name}: {failed} bots failed; its figures cover fewer bots",
                      file=sys.stderr, flush=True)
            result = {"case": case.name, "tool": case.tool, "transport": case.transport,
                      "tls": case.tls, "kind": case.kind, "bots": case.bots, "counts": counts, "failed": failed, **figures}
            print(json.dumps(result), file=sys.stderr, flush=True)
            results.append(result)
            # Let Prosody settle between cases.
            time.sleep(3.0)
    finally:
        prosody.send_signal(signal.SIGTERM)
        prosody.wait(timeout=30)
        shutil.copy(run_dir / "prosody.cfg.lua", args.out / "prosody.cfg.lua")
        shutil.rmtree(run_dir, ignore_errors=True)
        bench = args.out / "bench.json"
        earlier = json.loads(bench.read_text()) if bench.exists() else []
        names = {r["case"] for r in results}
        results = [r for r in earlier if r["case"] not in names] + results
        bench.write_text(json.dumps(results, indent=2) + "\n")
    print_tables(results)


def print_tables(results):
    print("| tool | transport | TLS | idle bots | memory per idle bot (KiB) |")
    print("| --- | --- | --- | --- | --- |")
    for r in results:
        if r["kind"] == "idle":
            note = f" ({r['failed']} failed)" if r["failed"] else ""
            print(f"| {r['tool']} | {r['transport']} | {'yes' if r['tls'] else 'no'} | {r['bots']}{note} "
                  f"| {r['kib_per_bot']:.1f} |")
    print()
    print("| tool | transport | bots | window (s) | stanzas received (scheduled / counted) "
          "| CPU per 1,000 received stanzas (ms) | tool CPU / Prosody CPU |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for r in results:
        if r["kind"] == "busy":
            counted = r.get("stanzas_counted", "n/a")
            note = f" ({r['failed']} failed)" if r["failed"] else ""
            print(f"| {r['tool']} | {r['transport']} | {r['bots']}{note} | {r['window_s']:.0f} "
                  f"| {r['stanzas_scheduled']:.0f} / {counted} | {r['cpu_ms_per_1000']:.1f} "
                  f"| {r['tool_to_prosody']:.1%} |")


if __name__ == "__main__":
    main()
