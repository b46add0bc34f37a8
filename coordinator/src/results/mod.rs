//! The results folder of one run, written as the run goes.
//!
//! Every CSV row is flushed when written, so a run that is killed still
//! leaves its data behind; the layout is documented in `results/README.md`.

mod record;
pub mod run_info;
mod writer;

pub use record::RunRecord;
pub use writer::{
    BOTS_HEADER, CLOCK_HEADER, LATENCY_HEADER, MONITOR_HEADER, PHASES_HEADER, ROUND_TRIPS_HEADER,
    ResultsDir, ResultsError, SCHEDULE_LAG_HEADER,
};
