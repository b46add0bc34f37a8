//! Latency histograms as agents send them: HdrHistogram V2 serializations of
//! microsecond values, merged here across agents, slices and seconds.

use hdrhistogram::Histogram;
use hdrhistogram::serialization::{Deserializer, Serializer as _, V2Serializer};

/// Significant decimal digits, as the agents record them.
const PRECISION: u8 = 3;

/// Returns an empty histogram that grows to fit any value added to it, so
/// merging never fails on an agent's range.
pub fn new_histogram() -> Histogram<u64> {
    match Histogram::new(PRECISION) {
        Ok(histogram) => histogram,
        Err(err) => unreachable!("constant histogram precision rejected: {err:?}"),
    }
}

/// Adds the serialized histogram `bytes` to `target`. Empty bytes add nothing.
pub fn add_serialized(target: &mut Histogram<u64>, bytes: &[u8]) -> Result<(), String> {
    if bytes.is_empty() {
        return Ok(());
    }
    let interval: Histogram<u64> = Deserializer::new()
        .deserialize(&mut &bytes[..])
        .map_err(|err| format!("does not decode: {err:?}"))?;
    target
        .add(&interval)
        .map_err(|err| format!("does not merge: {err:?}"))
}

/// Serializes `histogram` in the V2 format that [`add_serialized`] reads.
pub fn serialize(histogram: &Histogram<u64>) -> Vec<u8> {
    let mut bytes = Vec::new();
    // Writing to a Vec cannot fail, and V2 encodes any histogram.
    if let Err(err) = V2Serializer::new().serialize(histogram, &mut bytes) {
        unreachable!("V2 serialization into memory failed: {err:?}");
    }
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A serialized histogram adds back with its count and maximum.
    #[test]
    fn serialize_round_trip() {
        let mut histogram = new_histogram();
        histogram.record(1_500).unwrap();
        histogram.record(90_000).unwrap();

        let mut merged = new_histogram();
        add_serialized(&mut merged, &serialize(&histogram)).unwrap();
        add_serialized(&mut merged, &[]).unwrap();
        assert_eq!(merged.len(), 2);
        assert_eq!(merged.max(), histogram.max());
    }

    /// Bytes that are no histogram are rejected.
    #[test]
    fn garbage_is_rejected() {
        let err = add_serialized(&mut new_histogram(), &[1, 2, 3]).unwrap_err();
        assert!(err.starts_with("does not decode"), "{err}");
    }
}
