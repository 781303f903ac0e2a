//! EKS's wire (REST-JSON, `eks-2017-11-01`), routed by method and path:
//!
//! | method and path | operation |
//! |---|---|
//! | `GET /clusters/{name}` | DescribeCluster |
//! | `GET /clusters?maxResults=&nextToken=` | ListClusters |
//!
//! Errors carry `x-amzn-errortype` and `{"message": ...}`; any other EKS operation answers
//! `UnknownOperationException`.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::{Eks, EksError};

/// Every EKS operation this server answers.
pub const ACTIONS: &[&str] = &["DescribeCluster", "ListClusters"];

/// Answers one EKS request; the signature has been checked.
pub fn handle(eks: &Eks, method: &str, path: &str, query: &str) -> Result<Value, EksError> {
    let q: BTreeMap<String, String> = form_urlencoded::parse(query.as_bytes()).into_owned().collect();
    let parts: Vec<String> = path
        .trim_matches('/')
        .split('/')
        .map(|p| {
            form_urlencoded::parse(format!("x={p}").as_bytes()).map(|(_, v)| v.into_owned()).next().unwrap_or_default()
        })
        .collect();
    let parts: Vec<&str> = parts.iter().map(String::as_str).collect();
    match (method, parts.as_slice()) {
        ("GET", ["clusters"]) => {
            eks.list(q.get("maxResults").map(String::as_str), q.get("nextToken").map(String::as_str))
        }
        ("GET", ["clusters", name]) => Ok(json!({ "cluster": eks.describe(name)? })),
        _ => Err(EksError {
            status: 404,
            kind: "UnknownOperationException",
            message: format!("fake-ec2 does not serve the EKS operation at {method} {path}"),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_by_method_and_path() {
        let eks = Eks::default();
        assert_eq!(handle(&eks, "GET", "/clusters", "").ok(), Some(json!({"clusters": []})));
        assert_eq!(
            handle(&eks, "GET", "/clusters/some%20name", "").map_err(|e| e.message),
            Err("No cluster found for name: some name.".into())
        );
        assert_eq!(
            handle(&eks, "POST", "/clusters", "").map_err(|e| (e.status, e.kind)),
            Err((404, "UnknownOperationException"))
        );
    }
}
