//! Several hosts on one machine: Prosody and the monitor in one network
//! namespace, a bot agent in each of two others, and the coordinator in the
//! root namespace, all joined by the bridge of `deploy/netns/hosts.sh`.
//!
//! Prosody runs through `ip netns exec`. The agents and the monitor run in
//! this process, each on a thread that has entered its namespace with
//! setns(2) before it builds its tokio runtime. A socket belongs to the
//! namespace of the thread that created it, and threads started later by
//! that runtime inherit the namespace, so every connection of those bots
//! leaves from its agent's address. Running them in-process keeps the test
//! on the code just built instead of whatever binaries lie in `target/`.
//!
//! Needs root. Where a namespace cannot be created (no root, no
//! CAP_SYS_ADMIN, a container that forbids it), the test prints why and
//! passes without running.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::File;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;
use xmppload_agent::policy::{AllowedTarget, TargetPolicy};
use xmppload_agent::testing::{Prosody, ProsodyOptions};
use xmppload_coordinator::run::{RunOptions, run};
use xmppload_coordinator::scenario::Overrides;

mod common;
use common::{number, read_csv};

/// Bots per group, dealt over the two agents.
const BOTS: u64 = 8;
const TALK_RATE: f64 = 2.0;
const TALK_DURATION_S: f64 = 2.0;
/// Network IDs tried in turn when one is taken by a parallel run.
const NETWORK_ATTEMPTS: u32 = 20;
/// Pause between two `ss` snapshots of the server namespace.
const SOCKET_POLL: Duration = Duration::from_millis(150);
/// Upper bound on the whole run, so a hang fails the test instead of CI.
const RUN_TIMEOUT: Duration = Duration::from_secs(120);

fn hosts_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/netns/hosts.sh")
}

/// A network built by `hosts.sh up`, removed by `hosts.sh down` on drop, so
/// a failing assertion does not leave namespaces behind.
struct Network {
    id: u32,
}

impl Network {
    fn namespace(&self, host: &str) -> String {
        format!("xmppload-{}-{host}", self.id)
    }

    fn address(&self, last: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(10, 77, self.id as u8, last))
    }

    fn server(&self) -> IpAddr {
        self.address(1)
    }

    fn load(&self, index: u8) -> IpAddr {
        self.address(1 + index)
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        let status = Command::new("bash")
            .arg(hosts_script())
            .args(["down", &self.id.to_string()])
            .status();
        if !matches!(status, Ok(status) if status.success()) {
            eprintln!(
                "removing network {} failed ({status:?}); run: deploy/netns/hosts.sh down {}",
                self.id, self.id
            );
        }
    }
}

/// Checks that this process may create a network namespace, by creating
/// one. Returns why not when it may not.
fn namespaces_unavailable() -> Option<String> {
    let probe = format!("xmppload-probe-{}", std::process::id());
    let output = match Command::new("ip").args(["netns", "add", &probe]).output() {
        Ok(output) => output,
        Err(err) => return Some(format!("`ip` could not run ({err}); install iproute2")),
    };
    if !output.status.success() {
        return Some(String::from_utf8_lossy(&output.stderr).trim().to_owned());
    }
    let _ = Command::new("ip").args(["netns", "del", &probe]).status();
    None
}

/// Builds a network under the first free ID, starting from one derived
/// from the process id so that parallel runs rarely try the same one.
fn build_network() -> Network {
    let first = std::process::id() % 250;
    for attempt in 0..NETWORK_ATTEMPTS {
        let id = (first + attempt) % 250 + 1;
        let output = Command::new("bash")
            .arg(hosts_script())
            .args(["up", &id.to_string()])
            .output()
            .expect("run deploy/netns/hosts.sh");
        // 73 means this ID is taken; any other failure is a real one.
        match output.status.code() {
            Some(0) => return Network { id },
            Some(73) => continue,
            _ => panic!(
                "hosts.sh up {id} failed with {}: {}",
                output.status,
                String::from_utf8_lossy(&output.stderr)
            ),
        }
    }
    panic!(
        "no free network ID after {NETWORK_ATTEMPTS} attempts; remove old ones with hosts.sh down ID"
    );
}

/// Runs `make()` on a new thread inside network namespace `namespace`, on a
/// current-thread runtime of its own. The thread binds a listener on `ip`
/// port 0 there and passes it to `make`, and this returns the bound address.
fn spawn_in_namespace<F, Fut>(namespace: &str, ip: IpAddr, make: F) -> SocketAddr
where
    F: FnOnce(tokio::net::TcpListener) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()>,
{
    let path = format!("/var/run/netns/{namespace}");
    let (bound_tx, bound_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let handle = File::open(&path).unwrap_or_else(|err| panic!("open {path}: {err}"));
        // SAFETY: setns only reads the descriptor, which stays open for the
        // call, and changes the namespace of this thread alone.
        let result = unsafe { libc::setns(handle.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(
            result,
            0,
            "setns into {path} failed: {}",
            std::io::Error::last_os_error()
        );
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("build a runtime");
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::bind(SocketAddr::new(ip, 0))
                .await
                .unwrap_or_else(|err| panic!("bind {ip}:0 in {path}: {err}"));
            bound_tx
                .send(listener.local_addr().expect("bound address"))
                .expect("test is waiting for the address");
            make(listener).await;
        });
    });
    bound_rx
        .recv_timeout(Duration::from_secs(10))
        .expect("namespace thread bound its listener")
}

/// Highest number of established connections seen at once from each peer
/// address to each of `ports`, in the server namespace.
type PeakConnections = BTreeMap<(u16, IpAddr), usize>;

/// Takes `ss` snapshots of the server namespace until `stop` is set or
/// `RUN_TIMEOUT` has passed.
fn watch_connections(namespace: String, ports: Vec<u16>, stop: Arc<AtomicBool>) -> PeakConnections {
    let started = Instant::now();
    let mut peaks = PeakConnections::new();
    while !stop.load(Ordering::Relaxed) && started.elapsed() < RUN_TIMEOUT {
        let output = Command::new("ip")
            .args([
                "netns",
                "exec",
                &namespace,
                "ss",
                "-Htn",
                "state",
                "established",
            ])
            .output()
            .expect("run ss in the server namespace");
        assert!(output.status.success(), "ss failed: {output:?}");

        let mut snapshot: HashMap<(u16, IpAddr), usize> = HashMap::new();
        // With a state filter, ss prints Recv-Q, Send-Q, local and peer.
        for line in String::from_utf8_lossy(&output.stdout).lines() {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (Some(local), Some(peer)) = (fields.get(2), fields.get(3)) else {
                continue;
            };
            let (Ok(local), Ok(peer)) = (local.parse::<SocketAddr>(), peer.parse::<SocketAddr>())
            else {
                continue;
            };
            if ports.contains(&local.port()) {
                *snapshot.entry((local.port(), peer.ip())).or_default() += 1;
            }
        }
        for (key, count) in snapshot {
            let peak = peaks.entry(key).or_default();
            *peak = (*peak).max(count);
        }
        std::thread::sleep(SOCKET_POLL);
    }
    peaks
}

fn scenario(prosody: &Prosody) -> String {
    format!(
        r#"
name = "multihost"

[server]
domain = "{domain}"
muc_domain = "{muc}"
c2s = "{c2s}"
websocket_url = "{ws}"

[monitor]
address = "http://127.0.0.1:1"
interval_ms = 100

[[monitor.process]]
name = "prosody"
pidfile = "{pidfile}"

[defaults]
room = "multihost"
join_rate = 8.0
talk_after_s = 1.5
talk_rate = {TALK_RATE}
talk_duration_s = {TALK_DURATION_S}
leave_after_s = 5.0

[[timeline]]
group = "c2s"
transport = "c2s"
bots = {BOTS}

[[timeline]]
wait_s = 0.5

[[timeline]]
group = "websocket"
transport = "websocket"
bots = {BOTS}
"#,
        domain = prosody.domain(),
        muc = prosody.muc_domain(),
        c2s = prosody.c2s_addr(),
        ws = prosody.websocket_url(),
        pidfile = prosody.pidfile().display(),
    )
}

/// Last cumulative value of `column` for each agent in `group`.
fn per_agent(bots: &[HashMap<String, String>], group: &str, column: &str) -> BTreeMap<String, u64> {
    bots.iter()
        .filter(|row| row["group"] == group)
        .map(|row| (row["agent"].clone(), number(row, column) as u64))
        .collect()
}

/// Bots on two load hosts reach Prosody on a third from their own addresses,
/// and the monitor beside Prosody measures its CPU.
#[test]
fn agents_on_separate_hosts() {
    if let Some(reason) = namespaces_unavailable() {
        eprintln!("skipped: cannot create a network namespace here: {reason}");
        return;
    }
    let network = build_network();

    let prosody = Prosody::start(ProsodyOptions {
        interface: Some(network.server()),
        netns: Some(network.namespace("server")),
        ..ProsodyOptions::default()
    })
    .expect("start Prosody in the server namespace");

    let stop = CancellationToken::new();
    let mut agents = Vec::new();
    for index in [1u8, 2] {
        let name = format!("load{index}");
        let server: AllowedTarget = network.server().to_string().parse().unwrap();
        let config = xmppload_agent::AgentConfig {
            name: name.clone(),
            targets: TargetPolicy::Only(vec![server]),
            ..xmppload_agent::AgentConfig::default()
        };
        let stop = stop.clone();
        let addr = spawn_in_namespace(
            &network.namespace(&name),
            network.load(index),
            move |listener| async move {
                xmppload_agent::serve(listener, config, stop)
                    .await
                    .expect("agent serves");
            },
        );
        agents.push(format!("http://{addr}"));
    }
    let monitor_stop = stop.clone();
    let monitor = spawn_in_namespace(
        &network.namespace("server"),
        network.server(),
        move |listener| async move {
            let config = xmppload_monitor::MonitorConfig::default();
            xmppload_monitor::serve(listener, config, monitor_stop)
                .await
                .expect("monitor serves");
        },
    );

    let watching = Arc::new(AtomicBool::new(false));
    let watcher = {
        let namespace = network.namespace("server");
        let ports = vec![prosody.c2s_addr().port(), prosody.http_addr().port()];
        let stop = watching.clone();
        std::thread::spawn(move || watch_connections(namespace, ports, stop))
    };

    let work = tempfile::tempdir().unwrap();
    let scenario_path = work.path().join("multihost.toml");
    std::fs::write(&scenario_path, scenario(&prosody)).unwrap();
    let options = RunOptions {
        scenario: scenario_path,
        results_root: work.path().join("results"),
        overrides: Overrides {
            agents,
            monitor: Some(format!("http://{monitor}")),
        },
        token: None,
        tls: None,
        metrics_listen: None,
    };
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let outcome = runtime
        .block_on(async {
            tokio::time::timeout(RUN_TIMEOUT, run(options, CancellationToken::new())).await
        })
        .expect("run ends within its bound")
        .expect("run succeeds");
    watching.store(true, Ordering::Relaxed);
    let peaks = watcher.join().expect("connection watcher");
    stop.cancel();

    assert!(!outcome.stopped_early);
    assert!(outcome.problems.is_empty(), "{:?}", outcome.problems);
    let dir = outcome.dir;

    // Each agent ran half of each group, and every bot joined and left.
    let messages_per_bot = (TALK_RATE * TALK_DURATION_S).round() as u64;
    let bots = read_csv(&dir.join("bots.csv"));
    let names: BTreeSet<String> = ["load1".to_owned(), "load2".to_owned()].into();
    for group in ["c2s", "websocket"] {
        let joined = per_agent(&bots, group, "joined_total");
        assert_eq!(
            joined.keys().cloned().collect::<BTreeSet<_>>(),
            names,
            "{group} agents"
        );
        for (agent, count) in &joined {
            assert_eq!(*count, BOTS / 2, "{group} joined on {agent}");
        }
        for (agent, count) in per_agent(&bots, group, "left_total") {
            assert_eq!(count, BOTS / 2, "{group} left on {agent}");
        }
        for (agent, count) in per_agent(&bots, group, "failed_total") {
            assert_eq!(count, 0, "{group} failed on {agent}");
        }
        for (agent, count) in per_agent(&bots, group, "messages_sent") {
            assert_eq!(
                count,
                BOTS / 2 * messages_per_bot,
                "{group} sent on {agent}"
            );
        }
        for (agent, count) in per_agent(&bots, group, "messages_received") {
            assert_eq!(
                count,
                BOTS / 2 * messages_per_bot * BOTS,
                "{group} received on {agent}"
            );
        }
    }

    // Schedule lag: one join sample per bot and one send sample per message.
    let lag = read_csv(&dir.join("schedule_lag.csv"));
    for group in ["c2s", "websocket"] {
        let row = |kind: &str| {
            lag.iter()
                .find(|row| row["group"] == group && row["kind"] == kind)
                .unwrap_or_else(|| panic!("no {kind} lag row for {group}: {lag:?}"))
        };
        assert_eq!(
            number(row("join"), "samples") as u64,
            BOTS,
            "{group} join-lag samples"
        );
        assert_eq!(
            number(row("send"), "samples") as u64,
            BOTS * messages_per_bot,
            "{group} send-lag samples"
        );
        for kind in ["join", "send"] {
            let (p50, max) = (number(row(kind), "p50_us"), number(row(kind), "max_us"));
            assert!(p50 <= max, "{group} {kind} lag p50 {p50} above max {max}");
            assert!(max < 2_000_000.0, "{group} {kind} lag max {max} µs");
        }
    }

    // The report shows the same sample counts, group by group.
    let report = std::fs::read_to_string(dir.join("report.md")).unwrap();
    for group in ["c2s", "websocket"] {
        let section = report
            .split("## Group ")
            .find(|section| section.starts_with(group))
            .unwrap_or_else(|| panic!("report has no section for {group}:\n{report}"));
        let join_row = format!("| join | {BOTS} |");
        let send_row = format!("| send | {} |", BOTS * messages_per_bot);
        assert!(
            section.contains(&join_row),
            "{group} lacks `{join_row}`:\n{section}"
        );
        assert!(
            section.contains(&send_row),
            "{group} lacks `{send_row}`:\n{section}"
        );
    }

    // Prosody's side of the sockets: bots of each group came from both load
    // addresses, as many at once as that agent ran, and from nowhere else.
    let loads: BTreeSet<IpAddr> = [network.load(1), network.load(2)].into();
    for (port, what) in [
        (prosody.c2s_addr().port(), "c2s"),
        (prosody.http_addr().port(), "websocket"),
    ] {
        let peers: BTreeMap<IpAddr, usize> = peaks
            .iter()
            .filter(|((local, _), _)| *local == port)
            .map(|((_, peer), count)| (*peer, *count))
            .collect();
        assert_eq!(
            peers.keys().copied().collect::<BTreeSet<_>>(),
            loads,
            "{what} peers seen by Prosody: {peaks:?}"
        );
        for (peer, count) in &peers {
            assert_eq!(
                *count as u64,
                BOTS / 2,
                "{what} connections at once from {peer}"
            );
        }
    }

    // The monitor in the server namespace sampled Prosody, and saw it work.
    let monitor_rows: Vec<_> = read_csv(&dir.join("monitor.csv"))
        .into_iter()
        .filter(|row| row["process"] == "prosody")
        .collect();
    assert!(!monitor_rows.is_empty(), "no Prosody samples");
    assert!(
        monitor_rows
            .iter()
            .all(|row| row["pid"] == prosody.pid().to_string()),
        "samples of another process"
    );
    let busiest = monitor_rows
        .iter()
        .map(|row| number(row, "cpu_percent"))
        .fold(0.0, f64::max);
    assert!(busiest > 0.0, "Prosody CPU never above 0%");

    drop(prosody);
    drop(network);
}
