//! Resolution of a selector to the process it means at this moment.
//!
//! A selector is resolved again on every sample, because the process behind
//! it can change: a pidfile is rewritten when the server restarts, and a
//! command-line match moves on when the matched process exits.

use std::ffi::OsString;
use std::path::PathBuf;

use sysinfo::{ProcessRefreshKind, ProcessesToUpdate, System, UpdateKind};

use crate::procfs::{self, ProcStat, ProcfsError};

/// A labelled description of one process to watch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selector {
    /// Label of the series in samples and results, for example `prosody`.
    pub name: String,
    pub target: Target,
}

/// How to find the process behind a selector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// Absolute path of a file that contains the pid; read on every sample.
    Pidfile(PathBuf),
    Pid(u32),
    /// Substring of the full command line (arguments joined by spaces). The
    /// oldest matching process other than the monitor itself is chosen.
    CmdlineContains(String),
}

/// Reason that no live process matches a selector now.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error("pidfile unusable: {0}")]
    Pidfile(#[source] ProcfsError),
    #[error("process {pid} is not running")]
    NotRunning { pid: u32 },
    #[error("process {pid} cannot be read: {source}")]
    Unreadable {
        pid: u32,
        #[source]
        source: ProcfsError,
    },
    #[error("no process other than the monitor has {pattern:?} in its command line")]
    NoMatch { pattern: String },
}

/// Finds processes for selectors; owns the process table used for
/// command-line matches so that repeated scans reuse its allocations.
pub(crate) struct Resolver {
    system: System,
    own_pid: u32,
}

impl Resolver {
    pub(crate) fn new() -> Self {
        Self {
            system: System::new(),
            own_pid: std::process::id(),
        }
    }

    /// Reads `/proc/PID/stat` of the process that `target` means now.
    ///
    /// `current` is the process this selector matched last time. A
    /// command-line selector keeps it while it lives, which saves a scan of
    /// every process on each sample. The result stays the same because a
    /// process that starts later is never older than one still running.
    /// NOTE: a process that rewrites its command line later is not noticed
    /// until the kept match exits.
    pub(crate) fn resolve(
        &mut self,
        target: &Target,
        current: Option<&ProcStat>,
    ) -> Result<ProcStat, ResolveError> {
        match target {
            Target::Pid(pid) => read_live(*pid),
            Target::Pidfile(path) => {
                let pid = procfs::read_pidfile(path).map_err(ResolveError::Pidfile)?;
                read_live(pid)
            }
            Target::CmdlineContains(pattern) => {
                if let Some(current) = current
                    && let Ok(stat) = read_live(current.pid)
                    && stat.start_ticks == current.start_ticks
                {
                    return Ok(stat);
                }
                self.oldest_match(pattern)
            }
        }
    }

    fn oldest_match(&mut self, pattern: &str) -> Result<ProcStat, ResolveError> {
        // Threads share their process's command line, so leave them out.
        let refresh = ProcessRefreshKind::nothing()
            .without_tasks()
            .with_cmd(UpdateKind::Always);
        self.system
            .refresh_processes_specifics(ProcessesToUpdate::All, true, refresh);

        let mut oldest: Option<ProcStat> = None;
        for (pid, process) in self.system.processes() {
            let pid = pid.as_u32();
            if pid == self.own_pid || process.thread_kind().is_some() {
                continue;
            }
            if !command_line_contains(process.cmd(), pattern) {
                continue;
            }
            // A process that exited since the scan is simply skipped.
            let Ok(stat) = read_live(pid) else {
                continue;
            };
            let is_older = oldest
                .as_ref()
                .is_none_or(|best| (stat.start_ticks, stat.pid) < (best.start_ticks, best.pid));
            if is_older {
                oldest = Some(stat);
            }
        }
        oldest.ok_or_else(|| ResolveError::NoMatch {
            pattern: pattern.to_owned(),
        })
    }
}

/// Reads a process's stat, treating an exited (zombie) process as gone.
fn read_live(pid: u32) -> Result<ProcStat, ResolveError> {
    match procfs::read_stat(pid) {
        Ok(stat) if stat.has_exited() => Err(ResolveError::NotRunning { pid }),
        Ok(stat) => Ok(stat),
        Err(error) if error.is_not_found() => Err(ResolveError::NotRunning { pid }),
        Err(source) => Err(ResolveError::Unreadable { pid, source }),
    }
}

fn command_line_contains(arguments: &[OsString], pattern: &str) -> bool {
    let joined = arguments
        .iter()
        .map(|argument| argument.to_string_lossy())
        .collect::<Vec<_>>()
        .join(" ");
    joined.contains(pattern)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Matching works on the arguments joined by single spaces.
    #[test]
    fn command_line_joined() {
        let arguments: Vec<OsString> = ["/usr/bin/lua", "/usr/bin/prosody", "-F"]
            .iter()
            .map(OsString::from)
            .collect();
        assert!(command_line_contains(&arguments, "bin/prosody -F"));
        assert!(command_line_contains(&arguments, "lua /usr"));
        assert!(!command_line_contains(&arguments, "ejabberd"));
        assert!(!command_line_contains(&[], "x"));
    }

    /// The monitor never matches itself by command line.
    #[test]
    fn resolve_skips_own_process() {
        let own_arguments: Vec<String> = std::env::args().collect();
        let pattern = own_arguments.join(" ");
        let mut resolver = Resolver::new();
        match resolver.resolve(&Target::CmdlineContains(pattern), None) {
            Err(ResolveError::NoMatch { .. }) => {}
            Ok(stat) => assert_ne!(stat.pid, std::process::id()),
            Err(other) => panic!("unexpected error: {other}"),
        }
    }

    /// A pid selector for this process reads it.
    #[test]
    fn resolve_own_pid() {
        let mut resolver = Resolver::new();
        let stat = resolver
            .resolve(&Target::Pid(std::process::id()), None)
            .unwrap();
        assert_eq!(stat.pid, std::process::id());
    }
}
