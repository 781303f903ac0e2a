//! SDK clients from the standard AWS configuration chain (env, profile, IMDS), so the same code
//! talks to real AWS or to any endpoint set through `AWS_ENDPOINT_URL*` or an explicit override.

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_ec2::error::ProvideErrorMetadata;

use super::errors::CloudError;

#[derive(Debug, Clone, Default)]
pub struct AwsOptions {
    /// Overrides the region from the environment.
    pub region: Option<String>,
    /// Overrides the endpoint for every service (the SDK's `AWS_ENDPOINT_URL` does the same).
    pub endpoint_url: Option<String>,
    /// Overrides the endpoint for SQS only (the interruption queue may live elsewhere, e.g. on
    /// moto_server, as `AWS_ENDPOINT_URL_SQS` does for the SDKs).
    pub sqs_endpoint_url: Option<String>,
}

#[derive(Debug, Clone)]
pub struct AwsClients {
    pub region: String,
    pub ec2: aws_sdk_ec2::Client,
    pub pricing: aws_sdk_pricing::Client,
    pub ssm: aws_sdk_ssm::Client,
    pub sqs: aws_sdk_sqs::Client,
}

impl AwsClients {
    /// Loads the shared config the way every AWS SDK does, then applies the overrides.
    pub async fn load(opts: &AwsOptions) -> Self {
        let mut loader = aws_config::defaults(BehaviorVersion::latest());
        if let Some(region) = &opts.region {
            loader = loader.region(Region::new(region.clone()));
        }
        if let Some(url) = &opts.endpoint_url {
            loader = loader.endpoint_url(url.clone());
        }
        let clients = Self::from_sdk_config(&loader.load().await);
        match &opts.sqs_endpoint_url {
            Some(url) => clients.with_sqs_endpoint(url),
            None => clients,
        }
    }

    /// The same clients with SQS sent to `url`.
    pub fn with_sqs_endpoint(mut self, url: &str) -> Self {
        let cfg = self.sqs.config().to_builder().endpoint_url(url).build();
        self.sqs = aws_sdk_sqs::Client::from_conf(cfg);
        self
    }

    /// Clients from an already-built config (the standard retryer stays as configured there).
    pub fn from_sdk_config(cfg: &SdkConfig) -> Self {
        let region = cfg.region().map(ToString::to_string).unwrap_or_default();
        let ec2 = aws_sdk_ec2::Client::new(cfg);
        let ssm = aws_sdk_ssm::Client::new(cfg);
        let sqs = aws_sdk_sqs::Client::new(cfg);
        // The Price List API lives in a few regions only; Karpenter picks the nearest one.
        let pricing_cfg =
            aws_sdk_pricing::config::Builder::from(cfg).region(Region::new(pricing_region(&region))).build();
        let pricing = aws_sdk_pricing::Client::from_conf(pricing_cfg);
        Self { region, ec2, pricing, ssm, sqs }
    }
}

impl AwsClients {
    /// Karpenter's start-up probe: a dry-run DescribeInstanceTypes must answer `DryRunOperation`
    /// (reachable, credentials accepted, permission granted).
    pub async fn check_ec2_connectivity(&self) -> Result<(), CloudError> {
        match self.ec2.describe_instance_types().dry_run(true).send().await {
            Err(e) if e.code() == Some("DryRunOperation") => Ok(()),
            Err(e) => Err(CloudError::api("DescribeInstanceTypes", e)),
            Ok(_) => Err(CloudError::Api {
                operation: "DescribeInstanceTypes",
                code: String::new(),
                message: "a dry run succeeded instead of answering DryRunOperation".into(),
            }),
        }
    }
}

/// The Price List API region for a cluster region (Karpenter's `pricing.NewAPI`).
pub fn pricing_region(region: &str) -> &'static str {
    if region.starts_with("ap-") {
        "ap-south-1"
    } else if region.starts_with("eu-") {
        "eu-central-1"
    } else if region.starts_with("cn-") {
        "cn-northwest-1"
    } else {
        "us-east-1"
    }
}

#[cfg(test)]
mod tests {
    use super::pricing_region;

    #[test]
    fn pricing_regions() {
        assert_eq!(pricing_region("us-west-2"), "us-east-1");
        assert_eq!(pricing_region("ap-northeast-1"), "ap-south-1");
        assert_eq!(pricing_region("eu-west-1"), "eu-central-1");
    }
}
