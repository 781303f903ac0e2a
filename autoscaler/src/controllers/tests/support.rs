//! Test support for the controllers' own tests: a scripted Kubernetes API server (kube's client
//! over a `tower-test` mock, the way kube-rs tests reconcilers), caches filled by hand, fake-ec2
//! in-process behind the real AWS SDK clients, a manual clock, and builders for the objects.
//!
//! A test runs the reconcile and a scenario side by side: the scenario takes each request the
//! controller makes, asserts its method, path and body, and answers it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::{Request, Response};
use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::Client;
use kube::client::Body;
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::reflector::store::Writer;
use kube::runtime::watcher;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use tokio::sync::watch;
use tower_test::mock::{Handle, SendResponse};

use crate::apis::{EC2NodeClass, NodeClaim, NodePool};
use crate::clock::ManualClock;
use crate::cloud::{AwsClients, ClusterInfo};
use crate::controllers::context::Context;
use crate::controllers::state::{ClusterState, CreatedClaims, Nominations};
use crate::metrics::Metrics;
use crate::options::Options;
use crate::provider::CloudProvider;

/// The cluster fake-ec2's default world is tagged for.
pub const CLUSTER: &str = "fake-cluster";
/// Where the manual clock starts: every timestamp in the tests is relative to it.
pub const T0: &str = "2026-01-01T00:00:00Z";
/// How long a scenario waits for the controller's next request before failing.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(20);

/// A value from JSON, for objects written the way they look in a manifest.
pub fn obj<K: DeserializeOwned>(v: Value) -> K {
    serde_json::from_value(v).unwrap()
}

/// `T0` plus `secs`, as the API server writes times.
pub fn at(secs: i64) -> String {
    let t0: chrono::DateTime<chrono::Utc> = T0.parse().unwrap();
    (t0 + chrono::Duration::seconds(secs)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

// ---------------------------------------------------------------------------------------------
// The API server.

/// The controller's side of the API: every request it makes arrives here, in order.
pub struct ApiServer {
    handle: Handle<Request<Body>, Response<Body>>,
}

/// One request, waiting for its answer.
pub struct Call {
    pub method: String,
    pub path: String,
    /// The JSON body (Null when there is none).
    pub body: Value,
    reply: SendResponse<Response<Body>>,
}

/// A kube client whose requests go to the returned [`ApiServer`].
pub fn mock_api() -> (Client, ApiServer) {
    let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    (Client::new(service, "default"), ApiServer { handle })
}

impl ApiServer {
    /// The next request; fails the test if none comes.
    pub async fn next(&mut self) -> Call {
        let (req, reply) = tokio::time::timeout(REQUEST_TIMEOUT, self.handle.next_request())
            .await
            .expect("the controller made no further request")
            .expect("the client went away");
        let method = req.method().to_string();
        let path = req.uri().path().to_owned();
        let bytes = req.into_body().collect_bytes().await.unwrap();
        let body = if bytes.is_empty() { Value::Null } else { serde_json::from_slice(&bytes).unwrap() };
        Call { method, path, body, reply }
    }

    /// The next request, which must be `method path`.
    pub async fn expect(&mut self, method: &str, path: &str) -> Call {
        let call = self.next().await;
        assert_eq!((call.method.as_str(), call.path.as_str()), (method, path), "unexpected request: {}", call.body);
        call
    }

    /// The next request must publish an event with this reason (about the NodeClaim, Node or
    /// pod named `regarding`); answered as created. Returns the event.
    pub async fn expect_event(&mut self, reason: &str, regarding: &str) -> Value {
        let call = self.next().await;
        assert_eq!(call.method, "POST", "expected an event {reason}, got {} {}: {}", call.method, call.path, call.body);
        assert!(call.path.ends_with("/events"), "expected an event {reason}, got {}", call.path);
        assert_eq!(call.body["reason"], reason, "{}", call.body);
        assert_eq!(call.body["regarding"]["name"], regarding, "{}", call.body);
        let event = call.body.clone();
        call.reply(201, event.clone());
        event
    }

    /// Fails if a request is waiting (call once the reconcile has returned).
    pub fn assert_idle(&mut self) {
        use futures::FutureExt;
        if let Some(Some((req, _))) = self.handle.next_request().now_or_never() {
            panic!("unexpected request: {} {}", req.method(), req.uri());
        }
    }
}

impl Call {
    pub fn reply(self, status: u16, body: Value) {
        let response = Response::builder().status(status).body(Body::from(serde_json::to_vec(&body).unwrap())).unwrap();
        self.reply.send_response(response);
    }

    /// 200 with `body` (kube reads the object a write returns).
    pub fn ok(self, body: impl serde::Serialize) {
        let v = serde_json::to_value(body).unwrap();
        self.reply(200, v);
    }

    pub fn not_found(self) {
        self.reply(404, status("Failure", "NotFound", 404));
    }

    /// A `Status` answer (deletes of things without a finalizer, evictions).
    pub fn success(self) {
        self.reply(200, status("Success", "", 200));
    }
}

fn status(status: &str, reason: &str, code: u16) -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": status, "reason": reason, "code": code, "message": reason})
}

// ---------------------------------------------------------------------------------------------
// The caches.

/// The informer caches, written by hand (what the watches would have delivered).
#[derive(Default)]
pub struct Cache {
    pods: Writer<Pod>,
    nodes: Writer<Node>,
    claims: Writer<NodeClaim>,
    pools: Writer<NodePool>,
    classes: Writer<EC2NodeClass>,
    daemon_sets: Writer<DaemonSet>,
}

/// Kinds the cache holds.
pub trait Cached: kube::Resource<DynamicType = ()> + Clone + 'static {
    fn writer(cache: &mut Cache) -> &mut Writer<Self>;
}

macro_rules! cached {
    ($kind:ty, $field:ident) => {
        impl Cached for $kind {
            fn writer(cache: &mut Cache) -> &mut Writer<Self> {
                &mut cache.$field
            }
        }
    };
}
cached!(Pod, pods);
cached!(Node, nodes);
cached!(NodeClaim, claims);
cached!(NodePool, pools);
cached!(EC2NodeClass, classes);
cached!(DaemonSet, daemon_sets);

impl Cache {
    /// Adds or replaces an object.
    pub fn put<K: Cached>(&mut self, obj: K) {
        K::writer(self).apply_watcher_event(&watcher::Event::Apply(obj));
    }

    /// What the controllers read: these caches (no watch behind them).
    pub fn state(&self) -> ClusterState {
        let (_, provisioning_triggered) = watch::channel(0u64);
        let (_, capacity_changed) = watch::channel(0u64);
        ClusterState {
            pods: self.pods.as_reader(),
            nodes: self.nodes.as_reader(),
            node_claims: self.claims.as_reader(),
            node_pools: self.pools.as_reader(),
            node_classes: self.classes.as_reader(),
            daemon_sets: self.daemon_sets.as_reader(),
            provisioning_triggered,
            capacity_changed,
            nominations: Nominations::default(),
            interrupted: Nominations::default(),
            created: CreatedClaims::default(),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The cloud.

/// fake-ec2 in-process on its manual clock, answering the real SDK clients.
pub struct FakeCloud {
    pub clients: AwsClients,
    pub endpoint: String,
    http: reqwest::Client,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl FakeCloud {
    pub async fn start() -> FakeCloud {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let text = std::fs::read_to_string(root.join("fixtures/worlds/default.yaml")).unwrap();
        let text = text.replace("mode: real", "mode: manual");
        let cfg = fake_ec2::world::config::WorldConfig::parse(&text, "default.yaml").unwrap();
        let world = fake_ec2::cloud::Cloud::new(cfg, 7, &root.join("fixtures/worlds")).unwrap();
        let listener = fake_ec2::server::bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let (tx, rx) = tokio::sync::oneshot::channel();
        tokio::spawn(fake_ec2::server::serve(listener, fake_ec2::server::AppState::new(world), async {
            let _ = rx.await;
        }));
        FakeCloud { clients: clients(&endpoint).await, endpoint, http: reqwest::Client::new(), _stop: tx }
    }

    /// Calls fake-ec2's admin API (`/_fake/...`).
    pub async fn admin(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut req = self.http.request(method, format!("{}/_fake{path}", self.endpoint));
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        assert!(resp.status().is_success(), "admin {path}: {}", resp.status());
        resp.json().await.unwrap()
    }

    /// Moves the world's clock (instance lifecycles), not the controllers'.
    pub async fn advance(&self, secs: f64) {
        self.admin(reqwest::Method::POST, "/clock", Some(json!({"advance_seconds": secs}))).await;
    }

    /// fake-ec2's instances: id, state, type, zone, tags.
    pub async fn instances(&self) -> Vec<Value> {
        match self.admin(reqwest::Method::GET, "/instances", None).await {
            Value::Array(list) => list,
            other => panic!("instances: {other}"),
        }
    }
}

async fn clients(endpoint: &str) -> AwsClients {
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-west-2"))
        .endpoint_url(endpoint)
        .credentials_provider(aws_sdk_ec2::config::Credentials::new("AKIDTEST", "secret", None, None, "test"))
        .load()
        .await;
    AwsClients::from_sdk_config(&sdk)
}

// ---------------------------------------------------------------------------------------------
// The context.

/// A controller context over the mock API server, the hand-filled caches and `cloud`.
pub struct Harness {
    pub ctx: Arc<Context>,
    pub api: ApiServer,
    pub cache: Cache,
    pub clock: Arc<ManualClock>,
}

impl Harness {
    /// With fake-ec2 behind the cloud provider.
    pub fn new(cloud: &FakeCloud) -> Harness {
        Harness::with_clients(&cloud.clients)
    }

    /// With no cloud at all: for controllers that must not call it (a call fails, slowly).
    pub async fn without_cloud() -> Harness {
        Harness::with_clients(&clients("http://127.0.0.1:9").await)
    }

    fn with_clients(aws: &AwsClients) -> Harness {
        let (client, api) = mock_api();
        let cache = Cache::default();
        let clock = Arc::new(ManualClock::new(Instant::now(), T0.parse().unwrap()));
        let cluster = ClusterInfo {
            name: CLUSTER.into(),
            endpoint: "https://127.0.0.1:6443".into(),
            ca_bundle: String::new(),
            cidr: "10.100.0.0/16".into(),
            kubernetes_version: "1.34".into(),
            dns_ip: Some("10.100.0.10".into()),
        };
        let ctx = Context {
            client: client.clone(),
            state: cache.state(),
            cloud: Arc::new(CloudProvider::new(aws, cluster, clock.clone())),
            metrics: Metrics::new(),
            recorder: Recorder::new(client, Reporter { controller: "karpenter".into(), instance: None }),
            event_gate: Default::default(),
            options: Options::from_args(["--cluster-name", CLUSTER]).unwrap(),
            sqs: aws.sqs.clone(),
            clock: clock.clone(),
        };
        Harness { ctx: Arc::new(ctx), api, cache, clock }
    }
}

// ---------------------------------------------------------------------------------------------
// Objects, as manifests.

/// fake-ec2's default world: subnets and security groups tagged for the cluster, AL2023 AMIs.
pub fn node_class() -> Value {
    let discovery = json!([{"tags": {"karpenter.sh/discovery": CLUSTER}}]);
    json!({
        "apiVersion": "karpenter.k8s.aws/v1", "kind": "EC2NodeClass",
        "metadata": {"name": "default", "generation": 1},
        "spec": {"role": "KarpenterNodeRole", "amiSelectorTerms": [{"alias": "al2023@latest"}],
            "subnetSelectorTerms": discovery, "securityGroupSelectorTerms": discovery},
    })
}

pub fn node_pool() -> Value {
    json!({
        "apiVersion": "karpenter.sh/v1", "kind": "NodePool",
        "metadata": {"name": "default", "uid": "pool-uid", "generation": 1},
        "spec": {"template": {"spec": {
            "nodeClassRef": {"group": "karpenter.k8s.aws", "kind": "EC2NodeClass", "name": "default"},
            "requirements": [{"key": "karpenter.sh/capacity-type", "operator": "In", "values": ["on-demand"]}],
        }}},
    })
}

/// A NodeClaim as the provisioner creates it, created at `T0`, not launched.
pub fn node_claim(name: &str) -> Value {
    json!({
        "apiVersion": "karpenter.sh/v1", "kind": "NodeClaim",
        "metadata": {"name": name, "uid": format!("{name}-uid"), "creationTimestamp": T0, "generation": 1,
            "labels": {"karpenter.sh/nodepool": "default"}, "finalizers": ["karpenter.sh/termination"]},
        "spec": {
            "nodeClassRef": {"group": "karpenter.k8s.aws", "kind": "EC2NodeClass", "name": "default"},
            "requirements": [
                {"key": "karpenter.sh/capacity-type", "operator": "In", "values": ["on-demand"]},
                {"key": "node.kubernetes.io/instance-type", "operator": "In", "values": ["m5.large"]},
            ],
            "resources": {"requests": {"cpu": "1", "memory": "1Gi", "pods": "1"}},
        },
    })
}

/// A condition as the NodeClaim's status carries it.
pub fn condition(type_: &str, status: &str, at_secs: i64) -> Value {
    json!({"type": type_, "status": status, "reason": type_, "message": "", "lastTransitionTime": at(at_secs)})
}

/// `name`'s claim launched as `provider_id` at `T0`, with the given further conditions true.
pub fn launched_claim(name: &str, provider_id: &str, node: Option<&str>, conditions: &[&str]) -> Value {
    let mut v = node_claim(name);
    let labels = &mut v["metadata"]["labels"];
    labels["node.kubernetes.io/instance-type"] = json!("m5.large");
    labels["topology.kubernetes.io/zone"] = json!("us-west-2a");
    labels["karpenter.sh/capacity-type"] = json!("on-demand");
    let mut conds = vec![condition("Launched", "True", 0)];
    conds.extend(conditions.iter().map(|c| condition(c, "True", 0)));
    v["status"] = json!({"providerID": provider_id, "imageID": "ami-0a0b0c0d0e0f10111", "conditions": conds,
        "capacity": {"cpu": "2", "memory": "7577Mi", "pods": "29"},
        "allocatable": {"cpu": "1930m", "memory": "6903Mi", "pods": "29"}});
    if let Some(n) = node {
        v["status"]["nodeName"] = json!(n);
    }
    v
}

/// A Node as the kubelet registers it for `provider_id`; Ready when `ready`.
pub fn node(name: &str, provider_id: &str, ready: bool) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "uid": format!("{name}-uid"), "resourceVersion": "7",
            "labels": {"kubernetes.io/hostname": name, "karpenter.sh/nodepool": "default",
                "node.kubernetes.io/instance-type": "m5.large", "topology.kubernetes.io/zone": "us-west-2a",
                "karpenter.sh/capacity-type": "on-demand"}},
        "spec": {"providerID": provider_id,
            "taints": [{"key": "karpenter.sh/unregistered", "effect": "NoExecute"}]},
        "status": {"allocatable": {"cpu": "1930m", "memory": "6903Mi", "pods": "29"},
            "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}]},
    })
}

/// A pod of a ReplicaSet requesting `cpu`, bound to `node` (or pending and unschedulable).
pub fn pod(name: &str, cpu: &str, node: Option<&str>) -> Value {
    let mut v = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": "default", "uid": format!("{name}-uid"), "labels": {"app": "web"},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web", "uid": "rs", "controller": true}]},
        "spec": {"containers": [{"name": "c", "image": "i", "resources": {"requests": {"cpu": cpu, "memory": "256Mi"}}}]},
    });
    match node {
        Some(n) => {
            v["spec"]["nodeName"] = json!(n);
            v["status"] = json!({"phase": "Running"});
        }
        None => {
            v["status"] = json!({"phase": "Pending",
                "conditions": [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable"}]});
        }
    }
    v
}
