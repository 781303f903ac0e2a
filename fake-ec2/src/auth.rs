//! AWS Signature Version 4 as EC2 checks it: every request must be signed; in strict mode the
//! signature is recomputed from the request and compared with the caller's.

use std::collections::BTreeMap;

use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};

use crate::world::config::{AuthConfig, AuthMode};

type HmacSha256 = Hmac<Sha256>;

/// The parts of an HTTP request a signature covers.
pub struct SignedRequest<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub query: &'a str,
    /// Lower-case header names with their values.
    pub headers: &'a BTreeMap<String, String>,
    pub body: &'a [u8],
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Authorization {
    access_key: String,
    date: String,
    region: String,
    service: String,
    signed_headers: Vec<String>,
    signature: String,
}

fn parse_authorization(h: &str) -> Option<Authorization> {
    let rest = h.strip_prefix("AWS4-HMAC-SHA256")?.trim();
    let mut cred = None;
    let mut signed = None;
    let mut sig = None;
    for part in rest.split(',') {
        let (k, v) = part.trim().split_once('=')?;
        match k {
            "Credential" => cred = Some(v),
            "SignedHeaders" => signed = Some(v),
            "Signature" => sig = Some(v),
            _ => {}
        }
    }
    let mut scope = cred?.split('/');
    let access_key = scope.next()?.to_owned();
    let date = scope.next()?.to_owned();
    let region = scope.next()?.to_owned();
    let service = scope.next()?.to_owned();
    Some(Authorization {
        access_key,
        date,
        region,
        service,
        signed_headers: signed?.split(';').map(str::to_owned).collect(),
        signature: sig?.to_owned(),
    })
}

/// Why a request's signature was refused, in EC2's words; each service answers it in its own
/// protocol (and may rename the code, as the JSON services do).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct AuthError {
    pub status: u16,
    pub code: String,
    pub message: String,
}

impl AuthError {
    fn new(status: u16, code: &str, message: impl Into<String>) -> Self {
        Self { status, code: code.to_owned(), message: message.into() }
    }

    /// The code a Query-protocol service other than EC2 (IAM, STS) answers instead, with its status.
    pub fn query_kind(&self) -> (u16, &'static str) {
        match self.code.as_str() {
            "MissingAuthenticationToken" => (403, "MissingAuthenticationToken"),
            "IncompleteSignature" => (400, "IncompleteSignature"),
            "RequestExpired" => (400, "RequestExpired"),
            _ => (403, "InvalidClientTokenId"),
        }
    }

    /// The code a JSON or REST-JSON service answers instead, with its status.
    pub fn json_kind(&self) -> (u16, &'static str) {
        match self.code.as_str() {
            "MissingAuthenticationToken" => (403, "MissingAuthenticationTokenException"),
            "IncompleteSignature" => (400, "IncompleteSignatureException"),
            "RequestExpired" => (403, "InvalidSignatureException"),
            _ => (403, "UnrecognizedClientException"),
        }
    }
}

fn missing_token() -> AuthError {
    AuthError::new(401, "MissingAuthenticationToken", "Request is missing Authentication Token")
}

fn auth_failure() -> AuthError {
    AuthError::new(401, "AuthFailure", "AWS was not able to validate the provided access credentials")
}

/// The service and region a request is signed for (its SigV4 credential scope), from the
/// `Authorization` header or a presigned `X-Amz-Credential` (URL query or form body).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    pub access_key: String,
    pub service: String,
    pub region: String,
}

pub fn scope(headers: &BTreeMap<String, String>, query: &str, form_body: &[u8]) -> Option<Scope> {
    let from_credential = |c: &str| {
        let mut parts = c.split('/');
        let access_key = parts.next()?.to_owned();
        let _date = parts.next()?;
        let region = parts.next()?.to_owned();
        let service = parts.next()?.to_owned();
        (parts.next() == Some("aws4_request")).then_some(Scope { access_key, service, region })
    };
    if let Some(h) = headers.get("authorization") {
        let cred = h.split([',', ' ']).find_map(|p| p.trim().strip_prefix("Credential="))?;
        return from_credential(cred);
    }
    let presigned = |bytes: &[u8]| {
        form_urlencoded::parse(bytes).find(|(k, _)| k == "X-Amz-Credential").map(|(_, v)| v.into_owned())
    };
    presigned(query.as_bytes()).or_else(|| presigned(form_body)).and_then(|c| from_credential(&c))
}

/// Query-string (presigned) credentials, turned into the header form.
fn presigned(query: &str) -> Option<(String, String)> {
    let params: BTreeMap<String, String> = form_urlencoded::parse(query.as_bytes()).into_owned().collect();
    let sig = params.get("X-Amz-Signature")?;
    let header = format!(
        "AWS4-HMAC-SHA256 Credential={}, SignedHeaders={}, Signature={sig}",
        params.get("X-Amz-Credential")?,
        params.get("X-Amz-SignedHeaders")?
    );
    Some((header, params.get("X-Amz-Date")?.clone()))
}

/// Checks a request's signature as the world's auth settings say.
pub fn check(cfg: &AuthConfig, req: &SignedRequest<'_>) -> Result<(), AuthError> {
    let (header, amz_date) = match req.headers.get("authorization") {
        Some(h) => (h.clone(), req.headers.get("x-amz-date").cloned().unwrap_or_default()),
        None => presigned(req.query).ok_or_else(missing_token)?,
    };
    let auth = parse_authorization(&header).ok_or_else(|| {
        AuthError::new(400, "IncompleteSignature", format!("Authorization header requires 'Credential', 'Signature' and 'SignedHeaders' parameters. Authorization={header}"))
    })?;
    if cfg.mode != AuthMode::Strict {
        return Ok(());
    }
    let cred = cfg.credentials.iter().find(|c| c.access_key_id == auth.access_key).ok_or_else(auth_failure)?;
    if let Ok(t) = chrono::NaiveDateTime::parse_from_str(&amz_date, "%Y%m%dT%H%M%SZ") {
        let skew = (chrono::Utc::now().naive_utc() - t).num_seconds().abs();
        if skew > 15 * 60 {
            return Err(AuthError::new(
                400,
                "RequestExpired",
                format!("Request has expired. Timestamp date is {amz_date}"),
            ));
        }
    } else {
        return Err(auth_failure());
    }
    let expected = signature(&cred.secret_access_key, &auth, &amz_date, req);
    if constant_time_eq(expected.as_bytes(), auth.signature.as_bytes()) { Ok(()) } else { Err(auth_failure()) }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn uri_encode(s: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => out.push(b as char),
            b'/' if keep_slash => out.push('/'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

fn canonical_query(query: &str) -> String {
    let mut pairs: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes())
        .filter(|(k, _)| k != "X-Amz-Signature")
        .map(|(k, v)| (uri_encode(&k, false), uri_encode(&v, false)))
        .collect();
    pairs.sort();
    pairs.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("&")
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut mac =
        <HmacSha256 as KeyInit>::new_from_slice(key).unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

fn signature(secret: &str, auth: &Authorization, amz_date: &str, req: &SignedRequest<'_>) -> String {
    let canonical_headers: String = auth
        .signed_headers
        .iter()
        .map(|h| {
            let v = req.headers.get(h).map(String::as_str).unwrap_or_default();
            let v = v.split_whitespace().collect::<Vec<_>>().join(" ");
            format!("{h}:{v}\n")
        })
        .collect();
    let payload_hash =
        req.headers.get("x-amz-content-sha256").cloned().unwrap_or_else(|| hex::encode(Sha256::digest(req.body)));
    let path = if req.path.is_empty() { "/" } else { req.path };
    let canonical = format!(
        "{}\n{}\n{}\n{}\n{}\n{}",
        req.method,
        uri_encode(path, true),
        canonical_query(req.query),
        canonical_headers,
        auth.signed_headers.join(";"),
        payload_hash
    );
    let scope = format!("{}/{}/{}/aws4_request", auth.date, auth.region, auth.service);
    let to_sign =
        format!("AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}", hex::encode(Sha256::digest(canonical.as_bytes())));
    let k_date = hmac(format!("AWS4{secret}").as_bytes(), auth.date.as_bytes());
    let k_region = hmac(&k_date, auth.region.as_bytes());
    let k_service = hmac(&k_region, auth.service.as_bytes());
    let k_signing = hmac(&k_service, b"aws4_request");
    hex::encode(hmac(&k_signing, to_sign.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The `get-vanilla` case of AWS's SigV4 test suite.
    #[test]
    fn matches_the_aws_test_suite_vanilla_get() {
        let headers = BTreeMap::from([
            ("host".to_owned(), "example.amazonaws.com".to_owned()),
            ("x-amz-date".to_owned(), "20150830T123600Z".to_owned()),
        ]);
        let req = SignedRequest { method: "GET", path: "/", query: "", headers: &headers, body: b"" };
        let auth = Authorization {
            access_key: "AKIDEXAMPLE".into(),
            date: "20150830".into(),
            region: "us-east-1".into(),
            service: "service".into(),
            signed_headers: vec!["host".into(), "x-amz-date".into()],
            signature: String::new(),
        };
        assert_eq!(
            signature("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", &auth, "20150830T123600Z", &req),
            "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
        );
    }

    #[test]
    fn reads_the_service_from_the_credential_scope() {
        let headers = BTreeMap::from([(
            "authorization".to_owned(),
            "AWS4-HMAC-SHA256 Credential=AKID/20260101/us-west-2/eks/aws4_request, SignedHeaders=host, Signature=0"
                .to_owned(),
        )]);
        assert_eq!(
            scope(&headers, "", b""),
            Some(Scope { access_key: "AKID".into(), service: "eks".into(), region: "us-west-2".into() })
        );
        let none = BTreeMap::new();
        let q = "X-Amz-Credential=AKID%2F20260101%2Fus-east-1%2Fiam%2Faws4_request&X-Amz-Date=20260101T000000Z";
        assert_eq!(scope(&none, q, b"").map(|s| s.service), Some("iam".into()));
        assert_eq!(
            scope(&none, "", q.as_bytes()).map(|s| (s.service, s.region)),
            Some(("iam".into(), "us-east-1".into()))
        );
        assert_eq!(scope(&none, "Action=DescribeInstances", b""), None);
    }

    #[test]
    fn unsigned_requests_are_refused_in_every_mode() {
        let headers = BTreeMap::new();
        let req = SignedRequest { method: "POST", path: "/", query: "", headers: &headers, body: b"" };
        let err = check(&AuthConfig::default(), &req).err();
        assert_eq!(err.map(|e| (e.code, e.status)), Some(("MissingAuthenticationToken".into(), 401)));
    }
}
