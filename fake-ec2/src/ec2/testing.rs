//! Helpers for the handlers' unit tests: run a Query string through a handler, read the XML.

use super::error::Ec2Result;
use super::query::Form;
use super::{Call, Handler};
use crate::world::World;

pub fn run(h: Handler, w: &mut World, action: &str, q: &str) -> Ec2Result<String> {
    let form = Form::parse(q.as_bytes());
    let call = Call { action, params: form.root(), request_id: "req-1".into() };
    h(w, &call)
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
