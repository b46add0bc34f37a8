//! `summary.json`: the numbers of the report in a machine-readable form.
//!
//! The layout is fixed by `docs/summary.schema.json` (JSON Schema draft
//! 2020-12), and every key is snake_case. Values that cannot be computed,
//! such as the standard deviation of a single sample, are `null`, never a
//! made-up zero. Bump [`SCHEMA_VERSION`] when a key changes meaning or goes.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;

use super::compare::CONFIDENCE;
use super::data::RunData;
use super::error::ReportError;
use super::stats::{Summary, cpu_interval};
use super::summary::{
    Coverage, GroupSummary, LatencyPercentiles, RunSummary, WindowKind, WindowSummary,
};
use crate::results::run_info::GroupInfo;

/// Name of the machine-readable summary inside a results folder.
pub const SUMMARY_FILE: &str = "summary.json";

/// Version of the document layout, written as `schema_version`.
pub const SCHEMA_VERSION: u32 = 1;

/// The whole `summary.json` document.
#[derive(Debug, Serialize)]
pub struct SummaryDocument {
    pub schema_version: u32,
    pub scenario_name: String,
    pub scenario_path: String,
    pub started_unix_micros: i64,
    /// Seconds from the start to the recorded end, or to the last row when
    /// `finished` is false.
    pub duration_s: f64,
    /// False when `run.json` recorded no end, as after a killed coordinator.
    pub finished: bool,
    pub stopped_early: bool,
    pub confidence: f64,
    pub monitor: MonitorJson,
    pub groups: Vec<GroupJson>,
    pub comparisons: Vec<ComparisonJson>,
    pub losses: LossesJson,
}

#[derive(Debug, Serialize)]
pub struct MonitorJson {
    pub interval_ms: u32,
    pub processes: Vec<String>,
    /// Logical cores of the monitored host, `null` without a monitor.
    pub cores: Option<u32>,
}

#[derive(Debug, Serialize)]
pub struct GroupJson {
    pub name: String,
    /// Settings from `run.json`, `null` for a group that only the CSV files name.
    pub settings: Option<SettingsJson>,
    pub not_started: bool,
    pub counts: CountsJson,
    /// Failed bots by kind, summed over the agents that finished.
    pub failures_by_kind: BTreeMap<String, u64>,
    pub windows: Vec<WindowJson>,
    /// Step durations over the whole group in ms, one entry per kind in
    /// connection-step order. Runs without `round_trips.csv` have none.
    pub round_trips: Vec<RoundTripsJson>,
}

#[derive(Debug, Serialize)]
pub struct RoundTripsJson {
    pub kind: String,
    pub count: u64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
}

/// Every setting of a group that changes what the server has to do.
#[derive(Debug, Serialize)]
pub struct SettingsJson {
    pub transport: String,
    pub tls: String,
    pub stream_management: bool,
    pub bots: u32,
    pub room: String,
    /// Rooms of the group, how bots spread over them and how many each
    /// joins: they set the fan-out, and so the server's cost.
    pub rooms: u32,
    pub room_distribution: String,
    pub zipf_exponent: Option<f64>,
    pub rooms_per_bot: u32,
    pub join_rate: f64,
    pub talk_after_s: f64,
    pub talk_rate: f64,
    pub talk_duration_s: f64,
    pub leave_after_s: f64,
    pub body_bytes: u32,
    pub scheduled_start_s: f64,
    pub placement: BTreeMap<String, u32>,
}

/// Final counters of a group, summed over the agents that finished it.
#[derive(Debug, Serialize)]
pub struct CountsJson {
    pub agents: usize,
    pub connect_attempts: u64,
    pub joined: u64,
    pub left: u64,
    pub failed: u64,
    pub late_sends: u64,
}

#[derive(Debug, Serialize)]
pub struct WindowJson {
    /// `join`, `talk`, `leave` or `whole_group`.
    pub window: &'static str,
    pub start_s: f64,
    pub end_s: f64,
    pub processes: Vec<ProcessCpuJson>,
    pub host_cpu: CpuJson,
    pub messages: MessagesJson,
    pub latency_ms: Option<LatencyJson>,
}

#[derive(Debug, Serialize)]
pub struct ProcessCpuJson {
    pub process: String,
    pub cpu: CpuJson,
    pub gap_samples: usize,
}

/// CPU statistics of one window, in % of one core (processes) or of all
/// cores (host).
#[derive(Debug, Serialize)]
pub struct CpuJson {
    pub samples: usize,
    pub expected_samples: Option<u64>,
    pub mean: Option<f64>,
    pub std_dev: Option<f64>,
    pub max: Option<f64>,
    pub ci_low: Option<f64>,
    pub ci_high: Option<f64>,
}

#[derive(Debug, Serialize)]
pub struct MessagesJson {
    pub sent: u64,
    pub received: u64,
    pub reflections: u64,
}

#[derive(Debug, Serialize)]
pub struct LatencyJson {
    pub count: u64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
}

/// CPU of one process while talking, each group against the baseline group.
#[derive(Debug, Serialize)]
pub struct ComparisonJson {
    pub process: String,
    pub baseline_group: String,
    pub baseline_mean: Option<f64>,
    pub groups: Vec<GroupDifferenceJson>,
}

#[derive(Debug, Serialize)]
pub struct GroupDifferenceJson {
    pub group: String,
    pub mean: Option<f64>,
    /// `mean - baseline_mean` in points of one core, `null` when not compared.
    pub difference: Option<f64>,
    pub ci_low: Option<f64>,
    pub ci_high: Option<f64>,
    /// Reasons that the pair is not compared, empty when it is compared.
    pub not_compared: Vec<String>,
}

/// Data the run lost or left out, which limits what its numbers mean.
#[derive(Debug, Serialize)]
pub struct LossesJson {
    pub incomplete_slices: Vec<IncompleteSliceJson>,
    pub missing_files: Vec<&'static str>,
    pub skipped_rows: Vec<SkippedRowJson>,
}

#[derive(Debug, Serialize)]
pub struct IncompleteSliceJson {
    pub group: String,
    pub agent: String,
    pub bots: u32,
    pub reason: String,
    pub lost_at_s: Option<f64>,
}

#[derive(Debug, Serialize)]
pub struct SkippedRowJson {
    pub file: &'static str,
    pub line: u64,
}

/// Builds the document from a loaded folder and its summary.
pub fn summary_document(data: &RunData, summary: &RunSummary) -> SummaryDocument {
    let run = &data.run;
    SummaryDocument {
        schema_version: SCHEMA_VERSION,
        scenario_name: run.scenario_name.clone(),
        scenario_path: run.scenario_path.clone(),
        started_unix_micros: run.started_unix_micros,
        duration_s: data.duration_s(),
        finished: run.finished_unix_micros.is_some(),
        stopped_early: run.stopped_early,
        confidence: CONFIDENCE,
        monitor: MonitorJson {
            interval_ms: run.monitor_interval_ms,
            processes: data.process_names(),
            cores: data.monitor_cores(),
        },
        groups: summary
            .groups
            .iter()
            .map(|group| group_json(group, run.groups.iter().find(|g| g.name == group.name)))
            .collect(),
        comparisons: summary.comparisons.iter().map(comparison_json).collect(),
        losses: losses_json(data, summary),
    }
}

/// Writes `summary.json` of `data` to the file `out`.
pub fn write_summary_json(
    data: &RunData,
    summary: &RunSummary,
    out: &Path,
) -> Result<(), ReportError> {
    let document = summary_document(data, summary);
    let write_error = |source| ReportError::Write {
        path: out.to_path_buf(),
        source,
    };
    let mut text = serde_json::to_string_pretty(&document)
        .map_err(|e| write_error(std::io::Error::other(e)))?;
    text.push('\n');
    std::fs::write(out, text).map_err(write_error)
}

fn group_json(group: &GroupSummary, info: Option<&GroupInfo>) -> GroupJson {
    let totals = &group.totals;
    GroupJson {
        name: group.name.clone(),
        settings: info.map(settings_json),
        not_started: group.not_started,
        counts: CountsJson {
            agents: totals.agents,
            connect_attempts: totals.connect_attempts,
            joined: totals.joined,
            left: totals.left,
            failed: totals.failed,
            late_sends: totals.late_sends,
        },
        failures_by_kind: totals.errors.clone(),
        windows: group.windows.iter().map(window_json).collect(),
        round_trips: group
            .round_trips
            .iter()
            .map(|trips| RoundTripsJson {
                kind: trips.kind.clone(),
                count: trips.latency.count,
                p50: trips.latency.p50_ms,
                p90: trips.latency.p90_ms,
                p99: trips.latency.p99_ms,
                max: trips.latency.max_ms,
            })
            .collect(),
    }
}

fn settings_json(info: &GroupInfo) -> SettingsJson {
    let mut placement = BTreeMap::new();
    for slice in &info.placement {
        *placement.entry(slice.agent.clone()).or_default() += slice.bots;
    }
    SettingsJson {
        transport: info.transport.clone(),
        tls: info.tls.clone(),
        stream_management: info.stream_management,
        bots: info.bots,
        room: info.room.clone(),
        rooms: info.rooms,
        room_distribution: info.room_distribution.clone(),
        zipf_exponent: info.zipf_exponent,
        rooms_per_bot: info.rooms_per_bot,
        join_rate: info.join_rate,
        talk_after_s: info.talk_after_s,
        talk_rate: info.talk_rate,
        talk_duration_s: info.talk_duration_s,
        leave_after_s: info.leave_after_s,
        body_bytes: info.body_bytes,
        scheduled_start_s: info.scheduled_start_s,
        placement,
    }
}

/// Name of a window in `summary.json` and `compare.md`.
pub fn window_name(kind: WindowKind) -> &'static str {
    match kind {
        WindowKind::Phase(phase) => phase.as_str(),
        WindowKind::WholeGroup => "whole_group",
    }
}

fn window_json(window: &WindowSummary) -> WindowJson {
    WindowJson {
        window: window_name(window.window.kind),
        start_s: window.window.start_s,
        end_s: window.window.end_s,
        processes: window
            .processes
            .iter()
            .map(|p| ProcessCpuJson {
                process: p.process.clone(),
                cpu: cpu_json(&p.cpu, p.coverage),
                gap_samples: p.excluded_samples,
            })
            .collect(),
        host_cpu: cpu_json(&window.host_cpu, window.host_coverage),
        messages: MessagesJson {
            sent: window.messages.sent,
            received: window.messages.received,
            reflections: window.messages.reflections,
        },
        latency_ms: window.latency.as_ref().map(latency_json),
    }
}

fn cpu_json(cpu: &Summary, coverage: Option<Coverage>) -> CpuJson {
    let interval = cpu_interval(cpu, CONFIDENCE);
    CpuJson {
        samples: cpu.count(),
        expected_samples: coverage.map(|c| c.expected),
        mean: cpu.mean(),
        std_dev: cpu.std_dev(),
        max: cpu.max(),
        ci_low: interval.map(|i| i.low),
        ci_high: interval.map(|i| i.high),
    }
}

fn latency_json(latency: &LatencyPercentiles) -> LatencyJson {
    LatencyJson {
        count: latency.count,
        p50: latency.p50_ms,
        p90: latency.p90_ms,
        p99: latency.p99_ms,
        max: latency.max_ms,
    }
}

fn comparison_json(comparison: &super::compare::ProcessComparison) -> ComparisonJson {
    ComparisonJson {
        process: comparison.process.clone(),
        baseline_group: comparison.baseline_group.clone(),
        baseline_mean: comparison.baseline.mean(),
        groups: comparison
            .others
            .iter()
            .map(|other| GroupDifferenceJson {
                group: other.group.clone(),
                mean: other.talk.mean(),
                difference: other.difference.map(|d| d.difference),
                ci_low: other.difference.map(|d| d.low),
                ci_high: other.difference.map(|d| d.high),
                not_compared: other.not_compared.iter().map(|r| r.to_string()).collect(),
            })
            .collect(),
    }
}

fn losses_json(data: &RunData, summary: &RunSummary) -> LossesJson {
    let incomplete_slices = summary
        .groups
        .iter()
        .flat_map(|group| {
            group.incomplete.iter().map(|slice| IncompleteSliceJson {
                group: group.name.clone(),
                agent: slice.agent.clone(),
                bots: slice.bots,
                reason: slice.reason.clone(),
                lost_at_s: slice.lost_at_s,
            })
        })
        .collect();
    LossesJson {
        incomplete_slices,
        missing_files: data.missing_files.clone(),
        skipped_rows: data
            .skipped_rows
            .iter()
            .map(|row| SkippedRowJson {
                file: row.file,
                line: row.line,
            })
            .collect(),
    }
}
