//! Several results folders side by side: `coordinator compare`.
//!
//! Groups are matched across runs by name, windows by phase. Each phase of
//! each group that every run has is tabulated per monitored process, with
//! the difference of every later run to the first and its Welch interval.
//! A group that some run lacks is listed as left out. A run that shares no
//! group with the first one is an error, because nothing could be compared.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use thiserror::Error;

use super::compare::{CONFIDENCE, NotComparable, comparability};
use super::data::RunData;
use super::error::ReportError;
use super::load::{RUN_JSON, load};
use super::markdown::format_utc;
use super::stats::{MeanDifference, Summary, welch_interval};
use super::summary::{GroupSummary, RunSummary, WindowKind, summarize};
use super::summary_json::window_name;

/// Name of the comparison report in the output folder.
pub const COMPARE_FILE: &str = "compare.md";

/// Failure to compare results folders.
#[derive(Debug, Error)]
pub enum CompareError {
    #[error("compare needs at least two results folders, got {0}")]
    TooFewRuns(usize),

    #[error(
        "{} is not a results folder: it has no {RUN_JSON}; pass folders written by \
         `coordinator run`, such as results/01",
        .0.display()
    )]
    NotARun(PathBuf),

    #[error(
        "run {run} has no group in common with run {first}: {run} has {}, {first} has {}",
        list(.run_groups), list(.first_groups)
    )]
    NoCommonGroup {
        first: String,
        first_groups: Vec<String>,
        run: String,
        run_groups: Vec<String>,
    },

    #[error(transparent)]
    Report(#[from] ReportError),
}

fn list(names: &[String]) -> String {
    if names.is_empty() {
        "no groups".to_owned()
    } else {
        names.join(", ")
    }
}

/// One loaded results folder and its label in tables and graphs.
#[derive(Debug)]
pub struct LoadedRun {
    /// The folder name, such as `01`, or the path as given when two
    /// folders have the same name.
    pub label: String,
    pub data: RunData,
    pub summary: RunSummary,
}

/// Everything `compare.md` states.
#[derive(Debug)]
pub struct RunsComparison {
    pub runs: Vec<LoadedRun>,
    /// Groups of the first run that every run has, in the first run's order.
    pub groups: Vec<String>,
    /// Groups that not every run has, with the labels of the runs that have them.
    pub left_out: Vec<(String, Vec<String>)>,
    /// Processes of the first run.
    pub processes: Vec<String>,
    pub rows: Vec<PhaseRow>,
}

/// One process in one window of one group, across all runs.
#[derive(Debug)]
pub struct PhaseRow {
    pub group: String,
    pub window: WindowKind,
    pub process: String,
    /// One cell per run, in the order of `RunsComparison::runs`.
    pub cells: Vec<RunCell>,
}

#[derive(Debug)]
pub struct RunCell {
    /// CPU in % of one core, `None` when the run has no such window or process.
    pub cpu: Option<Summary>,
    /// `mean(this run) - mean(first run)`; always `None` for the first run.
    pub difference: Option<MeanDifference>,
    /// Reasons that the pair is not compared: this run's, then the first run's.
    pub not_compared: Vec<NotComparable>,
}

/// Loads every folder in `dirs` and compares them with the first.
pub fn compare_runs(dirs: &[PathBuf]) -> Result<RunsComparison, CompareError> {
    if dirs.len() < 2 {
        return Err(CompareError::TooFewRuns(dirs.len()));
    }
    let labels = run_labels(dirs);
    let mut runs = Vec::new();
    for (dir, label) in dirs.iter().zip(labels) {
        if !dir.join(RUN_JSON).is_file() {
            return Err(CompareError::NotARun(dir.clone()));
        }
        let data = load(dir)?;
        let summary = summarize(&data)?;
        runs.push(LoadedRun {
            label,
            data,
            summary,
        });
    }

    let first_groups = group_names(&runs[0]);
    for run in &runs[1..] {
        let run_groups = group_names(run);
        if !first_groups.iter().any(|g| run_groups.contains(g)) {
            return Err(CompareError::NoCommonGroup {
                first: runs[0].label.clone(),
                first_groups,
                run: run.label.clone(),
                run_groups,
            });
        }
    }

    let mut all_groups: Vec<String> = Vec::new();
    for run in &runs {
        for name in group_names(run) {
            if !all_groups.contains(&name) {
                all_groups.push(name);
            }
        }
    }
    let (groups, left_out_groups): (Vec<String>, Vec<String>) = all_groups
        .into_iter()
        .partition(|name| runs.iter().all(|run| group_names(run).contains(name)));
    let left_out = left_out_groups
        .into_iter()
        .map(|name| {
            let having = runs
                .iter()
                .filter(|run| group_names(run).contains(&name))
                .map(|run| run.label.clone())
                .collect();
            (name, having)
        })
        .collect();

    let processes = runs[0].data.process_names();
    let rows = phase_rows(&runs, &groups, &processes);
    Ok(RunsComparison {
        runs,
        groups,
        left_out,
        processes,
        rows,
    })
}

/// Labels runs by folder name, or by the path as given when names repeat.
fn run_labels(dirs: &[PathBuf]) -> Vec<String> {
    let names: Vec<String> = dirs.iter().map(|dir| folder_name(dir)).collect();
    let unique = names
        .iter()
        .enumerate()
        .all(|(i, name)| !names[..i].contains(name));
    if unique {
        names
    } else {
        dirs.iter().map(|dir| dir.display().to_string()).collect()
    }
}

fn folder_name(dir: &Path) -> String {
    // `results/01/` and `results/01` name the same folder; `.` has no file name.
    let resolved = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
    resolved.file_name().map_or_else(
        || dir.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

fn group_names(run: &LoadedRun) -> Vec<String> {
    run.summary.groups.iter().map(|g| g.name.clone()).collect()
}

fn phase_rows(runs: &[LoadedRun], groups: &[String], processes: &[String]) -> Vec<PhaseRow> {
    let mut rows = Vec::new();
    for group in groups {
        let summaries: Vec<Option<&GroupSummary>> = runs
            .iter()
            .map(|run| run.summary.groups.iter().find(|g| &g.name == group))
            .collect();
        let Some(first) = summaries[0] else { continue };
        let first_problem = comparability(first);
        for window in first.windows.iter().map(|w| w.window.kind) {
            for process in processes {
                let cpu_of = |summary: Option<&GroupSummary>| -> Option<Summary> {
                    let window = summary?.windows.iter().find(|w| w.window.kind == window)?;
                    let cpu = window.processes.iter().find(|p| &p.process == process)?;
                    Some(cpu.cpu)
                };
                let baseline = cpu_of(summaries[0]);
                let cells = summaries
                    .iter()
                    .enumerate()
                    .map(|(index, summary)| {
                        let cpu = cpu_of(*summary);
                        if index == 0 {
                            return RunCell {
                                cpu,
                                difference: None,
                                not_compared: Vec::new(),
                            };
                        }
                        let not_compared: Vec<NotComparable> = summary
                            .and_then(comparability)
                            .into_iter()
                            .chain(first_problem.clone())
                            .collect();
                        let difference = match (&baseline, &cpu) {
                            (Some(base), Some(cpu)) if not_compared.is_empty() => {
                                welch_interval(base, cpu, CONFIDENCE)
                            }
                            _ => None,
                        };
                        RunCell {
                            cpu,
                            difference,
                            not_compared,
                        }
                    })
                    .collect();
                rows.push(PhaseRow {
                    group: group.clone(),
                    window,
                    process: process.clone(),
                    cells,
                });
            }
        }
    }
    rows
}

/// Renders the tables of the comparison as markdown: one table per
/// process, with a row per group and window and a column pair per run.
pub fn render_table(comparison: &RunsComparison) -> String {
    let mut out = String::new();
    let percent = CONFIDENCE * 100.0;
    let first = &comparison.runs[0].label;
    for process in &comparison.processes {
        let _ = writeln!(out, "### {process} CPU (% of one core)\n");
        let mut header = String::from("| group | window | ");
        let mut separator = String::from("| --- | --- | ");
        for (index, run) in comparison.runs.iter().enumerate() {
            let _ = write!(header, "{} mean (samples) | ", run.label);
            separator.push_str("--- | ");
            if index > 0 {
                let _ = write!(header, "{} minus {first} ({percent:.0}% CI) | ", run.label);
                separator.push_str("--- | ");
            }
        }
        let _ = writeln!(out, "{}\n{}", header.trim_end(), separator.trim_end());
        for row in comparison.rows.iter().filter(|r| &r.process == process) {
            let _ = write!(out, "| {} | {} |", row.group, window_name(row.window));
            for (index, cell) in row.cells.iter().enumerate() {
                let _ = write!(out, " {} |", cpu_cell(cell.cpu.as_ref()));
                if index > 0 {
                    let _ = write!(out, " {} |", difference_cell(cell));
                }
            }
            out.push('\n');
        }
        out.push('\n');
    }
    out
}

fn cpu_cell(cpu: Option<&Summary>) -> String {
    match cpu.and_then(|c| c.mean().map(|mean| (mean, c.count()))) {
        Some((mean, count)) => format!("{mean:.1} ({count})"),
        None => "absent".to_owned(),
    }
}

fn difference_cell(cell: &RunCell) -> String {
    if !cell.not_compared.is_empty() {
        return "not compared".to_owned();
    }
    match &cell.difference {
        Some(d) => format!("{:+.1} ({:.1} to {:.1})", d.difference, d.low, d.high),
        None => "n/a".to_owned(),
    }
}

/// Renders the whole `compare.md`: the runs, warnings, then the tables.
pub fn render_compare_markdown(comparison: &RunsComparison, graph_file: &str) -> String {
    let mut out = String::from("# Runs compared\n\n");
    let _ = writeln!(
        out,
        "| run | folder | scenario | started | duration (s) |\n| --- | --- | --- | --- | --- |"
    );
    for run in &comparison.runs {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {:.1} |",
            run.label,
            run.data.dir.display(),
            run.data.run.scenario_name,
            format_utc(run.data.run.started_unix_micros),
            run.data.duration_s()
        );
    }
    out.push('\n');

    for warning in settings_warnings(comparison) {
        let _ = writeln!(out, "WARNING: {warning}\n");
    }
    for (group, having) in &comparison.left_out {
        let _ = writeln!(
            out,
            "Left out: group {group} is only in run {}.\n",
            having.join(", ")
        );
    }
    for (index, row) in comparison.rows.iter().enumerate() {
        // Every row of a group repeats the same reasons, so state them once.
        let previous = index.checked_sub(1).map(|i| &comparison.rows[i].group);
        if previous == Some(&row.group) {
            continue;
        }
        for (cell, run) in row.cells.iter().zip(&comparison.runs).skip(1) {
            for reason in &cell.not_compared {
                let _ = writeln!(out, "Not compared in run {}: {reason}.\n", run.label);
            }
        }
    }

    let _ = writeln!(
        out,
        "Mean CPU of each monitored process in each phase of each group, and each \
         run's difference to run {} in points of one core with a {:.0}% Welch t \
         interval. The interval assumes independent samples, so it is narrower than \
         the true uncertainty, and the spread between runs shows that better.\n",
        comparison.runs[0].label,
        CONFIDENCE * 100.0
    );
    out.push_str(&render_table(comparison));
    let _ = writeln!(
        out,
        "![CPU of every run over time since its start]({graph_file})"
    );
    out
}

/// Warns about groups whose server-cost settings differ between runs, since
/// their CPU then measures different loads.
fn settings_warnings(comparison: &RunsComparison) -> Vec<String> {
    let mut warnings = Vec::new();
    for group in &comparison.groups {
        let settings: Vec<(String, String)> = comparison
            .runs
            .iter()
            .filter_map(|run| {
                let info = run.data.run.groups.iter().find(|g| &g.name == group)?;
                let text = format!(
                    "{} transport, TLS {}, stream management {}, {} bots in {} {} rooms \
                     ({} per bot), join {}/s, talk {}/s for {} s, {} bytes",
                    info.transport,
                    info.tls,
                    if info.stream_management { "on" } else { "off" },
                    info.bots,
                    info.rooms,
                    info.room_distribution,
                    info.rooms_per_bot,
                    info.join_rate,
                    info.talk_rate,
                    info.talk_duration_s,
                    info.body_bytes
                );
                Some((run.label.clone(), text))
            })
            .collect();
        let Some((_, first)) = settings.first() else {
            continue;
        };
        if settings.iter().any(|(_, text)| text != first) {
            let listed: Vec<String> = settings
                .iter()
                .map(|(run, text)| format!("{run}: {text}"))
                .collect();
            warnings.push(format!(
                "group {group} has different settings: {}",
                listed.join("; ")
            ));
        }
    }
    warnings
}

/// Writes `compare.md` and the CPU graph (PNG and SVG) into `out`, creating
/// the folder when needed.
pub fn write_comparison(comparison: &RunsComparison, out: &Path) -> Result<(), ReportError> {
    std::fs::create_dir_all(out).map_err(|source| ReportError::Write {
        path: out.to_path_buf(),
        source,
    })?;
    let runs: Vec<(&str, &RunData)> = comparison
        .runs
        .iter()
        .map(|run| (run.label.as_str(), &run.data))
        .collect();
    crate::plot::compare::render(&runs, out)?;
    let path = out.join(COMPARE_FILE);
    let text = render_compare_markdown(comparison, crate::plot::compare::PNG_FILE);
    std::fs::write(&path, text).map_err(|source| ReportError::Write { path, source })
}
