//! The EC2 Query protocol's flattened parameters (`Filter.1.Value.2=x`) and typed reads over them.
//!
//! Parameters are kept flat in a sorted map; a [`Params`] is a view at a dotted prefix, so nested
//! structures and 1-based lists are read without building an intermediate tree.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use super::error::{Ec2Error, Ec2Result};

/// All decoded form parameters of one request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Form {
    pub map: BTreeMap<String, String>,
}

impl Form {
    pub fn parse(body: &[u8]) -> Self {
        Self { map: form_urlencoded::parse(body).into_owned().collect() }
    }

    pub fn root(&self) -> Params<'_> {
        Params { map: &self.map, prefix: String::new() }
    }
}

/// A view of the parameters below one dotted prefix.
#[derive(Debug, Clone)]
pub struct Params<'a> {
    map: &'a BTreeMap<String, String>,
    prefix: String,
}

impl<'a> Params<'a> {
    fn key(&self, name: &str) -> String {
        if self.prefix.is_empty() { name.to_owned() } else { format!("{}.{name}", self.prefix) }
    }

    /// The full dotted name of a member, for error messages.
    pub fn path(&self, name: &str) -> String {
        self.key(name)
    }

    pub fn str(&self, name: &str) -> Option<&'a str> {
        self.map.get(&self.key(name)).map(String::as_str)
    }

    pub fn required(&self, name: &str) -> Ec2Result<&'a str> {
        self.str(name).ok_or_else(|| Ec2Error::missing(&self.key(name)))
    }

    pub fn bool(&self, name: &str) -> Ec2Result<Option<bool>> {
        match self.str(name) {
            None => Ok(None),
            Some(v) if v.eq_ignore_ascii_case("true") => Ok(Some(true)),
            Some(v) if v.eq_ignore_ascii_case("false") => Ok(Some(false)),
            Some(v) => Err(Ec2Error::invalid_value(&self.key(name), v, "Expected a boolean.")),
        }
    }

    pub fn flag(&self, name: &str) -> Ec2Result<bool> {
        Ok(self.bool(name)?.unwrap_or(false))
    }

    pub fn int(&self, name: &str) -> Ec2Result<Option<i64>> {
        match self.str(name) {
            None => Ok(None),
            Some(v) => v
                .trim()
                .parse::<i64>()
                .map(Some)
                .map_err(|_| Ec2Error::invalid_value(&self.key(name), v, "Expected an integer.")),
        }
    }

    pub fn float(&self, name: &str) -> Ec2Result<Option<f64>> {
        match self.str(name) {
            None => Ok(None),
            Some(v) => match v.trim().parse::<f64>() {
                Ok(f) if f.is_finite() => Ok(Some(f)),
                _ => Err(Ec2Error::invalid_value(&self.key(name), v, "Expected a number.")),
            },
        }
    }

    pub fn time(&self, name: &str) -> Ec2Result<Option<DateTime<Utc>>> {
        match self.str(name) {
            None => Ok(None),
            Some(v) => parse_time(v)
                .map(Some)
                .ok_or_else(|| Ec2Error::invalid_value(&self.key(name), v, "Expected an ISO 8601 timestamp.")),
        }
    }

    /// The structure member `name`.
    pub fn child(&self, name: &str) -> Params<'a> {
        Params { map: self.map, prefix: self.key(name) }
    }

    /// True when any parameter sits at or below `name`.
    pub fn has(&self, name: &str) -> bool {
        let key = self.key(name);
        let dotted = format!("{key}.");
        self.map
            .range(key.clone()..)
            .take_while(|(k, _)| k.starts_with(&key))
            .any(|(k, _)| *k == key || k.starts_with(&dotted))
    }

    /// Every parameter below `name.`, keyed by the rest of its dotted name.
    pub fn entries_under(&self, name: &str) -> Vec<(String, String)> {
        let dotted = format!("{}.", self.key(name));
        self.map
            .range(dotted.clone()..)
            .take_while(|(k, _)| k.starts_with(&dotted))
            .map(|(k, v)| (k[dotted.len()..].to_owned(), v.clone()))
            .collect()
    }

    /// Indices N for which `name.N` or `name.N.*` is present, in numeric order.
    fn indices(&self, name: &str) -> Ec2Result<Vec<u32>> {
        let dotted = format!("{}.", self.key(name));
        let mut out = Vec::new();
        for (k, _) in self.map.range(dotted.clone()..).take_while(|(k, _)| k.starts_with(&dotted)) {
            let rest = &k[dotted.len()..];
            let idx = rest.split('.').next().unwrap_or_default();
            match idx.parse::<u32>() {
                Ok(n) if n >= 1 => out.push(n),
                _ => {
                    return Err(Ec2Error::client("InvalidParameter", format!("The parameter {k} is not recognized")));
                }
            }
        }
        out.sort_unstable();
        out.dedup();
        Ok(out)
    }

    /// `name.1`, `name.2`, ... as strings.
    pub fn strings(&self, name: &str) -> Ec2Result<Vec<&'a str>> {
        let mut out = Vec::new();
        for i in self.indices(name)? {
            if let Some(v) = self.str(&format!("{name}.{i}")) {
                out.push(v);
            }
        }
        Ok(out)
    }

    /// `name.1.*`, `name.2.*`, ... as structure views.
    pub fn list(&self, name: &str) -> Ec2Result<Vec<Params<'a>>> {
        Ok(self.indices(name)?.into_iter().map(|i| self.child(&format!("{name}.{i}"))).collect())
    }
}

pub fn parse_time(v: &str) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(v) {
        return Some(t.with_timezone(&Utc));
    }
    // Some clients send epoch seconds, others a naive ISO time without a zone.
    if let Ok(secs) = v.parse::<f64>() {
        let ms = (secs * 1000.0) as i64;
        return DateTime::from_timestamp_millis(ms);
    }
    chrono::NaiveDateTime::parse_from_str(v, "%Y-%m-%dT%H:%M:%S%.f").ok().map(|n| n.and_utc())
}

/// Tags given as `Tag.N.Key` / `Tag.N.Value`.
pub fn tags(p: &Params<'_>, name: &str) -> Ec2Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    for t in p.list(name)? {
        let key = t.required("Key")?;
        if key.is_empty() || key.len() > 128 {
            return Err(Ec2Error::client(
                "InvalidParameterValue",
                format!("Tag key '{key}' must be 1 to 128 characters"),
            ));
        }
        if key.starts_with("aws:") {
            return Err(Ec2Error::client(
                "InvalidParameterValue",
                "Tag keys starting with 'aws:' are reserved for internal use",
            ));
        }
        let value = t.str("Value").unwrap_or_default();
        if value.len() > 256 {
            return Err(Ec2Error::client(
                "InvalidParameterValue",
                format!("Tag value for key '{key}' exceeds 256 characters"),
            ));
        }
        out.push((key.to_owned(), value.to_owned()));
    }
    Ok(out)
}

/// `TagSpecification.N` entries: (resource type, tags).
/// Tags for one resource type, as `TagSpecification.N` gives them.
pub type TagSpecs = Vec<(String, Vec<(String, String)>)>;

pub fn tag_specifications(p: &Params<'_>, name: &str) -> Ec2Result<TagSpecs> {
    let mut out = Vec::new();
    for spec in p.list(name)? {
        let rt = spec.str("ResourceType").unwrap_or_default().to_owned();
        out.push((rt, tags(&spec, "Tag")?));
    }
    Ok(out)
}

/// Tags from `TagSpecification.N` for one resource type.
pub fn tags_for(specs: &[(String, Vec<(String, String)>)], resource: &str) -> BTreeMap<String, String> {
    specs.iter().filter(|(rt, _)| rt == resource).flat_map(|(_, t)| t.iter().cloned()).collect()
}

pub fn check_tag_resource_types(specs: &[(String, Vec<(String, String)>)], allowed: &[&str]) -> Ec2Result<()> {
    for (rt, _) in specs {
        if !allowed.contains(&rt.as_str()) {
            return Err(Ec2Error::client(
                "InvalidParameterValue",
                format!("'{rt}' is not a valid taggable resource type for this operation."),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(s: &str) -> Form {
        Form::parse(s.as_bytes())
    }

    #[test]
    fn reads_nested_lists_in_numeric_order() {
        let f = form("Filter.10.Name=b&Filter.2.Name=a&Filter.2.Value.1=x&Filter.2.Value.2=y&Filter.10.Value.1=z");
        let filters = f.root().list("Filter").unwrap_or_default();
        let names: Vec<_> = filters.iter().map(|p| p.str("Name").unwrap_or_default()).collect();
        assert_eq!(names, ["a", "b"]);
        assert_eq!(filters[0].strings("Value").unwrap_or_default(), ["x", "y"]);
    }

    #[test]
    fn rejects_non_numeric_list_index() {
        let f = form("InstanceId.x=i-1");
        let err = f.root().strings("InstanceId").err();
        assert_eq!(err.map(|e| e.code), Some("InvalidParameter".to_owned()));
    }

    #[test]
    fn typed_reads_report_the_parameter() {
        let f = form("MaxResults=ten&DryRun=maybe");
        assert_eq!(f.root().int("MaxResults").err().map(|e| e.code), Some("InvalidParameterValue".into()));
        assert!(f.root().bool("DryRun").err().is_some_and(|e| e.message.contains("DryRun")));
    }

    #[test]
    fn parses_timestamps_in_the_forms_sdks_send() {
        assert!(parse_time("2026-01-01T00:00:00Z").is_some());
        assert!(parse_time("2026-01-01T00:00:00.123Z").is_some());
        assert!(parse_time("1767225600").is_some());
        assert!(parse_time("yesterday").is_none());
    }
}
