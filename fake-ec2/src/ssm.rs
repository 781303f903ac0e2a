//! SSM Parameter Store (AWS JSON 1.1, `X-Amz-Target: AmazonSSM.*`), as far as node autoscalers use
//! it: `GetParameter` and `GetParameters` for the public EKS optimized AMI parameters, resolved
//! against the world's images.
//!
//! - `/aws/service/eks/optimized-ami/<k8s>/amazon-linux-2023/<arch>/<variant>/recommended/image_id`:
//!   the newest non-deprecated image named `amazon-eks-node-al2023-<arch>-<variant>-<k8s>-*`
//!   (Karpenter's `al2023@latest` alias);
//! - `.../amazon-linux-2023/<arch>/<variant>/<ami-name>/image_id`: that image (pinned versions,
//!   `al2023@v20251120`).
//!
//! Anything else is `ParameterNotFound`, as SSM answers it.

use serde_json::{Map, Value, json};

use crate::world::World;
use crate::world::network::Image;

const PREFIX: &str = "/aws/service/eks/optimized-ami/";

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
pub const ACTIONS: &[&str] = &["GetParameter", "GetParameters"];

/// Answers one SSM request; returns the HTTP status and the JSON body.
pub fn handle(w: &World, op: &str, body: &[u8]) -> (u16, String) {
    let result = parse(body).and_then(|req| match op {
        "GetParameter" => get_parameter(w, &req),
        "GetParameters" => get_parameters(w, &req),
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

/// The world images of one AL2023 series (k8s version, arch, variant), oldest first.
fn series<'w>(w: &'w World, k8s: &str, arch: &str, variant: &str) -> Vec<&'w Image> {
    let prefix = format!("amazon-eks-node-al2023-{arch}-{variant}-{k8s}-");
    let mut v: Vec<&Image> = w.images.iter().filter(|i| i.cfg.name.starts_with(&prefix)).collect();
    v.sort_by(|a, b| a.cfg.creation_date.cmp(&b.cfg.creation_date).then(a.cfg.name.cmp(&b.cfg.name)));
    v
}

/// The parameter a name resolves to, or None.
fn parameter(w: &World, name: &str) -> Option<Value> {
    let rest = name.strip_prefix(PREFIX)?;
    let parts: Vec<&str> = rest.split('/').collect();
    let [k8s, "amazon-linux-2023", arch, variant, which, "image_id"] = parts.as_slice() else {
        return None;
    };
    if !matches!(*arch, "x86_64" | "arm64") {
        return None;
    }
    let all = series(w, k8s, arch, variant);
    let (image, version) = if *which == "recommended" {
        let current: Vec<&&Image> = all.iter().filter(|i| !i.cfg.deprecated).collect();
        // Each release bumps the parameter's version.
        (**current.last()?, all.len())
    } else {
        let pos = all.iter().position(|i| i.cfg.name == *which)?;
        (all[pos], 1)
    };
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
}
