//! A throwaway Prosody for integration tests.
//!
//! [`Prosody::start`] fills `deploy/local/prosody.cfg.lua.template` with
//! free ports (c2s, HTTP, the XEP-0114 component) and a fresh run directory, starts `prosody -F` in the
//! foreground, and waits until its pidfile exists and the ports accept
//! connections. It listens on loopback unless the options name another
//! interface address, and it can run inside a network namespace. Dropping the value kills the process and deletes the run
//! directory. The module uses only std so that other crates' tests can use
//! it without extra dependencies.
//!
//! Prosody must be installed (`apt-get install -y prosody`); version 0.12 is
//! what the template targets. [`Ejabberd`] is the same kind of harness for
//! ejabberd, on the same domains.

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

mod ejabberd;
pub use ejabberd::Ejabberd;

/// Template shared with the local deployment scripts.
const TEMPLATE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../deploy/local/prosody.cfg.lua.template"
);
/// Prosody modules of this project, such as the Lua heap gauge.
const MODULES_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/local/modules");
/// Anonymous VirtualHost of the test server.
pub const DOMAIN: &str = "anon.localhost";
/// VirtualHost of registered accounts (`internal_hashed`, open in-band
/// registration); it offers PLAIN and SCRAM-SHA-1.
pub const ACCOUNTS_DOMAIN: &str = "localhost";
/// Like [`ACCOUNTS_DOMAIN`], with SCRAM-SHA-256 hashes; it offers PLAIN and
/// SCRAM-SHA-256.
pub const SHA256_ACCOUNTS_DOMAIN: &str = "sha256.localhost";
/// MUC component of the test server.
pub const MUC_DOMAIN: &str = "conference.anon.localhost";
/// Component settings that archive every room of the MUC service. The
/// same line is in `deploy/local/run-study.sh`.
pub const MUC_ARCHIVE_CONFIG: &str = "modules_enabled = { \"muc_mam\" }; muc_log_all_rooms = true";
/// XEP-0114 component of the test server, for component groups.
pub const COMPONENT_DOMAIN: &str = "flood.anon.localhost";
/// Secret of that component, as the template sets it.
pub const COMPONENT_SECRET: &str = "xmppload-flood";
/// Maximum wait for Prosody to accept connections.
const START_TIMEOUT: Duration = Duration::from_secs(15);
/// Pause between readiness probes.
const PROBE_INTERVAL: Duration = Duration::from_millis(50);

/// Distinguishes run directories of servers started by one process.
static NEXT_ID: AtomicU32 = AtomicU32::new(0);

/// Options for [`Prosody::start`].
#[derive(Debug, Clone, Default)]
pub struct ProsodyOptions {
    /// PEM certificate and key. When set, Prosody offers STARTTLS on c2s,
    /// serves HTTPS (and so `wss://`) on a third port, and c2s with TLS from
    /// the first byte (XEP-0368, `c2s_direct_tls_ports`) on a fourth.
    pub tls: Option<TlsFiles>,
    /// Enables Prosody's statistics with `mod_http_openmetrics` on the HTTP
    /// port (see [`Prosody::openmetrics_url`]) plus the Lua heap gauge from
    /// `deploy/local/modules`. Statistics cost Prosody CPU, so tests that
    /// measure CPU leave this off.
    pub statistics: bool,
    /// Address that c2s, HTTP and HTTPS listen on instead of 127.0.0.1. It
    /// must be reachable from the test process, which probes the ports.
    pub interface: Option<IpAddr>,
    /// Network namespace (a name under /var/run/netns) that Prosody runs in,
    /// through `ip netns exec`. Ports are still picked on the caller's
    /// loopback. Nothing else listens in a namespace that the caller just
    /// made, so they are free there too.
    pub netns: Option<String>,
    /// Keeps a new room locked until its creator configures it, as XEP-0045
    /// section 10.1 describes, instead of the template's unlocked rooms.
    pub muc_room_locking: bool,
    /// Loads `mod_muc_mam` on the MUC component and archives every room,
    /// for tests of MAM queries. Archiving costs Prosody a storage write
    /// per message, so tests that measure CPU leave this off.
    pub muc_archive: bool,
}

/// A certificate chain and its private key, both PEM.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub cert_pem: String,
    pub key_pem: String,
}

/// A running Prosody, killed and cleaned up on drop.
#[derive(Debug)]
pub struct Prosody {
    child: Child,
    run_dir: PathBuf,
    /// Address that every listener is bound to.
    interface: IpAddr,
    c2s_port: u16,
    http_port: u16,
    /// Port of the XEP-0114 component listener.
    component_port: u16,
    /// HTTPS port, only when the options carried a certificate.
    https_port: Option<u16>,
    /// Direct-TLS c2s port, only when the options carried a certificate.
    direct_tls_port: Option<u16>,
}

impl Prosody {
    /// Writes the configuration, starts Prosody and waits until it is ready.
    pub fn start(options: ProsodyOptions) -> io::Result<Prosody> {
        let template = std::fs::read_to_string(TEMPLATE).map_err(|err| {
            io::Error::new(
                err.kind(),
                format!("failed to read the Prosody template {TEMPLATE}: {err}"),
            )
        })?;

        let run_dir = std::env::temp_dir().join(format!(
            "xmppload-prosody-{}-{}",
            std::process::id(),
            NEXT_ID.fetch_add(1, Ordering::Relaxed)
        ));
        if run_dir.exists() {
            std::fs::remove_dir_all(&run_dir)?;
        }
        std::fs::create_dir_all(run_dir.join("data"))?;
        std::fs::create_dir_all(run_dir.join("certs"))?;

        let ports = free_ports(5)?;
        let (c2s_port, http_port, component_port) = (ports[0], ports[1], ports[4]);
        let https_port = options.tls.as_ref().map(|_| ports[2]);
        let direct_tls_port = options.tls.as_ref().map(|_| ports[3]);
        let interface = options.interface.unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST));
        let tls_extra = match &options.tls {
            Some(tls) => {
                let cert = run_dir.join("certs").join(format!("{DOMAIN}.crt"));
                let key = run_dir.join("certs").join(format!("{DOMAIN}.key"));
                std::fs::write(&cert, &tls.cert_pem)?;
                std::fs::write(&key, &tls.key_pem)?;
                // Later assignments win in Prosody's Lua configuration, so
                // these override the template's empty `https_ports`. The
                // direct-TLS listener takes the global `ssl` certificate.
                format!(
                    "ssl = {{ certificate = \"{cert}\"; key = \"{key}\"; }}\n\
                     https_ports = {{ {https} }}\nhttps_interfaces = {{ \"{interface}\" }}\n\
                     https_ssl = {{ certificate = \"{cert}\"; key = \"{key}\"; }}\n\
                     c2s_direct_tls_ports = {{ {direct} }}",
                    cert = cert.display(),
                    key = key.display(),
                    https = ports[2],
                    direct = ports[3],
                )
            }
            None => String::new(),
        };
        // Later assignments win in Prosody's Lua configuration, so these
        // override the template's loopback `interfaces`.
        let mut extra = format!(
            "interfaces = {{ \"{interface}\" }}\nhttp_interfaces = {{ \"{interface}\" }}\n\
             component_ports = {{ {component_port} }}\ncomponent_interfaces = {{ \"{interface}\" }}\n{tls_extra}"
        );
        let mut extra_modules = String::new();
        if options.statistics {
            // "manual" collects on each scrape of the metrics endpoint
            // instead of on a timer, so every read is current.
            extra.push_str(&format!(
                "\nstatistics = \"internal\"\nstatistics_interval = \"manual\"\n\
                 plugin_paths = {{ \"{MODULES_DIR}\" }}\n"
            ));
            extra_modules.push_str("\"http_openmetrics\"; \"xmppload_lua_memory\";");
        }
        let muc_extra = if options.muc_archive {
            MUC_ARCHIVE_CONFIG
        } else {
            ""
        };
        let config = template
            .replace("-- @EXTRA_GLOBAL@", &extra)
            .replace("-- @MUC_EXTRA@", muc_extra)
            .replace("-- @EXTRA_MODULES@", &extra_modules)
            .replace(
                "-- @EXTRA_MUC@",
                if options.muc_room_locking {
                    "muc_room_locking = true"
                } else {
                    ""
                },
            )
            .replace("@RUN_DIR@", &run_dir.display().to_string())
            .replace("@C2S_PORT@", &c2s_port.to_string())
            .replace("@HTTP_PORT@", &http_port.to_string())
            .replace("@MUC_DOMAIN@", MUC_DOMAIN)
            .replace("@DOMAIN@", DOMAIN);
        let config_path = run_dir.join("prosody.cfg.lua");
        std::fs::write(&config_path, config)?;

        let output = std::fs::File::create(run_dir.join("console.log"))?;
        let mut command = match &options.netns {
            Some(namespace) => {
                let mut command = Command::new("ip");
                command.args(["netns", "exec", namespace, "prosody"]);
                command
            }
            None => Command::new("prosody"),
        };
        let child = command
            .arg("--config")
            .arg(&config_path)
            .arg("-F")
            .current_dir(&run_dir)
            .stdin(Stdio::null())
            .stdout(output.try_clone()?)
            .stderr(output)
            .spawn()
            .map_err(|err| {
                if err.kind() == io::ErrorKind::NotFound && options.netns.is_some() {
                    io::Error::new(
                        err.kind(),
                        "ip not found: install it with `apt-get install -y iproute2`",
                    )
                } else if err.kind() == io::ErrorKind::NotFound {
                    io::Error::new(
                        err.kind(),
                        "prosody not found: install it with `apt-get install -y prosody`",
                    )
                } else {
                    err
                }
            })?;

        // From here on, Drop stops the process and removes the directory.
        let mut prosody = Prosody {
            child,
            run_dir,
            interface,
            c2s_port,
            http_port,
            component_port,
            https_port,
            direct_tls_port,
        };
        prosody.wait_ready()?;
        Ok(prosody)
    }

    /// Polls until the pidfile exists and the listeners accept connections.
    fn wait_ready(&mut self) -> io::Result<()> {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Err(io::Error::other(format!(
                    "prosody exited with {status} during startup; see {} and {}",
                    self.log_path().display(),
                    self.run_dir.join("console.log").display()
                )));
            }
            let https_ready = self
                .https_port
                .is_none_or(|port| accepts(SocketAddr::new(self.interface, port)));
            let direct_tls_ready = self.c2s_direct_tls_addr().is_none_or(accepts);
            let ready = self.pidfile().exists()
                && accepts(self.c2s_addr())
                && accepts(self.component_addr())
                && accepts(self.http_addr())
                && https_ready
                && direct_tls_ready;
            if ready {
                return Ok(());
            }
            if started.elapsed() > START_TIMEOUT {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "prosody was not ready after {START_TIMEOUT:?}; see {}",
                        self.log_path().display()
                    ),
                ));
            }
            std::thread::sleep(PROBE_INTERVAL);
        }
    }

    /// Process id of the Prosody process (a `lua5.4` process on Debian).
    /// `ip netns exec` replaces itself with Prosody, so this is Prosody's
    /// pid in a namespace too.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn pidfile(&self) -> PathBuf {
        self.run_dir.join("prosody.pid")
    }

    /// Address of the c2s listener.
    pub fn c2s_addr(&self) -> SocketAddr {
        SocketAddr::new(self.interface, self.c2s_port)
    }

    /// Address of the c2s listener that speaks TLS from the first byte,
    /// which exists only when the options carried a certificate.
    pub fn c2s_direct_tls_addr(&self) -> Option<SocketAddr> {
        self.direct_tls_port
            .map(|port| SocketAddr::new(self.interface, port))
    }

    /// Address of the XEP-0114 component listener.
    pub fn component_addr(&self) -> SocketAddr {
        SocketAddr::new(self.interface, self.component_port)
    }

    /// Address of the HTTP listener that serves WebSocket and BOSH.
    pub fn http_addr(&self) -> SocketAddr {
        SocketAddr::new(self.interface, self.http_port)
    }

    /// `ws://` URL of the RFC 7395 endpoint.
    pub fn websocket_url(&self) -> String {
        format!("ws://{}/xmpp-websocket", self.http_addr())
    }

    /// `wss://` URL of the RFC 7395 endpoint; only with a certificate. The
    /// certificate names the XMPP domain, not the address, so clients must
    /// accept invalid certificates.
    pub fn websocket_tls_url(&self) -> Option<String> {
        self.https_port.map(|port| {
            let addr = SocketAddr::new(self.interface, port);
            format!("wss://{addr}/xmpp-websocket")
        })
    }

    /// `http://` URL of the XEP-0124 BOSH endpoint (`mod_bosh`).
    pub fn bosh_url(&self) -> String {
        format!("http://{}/http-bind", self.http_addr())
    }

    /// `https://` URL of the BOSH endpoint; only with a certificate, which
    /// names the XMPP domain, so clients must accept invalid certificates.
    pub fn bosh_tls_url(&self) -> Option<String> {
        self.https_port.map(|port| {
            let addr = SocketAddr::new(self.interface, port);
            format!("https://{addr}/http-bind")
        })
    }

    /// URL of `mod_http_openmetrics`; it responds only when the server was
    /// started with [`ProsodyOptions::statistics`].
    pub fn openmetrics_url(&self) -> String {
        format!("http://127.0.0.1:{}/metrics", self.http_port)
    }

    pub fn domain(&self) -> &'static str {
        DOMAIN
    }

    pub fn muc_domain(&self) -> &'static str {
        MUC_DOMAIN
    }

    /// Prosody's own log file; read it when a test fails.
    pub fn log_path(&self) -> PathBuf {
        self.run_dir.join("prosody.log")
    }

    /// Directory that contains the configuration, data, certificates and logs.
    pub fn run_dir(&self) -> &Path {
        &self.run_dir
    }
}

impl Drop for Prosody {
    fn drop(&mut self) {
        // Errors are ignored: the process may already have exited, and a
        // left-over temp directory is harmless.
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.run_dir);
    }
}

/// Picks `count` distinct free loopback ports. All listeners are held until
/// every port is known, so no two coincide. Another process could still take
/// a port before Prosody binds it, and startup then fails with an error.
fn free_ports(count: usize) -> io::Result<Vec<u16>> {
    let listeners = (0..count)
        .map(|_| TcpListener::bind("127.0.0.1:0"))
        .collect::<io::Result<Vec<_>>>()?;
    listeners
        .iter()
        .map(|listener| Ok(listener.local_addr()?.port()))
        .collect()
}

fn accepts(addr: SocketAddr) -> bool {
    TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
}
