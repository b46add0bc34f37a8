//! Coordinator of a distributed XMPP load test.
//!
//! A run goes through these steps:
//! 1. [`scenario`] reads and validates the TOML scenario before anything starts.
//! 2. [`peers`] connects to the bot agents and the monitor agent, checks their
//!    protocol version and estimates each one's clock offset ([`clock`]).
//! 3. [`run`] starts the monitor stream, then walks the timeline: waits, and
//!    bot groups split over the agents, each streamed back second by second.
//! 4. [`results`] appends everything to `results/NN/` as it arrives, and at
//!    the end [`report`] and [`plot`] turn those files into `report.md` and
//!    the graphs.
//! 5. [`metrics`] keeps the latest values for Prometheus while the run goes,
//!    when `--metrics-listen` is given.
//!
//! [`ca`] makes the certificates for TLS between the coordinator and its
//! agents (`coordinator ca`).

pub mod ca;
pub mod clock;
pub mod histogram;
pub mod metrics;
pub mod peers;
pub mod plot;
pub mod progress;
pub mod report;
pub mod results;
pub mod run;
pub mod scenario;
