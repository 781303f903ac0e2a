//! Spawning fake-ec2 in-process on 127.0.0.1:0 and pointing real clients at it.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod process;

use std::path::Path;

use fake_ec2::cloud::Cloud;
use fake_ec2::server::{AppState, bind, serve};
use fake_ec2::world::config::WorldConfig;

pub const DEFAULT_WORLD: &str = include_str!("../../../fixtures/worlds/default.yaml");

/// The default world with a manual clock (time moves only when a test says so).
pub fn world(seed: u64) -> Cloud {
    world_with(seed, |_| {})
}

pub fn world_with(seed: u64, edit: impl FnOnce(&mut WorldConfig)) -> Cloud {
    let text = DEFAULT_WORLD.replace("mode: real", "mode: manual");
    let mut cfg = WorldConfig::parse(&text, "default.yaml").unwrap();
    edit(&mut cfg);
    Cloud::new(cfg, seed, Path::new(".")).unwrap()
}

/// A client of one AWS SDK crate pointed at `endpoint`, signing for `region`, with test
/// credentials and no retries (a test sees every answer).
#[macro_export]
macro_rules! sdk_client {
    ($sdk:ident, $endpoint:expr, $region:expr) => {{
        let cfg = $sdk::Config::builder()
            .behavior_version($sdk::config::BehaviorVersion::latest())
            .region($sdk::config::Region::new($region))
            .endpoint_url($endpoint)
            .credentials_provider($sdk::config::Credentials::new("AKIDTEST", "secret", None, None, "test"))
            .retry_config($sdk::config::retry::RetryConfig::disabled())
            .build();
        $sdk::Client::from_conf(cfg)
    }};
}

pub struct Server {
    pub endpoint: String,
    pub state: AppState,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Server {
    pub async fn start(world: Cloud) -> Self {
        let listener = bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let state = AppState::new(world);
        let (tx, rx) = tokio::sync::oneshot::channel();
        tokio::spawn(serve(listener, state.clone(), async {
            let _ = rx.await;
        }));
        Self { endpoint, state, stop: Some(tx) }
    }

    pub fn ec2(&self) -> aws_sdk_ec2::Client {
        sdk_client!(aws_sdk_ec2, &self.endpoint, "us-west-2")
    }

    pub fn sqs(&self) -> aws_sdk_sqs::Client {
        sdk_client!(aws_sdk_sqs, &self.endpoint, "us-west-2")
    }

    pub fn advance(&self, secs: i64) {
        self.state.cloud().advance(secs * 1000);
    }

    /// A raw request signed (in form only) for `service`: signatures are not checked in the
    /// default `signed` mode.
    pub async fn signed_for(
        &self,
        service: &str,
        method: reqwest::Method,
        path: &str,
        body: &str,
    ) -> reqwest::Response {
        reqwest::Client::new()
            .request(method, format!("{}{path}", self.endpoint))
            .header("content-type", "application/x-www-form-urlencoded; charset=utf-8")
            .header("x-amz-date", "20260101T000000Z")
            .header(
                "authorization",
                format!("AWS4-HMAC-SHA256 Credential=AKIDTEST/20260101/us-west-2/{service}/aws4_request, SignedHeaders=host;x-amz-date, Signature=00"),
            )
            .body(body.to_owned())
            .send()
            .await
            .unwrap()
    }

    /// POSTs a raw Query body, signed in form only; returns (status, body).
    pub async fn raw(&self, body: &str) -> (u16, String) {
        let r = reqwest::Client::new()
            .post(&self.endpoint)
            .header("content-type", "application/x-www-form-urlencoded; charset=utf-8")
            .header("x-amz-date", "20260101T000000Z")
            .header(
                "authorization",
                "AWS4-HMAC-SHA256 Credential=AKIDTEST/20260101/us-west-2/ec2/aws4_request, SignedHeaders=host;x-amz-date, Signature=00",
            )
            .body(body.to_owned())
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.text().await.unwrap())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}

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
