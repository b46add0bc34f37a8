//! Validation of `WatchRequest` into domain types.
//!
//! Every check names the offending field, so a coordinator with a bad
//! scenario file learns what to fix from the status message alone.

use std::collections::HashSet;
use std::path::PathBuf;
use std::time::Duration;

use tonic::Status;
use xmppload_proto::v1::{self, process_selector};

use crate::openmetrics::{Endpoint, parse_endpoint};
use crate::selector::{Selector, Target};

/// Sampling interval used when the request leaves `interval_ms` at 0.
pub const DEFAULT_INTERVAL: Duration = Duration::from_millis(200);

/// Shortest accepted interval. CPU times move in clock ticks (10 ms at the
/// usual 100 Hz), so shorter windows would mostly measure tick rounding.
pub const MIN_INTERVAL: Duration = Duration::from_millis(100);

/// Upper bound on selectors per watch. Each selector costs a few `/proc`
/// reads per sample, and a command-line selector without a match scans every
/// process, so an unbounded list could keep the monitor's core busy.
pub const MAX_PROCESSES: usize = 64;

/// A validated watch request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchPlan {
    pub selectors: Vec<Selector>,
    pub interval: Duration,
    /// Server metrics endpoint to read once per batch.
    pub openmetrics: Option<Endpoint>,
}

/// Checks a watch request and converts it. Returns `failed_precondition` on
/// a protocol version mismatch and `invalid_argument` for any other problem.
pub fn parse_watch_request(request: v1::WatchRequest) -> Result<WatchPlan, Status> {
    xmppload_proto::check_version(request.protocol_version)?;

    let interval = match request.interval_ms {
        0 => DEFAULT_INTERVAL,
        ms => Duration::from_millis(u64::from(ms)),
    };
    if interval < MIN_INTERVAL {
        return Err(Status::invalid_argument(format!(
            "interval_ms is {}; the minimum is {} (0 selects the default of {})",
            request.interval_ms,
            MIN_INTERVAL.as_millis(),
            DEFAULT_INTERVAL.as_millis()
        )));
    }

    if request.processes.is_empty() {
        return Err(Status::invalid_argument(
            "processes is empty; list at least one process to watch",
        ));
    }
    if request.processes.len() > MAX_PROCESSES {
        return Err(Status::invalid_argument(format!(
            "processes lists {} selectors; the maximum is {MAX_PROCESSES}",
            request.processes.len()
        )));
    }

    let mut names = HashSet::new();
    let mut selectors = Vec::with_capacity(request.processes.len());
    for (index, selector) in request.processes.into_iter().enumerate() {
        let selector = parse_selector(index, selector)?;
        if !names.insert(selector.name.clone()) {
            return Err(Status::invalid_argument(format!(
                "processes[{index}].name {:?} is used twice; names label the series, so they must be unique",
                selector.name
            )));
        }
        selectors.push(selector);
    }

    let openmetrics = if request.openmetrics_url.is_empty() {
        if !request.openmetrics_names.is_empty() {
            return Err(Status::invalid_argument(
                "openmetrics_names is set but openmetrics_url is empty; set the URL or drop the names",
            ));
        }
        None
    } else {
        let endpoint = parse_endpoint(&request.openmetrics_url, request.openmetrics_names)
            .map_err(|reason| Status::invalid_argument(format!("openmetrics_url {reason}")))?;
        Some(endpoint)
    };

    Ok(WatchPlan {
        selectors,
        interval,
        openmetrics,
    })
}

fn parse_selector(index: usize, selector: v1::ProcessSelector) -> Result<Selector, Status> {
    if selector.name.trim().is_empty() {
        return Err(Status::invalid_argument(format!(
            "processes[{index}].name is empty; set a label such as \"prosody\""
        )));
    }

    let target = xmppload_proto::required(selector.target, &format!("processes[{index}].target"))?;
    let target = match target {
        process_selector::Target::Pidfile(path) => {
            let path = PathBuf::from(path);
            // A relative path is taken from the monitor's working directory,
            // as a command-line tool would, so a scenario can name the
            // pidfile of a local stack started from the repository root.
            let path = if path.is_absolute() {
                path
            } else {
                std::env::current_dir()
                    .map(|cwd| cwd.join(&path))
                    .map_err(|err| {
                        Status::failed_precondition(format!(
                            "processes[{index}].pidfile {:?} is relative and the monitor's working directory is unreadable ({err}); use an absolute path",
                            path.display().to_string()
                        ))
                    })?
            };
            Target::Pidfile(path)
        }
        process_selector::Target::Pid(0) => {
            return Err(Status::invalid_argument(format!(
                "processes[{index}].pid is 0; set the id of a running process"
            )));
        }
        process_selector::Target::Pid(pid) => Target::Pid(pid),
        process_selector::Target::CmdlineContains(pattern) => {
            if pattern.is_empty() {
                return Err(Status::invalid_argument(format!(
                    "processes[{index}].cmdline_contains is empty; it would match every process"
                )));
            }
            Target::CmdlineContains(pattern)
        }
    };

    Ok(Selector {
        name: selector.name,
        target,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic::Code;

    fn selector(name: &str, target: Option<process_selector::Target>) -> v1::ProcessSelector {
        v1::ProcessSelector {
            name: name.to_owned(),
            target,
        }
    }

    fn request(processes: Vec<v1::ProcessSelector>, interval_ms: u32) -> v1::WatchRequest {
        v1::WatchRequest {
            protocol_version: xmppload_proto::PROTOCOL_VERSION,
            processes,
            interval_ms,
            ..Default::default()
        }
    }

    fn pid_selector(name: &str) -> v1::ProcessSelector {
        selector(name, Some(process_selector::Target::Pid(1)))
    }

    /// A valid request converts every target kind and applies the default interval.
    #[test]
    fn watch_request_valid() {
        let plan = parse_watch_request(request(
            vec![
                selector(
                    "a",
                    Some(process_selector::Target::Pidfile("/run/a.pid".into())),
                ),
                selector("b", Some(process_selector::Target::Pid(42))),
                selector(
                    "c",
                    Some(process_selector::Target::CmdlineContains("prosody".into())),
                ),
            ],
            0,
        ))
        .unwrap();
        assert_eq!(plan.interval, DEFAULT_INTERVAL);
        assert_eq!(
            plan.selectors[0].target,
            Target::Pidfile("/run/a.pid".into())
        );
        assert_eq!(plan.selectors[1].target, Target::Pid(42));
        assert_eq!(
            plan.selectors[2].target,
            Target::CmdlineContains("prosody".into())
        );

        let plan = parse_watch_request(request(vec![pid_selector("a")], 100)).unwrap();
        assert_eq!(plan.interval, MIN_INTERVAL);
    }

    /// Each invalid request is rejected with a message that names the field.
    #[test]
    fn watch_request_invalid() {
        let cases = [
            (request(vec![], 200), "processes is empty"),
            (request(vec![pid_selector("a")], 99), "the minimum is 100"),
            (
                request(vec![pid_selector(" ")], 200),
                "processes[0].name is empty",
            ),
            (
                request(vec![pid_selector("a"), selector("b", None)], 200),
                "processes[1].target",
            ),
            (
                request(
                    vec![selector("a", Some(process_selector::Target::Pid(0)))],
                    200,
                ),
                "processes[0].pid is 0",
            ),
            (
                request(
                    vec![selector(
                        "a",
                        Some(process_selector::Target::CmdlineContains(String::new())),
                    )],
                    200,
                ),
                "processes[0].cmdline_contains is empty",
            ),
            (
                request(vec![pid_selector("a"), pid_selector("a")], 200),
                "processes[1].name \"a\" is used twice",
            ),
            (
                request(
                    (0..=MAX_PROCESSES)
                        .map(|i| pid_selector(&i.to_string()))
                        .collect(),
                    200,
                ),
                "the maximum is 64",
            ),
        ];
        for (request, expected) in cases {
            let status = parse_watch_request(request).unwrap_err();
            assert_eq!(status.code(), Code::InvalidArgument, "case {expected:?}");
            assert!(
                status.message().contains(expected),
                "message {:?} does not contain {expected:?}",
                status.message()
            );
        }
    }

    /// A peer with another protocol version gets failed_precondition.
    #[test]
    fn watch_request_version_mismatch() {
        let mut mismatched = request(vec![pid_selector("a")], 200);
        mismatched.protocol_version = xmppload_proto::PROTOCOL_VERSION + 1;
        let status = parse_watch_request(mismatched).unwrap_err();
        assert_eq!(status.code(), Code::FailedPrecondition);
    }

    /// A relative pidfile is resolved against the monitor's working directory.
    #[test]
    fn relative_pidfile_uses_working_directory() {
        let plan = parse_watch_request(request(
            vec![selector(
                "a",
                Some(process_selector::Target::Pidfile("run/a.pid".into())),
            )],
            200,
        ))
        .unwrap();
        let expected = std::env::current_dir().unwrap().join("run/a.pid");
        assert!(matches!(&plan.selectors[0].target, Target::Pidfile(path) if *path == expected));
    }
}
