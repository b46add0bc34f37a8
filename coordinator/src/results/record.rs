//! `run.json` kept in memory and rewritten on every change.

use std::sync::{Arc, Mutex};

use tracing::warn;

use super::run_info::{PeerEvent, RunInfo};
use super::{ResultsDir, ResultsError};

/// The run's `RunInfo`, shared by the run loop and the monitor task, which
/// records the monitor's losses while a group runs.
pub struct RunRecord {
    results: Arc<ResultsDir>,
    /// Guards the info and the file together: a writer holds the lock
    /// until its rename is done, so an older state never replaces a newer
    /// one on disk.
    info: Mutex<RunInfo>,
}

impl RunRecord {
    /// Writes `info` as the folder's first `run.json`.
    pub fn create(results: Arc<ResultsDir>, info: RunInfo) -> Result<Self, ResultsError> {
        results.write_run_info(&info)?;
        Ok(RunRecord {
            results,
            info: Mutex::new(info),
        })
    }

    /// Applies `change` and rewrites `run.json`. The change stays in memory
    /// when the write fails, so the next successful write includes it.
    pub fn update<T>(&self, change: impl FnOnce(&mut RunInfo) -> T) -> Result<T, ResultsError> {
        let mut info = self
            .info
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let value = change(&mut info);
        self.results.write_run_info(&info)?;
        Ok(value)
    }

    /// Appends a peer event and rewrites `run.json`, logging a failed write
    /// because the run goes on without it.
    pub fn add_peer_event(&self, event: PeerEvent) {
        let peer = event.peer.clone();
        if let Err(err) = self.update(|info| info.peer_events.push(event)) {
            warn!(%peer, %err, "failed to record a peer event in run.json");
        }
    }
}
