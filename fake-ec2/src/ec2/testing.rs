//! Helpers for the handlers' unit tests: run a Query string through a handler, read the XML.

use super::actions::Handler;
use super::error::Ec2Result;
use super::query::Form;
use super::{Call, Ec2Ctx};
use crate::clock::Millis;
use crate::rng::Streams;
use crate::world::World;

/// The world's start time: world time in these tests, which never move the clock.
pub fn now(w: &World) -> Millis {
    w.cfg.clock.start_millis()
}

pub fn run(h: Handler, w: &mut World, action: &str, q: &str) -> Ec2Result<String> {
    let now = now(w);
    run_at(h, w, action, q, now)
}

/// [`run`] at world time `now`.
pub fn run_at(h: Handler, w: &mut World, action: &str, q: &str, now: Millis) -> Ec2Result<String> {
    let form = Form::parse(q.as_bytes());
    let call = Call { action, params: form.root(), request_id: "req-1".into() };
    let mut rng = Streams::new(w.seed);
    h(&mut Ec2Ctx { world: w, now, rng: &mut rng, checks: &mut () }, &call)
}

/// Every text value of `<tag>` in document order.
pub fn texts(xml: &str, tag: &str) -> Vec<String> {
    let (open, close) = (format!("<{tag}>"), format!("</{tag}>"));
    let mut out = Vec::new();
    let mut rest = xml;
    while let Some(i) = rest.find(&open) {
        rest = &rest[i + open.len()..];
        let Some(j) = rest.find(&close) else { break };
        out.push(rest[..j].to_owned());
        rest = &rest[j + close.len()..];
    }
    out
}

pub fn ok(r: Ec2Result<String>) -> String {
    r.unwrap_or_else(|e| unreachable!("unexpected error {e}"))
}
