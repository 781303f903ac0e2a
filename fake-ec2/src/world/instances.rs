//! Instances and their lifecycle on the clock.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};

use super::pools::{CapacityType, PoolId};
use crate::clock::Millis;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum InstanceState {
    Pending,
    Running,
    ShuttingDown,
    Terminated,
    Stopping,
    Stopped,
}

impl InstanceState {
    pub fn code(self) -> u16 {
        match self {
            Self::Pending => 0,
            Self::Running => 16,
            Self::ShuttingDown => 32,
            Self::Terminated => 48,
            Self::Stopping => 64,
            Self::Stopped => 80,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Running => "running",
            Self::ShuttingDown => "shutting-down",
            Self::Terminated => "terminated",
            Self::Stopping => "stopping",
            Self::Stopped => "stopped",
        }
    }

    /// Whether the instance is terminating or terminated: it will never run again.
    pub fn is_terminating_or_terminated(self) -> bool {
        matches!(self, Self::ShuttingDown | Self::Terminated)
    }

    /// Whether an instance in this state holds pool capacity and counts against quotas.
    pub fn holds_capacity(self) -> bool {
        matches!(self, Self::Pending | Self::Running)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MetadataOptions {
    pub http_tokens: String,
    pub http_put_response_hop_limit: i64,
    pub http_endpoint: String,
    pub http_protocol_ipv6: String,
    pub instance_metadata_tags: String,
}

impl Default for MetadataOptions {
    fn default() -> Self {
        Self {
            http_tokens: "required".into(),
            http_put_response_hop_limit: 2,
            http_endpoint: "enabled".into(),
            http_protocol_ipv6: "disabled".into(),
            instance_metadata_tags: "disabled".into(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BlockDevice {
    pub device_name: String,
    pub volume_id: String,
    pub volume_size_gib: i64,
    pub volume_type: String,
    pub delete_on_termination: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LaunchTemplateRef {
    pub id: String,
    pub name: String,
    pub version: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Instance {
    pub id: String,
    /// Launch order: the stable order of Describe calls and their page tokens.
    pub seq: u64,
    pub reservation_id: String,
    pub instance_type: String,
    pub zone: String,
    pub zone_id: String,
    /// Derived from (type, zone); a restored instance gets it back from the world.
    #[serde(skip)]
    pub pool: PoolId,
    pub subnet_id: String,
    pub vpc_id: String,
    pub image_id: String,
    pub architecture: String,
    pub private_ip: Ipv4Addr,
    pub private_dns_name: String,
    pub state: InstanceState,
    pub state_transition_reason: String,
    pub state_reason: Option<(String, String)>,
    pub launch_time: Millis,
    /// On a scaled clock, the wall-clock time of the launch: what `LaunchTime` says on the wire,
    /// so that a client's "launched N s ago" is real seconds, as with EC2 (see
    /// [`crate::clock::Clock::clients_now`]). World time stays the instance's time everywhere else.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub launch_time_on_clients_clock: Option<Millis>,
    pub capacity_type: CapacityType,
    pub spot_instance_request_id: Option<String>,
    /// terminate | stop | hibernate
    pub interruption_behavior: String,
    pub security_groups: Vec<(String, String)>,
    pub tags: BTreeMap<String, String>,
    pub user_data: Option<String>,
    pub iam_instance_profile: Option<String>,
    /// The instance profile's (ARN, id) as IAM has them, when IAM checks profiles.
    pub iam_instance_profile_identity: Option<(String, String)>,
    pub metadata_options: MetadataOptions,
    pub block_devices: Vec<BlockDevice>,
    /// The primary network interface (device index 0).
    pub network_interface_id: String,
    pub launch_template: Option<LaunchTemplateRef>,
    pub key_name: Option<String>,
    pub client_token: Option<String>,
    pub fleet_id: Option<String>,
    pub ami_launch_index: u32,
    /// When status checks started failing, if they are (admin knob).
    pub instance_impaired_since: Option<Millis>,
    pub system_impaired_since: Option<Millis>,
    /// Scheduled events (code, description, not-before) for DescribeInstanceStatus.
    pub scheduled_events: Vec<(String, String, Millis)>,
    /// When the instance last entered `running`, for status checks' `initializing` phase.
    pub running_since: Option<Millis>,
    pub terminated_at: Option<Millis>,
    /// When a spot interruption under way reclaims the instance.
    pub interruption_at: Option<Millis>,
}

impl Instance {
    /// `LaunchTime` as clients are told it (see [`Instance::launch_time_on_clients_clock`]).
    pub fn launch_time_on_wire(&self) -> Millis {
        self.launch_time_on_clients_clock.unwrap_or(self.launch_time)
    }

    /// A placeholder instance, for checking filter names when the world has none.
    pub fn sample() -> Self {
        Self {
            id: "i-00000000000000000".into(),
            seq: 0,
            reservation_id: String::new(),
            instance_type: String::new(),
            zone: String::new(),
            zone_id: String::new(),
            pool: 0,
            subnet_id: String::new(),
            vpc_id: String::new(),
            image_id: String::new(),
            architecture: String::new(),
            private_ip: Ipv4Addr::UNSPECIFIED,
            private_dns_name: String::new(),
            state: InstanceState::Pending,
            state_transition_reason: String::new(),
            state_reason: None,
            launch_time: 0,
            launch_time_on_clients_clock: None,
            capacity_type: CapacityType::OnDemand,
            spot_instance_request_id: None,
            interruption_behavior: String::new(),
            security_groups: Vec::new(),
            tags: BTreeMap::new(),
            user_data: None,
            iam_instance_profile: None,
            iam_instance_profile_identity: None,
            metadata_options: MetadataOptions::default(),
            block_devices: Vec::new(),
            network_interface_id: String::new(),
            launch_template: None,
            key_name: None,
            client_token: None,
            fleet_id: None,
            ami_launch_index: 0,
            instance_impaired_since: None,
            system_impaired_since: None,
            scheduled_events: Vec::new(),
            running_since: None,
            terminated_at: None,
            interruption_at: None,
        }
    }

    pub fn vcpus_counted(&self) -> bool {
        self.state.holds_capacity()
    }
}

/// Whether `id` is shaped like an instance id (`i-` and 8 or 17 lowercase hex digits).
pub fn is_instance_id(id: &str) -> bool {
    id.strip_prefix("i-").is_some_and(|h| {
        (h.len() == 8 || h.len() == 17) && h.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    })
}

/// Things the clock will do to instances.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Timer {
    FinishBoot(String),
    FinishShutdown(String),
    FinishStop(String),
    Expunge(String),
    /// The spot interruption warning, two minutes (the notice) before the reclaim.
    InterruptionWarning(String),
    /// The end of a spot interruption: stop, hibernate (as stop) or terminate.
    Reclaim(String),
    /// A draw of the seeded spot capacity process.
    MarketTick,
    /// A spot pool's capacity coming back after a drop.
    RestoreCapacity(PoolId, u32),
    /// A Health scheduled change reaching its start: (instance id, scheduled-event code).
    ScheduledChange(String, String),
}

/// One state transition, as the event bus will publish it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateChange {
    pub at: Millis,
    pub instance_id: String,
    pub from: Option<InstanceState>,
    pub to: InstanceState,
}
