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
    hex::decode(token).ok().and_then(|b| String::from_utf8(b).ok()).ok_or_else(|| invalid_token(token))
}

/// Pages `items`, which must be sorted by `key` ascending with unique keys.
pub fn paginate<T>(items: Vec<T>, p: &Params<'_>, limits: Limits, key: impl Fn(&T) -> String) -> Ec2Result<Page<T>> {
    let size = page_size(p, limits)?;
    let after = p.str("NextToken").filter(|t| !t.is_empty()).map(decode).transpose()?;
    let rest = items.into_iter().skip_while(|i| after.as_ref().is_some_and(|a| key(i) <= *a));
    Ok(page_of(rest, size, &key))
}

/// The first `size` items of `items` (all of them for `None`), which must come in ascending
/// `key` order and already start after the page token; the token names the last item's key when
/// another item follows. Takes one item past the page at most, so a caller can page a range of an
/// ordered map without collecting it.
pub fn page_of<T>(items: impl Iterator<Item = T>, size: Option<usize>, key: impl Fn(&T) -> String) -> Page<T> {
    let mut iter = items.peekable();
    let mut out = Vec::new();
    while let Some(i) = iter.next_if(|_| size.is_none_or(|s| out.len() < s)) {
        out.push(i);
    }
    let next_token = match (iter.peek(), out.last()) {
        (Some(_), Some(last)) => Some(encode(&key(last))),
        _ => None,
    };
    Page { items: out, next_token }
}

/// The number a page token made from a [`num_key`] names (the last item of the previous page), if
/// the request has a token. A token that no [`num_key`] page could have given is EC2's
/// `InvalidPaginationToken`.
pub fn num_after(p: &Params<'_>) -> Ec2Result<Option<u64>> {
    let Some(token) = p.str("NextToken").filter(|t| !t.is_empty()) else {
        return Ok(None);
    };
    let key = decode(token)?;
    if key.len() != NUM_KEY_DIGITS || !key.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid_token(token));
    }
    key.parse().map(Some).map_err(|_| invalid_token(token))
}

fn invalid_token(token: &str) -> Ec2Error {
    Ec2Error::client("InvalidPaginationToken", format!("Invalid pagination token: {token}"))
}

const NUM_KEY_DIGITS: usize = 20;

/// A sort key for numbers that orders like the numbers.
pub fn num_key(n: u64) -> String {
    format!("{n:0width$}", width = NUM_KEY_DIGITS)
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

    #[test]
    fn page_of_stops_one_item_past_the_page() {
        let mut pulled = 0;
        let items = (0..1_000_000u64).inspect(|_| pulled += 1);
        let page = page_of(items, Some(5), |i| num_key(*i));
        assert_eq!(page.items, vec![0, 1, 2, 3, 4]);
        assert_eq!(page.next_token, Some(encode(&num_key(4))));
        assert_eq!(pulled, 6);
        let last = page_of(10..13u64, Some(5), |i| num_key(*i));
        assert_eq!((last.items, last.next_token), (vec![10, 11, 12], None));
    }

    #[test]
    fn num_after_reads_back_what_num_key_tokens_name() {
        let token = |key: &str| format!("NextToken={}", encode(key));
        let after = |q: &str| num_after(&Form::parse(q.as_bytes()).root()).map_err(|e| e.code);
        assert_eq!(after(""), Ok(None));
        assert_eq!(after("NextToken="), Ok(None));
        assert_eq!(after(&token(&num_key(42))), Ok(Some(42)));
        assert_eq!(after(&token(&num_key(u64::MAX))), Ok(Some(u64::MAX)));
        for bad in ["42", "abc", "-0000000000000000042", "99999999999999999999"] {
            assert_eq!(after(&token(bad)), Err("InvalidPaginationToken".into()), "{bad}");
        }
        assert_eq!(after("NextToken=zz"), Err("InvalidPaginationToken".into()));
    }
}
