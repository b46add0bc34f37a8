//! The sampler: one batch of readings for a fixed list of selectors.
//!
//! `Sampler::new` takes a baseline reading of the host and of every selector,
//! so the first batch already covers the time since construction. Each call
//! to [`Sampler::sample`] then resolves every selector again, reads its
//! `/proc` counters and turns the differences into percentages. The calls do
//! blocking file I/O and are meant to be spaced by at least 100 ms. With the
//! usual 100 Hz clock tick, CPU times move in 10 ms steps, so even a 100 ms
//! window is accurate to only about ±10 percentage points.

use std::time::Instant;

use tracing::{debug, info, warn};
use xmppload_proto::v1;

use crate::MonitorError;
use crate::cpu::{Change, HostCpuTracker, Identity, ProcessCpuTracker, Reading};
use crate::os::{self, ProcUnits};
use crate::procfs::{self, ProcStat};
use crate::selector::{ResolveError, Resolver, Selector};

/// Readings of the host and of every selector at one moment.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    /// Wall clock when the batch was taken, Unix microseconds.
    pub unix_micros: i64,
    /// Busy share of all cores since the previous batch, 0 to 100.
    pub host_cpu_percent: f64,
    pub host_cores: u32,
    /// One sample per selector, in the order of the selectors.
    pub processes: Vec<Sample>,
}

/// The reading of one selector.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    /// 0 when no process matches the selector.
    pub pid: u32,
    /// CPU time since the previous sample as a percentage of one core.
    pub cpu_percent: f64,
    pub rss_bytes: u64,
    /// True on the first sample of a process that replaced an earlier one,
    /// and on every sample without a process.
    pub gap: bool,
}

impl From<Batch> for v1::SampleBatch {
    fn from(batch: Batch) -> Self {
        Self {
            unix_micros: batch.unix_micros,
            host_cpu_percent: batch.host_cpu_percent,
            host_cores: batch.host_cores,
            processes: batch.processes.into_iter().map(Into::into).collect(),
            server_metrics: Vec::new(),
            server_metrics_error: String::new(),
        }
    }
}

impl From<Sample> for v1::ProcessSample {
    fn from(sample: Sample) -> Self {
        Self {
            name: sample.name,
            pid: sample.pid,
            cpu_percent: sample.cpu_percent,
            rss_bytes: sample.rss_bytes,
            gap: sample.gap,
        }
    }
}

struct Watched {
    selector: Selector,
    cpu: ProcessCpuTracker,
    /// Stat of the process matched by the previous sample, for command-line
    /// selectors that keep their match while it lives.
    current: Option<ProcStat>,
    /// Set once the missing process has been logged, so that a selector that
    /// stays missing for a whole run logs one line rather than one per sample.
    missing_logged: bool,
}

/// Samples the host and a fixed list of processes.
pub struct Sampler {
    watched: Vec<Watched>,
    host: HostCpuTracker,
    host_cores: u32,
    /// Set while `/proc/stat` cannot be read, so the failure is logged once
    /// rather than on every sample.
    host_failing: bool,
    resolver: Resolver,
    units: ProcUnits,
}

impl Sampler {
    /// Reads the kernel's units and a baseline for the host and every
    /// selector.
    pub fn new(selectors: Vec<Selector>) -> Result<Self, MonitorError> {
        let units = ProcUnits::query()?;
        let host_times = procfs::read_host_stat().map_err(MonitorError::HostCpu)?;

        let mut sampler = Self {
            watched: selectors
                .into_iter()
                .map(|selector| Watched {
                    selector,
                    cpu: ProcessCpuTracker::default(),
                    current: None,
                    missing_logged: false,
                })
                .collect(),
            host: HostCpuTracker::new(host_times),
            host_cores: host_times.cores.max(1),
            host_failing: false,
            resolver: Resolver::new(),
            units,
        };

        // The baseline readings only prime the trackers.
        for index in 0..sampler.watched.len() {
            sampler.sample_process(index);
        }
        Ok(sampler)
    }

    /// Takes one batch.
    pub fn sample(&mut self) -> Batch {
        let unix_micros = xmppload_proto::unix_micros_now();
        let host_cpu_percent = self.sample_host();
        let processes = (0..self.watched.len())
            .map(|index| self.sample_process(index))
            .collect();
        Batch {
            unix_micros,
            host_cpu_percent,
            host_cores: self.host_cores,
            processes,
        }
    }

    fn sample_host(&mut self) -> f64 {
        match procfs::read_host_stat() {
            Ok(times) => {
                if self.host_failing {
                    info!("host CPU times readable again");
                    self.host_failing = false;
                }
                self.host_cores = times.cores.max(1);
                self.host.update(times)
            }
            Err(err) => {
                if !self.host_failing {
                    warn!(%err, "failed to read host CPU times; reporting 0 until it recovers");
                    self.host_failing = true;
                }
                0.0
            }
        }
    }

    fn sample_process(&mut self, index: usize) -> Sample {
        let max_percent = f64::from(self.host_cores) * 100.0;
        let watched = &mut self.watched[index];
        let name = watched.selector.name.clone();

        let found = self
            .resolver
            .resolve(&watched.selector.target, watched.current.as_ref())
            .and_then(|stat| {
                let pages = procfs::read_resident_pages(stat.pid).map_err(|source| {
                    if source.is_not_found() {
                        ResolveError::NotRunning { pid: stat.pid }
                    } else {
                        ResolveError::Unreadable {
                            pid: stat.pid,
                            source,
                        }
                    }
                })?;
                Ok((stat, pages))
            });
        // Timed after the read, because a command-line scan before it can
        // take milliseconds that belong to no window.
        let at = Instant::now();

        let (stat, resident_pages) = match found {
            Ok(found) => found,
            Err(err) => {
                if !watched.missing_logged {
                    info!(process = %name, %err, "watched process not found");
                    watched.missing_logged = true;
                }
                watched.cpu.observe_missing(at);
                watched.current = None;
                return Sample {
                    name,
                    pid: 0,
                    cpu_percent: 0.0,
                    rss_bytes: 0,
                    gap: true,
                };
            }
        };

        let start_since_boot = self.units.ticks_to_duration(stat.start_ticks);
        let reading = Reading {
            identity: Identity {
                pid: stat.pid,
                start_ticks: stat.start_ticks,
            },
            cpu_ticks: stat.cpu_ticks(),
            age: os::since_boot().map(|now| now.saturating_sub(start_since_boot)),
            at,
        };
        let cpu = watched.cpu.observe(reading, &self.units, max_percent);
        log_change(&name, stat.pid, cpu.change);

        let pid = stat.pid;
        watched.current = Some(stat);
        watched.missing_logged = false;
        Sample {
            name,
            pid,
            cpu_percent: cpu.cpu_percent,
            rss_bytes: resident_pages.saturating_mul(self.units.page_size),
            gap: cpu.gap,
        }
    }
}

fn log_change(name: &str, pid: u32, change: Change) {
    match change {
        Change::Continued => {}
        Change::Started => info!(process = %name, pid, "watched process found"),
        Change::Returned => debug!(process = %name, pid, "watched process readable again"),
        Change::Replaced { previous } => info!(
            process = %name,
            pid,
            previous_pid = previous.pid,
            "watched process replaced (restart)"
        ),
    }
}
