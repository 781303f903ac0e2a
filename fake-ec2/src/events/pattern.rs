//! EventBridge event patterns: a pattern is a JSON object whose leaves are arrays of matchers;
//! an event matches when every field the pattern names matches one of its matchers.
//!
//! Matchers: exact values (string, number, boolean, null), `{"prefix": s}`, `{"suffix": s}`,
//! `{"equals-ignore-case": s}`, `{"anything-but": v | [v..] | {"prefix": s}}`, `{"exists": bool}`,
//! and `{"numeric": [op, n, (op, n)]}`. When the event's field is an array, it matches if any of
//! its elements does (as EventBridge does).

use serde_json::Value;

/// A compiled pattern.
#[derive(Debug, Clone, PartialEq)]
pub struct Pattern {
    fields: Vec<(String, Node)>,
}

#[derive(Debug, Clone, PartialEq)]
enum Node {
    Nested(Pattern),
    Any(Vec<Matcher>),
}

#[derive(Debug, Clone, PartialEq)]
enum Matcher {
    Exact(Value),
    Prefix(String),
    Suffix(String),
    IgnoreCase(String),
    AnythingBut(Vec<Value>),
    AnythingButPrefix(String),
    Exists(bool),
    Numeric(Vec<(String, f64)>),
}

impl Pattern {
    /// Compiles a pattern from its JSON, or says what is wrong with it.
    pub fn compile(v: &Value) -> Result<Self, String> {
        let Value::Object(map) = v else {
            return Err("an event pattern must be a JSON object".into());
        };
        let mut fields = Vec::new();
        for (k, v) in map {
            let node = match v {
                Value::Object(_) => Node::Nested(Self::compile(v).map_err(|e| format!("{k}.{e}"))?),
                Value::Array(items) => Node::Any(
                    items.iter().map(|m| matcher(m).map_err(|e| format!("{k}: {e}"))).collect::<Result<_, _>>()?,
                ),
                _ => return Err(format!("{k}: match values must be in an array")),
            };
            fields.push((k.clone(), node));
        }
        Ok(Self { fields })
    }

    /// Whether `event` (its JSON) matches.
    pub fn matches(&self, event: &Value) -> bool {
        self.fields.iter().all(|(k, node)| {
            let field = event.get(k);
            match node {
                Node::Nested(p) => field.is_some_and(|f| f.is_object() && p.matches(f)),
                Node::Any(ms) => ms.iter().any(|m| m.matches(field)),
            }
        })
    }
}

fn matcher(m: &Value) -> Result<Matcher, String> {
    let Value::Object(o) = m else {
        return match m {
            Value::Array(_) => Err("nested arrays are not allowed".into()),
            _ => Ok(Matcher::Exact(m.clone())),
        };
    };
    let Some((op, arg)) = o.iter().next().filter(|_| o.len() == 1) else {
        return Err("a matcher object must have exactly one key".into());
    };
    let string = |what: &str| arg.as_str().map(str::to_owned).ok_or_else(|| format!("{what} needs a string"));
    Ok(match op.as_str() {
        "prefix" => Matcher::Prefix(string("prefix")?),
        "suffix" => Matcher::Suffix(string("suffix")?),
        "equals-ignore-case" => Matcher::IgnoreCase(string("equals-ignore-case")?),
        "exists" => Matcher::Exists(arg.as_bool().ok_or("exists needs true or false")?),
        "anything-but" => match arg {
            Value::Array(vs) => Matcher::AnythingBut(vs.clone()),
            Value::Object(p) => match p.get("prefix").and_then(Value::as_str) {
                Some(s) if p.len() == 1 => Matcher::AnythingButPrefix(s.to_owned()),
                _ => return Err("anything-but takes a value, a list of values or {\"prefix\": s}".into()),
            },
            v => Matcher::AnythingBut(vec![v.clone()]),
        },
        "numeric" => {
            let Value::Array(parts) = arg else {
                return Err("numeric needs [op, number, ...]".into());
            };
            let mut conds = Vec::new();
            for pair in parts.chunks(2) {
                match pair {
                    [Value::String(op), n] if ["<", "<=", "=", ">", ">="].contains(&op.as_str()) => {
                        conds.push((op.clone(), n.as_f64().ok_or("numeric needs numbers")?));
                    }
                    _ => return Err("numeric needs [op, number, ...] with op one of < <= = > >=".into()),
                }
            }
            Matcher::Numeric(conds)
        }
        other => return Err(format!("unknown matcher {other}")),
    })
}

fn same(a: &Value, b: &Value) -> bool {
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    }
}

impl Matcher {
    fn matches(&self, field: Option<&Value>) -> bool {
        match (self, field) {
            (Self::Exists(want), f) => *want == f.is_some(),
            (_, None) => false,
            (_, Some(Value::Array(items))) => items.iter().any(|v| self.matches_one(v)),
            (_, Some(v)) => self.matches_one(v),
        }
    }

    fn matches_one(&self, v: &Value) -> bool {
        match self {
            Self::Exact(x) => same(x, v),
            Self::Prefix(p) => v.as_str().is_some_and(|s| s.starts_with(p.as_str())),
            Self::Suffix(p) => v.as_str().is_some_and(|s| s.ends_with(p.as_str())),
            Self::IgnoreCase(p) => v.as_str().is_some_and(|s| s.eq_ignore_ascii_case(p)),
            Self::AnythingBut(xs) => !xs.iter().any(|x| same(x, v)),
            Self::AnythingButPrefix(p) => v.as_str().is_some_and(|s| !s.starts_with(p.as_str())),
            Self::Exists(want) => *want,
            Self::Numeric(conds) => v.as_f64().is_some_and(|x| {
                conds.iter().all(|(op, n)| match op.as_str() {
                    "<" => x < *n,
                    "<=" => x <= *n,
                    "=" => x == *n,
                    ">" => x > *n,
                    _ => x >= *n,
                })
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn p(v: Value) -> Pattern {
        Pattern::compile(&v).unwrap_or_else(|e| unreachable!("{e}"))
    }

    fn spot_warning() -> Value {
        json!({
            "version": "0", "source": "aws.ec2", "detail-type": "EC2 Spot Instance Interruption Warning",
            "resources": ["arn:aws:ec2:us-west-2:123456789012:instance/i-0abc"],
            "detail": {"instance-id": "i-0abc", "instance-action": "terminate", "count": 3}
        })
    }

    #[test]
    fn source_and_detail_type_exact_values() {
        let e = spot_warning();
        assert!(
            p(json!({"source": ["aws.ec2"], "detail-type": ["EC2 Spot Instance Interruption Warning"]})).matches(&e)
        );
        assert!(p(json!({"source": ["aws.health", "aws.ec2"]})).matches(&e));
        assert!(!p(json!({"source": ["aws.health"]})).matches(&e));
        assert!(
            !p(json!({"source": ["aws.ec2"], "detail-type": ["EC2 Instance Rebalance Recommendation"]})).matches(&e)
        );
        assert!(p(json!({})).matches(&e), "the empty pattern matches everything");
    }

    #[test]
    fn detail_fields_prefix_anything_but_exists_numeric() {
        let e = spot_warning();
        assert!(p(json!({"detail": {"instance-action": ["terminate", "stop"]}})).matches(&e));
        assert!(!p(json!({"detail": {"instance-action": ["hibernate"]}})).matches(&e));
        assert!(p(json!({"detail": {"instance-id": [{"prefix": "i-0"}]}})).matches(&e));
        assert!(!p(json!({"detail": {"instance-id": [{"prefix": "i-1"}]}})).matches(&e));
        assert!(p(json!({"detail": {"instance-id": [{"suffix": "abc"}]}})).matches(&e));
        assert!(p(json!({"detail": {"instance-action": [{"anything-but": "stop"}]}})).matches(&e));
        assert!(!p(json!({"detail": {"instance-action": [{"anything-but": ["stop", "terminate"]}]}})).matches(&e));
        assert!(p(json!({"detail": {"instance-action": [{"anything-but": {"prefix": "hib"}}]}})).matches(&e));
        assert!(!p(json!({"detail": {"instance-action": [{"anything-but": {"prefix": "term"}}]}})).matches(&e));
        assert!(p(json!({"detail": {"state": [{"exists": false}]}})).matches(&e));
        assert!(!p(json!({"detail": {"state": [{"exists": true}]}})).matches(&e));
        assert!(p(json!({"detail": {"instance-id": [{"exists": true}]}})).matches(&e));
        assert!(!p(json!({"detail": {"state": [{"anything-but": "running"}]}})).matches(&e), "absent field");
        assert!(p(json!({"detail": {"count": [{"numeric": [">", 2, "<=", 3]}]}})).matches(&e));
        assert!(!p(json!({"detail": {"count": [{"numeric": ["<", 3]}]}})).matches(&e));
        assert!(p(json!({"detail": {"instance-action": [{"equals-ignore-case": "TERMINATE"}]}})).matches(&e));
        // Arrays in the event: any element.
        assert!(p(json!({"resources": [{"suffix": "/i-0abc"}]})).matches(&e));
        // A nested pattern needs an object there.
        assert!(!p(json!({"source": {"x": ["y"]}})).matches(&e));
    }

    #[test]
    fn bad_patterns_are_refused() {
        for bad in [
            json!([]),
            json!({"source": "aws.ec2"}),
            json!({"source": [{"prefix": 1}]}),
            json!({"source": [{"bogus": "x"}]}),
            json!({"source": [["nested"]]}),
            json!({"detail": {"n": [{"numeric": ["~", 1]}]}}),
        ] {
            assert!(Pattern::compile(&bad).is_err(), "{bad}");
        }
    }
}
