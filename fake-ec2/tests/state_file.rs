//! `serve --state-file`: the real binary killed with SIGKILL while a CreateFleet and while SQS
//! sends and receives are in flight, restarted on the same state file. Nothing acknowledged is
//! lost or duplicated; nothing unacknowledged is half there.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use common::all;
use common::process::{FakeEc2, eventually, temp_dir};
use serde_json::{Value, json};

fn auth(service: &str) -> String {
    format!(
        "AWS4-HMAC-SHA256 Credential=AKIDTEST/20260101/us-west-2/{service}/aws4_request, SignedHeaders=host, Signature=00"
    )
}

async fn ec2(endpoint: &str, body: &str) -> Result<(u16, String), reqwest::Error> {
    let r = reqwest::Client::new()
        .post(endpoint)
        .header("content-type", "application/x-www-form-urlencoded; charset=utf-8")
        .header("authorization", auth("ec2"))
        .body(body.to_owned())
        .send()
        .await?;
    Ok((r.status().as_u16(), r.text().await?))
}

async fn sqs(endpoint: &str, op: &str, input: Value) -> Result<(u16, Value), reqwest::Error> {
    let r = reqwest::Client::new()
        .post(endpoint)
        .header("content-type", "application/x-amz-json-1.0")
        .header("x-amz-target", format!("AmazonSQS.{op}"))
        .header("authorization", auth("sqs"))
        .body(input.to_string())
        .send()
        .await?;
    let status = r.status().as_u16();
    Ok((status, r.json().await.unwrap_or(Value::Null)))
}

async fn admin(base: &str, method: reqwest::Method, path: &str, body: Value) -> Value {
    let r = reqwest::Client::new().request(method, format!("{base}{path}")).json(&body).send().await.unwrap();
    assert!(r.status().is_success(), "{path}: {}", r.status());
    r.json().await.unwrap()
}

fn fleet(token: &str) -> String {
    format!(
        "Action=CreateFleet&Type=instant&ClientToken={token}\
         &TargetCapacitySpecification.TotalTargetCapacity=2&TargetCapacitySpecification.DefaultTargetCapacityType=spot\
         &LaunchTemplateConfigs.1.LaunchTemplateSpecification.LaunchTemplateName=lt-1\
         &LaunchTemplateConfigs.1.LaunchTemplateSpecification.Version=%24Latest\
         &LaunchTemplateConfigs.1.Overrides.1.InstanceType=m5.large&LaunchTemplateConfigs.1.Overrides.1.SubnetId=subnet-0a1a1a1a1a1a1a1a1"
    )
}

async fn fleet_ids(endpoint: &str, token: &str) -> Vec<String> {
    let (status, xml) = ec2(endpoint, &fleet(token)).await.unwrap();
    assert_eq!(status, 200, "{xml}");
    let ids = all(&xml, "item").into_iter().filter(|i| i.starts_with("i-")).collect::<Vec<_>>();
    assert_eq!(ids.len(), 2, "{xml}");
    ids
}

/// Every instance id DescribeInstances lists, with how often.
async fn described(endpoint: &str) -> BTreeMap<String, usize> {
    let (status, xml) = ec2(endpoint, "Action=DescribeInstances").await.unwrap();
    assert_eq!(status, 200, "{xml}");
    let mut out = BTreeMap::new();
    for id in all(&xml, "instanceId") {
        *out.entry(id).or_default() += 1;
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_create_fleet_loses_nothing_acknowledged_and_half_does_nothing() {
    let dir = temp_dir("state-fleet");
    let state = dir.join("state.json");
    let args = ["--seed", "7", "--state-file", state.to_str().unwrap()];
    let f = FakeEc2::serve(&args);
    let lt = "Action=CreateLaunchTemplate&LaunchTemplateName=lt-1&LaunchTemplateData.ImageId=ami-0a0b0c0d0e0f10111";
    assert_eq!(ec2(&f.endpoint, lt).await.unwrap().0, 200);
    let acknowledged = fleet_ids(&f.endpoint, "fleet-a").await;
    // The next CreateFleet waits 30 s in an injected latency before EC2 acts on it: kill it there.
    let fault = json!({"operation": "CreateFleet", "latency_ms": 30_000});
    admin(&f.admin, reqwest::Method::POST, "/_fake/faults", fault).await;
    let endpoint = f.endpoint.clone();
    let in_flight = tokio::spawn(async move { ec2(&endpoint, &fleet("fleet-b")).await });
    let admin_base = f.admin.clone();
    eventually("the CreateFleet to be in flight", async || {
        let faults = admin(&admin_base, reqwest::Method::GET, "/_fake/faults", Value::Null).await;
        faults[0]["hits"] == 1
    })
    .await;
    f.kill9();
    assert!(in_flight.await.unwrap().is_err(), "the killed CreateFleet must not have been answered");

    let f = FakeEc2::serve(&args);
    let after = described(&f.endpoint).await;
    let expected: BTreeMap<String, usize> = acknowledged.iter().map(|id| (id.clone(), 1)).collect();
    assert_eq!(after, expected, "the acknowledged fleet exactly once, the killed one not at all");
    admin(&f.admin, reqwest::Method::DELETE, "/_fake/faults", Value::Null).await;
    assert_eq!(fleet_ids(&f.endpoint, "fleet-a").await, acknowledged, "a retry after restart gets the same instances");
    let b = fleet_ids(&f.endpoint, "fleet-b").await;
    assert!(b.iter().all(|id| !acknowledged.contains(id)));
    f.kill9();

    let f = FakeEc2::serve(&args);
    assert_eq!(fleet_ids(&f.endpoint, "fleet-b").await, b);
    let all_ids: BTreeSet<String> = acknowledged.iter().chain(&b).cloned().collect();
    assert_eq!(described(&f.endpoint).await.into_keys().collect::<BTreeSet<_>>(), all_ids);
    drop(f);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// CreateFleet by `token`: its instance ids if answered 200, `None` if the connection was cut.
async fn try_fleet(endpoint: &str, token: &str) -> Option<Vec<String>> {
    let (status, xml) = ec2(endpoint, &fleet(token)).await.ok()?;
    assert_eq!(status, 200, "{xml}");
    Some(all(&xml, "item").into_iter().filter(|i| i.starts_with("i-")).collect())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_a_burst_of_create_fleet_loses_and_duplicates_nothing() {
    let dir = temp_dir("state-burst");
    let state = dir.join("state.json");
    let args = ["--seed", "9", "--state-file", state.to_str().unwrap()];
    let f = FakeEc2::serve(&args);
    // The burst is about persistence, not EC2's request rates.
    admin(&f.admin, reqwest::Method::POST, "/_fake/throttling", json!({"mode": "off"})).await;
    let lt = "Action=CreateLaunchTemplate&LaunchTemplateName=lt-1&LaunchTemplateData.ImageId=ami-0a0b0c0d0e0f10111";
    assert_eq!(ec2(&f.endpoint, lt).await.unwrap().0, 200);
    // Four clients launching as fast as they can, each remembering what was acknowledged and the
    // token of the call the kill cut off.
    let acked = Arc::new(Mutex::new(BTreeMap::<String, Vec<String>>::new()));
    let clients: Vec<_> = (0..4)
        .map(|c| {
            let (endpoint, acked) = (f.endpoint.clone(), acked.clone());
            tokio::spawn(async move {
                for i in 0.. {
                    let token = format!("burst-{c}-{i}");
                    match try_fleet(&endpoint, &token).await {
                        Some(ids) => acked.lock().unwrap().insert(token, ids),
                        None => return token,
                    };
                }
                unreachable!()
            })
        })
        .collect();
    let counter = acked.clone();
    eventually("forty acknowledged fleets", async || counter.lock().unwrap().len() >= 40).await;
    f.kill9();
    let mut cut = Vec::new();
    for c in clients {
        cut.push(c.await.unwrap());
    }
    let acked = acked.lock().unwrap().clone();

    let f = FakeEc2::serve(&args);
    admin(&f.admin, reqwest::Method::POST, "/_fake/throttling", json!({"mode": "off"})).await;
    let after = described(&f.endpoint).await;
    assert!(after.values().all(|n| *n == 1), "no instance twice: {after:?}");
    for (token, ids) in &acked {
        assert!(ids.iter().all(|id| after.contains_key(id)), "{token}: acknowledged {ids:?}, lost after restart");
        // A client retrying an acknowledged call gets the same instances back.
        assert_eq!(try_fleet(&f.endpoint, token).await.as_ref(), Some(ids), "{token}");
    }
    // The cut-off calls, retried with their tokens, get whatever the killed process had launched
    // for them (or a fresh launch): nothing is left running that no client knows about.
    let mut known: BTreeSet<String> = acked.values().flatten().cloned().collect();
    for token in &cut {
        known.extend(try_fleet(&f.endpoint, token).await.unwrap());
    }
    let now: BTreeMap<String, usize> = described(&f.endpoint).await;
    assert_eq!(now.keys().cloned().collect::<BTreeSet<_>>(), known, "every instance is one a client got back");
    drop(f);
    std::fs::remove_dir_all(&dir).unwrap();
}

async fn receive(endpoint: &str, url: &str) -> Vec<(String, String)> {
    let input = json!({"QueueUrl": url, "MaxNumberOfMessages": 10, "VisibilityTimeout": 600});
    let (status, v) = sqs(endpoint, "ReceiveMessage", input).await.unwrap();
    assert_eq!(status, 200, "{v}");
    let msgs = v["Messages"].as_array().cloned().unwrap_or_default();
    msgs.iter()
        .map(|m| (m["Body"].as_str().unwrap().to_owned(), m["ReceiptHandle"].as_str().unwrap().to_owned()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_sends_and_receives_keeps_every_acknowledged_message_once() {
    let dir = temp_dir("state-sqs");
    let state = dir.join("state.json");
    let args = ["--seed", "8", "--state-file", state.to_str().unwrap()];
    let f = FakeEc2::serve(&args);
    let (_, created) = sqs(&f.endpoint, "CreateQueue", json!({"QueueName": "work"})).await.unwrap();
    let url = created["QueueUrl"].as_str().unwrap().to_owned();
    let (_, created) = sqs(&f.endpoint, "CreateQueue", json!({"QueueName": "idle"})).await.unwrap();
    let idle = created["QueueUrl"].as_str().unwrap().to_owned();
    for i in 0..20 {
        let (status, _) =
            sqs(&f.endpoint, "SendMessage", json!({"QueueUrl": url, "MessageBody": format!("m{i}")})).await.unwrap();
        assert_eq!(status, 200);
    }
    // Received before the kill (and so in flight, with handles): three of them deleted.
    let in_flight = receive(&f.endpoint, &url).await;
    assert_eq!(in_flight.len(), 10);
    for (_, handle) in &in_flight[..3] {
        let (status, _) =
            sqs(&f.endpoint, "DeleteMessage", json!({"QueueUrl": url, "ReceiptHandle": handle})).await.unwrap();
        assert_eq!(status, 200);
    }
    // A long poll waiting on an empty queue, and a sender sending as fast as it can, both cut by
    // the kill.
    let endpoint = f.endpoint.clone();
    let idle_url = idle.clone();
    let long_poll = tokio::spawn(async move {
        sqs(&endpoint, "ReceiveMessage", json!({"QueueUrl": idle_url, "WaitTimeSeconds": 20})).await
    });
    let acked = Arc::new(Mutex::new(Vec::<String>::new()));
    let (endpoint, sender_url, sender_acked) = (f.endpoint.clone(), url.clone(), acked.clone());
    let sender = tokio::spawn(async move {
        for i in 20..100_000 {
            let body = format!("m{i}");
            match sqs(&endpoint, "SendMessage", json!({"QueueUrl": sender_url, "MessageBody": body})).await {
                Ok((200, _)) => sender_acked.lock().unwrap().push(body),
                _ => return body,
            }
        }
        String::new()
    });
    let counter = acked.clone();
    eventually("a hundred acknowledged sends", async || counter.lock().unwrap().len() >= 100).await;
    f.kill9();
    let unacknowledged = sender.await.unwrap();
    assert!(!unacknowledged.is_empty(), "the sender was cut off mid-send");
    assert!(long_poll.await.unwrap().is_err(), "the long poll was cut off");
    let acked: Vec<String> = acked.lock().unwrap().clone();

    let f = FakeEc2::serve(&args);
    let mut received: BTreeMap<String, usize> = BTreeMap::new();
    loop {
        let batch = receive(&f.endpoint, &url).await;
        if batch.is_empty() {
            break;
        }
        for (body, _) in batch {
            *received.entry(body).or_default() += 1;
        }
    }
    assert!(received.values().all(|n| *n == 1), "no message delivered twice: {received:?}");
    let before: BTreeSet<String> = (0..20).map(|i| format!("m{i}")).collect();
    let still_in_flight: BTreeSet<String> = in_flight[3..].iter().map(|(b, _)| b.clone()).collect();
    for body in before.iter().chain(&acked) {
        let delivered = received.contains_key(body);
        let in_flight_before = still_in_flight.contains(body);
        let deleted = in_flight[..3].iter().any(|(b, _)| b == body);
        assert_eq!(
            u8::from(delivered) + u8::from(in_flight_before) + u8::from(deleted),
            1,
            "{body}: acknowledged, so delivered now, still in flight or deleted, exactly one of them"
        );
    }
    let extra: Vec<&String> =
        received.keys().filter(|b| !before.contains(*b) && !acked.contains(b) && **b != unacknowledged).collect();
    assert!(extra.is_empty(), "nothing that was never sent: {extra:?}");
    // The handles given out before the kill still work.
    for (_, handle) in &in_flight[3..] {
        let (status, v) =
            sqs(&f.endpoint, "DeleteMessage", json!({"QueueUrl": url, "ReceiptHandle": handle})).await.unwrap();
        assert_eq!(status, 200, "{v}");
    }
    admin(&f.admin, reqwest::Method::POST, "/_fake/clock", json!({"advance_seconds": 3600})).await;
    let redelivered: Vec<String> = receive(&f.endpoint, &url).await.into_iter().map(|(b, _)| b).collect();
    let deleted_now: BTreeSet<&String> = still_in_flight.iter().collect();
    assert!(redelivered.iter().all(|b| !deleted_now.contains(b)), "deleted after restart: never again");
    let (status, _) =
        sqs(&f.endpoint, "ReceiveMessage", json!({"QueueUrl": idle, "WaitTimeSeconds": 0})).await.unwrap();
    assert_eq!(status, 200);
    drop(f);
    std::fs::remove_dir_all(&dir).unwrap();
}
