//! Launching an instance: the checks EC2 makes, in its order, and the instance it creates.

use std::collections::{BTreeMap, BTreeSet};

use rand_chacha::ChaCha8Rng;

use super::World;
use super::catalog;
use super::instances::{self, Instance, InstanceState, StateChange, Timer};
use super::network::{self, Subnet};
use super::pools::CapacityType;
use crate::clock::Millis;
use crate::events::Kind;
use crate::rng::Streams;

/// Why one instance could not be launched: an EC2 error code and message.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LaunchFailure {
    // Named through an alias: serde would take a literal `&'static str` field as borrowed.
    #[serde(with = "crate::interned")]
    pub code: crate::interned::Static,
    pub message: String,
}

/// What to launch, fully resolved (launch template, overrides and request merged).
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct LaunchSpec {
    pub instance_type: String,
    pub subnet_id: String,
    pub image_id: String,
    pub capacity_type: Option<CapacityType>,
    pub security_group_ids: Vec<String>,
    pub tags: BTreeMap<String, String>,
    pub user_data: Option<String>,
    pub iam_instance_profile: Option<String>,
    pub metadata_options: Option<instances::MetadataOptions>,
    pub root_volume: Option<(String, i64, String)>,
    pub launch_template: Option<instances::LaunchTemplateRef>,
    pub key_name: Option<String>,
    pub client_token: Option<String>,
    pub fleet_id: Option<String>,
    pub interruption_behavior: Option<String>,
    pub reservation_id: String,
    pub ami_launch_index: u32,
}

/// What IAM says about the instance profile a launch names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProfileCheck {
    /// The cloud does not check instance profiles (its world declares no IAM).
    Unchecked,
    /// No such profile.
    Missing,
    /// The profile's ARN and id.
    Found { arn: String, id: String },
}

/// What a launch asks outside the EC2 world: IAM about its instance profile, and the fault
/// injector (admin faults, FIS actions) about injected capacity shortfalls.
pub trait LaunchChecks {
    /// The instance profile a launch names, by name or ARN.
    fn instance_profile(&self, name_or_arn: &str) -> ProfileCheck;
    /// Whether an injected shortfall refuses a launch into `zone` (name and id) now; asked after
    /// the world's own checks pass. `rng` is the cloud's `faults` stream.
    fn refuses(&mut self, zone: &str, zone_id: &str, now: Millis, rng: &mut ChaCha8Rng) -> bool;
    /// The clients' wall clock now, when it differs from world time ([`crate::clock::Clock::clients_now`]).
    fn clients_now(&self) -> Option<Millis> {
        None
    }
}

/// Nothing outside the world: profiles unchecked, no injected shortfalls.
impl LaunchChecks for () {
    fn instance_profile(&self, _: &str) -> ProfileCheck {
        ProfileCheck::Unchecked
    }

    fn refuses(&mut self, _: &str, _: &str, _: Millis, _: &mut ChaCha8Rng) -> bool {
        false
    }
}

impl World {
    /// Why `spec` cannot be launched right now, if it cannot: the checks EC2 makes, in its order.
    pub fn check_launch(&self, spec: &LaunchSpec) -> Result<(), LaunchFailure> {
        let ct = spec.capacity_type.unwrap_or(CapacityType::OnDemand);
        let subnet = self.subnet(&spec.subnet_id).ok_or_else(|| LaunchFailure {
            code: "InvalidSubnetID.NotFound",
            message: format!("The subnet ID '{}' does not exist", spec.subnet_id),
        })?;
        let zone = subnet.cfg.zone.clone();
        let itype =
            self.catalog.get(&spec.instance_type).filter(|_| self.catalog.offered_in(&spec.instance_type, &zone));
        let Some(itype) = itype else {
            if !catalog::is_ec2_type(&spec.instance_type) {
                return Err(LaunchFailure {
                    code: "InvalidParameterValue",
                    message: format!("Invalid value '{}' for InstanceType.", spec.instance_type),
                });
            }
            return Err(LaunchFailure {
                code: "Unsupported",
                message: format!(
                    "Your requested instance type ({}) is not supported in your requested Availability Zone ({zone}). Please retry your request by not specifying an Availability Zone or choosing {}.",
                    spec.instance_type,
                    self.other_zones(&zone)
                ),
            });
        };
        if let Some(img) = self.images.iter().find(|i| i.cfg.id == spec.image_id)
            && img.cfg.architecture != itype.architecture
        {
            return Err(LaunchFailure {
                code: "InvalidParameterValue",
                message: format!(
                    "The architecture '{}' of the specified instance type does not match the architecture '{}' of the specified AMI. Specify an instance type and an AMI that have matching architectures, and try again.",
                    itype.architecture, img.cfg.architecture
                ),
            });
        }
        self.check_quota(ct, itype.vcpu)?;
        let pool = self.pool_of(&spec.instance_type, &zone).unwrap_or_default();
        if self.pools.available(ct, pool) == 0 {
            return Err(LaunchFailure {
                code: "InsufficientInstanceCapacity",
                message: match ct {
                    CapacityType::Spot => format!(
                        "We currently do not have sufficient {} capacity in the Availability Zone you requested ({zone}). Our system will be working on provisioning additional capacity. You can currently get {} capacity by not specifying an Availability Zone in your request or choosing a different Availability Zone.",
                        spec.instance_type, spec.instance_type
                    ),
                    CapacityType::OnDemand | CapacityType::Reserved => format!(
                        "We currently do not have sufficient {} capacity in the Availability Zone you requested ({zone}). Our system will be working on provisioning additional capacity. You can currently get {} capacity by not specifying an Availability Zone in your request or choosing {}.",
                        spec.instance_type,
                        spec.instance_type,
                        self.other_zones(&zone)
                    ),
                },
            });
        }
        if subnet.available_ips() == 0 {
            return Err(LaunchFailure {
                code: "InsufficientFreeAddressesInSubnet",
                message: format!(
                    "There are not enough free addresses in subnet '{}' to satisfy the requested number of instances.",
                    spec.subnet_id
                ),
            });
        }
        Ok(())
    }

    /// Launches one instance in `pending` at `now`; it becomes `running` after the boot delay.
    /// Ids come from `rng`'s `ids` stream; `checks` answers for IAM and injected faults.
    pub fn launch(
        &mut self,
        spec: &LaunchSpec,
        now: Millis,
        rng: &mut Streams,
        checks: &mut dyn LaunchChecks,
    ) -> Result<String, LaunchFailure> {
        let profile = instance_profile(spec, checks)?;
        self.check_launch(spec)?;
        self.injected_ice(spec, now, rng, checks)?;
        let ct = spec.capacity_type.unwrap_or(CapacityType::OnDemand);
        let (zone, zone_id, vpc_id) = {
            let s = self
                .subnet(&spec.subnet_id)
                .ok_or_else(|| LaunchFailure { code: "InvalidSubnetID.NotFound", message: String::new() })?;
            (s.cfg.zone.clone(), s.zone_id.clone(), self.cfg.vpc.id.clone())
        };
        let ip = self
            .subnets
            .iter_mut()
            .find(|s| s.id() == spec.subnet_id)
            .and_then(Subnet::allocate_ip)
            .ok_or_else(|| LaunchFailure { code: "InsufficientFreeAddressesInSubnet", message: String::new() })?;
        let itype = self
            .catalog
            .get(&spec.instance_type)
            .cloned()
            .ok_or_else(|| LaunchFailure { code: "Unsupported", message: String::new() })?;
        let pool = self.pool_of(&spec.instance_type, &zone).unwrap_or_default();
        let id = rng.hex_id("i", 17);
        let spot_request = (ct == CapacityType::Spot).then(|| rng.alnum_id("sir", 8));
        let volume_id = rng.hex_id("vol", 17);
        let eni_id = rng.hex_id("eni", 17);
        let security_groups = spec
            .security_group_ids
            .iter()
            .map(|g| {
                let name = self
                    .security_groups
                    .iter()
                    .find(|s| &s.cfg.id == g)
                    .map(|s| s.cfg.name.clone())
                    .unwrap_or_default();
                (g.clone(), name)
            })
            .collect();
        let (root_dev, size, vtype) = spec.root_volume.clone().unwrap_or(("/dev/xvda".into(), 20, "gp3".into()));
        let mut tags = spec.tags.clone();
        if let Some(f) = &spec.fleet_id {
            tags.insert("aws:ec2:fleet-id".into(), f.clone());
        }
        if let Some(lt) = &spec.launch_template {
            tags.insert("aws:ec2launchtemplate:id".into(), lt.id.clone());
            tags.insert("aws:ec2launchtemplate:version".into(), lt.version.to_string());
        }
        self.next_seq += 1;
        let seq = self.next_seq;
        let inst = Instance {
            id: id.clone(),
            seq,
            reservation_id: spec.reservation_id.clone(),
            instance_type: spec.instance_type.clone(),
            zone: zone.clone(),
            zone_id,
            pool,
            subnet_id: spec.subnet_id.clone(),
            vpc_id,
            image_id: spec.image_id.clone(),
            architecture: itype.architecture.clone(),
            private_ip: ip,
            private_dns_name: network::private_dns_name(ip, &self.cfg.region),
            state: InstanceState::Pending,
            state_transition_reason: String::new(),
            state_reason: Some(("pending".into(), "pending".into())),
            launch_time: now,
            launch_time_on_clients_clock: checks.clients_now(),
            capacity_type: ct,
            spot_instance_request_id: spot_request,
            interruption_behavior: spec.interruption_behavior.clone().unwrap_or_else(|| "terminate".into()),
            security_groups,
            tags,
            user_data: spec.user_data.clone(),
            iam_instance_profile: spec.iam_instance_profile.clone(),
            iam_instance_profile_identity: profile,
            metadata_options: spec.metadata_options.clone().unwrap_or_default(),
            block_devices: vec![instances::BlockDevice {
                device_name: root_dev,
                volume_id,
                volume_size_gib: size,
                volume_type: vtype,
                delete_on_termination: true,
            }],
            network_interface_id: eni_id,
            launch_template: spec.launch_template.clone(),
            key_name: spec.key_name.clone(),
            client_token: spec.client_token.clone(),
            fleet_id: spec.fleet_id.clone(),
            ami_launch_index: spec.ami_launch_index,
            instance_impaired_since: None,
            system_impaired_since: None,
            scheduled_events: Vec::new(),
            running_since: None,
            terminated_at: None,
            interruption_at: None,
        };
        self.instances.insert(seq, inst);
        self.instance_index.insert(id.clone(), seq);
        self.pools.take(ct, pool);
        self.count_quota(ct, itype.vcpu, true);
        self.record(StateChange { at: now, instance_id: id.clone(), from: None, to: InstanceState::Pending });
        self.emit(now, Kind::StateChange { instance_id: id.clone(), state: InstanceState::Pending.name().to_owned() });
        let boot = self.cfg.lifecycle.boot_seconds * 1000;
        self.schedule(now + boot, Timer::FinishBoot(id.clone()));
        Ok(id)
    }

    /// Removes instances that a failed all-or-nothing launch created in this operation: as if
    /// they never were. Everything they left is recent (this operation's outbox, the tail of the
    /// state-change log from the earliest of their launches), so one pass over that tail serves
    /// them all, however long the log.
    pub fn discard(&mut self, ids: &[String]) {
        let gone: BTreeSet<&str> = ids.iter().map(String::as_str).filter(|id| self.forget_instance(id)).collect();
        if gone.is_empty() {
            return;
        }
        let from = self.launch_records_start(&gone);
        let mut tail = self.state_changes.split_off(from);
        tail.retain(|c| !gone.contains(c.instance_id.as_str()));
        self.state_changes.append(&mut tail);
        self.outbox.timers.retain(|(_, t)| !matches!(t, Timer::FinishBoot(x) if gone.contains(x.as_str())));
        self.outbox.events.retain(|(_, k)| k.instance_id().is_none_or(|id| !gone.contains(id)));
    }

    /// Where in the state-change log the earliest launch record of `ids` is (every record of an
    /// instance comes after its launch's), searched from the end; the log's start if any of them
    /// has none left.
    fn launch_records_start(&self, ids: &BTreeSet<&str>) -> usize {
        let mut left = ids.len();
        let mut at = self.state_changes.len();
        while left > 0 && at > 0 {
            at -= 1;
            let c = &self.state_changes[at];
            if c.from.is_none() && ids.contains(c.instance_id.as_str()) {
                left -= 1;
            }
        }
        at
    }

    /// Drops an instance and gives back what it held (capacity, quota, its address); whether
    /// there was one.
    fn forget_instance(&mut self, id: &str) -> bool {
        let Some(seq) = self.instance_index.remove(id) else {
            return false;
        };
        let Some(inst) = self.instances.remove(&seq) else {
            return false;
        };
        if inst.state.holds_capacity() {
            self.pools.give_back(inst.capacity_type, inst.pool);
            let vcpus = self.catalog.get(&inst.instance_type).map_or(0, |t| t.vcpu);
            self.count_quota(inst.capacity_type, vcpus, false);
        }
        if let Some(s) = self.subnets.iter_mut().find(|s| s.id() == inst.subnet_id) {
            s.release_ip(inst.private_ip);
        }
        true
    }

    /// An injected capacity shortfall (admin fault or FIS action) for this launch's zone, if one
    /// fires now.
    fn injected_ice(
        &self,
        spec: &LaunchSpec,
        now: Millis,
        rng: &mut Streams,
        checks: &mut dyn LaunchChecks,
    ) -> Result<(), LaunchFailure> {
        let Some(s) = self.subnet(&spec.subnet_id) else {
            return Ok(());
        };
        let (zone, zone_id) = (s.cfg.zone.clone(), s.zone_id.clone());
        if !checks.refuses(&zone, &zone_id, now, &mut rng.faults) {
            return Ok(());
        }
        Err(LaunchFailure {
            code: "InsufficientInstanceCapacity",
            message: format!(
                "We currently do not have sufficient {} capacity in the Availability Zone you requested ({zone}). Our system will be working on provisioning additional capacity. You can currently get {} capacity by not specifying an Availability Zone in your request or choosing {}.",
                spec.instance_type,
                spec.instance_type,
                self.other_zones(&zone)
            ),
        })
    }
}

/// The ARN and id of the instance profile a launch names, when IAM knows them; EC2's error when
/// IAM has no such profile.
fn instance_profile(spec: &LaunchSpec, checks: &dyn LaunchChecks) -> Result<Option<(String, String)>, LaunchFailure> {
    let Some(profile) = &spec.iam_instance_profile else {
        return Ok(None);
    };
    match checks.instance_profile(profile) {
        ProfileCheck::Unchecked => Ok(None),
        ProfileCheck::Found { arn, id } => Ok(Some((arn, id))),
        ProfileCheck::Missing => {
            let (param, what) = if profile.starts_with("arn:") { ("arn", "ARN") } else { ("name", "name") };
            Err(LaunchFailure {
                code: "InvalidParameterValue",
                message: format!(
                    "Value ({profile}) for parameter iamInstanceProfile.{param} is invalid. Invalid IAM Instance Profile {what}"
                ),
            })
        }
    }
}
