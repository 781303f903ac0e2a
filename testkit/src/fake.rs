//! fake-ec2 served in-process on `127.0.0.1:0`, with the default world on a manual clock.

use std::path::Path;

use fake_ec2::cloud::Cloud;
use fake_ec2::server::{AppState, bind, serve};
use fake_ec2::world::config::WorldConfig;

pub const DEFAULT_WORLD: &str = include_str!("../../fixtures/worlds/default.yaml");

/// The default world with a manual clock (time moves only when a test says so).
pub fn world(seed: u64) -> Cloud {
    world_with(seed, |_| {})
}

/// The default world on a manual clock, changed by `edit` before it is built.
pub fn world_with(seed: u64, edit: impl FnOnce(&mut WorldConfig)) -> Cloud {
    let text = DEFAULT_WORLD.replace("mode: real", "mode: manual");
    let mut cfg = WorldConfig::parse(&text, "default.yaml").expect("the default world parses");
    edit(&mut cfg);
    Cloud::new(cfg, seed, Path::new(".")).expect("the default world builds")
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

/// A served world; stops serving when dropped.
pub struct Server {
    pub endpoint: String,
    pub state: AppState,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Server {
    /// Serves `world` on a free loopback port (inside a Tokio runtime).
    pub async fn start(world: Cloud) -> Self {
        let addr = "127.0.0.1:0".parse().expect("a socket address");
        let listener = bind(addr).await.expect("a free loopback port");
        let endpoint = format!("http://{}", listener.local_addr().expect("a bound address"));
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

    /// Moves the world clock on by `secs` (due timers run on the next access).
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
            .expect("fake-ec2 answers")
    }

    /// POSTs a raw EC2 Query body, signed in form only; returns (status, body).
    pub async fn raw(&self, body: &str) -> (u16, String) {
        let r = self.signed_for("ec2", reqwest::Method::POST, "", body).await;
        let status = r.status().as_u16();
        (status, r.text().await.expect("a readable body"))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}
