//! Errors of reading a results folder and writing the report and graphs.

use std::path::PathBuf;

use thiserror::Error;

/// Failure to read a results folder or to write what is built from it.
#[derive(Debug, Error)]
pub enum ReportError {
    #[error("failed to read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },

    #[error("invalid {path}: {source}")]
    RunJson {
        path: PathBuf,
        source: serde_json::Error,
    },

    /// The CSV layer rejected the file: bad quoting, a row with the wrong
    /// number of fields, or a value of the wrong type.
    #[error("invalid {path}{}: {source}", line_suffix(*.line))]
    Csv {
        path: PathBuf,
        line: Option<u64>,
        source: csv::Error,
    },

    #[error("invalid {path}: column `{column}` is missing from the header (expected {expected})")]
    MissingColumn {
        path: PathBuf,
        column: &'static str,
        expected: String,
    },

    #[error("invalid {path} line {line}: {problem}")]
    InvalidRow {
        path: PathBuf,
        line: u64,
        problem: RowProblem,
    },

    #[error("failed to write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },

    #[error("failed to register the embedded DejaVu Sans font with plotters")]
    Font,

    #[error("failed to draw {path}: {source}")]
    Plot {
        path: PathBuf,
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// Problem with one CSV row whose fields all parsed as their types.
#[derive(Debug, Error)]
pub enum RowProblem {
    #[error("`{field}` is {value}, expected a finite number")]
    NotFinite { field: &'static str, value: f64 },

    #[error("`gap` is {0:?}, expected true or false")]
    InvalidGap(String),

    #[error("`errors` entry {0:?} is not of the form kind=count")]
    InvalidErrorEntry(String),

    #[error("`histogram` is not valid base64: {0}")]
    InvalidBase64(#[from] base64::DecodeError),

    #[error("`histogram` is not an HdrHistogram V2 serialization: {0}")]
    InvalidHistogram(#[from] hdrhistogram::serialization::DeserializeError),

    #[error("`histogram` cannot be merged with the others: {0}")]
    HistogramMerge(#[from] hdrhistogram::errors::AdditionError),

    #[error("`phase` is {0:?}, expected join, talk or leave")]
    UnknownPhase(String),

    #[error("`end_s` {end_s} is before `start_s` {start_s}")]
    PhaseEndsBeforeStart { start_s: f64, end_s: f64 },

    #[error("`kind` is {0:?}, expected join or send")]
    UnknownLagKind(String),

    #[error("`kind` is empty, expected a step name such as tls or bind")]
    EmptyKind,

    #[error("`count` is {count} but `histogram` holds {samples} samples")]
    CountMismatch { count: u64, samples: u64 },
}

fn line_suffix(line: Option<u64>) -> String {
    match line {
        Some(line) => format!(" line {line}"),
        None => String::new(),
    }
}
