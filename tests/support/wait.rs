//! Waiting for a condition in a test: polled, with a deadline, never a bare sleep.

use std::time::{Duration, Instant};

/// How long a condition may take before the test fails.
pub const DEADLINE: Duration = Duration::from_secs(20);

/// Polls `condition` until it holds; fails naming `what` after [`DEADLINE`].
pub async fn eventually(what: &str, mut condition: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + DEADLINE;
    while !condition().await {
        assert!(
            Instant::now() < deadline,
            "{what}: not within {} s",
            DEADLINE.as_secs()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
