//! The built-in SQS: standard queues on the world's clock and seeded streams, served on the same
//! endpoint as EC2 in both wire protocols.
//!
//! - [`queue`]: one queue as a pure state machine (visibility, receipt handles, retention).
//! - [`queues`]: the account's queues, queue attributes, dead-letter redrive, and the Rust API the
//!   event bus uses ([`Queues::send`]).
//! - [`actions`]: the actions on JSON-shaped input and output, shared by both fronts.
//! - [`json`] (AWS JSON 1.0) and [`query`] (Query, XML): the wire.
//!
//! This module holds no lock and knows no server: the server's SQS endpoint runs the
//! actions under the cloud's lock and waits out long polls without it, on the queue's
//! [`tokio::sync::Notify`] and the clock (napping at most [`MAX_NAP`]).

pub mod actions;
pub mod error;
pub mod json;
pub mod message;
pub mod query;
pub mod queue;
pub mod queues;

use std::collections::BTreeMap;
use std::time::Duration;

pub use error::SqsError;
pub use message::{AttributeValue, MessageAttributes};
pub use queue::Sent;
pub use queues::{QueueConfig, Queues};

/// The longest a waiting long poll sleeps before looking at the clock again.
pub const MAX_NAP: Duration = Duration::from_millis(50);

/// Whether a Query-protocol (form) request is for SQS: the SQS API version, an SQS action name,
/// or a SigV4 credential scope for the `sqs` service.
pub fn is_query_request(form: &BTreeMap<String, String>, headers: &BTreeMap<String, String>) -> bool {
    if form.get("Version").is_some_and(|v| v == query::VERSION) {
        return true;
    }
    if form.get("Action").is_some_and(|a| actions::ACTIONS.contains(&a.as_str())) {
        return true;
    }
    let scope = headers.get("authorization").cloned().or_else(|| form.get("X-Amz-Credential").cloned());
    scope.is_some_and(|s| s.split('/').nth(3) == Some("sqs"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tells_sqs_query_requests_apart() {
        let form = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
        };
        let none = BTreeMap::new();
        assert!(is_query_request(&form(&[("Action", "ListQueues"), ("Version", "2012-11-05")]), &none));
        assert!(is_query_request(&form(&[("Action", "SendMessage")]), &none));
        assert!(!is_query_request(&form(&[("Action", "DescribeInstances"), ("Version", "2016-11-15")]), &none));
        let signed = BTreeMap::from([(
            "authorization".to_owned(),
            "AWS4-HMAC-SHA256 Credential=AKID/20260101/us-west-2/sqs/aws4_request, SignedHeaders=host, Signature=0"
                .to_owned(),
        )]);
        assert!(is_query_request(&form(&[("Action", "Whatever")]), &signed));
    }
}
