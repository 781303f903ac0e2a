//! The cloud provider as the controllers see it (Karpenter's `CloudProvider` interface): instance
//! types per EC2NodeClass, create / get / delete / list instances for NodeClaims. It joins the API
//! objects to the AWS layer in [`crate::cloud`] and to the simulation's model.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use kube::ResourceExt;

use crate::apis::ec2nodeclass::{AmiStatus, KubeletConfiguration, SecurityGroupStatus, SubnetStatus};
use crate::apis::labels as l;
use crate::apis::{EC2NodeClass, NodeClaim};
use crate::clock::SharedClock;
use crate::cloud::{
    self, AwsClients, CloudError, ClusterInfo, FleetProvider, Instance, InstanceProvider, InstanceTypeProvider,
    LaunchOverride, LaunchRequest, LaunchTemplateProvider, LaunchTemplateSpec, LaunchedInstance, NodeClassResolver,
    Offerings, Pricing, UnavailableOfferings, launch_template_spec,
};
use crate::convert;
use crate::scheduling::{CapacityType, InstanceType, Requirement, Requirements, Resources};

/// Karpenter caches resolved subnets, security groups and AMIs for a minute.
const RESOLVE_TTL: Duration = Duration::from_secs(60);
/// Karpenter refreshes prices every 12 h; spot prices move, so a bench that wants fresh prices
/// restarts or waits.
const PRICING_TTL: Duration = Duration::from_secs(12 * 3600);

/// An EC2NodeClass's selectors resolved; errors say which selector matched nothing.
#[derive(Clone, Debug, Default)]
pub struct Resolved {
    pub subnets: Vec<SubnetStatus>,
    pub security_groups: Vec<SecurityGroupStatus>,
    pub amis: Vec<AmiStatus>,
    pub subnet_error: Option<String>,
    pub security_group_error: Option<String>,
    pub ami_error: Option<String>,
    raw_subnets: Vec<cloud::Subnet>,
    raw_amis: Vec<cloud::Ami>,
}

impl Resolved {
    pub fn ready(&self) -> bool {
        self.subnet_error.is_none() && self.security_group_error.is_none() && self.ami_error.is_none()
    }

    fn problems(&self) -> String {
        [&self.subnet_error, &self.security_group_error, &self.ami_error]
            .into_iter()
            .flatten()
            .cloned()
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// A launched NodeClaim: the instance, and what its type offers.
#[derive(Clone, Debug)]
pub struct Launched {
    pub instance: LaunchedInstance,
    pub capacity: Resources,
    pub allocatable: Resources,
    /// The type's well-known labels (arch, os, instance family, ...).
    pub labels: BTreeMap<String, String>,
}

pub struct CloudProvider {
    cluster: ClusterInfo,
    clock: SharedClock,
    instance_types: InstanceTypeProvider,
    pricing: Arc<Pricing>,
    pricing_refreshed: Mutex<Option<Instant>>,
    offerings: Offerings,
    pub unavailable: Arc<UnavailableOfferings>,
    resolver: NodeClassResolver,
    launch_templates: Arc<LaunchTemplateProvider>,
    fleet: FleetProvider,
    instances: InstanceProvider,
    resolved: Mutex<BTreeMap<(String, i64), (Instant, Resolved)>>,
    /// Launches by NodeClaim UID: a reconcile that runs before the claim's status shows the first
    /// launch gets that instance again instead of launching a second one (Karpenter keeps the
    /// same kind of cache).
    launched: Mutex<BTreeMap<String, (Instant, Launched)>>,
}

/// How long a launch is remembered; the claim's status carries it long before this.
const LAUNCHED_TTL: Duration = Duration::from_secs(15 * 60);

impl CloudProvider {
    pub fn new(clients: &AwsClients, cluster: ClusterInfo, clock: SharedClock) -> Self {
        let unavailable = Arc::new(UnavailableOfferings::new(clock.clone()));
        let pricing =
            Arc::new(Pricing::new(clients.ec2.clone(), clients.pricing.clone(), &clients.region, clock.clone()));
        let launch_templates = Arc::new(LaunchTemplateProvider::new(clients.ec2.clone(), clock.clone()));
        CloudProvider {
            cluster,
            instance_types: InstanceTypeProvider::new(clients.ec2.clone(), clock.clone()),
            offerings: Offerings::new(pricing.clone(), unavailable.clone()),
            pricing,
            pricing_refreshed: Mutex::new(None),
            unavailable: unavailable.clone(),
            resolver: NodeClassResolver::new(clients.ec2.clone(), clients.ssm.clone()),
            fleet: FleetProvider::new(clients.ec2.clone(), launch_templates.clone(), unavailable, clock.clone()),
            launch_templates,
            instances: InstanceProvider::new(clients.ec2.clone()),
            resolved: Mutex::new(BTreeMap::new()),
            launched: Mutex::new(BTreeMap::new()),
            clock,
        }
    }

    pub fn cluster(&self) -> &ClusterInfo {
        &self.cluster
    }

    /// Resolves the class's selectors (cached for a minute per generation).
    pub async fn resolve(&self, class: &EC2NodeClass) -> Resolved {
        let key = (class.name_any(), class.metadata.generation.unwrap_or(0));
        let now = self.clock.now();
        if let Some((at, r)) = self.resolved.lock().unwrap_or_else(PoisonError::into_inner).get(&key)
            && now.duration_since(*at) < RESOLVE_TTL
        {
            return r.clone();
        }
        let mut out = Resolved::default();
        let spec = &class.spec;
        let terms = |ts: &[crate::apis::ec2nodeclass::SelectorTerm]| -> Vec<cloud::SelectorTerm> {
            ts.iter()
                .map(|t| cloud::SelectorTerm {
                    id: t.id.clone(),
                    name: t.name.clone(),
                    tags: t.tags.clone(),
                    ..Default::default()
                })
                .collect()
        };
        match self.resolver.subnets(&terms(&spec.subnet_selector_terms)).await {
            Ok(s) if !s.is_empty() => {
                out.subnets = s
                    .iter()
                    .map(|s| SubnetStatus { id: s.id.clone(), zone: s.zone.clone(), zone_id: Some(s.zone_id.clone()) })
                    .collect();
                out.raw_subnets = s;
            }
            Ok(_) => out.subnet_error = Some("no subnets matched subnetSelectorTerms".to_owned()),
            Err(e) => out.subnet_error = Some(e.to_string()),
        }
        match self.resolver.security_groups(&terms(&spec.security_group_selector_terms)).await {
            Ok(g) if !g.is_empty() => {
                out.security_groups =
                    g.iter().map(|g| SecurityGroupStatus { id: g.id.clone(), name: Some(g.name.clone()) }).collect();
            }
            Ok(_) => {
                out.security_group_error = Some("no security groups matched securityGroupSelectorTerms".to_owned())
            }
            Err(e) => out.security_group_error = Some(e.to_string()),
        }
        // v1beta1 classes may name only the family: that meant its latest EKS-optimized AMI.
        let implied = spec
            .ami_selector_terms
            .is_empty()
            .then(|| spec.ami_family.as_deref().and_then(|f| cloud::AmiFamily::parse(f).ok()))
            .flatten()
            .filter(|f| *f != cloud::AmiFamily::Custom)
            .map(|f| crate::apis::ec2nodeclass::AmiSelectorTerm {
                alias: Some(format!("{}@latest", f.as_str().to_ascii_lowercase())),
                ..Default::default()
            });
        let ami_terms: Vec<cloud::SelectorTerm> = spec
            .ami_selector_terms
            .iter()
            .chain(implied.iter())
            .map(|t| cloud::SelectorTerm {
                id: t.id.clone(),
                name: t.name.clone(),
                tags: t.tags.clone(),
                owner: t.owner.clone(),
                alias: t.alias.clone(),
            })
            .collect();
        match self.resolver.amis(&ami_terms, &self.cluster.kubernetes_version).await {
            Ok(a) if !a.is_empty() => {
                out.amis = a
                    .iter()
                    .map(|a| AmiStatus {
                        id: a.id.clone(),
                        name: Some(a.name.clone()),
                        deprecated: a.deprecated.then_some(true),
                        requirements: convert::requirements_to_crd(&a.requirements),
                    })
                    .collect();
                out.raw_amis = a;
            }
            Ok(_) => out.ami_error = Some("no AMIs matched amiSelectorTerms".to_owned()),
            Err(e) => out.ami_error = Some(e.to_string()),
        }
        // Only a full resolution is cached: a failed call (throttling, an outage) or a selector
        // matching nothing yet is asked again on the next reconcile, not a minute later.
        if out.ready() {
            self.resolved.lock().unwrap_or_else(PoisonError::into_inner).insert(key, (now, out.clone()));
        }
        out
    }

    /// Refreshes the prices when due (until both tables have loaded, on every call). A failure
    /// keeps the last prices, and spot prices default to on-demand ones until the history is
    /// read; but with no on-demand price at all no offering exists, and pools built now would
    /// look empty: that is an error (the provisioner skips the pool and tries again soon).
    async fn ensure_pricing(&self) -> Result<(), CloudError> {
        let due = {
            let at = self.pricing_refreshed.lock().unwrap_or_else(PoisonError::into_inner);
            at.is_none_or(|t| self.clock.now().duration_since(t) > PRICING_TTL)
        };
        if due {
            match self.pricing.refresh().await {
                Ok(()) => {
                    *self.pricing_refreshed.lock().unwrap_or_else(PoisonError::into_inner) = Some(self.clock.now())
                }
                Err(err) if self.pricing.knows_on_demand() => {
                    tracing::warn!(error = %err, "refreshing prices; keeping the last ones");
                }
                Err(err) => return Err(err),
            }
        }
        Ok(())
    }

    /// The instance types this class can launch: those some AMI of the class serves (architecture,
    /// GPU or not), zones its subnets cover, offerings priced and marked unavailable where EC2 recently said no.
    /// `pool_kubelet` is a v1beta1 NodePool's kubelet block, used when the class has none.
    pub async fn instance_types(
        &self,
        class: &EC2NodeClass,
        pool_kubelet: Option<&KubeletConfiguration>,
    ) -> Result<Vec<Arc<InstanceType>>, CloudError> {
        let resolved = self.resolve(class).await;
        if !resolved.ready() {
            return Err(CloudError::NodeClassNotReady {
                condition: "Ready",
                reason: "NodeClassNotReady",
                message: resolved.problems(),
            });
        }
        self.ensure_pricing().await?;
        let zones: BTreeSet<String> = resolved.raw_subnets.iter().map(|s| s.zone.clone()).collect();
        let max_pods = class.spec.kubelet.as_ref().or(pool_kubelet).and_then(|k| k.max_pods);
        let infos = self.instance_types.list().await?;
        let mut out = Vec::new();
        for info in infos.iter() {
            let labels = info.requirements();
            if cloud::image_for(&labels, &resolved.raw_amis).is_none() {
                continue;
            }
            let offerings = self.offerings.offerings_in(info, &zones);
            if offerings.is_empty() {
                continue;
            }
            let pairs =
                |m: &BTreeMap<String, String>| Resources::parse(m.iter().map(|(k, v)| (k.as_str(), v.as_str())));
            let (Ok(mut capacity), Ok(overhead)) = (pairs(&info.capacity), pairs(&info.overhead)) else { continue };
            if let Some(mp) = max_pods {
                capacity.set("pods", i64::from(mp) * 1000);
            }
            out.push(Arc::new(InstanceType::new(&info.name, labels, capacity, overhead, offerings)));
        }
        Ok(out)
    }

    /// Launches the NodeClaim's instance: spot when its requirements allow spot and a spot
    /// offering is available, else on-demand; up to 60 types, cheapest first.
    pub async fn create(
        &self,
        claim: &NodeClaim,
        class: &EC2NodeClass,
        pool_kubelet: Option<&KubeletConfiguration>,
    ) -> Result<Launched, CloudError> {
        let uid = claim.metadata.uid.clone().unwrap_or_else(|| claim.name_any());
        if let Some((_, l)) = self.launched.lock().unwrap_or_else(PoisonError::into_inner).get(&uid) {
            return Ok(l.clone());
        }
        let launched = self.launch(claim, class, pool_kubelet).await?;
        let now = self.clock.now();
        let mut cache = self.launched.lock().unwrap_or_else(PoisonError::into_inner);
        cache.retain(|_, (at, _)| now.duration_since(*at) < LAUNCHED_TTL);
        cache.insert(uid, (now, launched.clone()));
        Ok(launched)
    }

    async fn launch(
        &self,
        claim: &NodeClaim,
        class: &EC2NodeClass,
        pool_kubelet: Option<&KubeletConfiguration>,
    ) -> Result<Launched, CloudError> {
        let mut reqs = convert::requirements(&claim.spec.requirements).map_err(CloudError::Invalid)?;
        for (k, v) in claim.labels() {
            reqs.add(k, Requirement::in_values([v.clone()]));
        }
        let resolved = self.resolve(class).await;
        let types = self.instance_types(class, pool_kubelet).await?;
        let requests = claim
            .spec
            .resources
            .as_ref()
            .and_then(|r| r.requests.as_ref())
            .and_then(|r| Resources::from_k8s(r).ok())
            .unwrap_or_default();
        let candidates: Vec<&Arc<InstanceType>> = types
            .iter()
            .filter(|t| t.requirements.intersects(&reqs).is_ok() && requests.fits(&t.allocatable()))
            .collect();
        let capacity_type =
            choose_capacity_type(&candidates, &reqs).ok_or_else(|| CloudError::InsufficientCapacity {
                reason: "InsufficientCapacity".to_owned(),
                message: "no capacity offerings are currently available given the constraints".to_owned(),
                errors: vec![],
            })?;
        let mut with_price: Vec<(f64, &Arc<InstanceType>)> = candidates
            .iter()
            .filter_map(|t| {
                let cheapest = t
                    .offerings
                    .iter()
                    .filter(|o| o.available && o.capacity_type == capacity_type && o.compatible(&reqs))
                    .map(|o| o.price)
                    .fold(f64::INFINITY, f64::min);
                cheapest.is_finite().then_some((cheapest, *t))
            })
            .collect();
        with_price.sort_by(|a, b| a.0.total_cmp(&b.0).then_with(|| a.1.name.cmp(&b.1.name)));
        with_price.truncate(cloud::fleet::MAX_INSTANCE_TYPES);
        let mut overrides = Vec::new();
        for (_, t) in &with_price {
            let Some(image) = cloud::image_for(&t.requirements, &resolved.raw_amis) else { continue };
            for o in
                t.offerings.iter().filter(|o| o.available && o.capacity_type == capacity_type && o.compatible(&reqs))
            {
                overrides.push(LaunchOverride {
                    instance_type: t.name.clone(),
                    zone: o.zone.clone(),
                    image_id: image.id.clone(),
                    price: o.price,
                });
            }
        }
        let used_images: BTreeSet<&str> = overrides.iter().map(|o| o.image_id.as_str()).collect();
        let security_groups: Vec<String> = resolved.security_groups.iter().map(|g| g.id.clone()).collect();
        let launch_templates = used_images
            .iter()
            .map(|id| launch_template_spec(&self.cluster, claim, class, pool_kubelet, id, security_groups.clone()))
            .collect::<Result<Vec<LaunchTemplateSpec>, CloudError>>()?;
        let pool = claim.labels().get(l::NODEPOOL).cloned().unwrap_or_default();
        let req = LaunchRequest {
            nodeclaim_name: claim.name_any(),
            capacity_type,
            launch_templates,
            overrides,
            subnets: resolved.raw_subnets.clone(),
            tags: cloud::fleet::instance_tags(
                &class.spec.tags,
                &self.cluster.name,
                &pool,
                &class.name_any(),
                &claim.name_any(),
            ),
        };
        let instance = self.fleet.launch(&req).await?;
        let chosen = types.iter().find(|t| t.name == instance.instance_type);
        let (capacity, allocatable, labels) = match chosen {
            Some(t) => {
                let mut labels = t.requirements.labels();
                labels.remove(l::ZONE);
                labels.remove(l::CAPACITY_TYPE);
                (t.capacity.clone(), t.allocatable(), labels)
            }
            None => (Resources::new(), Resources::new(), BTreeMap::new()),
        };
        Ok(Launched { instance, capacity, allocatable, labels })
    }

    pub async fn get_instance(&self, id: &str) -> Result<Instance, CloudError> {
        self.instances.get(id).await
    }

    /// Terminates the instance behind a providerID. Ok(true) once EC2 no longer lists it.
    pub async fn delete(&self, provider_id: &str) -> Result<bool, CloudError> {
        let Some(id) = cloud::instance_id_from_provider_id(provider_id) else { return Ok(true) };
        match self.instances.get(id).await {
            Err(e) if e.is_not_found() => Ok(true),
            Err(e) => Err(e),
            Ok(inst) if inst.state == "shutting-down" => Ok(false),
            Ok(_) => {
                self.instances.terminate(&[id.to_owned()]).await?;
                Ok(false)
            }
        }
    }

    pub async fn list(&self) -> Result<Vec<Instance>, CloudError> {
        self.instances.list_cluster_instances(&self.cluster.name).await
    }

    pub async fn terminate(&self, ids: &[String]) -> Result<Vec<String>, CloudError> {
        self.instances.terminate(ids).await
    }

    /// Instances with impaired status checks or scheduled events (DescribeInstanceStatus).
    pub async fn describe_unhealthy(&self) -> Result<Vec<cloud::UnhealthyInstance>, CloudError> {
        self.instances.describe_unhealthy().await
    }

    pub async fn tag(&self, id: &str, tags: &BTreeMap<String, String>) -> Result<(), CloudError> {
        self.instances.create_tags(id, tags).await
    }

    /// Forgets cached launch templates (e.g. after a NodeClass changed).
    pub fn launch_templates(&self) -> &LaunchTemplateProvider {
        &self.launch_templates
    }
}

/// Spot when allowed and any candidate has an available spot offering the requirements allow,
/// else on-demand (Karpenter's `getCapacityType`; reserved capacity is not modelled).
pub fn choose_capacity_type(types: &[&Arc<InstanceType>], reqs: &Requirements) -> Option<CapacityType> {
    let allowed = reqs.get(l::CAPACITY_TYPE);
    [CapacityType::Spot, CapacityType::OnDemand].into_iter().find(|ct| {
        allowed.has(ct.as_str())
            && types
                .iter()
                .any(|t| t.offerings.iter().any(|o| o.available && o.capacity_type == *ct && o.compatible(reqs)))
    })
}
