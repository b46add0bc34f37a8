//! The rows of a results folder after validation.

use std::fmt;
use std::path::PathBuf;

use hdrhistogram::Histogram;
use hdrhistogram::serialization::{DeserializeError, Deserializer};

use crate::results::run_info::RunInfo;

/// Everything the report and the graphs are built from.
#[derive(Debug, Clone)]
pub struct RunData {
    /// The results folder the data was read from.
    pub dir: PathBuf,
    pub run: RunInfo,
    pub monitor: Vec<MonitorSample>,
    pub bots: Vec<BotsReport>,
    pub latency: Vec<LatencyReport>,
    pub phases: Vec<PhaseWindow>,
    pub schedule_lag: Vec<ScheduleLagRow>,
    pub round_trips: Vec<RoundTripRow>,
    /// Rows in `server_metrics.csv`: none when the server's metrics endpoint
    /// was never read, or every read failed.
    pub server_metric_rows: usize,
    /// CSV files that were absent from the folder, by file name. Their rows
    /// are simply empty, so the report states which data is missing.
    pub missing_files: Vec<&'static str>,
    /// Malformed last rows that were left out because the file ends inside
    /// them, as a coordinator killed while writing leaves them.
    pub skipped_rows: Vec<SkippedRow>,
}

/// A truncated last row of a CSV file that the report leaves out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SkippedRow {
    pub file: &'static str,
    pub line: u64,
}

/// One row of `monitor.csv`: one monitored process in one sample batch.
#[derive(Debug, Clone, PartialEq)]
pub struct MonitorSample {
    pub t_s: f64,
    pub process: String,
    /// 0 when no process matched the selector at this moment.
    pub pid: u32,
    /// CPU time since the previous sample as a percentage of one core.
    pub cpu_percent: f64,
    pub rss_bytes: u64,
    /// Whole-host CPU busy share, 0-100 % of all cores.
    pub host_cpu_percent: f64,
    /// The series breaks here: the process is missing or replaced an earlier one.
    pub gap: bool,
}

impl MonitorSample {
    /// Returns true when `cpu_percent` measures one process over one whole
    /// interval, which is not the case at gaps or while no process matches.
    pub fn is_valid_cpu(&self) -> bool {
        !self.gap && self.pid != 0
    }
}

/// One row of `bots.csv`: counters of one agent's slice of one group.
#[derive(Debug, Clone, PartialEq)]
pub struct BotsReport {
    pub t_s: f64,
    pub agent: String,
    pub group: String,
    pub connecting: u32,
    pub connected: u32,
    pub joined: u32,
    pub connect_attempts: u64,
    pub connected_total: u64,
    pub joined_total: u64,
    pub left_total: u64,
    pub failed_total: u64,
    pub messages_sent: u64,
    pub messages_received: u64,
    pub reflections: u64,
    pub stanzas_received: u64,
    pub late_sends: u64,
    /// Cumulative failures by kind, in the order of the file.
    pub errors: Vec<(String, u64)>,
}

/// One row of `latency.csv`: the send-to-reflection latencies one agent
/// recorded for one group in one second.
#[derive(Debug, Clone, PartialEq)]
pub struct LatencyReport {
    /// Line in `latency.csv`, so that errors found later can name it.
    pub line: u64,
    pub t_s: f64,
    pub agent: String,
    pub group: String,
    pub count: u64,
    /// V2 serialization of the interval's histogram (microseconds), kept
    /// encoded because a decoded histogram is tens of kilobytes and a long
    /// run has a row per agent, group and second.
    pub encoded_histogram: Vec<u8>,
}

impl LatencyReport {
    /// Decodes the interval's histogram. An empty encoding decodes to `None`.
    pub fn histogram(&self) -> Result<Option<Histogram<u64>>, DeserializeError> {
        decode_histogram(&self.encoded_histogram)
    }
}

pub(crate) fn decode_histogram(bytes: &[u8]) -> Result<Option<Histogram<u64>>, DeserializeError> {
    if bytes.is_empty() {
        return Ok(None);
    }
    let mut reader = bytes;
    Deserializer::new().deserialize(&mut reader).map(Some)
}

/// Stage of a bot's life that `phases.csv` times per group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Phase {
    Join,
    Talk,
    Leave,
}

impl Phase {
    pub const ALL: [Phase; 3] = [Phase::Join, Phase::Talk, Phase::Leave];

    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Join => "join",
            Phase::Talk => "talk",
            Phase::Leave => "leave",
        }
    }

    pub fn parse(text: &str) -> Option<Phase> {
        Phase::ALL.into_iter().find(|phase| phase.as_str() == text)
    }
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One row of `phases.csv`: from the first to the last bot of a group in a phase.
#[derive(Debug, Clone, PartialEq)]
pub struct PhaseWindow {
    pub group: String,
    pub phase: Phase,
    pub start_s: f64,
    pub end_s: f64,
}

/// One row of `schedule_lag.csv`: how far behind schedule the agents
/// started connects (`join`) or sent messages (`send`) in one group.
#[derive(Debug, Clone, PartialEq)]
pub struct ScheduleLagRow {
    pub group: String,
    /// `join` or `send`.
    pub kind: String,
    pub samples: u64,
    /// Samples more than 100 ms behind schedule.
    pub late: u64,
    pub p50_us: u64,
    pub p99_us: u64,
    pub max_us: u64,
}

/// One row of `round_trips.csv`: the durations of one step kind in one
/// group, merged over the agents' reports of about one second.
#[derive(Debug, Clone, PartialEq)]
pub struct RoundTripRow {
    /// Line in `round_trips.csv`, so that errors found later can name it.
    pub line: u64,
    pub t_s: f64,
    pub group: String,
    /// Step name such as `tcp`, `tls`, `auth` or `join`.
    pub kind: String,
    /// V2 serialization of the durations (microseconds), kept encoded for
    /// the same reason as in [`LatencyReport`].
    pub encoded_histogram: Vec<u8>,
}

impl RunData {
    /// Group names: those of `run.json` in scenario order, then any group
    /// that only the CSV files name, in order of first appearance.
    pub fn group_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.run.groups.iter().map(|g| g.name.clone()).collect();
        let from_csv = self
            .phases
            .iter()
            .map(|p| &p.group)
            .chain(self.bots.iter().map(|b| &b.group))
            .chain(self.latency.iter().map(|l| &l.group));
        for name in from_csv {
            if !names.contains(name) {
                names.push(name.clone());
            }
        }
        names
    }

    /// Processes in `run.json` order, then any other label found in `monitor.csv`.
    pub fn process_names(&self) -> Vec<String> {
        let mut names = self.run.monitored_processes.clone();
        for sample in &self.monitor {
            if !names.contains(&sample.process) {
                names.push(sample.process.clone());
            }
        }
        names
    }

    pub fn phase_window(&self, group: &str, phase: Phase) -> Option<&PhaseWindow> {
        self.phases
            .iter()
            .find(|p| p.group == group && p.phase == phase)
    }

    /// Logical cores of the monitored host, if the monitor reported them.
    pub fn monitor_cores(&self) -> Option<u32> {
        self.run
            .monitor
            .as_ref()
            .map(|m| m.cores)
            .filter(|&c| c > 0)
    }

    /// Seconds from the run start to its end, or to the last row when the
    /// run has no recorded end.
    pub fn duration_s(&self) -> f64 {
        if let Some(finished) = self.run.finished_unix_micros {
            return (finished - self.run.started_unix_micros) as f64 / 1e6;
        }
        self.last_t_s()
    }

    /// Time of the latest row or phase end in any file.
    pub fn last_t_s(&self) -> f64 {
        let times = self
            .monitor
            .iter()
            .map(|m| m.t_s)
            .chain(self.bots.iter().map(|b| b.t_s))
            .chain(self.latency.iter().map(|l| l.t_s))
            .chain(self.phases.iter().map(|p| p.end_s));
        times.fold(0.0, f64::max)
    }
}

#[cfg(test)]
impl RunData {
    /// Wraps `run` with empty CSV data, for unit tests.
    pub(crate) fn for_tests(run: RunInfo) -> RunData {
        RunData {
            dir: "results/01".into(),
            run,
            monitor: Vec::new(),
            bots: Vec::new(),
            latency: Vec::new(),
            phases: Vec::new(),
            schedule_lag: Vec::new(),
            round_trips: Vec::new(),
            server_metric_rows: 0,
            missing_files: Vec::new(),
            skipped_rows: Vec::new(),
        }
    }
}
