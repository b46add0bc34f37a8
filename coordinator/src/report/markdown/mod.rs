//! Rendering of `report.md`: the run's settings, per-group tables and the
//! comparison of groups, as GitHub-flavoured markdown.

use std::fmt::Write as _;
use std::path::Path;

mod compare;
mod group;
mod outages;

use super::data::RunData;
use super::error::ReportError;
use super::summary::{RunSummary, summarize};
use crate::results::run_info::{GroupInfo, PeerInfo, RunInfo};
use compare::render_comparisons;
pub use compare::verdict_line;
use group::render_group;
pub(super) use group::{window_label, window_span};
use outages::render_outages;

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
    render_header(&mut out, data, summary);
    render_groups_settings(&mut out, &data.run);
    render_peers(&mut out, &data.run);
    render_outages(&mut out, &data.run);
    for group in &summary.groups {
        render_group(&mut out, group, data.run.monitor_interval_ms);
    }
    render_comparisons(&mut out, &summary.comparisons);
    out
}

fn render_header(out: &mut String, data: &RunData, summary: &RunSummary) {
    let run = &data.run;
    let _ = writeln!(
        out,
        "# Load test report: {}\n",
        plain_text(&run.scenario_name)
    );
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
    if run.stopped_early {
        let _ = writeln!(
            out,
            "| status | stopped early: the run was interrupted before its timeline ended |"
        );
    }
    let not_started: Vec<&str> = summary
        .groups
        .iter()
        .filter(|g| g.not_started)
        .map(|g| g.name.as_str())
        .collect();
    if !not_started.is_empty() {
        let _ = writeln!(out, "| did not start | {} |", cell(&not_started.join(", ")));
    }

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
    // Statistics cost the server CPU, so a reader comparing CPU must know.
    let server_metrics = match &run.server_metrics_url {
        Some(url) if data.server_metric_rows > 0 => format!(
            "collected from `{}` (statistics on: they cost server CPU)",
            cell(url)
        ),
        Some(url) => format!(
            "requested from `{}`, but no read succeeded (see the coordinator's log)",
            cell(url)
        ),
        None => "not collected".to_owned(),
    };
    let _ = writeln!(out, "| server metrics | {server_metrics} |");
    if !data.missing_files.is_empty() {
        let _ = writeln!(
            out,
            "\nMissing from the results folder, so their numbers are absent: {}.",
            data.missing_files.join(", ")
        );
    }
    if !data.skipped_rows.is_empty() {
        out.push('\n');
        for skipped in &data.skipped_rows {
            let _ = writeln!(
                out,
                "- skipped a truncated last row in {} (line {})",
                skipped.file, skipped.line
            );
        }
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
            cell(&room_label(group)),
            group.scheduled_start_s,
            cell(&placement.join(", ")),
        );
    }
    out.push('\n');
    render_web_clients(out, &run.groups);
}

/// Lists the groups whose bots made browser-like requests, which add to
/// the server's cost beyond the join and the talk.
fn render_web_clients(out: &mut String, groups: &[GroupInfo]) {
    let web: Vec<&GroupInfo> = groups
        .iter()
        .filter(|group| group.web_client != "off")
        .collect();
    if web.is_empty() {
        return;
    }
    // Keys: error.KIND (error replies), timeout.KIND, answered.KIND (iq
    // requests the bots replied to) and mam_messages (archived messages).
    let _ = writeln!(out, "Web-client requests of the bots:\n");
    for group in web {
        let _ = writeln!(out, "- {}: {}", group.name, group.web_client);
        if !group.web_client_counts.is_empty() {
            let counts: Vec<String> = group
                .web_client_counts
                .iter()
                .map(|(key, count)| format!("{key} {count}"))
                .collect();
            let _ = writeln!(out, "  - counts: {}", counts.join(", "));
        }
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
pub(super) fn bots_on_agent(run: &RunInfo, agent: &str) -> String {
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

/// Formats a count with the singular or plural noun, such as `1 agent`.
fn count_noun(count: usize, singular: &str, plural: &str) -> String {
    if count == 1 {
        format!("{count} {singular}")
    } else {
        format!("{count} {plural}")
    }
}

fn format_option(value: Option<f64>, decimals: usize) -> String {
    match value {
        Some(value) => format!("{value:.decimals$}"),
        None => NOT_AVAILABLE.to_owned(),
    }
}

/// Room cell of a group: the JID alone for one room, else the room count,
/// the distribution and the rooms per bot after it.
fn room_label(group: &crate::results::run_info::GroupInfo) -> String {
    if group.rooms <= 1 {
        return group.room.clone();
    }
    let distribution = match group.zipf_exponent {
        Some(exponent) => format!("zipf {exponent}"),
        None => group.room_distribution.clone(),
    };
    format!(
        "{} × {} ({distribution}, {} per bot)",
        group.room, group.rooms, group.rooms_per_bot
    )
}

/// Escapes the characters that would end a markdown table cell or row.
fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

/// Escapes markdown markup in free text, so a scenario name such as
/// `*fast*_run` prints as written, and joins its lines into one.
fn plain_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '#' | '|' => {
                out.push('\\');
                out.push(c);
            }
            '\n' | '\r' => out.push(' '),
            _ => out.push(c),
        }
    }
    out
}

/// Formats Unix microseconds as `YYYY-MM-DD hh:mm:ss.mmm UTC`.
pub(super) fn format_utc(unix_micros: i64) -> String {
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

    /// Several rooms show their count, distribution and rooms per bot.
    #[test]
    fn room_label_shows_rooms() {
        let text = r#"{"name": "g", "transport": "c2s", "tls": "none",
            "stream_management": false, "bots": 10, "room": "r@m", "join_rate": 1.0,
            "talk_after_s": 0.0, "talk_rate": 0.0, "talk_duration_s": 0.0,
            "leave_after_s": 1.0, "body_bytes": 64, "scheduled_start_s": 0.0,
            "placement": []}"#;
        let mut group: crate::results::run_info::GroupInfo = serde_json::from_str(text).unwrap();
        assert_eq!(group.rooms, 1, "older run.json reads as one room");
        assert_eq!(room_label(&group), "r@m");

        group.rooms = 500;
        group.room_distribution = "zipf".to_string();
        group.zipf_exponent = Some(1.2);
        group.rooms_per_bot = 2;
        assert_eq!(room_label(&group), "r@m × 500 (zipf 1.2, 2 per bot)");
    }

    /// Groups with web-client requests are listed with their counts;
    /// older run.json files read as off and add nothing.
    #[test]
    fn web_clients_listed_with_counts() {
        let text = r#"{"name": "web", "transport": "websocket", "tls": "none",
            "stream_management": true, "bots": 10, "room": "r@m", "join_rate": 1.0,
            "talk_after_s": 0.0, "talk_rate": 0.0, "talk_duration_s": 0.0,
            "leave_after_s": 1.0, "body_bytes": 64, "scheduled_start_s": 0.0,
            "placement": []}"#;
        let old: GroupInfo = serde_json::from_str(text).unwrap();
        assert_eq!(old.web_client, "off");
        let mut web = old.clone();
        web.web_client = "disco, mam 50".to_owned();
        web.web_client_counts = [
            ("error.vcard_room".to_owned(), 10),
            ("mam_messages".to_owned(), 40),
        ]
        .into_iter()
        .collect();
        let mut out = String::new();
        render_web_clients(&mut out, std::slice::from_ref(&old));
        assert!(out.is_empty(), "{out}");

        render_web_clients(&mut out, &[old, web]);
        assert!(out.contains("- web: disco, mam 50\n"), "{out}");
        assert!(
            out.contains("counts: error.vcard_room 10, mam_messages 40"),
            "{out}"
        );
    }

    /// Pipes in names cannot break a table row.
    #[test]
    fn cell_escapes_pipe() {
        assert_eq!(cell("a|b"), "a\\|b");
    }

    /// Markup and line breaks in a scenario name print literally.
    #[test]
    fn plain_text_escapes_markup() {
        assert_eq!(plain_text("*a*_b"), "\\*a\\*\\_b");
        assert_eq!(plain_text("x\n# y"), "x \\# y");
        assert_eq!(plain_text("<b>"), "\\<b\\>");
    }
}
