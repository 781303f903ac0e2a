//! The AWS layer against fake-ec2 in-process (manual world clock), through the real SDK clients.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use autoscaler::clock::{ManualClock, SharedClock};
use autoscaler::cloud::fleet::instance_tags;
use autoscaler::cloud::*;
use autoscaler::scheduling::{CapacityType, Requirement, Requirements};
use aws_config::{BehaviorVersion, Region};
use aws_sdk_ec2::config::Credentials;
use testkit::fake::Server;
const CLUSTER: &str = "fake-cluster";

struct Env {
    /// fake-ec2 serving the default world (stops when the Env is dropped).
    fake: Server,
    clients: AwsClients,
    clock: Arc<ManualClock>,
    unavailable: Arc<UnavailableOfferings>,
    templates: Arc<LaunchTemplateProvider>,
    fleet: FleetProvider,
    instances: InstanceProvider,
    resolver: NodeClassResolver,
}

impl Env {
    async fn start() -> Self {
        let fake = Server::start(testkit::fake::world(7)).await;
        let endpoint = fake.endpoint.clone();
        // What a deployment gets from AWS_REGION / AWS_ENDPOINT_URL and the credential chain.
        let sdk = aws_config::defaults(BehaviorVersion::latest())
            .region(Region::new("us-west-2"))
            .endpoint_url(&endpoint)
            .credentials_provider(Credentials::new("AKIDTEST", "secret", None, None, "test"))
            .load()
            .await;
        let clients = AwsClients::from_sdk_config(&sdk);
        let clock = Arc::new(ManualClock::new(Instant::now(), chrono::Utc::now()));
        let shared: SharedClock = clock.clone();
        let unavailable = Arc::new(UnavailableOfferings::new(shared.clone()));
        let templates = Arc::new(LaunchTemplateProvider::new(clients.ec2.clone(), shared.clone()));
        let fleet = FleetProvider::new(clients.ec2.clone(), templates.clone(), unavailable.clone(), shared);
        Self {
            fake,
            instances: InstanceProvider::new(clients.ec2.clone()),
            resolver: NodeClassResolver::new(clients.ec2.clone(), clients.ssm.clone()),
            clients,
            clock,
            unavailable,
            templates,
            fleet,
        }
    }

    fn shared_clock(&self) -> SharedClock {
        self.clock.clone()
    }

    /// Moves fake-ec2's world clock (instance lifecycles), not ours.
    fn advance_world(&self, secs: i64) {
        let mut w = self.fake.state.cloud();
        w.clock.advance(secs * 1000);
        w.sync();
    }

    fn set_spot_capacity(&self, instance_type: &str, zone: &str, cap: u32) {
        let mut w = self.fake.state.cloud();
        let pool = w.ec2.pool_of(instance_type, zone).unwrap();
        w.ec2.pools.set_capacity(CapacityType::Spot, pool, cap);
    }

    fn world_launch_templates(&self) -> usize {
        self.fake.state.cloud().ec2.launch_templates.len()
    }

    async fn subnets(&self) -> Vec<Subnet> {
        self.resolver.subnets(&[SelectorTerm::tags([("karpenter.sh/discovery", CLUSTER)])]).await.unwrap()
    }

    fn template(&self, image_id: &str) -> LaunchTemplateSpec {
        let registration = userdata::NodeRegistration {
            cluster: userdata::Cluster { name: CLUSTER.into(), ..Default::default() },
            labels: BTreeMap::from([("karpenter.sh/nodepool".into(), "default".into())]),
            taints: vec![userdata::Taint {
                key: "karpenter.sh/unregistered".into(),
                value: None,
                effect: "NoExecute".into(),
            }],
            ..Default::default()
        };
        LaunchTemplateSpec {
            cluster_name: CLUSTER.into(),
            nodeclass_name: "default".into(),
            image_id: image_id.into(),
            user_data: registration.to_base64(),
            security_group_ids: vec!["sg-0123456789abcdef0".into(), "sg-0fedcba9876543210".into()],
            instance_profile: "KarpenterNodeInstanceProfile-fake-cluster".into(),
            metadata_options: MetadataOptions::default(),
            block_device_mappings: vec![BlockDeviceMapping::al2023_root()],
            detailed_monitoring: false,
            tags: BTreeMap::from([("team".into(), "bench".into())]),
        }
    }

    async fn request(&self, claim: &str, ct: CapacityType, types_zones: &[(&str, &str)]) -> LaunchRequest {
        LaunchRequest {
            nodeclaim_name: claim.into(),
            capacity_type: ct,
            launch_templates: vec![self.template(AMD64_AMI)],
            overrides: types_zones
                .iter()
                .map(|(t, z)| LaunchOverride {
                    instance_type: (*t).into(),
                    zone: (*z).into(),
                    image_id: AMD64_AMI.into(),
                    price: 0.05,
                })
                .collect(),
            subnets: self.subnets().await,
            tags: instance_tags(
                &BTreeMap::from([("team".into(), "bench".into())]),
                CLUSTER,
                "default",
                "default",
                claim,
            ),
        }
    }
}

const AMD64_AMI: &str = "ami-0a0b0c0d0e0f10111";
const ZONES: [&str; 3] = ["us-west-2a", "us-west-2b", "us-west-2c"];

#[tokio::test]
async fn instance_types_offerings_and_prices_for_the_real_catalog() {
    let env = Env::start().await;
    let types = InstanceTypeProvider::new(env.clients.ec2.clone(), env.shared_clock());
    let all = types.list().await.unwrap();
    let catalog: Vec<serde_json::Value> =
        serde_json::from_str(include_str!("../../fixtures/catalog/ec2-instance-types-us-west-2.json")).unwrap();
    assert_eq!(all.len(), catalog.len());
    let m5 = all.iter().find(|t| t.name == "m5.large").unwrap();
    assert_eq!(m5.zones.iter().map(String::as_str).collect::<Vec<_>>(), ZONES);
    assert_eq!((m5.vcpus, m5.memory_mib, m5.arch.as_str(), m5.max_pods), (2, 8192, "amd64", 29));
    // What fake-ec2's kubelet registers for m5.large: allocatable cpu 1930m, 29 pods; our memory
    // estimate (Karpenter's, whole MiB) stays at or below the Node's 7069286Ki.
    assert_eq!(m5.allocatable["cpu"], "1930m");
    assert_eq!(m5.allocatable["pods"], "29");
    assert_eq!(m5.capacity["memory"], "7577Mi");
    assert_eq!(m5.allocatable["memory"], "6903Mi");
    assert_eq!(m5.labels["karpenter.k8s.aws/instance-family"], "m5");
    assert_eq!(m5.labels["karpenter.k8s.aws/instance-generation"], "5");
    assert_eq!(m5.labels["karpenter.k8s.aws/instance-hypervisor"], "nitro");
    assert_eq!(m5.labels["kubernetes.io/arch"], "amd64");
    assert!(all.iter().any(|t| t.arch == "arm64"));

    // Cached on the injected clock: a second list within 5 minutes is the same Arc.
    assert!(Arc::ptr_eq(&all, &types.list().await.unwrap()));
    env.clock.advance(Duration::from_secs(301));
    assert!(!Arc::ptr_eq(&all, &types.list().await.unwrap()));

    let pricing = Arc::new(Pricing::new(
        env.clients.ec2.clone(),
        env.clients.pricing.clone(),
        &env.clients.region,
        env.shared_clock(),
    ));
    pricing.refresh().await.unwrap();
    assert_eq!(pricing.on_demand("m5.large"), Some(0.096));
    let offerings = Offerings::new(pricing.clone(), env.unavailable.clone());
    let offs = offerings.offerings(m5);
    assert_eq!(offs.len(), 6, "{offs:?}");
    for o in &offs {
        assert!(o.price > 0.0 && o.available, "{o:?}");
        if o.capacity_type == CapacityType::Spot {
            assert!(o.price < 0.096, "spot below on-demand: {o:?}");
        }
    }
    env.unavailable.mark_unavailable("m5.large", "us-west-2a", CapacityType::Spot, "test");
    let off = offerings.offerings(m5);
    let a_spot = off.iter().find(|o| o.zone == "us-west-2a" && o.capacity_type == CapacityType::Spot).unwrap();
    assert!(!a_spot.available);
}

#[tokio::test]
async fn nodeclass_selectors_resolve_the_default_world() {
    let env = Env::start().await;
    env.clients.check_ec2_connectivity().await.unwrap();
    let discovery = [SelectorTerm::tags([("karpenter.sh/discovery", CLUSTER)])];
    let subnets = env.resolver.subnets(&discovery).await.unwrap();
    assert_eq!(subnets.iter().map(|s| s.zone.as_str()).collect::<Vec<_>>(), ZONES);
    assert!(subnets.iter().all(|s| s.available_ips > 8000 && s.zone_id.starts_with("usw2-az")));
    let by_id = SelectorTerm { id: Some("subnet-0b2b2b2b2b2b2b2b2".into()), ..Default::default() };
    assert_eq!(env.resolver.subnets(&[by_id]).await.unwrap().len(), 1);
    let any_value = SelectorTerm::tags([("karpenter.sh/discovery", "*")]);
    assert_eq!(env.resolver.subnets(&[any_value]).await.unwrap().len(), 3);

    let sgs = env.resolver.security_groups(&discovery).await.unwrap();
    assert_eq!(sgs.iter().map(|g| g.id.as_str()).collect::<Vec<_>>(), ["sg-0123456789abcdef0", "sg-0fedcba9876543210"]);
    let by_name = SelectorTerm { name: Some("default".into()), ..Default::default() };
    assert_eq!(env.resolver.security_groups(&[by_name]).await.unwrap()[0].id, "sg-0d0e0f0a0b0c0d0e0");

    let by_name = SelectorTerm { name: Some("amazon-eks-node-al2023-*-standard-1.34-*".into()), ..Default::default() };
    let amis = env.resolver.amis(&[by_name], "1.34").await.unwrap();
    assert_eq!(image_for(&arch("amd64"), &amis).unwrap().id, AMD64_AMI);
    assert_eq!(image_for(&arch("arm64"), &amis).unwrap().id, "ami-0a0b0c0d0e0f20222");
    let by_id = SelectorTerm { id: Some(AMD64_AMI.into()), ..Default::default() };
    assert_eq!(env.resolver.amis(&[by_id], "1.34").await.unwrap().len(), 1);

    let nothing = [SelectorTerm::tags([("karpenter.sh/discovery", "no-such-cluster")])];
    let err = env.resolver.subnets(&nothing).await.unwrap_err();
    assert_eq!(err.to_string(), "SubnetsReady=False (SubnetsNotFound): SubnetSelector did not match any Subnets");
    let err = env.resolver.security_groups(&nothing).await.unwrap_err();
    assert!(err.to_string().starts_with("SecurityGroupsReady=False"), "{err}");
    let err = env.resolver.amis(&nothing, "1.34").await.unwrap_err();
    assert!(err.to_string().starts_with("AMIsReady=False (AMINotFound)"), "{err}");
}

fn arch(arch: &str) -> Requirements {
    Requirements::new().with("kubernetes.io/arch", Requirement::in_values([arch]))
}

/// An instance type's requirements as the catalog gives them: CPU-only or with GPUs.
fn instance(arch: &str, gpus: Option<&str>) -> Requirements {
    let gpu = gpus.map_or_else(Requirement::does_not_exist, |n| Requirement::in_values([n]));
    self::arch(arch)
        .with("karpenter.k8s.aws/instance-gpu-count", gpu)
        .with("karpenter.k8s.aws/instance-accelerator-count", Requirement::does_not_exist())
}

/// Which image each kind of instance type gets from the terms: (amd64, arm64, amd64 GPU, arm64 GPU).
async fn images_of(env: &Env, terms: &[SelectorTerm]) -> [Option<String>; 4] {
    let amis = env.resolver.amis(terms, "1.34").await.unwrap();
    [instance("amd64", None), instance("arm64", None), instance("amd64", Some("1")), instance("arm64", Some("4"))]
        .map(|t| image_for(&t, &amis).map(|a| a.id.clone()))
}

async fn images(env: &Env, alias: &str) -> [Option<String>; 4] {
    images_of(env, &[SelectorTerm { alias: Some(alias.into()), ..Default::default() }]).await
}

#[tokio::test]
async fn ami_aliases_of_every_family_resolve_through_ssm() {
    let env = Env::start().await;
    let some = |s: &str| Some(s.to_owned());
    assert_eq!(
        images(&env, "al2023@latest").await,
        [some(AMD64_AMI), some("ami-0a0b0c0d0e0f20222"), some("ami-0a202313400000003"), some("ami-0a202313400000004"),]
    );
    // As Karpenter: no AL2 alias from Kubernetes 1.33 on; AL2 images by name still work (and,
    // not being an alias's, carry only their architecture: GPU types may use them too).
    let al2_alias = [SelectorTerm { alias: Some("al2@latest".into()), ..Default::default() }];
    let err = env.resolver.amis(&al2_alias, "1.34").await.unwrap_err().to_string();
    assert!(err.contains("AL2 aliases are no longer supported on EKS 1.33+"), "{err}");
    let by_name = |n: &str| SelectorTerm { name: Some(n.into()), ..Default::default() };
    let al2 = [by_name("amazon-eks-node-1.34-*"), by_name("amazon-eks-arm64-node-1.34-*")];
    assert_eq!(
        images_of(&env, &al2).await,
        [
            some("ami-0a200013400000001"),
            some("ami-0a200013400000002"),
            some("ami-0a200013400000001"),
            some("ami-0a200013400000002"),
        ]
    );
    let bottlerocket = [
        some("ami-0b000013400000001"),
        some("ami-0b000013400000002"),
        some("ami-0b000013400000003"),
        some("ami-0b000013400000004"),
    ];
    assert_eq!(images(&env, "bottlerocket@latest").await, bottlerocket);
    assert_eq!(images(&env, "bottlerocket@v1.50.0").await, bottlerocket);
    assert_eq!(images(&env, "al2023@v20251120").await[1], some("ami-0a0b0c0d0e0f20222"));

    // Status lists each variant with its requirements, as Karpenter's status.amis does.
    let term = SelectorTerm { alias: Some("bottlerocket@latest".into()), ..Default::default() };
    let amis = env.resolver.amis(&[term], "1.34").await.unwrap();
    assert_eq!(amis.len(), 4);
    let nvidia = amis.iter().find(|a| a.id == "ami-0b000013400000003").unwrap();
    assert_eq!(nvidia.requirements.get("karpenter.k8s.aws/instance-gpu-count"), &Requirement::exists());
    assert!(nvidia.requirements.get("kubernetes.io/arch").has("amd64"));

    let missing = SelectorTerm { alias: Some("bottlerocket@v9.9.9".into()), ..Default::default() };
    let err = env.resolver.amis(&[missing], "1.34").await.unwrap_err();
    assert!(err.to_string().contains("failed to discover any AMIs for alias bottlerocket@v9.9.9"), "{err}");
}

#[tokio::test]
async fn launch_templates_are_created_once_and_reused() {
    let env = Env::start().await;
    let spec = env.template(AMD64_AMI);
    let name = env.templates.ensure(&spec).await.unwrap();
    assert!(name.starts_with("karpenter.k8s.aws/"), "{name}");
    assert_eq!(env.world_launch_templates(), 1);
    assert_eq!(env.templates.ensure(&spec).await.unwrap(), name);
    // A fresh provider (restart) finds it by name instead of creating another.
    let fresh = LaunchTemplateProvider::new(env.clients.ec2.clone(), env.shared_clock());
    assert_eq!(fresh.ensure(&spec).await.unwrap(), name);
    assert_eq!(env.world_launch_templates(), 1);

    let lt = env.clients.ec2.describe_launch_templates().launch_template_names(&name).send().await.unwrap();
    let tags: BTreeMap<_, _> = lt.launch_templates()[0]
        .tags()
        .iter()
        .map(|t| (t.key().unwrap_or_default(), t.value().unwrap_or_default()))
        .collect();
    assert_eq!(tags.get("karpenter.k8s.aws/cluster"), Some(&CLUSTER));
    assert_eq!(tags.get("karpenter.k8s.aws/ec2nodeclass"), Some(&"default"));
    assert_eq!(tags.get("team"), Some(&"bench"));

    // Other content, other template.
    let mut other = spec.clone();
    other.user_data = userdata::render_base64(userdata::Family::Bottlerocket, &Default::default(), None).unwrap();
    assert_ne!(env.templates.ensure(&other).await.unwrap(), name);
    assert_eq!(env.world_launch_templates(), 2);

    let deleted = env.templates.delete_all_for_nodeclass(CLUSTER, "default").await.unwrap();
    assert_eq!(deleted.len(), 2);
    assert_eq!(env.world_launch_templates(), 0);
}

#[tokio::test]
async fn launches_a_spot_m5_large_with_karpenters_tags() {
    let env = Env::start().await;
    let req = env.request("default-abcde", CapacityType::Spot, &[("m5.large", "us-west-2b")]).await;
    let launched = env.fleet.launch(&req).await.unwrap();
    assert_eq!(launched.instance_type, "m5.large");
    assert_eq!(launched.zone, "us-west-2b");
    assert_eq!(launched.subnet_id, "subnet-0b2b2b2b2b2b2b2b2");
    assert_eq!(launched.image_id, AMD64_AMI);
    assert_eq!(launched.capacity_type, CapacityType::Spot);
    assert_eq!(launched.provider_id, format!("aws:///us-west-2b/{}", launched.id));
    assert_eq!(instance_id_from_provider_id(&launched.provider_id), Some(launched.id.as_str()));

    let i = env.instances.get(&launched.id).await.unwrap();
    assert_eq!(i.capacity_type, CapacityType::Spot);
    assert_eq!((i.instance_type.as_str(), i.zone.as_str()), ("m5.large", "us-west-2b"));
    for (k, v) in [
        ("kubernetes.io/cluster/fake-cluster", "owned"),
        ("karpenter.sh/nodepool", "default"),
        ("eks:eks-cluster-name", CLUSTER),
        ("karpenter.k8s.aws/ec2nodeclass", "default"),
        ("karpenter.sh/nodeclaim", "default-abcde"),
        ("team", "bench"),
    ] {
        assert_eq!(i.tags.get(k).map(String::as_str), Some(v), "{k}");
    }
    // The user data fake-ec2 (the kubelet) reads carries the NodeClaim's labels and taints.
    let user_data = env.fake.state.cloud().ec2.instance(&launched.id).unwrap().user_data.clone().unwrap();
    let reg = userdata::NodeRegistration::from_user_data(&user_data).unwrap();
    assert_eq!(reg.labels.get("karpenter.sh/nodepool").map(String::as_str), Some("default"));
    assert_eq!(reg.taints[0].key, "karpenter.sh/unregistered");

    // The scheduler's view of m5.large matches the Node fake-ec2 registers for this instance:
    // same allocatable cpu and pods, memory never above what the kubelet reports.
    let node = {
        let w = env.fake.state.cloud();
        let inst = w.ec2.instance(&launched.id).unwrap().clone();
        let t = w.ec2.catalog.get("m5.large").unwrap().clone();
        fake_ec2::nodes::desired::node_for(&inst, &t, "us-west-2", &reg)
    };
    let node_alloc = node.status.unwrap().allocatable.unwrap();
    let types = InstanceTypeProvider::new(env.clients.ec2.clone(), env.shared_clock());
    let m5 = types.list().await.unwrap().iter().find(|t| t.name == "m5.large").cloned().unwrap();
    assert_eq!(node_alloc["cpu"].0, m5.allocatable["cpu"]);
    assert_eq!(node_alloc["pods"].0, m5.allocatable["pods"]);
    let bytes = |q: &str| userdata::parse_quantity(q).unwrap();
    let (ours, theirs) = (bytes(&m5.allocatable["memory"]), bytes(&node_alloc["memory"].0));
    assert!(ours <= theirs && theirs - ours < 1024.0 * 1024.0, "{ours} vs {theirs}");

    // The same claim retried with the same request is answered with the same instance.
    let again = env.fleet.launch(&req).await.unwrap();
    assert_eq!(again.id, launched.id);
    assert_eq!(env.instances.list_cluster_instances(CLUSTER).await.unwrap().len(), 1);

    let od = env.request("default-fghij", CapacityType::OnDemand, &[("m5.large", "us-west-2c")]).await;
    let launched = env.fleet.launch(&od).await.unwrap();
    assert_eq!(env.instances.get(&launched.id).await.unwrap().capacity_type, CapacityType::OnDemand);
}

#[tokio::test]
async fn an_empty_spot_pool_is_marked_and_the_next_launch_lands_elsewhere() {
    let env = Env::start().await;
    env.set_spot_capacity("m5.large", "us-west-2a", 0);
    let only_a = env.request("claim-1", CapacityType::Spot, &[("m5.large", "us-west-2a")]).await;
    let err = env.fleet.launch(&only_a).await.unwrap_err();
    assert!(err.is_insufficient_capacity(), "{err}");
    assert!(env.unavailable.is_unavailable("m5.large", "us-west-2a", CapacityType::Spot));
    assert!(!env.unavailable.is_unavailable("m5.large", "us-west-2a", CapacityType::OnDemand));
    assert!(!env.unavailable.is_unavailable("m5.large", "us-west-2b", CapacityType::Spot));

    let all_zones: Vec<(&str, &str)> = ZONES.iter().map(|z| ("m5.large", *z)).collect();
    let req = env.request("claim-2", CapacityType::Spot, &all_zones).await;
    let launched = env.fleet.launch(&req).await.unwrap();
    assert_ne!(launched.zone, "us-west-2a");

    // After 3 minutes on our clock the offering is tried again.
    env.clock.advance(Duration::from_secs(181));
    assert!(!env.unavailable.is_unavailable("m5.large", "us-west-2a", CapacityType::Spot));
}

#[tokio::test]
async fn every_override_out_of_capacity_is_insufficient_capacity() {
    let env = Env::start().await;
    for z in ZONES {
        env.set_spot_capacity("m5.large", z, 0);
    }
    let overrides: Vec<(&str, &str)> = ZONES.iter().map(|z| ("m5.large", *z)).collect();
    let req = env.request("claim-ice", CapacityType::Spot, &overrides).await;
    let err = env.fleet.launch(&req).await.unwrap_err();
    assert!(err.is_insufficient_capacity(), "{err}");
    assert_eq!(err.reason(), "InsufficientCapacity");
    for z in ZONES {
        assert!(env.unavailable.is_unavailable("m5.large", z, CapacityType::Spot), "{z}");
    }
    // Nothing left to ask for: the next attempt fails without calling EC2.
    let err = env.fleet.launch(&req).await.unwrap_err();
    assert!(err.is_insufficient_capacity());
    assert!(err.to_string().contains("no capacity offerings are currently available"), "{err}");
}

#[tokio::test]
async fn spot_quota_exhausted_names_the_quota_and_marks_the_offerings() {
    let env = Env::start().await;
    env.fake.state.cloud().ec2.cfg.quotas.spot_vcpus = Some(0);
    let req =
        env.request("claim-quota", CapacityType::Spot, &[("m5.large", "us-west-2a"), ("c5.large", "us-west-2b")]).await;
    let err = env.fleet.launch(&req).await.unwrap_err();
    // As Karpenter: MaxSpotInstanceCountExceeded is a capacity error (the NodeClaim is given up
    // and the next pass falls back); the reason still says which quota.
    assert!(err.is_insufficient_capacity(), "{err}");
    assert_eq!(err.reason(), "SpotQuotaExceeded");
    assert!(err.to_string().contains("MaxSpotInstanceCountExceeded"), "{err}");
    assert!(env.unavailable.is_unavailable("m5.large", "us-west-2a", CapacityType::Spot));
    assert!(env.unavailable.is_unavailable("c5.large", "us-west-2b", CapacityType::Spot));
    // On-demand is unaffected.
    let od = env.request("claim-quota-od", CapacityType::OnDemand, &[("m5.large", "us-west-2a")]).await;
    assert!(env.fleet.launch(&od).await.is_ok());
}

#[tokio::test]
async fn a_launch_template_deleted_behind_the_cache_is_recreated() {
    let env = Env::start().await;
    let req = env.request("claim-lt", CapacityType::OnDemand, &[("m5.large", "us-west-2a")]).await;
    let name = env.templates.ensure(&req.launch_templates[0]).await.unwrap();
    env.clients.ec2.delete_launch_template().launch_template_name(&name).send().await.unwrap();
    assert_eq!(env.world_launch_templates(), 0);
    let launched = env.fleet.launch(&req).await.unwrap();
    assert_eq!(launched.instance_type, "m5.large");
    assert_eq!(env.world_launch_templates(), 1);
}

#[tokio::test]
async fn list_terminate_and_not_found_after_termination() {
    let env = Env::start().await;
    let a = env
        .fleet
        .launch(&env.request("claim-a", CapacityType::Spot, &[("m5.large", "us-west-2a")]).await)
        .await
        .unwrap();
    let b = env
        .fleet
        .launch(&env.request("claim-b", CapacityType::Spot, &[("c5.large", "us-west-2b")]).await)
        .await
        .unwrap();
    env.advance_world(20);
    let listed = env.instances.list_cluster_instances(CLUSTER).await.unwrap();
    assert_eq!(listed.iter().map(|i| i.id.as_str()).collect::<Vec<_>>().len(), 2);
    assert!(listed.iter().all(|i| i.state == "running"), "{listed:?}");
    assert!(env.instances.list_cluster_instances("other-cluster").await.unwrap().is_empty());

    env.instances.create_tags(&a.id, &BTreeMap::from([("Name".into(), "node-a".into())])).await.unwrap();
    assert_eq!(env.instances.get(&a.id).await.unwrap().tags["Name"], "node-a");

    assert_eq!(env.instances.terminate(std::slice::from_ref(&a.id)).await.unwrap(), std::slice::from_ref(&a.id));
    assert_eq!(env.instances.get(&a.id).await.unwrap().state, "shutting-down");
    // Already on its way out: no second TerminateInstances.
    assert!(env.instances.terminate(std::slice::from_ref(&a.id)).await.unwrap().is_empty());
    env.advance_world(15);
    let err = env.instances.get(&a.id).await.unwrap_err();
    assert!(err.is_not_found(), "{err}");
    assert!(env.instances.terminate(std::slice::from_ref(&a.id)).await.unwrap().is_empty());
    let listed = env.instances.list_cluster_instances(CLUSTER).await.unwrap();
    assert_eq!(listed.iter().map(|i| i.id.as_str()).collect::<Vec<_>>(), [b.id.as_str()]);

    let err = env.instances.get("i-0000000000000dead").await.unwrap_err();
    assert!(err.is_not_found(), "{err}");
}

#[tokio::test]
async fn impaired_instances_are_reported() {
    let env = Env::start().await;
    let a = env
        .fleet
        .launch(&env.request("claim-h", CapacityType::OnDemand, &[("m5.large", "us-west-2a")]).await)
        .await
        .unwrap();
    env.advance_world(20);
    assert!(env.instances.describe_unhealthy().await.unwrap().is_empty());
    {
        let mut w = env.fake.state.cloud();
        let now = w.now();
        w.ec2.instance_mut(&a.id).unwrap().system_impaired_since = Some(now);
    }
    env.advance_world(5);
    let unhealthy = env.instances.describe_unhealthy().await.unwrap();
    assert_eq!(unhealthy.len(), 1, "{unhealthy:?}");
    assert_eq!(unhealthy[0].id, a.id);
    assert!(unhealthy[0].system_status_impaired);
}

#[tokio::test]
async fn a_throttled_create_fleet_is_a_create_error_after_the_sdk_retries() {
    let env = Env::start().await;
    let req = env.request("claim-throttled", CapacityType::Spot, &[("m5.large", "us-west-2a")]).await;
    env.templates.ensure(&req.launch_templates[0]).await.unwrap();
    // An empty mutating bucket that does not refill (the world clock stands still).
    {
        let mut w = env.fake.state.cloud();
        let bucket = w.ec2.throttle.buckets.get_mut(&fake_ec2::world::throttle::Category::Mutating).unwrap();
        bucket.tokens = 0.0;
    }
    let err = env.fleet.launch(&req).await.unwrap_err();
    assert!(!err.is_insufficient_capacity(), "{err}");
    assert!(matches!(err, CloudError::Create { .. }), "{err:?}");
    assert_eq!(err.reason(), "RequestLimitExceeded");
    let refused = env.fake.state.cloud().ec2.throttle.refused.values().sum::<u64>();
    assert_eq!(refused, 3, "the standard retryer makes 3 attempts");
}
