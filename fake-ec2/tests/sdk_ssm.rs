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

/// Every parameter Karpenter's `al2@`, `al2023@` and `bottlerocket@` aliases read for one
/// Kubernetes version (`latest` and a pinned release), with the architecture the image must have.
fn karpenter_alias_parameters(k8s: &str) -> Vec<(String, &'static str)> {
    let eks = format!("/aws/service/eks/optimized-ami/{k8s}");
    let br = format!("/aws/service/bottlerocket/aws-k8s-{k8s}");
    let mut out = vec![
        (format!("{eks}/amazon-linux-2/recommended/image_id"), "x86_64"),
        (format!("{eks}/amazon-linux-2-arm64/recommended/image_id"), "arm64"),
        (format!("{eks}/amazon-linux-2-gpu/recommended/image_id"), "x86_64"),
        (format!("{eks}/amazon-linux-2/amazon-eks-node-{k8s}-v20251120/image_id"), "x86_64"),
        (format!("{eks}/amazon-linux-2-arm64/amazon-eks-arm64-node-{k8s}-v20251120/image_id"), "arm64"),
        (format!("{eks}/amazon-linux-2-gpu/amazon-eks-gpu-node-{k8s}-v20251120/image_id"), "x86_64"),
    ];
    for (arch, variants) in
        [("x86_64", ["standard", "nvidia", "neuron"].as_slice()), ("arm64", &["standard", "nvidia"])]
    {
        for variant in variants {
            let series = format!("{eks}/amazon-linux-2023/{arch}/{variant}");
            out.push((format!("{series}/recommended/image_id"), arch));
            out.push((format!("{series}/amazon-eks-node-al2023-{arch}-{variant}-{k8s}-v20251120/image_id"), arch));
        }
    }
    for flavour in ["", "-nvidia"] {
        for arch in ["x86_64", "arm64"] {
            out.push((format!("{br}{flavour}/{arch}/latest/image_id"), arch));
            out.push((format!("{br}{flavour}/{arch}/1.50.0/image_id"), arch));
        }
    }
    out
}

#[tokio::test]
async fn every_ami_family_resolves_to_an_image_describe_images_knows() {
    let s = Server::start(common::world(1)).await;
    let (c, ec2) = (ssm(&s), s.ec2());
    for k8s in ["1.34", "1.33"] {
        for (name, arch) in karpenter_alias_parameters(k8s) {
            let out = c.get_parameter().name(&name).send().await.unwrap_or_else(|e| panic!("{name}: {e:?}"));
            let id = out.parameter().unwrap().value().unwrap().to_owned();
            // What Karpenter does with the id: DescribeImages by image-id, deprecated included.
            let images = ec2
                .describe_images()
                .filters(aws_sdk_ec2::types::Filter::builder().name("image-id").values(&id).build())
                .include_deprecated(true)
                .send()
                .await
                .unwrap();
            let image = &images.images()[0];
            assert_eq!(image.architecture().map(|a| a.as_str()), Some(arch), "{name}");
            assert!(image.name().unwrap().contains(k8s), "{name} -> {:?}", image.name());
            assert_eq!(image.image_owner_alias(), Some("amazon"), "{name}");
        }
    }
}
