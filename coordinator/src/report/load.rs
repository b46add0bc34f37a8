//! Reading and validating a results folder.
//!
//! `run.json` is required. Each CSV file may be missing or empty, because a
//! run that failed early leaves only some of them, but every row present must
//! be valid: a bad row is reported with its file and line. The one exception
//! is a truncated last row, which is skipped and noted in the report.

use std::fs::File;
use std::io::{ErrorKind, Read as _, Seek as _, SeekFrom};
use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::Deserialize;
use serde::de::DeserializeOwned;

use super::data::{
    BotsReport, LatencyReport, MonitorSample, Phase, PhaseWindow, RoundTripRow, RunData,
    ScheduleLagRow, SkippedRow, decode_histogram,
};
use super::error::{ReportError, RowProblem};
use crate::results::run_info::RunInfo;
// The columns the run's writers put in each file, so reader and writer
// cannot drift apart.
use crate::results::{
    BOTS_HEADER as BOTS_COLUMNS, LATENCY_HEADER as LATENCY_COLUMNS,
    MONITOR_HEADER as MONITOR_COLUMNS, PHASES_HEADER as PHASES_COLUMNS,
    ROUND_TRIPS_HEADER as ROUND_TRIPS_COLUMNS, SCHEDULE_LAG_HEADER as SCHEDULE_LAG_COLUMNS,
};

pub const RUN_JSON: &str = "run.json";
pub const MONITOR_CSV: &str = "monitor.csv";
pub const BOTS_CSV: &str = "bots.csv";
pub const LATENCY_CSV: &str = "latency.csv";
pub const PHASES_CSV: &str = "phases.csv";
pub const SCHEDULE_LAG_CSV: &str = "schedule_lag.csv";
pub const ROUND_TRIPS_CSV: &str = "round_trips.csv";
pub const SERVER_METRICS_CSV: &str = "server_metrics.csv";

/// Reads `run.json` and the CSV files of the results folder `dir`.
pub fn load(dir: &Path) -> Result<RunData, ReportError> {
    let run = read_run_info(dir)?;
    let mut notes = FolderNotes::default();

    let monitor = read_csv(
        dir,
        MONITOR_CSV,
        MONITOR_COLUMNS,
        &mut notes,
        monitor_sample,
    )?;
    let bots = read_csv(dir, BOTS_CSV, BOTS_COLUMNS, &mut notes, bots_report)?;
    let latency = read_csv(
        dir,
        LATENCY_CSV,
        LATENCY_COLUMNS,
        &mut notes,
        latency_report,
    )?;
    let phases = read_csv(dir, PHASES_CSV, PHASES_COLUMNS, &mut notes, phase_window)?;
    // Folders written before the coordinator recorded schedule lag or
    // round trips have no such files, which is no gap in their data, so
    // only their skipped rows are kept as notes.
    let mut newer_notes = FolderNotes::default();
    let schedule_lag = read_csv(
        dir,
        SCHEDULE_LAG_CSV,
        SCHEDULE_LAG_COLUMNS,
        &mut newer_notes,
        schedule_lag_row,
    )?;
    let round_trips = read_csv(
        dir,
        ROUND_TRIPS_CSV,
        ROUND_TRIPS_COLUMNS,
        &mut newer_notes,
        round_trip_row,
    )?;
    notes.skipped_rows.extend(newer_notes.skipped_rows);
    let server_metric_rows = count_data_rows(&dir.join(SERVER_METRICS_CSV));

    Ok(RunData {
        dir: dir.to_path_buf(),
        run,
        monitor,
        bots,
        latency,
        phases,
        schedule_lag,
        round_trips,
        server_metric_rows,
        missing_files: notes.missing_files,
        skipped_rows: notes.skipped_rows,
    })
}

/// Counts the rows below the header of a CSV file; a missing file has none.
fn count_data_rows(path: &Path) -> usize {
    std::fs::read_to_string(path)
        .map(|text| text.lines().skip(1).filter(|line| !line.is_empty()).count())
        .unwrap_or(0)
}

/// Files and rows left out while reading the CSV files, which the report states.
#[derive(Default)]
struct FolderNotes {
    missing_files: Vec<&'static str>,
    skipped_rows: Vec<SkippedRow>,
}

fn read_run_info(dir: &Path) -> Result<RunInfo, ReportError> {
    let path = dir.join(RUN_JSON);
    let text = std::fs::read_to_string(&path).map_err(|source| ReportError::Read {
        path: path.clone(),
        source,
    })?;
    serde_json::from_str(&text).map_err(|source| ReportError::RunJson { path, source })
}

/// Reads one CSV file row by row, deserializing each row as `R` by header
/// name and validating it into `T`. A missing file is recorded in `notes`
/// and yields no rows, and so does a file without even a header line.
///
/// A malformed last row is skipped and recorded in `notes` when the file
/// does not end with a newline, because that is what a coordinator killed
/// in the middle of a write leaves. A malformed row anywhere else, or a last
/// row that ends with a newline, fails with its line.
fn read_csv<R, T>(
    dir: &Path,
    file_name: &'static str,
    columns: &[&'static str],
    notes: &mut FolderNotes,
    convert: fn(R, u64) -> Result<T, RowProblem>,
) -> Result<Vec<T>, ReportError>
where
    R: DeserializeOwned,
{
    let path = dir.join(file_name);
    let file = match File::open(&path) {
        Ok(file) => file,
        Err(error) if error.kind() == ErrorKind::NotFound => {
            notes.missing_files.push(file_name);
            return Ok(Vec::new());
        }
        Err(source) => return Err(ReportError::Read { path, source }),
    };
    let csv_error = |line: Option<u64>, source: csv::Error| ReportError::Csv {
        path: path.clone(),
        line,
        source,
    };

    let mut reader = csv::Reader::from_reader(file);
    let headers = reader.headers().map_err(|e| csv_error(Some(1), e))?.clone();
    if headers.is_empty() {
        return Ok(Vec::new());
    }
    for &column in columns {
        if !headers.iter().any(|header| header == column) {
            return Err(ReportError::MissingColumn {
                path: path.clone(),
                column,
                expected: columns.join(","),
            });
        }
    }

    let mut rows = Vec::new();
    let mut records = reader.records().peekable();
    while let Some(record) = records.next() {
        let row = record
            .map_err(|e| {
                let line = e.position().map(|p| p.line());
                csv_error(line, e)
            })
            .and_then(|record| {
                let line = record.position().map_or(0, |p| p.line());
                let raw: R = record
                    .deserialize(Some(&headers))
                    .map_err(|e| csv_error(Some(line), e))?;
                convert(raw, line).map_err(|problem| ReportError::InvalidRow {
                    path: path.clone(),
                    line,
                    problem,
                })
            });
        match row {
            Ok(row) => rows.push(row),
            Err(error) => {
                let is_last = records.peek().is_none();
                match malformed_row_line(&error) {
                    Some(line) if is_last && !ends_with_newline(&path)? => {
                        notes.skipped_rows.push(SkippedRow {
                            file: file_name,
                            line,
                        });
                    }
                    _ => return Err(error),
                }
            }
        }
    }
    Ok(rows)
}

/// Line of a row whose text is malformed, or `None` for errors that a
/// truncated write cannot cause, such as a failed read.
fn malformed_row_line(error: &ReportError) -> Option<u64> {
    match error {
        ReportError::Csv { line, source, .. } if !source.is_io_error() => *line,
        ReportError::InvalidRow { line, .. } => Some(*line),
        _ => None,
    }
}

/// Returns true when the last byte of the file `path` is a line feed.
fn ends_with_newline(path: &Path) -> Result<bool, ReportError> {
    let read_error = |source| ReportError::Read {
        path: path.to_path_buf(),
        source,
    };
    let mut file = File::open(path).map_err(read_error)?;
    if file.seek(SeekFrom::End(0)).map_err(read_error)? == 0 {
        return Ok(false);
    }
    file.seek(SeekFrom::End(-1)).map_err(read_error)?;
    let mut last = [0u8; 1];
    file.read_exact(&mut last).map_err(read_error)?;
    Ok(last[0] == b'\n')
}

fn finite(field: &'static str, value: f64) -> Result<f64, RowProblem> {
    if value.is_finite() {
        Ok(value)
    } else {
        Err(RowProblem::NotFinite { field, value })
    }
}

#[derive(Deserialize)]
struct MonitorRecord {
    t_s: f64,
    process: String,
    pid: u32,
    cpu_percent: f64,
    rss_bytes: u64,
    host_cpu_percent: f64,
    gap: String,
}

fn monitor_sample(raw: MonitorRecord, _line: u64) -> Result<MonitorSample, RowProblem> {
    let gap = match raw.gap.as_str() {
        "true" | "1" => true,
        "false" | "0" => false,
        _ => return Err(RowProblem::InvalidGap(raw.gap)),
    };
    Ok(MonitorSample {
        t_s: finite("t_s", raw.t_s)?,
        process: raw.process,
        pid: raw.pid,
        cpu_percent: finite("cpu_percent", raw.cpu_percent)?,
        rss_bytes: raw.rss_bytes,
        host_cpu_percent: finite("host_cpu_percent", raw.host_cpu_percent)?,
        gap,
    })
}

#[derive(Deserialize)]
struct BotsRecord {
    t_s: f64,
    agent: String,
    group: String,
    connecting: u32,
    connected: u32,
    joined: u32,
    connect_attempts: u64,
    connected_total: u64,
    joined_total: u64,
    left_total: u64,
    failed_total: u64,
    messages_sent: u64,
    messages_received: u64,
    reflections: u64,
    stanzas_received: u64,
    late_sends: u64,
    errors: String,
}

fn bots_report(raw: BotsRecord, _line: u64) -> Result<BotsReport, RowProblem> {
    Ok(BotsReport {
        t_s: finite("t_s", raw.t_s)?,
        agent: raw.agent,
        group: raw.group,
        connecting: raw.connecting,
        connected: raw.connected,
        joined: raw.joined,
        connect_attempts: raw.connect_attempts,
        connected_total: raw.connected_total,
        joined_total: raw.joined_total,
        left_total: raw.left_total,
        failed_total: raw.failed_total,
        messages_sent: raw.messages_sent,
        messages_received: raw.messages_received,
        reflections: raw.reflections,
        stanzas_received: raw.stanzas_received,
        late_sends: raw.late_sends,
        errors: parse_error_counts(&raw.errors)?,
    })
}

/// Parses `kind=count` pairs joined by `;`. An empty field means no errors.
fn parse_error_counts(text: &str) -> Result<Vec<(String, u64)>, RowProblem> {
    let mut counts = Vec::new();
    for entry in text.split(';').filter(|entry| !entry.is_empty()) {
        let invalid = || RowProblem::InvalidErrorEntry(entry.to_owned());
        let (kind, count) = entry.split_once('=').ok_or_else(invalid)?;
        let count: u64 = count.trim().parse().map_err(|_| invalid())?;
        if kind.trim().is_empty() {
            return Err(invalid());
        }
        counts.push((kind.trim().to_owned(), count));
    }
    Ok(counts)
}

#[derive(Deserialize)]
struct LatencyRecord {
    t_s: f64,
    agent: String,
    group: String,
    count: u64,
    histogram: String,
}

fn latency_report(raw: LatencyRecord, line: u64) -> Result<LatencyReport, RowProblem> {
    let encoded_histogram = BASE64.decode(raw.histogram.trim())?;
    // Decoding once here reports a corrupt histogram with its line. The
    // report decodes it again when it merges a window.
    decode_histogram(&encoded_histogram)?;
    Ok(LatencyReport {
        line,
        t_s: finite("t_s", raw.t_s)?,
        agent: raw.agent,
        group: raw.group,
        count: raw.count,
        encoded_histogram,
    })
}

#[derive(Deserialize)]
struct PhaseRecord {
    group: String,
    phase: String,
    start_s: f64,
    end_s: f64,
}

fn phase_window(raw: PhaseRecord, _line: u64) -> Result<PhaseWindow, RowProblem> {
    let phase = Phase::parse(&raw.phase).ok_or(RowProblem::UnknownPhase(raw.phase))?;
    let start_s = finite("start_s", raw.start_s)?;
    let end_s = finite("end_s", raw.end_s)?;
    if end_s < start_s {
        return Err(RowProblem::PhaseEndsBeforeStart { start_s, end_s });
    }
    Ok(PhaseWindow {
        group: raw.group,
        phase,
        start_s,
        end_s,
    })
}

#[derive(Deserialize)]
struct ScheduleLagRecord {
    group: String,
    kind: String,
    samples: u64,
    late: u64,
    p50_us: u64,
    p99_us: u64,
    max_us: u64,
}

fn schedule_lag_row(raw: ScheduleLagRecord, _line: u64) -> Result<ScheduleLagRow, RowProblem> {
    if raw.kind != "join" && raw.kind != "send" {
        return Err(RowProblem::UnknownLagKind(raw.kind));
    }
    Ok(ScheduleLagRow {
        group: raw.group,
        kind: raw.kind,
        samples: raw.samples,
        late: raw.late,
        p50_us: raw.p50_us,
        p99_us: raw.p99_us,
        max_us: raw.max_us,
    })
}

/// The columns of `round_trips.csv` that the report reads; the quantile
/// columns are for people and are recomputed from the histogram.
#[derive(Deserialize)]
struct RoundTripRecord {
    t_s: f64,
    group: String,
    kind: String,
    count: u64,
    histogram: String,
}

fn round_trip_row(raw: RoundTripRecord, line: u64) -> Result<RoundTripRow, RowProblem> {
    if raw.kind.trim().is_empty() {
        return Err(RowProblem::EmptyKind);
    }
    let encoded_histogram = BASE64.decode(raw.histogram.trim())?;
    let samples = decode_histogram(&encoded_histogram)?.map_or(0, |h| h.len());
    if samples != raw.count {
        return Err(RowProblem::CountMismatch {
            count: raw.count,
            samples,
        });
    }
    Ok(RoundTripRow {
        line,
        t_s: finite("t_s", raw.t_s)?,
        group: raw.group,
        kind: raw.kind,
        encoded_histogram,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Error counts parse from `kind=count;...` and an empty field is no errors.
    #[test]
    fn error_counts_parse() {
        let parsed = parse_error_counts("timeout=3;refused=1").expect("valid entries");
        assert_eq!(
            parsed,
            vec![("timeout".to_owned(), 3), ("refused".to_owned(), 1)]
        );
        assert!(parse_error_counts("").expect("empty field").is_empty());
    }

    /// An entry without `=` or with a non-numeric count is rejected by name.
    #[test]
    fn error_counts_reject_malformed() {
        for text in ["timeout", "timeout=x", "=4"] {
            let error = parse_error_counts(text).expect_err(text);
            assert!(error.to_string().contains(text), "{error}");
        }
    }
}
