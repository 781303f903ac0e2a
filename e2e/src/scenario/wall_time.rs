//! `e2e run --wall-time-to FILE`: one row per `--jobs` value in a section of a Markdown file
//! (bench/results.md), so the suite's wall time at 1 and 2 jobs is written by the runs that
//! measured it, with the project's autoscaler. A new row replaces the one with the same jobs; the
//! others stay.

use std::path::Path;

use anyhow::Context as _;

const START: &str =
    "<!-- suite-wall-time: written by `e2e run --wall-time-to` (make e2e JOBS=N WALL_TIME=bench/results.md) -->";
const END: &str = "<!-- /suite-wall-time -->";

/// One measured run.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    pub jobs: usize,
    pub scenarios: usize,
    pub passed: usize,
    pub wall_s: f64,
    /// The scenarios' own times added up (what one job would take without waiting).
    pub sum_s: f64,
    pub cpus: usize,
    /// The 1-minute load average when the run began and when it ended (others' work included).
    pub load: (f64, f64),
    pub git: String,
    pub at: String,
}

impl Row {
    fn line(&self) -> String {
        format!(
            "| {} | {} | {} | **{:.0} s** | {:.0} s | {} | {:.1} → {:.1} | {} | {} |",
            self.jobs,
            self.scenarios,
            self.passed,
            self.wall_s,
            self.sum_s,
            self.cpus,
            self.load.0,
            self.load.1,
            self.git,
            self.at
        )
    }
}

/// The 1-minute load average (Linux), 0 where unknown.
pub fn load_average() -> f64 {
    std::fs::read_to_string("/proc/loadavg").ok().and_then(|s| s.split_whitespace().next()?.parse().ok()).unwrap_or(0.0)
}

/// `old` (a whole Markdown file) with the section holding `row` and the other rows it had.
pub fn merge(old: &str, row: &Row) -> String {
    let (before, section, after) = match (old.find(START), old.find(END)) {
        (Some(a), Some(b)) if b > a => (&old[..a], &old[a..b], &old[b + END.len()..]),
        _ => (old.trim_end(), "", ""),
    };
    let job_of = |l: &str| l.strip_prefix("| ")?.split(" |").next()?.trim().parse::<usize>().ok();
    let mut rows: Vec<(usize, String)> = section
        .lines()
        .filter_map(|l| Some((job_of(l)?, l.to_owned())))
        .filter(|(jobs, _)| *jobs != row.jobs)
        .collect();
    rows.push((row.jobs, row.line()));
    rows.sort_by_key(|(jobs, _)| *jobs);
    let mut s = format!("{START}\n## Scenario suite wall time by jobs\n\n");
    s.push_str(
        "`e2e run --jobs N`: the scenarios N at a time, each on its own local cluster (kwokctl binary runtime), \
         fake-ec2 and the project's autoscaler. *Sum* is the scenarios' own times added up (each includes its \
         wait for the machine-wide cluster-creation lock and the shared CPU). *Load* is the 1-minute load \
         average when the run began and ended: above the CPU count, other work shared the machine.\n\n",
    );
    s.push_str("| jobs | scenarios | passed | wall | sum | CPUs | load | git | measured |\n");
    s.push_str("|---:|---:|---:|---:|---:|---:|---|---|---|\n");
    for (_, line) in rows {
        s.push_str(&line);
        s.push('\n');
    }
    s.push_str(END);
    let sep = if before.is_empty() || before.ends_with("\n\n") {
        ""
    } else if before.ends_with('\n') {
        "\n"
    } else {
        "\n\n"
    };
    format!("{before}{sep}{s}\n{}", after.trim_start_matches('\n'))
}

/// Writes `row` into `path`'s section.
pub fn record(path: &Path, row: &Row) -> anyhow::Result<()> {
    let old = std::fs::read_to_string(path).unwrap_or_default();
    std::fs::write(path, merge(&old, row)).with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(jobs: usize, wall_s: f64) -> Row {
        Row {
            jobs,
            scenarios: 14,
            passed: 14,
            wall_s,
            sum_s: 380.0,
            cpus: 2,
            load: (1.0, 2.5),
            git: "abc1234".into(),
            at: "2026-12-04T22:00:00Z".into(),
        }
    }

    #[test]
    fn rows_are_kept_by_jobs_and_the_rest_of_the_file_stays() {
        let doc = "# Results\n\nintro\n";
        let one = merge(doc, &row(2, 250.0));
        assert!(one.starts_with("# Results\n\nintro\n\n<!-- suite-wall-time"), "{one}");
        let two = merge(&format!("{one}\n## Later\n"), &row(1, 400.0));
        let three = merge(&two, &row(2, 240.0));
        let rows: Vec<&str> = three.lines().filter(|l| l.starts_with("| 1") || l.starts_with("| 2")).collect();
        assert_eq!(rows.len(), 2, "{three}");
        assert!(rows[0].starts_with("| 1 | 14 | 14 | **400 s** | 380 s | 2 | 1.0 → 2.5 |"), "{}", rows[0]);
        assert!(rows[1].contains("**240 s**"), "{}", rows[1]);
        assert!(three.ends_with("<!-- /suite-wall-time -->\n## Later\n"), "{three}");
        assert_eq!(three.matches("## Scenario suite wall time by jobs").count(), 1);
    }
}
