//! CPU percentages from cumulative kernel counters.
//!
//! The kernel counts CPU time in clock ticks, per process since it started
//! and per host since boot. A percentage is the difference between two
//! readings over the time between them. The process tracker also decides
//! when a series has a gap, because a difference across two different
//! processes is meaningless.

use std::time::{Duration, Instant};

use crate::os::ProcUnits;
use crate::procfs::HostCpuTimes;

/// A pid plus its start time, which distinguishes a restarted process from
/// the old one even when the kernel reuses the pid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Identity {
    pub pid: u32,
    /// Start time in clock ticks after boot (field 22 of `/proc/PID/stat`).
    pub start_ticks: u64,
}

/// One reading of a process's cumulative CPU time.
#[derive(Debug, Clone, Copy)]
pub struct Reading {
    pub identity: Identity,
    /// User plus system time of all threads since the process started.
    pub cpu_ticks: u64,
    /// How long the process has been running; `None` if the boot clock could
    /// not be read.
    pub age: Option<Duration>,
    pub at: Instant,
}

/// Relation of a reading to the previous sample of the same selector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// The same process as in the previous sample.
    Continued,
    /// The first process this selector has ever matched.
    Started,
    /// The process that was last seen is back after one or more missing
    /// samples.
    Returned,
    /// A different process than the one last seen.
    Replaced { previous: Identity },
}

/// CPU use of one sample and whether the series has a gap there.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CpuSample {
    pub cpu_percent: f64,
    pub gap: bool,
    pub change: Change,
}

#[derive(Debug, Clone, Copy)]
struct Seen {
    identity: Identity,
    cpu_ticks: u64,
    at: Instant,
}

/// Per-selector state between samples.
#[derive(Debug, Default)]
pub struct ProcessCpuTracker {
    /// Last reading of any process for this selector, kept across missing
    /// samples so that the same process coming back continues its series.
    last_seen: Option<Seen>,
    /// Time of the previous sample, with or without a process.
    previous_at: Option<Instant>,
    /// Whether the previous sample found a process.
    previous_present: bool,
}

impl ProcessCpuTracker {
    /// Turns a reading into a CPU percentage of one core, at most
    /// `max_percent`.
    ///
    /// For the process seen last time the percentage covers the ticks since
    /// that reading. For a new process only its own ticks count, spread over
    /// its age or the time since the previous sample, whichever is longer.
    /// Either window contains all of those ticks, so the value can neither
    /// go negative nor jump by the old process's total.
    pub fn observe(&mut self, reading: Reading, units: &ProcUnits, max_percent: f64) -> CpuSample {
        let same_process = self
            .last_seen
            .is_some_and(|seen| seen.identity == reading.identity);

        let (used_ticks, window, change) = match self.last_seen {
            Some(seen) if same_process => {
                let change = if self.previous_present {
                    Change::Continued
                } else {
                    Change::Returned
                };
                let used = reading.cpu_ticks.saturating_sub(seen.cpu_ticks);
                (used, reading.at.saturating_duration_since(seen.at), change)
            }
            _ => {
                let since_previous = self
                    .previous_at
                    .map(|previous| reading.at.saturating_duration_since(previous));
                let window = match (reading.age, since_previous) {
                    (Some(age), Some(since)) => age.max(since),
                    (Some(age), None) => age,
                    (None, Some(since)) => since,
                    (None, None) => Duration::ZERO,
                };
                let change = match self.last_seen {
                    Some(seen) => Change::Replaced {
                        previous: seen.identity,
                    },
                    None => Change::Started,
                };
                (reading.cpu_ticks, window, change)
            }
        };

        // The very first sample of a tracker has nothing to be a gap against.
        let gap = self.previous_at.is_some() && change != Change::Continued;

        self.last_seen = Some(Seen {
            identity: reading.identity,
            cpu_ticks: reading.cpu_ticks,
            at: reading.at,
        });
        self.previous_at = Some(reading.at);
        self.previous_present = true;

        CpuSample {
            cpu_percent: percent(units.ticks_to_duration(used_ticks), window, max_percent),
            gap,
            change,
        }
    }

    /// Records a sample in which no process matched.
    pub fn observe_missing(&mut self, at: Instant) {
        self.previous_at = Some(at);
        self.previous_present = false;
    }

    /// Returns whether the previous sample found a process.
    pub fn previous_present(&self) -> bool {
        self.previous_present
    }
}

/// Whole-host CPU busy share between consecutive readings of `/proc/stat`.
#[derive(Debug)]
pub struct HostCpuTracker {
    previous: HostCpuTimes,
}

impl HostCpuTracker {
    pub fn new(baseline: HostCpuTimes) -> Self {
        Self { previous: baseline }
    }

    /// Returns the busy share of all cores, 0 to 100, since the previous
    /// reading, and stores `now` as the next baseline.
    pub fn update(&mut self, now: HostCpuTimes) -> f64 {
        let busy = now.busy_ticks.saturating_sub(self.previous.busy_ticks);
        let total = now.total_ticks.saturating_sub(self.previous.total_ticks);
        self.previous = now;
        if total == 0 {
            return 0.0;
        }
        (busy as f64 / total as f64 * 100.0).clamp(0.0, 100.0)
    }
}

fn percent(used: Duration, window: Duration, max_percent: f64) -> f64 {
    if window.is_zero() {
        return 0.0;
    }
    (used.as_secs_f64() / window.as_secs_f64() * 100.0).clamp(0.0, max_percent)
}

#[cfg(test)]
mod tests {
    use super::*;

    const UNITS: ProcUnits = ProcUnits {
        ticks_per_second: 100,
        page_size: 4096,
    };
    const MAX: f64 = 400.0;

    fn reading(pid: u32, start_ticks: u64, cpu_ticks: u64, age_ms: u64, at: Instant) -> Reading {
        Reading {
            identity: Identity { pid, start_ticks },
            cpu_ticks,
            age: Some(Duration::from_millis(age_ms)),
            at,
        }
    }

    fn assert_close(actual: f64, expected: f64) {
        assert!(
            (actual - expected).abs() < 1e-6,
            "got {actual}, expected {expected}"
        );
    }

    /// The first reading is no gap; later ones measure the tick difference.
    #[test]
    fn process_continued() {
        let start = Instant::now();
        let mut tracker = ProcessCpuTracker::default();

        let first = tracker.observe(reading(10, 500, 1_000, 20_000, start), &UNITS, MAX);
        assert!(!first.gap);
        assert_eq!(first.change, Change::Started);

        let at = start + Duration::from_secs(1);
        let second = tracker.observe(reading(10, 500, 1_050, 21_000, at), &UNITS, MAX);
        assert!(!second.gap);
        assert_eq!(second.change, Change::Continued);
        assert_close(second.cpu_percent, 50.0);
    }

    /// Same pid with a new start time is a restart: gap, and only the new
    /// process's ticks count.
    #[test]
    fn process_same_pid_new_start() {
        let start = Instant::now();
        let mut tracker = ProcessCpuTracker::default();
        tracker.observe(reading(10, 500, 90_000, 900_000, start), &UNITS, MAX);

        let at = start + Duration::from_secs(1);
        let restarted = tracker.observe(reading(10, 99_000, 20, 500, at), &UNITS, MAX);
        assert!(restarted.gap);
        assert_eq!(
            restarted.change,
            Change::Replaced {
                previous: Identity {
                    pid: 10,
                    start_ticks: 500
                }
            }
        );
        // 20 ticks = 0.2 s over max(age 0.5 s, 1 s since the previous sample).
        assert_close(restarted.cpu_percent, 20.0);
    }

    /// A replacement older than the sampling interval is averaged over its age.
    #[test]
    fn process_replaced_by_older() {
        let start = Instant::now();
        let mut tracker = ProcessCpuTracker::default();
        tracker.observe(reading(10, 500, 5_000, 60_000, start), &UNITS, MAX);

        let at = start + Duration::from_millis(200);
        let replaced = tracker.observe(reading(11, 700, 500, 10_000, at), &UNITS, MAX);
        assert!(replaced.gap);
        assert_close(replaced.cpu_percent, 50.0);
    }

    /// After missing samples, the same process continues from its last
    /// reading but the series is marked as a gap.
    #[test]
    fn process_returns_after_missing() {
        let start = Instant::now();
        let mut tracker = ProcessCpuTracker::default();
        tracker.observe(reading(10, 500, 1_000, 20_000, start), &UNITS, MAX);
        tracker.observe_missing(start + Duration::from_secs(1));
        assert!(!tracker.previous_present());

        let at = start + Duration::from_secs(2);
        let back = tracker.observe(reading(10, 500, 1_100, 22_000, at), &UNITS, MAX);
        assert!(back.gap);
        assert_eq!(back.change, Change::Returned);
        assert_close(back.cpu_percent, 50.0);
    }

    /// A process that appears after missing samples starts with a gap.
    #[test]
    fn process_appears_after_missing() {
        let start = Instant::now();
        let mut tracker = ProcessCpuTracker::default();
        tracker.observe_missing(start);

        let at = start + Duration::from_secs(1);
        let found = tracker.observe(reading(10, 500, 30, 300, at), &UNITS, MAX);
        assert!(found.gap);
        assert_eq!(found.change, Change::Started);
        assert_close(found.cpu_percent, 30.0);
    }

    /// Tick rounding cannot push a value above the cap.
    #[test]
    fn process_percent_capped() {
        let start = Instant::now();
        let mut tracker = ProcessCpuTracker::default();
        tracker.observe(reading(10, 500, 0, 1_000, start), &UNITS, 200.0);
        let at = start + Duration::from_millis(100);
        let sample = tracker.observe(reading(10, 500, 50, 1_100, at), &UNITS, 200.0);
        assert_close(sample.cpu_percent, 200.0);
    }

    /// Host share is busy ticks over all ticks since the previous reading.
    #[test]
    fn host_busy_share() {
        let times = |busy_ticks, total_ticks| HostCpuTimes {
            busy_ticks,
            total_ticks,
            cores: 2,
        };
        let mut tracker = HostCpuTracker::new(times(1_000, 10_000));
        assert_close(tracker.update(times(1_050, 10_200)), 25.0);
        assert_close(tracker.update(times(1_050, 10_200)), 0.0);
    }
}
