//! AWS FIS through the real aws-sdk-fis client, and injected API faults seen through aws-sdk-ec2:
//! a PERCENT(50) spot interruption experiment from `fixtures/fis/`, its deterministic timeline
//! (snapshot), a throttling storm, injected capacity shortfalls, and latency that holds no lock.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use aws_sdk_ec2::error::ProvideErrorMetadata;
use aws_sdk_ec2::types::{DefaultTargetCapacityType, InstanceType, RequestLaunchTemplateData};
use aws_sdk_fis::types::{
    CreateExperimentTemplateActionInput, CreateExperimentTemplateStopConditionInput,
    CreateExperimentTemplateTargetInput, ExperimentActionStatus, ExperimentStatus, ExperimentTemplateTargetInputFilter,
};
use common::{Server, world, world_with};
use serde_json::{Value, json};
use testkit::fleet::{karpenter_fleet, override_for};

const AMI: &str = "ami-0a0b0c0d0e0f10111";
const SUBNET_A: &str = "subnet-0a1a1a1a1a1a1a1a1";
const SUBNET_B: &str = "subnet-0b2b2b2b2b2b2b2b2";
const START_MS: i64 = 1_767_225_600_000;

fn fis(s: &Server) -> aws_sdk_fis::Client {
    let cfg = aws_sdk_fis::Config::builder()
        .behavior_version(aws_sdk_fis::config::BehaviorVersion::latest())
        .region(aws_sdk_fis::config::Region::new("us-west-2"))
        .endpoint_url(&s.endpoint)
        .credentials_provider(aws_sdk_fis::config::Credentials::new("AKIDTEST", "secret", None, None, "test"))
        .retry_config(aws_sdk_fis::config::retry::RetryConfig::disabled())
        .build();
    aws_sdk_fis::Client::from_conf(cfg)
}

fn fixture(name: &str) -> Value {
    let path = format!("{}/../fixtures/fis/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array().map(|a| a.iter().map(|x| x.as_str().unwrap().to_owned()).collect()).unwrap_or_default()
}

fn pairs(v: &Value) -> Vec<(String, String)> {
    v.as_object()
        .map(|o| o.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned())).collect())
        .unwrap_or_default()
}

/// A template file (CreateExperimentTemplate's JSON) sent through the SDK's builders.
async fn create_template(c: &aws_sdk_fis::Client, t: &Value) -> Result<String, aws_sdk_fis::Error> {
    let mut req = c
        .create_experiment_template()
        .description(t["description"].as_str().unwrap())
        .role_arn(t["roleArn"].as_str().unwrap());
    for s in t["stopConditions"].as_array().unwrap() {
        req = req.stop_conditions(
            CreateExperimentTemplateStopConditionInput::builder()
                .source(s["source"].as_str().unwrap())
                .build()
                .unwrap(),
        );
    }
    for (name, target) in t["targets"].as_object().unwrap() {
        let mut b = CreateExperimentTemplateTargetInput::builder()
            .resource_type(target["resourceType"].as_str().unwrap())
            .selection_mode(target["selectionMode"].as_str().unwrap())
            .set_resource_arns(target.get("resourceArns").map(strings));
        for (k, v) in pairs(&target["resourceTags"]) {
            b = b.resource_tags(k, v);
        }
        for f in target["filters"].as_array().cloned().unwrap_or_default() {
            b = b.filters(
                ExperimentTemplateTargetInputFilter::builder()
                    .path(f["path"].as_str().unwrap())
                    .set_values(Some(strings(&f["values"])))
                    .build()
                    .unwrap(),
            );
        }
        req = req.targets(name, b.build().unwrap());
    }
    for (name, action) in t["actions"].as_object().unwrap() {
        let mut b = CreateExperimentTemplateActionInput::builder()
            .action_id(action["actionId"].as_str().unwrap())
            .set_start_after(action.get("startAfter").map(strings));
        for (k, v) in pairs(&action["parameters"]) {
            b = b.parameters(k, v);
        }
        for (k, v) in pairs(&action["targets"]) {
            b = b.targets(k, v);
        }
        req = req.actions(name, b.build().unwrap());
    }
    for (k, v) in pairs(&t["tags"]) {
        req = req.tags(k, v);
    }
    let out = req.send().await.map_err(aws_sdk_fis::Error::from)?;
    Ok(out.experiment_template().unwrap().id().unwrap().to_owned())
}

async fn launch_template(c: &aws_sdk_ec2::Client) {
    c.create_launch_template()
        .launch_template_name("nodes")
        .launch_template_data(RequestLaunchTemplateData::builder().image_id(AMI).build())
        .send()
        .await
        .unwrap();
}

/// Launches `n` tagged spot instances and lets them boot; returns their ids in launch order.
async fn ten_spot_nodes(s: &Server, n: i32) -> Vec<String> {
    let c = s.ec2();
    launch_template(&c).await;
    let out = karpenter_fleet(
        &c,
        "nodes",
        DefaultTargetCapacityType::Spot,
        n,
        vec![override_for("m5.large", SUBNET_A, "us-west-2a")],
    )
    .send()
    .await
    .unwrap();
    assert!(out.errors().is_empty(), "{:?}", out.errors());
    let ids: Vec<String> = out.instances().iter().flat_map(|i| i.instance_ids().iter().cloned()).collect();
    assert_eq!(ids.len(), n as usize);
    s.advance(15);
    ids
}

fn log(s: &Server) -> Vec<Value> {
    let w = s.state.cloud();
    w.events.log_since(0).map(|l| serde_json::from_str(l).unwrap()).collect()
}

fn instances_with(log: &[Value], detail_type: &str, what: Option<&str>) -> BTreeSet<String> {
    log.iter()
        .filter(|l| l["event"]["detail-type"] == detail_type)
        .filter(|l| what.is_none_or(|w| l["event"]["detail"]["state"] == w))
        .map(|l| l["event"]["detail"]["instance-id"].as_str().unwrap().to_owned())
        .collect()
}

/// The PERCENT(50) fixture against 10 spot nodes; returns the experiment's normalized result.
async fn percent_50(seed: u64) -> (Vec<String>, String) {
    let s = Server::start(world(seed)).await;
    let ids = ten_spot_nodes(&s, 10).await;
    let f = fis(&s);
    let template = create_template(&f, &fixture("spot-interrupt-50-percent.json")).await.unwrap();
    let started = f.start_experiment().experiment_template_id(&template).send().await.unwrap();
    let exp = started.experiment().unwrap();
    assert_eq!(exp.state().unwrap().status(), Some(&ExperimentStatus::Initiating));
    let id = exp.id().unwrap().to_owned();
    assert!(id.starts_with("EXP"), "{id}");

    // Resolved at start: half of the ten, by the seed.
    let resolved = f.list_experiment_resolved_targets().experiment_id(&id).send().await.unwrap();
    let hit: Vec<String> = resolved
        .resolved_targets()
        .iter()
        .map(|t| {
            assert_eq!(t.resource_type(), Some("aws:ec2:spot-instance"));
            assert_eq!(t.target_name(), Some("NodePoolSpotInstances"));
            let arn = &t.target_information().unwrap()["identifier"];
            arn.rsplit('/').next().unwrap().to_owned()
        })
        .collect();
    assert_eq!(hit.len(), 5);
    assert!(hit.iter().all(|h| ids.contains(h)));

    // PT2M: rebalance and warning now, the action (and experiment) complete, the reclaim in 2 minutes.
    let got = f.get_experiment().id(&id).send().await.unwrap();
    let exp = got.experiment().unwrap();
    assert_eq!(exp.state().unwrap().status(), Some(&ExperimentStatus::Completed), "{exp:?}");
    let action = &exp.actions().unwrap()["interrupt"];
    assert_eq!(action.state().unwrap().status(), Some(&ExperimentActionStatus::Completed));
    let warned = instances_with(&log(&s), "EC2 Spot Instance Interruption Warning", None);
    assert_eq!(warned, hit.iter().cloned().collect());
    assert_eq!(instances_with(&log(&s), "EC2 Instance Rebalance Recommendation", None), warned);

    s.advance(119);
    assert!(instances_with(&log(&s), "EC2 Instance State-change Notification", Some("shutting-down")).is_empty());
    s.advance(1);
    s.advance(10);
    let log = log(&s);
    assert_eq!(instances_with(&log, "EC2 Instance State-change Notification", Some("terminated")), warned);
    let d = s.ec2().describe_instances().set_instance_ids(Some(ids.clone())).send().await.unwrap();
    let states: Vec<(String, String)> = d
        .reservations()
        .iter()
        .flat_map(|r| r.instances())
        .map(|i| (i.instance_id().unwrap().to_owned(), i.state().unwrap().name().unwrap().as_str().to_owned()))
        .collect();
    for (i, state) in &states {
        assert_eq!(state, if warned.contains(i) { "terminated" } else { "running" }, "{i}");
    }

    // The normalized result: which instances (by launch order), the action timeline, the events.
    let got = f.get_experiment().id(&id).send().await.unwrap();
    let exp = got.experiment().unwrap();
    let secs = |t: Option<&aws_sdk_fis::primitives::DateTime>| {
        t.map_or("-".to_owned(), |t| format!("+{}s", t.to_millis().unwrap() / 1000 - START_MS / 1000))
    };
    let mut lines = vec![
        format!("experiment {} from {}: {:?}", exp.id().unwrap(), template, exp.state().unwrap().status().unwrap()),
        format!("  start {} end {}", secs(exp.start_time()), secs(exp.end_time())),
        format!(
            "  hit (launch order): {:?}",
            hit.iter().map(|h| ids.iter().position(|i| i == h).unwrap()).collect::<Vec<_>>()
        ),
    ];
    for (name, a) in exp.actions().unwrap() {
        lines.push(format!(
            "  action {name} {}: {:?} {} .. {}",
            a.action_id().unwrap(),
            a.state().unwrap().status().unwrap(),
            secs(a.start_time()),
            secs(a.end_time())
        ));
    }
    let first = log.iter().position(|l| l["event"]["source"] == "aws.fis").unwrap();
    for l in &log[first..] {
        let e = &l["event"];
        let d = &e["detail"];
        let subject = d["instance-id"].as_str().or(d["experiment-id"].as_str()).unwrap();
        let what =
            d["state"].as_str().or(d["instance-action"].as_str()).or(d["new-state"]["status"].as_str()).unwrap_or("-");
        let note = if l["note"].is_null() { String::new() } else { format!(" note={}", l["note"]) };
        lines.push(format!(
            "+{:>3}s {} | {} | {}{note}",
            (l["at_ms"].as_i64().unwrap() - START_MS) / 1000,
            e["detail-type"].as_str().unwrap(),
            subject,
            what
        ));
    }
    (hit, lines.join("\n"))
}

#[tokio::test]
async fn percent_50_interrupts_exactly_half_of_the_tagged_spot_nodes() {
    let (hit, timeline) = percent_50(1).await;
    insta::assert_snapshot!(timeline);
    let (again, timeline_again) = percent_50(1).await;
    assert_eq!(hit, again, "same seed, same instances");
    assert_eq!(timeline, timeline_again);
    let mut others = Vec::new();
    for seed in 2..5 {
        others.push(percent_50(seed).await.0);
    }
    assert!(others.iter().any(|o| o != &hit), "the seed decides which instances");
}

#[tokio::test]
async fn experiments_step_through_their_states_on_the_clock() {
    let s = Server::start(world(1)).await;
    let ids = ten_spot_nodes(&s, 4).await;
    let f = fis(&s);
    // wait 1 min, then interrupt COUNT(2) with 4 minutes' notice; a throttle storm alongside.
    let t = json!({
        "description": "ordered",
        "roleArn": "arn:aws:iam::123456789012:role/fis",
        "stopConditions": [{"source": "none"}],
        "targets": {
            "two": {"resourceType": "aws:ec2:spot-instance", "resourceArns": ids.iter().map(|i| format!("arn:aws:ec2:us-west-2:123456789012:instance/{i}")).collect::<Vec<_>>(), "selectionMode": "COUNT(2)"},
            "role": {"resourceType": "aws:iam:role", "resourceArns": ["arn:aws:iam::123456789012:role/karpenter"], "selectionMode": "ALL"},
        },
        "actions": {
            "pause": {"actionId": "aws:fis:wait", "parameters": {"duration": "PT1M"}},
            "interrupt": {"actionId": "aws:ec2:send-spot-instance-interruptions", "parameters": {"durationBeforeInterruption": "PT4M"}, "targets": {"SpotInstances": "two"}, "startAfter": ["pause"]},
            "throttle": {"actionId": "aws:fis:inject-api-throttle-error", "parameters": {"service": "ec2", "operations": "DescribeInstances", "percentage": "100", "duration": "PT2M"}, "targets": {"Roles": "role"}},
        },
    });
    let template = create_template(&f, &t).await.unwrap();
    let id =
        f.start_experiment().experiment_template_id(&template).send().await.unwrap().experiment.unwrap().id.unwrap();
    let status = |name: &'static str| {
        let f = f.clone();
        let id = id.clone();
        async move {
            let e = f.get_experiment().id(&id).send().await.unwrap().experiment.unwrap();
            let a = e.actions().unwrap().get(name).map(|a| a.state().unwrap().status().unwrap().as_str().to_owned());
            (e.state().unwrap().status().unwrap().as_str().to_owned(), a.unwrap_or_default())
        }
    };
    assert_eq!(status("pause").await, ("running".into(), "running".into()));
    assert_eq!(status("interrupt").await.1, "pending");
    let ec2 = s.ec2();
    let e = ec2.describe_instances().send().await.unwrap_err();
    assert_eq!(e.code(), Some("RequestLimitExceeded"));
    assert_eq!(e.raw_response().unwrap().status().as_u16(), 503);
    s.advance(60);
    assert_eq!(status("pause").await.1, "completed");
    assert_eq!(status("interrupt").await.1, "running");
    let rebalanced = instances_with(&log(&s), "EC2 Instance Rebalance Recommendation", None);
    assert_eq!(rebalanced.len(), 2);
    assert!(instances_with(&log(&s), "EC2 Spot Instance Interruption Warning", None).is_empty(), "warning at D - 2m");
    s.advance(60);
    assert!(ec2.describe_instances().send().await.is_ok(), "the throttle action has ended");
    assert_eq!(status("throttle").await.1, "completed");
    s.advance(60);
    assert_eq!(instances_with(&log(&s), "EC2 Spot Instance Interruption Warning", None), rebalanced);
    assert_eq!(status("interrupt").await, ("completed".into(), "completed".into()));
    s.advance(120);
    assert_eq!(instances_with(&log(&s), "EC2 Instance State-change Notification", Some("shutting-down")), rebalanced);

    // FIS's own state-change events, in order.
    let states: Vec<String> = log(&s)
        .iter()
        .filter(|l| l["event"]["source"] == "aws.fis")
        .map(|l| {
            format!(
                "{}->{}",
                l["event"]["detail"]["old-state"]["status"].as_str().unwrap(),
                l["event"]["detail"]["new-state"]["status"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(states, ["pending->initiating", "initiating->running", "running->completed"]);
}

#[tokio::test]
async fn stop_experiment_stops_running_actions_and_lists_show_it() {
    let s = Server::start(world(1)).await;
    let ids = ten_spot_nodes(&s, 2).await;
    let f = fis(&s);
    let t = json!({
        "description": "stop and start",
        "roleArn": "arn:aws:iam::123456789012:role/fis",
        "stopConditions": [{"source": "none"}],
        "targets": {"all": {"resourceType": "aws:ec2:instance", "filters": [{"path": "Placement.AvailabilityZone", "values": ["us-west-2a"]}], "selectionMode": "ALL"}},
        "actions": {
            "stop": {"actionId": "aws:ec2:stop-instances", "parameters": {"startInstancesAfterDuration": "PT10M"}, "targets": {"Instances": "all"}},
            "after": {"actionId": "aws:ec2:terminate-instances", "targets": {"Instances": "all"}, "startAfter": ["stop"]},
        },
    });
    let template = create_template(&f, &t).await.unwrap();
    let id =
        f.start_experiment().experiment_template_id(&template).send().await.unwrap().experiment.unwrap().id.unwrap();
    s.advance(30);
    let d = s.ec2().describe_instances().set_instance_ids(Some(ids.clone())).send().await.unwrap();
    assert!(
        d.reservations()
            .iter()
            .flat_map(|r| r.instances())
            .all(|i| i.state().unwrap().name().unwrap().as_str() == "stopped")
    );
    let stopped = f.stop_experiment().id(&id).send().await.unwrap().experiment.unwrap();
    assert_eq!(stopped.state().unwrap().status(), Some(&ExperimentStatus::Stopping));
    let e = f.get_experiment().id(&id).send().await.unwrap().experiment.unwrap();
    assert_eq!(e.state().unwrap().status(), Some(&ExperimentStatus::Stopped));
    let actions = e.actions().unwrap();
    assert_eq!(actions["stop"].state().unwrap().status(), Some(&ExperimentActionStatus::Stopped));
    assert_eq!(actions["after"].state().unwrap().status(), Some(&ExperimentActionStatus::Cancelled));
    s.advance(20);
    let d = s.ec2().describe_instances().set_instance_ids(Some(ids)).send().await.unwrap();
    assert!(
        d.reservations()
            .iter()
            .flat_map(|r| r.instances())
            .all(|i| i.state().unwrap().name().unwrap().as_str() == "running"),
        "stopping the experiment starts the instances again"
    );
    let again = f.stop_experiment().id(&id).send().await.unwrap_err();
    assert_eq!(again.into_service_error().meta().code(), Some("ValidationException"));
    let list = f.list_experiments().experiment_template_id(&template).send().await.unwrap();
    assert_eq!(list.experiments().len(), 1);
    let templates = f.list_experiment_templates().send().await.unwrap();
    assert_eq!(templates.experiment_templates().len(), 1);
    f.delete_experiment_template().id(&template).send().await.unwrap();
    let gone = f.get_experiment_template().id(&template).send().await.unwrap_err();
    assert!(gone.into_service_error().is_resource_not_found_exception());
}

#[tokio::test]
async fn invalid_templates_get_a_validation_exception() {
    let s = Server::start(world(1)).await;
    let f = fis(&s);
    let mut t = fixture("spot-interrupt-50-percent.json");
    t["actions"]["interrupt"]["parameters"]["durationBeforeInterruption"] = json!("PT1M");
    let e = create_template(&f, &t).await.unwrap_err();
    match e {
        aws_sdk_fis::Error::ValidationException(v) => {
            assert!(v.message().unwrap().contains("durationBeforeInterruption"), "{v:?}")
        }
        other => panic!("{other:?}"),
    }
    let mut t = fixture("spot-interrupt-50-percent.json");
    t["targets"]["NodePoolSpotInstances"]["resourceType"] = json!("aws:ec2:instance");
    assert!(matches!(create_template(&f, &t).await, Err(aws_sdk_fis::Error::ValidationException(_))));
    let e = f.get_experiment().id("EXPnope").send().await.unwrap_err();
    assert!(e.into_service_error().is_resource_not_found_exception());
    let e = f.start_experiment().experiment_template_id("EXTnope").send().await.unwrap_err();
    assert!(e.into_service_error().is_resource_not_found_exception());
}

#[tokio::test]
async fn an_empty_target_fails_the_experiment() {
    let s = Server::start(world(1)).await;
    let f = fis(&s);
    let template = create_template(&f, &fixture("spot-interrupt-50-percent.json")).await.unwrap();
    let id =
        f.start_experiment().experiment_template_id(&template).send().await.unwrap().experiment.unwrap().id.unwrap();
    let e = f.get_experiment().id(&id).send().await.unwrap().experiment.unwrap();
    assert_eq!(e.state().unwrap().status(), Some(&ExperimentStatus::Failed));
    assert!(e.state().unwrap().reason().unwrap().contains("NodePoolSpotInstances"));
}

async fn admin_post(s: &Server, path: &str, body: Value) -> Value {
    let r = reqwest::Client::new().post(format!("{}{path}", s.endpoint)).json(&body).send().await.unwrap();
    assert!(r.status().is_success(), "{path}: {}", r.status());
    r.json().await.unwrap()
}

/// DescribeInstances outcomes under a 50 % throttle fault, with the given retry policy.
async fn storm(seed: u64, retry: aws_sdk_ec2::config::retry::RetryConfig) -> Vec<Result<(), String>> {
    let s = Server::start(world_with(seed, |c| c.throttling.mode = fake_ec2::world::config::ThrottleMode::Off)).await;
    let f = admin_post(
        &s,
        "/_fake/faults",
        json!({"operation": "DescribeInstances", "code": "RequestLimitExceeded", "percentage": 50}),
    )
    .await;
    assert_eq!(f["status"], 503);
    let c = aws_sdk_ec2::Client::from_conf(s.ec2().config().to_builder().retry_config(retry).build());
    let mut out = Vec::new();
    for _ in 0..40 {
        let r = c.describe_instances().send().await;
        out.push(r.map(|_| ()).map_err(|e| {
            assert_eq!(e.raw_response().unwrap().status().as_u16(), 503);
            e.code().unwrap().to_owned()
        }));
    }
    out
}

#[tokio::test]
async fn a_throttling_storm_through_aws_sdk_ec2() {
    use aws_sdk_ec2::config::retry::RetryConfig;
    let bare = storm(3, RetryConfig::disabled()).await;
    let failed: Vec<&String> = bare.iter().filter_map(|r| r.as_ref().err()).collect();
    assert!(failed.iter().all(|c| *c == "RequestLimitExceeded"));
    assert!((10..30).contains(&failed.len()), "about half fail: {}", failed.len());
    assert_eq!(bare, storm(3, RetryConfig::disabled()).await, "the seed decides which calls fail");

    // The SDK's standard retry (3 attempts) gets most calls through; a few still fail.
    let standard = RetryConfig::standard().with_max_attempts(3).with_initial_backoff(Duration::from_millis(1));
    let retried = storm(3, standard).await;
    let ok = retried.iter().filter(|r| r.is_ok()).count();
    assert!(ok > 30, "{ok} of 40 succeeded with retries");
    assert!(retried.iter().filter_map(|r| r.as_ref().err()).all(|c| c == "RequestLimitExceeded"));
}

#[tokio::test]
async fn injected_ice_fails_create_fleet_per_override() {
    let s = Server::start(world(1)).await;
    let c = s.ec2();
    launch_template(&c).await;
    // Through the admin API: zone us-west-2a (by zone id) has no capacity.
    admin_post(&s, "/_fake/faults", json!({"code": "InsufficientInstanceCapacity", "zones": ["usw2-az1"]})).await;
    let in_a = vec![override_for("m5.large", SUBNET_A, "us-west-2a"), override_for("c5.large", SUBNET_A, "us-west-2a")];
    let out = karpenter_fleet(&c, "nodes", DefaultTargetCapacityType::Spot, 3, in_a).send().await.unwrap();
    let mut errs: Vec<(String, String)> = out
        .errors()
        .iter()
        .map(|e| {
            let o = e.launch_template_and_overrides().unwrap().overrides().unwrap();
            (o.instance_type().unwrap().as_str().to_owned(), e.error_code().unwrap().to_owned())
        })
        .collect();
    errs.sort();
    assert_eq!(
        errs,
        [
            ("c5.large".to_owned(), "InsufficientInstanceCapacity".to_owned()),
            ("m5.large".to_owned(), "InsufficientInstanceCapacity".to_owned())
        ],
        "one error per affected override"
    );
    assert!(out.instances().is_empty());
    let overrides =
        vec![override_for("m5.large", SUBNET_A, "us-west-2a"), override_for("m5.large", SUBNET_B, "us-west-2b")];
    let out = karpenter_fleet(&c, "nodes", DefaultTargetCapacityType::Spot, 3, overrides.clone()).send().await.unwrap();
    let launched: Vec<String> = out.instances().iter().flat_map(|i| i.instance_ids().iter().cloned()).collect();
    assert_eq!(launched.len(), 3, "the other zone fulfils the request");
    let r = c
        .run_instances()
        .image_id(AMI)
        .instance_type(InstanceType::M5Large)
        .min_count(1)
        .max_count(1)
        .subnet_id(SUBNET_A)
        .send()
        .await
        .unwrap_err();
    assert_eq!(r.code(), Some("InsufficientInstanceCapacity"));
    assert_eq!(r.raw_response().unwrap().status().as_u16(), 500);
    reqwest::Client::new().delete(format!("{}/_fake/faults", s.endpoint)).send().await.unwrap();

    // Through FIS: the same shortfall for every zone, for one minute.
    let f = fis(&s);
    let t = json!({
        "description": "ice",
        "roleArn": "arn:aws:iam::123456789012:role/fis",
        "stopConditions": [{"source": "none"}],
        "targets": {"role": {"resourceType": "aws:iam:role", "resourceArns": ["arn:aws:iam::123456789012:role/karpenter"], "selectionMode": "ALL"}},
        "actions": {"ice": {"actionId": "aws:ec2:api-insufficient-instance-capacity-error",
            "parameters": {"duration": "PT1M", "percentage": "100", "availabilityZoneIdentifiers": "us-west-2a,usw2-az2"},
            "targets": {"Roles": "role"}}},
    });
    let template = create_template(&f, &t).await.unwrap();
    f.start_experiment().experiment_template_id(&template).send().await.unwrap();
    let out = karpenter_fleet(&c, "nodes", DefaultTargetCapacityType::Spot, 1, overrides.clone()).send().await.unwrap();
    assert!(out.instances().is_empty());
    assert_eq!(out.errors().len(), 2);
    assert!(out.errors().iter().all(|e| e.error_code() == Some("InsufficientInstanceCapacity")));
    s.advance(60);
    let out = karpenter_fleet(&c, "nodes", DefaultTargetCapacityType::Spot, 1, overrides).send().await.unwrap();
    assert!(out.errors().is_empty(), "the action is over: {:?}", out.errors());
}

#[tokio::test]
async fn latency_does_not_hold_the_world() {
    let s = Server::start(world(1)).await;
    admin_post(&s, "/_fake/faults", json!({"operation": "DescribeInstances", "latency_ms": 1500})).await;
    let slow_client = s.ec2();
    let started = Instant::now();
    let slow = tokio::spawn(async move { slow_client.describe_instances().send().await.map(|_| Instant::now()) });
    tokio::time::sleep(Duration::from_millis(100)).await;
    s.ec2().describe_availability_zones().send().await.unwrap();
    let fast_done = Instant::now();
    let slow_done = slow.await.unwrap().unwrap();
    assert!(fast_done < slow_done, "a delayed call does not block others");
    assert!(slow_done - started >= Duration::from_millis(1500));
    let list: Value = reqwest::get(format!("{}/_fake/faults", s.endpoint)).await.unwrap().json().await.unwrap();
    assert_eq!(list[0]["hits"], 1);
}
