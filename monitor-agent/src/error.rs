//! Errors of the monitor library.

use crate::procfs::ProcfsError;

/// Failures that stop a sampler from starting or the server from running.
///
/// A watched process that is missing or unreadable is not an error: it
/// becomes a sample with `pid = 0` and `gap = true`.
#[derive(Debug, thiserror::Error)]
pub enum MonitorError {
    #[error("sysconf({name}) returned {value}; the kernel did not report a usable value")]
    Sysconf {
        name: &'static str,
        value: libc::c_long,
    },

    #[error("failed to read the open file limit: {0}")]
    FdLimit(#[source] std::io::Error),

    #[error("failed to read host CPU times: {0}; the monitor needs a mounted /proc")]
    HostCpu(#[source] ProcfsError),

    #[error("gRPC server failed: {0}")]
    Serve(#[from] tonic::transport::Error),
}
