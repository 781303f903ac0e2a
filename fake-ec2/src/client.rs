//! The CLI's side of the admin API: thin HTTP calls to a running fake-ec2.

use anyhow::{Context, bail};
use serde_json::Value;

use crate::cli::Endpoint;

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

/// A request to the admin API, with the bearer token when one is set.
fn request(e: &Endpoint, method: reqwest::Method, path: &str) -> (String, reqwest::RequestBuilder) {
    let u = url(&e.endpoint, path);
    let mut r = reqwest::Client::new().request(method, &u);
    if let Some(token) = &e.admin_token {
        r = r.bearer_auth(token);
    }
    (u, r)
}

pub async fn text(e: &Endpoint, path: &str) -> anyhow::Result<String> {
    let (u, r) = request(e, reqwest::Method::GET, path);
    let r = r.send().await.with_context(|| format!("GET {u}"))?;
    answer(r, &format!("GET {u}")).await
}

pub async fn get(e: &Endpoint, path: &str) -> anyhow::Result<Value> {
    let body = text(e, path).await?;
    serde_json::from_str(&body).context("the admin API answered with something other than JSON")
}

pub async fn post(e: &Endpoint, path: &str, body: &Value) -> anyhow::Result<Value> {
    let (u, r) = request(e, reqwest::Method::POST, path);
    let r = r.json(body).send().await.with_context(|| format!("POST {u}"))?;
    let body = answer(r, &format!("POST {u}")).await?;
    serde_json::from_str(&body).context("the admin API answered with something other than JSON")
}

/// Prints a JSON answer for a person at a terminal.
pub fn print(v: Value) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(&v)?);
    Ok(())
}
