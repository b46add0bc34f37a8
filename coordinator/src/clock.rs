//! Clock offset of a peer, estimated from round trips.
//!
//! For each round trip the coordinator notes its clock before (`t0`) and
//! after (`t1`) asking the peer for its clock (`p`). If the request and the
//! response took equally long, the peer read its clock at `(t0 + t1) / 2`, so
//! the offset is `p - (t0 + t1) / 2`; whatever the split, the true offset
//! lies within half the round trip of that. The round trip with the smallest
//! time gives the tightest bound, so only that one is kept.

use std::future::Future;

use xmppload_proto::unix_micros_now;

/// Peer clock minus coordinator clock.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClockOffset {
    pub offset_micros: i64,
    /// Half the best round trip, in microseconds.
    pub uncertainty_micros: i64,
}

impl ClockOffset {
    /// Converts a peer timestamp to the coordinator's clock.
    pub fn to_local(&self, peer_unix_micros: i64) -> i64 {
        peer_unix_micros - self.offset_micros
    }

    /// Converts a coordinator timestamp to the peer's clock.
    pub fn to_peer(&self, local_unix_micros: i64) -> i64 {
        local_unix_micros + self.offset_micros
    }
}

/// Estimates the offset from `rounds` calls of `read_peer_clock`, keeping the
/// one with the shortest round trip. Fails only if every call fails.
pub async fn estimate<F, Fut, E>(rounds: usize, mut read_peer_clock: F) -> Result<ClockOffset, E>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<i64, E>>,
{
    let mut best: Option<(i64, ClockOffset)> = None;
    let mut last_error = None;

    for _ in 0..rounds.max(1) {
        let before = unix_micros_now();
        let peer = match read_peer_clock().await {
            Ok(peer) => peer,
            Err(err) => {
                last_error = Some(err);
                continue;
            }
        };
        let after = unix_micros_now();

        let round_trip = (after - before).max(0);
        let sample = ClockOffset {
            offset_micros: peer - (before + after) / 2,
            uncertainty_micros: (round_trip + 1) / 2,
        };
        if best.is_none_or(|(best_trip, _)| round_trip < best_trip) {
            best = Some((round_trip, sample));
        }
    }

    match (best, last_error) {
        (Some((_, offset)), _) => Ok(offset),
        (None, Some(err)) => Err(err),
        (None, None) => unreachable!("at least one round runs"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::convert::Infallible;

    /// A peer whose clock runs a known amount ahead is measured within the stated bound.
    #[tokio::test]
    async fn known_offset_is_found_within_bound() {
        const AHEAD: i64 = 3_600_000_000;
        let offset = estimate(5, || async {
            Ok::<_, Infallible>(unix_micros_now() + AHEAD)
        })
        .await
        .unwrap();
        assert!(
            (offset.offset_micros - AHEAD).abs() <= offset.uncertainty_micros + 1,
            "{offset:?}"
        );
        assert!(offset.uncertainty_micros < 50_000, "{offset:?}");
        assert_eq!(offset.to_local(offset.to_peer(42)), 42);
    }

    /// The shortest round trip wins over slower ones.
    #[tokio::test]
    async fn shortest_round_trip_is_kept() {
        let mut call = 0;
        let offset = estimate(3, || {
            call += 1;
            let delay = if call == 2 { 0 } else { 30 };
            async move {
                tokio::time::sleep(std::time::Duration::from_millis(delay)).await;
                Ok::<_, Infallible>(unix_micros_now())
            }
        })
        .await
        .unwrap();
        assert!(offset.uncertainty_micros < 15_000, "{offset:?}");
    }

    /// When every round fails, the last error comes back.
    #[tokio::test]
    async fn all_failures_return_error() {
        let result = estimate(3, || async { Err::<i64, _>("unreachable") }).await;
        assert_eq!(result, Err("unreachable"));
    }
}
