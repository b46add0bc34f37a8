//! The numbers of the report, computed from the rows of a results folder.
//!
//! Time windows are matched to rows in two ways. A CPU sample belongs to a
//! window when it was taken inside it (`start_s <= t_s <= end_s`). Agent
//! reports (counters and latency) each cover the second before their `t_s`,
//! so a report belongs to a window when that second overlaps it
//! (`start_s < t_s < end_s + 1`). That way no message of a phase is lost,
//! at the cost of up to one second of traffic from before or after it.

use std::collections::BTreeMap;

use hdrhistogram::Histogram;

use super::compare::{self, ProcessComparison};
use super::data::{BotsReport, Phase, RunData, ScheduleLagRow};
use super::error::{ReportError, RowProblem};
use super::load::{BOTS_CSV, LATENCY_CSV};
use super::round_trips::{self, KindRoundTrips};
use super::stats::Summary;
use crate::results::run_info::IncompleteSlice;

/// Seconds covered by one row of `bots.csv` or `latency.csv`.
pub const REPORT_INTERVAL_S: f64 = 1.0;

/// Share of the expected monitor samples below which a window's CPU row is
/// flagged, because the monitor lost samples or the process was not running.
pub const MIN_COVERAGE: f64 = 0.8;

/// Everything the report states about a run, group by group.
#[derive(Debug, Clone)]
pub struct RunSummary {
    pub groups: Vec<GroupSummary>,
    pub comparisons: Vec<ProcessComparison>,
}

#[derive(Debug, Clone)]
pub struct GroupSummary {
    pub name: String,
    /// Bots the scenario asked for, when `run.json` lists the group.
    pub planned_bots: Option<u32>,
    /// True when `run.json` lists the group and `bots.csv` exists but has no
    /// row of it, which happens when the run was stopped before the group.
    pub not_started: bool,
    /// Agents whose slice of the group did not run to its end, from `run.json`.
    /// Their rows are left out of `totals`, the message counts and latency.
    pub incomplete: Vec<IncompleteSlice>,
    /// Final counters summed over the agents that ran the group to its end.
    pub totals: BotTotals,
    /// One window per phase in `join`, `talk`, `leave` order, then the whole group.
    pub windows: Vec<WindowSummary>,
    /// Join and send lag behind schedule, from `schedule_lag.csv`.
    pub schedule_lag: Vec<ScheduleLagRow>,
    /// Durations of each step kind over the whole group, from
    /// `round_trips.csv`, in [`round_trips::kind_order`].
    pub round_trips: Vec<KindRoundTrips>,
}

/// Last reported cumulative counters of a group, summed over agents.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BotTotals {
    pub agents: usize,
    pub connect_attempts: u64,
    pub joined: u64,
    pub left: u64,
    pub failed: u64,
    pub late_sends: u64,
    pub errors: BTreeMap<String, u64>,
}

/// Kind of window: one phase, or the span of all phases of the group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WindowKind {
    Phase(Phase),
    WholeGroup,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Window {
    pub kind: WindowKind,
    pub start_s: f64,
    pub end_s: f64,
}

impl Window {
    fn contains_sample(&self, t_s: f64) -> bool {
        self.start_s <= t_s && t_s <= self.end_s
    }

    fn overlaps_report(&self, t_s: f64) -> bool {
        self.start_s < t_s && t_s < self.end_s + REPORT_INTERVAL_S
    }
}

#[derive(Debug, Clone)]
pub struct WindowSummary {
    pub window: Window,
    /// One entry per monitored process, in `RunData::process_names` order.
    pub processes: Vec<ProcessCpu>,
    /// Whole-host CPU in % of all cores, one value per sample batch.
    pub host_cpu: Summary,
    /// Sample batches in the window against those expected.
    pub host_coverage: Option<Coverage>,
    pub messages: MessageCounts,
    pub latency: Option<LatencyPercentiles>,
}

/// CPU of one process in % of one core over valid samples.
#[derive(Debug, Clone)]
pub struct ProcessCpu {
    pub process: String,
    pub cpu: Summary,
    /// Valid samples in the window against those expected.
    pub coverage: Option<Coverage>,
    /// Samples left out because they were gaps or no process matched.
    pub excluded_samples: usize,
    /// Time of the earliest left-out sample in the window.
    pub first_excluded_s: Option<f64>,
}

/// Monitor samples found in a window against the number its length promises.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Coverage {
    pub samples: usize,
    /// Whole monitor intervals that fit in the window. A window of that many
    /// intervals holds that many samples or one more, wherever the sampling
    /// clock starts, so a complete series never falls below 100 %.
    pub expected: u64,
}

impl Coverage {
    /// Returns `None` when the window is shorter than one monitor interval,
    /// because it may then rightly hold no sample.
    pub fn new(samples: usize, window: &Window, interval_ms: u32) -> Option<Coverage> {
        if interval_ms == 0 {
            return None;
        }
        let intervals = (window.end_s - window.start_s) * 1000.0 / f64::from(interval_ms);
        let expected = intervals.floor() as u64;
        (expected > 0).then_some(Coverage { samples, expected })
    }

    /// Samples in % of those expected, at most 100.
    pub fn percent(&self) -> f64 {
        (self.samples as f64 / self.expected as f64 * 100.0).min(100.0)
    }

    pub fn is_low(&self) -> bool {
        (self.samples as f64) < MIN_COVERAGE * self.expected as f64
    }
}

/// Increments of the cumulative counters, summed over agents.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MessageCounts {
    pub sent: u64,
    pub received: u64,
    pub reflections: u64,
}

/// Percentiles of a latency histogram in milliseconds, such as the
/// send-to-reflection latency or the duration of one connection step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LatencyPercentiles {
    pub count: u64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

impl LatencyPercentiles {
    /// Reads the percentiles of a histogram of microsecond values.
    pub fn of(histogram: &Histogram<u64>) -> LatencyPercentiles {
        let ms = |micros: u64| micros as f64 / 1000.0;
        LatencyPercentiles {
            count: histogram.len(),
            p50_ms: ms(histogram.value_at_quantile(0.50)),
            p90_ms: ms(histogram.value_at_quantile(0.90)),
            p99_ms: ms(histogram.value_at_quantile(0.99)),
            max_ms: ms(histogram.max()),
        }
    }
}

/// Computes every number of the report from `data`.
pub fn summarize(data: &RunData) -> Result<RunSummary, ReportError> {
    let processes = data.process_names();
    let mut groups = Vec::new();
    for name in data.group_names() {
        groups.push(summarize_group(data, &name, &processes)?);
    }
    let comparisons = compare::compare_talk_phases(&groups, &processes);
    Ok(RunSummary {
        groups,
        comparisons,
    })
}

fn summarize_group(
    data: &RunData,
    group: &str,
    processes: &[String],
) -> Result<GroupSummary, ReportError> {
    let info = data.run.groups.iter().find(|g| g.name == group);
    let incomplete: &[IncompleteSlice] = info.map_or(&[], |g| &g.incomplete);
    let unfinished: Vec<&str> = incomplete.iter().map(|s| s.agent.as_str()).collect();

    let increments = counter_increments(data, group, &unfinished);
    let mut windows = Vec::new();
    for window in group_windows(data, group) {
        let host_cpu = host_cpu(data, &window);
        windows.push(WindowSummary {
            window,
            processes: processes
                .iter()
                .map(|process| process_cpu(data, process, &window))
                .collect(),
            host_coverage: Coverage::new(host_cpu.count(), &window, data.run.monitor_interval_ms),
            host_cpu,
            messages: messages_in(&increments, &window),
            latency: latency_in(data, group, &unfinished, &window)?,
        });
    }

    let bots_csv_present = !data.missing_files.contains(&BOTS_CSV);
    let has_rows = data.bots.iter().any(|row| row.group == group);
    Ok(GroupSummary {
        name: group.to_owned(),
        planned_bots: info.map(|g| g.bots),
        not_started: info.is_some() && bots_csv_present && !has_rows,
        incomplete: incomplete.to_vec(),
        totals: bot_totals(data, group, &unfinished),
        windows,
        schedule_lag: data
            .schedule_lag
            .iter()
            .filter(|row| row.group == group)
            .cloned()
            .collect(),
        round_trips: round_trips::group_round_trips(data, group)?,
    })
}

/// Lists the phase windows of a group in phase order, then the whole-group
/// window when the group has any phase.
fn group_windows(data: &RunData, group: &str) -> Vec<Window> {
    let mut windows: Vec<Window> = Phase::ALL
        .into_iter()
        .filter_map(|phase| data.phase_window(group, phase))
        .map(|p| Window {
            kind: WindowKind::Phase(p.phase),
            start_s: p.start_s,
            end_s: p.end_s,
        })
        .collect();
    if !windows.is_empty() {
        let start_s = windows
            .iter()
            .map(|w| w.start_s)
            .fold(f64::INFINITY, f64::min);
        let end_s = windows
            .iter()
            .map(|w| w.end_s)
            .fold(f64::NEG_INFINITY, f64::max);
        windows.push(Window {
            kind: WindowKind::WholeGroup,
            start_s,
            end_s,
        });
    }
    windows
}

/// CPU samples of `process` taken within `window`.
pub fn process_cpu(data: &RunData, process: &str, window: &Window) -> ProcessCpu {
    let mut cpu = Summary::default();
    let mut excluded_samples = 0;
    let mut first_excluded_s: Option<f64> = None;
    let samples = data
        .monitor
        .iter()
        .filter(|s| s.process == process && window.contains_sample(s.t_s));
    for sample in samples {
        if sample.is_valid_cpu() {
            cpu.add(sample.cpu_percent);
        } else {
            excluded_samples += 1;
            first_excluded_s = Some(first_excluded_s.map_or(sample.t_s, |t| t.min(sample.t_s)));
        }
    }
    ProcessCpu {
        process: process.to_owned(),
        coverage: Coverage::new(cpu.count(), window, data.run.monitor_interval_ms),
        cpu,
        excluded_samples,
        first_excluded_s,
    }
}

/// Host CPU within `window`, counting each sample batch once although
/// `monitor.csv` repeats it on the row of every process.
fn host_cpu(data: &RunData, window: &Window) -> Summary {
    let mut batches: Vec<(f64, f64)> = data
        .monitor
        .iter()
        .filter(|s| window.contains_sample(s.t_s))
        .map(|s| (s.t_s, s.host_cpu_percent))
        .collect();
    batches.sort_by(|a, b| a.0.total_cmp(&b.0));
    batches.dedup_by(|a, b| a.0 == b.0);
    Summary::from_values(batches.into_iter().map(|(_, host)| host))
}

/// Per-report increments of one group's message counters, all agents together.
struct CounterIncrement {
    t_s: f64,
    counts: MessageCounts,
}

fn counter_increments(data: &RunData, group: &str, unfinished: &[&str]) -> Vec<CounterIncrement> {
    let mut increments = Vec::new();
    for rows in finished_rows(data, group, unfinished) {
        let mut previous = MessageCounts::default();
        for row in rows {
            let current = MessageCounts {
                sent: row.messages_sent,
                received: row.messages_received,
                reflections: row.reflections,
            };
            increments.push(CounterIncrement {
                t_s: row.t_s,
                counts: MessageCounts {
                    sent: increment(previous.sent, current.sent),
                    received: increment(previous.received, current.received),
                    reflections: increment(previous.reflections, current.reflections),
                },
            });
            previous = current;
        }
    }
    increments
}

/// Growth of a cumulative counter between two reports. A smaller value means
/// the counter restarted from zero, so all of it is new.
pub fn increment(previous: u64, current: u64) -> u64 {
    current.checked_sub(previous).unwrap_or(current)
}

/// Rows of `group` per agent, each agent's rows in time order.
pub fn rows_by_agent<'a>(data: &'a RunData, group: &str) -> BTreeMap<&'a str, Vec<&'a BotsReport>> {
    let mut by_agent: BTreeMap<&str, Vec<&BotsReport>> = BTreeMap::new();
    for row in data.bots.iter().filter(|row| row.group == group) {
        by_agent.entry(row.agent.as_str()).or_default().push(row);
    }
    for rows in by_agent.values_mut() {
        // A stable sort keeps file order for equal times, so the later row wins.
        rows.sort_by(|a, b| a.t_s.total_cmp(&b.t_s));
    }
    by_agent
}

/// Rows of `group` per agent, without the agents listed in `unfinished`.
fn finished_rows<'a>(
    data: &'a RunData,
    group: &str,
    unfinished: &[&str],
) -> Vec<Vec<&'a BotsReport>> {
    rows_by_agent(data, group)
        .into_iter()
        .filter(|(agent, _)| !unfinished.contains(agent))
        .map(|(_, rows)| rows)
        .collect()
}

fn messages_in(increments: &[CounterIncrement], window: &Window) -> MessageCounts {
    let mut total = MessageCounts::default();
    for increment in increments.iter().filter(|i| window.overlaps_report(i.t_s)) {
        total.sent += increment.counts.sent;
        total.received += increment.counts.received;
        total.reflections += increment.counts.reflections;
    }
    total
}

/// Merges the latency histograms of `group` whose second overlaps `window`,
/// leaving out the agents listed in `unfinished`.
fn latency_in(
    data: &RunData,
    group: &str,
    unfinished: &[&str],
    window: &Window,
) -> Result<Option<LatencyPercentiles>, ReportError> {
    let invalid_row = |line: u64, problem: RowProblem| ReportError::InvalidRow {
        path: data.dir.join(LATENCY_CSV),
        line,
        problem,
    };
    let mut merged: Option<Histogram<u64>> = None;
    let rows = data
        .latency
        .iter()
        .filter(|row| row.group == group && window.overlaps_report(row.t_s))
        .filter(|row| !unfinished.contains(&row.agent.as_str()));
    for row in rows {
        let Some(histogram) = row
            .histogram()
            .map_err(|e| invalid_row(row.line, e.into()))?
        else {
            continue;
        };
        match merged.as_mut() {
            Some(merged) => merged
                .add(&histogram)
                .map_err(|e| invalid_row(row.line, e.into()))?,
            None => {
                // Agents may serialize with another precision or range, so
                // the merged histogram grows to fit whatever comes next.
                let mut first = histogram;
                first.auto(true);
                merged = Some(first);
            }
        }
    }
    Ok(merged
        .filter(|h| !h.is_empty())
        .map(|h| LatencyPercentiles::of(&h)))
}

fn bot_totals(data: &RunData, group: &str, unfinished: &[&str]) -> BotTotals {
    let mut totals = BotTotals::default();
    for rows in finished_rows(data, group, unfinished) {
        let Some(last) = rows.last() else { continue };
        totals.agents += 1;
        totals.connect_attempts += last.connect_attempts;
        totals.joined += last.joined_total;
        totals.left += last.left_total;
        totals.failed += last.failed_total;
        totals.late_sends += last.late_sends;
        for (kind, count) in &last.errors {
            *totals.errors.entry(kind.clone()).or_default() += count;
        }
    }
    totals
}
