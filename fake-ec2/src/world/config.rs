//! The world file (`fixtures/worlds/*.yaml`): everything about the fake cloud a scenario can set.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::clock::{ClockMode, Millis};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorldConfig {
    pub region: String,
    #[serde(default = "default_account")]
    pub account_id: String,
    #[serde(default)]
    pub clock: ClockConfig,
    pub zones: Vec<ZoneConfig>,
    pub vpc: VpcConfig,
    pub subnets: Vec<SubnetConfig>,
    #[serde(default)]
    pub security_groups: Vec<SecurityGroupConfig>,
    #[serde(default)]
    pub images: Vec<ImageConfig>,
    #[serde(default)]
    pub catalog: CatalogConfig,
    #[serde(default)]
    pub pools: PoolsConfig,
    #[serde(default)]
    pub quotas: QuotasConfig,
    #[serde(default)]
    pub throttling: ThrottlingConfig,
    #[serde(default)]
    pub lifecycle: LifecycleConfig,
    #[serde(default)]
    pub auth: AuthConfig,
    /// SQS queues created at start (name and CreateQueue attributes).
    #[serde(default)]
    pub queues: Vec<crate::sqs::QueueConfig>,
    /// EventBridge rules: `{name, pattern, targets: [queue name or ARN]}`.
    #[serde(default)]
    pub rules: Vec<crate::events::RuleConfig>,
    /// The EKS cluster the account has in the region (`DescribeCluster`), if any.
    #[serde(default)]
    pub cluster: Option<crate::eks::ClusterConfig>,
    /// IAM roles and instance profiles; with this section EC2 checks launches' instance profiles.
    #[serde(default)]
    pub iam: Option<crate::iam::IamConfig>,
}

fn default_account() -> String {
    "123456789012".to_owned()
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClockConfig {
    pub mode: ClockMode,
    /// Speed of scaled time (60 makes a 2-minute notice last 2 s).
    #[serde(default = "one")]
    pub factor: f64,
    /// World time at start: an RFC 3339 time, or `now` for the wall clock at start-up. When
    /// absent, `real` and `scaled` worlds start at the wall clock's now (so every time a client
    /// compares with its own clock is right: launch times, spot price history, event times) and
    /// `manual` worlds at [`FIXED_START`] (so what they answer is the same every run).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<String>,
}

fn one() -> f64 {
    1.0
}

/// Where a `manual` world's time starts unless the world file says otherwise.
pub const FIXED_START: &str = "2026-01-01T00:00:00Z";

impl ClockConfig {
    /// World time at start (see [`ClockConfig::start`]). The wall clock is read on each call:
    /// the cloud reads it once, when it is built.
    pub fn start_millis(&self) -> Millis {
        let fixed = |t: &str| chrono::DateTime::parse_from_rfc3339(t).map(|t| t.timestamp_millis()).unwrap_or(0);
        match self.start.as_deref() {
            Some("now") => chrono::Utc::now().timestamp_millis(),
            Some(t) => fixed(t),
            None if self.mode == ClockMode::Manual => fixed(FIXED_START),
            None => chrono::Utc::now().timestamp_millis(),
        }
    }

    /// Whether the start is the same every run (a fixed time, or a manual clock's default).
    pub fn fixed_start(&self) -> bool {
        match self.start.as_deref() {
            Some("now") => false,
            Some(_) => true,
            None => self.mode == ClockMode::Manual,
        }
    }
}

impl Default for ClockConfig {
    fn default() -> Self {
        Self { mode: ClockMode::Real, factor: 1.0, start: None }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ZoneConfig {
    pub name: String,
    pub id: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VpcConfig {
    pub id: String,
    pub cidr: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubnetConfig {
    pub id: String,
    pub zone: String,
    pub cidr: String,
    /// Free IPv4 addresses; defaults to the CIDR's size less the 5 AWS reserves.
    #[serde(default)]
    pub free_ips: Option<u32>,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecurityGroupConfig {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImageConfig {
    pub id: String,
    pub name: String,
    pub architecture: String,
    #[serde(default = "default_owner")]
    pub owner: String,
    #[serde(default)]
    pub description: String,
    #[serde(default = "default_creation")]
    pub creation_date: String,
    #[serde(default)]
    pub deprecated: bool,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
}

fn default_owner() -> String {
    "602401143452".to_owned()
}

fn default_creation() -> String {
    "2025-12-01T00:00:00.000Z".to_owned()
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogConfig {
    /// A JSON file in the shared catalog format; the built-in us-west-2 catalog when absent.
    #[serde(default)]
    pub file: Option<String>,
    /// Keep only these families (e.g. `m5`, `c7g`); all when empty.
    #[serde(default)]
    pub families: Vec<String>,
    /// Keep only these instance types; all when empty.
    #[serde(default)]
    pub types: Vec<String>,
    /// Drop these instance types.
    #[serde(default)]
    pub exclude: Vec<String>,
    /// Zones that do not offer a type: `{ "c7i.large": ["us-west-2d"] }`.
    #[serde(default)]
    pub not_offered: BTreeMap<String, Vec<String>>,
    /// On-demand prices (USD per hour) that replace the catalog's list price: `{ "m5.large": 0.1 }`.
    /// Everything priced from on-demand sees them: Pricing GetProducts, spot prices, fleets.
    #[serde(default)]
    pub on_demand_prices: BTreeMap<String, f64>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoolsConfig {
    #[serde(default)]
    pub spot: SpotPoolsConfig,
    #[serde(default)]
    pub on_demand: OnDemandPoolsConfig,
    /// Per-pool settings: `{ type, zone, capacity_type, capacity, discount }`.
    #[serde(default)]
    pub overrides: Vec<PoolOverride>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpotPoolsConfig {
    /// Each pool's long-run discount off on-demand is drawn from this range by the seed.
    #[serde(default = "default_discount_min")]
    pub discount_min: f64,
    #[serde(default = "default_discount_max")]
    pub discount_max: f64,
    /// Relative size of price moves around the pool's mean.
    #[serde(default = "default_volatility")]
    pub volatility: f64,
    /// World seconds between possible price changes.
    #[serde(default = "default_tick")]
    pub price_tick_seconds: i64,
    /// Chance that the price changes at a tick.
    #[serde(default = "default_change_p")]
    pub change_probability: f64,
    /// How far back `DescribeSpotPriceHistory` reaches, in days (EC2 keeps 90).
    #[serde(default = "default_history_days")]
    pub history_days: i64,
    /// Instances a spot pool holds by default.
    #[serde(default = "default_spot_capacity")]
    pub capacity: u32,
    /// The seeded capacity process: spot pools lose capacity on the clock and the market reclaims
    /// instances through the interruption sequence. Off when absent.
    #[serde(default)]
    pub reclaim: Option<ReclaimConfig>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReclaimConfig {
    /// World seconds between capacity draws.
    #[serde(default = "default_reclaim_tick")]
    pub tick_seconds: i64,
    /// Chance, per tick and per pool that holds spot instances, that its capacity drops.
    pub probability: f64,
    /// The largest share of a pool's instances one drop takes (at least one instance goes).
    #[serde(default = "default_reclaim_share")]
    pub max_share: f64,
    /// World seconds until a dropped pool's capacity comes back.
    #[serde(default = "default_recover")]
    pub recover_seconds: i64,
}

fn default_reclaim_tick() -> i64 {
    300
}
fn default_reclaim_share() -> f64 {
    0.5
}
fn default_recover() -> i64 {
    1800
}

fn default_discount_min() -> f64 {
    0.55
}
fn default_discount_max() -> f64 {
    0.75
}
fn default_volatility() -> f64 {
    0.08
}
fn default_tick() -> i64 {
    3600
}
fn default_change_p() -> f64 {
    0.25
}
fn default_history_days() -> i64 {
    90
}
fn default_spot_capacity() -> u32 {
    200
}

impl Default for SpotPoolsConfig {
    fn default() -> Self {
        Self {
            discount_min: default_discount_min(),
            discount_max: default_discount_max(),
            volatility: default_volatility(),
            price_tick_seconds: default_tick(),
            change_probability: default_change_p(),
            history_days: default_history_days(),
            capacity: default_spot_capacity(),
            reclaim: None,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OnDemandPoolsConfig {
    #[serde(default = "default_od_capacity")]
    pub capacity: u32,
}

fn default_od_capacity() -> u32 {
    10_000
}

impl Default for OnDemandPoolsConfig {
    fn default() -> Self {
        Self { capacity: default_od_capacity() }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoolOverride {
    /// Instance type, or `*` for every type.
    #[serde(rename = "type")]
    pub instance_type: String,
    /// Zone name, or `*` for every zone.
    #[serde(default = "star")]
    pub zone: String,
    #[serde(default = "spot")]
    pub capacity_type: String,
    #[serde(default)]
    pub capacity: Option<u32>,
    /// Spot only: fixed discount off on-demand instead of the seeded one.
    #[serde(default)]
    pub discount: Option<f64>,
}

fn star() -> String {
    "*".to_owned()
}
fn spot() -> String {
    "spot".to_owned()
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuotasConfig {
    /// "All Standard Spot Instance Requests", in vCPUs (`MaxSpotInstanceCountExceeded`).
    #[serde(default)]
    pub spot_vcpus: Option<u32>,
    /// Legacy spot instance-count limit (`MaxSpotInstanceCountExceeded`).
    #[serde(default)]
    pub spot_instances: Option<u32>,
    /// "Running On-Demand Standard instances", in vCPUs (`VcpuLimitExceeded`).
    #[serde(default)]
    pub on_demand_vcpus: Option<u32>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ThrottlingConfig {
    #[serde(default = "default_throttle_mode")]
    pub mode: ThrottleMode,
    /// Multiplies every bucket's size and refill rate.
    #[serde(default = "one")]
    pub scale: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ThrottleMode {
    /// EC2's documented token buckets (peers.md §8.6).
    Documented,
    Off,
}

fn default_throttle_mode() -> ThrottleMode {
    ThrottleMode::Documented
}

impl Default for ThrottlingConfig {
    fn default() -> Self {
        Self { mode: ThrottleMode::Documented, scale: 1.0 }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LifecycleConfig {
    /// pending → running.
    #[serde(default = "default_boot")]
    pub boot_seconds: i64,
    /// shutting-down → terminated.
    #[serde(default = "default_shutdown")]
    pub shutdown_seconds: i64,
    /// stopping → stopped.
    #[serde(default = "default_shutdown")]
    pub stop_seconds: i64,
    /// How long a terminated instance stays visible to Describe calls (EC2: about an hour).
    #[serde(default = "default_visible")]
    pub terminated_visible_seconds: i64,
    /// running → its Node registered (when fake-ec2 has a kubeconfig): kubelet start-up time.
    #[serde(default = "default_registration")]
    pub node_registration_seconds: i64,
}

fn default_registration() -> i64 {
    10
}

fn default_boot() -> i64 {
    15
}
fn default_shutdown() -> i64 {
    10
}
fn default_visible() -> i64 {
    3600
}

impl Default for LifecycleConfig {
    fn default() -> Self {
        Self {
            boot_seconds: default_boot(),
            shutdown_seconds: default_shutdown(),
            stop_seconds: default_shutdown(),
            terminated_visible_seconds: default_visible(),
            node_registration_seconds: default_registration(),
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    /// `signed` (default) needs a SigV4 `Authorization` header but does not check it;
    /// `strict` verifies the signature against `credentials`.
    #[serde(default)]
    pub mode: AuthMode,
    #[serde(default)]
    pub credentials: Vec<Credential>,
    /// Actions answered with `UnauthorizedOperation` (DryRun or not), e.g. `RunInstances`.
    #[serde(default)]
    pub deny_actions: Vec<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthMode {
    #[default]
    Signed,
    Strict,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Credential {
    pub access_key_id: String,
    pub secret_access_key: String,
}

/// `10.0.1.0/24` as (address, prefix length).
pub fn parse_cidr(cidr: &str) -> Option<(Ipv4Addr, u8)> {
    let (ip, bits) = cidr.split_once('/')?;
    let ip: Ipv4Addr = ip.parse().ok()?;
    let bits: u8 = bits.parse().ok()?;
    (bits <= 32).then_some((ip, bits))
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("failed to read world file {path}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("world file {path} is not valid: {message}")]
    Parse { path: String, message: String },
    #[error("world file {path}: {message}")]
    Invalid { path: String, message: String },
}

impl WorldConfig {
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| ConfigError::Read { path: path.display().to_string(), source })?;
        Self::parse(&text, &path.display().to_string())
    }

    pub fn parse(text: &str, origin: &str) -> Result<Self, ConfigError> {
        let cfg: Self = serde_saphyr::from_str(text)
            .map_err(|e| ConfigError::Parse { path: origin.to_owned(), message: e.to_string() })?;
        cfg.validate().map_err(|message| ConfigError::Invalid { path: origin.to_owned(), message })?;
        Ok(cfg)
    }

    fn validate(&self) -> Result<(), String> {
        if self.zones.is_empty() {
            return Err("`zones` must list at least one zone".into());
        }
        for s in &self.subnets {
            if !self.zones.iter().any(|z| z.name == s.zone) {
                return Err(format!("subnet {} is in zone {}, which `zones` does not list", s.id, s.zone));
            }
            parse_cidr(&s.cidr).ok_or_else(|| format!("subnet {}: bad cidr {}", s.id, s.cidr))?;
        }
        let sp = &self.pools.spot;
        if !(0.0..1.0).contains(&sp.discount_min)
            || !(0.0..1.0).contains(&sp.discount_max)
            || sp.discount_min > sp.discount_max
        {
            return Err("pools.spot: need 0 <= discount_min <= discount_max < 1".into());
        }
        if let Some(r) = &sp.reclaim
            && (r.tick_seconds <= 0
                || r.recover_seconds < 0
                || !(0.0..=1.0).contains(&r.probability)
                || !(0.0..=1.0).contains(&r.max_share))
        {
            return Err(
                "pools.spot.reclaim: need tick_seconds > 0, recover_seconds >= 0, probability and max_share in [0, 1]"
                    .into(),
            );
        }
        if sp.price_tick_seconds <= 0 {
            return Err("pools.spot.price_tick_seconds must be positive".into());
        }
        if self.clock.mode == ClockMode::Scaled && self.clock.factor <= 0.0 {
            return Err("clock.factor must be positive in scaled mode".into());
        }
        if let Some(start) = self.clock.start.as_deref().filter(|s| *s != "now")
            && chrono::DateTime::parse_from_rfc3339(start).is_err()
        {
            return Err(format!("clock.start `{start}` is neither `now` nor an RFC 3339 time"));
        }
        if let Some(c) = &self.cluster {
            c.validate()?;
        }
        for o in &self.pools.overrides {
            if o.capacity_type != "spot" && o.capacity_type != "on-demand" {
                return Err(format!("pools.overrides: capacity_type `{}` must be spot or on-demand", o.capacity_type));
            }
        }
        Ok(())
    }
}
