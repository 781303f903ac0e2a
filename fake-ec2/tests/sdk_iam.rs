//! IAM and STS through the real aws-sdk-iam and aws-sdk-sts clients: Karpenter's instance-profile
//! life (get, create with path and tags, add the role, list by path prefix, remove, delete), every
//! error IAM gives on that path, and EC2 launches that name instance profiles.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use aws_sdk_ec2::types::{
    DefaultTargetCapacityType, IamInstanceProfileSpecification, InstanceType,
    LaunchTemplateIamInstanceProfileSpecificationRequest, RequestLaunchTemplateData,
};
use aws_sdk_iam::error::ProvideErrorMetadata;
use aws_sdk_iam::types::Tag;
use common::{Server, status, world};
use testkit::fleet::{SUBNET_A, karpenter_fleet, override_for};

const AMI: &str = "ami-0a0b0c0d0e0f10111";
const ROLE: &str = "KarpenterNodeRole-fake-cluster";
const PATH: &str = "/karpenter/us-west-2/fake-cluster/0b7e2a53-uid/";

fn iam(s: &Server) -> aws_sdk_iam::Client {
    // IAM is global: clients sign for us-east-1.
    testkit::sdk_client!(aws_sdk_iam, &s.endpoint, "us-east-1")
}

fn sts(s: &Server) -> aws_sdk_sts::Client {
    testkit::sdk_client!(aws_sdk_sts, &s.endpoint, "us-west-2")
}

fn tag(k: &str, v: &str) -> Tag {
    Tag::builder().key(k).value(v).build().unwrap()
}

/// The code, message and HTTP status of a failed IAM call.
macro_rules! iam_err {
    ($call:expr) => {{
        let e = $call.send().await.unwrap_err();
        let status = status(&e);
        let e = e.into_service_error();
        (e.code().unwrap_or_default().to_owned(), e.message().unwrap_or_default().to_owned(), status)
    }};
}

#[tokio::test]
async fn karpenters_instance_profile_life() {
    let s = Server::start(world(1)).await;
    let c = iam(&s);
    let name = "fake-cluster_12345678901234567890";
    // Get before create: NoSuchEntity, which Karpenter reads as "create it".
    let (code, message, st) = iam_err!(c.get_instance_profile().instance_profile_name(name));
    assert_eq!((code.as_str(), st), ("NoSuchEntity", Some(404)));
    assert_eq!(message, format!("Instance Profile {name} cannot be found."));

    let created = c
        .create_instance_profile()
        .instance_profile_name(name)
        .path(PATH)
        .tags(tag("karpenter.k8s.aws/ec2nodeclass", "default"))
        .tags(tag("kubernetes.io/cluster/fake-cluster", "owned"))
        .send()
        .await
        .unwrap();
    let p = created.instance_profile().unwrap();
    assert_eq!(p.arn(), format!("arn:aws:iam::123456789012:instance-profile{PATH}{name}"));
    assert_eq!(p.path(), PATH);
    assert!(p.instance_profile_id().starts_with("AIPA") && p.instance_profile_id().len() == 21);
    assert!(p.roles().is_empty());
    assert_eq!(p.tags().len(), 2);

    c.add_role_to_instance_profile().instance_profile_name(name).role_name(ROLE).send().await.unwrap();
    let got = c.get_instance_profile().instance_profile_name(name).send().await.unwrap();
    let p = got.instance_profile().unwrap();
    assert_eq!(p.roles().len(), 1);
    let role = &p.roles()[0];
    assert_eq!(role.role_name(), ROLE);
    assert_eq!(role.arn(), format!("arn:aws:iam::123456789012:role/{ROLE}"));
    assert!(role.assume_role_policy_document().unwrap().contains("ec2.amazonaws.com"));

    // Garbage collection lists the cluster's profiles by path prefix.
    let listed = c.list_instance_profiles().path_prefix("/karpenter/us-west-2/fake-cluster/").send().await.unwrap();
    let names: Vec<&str> = listed.instance_profiles().iter().map(|p| p.instance_profile_name()).collect();
    assert_eq!(names, [name]);
    assert!(listed.instance_profiles()[0].tags().is_empty(), "listings leave tags out, as IAM's do");
    assert!(!listed.is_truncated());

    // Deleting: the role first, as IAM insists.
    let (code, _, st) = iam_err!(c.delete_instance_profile().instance_profile_name(name));
    assert_eq!((code.as_str(), st), ("DeleteConflict", Some(409)));
    c.remove_role_from_instance_profile().instance_profile_name(name).role_name(ROLE).send().await.unwrap();
    c.delete_instance_profile().instance_profile_name(name).send().await.unwrap();
    let (code, _, _) = iam_err!(c.delete_instance_profile().instance_profile_name(name));
    assert_eq!(code, "NoSuchEntity");
}

#[tokio::test]
async fn every_error_on_the_path_has_iams_code_and_status() {
    let s = Server::start(world(1)).await;
    let c = iam(&s);
    c.create_instance_profile().instance_profile_name("p").send().await.unwrap();
    let (code, _, st) = iam_err!(c.create_instance_profile().instance_profile_name("p"));
    assert_eq!((code.as_str(), st), ("EntityAlreadyExists", Some(409)));
    // A role that does not exist: NoSuchEntity naming the role (Karpenter caches it as such).
    let (code, message, st) = iam_err!(c.add_role_to_instance_profile().instance_profile_name("p").role_name("Nope"));
    assert_eq!(
        (code.as_str(), message.as_str(), st),
        ("NoSuchEntity", "The role with name Nope cannot be found.", Some(404))
    );
    c.add_role_to_instance_profile().instance_profile_name("p").role_name(ROLE).send().await.unwrap();
    // A profile holds one role.
    let (code, _, st) = iam_err!(c.add_role_to_instance_profile().instance_profile_name("p").role_name(ROLE));
    assert_eq!((code.as_str(), st), ("LimitExceeded", Some(409)));
    let (code, message, st) = iam_err!(c.get_instance_profile().instance_profile_name("not valid"));
    assert_eq!((code.as_str(), st), ("ValidationError", Some(400)));
    assert!(message.contains("instanceProfileName"), "{message}");
    let (code, _, st) = iam_err!(c.create_instance_profile().instance_profile_name("q").path("no-slashes"));
    assert_eq!((code.as_str(), st), ("ValidationError", Some(400)));
    let (code, _, st) = iam_err!(c.list_instance_profiles().max_items(0));
    assert_eq!((code.as_str(), st), ("ValidationError", Some(400)));
    let (code, _, st) = iam_err!(c.get_role().role_name("Nope"));
    assert_eq!((code.as_str(), st), ("NoSuchEntity", Some(404)));
}

#[tokio::test]
async fn list_instance_profiles_pages_with_marker() {
    let s = Server::start(world(1)).await;
    let c = iam(&s);
    for n in ["a", "b", "c", "d", "e"] {
        c.create_instance_profile().instance_profile_name(n).path("/paged/").send().await.unwrap();
    }
    let first = c.list_instance_profiles().path_prefix("/paged/").max_items(2).send().await.unwrap();
    assert!(first.is_truncated());
    let names = |o: &aws_sdk_iam::operation::list_instance_profiles::ListInstanceProfilesOutput| {
        o.instance_profiles().iter().map(|p| p.instance_profile_name().to_owned()).collect::<Vec<_>>()
    };
    assert_eq!(names(&first), ["a", "b"]);
    let second = c
        .list_instance_profiles()
        .path_prefix("/paged/")
        .max_items(2)
        .marker(first.marker().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(names(&second), ["c", "d"]);
    let all: Vec<String> = c
        .list_instance_profiles()
        .path_prefix("/paged/")
        .max_items(2)
        .into_paginator()
        .items()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.instance_profile_name().to_owned())
        .collect();
    assert_eq!(all, ["a", "b", "c", "d", "e"]);
    // Without a prefix: the world's own profiles too.
    let everything = c.list_instance_profiles().send().await.unwrap();
    assert_eq!(everything.instance_profiles().len(), 5 + 4);
}

#[tokio::test]
async fn tags_roles_and_profiles_for_a_role() {
    let s = Server::start(world(1)).await;
    let c = iam(&s);
    let name = "KarpenterNodeInstanceProfile-fake-cluster";
    c.tag_instance_profile().instance_profile_name(name).tags(tag("a", "1")).tags(tag("b", "2")).send().await.unwrap();
    c.untag_instance_profile().instance_profile_name(name).tag_keys("a").send().await.unwrap();
    let tags = c.list_instance_profile_tags().instance_profile_name(name).send().await.unwrap();
    assert_eq!(tags.tags().iter().map(|t| (t.key(), t.value())).collect::<Vec<_>>(), [("b", "2")]);
    assert!(!tags.is_truncated());
    let (code, _, _) = iam_err!(c.list_instance_profile_tags().instance_profile_name("missing"));
    assert_eq!(code, "NoSuchEntity");

    let role = c.get_role().role_name(ROLE).send().await.unwrap();
    let r = role.role().unwrap();
    assert_eq!(r.role_name(), ROLE);
    assert!(r.role_id().starts_with("AROA"));
    assert_eq!(r.description(), Some("Nodes launched by Karpenter"));
    assert_eq!(r.max_session_duration(), Some(3600));

    let for_role = c.list_instance_profiles_for_role().role_name(ROLE).send().await.unwrap();
    assert_eq!(for_role.instance_profiles().len(), 4);
}

#[tokio::test]
async fn get_caller_identity_names_the_worlds_account() {
    let s = Server::start(world(1)).await;
    let out = sts(&s).get_caller_identity().send().await.unwrap();
    assert_eq!(out.account(), Some("123456789012"));
    assert_eq!(out.arn(), Some("arn:aws:iam::123456789012:user/fake-ec2"));
    assert_eq!(out.user_id(), Some(fake_ec2::sts::user_id("AKIDTEST").as_str()));
}

async fn launch_template(c: &aws_sdk_ec2::Client, name: &str, profile: &str) {
    c.create_launch_template()
        .launch_template_name(name)
        .launch_template_data(
            RequestLaunchTemplateData::builder()
                .image_id(AMI)
                .iam_instance_profile(
                    LaunchTemplateIamInstanceProfileSpecificationRequest::builder().name(profile).build(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap();
}

/// RunInstances of one m5.large naming an instance profile.
async fn run_with_profile(
    ec2: &aws_sdk_ec2::Client,
    profile: &str,
) -> Result<
    aws_sdk_ec2::operation::run_instances::RunInstancesOutput,
    aws_sdk_ec2::error::SdkError<aws_sdk_ec2::operation::run_instances::RunInstancesError>,
> {
    ec2.run_instances()
        .image_id(AMI)
        .instance_type(InstanceType::M5Large)
        .min_count(1)
        .max_count(1)
        .iam_instance_profile(IamInstanceProfileSpecification::builder().name(profile).build())
        .send()
        .await
}

#[tokio::test]
async fn launches_naming_a_missing_instance_profile_fail_as_ec2s_do() {
    let s = Server::start(world(1)).await;
    let ec2 = s.ec2();
    let err = run_with_profile(&ec2, "Missing").await.unwrap_err();
    assert_eq!(status(&err), Some(400));
    let e = err.into_service_error();
    assert_eq!(aws_sdk_ec2::error::ProvideErrorMetadata::code(&e), Some("InvalidParameterValue"));
    assert_eq!(
        aws_sdk_ec2::error::ProvideErrorMetadata::message(&e),
        Some("Value (Missing) for parameter iamInstanceProfile.name is invalid. Invalid IAM Instance Profile name")
    );
    // Through a launch template, CreateFleet reports it per override.
    launch_template(&ec2, "missing-profile", "Missing").await;
    let out = karpenter_fleet(
        &ec2,
        "missing-profile",
        DefaultTargetCapacityType::OnDemand,
        1,
        vec![override_for("m5.large", SUBNET_A, "us-west-2a")],
    )
    .send()
    .await
    .unwrap();
    assert!(out.instances().is_empty());
    let codes: Vec<&str> = out.errors().iter().filter_map(|e| e.error_code()).collect();
    assert_eq!(codes, ["InvalidParameterValue"]);
    assert!(s.state.cloud().ec2.instances.is_empty());
}

#[tokio::test]
async fn instances_carry_the_profiles_arn_and_id() {
    let s = Server::start(world(1)).await;
    let c = iam(&s);
    let p = c.create_instance_profile().instance_profile_name("made").path("/karpenter/x/").send().await.unwrap();
    let (arn, id) = {
        let p = p.instance_profile().unwrap();
        (p.arn().to_owned(), p.instance_profile_id().to_owned())
    };
    let ec2 = s.ec2();
    launch_template(&ec2, "made-profile", "made").await;
    let out = karpenter_fleet(
        &ec2,
        "made-profile",
        DefaultTargetCapacityType::OnDemand,
        1,
        vec![override_for("m5.large", SUBNET_A, "us-west-2a")],
    )
    .send()
    .await
    .unwrap();
    let id_launched = out.instances()[0].instance_ids()[0].clone();
    let described = ec2.describe_instances().instance_ids(&id_launched).send().await.unwrap();
    let inst = &described.reservations()[0].instances()[0];
    let profile = inst.iam_instance_profile().unwrap();
    assert_eq!((profile.arn(), profile.id()), (Some(arn.as_str()), Some(id.as_str())));
}

#[tokio::test]
async fn a_world_without_iam_checks_no_profile() {
    let s = Server::start(common::world_with(1, |cfg| cfg.iam = None)).await;
    let out = run_with_profile(&s.ec2(), "Anything").await.unwrap();
    let profile = out.instances()[0].iam_instance_profile().unwrap();
    assert_eq!(profile.arn(), Some("arn:aws:iam::123456789012:instance-profile/Anything"));
    let e = iam(&s).get_instance_profile().instance_profile_name("Anything").send().await.unwrap_err();
    assert_eq!(e.into_service_error().code(), Some("NoSuchEntity"));
}

#[tokio::test]
async fn requests_signed_for_iam_or_sts_never_reach_ec2() {
    let s = Server::start(world(1)).await;
    for (service, xmlns) in
        [("iam", "https://iam.amazonaws.com/doc/2010-05-08/"), ("sts", "https://sts.amazonaws.com/doc/2011-06-15/")]
    {
        let r = s.signed_for(service, reqwest::Method::POST, "/", "Action=DescribeInstances&Version=2016-11-15").await;
        assert_eq!(r.status().as_u16(), 400);
        let body = r.text().await.unwrap();
        assert!(
            body.contains(&format!(
                "<ErrorResponse xmlns=\"{xmlns}\"><Error><Type>Sender</Type><Code>InvalidAction</Code>"
            )),
            "{body}"
        );
    }
    let buckets = &s.state.cloud().ec2.throttle.buckets;
    assert!(buckets.values().all(|b| b.tokens == b.size), "an EC2 bucket was used");
}
