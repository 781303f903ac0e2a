//! Message bodies and message attributes: validation and the MD5 digests SQS returns.
//!
//! `MD5OfMessageAttributes` follows the encoding the SQS Developer Guide documents ("Calculating
//! the MD5 message digest for message attributes"): attributes sorted by name; for each, the
//! name, the data type and the value, each as a 4-byte big-endian length followed by its UTF-8
//! (or binary) bytes, with one transport byte (1 = String/Number, 2 = Binary) between the data type
//! and the value. Clients such as aws-sdk-go-v2 (Karpenter) recompute and compare it.

use std::collections::BTreeMap;

use base64::Engine;
use md5::{Digest, Md5};
use serde::{Deserialize, Serialize};

use super::error::{SqsError, SqsResult};

/// Message attributes per message: at most this many.
pub const MAX_MESSAGE_ATTRIBUTES: usize = 10;

/// One message (or system) attribute value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttributeValue {
    /// `String`, `Number` or `Binary`, optionally with a custom label (`String.json`).
    pub data_type: String,
    pub string_value: Option<String>,
    pub binary_value: Option<Vec<u8>>,
}

impl AttributeValue {
    pub fn string(v: impl Into<String>) -> Self {
        Self { data_type: "String".into(), string_value: Some(v.into()), binary_value: None }
    }

    pub fn number(v: impl Into<String>) -> Self {
        Self { data_type: "Number".into(), string_value: Some(v.into()), binary_value: None }
    }

    pub fn binary(v: impl Into<Vec<u8>>) -> Self {
        Self { data_type: "Binary".into(), string_value: None, binary_value: Some(v.into()) }
    }

    /// The type without its custom label: `String`, `Number`, `Binary` or something invalid.
    pub fn base_type(&self) -> &str {
        self.data_type.split('.').next().unwrap_or_default()
    }

    /// `{"DataType": .., "StringValue" | "BinaryValue": ..}` as both protocols carry it (binary
    /// values base64-encoded).
    pub fn to_json(&self) -> serde_json::Value {
        let mut m = serde_json::Map::new();
        m.insert("DataType".into(), self.data_type.clone().into());
        if let Some(s) = &self.string_value {
            m.insert("StringValue".into(), s.clone().into());
        }
        if let Some(b) = &self.binary_value {
            m.insert("BinaryValue".into(), base64::engine::general_purpose::STANDARD.encode(b).into());
        }
        serde_json::Value::Object(m)
    }

    fn size(&self) -> usize {
        self.data_type.len()
            + self.string_value.as_ref().map_or(0, String::len)
            + self.binary_value.as_ref().map_or(0, Vec::len)
    }
}

pub type MessageAttributes = BTreeMap<String, AttributeValue>;

pub fn md5_hex(bytes: &[u8]) -> String {
    hex::encode(Md5::digest(bytes))
}

fn push_len_prefixed(buf: &mut Vec<u8>, bytes: &[u8]) {
    buf.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
    buf.extend_from_slice(bytes);
}

/// The MD5 of a set of message attributes, or None when there are none (SQS omits the field).
pub fn md5_of_attributes(attrs: &MessageAttributes) -> Option<String> {
    if attrs.is_empty() {
        return None;
    }
    let mut buf = Vec::new();
    for (name, v) in attrs {
        push_len_prefixed(&mut buf, name.as_bytes());
        push_len_prefixed(&mut buf, v.data_type.as_bytes());
        if let Some(b) = &v.binary_value {
            buf.push(2);
            push_len_prefixed(&mut buf, b);
        } else {
            buf.push(1);
            push_len_prefixed(&mut buf, v.string_value.as_deref().unwrap_or_default().as_bytes());
        }
    }
    Some(md5_hex(&buf))
}

/// Bytes a set of attributes counts toward the message size limit (names, types and values).
pub fn attributes_size(attrs: &MessageAttributes) -> usize {
    attrs.iter().map(|(k, v)| k.len() + v.size()).sum()
}

/// SQS accepts only these characters in bodies and string values (XML 1.0's character set).
pub fn valid_chars(s: &str) -> bool {
    s.chars().all(
        |c| matches!(c, '\u{9}' | '\u{A}' | '\u{D}' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..),
    )
}

/// Checks a message body: present, not empty, allowed characters, and with its attributes within
/// the queue's maximum message size.
pub fn validate_body(body: &str, attrs_size: usize, max: usize) -> SqsResult<()> {
    if body.is_empty() {
        return Err(SqsError::missing("MessageBody"));
    }
    if !valid_chars(body) {
        return Err(SqsError::invalid_message_contents(
            "Invalid characters found. Valid unicode characters are #x9 | #xA | #xD | #x20 to #xD7FF | #xE000 to #xFFFD | #x10000 to #x10FFFF",
        ));
    }
    let size = body.len() + attrs_size;
    if size > max {
        return Err(SqsError::invalid_parameter(format!(
            "One or more parameters are invalid. Reason: Message must be shorter than {max} bytes."
        )));
    }
    Ok(())
}

/// A message attribute name: `[A-Za-z0-9_.-]`, at most 256 characters, no leading, trailing or
/// doubled period, not starting with `AWS.` or `Amazon.`.
fn valid_attribute_name(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    !name.is_empty()
        && name.len() <= 256
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        && !name.starts_with('.')
        && !name.ends_with('.')
        && !name.contains("..")
        && !lower.starts_with("aws.")
        && !lower.starts_with("amazon.")
}

/// Checks message attributes as SendMessage does.
pub fn validate_attributes(attrs: &MessageAttributes) -> SqsResult<()> {
    if attrs.len() > MAX_MESSAGE_ATTRIBUTES {
        return Err(SqsError::invalid_parameter(format!(
            "Number of message attributes [{}] exceeds the allowed maximum [{MAX_MESSAGE_ATTRIBUTES}].",
            attrs.len()
        )));
    }
    for (name, v) in attrs {
        if !valid_attribute_name(name) {
            return Err(SqsError::invalid_parameter(format!(
                "Message (user) attribute name '{name}' is invalid. Message attribute names can contain only A-Z, a-z, 0-9, underscore (_), hyphen (-), and period (.), must not start or end with a period, must not contain two periods in a row, and must not start with 'AWS.' or 'Amazon.'."
            )));
        }
        validate_value(name, v, "user")?;
    }
    Ok(())
}

/// Checks one attribute value's type and the field it uses.
pub fn validate_value(name: &str, v: &AttributeValue, kind: &str) -> SqsResult<()> {
    if v.data_type.is_empty() {
        return Err(SqsError::invalid_parameter(format!(
            "The message attribute '{name}' must contain non-empty message attribute type."
        )));
    }
    if v.data_type.len() > 256 {
        return Err(SqsError::invalid_parameter(format!(
            "Message ({kind}) attribute '{name}' type must be less than 256 characters."
        )));
    }
    match v.base_type() {
        "String" | "Number" => {
            let Some(s) = v.string_value.as_deref().filter(|_| v.binary_value.is_none()) else {
                return Err(SqsError::invalid_parameter(format!(
                    "The message attribute '{name}' with type '{}' must use field 'String'.",
                    v.base_type()
                )));
            };
            if s.is_empty() {
                return Err(SqsError::invalid_parameter(format!(
                    "The message attribute '{name}' must contain non-empty message attribute value for message attribute type '{}'.",
                    v.base_type()
                )));
            }
            if !valid_chars(s) {
                return Err(SqsError::invalid_message_contents(format!(
                    "Invalid characters found in the value of message attribute '{name}'."
                )));
            }
            if v.base_type() == "Number" && !valid_number(s) {
                return Err(SqsError::invalid_parameter(format!(
                    "Can't cast the value of message ({kind}) attribute '{name}' to a number."
                )));
            }
        }
        "Binary" => {
            if v.binary_value.is_none() || v.string_value.is_some() {
                return Err(SqsError::invalid_parameter(format!(
                    "The message attribute '{name}' with type 'Binary' must use field 'Binary'."
                )));
            }
        }
        _ => {
            return Err(SqsError::invalid_parameter(format!(
                "The type of message ({kind}) attribute '{name}' is invalid. You must use only the following supported type prefixes: Binary, Number, String."
            )));
        }
    }
    Ok(())
}

/// SQS numbers: decimal, up to 38 significant digits, magnitude between 10^-128 and 10^126.
fn valid_number(s: &str) -> bool {
    let t = s.trim();
    let digits = t.chars().filter(char::is_ascii_digit).count();
    match t.parse::<f64>() {
        Ok(v) if v.is_finite() => digits <= 38 && (v == 0.0 || (v.abs() >= 1e-128 && v.abs() <= 1e126)),
        _ => false,
    }
}

/// Which of `attrs` a `MessageAttributeNames` list selects: `All` or `.*` for all, `prefix.*` for a
/// prefix, else exact names.
pub fn select_attributes(attrs: &MessageAttributes, names: &[String]) -> MessageAttributes {
    attrs
        .iter()
        .filter(|(k, _)| {
            names.iter().any(|n| {
                n == "All"
                    || n == ".*"
                    || n == *k
                    || n.strip_suffix(".*").is_some_and(|p| k.starts_with(&format!("{p}.")))
            })
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn md5_of_body_is_plain_md5() {
        assert_eq!(md5_hex(b"hello"), "5d41402abc4b2a76b9719d911017c592");
    }

    /// Vectors computed with the encoding documented by AWS, cross-checked against moto's
    /// `_calculate_message_attributes_md5` in the Python suite.
    #[test]
    fn md5_of_attributes_uses_the_documented_encoding() {
        assert_eq!(md5_of_attributes(&MessageAttributes::new()), None);
        let attrs = MessageAttributes::from([("a".to_owned(), AttributeValue::string("b"))]);
        let mut expected = Vec::new();
        expected.extend_from_slice(&[0, 0, 0, 1, b'a', 0, 0, 0, 6]);
        expected.extend_from_slice(b"String");
        expected.extend_from_slice(&[1, 0, 0, 0, 1, b'b']);
        assert_eq!(md5_of_attributes(&attrs), Some(md5_hex(&expected)));
        let bin = MessageAttributes::from([("z".to_owned(), AttributeValue::binary(vec![0u8, 255]))]);
        let mut expected = Vec::new();
        expected.extend_from_slice(&[0, 0, 0, 1, b'z', 0, 0, 0, 6]);
        expected.extend_from_slice(b"Binary");
        expected.extend_from_slice(&[2, 0, 0, 0, 2, 0, 255]);
        assert_eq!(md5_of_attributes(&bin), Some(md5_hex(&expected)));
    }

    #[test]
    fn validation() {
        assert!(validate_body("x", 0, 10).is_ok());
        assert_eq!(validate_body("", 0, 10).map_err(|e| e.code), Err("MissingParameter"));
        assert_eq!(validate_body("12345678901", 0, 10).map_err(|e| e.code), Err("InvalidParameterValue"));
        assert_eq!(validate_body("a\u{1}b", 0, 10).map_err(|e| e.code), Err("InvalidMessageContents"));
        let ok = MessageAttributes::from([("n".to_owned(), AttributeValue::number("-1.5e3"))]);
        assert!(validate_attributes(&ok).is_ok());
        let bad = MessageAttributes::from([("n".to_owned(), AttributeValue::number("abc"))]);
        assert!(validate_attributes(&bad).is_err());
        let bad = MessageAttributes::from([("AWS.x".to_owned(), AttributeValue::string("v"))]);
        assert!(validate_attributes(&bad).is_err());
        let bad = MessageAttributes::from([(
            "t".to_owned(),
            AttributeValue { data_type: "Blob".into(), string_value: Some("x".into()), binary_value: None },
        )]);
        assert!(validate_attributes(&bad).is_err());
    }

    #[test]
    fn selection() {
        let attrs = MessageAttributes::from([
            ("a.b".to_owned(), AttributeValue::string("1")),
            ("a.c".to_owned(), AttributeValue::string("2")),
            ("d".to_owned(), AttributeValue::string("3")),
        ]);
        assert_eq!(select_attributes(&attrs, &["All".into()]).len(), 3);
        assert_eq!(select_attributes(&attrs, &["a.*".into()]).len(), 2);
        assert_eq!(select_attributes(&attrs, &["d".into(), "x".into()]).len(), 1);
        assert!(select_attributes(&attrs, &[]).is_empty());
    }
}
