//! Rendering of `report.md`: the run's settings, per-group tables and the
//! comparison of groups, as GitHub-flavoured markdown.

use std::fmt::Write as _;
use std::path::Path;

use super::data::RunData;
use super::error::ReportError;
use super::stats::{Summary, Verdict};
use super::summary::{
    CONFIDENCE, GroupComparison, GroupSummary, ProcessComparison, RunSummary, WindowKind,
    WindowSummary, summarize,
};
use crate::results::run_info::{PeerInfo, RunInfo};

/// Placeholder for a value that cannot be computed, such as the standard
/// deviation of a single sample.
const NOT_AVAILABLE: &str = "n/a";

/// Writes the report of `data` to the file `out` (normally `report.md` in
/// the results folder).
pub fn write_markdown(data: &RunData, out: &Path) -> Result<(), ReportError> {
    let summary = summarize(data)?;
    let text = render_markdown(data, &summary);
    std::fs::write(out, text).map_err(|source| ReportError::Write {
        path: out.to_path_buf(),
        source,
    })
}

/// Renders the whole report as markdown text.
pub fn render_markdown(data: &RunData, summary: &RunSummary) -> String {
    let mut out = String::new();
    render_header(&mut out, data);
    render_groups_settings(&mut out, &data.run);
    render_peers(&mut out, &data.run);
    for group in &summary.groups {
        render_group(&mut out, group);
    }
    render_comparisons(&mut out, &summary.comparisons);
    out
}

fn render_header(out: &mut String, data: &RunData) {
    let run = &data.run;
    let _ = writeln!(out, "# Load test report: {}\n", run.scenario_name);
    let _ = writeln!(out, "| | |\n| --- | --- |");
    let _ = writeln!(out, "| scenario file | `{}` |", cell(&run.scenario_path));
    let _ = writeln!(out, "| started | {} |", format_utc(run.started_unix_micros));
    let duration = match run.finished_unix_micros {
        Some(_) => format!("{:.1} s", data.duration_s()),
        None => format!(
            "unfinished: the run recorded no end, last data at {:.1} s",
            data.duration_s()
        ),
    };
    let _ = writeln!(out, "| duration | {duration} |");

    let processes = if run.monitored_processes.is_empty() {
        "none".to_owned()
    } else {
        run.monitored_processes.join(", ")
    };
    let host = match &run.monitor {
        Some(monitor) => format!("on `{}` ({} cores)", cell(&monitor.name), monitor.cores),
        None => "no monitor agent".to_owned(),
    };
    let _ = writeln!(
        out,
        "| monitor | every {} ms, {host}, processes: {} |",
        run.monitor_interval_ms,
        cell(&processes)
    );
    if !data.missing_files.is_empty() {
        let _ = writeln!(
            out,
            "\nMissing from the results folder, so their numbers are absent: {}.",
            data.missing_files.join(", ")
        );
    }
    out.push('\n');
}

fn render_groups_settings(out: &mut String, run: &RunInfo) {
    let _ = writeln!(out, "## Groups\n");
    if run.groups.is_empty() {
        let _ = writeln!(out, "`run.json` lists no groups.\n");
        return;
    }
    let _ = writeln!(
        out,
        "| group | transport | TLS | stream management | bots | join rate (bots/s) \
         | talk after (s) | talk rate (msg/s per bot) | talk duration (s) | leave after (s) \
         | body (bytes) | room | first bot at (s) | bots per agent |"
    );
    let _ = writeln!(out, "|{}", " --- |".repeat(14));
    for group in &run.groups {
        let placement: Vec<String> = group
            .placement
            .iter()
            .map(|p| format!("{}: {}", p.agent, p.bots))
            .collect();
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {:.1} | {} |",
            cell(&group.name),
            cell(&group.transport),
            cell(&group.tls),
            if group.stream_management { "on" } else { "off" },
            group.bots,
            group.join_rate,
            group.talk_after_s,
            group.talk_rate,
            group.talk_duration_s,
            group.leave_after_s,
            group.body_bytes,
            cell(&group.room),
            group.scheduled_start_s,
            cell(&placement.join(", ")),
        );
    }
    out.push('\n');
}

fn render_peers(out: &mut String, run: &RunInfo) {
    let _ = writeln!(out, "## Agents\n");
    let _ = writeln!(
        out,
        "Clock offset is the peer's clock minus the coordinator's; every time \
         from a peer was shifted by it.\n"
    );
    let _ = writeln!(
        out,
        "| peer | role | address | version | cores | fd limit | clock offset (ms) | bots |"
    );
    let _ = writeln!(out, "|{}", " --- |".repeat(8));
    let monitor = run.monitor.iter().map(|peer| (peer, "monitor"));
    let agents = run.agents.iter().map(|peer| (peer, "bot agent"));
    for (peer, role) in monitor.chain(agents) {
        let _ = writeln!(
            out,
            "| {} | {role} | {} | {} | {} | {} | {} | {} |",
            cell(&peer.name),
            cell(&peer.address),
            cell(&peer.version),
            peer.cores,
            peer.fd_limit,
            format_clock_offset(peer),
            cell(&bots_on_agent(run, &peer.name)),
        );
    }
    out.push('\n');
}

/// Lists the bots of each group placed on `agent`, such as `ws: 50, c2s: 50`.
fn bots_on_agent(run: &RunInfo, agent: &str) -> String {
    let placed: Vec<String> = run
        .groups
        .iter()
        .flat_map(|group| {
            group
                .placement
                .iter()
                .filter(|p| p.agent == agent)
                .map(|p| format!("{}: {}", group.name, p.bots))
        })
        .collect();
    if placed.is_empty() {
        "none".to_owned()
    } else {
        placed.join(", ")
    }
}

fn format_clock_offset(peer: &PeerInfo) -> String {
    format!(
        "{:+.3} ± {:.3}",
        peer.clock_offset_micros as f64 / 1000.0,
        peer.clock_uncertainty_micros as f64 / 1000.0
    )
}

fn render_group(out: &mut String, group: &GroupSummary) {
    let _ = writeln!(out, "## Group {}\n", group.name);
    let totals = &group.totals;
    let planned = match group.planned_bots {
        Some(bots) => format!("{bots} planned"),
        None => "not in run.json".to_owned(),
    };
    let _ = writeln!(
        out,
        "Bots: {planned}, {} joined, {} failed, {} left, {} connect attempts, \
         {} sends more than 100 ms late (final counters of {} agents).\n",
        totals.joined,
        totals.failed,
        totals.left,
        totals.connect_attempts,
        totals.late_sends,
        totals.agents,
    );
    if group.windows.is_empty() {
        let _ = writeln!(out, "`phases.csv` has no phase of this group.\n");
    } else {
        render_cpu_table(out, &group.windows);
        render_traffic_table(out, &group.windows);
    }

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

fn render_cpu_table(out: &mut String, windows: &[WindowSummary]) {
    let _ = writeln!(
        out,
        "CPU in % of one core over the samples taken in each window; the host \
         row is whole-host CPU in % of all cores. Gap samples (process missing \
         or restarted) are excluded.\n"
    );
    let _ = writeln!(
        out,
        "| window | time (s) | process | samples | mean | std dev | max | gaps excluded |"
    );
    let _ = writeln!(out, "|{}", " --- |".repeat(8));
    for window in windows {
        let label = window_label(window);
        let span = window_span(window);
        for process in &window.processes {
            let _ = writeln!(
                out,
                "| {label} | {span} | {} | {} | {} |",
                cell(&process.process),
                summary_cells(&process.cpu),
                process.excluded_samples
            );
        }
        let _ = writeln!(
            out,
            "| {label} | {span} | host | {} | |",
            summary_cells(&window.host_cpu)
        );
    }
    out.push('\n');
}

/// Cells `samples | mean | std dev | max` of a CPU summary.
fn summary_cells(summary: &Summary) -> String {
    format!(
        "{} | {} | {} | {}",
        summary.count(),
        format_option(summary.mean(), 1),
        format_option(summary.std_dev(), 1),
        format_option(summary.max(), 1)
    )
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

fn window_label(window: &WindowSummary) -> String {
    match window.window.kind {
        WindowKind::Phase(phase) => phase.to_string(),
        WindowKind::WholeGroup => "whole group".to_owned(),
    }
}

fn window_span(window: &WindowSummary) -> String {
    format!("{:.1} – {:.1}", window.window.start_s, window.window.end_s)
}

fn render_comparisons(out: &mut String, comparisons: &[ProcessComparison]) {
    let _ = writeln!(out, "## Groups compared while talking\n");
    let Some(first) = comparisons.first() else {
        let _ = writeln!(
            out,
            "Nothing to compare: no monitored process, or no group has a talk phase.\n"
        );
        return;
    };
    if first.others.is_empty() {
        let _ = writeln!(
            out,
            "Only one group has a talk phase, so there is nothing to compare.\n"
        );
        return;
    }

    let percent = CONFIDENCE * 100.0;
    let _ = writeln!(
        out,
        "Mean CPU (% of one core) during each group's talk phase against the first \
         group, {}. Differences are in percentage points of one core with a \
         {percent:.0}% Welch t interval.\n",
        first.baseline_group
    );
    let _ = writeln!(
        out,
        "NOTE: consecutive CPU samples are autocorrelated, while the interval \
         assumes independent samples, so it is narrower than the true \
         uncertainty. Groups that ran at different times also differ by any \
         drift of the server between them.\n"
    );

    for comparison in comparisons {
        let _ = writeln!(out, "### {}\n", comparison.process);
        let _ = writeln!(
            out,
            "| group | samples | mean CPU (%) | difference (points) | {percent:.0}% CI (points) |"
        );
        let _ = writeln!(out, "|{}", " --- |".repeat(5));
        let _ = writeln!(
            out,
            "| {} (baseline) | {} | {} | | |",
            cell(&comparison.baseline_group),
            comparison.baseline.count(),
            format_option(comparison.baseline.mean(), 1)
        );
        for other in &comparison.others {
            let (difference, interval) = match &other.difference {
                Some(d) => (
                    format!("{:+.1}", d.difference),
                    format!("{:.1} to {:.1}", d.low, d.high),
                ),
                None => (NOT_AVAILABLE.to_owned(), NOT_AVAILABLE.to_owned()),
            };
            let _ = writeln!(
                out,
                "| {} | {} | {} | {difference} | {interval} |",
                cell(&other.group),
                other.talk.count(),
                format_option(other.talk.mean(), 1)
            );
        }
        out.push('\n');
        for other in &comparison.others {
            let _ = writeln!(out, "- {}", verdict_line(comparison, other));
        }
        out.push('\n');
    }
}

/// Builds the sentence that states whether `other` costs the process more CPU
/// than the baseline group while talking.
pub fn verdict_line(comparison: &ProcessComparison, other: &GroupComparison) -> String {
    let subject = format!("{} vs {}", other.group, comparison.baseline_group);
    let process = &comparison.process;
    let percent = CONFIDENCE * 100.0;
    let Some(d) = &other.difference else {
        return format!(
            "{subject}: too few {process} CPU samples while talking to compare \
             ({} and {}, at least two each are needed)",
            comparison.baseline.count(),
            other.talk.count()
        );
    };
    let interval = format!("{percent:.0}% CI {:.1} to {:.1}", d.low, d.high);
    match d.verdict() {
        Verdict::NoSignificantDifference => format!(
            "{subject}: no significant difference in {process} CPU while talking \
             (difference {:+.1} points, {interval})",
            d.difference
        ),
        Verdict::Higher => format!(
            "{subject}: {} costs {:.1} points more {process} CPU while talking ({interval})",
            other.group, d.difference
        ),
        Verdict::Lower => format!(
            "{subject}: {} costs {:.1} points less {process} CPU while talking ({interval})",
            other.group, -d.difference
        ),
    }
}

fn format_option(value: Option<f64>, decimals: usize) -> String {
    match value {
        Some(value) => format!("{value:.decimals$}"),
        None => NOT_AVAILABLE.to_owned(),
    }
}

/// Escapes the characters that would end a markdown table cell or row.
fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

/// Formats Unix microseconds as `YYYY-MM-DD hh:mm:ss.mmm UTC`.
fn format_utc(unix_micros: i64) -> String {
    let seconds = unix_micros.div_euclid(1_000_000);
    let millis = unix_micros.rem_euclid(1_000_000) / 1000;
    let days = seconds.div_euclid(86_400);
    let second_of_day = seconds.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}.{millis:03} UTC",
        second_of_day / 3600,
        second_of_day % 3600 / 60,
        second_of_day % 60
    )
}

/// Converts days since 1970-01-01 to a proleptic Gregorian (year, month, day).
///
/// Counts from 0000-03-01 so that the leap day ends each 400-year era's
/// years, which makes the month lengths a linear formula.
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let shifted = days + 719_468;
    let era = shifted.div_euclid(146_097);
    let day_of_era = shifted.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    // Months counted from March, 0 to 11.
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * shifted_month + 2) / 5 + 1;
    let month = if shifted_month < 10 {
        shifted_month + 3
    } else {
        shifted_month - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Dates around leap days and the epoch format as calendar dates.
    #[test]
    fn utc_known_dates() {
        assert_eq!(format_utc(0), "1970-01-01 00:00:00.000 UTC");
        // 2024-02-29 12:34:56.789 UTC is 1709210096 s after the epoch.
        assert_eq!(
            format_utc(1_709_210_096_789_000),
            "2024-02-29 12:34:56.789 UTC"
        );
        assert_eq!(
            format_utc(951_782_400_000_000),
            "2000-02-29 00:00:00.000 UTC"
        );
        assert_eq!(format_utc(-1_000_000), "1969-12-31 23:59:59.000 UTC");
    }

    /// Pipes in names cannot break a table row.
    #[test]
    fn cell_escapes_pipe() {
        assert_eq!(cell("a|b"), "a\\|b");
    }
}
