//! The results file's end-to-end section, between markers that `make perf` replaces in place.

use std::path::Path;

use anyhow::Context as _;

use super::{PerfResults, UsageByProcess};
use crate::env::AutoscalerKind;

const START: &str = "<!-- e2e-performance: written by `make perf` (e2e perf); bench/ec2_bench.py keeps it -->";
const END: &str = "<!-- /e2e-performance -->";

/// The markers around `kind`'s section: the project's autoscaler keeps the original ones.
fn markers(kind: AutoscalerKind) -> (String, String) {
    match kind {
        AutoscalerKind::Spotbench => (START.to_owned(), END.to_owned()),
        other => (
            format!(
                "<!-- e2e-performance-{other}: written by `make perf AUTOSCALER={other}` (e2e perf --autoscaler {other}) -->"
            ),
            format!("<!-- /e2e-performance-{other} -->"),
        ),
    }
}

/// Replaces (or appends) `kind`'s end-to-end section of the results file, leaving the rest alone.
pub(super) fn write_section(path: &Path, kind: AutoscalerKind, section: &str) -> anyhow::Result<()> {
    let (start, end) = markers(kind);
    let old = std::fs::read_to_string(path).unwrap_or_default();
    let block = format!("{start}\n{section}{end}\n");
    let new = match (old.find(&start), old.find(&end)) {
        (Some(a), Some(b)) if b > a => format!("{}{block}{}", &old[..a], old[b + end.len()..].trim_start_matches('\n')),
        _ => format!("{}\n\n{block}", old.trim_end()),
    };
    std::fs::write(path, new).with_context(|| format!("writing {}", path.display()))
}

/// The Markdown section.
pub fn render(r: &PerfResults) -> String {
    let mut s = String::new();
    let (title, who) = match r.autoscaler.as_str() {
        "karpenter" => (" with upstream Karpenter", "upstream Karpenter (the pinned release, a child process)"),
        _ => ("", "the project's autoscaler (its binary, a child process)"),
    };
    s.push_str(&format!("## End-to-end performance{title}\n\n"));
    s.push_str(&format!(
        "Measured {} on {} CPUs (git {}, {} build), each on a fresh local cluster (kwokctl binary runtime) with fake-ec2's default world on a ×{} clock and {who}. Real seconds are what you wait; world seconds are what EC2 would show. The floor a node cannot beat is fake-ec2's boot plus registration: {:.0} world s ({:.1} real s). Raw numbers: `bench/{}`.\n\n",
        r.measured_at,
        r.cpus,
        r.git,
        r.profile,
        r.clock_factor,
        r.node_floor_world_s,
        r.node_floor_world_s / r.clock_factor,
        super::json_name(if r.autoscaler == "karpenter" { AutoscalerKind::Karpenter } else { AutoscalerKind::Spotbench }),
    ));
    if !r.scale_up.is_empty() {
        s.push_str("Pods pending to all Running. *inflate*: one Deployment (512m / 512Mi) on NodePool `spot`; *mix*: fixtures/workloads/scale-mix.yaml scaled to the row's size (four Deployments: zone spread, a spot / on-demand split, anti-affinity) on fixtures/nodepools/scale.yaml.\n\n");
        s.push_str("| workload | pods | all pods created | first NodeClaim | all NodeClaims Ready | all Running | all Running (world) | ÷ floor (world) | NodeClaims | nodes | fleet $/h |\n");
        s.push_str("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
        for u in &r.scale_up {
            s.push_str(&format!(
                "| {} | {} | {:.1} s | {:.1} s | {:.1} s | **{:.1} s** | {:.0} s | {:.1}× | {} | {} | {:.3} |\n",
                u.workload,
                u.pods,
                u.all_pods_created_s,
                u.first_nodeclaim_s,
                u.nodes_ready_s,
                u.all_running_s,
                u.all_running_world_s,
                u.all_running_world_s / r.node_floor_world_s,
                u.nodeclaims,
                u.nodes,
                u.fleet_cost_per_hour
            ));
        }
        s.push_str(
            "\n*All pods created* is the control plane's pace, not the autoscaler's: kube-controller-manager creates a Deployment's pods at its client's rate limit (500 requests/s here, set in e2e/k8s/cluster.sh; the default 20/s made 1,000 pods take 50 s); the autoscaler batches them as they come (1 s idle, 10 s at most). *÷ floor* is all Running in world seconds over one node's boot and registration.\n\n",
        );
    }
    if let Some(largest) = r.scale_up.iter().filter(|u| !u.progress.is_empty()).max_by_key(|u| u.pods) {
        s.push_str(&stage_table(largest, r.cpus));
    }
    if let Some(i) = &r.interruption {
        s.push_str(&format!(
            "Spot interruption (one node running 3 pods; NodePool `spot`; the warning gives {:.0} world s):\n\n| | real | world | margin before the reclaim (world) |\n|---|---:|---:|---:|\n| notice → replacement node Ready | {:.1} s | {:.0} s | {:.0} s |\n| notice → every pod Running on the replacement | {:.1} s | {:.0} s | {:.0} s |\n\n",
            i.notice_world_s,
            i.replacement_ready_s,
            i.replacement_ready_world_s,
            i.notice_world_s - i.replacement_ready_world_s,
            i.pods_moved_s,
            i.pods_moved_world_s,
            i.notice_world_s - i.pods_moved_world_s,
        ));
    }
    if let Some(m) = &r.mass_interruption {
        s.push_str(&format!(
            "Mass interruption: a FIS experiment (fixtures/fis/spot-interrupt-10-percent.json) warns {} of {} spot nodes at once, each running one pod (required anti-affinity); the fleet took {:.0} s to be all Running before it{}, and when the experiment started {} Nodes were Ready and {} more were still registering. The warning gives {:.0} world s.\n\n| | real | world |\n|---|---:|---:|\n| experiment → every replacement node Ready | {:.1} s | {:.0} s |\n| experiment → every pod Running, none on a warned node | {:.1} s | {:.0} s |\n| pods not Running, at most | {} | |\n| pods not Running × time | {:.0} pod·s | {:.0} pod·s |\n| Nodes Ready at the start, not warned, seen not Ready (kwok's heartbeats falling behind) | {} | |\n\n",
            m.interrupted,
            m.nodes,
            m.fleet_ready_s,
            settled(m),
            m.nodes_ready_at_start,
            m.nodes_registering_at_start,
            m.notice_world_s,
            m.replacements_ready_s,
            m.replacements_ready_world_s,
            m.pods_running_s,
            m.pods_running_world_s,
            m.peak_pending,
            m.pending_pod_s,
            m.pending_pod_world_s,
            m.bystanders_not_ready,
        ));
    }
    if !r.carried.is_empty() {
        s.push_str(&format!(
            "Not measured by this run, kept from earlier ones (measurement: run): {}.\n\n",
            r.carried.join("; ")
        ));
    }
    s.push_str(&super::peer::render(r));
    let measured: Vec<(String, &UsageByProcess)> = r
        .scale_up
        .iter()
        .map(|u| (format!("{} {}", u.workload, u.pods), &u.usage))
        .chain(r.mass_interruption.iter().map(|m| (format!("mass interruption ({} nodes)", m.nodes), &m.usage)))
        .filter(|(_, u)| !u.is_empty())
        .collect();
    if !measured.is_empty() {
        s.push_str(&usage_table(&measured));
    }
    if let Some(total) = r.suite_wall_s {
        s.push_str(&format!(
            "Scenario suite (`make e2e`, {} scenarios one after another, cluster start-up included): **{:.0} s** wall time{}.\n\n| scenario | outcome | wall |\n|---|---|---:|\n",
            r.suite.len(),
            total,
            r.suite_from.as_ref().map(|f| format!(" (from the run of {f}: this run skipped the suite)")).unwrap_or_default()
        ));
        for t in &r.suite {
            s.push_str(&format!("| {} | {} | {:.1} s |\n", t.name, t.status, t.wall_s));
        }
        s.push('\n');
    }
    s
}

/// Where the pods of a scale-up waited, every 15 real seconds, and whether the machine was the limit.
fn stage_table(u: &super::ScaleUp, cpus: usize) -> String {
    let mut s = format!(
        "Where the pods of the {} {} row waited (sampled every 5 s, shown every 15 s): *no node yet* are pods that exist but are not bound (the autoscaler's NodeClaims are not Ready yet, or kube-scheduler has not placed them); *bound, not Running* are pods kwok has not started yet.\n\n| real s | pods exist | no node yet | bound, not Running | Running | NodeClaims | NodeClaims Ready |\n|---:|---:|---:|---:|---:|---:|---:|\n",
        u.workload, u.pods
    );
    for p in u.progress.iter().skip(super::scale::SHOWN_EVERY - 1).step_by(super::scale::SHOWN_EVERY) {
        s.push_str(&format!(
            "| {:.0} | {} | {} | {} | {} | {} | {} |\n",
            p.t_s,
            p.pods,
            p.pods.saturating_sub(p.bound),
            p.bound.saturating_sub(p.running),
            p.running,
            p.nodeclaims,
            p.nodeclaims_ready
        ));
    }
    s.push_str(&format!("| {:.0} | {} | 0 | 0 | {} | {} | |\n\n", u.all_running_s, u.pods, u.pods, u.nodeclaims));
    let used: f64 = u.usage.values().map(|p| p.cpu_s).sum();
    if used > 0.0 {
        #[allow(clippy::cast_precision_loss)]
        let available = u.all_running_s * cpus as f64;
        s.push_str(&format!(
            "Over those {:.0} s the measured processes used {:.0} of the machine's {:.0} CPU seconds ({} CPUs): {}.\n\n",
            u.all_running_s,
            used,
            available,
            cpus,
            cpu_ranking(&u.usage)
        ));
    }
    s
}

/// The processes by CPU seconds, most first.
fn cpu_ranking(usage: &UsageByProcess) -> String {
    let mut by_cpu: Vec<(&String, f64)> = usage.iter().map(|(name, u)| (name, u.cpu_s)).collect();
    by_cpu.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(b.0)));
    by_cpu.iter().map(|(name, cpu)| format!("{name} {cpu:.0}")).collect::<Vec<_>>().join(", ")
}

/// Peak RSS and CPU seconds per process and measurement (a column per process seen in any).
fn usage_table(rows: &[(String, &UsageByProcess)]) -> String {
    let processes: std::collections::BTreeSet<&String> = rows.iter().flat_map(|(_, u)| u.keys()).collect();
    let mut s = String::from(
        "Peak memory (RSS) and CPU time of each process during each measurement (from the apply, or the experiment, until all pods Running), sampled from /proc every 250 ms:\n\n| measurement |",
    );
    for p in &processes {
        s.push_str(&format!(" {p} |"));
    }
    s.push_str("\n|---|");
    s.push_str(&"---:|".repeat(processes.len()));
    s.push('\n');
    for (name, usage) in rows {
        s.push_str(&format!("| {name} |"));
        for p in &processes {
            match usage.get(*p) {
                Some(u) => s.push_str(&format!(" {:.0} MiB, {:.1} s |", u.peak_rss_mib, u.cpu_s)),
                None => s.push_str(" |"),
            }
        }
        s.push('\n');
    }
    s.push('\n');
    s
}

/// When the fleet had every Node Ready too (older results did not wait for it).
fn settled(m: &super::MassInterruption) -> String {
    if m.fleet_settled_s > m.fleet_ready_s {
        format!(" and {:.0} s to have every Node Ready as well", m.fleet_settled_s)
    } else {
        String::new()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_section_is_replaced_in_place_and_the_rest_kept() {
        let dir = std::env::temp_dir().join(format!("perf-section-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("results.md");
        std::fs::write(&path, "# results\n\ntable\n").unwrap();
        write_section(&path, AutoscalerKind::Spotbench, "first\n").unwrap();
        write_section(&path, AutoscalerKind::Spotbench, "second\n").unwrap();
        write_section(&path, AutoscalerKind::Karpenter, "theirs\n").unwrap();
        write_section(&path, AutoscalerKind::Karpenter, "theirs again\n").unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.starts_with("# results\n\ntable\n"), "{text}");
        assert!(text.contains("second\n") && !text.contains("first\n"), "{text}");
        assert!(text.contains("theirs again\n") && !text.contains("theirs\n"), "{text}");
        assert_eq!(text.matches(START).count(), 1);
        assert_eq!(text.matches(&markers(AutoscalerKind::Karpenter).0).count(), 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn render_names_every_measurement() {
        use super::super::{Interruption, MassInterruption, Progress, ScaleUp, ScenarioTime, Usage, Workload};
        let usage: UsageByProcess = [
            ("autoscaler".to_owned(), Usage { peak_rss_mib: 80.4, cpu_s: 12.25 }),
            ("etcd".to_owned(), Usage { peak_rss_mib: 140.0, cpu_s: 3.0 }),
        ]
        .into_iter()
        .collect();
        let r = PerfResults {
            cpus: 2,
            clock_factor: 10.0,
            node_floor_world_s: 25.0,
            scale_up: vec![ScaleUp {
                workload: Workload::Mix,
                pods: 10_000,
                all_pods_created_s: 0.5,
                first_nodeclaim_s: 1.5,
                nodes_ready_s: 5.0,
                all_running_s: 6.0,
                all_running_world_s: 60.0,
                nodeclaims: 1,
                nodes: 1,
                fleet_cost_per_hour: 0.1,
                usage: usage.clone(),
                progress: (1..=3)
                    .map(|i| Progress {
                        t_s: 5.0 * f64::from(i),
                        pods: 10_000,
                        bound: 4_000,
                        running: 3_000,
                        nodeclaims: 90,
                        nodeclaims_ready: 80,
                    })
                    .collect(),
                peer: None,
            }],
            interruption: Some(Interruption {
                notice_world_s: 120.0,
                replacement_ready_world_s: 40.0,
                replacement_ready_s: 4.0,
                pods_moved_world_s: 50.0,
                pods_moved_s: 5.0,
                peer: None,
            }),
            mass_interruption: Some(MassInterruption {
                nodes: 500,
                fleet_ready_s: 90.0,
                fleet_settled_s: 95.0,
                nodes_ready_at_start: 500,
                nodes_registering_at_start: 0,
                interrupted: 50,
                notice_world_s: 120.0,
                replacements_ready_s: 7.5,
                replacements_ready_world_s: 75.0,
                pods_running_s: 9.0,
                pods_running_world_s: 90.0,
                peak_pending: 3,
                pending_pod_s: 4.0,
                pending_pod_world_s: 40.0,
                bystanders_not_ready: 0,
                usage: UsageByProcess::new(),
                peer: None,
            }),
            suite: vec![ScenarioTime { name: "spot-scale-up".into(), status: "passed".into(), wall_s: 20.0 }],
            suite_wall_s: Some(20.0),
            ..PerfResults::default()
        };
        let md = render(&r);
        assert!(
            md.contains("| mix | 10000 | 0.5 s | 1.5 s | 5.0 s | **6.0 s** | 60 s | 2.4× | 1 | 1 | 0.100 |"),
            "{md}"
        );
        assert!(md.contains("| notice → replacement node Ready | 4.0 s | 40 s | 80 s |"), "{md}");
        assert!(md.contains("warns 50 of 500 spot nodes"), "{md}");
        assert!(md.contains("all Running before it and 95 s to have every Node Ready as well"), "{md}");
        assert!(!md.contains("Against "), "no peer, no A/B table: {md}");
        assert!(md.contains("| experiment → every replacement node Ready | 7.5 s | 75 s |"), "{md}");
        assert!(md.contains("| measurement | autoscaler | etcd |"), "{md}");
        assert!(md.contains("| mix 10000 | 80 MiB, 12.2 s | 140 MiB, 3.0 s |"), "{md}");
        assert!(!md.contains("| mass interruption (500 nodes) |"), "no usage measured, no row: {md}");
        assert!(md.contains("**20 s** wall time"), "{md}");
        assert!(md.contains("| 15 | 10000 | 6000 | 1000 | 3000 | 90 | 80 |"), "the third sample is shown: {md}");
        assert!(!md.contains("| 5 | 10000 |"), "only every third sample is shown: {md}");
        assert!(md.contains("| 6 | 10000 | 0 | 0 | 10000 | 1 | |"), "the end: {md}");
        assert!(md.contains("used 15 of the machine's 12 CPU seconds (2 CPUs)"), "{md}");
        assert!(md.contains(": autoscaler 12, etcd 3."), "{md}");
    }

    #[test]
    fn a_partial_run_keeps_what_it_did_not_measure_and_names_its_run() {
        use super::super::{ScaleUp, Workload};
        let row = |workload, pods, s| ScaleUp { workload, pods, all_running_s: s, ..ScaleUp::default() };
        let older = PerfResults {
            autoscaler: "spotbench".into(),
            measured_at: "T1".into(),
            git: "aaa".into(),
            scale_up: vec![row(Workload::Inflate, 10, 5.0), row(Workload::Mix, 10_000, 150.0)],
            suite_wall_s: Some(400.0),
            ..PerfResults::default()
        };
        let mut newer = PerfResults {
            measured_at: "T2".into(),
            git: "bbb".into(),
            scale_up: vec![row(Workload::Mix, 10_000, 120.0)],
            ..PerfResults::default()
        };
        newer.carry_from(older);
        let rows: Vec<(Workload, u32, f64)> =
            newer.scale_up.iter().map(|r| (r.workload, r.pods, r.all_running_s)).collect();
        assert_eq!(rows, vec![(Workload::Inflate, 10, 5.0), (Workload::Mix, 10_000, 120.0)]);
        assert_eq!(newer.carried, vec!["inflate 10: T1 at aaa".to_owned()]);
        assert_eq!((newer.suite_wall_s, newer.suite_from.as_deref()), (Some(400.0), Some("T1 at aaa")));
        let md = render(&newer);
        assert!(md.contains("kept from earlier ones (measurement: run): inflate 10: T1 at aaa."), "{md}");
        // Carried again, it keeps the name of the run that measured it.
        let mut newest = PerfResults { measured_at: "T3".into(), git: "ccc".into(), ..PerfResults::default() };
        newest.carry_from(newer);
        assert!(newest.carried.contains(&"inflate 10: T1 at aaa".to_owned()), "{:?}", newest.carried);
        assert!(newest.carried.contains(&"mix 10000: T2 at bbb".to_owned()), "{:?}", newest.carried);
    }
}
