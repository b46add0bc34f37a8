//! The sections of `report.html`, with the same content as `report.md`.

use std::fmt::Write as _;

use super::escape;
use crate::report::compare::{CONFIDENCE, ProcessComparison};
use crate::report::data::RunData;
use crate::report::markdown::{bots_on_agent, format_utc, verdict_line, window_label, window_span};
use crate::report::stats::{Summary, cpu_interval};
use crate::report::summary::{Coverage, GroupSummary, RunSummary, WindowSummary};
use crate::results::run_info::{GroupInfo, RunInfo};

const NOT_AVAILABLE: &str = "n/a";

/// Writes a table row whose cells are already escaped or are numbers.
/// Cells given as `(text, true)` are aligned right as numbers.
fn row(out: &mut String, cells: &[(String, bool)]) {
    out.push_str("<tr>");
    for (text, number) in cells {
        if *number {
            let _ = write!(out, "<td class=\"number\">{text}</td>");
        } else {
            let _ = write!(out, "<td>{text}</td>");
        }
    }
    out.push_str("</tr>\n");
}

fn header_row(out: &mut String, names: &[&str]) {
    out.push_str("<tr>");
    for name in names {
        let _ = write!(out, "<th>{}</th>", escape(name));
    }
    out.push_str("</tr>\n");
}

fn text(value: &str) -> (String, bool) {
    (escape(value), false)
}

fn number(value: impl ToString) -> (String, bool) {
    (value.to_string(), true)
}

fn decimal(value: Option<f64>, decimals: usize) -> (String, bool) {
    match value {
        Some(value) => (format!("{value:.decimals$}"), true),
        None => (NOT_AVAILABLE.to_owned(), true),
    }
}

pub(super) fn render_header(out: &mut String, data: &RunData, summary: &RunSummary) {
    let run = &data.run;
    out.push_str("<table>\n");
    row(out, &[text("scenario file"), text(&run.scenario_path)]);
    row(
        out,
        &[text("started"), text(&format_utc(run.started_unix_micros))],
    );
    let duration = match run.finished_unix_micros {
        Some(_) => format!("{:.1} s", data.duration_s()),
        None => format!(
            "unfinished: the run recorded no end, last data at {:.1} s",
            data.duration_s()
        ),
    };
    row(out, &[text("duration"), text(&duration)]);
    let monitor = match &run.monitor {
        Some(monitor) => format!(
            "every {} ms on {} ({} cores), processes: {}",
            run.monitor_interval_ms,
            monitor.name,
            monitor.cores,
            run.monitored_processes.join(", ")
        ),
        None => "no monitor agent".to_owned(),
    };
    row(out, &[text("monitor"), text(&monitor)]);
    let groups: Vec<&str> = summary.groups.iter().map(|g| g.name.as_str()).collect();
    row(out, &[text("groups"), text(&groups.join(", "))]);
    out.push_str("</table>\n");
}

/// Lists everything that limits what the numbers mean: an interrupted or
/// unfinished run, groups that did not start, lost agent slices, missing
/// files, skipped rows and windows with too few monitor samples.
pub(super) fn render_warnings(out: &mut String, data: &RunData, summary: &RunSummary) {
    let mut warnings: Vec<String> = Vec::new();
    if data.run.stopped_early {
        warnings.push("The run was stopped before its timeline ended.".to_owned());
    }
    if data.run.finished_unix_micros.is_none() {
        warnings.push("The run recorded no end, so its last data may be missing.".to_owned());
    }
    for group in &summary.groups {
        if group.not_started {
            warnings.push(format!(
                "Group {} did not start: bots.csv has no row of it.",
                group.name
            ));
        }
        for slice in &group.incomplete {
            let at = slice
                .lost_at_s
                .map_or(String::new(), |t| format!(" at {t:.1} s"));
            warnings.push(format!(
                "Group {}: the slice of {} bots on {} was lost{at}: {}. Its counters, \
                 messages and latency are left out, and the group is not compared.",
                group.name, slice.bots, slice.agent, slice.reason
            ));
        }
        for window in &group.windows {
            let processes = window
                .processes
                .iter()
                .map(|p| (p.process.as_str(), p.coverage))
                .chain([("host", window.host_coverage)]);
            for (process, coverage) in processes {
                if let Some(coverage) = coverage.filter(Coverage::is_low) {
                    warnings.push(format!(
                        "Group {}, {} window: {process} has {} of {} expected monitor \
                         samples ({:.0}%).",
                        group.name,
                        window_label(window),
                        coverage.samples,
                        coverage.expected,
                        coverage.percent()
                    ));
                }
            }
        }
    }
    for file in &data.missing_files {
        warnings.push(format!("{file} is missing, so its numbers are absent."));
    }
    for skipped in &data.skipped_rows {
        warnings.push(format!(
            "A truncated last row of {} (line {}) was skipped.",
            skipped.file, skipped.line
        ));
    }

    let _ = writeln!(out, "<h2>Losses and warnings</h2>");
    if warnings.is_empty() {
        let _ = writeln!(
            out,
            "<p>None: every agent finished its share and no data is missing.</p>"
        );
        return;
    }
    out.push_str("<ul class=\"warning\">\n");
    for warning in &warnings {
        let _ = writeln!(out, "<li>{}</li>", escape(warning));
    }
    out.push_str("</ul>\n");
}

pub(super) fn render_groups_settings(out: &mut String, run: &RunInfo) {
    let _ = writeln!(out, "<h2>Groups and placement</h2>");
    if run.groups.is_empty() {
        let _ = writeln!(out, "<p>run.json lists no groups.</p>");
        return;
    }
    out.push_str("<table>\n");
    header_row(
        out,
        &[
            "group",
            "transport",
            "TLS",
            "stream management",
            "bots",
            "join rate (bots/s)",
            "talk after (s)",
            "talk rate (msg/s per bot)",
            "talk duration (s)",
            "leave after (s)",
            "body (bytes)",
            "room",
            "first bot at (s)",
            "bots per agent",
        ],
    );
    for group in &run.groups {
        let placement: Vec<String> = group
            .placement
            .iter()
            .map(|p| format!("{}: {}", p.agent, p.bots))
            .collect();
        row(
            out,
            &[
                text(&group.name),
                text(&group.transport),
                text(&group.tls),
                text(if group.stream_management { "on" } else { "off" }),
                number(group.bots),
                number(group.join_rate),
                number(group.talk_after_s),
                number(group.talk_rate),
                number(group.talk_duration_s),
                number(group.leave_after_s),
                number(group.body_bytes),
                text(&group.room),
                decimal(Some(group.scheduled_start_s), 1),
                text(&placement.join(", ")),
            ],
        );
    }
    out.push_str("</table>\n");
    render_web_clients(out, &run.groups);
}

/// Lists the groups whose bots made browser-like requests, with their
/// counts, as the Markdown report does.
fn render_web_clients(out: &mut String, groups: &[GroupInfo]) {
    let web: Vec<_> = groups
        .iter()
        .filter(|group| group.web_client != "off")
        .collect();
    if web.is_empty() {
        return;
    }
    let _ = writeln!(out, "<p>Web-client requests of the bots:</p>\n<ul>");
    for group in web {
        let counts: Vec<String> = group
            .web_client_counts
            .iter()
            .map(|(key, count)| format!("{key} {count}"))
            .collect();
        let counts = if counts.is_empty() {
            String::new()
        } else {
            format!(" (counts: {})", counts.join(", "))
        };
        let _ = writeln!(
            out,
            "<li>{}: {}{}</li>",
            escape(&group.name),
            escape(&group.web_client),
            escape(&counts)
        );
    }
    out.push_str("</ul>\n");
}

pub(super) fn render_peers(out: &mut String, run: &RunInfo) {
    let _ = writeln!(out, "<h2>Agents and clocks</h2>");
    let _ = writeln!(
        out,
        "<p>Clock offset is the peer's clock minus the coordinator's, with the \
         half round trip that bounds its error; every time from a peer was \
         shifted by it.</p>"
    );
    out.push_str("<table>\n");
    header_row(
        out,
        &[
            "peer",
            "role",
            "address",
            "version",
            "cores",
            "fd limit",
            "clock offset (ms)",
            "uncertainty (± ms)",
            "bots",
        ],
    );
    let monitor = run.monitor.iter().map(|peer| (peer, "monitor"));
    let agents = run.agents.iter().map(|peer| (peer, "bot agent"));
    for (peer, role) in monitor.chain(agents) {
        let placed = bots_on_agent(run, &peer.name);
        row(
            out,
            &[
                text(&peer.name),
                text(role),
                text(&peer.address),
                text(&peer.version),
                number(peer.cores),
                number(peer.fd_limit),
                (
                    format!("{:+.3}", peer.clock_offset_micros as f64 / 1000.0),
                    true,
                ),
                (
                    format!("{:.3}", peer.clock_uncertainty_micros as f64 / 1000.0),
                    true,
                ),
                text(&placed),
            ],
        );
    }
    out.push_str("</table>\n");
}

pub(super) fn render_group(out: &mut String, group: &GroupSummary) {
    let _ = writeln!(out, "<h2>Group {}</h2>", escape(&group.name));
    let totals = &group.totals;
    let planned = match group.planned_bots {
        Some(bots) => format!("{bots} planned"),
        None => "not in run.json".to_owned(),
    };
    let _ = writeln!(
        out,
        "<p>Bots: {}, {} joined, {} failed, {} left, {} connect attempts, {} sends \
         more than 100 ms late (final counters of {} agents that finished).</p>",
        escape(&planned),
        totals.joined,
        totals.failed,
        totals.left,
        totals.connect_attempts,
        totals.late_sends,
        totals.agents
    );
    if group.windows.is_empty() {
        let _ = writeln!(out, "<p>phases.csv has no phase of this group.</p>");
    } else {
        render_cpu_table(out, &group.windows);
        render_traffic_table(out, &group.windows);
    }
    render_round_trips(out, group);

    if totals.errors.is_empty() {
        let _ = writeln!(out, "<p>No failures.</p>");
    } else {
        let _ = writeln!(out, "<h3>Failures by kind</h3>\n<table>");
        header_row(out, &["kind", "count"]);
        for (kind, count) in &totals.errors {
            row(out, &[text(kind), number(count)]);
        }
        out.push_str("</table>\n");
    }
}

fn render_cpu_table(out: &mut String, windows: &[WindowSummary]) {
    let percent = CONFIDENCE * 100.0;
    let _ = writeln!(
        out,
        "<h3>CPU per phase</h3>\n<p>Processes in % of one core, host in % of all \
         cores, over the valid samples in each window. The {percent:.0}% interval of \
         the mean assumes independent samples, so it is narrower than the true \
         uncertainty.</p>\n<table>"
    );
    let ci_header = format!("{percent:.0}% CI of mean");
    header_row(
        out,
        &[
            "window",
            "time (s)",
            "process",
            "samples",
            "coverage (%)",
            "mean",
            &ci_header,
            "std dev",
            "max",
        ],
    );
    for window in windows {
        let cpus = window
            .processes
            .iter()
            .map(|p| (p.process.as_str(), &p.cpu, p.coverage))
            .chain([("host", &window.host_cpu, window.host_coverage)]);
        for (process, cpu, coverage) in cpus {
            row(
                out,
                &[
                    text(&window_label(window)),
                    text(&window_span(window)),
                    text(process),
                    number(cpu.count()),
                    decimal(coverage.map(|c| c.percent()), 0),
                    decimal(cpu.mean(), 1),
                    (interval_cell(cpu), true),
                    decimal(cpu.std_dev(), 1),
                    decimal(cpu.max(), 1),
                ],
            );
        }
    }
    out.push_str("</table>\n");
}

fn interval_cell(cpu: &Summary) -> String {
    match cpu_interval(cpu, CONFIDENCE) {
        Some(interval) => format!("{:.1} to {:.1}", interval.low, interval.high),
        None => NOT_AVAILABLE.to_owned(),
    }
}

/// Same table as in `report.md`: the time each step took over the group.
fn render_round_trips(out: &mut String, group: &GroupSummary) {
    if group.round_trips.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "<h3>Round trips by kind</h3>\n<p>The time each step took, from its first \
         byte sent to the answer that ends it, over the whole group.</p>\n<table>"
    );
    header_row(
        out,
        &[
            "kind", "count", "p50 (ms)", "p90 (ms)", "p99 (ms)", "max (ms)",
        ],
    );
    for trips in &group.round_trips {
        let latency = &trips.latency;
        row(
            out,
            &[
                text(&trips.kind),
                number(latency.count),
                decimal(Some(latency.p50_ms), 2),
                decimal(Some(latency.p90_ms), 2),
                decimal(Some(latency.p99_ms), 2),
                decimal(Some(latency.max_ms), 2),
            ],
        );
    }
    out.push_str("</table>\n");
}

fn render_traffic_table(out: &mut String, windows: &[WindowSummary]) {
    let _ = writeln!(
        out,
        "<h3>Messages and latency per phase</h3>\n<p>From the agents' one-second \
         reports that overlap each window, so a window can include up to one second \
         of traffic next to it.</p>\n<table>"
    );
    header_row(
        out,
        &[
            "window",
            "time (s)",
            "sent",
            "received",
            "reflections",
            "latency samples",
            "p50 (ms)",
            "p90 (ms)",
            "p99 (ms)",
            "max (ms)",
        ],
    );
    for window in windows {
        let latency = window.latency.as_ref();
        row(
            out,
            &[
                text(&window_label(window)),
                text(&window_span(window)),
                number(window.messages.sent),
                number(window.messages.received),
                number(window.messages.reflections),
                number(latency.map_or(0, |l| l.count)),
                decimal(latency.map(|l| l.p50_ms), 2),
                decimal(latency.map(|l| l.p90_ms), 2),
                decimal(latency.map(|l| l.p99_ms), 2),
                decimal(latency.map(|l| l.max_ms), 2),
            ],
        );
    }
    out.push_str("</table>\n");
}

pub(super) fn render_comparisons(out: &mut String, comparisons: &[ProcessComparison]) {
    let _ = writeln!(out, "<h2>Groups compared while talking</h2>");
    let Some(first) = comparisons.first() else {
        let _ = writeln!(
            out,
            "<p>Nothing to compare: no monitored process, or no group has a talk phase.</p>"
        );
        return;
    };
    if first.others.is_empty() {
        let _ = writeln!(
            out,
            "<p>Only one group has a talk phase, so there is nothing to compare.</p>"
        );
        return;
    }
    let percent = CONFIDENCE * 100.0;
    let _ = writeln!(
        out,
        "<p>Mean CPU (% of one core) during each group's talk phase against the \
         first group, {}. Differences are in points of one core with a {percent:.0}% \
         Welch t interval, which is narrower than the true uncertainty because \
         consecutive samples are autocorrelated.</p>",
        escape(&first.baseline_group)
    );
    let ci_header = format!("{percent:.0}% CI (points)");
    for comparison in comparisons {
        let _ = writeln!(out, "<h3>{}</h3>\n<table>", escape(&comparison.process));
        header_row(
            out,
            &[
                "group",
                "samples",
                "mean CPU (%)",
                "difference (points)",
                &ci_header,
            ],
        );
        row(
            out,
            &[
                text(&format!("{} (baseline)", comparison.baseline_group)),
                number(comparison.baseline.count()),
                decimal(comparison.baseline.mean(), 1),
                text(""),
                text(""),
            ],
        );
        for other in &comparison.others {
            let (difference, interval) = match &other.difference {
                Some(d) => (
                    format!("{:+.1}", d.difference),
                    format!("{:.1} to {:.1}", d.low, d.high),
                ),
                None => ("not compared".to_owned(), NOT_AVAILABLE.to_owned()),
            };
            row(
                out,
                &[
                    text(&other.group),
                    number(other.talk.count()),
                    decimal(other.talk.mean(), 1),
                    (difference, true),
                    (interval, true),
                ],
            );
        }
        out.push_str("</table>\n<ul>\n");
        for other in &comparison.others {
            let _ = writeln!(out, "<li>{}</li>", escape(&verdict_line(comparison, other)));
        }
        out.push_str("</ul>\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Web-client groups are listed with escaped names and their counts.
    #[test]
    fn web_clients_listed_escaped() {
        let text = r#"{"name": "web<1>", "transport": "websocket", "tls": "none",
            "stream_management": true, "bots": 10, "room": "r@m", "join_rate": 1.0,
            "talk_after_s": 0.0, "talk_rate": 0.0, "talk_duration_s": 0.0,
            "leave_after_s": 1.0, "body_bytes": 64, "scheduled_start_s": 0.0,
            "placement": []}"#;
        let old: GroupInfo = serde_json::from_str(text).unwrap();
        let mut out = String::new();
        render_web_clients(&mut out, std::slice::from_ref(&old));
        assert!(out.is_empty(), "{out}");

        let mut web = old;
        web.web_client = "disco".to_owned();
        web.web_client_counts = [("error.vcard_room".to_owned(), 3)].into_iter().collect();
        render_web_clients(&mut out, &[web]);
        assert!(
            out.contains("<li>web&lt;1&gt;: disco (counts: error.vcard_room 3)</li>"),
            "{out}"
        );
    }
}
