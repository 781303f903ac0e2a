//! The Query protocol front (`Action=SendMessage&Version=2012-11-05`, form-encoded, XML answers),
//! spoken by SDKs older than the JSON switch (botocore < 1.31.82, aws-sdk-go < 1.47.7, ...).
//!
//! Requests are turned into the JSON 1.0 input shape and answers rendered from the JSON 1.0
//! output, using the member names of the SQS smithy model's `xmlName`/`xmlFlattened` traits:
//! `Attribute.N.Name/Value` for attribute maps, `MessageAttribute.N.Name` with
//! `MessageAttribute.N.Value.{StringValue,BinaryValue,DataType}`, `AttributeName.N`,
//! `SendMessageBatchRequestEntry.N.*`, and flattened lists in answers (`<QueueUrl>` repeated,
//! `<Message>`, `<Attribute><Name/><Value/></Attribute>`, `<BatchResultErrorEntry>`).

use std::collections::BTreeMap;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value};

use super::error::{SqsError, SqsResult};
use crate::xml::escape_into;
pub const VERSION: &str = "2012-11-05";
pub const XMLNS: &str = "http://queue.amazonaws.com/doc/2012-11-05/";

/// How a flattened Query member maps to a JSON member.
enum Kind {
    /// `Name.N=value` → `"Json": [..]`
    Scalars(&'static str),
    /// `Name.N.Field=..` → `"Json": [{..}]`
    Structs(&'static str),
    /// `Name.N.<key>=k`, `Name.N.<value>=v` → `"Json": {k: v}`; `structured` values are objects.
    Map { json: &'static str, key: &'static str, value: &'static str, structured: bool },
}

fn kind(name: &str, action: &str) -> Option<Kind> {
    Some(match name {
        "Attribute" => Kind::Map { json: "Attributes", key: "Name", value: "Value", structured: false },
        "Tag" => Kind::Map {
            json: if action == "CreateQueue" { "tags" } else { "Tags" },
            key: "Key",
            value: "Value",
            structured: false,
        },
        "MessageAttribute" => Kind::Map { json: "MessageAttributes", key: "Name", value: "Value", structured: true },
        "MessageSystemAttribute" => {
            Kind::Map { json: "MessageSystemAttributes", key: "Name", value: "Value", structured: true }
        }
        "AttributeName" => Kind::Scalars("AttributeNames"),
        "MessageAttributeName" => Kind::Scalars("MessageAttributeNames"),
        "TagKey" => Kind::Scalars("TagKeys"),
        "AWSAccountId" => Kind::Scalars("AWSAccountIds"),
        "ActionName" => Kind::Scalars("Actions"),
        "SendMessageBatchRequestEntry"
        | "DeleteMessageBatchRequestEntry"
        | "ChangeMessageVisibilityBatchRequestEntry" => Kind::Structs("Entries"),
        _ => return None,
    })
}

/// The parameters below `prefix` as (rest of the key, value).
fn under<'a>(form: &'a BTreeMap<String, String>, prefix: &'a str) -> impl Iterator<Item = (&'a str, &'a str)> + 'a {
    form.range::<str, _>((std::ops::Bound::Included(prefix), std::ops::Bound::Unbounded))
        .take_while(move |(k, _)| k.starts_with(prefix))
        .map(move |(k, v)| (&k[prefix.len()..], v.as_str()))
}

/// Rebuilds the JSON input object from the flattened form parameters below `prefix`.
fn unflatten(form: &BTreeMap<String, String>, prefix: &str, action: &str) -> Map<String, Value> {
    let mut out = Map::new();
    // Group by the first key segment, keeping each group's 1-based indexes in numeric order.
    let mut groups: BTreeMap<&str, BTreeMap<u32, ()>> = BTreeMap::new();
    for (rest, v) in under(form, prefix) {
        let (first, tail) = rest.split_once('.').unwrap_or((rest, ""));
        if matches!(first, "Action" | "Version") && prefix.is_empty() {
            continue;
        }
        match kind(first, action) {
            None if tail.is_empty() => {
                out.insert(first.to_owned(), Value::String(v.to_owned()));
            }
            None => {}
            Some(_) => {
                let n = tail.split('.').next().and_then(|n| n.parse::<u32>().ok());
                if let Some(n) = n {
                    groups.entry(first).or_default().insert(n, ());
                }
            }
        }
    }
    for (name, indexes) in groups {
        let Some(k) = kind(name, action) else { continue };
        match k {
            Kind::Scalars(json) => {
                let items: Vec<Value> = indexes
                    .keys()
                    .filter_map(|n| form.get(&format!("{prefix}{name}.{n}")).map(|v| Value::String(v.clone())))
                    .collect();
                out.insert(json.to_owned(), Value::Array(items));
            }
            Kind::Structs(json) => {
                let items: Vec<Value> = indexes
                    .keys()
                    .map(|n| Value::Object(unflatten(form, &format!("{prefix}{name}.{n}."), action)))
                    .collect();
                out.insert(json.to_owned(), Value::Array(items));
            }
            Kind::Map { json, key, value, structured } => {
                let mut map = Map::new();
                for n in indexes.keys() {
                    let base = format!("{prefix}{name}.{n}.");
                    let Some(k) = form.get(&format!("{base}{key}")) else { continue };
                    let v = if structured {
                        Value::Object(unflatten(form, &format!("{base}{value}."), action))
                    } else {
                        form.get(&format!("{base}{value}")).map_or(Value::Null, |v| Value::String(v.clone()))
                    };
                    map.insert(k.clone(), v);
                }
                out.insert(json.to_owned(), Value::Object(map));
            }
        }
    }
    out
}

/// The JSON input for a Query request. A queue URL in the request path (`/<account>/<name>`)
/// stands for `QueueUrl` when the form has none.
pub fn to_input(form: &BTreeMap<String, String>, action: &str, path: &str, host: &str) -> Value {
    let mut input = unflatten(form, "", action);
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    if !input.contains_key("QueueUrl")
        && let [account, name] = segs.as_slice()
        && !account.is_empty()
        && !name.is_empty()
    {
        input.insert("QueueUrl".into(), Value::String(format!("http://{host}/{account}/{name}")));
    }
    Value::Object(input)
}

/// XML element names of flattened members in answers (smithy `xmlName`).
fn flattened(member: &str, action: &str) -> Option<(&'static str, Option<(&'static str, &'static str)>)> {
    Some(match member {
        "QueueUrls" | "queueUrls" => ("QueueUrl", None),
        "Messages" => ("Message", None),
        "Attributes" => ("Attribute", Some(("Name", "Value"))),
        "MessageAttributes" => ("MessageAttribute", Some(("Name", "Value"))),
        "Tags" => ("Tag", Some(("Key", "Value"))),
        "Failed" => ("BatchResultErrorEntry", None),
        "Successful" => match action {
            "SendMessageBatch" => ("SendMessageBatchResultEntry", None),
            "DeleteMessageBatch" => ("DeleteMessageBatchResultEntry", None),
            _ => ("ChangeMessageVisibilityBatchResultEntry", None),
        },
        _ => return None,
    })
}

fn scalar_into(buf: &mut String, v: &Value) {
    match v {
        Value::String(s) => escape_into(buf, s),
        Value::Bool(b) => buf.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => buf.push_str(&n.to_string()),
        _ => {}
    }
}

fn elem(buf: &mut String, name: &str, v: &Value, action: &str) {
    buf.push('<');
    buf.push_str(name);
    buf.push('>');
    match v {
        Value::Object(m) => members(buf, m, action),
        other => scalar_into(buf, other),
    }
    buf.push_str("</");
    buf.push_str(name);
    buf.push('>');
}

fn members(buf: &mut String, m: &Map<String, Value>, action: &str) {
    for (k, v) in m {
        match (flattened(k, action), v) {
            (Some((el, None)), Value::Array(items)) => {
                for it in items {
                    elem(buf, el, it, action);
                }
            }
            (Some((el, Some((kn, vn)))), Value::Object(map)) => {
                for (mk, mv) in map {
                    buf.push('<');
                    buf.push_str(el);
                    buf.push('>');
                    elem(buf, kn, &Value::String(mk.clone()), action);
                    elem(buf, vn, mv, action);
                    buf.push_str("</");
                    buf.push_str(el);
                    buf.push('>');
                }
            }
            (_, Value::Null) => {}
            _ => elem(buf, k, v, action),
        }
    }
}

/// `<ActionResponse xmlns=..><ActionResult>..</ActionResult><ResponseMetadata>..` for a success.
pub fn render(action: &str, request_id: &str, output: &Value) -> String {
    let mut buf = String::with_capacity(512);
    buf.push_str(r#"<?xml version="1.0" encoding="UTF-8"?>"#);
    buf.push('\n');
    buf.push_str(&format!(r#"<{action}Response xmlns="{XMLNS}">"#));
    if let Value::Object(m) = output
        && !m.is_empty()
    {
        buf.push_str(&format!("<{action}Result>"));
        members(&mut buf, m, action);
        buf.push_str(&format!("</{action}Result>"));
    }
    buf.push_str("<ResponseMetadata><RequestId>");
    escape_into(&mut buf, request_id);
    buf.push_str(&format!("</RequestId></ResponseMetadata></{action}Response>"));
    buf
}

pub fn render_error(e: &SqsError, request_id: &str) -> String {
    let mut buf = String::with_capacity(384);
    buf.push_str(r#"<?xml version="1.0" encoding="UTF-8"?>"#);
    buf.push('\n');
    buf.push_str(&format!(r#"<ErrorResponse xmlns="{XMLNS}"><Error><Type>{}</Type><Code>"#, e.fault()));
    escape_into(&mut buf, e.code);
    buf.push_str("</Code><Message>");
    let message = if e.shape == "QueueDoesNotExist" {
        "The specified queue does not exist for this wsdl version."
    } else {
        e.message.as_str()
    };
    escape_into(&mut buf, message);
    buf.push_str("</Message><Detail/></Error><RequestId>");
    escape_into(&mut buf, request_id);
    buf.push_str("</RequestId></ErrorResponse>");
    buf
}

pub fn respond(action: &str, request_id: &str, result: SqsResult<Value>) -> Response {
    let (status, body) = match result {
        Ok(v) => (200, render(action, request_id, &v)),
        Err(e) => (e.status, render_error(&e, request_id)),
    };
    let mut r = (StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR), body).into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/xml"));
    if let Ok(v) = HeaderValue::from_str(request_id) {
        r.headers_mut().insert("x-amzn-requestid", v);
    }
    r
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn form(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn unflattens_like_the_model_says() {
        let f = form(&[
            ("Action", "SendMessageBatch"),
            ("Version", VERSION),
            ("QueueUrl", "http://h/123456789012/q"),
            ("SendMessageBatchRequestEntry.1.Id", "a"),
            ("SendMessageBatchRequestEntry.1.MessageBody", "one"),
            ("SendMessageBatchRequestEntry.1.MessageAttribute.1.Name", "k"),
            ("SendMessageBatchRequestEntry.1.MessageAttribute.1.Value.DataType", "String"),
            ("SendMessageBatchRequestEntry.1.MessageAttribute.1.Value.StringValue", "v"),
            ("SendMessageBatchRequestEntry.10.Id", "j"),
            ("SendMessageBatchRequestEntry.10.MessageBody", "ten"),
            ("SendMessageBatchRequestEntry.2.Id", "b"),
            ("SendMessageBatchRequestEntry.2.MessageBody", "two"),
            ("SendMessageBatchRequestEntry.2.DelaySeconds", "5"),
        ]);
        let v = to_input(&f, "SendMessageBatch", "/", "h");
        assert_eq!(
            v,
            json!({
                "QueueUrl": "http://h/123456789012/q",
                "Entries": [
                    {"Id": "a", "MessageBody": "one", "MessageAttributes": {"k": {"DataType": "String", "StringValue": "v"}}},
                    {"Id": "b", "MessageBody": "two", "DelaySeconds": "5"},
                    {"Id": "j", "MessageBody": "ten"},
                ]
            })
        );
        let f = form(&[
            ("Action", "CreateQueue"),
            ("QueueName", "q"),
            ("Attribute.1.Name", "VisibilityTimeout"),
            ("Attribute.1.Value", "20"),
            ("Tag.1.Key", "team"),
            ("Tag.1.Value", "infra"),
        ]);
        assert_eq!(
            to_input(&f, "CreateQueue", "/", "h"),
            json!({"QueueName": "q", "Attributes": {"VisibilityTimeout": "20"}, "tags": {"team": "infra"}})
        );
        let f = form(&[("Action", "ReceiveMessage"), ("AttributeName.1", "All"), ("MessageAttributeName.1", "All")]);
        assert_eq!(
            to_input(&f, "ReceiveMessage", "/123456789012/q", "h:1"),
            json!({"QueueUrl": "http://h:1/123456789012/q", "AttributeNames": ["All"], "MessageAttributeNames": ["All"]})
        );
    }

    #[test]
    fn renders_flattened_members() {
        let out = json!({"Messages": [{"MessageId": "m", "Body": "a<b", "Attributes": {"SentTimestamp": "1"},
            "MessageAttributes": {"k": {"DataType": "String", "StringValue": "v"}}}]});
        let xml = render("ReceiveMessage", "rid", &out);
        assert!(xml.contains("<ReceiveMessageResult><Message><Attribute><Name>SentTimestamp</Name><Value>1</Value></Attribute><Body>a&lt;b</Body><MessageAttribute><Name>k</Name><Value><DataType>String</DataType><StringValue>v</StringValue></Value></MessageAttribute><MessageId>m</MessageId></Message></ReceiveMessageResult>"), "{xml}");
        let xml = render("DeleteMessage", "rid", &json!({}));
        assert!(xml.ends_with(r#"<DeleteMessageResponse xmlns="http://queue.amazonaws.com/doc/2012-11-05/"><ResponseMetadata><RequestId>rid</RequestId></ResponseMetadata></DeleteMessageResponse>"#));
        let xml = render_error(&SqsError::queue_does_not_exist(), "rid");
        assert!(xml.contains("<Error><Type>Sender</Type><Code>AWS.SimpleQueueService.NonExistentQueue</Code>"));
    }
}
