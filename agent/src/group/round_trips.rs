//! Durations of timed steps, one interval histogram per kind.
//!
//! A kind is a short name such as `tls`, `bind`, `join` or `mam`. Many bot
//! tasks record into the same map. Each report takes every histogram and
//! leaves the map empty, so memory grows with the number of kinds and not
//! with the length of the run.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use hdrhistogram::Histogram;
use xmppload_proto::v1::KindHistogram;

use super::stats::{MAX_LATENCY_MICROS, new_histogram, serialize_histogram};

/// Interval histograms keyed by kind.
#[derive(Debug, Default)]
pub struct RoundTrips {
    current: Mutex<BTreeMap<&'static str, Histogram<u64>>>,
}

impl RoundTrips {
    pub fn new() -> Self {
        Self::default()
    }

    /// Records one step of `kind` that took `elapsed`, clamped to
    /// 1 µs .. one minute.
    pub fn record(&self, kind: &'static str, elapsed: Duration) {
        let micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        // A poisoned lock only means another bot panicked mid-record; the
        // map is still consistent.
        let mut current = self
            .current
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        current
            .entry(kind)
            .or_insert_with(new_histogram)
            .saturating_record(micros.clamp(1, MAX_LATENCY_MICROS));
    }

    /// Takes the histograms recorded since the last call, sorted by kind.
    pub fn take(&self) -> Vec<KindHistogram> {
        let interval = {
            let mut current = self
                .current
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            std::mem::take(&mut *current)
        };
        interval
            .into_iter()
            .map(|(kind, histogram)| KindHistogram {
                kind: kind.to_owned(),
                histogram: serialize_histogram(&histogram),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hdrhistogram::serialization::Deserializer;

    fn decode(bytes: &[u8]) -> Histogram<u64> {
        Deserializer::new().deserialize(&mut &bytes[..]).unwrap()
    }

    /// Each kind gets its own histogram, and a take empties them all.
    #[test]
    fn kinds_are_kept_apart_and_reset() {
        let trips = RoundTrips::new();
        trips.record("tls", Duration::from_millis(3));
        trips.record("tls", Duration::from_millis(5));
        trips.record("bind", Duration::from_micros(800));

        let reported = trips.take();
        let kinds: Vec<&str> = reported.iter().map(|k| k.kind.as_str()).collect();
        assert_eq!(kinds, ["bind", "tls"]);
        let tls = decode(&reported[1].histogram);
        assert_eq!(tls.len(), 2);
        assert!((4_990..=5_010).contains(&tls.max()), "max {}", tls.max());

        assert!(trips.take().is_empty());
    }

    /// Durations past the histogram's range are clamped, not dropped.
    #[test]
    fn long_steps_are_clamped() {
        let trips = RoundTrips::new();
        trips.record("mam", Duration::from_secs(3600));
        let reported = trips.take();
        assert_eq!(decode(&reported[0].histogram).len(), 1);
    }
}
