//! Stable one-line descriptions of steps, for progress lines, reports and the timeline.

use super::expect::describe_wait;
use super::model::{Fault, Step};

/// The first line of an error, with a real-time timeout's duration taken out (stable snapshots).
pub fn first_line(msg: &str) -> String {
    msg.lines().next().unwrap_or_default().to_owned()
}

/// A stable one-line description of a step.
pub fn describe(step: &Step) -> String {
    match step {
        Step::Apply(a) => {
            let what = match (&a.fixture, &a.manifest) {
                (Some(f), _) => f.clone(),
                (None, Some(m)) => format!("inline manifest ({})", manifest_names(m)),
                (None, None) => "nothing".to_owned(),
            };
            match a.replicas {
                Some(r) => format!("apply {what} (replicas {r})"),
                None => format!("apply {what}"),
            }
        }
        Step::Delete(d) => format!("delete {} {}", d.kind, d.name),
        Step::Scale(s) => format!("scale deployment {} to {}", s.deployment, s.replicas),
        Step::Wait(w) => describe_wait(w),
        Step::Fault(f) => format!("fault: {}", describe_fault(f)),
        Step::Clock(c) => match (c.advance_seconds, c.factor) {
            (Some(a), Some(f)) => format!("clock: advance {a}s, then x{f}"),
            (Some(a), None) => format!("clock: advance {a}s"),
            (None, Some(f)) => format!("clock: x{f}"),
            (None, None) => "clock: unchanged".to_owned(),
        },
        Step::KillAutoscaler => "kill the autoscaler".to_owned(),
        Step::StartAutoscaler => "start the autoscaler".to_owned(),
        Step::Expect(_) => "expect".to_owned(),
        Step::RestartFakeEc2(_) | Step::RestartApiserver(_) | Step::BlackholeAws(_) => describe_chaos(step),
    }
}

/// A chaos step, as the timeline and its marker say it.
pub fn describe_chaos(step: &Step) -> String {
    match step {
        Step::RestartFakeEc2(r) if r.keep_state => "restart fake-ec2 (state kept)".to_owned(),
        Step::RestartFakeEc2(_) => "restart fake-ec2 (state lost: a fresh world)".to_owned(),
        Step::RestartApiserver(r) if r.etcd => "restart etcd and kube-apiserver".to_owned(),
        Step::RestartApiserver(_) => "restart kube-apiserver".to_owned(),
        Step::BlackholeAws(b) => format!("blackhole the AWS endpoint for {}s ({})", b.seconds, b.mode.name()),
        other => other.kind().to_owned(),
    }
}

pub fn describe_fault(f: &Fault) -> String {
    let mut parts = Vec::new();
    for p in &f.pools {
        let mut s = format!("pool {} {} {}", p.instance_type, p.zone, p.capacity_type.as_deref().unwrap_or("*"));
        if let Some(c) = p.capacity {
            s.push_str(&format!(" capacity {c}"));
        }
        if let Some(pr) = p.spot_price {
            s.push_str(&format!(" spot price {pr}"));
        }
        parts.push(s);
    }
    if let Some(q) = &f.quotas {
        parts.push(format!("quotas {}", serde_json::to_string(q).unwrap_or_default()));
    }
    if let Some(a) = &f.api {
        let mut s =
            format!("{} on {} at {}%", a.code.as_deref().unwrap_or("latency"), a.operations.join(","), a.percentage);
        if let Some(d) = a.duration_seconds {
            s.push_str(&format!(" for {d}s"));
        }
        if let Some(l) = a.latency_ms {
            s.push_str(&format!(" (+{l} ms)"));
        }
        parts.push(s);
    }
    if let Some(t) = &f.fis {
        parts.push(format!("FIS experiment {t}"));
    }
    if let Some(n) = f.interrupt_spot {
        parts.push(format!("interrupt {n} spot instance(s)"));
    }
    if f.clear_api_faults {
        parts.push("clear API faults".to_owned());
    }
    parts.join("; ")
}

fn manifest_names(m: &str) -> String {
    docs(m)
        .filter_map(|d| serde_saphyr::from_str::<serde_json::Value>(d).ok())
        .map(|v| format!("{} {}", v["kind"].as_str().unwrap_or("?"), v["metadata"]["name"].as_str().unwrap_or("?")))
        .collect::<Vec<_>>()
        .join(", ")
}

pub fn docs(yaml: &str) -> impl Iterator<Item = &str> {
    yaml.split("\n---").map(str::trim).filter(|d| !d.is_empty() && d.lines().any(|l| !l.trim_start().starts_with('#')))
}
