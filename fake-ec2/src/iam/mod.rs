//! IAM, as far as node autoscalers use it: roles (declared in the world file) and instance
//! profiles (declared there, or created, given a role, tagged and deleted through the API).
//!
//! IAM is global: ARNs carry no region (`arn:aws:iam::<account>:instance-profile<path><name>`).
//! Unique ids (`AIPA…`, `AROA…`) come from the cloud's `iam` stream. The wire is [`api`]
//! (Query protocol, `Version=2010-05-08`).
//!
//! EC2 launches naming an instance profile IAM does not have fail as EC2 fails them when the world
//! file has an `iam` section (and `check_instance_profiles` is not turned off); a world without
//! one checks nothing, as before IAM existed here.

pub mod api;
mod validate;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::clock::Millis;
use crate::rng::Streams;

/// The trust policy a declared role gets when the world names none: EC2 may assume it.
const EC2_TRUST_POLICY: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;

/// The most tags IAM lets a resource carry.
pub const MAX_TAGS: usize = 50;

/// The world file's `iam` section.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IamConfig {
    /// Whether EC2 refuses launches naming an instance profile IAM does not have.
    #[serde(default = "yes")]
    pub check_instance_profiles: bool,
    #[serde(default)]
    pub roles: Vec<RoleConfig>,
    #[serde(default)]
    pub instance_profiles: Vec<InstanceProfileConfig>,
}

fn yes() -> bool {
    true
}

fn root() -> String {
    "/".to_owned()
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleConfig {
    pub name: String,
    #[serde(default = "root")]
    pub path: String,
    #[serde(default)]
    pub description: Option<String>,
    /// The trust policy (JSON); one that lets EC2 assume the role when absent.
    #[serde(default)]
    pub assume_role_policy: Option<String>,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InstanceProfileConfig {
    pub name: String,
    #[serde(default = "root")]
    pub path: String,
    /// The role in the profile (a profile holds at most one).
    #[serde(default)]
    pub role: Option<String>,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
}

/// An error as IAM reports it: HTTP status, code and message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct IamError {
    pub status: u16,
    pub code: &'static str,
    pub message: String,
}

impl IamError {
    pub fn no_such_profile(name: &str) -> Self {
        Self { status: 404, code: "NoSuchEntity", message: format!("Instance Profile {name} cannot be found.") }
    }

    pub fn no_such_role(name: &str) -> Self {
        Self { status: 404, code: "NoSuchEntity", message: format!("The role with name {name} cannot be found.") }
    }

    pub fn validation(message: impl Into<String>) -> Self {
        Self { status: 400, code: "ValidationError", message: message.into() }
    }

    fn limit(message: impl Into<String>) -> Self {
        Self { status: 409, code: "LimitExceeded", message: message.into() }
    }

    /// An instance profile holds one role.
    fn one_role() -> Self {
        Self::limit("Cannot exceed quota for InstanceSessionsPerInstanceProfile: 1")
    }
}

pub type IamResult<T> = Result<T, IamError>;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Role {
    pub name: String,
    pub path: String,
    pub id: String,
    pub arn: String,
    pub created: Millis,
    pub description: Option<String>,
    pub assume_role_policy: String,
    pub max_session_duration: u32,
    pub tags: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InstanceProfile {
    pub name: String,
    pub path: String,
    pub id: String,
    pub arn: String,
    pub created: Millis,
    /// Role names (none or one).
    pub roles: Vec<String>,
    pub tags: BTreeMap<String, String>,
}

/// The account's roles and instance profiles.
#[derive(Debug, Default)]
pub struct Iam {
    account_id: String,
    checks_profiles: bool,
    roles: BTreeMap<String, Role>,
    profiles: BTreeMap<String, InstanceProfile>,
}

/// What a state file keeps of [`Iam`]: the roles and instance profiles as they are now.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IamState {
    roles: BTreeMap<String, Role>,
    profiles: BTreeMap<String, InstanceProfile>,
}

impl Iam {
    pub fn snapshot(&self) -> IamState {
        IamState { roles: self.roles.clone(), profiles: self.profiles.clone() }
    }

    pub fn restore(&mut self, s: IamState) {
        self.roles = s.roles;
        self.profiles = s.profiles;
    }

    /// What the world file declares (nothing, and no checks, without an `iam` section).
    pub fn new(cfg: Option<&IamConfig>, account_id: &str, now: Millis, rng: &mut Streams) -> Result<Self, String> {
        let mut iam = Self { account_id: account_id.to_owned(), ..Self::default() };
        let Some(cfg) = cfg else {
            return Ok(iam);
        };
        iam.checks_profiles = cfg.check_instance_profiles;
        for r in &cfg.roles {
            validate::role_name(&r.name).and_then(|()| validate::path(&r.path)).map_err(|e| e.message)?;
            if iam.roles.contains_key(&r.name) {
                return Err(format!("role {} is declared twice", r.name));
            }
            let role = Role {
                arn: format!("arn:aws:iam::{account_id}:role{}{}", r.path, r.name),
                name: r.name.clone(),
                path: r.path.clone(),
                id: rng.iam_id("AROA"),
                created: now,
                description: r.description.clone(),
                assume_role_policy: r.assume_role_policy.clone().unwrap_or_else(|| EC2_TRUST_POLICY.to_owned()),
                max_session_duration: 3600,
                tags: r.tags.clone(),
            };
            iam.roles.insert(role.name.clone(), role);
        }
        for p in &cfg.instance_profiles {
            let tags: Vec<(String, String)> = p.tags.clone().into_iter().collect();
            iam.create_instance_profile(&p.name, Some(&p.path), &tags, now, rng).map_err(|e| e.message)?;
            if let Some(role) = &p.role {
                iam.add_role(&p.name, role).map_err(|e| format!("instance profile {}: {}", p.name, e.message))?;
            }
        }
        Ok(iam)
    }

    /// Whether EC2 launches must name a profile that exists.
    pub fn checks_profiles(&self) -> bool {
        self.checks_profiles
    }

    /// A profile by name, or by ARN (`arn:aws:iam::…:instance-profile/…`).
    pub fn profile_by_name_or_arn(&self, name_or_arn: &str) -> Option<&InstanceProfile> {
        if name_or_arn.starts_with("arn:") {
            self.profiles.values().find(|p| p.arn == name_or_arn)
        } else {
            self.profiles.get(name_or_arn)
        }
    }

    pub fn instance_profile(&self, name: &str) -> IamResult<&InstanceProfile> {
        validate::profile_name(name)?;
        self.profiles.get(name).ok_or_else(|| IamError::no_such_profile(name))
    }

    fn instance_profile_mut(&mut self, name: &str) -> IamResult<&mut InstanceProfile> {
        validate::profile_name(name)?;
        self.profiles.get_mut(name).ok_or_else(|| IamError::no_such_profile(name))
    }

    pub fn role(&self, name: &str) -> IamResult<&Role> {
        validate::role_name(name)?;
        self.roles.get(name).ok_or_else(|| IamError::no_such_role(name))
    }

    pub fn create_instance_profile(
        &mut self,
        name: &str,
        path: Option<&str>,
        tags: &[(String, String)],
        now: Millis,
        rng: &mut Streams,
    ) -> IamResult<&InstanceProfile> {
        validate::profile_name(name)?;
        let path = path.unwrap_or("/");
        validate::path(path)?;
        validate::tags(tags)?;
        if self.profiles.contains_key(name) {
            return Err(IamError {
                status: 409,
                code: "EntityAlreadyExists",
                message: format!("Instance Profile {name} already exists."),
            });
        }
        let profile = InstanceProfile {
            name: name.to_owned(),
            path: path.to_owned(),
            id: rng.iam_id("AIPA"),
            arn: format!("arn:aws:iam::{}:instance-profile{path}{name}", self.account_id),
            created: now,
            roles: Vec::new(),
            tags: tags.iter().cloned().collect(),
        };
        Ok(self.profiles.entry(name.to_owned()).or_insert(profile))
    }

    pub fn delete_instance_profile(&mut self, name: &str) -> IamResult<()> {
        if !self.instance_profile(name)?.roles.is_empty() {
            return Err(IamError {
                status: 409,
                code: "DeleteConflict",
                message: "Cannot delete entity, must remove roles from instance profile first.".into(),
            });
        }
        self.profiles.remove(name);
        Ok(())
    }

    /// Profiles whose path starts with `path_prefix`, by name.
    pub fn instance_profiles(&self, path_prefix: Option<&str>) -> IamResult<Vec<&InstanceProfile>> {
        if let Some(p) = path_prefix {
            validate::path_prefix(p)?;
        }
        let prefix = path_prefix.unwrap_or("/");
        Ok(self.profiles.values().filter(|p| p.path.starts_with(prefix)).collect())
    }

    /// Profiles holding a role, by name.
    pub fn instance_profiles_for_role(&self, role: &str) -> IamResult<Vec<&InstanceProfile>> {
        self.role(role)?;
        Ok(self.profiles.values().filter(|p| p.roles.iter().any(|r| r == role)).collect())
    }

    pub fn add_role(&mut self, profile: &str, role: &str) -> IamResult<()> {
        validate::role_name(role)?;
        if !self.profiles.contains_key(profile) {
            return Err(IamError::no_such_profile(profile));
        }
        if !self.roles.contains_key(role) {
            return Err(IamError::no_such_role(role));
        }
        let p = self.instance_profile_mut(profile)?;
        if !p.roles.is_empty() {
            return Err(IamError::one_role());
        }
        p.roles.push(role.to_owned());
        Ok(())
    }

    pub fn remove_role(&mut self, profile: &str, role: &str) -> IamResult<()> {
        validate::role_name(role)?;
        let p = self.instance_profile_mut(profile)?;
        let before = p.roles.len();
        p.roles.retain(|r| r != role);
        if p.roles.len() == before {
            return Err(IamError::no_such_role(role));
        }
        Ok(())
    }

    pub fn tag(&mut self, profile: &str, tags: &[(String, String)]) -> IamResult<()> {
        validate::tags(tags)?;
        let p = self.instance_profile_mut(profile)?;
        let mut merged = p.tags.clone();
        merged.extend(tags.iter().cloned());
        if merged.len() > MAX_TAGS {
            return Err(IamError::limit(format!("The number of tags has reached the maximum limit of {MAX_TAGS}.")));
        }
        p.tags = merged;
        Ok(())
    }

    pub fn untag(&mut self, profile: &str, keys: &[String]) -> IamResult<()> {
        let p = self.instance_profile_mut(profile)?;
        for k in keys {
            p.tags.remove(k);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn iam() -> (Iam, Streams) {
        let cfg = IamConfig {
            check_instance_profiles: true,
            roles: vec![RoleConfig {
                name: "NodeRole".into(),
                path: "/".into(),
                description: None,
                assume_role_policy: None,
                tags: BTreeMap::new(),
            }],
            instance_profiles: Vec::new(),
        };
        let mut rng = Streams::new(1);
        let iam = Iam::new(Some(&cfg), "123456789012", 0, &mut rng).unwrap_or_else(|e| unreachable!("{e}"));
        (iam, rng)
    }

    #[test]
    fn a_profile_holds_one_role_and_must_lose_it_before_deletion() {
        let (mut iam, mut rng) = iam();
        let p = iam.create_instance_profile("p", Some("/karpenter/us-west-2/c/uid/"), &[], 0, &mut rng);
        assert_eq!(
            p.map(|p| p.arn.clone()).ok().as_deref(),
            Some("arn:aws:iam::123456789012:instance-profile/karpenter/us-west-2/c/uid/p")
        );
        assert_eq!(
            iam.add_role("p", "Missing").map_err(|e| e.message),
            Err("The role with name Missing cannot be found.".into())
        );
        assert!(iam.add_role("p", "NodeRole").is_ok());
        assert_eq!(iam.add_role("p", "NodeRole").map_err(|e| e.code), Err("LimitExceeded"));
        assert_eq!(iam.delete_instance_profile("p").map_err(|e| (e.status, e.code)), Err((409, "DeleteConflict")));
        assert!(iam.remove_role("p", "NodeRole").is_ok());
        assert!(iam.delete_instance_profile("p").is_ok());
        assert_eq!(iam.instance_profile("p").map_err(|e| e.status).err(), Some(404));
    }

    #[test]
    fn ids_come_from_the_seed() {
        let ids = || {
            let (mut iam, mut rng) = iam();
            let role = iam.role("NodeRole").map(|r| r.id.clone()).unwrap_or_default();
            let p = iam.create_instance_profile("p", None, &[], 0, &mut rng).map(|p| p.id.clone()).unwrap_or_default();
            (role, p)
        };
        let (role, profile) = ids();
        assert!(role.starts_with("AROA") && role.len() == 21, "{role}");
        assert!(profile.starts_with("AIPA") && profile.len() == 21, "{profile}");
        assert_eq!(ids(), (role, profile));
    }

    #[test]
    fn path_prefix_selects_and_bad_names_are_refused() {
        let (mut iam, mut rng) = iam();
        for (n, path) in [("a", "/karpenter/r/c/1/"), ("b", "/karpenter/r/c/2/"), ("c", "/")] {
            assert!(iam.create_instance_profile(n, Some(path), &[], 0, &mut rng).is_ok());
        }
        let names = |v: Vec<&InstanceProfile>| v.iter().map(|p| p.name.clone()).collect::<Vec<_>>();
        assert_eq!(iam.instance_profiles(Some("/karpenter/r/c/")).map(names), Ok(vec!["a".into(), "b".into()]));
        assert_eq!(iam.instance_profiles(None).map(|v| v.len()), Ok(3));
        for bad in ["has space", ""] {
            assert_eq!(
                iam.create_instance_profile(bad, None, &[], 0, &mut rng).map(|_| ()).map_err(|e| e.code),
                Err("ValidationError")
            );
        }
        assert_eq!(
            iam.create_instance_profile("d", Some("no-slashes"), &[], 0, &mut rng).map(|_| ()).map_err(|e| e.code),
            Err("ValidationError")
        );
    }
}
