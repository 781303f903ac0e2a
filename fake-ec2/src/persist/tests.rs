//! A state taken from a cloud that served real requests, put back into a fresh cloud: the same
//! state again, and the same answers from then on.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use axum::body::Body;
use axum::http::Request;
use tower::ServiceExt;

use super::*;
use crate::cloud::Cloud;
use crate::cloud::tests::test_cloud;

const EC2_AUTH: &str =
    "AWS4-HMAC-SHA256 Credential=AKID/20260101/us-west-2/ec2/aws4_request, SignedHeaders=host, Signature=0";
const SQS_AUTH: &str =
    "AWS4-HMAC-SHA256 Credential=AKID/20260101/us-west-2/sqs/aws4_request, SignedHeaders=host, Signature=0";

async fn send(state: &Shared, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> (u16, String) {
    let mut r = Request::builder().method(method).uri(path).header("host", "127.0.0.1:4566");
    for (k, v) in headers {
        r = r.header(*k, *v);
    }
    let response =
        crate::server::app(state.clone()).oneshot(r.body(Body::from(body.to_owned())).unwrap()).await.unwrap();
    let status = response.status().as_u16();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
    (status, String::from_utf8_lossy(&bytes).into_owned())
}

async fn ec2(state: &Shared, body: &str) -> String {
    let (status, xml) = send(state, "POST", "/", &[("authorization", EC2_AUTH)], body).await;
    assert_eq!(status, 200, "{body}: {xml}");
    xml
}

async fn sqs(state: &Shared, op: &str, input: serde_json::Value) -> serde_json::Value {
    let target = format!("AmazonSQS.{op}");
    let headers = [("authorization", SQS_AUTH), ("x-amz-target", target.as_str())];
    let (status, body) = send(state, "POST", "/", &headers, &input.to_string()).await;
    assert_eq!(status, 200, "{op}: {body}");
    serde_json::from_str(&body).unwrap()
}

const FLEET: &str = "Action=CreateFleet&Type=instant&ClientToken=tok-1\
    &TargetCapacitySpecification.TotalTargetCapacity=3&TargetCapacitySpecification.DefaultTargetCapacityType=spot\
    &LaunchTemplateConfigs.1.LaunchTemplateSpecification.LaunchTemplateName=lt-1&LaunchTemplateConfigs.1.LaunchTemplateSpecification.Version=%24Latest\
    &LaunchTemplateConfigs.1.Overrides.1.InstanceType=m5.large&LaunchTemplateConfigs.1.Overrides.1.SubnetId=subnet-0a1a1a1a1a1a1a1a1";

/// A cloud that launched a fleet, holds messages (one in flight), an injected fault, a changed
/// pool and a running FIS experiment.
async fn busy_cloud() -> Shared {
    let state = Shared::new(test_cloud(5));
    ec2(&state, "Action=CreateLaunchTemplate&LaunchTemplateName=lt-1&LaunchTemplateData.ImageId=ami-0a0b0c0d0e0f10111")
        .await;
    ec2(&state, FLEET).await;
    ec2(&state, "Action=CreateTags&ResourceId.1=subnet-0a1a1a1a1a1a1a1a1&Tag.1.Key=k&Tag.1.Value=v").await;
    state.cloud().advance(20_000);
    let url = sqs(&state, "CreateQueue", serde_json::json!({"QueueName": "q"})).await["QueueUrl"].clone();
    for body in ["one", "two", "three"] {
        sqs(&state, "SendMessage", serde_json::json!({"QueueUrl": url, "MessageBody": body})).await;
    }
    sqs(&state, "ReceiveMessage", serde_json::json!({"QueueUrl": url, "MaxNumberOfMessages": 1})).await;
    let fault = r#"{"operation": "RunInstances", "code": "RequestLimitExceeded", "percentage": 50}"#;
    assert_eq!(send(&state, "POST", "/_fake/faults", &[("content-type", "application/json")], fault).await.0, 200);
    let pool = r#"{"instance_type": "c5.large", "capacity": 3}"#;
    assert_eq!(send(&state, "POST", "/_fake/pools", &[("content-type", "application/json")], pool).await.0, 200);
    let template = include_str!("../../../fixtures/fis/spot-interrupt-50-percent.json");
    let (status, body) = send(&state, "POST", "/_fake/experiments", &[], template).await;
    assert_eq!(status, 200, "{body}");
    state.cloud().advance(30_000);
    state
}

fn identity() -> Identity {
    Identity { seed: 5, world_path: "default.yaml".into(), world_sha256: "ab".repeat(32) }
}

/// The state as JSON, the wall-clock time of the write aside.
fn json_of(c: &Cloud) -> serde_json::Value {
    let mut v = serde_json::to_value(c.snapshot(identity())).unwrap();
    v["clock"]["written_at_wall_ms"] = serde_json::Value::Null;
    v
}

fn restored(from: &Shared) -> Shared {
    let text = serde_json::to_string(&from.cloud().snapshot(identity())).unwrap();
    let state: CloudState = serde_json::from_str(&text).unwrap();
    let fresh = Shared::new(test_cloud(5));
    fresh.restore(state).unwrap();
    fresh
}

#[tokio::test]
async fn a_restored_cloud_holds_the_same_state() {
    let original = busy_cloud().await;
    let copy = restored(&original);
    assert_eq!(json_of(&copy.cloud()), json_of(&original.cloud()));
    let c = copy.cloud();
    assert_eq!(c.ec2.instances.len(), 3);
    assert_eq!(c.fis.experiments.len(), 1);
}

#[tokio::test]
async fn a_restored_cloud_answers_as_the_original_would() {
    let original = busy_cloud().await;
    let copy = restored(&original);
    // The client-token retry gets the same fleet; new ids, request ids and receipts continue the
    // same streams; the message in flight comes back when its visibility runs out.
    for state in [&original, &copy] {
        state.cloud().advance(40_000);
    }
    let url = "http://127.0.0.1:4566/000000000000/q";
    let mut answers = Vec::new();
    for state in [&original, &copy] {
        let fleet = ec2(state, FLEET).await;
        let run =
            ec2(state, "Action=RunInstances&ImageId=ami-0a0b0c0d0e0f10111&InstanceType=m5.large&MinCount=1&MaxCount=1")
                .await;
        let account = state.cloud().account_id().to_owned();
        let url = url.replace("000000000000", &account);
        let got = sqs(state, "ReceiveMessage", serde_json::json!({"QueueUrl": url, "MaxNumberOfMessages": 10})).await;
        answers.push((fleet, run, got, json_of(&state.cloud())));
    }
    assert_eq!(answers[0], answers[1]);
    assert_eq!(answers[0].2["Messages"].as_array().map(Vec::len), Some(3), "every message visible again once");
}

#[test]
fn refuses_a_state_of_another_world_or_seed() {
    let dir = std::env::temp_dir().join(format!("fake-ec2-persist-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("state.json");
    let ours = identity();
    let written = test_cloud(5).snapshot(ours.clone());
    write_atomic(&path, &serde_json::to_vec(&written).unwrap()).unwrap();
    assert!(StateFile::new(path.clone(), ours.clone()).load().unwrap().is_some());
    let other_seed = StateFile::new(path.clone(), Identity { seed: 6, ..ours.clone() });
    let e = other_seed.load().err().map(|e| e.to_string()).unwrap_or_default();
    assert!(e.contains("seed 5") && e.contains("seed 6") && e.contains("--seed"), "{e}");
    let other_world = StateFile::new(path.clone(), Identity { world_sha256: "cd".repeat(32), ..ours });
    assert!(matches!(other_world.load(), Err(StateError::Mismatch { .. })));
    std::fs::write(&path, b"{not json").unwrap();
    assert!(matches!(StateFile::new(path.clone(), identity()).load(), Err(StateError::Parse { .. })));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn read_only_calls_are_told_apart() {
    assert!(is_read_only("ec2", "DescribeInstances"));
    assert!(is_read_only("sqs", "GetQueueAttributes"));
    assert!(!is_read_only("sqs", "ReceiveMessage"));
    assert!(!is_read_only("ec2", "CreateFleet"));
    assert!(!is_read_only("fis", "StartExperiment"));
}
