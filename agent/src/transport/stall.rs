//! The stall bound on socket reads that both TCP framings share: the c2s
//! transport and the XEP-0114 component stream.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

use crate::error::BotError;

/// Awaits one socket read. While `buffered` bytes of an unfinished stanza
/// wait in the splitter, the read must return within `stall_timeout` of
/// `last_bytes_at`, the time of the last read that returned bytes. Between
/// stanzas the read is unbounded, because a quiet stream is normal.
pub(crate) async fn read_within_stall_bound(
    read: impl Future<Output = std::io::Result<usize>>,
    buffered: usize,
    last_bytes_at: Instant,
    stall_timeout: Duration,
) -> Result<usize, BotError> {
    if buffered == 0 {
        return Ok(read.await?);
    }
    tokio::time::timeout_at(last_bytes_at + stall_timeout, read)
        .await
        .map_err(|_| BotError::Stalled {
            after: stall_timeout,
            buffered,
        })?
        .map_err(BotError::from)
}
