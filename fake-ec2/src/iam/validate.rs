//! IAM's input constraints (botocore's `iam` model), refused with IAM's `ValidationError` wording.

use super::{IamError, IamResult, MAX_TAGS};

fn invalid(value: Option<&str>, member: &str, constraint: &str) -> IamError {
    let value = value.map_or_else(|| "null".to_owned(), |v| format!("'{v}'"));
    IamError::validation(format!(
        "1 validation error detected: Value {value} at '{member}' failed to satisfy constraint: Member must {constraint}"
    ))
}

/// `[\w+=,.@-]+`, 1 to `max` characters.
fn name(value: &str, member: &str, max: usize) -> IamResult<()> {
    if value.is_empty() {
        return Err(invalid(Some(value), member, "have length greater than or equal to 1"));
    }
    if value.chars().count() > max {
        return Err(invalid(Some(value), member, &format!("have length less than or equal to {max}")));
    }
    if !value.chars().all(|c| c.is_ascii_alphanumeric() || "_+=,.@-".contains(c)) {
        return Err(invalid(Some(value), member, r"satisfy regular expression pattern: [\w+=,.@-]+"));
    }
    Ok(())
}

pub fn profile_name(value: &str) -> IamResult<()> {
    name(value, "instanceProfileName", 128)
}

pub fn role_name(value: &str) -> IamResult<()> {
    name(value, "roleName", 64)
}

/// A required parameter that is missing.
pub fn missing(member: &str) -> IamError {
    invalid(None, member, "not be null")
}

/// `/` or `/…/` of printable ASCII, up to 512 characters.
pub fn path(value: &str) -> IamResult<()> {
    let printable = value.chars().all(|c| ('\u{21}'..='\u{7e}').contains(&c));
    let shaped = value == "/" || (value.len() > 1 && value.starts_with('/') && value.ends_with('/'));
    if value.is_empty() || value.len() > 512 || !printable || !shaped {
        return Err(invalid(
            Some(value),
            "path",
            r"satisfy regular expression pattern: (\u002F)|(\u002F[\u0021-\u007E]+\u002F)",
        ));
    }
    Ok(())
}

/// `/` followed by printable ASCII, up to 512 characters.
pub fn path_prefix(value: &str) -> IamResult<()> {
    let printable = value.chars().all(|c| ('\u{21}'..='\u{7f}').contains(&c));
    if !value.starts_with('/') || value.len() > 512 || !printable {
        return Err(invalid(Some(value), "pathPrefix", r"satisfy regular expression pattern: \u002F[\u0021-\u007F]*"));
    }
    Ok(())
}

/// Page size: 1 to 1000.
pub fn max_items(value: i64) -> IamResult<usize> {
    if value < 1 {
        return Err(invalid(Some(&value.to_string()), "maxItems", "have value greater than or equal to 1"));
    }
    if value > 1000 {
        return Err(invalid(Some(&value.to_string()), "maxItems", "have value less than or equal to 1000"));
    }
    Ok(value as usize)
}

fn tag_text(c: char) -> bool {
    c.is_alphanumeric() || c.is_whitespace() || "_.:/=+-@".contains(c)
}

pub fn tags(tags: &[(String, String)]) -> IamResult<()> {
    if tags.len() > MAX_TAGS {
        return Err(invalid(
            Some(&tags.len().to_string()),
            "tags",
            &format!("have length less than or equal to {MAX_TAGS}"),
        ));
    }
    for (k, v) in tags {
        if k.is_empty() || k.chars().count() > 128 || !k.chars().all(tag_text) {
            return Err(invalid(
                Some(k),
                "tags.member.key",
                r"satisfy regular expression pattern: [\p{L}\p{Z}\p{N}_.:/=+\-@]+",
            ));
        }
        if v.chars().count() > 256 || !v.chars().all(tag_text) {
            return Err(invalid(
                Some(v),
                "tags.member.value",
                r"satisfy regular expression pattern: [\p{L}\p{Z}\p{N}_.:/=+\-@]*",
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_paths_follow_the_model() {
        assert!(profile_name("fake-cluster_1234567890").is_ok());
        assert!(profile_name("a b").is_err() && profile_name("").is_err() && profile_name(&"x".repeat(129)).is_err());
        assert!(role_name(&"x".repeat(64)).is_ok() && role_name(&"x".repeat(65)).is_err());
        assert!(path("/").is_ok() && path("/karpenter/us-west-2/c/uid/").is_ok());
        assert!(path("/no-trailing").is_err() && path("rel/").is_err() && path("/a b/").is_err());
        assert!(path_prefix("/karpenter/").is_ok() && path_prefix("karpenter").is_err());
        assert_eq!(
            profile_name("a b").map_err(|e| e.message),
            Err(r"1 validation error detected: Value 'a b' at 'instanceProfileName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\w+=,.@-]+".into())
        );
        assert!(max_items(0).is_err() && max_items(1001).is_err() && max_items(1000).is_ok());
    }
}
