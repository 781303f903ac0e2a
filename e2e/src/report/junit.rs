//! JUnit XML for CI systems: one testsuite, one testcase per scenario run (class
//! `scenarios.<autoscaler>`).

use crate::scenario::runner::{Outcome, Status};

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;").replace('\'', "&apos;")
}

pub fn render(outcomes: &[Outcome]) -> String {
    let failures = outcomes.iter().filter(|o| matches!(o.status, Status::Failed(_))).count();
    let skipped = outcomes.iter().filter(|o| matches!(o.status, Status::Skipped(_))).count();
    let time: f64 = outcomes.iter().map(|o| o.wall.as_secs_f64()).sum();
    let mut x = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    x.push_str(&format!(
        "<testsuites>\n  <testsuite name=\"spotbench-e2e\" tests=\"{}\" failures=\"{failures}\" skipped=\"{skipped}\" time=\"{time:.1}\">\n",
        outcomes.len()
    ));
    for o in outcomes {
        x.push_str(&format!(
            "    <testcase classname=\"scenarios.{}\" name=\"{}\" time=\"{:.1}\"",
            o.autoscaler,
            escape(&o.name),
            o.wall.as_secs_f64()
        ));
        match &o.status {
            Status::Passed => x.push_str("/>\n"),
            Status::Failed(m) => x.push_str(&format!(
                ">\n      <failure message=\"{}\">{}</failure>\n    </testcase>\n",
                escape(m.lines().next().unwrap_or("")),
                escape(m)
            )),
            Status::Skipped(m) => {
                x.push_str(&format!(">\n      <skipped message=\"{}\"/>\n    </testcase>\n", escape(m)))
            }
        }
    }
    x.push_str("  </testsuite>\n</testsuites>\n");
    x
}
