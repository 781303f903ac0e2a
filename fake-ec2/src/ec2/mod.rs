//! The EC2 Query API (`Version=2016-11-15`): request parsing, dispatch and XML responses.
//! One file per group of actions; each handler turns a [`Call`] into response XML. The action
//! table ([`actions::ACTIONS`]) names every handler with its throttling buckets.

pub mod actions;
pub mod catalog;
pub mod error;
pub mod filters;
pub mod fleet;
pub mod instances;
pub mod launch_templates;
pub mod network;
pub mod pagination;
pub mod query;
pub mod render;
pub mod tags;
#[cfg(test)]
pub mod testing;

use error::{Ec2Error, Ec2Result};
use query::Params;

use crate::clock::Millis;
use crate::rng::Streams;
use crate::world::{LaunchChecks, LaunchFailure, LaunchSpec, World};
use crate::xml::XmlWriter;

pub const API_VERSION: &str = "2016-11-15";
pub const EC2_XMLNS: &str = "http://ec2.amazonaws.com/doc/2016-11-15/";

/// What an EC2 action works on: the EC2 world, the time the request runs at, the cloud's seeded
/// streams, and what a launch asks outside the world (IAM, injected faults).
pub struct Ec2Ctx<'a> {
    pub world: &'a mut World,
    pub now: Millis,
    pub rng: &'a mut Streams,
    pub checks: &'a mut dyn LaunchChecks,
}

impl Ec2Ctx<'_> {
    /// Launches one instance now, as EC2 would (instance profile and injected shortfalls included).
    pub fn launch(&mut self, spec: &LaunchSpec) -> Result<String, LaunchFailure> {
        self.world.launch(spec, self.now, self.rng, self.checks)
    }
}

/// One EC2 request, after the envelope (auth, throttling) has been checked.
pub struct Call<'a> {
    pub action: &'a str,
    pub params: Params<'a>,
    pub request_id: String,
}

impl Call<'_> {
    /// A response writer already holding the envelope and `requestId`.
    pub fn writer(&self) -> XmlWriter {
        let mut w = XmlWriter::document(format!("{}Response", self.action), EC2_XMLNS);
        w.elem("requestId", &self.request_id);
        w
    }

    pub fn finish(&self, w: XmlWriter) -> String {
        w.finish()
    }

    /// After validating a request: with `DryRun=true`, answer as EC2 does and stop there.
    pub fn dry_run(&self, world: &World) -> Ec2Result<()> {
        if self.params.flag("DryRun")? {
            if denied(world, self.action) {
                return Err(Ec2Error::unauthorized());
            }
            return Err(Ec2Error::dry_run_ok());
        }
        Ok(())
    }
}

/// The most user data EC2 takes, before base64 ("User data is limited to 16 KB, in raw form,
/// before it is base64-encoded": EC2 user guide, instance user data).
pub const MAX_USER_DATA_BYTES: usize = 16 * 1024;

/// Refuses user data over [`MAX_USER_DATA_BYTES`] (decoded, or as given when it is not base64).
pub fn check_user_data(user_data: Option<&str>) -> Ec2Result<()> {
    use base64::Engine;
    let Some(ud) = user_data else { return Ok(()) };
    let raw = base64::engine::general_purpose::STANDARD.decode(ud.trim()).map_or(ud.len(), |b| b.len());
    if raw > MAX_USER_DATA_BYTES {
        return Err(Ec2Error::client(
            "InvalidUserData.Malformed",
            format!("User data is limited to {MAX_USER_DATA_BYTES} bytes"),
        ));
    }
    Ok(())
}

pub fn denied(world: &World, action: &str) -> bool {
    world.cfg.auth.deny_actions.iter().any(|a| a == action || a.strip_prefix("ec2:") == Some(action))
}

/// Whether a request names no filters, ids or page size: EC2 draws those from a smaller bucket.
pub fn is_unfiltered(params: &Params<'_>) -> bool {
    !params.has("Filter") && !params.has("InstanceId") && !params.has("MaxResults") && !params.has("NextToken")
}
