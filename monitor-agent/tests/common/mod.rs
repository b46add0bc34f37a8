//! Helper child processes for tests that need a real process to watch.
//!
//! A test binary re-runs itself with `--exact helper_process --ignored` and
//! the environment variable [`HELPER_ENV`] set. Each test file that uses this
//! module defines an ignored `helper_process` test that calls
//! [`run_helper_if_requested`]; without the variable that test does nothing.
//! The child either sleeps or burns half of one core, for a bounded time,
//! and prints its own CPU and wall time on exit.

#![allow(dead_code)] // Each test binary uses a different part of this module.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Selects the helper's behaviour: `sleep:MS` or `burn:MS`.
pub const HELPER_ENV: &str = "XMPPLOAD_MONITOR_TEST_HELPER";

/// Prefix of the line the helper prints on exit.
const REPORT_PREFIX: &str = "helper-report";

/// CPU time the burner spends per cycle before it sleeps for as long again.
/// Counting CPU time instead of wall time keeps the duty cycle near 50 % even
/// when other processes compete for the cores.
const BURN_SLICE: Duration = Duration::from_millis(10);

/// Runs the helper behaviour if [`HELPER_ENV`] is set, else returns at once.
pub fn run_helper_if_requested() {
    let Ok(mode) = std::env::var(HELPER_ENV) else {
        return;
    };
    let started = Instant::now();
    let (kind, millis) = mode
        .split_once(':')
        .and_then(|(kind, millis)| Some((kind.to_owned(), millis.parse::<u64>().ok()?)))
        .unwrap_or_else(|| panic!("{HELPER_ENV} must be `sleep:MS` or `burn:MS`, got {mode:?}"));
    let duration = Duration::from_millis(millis);

    match kind.as_str() {
        "sleep" => std::thread::sleep(duration),
        "burn" => burn_half_core(duration),
        other => panic!("unknown helper kind {other:?}"),
    }

    println!(
        "{REPORT_PREFIX} cpu_micros={} wall_micros={}",
        own_cpu_time().as_micros(),
        started.elapsed().as_micros()
    );
}

fn burn_half_core(duration: Duration) {
    let deadline = Instant::now() + duration;
    while Instant::now() < deadline {
        let cpu_start = own_cpu_time();
        // Under heavy load a slice can take long in wall time. Giving up on
        // it after 100 ms keeps the helper's end near its deadline.
        let wall_limit = Instant::now() + Duration::from_millis(100);
        let mut counter = 0_u64;
        while own_cpu_time().saturating_sub(cpu_start) < BURN_SLICE && Instant::now() < wall_limit {
            for _ in 0..1_000 {
                counter = std::hint::black_box(counter.wrapping_add(1));
            }
        }
        std::thread::sleep(BURN_SLICE);
    }
}

/// CPU time of this whole process from `getrusage`, which the kernel keeps
/// at a finer grain than the clock ticks of `/proc/PID/stat`.
pub fn own_cpu_time() -> Duration {
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `usage` is a valid, writable rusage for the call to fill in.
    let status = unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    assert_eq!(status, 0, "getrusage failed");
    let micros = |time: libc::timeval| {
        Duration::from_secs(time.tv_sec as u64) + Duration::from_micros(time.tv_usec as u64)
    };
    micros(usage.ru_utime) + micros(usage.ru_stime)
}

/// CPU and wall time that a helper reported about itself.
#[derive(Debug, Clone, Copy)]
pub struct HelperReport {
    pub cpu: Duration,
    pub wall: Duration,
}

impl HelperReport {
    /// Computes the helper's own CPU time over its wall time, in percent of
    /// one core.
    pub fn cpu_percent(&self) -> f64 {
        self.cpu.as_secs_f64() / self.wall.as_secs_f64() * 100.0
    }
}

/// A running helper; killed and reaped on drop so no test leaves one behind.
pub struct Helper {
    child: Child,
}

impl Helper {
    /// Starts a helper. `mode` is `sleep:MS` or `burn:MS`.
    ///
    /// `marker` is an extra argument that puts a known string into the
    /// command line. The test harness reads it as a second name filter,
    /// which matches no test.
    pub fn spawn(mode: &str, marker: Option<&str>) -> Self {
        let executable = std::env::current_exe().expect("path of the test binary");
        let mut command = Command::new(executable);
        command
            .args([
                "--exact",
                "helper_process",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(HELPER_ENV, mode)
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        if let Some(marker) = marker {
            command.arg(marker);
        }
        let child = command.spawn().expect("spawn helper process");
        Self { child }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits for the helper to exit and returns its report.
    pub fn finish(mut self) -> HelperReport {
        let stdout = self.child.stdout.take().expect("helper stdout is piped");
        let mut report = None;
        for line in BufReader::new(stdout).lines() {
            let line = line.expect("read helper output");
            // libtest prints "test helper_process ... " on the same line
            // before the test's own output, so the report can start mid-line.
            if let Some(start) = line.find(REPORT_PREFIX) {
                report = Some(parse_report(&line[start + REPORT_PREFIX.len()..]));
            }
        }
        let status = self.child.wait().expect("wait for helper");
        assert!(status.success(), "helper failed: {status}");
        report.expect("helper printed no report line")
    }

    /// Kills the helper and reaps it, so its pid no longer exists.
    pub fn kill(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Helper {
    fn drop(&mut self) {
        self.stop();
    }
}

fn parse_report(rest: &str) -> HelperReport {
    let mut cpu = None;
    let mut wall = None;
    for pair in rest.split_whitespace() {
        match pair.split_once('=') {
            Some(("cpu_micros", value)) => cpu = value.parse().ok(),
            Some(("wall_micros", value)) => wall = value.parse().ok(),
            _ => {}
        }
    }
    HelperReport {
        cpu: Duration::from_micros(cpu.expect("cpu_micros in helper report")),
        wall: Duration::from_micros(wall.expect("wall_micros in helper report")),
    }
}
