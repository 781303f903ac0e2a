//! The CLI's side of the admin API: thin HTTP calls to a running fake-ec2.

use anyhow::{Context, bail};
use serde_json::Value;

fn url(endpoint: &str, path: &str) -> String {
    format!("{}{path}", endpoint.trim_end_matches('/'))
}

async fn answer(r: reqwest::Response, what: &str) -> anyhow::Result<String> {
    let status = r.status();
    let body = r.text().await.with_context(|| format!("reading the answer to {what}"))?;
    if !status.is_success() {
        bail!("{what}: HTTP {status}: {body}");
    }
    Ok(body)
}

pub async fn text(endpoint: &str, path: &str) -> anyhow::Result<String> {
    let u = url(endpoint, path);
    let r = reqwest::get(&u).await.with_context(|| format!("GET {u}"))?;
    answer(r, &format!("GET {u}")).await
}

pub async fn get(endpoint: &str, path: &str) -> anyhow::Result<Value> {
    let body = text(endpoint, path).await?;
    serde_json::from_str(&body).context("the admin API answered with something other than JSON")
}

pub async fn post(endpoint: &str, path: &str, body: &Value) -> anyhow::Result<Value> {
    let u = url(endpoint, path);
    let r = reqwest::Client::new().post(&u).json(body).send().await.with_context(|| format!("POST {u}"))?;
    let body = answer(r, &format!("POST {u}")).await?;
    serde_json::from_str(&body).context("the admin API answered with something other than JSON")
}

/// Prints a JSON answer for a person at a terminal.
pub fn print(v: Value) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(&v)?);
    Ok(())
}
