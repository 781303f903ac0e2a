//! EC2NodeClass status: what its selectors resolve to in fake-ec2, and readiness saying what
//! matched nothing.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use serde_json::{Value, json};

use super::support::{FakeCloud, Harness, node_class, obj};
use crate::apis::EC2NodeClass;
use crate::controllers::nodeclass::update;

fn condition<'a>(status: &'a Value, type_: &str) -> &'a Value {
    status["conditions"].as_array().unwrap().iter().find(|c| c["type"] == type_).unwrap()
}

#[tokio::test]
async fn status_lists_what_the_selectors_resolve_to() {
    let cloud = FakeCloud::start().await;
    let mut h = Harness::new(&cloud);
    let class: EC2NodeClass = obj(node_class());
    let ctx = h.ctx.clone();
    let (result, ()) = tokio::join!(update(&ctx, &class), async {
        let patch = h.api.expect("PATCH", "/apis/karpenter.k8s.aws/v1/ec2nodeclasses/default/status").await;
        let s = &patch.body["status"];
        let zones: Vec<&Value> = s["subnets"].as_array().unwrap().iter().map(|s| &s["zone"]).collect();
        assert_eq!(zones, [&json!("us-west-2a"), &json!("us-west-2b"), &json!("us-west-2c")]);
        assert_eq!(s["securityGroups"].as_array().unwrap().len(), 2, "{s}");
        // Each image of the alias with its variant's requirements, as Karpenter's status.amis:
        // (arch, the GPU-count operator) for AL2023's standard and NVIDIA images, and the Neuron one.
        let req = |a: &Value, key: &str| {
            a["requirements"].as_array().unwrap().iter().find(|r| r["key"] == key).cloned().unwrap_or(Value::Null)
        };
        let mut amis: Vec<(String, String)> = s["amis"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| {
                let arch = req(a, "kubernetes.io/arch")["values"][0].as_str().unwrap_or_default().to_owned();
                let gpu = req(a, "karpenter.k8s.aws/instance-gpu-count")["operator"].as_str().unwrap_or("-").to_owned();
                (arch, gpu)
            })
            .collect();
        amis.sort();
        let pair = |a: &str, g: &str| (a.to_owned(), g.to_owned());
        assert_eq!(
            amis,
            [
                pair("amd64", "-"),
                pair("amd64", "DoesNotExist"),
                pair("amd64", "Exists"),
                pair("arm64", "DoesNotExist"),
                pair("arm64", "Exists")
            ]
        );
        assert_eq!(s["instanceProfile"], "fake-cluster_default");
        assert_eq!(condition(s, "Ready")["status"], "True");
        patch.ok(&class);
    });
    result.unwrap();
    h.api.assert_idle();
}

#[tokio::test]
async fn a_selector_matching_nothing_makes_the_class_not_ready() {
    let cloud = FakeCloud::start().await;
    let mut h = Harness::new(&cloud);
    let mut v = node_class();
    v["spec"]["subnetSelectorTerms"] = json!([{"tags": {"karpenter.sh/discovery": "no-such-cluster"}}]);
    let class: EC2NodeClass = obj(v);
    let ctx = h.ctx.clone();
    let (result, ()) = tokio::join!(update(&ctx, &class), async {
        let patch = h.api.expect("PATCH", "/apis/karpenter.k8s.aws/v1/ec2nodeclasses/default/status").await;
        let s = &patch.body["status"];
        let subnets = condition(s, "SubnetsReady");
        assert_eq!((&subnets["status"], &subnets["reason"]), (&json!("False"), &json!("SubnetsNotFound")));
        let ready = condition(s, "Ready");
        assert_eq!(ready["status"], "False");
        assert!(ready["message"].as_str().unwrap().contains("did not match any Subnets"), "{ready}");
        assert_eq!(condition(s, "SecurityGroupsReady")["status"], "True");
        patch.ok(&class);
    });
    result.unwrap();
    h.api.assert_idle();
}
