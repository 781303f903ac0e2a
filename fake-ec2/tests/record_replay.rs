//! `serve --record F` and `fake-ec2 replay F`, with the real binary: a session of SDK calls
//! (EC2, SQS, the admin clock) recorded, replayed identical; a tampered answer reported as the
//! first that differs, with a non-zero exit.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use aws_sdk_ec2::types::{
    DefaultTargetCapacityType, FleetLaunchTemplateConfigRequest, FleetLaunchTemplateOverridesRequest,
    FleetLaunchTemplateSpecificationRequest, FleetType, InstanceType, RequestLaunchTemplateData,
    TargetCapacitySpecificationRequest,
};
use common::process::{FakeEc2, run_out, temp_dir};
use serde_json::Value;

const AMI: &str = "ami-0a0b0c0d0e0f10111";
const SUBNET_A: &str = "subnet-0a1a1a1a1a1a1a1a1";

/// A session the way an autoscaler talks: launch template, a spot fleet, describes, SQS traffic,
/// time moving on the manual clock, a termination.
async fn session(f: &FakeEc2) -> Vec<String> {
    let ec2 = testkit::sdk_client!(aws_sdk_ec2, &f.endpoint, "us-west-2");
    let sqs = testkit::sdk_client!(aws_sdk_sqs, &f.endpoint, "us-west-2");
    ec2.describe_availability_zones().send().await.unwrap();
    let data = RequestLaunchTemplateData::builder().image_id(AMI).build();
    ec2.create_launch_template().launch_template_name("lt-replay").launch_template_data(data).send().await.unwrap();
    let fleet = ec2
        .create_fleet()
        .r#type(FleetType::Instant)
        .target_capacity_specification(
            TargetCapacitySpecificationRequest::builder()
                .total_target_capacity(3)
                .default_target_capacity_type(DefaultTargetCapacityType::Spot)
                .build(),
        )
        .launch_template_configs(
            FleetLaunchTemplateConfigRequest::builder()
                .launch_template_specification(
                    FleetLaunchTemplateSpecificationRequest::builder()
                        .launch_template_name("lt-replay")
                        .version("$Latest")
                        .build(),
                )
                .overrides(
                    FleetLaunchTemplateOverridesRequest::builder()
                        .instance_type(InstanceType::M5Large)
                        .subnet_id(SUBNET_A)
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap();
    let ids: Vec<String> =
        fleet.instances().iter().flat_map(|i| i.instance_ids().iter().cloned()).collect::<Vec<String>>();
    assert_eq!(ids.len(), 3, "{fleet:?}");
    let url = sqs.create_queue().queue_name("events").send().await.unwrap().queue_url.unwrap();
    for i in 0..3 {
        sqs.send_message().queue_url(&url).message_body(format!("m{i}")).send().await.unwrap();
    }
    reqwest::Client::new()
        .post(format!("{}/_fake/clock", f.admin))
        .json(&serde_json::json!({"advance_seconds": 90}))
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap();
    ec2.describe_instances().send().await.unwrap();
    let got = sqs.receive_message().queue_url(&url).max_number_of_messages(2).send().await.unwrap();
    for m in got.messages() {
        sqs.delete_message().queue_url(&url).receipt_handle(m.receipt_handle().unwrap()).send().await.unwrap();
    }
    ec2.terminate_instances().instance_ids(&ids[0]).send().await.unwrap();
    ec2.describe_spot_price_history().instance_types(InstanceType::M5Large).send().await.unwrap();
    // An error answer is recorded and replayed like any other.
    assert!(ec2.terminate_instances().instance_ids("i-0000000000000dead").send().await.is_err());
    ids
}

#[tokio::test]
async fn a_recorded_session_replays_identical_and_a_tampered_answer_is_reported() {
    let dir = temp_dir("record");
    let rec = dir.join("session.ndjson");
    let f = FakeEc2::serve(&["--seed", "11", "--record", rec.to_str().unwrap()]);
    let ids = session(&f).await;
    f.kill9();

    let text = std::fs::read_to_string(&rec).unwrap();
    let lines: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines[0]["seed"], 11, "the header names the seed");
    let exchanges = lines.len() - 1;
    assert!(exchanges >= 14, "every request recorded: {exchanges}");

    let (code, out, err) = run_out(&["replay", rec.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains(&format!("identical: {exchanges} requests")), "{out}");

    // Tamper with the CreateFleet answer: one instance id changed.
    let fleet_line = lines.iter().position(|l| l["action"] == "CreateFleet").unwrap();
    let mut tampered = lines.clone();
    let body = tampered[fleet_line]["response_body"]["text"].as_str().unwrap().to_owned();
    assert!(body.contains(&ids[1]), "{body}");
    let forged = format!("i-{}", "f".repeat(ids[1].len() - 2));
    tampered[fleet_line]["response_body"]["text"] = Value::String(body.replace(&ids[1], &forged));
    let forged_rec = dir.join("tampered.ndjson");
    let text: String = tampered.iter().map(|l| format!("{l}\n")).collect();
    std::fs::write(&forged_rec, text).unwrap();
    let (code, out, err) = run_out(&["replay", forged_rec.to_str().unwrap()]);
    assert_eq!(code, Some(1), "{out}{err}");
    let seq = tampered[fleet_line]["seq"].as_u64().unwrap();
    assert!(out.contains(&format!("differs: request {seq} (ec2 CreateFleet)")), "{out}");
    assert!(out.contains(&forged) && out.contains(&ids[1]), "the diff shows both ids: {out}");

    // Another seed builds another world: the replay says where it first parts.
    let (code, out, _) = run_out(&["replay", rec.to_str().unwrap(), "--seed", "12"]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.starts_with("differs: request "), "{out}");
    std::fs::remove_dir_all(&dir).unwrap();
}
