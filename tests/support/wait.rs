//! Polling with a deadline: every wait in a test has a timeout and says what it waited for.

use std::future::Future;
use std::time::Duration;

/// Polls `check` every 100 ms until it returns `Ok(Some(v))`, then returns `v`. Fails after
/// `timeout` with `what` and the last error or "still not true".
pub async fn wait_until<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<Option<T>>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let last = match check().await {
            Ok(Some(v)) => return Ok(v),
            Ok(None) => "still not true".to_string(),
            Err(e) => format!("last error: {e:#}"),
        };
        if tokio::time::Instant::now() >= deadline {
            anyhow::bail!("timed out after {timeout:?} waiting for {what} ({last})");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
