//! `CreateFleet` of type `instant`: parse the request into a typed [`FleetRequest`]
//! ([`request`]), allocate it in the world ([`crate::world::fleet`]), render the answer
//! ([`render`]). A retry with the same `ClientToken` gets the fleet that token made, rendered again
//! under the new request id, for as long as the world remembers the token
//! ([`crate::world::tokens`]).

mod render;
mod request;

use super::error::Ec2Result;
use super::{Call, Ec2Ctx};

pub fn create_fleet(cx: &mut Ec2Ctx<'_>, call: &Call<'_>) -> Ec2Result<String> {
    let req = request::parse(cx.world, &call.params)?;
    call.dry_run(cx.world)?;
    if let Some(fleet) = req.client_token.as_ref().and_then(|t| cx.world.fleet_tokens.get(t, cx.now)) {
        return Ok(render::response(call, fleet));
    }
    let token = req.client_token.clone();
    let fleet = cx.world.create_fleet(req, cx.now, cx.rng, cx.checks);
    let xml = render::response(call, &fleet);
    if let Some(token) = token {
        cx.world.fleet_tokens.insert(token, fleet.for_retries(), cx.now);
    }
    Ok(xml)
}
