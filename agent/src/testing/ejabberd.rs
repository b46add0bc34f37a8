//! A throwaway ejabberd for integration tests.
//!
//! [`Ejabberd::start`] fills `deploy/local/ejabberd.yml.template` with two
//! free loopback ports and a fresh run directory, then starts the Erlang VM
//! with `erl -s ejabberd` in the foreground. It waits until ejabberd has
//! written its pidfile and both ports accept connections. Dropping the value
//! kills the VM and deletes the run directory.
//!
//! The VM runs without Erlang distribution (no `-sname`). So it needs no
//! node name, no cookie and no `epmd` daemon, and parallel tests cannot
//! collide on any of them. `ejabberdctl` cannot reach such a node, but the
//! tests never need it. Mnesia keeps its tables in the run directory.
//!
//! ejabberd must be installed (`apt-get install -y ejabberd`); the template
//! targets Debian's 23.01. Without it, `start` fails with that command in
//! the error rather than skipping.

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use super::{DOMAIN, MUC_DOMAIN, accepts, free_ports};

/// Template shared with the local deployment scripts.
const TEMPLATE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../deploy/local/ejabberd.yml.template"
);
/// Parent directories searched for the `ejabberd-VERSION` code directory.
/// Debian installs it under the multiarch library directory, which is not on
/// the VM's default code path, so `ERL_LIBS` has to name it. The VM's own
/// `lib` is searched too, for installs that put ejabberd there.
const LIBRARY_ROOTS: &[&str] = &["/usr/lib", "/usr/local/lib", "/usr/lib/erlang/lib"];
/// Maximum wait for ejabberd to accept connections. It starts in about 1 s
/// on an idle machine, but the VM boot is CPU-bound and tests share cores.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// Pause between readiness probes.
const PROBE_INTERVAL: Duration = Duration::from_millis(50);
/// Erlang process limit, as Debian's `ejabberdctl` sets it: each connection
/// costs ejabberd a few Erlang processes.
const MAX_ERLANG_PROCESSES: &str = "250000";

/// Distinguishes run directories of servers started by one process.
static NEXT_ID: AtomicU32 = AtomicU32::new(0);

/// A running ejabberd, killed and cleaned up on drop.
#[derive(Debug)]
pub struct Ejabberd {
    child: Child,
    run_dir: PathBuf,
    c2s_port: u16,
    http_port: u16,
}

impl Ejabberd {
    /// Writes the configuration, starts ejabberd and waits until it is ready.
    pub fn start() -> io::Result<Ejabberd> {
        let libs = find_ejabberd_libs()?;
        let template = std::fs::read_to_string(TEMPLATE).map_err(|err| {
            io::Error::new(
                err.kind(),
                format!("failed to read the ejabberd template {TEMPLATE}: {err}"),
            )
        })?;

        let run_dir = std::env::temp_dir().join(format!(
            "xmppload-ejabberd-{}-{}",
            std::process::id(),
            NEXT_ID.fetch_add(1, Ordering::Relaxed)
        ));
        if run_dir.exists() {
            std::fs::remove_dir_all(&run_dir)?;
        }
        std::fs::create_dir_all(run_dir.join("spool"))?;

        let ports = free_ports(2)?;
        let (c2s_port, http_port) = (ports[0], ports[1]);
        let config = template
            .replace("@RUN_DIR@", &run_dir.display().to_string())
            .replace("@C2S_PORT@", &c2s_port.to_string())
            .replace("@HTTP_PORT@", &http_port.to_string())
            .replace("@MUC_DOMAIN@", MUC_DOMAIN)
            .replace("@DOMAIN@", DOMAIN);
        let config_path = run_dir.join("ejabberd.yml");
        std::fs::write(&config_path, config)?;

        let output = std::fs::File::create(run_dir.join("console.log"))?;
        // Mnesia reads its directory as an Erlang term, so it is quoted.
        let mnesia_dir = format!("\"{}\"", run_dir.join("spool").display());
        let child = Command::new("erl")
            .args(["-noinput", "-noshell", "+P", MAX_ERLANG_PROCESSES])
            .args(["-mnesia", "dir", &mnesia_dir])
            .args(["-s", "ejabberd"])
            .env("ERL_LIBS", &libs)
            .env("EJABBERD_CONFIG_PATH", &config_path)
            .env("EJABBERD_LOG_PATH", run_dir.join("ejabberd.log"))
            .env("EJABBERD_PID_PATH", run_dir.join("ejabberd.pid"))
            .env("ERL_CRASH_DUMP", run_dir.join("erl_crash.dump"))
            // Keeps the VM away from the caller's ~/.erlang.cookie and
            // ~/.erlang files.
            .env("HOME", &run_dir)
            .current_dir(&run_dir)
            .stdin(Stdio::null())
            .stdout(output.try_clone()?)
            .stderr(output)
            .spawn()
            .map_err(|err| {
                if err.kind() == io::ErrorKind::NotFound {
                    io::Error::new(
                        err.kind(),
                        "erl not found: install ejabberd with `apt-get install -y ejabberd`",
                    )
                } else {
                    err
                }
            })?;

        // From here on, Drop stops the VM and removes the directory.
        let mut ejabberd = Ejabberd {
            child,
            run_dir,
            c2s_port,
            http_port,
        };
        ejabberd.wait_ready()?;
        Ok(ejabberd)
    }

    /// Polls until the pidfile names this VM and both ports accept
    /// connections.
    fn wait_ready(&mut self) -> io::Result<()> {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Err(io::Error::other(format!(
                    "ejabberd exited with {status} during startup; see {} and {}",
                    self.log_path().display(),
                    self.run_dir.join("console.log").display()
                )));
            }
            let pidfile = std::fs::read_to_string(self.pidfile()).unwrap_or_default();
            let pidfile = pidfile.trim();
            // `erl` is a shell script that execs the VM, so the child is
            // the VM itself. Anything else means the monitor would watch
            // the wrong process and Drop would not reach the VM.
            if !pidfile.is_empty() && pidfile != self.child.id().to_string() {
                return Err(io::Error::other(format!(
                    "ejabberd wrote pid {pidfile} to {}, but the started process is {}; \
                     erl must exec the Erlang VM in place",
                    self.pidfile().display(),
                    self.child.id()
                )));
            }
            if !pidfile.is_empty() && accepts(self.c2s_addr()) && accepts(self.http_addr()) {
                return Ok(());
            }
            if started.elapsed() > START_TIMEOUT {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "ejabberd was not ready after {START_TIMEOUT:?}; see {}",
                        self.log_path().display()
                    ),
                ));
            }
            std::thread::sleep(PROBE_INTERVAL);
        }
    }

    /// Process id of the Erlang VM (`beam.smp`) that runs ejabberd.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// File in which ejabberd stores the VM's pid (`EJABBERD_PID_PATH`).
    pub fn pidfile(&self) -> PathBuf {
        self.run_dir.join("ejabberd.pid")
    }

    /// Address of the c2s listener.
    pub fn c2s_addr(&self) -> SocketAddr {
        SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), self.c2s_port)
    }

    /// Address of the HTTP listener that serves WebSocket and BOSH.
    pub fn http_addr(&self) -> SocketAddr {
        SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), self.http_port)
    }

    /// `ws://` URL of the RFC 7395 endpoint.
    pub fn websocket_url(&self) -> String {
        format!("ws://{}/xmpp-websocket", self.http_addr())
    }

    /// URL of the XEP-0206 (BOSH) endpoint.
    pub fn bosh_url(&self) -> String {
        format!("http://{}/http-bind", self.http_addr())
    }

    pub fn domain(&self) -> &'static str {
        DOMAIN
    }

    pub fn muc_domain(&self) -> &'static str {
        MUC_DOMAIN
    }

    /// ejabberd's own log file; read it when a test fails.
    pub fn log_path(&self) -> PathBuf {
        self.run_dir.join("ejabberd.log")
    }

    /// Directory that contains the configuration, Mnesia tables and logs.
    pub fn run_dir(&self) -> &Path {
        &self.run_dir
    }
}

impl Drop for Ejabberd {
    fn drop(&mut self) {
        // SIGKILL, because a clean ejabberd shutdown takes seconds and the
        // state is thrown away. The VM's helper programs (erl_child_setup,
        // eimp, memsup) run in sessions of their own, so no group signal
        // reaches them. They exit by themselves when their pipes to the VM
        // close. Errors are ignored: the process may already have exited,
        // and a left-over temp directory is harmless.
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.run_dir);
    }
}

/// Finds the directory that contains `ejabberd-VERSION/ebin/ejabberd.app`,
/// for `ERL_LIBS`. It looks in each of [`LIBRARY_ROOTS`] and one level below
/// it, where Debian's multiarch directory is.
fn find_ejabberd_libs() -> io::Result<PathBuf> {
    for root in LIBRARY_ROOTS {
        let root = Path::new(root);
        let mut candidates = vec![root.to_path_buf()];
        if let Ok(entries) = std::fs::read_dir(root) {
            candidates.extend(entries.flatten().map(|entry| entry.path()));
        }
        for candidate in candidates {
            if contains_ejabberd_app(&candidate) {
                return Ok(candidate);
            }
        }
    }
    Err(io::Error::new(
        io::ErrorKind::NotFound,
        format!(
            "ejabberd not found (no ejabberd-*/ebin/ejabberd.app under {LIBRARY_ROOTS:?}): \
             install it with `apt-get install -y ejabberd`"
        ),
    ))
}

fn contains_ejabberd_app(dir: &Path) -> bool {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return false;
    };
    entries.flatten().any(|entry| {
        entry.file_name().to_string_lossy().starts_with("ejabberd-")
            && entry.path().join("ebin/ejabberd.app").is_file()
    })
}
