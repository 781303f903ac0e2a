//! `MaxResults` / `NextToken` paging. Tokens name the sort key of the last item returned, so a
//! page boundary survives items being added or removed between calls: nothing is lost or repeated.

use super::error::{Ec2Error, Ec2Result};
use super::query::Params;

#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub min: i64,
    pub max: i64,
    /// Page size when `MaxResults` is absent (`None`: everything in one page).
    pub default: Option<i64>,
}

pub struct Page<T> {
    pub items: Vec<T>,
    pub next_token: Option<String>,
}

pub fn page_size(p: &Params<'_>, limits: Limits) -> Ec2Result<Option<usize>> {
    match p.int("MaxResults")? {
        None => Ok(limits.default.map(|d| d as usize)),
        Some(n) if n < limits.min || n > limits.max => Err(Ec2Error::client(
            "InvalidParameterValue",
            format!(
                "Value ( {n} ) for parameter maxResults is invalid. Parameter must be between {} and {}.",
                limits.min, limits.max
            ),
        )),
        Some(n) => Ok(Some(n as usize)),
    }
}

fn encode(key: &str) -> String {
    hex::encode(key.as_bytes())
}

fn decode(token: &str) -> Ec2Result<String> {
    hex::decode(token)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| Ec2Error::client("InvalidPaginationToken", format!("Invalid pagination token: {token}")))
}

/// Pages `items`, which must be sorted by `key` ascending with unique keys.
pub fn paginate<T>(items: Vec<T>, p: &Params<'_>, limits: Limits, key: impl Fn(&T) -> String) -> Ec2Result<Page<T>> {
    let size = page_size(p, limits)?;
    let after = p.str("NextToken").filter(|t| !t.is_empty()).map(decode).transpose()?;
    let mut iter = items.into_iter().skip_while(|i| after.as_ref().is_some_and(|a| key(i) <= *a)).peekable();
    let mut out = Vec::new();
    while let Some(i) = iter.next_if(|_| size.is_none_or(|s| out.len() < s)) {
        out.push(i);
    }
    let next_token = match (iter.peek(), out.last()) {
        (Some(_), Some(last)) => Some(encode(&key(last))),
        _ => None,
    };
    Ok(Page { items: out, next_token })
}

/// A sort key for numbers that orders like the numbers.
pub fn num_key(n: u64) -> String {
    format!("{n:020}")
}

#[cfg(test)]
mod tests {
    use super::super::query::Form;
    use super::*;

    const L: Limits = Limits { min: 5, max: 1000, default: None };

    #[test]
    fn pages_through_without_loss_or_repeat() {
        let items: Vec<u64> = (0..23).collect();
        let mut token: Option<String> = None;
        let mut seen = Vec::new();
        loop {
            let q = match &token {
                Some(t) => format!("MaxResults=5&NextToken={t}"),
                None => "MaxResults=5".into(),
            };
            let form = Form::parse(q.as_bytes());
            let page =
                paginate(items.clone(), &form.root(), L, |i| num_key(*i)).unwrap_or_else(|e| unreachable!("{e}"));
            seen.extend(page.items);
            token = page.next_token;
            if token.is_none() {
                break;
            }
        }
        assert_eq!(seen, items);
    }

    #[test]
    fn rejects_out_of_range_and_bad_tokens() {
        let form = Form::parse(b"MaxResults=2");
        assert!(paginate(vec![1u64], &form.root(), L, |i| num_key(*i)).is_err());
        let form = Form::parse(b"NextToken=zz");
        let err = paginate(vec![1u64], &form.root(), L, |i| num_key(*i)).err();
        assert_eq!(err.map(|e| e.code), Some("InvalidPaginationToken".into()));
    }
}
