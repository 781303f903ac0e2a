//! SSM GetParameter / GetParameters through aws-sdk-ssm, as Karpenter resolves
//! `amiSelectorTerms: [{alias: al2023@latest}]` (and pinned `al2023@v...`) to an AMI id.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{Server, world_with};
use fake_ec2::world::config::ImageConfig;

const LATEST_X86: &str = "/aws/service/eks/optimized-ami/1.34/amazon-linux-2023/x86_64/standard/recommended/image_id";

fn ssm(s: &Server) -> aws_sdk_ssm::Client {
    let cfg = aws_sdk_ssm::Config::builder()
        .behavior_version(aws_sdk_ssm::config::BehaviorVersion::latest())
        .region(aws_sdk_ssm::config::Region::new("us-west-2"))
        .endpoint_url(&s.endpoint)
        .credentials_provider(aws_sdk_ssm::config::Credentials::new("AKIDTEST", "secret", None, None, "test"))
        .retry_config(aws_sdk_ssm::config::retry::RetryConfig::disabled())
        .build();
    aws_sdk_ssm::Client::from_conf(cfg)
}

/// The default world plus a newer x86_64 release and a newer, deprecated one.
async fn server() -> Server {
    Server::start(world_with(1, |cfg| {
        let base = cfg.images[0].clone();
        cfg.images.push(ImageConfig {
            id: "ami-0a0b0c0d0e0f30333".into(),
            name: "amazon-eks-node-al2023-x86_64-standard-1.34-v20251215".into(),
            creation_date: "2025-12-15T18:01:02.000Z".into(),
            ..base.clone()
        });
        cfg.images.push(ImageConfig {
            id: "ami-0a0b0c0d0e0f40444".into(),
            name: "amazon-eks-node-al2023-x86_64-standard-1.34-v20251220".into(),
            creation_date: "2025-12-20T18:01:02.000Z".into(),
            deprecated: true,
            ..base
        });
    }))
    .await
}

#[tokio::test]
async fn al2023_latest_resolves_to_the_newest_current_image() {
    let s = server().await;
    let c = ssm(&s);
    let out = c.get_parameter().name(LATEST_X86).send().await.unwrap();
    let p = out.parameter().unwrap();
    assert_eq!(p.name(), Some(LATEST_X86));
    assert_eq!(p.value(), Some("ami-0a0b0c0d0e0f30333"));
    assert_eq!(p.r#type(), Some(&aws_sdk_ssm::types::ParameterType::String));
    assert_eq!(p.data_type(), Some("aws:ec2:image"));
    assert_eq!(p.version(), 3);
    assert_eq!(p.arn(), Some(format!("arn:aws:ssm:us-west-2::parameter{LATEST_X86}").as_str()));
    assert_eq!(p.last_modified_date().unwrap().secs(), 1_765_821_662);

    let arm = "/aws/service/eks/optimized-ami/1.34/amazon-linux-2023/arm64/standard/recommended/image_id";
    let out = c.get_parameter().name(arm).with_decryption(true).send().await.unwrap();
    assert_eq!(out.parameter().unwrap().value(), Some("ami-0a0b0c0d0e0f20222"));
}

#[tokio::test]
async fn pinned_versions_and_unknown_names() {
    let s = server().await;
    let c = ssm(&s);
    let pinned = "/aws/service/eks/optimized-ami/1.34/amazon-linux-2023/x86_64/standard/amazon-eks-node-al2023-x86_64-standard-1.34-v20251120/image_id";
    let out = c.get_parameter().name(pinned).send().await.unwrap();
    assert_eq!(out.parameter().unwrap().value(), Some("ami-0a0b0c0d0e0f10111"));

    let e = c
        .get_parameter()
        .name("/aws/service/eks/optimized-ami/1.99/amazon-linux-2023/x86_64/standard/recommended/image_id")
        .send()
        .await
        .unwrap_err();
    assert_eq!(e.raw_response().unwrap().status().as_u16(), 400);
    assert!(e.into_service_error().is_parameter_not_found());

    let out = c.get_parameters().names(LATEST_X86).names(pinned).names("/nope").send().await.unwrap();
    let values: Vec<&str> = out.parameters().iter().map(|p| p.value().unwrap()).collect();
    assert_eq!(values, ["ami-0a0b0c0d0e0f30333", "ami-0a0b0c0d0e0f10111"]);
    assert_eq!(out.invalid_parameters(), ["/nope"]);
}
