//! Counters shared by all bots of one group slice.
//!
//! Bots update atomics directly instead of sending a channel message per
//! stanza; the reporter reads them once a second into a `GroupReport`. The
//! only locks guard the interval histograms, each held for one record or one
//! swap.

use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU32, AtomicU64, Ordering};

use hdrhistogram::Histogram;
use hdrhistogram::serialization::{Serializer, V2Serializer};
use xmppload_proto::v1::{ErrorCount, GroupCounters, PhaseTimes};

use super::round_trips::RoundTrips;
use crate::error::FailureKind;
use crate::webclient::stats::WebStats;

/// Highest value the histograms track, in microseconds (one minute);
/// larger samples are clamped to it.
pub(super) const MAX_LATENCY_MICROS: u64 = 60_000_000;
/// Significant decimal digits kept by the histogram (0.1 % resolution).
const HISTOGRAM_PRECISION: u8 = 3;

/// Phases whose first and last moments the report carries.
#[derive(Debug, Clone, Copy)]
pub enum Phase {
    Join = 0,
    Talk = 1,
    Leave = 2,
}

/// First and last moment of one phase, in Unix microseconds.
#[derive(Debug)]
struct PhaseRange {
    /// Earliest moment; `i64::MAX` until the phase happens.
    first: AtomicI64,
    /// Latest moment; 0 until the phase happens.
    last: AtomicI64,
}

impl PhaseRange {
    fn new() -> Self {
        PhaseRange {
            first: AtomicI64::new(i64::MAX),
            last: AtomicI64::new(0),
        }
    }

    fn record(&self, unix_micros: i64) {
        self.first.fetch_min(unix_micros, Ordering::Relaxed);
        self.last.fetch_max(unix_micros, Ordering::Relaxed);
    }

    /// (first, last), with 0 for a phase that did not happen.
    fn get(&self) -> (i64, i64) {
        let first = self.first.load(Ordering::Relaxed);
        let first = if first == i64::MAX { 0 } else { first };
        (first, self.last.load(Ordering::Relaxed))
    }
}

/// Gauges, totals and the interval histogram of one slice.
#[derive(Debug)]
pub struct GroupStats {
    /// Bots between their start time and a bound session.
    pub connecting: AtomicU32,
    /// Bots with a bound session, whether or not they are in the room.
    pub connected: AtomicU32,
    /// Bots between their join confirmation and their leave presence.
    pub joined: AtomicU32,
    // The totals below are cumulative and match the `GroupCounters` fields
    // of the same names.
    pub connect_attempts: AtomicU64,
    pub connected_total: AtomicU64,
    pub joined_total: AtomicU64,
    pub left_total: AtomicU64,
    pub failed_total: AtomicU64,
    pub messages_sent: AtomicU64,
    pub messages_received: AtomicU64,
    pub reflections: AtomicU64,
    pub stanzas_received: AtomicU64,
    pub late_sends: AtomicU64,
    pub late_joins: AtomicU64,
    /// Failures per kind, indexed by [`FailureKind::index`].
    errors: [AtomicU64; FailureKind::ALL.len()],
    /// Indexed by [`Phase`].
    phases: [PhaseRange; 3],
    /// Reflection latencies (µs) since the last report.
    pub latency: IntervalHistogram,
    /// Connect start minus scheduled start (µs), one sample per started bot.
    pub join_lag: IntervalHistogram,
    /// Send time minus due time (µs), one sample per message.
    pub send_lag: IntervalHistogram,
    /// Durations of connection steps, joins and requests, by kind.
    pub round_trips: RoundTrips,
    /// Error replies, timeouts and replied-to iq requests of the web-client
    /// behaviours.
    pub web: WebStats,
}

impl GroupStats {
    pub fn new() -> Self {
        GroupStats {
            connecting: AtomicU32::new(0),
            connected: AtomicU32::new(0),
            joined: AtomicU32::new(0),
            connect_attempts: AtomicU64::new(0),
            connected_total: AtomicU64::new(0),
            joined_total: AtomicU64::new(0),
            left_total: AtomicU64::new(0),
            failed_total: AtomicU64::new(0),
            messages_sent: AtomicU64::new(0),
            messages_received: AtomicU64::new(0),
            reflections: AtomicU64::new(0),
            stanzas_received: AtomicU64::new(0),
            late_sends: AtomicU64::new(0),
            late_joins: AtomicU64::new(0),
            errors: std::array::from_fn(|_| AtomicU64::new(0)),
            phases: [PhaseRange::new(), PhaseRange::new(), PhaseRange::new()],
            latency: IntervalHistogram::new(),
            join_lag: IntervalHistogram::new(),
            send_lag: IntervalHistogram::new(),
            round_trips: RoundTrips::new(),
            web: WebStats::default(),
        }
    }

    /// Counts a failed bot under its kind.
    pub fn record_failure(&self, kind: FailureKind) {
        self.failed_total.fetch_add(1, Ordering::Relaxed);
        self.errors[kind.index()].fetch_add(1, Ordering::Relaxed);
    }

    pub fn record_phase(&self, phase: Phase, unix_micros: i64) {
        self.phases[phase as usize].record(unix_micros);
    }

    /// Snapshot of all counters.
    pub fn counters(&self) -> GroupCounters {
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        let errors = FailureKind::ALL
            .iter()
            .map(|kind| ErrorCount {
                kind: kind.as_str().to_owned(),
                count: load(&self.errors[kind.index()]),
            })
            .filter(|error| error.count > 0)
            .collect();
        let mut counters = GroupCounters {
            connecting: self.connecting.load(Ordering::Relaxed),
            connected: self.connected.load(Ordering::Relaxed),
            joined: self.joined.load(Ordering::Relaxed),
            connect_attempts: load(&self.connect_attempts),
            connected_total: load(&self.connected_total),
            joined_total: load(&self.joined_total),
            left_total: load(&self.left_total),
            failed_total: load(&self.failed_total),
            messages_sent: load(&self.messages_sent),
            messages_received: load(&self.messages_received),
            reflections: load(&self.reflections),
            stanzas_received: load(&self.stanzas_received),
            errors,
            late_sends: load(&self.late_sends),
            late_joins: load(&self.late_joins),
            ..GroupCounters::default()
        };
        self.web.fill(&mut counters);
        counters
    }

    pub fn phases(&self) -> PhaseTimes {
        let (join_first, join_last) = self.phases[Phase::Join as usize].get();
        let (talk_first, talk_last) = self.phases[Phase::Talk as usize].get();
        let (leave_first, leave_last) = self.phases[Phase::Leave as usize].get();
        PhaseTimes {
            join_first_unix_micros: join_first,
            join_last_unix_micros: join_last,
            talk_first_unix_micros: talk_first,
            talk_last_unix_micros: talk_last,
            leave_first_unix_micros: leave_first,
            leave_last_unix_micros: leave_last,
        }
    }
}

impl Default for GroupStats {
    fn default() -> Self {
        Self::new()
    }
}

/// A histogram of microsecond values that each report takes and resets, so
/// its memory stays constant however long a group runs.
#[derive(Debug)]
pub struct IntervalHistogram {
    /// Samples since the last [`IntervalHistogram::take`].
    current: Mutex<Histogram<u64>>,
}

impl IntervalHistogram {
    fn new() -> Self {
        IntervalHistogram {
            current: Mutex::new(new_histogram()),
        }
    }

    /// Records one value in microseconds, clamped to 1 µs .. one minute.
    pub fn record(&self, micros: u64) {
        // A poisoned lock only means another bot panicked mid-record; the
        // histogram itself is still consistent, so keep using it.
        let mut histogram = self
            .current
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        histogram.saturating_record(micros.clamp(1, MAX_LATENCY_MICROS));
    }

    /// Swaps in an empty histogram and returns the old one in V2
    /// serialization, so each report carries only its own interval.
    pub fn take(&self) -> Vec<u8> {
        let interval = {
            let mut histogram = self
                .current
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            std::mem::replace(&mut *histogram, new_histogram())
        };
        serialize_histogram(&interval)
    }
}

/// V2 serialization of one histogram; empty if serialising fails.
pub(super) fn serialize_histogram(histogram: &Histogram<u64>) -> Vec<u8> {
    let mut bytes = Vec::new();
    if let Err(err) = V2Serializer::new().serialize(histogram, &mut bytes) {
        // A Vec accepts every write, so an error here comes from the
        // histogram itself. The interval is dropped and logged.
        tracing::error!(%err, "failed to serialise an interval histogram");
        bytes.clear();
    }
    bytes
}

pub(super) fn new_histogram() -> Histogram<u64> {
    // The bounds are constants that hdrhistogram accepts (low >= 1,
    // high >= 2 * low, precision <= 5), so construction cannot fail.
    match Histogram::new_with_bounds(1, MAX_LATENCY_MICROS, HISTOGRAM_PRECISION) {
        Ok(histogram) => histogram,
        Err(err) => unreachable!("constant histogram bounds rejected: {err:?}"),
    }
}

/// Increments a gauge on creation and decrements it on drop, so a bot task
/// that is cancelled or fails still leaves the gauge right.
#[derive(Debug)]
pub struct GaugeGuard<'a> {
    gauge: &'a AtomicU32,
}

impl<'a> GaugeGuard<'a> {
    pub fn enter(gauge: &'a AtomicU32) -> Self {
        gauge.fetch_add(1, Ordering::Relaxed);
        GaugeGuard { gauge }
    }
}

impl Drop for GaugeGuard<'_> {
    fn drop(&mut self) {
        self.gauge.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hdrhistogram::serialization::Deserializer;

    /// Each interval histogram holds only the samples since the last take.
    #[test]
    fn interval_histogram_resets() {
        let stats = GroupStats::new();
        stats.latency.record(1500);
        stats.latency.record(2500);
        let first: Histogram<u64> = Deserializer::new()
            .deserialize(&mut &stats.latency.take()[..])
            .unwrap();
        assert_eq!(first.len(), 2);
        let second: Histogram<u64> = Deserializer::new()
            .deserialize(&mut &stats.latency.take()[..])
            .unwrap();
        assert_eq!(second.len(), 0);
    }

    /// Phases report zero until they happen, then the min and max.
    #[test]
    fn phase_times_track_first_and_last() {
        let stats = GroupStats::new();
        assert_eq!(stats.phases().join_first_unix_micros, 0);
        stats.record_phase(Phase::Join, 200);
        stats.record_phase(Phase::Join, 100);
        stats.record_phase(Phase::Join, 300);
        let phases = stats.phases();
        assert_eq!(phases.join_first_unix_micros, 100);
        assert_eq!(phases.join_last_unix_micros, 300);
        assert_eq!(phases.talk_first_unix_micros, 0);
    }

    /// Failures are counted per kind and in the total; zero kinds are omitted.
    #[test]
    fn failures_counted_by_kind() {
        let stats = GroupStats::new();
        stats.record_failure(FailureKind::Refused);
        stats.record_failure(FailureKind::Refused);
        stats.record_failure(FailureKind::Tls);
        let counters = stats.counters();
        assert_eq!(counters.failed_total, 3);
        assert_eq!(counters.errors.len(), 2);
        assert_eq!(counters.errors[0].kind, "refused");
        assert_eq!(counters.errors[0].count, 2);
        assert_eq!(counters.errors[1].kind, "tls");
    }
}
