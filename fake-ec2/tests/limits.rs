//! Request size limits as AWS sets them, answered in each service's own format over a real
//! connection (never axum's plain-text 413, never a reset).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
use common::{Server, world};

const MIB: usize = 1024 * 1024;

fn signed(service: &str) -> String {
    format!(
        "AWS4-HMAC-SHA256 Credential=AKIDTEST/20260101/us-west-2/{service}/aws4_request, SignedHeaders=host, Signature=00"
    )
}

async fn post(server: &Server, headers: &[(&str, String)], body: Vec<u8>) -> (u16, reqwest::header::HeaderMap, String) {
    let mut r = reqwest::Client::new().post(&server.endpoint);
    for (k, v) in headers {
        r = r.header(*k, v);
    }
    let r = r.body(body).send().await.expect("an answer, not a reset connection");
    let (status, headers) = (r.status().as_u16(), r.headers().clone());
    (status, headers, r.text().await.unwrap())
}

#[tokio::test]
async fn a_body_over_the_cap_gets_each_services_own_error() {
    let server = Server::start(world(1)).await;
    let huge = |prefix: &str| {
        let mut b = prefix.as_bytes().to_vec();
        b.resize(11 * MIB, b'a');
        b
    };
    let form = ("content-type", "application/x-www-form-urlencoded".to_owned());
    let (status, _, xml) =
        post(&server, &[form.clone(), ("authorization", signed("ec2"))], huge("Action=RunInstances&UserData=")).await;
    assert_eq!(status, 400);
    assert!(xml.contains("<Response><Errors><Error><Code>InvalidParameterValue</Code>"), "{xml}");
    let json_headers = [
        ("content-type", "application/x-amz-json-1.0".to_owned()),
        ("x-amz-target", "AmazonSQS.SendMessage".to_owned()),
        ("authorization", signed("sqs")),
    ];
    let (status, headers, body) = post(&server, &json_headers, huge(r#"{"QueueUrl":"q","MessageBody":""#)).await;
    assert_eq!(status, 400);
    assert_eq!(headers["x-amzn-query-error"], "InvalidParameterValue;Sender");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["__type"], "com.amazonaws.sqs#InvalidParameterValue", "{body}");
    let batch = "Action=SendMessageBatch&Version=2012-11-05&QueueUrl=q&SendMessageBatchRequestEntry.1.MessageBody=";
    let (status, _, xml) = post(&server, &[form, ("authorization", signed("sqs"))], huge(batch)).await;
    assert_eq!(status, 400);
    assert!(xml.contains("<Code>AWS.SimpleQueueService.BatchRequestTooLong</Code>"), "{xml}");
    let fis = [("content-type", "application/json".to_owned()), ("authorization", signed("fis"))];
    let r = reqwest::Client::new()
        .post(format!("{}/experimentTemplates", server.endpoint))
        .header(fis[0].0, &fis[0].1)
        .header(fis[1].0, &fis[1].1)
        .body(huge("{"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(r.headers()["x-amzn-errortype"], "ValidationException");
}

#[tokio::test]
async fn sqs_takes_a_one_mib_message_and_refuses_more_as_sqs_does() {
    let server = Server::start(world(2)).await;
    let sqs = server.sqs();
    let url = sqs.create_queue().queue_name("big").send().await.unwrap().queue_url.unwrap();
    // Over axum's 2 MB default once JSON-escaped? No: 1 MiB of 'x' is 1 MiB on the wire; make it
    // bigger than 2 MB with characters JSON escapes (\u0001 is six bytes).
    let escaped = "\u{1}".repeat(400_000);
    let e = sqs.send_message().queue_url(&url).message_body(escaped).send().await.unwrap_err();
    assert_eq!(
        e.as_service_error().and_then(|e| aws_sdk_sqs::error::ProvideErrorMetadata::code(e)),
        Some("InvalidMessageContents")
    );
    let full = "x".repeat(MIB);
    assert!(sqs.send_message().queue_url(&url).message_body(&full).send().await.is_ok(), "1 MiB is allowed");
    let e = sqs.send_message().queue_url(&url).message_body(format!("{full}x")).send().await.unwrap_err();
    assert_eq!(
        e.as_service_error().and_then(|e| aws_sdk_sqs::error::ProvideErrorMetadata::code(e)),
        Some("InvalidParameterValue")
    );
    let entry =
        |id: &str| SendMessageBatchRequestEntry::builder().id(id).message_body("y".repeat(600 * 1024)).build().unwrap();
    let e = sqs.send_message_batch().queue_url(&url).entries(entry("a")).entries(entry("b")).send().await.unwrap_err();
    assert_eq!(
        e.as_service_error().and_then(|e| aws_sdk_sqs::error::ProvideErrorMetadata::code(e)),
        Some("AWS.SimpleQueueService.BatchRequestTooLong")
    );
}

#[tokio::test]
async fn ec2_user_data_is_limited_to_16_kib() {
    let server = Server::start(world(3)).await;
    let ec2 = server.ec2();
    use base64::Engine;
    let over = base64::engine::general_purpose::STANDARD.encode(vec![b'#'; 16 * 1024 + 1]);
    let e = ec2
        .run_instances()
        .image_id("ami-0a0b0c0d0e0f10111")
        .instance_type(aws_sdk_ec2::types::InstanceType::M5Large)
        .min_count(1)
        .max_count(1)
        .user_data(over)
        .send()
        .await
        .unwrap_err();
    assert_eq!(e.as_service_error().map(common::code).as_deref(), Some("InvalidUserData.Malformed"));
    let at = base64::engine::general_purpose::STANDARD.encode(vec![b'#'; 16 * 1024]);
    let ok = ec2
        .run_instances()
        .image_id("ami-0a0b0c0d0e0f10111")
        .instance_type(aws_sdk_ec2::types::InstanceType::M5Large)
        .min_count(1)
        .max_count(1)
        .user_data(at)
        .send()
        .await;
    assert!(ok.is_ok(), "{ok:?}");
}

#[tokio::test]
async fn a_queue_kept_to_the_former_256_kib_limit_refuses_more_and_batches_stop_at_ten() {
    use aws_sdk_sqs::error::ProvideErrorMetadata;
    use aws_sdk_sqs::types::QueueAttributeName;
    let server = Server::start(world(4)).await;
    let sqs = server.sqs();
    let url = sqs
        .create_queue()
        .queue_name("small")
        .attributes(QueueAttributeName::MaximumMessageSize, "262144")
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    assert!(sqs.send_message().queue_url(&url).message_body("x".repeat(262_144)).send().await.is_ok());
    let e = sqs.send_message().queue_url(&url).message_body("x".repeat(262_145)).send().await.unwrap_err();
    assert_eq!(e.as_service_error().and_then(|e| e.code()), Some("InvalidParameterValue"));
    let entries: Vec<_> = (0..11)
        .map(|i| SendMessageBatchRequestEntry::builder().id(format!("e{i}")).message_body("y").build().unwrap())
        .collect();
    let e = sqs.send_message_batch().queue_url(&url).set_entries(Some(entries)).send().await.unwrap_err();
    assert_eq!(
        e.as_service_error().and_then(|e| e.code()),
        Some("AWS.SimpleQueueService.TooManyEntriesInBatchRequest")
    );
}
