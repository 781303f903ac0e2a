//! The pure half of the node bridge: from the world's instances and the Nodes that exist, what
//! to write. No I/O, so every case has a unit test without a cluster.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Node;

use super::Pass;
use super::desired::{KWOK_ANNOTATION, KWOK_STOPPED};
use crate::clock::Millis;
use crate::world::catalog::InstanceType;
use crate::world::instances::{Instance, InstanceState};

/// The world as one pass sees it.
pub struct View {
    pub now: Millis,
    /// Registration delay after an instance starts running.
    pub delay: Millis,
    pub region: String,
    pub instances: Vec<(Instance, Option<InstanceType>)>,
}

/// One write; instances by their index in [`View::instances`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// A running instance past its registration delay has no Node: register it.
    Create { node: String, instance: usize },
    /// A Node whose instance runs again gets its kubelet (kwok) back.
    Restart { node: String },
    /// A stopping or stopped instance's Node loses its kubelet and goes NotReady.
    Stop { node: String, instance: usize },
    /// A Node whose instance is terminating, terminated or gone.
    Delete { node: String },
}

impl Action {
    pub fn node_name(&self) -> &str {
        match self {
            Action::Create { node, .. }
            | Action::Restart { node }
            | Action::Stop { node, .. }
            | Action::Delete { node } => node,
        }
    }

    /// Adds the Node's name to the pass's list for this kind of write.
    pub fn record(self, pass: &mut Pass) {
        match self {
            Action::Create { node, .. } => pass.created.push(node),
            Action::Restart { node } => pass.restarted.push(node),
            Action::Stop { node, .. } => pass.stopped.push(node),
            Action::Delete { node } => pass.deleted.push(node),
        }
    }
}

fn annotation(n: &Node) -> Option<&str> {
    n.metadata.annotations.as_ref()?.get(KWOK_ANNOTATION).map(String::as_str)
}

/// Every write that brings `nodes` (by instance id) in step with `view`, in a stable order.
pub fn plan(view: &View, nodes: &BTreeMap<String, &Node>) -> Vec<Action> {
    let mut actions = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for (index, (inst, itype)) in view.instances.iter().enumerate() {
        let node = nodes.get(&inst.id);
        seen.insert(inst.id.as_str());
        let name = || node.and_then(|n| n.metadata.name.clone()).unwrap_or_else(|| inst.private_dns_name.clone());
        match (inst.state, node) {
            (InstanceState::Running, None) => {
                let due = inst.running_since.is_some_and(|t| view.now >= t + view.delay);
                if due && itype.is_some() {
                    actions.push(Action::Create { node: inst.private_dns_name.clone(), instance: index });
                }
            }
            (InstanceState::Running, Some(n)) if annotation(n) == Some(KWOK_STOPPED) => {
                actions.push(Action::Restart { node: name() });
            }
            (InstanceState::Stopping | InstanceState::Stopped, Some(n)) if annotation(n) != Some(KWOK_STOPPED) => {
                actions.push(Action::Stop { node: name(), instance: index });
            }
            (InstanceState::ShuttingDown | InstanceState::Terminated, Some(_)) => {
                actions.push(Action::Delete { node: name() });
            }
            _ => {}
        }
    }
    // Nodes whose instance no longer exists (expunged, or from before a restart).
    for (id, n) in nodes {
        if !seen.contains(id.as_str())
            && let Some(name) = n.metadata.name.clone()
        {
            actions.push(Action::Delete { node: name });
        }
    }
    actions
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::nodes::desired::KWOK_MANAGED;

    fn instance(id: &str, state: InstanceState, running_since: Option<Millis>) -> (Instance, Option<InstanceType>) {
        let i = Instance {
            id: id.to_owned(),
            private_dns_name: format!("ip-{id}"),
            state,
            running_since,
            ..Instance::sample()
        };
        (i, Some(InstanceType::default()))
    }

    fn node(name: &str, kwok: &str) -> Node {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": name, "annotations": {KWOK_ANNOTATION: kwok}},
        }))
        .unwrap()
    }

    fn view(instances: Vec<(Instance, Option<InstanceType>)>) -> View {
        View { now: 100_000, delay: 10_000, region: "us-west-2".into(), instances }
    }

    #[test]
    fn a_running_instance_gets_a_node_once_its_registration_delay_has_passed() {
        let v = view(vec![
            instance("i-1", InstanceState::Running, Some(90_000)),
            instance("i-2", InstanceState::Running, Some(95_000)),
            instance("i-3", InstanceState::Pending, None),
        ]);
        assert_eq!(plan(&v, &BTreeMap::new()), vec![Action::Create { node: "ip-i-1".into(), instance: 0 }]);
    }

    #[test]
    fn stopped_restarted_terminated_and_orphaned_nodes_are_each_fixed() {
        let (stopped, restarted, terminated, orphan, fine) = (
            node("ip-i-1", KWOK_MANAGED),
            node("ip-i-2", KWOK_STOPPED),
            node("ip-i-3", KWOK_MANAGED),
            node("ip-i-9", KWOK_MANAGED),
            node("ip-i-4", KWOK_MANAGED),
        );
        let v = view(vec![
            instance("i-1", InstanceState::Stopped, None),
            instance("i-2", InstanceState::Running, Some(0)),
            instance("i-3", InstanceState::Terminated, None),
            instance("i-4", InstanceState::Running, Some(0)),
        ]);
        let nodes: BTreeMap<String, &Node> = [
            ("i-1".to_owned(), &stopped),
            ("i-2".to_owned(), &restarted),
            ("i-3".to_owned(), &terminated),
            ("i-9".to_owned(), &orphan),
            ("i-4".to_owned(), &fine),
        ]
        .into_iter()
        .collect();
        assert_eq!(
            plan(&v, &nodes),
            vec![
                Action::Stop { node: "ip-i-1".into(), instance: 0 },
                Action::Restart { node: "ip-i-2".into() },
                Action::Delete { node: "ip-i-3".into() },
                Action::Delete { node: "ip-i-9".into() },
            ]
        );
    }

    #[test]
    fn nothing_is_written_when_nodes_and_instances_agree() {
        let (running, stopped) = (node("ip-i-1", KWOK_MANAGED), node("ip-i-2", KWOK_STOPPED));
        let v =
            view(vec![instance("i-1", InstanceState::Running, Some(0)), instance("i-2", InstanceState::Stopped, None)]);
        let nodes: BTreeMap<String, &Node> =
            [("i-1".to_owned(), &running), ("i-2".to_owned(), &stopped)].into_iter().collect();
        assert_eq!(plan(&v, &nodes), vec![]);
    }
}
