//! The other services' wires with junk: SQS (JSON 1.0 and Query), FIS and EKS (REST-JSON), Pricing
//! and SSM (JSON 1.1), IAM and STS (Query), SigV4 `Authorization` headers, and requests of any shape.

use proptest::prelude::*;
use serde_json::{Map, Number, Value};

use crate::fuzz;
use crate::wire::{Req, Wire, exchange, world};

const QUEUE: &str = "http://localhost/123456789012/karpenter-interruption";

/// Strings the services look up or parse, and noise. Long-poll waits of 1..=20 s stay out: they
/// would wait in real time.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "",
            "q",
            "karpenter-interruption",
            QUEUE,
            "http://localhost/123456789012/nope",
            "0",
            "-1",
            "21",
            "10",
            "11",
            "262144",
            "1048577",
            "All",
            "VisibilityTimeout",
            "MessageRetentionPeriod",
            "FifoQueue",
            "true",
            "String",
            "Number",
            "Binary",
            "String.x",
            "fake-cluster",
            "nope",
            "AmazonEC2",
            "instanceType",
            "TERM_MATCH",
            "EQUALS",
            "ANY_OF",
            "m5.large",
            "/aws/service/eks/optimized-ami/1.34/amazon-linux-2023/x86_64/standard/recommended/image_id",
            "/aws/service/bottlerocket/aws-k8s-1.34/x86_64/latest/image_id",
            "/aws/",
            "EXT-1",
            "EXT-x",
            "exp-x",
            "aws:ec2:send-spot-instance-interruptions",
            "aws:ec2:spot-instance",
            "aws:ec2:instance",
            "ALL",
            "COUNT(2)",
            "PERCENT(50)",
            "PERCENT(500)",
            "PT2M",
            "PT",
            "P1D",
            "none",
            "arn:aws:iam::123456789012:role/x",
            "arn:aws:ec2:us-west-2:123456789012:instance/i-0000000000000dead",
            "durationBeforeInterruption",
        ])
        .prop_map(str::to_owned),
        "[ -~]{0,24}",
        any::<String>(),
    ]
}

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        prop_oneof![Just(0i64), Just(1), Just(-1), Just(10), Just(11), Just(21), Just(43_200), any::<i64>()]
            .prop_map(Value::from),
        any::<f64>().prop_map(|f| Number::from_f64(f).map_or(Value::Null, Value::Number)),
        text().prop_map(Value::String),
    ]
}

/// JSON with the keys a service reads (and others), nested a few levels.
fn json(keys: &'static [&'static str]) -> BoxedStrategy<Value> {
    let key = prop_oneof![4 => prop::sample::select(keys).prop_map(str::to_owned), 1 => "[A-Za-z]{0,10}"];
    leaf()
        .prop_recursive(3, 32, 6, move |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::vec((key.clone(), inner), 0..6)
                    .prop_map(|kv| Value::Object(kv.into_iter().collect())),
            ]
        })
        .boxed()
}

/// A JSON request body: mostly an object of known keys, sometimes any JSON, sometimes not JSON.
fn json_body(keys: &'static [&'static str]) -> impl Strategy<Value = Vec<u8>> {
    let object = prop::collection::vec((prop::sample::select(keys), json(keys)), 0..8)
        .prop_map(|kv| Value::Object(kv.into_iter().map(|(k, v)| (k.to_owned(), v)).collect::<Map<_, _>>()));
    prop_oneof![
        6 => object.prop_map(|v| v.to_string().into_bytes()),
        1 => json(keys).prop_map(|v| v.to_string().into_bytes()),
        1 => prop::collection::vec(any::<u8>(), 0..64),
    ]
}

const SQS_KEYS: &[&str] = &[
    "QueueUrl",
    "QueueName",
    "QueueNamePrefix",
    "MessageBody",
    "ReceiptHandle",
    "MaxNumberOfMessages",
    "VisibilityTimeout",
    "WaitTimeSeconds",
    "Attributes",
    "AttributeNames",
    "MessageAttributes",
    "MessageSystemAttributeNames",
    "MessageAttributeNames",
    "Entries",
    "Id",
    "DelaySeconds",
    "MessageGroupId",
    "MessageDeduplicationId",
    "Tags",
    "TagKeys",
    "DataType",
    "StringValue",
    "BinaryValue",
    "MaxResults",
    "NextToken",
    "ReceiveRequestAttemptId",
    "QueueOwnerAWSAccountId",
    "SourceArn",
];

fn sqs_op() -> impl Strategy<Value = String> {
    prop_oneof![
        8 => prop::sample::select(fake_ec2::sqs::actions::ACTIONS).prop_map(str::to_owned),
        1 => "[A-Za-z]{0,16}",
    ]
}

pub fn sqs_json() {
    let state = world();
    fuzz("sqs json", (sqs_op(), json_body(SQS_KEYS)), |(op, body)| {
        let req =
            Req::post("sqs", "application/x-amz-json-1.0", body).header("x-amz-target", &format!("AmazonSQS.{op}"));
        exchange(&state, Wire::Json, &req)
    });
}

/// Query parameter names of SQS, with the list members its Query protocol flattens.
const SQS_PARAMS: &[&str] = &[
    "QueueUrl",
    "QueueName",
    "MessageBody",
    "ReceiptHandle",
    "MaxNumberOfMessages",
    "VisibilityTimeout",
    "Attribute.1.Name",
    "Attribute.1.Value",
    "AttributeName.1",
    "MessageAttribute.1.Name",
    "MessageAttribute.1.Value.DataType",
    "MessageAttribute.1.Value.StringValue",
    "MessageAttributeName.1",
    "SendMessageBatchRequestEntry.1.Id",
    "SendMessageBatchRequestEntry.1.MessageBody",
    "SendMessageBatchRequestEntry.11.Id",
    "DeleteMessageBatchRequestEntry.1.Id",
    "DeleteMessageBatchRequestEntry.1.ReceiptHandle",
    "ChangeMessageVisibilityBatchRequestEntry.1.Id",
    "Tag.1.Key",
    "Tag.1.Value",
    "TagKey.1",
    "DelaySeconds",
    "QueueNamePrefix",
    "MaxResults",
    "NextToken",
    "Version",
];

fn form(action: String, pairs: Vec<(String, String)>) -> String {
    let mut s = form_urlencoded::Serializer::new(String::new());
    s.append_pair("Action", &action);
    for (k, v) in pairs {
        s.append_pair(&k, &v);
    }
    s.finish()
}

fn params(names: &'static [&'static str]) -> impl Strategy<Value = Vec<(String, String)>> {
    let name = prop_oneof![6 => prop::sample::select(names).prop_map(str::to_owned), 1 => "[A-Za-z.0-9]{0,16}"];
    prop::collection::vec((name, text()), 0..10)
}

pub fn sqs_query() {
    let state = world();
    fuzz("sqs query", (sqs_op(), params(SQS_PARAMS)), |(op, pairs)| {
        let body = form(op, pairs);
        let req = Req::post("sqs", "application/x-www-form-urlencoded", body);
        exchange(&state, Wire::Query, &req)
    });
}

const FIS_KEYS: &[&str] = &[
    "clientToken",
    "description",
    "roleArn",
    "targets",
    "actions",
    "stopConditions",
    "tags",
    "experimentOptions",
    "resourceType",
    "resourceArns",
    "resourceTags",
    "filters",
    "selectionMode",
    "path",
    "values",
    "actionId",
    "parameters",
    "targets",
    "startAfter",
    "source",
    "value",
    "experimentTemplateId",
    "durationBeforeInterruption",
    "duration",
    "Instances",
    "SpotInstances",
    "emptyTargetResolutionMode",
    "accountTargeting",
];

fn fis_request() -> impl Strategy<Value = (String, String)> {
    let path = prop_oneof![
        prop::sample::select(vec![
            "/experimentTemplates",
            "/experiments",
            "/experimentTemplates/EXT-1",
            "/experiments/EXP-1",
            "/experiments/EXP-1/resolvedTargets",
            "/experimentTemplates/",
            "/experiments//x",
            "/experimentTemplates/%FF",
            "/experiments?maxResults=0",
            "/experiments?maxResults=x&nextToken=%",
            "/experimentTemplates?maxResults=101",
        ])
        .prop_map(str::to_owned),
        "/experiment(Template)?s/[A-Za-z0-9%/]{0,12}",
    ];
    let method = prop::sample::select(vec!["GET", "POST", "PUT", "DELETE", "PATCH"]).prop_map(str::to_owned);
    (method, path)
}

pub fn fis() {
    let state = world();
    fuzz("fis", (fis_request(), json_body(FIS_KEYS)), |((method, path), body)| {
        let mut req = Req::post("fis", "application/json", body);
        req.method = method;
        req.target = path;
        exchange(&state, Wire::RestJson, &req)
    });
}

const PRICING_KEYS: &[&str] =
    &["ServiceCode", "Filters", "Type", "Field", "Value", "FormatVersion", "MaxResults", "NextToken", "AttributeName"];

pub fn pricing() {
    let state = world();
    let op = prop_oneof![
        4 => prop::sample::select(fake_ec2::pricing::ACTIONS).prop_map(str::to_owned),
        1 => "[A-Za-z]{0,12}",
    ];
    fuzz("pricing", (op, json_body(PRICING_KEYS)), |(op, body)| {
        let req = Req::post("pricing", "application/x-amz-json-1.1", body)
            .header("x-amz-target", &format!("AWSPriceListService.{op}"));
        exchange(&state, Wire::Json, &req)
    });
}

const SSM_KEYS: &[&str] =
    &["Name", "Names", "Path", "Recursive", "WithDecryption", "MaxResults", "NextToken", "ParameterFilters"];

pub fn ssm() {
    let state = world();
    let op = prop_oneof![
        4 => prop::sample::select(fake_ec2::ssm::ACTIONS).prop_map(str::to_owned),
        1 => "[A-Za-z]{0,12}",
    ];
    fuzz("ssm", (op, json_body(SSM_KEYS)), |(op, body)| {
        let req =
            Req::post("ssm", "application/x-amz-json-1.1", body).header("x-amz-target", &format!("AmazonSSM.{op}"));
        exchange(&state, Wire::Json, &req)
    });
}

pub fn eks() {
    let state = world();
    let path = prop_oneof![
        prop::sample::select(vec![
            "/clusters",
            "/clusters/fake-cluster",
            "/clusters/nope",
            "/clusters/",
            "/clusters//x",
            "/clusters?maxResults=0",
            "/clusters?maxResults=101&nextToken=x",
            "/clusters/fake-cluster/nodegroups",
            "/clusters?include=all&maxResults=-1",
        ])
        .prop_map(str::to_owned),
        "/clusters[/?][A-Za-z0-9%=&/-]{0,16}",
    ];
    let method = prop::sample::select(vec!["GET", "POST", "DELETE"]).prop_map(str::to_owned);
    fuzz("eks", (method, path, prop::collection::vec(any::<u8>(), 0..32)), |(method, path, body)| {
        let mut req = Req::post("eks", "application/json", body);
        req.method = method;
        req.target = path;
        exchange(&state, Wire::RestJson, &req)
    });
}

const IAM_PARAMS: &[&str] = &[
    "InstanceProfileName",
    "RoleName",
    "Path",
    "PathPrefix",
    "Tags.member.1.Key",
    "Tags.member.1.Value",
    "TagKeys.member.1",
    "Marker",
    "MaxItems",
    "Version",
];

pub fn iam_sts() {
    let state = world();
    let op = prop_oneof![
        4 => prop::sample::select(fake_ec2::iam::api::ACTIONS).prop_map(|a| ("iam", a.to_owned())),
        1 => prop::sample::select(fake_ec2::sts::ACTIONS).prop_map(|a| ("sts", a.to_owned())),
        1 => ("[A-Za-z]{0,12}").prop_map(|a| ("iam", a)),
    ];
    fuzz("iam and sts", (op, params(IAM_PARAMS)), |((service, op), pairs)| {
        let req = Req::post(service, "application/x-www-form-urlencoded", form(op, pairs));
        exchange(&state, Wire::Query, &req)
    });
}

/// `Authorization` headers near the SigV4 grammar, and the presigned-URL query form.
fn authorization() -> impl Strategy<Value = String> {
    let part = prop_oneof![
        Just("AWS4-HMAC-SHA256 ".to_owned()),
        Just("Credential=".to_owned()),
        Just("AKIDTEST/20260101/us-west-2/ec2/aws4_request".to_owned()),
        prop::sample::select(vec!["ec2", "sqs", "iam", "sts", "fis", "eks", "ssm", "pricing", "s3", ""])
            .prop_map(|s| format!("AKID/20260101/us-west-2/{s}/aws4_request")),
        Just("/".to_owned()),
        Just(", ".to_owned()),
        Just(",".to_owned()),
        Just("=".to_owned()),
        Just("SignedHeaders=host;x-amz-date".to_owned()),
        Just("Signature=00".to_owned()),
        "[ -~]{0,12}",
        any::<String>(),
    ];
    prop::collection::vec(part, 0..8).prop_map(|p| p.concat())
}

pub fn sigv4() {
    let state = world();
    let presign = prop_oneof![
        Just(String::new()),
        authorization().prop_map(|a| {
            let mut s = form_urlencoded::Serializer::new(String::from("/?"));
            s.append_pair("X-Amz-Algorithm", "AWS4-HMAC-SHA256").append_pair("X-Amz-Credential", &a);
            s.finish()
        }),
    ];
    fuzz("sigv4", (authorization(), presign, text()), |(auth, target, date)| {
        let mut req = Req::post("ec2", "application/x-www-form-urlencoded", "Action=DescribeAvailabilityZones");
        req.headers[0].1 = auth;
        req.headers.push(("x-amz-date".into(), date));
        if !target.is_empty() {
            req.target = target;
        }
        exchange(&state, Wire::Any, &req)
    });
}

/// Any method, path, content type, target and body, signed for any service or not at all.
pub fn any_shape() {
    let state = world();
    let service = prop::sample::select(vec!["ec2", "sqs", "iam", "sts", "fis", "eks", "ssm", "pricing", "s3"]);
    let content_type = prop::sample::select(vec![
        "application/x-www-form-urlencoded",
        "application/x-amz-json-1.0",
        "application/x-amz-json-1.1",
        "application/json",
        "text/plain",
        "",
    ]);
    let target =
        prop_oneof![Just(None), "(AmazonSQS|AmazonSSM|AWSPriceListService|Foo)\\.[A-Za-z]{0,10}".prop_map(Some)];
    let path = prop_oneof![Just("/".to_owned()), "/[A-Za-z0-9%/?=&._-]{0,20}"];
    let method = prop::sample::select(vec!["GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS"]);
    let shape =
        (service, any::<bool>(), content_type, target, path, method, prop::collection::vec(any::<u8>(), 0..128));
    fuzz("requests of any shape", shape, |(service, sign, ct, target, path, method, body)| {
        let mut req = Req::post(service, ct, body);
        if !sign {
            req.headers.retain(|(k, _)| k != "authorization");
        }
        if let Some(t) = target {
            req = req.header("x-amz-target", &t);
        }
        req.method = method.to_owned();
        // The admin API is not AWS's and has its own tests; the fuzzer stays off it.
        req.target = if path.starts_with("/_fake") { "/".into() } else { path };
        exchange(&state, Wire::Any, &req)
    });
}
