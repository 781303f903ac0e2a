//! EKS through the real aws-sdk-eks client: DescribeCluster as Karpenter reads it, ListClusters,
//! their errors, and requests signed for EKS never reaching EC2.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use aws_sdk_eks::error::ProvideErrorMetadata;
use aws_sdk_eks::types::{ClusterStatus, IpFamily};
use common::{Server, status, world};

fn eks(s: &Server) -> aws_sdk_eks::Client {
    testkit::sdk_client!(aws_sdk_eks, &s.endpoint, "us-west-2")
}

#[tokio::test]
async fn describe_cluster_answers_what_karpenter_reads() {
    let s = Server::start(world(1)).await;
    let out = eks(&s).describe_cluster().name("fake-cluster").send().await.unwrap();
    let c = out.cluster().unwrap();
    assert_eq!(c.name(), Some("fake-cluster"));
    assert_eq!(c.arn(), Some("arn:aws:eks:us-west-2:123456789012:cluster/fake-cluster"));
    assert_eq!(c.status(), Some(&ClusterStatus::Active));
    assert_eq!(c.version(), Some("1.34"));
    let net = c.kubernetes_network_config().unwrap();
    assert_eq!(net.service_ipv4_cidr(), Some("10.100.0.0/16"));
    assert_eq!(net.ip_family(), Some(&IpFamily::Ipv4));
    assert!(c.endpoint().unwrap().starts_with("https://") && c.endpoint().unwrap().ends_with(".eks.amazonaws.com"));
    assert!(!c.certificate_authority().unwrap().data().unwrap().is_empty());
    assert_eq!(c.created_at().map(|t| t.secs()), Some(1_761_955_200));
    assert_eq!(c.platform_version(), Some("eks.10"));
    assert_eq!(c.role_arn(), Some("arn:aws:iam::123456789012:role/fake-cluster-cluster-role"));
    let vpc = c.resources_vpc_config().unwrap();
    assert_eq!(vpc.vpc_id(), Some("vpc-0a1b2c3d4e5f60718"));
    assert_eq!(vpc.subnet_ids().len(), 3);
    assert_eq!(vpc.cluster_security_group_id(), Some("sg-0123456789abcdef0"));
    assert_eq!(vpc.security_group_ids(), ["sg-0fedcba9876543210"]);
    assert!(c.identity().unwrap().oidc().unwrap().issuer().unwrap().starts_with("https://oidc.eks.us-west-2."));
}

#[tokio::test]
async fn a_served_api_server_is_the_endpoint() {
    let mut cloud = world(1);
    cloud.eks.serve_api_server("https://127.0.0.1:6443", Some("Y2EtZGF0YQ=="));
    let s = Server::start(cloud).await;
    let out = eks(&s).describe_cluster().name("fake-cluster").send().await.unwrap();
    let c = out.cluster().unwrap();
    assert_eq!(c.endpoint(), Some("https://127.0.0.1:6443"));
    assert_eq!(c.certificate_authority().unwrap().data(), Some("Y2EtZGF0YQ=="));
}

#[tokio::test]
async fn other_clusters_are_resource_not_found() {
    let s = Server::start(world(1)).await;
    let err = eks(&s).describe_cluster().name("other").send().await.unwrap_err();
    assert_eq!(status(&err), Some(404));
    let e = err.into_service_error();
    assert!(e.is_resource_not_found_exception(), "{e:?}");
    assert_eq!(e.code(), Some("ResourceNotFoundException"));
    assert_eq!(e.message(), Some("No cluster found for name: other."));
}

#[tokio::test]
async fn list_clusters_pages_and_refuses_bad_bounds() {
    let s = Server::start(world(1)).await;
    let c = eks(&s);
    let out = c.list_clusters().send().await.unwrap();
    assert_eq!(out.clusters(), ["fake-cluster"]);
    assert_eq!(out.next_token(), None);
    let out = c.list_clusters().max_results(1).send().await.unwrap();
    assert_eq!(out.clusters(), ["fake-cluster"]);
    let all: Vec<String> = c.list_clusters().into_paginator().items().send().collect::<Result<_, _>>().await.unwrap();
    assert_eq!(all, ["fake-cluster"]);
    for err in [
        c.list_clusters().max_results(0).send().await.unwrap_err(),
        c.list_clusters().max_results(101).send().await.unwrap_err(),
        c.list_clusters().next_token("not-a-token").send().await.unwrap_err(),
    ] {
        assert_eq!(status(&err), Some(400));
        assert!(err.into_service_error().is_invalid_parameter_exception());
    }
}

#[tokio::test]
async fn a_world_without_a_cluster_has_none() {
    let s = Server::start(common::world_with(1, |cfg| cfg.cluster = None)).await;
    let c = eks(&s);
    assert!(c.list_clusters().send().await.unwrap().clusters().is_empty());
    let e = c.describe_cluster().name("fake-cluster").send().await.unwrap_err().into_service_error();
    assert!(e.is_resource_not_found_exception());
}

#[tokio::test]
async fn requests_signed_for_eks_never_reach_ec2() {
    let s = Server::start(world(1)).await;
    // An EC2-looking body, signed for EKS: EKS answers it in REST-JSON.
    let r = s.signed_for("eks", reqwest::Method::POST, "/", "Action=DescribeInstances&Version=2016-11-15").await;
    assert_eq!(r.status().as_u16(), 404);
    assert_eq!(r.headers().get("x-amzn-errortype").and_then(|v| v.to_str().ok()), Some("UnknownOperationException"));
    assert_eq!(r.headers().get("content-type").and_then(|v| v.to_str().ok()), Some("application/json"));
    let body: serde_json::Value = r.json().await.unwrap();
    assert!(body["message"].as_str().unwrap().contains("EKS operation"), "{body}");
    // An EKS path unsigned is EKS's too, refused in its own protocol.
    let r = reqwest::get(format!("{}/clusters/fake-cluster", s.endpoint)).await.unwrap();
    assert_eq!(r.status().as_u16(), 403);
    assert_eq!(
        r.headers().get("x-amzn-errortype").and_then(|v| v.to_str().ok()),
        Some("MissingAuthenticationTokenException")
    );
    // A service fake-ec2 does not serve: JSON, never EC2's XML.
    let r = s.signed_for("lambda", reqwest::Method::GET, "/2015-03-31/functions", "").await;
    assert_eq!(r.status().as_u16(), 404);
    let text = r.text().await.unwrap();
    assert!(text.starts_with('{') && text.contains("does not serve the lambda service"), "{text}");
    // EC2 saw none of them: no request bucket was drawn from.
    let buckets = &s.state.cloud().ec2.throttle.buckets;
    assert!(buckets.values().all(|b| b.tokens == b.size), "an EC2 bucket was used");
}
