//! SSM Parameter Store (AWS JSON 1.1, `X-Amz-Target: AmazonSSM.*`), as far as node autoscalers use
//! it: the public EKS optimized and Bottlerocket AMI parameters ([`params`]), derived from the
//! world's images, through `GetParameter` (what Karpenter calls), `GetParameters` and
//! `GetParametersByPath` (what people browsing the tree call). Anything else is
//! `ParameterNotFound`, as SSM answers it.

mod params;

use serde_json::{Map, Value, json};

use crate::world::World;

pub use params::{AmiParameter, ami_parameters};

/// An error as the JSON 1.1 protocol carries it: `__type`, and a message when SSM gives one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SsmError {
    pub status: u16,
    pub kind: &'static str,
    pub message: Option<String>,
}

fn validation(message: impl Into<String>) -> SsmError {
    SsmError { status: 400, kind: "ValidationException", message: Some(message.into()) }
}

fn not_found() -> SsmError {
    // SSM sends ParameterNotFound without a message.
    SsmError { status: 400, kind: "ParameterNotFound", message: None }
}

/// Every SSM operation this server answers.
pub const ACTIONS: &[&str] = &["GetParameter", "GetParameters", "GetParametersByPath"];

/// Answers one SSM request; returns the HTTP status and the JSON body.
pub fn handle(w: &World, op: &str, body: &[u8]) -> (u16, String) {
    let result = parse(body).and_then(|req| match op {
        "GetParameter" => get_parameter(w, &req),
        "GetParameters" => get_parameters(w, &req),
        "GetParametersByPath" => get_parameters_by_path(w, &req),
        _ => Err(SsmError {
            status: 400,
            kind: "UnknownOperationException",
            message: Some(format!("Unknown operation AmazonSSM.{op}")),
        }),
    });
    match result {
        Ok(v) => (200, v.to_string()),
        Err(e) => {
            let mut body = json!({"__type": e.kind});
            if let (Some(o), Some(m)) = (body.as_object_mut(), e.message) {
                o.insert("message".into(), json!(m));
            }
            (e.status, body.to_string())
        }
    }
}

fn parse(body: &[u8]) -> Result<Map<String, Value>, SsmError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => Ok(m),
        _ => Err(SsmError {
            status: 400,
            kind: "SerializationException",
            message: Some("Start of structure or map found where not expected.".into()),
        }),
    }
}

fn get_parameter(w: &World, req: &Map<String, Value>) -> Result<Value, SsmError> {
    let name = req.get("Name").and_then(Value::as_str).filter(|n| !n.is_empty()).ok_or_else(|| {
        validation(
            "1 validation error detected: Value null at 'name' failed to satisfy constraint: Member must not be null",
        )
    })?;
    let p = parameter(w, name).ok_or_else(not_found)?;
    Ok(json!({ "Parameter": p }))
}

fn get_parameters(w: &World, req: &Map<String, Value>) -> Result<Value, SsmError> {
    let names: Vec<&str> = req
        .get("Names")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if names.is_empty() || names.len() > 10 {
        return Err(validation(format!(
            "1 validation error detected: Value at 'names' failed to satisfy constraint: Member must have length less than or equal to 10 and greater than or equal to 1 (got {})",
            names.len()
        )));
    }
    let mut found = Vec::new();
    let mut invalid = Vec::new();
    for n in names {
        match parameter(w, n) {
            Some(p) => found.push(p),
            None => invalid.push(n),
        }
    }
    Ok(json!({ "Parameters": found, "InvalidParameters": invalid }))
}

/// Lists the parameters under a path: its direct children, or every descendant with
/// `Recursive`; pages of `MaxResults` (1–10, default 10) in name order.
fn get_parameters_by_path(w: &World, req: &Map<String, Value>) -> Result<Value, SsmError> {
    let path = req.get("Path").and_then(Value::as_str).filter(|p| p.starts_with('/')).ok_or_else(|| {
        validation(
            "1 validation error detected: Value at 'path' failed to satisfy constraint: Member must begin with /",
        )
    })?;
    if req.get("ParameterFilters").and_then(Value::as_array).is_some_and(|f| !f.is_empty()) {
        return Err(validation("ParameterFilters are not supported by this server"));
    }
    let recursive = req.get("Recursive").and_then(Value::as_bool).unwrap_or(false);
    let size = match req.get("MaxResults") {
        None | Some(Value::Null) => 10,
        Some(v) => match v.as_u64() {
            Some(n @ 1..=10) => n as usize,
            _ => {
                return Err(validation(
                    "1 validation error detected: Value at 'maxResults' failed to satisfy constraint: Member must have value less than or equal to 10",
                ));
            }
        },
    };
    let after = match req.get("NextToken").and_then(Value::as_str).filter(|t| !t.is_empty()) {
        None => None,
        Some(t) => Some(hex::decode(t).ok().and_then(|b| String::from_utf8(b).ok()).ok_or_else(|| SsmError {
            status: 400,
            kind: "InvalidNextToken",
            message: Some("The specified token is not valid.".into()),
        })?),
    };
    let base = format!("{}/", path.trim_end_matches('/'));
    let all = ami_parameters(&w.images);
    let mut names = all.keys().filter(|n| {
        n.strip_prefix(&base).is_some_and(|rest| recursive || !rest.contains('/'))
            && after.as_ref().is_none_or(|a| *n > a)
    });
    let page: Vec<&String> = names.by_ref().take(size).collect();
    let more = names.next().is_some();
    let found: Vec<Value> = page.iter().filter_map(|n| all.get(*n).and_then(|p| render(w, n, p))).collect();
    let mut out = json!({ "Parameters": found });
    if let (true, Some(last), Some(o)) = (more, page.last(), out.as_object_mut()) {
        o.insert("NextToken".into(), json!(hex::encode(last)));
    }
    Ok(out)
}

/// The parameter a name resolves to, or None.
fn parameter(w: &World, name: &str) -> Option<Value> {
    render(w, name, ami_parameters(&w.images).get(name)?)
}

fn render(w: &World, name: &str, p: &AmiParameter<'_>) -> Option<Value> {
    let AmiParameter { image, version } = p;
    let modified = chrono::DateTime::parse_from_rfc3339(&image.cfg.creation_date).map(|t| t.timestamp_millis()).ok()?;
    Some(json!({
        "Name": name,
        "Type": "String",
        "Value": image.cfg.id,
        "Version": version,
        "LastModifiedDate": modified as f64 / 1000.0,
        "ARN": format!("arn:aws:ssm:{}::parameter{name}", w.cfg.region),
        "DataType": "aws:ec2:image",
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::world::tests::test_world;

    fn get(w: &World, name: &str) -> (u16, Value) {
        let (status, body) = handle(w, "GetParameter", json!({ "Name": name }).to_string().as_bytes());
        (status, serde_json::from_str(&body).unwrap_or_default())
    }

    #[test]
    fn resolves_the_al2023_aliases() {
        let w = test_world(1);
        let (status, v) =
            get(&w, "/aws/service/eks/optimized-ami/1.34/amazon-linux-2023/x86_64/standard/recommended/image_id");
        assert_eq!(status, 200);
        assert_eq!(v["Parameter"]["Value"], "ami-0a0b0c0d0e0f10111");
        assert_eq!(v["Parameter"]["DataType"], "aws:ec2:image");
        assert_eq!(
            v["Parameter"]["ARN"],
            "arn:aws:ssm:us-west-2::parameter/aws/service/eks/optimized-ami/1.34/amazon-linux-2023/x86_64/standard/recommended/image_id"
        );
        let (_, v) = get(
            &w,
            "/aws/service/eks/optimized-ami/1.34/amazon-linux-2023/arm64/standard/amazon-eks-node-al2023-arm64-standard-1.34-v20251120/image_id",
        );
        assert_eq!(v["Parameter"]["Value"], "ami-0a0b0c0d0e0f20222");
    }

    #[test]
    fn unknown_names_are_not_found() {
        let w = test_world(1);
        for name in [
            "/aws/service/eks/optimized-ami/1.99/amazon-linux-2023/x86_64/standard/recommended/image_id",
            "/aws/service/eks/optimized-ami/1.34/amazon-linux-2023/x86_64/standard/amazon-eks-node-al2023-arm64-standard-1.34-v20251120/image_id",
            "/my/param",
        ] {
            assert_eq!(get(&w, name), (400, json!({"__type": "ParameterNotFound"})), "{name}");
        }
        let (status, body) = handle(&w, "GetParameters", br#"{"Names": ["/a", "/aws/service/eks/optimized-ami/1.34/amazon-linux-2023/x86_64/standard/recommended/image_id"]}"#);
        let v: Value = serde_json::from_str(&body).unwrap_or_default();
        assert_eq!(status, 200);
        assert_eq!(v["InvalidParameters"], json!(["/a"]));
        assert_eq!(v["Parameters"].as_array().map(Vec::len), Some(1));
    }

    /// The `latest` paths Karpenter's AL2, AL2023 and Bottlerocket aliases read, with the
    /// architecture the image must have.
    fn karpenter_latest_paths(k8s: &str) -> Vec<(String, &'static str)> {
        let eks = format!("/aws/service/eks/optimized-ami/{k8s}");
        let br = format!("/aws/service/bottlerocket/aws-k8s-{k8s}");
        vec![
            (format!("{eks}/amazon-linux-2/recommended/image_id"), "x86_64"),
            (format!("{eks}/amazon-linux-2-arm64/recommended/image_id"), "arm64"),
            (format!("{eks}/amazon-linux-2-gpu/recommended/image_id"), "x86_64"),
            (format!("{eks}/amazon-linux-2023/x86_64/standard/recommended/image_id"), "x86_64"),
            (format!("{eks}/amazon-linux-2023/x86_64/nvidia/recommended/image_id"), "x86_64"),
            (format!("{eks}/amazon-linux-2023/x86_64/neuron/recommended/image_id"), "x86_64"),
            (format!("{eks}/amazon-linux-2023/arm64/standard/recommended/image_id"), "arm64"),
            (format!("{eks}/amazon-linux-2023/arm64/nvidia/recommended/image_id"), "arm64"),
            (format!("{br}/x86_64/latest/image_id"), "x86_64"),
            (format!("{br}/arm64/latest/image_id"), "arm64"),
            (format!("{br}-nvidia/x86_64/latest/image_id"), "x86_64"),
            (format!("{br}-nvidia/arm64/latest/image_id"), "arm64"),
        ]
    }

    #[test]
    fn every_family_resolves_for_every_declared_kubernetes_version() {
        let w = test_world(1);
        let mut seen = std::collections::BTreeSet::new();
        for k8s in ["1.34", "1.33"] {
            for (path, arch) in karpenter_latest_paths(k8s) {
                let (status, v) = get(&w, &path);
                assert_eq!(status, 200, "{path}: {v}");
                let id = v["Parameter"]["Value"].as_str().unwrap_or_default().to_owned();
                let image = w.images.iter().find(|i| i.cfg.id == id);
                assert_eq!(image.map(|i| i.cfg.architecture.as_str()), Some(arch), "{path}");
                assert!(image.is_some_and(|i| i.cfg.name.contains(k8s)), "{path} -> {id}");
                assert!(seen.insert(id), "{path}: one image per parameter");
            }
        }
        // Pinned: AL2 by image name, Bottlerocket by version with or without the commit.
        for (path, id) in [
            (
                "/aws/service/eks/optimized-ami/1.33/amazon-linux-2-arm64/amazon-eks-arm64-node-1.33-v20251120/image_id",
                "ami-0a200013300000002",
            ),
            ("/aws/service/bottlerocket/aws-k8s-1.34/x86_64/1.50.0/image_id", "ami-0b000013400000001"),
            ("/aws/service/bottlerocket/aws-k8s-1.34-nvidia/arm64/1.50.0-f6c5a2b1/image_id", "ami-0b000013400000004"),
        ] {
            assert_eq!(get(&w, path).1["Parameter"]["Value"], id, "{path}");
        }
        // Windows is not published.
        let windows = "/aws/service/ami-windows-latest/Windows_Server-2022-English-Core-EKS_Optimized-1.34/image_id";
        assert_eq!(get(&w, windows).0, 400);
    }

    #[test]
    fn parameters_by_path_list_children_or_the_whole_tree_in_pages() {
        let w = test_world(1);
        let by_path = |body: Value| {
            let (status, text) = handle(&w, "GetParametersByPath", body.to_string().as_bytes());
            (status, serde_json::from_str::<Value>(&text).unwrap_or_default())
        };
        let names = |v: &Value| -> Vec<String> {
            v["Parameters"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|p| p["Name"].as_str().map(str::to_owned))
                .collect()
        };
        let (status, v) = by_path(json!({ "Path": "/aws/service/bottlerocket/aws-k8s-1.34/x86_64/latest" }));
        assert_eq!(status, 200);
        assert_eq!(names(&v), ["/aws/service/bottlerocket/aws-k8s-1.34/x86_64/latest/image_id"]);
        let (_, v) = by_path(json!({ "Path": "/aws/service/bottlerocket/aws-k8s-1.34/x86_64" }));
        assert!(names(&v).is_empty(), "not recursive: no grandchildren");

        let mut all = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut body = json!({ "Path": "/aws/service/eks/optimized-ami/1.34", "Recursive": true, "MaxResults": 4 });
            if let (Some(t), Some(o)) = (&token, body.as_object_mut()) {
                o.insert("NextToken".into(), json!(t));
            }
            let (status, v) = by_path(body);
            assert_eq!(status, 200, "{v}");
            let page = names(&v);
            assert!(page.len() <= 4);
            all.extend(page);
            token = v["NextToken"].as_str().map(str::to_owned);
            if token.is_none() {
                break;
            }
        }
        // 8 EKS series (3 AL2, 5 AL2023) with one release each: recommended + pinned.
        assert_eq!(all.len(), 16, "{all:?}");
        assert!(all.windows(2).all(|p| p[0] < p[1]));
        assert_eq!(by_path(json!({ "Path": "aws/no-slash" })).0, 400);
        assert_eq!(by_path(json!({ "Path": "/aws", "MaxResults": 11 })).0, 400);
        assert_eq!(by_path(json!({ "Path": "/aws", "NextToken": "zz" })).1["__type"], "InvalidNextToken");
    }
}
