//! Ctrl-C handling shared by the agent and monitor binaries.

use tokio_util::sync::CancellationToken;

/// Returns a token that is cancelled when the process receives Ctrl-C
/// (SIGINT), so a server can drain its streams before it exits.
pub fn cancel_on_ctrl_c() -> CancellationToken {
    let shutdown = CancellationToken::new();
    let on_signal = shutdown.clone();
    tokio::spawn(async move {
        match tokio::signal::ctrl_c().await {
            Ok(()) => {
                tracing::info!("Ctrl-C received; shutting down");
                on_signal.cancel();
            }
            // SIGINT then keeps its default action and ends the process.
            Err(err) => tracing::error!(%err, "failed to install the Ctrl-C handler"),
        }
    });
    shutdown
}
