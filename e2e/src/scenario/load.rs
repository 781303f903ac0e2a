//! Reading scenario files: parse (serde-saphyr reports the line and column), then check what the
//! types cannot (exactly one source per apply, files that exist, conditions to wait on). Every
//! error names the file, the line and what to write instead.

use std::path::{Path, PathBuf};

use super::model::{Expect, Scenario, Step};
use crate::external_sqs::{SqsKind, interruption_queue};
use crate::under_test::AutoscalerKind;

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("{file}: cannot read: {source}")]
    Read { file: String, source: std::io::Error },
    #[error("{file}: {message}\n  fix: {fix}")]
    Invalid { file: String, message: String, fix: String },
    #[error("no scenario named `{name}` in {dir} (try `e2e list`)")]
    NotFound { name: String, dir: String },
}

/// Where scenarios live.
pub fn scenarios_dir(root: &Path) -> PathBuf {
    root.join("fixtures/scenarios")
}

/// Every scenario file, sorted by name.
pub fn all(root: &Path) -> Result<Vec<(PathBuf, Scenario)>, LoadError> {
    let dir = scenarios_dir(root);
    let entries =
        std::fs::read_dir(&dir).map_err(|source| LoadError::Read { file: dir.display().to_string(), source })?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
        .collect();
    files.sort();
    files.into_iter().map(|f| load_file(root, &f).map(|s| (f, s))).collect()
}

/// A path to a file, or the name of a scenario in fixtures/scenarios.
pub fn resolve(root: &Path, arg: &str) -> Result<PathBuf, LoadError> {
    let p = PathBuf::from(arg);
    if p.is_file() {
        return Ok(p);
    }
    let dir = scenarios_dir(root);
    for candidate in [dir.join(arg), dir.join(format!("{arg}.yaml"))] {
        if candidate.is_file() {
            return Ok(candidate);
        }
    }
    Err(LoadError::NotFound { name: arg.to_owned(), dir: dir.display().to_string() })
}

pub fn load_file(root: &Path, file: &Path) -> Result<Scenario, LoadError> {
    let shown = file.strip_prefix(root).unwrap_or(file).display().to_string();
    let text = std::fs::read_to_string(file).map_err(|source| LoadError::Read { file: shown.clone(), source })?;
    parse(root, &shown, &text)
}

/// Parses and checks scenario text; `file` names it in errors.
pub fn parse(root: &Path, file: &str, text: &str) -> Result<Scenario, LoadError> {
    let invalid =
        |message: String, fix: &str| LoadError::Invalid { file: file.to_owned(), message, fix: fix.to_owned() };
    let scenario: Scenario = serde_saphyr::from_str(text).map_err(|e| {
        let message = e.to_string();
        let fix = fix_for(&message);
        invalid(message, fix)
    })?;
    if scenario.steps.is_empty() {
        return Err(invalid("the scenario has no steps".into(), "add `steps:` with at least one step"));
    }
    if !(scenario.clock_factor.is_finite() && scenario.clock_factor > 0.0) {
        return Err(invalid(
            format!("line {}: clock_factor {} must be positive", line_of(text, "clock_factor"), scenario.clock_factor),
            "use e.g. `clock_factor: 10` (ten world seconds per real second)",
        ));
    }
    if !root.join(&scenario.world).is_file() {
        return Err(invalid(
            format!("line {}: world file {} does not exist", line_of(text, "world"), scenario.world),
            "name a file relative to the repository root, e.g. `world: fixtures/worlds/default.yaml`",
        ));
    }
    if let Some(m) = only_problem(scenario.autoscalers.as_deref(), scenario.reason.as_deref()) {
        return Err(invalid(
            format!("line {}: {m}", line_of(text, "autoscalers").max(line_of(text, "reason"))),
            "`autoscalers: [spotbench]` with `reason: <why the other cannot run it>`, or neither",
        ));
    }
    if scenario.sqs != SqsKind::BuiltIn && interruption_queue(&scenario.autoscaler_args).is_none() {
        return Err(invalid(
            format!(
                "line {}: `sqs: {}` without an interruption queue for it",
                line_of(text, "sqs"),
                sqs_name(scenario.sqs)
            ),
            "add `autoscaler_args: [--interruption-queue, karpenter-interruption]`, or leave `sqs:` out",
        ));
    }
    let step_lines = step_lines(text);
    for (i, entry) in scenario.steps.iter().enumerate() {
        let step = &entry.step;
        let at = |m: String| match step_lines.get(i) {
            Some(l) => format!("line {l}: step {} ({}): {m}", i + 1, step.kind()),
            None => format!("step {} ({}): {m}", i + 1, step.kind()),
        };
        if let Some(m) = only_problem(entry.autoscalers.as_deref(), entry.reason.as_deref()) {
            return Err(invalid(
                at(m),
                "beside the step: `autoscalers: [spotbench]` and `reason: <why the other skips it>`, or neither",
            ));
        }
        let fixture_exists = |p: &str| root.join("fixtures").join(p).is_file();
        match step {
            Step::Apply(a) => match (&a.fixture, &a.manifest) {
                (Some(_), Some(_)) | (None, None) => {
                    return Err(invalid(
                        at("give exactly one of `fixture` and `manifest`".into()),
                        "`- apply: {fixture: workloads/inflate.yaml}` or `- apply: {manifest: |\\n    <yaml>}`",
                    ));
                }
                (Some(f), None) if !fixture_exists(f) => {
                    return Err(invalid(
                        at(format!("fixtures/{f} does not exist")),
                        "fixture paths are relative to fixtures/, e.g. `nodepools/spot.yaml`",
                    ));
                }
                _ => {}
            },
            Step::Wait(w)
                if w.pods_running.is_none()
                    && w.nodes.is_empty()
                    && w.nodeclaims.is_none()
                    && w.instances.is_none()
                    && w.instances_launched.is_none()
                    && w.instances_terminated.is_none() =>
            {
                return Err(invalid(
                    at("nothing to wait for".into()),
                    "add a condition: `pods_running: {selector: app=x, count: 3}`, `nodes: [...]`, `nodeclaims: 2`, `instances: 2`, `instances_launched: 2` or `instances_terminated: 1`",
                ));
            }
            Step::Fault(f) => {
                if let Some(p) = f.fis.as_deref().filter(|p| !fixture_exists(p)) {
                    return Err(invalid(
                        at(format!("fixtures/{p} does not exist")),
                        "FIS templates are under fixtures/fis/, e.g. `fis: fis/spot-interrupt-50-percent.json`",
                    ));
                }
            }
            Step::Clock(c) if c.advance_seconds.is_none() && c.factor.is_none() => {
                return Err(invalid(
                    at("nothing to change".into()),
                    "`- clock: {advance_seconds: 120}` or `- clock: {factor: 60}`",
                ));
            }
            Step::BlackholeAws(b) if !(b.seconds.is_finite() && b.seconds > 0.0) => {
                return Err(invalid(
                    at(format!("seconds {} must be positive", b.seconds)),
                    "`- blackhole_aws: {seconds: 60, mode: refuse}` (world seconds; mode refuse or hang)",
                ));
            }
            Step::Expect(e) => {
                if let Some(m) = expect_problem(e) {
                    return Err(invalid(
                        at(m),
                        "an override block names its difference and what it changes: `karpenter: {because: <why>, max_pending_seconds: {...}}`",
                    ));
                }
            }
            _ => {}
        }
    }
    Ok(scenario)
}

/// What is wrong with an `autoscalers:` / `reason:` pair, if anything.
fn only_problem(only: Option<&[AutoscalerKind]>, reason: Option<&str>) -> Option<String> {
    match (only, reason.map(str::trim)) {
        (None, None) => None,
        (Some([]), _) => Some("`autoscalers:` is empty: the scenario or step would never run".into()),
        (Some(_), None | Some("")) => Some("`autoscalers:` without a `reason:` (printed when it is skipped)".into()),
        (None, Some(_)) => Some("`reason:` without `autoscalers:`".into()),
        (Some(_), Some(_)) => None,
    }
}

/// What is wrong with an expect step's per-autoscaler override blocks, if anything.
fn expect_problem(e: &Expect) -> Option<String> {
    if e.because.is_some() {
        return Some("`because:` belongs in an override block (`karpenter: {because: ...}`)".into());
    }
    for kind in AutoscalerKind::ALL {
        let Some(o) = e.override_for(kind) else { continue };
        if o.spotbench.is_some() || o.karpenter.is_some() {
            return Some(format!("the `{kind}` override block holds another override block"));
        }
        if o.because.as_deref().is_none_or(|b| b.trim().is_empty()) {
            return Some(format!(
                "the `{kind}` override block needs `because:`, the behavioural difference it documents"
            ));
        }
        if o.is_empty() {
            return Some(format!("the `{kind}` override block changes no expectation"));
        }
    }
    None
}

/// A hint for serde's messages.
fn fix_for(message: &str) -> &'static str {
    if message.contains("expected one of built-in") {
        "`sqs:` is one of built-in, moto, localstack (an SQS already running is given when run: `e2e up --sqs-endpoint <url>`)"
    } else if message.contains("unknown variant") {
        "a step is one of: apply, delete, scale, wait, fault, clock, kill_autoscaler, start_autoscaler, expect, restart_fake_ec2, restart_apiserver, blackhole_aws (see README \"Scenarios\")"
    } else if message.contains("unknown field") {
        "remove or rename the field; the fields each step takes are listed in README \"Scenarios\""
    } else if message.contains("missing field") {
        "add the field named above"
    } else if message.contains("a count") {
        "write a count as `3` or a range as `{min: 1, max: 3}`"
    } else {
        "check the YAML at the position above against the example in README \"Scenarios\""
    }
}

/// `sqs:`'s value as written.
fn sqs_name(kind: SqsKind) -> String {
    clap::ValueEnum::to_possible_value(&kind).map(|v| v.get_name().to_owned()).unwrap_or_default()
}

/// The 1-based line of the first top-level `key:`.
fn line_of(text: &str, key: &str) -> usize {
    text.lines().position(|l| l.starts_with(&format!("{key}:"))).map_or(0, |i| i + 1)
}

/// The 1-based line of each item of the top-level `steps:` list.
fn step_lines(text: &str) -> Vec<usize> {
    let mut out = Vec::new();
    let mut in_steps = false;
    let mut indent = None;
    for (i, line) in text.lines().enumerate() {
        if line.starts_with("steps:") {
            in_steps = true;
            continue;
        }
        if !in_steps || line.trim().is_empty() || line.trim_start().starts_with('#') {
            continue;
        }
        if !line.starts_with([' ', '-']) {
            break;
        }
        let this = line.len() - line.trim_start().len();
        if line.trim_start().starts_with("- ") || line.trim() == "-" {
            let first = *indent.get_or_insert(this);
            if this == first {
                out.push(i + 1);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;

    fn root() -> PathBuf {
        crate::cluster::repo_root()
    }

    fn err(text: &str) -> String {
        parse(&root(), "fixtures/scenarios/bad.yaml", text).unwrap_err().to_string()
    }

    #[test]
    fn every_shipped_scenario_loads() {
        let all = all(&root()).unwrap();
        assert!(all.len() >= 10, "{}", all.len());
        for (file, s) in &all {
            assert_eq!(file.file_stem().unwrap().to_str(), Some(s.name.as_str()), "name matches the file");
        }
    }

    #[test]
    fn an_unknown_step_names_the_line_and_the_kinds() {
        let e = err(
            "name: x\ndescription: y\nsteps:\n  - apply: {fixture: workloads/inflate.yaml}\n  - wiat: {nodeclaims: 1}\n",
        );
        assert!(e.contains("bad.yaml"), "{e}");
        assert!(e.contains("line 5"), "{e}");
        assert!(e.contains("expected one of"), "{e}");
        assert!(e.contains("fix:"), "{e}");
    }

    #[test]
    fn an_unknown_field_is_an_error() {
        let e = err("name: x\ndescription: y\nsteps:\n  - wait: {nodeclaims: 1, timeout: 3}\n");
        assert!(e.contains("line 4") && e.contains("timeout"), "{e}");
    }

    #[test]
    fn apply_needs_one_source() {
        let e = err("name: x\ndescription: y\nsteps:\n  - kill_autoscaler\n  - apply: {replicas: 3}\n");
        assert!(e.contains("line 5: step 2 (apply)") && e.contains("exactly one"), "{e}");
        let e = err("name: x\ndescription: y\nsteps:\n  - apply: {fixture: nope.yaml}\n");
        assert!(e.contains("fixtures/nope.yaml does not exist"), "{e}");
    }

    const HEAD: &str = "name: x\ndescription: y\nsteps:\n";

    #[test]
    fn the_interruption_queue_may_live_on_moto_or_localstack() {
        let watched = "name: x\ndescription: y\nautoscaler_args: [--interruption-queue, q]\n";
        for (sqs, kind) in
            [("moto", SqsKind::Moto), ("localstack", SqsKind::LocalStack), ("built-in", SqsKind::BuiltIn)]
        {
            let s = parse(&root(), "x", &format!("{watched}sqs: {sqs}\nsteps:\n  - kill_autoscaler\n")).unwrap();
            assert_eq!(s.sqs, kind);
        }
        let s = parse(&root(), "x", &format!("{HEAD}  - kill_autoscaler\n")).unwrap();
        assert_eq!(s.sqs, SqsKind::BuiltIn);
        let e = err(&format!("{watched}sqs: elasticmq\nsteps:\n  - kill_autoscaler\n"));
        assert!(e.contains("line 4") && e.contains("`sqs:` is one of built-in, moto, localstack"), "{e}");
        let e = err("name: x\ndescription: y\nsqs: moto\nsteps:\n  - kill_autoscaler\n");
        assert!(e.contains("line 3: `sqs: moto` without an interruption queue"), "{e}");
        assert!(e.contains("--interruption-queue"), "{e}");
    }

    #[test]
    fn steps_and_scenarios_may_be_for_one_autoscaler_with_a_reason() {
        let s = parse(
            &root(),
            "x",
            "name: x\ndescription: y\nautoscalers: [spotbench]\nreason: only ours\nsteps:\n  - kill_autoscaler\n  - wait: {nodeclaims: 1}\n    autoscalers: [karpenter]\n    reason: theirs waits\n  - start_autoscaler:\n",
        )
        .unwrap();
        assert_eq!(s.skipped_for(AutoscalerKind::Spotbench), None);
        assert_eq!(s.skipped_for(AutoscalerKind::Karpenter).as_deref(), Some("only with spotbench: only ours"));
        assert!(matches!(s.steps[0].step, Step::KillAutoscaler));
        assert!(matches!(s.steps[2].step, Step::StartAutoscaler));
        assert_eq!(s.steps[1].skipped_for(AutoscalerKind::Karpenter), None);
        assert_eq!(
            s.steps[1].skipped_for(AutoscalerKind::Spotbench).as_deref(),
            Some("only with karpenter: theirs waits")
        );
        let e = err(&format!("{HEAD}  - wait: {{nodeclaims: 1}}\n    autoscalers: [karpenter]\n"));
        assert!(e.contains("line 4: step 1 (wait)") && e.contains("without a `reason:`"), "{e}");
        let e =
            err(&format!("{HEAD}  - wait: {{nodeclaims: 1}}\n    autoscalers: [cluster-autoscaler]\n    reason: r\n"));
        assert!(e.contains("cluster-autoscaler") && e.contains("line 5"), "{e}");
        let e = err(&format!("{HEAD}  - wait: {{nodeclaims: 1}}\n    kill_autoscaler:\n"));
        assert!(e.contains("one step per list item"), "{e}");
        let e = err("name: x\ndescription: y\nreason: r\nsteps:\n  - kill_autoscaler\n");
        assert!(e.contains("`reason:` without `autoscalers:`"), "{e}");
    }

    #[test]
    fn expectations_differ_per_autoscaler_in_a_documented_override_block() {
        let s = parse(
            &root(),
            "x",
            &format!("{HEAD}  - expect:\n      instances_launched: 2\n      max_pending_seconds: {{selector: app=a, seconds: 0}}\n      events: {{A: 1}}\n      karpenter:\n        because: it drains at once\n        max_pending_seconds: {{selector: app=a, seconds: 60}}\n        events: {{B: 2}}\n"),
        )
        .unwrap();
        let Step::Expect(e) = &s.steps[0].step else { panic!("{:?}", s.steps[0]) };
        let (ours, why) = e.resolved(AutoscalerKind::Spotbench);
        assert_eq!((ours.max_pending_seconds.as_ref().map(|m| m.seconds), why), (Some(0.0), None));
        let (theirs, why) = e.resolved(AutoscalerKind::Karpenter);
        assert_eq!(theirs.max_pending_seconds.as_ref().map(|m| m.seconds), Some(60.0));
        assert_eq!(theirs.instances_launched, Some(super::super::model::Count::Exactly(2)));
        assert_eq!(theirs.events.keys().collect::<Vec<_>>(), ["A", "B"]);
        assert!(theirs.karpenter.is_none() && theirs.because.is_none());
        assert_eq!(why.as_deref(), Some("it drains at once"));
        let e = err(&format!(
            "{HEAD}  - expect:\n      karpenter: {{max_pending_seconds: {{selector: app=a, seconds: 60}}}}\n"
        ));
        assert!(e.contains("needs `because:`"), "{e}");
        let e = err(&format!("{HEAD}  - expect:\n      karpenter: {{because: x}}\n"));
        assert!(e.contains("changes no expectation"), "{e}");
        let e = err(&format!("{HEAD}  - expect:\n      karpenter: {{because: x, max_pending: 3}}\n"));
        assert!(e.contains("max_pending") && e.contains("line 5"), "{e}");
        let e = err(&format!("{HEAD}  - expect:\n      because: x\n      nodeclaims: 1\n"));
        assert!(e.contains("belongs in an override block"), "{e}");
    }

    #[test]
    fn chaos_steps_load_with_their_fields_and_reject_bad_ones() {
        let s = parse(
            &root(),
            "x.yaml",
            "name: x\ndescription: d\nsteps:\n  - restart_fake_ec2: {keep_state: true}\n  - restart_apiserver: {etcd: true}\n  - blackhole_aws: {seconds: 60, mode: hang}\n  - blackhole_aws: {seconds: 5}\n",
        )
        .unwrap();
        assert!(matches!(&s.steps[0].step, Step::RestartFakeEc2(r) if r.keep_state));
        assert!(matches!(&s.steps[1].step, Step::RestartApiserver(r) if r.etcd));
        assert!(
            matches!(&s.steps[2].step, Step::BlackholeAws(b) if b.mode == crate::chaos::BlackholeMode::Hang && b.seconds == 60.0)
        );
        assert!(matches!(&s.steps[3].step, Step::BlackholeAws(b) if b.mode == crate::chaos::BlackholeMode::Refuse));
        let e = err("name: x\ndescription: d\nsteps:\n  - blackhole_aws: {seconds: 0}\n");
        assert!(e.contains("line 4") && e.contains("must be positive"), "{e}");
        let e = err("name: x\ndescription: d\nsteps:\n  - blackhole_aws: {seconds: 5, mode: drop}\n");
        assert!(e.contains("drop"), "{e}");
        let e = err("name: x\ndescription: d\nsteps:\n  - restart_fake_ec2: {keep: true}\n");
        assert!(e.contains("keep"), "{e}");
    }

    #[test]
    fn counts_are_numbers_or_ranges() {
        let e = err("name: x\ndescription: y\nsteps:\n  - wait: {nodeclaims: lots}\n");
        assert!(e.contains("line 4"), "{e}");
        let s = parse(&root(), "x", "name: x\ndescription: y\nsteps:\n  - wait: {nodeclaims: {min: 2}}\n").unwrap();
        assert!(matches!(&s.steps[0].step, Step::Wait(w) if w.nodeclaims.is_some_and(|c| c.holds(3) && !c.holds(1))));
    }
}
