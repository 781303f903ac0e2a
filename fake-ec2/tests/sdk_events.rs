//! EventBridge events routed into the built-in SQS, consumed with aws-sdk-sqs exactly as
//! Karpenter's interruption controller does (GetQueueUrl once, then ReceiveMessage with
//! MaxNumberOfMessages 10, VisibilityTimeout 20, WaitTimeSeconds 20 — shorter waits here), plus a
//! snapshot of a deterministic event timeline.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::{Duration, Instant};

use aws_sdk_ec2::types::{InstanceMarketOptionsRequest, InstanceType, MarketType, SpotMarketOptions};
use aws_sdk_sqs::types::MessageSystemAttributeName;
use common::{Server, call, world};
use fake_ec2::server::AppState;
use serde_json::{Value, json};

const AMI: &str = "ami-0a0b0c0d0e0f10111";
const SUBNET_A: &str = "subnet-0a1a1a1a1a1a1a1a1";
const QUEUE: &str = "karpenter-interruption";

/// Karpenter's receive loop, until `n` messages arrived (each deleted, as Karpenter does after
/// handling) or the deadline passes. Returns the bodies, parsed.
async fn receive(c: &aws_sdk_sqs::Client, url: &str, n: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut out = Vec::new();
    while out.len() < n && Instant::now() < deadline {
        let r = c
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .visibility_timeout(20)
            .wait_time_seconds(1)
            .message_system_attribute_names(MessageSystemAttributeName::SentTimestamp)
            .message_attribute_names("All")
            .send()
            .await
            .unwrap();
        for m in r.messages() {
            out.push(serde_json::from_str(m.body().unwrap()).unwrap());
            c.delete_message().queue_url(url).receipt_handle(m.receipt_handle().unwrap()).send().await.unwrap();
        }
    }
    assert_eq!(out.len(), n, "messages: {out:#?}");
    out
}

/// The fields Karpenter's parser reads, checked for every message.
fn check_envelope(v: &Value) {
    assert_eq!(v["version"], "0");
    assert_eq!(v["account"], "123456789012");
    assert_eq!(v["region"], "us-west-2");
    assert_eq!(v["id"].as_str().unwrap().len(), 36);
    chrono::DateTime::parse_from_rfc3339(v["time"].as_str().unwrap()).expect("time is RFC 3339");
    let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    let mut expected = ["version", "id", "detail-type", "source", "account", "time", "region", "resources", "detail"];
    expected.sort_unstable();
    let mut got = keys.clone();
    got.sort_unstable();
    assert_eq!(got, expected);
}

fn summary(v: &Value) -> (String, String, String) {
    check_envelope(v);
    let d = &v["detail"];
    let what = d["state"].as_str().or(d["instance-action"].as_str()).unwrap_or_default();
    (
        v["detail-type"].as_str().unwrap().to_owned(),
        d["instance-id"].as_str().unwrap_or_default().to_owned(),
        what.to_owned(),
    )
}

async fn admin(s: &Server, path: &str, body: Value) -> Value {
    let r = reqwest::Client::new().post(format!("{}{path}", s.endpoint)).json(&body).send().await.unwrap();
    assert!(r.status().is_success(), "{path}: {}", r.status());
    r.json().await.unwrap()
}

async fn launch_spot(s: &Server) -> String {
    let run = s
        .ec2()
        .run_instances()
        .image_id(AMI)
        .instance_type(InstanceType::M5Large)
        .min_count(1)
        .max_count(1)
        .subnet_id(SUBNET_A)
        .instance_market_options(
            InstanceMarketOptionsRequest::builder()
                .market_type(MarketType::Spot)
                .spot_options(SpotMarketOptions::builder().build())
                .build(),
        )
        .send()
        .await
        .unwrap();
    run.instances()[0].instance_id().unwrap().to_owned()
}

#[tokio::test]
async fn launch_interrupt_and_health_event_reach_the_queue_as_karpenter_reads_them() {
    let s = Server::start(world(1)).await;
    let c = s.sqs();
    let url = c.get_queue_url().queue_name(QUEUE).send().await.unwrap().queue_url.unwrap();
    let id = launch_spot(&s).await;

    // Launch: pending now, running after the boot time.
    let got = receive(&c, &url, 1).await;
    assert_eq!(summary(&got[0]), ("EC2 Instance State-change Notification".into(), id.clone(), "pending".into()));
    assert_eq!(got[0]["source"], "aws.ec2");
    assert_eq!(got[0]["time"], "2026-01-01T00:00:00Z");
    assert_eq!(got[0]["resources"], json!([format!("arn:aws:ec2:us-west-2:123456789012:instance/{id}")]));
    s.advance(15);
    let got = receive(&c, &url, 1).await;
    assert_eq!(summary(&got[0]).2, "running");
    assert_eq!(got[0]["time"], "2026-01-01T00:00:15Z");

    // Interrupt: rebalance and warning now; two minutes later the instance goes.
    let r = admin(&s, "/_fake/interrupt", json!({"instance_ids": [id], "rebalance": true})).await;
    assert_eq!(r["interrupted"][0]["action"], "terminate");
    assert_eq!(r["interrupted"][0]["reclaim_at"], "2026-01-01T00:02:15.000Z");
    let got = receive(&c, &url, 2).await;
    assert_eq!(summary(&got[0]), ("EC2 Instance Rebalance Recommendation".into(), id.clone(), String::new()));
    assert_eq!(got[0]["detail"], json!({"instance-id": id}));
    assert_eq!(summary(&got[1]), ("EC2 Spot Instance Interruption Warning".into(), id.clone(), "terminate".into()));
    assert_eq!(got[1]["source"], "aws.ec2");
    s.advance(119);
    assert_eq!(receive(&c, &url, 0).await.len(), 0);
    s.advance(1);
    let got = receive(&c, &url, 1).await;
    assert_eq!(summary(&got[0]).2, "shutting-down");
    assert_eq!(got[0]["time"], "2026-01-01T00:02:15Z");
    s.advance(10);
    let got = receive(&c, &url, 1).await;
    assert_eq!(summary(&got[0]).2, "terminated");
    let d = s.ec2().describe_instances().instance_ids(&id).send().await.unwrap();
    let inst = &d.reservations()[0].instances()[0];
    assert_eq!(inst.state_reason().and_then(|r| r.code()), Some("Server.SpotInstanceTermination"));

    // A Health scheduled change for a second instance.
    let other = launch_spot(&s).await;
    receive(&c, &url, 1).await;
    admin(
        &s,
        "/_fake/health-event",
        json!({"instance_ids": [other], "event_type_code": "AWS_EC2_INSTANCE_RETIREMENT_SCHEDULED", "start_in_seconds": 86400}),
    )
    .await;
    let got = receive(&c, &url, 1).await;
    let h = &got[0];
    check_envelope(h);
    assert_eq!(h["source"], "aws.health");
    assert_eq!(h["detail-type"], "AWS Health Event");
    assert_eq!(h["detail"]["service"], "EC2");
    assert_eq!(h["detail"]["eventTypeCategory"], "scheduledChange");
    assert_eq!(h["detail"]["eventTypeCode"], "AWS_EC2_INSTANCE_RETIREMENT_SCHEDULED");
    assert_eq!(h["detail"]["affectedEntities"], json!([{"entityValue": other}]));
    assert_eq!(h["detail"]["startTime"], "Fri, 02 Jan 2026 00:02:25 GMT");
    let status =
        s.ec2().describe_instance_status().instance_ids(&other).include_all_instances(true).send().await.unwrap();
    let events = status.instance_statuses()[0].events();
    assert_eq!(events[0].code().map(|c| c.as_str()), Some("instance-retirement"));

    // The log has every event in order, with where each went.
    let log = reqwest::get(format!("{}/_fake/events/log", s.endpoint)).await.unwrap().text().await.unwrap();
    let lines: Vec<Value> = log.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 8);
    assert!(lines.iter().enumerate().all(|(i, l)| l["seq"] == json!(i + 1)));
    assert_eq!(lines[2]["deliveries"][0]["rule"], "RebalanceRule");
    assert_eq!(lines[2]["deliveries"][0]["target"], QUEUE);
    let since = reqwest::get(format!("{}/_fake/events/log?since=6", s.endpoint)).await.unwrap().text().await.unwrap();
    assert_eq!(since.lines().count(), 2);
}

#[tokio::test]
async fn lowering_a_pools_capacity_reclaims_instances_through_the_interruption_sequence() {
    let s = Server::start(world(4)).await;
    let c = s.sqs();
    let url = c.get_queue_url().queue_name(QUEUE).send().await.unwrap().queue_url.unwrap();
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(launch_spot(&s).await);
    }
    s.advance(15);
    receive(&c, &url, 6).await;
    let r = admin(&s, "/_fake/pools", json!({"instance_type": "m5.large", "zone": "us-west-2a", "capacity": 1})).await;
    let victims: Vec<String> =
        r["interrupted"].as_array().unwrap().iter().map(|v| v["instance_id"].as_str().unwrap().to_owned()).collect();
    assert_eq!(victims.len(), 2);
    let got = receive(&c, &url, 4).await;
    let warned: Vec<String> = got
        .iter()
        .filter(|v| v["detail-type"] == "EC2 Spot Instance Interruption Warning")
        .map(|v| v["detail"]["instance-id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(warned, victims);
    s.advance(130);
    let got = receive(&c, &url, 4).await;
    let states: Vec<(String, String)> = got
        .iter()
        .map(|v| {
            (v["detail"]["instance-id"].as_str().unwrap().to_owned(), v["detail"]["state"].as_str().unwrap().to_owned())
        })
        .collect();
    assert_eq!(
        states,
        [
            (victims[0].clone(), "shutting-down".into()),
            (victims[1].clone(), "shutting-down".into()),
            (victims[0].clone(), "terminated".into()),
            (victims[1].clone(), "terminated".into()),
        ]
    );
}

/// A small scenario on a manual clock: three launches (one fails all-or-nothing and leaves no
/// trace), an interruption with a longer duration, a Health event, a user termination.
fn scenario(seed: u64) -> (String, Vec<String>) {
    let state = AppState::new(world(seed));
    let run = |n: u32, market: &str| {
        let body = format!(
            "Action=RunInstances&Version=2016-11-15&ImageId={AMI}&InstanceType=m5.large&MinCount={n}&MaxCount={n}&SubnetId={SUBNET_A}{market}"
        );
        let (status, xml) = call(&state, &body);
        (status, common::all(&xml, "instanceId"))
    };
    let spot =
        "&InstanceMarketOptions.MarketType=spot&InstanceMarketOptions.SpotOptions.InstanceInterruptionBehavior=stop";
    let (_, a) = run(1, spot);
    let (_, b) = run(1, "");
    {
        let mut w = state.cloud();
        let pool = w.ec2.pool_of("m5.large", "us-west-2a").unwrap();
        w.ec2.pools.set_capacity(fake_ec2::world::pools::CapacityType::Spot, pool, 2);
    }
    let (status, _) = run(3, spot);
    assert_eq!(status, 500, "all or nothing: not enough spot capacity");
    let advance = |secs: i64| {
        let mut w = state.cloud();
        w.clock.advance(secs * 1000);
        w.sync();
    };
    advance(15);
    {
        let mut w = state.cloud();
        let opts =
            fake_ec2::world::interruption::InterruptOptions { duration_seconds: Some(180), ..Default::default() };
        w.interrupt(&a[0], opts).unwrap();
        w.health_event(&b, "AWS_EC2_INSTANCE_STOP_SCHEDULED", 600, Some(3600)).unwrap();
    }
    advance(60);
    call(&state, &format!("Action=TerminateInstances&Version=2016-11-15&InstanceId.1={}", b[0]));
    for _ in 0..5 {
        advance(30);
    }
    let mut w = state.cloud();
    w.sync();
    let log: String = w.events.log_since(0).map(|l| format!("{l}\n")).collect();
    let bodies = w.sqs.get(QUEUE).unwrap().messages().map(|m| format!("{} {}", m.id, m.body)).collect();
    (log, bodies)
}

#[test]
fn same_seed_same_event_bytes() {
    let (log1, bodies1) = scenario(11);
    let (log2, bodies2) = scenario(11);
    assert_eq!(log1, log2);
    assert_eq!(bodies1, bodies2);
    assert_eq!(bodies1.len(), log1.lines().count(), "every event reached the queue");
    let (log3, _) = scenario(12);
    assert_ne!(log1, log3, "ids come from the seed");
}

#[test]
fn event_timeline_snapshot() {
    let (log, _) = scenario(11);
    let start = 1_767_225_600_000_i64;
    let timeline: Vec<String> = log
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            let e = &v["event"];
            let d = &e["detail"];
            let subject = d["instance-id"]
                .as_str()
                .map(str::to_owned)
                .unwrap_or_else(|| format!("{} {}", d["eventTypeCode"].as_str().unwrap(), d["affectedEntities"]));
            let what = d["state"].as_str().or(d["instance-action"].as_str()).unwrap_or("-");
            let rules: Vec<&str> =
                v["deliveries"].as_array().unwrap().iter().map(|d| d["rule"].as_str().unwrap()).collect();
            format!(
                "+{:>4}s #{} {} | {} | {} | {} -> {}",
                (v["at_ms"].as_i64().unwrap() - start) / 1000,
                v["seq"],
                e["id"].as_str().unwrap(),
                e["detail-type"].as_str().unwrap(),
                subject,
                what,
                rules.join(",")
            )
        })
        .collect();
    insta::assert_snapshot!(timeline.join("\n"));
}

#[tokio::test]
async fn events_are_forwarded_to_an_external_sqs_endpoint() {
    // Another fake-ec2 plays the external SQS (as moto_server or LocalStack would).
    let external = Server::start(world(2)).await;
    let ext = external.sqs();
    let url = ext.create_queue().queue_name("forwarded").send().await.unwrap().queue_url.unwrap();
    let target = url.clone();
    let s = Server::start(common::world_with(3, move |cfg| {
        cfg.rules.push(fake_ec2::events::RuleConfig {
            name: "ToExternal".into(),
            pattern: json!({"source": ["aws.ec2"], "detail-type": ["EC2 Spot Instance Interruption Warning"]}),
            targets: vec![target],
        });
    }))
    .await;
    let id = launch_spot(&s).await;
    admin(&s, "/_fake/interrupt", json!({"instance_ids": [id], "rebalance": false})).await;
    let got = receive(&ext, &url, 1).await;
    assert_eq!(summary(&got[0]), ("EC2 Spot Instance Interruption Warning".into(), id.clone(), "terminate".into()));
    // The built-in queue got it too, through the default world's rule.
    let local = s.sqs();
    let local_url = local.get_queue_url().queue_name(QUEUE).send().await.unwrap().queue_url.unwrap();
    let got = receive(&local, &local_url, 2).await;
    assert_eq!(got[1]["detail-type"], "EC2 Spot Instance Interruption Warning");
    let log = reqwest::get(format!("{}/_fake/events/log?since=1", s.endpoint)).await.unwrap().text().await.unwrap();
    let line: Value = serde_json::from_str(log.lines().next().unwrap()).unwrap();
    assert_eq!(line["deliveries"][1], json!({"rule": "ToExternal", "target": url}));
    let want = json!({"queued": 1, "delivered": 1, "failed": 0});
    assert_eq!(forwarded_once(&s, &want, Duration::from_secs(10)).await, want);
}

/// The forwarder's counts once they equal `want`, or as they are when `timeout` has passed.
async fn forwarded_once(s: &Server, want: &Value, timeout: Duration) -> Value {
    let deadline = Instant::now() + timeout;
    loop {
        let now: Value =
            reqwest::get(format!("{}/_fake/events/forwarded", s.endpoint)).await.unwrap().json().await.unwrap();
        if now == *want || Instant::now() > deadline {
            return now;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn an_event_the_external_endpoint_never_takes_is_counted_as_failed() {
    // A port nothing listens on: every send is refused, retried, then given up on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let target = format!("http://{closed}/123456789012/nowhere");
    let s = Server::start(common::world_with(4, move |cfg| {
        cfg.rules.push(fake_ec2::events::RuleConfig {
            name: "ToNowhere".into(),
            pattern: json!({"source": ["aws.ec2"], "detail-type": ["EC2 Spot Instance Interruption Warning"]}),
            targets: vec![target],
        });
    }))
    .await;
    let id = launch_spot(&s).await;
    admin(&s, "/_fake/interrupt", json!({"instance_ids": [id], "rebalance": false})).await;
    let want = json!({"queued": 1, "delivered": 0, "failed": 1});
    assert_eq!(forwarded_once(&s, &want, Duration::from_secs(60)).await, want);
}
