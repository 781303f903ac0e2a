//! `Filter.N.Name` / `Filter.N.Value.M` as EC2 applies them: filters AND together, a filter's
//! values OR together, values may use `*` and `?` wildcards, and `tag:<key>`, `tag-key`,
//! `tag-value` work on every taggable resource.

use std::collections::BTreeMap;

use super::error::{Ec2Error, Ec2Result};
use super::query::Params;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    pub name: String,
    pub values: Vec<String>,
}

pub fn parse(p: &Params<'_>) -> Ec2Result<Vec<Filter>> {
    let mut out = Vec::new();
    for f in p.list("Filter")? {
        let name = f.required("Name")?.to_owned();
        let values: Vec<String> = f.strings("Value")?.into_iter().map(str::to_owned).collect();
        out.push(Filter { name, values });
    }
    Ok(out)
}

/// A resource that filters can look at.
pub trait Filterable {
    /// The resource's values for a filter name; `None` when this resource has no such filter.
    fn field(&self, name: &str) -> Option<Vec<String>>;
    fn tags(&self) -> Option<&BTreeMap<String, String>> {
        None
    }
}

fn values_for<R: Filterable + ?Sized>(r: &R, name: &str) -> Option<Vec<String>> {
    if let Some(tags) = r.tags() {
        if let Some(key) = name.strip_prefix("tag:") {
            return Some(tags.get(key).cloned().into_iter().collect());
        }
        match name {
            "tag-key" => return Some(tags.keys().cloned().collect()),
            "tag-value" => return Some(tags.values().cloned().collect()),
            _ => {}
        }
    }
    r.field(name)
}

/// Checks every filter name against a sample resource, so an unknown filter fails the request
/// even when there is nothing to filter.
pub fn validate<R: Filterable + ?Sized>(filters: &[Filter], sample: &R) -> Ec2Result<()> {
    for f in filters {
        if values_for(sample, &f.name).is_none() {
            return Err(Ec2Error::client("InvalidParameterValue", format!("The filter '{}' is invalid", f.name)));
        }
    }
    Ok(())
}

pub fn matches<R: Filterable + ?Sized>(filters: &[Filter], r: &R) -> bool {
    filters.iter().all(|f| {
        let have = values_for(r, &f.name).unwrap_or_default();
        f.values.iter().any(|want| have.iter().any(|h| glob(want, h)))
    })
}

/// EC2 filter wildcards: `*` any run, `?` any one character, `\` escapes.
pub fn glob(pattern: &str, text: &str) -> bool {
    if !pattern.contains(['*', '?', '\\']) {
        return pattern == text;
    }
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while ti < t.len() {
        if pi < p.len() && p[pi] == '\\' && pi + 1 < p.len() && p[pi + 1] == t[ti] {
            pi += 2;
            ti += 1;
        } else if pi < p.len() && (p[pi] == '?' || (p[pi] == t[ti] && p[pi] != '*' && p[pi] != '\\')) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

pub fn one(v: impl Into<String>) -> Option<Vec<String>> {
    Some(vec![v.into()])
}

pub fn many<I: IntoIterator<Item = S>, S: Into<String>>(v: I) -> Option<Vec<String>> {
    Some(v.into_iter().map(Into::into).collect())
}

pub fn boolean(b: bool) -> Option<Vec<String>> {
    one(if b { "true" } else { "false" })
}

#[cfg(test)]
mod tests {
    use super::*;

    struct R(BTreeMap<String, String>, &'static str);
    impl Filterable for R {
        fn field(&self, name: &str) -> Option<Vec<String>> {
            match name {
                "instance-type" => one(self.1),
                _ => None,
            }
        }
        fn tags(&self) -> Option<&BTreeMap<String, String>> {
            Some(&self.0)
        }
    }

    fn f(name: &str, values: &[&str]) -> Filter {
        Filter { name: name.into(), values: values.iter().map(|s| (*s).to_owned()).collect() }
    }

    #[test]
    fn globs_like_ec2() {
        assert!(glob("m5.*", "m5.large"));
        assert!(glob("m?.large", "m5.large"));
        assert!(!glob("m5.*", "c5.large"));
        assert!(glob("*", ""));
        assert!(glob("a\\*b", "a*b"));
        assert!(!glob("a\\*b", "axb"));
        assert!(glob("*-2a", "us-west-2a"));
    }

    #[test]
    fn ands_filters_and_ors_values() {
        let r = R(BTreeMap::from([("team".into(), "a".into())]), "m5.large");
        assert!(matches(&[f("instance-type", &["c5.large", "m5.*"]), f("tag:team", &["a"])], &r));
        assert!(!matches(&[f("instance-type", &["m5.*"]), f("tag:team", &["b"])], &r));
        assert!(matches(&[f("tag-key", &["team"])], &r));
        assert!(!matches(&[f("tag:missing", &["*"])], &r));
        assert!(validate(&[f("bogus", &["x"])], &r).is_err());
    }
}
