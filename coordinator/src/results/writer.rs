//! Appending writers for the files of one results folder.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::run_info::RunInfo;

#[derive(Debug, thiserror::Error)]
pub enum ResultsError {
    #[error(
        "cannot create results folder under {path}: {source}; check that it exists and is writable"
    )]
    Create { path: PathBuf, source: io::Error },
    #[error("cannot write {path}: {source}")]
    Write { path: PathBuf, source: io::Error },
    #[error("cannot write {path}: {source}")]
    Csv { path: PathBuf, source: csv::Error },
}

/// Highest `NN` accepted when looking for the next free folder.
const MAX_RUN_NUMBER: u32 = 9999;

/// One CSV file, flushed after every row so a killed run loses nothing.
struct CsvFile {
    path: PathBuf,
    /// Guards the writer: monitor and agent streams append from separate tasks.
    writer: Mutex<csv::Writer<File>>,
}

impl CsvFile {
    fn create(path: PathBuf, header: &[&str]) -> Result<Self, ResultsError> {
        let file = File::create(&path).map_err(|source| ResultsError::Write {
            path: path.clone(),
            source,
        })?;
        let file = Self {
            path,
            writer: Mutex::new(csv::Writer::from_writer(file)),
        };
        file.append(header)?;
        Ok(file)
    }

    fn append<I, T>(&self, record: I) -> Result<(), ResultsError>
    where
        I: IntoIterator<Item = T>,
        T: AsRef<[u8]>,
    {
        let mut writer = self
            .writer
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let result = writer
            .write_record(record)
            .and_then(|()| Ok(writer.flush()?));
        result.map_err(|source| ResultsError::Csv {
            path: self.path.clone(),
            source,
        })
    }
}

/// Column names of `monitor.csv`.
pub const MONITOR_HEADER: &[&str] = &[
    "t_s",
    "process",
    "pid",
    "cpu_percent",
    "rss_bytes",
    "host_cpu_percent",
    "gap",
];

/// Column names of `bots.csv`.
pub const BOTS_HEADER: &[&str] = &[
    "t_s",
    "agent",
    "group",
    "connecting",
    "connected",
    "joined",
    "connect_attempts",
    "connected_total",
    "joined_total",
    "left_total",
    "failed_total",
    "messages_sent",
    "messages_received",
    "reflections",
    "stanzas_received",
    "late_sends",
    "errors",
];

/// Column names of `latency.csv`.
pub const LATENCY_HEADER: &[&str] = &["t_s", "agent", "group", "count", "histogram"];

/// Column names of `server_metrics.csv`: one row per sample of the server's
/// own metrics endpoint, labels as `name=value` joined by `;`.
pub const SERVER_METRICS_HEADER: &[&str] = &["t_s", "metric", "labels", "value"];

/// Column names of `phases.csv`.
pub const PHASES_HEADER: &[&str] = &["group", "phase", "start_s", "end_s"];

/// Column names of `schedule_lag.csv`: per group and kind (`join` or
/// `send`), the samples, the late count and the lag quantiles in µs.
pub const SCHEDULE_LAG_HEADER: &[&str] = &[
    "group", "kind", "samples", "late", "p50_us", "p99_us", "max_us",
];

/// Column names of `round_trips.csv`: per second, group and step kind, the
/// durations merged over the agents in ms, and their V2 histogram (µs) in
/// base64 so that the report can merge any span exactly.
pub const ROUND_TRIPS_HEADER: &[&str] = &[
    "t_s",
    "group",
    "kind",
    "count",
    "p50_ms",
    "p90_ms",
    "p99_ms",
    "max_ms",
    "histogram",
];

/// Column names of `clock.csv`: one row per clock offset estimate of a peer.
pub const CLOCK_HEADER: &[&str] = &["t_s", "peer", "role", "offset_micros", "uncertainty_micros"];

/// An open `results/NN/` folder.
pub struct ResultsDir {
    dir: PathBuf,
    monitor: CsvFile,
    bots: CsvFile,
    latency: CsvFile,
    phases: CsvFile,
    server_metrics: CsvFile,
    schedule_lag: CsvFile,
    round_trips: CsvFile,
    clock: CsvFile,
}

impl ResultsDir {
    /// Creates the next free `NN` folder under `root` (01, 02, ...) and the
    /// CSV files with their headers.
    pub fn create_next(root: &Path) -> Result<Self, ResultsError> {
        let create_error = |source| ResultsError::Create {
            path: root.to_path_buf(),
            source,
        };
        fs::create_dir_all(root).map_err(create_error)?;

        // create_dir fails on an existing folder, so two coordinators
        // starting together cannot take the same number.
        let mut number = highest_run_number(root).map_err(create_error)? + 1;
        let dir = loop {
            if number > MAX_RUN_NUMBER {
                return Err(create_error(io::Error::other(format!(
                    "every folder number up to {MAX_RUN_NUMBER} is taken"
                ))));
            }
            let candidate = root.join(format!("{number:02}"));
            match fs::create_dir(&candidate) {
                Ok(()) => break candidate,
                Err(err) if err.kind() == io::ErrorKind::AlreadyExists => number += 1,
                Err(err) => return Err(create_error(err)),
            }
        };

        Ok(Self {
            monitor: CsvFile::create(dir.join("monitor.csv"), MONITOR_HEADER)?,
            bots: CsvFile::create(dir.join("bots.csv"), BOTS_HEADER)?,
            latency: CsvFile::create(dir.join("latency.csv"), LATENCY_HEADER)?,
            phases: CsvFile::create(dir.join("phases.csv"), PHASES_HEADER)?,
            server_metrics: CsvFile::create(dir.join("server_metrics.csv"), SERVER_METRICS_HEADER)?,
            schedule_lag: CsvFile::create(dir.join("schedule_lag.csv"), SCHEDULE_LAG_HEADER)?,
            round_trips: CsvFile::create(dir.join("round_trips.csv"), ROUND_TRIPS_HEADER)?,
            clock: CsvFile::create(dir.join("clock.csv"), CLOCK_HEADER)?,
            dir,
        })
    }

    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// Writes a file of the folder in one go (scenario copy, `run.json`).
    pub fn write_file(&self, name: &str, contents: &[u8]) -> Result<(), ResultsError> {
        let path = self.dir.join(name);
        let write = || -> io::Result<()> {
            // Write a sibling and rename it, so a crash mid-write never
            // leaves a truncated file behind.
            let partial = self.dir.join(format!(".{name}.partial"));
            let mut file = File::create(&partial)?;
            file.write_all(contents)?;
            file.sync_all()?;
            fs::rename(&partial, &path)
        };
        write().map_err(|source| ResultsError::Write { path, source })
    }

    pub fn write_run_info(&self, info: &RunInfo) -> Result<(), ResultsError> {
        let json = serde_json::to_vec_pretty(info).map_err(|err| ResultsError::Write {
            path: self.dir.join("run.json"),
            source: io::Error::other(err),
        })?;
        self.write_file("run.json", &json)
    }

    pub fn append_monitor<I, T>(&self, record: I) -> Result<(), ResultsError>
    where
        I: IntoIterator<Item = T>,
        T: AsRef<[u8]>,
    {
        self.monitor.append(record)
    }

    pub fn append_bots<I, T>(&self, record: I) -> Result<(), ResultsError>
    where
        I: IntoIterator<Item = T>,
        T: AsRef<[u8]>,
    {
        self.bots.append(record)
    }

    pub fn append_latency<I, T>(&self, record: I) -> Result<(), ResultsError>
    where
        I: IntoIterator<Item = T>,
        T: AsRef<[u8]>,
    {
        self.latency.append(record)
    }

    pub fn append_phase<I, T>(&self, record: I) -> Result<(), ResultsError>
    where
        I: IntoIterator<Item = T>,
        T: AsRef<[u8]>,
    {
        self.phases.append(record)
    }

    pub fn append_server_metric<I, T>(&self, record: I) -> Result<(), ResultsError>
    where
        I: IntoIterator<Item = T>,
        T: AsRef<[u8]>,
    {
        self.server_metrics.append(record)
    }

    pub fn append_schedule_lag<I, T>(&self, record: I) -> Result<(), ResultsError>
    where
        I: IntoIterator<Item = T>,
        T: AsRef<[u8]>,
    {
        self.schedule_lag.append(record)
    }

    pub fn append_round_trip<I, T>(&self, record: I) -> Result<(), ResultsError>
    where
        I: IntoIterator<Item = T>,
        T: AsRef<[u8]>,
    {
        self.round_trips.append(record)
    }

    pub fn append_clock<I, T>(&self, record: I) -> Result<(), ResultsError>
    where
        I: IntoIterator<Item = T>,
        T: AsRef<[u8]>,
    {
        self.clock.append(record)
    }
}

/// Largest `NN` among the folder names under `root` that are all digits.
fn highest_run_number(root: &Path) -> io::Result<u32> {
    let mut highest = 0;
    for entry in fs::read_dir(root)? {
        let name = entry?.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        if let Ok(number) = name.parse::<u32>() {
            highest = highest.max(number);
        }
    }
    Ok(highest)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Folder numbers continue after the highest existing one and skip non-numeric names.
    #[test]
    fn next_folder_number() {
        let root = tempfile::tempdir().unwrap();
        fs::create_dir(root.path().join("01")).unwrap();
        fs::create_dir(root.path().join("07")).unwrap();
        fs::create_dir(root.path().join("notes")).unwrap();

        let results = ResultsDir::create_next(root.path()).unwrap();
        assert_eq!(results.path(), root.path().join("08"));

        let next = ResultsDir::create_next(root.path()).unwrap();
        assert_eq!(next.path(), root.path().join("09"));
    }

    /// Rows are on disk as soon as append returns, before the writer is dropped.
    #[test]
    fn rows_are_flushed_at_once() {
        let root = tempfile::tempdir().unwrap();
        let results = ResultsDir::create_next(root.path()).unwrap();
        results
            .append_phase(["websocket", "join", "1.000", "5.000"])
            .unwrap();

        let text = fs::read_to_string(results.path().join("phases.csv")).unwrap();
        assert_eq!(
            text,
            "group,phase,start_s,end_s\nwebsocket,join,1.000,5.000\n"
        );
    }
}
