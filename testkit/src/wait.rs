//! Waiting on a condition with a timeout, never on a sleep.

use std::time::Duration;

/// How often conditions are polled.
const POLL: Duration = Duration::from_millis(20);

/// Polls `f` until it returns `Some`; panics naming `what` after `timeout`.
pub async fn until_some<T, F, Fut>(what: &str, timeout: Duration, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(tokio::time::Instant::now() < deadline, "timed out after {timeout:?} waiting for {what}");
        tokio::time::sleep(POLL).await;
    }
}

/// Polls `cond` until it holds; panics naming `what` after `timeout`.
pub async fn until<F, Fut>(what: &str, timeout: Duration, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    until_some(what, timeout, || {
        let ready = cond();
        async move { ready.await.then_some(()) }
    })
    .await;
}
