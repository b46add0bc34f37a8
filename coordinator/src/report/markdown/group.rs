//! The section of one group: warnings, counters, CPU and traffic per window.

use std::fmt::Write as _;

use super::{NOT_AVAILABLE, cell, count_noun, format_option};
use crate::report::stats::Summary;
use crate::report::summary::{Coverage, GroupSummary, ProcessCpu, WindowKind, WindowSummary};

pub(super) fn render_group(out: &mut String, group: &GroupSummary, interval_ms: u32) {
    let _ = writeln!(out, "## Group {}\n", group.name);
    render_incomplete_warning(out, group);
    let totals = &group.totals;
    let planned = match group.planned_bots {
        Some(bots) => format!("{bots} planned"),
        None => "not in run.json".to_owned(),
    };
    if group.not_started {
        let _ = writeln!(
            out,
            "Did not start: {planned}, but `bots.csv` has no row of this group.\n"
        );
        if group.windows.is_empty() {
            return;
        }
    } else {
        let _ = writeln!(
            out,
            "Bots: {planned}, {} joined, {} failed, {} left, {} connect attempts, \
             {} sends more than 100 ms late (final counters of {}).\n",
            totals.joined,
            totals.failed,
            totals.left,
            totals.connect_attempts,
            totals.late_sends,
            count_noun(totals.agents, "agent", "agents"),
        );
    }
    render_schedule_lag(out, group);
    if group.windows.is_empty() {
        let _ = writeln!(out, "`phases.csv` has no phase of this group.\n");
    } else {
        render_cpu_table(out, &group.windows, interval_ms);
        render_traffic_table(out, &group.windows);
    }
    render_round_trips(out, group);

    let _ = writeln!(out, "Errors by kind:\n");
    if totals.errors.is_empty() {
        let _ = writeln!(out, "No errors.\n");
    } else {
        let _ = writeln!(out, "| kind | count |\n| --- | --- |");
        for (kind, count) in &totals.errors {
            let _ = writeln!(out, "| {} | {count} |", cell(kind));
        }
        out.push('\n');
    }
}

/// Shows how far behind schedule the agents started connects and sent
/// messages. Lag here means the agents offered less load than planned.
fn render_schedule_lag(out: &mut String, group: &GroupSummary) {
    if group.schedule_lag.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "| behind schedule | samples | more than 100 ms late | p50 (ms) | p99 (ms) | max (ms) |\n\
         | --- | --- | --- | --- | --- | --- |"
    );
    for row in &group.schedule_lag {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {:.1} | {:.1} | {:.1} |",
            cell(&row.kind),
            row.samples,
            row.late,
            row.p50_us as f64 / 1000.0,
            row.p99_us as f64 / 1000.0,
            row.max_us as f64 / 1000.0,
        );
    }
    out.push('\n');
}

/// Shows how long each step took, merged over the agents and the whole
/// group. Runs recorded before `round_trips.csv` existed show nothing.
fn render_round_trips(out: &mut String, group: &GroupSummary) {
    if group.round_trips.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "Round trips by kind: the time each step took, from its first byte sent \
         to the answer that ends it, over the whole group.\n"
    );
    let _ = writeln!(
        out,
        "| kind | count | p50 (ms) | p90 (ms) | p99 (ms) | max (ms) |\n\
         | --- | --- | --- | --- | --- | --- |"
    );
    for trips in &group.round_trips {
        let latency = &trips.latency;
        let _ = writeln!(
            out,
            "| {} | {} | {:.2} | {:.2} | {:.2} | {:.2} |",
            cell(&trips.kind),
            latency.count,
            latency.p50_ms,
            latency.p90_ms,
            latency.p99_ms,
            latency.max_ms,
        );
    }
    out.push('\n');
}

/// Lists the agents whose slice of the group did not run to its end.
fn render_incomplete_warning(out: &mut String, group: &GroupSummary) {
    if group.incomplete.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "WARNING: this group is incomplete. The bot counters, messages and latency \
         below cover only the agents that finished, while CPU includes the load of \
         every agent. Agents whose slice did not run to its end:\n"
    );
    for slice in &group.incomplete {
        let _ = writeln!(
            out,
            "- {}: {}, {}",
            slice.agent,
            count_noun(slice.bots as usize, "bot", "bots"),
            cell(&slice.reason)
        );
    }
    out.push('\n');
}

fn render_cpu_table(out: &mut String, windows: &[WindowSummary], interval_ms: u32) {
    let _ = writeln!(
        out,
        "CPU in % of one core over the samples taken in each window; the host \
         row is whole-host CPU in % of all cores. Gap samples (process missing \
         or restarted) are excluded. Coverage is the valid samples in % of the \
         whole {interval_ms} ms monitor intervals that fit in the window.\n"
    );
    let _ = writeln!(
        out,
        "| window | time (s) | process | samples | coverage (%) | mean | std dev | max \
         | gaps excluded |"
    );
    let _ = writeln!(out, "|{}", " --- |".repeat(9));
    let mut warnings = Vec::new();
    for window in windows {
        let label = window_label(window);
        let span = window_span(window);
        for process in &window.processes {
            let _ = writeln!(
                out,
                "| {label} | {span} | {} | {} | {} |",
                cell(&process.process),
                summary_cells(&process.cpu, process.coverage),
                gaps_cell(process)
            );
            warnings.extend(coverage_warning(&process.process, window, process.coverage));
        }
        let _ = writeln!(
            out,
            "| {label} | {span} | host | {} | |",
            summary_cells(&window.host_cpu, window.host_coverage)
        );
        warnings.extend(coverage_warning("host", window, window.host_coverage));
    }
    out.push('\n');
    for warning in &warnings {
        let _ = writeln!(out, "{warning}\n");
    }
}

/// Cells `samples | coverage | mean | std dev | max` of a CPU summary.
fn summary_cells(summary: &Summary, coverage: Option<Coverage>) -> String {
    let coverage = match coverage {
        Some(coverage) => format!("{:.0}", coverage.percent()),
        None => NOT_AVAILABLE.to_owned(),
    };
    format!(
        "{} | {coverage} | {} | {} | {}",
        summary.count(),
        format_option(summary.mean(), 1),
        format_option(summary.std_dev(), 1),
        format_option(summary.max(), 1)
    )
}

/// Number of left-out samples, with the time of the first one.
fn gaps_cell(process: &ProcessCpu) -> String {
    match process.first_excluded_s {
        Some(first) => format!("{} (first at {first:.1} s)", process.excluded_samples),
        None => process.excluded_samples.to_string(),
    }
}

/// Warning line for a process or the host with too few samples in a window.
fn coverage_warning(
    process: &str,
    window: &WindowSummary,
    coverage: Option<Coverage>,
) -> Option<String> {
    let coverage = coverage.filter(Coverage::is_low)?;
    Some(format!(
        "WARNING: {} has {} of {} expected monitor samples ({:.0}%) in the {} window \
         ({} s). The monitor lost samples or the process was not running.",
        process,
        coverage.samples,
        coverage.expected,
        coverage.percent(),
        window_label(window),
        window_span(window)
    ))
}

fn render_traffic_table(out: &mut String, windows: &[WindowSummary]) {
    let _ = writeln!(
        out,
        "Messages and send-to-reflection latency from the agents' one-second \
         reports that overlap each window, so a window can include up to one \
         second of traffic next to it.\n"
    );
    let _ = writeln!(
        out,
        "| window | time (s) | sent | received | reflections | latency samples \
         | p50 (ms) | p90 (ms) | p99 (ms) | max (ms) |"
    );
    let _ = writeln!(out, "|{}", " --- |".repeat(10));
    for window in windows {
        let latency = match &window.latency {
            Some(l) => format!(
                "{} | {:.2} | {:.2} | {:.2} | {:.2}",
                l.count, l.p50_ms, l.p90_ms, l.p99_ms, l.max_ms
            ),
            None => {
                format!("0 | {NOT_AVAILABLE} | {NOT_AVAILABLE} | {NOT_AVAILABLE} | {NOT_AVAILABLE}")
            }
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {latency} |",
            window_label(window),
            window_span(window),
            window.messages.sent,
            window.messages.received,
            window.messages.reflections,
        );
    }
    out.push('\n');
}

pub(in crate::report) fn window_label(window: &WindowSummary) -> String {
    match window.window.kind {
        WindowKind::Phase(phase) => phase.to_string(),
        WindowKind::WholeGroup => "whole group".to_owned(),
    }
}

pub(in crate::report) fn window_span(window: &WindowSummary) -> String {
    format!("{:.1} – {:.1}", window.window.start_s, window.window.end_s)
}
