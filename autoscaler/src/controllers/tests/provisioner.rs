//! The provisioner: a pending pod becomes a NodeClaim written the way Karpenter writes it; a pod
//! nothing can hold gets a FailedScheduling event and no NodeClaim (once, not on every pass).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use k8s_openapi::api::core::v1::Pod;
use serde_json::{Value, json};

use super::support::{ApiServer, FakeCloud, Harness, node_class, node_pool, obj, pod};
use crate::apis::{EC2NodeClass, NodePool};
use crate::controllers::provisioner::{pass, provision};
use crate::scheduling::CapacityType;

fn requirement<'a>(spec: &'a Value, key: &str) -> &'a Value {
    spec["requirements"].as_array().unwrap().iter().find(|r| r["key"] == key).unwrap()
}

/// The default NodeClass and NodePool, and one pending pod `name` requesting `cpu`.
fn with_pending_pod(cloud: &FakeCloud, name: &str, cpu: &str) -> Harness {
    let mut h = Harness::new(cloud);
    h.cache.put(obj::<EC2NodeClass>(node_class()));
    h.cache.put(obj::<NodePool>(node_pool()));
    h.cache.put(obj::<Pod>(pod(name, cpu, None)));
    h
}

#[tokio::test]
async fn a_pending_pod_gets_a_node_claim_and_is_nominated_to_it() {
    let cloud = FakeCloud::start().await;
    let mut h = with_pending_pod(&cloud, "web-1", "1500m");
    let ctx = h.ctx.clone();
    let (results, ()) = tokio::join!(provision(&ctx), async {
        let create = h.api.expect("POST", "/apis/karpenter.sh/v1/nodeclaims").await;
        let (m, spec) = (&create.body["metadata"], &create.body["spec"]);
        assert_eq!(m["generateName"], "default-");
        assert_eq!(m["labels"]["karpenter.sh/nodepool"], "default");
        assert_eq!(m["labels"]["karpenter.sh/capacity-type"], "on-demand", "single-valued requirements are labels");
        assert_eq!(m["finalizers"], json!(["karpenter.sh/termination"]));
        assert_eq!(m["ownerReferences"][0]["kind"], "NodePool");
        assert_eq!(m["ownerReferences"][0]["uid"], "pool-uid");
        assert_eq!(m["annotations"]["karpenter.sh/nodepool-hash-version"], "v3");
        assert_eq!(spec["nodeClassRef"]["name"], "default");
        assert_eq!(requirement(spec, "karpenter.sh/capacity-type")["values"], json!(["on-demand"]));
        let types = requirement(spec, "node.kubernetes.io/instance-type")["values"].as_array().unwrap();
        assert!(types.contains(&json!("m5.large")) && !types.contains(&json!("t3.micro")), "{types:?}");
        assert_eq!(spec["resources"]["requests"]["cpu"], "1500m");
        assert!(spec["requirements"].as_array().unwrap().iter().all(|r| r["key"] != "kubernetes.io/hostname"));
        let mut created = create.body.clone();
        created["metadata"]["name"] = json!("default-x7k2p");
        create.reply(201, created);
        let ev = h.api.expect_event("Nominated", "web-1").await;
        assert_eq!(ev["note"], "Pod should schedule on: nodeclaim/default-x7k2p");
    });
    assert!(results.pod_errors.is_empty(), "{:?}", results.pod_errors);
    assert_eq!(results.new_node_claims.len(), 1);
    h.api.assert_idle();
    assert!(ctx.state.nominations.last("default-x7k2p").is_some(), "disruption must leave it alone a while");
    let mut gate = ctx.event_gate.lock().unwrap();
    assert!(!gate.admit_nominated("web-1-uid", ctx.clock.now()), "the pass went through the event gate");
}

#[tokio::test]
async fn a_pod_no_instance_type_can_hold_gets_an_event_and_no_claim() {
    let cloud = FakeCloud::start().await;
    let mut h = with_pending_pod(&cloud, "huge", "5000");
    let ctx = h.ctx.clone();
    let (results, ()) = tokio::join!(provision(&ctx), async {
        let ev = h.api.expect_event("FailedScheduling", "huge").await;
        assert!(!ev["note"].as_str().unwrap().is_empty(), "says why: {ev}");
    });
    assert_eq!(results.pod_errors.len(), 1);
    assert!(results.new_node_claims.is_empty());
    h.api.assert_idle();
}

#[tokio::test]
async fn a_pod_that_still_cannot_fit_gets_no_second_failed_scheduling_event() {
    let cloud = FakeCloud::start().await;
    let mut h = with_pending_pod(&cloud, "huge", "5000");
    let ctx = h.ctx.clone();
    let ((), ()) = tokio::join!(
        async {
            provision(&ctx).await;
        },
        async {
            h.api.expect_event("FailedScheduling", "huge").await;
        }
    );
    let refused = !ctx.event_gate.lock().unwrap().admit_failed_scheduling("huge-uid", ctx.clock.now());
    assert!(refused, "the pass went through the event gate");
    // The next pass sees a second pod that cannot fit. Events of a pass are sent in the order of
    // the pods' names, so had `huge` been let through again, its event would come first.
    h.cache.put(obj::<Pod>(pod("huge-2", "5000", None)));
    let (results, ()) = tokio::join!(provision(&ctx), async {
        h.api.expect_event("FailedScheduling", "huge-2").await;
    });
    assert_eq!(results.pod_errors.len(), 2, "both still fail: {:?}", results.pod_errors);
    h.api.assert_idle();
}

/// The API server's side of a pass placing pod `web-1` on a new claim: the create is answered
/// as `default-x7k2p`, and the pod's Nominated event arrives.
async fn create_claim_for_web_1(api: &mut ApiServer) {
    let create = api.expect("POST", "/apis/karpenter.sh/v1/nodeclaims").await;
    let mut created = create.body.clone();
    created["metadata"]["name"] = json!("default-x7k2p");
    created["metadata"]["uid"] = json!("x7k2p-uid");
    create.reply(201, created);
    api.expect_event("Nominated", "web-1").await;
}

/// Karpenter's `UpdateNodeClaim` right after the create: a pass that runs before the NodeClaim
/// watch delivers the claim the previous pass made counts it, instead of making another one for
/// the same pods. The cache here never gets the claim, as when the watch lags.
#[tokio::test]
async fn the_next_pass_counts_the_claim_the_last_one_made_before_the_watch_has_it() {
    let cloud = FakeCloud::start().await;
    let mut h = with_pending_pod(&cloud, "web-1", "1500m");
    let ctx = h.ctx.clone();
    let (first, ()) = tokio::join!(provision(&ctx), create_claim_for_web_1(&mut h.api));
    assert_eq!(first.new_node_claims.len(), 1);

    let second = tokio::select! {
        results = provision(&ctx) => results,
        call = h.api.next() => panic!("the second pass made a request: {} {}: {}", call.method, call.path, call.body),
    };
    assert!(second.new_node_claims.is_empty(), "a second claim for the same pod: {:?}", second.new_node_claims);
    assert!(second.pod_errors.is_empty(), "{:?}", second.pod_errors);
    assert!(
        second.existing.contains_key("default-x7k2p"),
        "placed on the claim in flight: {:?}",
        second.existing.keys()
    );
    h.api.assert_idle();
}

/// A pass that cannot read a NodePool's instance types says so, which is what makes the loop try
/// again within a second instead of at the 10 s resync (nothing in the cluster changes when the
/// cloud recovers); the pod gets no claim meanwhile, and one as soon as the cloud answers.
#[tokio::test]
async fn a_pass_reports_the_node_pools_it_had_to_skip_while_the_cloud_fails() {
    let cloud = FakeCloud::start().await;
    let mut h = with_pending_pod(&cloud, "web-1", "1500m");
    let ctx = h.ctx.clone();
    let outage = json!({"operations": ["*"], "code": "UnauthorizedOperation", "status": 403});
    let fault = cloud.admin(reqwest::Method::POST, "/faults", Some(outage)).await;
    let (during, ()) = tokio::join!(pass(&ctx), async {
        h.api.expect_event("FailedScheduling", "web-1").await;
    });
    assert_eq!(during.skipped_pools, ["default"]);
    assert!(during.results.new_node_claims.is_empty());
    h.api.assert_idle();

    cloud.admin(reqwest::Method::DELETE, &format!("/faults/{}", fault["id"].as_str().unwrap()), None).await;
    let (after, ()) = tokio::join!(pass(&ctx), create_claim_for_web_1(&mut h.api));
    assert!(after.skipped_pools.is_empty());
    assert_eq!(after.results.new_node_claims.len(), 1);
}

/// Until the spot price history answers once, spot offerings are priced at on-demand (Karpenter's
/// default) instead of missing, so a spot-only NodePool can launch during an outage of
/// DescribeSpotPriceHistory; EC2's spot prices replace them as soon as it answers.
#[tokio::test]
async fn spot_is_priced_at_on_demand_until_the_spot_price_history_answers() {
    let cloud = FakeCloud::start().await;
    let h = Harness::new(&cloud);
    let class: EC2NodeClass = obj(node_class());
    let m5_prices = || async {
        let types = h.ctx.cloud.instance_types(&class, None).await.unwrap();
        let m5 = types.iter().find(|t| t.name == "m5.large").unwrap().clone();
        let on_demand = m5.offerings.iter().find(|o| o.capacity_type == CapacityType::OnDemand).unwrap().price;
        let spot: Vec<(f64, bool)> = m5
            .offerings
            .iter()
            .filter(|o| o.capacity_type == CapacityType::Spot)
            .map(|o| (o.price, o.available))
            .collect();
        assert!(!spot.is_empty(), "no spot offering: {:?}", m5.offerings);
        (on_demand, spot)
    };
    let outage = json!({"operations": ["DescribeSpotPriceHistory"], "code": "UnauthorizedOperation", "status": 403});
    let fault = cloud.admin(reqwest::Method::POST, "/faults", Some(outage)).await;
    let (on_demand, spot) = m5_prices().await;
    assert!(spot.iter().all(|&(price, available)| price == on_demand && available), "{spot:?} vs {on_demand}");

    cloud.admin(reqwest::Method::DELETE, &format!("/faults/{}", fault["id"].as_str().unwrap()), None).await;
    let (on_demand, spot) = m5_prices().await;
    assert!(spot.iter().all(|&(price, _)| price < on_demand), "EC2's spot prices: {spot:?} vs {on_demand}");
}
