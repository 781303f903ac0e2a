//! Which service a request is for, as AWS's endpoints tell: by the service its SigV4 credential
//! scope names (`Credential=AKID/date/region/<service>/aws4_request`, in `Authorization` or a
//! presigned `X-Amz-Credential`) first; for requests without one, by `X-Amz-Target`, the REST
//! path, and the Query form, as before. A request for a service fake-ec2 does not serve is
//! [`Route::Unknown`] and answered in the protocol it speaks, never by another service.

use crate::auth::{self, SignedRequest};

/// The wire protocol a request speaks, for answering one no service takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Protocol {
    /// AWS JSON 1.0/1.1: `X-Amz-Target` names the operation.
    Json,
    /// Query: a form with `Action`.
    Query,
    /// REST-JSON: the method and path name the operation.
    RestJson,
}

/// A request no served service takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unknown {
    /// The signing name from the credential scope, if any.
    pub service: Option<String>,
    pub protocol: Protocol,
    /// What names the operation: the target, the action or `METHOD /path`.
    pub operation: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    Ec2,
    /// SQS over AWS JSON 1.0, with the operation from `X-Amz-Target`.
    SqsJson(String),
    /// SQS over the Query protocol.
    SqsQuery,
    Ssm(String),
    Pricing(String),
    Fis,
    Eks,
    Iam,
    Sts,
    Unknown(Unknown),
}

fn header<'a>(req: &'a SignedRequest<'_>, name: &str) -> Option<&'a str> {
    req.headers.get(name).map(String::as_str)
}

fn target_op<'a>(req: &'a SignedRequest<'_>, prefix: &str) -> Option<&'a str> {
    header(req, "x-amz-target").and_then(|t| t.strip_prefix(prefix))
}

/// The form parameter `name` from the body or the URL query.
fn form_param(req: &SignedRequest<'_>, name: &str) -> Option<String> {
    form_urlencoded::parse(req.body)
        .chain(form_urlencoded::parse(req.query.as_bytes()))
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

fn protocol(req: &SignedRequest<'_>) -> (Protocol, String) {
    if let Some(t) = header(req, "x-amz-target") {
        return (Protocol::Json, t.to_owned());
    }
    if let Some(a) = form_param(req, "Action") {
        return (Protocol::Query, a);
    }
    (Protocol::RestJson, format!("{} {}", req.method, req.path))
}

fn unknown(req: &SignedRequest<'_>, service: Option<String>) -> Route {
    let (protocol, operation) = protocol(req);
    Route::Unknown(Unknown { service, protocol, operation })
}

pub fn classify(req: &SignedRequest<'_>) -> Route {
    match auth::scope(req.headers, req.query, req.body) {
        Some(scope) => by_service(req, scope.service),
        None => by_shape(req),
    }
}

fn by_service(req: &SignedRequest<'_>, service: String) -> Route {
    match service.as_str() {
        "ec2" => Route::Ec2,
        "sqs" => match target_op(req, "AmazonSQS.") {
            Some(op) => Route::SqsJson(op.to_owned()),
            None => Route::SqsQuery,
        },
        "ssm" => Route::Ssm(target_op(req, "AmazonSSM.").unwrap_or_default().to_owned()),
        "pricing" | "api.pricing" => {
            Route::Pricing(target_op(req, "AWSPriceListService.").unwrap_or_default().to_owned())
        }
        "fis" => Route::Fis,
        "eks" => Route::Eks,
        "iam" => Route::Iam,
        "sts" => Route::Sts,
        _ => unknown(req, Some(service)),
    }
}

/// Requests without a credential scope (unsigned ones): by their shape, as fake-ec2 always did.
fn by_shape(req: &SignedRequest<'_>) -> Route {
    if let Some(op) = target_op(req, "AmazonSQS.") {
        return Route::SqsJson(op.to_owned());
    }
    if let Some(op) = target_op(req, "AmazonSSM.") {
        return Route::Ssm(op.to_owned());
    }
    if let Some(op) = target_op(req, "AWSPriceListService.") {
        return Route::Pricing(op.to_owned());
    }
    if header(req, "x-amz-target").is_some() {
        return unknown(req, None);
    }
    if crate::faults::fis::api::is_fis_path(req.path) {
        return Route::Fis;
    }
    if req.path == "/clusters" || req.path.starts_with("/clusters/") {
        return Route::Eks;
    }
    let form = super::query_form(req);
    match form.map.get("Version").map(String::as_str) {
        Some(crate::iam::api::VERSION) => return Route::Iam,
        Some(crate::sts::VERSION) => return Route::Sts,
        _ => {}
    }
    if crate::sqs::is_query_request(&form.map, req.headers) {
        return Route::SqsQuery;
    }
    Route::Ec2
}

/// What the request log calls a request: its service and operation, from where it was routed.
pub fn call_of(route: &Route, req: &SignedRequest<'_>) -> crate::requests::Call {
    let form_action = || form_param(req, "Action").unwrap_or_default();
    let (service, action) = match route {
        Route::Ec2 => ("ec2", form_action()),
        Route::SqsJson(op) => ("sqs", op.clone()),
        Route::SqsQuery => ("sqs", form_action()),
        Route::Ssm(op) => ("ssm", op.clone()),
        Route::Pricing(op) => ("pricing", op.clone()),
        Route::Fis => ("fis", fis_operation(req.method, req.path).to_owned()),
        Route::Eks => ("eks", eks_operation(req.path).to_owned()),
        Route::Iam => ("iam", form_action()),
        Route::Sts => ("sts", form_action()),
        Route::Unknown(u) => (u.service.as_deref().unwrap_or("unknown"), u.operation.clone()),
    };
    let user_agent = header(req, "user-agent").unwrap_or_default().to_owned();
    crate::requests::Call { service: service.to_owned(), action, user_agent }
}

/// The FIS operation a REST request is, by method and path.
fn fis_operation(method: &str, path: &str) -> &'static str {
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    match (method, parts.as_slice()) {
        ("POST", ["experimentTemplates"]) => "CreateExperimentTemplate",
        ("GET", ["experimentTemplates"]) => "ListExperimentTemplates",
        ("GET", ["experimentTemplates", _]) => "GetExperimentTemplate",
        ("DELETE", ["experimentTemplates", _]) => "DeleteExperimentTemplate",
        ("POST", ["experiments"]) => "StartExperiment",
        ("GET", ["experiments"]) => "ListExperiments",
        ("GET", ["experiments", _]) => "GetExperiment",
        ("DELETE", ["experiments", _]) => "StopExperiment",
        ("GET", ["experiments", _, "resolvedTargets"]) => "ListExperimentResolvedTargets",
        _ => "Unknown",
    }
}

/// The EKS operation a REST request is, by path.
fn eks_operation(path: &str) -> &'static str {
    match path.trim_end_matches('/') {
        "/clusters" => "ListClusters",
        p if p.starts_with("/clusters/") && !p["/clusters/".len()..].contains('/') => "DescribeCluster",
        _ => "Unknown",
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn signed_for(service: &str) -> BTreeMap<String, String> {
        BTreeMap::from([(
            "authorization".to_owned(),
            format!(
                "AWS4-HMAC-SHA256 Credential=AKID/20260101/us-west-2/{service}/aws4_request, SignedHeaders=host, Signature=0"
            ),
        )])
    }

    fn route(headers: &BTreeMap<String, String>, method: &str, path: &str, body: &str) -> Route {
        classify(&SignedRequest { method, path, query: "", headers, body: body.as_bytes() })
    }

    #[test]
    fn the_credential_scope_decides_first() {
        let ec2 = signed_for("ec2");
        assert_eq!(route(&ec2, "POST", "/", "Action=DescribeInstances&Version=2016-11-15"), Route::Ec2);
        let mut sqs = signed_for("sqs");
        assert_eq!(route(&sqs, "POST", "/", "Action=SendMessage"), Route::SqsQuery);
        sqs.insert("x-amz-target".into(), "AmazonSQS.SendMessage".into());
        assert_eq!(route(&sqs, "POST", "/", "{}"), Route::SqsJson("SendMessage".into()));
        assert_eq!(route(&signed_for("fis"), "GET", "/experiments", ""), Route::Fis);
        assert_eq!(route(&signed_for("eks"), "GET", "/clusters/fake-cluster", ""), Route::Eks);
        assert_eq!(route(&signed_for("iam"), "POST", "/", "Action=ListInstanceProfiles"), Route::Iam);
        assert_eq!(route(&signed_for("sts"), "POST", "/", "Action=GetCallerIdentity"), Route::Sts);
        // Signed for EKS, never EC2's even with an EC2-looking body.
        assert_eq!(route(&signed_for("eks"), "POST", "/", "Action=DescribeInstances"), Route::Eks);
        let Route::Unknown(u) = route(&signed_for("lambda"), "GET", "/2015-03-31/functions", "") else {
            unreachable!("lambda is not served")
        };
        assert_eq!((u.service.as_deref(), u.protocol), (Some("lambda"), Protocol::RestJson));
    }

    #[test]
    fn unsigned_requests_go_by_their_shape() {
        let none = BTreeMap::new();
        assert_eq!(route(&none, "POST", "/", "Action=DescribeInstances&Version=2016-11-15"), Route::Ec2);
        assert_eq!(route(&none, "POST", "/", "Action=ListQueues&Version=2012-11-05"), Route::SqsQuery);
        assert_eq!(route(&none, "GET", "/experimentTemplates", ""), Route::Fis);
        assert_eq!(route(&none, "GET", "/clusters", ""), Route::Eks);
        assert_eq!(route(&none, "POST", "/", "Action=GetRole&Version=2010-05-08"), Route::Iam);
        assert_eq!(route(&none, "POST", "/", "Action=GetCallerIdentity&Version=2011-06-15"), Route::Sts);
        let target = BTreeMap::from([("x-amz-target".to_owned(), "AmazonSSM.GetParameter".to_owned())]);
        assert_eq!(route(&target, "POST", "/", "{}"), Route::Ssm("GetParameter".into()));
    }
}
