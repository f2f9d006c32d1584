//! Stopping long-running work: one signal every task watches.

use tokio::sync::watch;

/// Tells long-running work to stop: becomes `true` once.
pub type Shutdown = watch::Receiver<bool>;

/// Resolves when `shutdown` turns true (or its sender is gone).
pub async fn stopped(shutdown: &mut Shutdown) {
    let _ = shutdown.wait_for(|stop| *stop).await;
}
