//! Spawning fake-ec2 in-process on 127.0.0.1:0 and pointing real clients at it.
#![allow(dead_code, unused_imports, clippy::unwrap_used, clippy::expect_used)]

pub mod process;

use fake_ec2::server::AppState;
pub use testkit::fake::{DEFAULT_WORLD, Server, world, world_with};
pub use testkit::sdk_client;

/// Runs one EC2 Query body in-process (no HTTP), as a signed request; returns (status, XML).
pub fn call(state: &AppState, body: &str) -> (u16, String) {
    let headers = std::collections::BTreeMap::from([
        (
            "authorization".to_owned(),
            "AWS4-HMAC-SHA256 Credential=AKID/20260101/us-west-2/ec2/aws4_request, SignedHeaders=host, Signature=0"
                .to_owned(),
        ),
        ("host".to_owned(), "127.0.0.1".to_owned()),
    ]);
    let signed = fake_ec2::auth::SignedRequest {
        method: "POST",
        path: "/",
        query: "",
        headers: &headers,
        body: body.as_bytes(),
    };
    fake_ec2::server::ec2_request(state, &fake_ec2::ec2::query::Form::parse(body.as_bytes()), &signed)
}

/// Text of every `<name>` element in document order.
pub fn all(xml: &str, name: &str) -> Vec<String> {
    let open = format!("<{name}>");
    xml.split(&open).skip(1).map(|s| s.split('<').next().unwrap_or_default().to_owned()).collect()
}

/// The HTTP status an SDK error (of any AWS SDK crate) came with.
pub fn status<E>(e: &aws_sdk_ec2::error::SdkError<E, aws_sdk_ec2::config::http::HttpResponse>) -> Option<u16> {
    e.raw_response().map(|r| r.status().as_u16())
}

/// Error code of an SDK error, as the SDK parsed it from the wire.
pub fn code<E: aws_sdk_ec2::error::ProvideErrorMetadata>(e: &E) -> String {
    e.code().unwrap_or("<none>").to_owned()
}
