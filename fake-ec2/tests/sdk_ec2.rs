//! Every EC2 action through the real aws-sdk-ec2 client against a spawned fake-ec2.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use aws_sdk_ec2::error::ProvideErrorMetadata;
use aws_sdk_ec2::types::{
    DefaultTargetCapacityType, Filter, FleetType, InstanceStateName, InstanceType, LocationType,
    RequestLaunchTemplateData, ResourceType, Tag, TagSpecification, TargetCapacitySpecificationRequest,
};
use common::{Server, code, world};
use testkit::fleet::{karpenter_fleet, override_for};

const AMI: &str = "ami-0a0b0c0d0e0f10111";
const SUBNET_A: &str = "subnet-0a1a1a1a1a1a1a1a1";
const SUBNET_B: &str = "subnet-0b2b2b2b2b2b2b2b2";

async fn launch_template(c: &aws_sdk_ec2::Client, name: &str) -> String {
    let out = c
        .create_launch_template()
        .launch_template_name(name)
        .launch_template_data(
            RequestLaunchTemplateData::builder()
                .image_id(AMI)
                .security_group_ids("sg-0123456789abcdef0")
                .user_data("IyEvYmluL2Jhc2g=")
                .build(),
        )
        .tag_specifications(
            TagSpecification::builder()
                .resource_type(ResourceType::LaunchTemplate)
                .tags(Tag::builder().key("karpenter.k8s.aws/ec2nodeclass").value("default").build())
                .build(),
        )
        .send()
        .await
        .unwrap();
    out.launch_template().unwrap().launch_template_id().unwrap().to_owned()
}

#[tokio::test]
async fn describes_the_catalog_zones_and_network() {
    let s = Server::start(world(1)).await;
    let catalog_size = s.state.cloud().ec2.catalog.all().len();
    let c = s.ec2();
    let types: Vec<_> = c.describe_instance_types().into_paginator().items().send().collect::<Vec<_>>().await;
    let types: Vec<_> = types.into_iter().map(Result::unwrap).collect();
    assert_eq!(types.len(), catalog_size);
    let m5 = types.iter().find(|t| t.instance_type() == Some(&InstanceType::M5Large)).unwrap();
    assert_eq!(m5.v_cpu_info().unwrap().default_v_cpus(), Some(2));
    assert_eq!(m5.memory_info().unwrap().size_in_mib(), Some(8192));
    assert_eq!(m5.network_info().unwrap().maximum_network_interfaces(), Some(3));
    assert_eq!(m5.network_info().unwrap().ipv4_addresses_per_interface(), Some(10));

    let arm = c
        .describe_instance_types()
        .filters(Filter::builder().name("processor-info.supported-architecture").values("arm64").build())
        .max_results(100)
        .send()
        .await
        .unwrap();
    assert!(!arm.instance_types().is_empty());
    assert!(
        arm.instance_types()
            .iter()
            .all(|t| { t.processor_info().unwrap().supported_architectures().iter().all(|a| a.as_str() == "arm64") })
    );

    let offerings = c
        .describe_instance_type_offerings()
        .location_type(LocationType::AvailabilityZone)
        .max_results(1000)
        .send()
        .await
        .unwrap();
    assert_eq!(offerings.instance_type_offerings().len(), catalog_size * 3);

    let zones = c.describe_availability_zones().send().await.unwrap();
    let names: Vec<_> =
        zones.availability_zones().iter().map(|z| (z.zone_name().unwrap(), z.zone_id().unwrap())).collect();
    assert_eq!(names, [("us-west-2a", "usw2-az1"), ("us-west-2b", "usw2-az2"), ("us-west-2c", "usw2-az3")]);

    let subnets = c
        .describe_subnets()
        .filters(Filter::builder().name("tag:karpenter.sh/discovery").values("fake-cluster").build())
        .send()
        .await
        .unwrap();
    assert_eq!(subnets.subnets().len(), 3);
    assert!(subnets.subnets().iter().all(|s| s.available_ip_address_count().unwrap() > 8000));
    let sgs = c.describe_security_groups().group_ids("sg-0123456789abcdef0").send().await.unwrap();
    assert_eq!(sgs.security_groups()[0].group_name(), Some("eks-cluster-sg-fake-cluster"));
    let images = c
        .describe_images()
        .filters(Filter::builder().name("architecture").values("arm64").build())
        .send()
        .await
        .unwrap();
    let arm_images = s.state.cloud().ec2.images.iter().filter(|i| i.cfg.architecture == "arm64").count();
    assert_eq!(images.images().len(), arm_images);
    assert!(arm_images > 1 && images.images().iter().all(|i| i.architecture().unwrap().as_str() == "arm64"));
    let err = c.describe_images().image_ids("ami-0000000000000dead").send().await.unwrap_err();
    assert_eq!(code(&err), "InvalidAMIID.NotFound");
}

#[tokio::test]
async fn spot_price_history_moves_and_covers_every_pool() {
    let s = Server::start(world(2)).await;
    let catalog_size = s.state.cloud().ec2.catalog.all().len();
    let c = s.ec2();
    let now = aws_smithy_types::DateTime::from_secs(1_767_225_600);
    let latest = c
        .describe_spot_price_history()
        .product_descriptions("Linux/UNIX")
        .start_time(now)
        .into_paginator()
        .items()
        .send()
        .collect::<Vec<_>>()
        .await;
    let latest: Vec<_> = latest.into_iter().map(Result::unwrap).collect();
    let pools: std::collections::BTreeSet<_> = latest
        .iter()
        .map(|p| (p.instance_type().unwrap().as_str().to_owned(), p.availability_zone().unwrap().to_owned()))
        .collect();
    assert_eq!(pools.len(), catalog_size * 3, "one price per pool at least");
    let m5a = latest.iter().find(|p| p.instance_type() == Some(&InstanceType::M5Large)).unwrap();
    let price: f64 = m5a.spot_price().unwrap().parse().unwrap();
    assert!(price > 0.0 && price < 0.096, "spot below on-demand: {price}");

    let week = c
        .describe_spot_price_history()
        .instance_types(InstanceType::M5Large)
        .availability_zone("us-west-2a")
        .start_time(aws_smithy_types::DateTime::from_secs(1_767_225_600 - 7 * 86_400))
        .end_time(now)
        .send()
        .await
        .unwrap();
    let prices: std::collections::BTreeSet<_> =
        week.spot_price_history().iter().map(|p| p.spot_price().unwrap().to_owned()).collect();
    assert!(prices.len() > 5, "a week of history has moves: {prices:?}");
    let times: Vec<_> = week.spot_price_history().iter().map(|p| p.timestamp().unwrap().secs()).collect();
    assert!(times.windows(2).all(|w| w[0] >= w[1]), "newest first");
}

#[tokio::test]
async fn create_fleet_launches_spot_with_karpenters_request_shape() {
    let s = Server::start(world(3)).await;
    let c = s.ec2();
    let lt_id = launch_template(&c, "karpenter.k8s.aws/123").await;
    let out = karpenter_fleet(
        &c,
        "karpenter.k8s.aws/123",
        DefaultTargetCapacityType::Spot,
        2,
        vec![override_for("m5.large", SUBNET_A, "us-west-2a"), override_for("c5.large", SUBNET_B, "us-west-2b")],
    )
    .send()
    .await
    .unwrap();
    assert!(out.errors().is_empty(), "{:?}", out.errors());
    let ids: Vec<String> = out.instances().iter().flat_map(|i| i.instance_ids().iter().cloned()).collect();
    assert_eq!(ids.len(), 2);
    let first = &out.instances()[0];
    assert_eq!(first.lifecycle().map(|l| l.as_str()), Some("spot"));
    let ov = first.launch_template_and_overrides().unwrap().overrides().unwrap();
    assert!(ov.availability_zone().is_some() && ov.instance_type().is_some() && ov.subnet_id().is_some());
    assert_eq!(
        first.launch_template_and_overrides().unwrap().launch_template_specification().unwrap().launch_template_id(),
        Some(lt_id.as_str())
    );

    let d = c.describe_instances().set_instance_ids(Some(ids.clone())).send().await.unwrap();
    let insts: Vec<_> = d.reservations().iter().flat_map(|r| r.instances()).collect();
    assert_eq!(insts.len(), 2);
    for i in &insts {
        assert_eq!(i.instance_lifecycle().map(|l| l.as_str()), Some("spot"));
        assert!(i.spot_instance_request_id().is_some_and(|r| r.starts_with("sir-")));
        assert_eq!(i.state().unwrap().name(), Some(&InstanceStateName::Pending));
        assert!(i.tags().iter().any(|t| t.key() == Some("karpenter.sh/nodepool") && t.value() == Some("default")));
    }
    s.advance(15);
    let d = c.describe_instances().set_instance_ids(Some(ids)).send().await.unwrap();
    assert!(
        d.reservations()
            .iter()
            .flat_map(|r| r.instances())
            .all(|i| i.state().unwrap().name() == Some(&InstanceStateName::Running))
    );
}

#[tokio::test]
async fn exhausted_pool_gives_partial_fulfilment_with_an_echoing_error() {
    let s = Server::start(world(4)).await;
    let c = s.ec2();
    launch_template(&c, "lt-ice").await;
    {
        let mut w = s.state.cloud();
        let pool = w.ec2.pool_of("m5.large", "us-west-2a").unwrap();
        w.ec2.pools.set_capacity(fake_ec2::world::pools::CapacityType::Spot, pool, 1);
    }
    let out = karpenter_fleet(
        &c,
        "lt-ice",
        DefaultTargetCapacityType::Spot,
        3,
        vec![override_for("m5.large", SUBNET_A, "us-west-2a")],
    )
    .send()
    .await
    .unwrap();
    let launched: usize = out.instances().iter().map(|i| i.instance_ids().len()).sum();
    assert_eq!(launched, 1);
    let e = &out.errors()[0];
    assert_eq!(e.error_code(), Some("InsufficientInstanceCapacity"));
    let ov = e.launch_template_and_overrides().unwrap().overrides().unwrap();
    assert_eq!(
        (ov.instance_type().map(|t| t.as_str()), ov.availability_zone()),
        (Some("m5.large"), Some("us-west-2a"))
    );
    assert_eq!(e.lifecycle().map(|l| l.as_str()), Some("spot"));
}

#[tokio::test]
async fn quotas_surface_as_fleet_errors() {
    let s = Server::start(common::world_with(5, |cfg| {
        cfg.quotas.spot_vcpus = Some(2);
        cfg.quotas.on_demand_vcpus = Some(0);
    }))
    .await;
    let c = s.ec2();
    launch_template(&c, "lt-q").await;
    let ovs =
        || vec![override_for("m5.large", SUBNET_A, "us-west-2a"), override_for("m5.large", SUBNET_B, "us-west-2b")];
    let out = karpenter_fleet(&c, "lt-q", DefaultTargetCapacityType::Spot, 2, ovs()).send().await.unwrap();
    assert_eq!(out.instances().iter().map(|i| i.instance_ids().len()).sum::<usize>(), 1);
    assert!(out.errors().iter().all(|e| e.error_code() == Some("MaxSpotInstanceCountExceeded")));
    assert!(!out.errors().is_empty());
    let od = karpenter_fleet(&c, "lt-q", DefaultTargetCapacityType::OnDemand, 1, ovs()).send().await.unwrap();
    assert!(od.instances().is_empty());
    assert_eq!(od.errors()[0].error_code(), Some("VcpuLimitExceeded"));
}

#[tokio::test]
async fn run_describe_stop_start_terminate_on_the_clock() {
    let s = Server::start(world(6)).await;
    let c = s.ec2();
    let run = c
        .run_instances()
        .image_id(AMI)
        .instance_type(InstanceType::C5Large)
        .min_count(2)
        .max_count(2)
        .subnet_id(SUBNET_A)
        .send()
        .await
        .unwrap();
    let ids: Vec<String> = run.instances().iter().map(|i| i.instance_id().unwrap().to_owned()).collect();
    assert_eq!(ids.len(), 2);
    assert!(run.reservation_id().unwrap().starts_with("r-"));
    s.advance(15);
    let status = c.describe_instance_status().set_instance_ids(Some(ids.clone())).send().await.unwrap();
    assert_eq!(status.instance_statuses().len(), 2);
    let stop = c.stop_instances().instance_ids(&ids[0]).send().await.unwrap();
    assert_eq!(stop.stopping_instances()[0].current_state().unwrap().name(), Some(&InstanceStateName::Stopping));
    s.advance(10);
    let start = c.start_instances().instance_ids(&ids[0]).send().await.unwrap();
    assert_eq!(start.starting_instances()[0].previous_state().unwrap().name(), Some(&InstanceStateName::Stopped));
    let term = c.terminate_instances().set_instance_ids(Some(ids.clone())).send().await.unwrap();
    assert!(
        term.terminating_instances()
            .iter()
            .all(|t| t.current_state().unwrap().name() == Some(&InstanceStateName::ShuttingDown))
    );
    s.advance(10);
    let d = c
        .describe_instances()
        .filters(Filter::builder().name("instance-state-name").values("terminated").build())
        .send()
        .await
        .unwrap();
    assert_eq!(d.reservations().iter().flat_map(|r| r.instances()).count(), 2, "terminated instances stay visible");
    let err = c.describe_instances().instance_ids("i-0123456789abcdef0").send().await.unwrap_err();
    assert_eq!(code(&err), "InvalidInstanceID.NotFound");
    let err = c.describe_instances().instance_ids("bogus").send().await.unwrap_err();
    assert_eq!(code(&err), "InvalidInstanceID.Malformed");
}

#[tokio::test]
async fn run_instances_without_capacity_is_a_server_fault() {
    let s = Server::start(world(7)).await;
    {
        let mut w = s.state.cloud();
        let pool = w.ec2.pool_of("r5.large", "us-west-2a").unwrap();
        w.ec2.pools.set_capacity(fake_ec2::world::pools::CapacityType::OnDemand, pool, 0);
    }
    let err = s
        .ec2()
        .run_instances()
        .image_id(AMI)
        .instance_type(InstanceType::R5Large)
        .min_count(1)
        .max_count(1)
        .subnet_id(SUBNET_A)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "InsufficientInstanceCapacity");
    assert_eq!(err.raw_response().map(|r| r.status().as_u16()), Some(500));
}

#[tokio::test]
async fn tags_and_launch_templates_round_trip() {
    let s = Server::start(world(8)).await;
    let c = s.ec2();
    let lt = launch_template(&c, "tagged").await;
    let dup = c
        .create_launch_template()
        .launch_template_name("tagged")
        .launch_template_data(RequestLaunchTemplateData::builder().image_id(AMI).build())
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&dup), "InvalidLaunchTemplateName.AlreadyExistsException");
    let listed = c
        .describe_launch_templates()
        .filters(Filter::builder().name("tag:karpenter.k8s.aws/ec2nodeclass").values("default").build())
        .send()
        .await
        .unwrap();
    assert_eq!(listed.launch_templates()[0].launch_template_id(), Some(lt.as_str()));
    c.create_tags().resources(&lt).tags(Tag::builder().key("team").value("a").build()).send().await.unwrap();
    let tags =
        c.describe_tags().filters(Filter::builder().name("resource-id").values(&lt).build()).send().await.unwrap();
    let keys: Vec<_> = tags.tags().iter().map(|t| t.key().unwrap()).collect();
    assert_eq!(keys, ["karpenter.k8s.aws/ec2nodeclass", "team"]);
    c.delete_tags().resources(&lt).tags(Tag::builder().key("team").build()).send().await.unwrap();
    let tags =
        c.describe_tags().filters(Filter::builder().name("resource-id").values(&lt).build()).send().await.unwrap();
    assert_eq!(tags.tags().len(), 1);
    c.delete_launch_template().launch_template_name("tagged").send().await.unwrap();
    let gone = c.describe_launch_templates().launch_template_names("tagged").send().await.unwrap_err();
    assert_eq!(code(&gone), "InvalidLaunchTemplateName.NotFoundException");
}

#[tokio::test]
async fn dry_run_answers_412_and_unauthorized_when_denied() {
    let s = Server::start(common::world_with(9, |cfg| cfg.auth.deny_actions = vec!["ec2:RunInstances".into()])).await;
    let c = s.ec2();
    let err = c.describe_instance_types().dry_run(true).send().await.unwrap_err();
    assert_eq!(code(&err), "DryRunOperation");
    assert_eq!(err.raw_response().map(|r| r.status().as_u16()), Some(412));
    let err = c.run_instances().image_id(AMI).min_count(1).max_count(1).dry_run(true).send().await.unwrap_err();
    assert_eq!(code(&err), "UnauthorizedOperation");
    let lt_err = c
        .create_fleet()
        .dry_run(true)
        .r#type(FleetType::Instant)
        .target_capacity_specification(
            TargetCapacitySpecificationRequest::builder()
                .total_target_capacity(1)
                .default_target_capacity_type(DefaultTargetCapacityType::Spot)
                .build(),
        )
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&lt_err), "MissingParameter", "validation comes before the dry-run answer");
    assert!(s.state.cloud().ec2.instances.is_empty(), "a dry run launches nothing");
}

#[tokio::test]
async fn throttling_refuses_then_refills_on_the_clock() {
    let s = Server::start(common::world_with(10, |cfg| cfg.throttling.scale = 0.1)).await;
    let c = s.ec2();
    // Mutating bucket scaled to 5 tokens, refilling 0.5/s.
    let mut codes = Vec::new();
    for i in 0..7 {
        let r = c
            .create_launch_template()
            .launch_template_name(format!("t-{i}"))
            .launch_template_data(RequestLaunchTemplateData::builder().image_id(AMI).build())
            .send()
            .await;
        codes.push(r.map(|_| "ok".to_owned()).unwrap_or_else(|e| e.code().unwrap_or_default().to_owned()));
    }
    assert_eq!(codes, ["ok", "ok", "ok", "ok", "ok", "RequestLimitExceeded", "RequestLimitExceeded"]);
    s.advance(2);
    assert!(
        c.create_launch_template()
            .launch_template_name("later")
            .launch_template_data(RequestLaunchTemplateData::builder().image_id(AMI).build())
            .send()
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn describe_instances_pages_without_loss_or_repeat() {
    let s = Server::start(world(11)).await;
    let c = s.ec2();
    c.run_instances()
        .image_id(AMI)
        .instance_type(InstanceType::M5Large)
        .min_count(23)
        .max_count(23)
        .subnet_id(SUBNET_B)
        .send()
        .await
        .unwrap();
    let pages: Vec<_> = c.describe_instances().max_results(5).into_paginator().send().collect::<Vec<_>>().await;
    assert_eq!(pages.len(), 5);
    let ids: Vec<String> = pages
        .into_iter()
        .flat_map(|p| {
            p.unwrap()
                .reservations()
                .iter()
                .flat_map(|r| r.instances().iter().map(|i| i.instance_id().unwrap().to_owned()))
                .collect::<Vec<_>>()
        })
        .collect();
    let unique: std::collections::BTreeSet<_> = ids.iter().collect();
    assert_eq!((ids.len(), unique.len()), (23, 23));
    let err = c.describe_instances().instance_ids(&ids[0]).max_results(5).send().await.unwrap_err();
    assert_eq!(code(&err), "InvalidParameterCombination");
}

/// EC2 keeps a client token "for at least 24 hours": the world remembers one for 24 hours of
/// world time after its first use, then a request with it launches anew.
#[tokio::test]
async fn client_tokens_answer_the_same_for_a_world_day_then_launch_anew() {
    let s = Server::start(world(12)).await;
    let c = s.ec2();
    launch_template(&c, "lt-token").await;
    let fleet = || {
        let overrides =
            vec![override_for("m5.large", SUBNET_A, "us-west-2a"), override_for("c5.large", SUBNET_B, "us-west-2b")];
        karpenter_fleet(&c, "lt-token", DefaultTargetCapacityType::OnDemand, 1, overrides).client_token("nodeclaim-a")
    };
    let fleet_ids = |out: &aws_sdk_ec2::operation::create_fleet::CreateFleetOutput| -> Vec<String> {
        out.instances().iter().flat_map(|i| i.instance_ids().iter().cloned()).collect()
    };
    let run = || {
        c.run_instances()
            .image_id(AMI)
            .instance_type(InstanceType::M5Large)
            .min_count(2)
            .max_count(2)
            .subnet_id(SUBNET_B)
            .client_token("run-a")
    };
    let run_ids = |out: &aws_sdk_ec2::operation::run_instances::RunInstancesOutput| -> Vec<String> {
        out.instances().iter().map(|i| i.instance_id().unwrap().to_owned()).collect()
    };
    let first = fleet().send().await.unwrap();
    let first_run = run().send().await.unwrap();
    assert_eq!((fleet_ids(&first).len(), run_ids(&first_run).len()), (1, 2));

    s.advance(24 * 3600 - 60);
    let retry = fleet().send().await.unwrap();
    assert_eq!(fleet_ids(&retry), fleet_ids(&first), "inside the window: the same fleet");
    assert_eq!(
        (retry.fleet_id(), retry.instances(), retry.errors()),
        (first.fleet_id(), first.instances(), first.errors())
    );
    let retry_run = run().send().await.unwrap();
    assert_eq!(run_ids(&retry_run), run_ids(&first_run));
    assert_eq!(retry_run.reservation_id(), first_run.reservation_id());

    s.advance(60);
    let anew = fleet().send().await.unwrap();
    assert_eq!(fleet_ids(&anew).len(), 1);
    assert_ne!(fleet_ids(&anew), fleet_ids(&first), "after the window: a new launch");
    assert_ne!(anew.fleet_id(), first.fleet_id());
    let anew_run = run().send().await.unwrap();
    assert_eq!(run_ids(&anew_run).len(), 2);
    assert_ne!(run_ids(&anew_run), run_ids(&first_run));
    // The new answers are what the token now stands for.
    assert_eq!(fleet_ids(&fleet().send().await.unwrap()), fleet_ids(&anew));
    assert_eq!(run_ids(&run().send().await.unwrap()), run_ids(&anew_run));
    let w = s.state.cloud();
    assert_eq!((w.ec2.fleet_tokens.len(), w.ec2.run_tokens.len()), (1, 1));
}

#[tokio::test]
async fn strict_auth_checks_sigv4_signatures_from_the_real_sdk() {
    use fake_ec2::world::config::{AuthMode, Credential};
    let s = Server::start(common::world_with(12, |cfg| {
        cfg.auth.mode = AuthMode::Strict;
        cfg.auth.credentials =
            vec![Credential { access_key_id: "AKIDTEST".into(), secret_access_key: "secret".into() }];
    }))
    .await;
    // The SDK signs with AKIDTEST/secret: accepted, for a POST with a form body.
    let ok = s.ec2().describe_instances().filters(Filter::builder().name("tag:a b").values("x&y").build()).send().await;
    assert!(ok.is_ok(), "{ok:?}");
    let wrong_secret = {
        let cfg = aws_sdk_ec2::Config::builder()
            .behavior_version(aws_sdk_ec2::config::BehaviorVersion::latest())
            .region(aws_sdk_ec2::config::Region::new("us-west-2"))
            .endpoint_url(&s.endpoint)
            .credentials_provider(aws_sdk_ec2::config::Credentials::new("AKIDTEST", "not-it", None, None, "t"))
            .build();
        aws_sdk_ec2::Client::from_conf(cfg)
    };
    let err = wrong_secret.describe_instances().send().await.unwrap_err();
    assert_eq!(code(&err), "AuthFailure");
    assert_eq!(err.raw_response().map(|r| r.status().as_u16()), Some(401));
    let (status, body) = reqwest::Client::new()
        .post(&s.endpoint)
        .body("Action=DescribeInstances&Version=2016-11-15")
        .send()
        .await
        .map(|r| (r.status().as_u16(), r))
        .unwrap();
    assert_eq!(status, 401);
    assert!(body.text().await.unwrap().contains("<Code>MissingAuthenticationToken</Code>"));
}

/// On a scaled clock the world's time runs ahead of (or, from a fixed start, far behind) every
/// client's wall clock. `LaunchTime` is what clients age against their own clock (Karpenter
/// collects an instance it has no NodeClaim for once it is 30 s old by its clock), so it is given
/// on the wall clock: a fresh instance is seconds old to a client, as on EC2.
#[tokio::test]
async fn a_scaled_world_gives_launch_time_on_the_clients_clock() {
    use fake_ec2::clock::ClockMode;
    let s = Server::start(common::world_with(7, |cfg| {
        (cfg.clock.mode, cfg.clock.factor) = (ClockMode::Scaled, 10.0);
        cfg.clock.start = Some("2026-01-01T00:00:00Z".into());
    }))
    .await;
    let world_now_s = s.state.cloud().clock.now() / 1000;
    let c = s.ec2();
    let before = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    let run = c.run_instances().image_id(AMI).instance_type(InstanceType::C5Large).min_count(1).max_count(1);
    let id = run.subnet_id(SUBNET_A).send().await.unwrap().instances()[0].instance_id().unwrap().to_owned();
    let after = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    let described = c.describe_instances().instance_ids(&id).send().await.unwrap();
    let launched = described.reservations()[0].instances()[0].launch_time().unwrap().secs();
    assert!((before - 1..=after + 1).contains(&launched), "LaunchTime {launched} not within [{before}, {after}]");
    assert!(launched - world_now_s > 86_400, "the world's own time stays where it started: {world_now_s}");
    // The launch-time filter matches what is shown.
    let shown = aws_smithy_types::DateTime::from_secs(launched)
        .fmt(aws_smithy_types::date_time::Format::DateTime)
        .unwrap()
        .replace('Z', "*");
    let filtered = c.describe_instances().filters(Filter::builder().name("launch-time").values(shown).build());
    assert_eq!(filtered.send().await.unwrap().reservations().len(), 1);
}

#[tokio::test]
async fn a_manual_world_gives_launch_time_on_its_own_clock() {
    let s = Server::start(world(8)).await;
    let world_now_ms = s.state.cloud().clock.now();
    let c = s.ec2();
    let run = c.run_instances().image_id(AMI).instance_type(InstanceType::C5Large).min_count(1).max_count(1);
    let id = run.subnet_id(SUBNET_A).send().await.unwrap().instances()[0].instance_id().unwrap().to_owned();
    let described = c.describe_instances().instance_ids(&id).send().await.unwrap();
    let launched = described.reservations()[0].instances()[0].launch_time().unwrap();
    assert_eq!(launched.to_millis().unwrap(), world_now_ms, "the same every run");
}
