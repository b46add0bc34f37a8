//! Durations of one bot's connection steps, kept apart from the group's
//! statistics so that transports and the session only fill in a list.
//!
//! Each step is named by a short kind that ends up in the coordinator's
//! `round_trips.csv`: `tcp` (connect), `tls` (handshake of STARTTLS, direct
//! TLS or `wss://`), `websocket` (HTTP upgrade), `stream` (first stream
//! header to its features), `auth` (SASL), `bind` and `sm` (XEP-0198
//! enable). Only steps that succeed are recorded, so the count of a kind is
//! the number of bots that got past that step.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

use crate::group::round_trips::RoundTrips;

/// Connection steps of one bot in the order they ended.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct StepTimes {
    steps: Vec<(&'static str, Duration)>,
}

impl StepTimes {
    pub fn new() -> Self {
        Self::default()
    }

    /// Runs `step` and records its duration under `kind` if it succeeds.
    pub async fn time<T, E>(
        &mut self,
        kind: &'static str,
        step: impl Future<Output = Result<T, E>>,
    ) -> Result<T, E> {
        let started = Instant::now();
        let result = step.await;
        if result.is_ok() {
            self.steps.push((kind, started.elapsed()));
        }
        result
    }

    /// Kinds and durations recorded so far.
    pub fn steps(&self) -> &[(&'static str, Duration)] {
        &self.steps
    }

    /// Adds every recorded step to the group's round trips.
    pub fn record_into(&self, round_trips: &RoundTrips) {
        for (kind, elapsed) in &self.steps {
            round_trips.record(kind, *elapsed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A failed step is left out, and the others keep their order.
    #[tokio::test]
    async fn failed_steps_are_not_recorded() {
        let mut steps = StepTimes::new();
        let tcp: Result<(), ()> = steps
            .time("tcp", async {
                tokio::time::sleep(Duration::from_millis(3)).await;
                Ok(())
            })
            .await;
        assert!(tcp.is_ok());
        let tls: Result<(), &str> = steps.time("tls", async { Err("handshake") }).await;
        assert_eq!(tls, Err("handshake"));
        let _: Result<(), ()> = steps.time("stream", async { Ok(()) }).await;

        let kinds: Vec<&str> = steps.steps().iter().map(|(kind, _)| *kind).collect();
        assert_eq!(kinds, ["tcp", "stream"]);
        assert!(steps.steps()[0].1 >= Duration::from_millis(3));
    }
}
