//! `deploy/build-static.sh` makes binaries with no shared library and no
//! dynamic loader, and those binaries run. Each prints `--help`, and the
//! static coordinator drives a short real run through a static agent and
//! monitor, with the peers and the XMPP server addressed by host name.
//!
//! The build uses its own target directory and the dev profile without
//! debug information, because a release build of the whole workspace takes
//! too long for a test; the C runtime is linked the same way in both.

use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use xmppload_agent::testing::{Prosody, ProsodyOptions};

const BINARIES: [&str; 3] = ["agent", "monitor-agent", "coordinator"];
/// Bound on the nested cargo build (a cold build on 2 busy cores).
const BUILD_TIMEOUT: Duration = Duration::from_secs(1800);
/// Bound on a started binary opening its port.
const LISTEN_TIMEOUT: Duration = Duration::from_secs(10);
/// Bound on the coordinator's run of the short scenario below (about 8 s).
const RUN_TIMEOUT: Duration = Duration::from_secs(120);

/// Builds the static binaries once for all tests in this file and returns
/// the folder that contains them.
fn static_binaries() -> &'static Path {
    static DIST: OnceLock<PathBuf> = OnceLock::new();
    DIST.get_or_init(|| {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let scratch = Path::new(env!("CARGO_TARGET_TMPDIR"));
        let dist = scratch.join("static-dist");
        let mut child = Command::new(root.join("deploy/build-static.sh"))
            .arg(&dist)
            .env("XMPPLOAD_STATIC_TARGET_DIR", scratch.join("static-target"))
            .env("XMPPLOAD_STATIC_PROFILE", "dev")
            .env("CARGO_PROFILE_DEV_DEBUG", "0")
            .spawn()
            .expect("failed to run deploy/build-static.sh");
        let status = wait_bounded(&mut child, BUILD_TIMEOUT)
            .unwrap_or_else(|| panic!("deploy/build-static.sh took more than {BUILD_TIMEOUT:?}"));
        assert!(status.success(), "deploy/build-static.sh failed: {status}");
        dist
    })
}

/// Waits for a child up to `timeout`, and kills it after that.
fn wait_bounded(child: &mut Child, timeout: Duration) -> Option<std::process::ExitStatus> {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if let Some(status) = child.try_wait().expect("failed to wait for a child") {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

fn readelf(option: &str, binary: &Path) -> String {
    let output = Command::new("readelf")
        .args([option, "--wide"])
        .arg(binary)
        .output()
        .expect("failed to run readelf (Debian package binutils)");
    assert!(
        output.status.success(),
        "readelf {option} {}: {output:?}",
        binary.display()
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// No binary names a shared library or a program interpreter.
#[test]
fn binaries_are_static() {
    let dist = static_binaries();
    for name in BINARIES {
        let binary = dist.join(name);

        let dynamic = readelf("--dynamic", &binary);
        assert!(
            !dynamic.contains("(NEEDED)"),
            "{name} needs shared libraries:\n{dynamic}"
        );

        let headers = readelf("--program-headers", &binary);
        assert!(
            headers.contains("LOAD"),
            "readelf printed no program headers for {name}:\n{headers}"
        );
        assert!(
            !headers.contains("INTERP"),
            "{name} has a program interpreter:\n{headers}"
        );
    }
}

/// Each binary starts and prints its usage.
#[test]
fn binaries_print_help() {
    let dist = static_binaries();
    for name in BINARIES {
        let output = Command::new(dist.join(name))
            .arg("--help")
            .output()
            .unwrap_or_else(|err| panic!("failed to start {name}: {err}"));
        assert!(output.status.success(), "{name} --help: {output:?}");
        let help = String::from_utf8_lossy(&output.stdout);
        assert!(help.contains("Usage:"), "{name} --help printed:\n{help}");
    }
}

/// Kills a started binary when the test ends, whatever its outcome.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("failed to bind a free port");
    listener
        .local_addr()
        .expect("bound socket has an address")
        .port()
}

fn start(binary: &Path, args: &[&str]) -> Running {
    let child = Command::new(binary)
        .args(args)
        .stdout(Stdio::null())
        .spawn()
        .unwrap_or_else(|err| panic!("failed to start {}: {err}", binary.display()));
    Running(child)
}

fn wait_for_listener(port: u16) {
    let start = Instant::now();
    while TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_err() {
        assert!(
            start.elapsed() < LISTEN_TIMEOUT,
            "nothing listens on 127.0.0.1:{port} after {LISTEN_TIMEOUT:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Returns a name other than `localhost` that /etc/hosts maps to
/// 127.0.0.0/8, so that the test reads that file through the static C library.
fn loopback_name_from_hosts() -> String {
    let hosts = std::fs::read_to_string("/etc/hosts").expect("failed to read /etc/hosts");
    hosts
        .lines()
        .map(|line| line.split('#').next().unwrap_or(""))
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let address = fields.next()?;
            address
                .starts_with("127.")
                .then(|| fields.find(|name| *name != "localhost" && !name.contains("localhost")))
                .flatten()
                .map(str::to_owned)
        })
        .next()
        .expect("/etc/hosts maps no name other than localhost to 127.0.0.0/8; add one, for example `127.0.1.1 loadtest-host`")
}

/// The static coordinator runs a short scenario through a static agent and
/// a static monitor against a real Prosody. It reaches the agent as
/// `localhost` and the monitor by a name from /etc/hosts, and the agent
/// reaches the XMPP server as `localhost`.
#[test]
fn static_run_resolves_names() {
    let dist = static_binaries();
    let prosody = Prosody::start(ProsodyOptions::default()).expect("failed to start Prosody");
    let hosts_name = loopback_name_from_hosts();

    let agent_port = free_port();
    let agent_listen = format!("127.0.0.1:{agent_port}");
    let _agent = start(
        &dist.join("agent"),
        &["--listen", &agent_listen, "--name", "static-agent"],
    );
    let monitor_port = free_port();
    let monitor_listen = format!("127.0.0.1:{monitor_port}");
    let _monitor = start(
        &dist.join("monitor-agent"),
        &["--listen", &monitor_listen, "--name", "static-monitor"],
    );
    wait_for_listener(agent_port);
    wait_for_listener(monitor_port);

    let scratch = tempfile::tempdir().expect("failed to create a temporary directory");
    let scenario_path = scratch.path().join("scenario.toml");
    let scenario = format!(
        r#"
name = "static-binaries"

[server]
domain = "{domain}"
muc_domain = "{muc}"
c2s = "localhost:{c2s_port}"
websocket_url = "ws://localhost:{http_port}/xmpp-websocket"

[monitor]
address = "http://{hosts_name}:{monitor_port}"
interval_ms = 100

[[monitor.process]]
name = "prosody"
pidfile = "{pidfile}"

[agents]
addresses = ["http://localhost:{agent_port}"]

[defaults]
room = "static"
join_rate = 10.0
talk_after_s = 1.0
talk_rate = 2.0
talk_duration_s = 1.0
leave_after_s = 3.0

[[timeline]]
group = "c2s"
transport = "c2s"
bots = 3

[[timeline]]
group = "websocket"
transport = "websocket"
bots = 3
"#,
        domain = prosody.domain(),
        muc = prosody.muc_domain(),
        c2s_port = prosody.c2s_addr().port(),
        http_port = prosody.http_addr().port(),
        pidfile = prosody.pidfile().display(),
    );
    std::fs::write(&scenario_path, scenario).expect("failed to write the scenario");
    let results = scratch.path().join("results");

    let mut coordinator = Command::new(dist.join("coordinator"))
        .arg("run")
        .arg(&scenario_path)
        .arg("--results-dir")
        .arg(&results)
        .stdout(Stdio::null())
        .spawn()
        .expect("failed to start the static coordinator");
    let status = wait_bounded(&mut coordinator, RUN_TIMEOUT)
        .unwrap_or_else(|| panic!("the static coordinator ran longer than {RUN_TIMEOUT:?}"));
    assert_eq!(
        status.code(),
        Some(0),
        "coordinator run exited with {status}"
    );

    let run_json = std::fs::read_to_string(results.join("01/run.json"))
        .expect("the run wrote no results/01/run.json");
    let run: serde_json::Value = serde_json::from_str(&run_json).expect("run.json is JSON");
    assert_eq!(run["agents"][0]["name"], "static-agent");
    assert_eq!(
        run["agents"][0]["address"],
        format!("http://localhost:{agent_port}")
    );
    assert_eq!(run["monitor"]["name"], "static-monitor");
    assert_eq!(
        run["monitor"]["address"],
        format!("http://{hosts_name}:{monitor_port}")
    );
}
