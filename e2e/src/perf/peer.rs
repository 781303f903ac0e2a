//! The peer's figures beside the autoscaler under test's: each measurement run with both in the
//! same `e2e perf` (one right after the other, on the same machine), and the ratios between them.

use serde::{Deserialize, Serialize};

use super::{Interruption, MassInterruption, PerfResults, ScaleUp, UsageByProcess};

/// A measurement of the peer's, kept with the row it compares with (so a row carried into a
/// later results file keeps the peer of its own run).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Peer<T> {
    pub autoscaler: String,
    #[serde(flatten)]
    pub measured: T,
}

/// Gives each of `ours`'s measurements the peer's of the same kind and size.
pub(super) fn attach(ours: &mut PerfResults, peer: &PerfResults) {
    let name = || peer.autoscaler.clone();
    for row in &mut ours.scale_up {
        if let Some(p) = peer.scale_up.iter().find(|p| p.workload == row.workload && p.pods == row.pods) {
            // The stage samples stay in the peer's own file: the comparison needs the outcome.
            let measured = ScaleUp { progress: Vec::new(), peer: None, ..p.clone() };
            row.peer = Some(Box::new(Peer { autoscaler: name(), measured }));
        }
    }
    if let (Some(i), Some(p)) = (&mut ours.interruption, &peer.interruption) {
        i.peer = Some(Box::new(Peer { autoscaler: name(), measured: Interruption { peer: None, ..p.clone() } }));
    }
    if let (Some(m), Some(p)) = (&mut ours.mass_interruption, &peer.mass_interruption)
        && m.nodes == p.nodes
    {
        let measured = MassInterruption { peer: None, ..p.clone() };
        m.peer = Some(Box::new(Peer { autoscaler: name(), measured }));
    }
}

fn cpu_s(usage: &UsageByProcess) -> f64 {
    usage.values().map(|u| u.cpu_s).sum()
}

/// `ours ÷ theirs` as `0.78×` (`0.004×` below a tenth), or `–` when theirs is zero.
fn ratio(ours: f64, theirs: f64) -> String {
    match ours / theirs {
        _ if theirs <= 0.0 => "–".to_owned(),
        r if r < 0.1 => format!("{r:.3}×"),
        r => format!("{r:.2}×"),
    }
}

/// The peer as the tables name it.
fn display(autoscaler: &str) -> &str {
    match autoscaler {
        "karpenter" => "Karpenter",
        other => other,
    }
}

/// The A/B tables: empty when no measurement has a peer.
pub(super) fn render(r: &PerfResults) -> String {
    let mut s = String::new();
    let rows: Vec<(&ScaleUp, &Peer<ScaleUp>)> =
        r.scale_up.iter().filter_map(|u| u.peer.as_deref().map(|p| (u, p))).collect();
    if let Some((_, first)) = rows.first() {
        let them = display(&first.autoscaler);
        s.push_str(&format!(
            "Against {them} in the same run: each measurement above was made again with {them} right after ours, on a fresh cluster of the same machine (its own section below has its details). A ratio below 1 means ours took less. Each figure is one run of each: the small rows move by seconds between runs with kube-scheduler's back-off (it retries a pod it found unschedulable after 1, 2, 4, 8 s, so a node Ready just after a retry waits for the next). *CPU* is every measured process's CPU seconds added up (the control plane's included), so it shows what each autoscaler costs the whole cluster.\n\n| workload | pods | all Running: ours | {them} | ours ÷ {them} | NodeClaims: ours | {them} | fleet $/h: ours | {them} | CPU: ours | {them} |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n"
        ));
        for (u, p) in &rows {
            let t = &p.measured;
            s.push_str(&format!(
                "| {} | {} | {:.1} s | {:.1} s | **{}** | {} | {} | {:.3} | {:.3} | {:.0} s | {:.0} s |\n",
                u.workload,
                u.pods,
                u.all_running_s,
                t.all_running_s,
                ratio(u.all_running_s, t.all_running_s),
                u.nodeclaims,
                t.nodeclaims,
                u.fleet_cost_per_hour,
                t.fleet_cost_per_hour,
                cpu_s(&u.usage),
                cpu_s(&t.usage),
            ));
        }
        s.push('\n');
    }
    let mut events: Vec<(String, f64, f64)> = Vec::new();
    let mut them = rows.first().map(|(_, p)| display(&p.autoscaler).to_owned());
    if let Some((i, p)) = r.interruption.as_ref().and_then(|i| i.peer.as_deref().map(|p| (i, p))) {
        them.get_or_insert(display(&p.autoscaler).to_owned());
        let t = &p.measured;
        events.push((
            "spot interruption: notice → replacement node Ready".into(),
            i.replacement_ready_s,
            t.replacement_ready_s,
        ));
        events.push((
            "spot interruption: notice → every pod Running on the replacement".into(),
            i.pods_moved_s,
            t.pods_moved_s,
        ));
    }
    if let Some((m, p)) = r.mass_interruption.as_ref().and_then(|m| m.peer.as_deref().map(|p| (m, p))) {
        them.get_or_insert(display(&p.autoscaler).to_owned());
        let t = &p.measured;
        let what = format!("mass interruption ({} of {} nodes)", m.interrupted, m.nodes);
        events.push((
            format!("{what}: experiment → every replacement node Ready"),
            m.replacements_ready_s,
            t.replacements_ready_s,
        ));
        events.push((format!("{what}: experiment → every pod Running"), m.pods_running_s, t.pods_running_s));
        events.push((format!("{what}: pods not Running × time (pod·s)"), m.pending_pod_s, t.pending_pod_s));
    }
    if let (false, Some(them)) = (events.is_empty(), them) {
        s.push_str(&format!("| interruptions, real s | ours | {them} | ours ÷ {them} |\n|---|---:|---:|---:|\n"));
        for (what, ours, theirs) in events {
            s.push_str(&format!("| {what} | {ours:.1} | {theirs:.1} | **{}** |\n", ratio(ours, theirs)));
        }
        s.push('\n');
    }
    s
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::super::{Usage, Workload};
    use super::*;

    fn row(workload: Workload, pods: u32, all_running_s: f64, cpu: f64) -> ScaleUp {
        let usage = [("kube-apiserver".to_owned(), Usage { peak_rss_mib: 1.0, cpu_s: cpu })].into_iter().collect();
        ScaleUp { workload, pods, all_running_s, nodeclaims: 3, usage, ..ScaleUp::default() }
    }

    #[test]
    fn rows_meet_their_peer_of_the_same_kind_and_size_and_show_the_ratio() {
        let mut ours = PerfResults {
            autoscaler: "spotbench".into(),
            scale_up: vec![row(Workload::Inflate, 10, 6.0, 10.0), row(Workload::Mix, 1000, 15.0, 30.0)],
            mass_interruption: Some(MassInterruption {
                nodes: 500,
                interrupted: 50,
                pods_running_s: 12.0,
                ..Default::default()
            }),
            ..PerfResults::default()
        };
        let theirs = PerfResults {
            autoscaler: "karpenter".into(),
            scale_up: vec![row(Workload::Mix, 1000, 20.0, 40.0), row(Workload::Mix, 5000, 60.0, 90.0)],
            mass_interruption: Some(MassInterruption {
                nodes: 500,
                interrupted: 50,
                pods_running_s: 24.0,
                ..Default::default()
            }),
            ..PerfResults::default()
        };
        attach(&mut ours, &theirs);
        assert!(ours.scale_up[0].peer.is_none(), "Karpenter did not measure inflate 10");
        let p = ours.scale_up[1].peer.as_deref().unwrap();
        assert_eq!((p.autoscaler.as_str(), p.measured.all_running_s), ("karpenter", 20.0));
        let md = render(&ours);
        assert!(
            md.contains("| mix | 1000 | 15.0 s | 20.0 s | **0.75×** | 3 | 3 | 0.000 | 0.000 | 30 s | 40 s |"),
            "{md}"
        );
        assert!(!md.contains("| inflate | 10 |"), "no peer, no row: {md}");
        assert!(
            md.contains(
                "| mass interruption (50 of 500 nodes): experiment → every pod Running | 12.0 | 24.0 | **0.50×** |"
            ),
            "{md}"
        );
        // The peer travels with the row through the JSON file.
        let back: PerfResults = serde_json::from_str(&serde_json::to_string(&ours).unwrap()).unwrap();
        let again = back.scale_up[1].peer.as_deref().unwrap();
        assert_eq!((again.autoscaler.as_str(), again.measured.all_running_s), ("karpenter", 20.0));
    }

    #[test]
    fn without_a_peer_there_is_no_table() {
        let ours = PerfResults { scale_up: vec![row(Workload::Mix, 1000, 15.0, 30.0)], ..PerfResults::default() };
        assert_eq!(render(&ours), "");
        assert_eq!(ratio(1.0, 0.0), "–");
        assert_eq!(ratio(3.1, 800.0), "0.004×");
    }
}
