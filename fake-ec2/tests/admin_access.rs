//! The admin API locked down, with the real binary: `serve` refuses an admin API open off
//! loopback, and serves it behind a bearer token or on a loopback listener of its own.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::process::{FakeEc2, WORLD, run};

/// The printed endpoint of a wildcard listener, as a loopback URL to call.
fn loopback(endpoint: &str) -> String {
    endpoint.replace("0.0.0.0", "127.0.0.1")
}

#[test]
fn serve_on_a_public_address_without_a_token_refuses_to_start_and_says_how_to_fix_it() {
    let (code, stderr) = run(&["serve", "--world", WORLD, "--listen", "0.0.0.0:0"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "one line, no backtrace: {stderr}");
    assert!(stderr.starts_with("error: refusing"), "{stderr}");
    for needed in
        ["refusing to serve the admin API", "not a loopback address", "--admin-listen 127.0.0.1", "--admin-token"]
    {
        assert!(stderr.contains(needed), "missing {needed:?} in: {stderr}");
    }
}

#[tokio::test]
async fn a_token_guards_the_admin_api_and_the_cli_sends_it() {
    let f = FakeEc2::spawn(&[
        "serve",
        "--world",
        WORLD,
        "--clock",
        "manual",
        "--listen",
        "0.0.0.0:0",
        "--admin-token",
        "s3cret",
    ]);
    let base = loopback(&f.endpoint);
    let http = reqwest::Client::new();
    let refused = http.get(format!("{base}/_fake/clock")).send().await.unwrap();
    assert_eq!(refused.status(), 401);
    assert_eq!(refused.headers()["www-authenticate"], "Bearer");
    let body: serde_json::Value = refused.json().await.unwrap();
    assert!(body["error"].as_str().unwrap().contains("Bearer"), "{body}");
    let wrong = http.get(format!("{base}/_fake/clock")).bearer_auth("s3cre7").send().await.unwrap();
    assert_eq!(wrong.status(), 401);
    let ok = http.get(format!("{base}/_fake/clock")).bearer_auth("s3cret").send().await.unwrap();
    assert_eq!(ok.status(), 200);
    // The AWS API needs no admin token.
    let ec2 = testkit::sdk_client!(aws_sdk_ec2, &base, "us-west-2");
    assert!(ec2.describe_availability_zones().send().await.is_ok());
    let base_for_cli = base.clone();
    let (with, _) = tokio::task::spawn_blocking(move || {
        run(&["clock", "--endpoint", &base_for_cli, "--admin-token", "s3cret", "--advance", "5"])
    })
    .await
    .unwrap();
    assert_eq!(with, Some(0));
    let (without, stderr) = tokio::task::spawn_blocking(move || run(&["clock", "--endpoint", &base])).await.unwrap();
    assert_ne!(without, Some(0));
    assert!(stderr.contains("401"), "{stderr}");
}

#[tokio::test]
async fn an_admin_listener_of_its_own_takes_the_admin_api_off_the_aws_listener() {
    let f = FakeEc2::spawn(&[
        "serve",
        "--world",
        WORLD,
        "--clock",
        "manual",
        "--listen",
        "0.0.0.0:0",
        "--admin-listen",
        "127.0.0.1:0",
    ]);
    let aws = loopback(&f.endpoint);
    assert_ne!(aws, f.admin);
    let health = reqwest::get(format!("{}/_fake/health", f.admin)).await.unwrap();
    assert_eq!(health.status(), 200);
    // On the AWS listener /_fake/ is just another path, answered as AWS answers a stray request.
    let stray = reqwest::get(format!("{aws}/_fake/health")).await.unwrap();
    assert!(stray.status().is_client_error(), "{}", stray.status());
    assert!(!stray.text().await.unwrap().contains("\"ok\""));
    let faults = reqwest::Client::new()
        .post(format!("{aws}/_fake/faults"))
        .json(&serde_json::json!({"operation": "RunInstances", "code": "InternalError"}))
        .send()
        .await
        .unwrap();
    assert!(faults.status().is_client_error());
    let listed: serde_json::Value =
        reqwest::get(format!("{}/_fake/faults", f.admin)).await.unwrap().json().await.unwrap();
    assert_eq!(listed, serde_json::json!([]), "no fault was set through the AWS listener");
}
