//! Peak memory and CPU time of each process of a measured run, read from /proc: the harness with
//! fake-ec2 (one process), the autoscaler under test (its own process in `e2e perf`) and the
//! local cluster's components (their pid files). Sampled every 250 ms while a measurement runs;
//! CPU is the difference of user + system time between the first and the last sample.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use tokio::task::JoinHandle;

const EVERY: Duration = Duration::from_millis(250);

/// One process's use over a measurement.
#[derive(Clone, Debug, Default, PartialEq, Serialize, serde::Deserialize)]
pub struct Usage {
    pub peak_rss_mib: f64,
    pub cpu_s: f64,
}

/// Samples named processes until [`Sampler::finish`].
pub struct Sampler {
    processes: Vec<(String, u32)>,
    state: Arc<Mutex<BTreeMap<String, Track>>>,
    task: JoinHandle<()>,
}

#[derive(Clone, Copy, Debug, Default)]
struct Track {
    first_ticks: Option<u64>,
    last_ticks: u64,
    peak_rss_kib: u64,
}

impl Sampler {
    /// Starts sampling `processes` (name, pid); a process that has gone is simply no longer sampled.
    pub fn start(processes: Vec<(String, u32)>) -> Sampler {
        let state: Arc<Mutex<BTreeMap<String, Track>>> = Arc::default();
        // The first sample now: CPU is counted from the start, not from the task's first turn.
        sample(&processes, &state);
        let (shared, watched) = (state.clone(), processes.clone());
        let task = tokio::spawn(async move {
            loop {
                tokio::time::sleep(EVERY).await;
                sample(&watched, &shared);
            }
        });
        Sampler { processes, state, task }
    }

    /// Takes a last sample and returns each process's use, by name.
    pub fn finish(self) -> BTreeMap<String, Usage> {
        self.task.abort();
        sample(&self.processes, &self.state);
        let ticks_per_s = clock_ticks_per_second();
        let tracks = self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        tracks
            .iter()
            .map(|(name, t)| {
                let used = t.last_ticks.saturating_sub(t.first_ticks.unwrap_or(t.last_ticks));
                (name.clone(), Usage { peak_rss_mib: t.peak_rss_kib as f64 / 1024.0, cpu_s: used as f64 / ticks_per_s })
            })
            .collect()
    }
}

fn sample(processes: &[(String, u32)], state: &Mutex<BTreeMap<String, Track>>) {
    let mut tracks = state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    for (name, pid) in processes {
        let Some((ticks, rss_kib)) = read_proc(*pid) else { continue };
        let t = tracks.entry(name.clone()).or_default();
        t.first_ticks.get_or_insert(ticks);
        t.last_ticks = ticks;
        t.peak_rss_kib = t.peak_rss_kib.max(rss_kib);
    }
}

/// (user + system clock ticks, resident KiB) of a live process.
fn read_proc(pid: u32) -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    Some((cpu_ticks(&stat)?, rss_kib(&status)?))
}

/// utime + stime (fields 14 and 15) of a /proc/<pid>/stat line; the command name (field 2) may
/// hold spaces and parentheses, so fields are counted after its last `)`.
fn cpu_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace().skip(11);
    Some(fields.next()?.parse::<u64>().ok()? + fields.next()?.parse::<u64>().ok()?)
}

fn rss_kib(status: &str) -> Option<u64> {
    status.lines().find_map(|l| l.strip_prefix("VmRSS:"))?.split_whitespace().next()?.parse().ok()
}

/// The kernel's USER_HZ (100 on every Linux this runs on; `getconf` says for sure).
fn clock_ticks_per_second() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse::<f64>().ok())
        .filter(|hz| *hz > 0.0)
        .unwrap_or(100.0)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn reads_cpu_ticks_past_a_command_name_with_spaces_and_parentheses() {
        let stat = "4242 (kube (api) server) S 1 4242 4242 0 -1 4194560 100 0 0 0 1234 567 0 0 20 0 9 0 100 0 0";
        assert_eq!(cpu_ticks(stat), Some(1801));
        assert_eq!(cpu_ticks("garbage"), None);
    }

    #[test]
    fn reads_resident_memory() {
        assert_eq!(rss_kib("Name:\tetcd\nVmPeak:\t 9 kB\nVmRSS:\t  140640 kB\n"), Some(140_640));
        assert_eq!(rss_kib("Name:\tetcd\n"), None);
    }

    #[tokio::test]
    async fn this_process_is_measured() {
        let sampler = Sampler::start(vec![("me".to_owned(), std::process::id())]);
        // Burn a little CPU so the difference is not zero.
        let mut x = 0u64;
        for i in 0..30_000_000u64 {
            x = x.wrapping_add(i * i);
        }
        std::hint::black_box(x);
        let used = sampler.finish();
        let me = used.get("me").unwrap();
        assert!(me.peak_rss_mib > 1.0, "{me:?}");
        assert!(me.cpu_s > 0.0, "{me:?}");
    }
}
