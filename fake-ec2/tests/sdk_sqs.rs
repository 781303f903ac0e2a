//! The built-in SQS through the real aws-sdk-sqs client (AWS JSON 1.0) against a spawned fake-ec2:
//! every action, Karpenter's receive, long polls, visibility, redrive, MD5s, error codes, and an
//! at-least-once run with concurrent consumers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use aws_sdk_sqs::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_sqs::error::ProvideErrorMetadata;
use aws_sdk_sqs::primitives::Blob;
use aws_sdk_sqs::types::{
    ChangeMessageVisibilityBatchRequestEntry, DeleteMessageBatchRequestEntry, MessageAttributeValue,
    MessageSystemAttributeName, QueueAttributeName, SendMessageBatchRequestEntry,
};
use common::{Server, world, world_with};
use fake_ec2::sqs::{AttributeValue, MessageAttributes};
use md5::{Digest, Md5};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tokio::sync::Mutex;

const ACCOUNT: &str = "123456789012";

fn code<E: ProvideErrorMetadata>(e: &E) -> String {
    e.code().unwrap_or("<none>").to_owned()
}

fn md5_hex(b: &[u8]) -> String {
    hex::encode(Md5::digest(b))
}

/// MD5OfMessageAttributes as the SQS Developer Guide documents it, written here independently.
fn md5_of_attributes(attrs: &BTreeMap<String, MessageAttributeValue>) -> String {
    fn put(buf: &mut Vec<u8>, b: &[u8]) {
        buf.extend_from_slice(&(b.len() as u32).to_be_bytes());
        buf.extend_from_slice(b);
    }
    let mut buf = Vec::new();
    for (name, v) in attrs {
        put(&mut buf, name.as_bytes());
        put(&mut buf, v.data_type().as_bytes());
        if let Some(b) = v.binary_value() {
            buf.push(2);
            put(&mut buf, b.as_ref());
        } else {
            buf.push(1);
            put(&mut buf, v.string_value().unwrap_or_default().as_bytes());
        }
    }
    md5_hex(&buf)
}

async fn queue_attr(c: &aws_sdk_sqs::Client, url: &str, name: QueueAttributeName) -> String {
    let out = c.get_queue_attributes().queue_url(url).attribute_names(name.clone()).send().await.unwrap();
    out.attributes().and_then(|a| a.get(&name)).cloned().unwrap_or_default()
}

async fn counts(c: &aws_sdk_sqs::Client, url: &str) -> (u64, u64, u64) {
    let out = c.get_queue_attributes().queue_url(url).attribute_names(QueueAttributeName::All).send().await.unwrap();
    let a = out.attributes().unwrap();
    let n = |k: QueueAttributeName| a.get(&k).unwrap().parse::<u64>().unwrap();
    (
        n(QueueAttributeName::ApproximateNumberOfMessages),
        n(QueueAttributeName::ApproximateNumberOfMessagesNotVisible),
        n(QueueAttributeName::ApproximateNumberOfMessagesDelayed),
    )
}

#[tokio::test]
async fn queue_lifecycle_actions() {
    let s = Server::start(world(1)).await;
    let c = s.sqs();
    let url = c
        .create_queue()
        .queue_name("orders")
        .attributes(QueueAttributeName::VisibilityTimeout, "45")
        .tags("team", "infra")
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    assert_eq!(url, format!("{}/{ACCOUNT}/orders", s.endpoint));
    // Idempotent with the same attributes, refused with others.
    let again = c.create_queue().queue_name("orders").attributes(QueueAttributeName::VisibilityTimeout, "45");
    assert_eq!(again.send().await.unwrap().queue_url.unwrap(), url);
    let e = c
        .create_queue()
        .queue_name("orders")
        .attributes(QueueAttributeName::VisibilityTimeout, "10")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "QueueAlreadyExists");
    assert!(e.into_service_error().is_queue_name_exists());

    assert_eq!(c.get_queue_url().queue_name("orders").send().await.unwrap().queue_url.unwrap(), url);
    for n in ["orders-dlq", "payments", "orders-b"] {
        c.create_queue().queue_name(n).send().await.unwrap();
    }
    let all = c.list_queues().send().await.unwrap();
    // The default world declares karpenter-interruption.
    assert_eq!(all.queue_urls().len(), 5);
    assert!(all.next_token().is_none());
    let page1 = c.list_queues().queue_name_prefix("orders").max_results(2).send().await.unwrap();
    assert_eq!(page1.queue_urls(), [url.clone(), format!("{}/{ACCOUNT}/orders-b", s.endpoint)]);
    let token = page1.next_token().unwrap();
    let page2 = c.list_queues().queue_name_prefix("orders").max_results(2).next_token(token).send().await.unwrap();
    assert_eq!(page2.queue_urls(), [format!("{}/{ACCOUNT}/orders-dlq", s.endpoint)]);
    assert!(page2.next_token().is_none());

    let attrs = c.get_queue_attributes().queue_url(&url).attribute_names(QueueAttributeName::All).send().await.unwrap();
    let a = attrs.attributes().unwrap();
    assert_eq!(a[&QueueAttributeName::QueueArn], format!("arn:aws:sqs:us-west-2:{ACCOUNT}:orders"));
    assert_eq!(a[&QueueAttributeName::VisibilityTimeout], "45");
    assert_eq!(a[&QueueAttributeName::MessageRetentionPeriod], "345600");
    assert_eq!(a[&QueueAttributeName::CreatedTimestamp], "1767225600");
    c.set_queue_attributes()
        .queue_url(&url)
        .attributes(QueueAttributeName::DelaySeconds, "5")
        .attributes(QueueAttributeName::ReceiveMessageWaitTimeSeconds, "2")
        .send()
        .await
        .unwrap();
    assert_eq!(queue_attr(&c, &url, QueueAttributeName::DelaySeconds).await, "5");
    let e = c
        .set_queue_attributes()
        .queue_url(&url)
        .attributes(QueueAttributeName::DelaySeconds, "901")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "InvalidAttributeValue");

    let tags = c.list_queue_tags().queue_url(&url).send().await.unwrap();
    assert_eq!(tags.tags().unwrap()["team"], "infra");
    c.tag_queue().queue_url(&url).tags("env", "test").send().await.unwrap();
    c.untag_queue().queue_url(&url).tag_keys("team").send().await.unwrap();
    let tags = c.list_queue_tags().queue_url(&url).send().await.unwrap();
    assert_eq!(tags.tags().unwrap().keys().collect::<Vec<_>>(), ["env"]);

    c.send_message().queue_url(&url).message_body("x").send().await.unwrap();
    assert_eq!(counts(&c, &url).await, (0, 0, 1), "queue DelaySeconds applies");
    c.purge_queue().queue_url(&url).send().await.unwrap();
    assert_eq!(counts(&c, &url).await, (0, 0, 0));
    let e = c.purge_queue().queue_url(&url).send().await.unwrap_err();
    assert_eq!(code(&e), "AWS.SimpleQueueService.PurgeQueueInProgress");

    c.delete_queue().queue_url(&url).send().await.unwrap();
    let e = c.get_queue_url().queue_name("orders").send().await.unwrap_err();
    assert_eq!(code(&e), "AWS.SimpleQueueService.NonExistentQueue");
    assert!(e.into_service_error().is_queue_does_not_exist());
    let e = c.send_message().queue_url(&url).message_body("x").send().await.unwrap_err();
    assert!(e.into_service_error().is_queue_does_not_exist());
    let e = c.create_queue().queue_name("orders").send().await.unwrap_err();
    assert_eq!(code(&e), "AWS.SimpleQueueService.QueueDeletedRecently");
    s.advance(61);
    c.create_queue().queue_name("orders").send().await.unwrap();
}

#[tokio::test]
async fn messages_attributes_and_md5s() {
    let s = Server::start(world(2)).await;
    let c = s.sqs();
    let url = c.create_queue().queue_name("q").send().await.unwrap().queue_url.unwrap();
    let mut attrs = BTreeMap::new();
    attrs.insert(
        "kind".to_owned(),
        MessageAttributeValue::builder().data_type("String").string_value("spot").build().unwrap(),
    );
    attrs.insert(
        "count".to_owned(),
        MessageAttributeValue::builder().data_type("Number").string_value("42").build().unwrap(),
    );
    attrs.insert(
        "blob".to_owned(),
        MessageAttributeValue::builder()
            .data_type("Binary")
            .binary_value(Blob::new(vec![0u8, 1, 254, 255]))
            .build()
            .unwrap(),
    );
    attrs.insert(
        "label".to_owned(),
        MessageAttributeValue::builder().data_type("String.custom").string_value("ünïcødé ✓").build().unwrap(),
    );
    let body = "{\"detail-type\":\"EC2 Spot Instance Interruption Warning\"}\r\nline two";
    let sent = c
        .send_message()
        .queue_url(&url)
        .message_body(body)
        .set_message_attributes(Some(attrs.clone().into_iter().collect()))
        .send()
        .await
        .unwrap();
    assert_eq!(sent.md5_of_message_body(), Some(md5_hex(body.as_bytes()).as_str()));
    assert_eq!(sent.md5_of_message_attributes(), Some(md5_of_attributes(&attrs).as_str()));
    let id = sent.message_id().unwrap().to_owned();

    let got = c
        .receive_message()
        .queue_url(&url)
        .message_system_attribute_names(MessageSystemAttributeName::All)
        .message_attribute_names("All")
        .send()
        .await
        .unwrap();
    let m = &got.messages()[0];
    assert_eq!(m.message_id(), Some(id.as_str()));
    assert_eq!(m.body(), Some(body));
    assert_eq!(m.md5_of_body(), Some(md5_hex(body.as_bytes()).as_str()));
    let back: BTreeMap<String, MessageAttributeValue> =
        m.message_attributes().unwrap().iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    assert_eq!(back, attrs);
    assert_eq!(m.md5_of_message_attributes(), Some(md5_of_attributes(&attrs).as_str()));
    let sys = m.attributes().unwrap();
    assert_eq!(sys[&MessageSystemAttributeName::SentTimestamp], "1767225600000");
    assert_eq!(sys[&MessageSystemAttributeName::ApproximateReceiveCount], "1");
    assert_eq!(sys[&MessageSystemAttributeName::ApproximateFirstReceiveTimestamp], "1767225600000");
    assert_eq!(sys[&MessageSystemAttributeName::SenderId], ACCOUNT);

    // A subset of attributes comes back with the MD5 of that subset.
    c.change_message_visibility()
        .queue_url(&url)
        .receipt_handle(m.receipt_handle().unwrap())
        .visibility_timeout(0)
        .send()
        .await
        .unwrap();
    let got = c.receive_message().queue_url(&url).message_attribute_names("kind").send().await.unwrap();
    let m = &got.messages()[0];
    let kind: BTreeMap<String, MessageAttributeValue> =
        attrs.iter().filter(|(k, _)| *k == "kind").map(|(k, v)| (k.clone(), v.clone())).collect();
    assert_eq!(m.message_attributes().unwrap().len(), 1);
    assert_eq!(m.md5_of_message_attributes(), Some(md5_of_attributes(&kind).as_str()));
    assert!(m.attributes().is_none(), "no system attributes unless asked");
    c.delete_message().queue_url(&url).receipt_handle(m.receipt_handle().unwrap()).send().await.unwrap();

    // Batches: per-entry failures, batch-level errors.
    let entry =
        |id: &str, body: &str| SendMessageBatchRequestEntry::builder().id(id).message_body(body).build().unwrap();
    let bad_attr = SendMessageBatchRequestEntry::builder()
        .id("bad")
        .message_body("b")
        .message_attributes(
            "n",
            MessageAttributeValue::builder().data_type("Number").string_value("NaN-ish").build().unwrap(),
        )
        .build()
        .unwrap();
    let out = c
        .send_message_batch()
        .queue_url(&url)
        .entries(entry("a", "one"))
        .entries(bad_attr)
        .entries(
            SendMessageBatchRequestEntry::builder().id("c").message_body("three").delay_seconds(30).build().unwrap(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(out.successful().iter().map(|e| e.id()).collect::<Vec<_>>(), ["a", "c"]);
    assert_eq!(out.successful()[0].md5_of_message_body(), md5_hex(b"one"));
    assert_eq!(out.failed().len(), 1);
    assert_eq!(
        (out.failed()[0].id(), out.failed()[0].code(), out.failed()[0].sender_fault()),
        ("bad", "InvalidParameterValue", true)
    );
    assert_eq!(counts(&c, &url).await, (1, 0, 1));

    let e = c.send_message_batch().queue_url(&url).set_entries(Some(vec![])).send().await.unwrap_err();
    assert_eq!(code(&e), "AWS.SimpleQueueService.EmptyBatchRequest");
    let eleven: Vec<_> = (0..11).map(|i| entry(&format!("e{i}"), "x")).collect();
    let e = c.send_message_batch().queue_url(&url).set_entries(Some(eleven)).send().await.unwrap_err();
    assert_eq!(code(&e), "AWS.SimpleQueueService.TooManyEntriesInBatchRequest");
    assert!(e.into_service_error().is_too_many_entries_in_batch_request());
    let e = c
        .send_message_batch()
        .queue_url(&url)
        .entries(entry("d", "x"))
        .entries(entry("d", "y"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "AWS.SimpleQueueService.BatchEntryIdsNotDistinct");
    let e = c.send_message_batch().queue_url(&url).entries(entry("no spaces", "x")).send().await.unwrap_err();
    assert_eq!(code(&e), "AWS.SimpleQueueService.InvalidBatchEntryId");

    // Limits on single messages.
    let e = c.send_message().queue_url(&url).message_body("x".repeat(1_048_577)).send().await.unwrap_err();
    assert_eq!(code(&e), "InvalidParameterValue");
    let e = c.send_message().queue_url(&url).message_body("bad \u{1} char").send().await.unwrap_err();
    assert_eq!(code(&e), "InvalidMessageContents");
    let e = c.receive_message().queue_url(&url).max_number_of_messages(11).send().await.unwrap_err();
    assert_eq!(code(&e), "InvalidParameterValue");
    let e = c.receive_message().queue_url(&url).wait_time_seconds(21).send().await.unwrap_err();
    assert_eq!(code(&e), "InvalidParameterValue");
    let e = c
        .create_queue()
        .queue_name("jobs.fifo")
        .attributes(QueueAttributeName::FifoQueue, "true")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "AWS.SimpleQueueService.UnsupportedOperation");
}

#[tokio::test]
async fn karpenter_receives_interruption_events() {
    let s = Server::start(world(3)).await;
    let c = s.sqs();
    // Karpenter: GetQueueUrl(INTERRUPTION_QUEUE) once, then the receive loop.
    let url = c.get_queue_url().queue_name("karpenter-interruption").send().await.unwrap().queue_url.unwrap();
    assert_eq!(queue_attr(&c, &url, QueueAttributeName::MessageRetentionPeriod).await, "300");
    let event = r#"{"version":"0","id":"1e5527d7-bb36-4607-3370-4164db56a40e","detail-type":"EC2 Spot Instance Interruption Warning","source":"aws.ec2","account":"123456789012","time":"2026-01-01T00:00:00Z","region":"us-west-2","resources":["arn:aws:ec2:us-west-2:instance/i-0123456789abcdef0"],"detail":{"instance-id":"i-0123456789abcdef0","instance-action":"terminate"}}"#;
    let sent_id = {
        // The event bus's way in: the Rust API on the world, under the same lock and clock.
        let mut w = s.state.cloud();
        let now = w.now();
        let w = &mut *w;
        w.sqs.send("karpenter-interruption", event, MessageAttributes::new(), now, &mut w.rng.sqs).unwrap().message_id
    };
    let started = Instant::now();
    let out = c
        .receive_message()
        .queue_url(&url)
        .max_number_of_messages(10)
        .visibility_timeout(20)
        .wait_time_seconds(20)
        .message_system_attribute_names(MessageSystemAttributeName::SentTimestamp)
        .message_attribute_names("All")
        .send()
        .await
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(5), "a waiting message answers a long poll at once");
    let m = &out.messages()[0];
    assert_eq!(m.message_id(), Some(sent_id.as_str()));
    assert_eq!(m.body(), Some(event));
    assert_eq!(m.attributes().unwrap()[&MessageSystemAttributeName::SentTimestamp], "1767225600000");
    assert!(m.message_attributes().is_none() && m.md5_of_message_attributes().is_none());
    c.delete_message().queue_url(&url).receipt_handle(m.receipt_handle().unwrap()).send().await.unwrap();
    assert_eq!(counts(&c, &url).await, (0, 0, 0));

    // Retention: 300 s, on the world clock.
    {
        let mut w = s.state.cloud();
        let now = w.now();
        let w = &mut *w;
        let attrs = MessageAttributes::from([("source".to_owned(), AttributeValue::string("aws.ec2"))]);
        w.sqs.send(&url, event, attrs, now, &mut w.rng.sqs).unwrap();
    }
    s.advance(299);
    assert_eq!(counts(&c, &url).await, (1, 0, 0));
    s.advance(1);
    assert_eq!(counts(&c, &url).await, (0, 0, 0), "gone after MessageRetentionPeriod");
}

#[tokio::test]
async fn long_poll_is_woken_by_a_send_from_another_task() {
    let s = Server::start(world(4)).await;
    let c = s.sqs();
    let url = c.create_queue().queue_name("wake").send().await.unwrap().queue_url.unwrap();
    let (c2, url2) = (c.clone(), url.clone());
    let started = Instant::now();
    let poll = tokio::spawn(async move {
        c2.receive_message().queue_url(&url2).wait_time_seconds(20).max_number_of_messages(10).send().await.unwrap()
    });
    // The poll is still waiting a moment later (the manual clock does not move)...
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!poll.is_finished(), "an empty queue holds a long poll");
    // ...and a send from another task wakes it.
    let sender = c.clone();
    let u = url.clone();
    tokio::spawn(async move { sender.send_message().queue_url(&u).message_body("ping").send().await.unwrap() });
    let out = tokio::time::timeout(Duration::from_secs(10), poll).await.unwrap().unwrap();
    assert_eq!(out.messages()[0].body(), Some("ping"));
    assert!(started.elapsed() < Duration::from_secs(10));
}

/// Moves the manual clock by `secs` every 50 ms until `poll` ends (at most 5 s of real time), so
/// the test does not depend on when the poll reached the server.
async fn advance_until_done<T>(s: &Server, secs: i64, poll: tokio::task::JoinHandle<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !poll.is_finished() {
        assert!(Instant::now() < deadline, "the long poll did not end with world time");
        s.advance(secs);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    poll.await.unwrap()
}

#[tokio::test]
async fn long_poll_ends_when_world_time_reaches_its_deadline() {
    // Manual clock: the poll ends when the clock is advanced past WaitTimeSeconds.
    let s = Server::start(world(5)).await;
    let c = s.sqs();
    let url = c.create_queue().queue_name("idle").send().await.unwrap().queue_url.unwrap();
    let (c2, url2) = (c.clone(), url.clone());
    let started = Instant::now();
    let poll =
        tokio::spawn(async move { c2.receive_message().queue_url(&url2).wait_time_seconds(20).send().await.unwrap() });
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!poll.is_finished(), "nothing moves a manual clock by itself");
    let out = advance_until_done(&s, 20, poll).await;
    assert!(out.messages().is_empty());
    assert!(started.elapsed() < Duration::from_secs(6), "ended by world time, not after 20 real seconds");

    // A delayed message becoming visible on the world clock ends a poll with that message.
    c.send_message().queue_url(&url).message_body("later").delay_seconds(5).send().await.unwrap();
    let (c3, url3) = (c.clone(), url.clone());
    let poll =
        tokio::spawn(async move { c3.receive_message().queue_url(&url3).wait_time_seconds(20).send().await.unwrap() });
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!poll.is_finished());
    let out = advance_until_done(&s, 5, poll).await;
    assert_eq!(out.messages()[0].body(), Some("later"));

    // Scaled clock (100x): a 20 s long poll lasts about 0.2 s of real time.
    let s = Server::start(world_with(6, |cfg| {
        cfg.clock.mode = fake_ec2::clock::ClockMode::Scaled;
        cfg.clock.factor = 100.0;
    }))
    .await;
    let c = s.sqs();
    let url = c.create_queue().queue_name("scaled").send().await.unwrap().queue_url.unwrap();
    let started = Instant::now();
    let out = c.receive_message().queue_url(&url).wait_time_seconds(20).send().await.unwrap();
    assert!(out.messages().is_empty());
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(150) && took < Duration::from_secs(3), "took {took:?}");
}

#[tokio::test]
async fn visibility_timeout_expiry_redelivers_with_a_new_handle() {
    let s = Server::start(world(7)).await;
    let c = s.sqs();
    let url = c.create_queue().queue_name("vis").send().await.unwrap().queue_url.unwrap();
    c.send_message().queue_url(&url).message_body("job").send().await.unwrap();
    let first = c.receive_message().queue_url(&url).send().await.unwrap();
    let h1 = first.messages()[0].receipt_handle().unwrap().to_owned();
    assert_eq!(counts(&c, &url).await, (0, 1, 0));
    s.advance(29);
    assert!(c.receive_message().queue_url(&url).send().await.unwrap().messages().is_empty(), "queue default 30 s");
    s.advance(1);
    let second = c
        .receive_message()
        .queue_url(&url)
        .visibility_timeout(60)
        .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
        .send()
        .await
        .unwrap();
    let m = &second.messages()[0];
    let h2 = m.receipt_handle().unwrap().to_owned();
    assert_ne!(h1, h2, "every receive issues a new handle");
    assert_eq!(m.attributes().unwrap()[&MessageSystemAttributeName::ApproximateReceiveCount], "2");

    // The old handle is stale: visibility changes are refused, deletes accepted without effect.
    let e = c
        .change_message_visibility()
        .queue_url(&url)
        .receipt_handle(&h1)
        .visibility_timeout(5)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "ReceiptHandleIsInvalid");
    assert!(e.into_service_error().is_receipt_handle_is_invalid());
    c.delete_message().queue_url(&url).receipt_handle(&h1).send().await.unwrap();
    assert_eq!(counts(&c, &url).await, (0, 1, 0), "a stale handle deletes nothing");
    let e = c.delete_message().queue_url(&url).receipt_handle("not-a-handle").send().await.unwrap_err();
    assert_eq!(code(&e), "ReceiptHandleIsInvalid");

    // ChangeMessageVisibility with the latest handle: 0 makes it visible at once.
    c.change_message_visibility().queue_url(&url).receipt_handle(&h2).visibility_timeout(0).send().await.unwrap();
    assert_eq!(counts(&c, &url).await, (1, 0, 0));
    let e = c
        .change_message_visibility()
        .queue_url(&url)
        .receipt_handle(&h2)
        .visibility_timeout(10)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "AWS.SimpleQueueService.MessageNotInflight");
    let third = c.receive_message().queue_url(&url).visibility_timeout(10).send().await.unwrap();
    let h3 = third.messages()[0].receipt_handle().unwrap().to_owned();

    // Batch visibility change and batch delete, with a failing entry each.
    let cmv = c
        .change_message_visibility_batch()
        .queue_url(&url)
        .entries(
            ChangeMessageVisibilityBatchRequestEntry::builder()
                .id("ok")
                .receipt_handle(&h3)
                .visibility_timeout(100)
                .build()
                .unwrap(),
        )
        .entries(
            ChangeMessageVisibilityBatchRequestEntry::builder()
                .id("stale")
                .receipt_handle(&h2)
                .visibility_timeout(100)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(cmv.successful().iter().map(|e| e.id()).collect::<Vec<_>>(), ["ok"]);
    assert_eq!((cmv.failed()[0].id(), cmv.failed()[0].code()), ("stale", "ReceiptHandleIsInvalid"));
    s.advance(99);
    assert_eq!(counts(&c, &url).await, (0, 1, 0), "hidden for the new 100 s");
    let del = c
        .delete_message_batch()
        .queue_url(&url)
        .entries(DeleteMessageBatchRequestEntry::builder().id("latest").receipt_handle(&h3).build().unwrap())
        .entries(DeleteMessageBatchRequestEntry::builder().id("junk").receipt_handle("junk").build().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(del.successful().iter().map(|e| e.id()).collect::<Vec<_>>(), ["latest"]);
    assert_eq!((del.failed()[0].id(), del.failed()[0].code()), ("junk", "ReceiptHandleIsInvalid"));
    assert_eq!(counts(&c, &url).await, (0, 0, 0));
}

#[tokio::test]
async fn dead_letter_redrive_after_max_receive_count() {
    let s = Server::start(world(8)).await;
    let c = s.sqs();
    let dlq = c.create_queue().queue_name("work-dlq").send().await.unwrap().queue_url.unwrap();
    let dlq_arn = queue_attr(&c, &dlq, QueueAttributeName::QueueArn).await;
    let policy = format!(r#"{{"deadLetterTargetArn":"{dlq_arn}","maxReceiveCount":"3"}}"#);
    let src = c
        .create_queue()
        .queue_name("work")
        .attributes(QueueAttributeName::RedrivePolicy, &policy)
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    let policy_back: serde_json::Value =
        serde_json::from_str(&queue_attr(&c, &src, QueueAttributeName::RedrivePolicy).await).unwrap();
    assert_eq!(policy_back, serde_json::json!({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 3}));
    let sources = c.list_dead_letter_source_queues().queue_url(&dlq).send().await.unwrap();
    assert_eq!(sources.queue_urls(), std::slice::from_ref(&src));
    let id = c.send_message().queue_url(&src).message_body("poison").send().await.unwrap().message_id.unwrap();
    for n in 1..=3 {
        let out = c.receive_message().queue_url(&src).visibility_timeout(5).send().await.unwrap();
        assert_eq!(out.messages().len(), 1, "delivery {n}");
        s.advance(5);
    }
    assert!(c.receive_message().queue_url(&src).send().await.unwrap().messages().is_empty(), "moved, not delivered");
    assert_eq!(counts(&c, &src).await, (0, 0, 0));
    let out = c
        .receive_message()
        .queue_url(&dlq)
        .message_system_attribute_names(MessageSystemAttributeName::All)
        .send()
        .await
        .unwrap();
    let m = &out.messages()[0];
    assert_eq!(m.message_id(), Some(id.as_str()));
    let a = m.attributes().unwrap();
    assert_eq!(
        a[&MessageSystemAttributeName::DeadLetterQueueSourceArn],
        format!("arn:aws:sqs:us-west-2:{ACCOUNT}:work")
    );
    assert_eq!(a[&MessageSystemAttributeName::ApproximateReceiveCount], "1");

    let bad = r#"{"deadLetterTargetArn":"arn:aws:sqs:us-west-2:123456789012:missing","maxReceiveCount":3}"#;
    let e = c
        .set_queue_attributes()
        .queue_url(&src)
        .attributes(QueueAttributeName::RedrivePolicy, bad)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "InvalidParameterValue");
}

#[tokio::test]
async fn same_seed_same_ids() {
    async fn run(seed: u64) -> Vec<String> {
        let s = Server::start(world(seed)).await;
        let c = s.sqs();
        let url = c.create_queue().queue_name("d").send().await.unwrap().queue_url.unwrap();
        let mut out = Vec::new();
        for i in 0..3 {
            out.push(
                c.send_message()
                    .queue_url(&url)
                    .message_body(format!("m{i}"))
                    .send()
                    .await
                    .unwrap()
                    .message_id
                    .unwrap(),
            );
        }
        let got = c.receive_message().queue_url(&url).max_number_of_messages(10).send().await.unwrap();
        out.extend(got.messages().iter().map(|m| m.receipt_handle().unwrap().to_owned()));
        out
    }
    let (a, b, other) = (run(11).await, run(11).await, run(12).await);
    assert_eq!(a, b);
    assert_ne!(a, other);
}

/// At-least-once, nothing lost: 500 messages, 4 consumers with seeded random visibility timeouts
/// that delete or abandon what they get, and a driver moving the manual clock, until the queue is
/// empty. Every message must have been delivered and none may remain.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn at_least_once_with_concurrent_consumers() {
    const N: usize = 500;
    const CONSUMERS: u64 = 4;
    let s = Server::start(world(9)).await;
    let c = s.sqs();
    let url = c.create_queue().queue_name("stress").send().await.unwrap().queue_url.unwrap();
    let mut sent = BTreeMap::new();
    for chunk in 0..N / 10 {
        let entries: Vec<_> = (0..10)
            .map(|i| {
                let n = chunk * 10 + i;
                SendMessageBatchRequestEntry::builder()
                    .id(format!("m{n}"))
                    .message_body(format!("message {n}"))
                    .build()
                    .unwrap()
            })
            .collect();
        let out = c.send_message_batch().queue_url(&url).set_entries(Some(entries)).send().await.unwrap();
        assert!(out.failed().is_empty());
        for e in out.successful() {
            sent.insert(e.message_id().to_owned(), format!("message {}", &e.id()[1..]));
        }
    }
    assert_eq!(sent.len(), N);

    let done = Arc::new(AtomicBool::new(false));
    let delivered = Arc::new(Mutex::new(BTreeMap::<String, usize>::new()));
    let run = async {
        let mut consumers = Vec::new();
        for k in 0..CONSUMERS {
            let (c, url, done, delivered) = (c.clone(), url.clone(), done.clone(), delivered.clone());
            consumers.push(tokio::spawn(async move {
                let mut rng = ChaCha8Rng::seed_from_u64(1000 + k);
                while !done.load(Ordering::Relaxed) {
                    let vt = rng.random_range(1..=30);
                    let out = c
                        .receive_message()
                        .queue_url(&url)
                        .max_number_of_messages(10)
                        .visibility_timeout(vt)
                        .wait_time_seconds(1)
                        .send()
                        .await
                        .unwrap();
                    for m in out.messages() {
                        *delivered.lock().await.entry(m.message_id().unwrap().to_owned()).or_default() += 1;
                        match rng.random_range(0..10) {
                            // Delete (possibly with a handle gone stale meanwhile: then nothing happens).
                            0..=6 => {
                                c.delete_message()
                                    .queue_url(&url)
                                    .receipt_handle(m.receipt_handle().unwrap())
                                    .send()
                                    .await
                                    .unwrap();
                            }
                            // Give it back at once (may fail if the handle went stale: fine).
                            7 => {
                                let _ = c
                                    .change_message_visibility()
                                    .queue_url(&url)
                                    .receipt_handle(m.receipt_handle().unwrap())
                                    .visibility_timeout(0)
                                    .send()
                                    .await;
                            }
                            // Abandon: it comes back when its visibility timeout ends.
                            _ => {}
                        }
                    }
                }
            }));
        }
        // The clock driver: world time moves 2 s every 10 ms of real time.
        let driver = {
            let (state, done) = (s.state.clone(), done.clone());
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_millis(10));
                while !done.load(Ordering::Relaxed) {
                    tick.tick().await;
                    let mut w = state.cloud();
                    w.clock.advance(2_000);
                    w.sync();
                }
            })
        };
        // Poll the queue's counters until it is empty.
        loop {
            let (visible, in_flight, delayed) = counts(&c, &url).await;
            if visible + in_flight + delayed == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        done.store(true, Ordering::Relaxed);
        for h in consumers {
            h.await.unwrap();
        }
        driver.await.unwrap();
    };
    tokio::time::timeout(Duration::from_secs(120), run).await.expect("the queue drains within two minutes");

    let delivered = delivered.lock().await;
    let ids: BTreeSet<&String> = delivered.keys().collect();
    assert_eq!(ids, sent.keys().collect::<BTreeSet<_>>(), "every message delivered, no unknown ids");
    let redeliveries: usize = delivered.values().map(|n| n - 1).sum();
    assert!(redeliveries > 0, "abandoned messages came back");
    assert_eq!(counts(&c, &url).await, (0, 0, 0), "none left behind");
    let peek: serde_json::Value =
        reqwest::get(format!("{}/_fake/sqs/messages?queue=stress", s.endpoint)).await.unwrap().json().await.unwrap();
    assert_eq!(peek["Messages"].as_array().map(Vec::len), Some(0));
}

#[tokio::test]
async fn admin_peek_changes_nothing() {
    let s = Server::start(world(10)).await;
    let c = s.sqs();
    let url = c.create_queue().queue_name("peek").send().await.unwrap().queue_url.unwrap();
    c.send_message()
        .queue_url(&url)
        .message_body("look")
        .message_attributes(
            "k",
            MessageAttributeValue::builder().data_type("String").string_value("v").build().unwrap(),
        )
        .send()
        .await
        .unwrap();
    let get = || async {
        reqwest::get(format!("{}/_fake/sqs/messages?queue=peek", s.endpoint))
            .await
            .unwrap()
            .json::<serde_json::Value>()
            .await
            .unwrap()
    };
    let a = get().await;
    let b = get().await;
    assert_eq!(a, b);
    assert_eq!(a["Messages"][0]["Body"], "look");
    assert_eq!(a["Messages"][0]["MessageAttributes"]["k"]["StringValue"], "v");
    assert_eq!(a["Messages"][0]["Visible"], true);
    assert_eq!(counts(&c, &url).await, (1, 0, 0));
    let r = reqwest::get(format!("{}/_fake/sqs/messages?queue=nope", s.endpoint)).await.unwrap();
    assert_eq!(r.status().as_u16(), 404);
    let list: serde_json::Value =
        reqwest::get(format!("{}/_fake/sqs/messages", s.endpoint)).await.unwrap().json().await.unwrap();
    assert_eq!(list["queues"].as_array().map(Vec::len), Some(2));
}

#[tokio::test]
async fn strict_auth_checks_the_sdk_signatures() {
    use fake_ec2::world::config::{AuthMode, Credential};
    let s = Server::start(world_with(13, |cfg| {
        cfg.auth.mode = AuthMode::Strict;
        cfg.auth.credentials =
            vec![Credential { access_key_id: "AKIDTEST".into(), secret_access_key: "secret".into() }];
    }))
    .await;
    let url = s.sqs().get_queue_url().queue_name("karpenter-interruption").send().await.unwrap().queue_url.unwrap();
    s.sqs().send_message().queue_url(&url).message_body("signed").send().await.unwrap();
    let wrong = aws_sdk_sqs::Client::from_conf(
        aws_sdk_sqs::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-west-2"))
            .endpoint_url(&s.endpoint)
            .credentials_provider(Credentials::new("AKIDTEST", "not-it", None, None, "t"))
            .retry_config(aws_sdk_sqs::config::retry::RetryConfig::disabled())
            .build(),
    );
    let e = wrong.receive_message().queue_url(&url).send().await.unwrap_err();
    assert_eq!(code(&e), "InvalidClientTokenId");
    assert_eq!(e.raw_response().map(|r| r.status().as_u16()), Some(403));
}
