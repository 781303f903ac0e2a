//! What an EC2 launch asks outside the EC2 world, answered by the services that know.

use rand_chacha::ChaCha8Rng;

use crate::clock::{Clock, Millis};
use crate::faults::Faults;
use crate::iam::Iam;
use crate::world::{LaunchChecks, ProfileCheck};

/// IAM (instance profiles), the fault injector (capacity shortfalls) and the clock, as a launch
/// sees them.
pub struct Neighbours<'a> {
    pub faults: &'a mut Faults,
    pub iam: &'a Iam,
    /// The world's clock: a launch asks it for the clients' wall clock.
    pub clock: &'a Clock,
}

impl LaunchChecks for Neighbours<'_> {
    fn instance_profile(&self, name_or_arn: &str) -> ProfileCheck {
        if !self.iam.checks_profiles() {
            return ProfileCheck::Unchecked;
        }
        match self.iam.profile_by_name_or_arn(name_or_arn) {
            Some(p) => ProfileCheck::Found { arn: p.arn.clone(), id: p.id.clone() },
            None => ProfileCheck::Missing,
        }
    }

    fn refuses(&mut self, zone: &str, zone_id: &str, now: Millis, rng: &mut ChaCha8Rng) -> bool {
        self.faults.ice(zone, zone_id, now, rng)
    }

    fn clients_now(&self) -> Option<Millis> {
        self.clock.clients_now()
    }
}
