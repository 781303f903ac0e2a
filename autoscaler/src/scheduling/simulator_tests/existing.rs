//! Existing nodes and the conversions from Kubernetes objects.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::*;

#[test]
fn pods_fitting_existing_nodes_go_there() {
    let nodes = vec![node("n1", "a", 1500), node("n2", "b", 1000), node("gone", "c", 64_000)];
    let mut nodes = nodes;
    nodes[2].marked_for_deletion = true;
    let r = Scheduler::new(vec![pool("default", catalog())], nodes, vec![], vec![], SchedulerOptions::default())
        .solve(pods(4, "1", "1Gi"));
    assert!(r.pod_errors.is_empty(), "{:?}", r.pod_errors);
    assert_eq!(r.existing.get("n1").map(Vec::len), Some(1));
    assert_eq!(r.existing.get("n2").map(Vec::len), Some(1));
    assert!(!r.existing.contains_key("gone"));
    assert_eq!(r.new_node_claims.iter().map(|p| p.pods.len()).sum::<usize>(), 2);
}

#[test]
fn existing_node_requires_its_labels() {
    // A pod asking for zone c cannot use the zone-a node.
    let mut p = pod("x", "100m", "100Mi");
    p.node_selector = labels_of(&[(labels::ZONE, "c")]);
    let r = Scheduler::new(
        vec![pool("default", catalog())],
        vec![node("n1", "a", 4000)],
        vec![],
        vec![],
        SchedulerOptions::default(),
    )
    .solve(vec![p]);
    assert!(r.existing.is_empty());
    assert_eq!(zone_of(&r.new_node_claims[0]), Some("c"));
}

#[test]
fn k8s_conversions_for_nodes_and_bound_pods() {
    use k8s_openapi::api::core::v1 as core;
    use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
    let node = core::Node {
        metadata: ObjectMeta {
            name: Some("ip-10-0-0-1".into()),
            labels: Some(labels_of(&[
                (labels::ZONE, "a"),
                (labels::NODE_POOL, "default"),
                ("karpenter.sh/initialized", "true"),
            ])),
            ..Default::default()
        },
        spec: Some(core::NodeSpec {
            taints: Some(vec![core::Taint { key: "k".into(), effect: "NoSchedule".into(), ..Default::default() }]),
            ..Default::default()
        }),
        status: Some(core::NodeStatus {
            allocatable: Some(
                [("cpu".to_string(), Quantity("3920m".into())), ("pods".to_string(), Quantity("58".into()))].into(),
            ),
            ..Default::default()
        }),
    };
    let n = ExistingNode::from_node(&node, &Resources::from_milli([("cpu", 920)]));
    assert_eq!(n.available.get("cpu"), 3000);
    assert!(n.initialized && !n.marked_for_deletion);
    assert_eq!(n.taints.len(), 1);
    assert_eq!(n.requirements.get(labels::ZONE).single(), Some("a"));

    let pod = core::Pod {
        metadata: ObjectMeta {
            name: Some("web".into()),
            namespace: Some("prod".into()),
            labels: Some(labels_of(&[("app", "web")])),
            ..Default::default()
        },
        spec: Some(core::PodSpec { node_name: Some("ip-10-0-0-1".into()), ..Default::default() }),
        ..Default::default()
    };
    let info = ScheduledPodInfo::from_pod(&pod).unwrap();
    assert_eq!((info.namespace.as_str(), info.node_name.as_str()), ("prod", "ip-10-0-0-1"));
    let mut done = pod.clone();
    done.status = Some(core::PodStatus { phase: Some("Succeeded".into()), ..Default::default() });
    assert!(ScheduledPodInfo::from_pod(&done).is_none());
}
