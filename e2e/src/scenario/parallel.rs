//! `e2e run --jobs N`: scenarios N at a time, each on its own cluster (names and ports never
//! collide: `cluster.sh` leases the control plane's ports, [`crate::ports`] the autoscaler's).
//!
//! Each job is a thread with its own tokio runtime: starting and deleting a local cluster blocks
//! its thread for seconds (`cluster.sh`), which on one shared runtime would stall the other
//! scenarios' fake-ec2 and autoscaler. A scenario's lines are printed together when it ends
//! ([`crate::output::grouped`]), with one line when it starts: a CI log is read after the fact,
//! usually from a failure, and a failing scenario's steps then read in one piece, as with one job.
//! Every line keeps its `[scenario]` prefix, so grepping a name still works.

use std::future::Future;
use std::io::Write as _;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};

use tracing::Instrument as _;

use crate::output;

/// Runs `work(i)` for every `i` in `0..count`, `jobs` at a time, each in its own group of output
/// (`label(i)` names it). Results come back in index order, whatever the order they finish in.
/// Blocks the calling thread until all are done.
pub fn run<R, F, Fut>(
    count: usize,
    jobs: usize,
    label: impl Fn(usize) -> String + Sync,
    work: F,
) -> anyhow::Result<Vec<R>>
where
    R: Send,
    F: Fn(usize) -> Fut + Sync,
    Fut: Future<Output = R>,
{
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<R>>> = Mutex::new((0..count).map(|_| None).collect());
    let jobs = jobs.clamp(1, count.max(1));
    let job = |j: usize| -> std::io::Result<()> {
        let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
        loop {
            let i = next.fetch_add(1, Ordering::SeqCst);
            if i >= count {
                return Ok(());
            }
            let name = label(i);
            println!("[{name}] started ({}/{count}, job {}/{jobs}); its lines follow when it ends", i + 1, j + 1);
            let span = tracing::info_span!("scenario", name = %name);
            let (result, lines) = rt.block_on(output::grouped(work(i)).instrument(span));
            let mut stdout = std::io::stdout().lock();
            for line in &lines {
                let _ = writeln!(stdout, "{line}");
            }
            let _ = stdout.flush();
            drop(stdout);
            results.lock().unwrap_or_else(PoisonError::into_inner)[i] = Some(result);
        }
    };
    let outcomes: Vec<std::io::Result<()>> = std::thread::scope(|scope| {
        let job = &job;
        let handles: Vec<_> = (0..jobs).map(|j| scope.spawn(move || job(j))).collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| Err(std::io::Error::other("a job's thread panicked"))))
            .collect()
    });
    let results = results.into_inner().unwrap_or_else(PoisonError::into_inner);
    if results.iter().any(Option::is_none) {
        let why = outcomes.into_iter().find_map(Result::err).map(|e| e.to_string()).unwrap_or_default();
        anyhow::bail!("not every scenario ran: {why}");
    }
    Ok(results.into_iter().flatten().collect())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::time::Duration;

    use super::*;

    #[test]
    fn results_keep_the_items_order_and_at_most_jobs_run_at_once() {
        let running = AtomicUsize::new(0);
        let most = AtomicUsize::new(0);
        let out = run(
            6,
            2,
            |i| format!("s{i}"),
            |i| {
                let (running, most) = (&running, &most);
                async move {
                    let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(now, Ordering::SeqCst);
                    crate::say!("[s{i}] working");
                    // The first waits for a second to run beside it (a bounded wait on that condition).
                    let t0 = std::time::Instant::now();
                    while i == 0 && running.load(Ordering::SeqCst) < 2 && t0.elapsed() < Duration::from_secs(10) {
                        tokio::time::sleep(Duration::from_millis(1)).await;
                    }
                    // Earlier items take longer, so they finish after later ones.
                    tokio::time::sleep(Duration::from_millis(60 - 10 * i as u64)).await;
                    running.fetch_sub(1, Ordering::SeqCst);
                    (i * 10, output::buffering())
                }
            },
        )
        .unwrap();
        assert_eq!(out.iter().map(|(n, _)| *n).collect::<Vec<_>>(), [0, 10, 20, 30, 40, 50]);
        assert!(out.iter().all(|(_, buffered)| *buffered), "every item's lines are grouped");
        assert_eq!(most.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn more_jobs_than_items_and_no_items_are_fine() {
        assert_eq!(run(2, 8, |i| i.to_string(), |i| async move { i }).unwrap(), [0, 1]);
        assert!(run(0, 2, |i| i.to_string(), |i| async move { i }).unwrap().is_empty());
    }
}
