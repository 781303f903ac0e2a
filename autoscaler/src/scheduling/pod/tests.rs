//! The pod model built from Kubernetes pods: requests, selectors, tolerations, constraints.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::*;
use crate::scheduling::resources::{CPU, MEMORY};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

fn container(cpu: &str, mem: &str, restart: Option<&str>) -> core::Container {
    core::Container {
        name: "c".into(),
        restart_policy: restart.map(str::to_string),
        resources: Some(core::ResourceRequirements {
            requests: Some(
                [("cpu".to_string(), Quantity(cpu.into())), ("memory".to_string(), Quantity(mem.into()))].into(),
            ),
            ..Default::default()
        }),
        ..Default::default()
    }
}

#[test]
fn effective_requests_table() {
    // (containers, init containers (cpu, mem, sidecar?), want cpu milli, want memory Mi)
    type C = (&'static str, &'static str, bool);
    let cases: &[(&[C], &[C], i64, i64)] = &[
        (&[("1", "1Gi", false)], &[], 1000, 1024),
        (&[("1", "1Gi", false), ("500m", "512Mi", false)], &[], 1500, 1536),
        // a big init container dominates
        (&[("1", "1Gi", false)], &[("2", "256Mi", false)], 2000, 1024),
        // sidecars add to the steady state
        (&[("1", "1Gi", false)], &[("500m", "128Mi", true)], 1500, 1152),
        // an init container after a sidecar runs beside it: 2 + 0.5
        (&[("1", "1Gi", false)], &[("500m", "128Mi", true), ("2", "100Mi", false)], 2500, 1152),
        // an init container before the sidecar does not
        (&[("1", "1Gi", false)], &[("2", "100Mi", false), ("500m", "128Mi", true)], 2000, 1152),
    ];
    for (containers, inits, cpu, mem) in cases {
        let spec = core::PodSpec {
            containers: containers.iter().map(|(c, m, _)| container(c, m, None)).collect(),
            init_containers: Some(inits.iter().map(|(c, m, s)| container(c, m, s.then_some("Always"))).collect()),
            ..Default::default()
        };
        let r = effective_requests(&spec);
        assert_eq!(r.get(CPU), *cpu, "{containers:?} {inits:?}");
        assert_eq!(r.get(MEMORY), mem * 1024 * 1024 * 1000, "{containers:?} {inits:?}");
        assert_eq!(r.get(PODS), 1000);
    }
}

#[test]
fn overhead_and_limits_only() {
    let mut c = container("1", "1Gi", None);
    c.resources = Some(core::ResourceRequirements {
        limits: Some([("cpu".to_string(), Quantity("2".into()))].into()),
        ..Default::default()
    });
    let spec = core::PodSpec {
        containers: vec![c],
        overhead: Some([("cpu".to_string(), Quantity("250m".into()))].into()),
        ..Default::default()
    };
    assert_eq!(effective_requests(&spec).get(CPU), 2250);
}

#[test]
fn tolerations_table() {
    let t = |k: &str, v: &str, e| Taint::new(k, v, e);
    let tol = |k: &str, exists: bool, v: &str, e: Option<TaintEffect>| Toleration {
        key: k.into(),
        exists,
        value: v.into(),
        effect: e,
    };
    use TaintEffect::*;
    let cases: Vec<(Vec<Toleration>, Vec<Taint>, bool)> = vec![
        (vec![], vec![], true),
        (vec![], vec![t("a", "", NoSchedule)], false),
        (vec![], vec![t("a", "", PreferNoSchedule)], true),
        (vec![], vec![t("a", "", NoExecute)], false),
        (vec![tol("a", true, "", None)], vec![t("a", "x", NoSchedule)], true),
        (vec![tol("a", false, "x", Some(NoSchedule))], vec![t("a", "x", NoSchedule)], true),
        (vec![tol("a", false, "y", Some(NoSchedule))], vec![t("a", "x", NoSchedule)], false),
        (vec![tol("a", false, "x", Some(NoExecute))], vec![t("a", "x", NoSchedule)], false),
        (vec![tol("", true, "", None)], vec![t("a", "x", NoSchedule), t("b", "", NoExecute)], true),
        (vec![tol("a", true, "", None)], vec![t("a", "x", NoSchedule), t("b", "", NoExecute)], false),
    ];
    for (tols, taints, want) in cases {
        assert_eq!(tolerates(&tols, &taints).is_ok(), want, "{tols:?} vs {taints:?}");
    }
    let err = tolerates(&[], &[t("dedicated", "gpu", NoSchedule)]).unwrap_err();
    assert_eq!(err, "did not tolerate taint (dedicated=gpu:NoSchedule)");
}

#[test]
fn from_pod_reads_scheduling_fields() {
    let pod: core::Pod = serde_json_like();
    let p = SchedPod::from_pod(&pod);
    assert_eq!(p.key, "ns/web-1");
    assert_eq!(p.requests.get(CPU), 500);
    assert_eq!(p.required_node_affinity.len(), 2);
    assert_eq!(p.preferred_node_affinity[0].0, 50);
    assert_eq!(p.topology_spread.len(), 1);
    let tsc = &p.topology_spread[0];
    assert!(tsc.honor_node_affinity && !tsc.honor_node_taints);
    assert_eq!(tsc.min_domains, Some(3));
    assert!(tsc.selector.as_ref().unwrap().matches(&p.labels));
    assert_eq!(p.pod_anti_affinity.len(), 1);
    assert!(p.pod_anti_affinity[0].selects("ns", &p.labels));
    assert!(!p.pod_anti_affinity[0].selects("other", &p.labels));
    // first OR term + heaviest preference
    let r = p.requirements(true);
    assert_eq!(r.get("kubernetes.io/arch").single(), Some("arm64"));
    assert_eq!(r.get("topology.kubernetes.io/zone").single(), Some("a"));
    assert!(!p.strict_requirements().has("topology.kubernetes.io/zone"));
    let mut relaxed = p.clone();
    assert_eq!(relaxed.relax().as_deref(), Some("required node affinity term"));
    assert_eq!(relaxed.requirements(true).get("kubernetes.io/arch").single(), Some("amd64"));
    assert_eq!(relaxed.relax().as_deref(), Some("preferred node affinity term"));
    assert_eq!(relaxed.requirements(true).get("topology.kubernetes.io/zone").single(), Some("b"));
    assert_eq!(relaxed.relax().as_deref(), Some("preferred node affinity term"));
    assert_eq!(relaxed.relax(), None);
}

fn serde_json_like() -> core::Pod {
    let term = |arch: &str| core::NodeSelectorTerm {
        match_expressions: Some(vec![core::NodeSelectorRequirement {
            key: "kubernetes.io/arch".into(),
            operator: "In".into(),
            values: Some(vec![arch.into()]),
        }]),
        ..Default::default()
    };
    let selector = meta::LabelSelector {
        match_labels: Some([("app".to_string(), "web".to_string())].into()),
        ..Default::default()
    };
    core::Pod {
        metadata: meta::ObjectMeta {
            name: Some("web-1".into()),
            namespace: Some("ns".into()),
            labels: Some([("app".to_string(), "web".to_string())].into()),
            ..Default::default()
        },
        spec: Some(core::PodSpec {
            containers: vec![container("500m", "256Mi", None)],
            affinity: Some(core::Affinity {
                node_affinity: Some(core::NodeAffinity {
                    required_during_scheduling_ignored_during_execution: Some(core::NodeSelector {
                        node_selector_terms: vec![term("arm64"), term("amd64")],
                    }),
                    preferred_during_scheduling_ignored_during_execution: Some(vec![
                        core::PreferredSchedulingTerm {
                            weight: 10,
                            preference: core::NodeSelectorTerm {
                                match_expressions: Some(vec![core::NodeSelectorRequirement {
                                    key: "topology.kubernetes.io/zone".into(),
                                    operator: "In".into(),
                                    values: Some(vec!["b".into()]),
                                }]),
                                ..Default::default()
                            },
                        },
                        core::PreferredSchedulingTerm {
                            weight: 50,
                            preference: core::NodeSelectorTerm {
                                match_expressions: Some(vec![core::NodeSelectorRequirement {
                                    key: "topology.kubernetes.io/zone".into(),
                                    operator: "In".into(),
                                    values: Some(vec!["a".into()]),
                                }]),
                                ..Default::default()
                            },
                        },
                    ]),
                }),
                pod_anti_affinity: Some(core::PodAntiAffinity {
                    required_during_scheduling_ignored_during_execution: Some(vec![core::PodAffinityTerm {
                        label_selector: Some(selector.clone()),
                        topology_key: "kubernetes.io/hostname".into(),
                        ..Default::default()
                    }]),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            topology_spread_constraints: Some(vec![core::TopologySpreadConstraint {
                label_selector: Some(selector),
                max_skew: 1,
                min_domains: Some(3),
                topology_key: "topology.kubernetes.io/zone".into(),
                when_unsatisfiable: "DoNotSchedule".into(),
                ..Default::default()
            }]),
            ..Default::default()
        }),
        ..Default::default()
    }
}
