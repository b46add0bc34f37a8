//! `report.md` from a results folder.
//!
//! [`load`] reads and validates the folder, [`summary::summarize`] computes
//! the numbers per group and phase with the helpers of [`stats`] and
//! compares the groups with [`compare`], and [`write_markdown`] renders
//! them. [`build_outputs`] also draws the graphs with [`crate::plot`] and
//! writes the same numbers as `report.html` ([`html`]) and `summary.json`
//! ([`summary_json`]). [`runs`] compares several results folders.

pub mod compare;
mod data;
mod error;
pub mod html;
mod load;
mod markdown;
mod round_trips;
pub mod runs;
pub mod stats;
pub mod summary;
pub mod summary_json;

use std::path::Path;

pub use data::{BotsReport, LatencyReport, MonitorSample, Phase, PhaseWindow, RunData, SkippedRow};
pub use error::{ReportError, RowProblem};
pub use load::{BOTS_CSV, LATENCY_CSV, MONITOR_CSV, PHASES_CSV, RUN_JSON, load};
pub use markdown::{render_markdown, verdict_line, write_markdown};

/// Name of the report inside a results folder.
pub const REPORT_FILE: &str = "report.md";

/// Reads the results folder `dir` and writes `report.md`,
/// `monitor_server.png`, `monitor_server.svg`, `summary.json` and
/// `report.html` into it.
pub fn build_outputs(dir: &Path) -> Result<(), ReportError> {
    let data = load(dir)?;
    let summary = summary::summarize(&data)?;
    let report = dir.join(REPORT_FILE);
    std::fs::write(&report, render_markdown(&data, &summary)).map_err(|source| {
        ReportError::Write {
            path: report,
            source,
        }
    })?;
    crate::plot::render(&data, dir)?;
    summary_json::write_summary_json(&data, &summary, &dir.join(summary_json::SUMMARY_FILE))?;
    // Last, because the page embeds the SVG graph drawn above.
    html::write_html(&data, &summary, &dir.join(html::HTML_FILE))
}
