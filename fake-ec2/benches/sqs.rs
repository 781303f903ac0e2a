//! SQS throughput through aws-sdk-sqs against any endpoint (fake-ec2 or moto_server): sends per
//! second, then receive(10) + DeleteMessageBatch per second, each for a fixed time, with a few
//! concurrent clients. Prints one JSON line; bench/sqs_bench.py runs it against both servers.
//!
//! `cargo bench -p fake-ec2 --bench sqs -- --endpoint http://127.0.0.1:4566 [--seconds 5] [--clients 4]`
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use aws_sdk_sqs::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_sqs::types::DeleteMessageBatchRequestEntry;

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1).cloned())
}

#[tokio::main]
async fn main() {
    let Some(endpoint) = arg("--endpoint") else {
        eprintln!("sqs bench: pass --endpoint URL (bench/sqs_bench.py does)");
        return;
    };
    let seconds: u64 = arg("--seconds").and_then(|s| s.parse().ok()).unwrap_or(5);
    let clients: usize = arg("--clients").and_then(|s| s.parse().ok()).unwrap_or(4);
    let sqs = aws_sdk_sqs::Client::from_conf(
        aws_sdk_sqs::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-west-2"))
            .endpoint_url(&endpoint)
            .credentials_provider(Credentials::new("test", "test", None, None, "bench"))
            .build(),
    );
    let url = sqs.create_queue().queue_name("bench-rust").send().await.unwrap().queue_url.unwrap();
    let body = r#"{"version":"0","detail-type":"EC2 Spot Instance Interruption Warning","source":"aws.ec2","detail":{"instance-id":"i-0123456789abcdef0","instance-action":"terminate"}}"#;

    let sent = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let (sqs, url, sent) = (sqs.clone(), url.clone(), sent.clone());
        tasks.push(tokio::spawn(async move {
            while Instant::now() < deadline {
                sqs.send_message().queue_url(&url).message_body(body).send().await.unwrap();
                sent.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let send_secs = start.elapsed().as_secs_f64();
    let total_sent = sent.load(Ordering::Relaxed);

    let received = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let deadline = start + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let (sqs, url, received) = (sqs.clone(), url.clone(), received.clone());
        tasks.push(tokio::spawn(async move {
            while Instant::now() < deadline {
                let out = sqs
                    .receive_message()
                    .queue_url(&url)
                    .max_number_of_messages(10)
                    .visibility_timeout(30)
                    .send()
                    .await
                    .unwrap();
                let msgs = out.messages.unwrap_or_default();
                if msgs.is_empty() {
                    break;
                }
                let entries: Vec<_> = msgs
                    .iter()
                    .enumerate()
                    .map(|(i, m)| {
                        DeleteMessageBatchRequestEntry::builder()
                            .id(i.to_string())
                            .receipt_handle(m.receipt_handle.clone().unwrap())
                            .build()
                            .unwrap()
                    })
                    .collect();
                sqs.delete_message_batch().queue_url(&url).set_entries(Some(entries)).send().await.unwrap();
                received.fetch_add(msgs.len() as u64, Ordering::Relaxed);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let recv_secs = start.elapsed().as_secs_f64();
    let total_received = received.load(Ordering::Relaxed);
    println!(
        "{{\"clients\":{clients},\"sent\":{total_sent},\"send_per_s\":{:.1},\"received_deleted\":{total_received},\"receive_delete_per_s\":{:.1}}}",
        total_sent as f64 / send_secs,
        total_received as f64 / recv_secs
    );
}
