//! The request log through real clients: every answer is logged with its service, action, status
//! and error code; injected faults are marked; other services' errors are read in their protocol.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Server, world};
use serde_json::{Value, json};

async fn get(s: &Server, path: &str) -> Value {
    reqwest::get(format!("{}{path}", s.endpoint)).await.unwrap().json().await.unwrap()
}

#[tokio::test]
async fn every_answer_is_logged_with_its_status_and_code() {
    let s = Server::start(world(1)).await;
    let ec2 = s.ec2();
    ec2.describe_availability_zones().send().await.unwrap();
    let err = ec2.describe_instances().instance_ids("i-0000000000000dead").send().await.unwrap_err();
    assert_eq!(err.into_service_error().meta().code(), Some("InvalidInstanceID.NotFound"));
    // An injected throttle on one action, answered once.
    let fault = json!({"operations": ["DescribeSubnets"], "code": "RequestLimitExceeded", "percentage": 100});
    reqwest::Client::new().post(format!("{}/_fake/faults", s.endpoint)).json(&fault).send().await.unwrap();
    assert!(ec2.describe_subnets().send().await.is_err());
    // Another protocol's error: SQS JSON 1.0.
    assert!(s.sqs().get_queue_url().queue_name("no-such-queue").send().await.is_err());

    let log = get(&s, "/_fake/requests").await;
    let rows: Vec<(String, String, u64, Option<String>, bool)> = log["requests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["service"].as_str().unwrap().to_owned(),
                e["action"].as_str().unwrap().to_owned(),
                e["status"].as_u64().unwrap(),
                e["error_code"].as_str().map(str::to_owned),
                e["injected"].as_bool().unwrap(),
            )
        })
        .collect();
    let row = |s: &str, a: &str, st: u64, c: Option<&str>, i: bool| (s.into(), a.into(), st, c.map(Into::into), i);
    assert_eq!(
        rows,
        vec![
            row("ec2", "DescribeAvailabilityZones", 200, None, false),
            row("ec2", "DescribeInstances", 400, Some("InvalidInstanceID.NotFound"), false),
            row("ec2", "DescribeSubnets", 503, Some("RequestLimitExceeded"), true),
            row("sqs", "GetQueueUrl", 400, Some("QueueDoesNotExist"), false),
        ]
    );
    assert!(log["requests"][0]["user_agent"].as_str().unwrap().contains("aws-sdk-rust"));
    let since = get(&s, "/_fake/requests?since=3").await;
    assert_eq!(since["requests"].as_array().unwrap().len(), 1);

    let summary = get(&s, "/_fake/requests/summary").await;
    assert_eq!(summary["errors_by_code"]["RequestLimitExceeded"], 1);
    assert_eq!(summary["errors_by_code"]["InvalidInstanceID.NotFound"], 1);
    let throttled = summary["calls"].as_array().unwrap().iter().find(|c| c["status"] == 503).unwrap();
    assert_eq!((throttled["count"].as_u64(), throttled["injected"].as_u64()), (Some(1), Some(1)));
}
