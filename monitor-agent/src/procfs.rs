//! Parsers and readers for the few `/proc` files the sampler needs.
//!
//! Field numbers follow proc(5): in `/proc/PID/stat` field 2 is the command
//! name in parentheses, 14 and 15 are user and system time in clock ticks
//! summed over all threads, and 22 is the start time in clock ticks after
//! boot. The parsers take the file content as a string so that tests can feed
//! them odd and broken input without a real process.

use std::io;
use std::path::{Path, PathBuf};

/// Errors from reading or parsing a `/proc` file.
#[derive(Debug, thiserror::Error)]
pub enum ProcfsError {
    #[error("failed to read {path}: {source}")]
    Read { path: PathBuf, source: io::Error },
    #[error("invalid content in {path}: {source}")]
    Parse { path: PathBuf, source: ParseError },
}

impl ProcfsError {
    /// True when the file does not exist, which for `/proc/PID/...` means the
    /// process has exited.
    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::Read { source, .. } if source.kind() == io::ErrorKind::NotFound)
    }
}

/// Ways in which the content of a `/proc` file or a pidfile can be malformed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("no command name in parentheses; expected `PID (COMM) STATE ...`")]
    MissingCommand,
    #[error("field {field} ({name}) is missing")]
    MissingField { field: usize, name: &'static str },
    #[error("field {field} ({name}) is not a non-negative integer: {value:?}")]
    InvalidNumber {
        field: usize,
        name: &'static str,
        value: String,
    },
    #[error("no `cpu` summary line")]
    MissingCpuLine,
    #[error("pidfile does not contain a positive process id: {content:?}")]
    InvalidPid { content: String },
}

/// The parts of `/proc/PID/stat` that the sampler uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcStat {
    pub pid: u32,
    /// Command name (field 2) without the parentheses; may contain spaces and
    /// parentheses itself.
    pub comm: String,
    /// Single-letter process state (field 3), for example `R`, `S` or `Z`.
    pub state: char,
    /// User time of all threads, in clock ticks (field 14).
    pub utime_ticks: u64,
    /// System time of all threads, in clock ticks (field 15).
    pub stime_ticks: u64,
    /// Start time in clock ticks after boot (field 22); together with the pid
    /// it identifies one process across pid reuse.
    pub start_ticks: u64,
}

impl ProcStat {
    /// Total CPU time of all threads in clock ticks.
    pub fn cpu_ticks(&self) -> u64 {
        self.utime_ticks.saturating_add(self.stime_ticks)
    }

    /// True for a process that has exited but not been reaped yet (`Z`) or
    /// is being torn down (`X`): it uses no CPU and has no memory left.
    pub fn has_exited(&self) -> bool {
        matches!(self.state, 'Z' | 'X')
    }
}

/// Parses the content of `/proc/PID/stat`.
///
/// The command name may contain spaces and `)`, so the name ends at the last
/// `)` of the line. Fields after it are separated by single spaces.
pub fn parse_stat(content: &str) -> Result<ProcStat, ParseError> {
    let open = content.find('(').ok_or(ParseError::MissingCommand)?;
    let close = content.rfind(')').ok_or(ParseError::MissingCommand)?;
    if close < open {
        return Err(ParseError::MissingCommand);
    }

    let pid = parse_number(content[..open].trim(), 1, "pid")?;
    let pid = u32::try_from(pid).map_err(|_| ParseError::InvalidNumber {
        field: 1,
        name: "pid",
        value: pid.to_string(),
    })?;
    let comm = content[open + 1..close].to_owned();

    // After the command name, field N of proc(5) is at index N - 3.
    let rest: Vec<&str> = content[close + 1..].split_whitespace().collect();
    let field = |number: usize, name: &'static str| -> Result<&str, ParseError> {
        rest.get(number - 3)
            .copied()
            .ok_or(ParseError::MissingField {
                field: number,
                name,
            })
    };

    let state_text = field(3, "state")?;
    let mut state_chars = state_text.chars();
    let state = match (state_chars.next(), state_chars.next()) {
        (Some(state), None) => state,
        _ => {
            return Err(ParseError::InvalidNumber {
                field: 3,
                name: "state",
                value: state_text.to_owned(),
            });
        }
    };

    Ok(ProcStat {
        pid,
        comm,
        state,
        utime_ticks: parse_number(field(14, "utime")?, 14, "utime")?,
        stime_ticks: parse_number(field(15, "stime")?, 15, "stime")?,
        start_ticks: parse_number(field(22, "starttime")?, 22, "starttime")?,
    })
}

/// Parses the resident set size, in pages, from `/proc/PID/statm` (field 2).
pub fn parse_statm_resident_pages(content: &str) -> Result<u64, ParseError> {
    let resident = content
        .split_whitespace()
        .nth(1)
        .ok_or(ParseError::MissingField {
            field: 2,
            name: "resident",
        })?;
    parse_number(resident, 2, "resident")
}

/// Whole-host CPU time from the `cpu` summary line of `/proc/stat`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostCpuTimes {
    /// Ticks in every state except idle and iowait, summed over all cores.
    pub busy_ticks: u64,
    /// Ticks in every state, summed over all cores.
    pub total_ticks: u64,
    /// Number of per-core `cpuN` lines, which is the number of online cores.
    pub cores: u32,
}

/// Parses `/proc/stat` into busy and total host CPU ticks.
///
/// The summary line lists user, nice, system, idle, iowait, irq, softirq,
/// steal, guest and guest_nice. Guest time is already part of user and nice,
/// so only the first eight columns are summed. Older kernels print fewer
/// columns, and missing ones count as zero.
pub fn parse_host_stat(content: &str) -> Result<HostCpuTimes, ParseError> {
    let summary = content
        .lines()
        .find(|line| line.split_whitespace().next() == Some("cpu"))
        .ok_or(ParseError::MissingCpuLine)?;

    const NAMES: [&str; 8] = [
        "user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal",
    ];
    let mut columns = [0_u64; 8];
    for (index, text) in summary.split_whitespace().skip(1).take(8).enumerate() {
        columns[index] = parse_number(text, index + 2, NAMES[index])?;
    }
    let total_ticks = columns
        .iter()
        .fold(0_u64, |sum, value| sum.saturating_add(*value));
    let idle_ticks = columns[3].saturating_add(columns[4]);

    let cores = content
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .filter(|label| {
            label
                .strip_prefix("cpu")
                .is_some_and(|index| !index.is_empty() && index.bytes().all(|b| b.is_ascii_digit()))
        })
        .count();

    Ok(HostCpuTimes {
        busy_ticks: total_ticks.saturating_sub(idle_ticks),
        total_ticks,
        cores: u32::try_from(cores).unwrap_or(u32::MAX),
    })
}

/// Parses a pidfile: one positive decimal pid, surrounding whitespace allowed.
pub fn parse_pidfile(content: &str) -> Result<u32, ParseError> {
    match content.trim().parse::<u32>() {
        Ok(pid) if pid > 0 => Ok(pid),
        _ => Err(ParseError::InvalidPid {
            content: content.chars().take(64).collect(),
        }),
    }
}

fn parse_number(text: &str, field: usize, name: &'static str) -> Result<u64, ParseError> {
    text.parse::<u64>().map_err(|_| ParseError::InvalidNumber {
        field,
        name,
        value: text.to_owned(),
    })
}

/// Reads a file and parses it, attaching the path to either kind of error.
fn read_parsed<T>(
    path: &Path,
    parse: impl FnOnce(&str) -> Result<T, ParseError>,
) -> Result<T, ProcfsError> {
    let content = std::fs::read_to_string(path).map_err(|source| ProcfsError::Read {
        path: path.to_owned(),
        source,
    })?;
    parse(&content).map_err(|source| ProcfsError::Parse {
        path: path.to_owned(),
        source,
    })
}

/// Reads and parses `/proc/PID/stat`.
pub fn read_stat(pid: u32) -> Result<ProcStat, ProcfsError> {
    read_parsed(&PathBuf::from(format!("/proc/{pid}/stat")), parse_stat)
}

/// Reads the resident set size of a process, in pages.
pub fn read_resident_pages(pid: u32) -> Result<u64, ProcfsError> {
    read_parsed(
        &PathBuf::from(format!("/proc/{pid}/statm")),
        parse_statm_resident_pages,
    )
}

/// Reads and parses `/proc/stat`.
pub fn read_host_stat() -> Result<HostCpuTimes, ProcfsError> {
    read_parsed(Path::new("/proc/stat"), parse_host_stat)
}

/// Reads the pid stored in a pidfile.
pub fn read_pidfile(path: &Path) -> Result<u32, ProcfsError> {
    read_parsed(path, parse_pidfile)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds a realistic stat line with the given name, ending a few fields
    /// after field 22.
    fn stat_line(comm: &str) -> String {
        format!(
            "4242 ({comm}) S 1 4242 4242 0 -1 4194560 1200 0 0 0 \
             250 75 0 0 20 0 3 0 987654 123456789 2048 18446744073709551615"
        )
    }

    /// Plain stat line yields pid, name, state, CPU ticks and start time.
    #[test]
    fn stat_plain_name() {
        let stat = parse_stat(&stat_line("prosody")).unwrap();
        assert_eq!(stat.pid, 4242);
        assert_eq!(stat.comm, "prosody");
        assert_eq!(stat.state, 'S');
        assert_eq!(stat.utime_ticks, 250);
        assert_eq!(stat.stime_ticks, 75);
        assert_eq!(stat.cpu_ticks(), 325);
        assert_eq!(stat.start_ticks, 987654);
        assert!(!stat.has_exited());
    }

    /// Names with spaces, parentheses and a newline split at the last `)`.
    #[test]
    fn stat_odd_names() {
        for comm in [
            "a b",
            "x) S 1 2 (y",
            "((",
            "))",
            ") ",
            "",
            "tab\there",
            "new\nline",
        ] {
            let stat = parse_stat(&stat_line(comm)).unwrap();
            assert_eq!(stat.comm, comm, "name {comm:?}");
            assert_eq!(stat.state, 'S', "name {comm:?}");
            assert_eq!(stat.utime_ticks, 250, "name {comm:?}");
            assert_eq!(stat.stime_ticks, 75, "name {comm:?}");
            assert_eq!(stat.start_ticks, 987654, "name {comm:?}");
        }
    }

    /// A zombie process counts as exited.
    #[test]
    fn stat_zombie_has_exited() {
        let line = stat_line("worker").replacen(") S ", ") Z ", 1);
        assert!(parse_stat(&line).unwrap().has_exited());
    }

    /// Malformed stat lines give errors that name the problem.
    #[test]
    fn stat_malformed() {
        assert_eq!(parse_stat(""), Err(ParseError::MissingCommand));
        assert_eq!(
            parse_stat("12 noparens S 1"),
            Err(ParseError::MissingCommand)
        );
        assert_eq!(parse_stat("12 )oops( S"), Err(ParseError::MissingCommand));
        assert_eq!(
            parse_stat("12 (short) S 1 2 3"),
            Err(ParseError::MissingField {
                field: 14,
                name: "utime"
            })
        );
        assert_eq!(
            parse_stat("abc (name) S"),
            Err(ParseError::InvalidNumber {
                field: 1,
                name: "pid",
                value: "abc".to_owned()
            })
        );

        let bad_stime = stat_line("n").replacen(" 250 75 ", " 250 -5 ", 1);
        let error = parse_stat(&bad_stime).unwrap_err();
        assert_eq!(
            error.to_string(),
            "field 15 (stime) is not a non-negative integer: \"-5\""
        );

        let bad_state = stat_line("n").replacen(") S ", ") SS ", 1);
        assert!(matches!(
            parse_stat(&bad_state),
            Err(ParseError::InvalidNumber { field: 3, .. })
        ));
    }

    /// statm field 2 is the resident page count.
    #[test]
    fn statm_resident() {
        assert_eq!(
            parse_statm_resident_pages("5000 1234 300 10 0 900 0\n"),
            Ok(1234)
        );
        assert_eq!(
            parse_statm_resident_pages("5000"),
            Err(ParseError::MissingField {
                field: 2,
                name: "resident"
            })
        );
    }

    /// Host busy time excludes idle and iowait, and guest columns are not
    /// counted twice.
    #[test]
    fn host_stat_sums() {
        let content = "cpu  100 10 50 800 40 5 5 0 30 0\n\
                       cpu0 50 5 25 400 20 2 3 0 15 0\n\
                       cpu1 50 5 25 400 20 3 2 0 15 0\n\
                       intr 12345\n\
                       cpufreq 1\n";
        let times = parse_host_stat(content).unwrap();
        assert_eq!(times.total_ticks, 1010);
        assert_eq!(times.busy_ticks, 170);
        assert_eq!(times.cores, 2);
    }

    /// /proc/stat without a summary line or with junk in it is rejected.
    #[test]
    fn host_stat_malformed() {
        assert_eq!(parse_host_stat("intr 1\n"), Err(ParseError::MissingCpuLine));
        assert!(matches!(
            parse_host_stat("cpu 1 x 3 4\n"),
            Err(ParseError::InvalidNumber {
                field: 3,
                name: "nice",
                ..
            })
        ));
    }

    /// Pidfiles accept surrounding whitespace but nothing else.
    #[test]
    fn pidfile_content() {
        assert_eq!(parse_pidfile("1234\n"), Ok(1234));
        assert_eq!(parse_pidfile("  77  "), Ok(77));
        for bad in ["", "\n", "0", "-3", "12 34", "abc", "99999999999"] {
            assert!(
                matches!(parse_pidfile(bad), Err(ParseError::InvalidPid { .. })),
                "content {bad:?}"
            );
        }
    }
}
