//! `report.md` from a results folder.
//!
//! [`load`] reads and validates the folder, [`summary::summarize`] computes
//! the numbers per group and phase with the helpers of [`stats`] and
//! compares the groups with [`compare`], and [`write_markdown`] renders
//! them. [`build_outputs`] also draws the graphs with [`crate::plot`].

pub mod compare;
mod data;
mod error;
mod load;
mod markdown;
pub mod stats;
pub mod summary;

use std::path::Path;

pub use data::{BotsReport, LatencyReport, MonitorSample, Phase, PhaseWindow, RunData, SkippedRow};
pub use error::{ReportError, RowProblem};
pub use load::{BOTS_CSV, LATENCY_CSV, MONITOR_CSV, PHASES_CSV, RUN_JSON, load};
pub use markdown::{render_markdown, verdict_line, write_markdown};

/// Name of the report inside a results folder.
pub const REPORT_FILE: &str = "report.md";

/// Reads the results folder `dir` and writes `report.md`,
/// `monitor_server.png` and `monitor_server.svg` into it.
pub fn build_outputs(dir: &Path) -> Result<(), ReportError> {
    let data = load(dir)?;
    write_markdown(&data, &dir.join(REPORT_FILE))?;
    crate::plot::render(&data, dir)
}
