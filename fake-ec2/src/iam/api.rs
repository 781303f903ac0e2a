//! IAM's wire: the Query protocol (`Action=…&Version=2010-05-08`, form-encoded), answers as
//! `<{Action}Response><{Action}Result>…</{Action}Result><ResponseMetadata>…`, errors as IAM's
//! `<ErrorResponse><Error><Type/><Code/><Message/></Error><RequestId/></ErrorResponse>`, lists
//! paged with `Marker` / `MaxItems` / `IsTruncated`.

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use super::validate::{self, missing};
use super::{Iam, IamError, IamResult, InstanceProfile, Role};
use crate::clock::{Millis, iso_seconds};
use crate::rng::Streams;
use crate::xml::{XmlWriter, query_error, query_response};

pub const VERSION: &str = "2010-05-08";
pub const XMLNS: &str = "https://iam.amazonaws.com/doc/2010-05-08/";

/// Every IAM action this server answers.
pub const ACTIONS: &[&str] = &[
    "GetInstanceProfile",
    "CreateInstanceProfile",
    "DeleteInstanceProfile",
    "ListInstanceProfiles",
    "AddRoleToInstanceProfile",
    "RemoveRoleFromInstanceProfile",
    "TagInstanceProfile",
    "UntagInstanceProfile",
    "ListInstanceProfileTags",
    "GetRole",
    "ListInstanceProfilesForRole",
];

/// A request's parameters.
struct Form<'a>(&'a BTreeMap<String, String>);

impl Form<'_> {
    fn str(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    /// A required parameter; `member` is its name in IAM's messages.
    fn required(&self, name: &str, member: &str) -> IamResult<&str> {
        self.str(name).ok_or_else(|| missing(member))
    }

    fn max_items(&self) -> IamResult<usize> {
        match self.str("MaxItems") {
            None => Ok(100),
            Some(v) => {
                let n = v.parse::<i64>().map_err(|_| {
                    IamError::validation(format!("Value '{v}' for parameter MaxItems is not a valid integer."))
                })?;
                validate::max_items(n)
            }
        }
    }

    /// `Name.member.N` values in order.
    fn members(&self, name: &str) -> Vec<&str> {
        let prefix = format!("{name}.member.");
        let mut out: Vec<(u32, &str)> = self
            .0
            .iter()
            .filter_map(|(k, v)| k.strip_prefix(&prefix)?.parse::<u32>().ok().map(|n| (n, v.as_str())))
            .collect();
        out.sort_by_key(|(n, _)| *n);
        out.into_iter().map(|(_, v)| v).collect()
    }

    /// `Tags.member.N.Key` / `.Value` pairs in order.
    fn tags(&self) -> Vec<(String, String)> {
        let mut by_n: BTreeMap<u32, (String, String)> = BTreeMap::new();
        for (k, v) in self.0 {
            let Some(rest) = k.strip_prefix("Tags.member.") else { continue };
            let Some((n, field)) = rest.split_once('.') else { continue };
            let Ok(n) = n.parse::<u32>() else { continue };
            let e = by_n.entry(n).or_default();
            match field {
                "Key" => e.0.clone_from(v),
                "Value" => e.1.clone_from(v),
                _ => {}
            }
        }
        by_n.into_values().collect()
    }
}

/// One page of `items` (sorted by `key`) from `marker`, and the marker of the next page.
fn page<T>(
    items: Vec<T>,
    key: impl Fn(&T) -> &str,
    marker: Option<&str>,
    max: usize,
) -> IamResult<(Vec<T>, Option<String>)> {
    let from = match marker {
        None => None,
        Some(m) => Some(
            STANDARD
                .decode(m)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or_else(|| IamError::validation("Invalid Marker."))?,
        ),
    };
    let mut rest: Vec<T> = items.into_iter().filter(|i| from.as_deref().is_none_or(|f| key(i) >= f)).collect();
    let next = (rest.len() > max).then(|| STANDARD.encode(key(&rest[max])));
    rest.truncate(max);
    Ok((rest, next))
}

/// RFC 3986 percent-encoding, as IAM returns policy documents.
fn url_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn tags_xml(w: &mut XmlWriter, tags: &BTreeMap<String, String>) {
    w.open("Tags");
    for (k, v) in tags {
        w.open("member").elem("Key", k).elem("Value", v).close();
    }
    w.close();
}

/// A role; `full` as `GetRole` gives it (description, session duration, tags, last use).
fn role_xml(w: &mut XmlWriter, r: &Role, full: bool) {
    w.elem("Path", &r.path)
        .elem("RoleName", &r.name)
        .elem("RoleId", &r.id)
        .elem("Arn", &r.arn)
        .elem("CreateDate", iso_seconds(r.created))
        .elem("AssumeRolePolicyDocument", url_encode(&r.assume_role_policy));
    if full {
        w.opt("Description", r.description.as_deref()).num("MaxSessionDuration", r.max_session_duration);
        if !r.tags.is_empty() {
            tags_xml(w, &r.tags);
        }
        w.open("RoleLastUsed").close();
    }
}

/// A profile; listings leave tags out, as IAM's do.
fn profile_xml(w: &mut XmlWriter, iam: &Iam, p: &InstanceProfile, with_tags: bool) {
    w.elem("Path", &p.path)
        .elem("InstanceProfileName", &p.name)
        .elem("InstanceProfileId", &p.id)
        .elem("Arn", &p.arn)
        .elem("CreateDate", iso_seconds(p.created));
    w.open("Roles");
    for r in p.roles.iter().filter_map(|r| iam.roles.get(r)) {
        w.open("member");
        role_xml(w, r, false);
        w.close();
    }
    w.close();
    if with_tags && !p.tags.is_empty() {
        tags_xml(w, &p.tags);
    }
}

fn profiles_page(w: &mut XmlWriter, iam: &Iam, page: &[&InstanceProfile], next: Option<String>) {
    w.bool("IsTruncated", next.is_some());
    w.open("InstanceProfiles");
    for p in page {
        w.open("member");
        profile_xml(w, iam, p, false);
        w.close();
    }
    w.close();
    w.opt("Marker", next);
}

/// Runs one action; `Ok(None)` for actions that answer with no result.
fn run(iam: &mut Iam, action: &str, f: &Form<'_>, now: Millis, rng: &mut Streams) -> IamResult<Option<XmlWriter>> {
    let mut w = XmlWriter::fragment();
    let profile_name = || f.required("InstanceProfileName", "instanceProfileName");
    let role_name = || f.required("RoleName", "roleName");
    match action {
        "GetInstanceProfile" => {
            let p = iam.instance_profile(profile_name()?)?;
            w.open("InstanceProfile");
            profile_xml(&mut w, iam, p, true);
        }
        "CreateInstanceProfile" => {
            let name = profile_name()?.to_owned();
            iam.create_instance_profile(&name, f.str("Path"), &f.tags(), now, rng)?;
            let p = iam.instance_profile(&name)?;
            w.open("InstanceProfile");
            profile_xml(&mut w, iam, p, true);
        }
        "DeleteInstanceProfile" => {
            iam.delete_instance_profile(profile_name()?)?;
            return Ok(None);
        }
        "ListInstanceProfiles" => {
            let all = iam.instance_profiles(f.str("PathPrefix"))?;
            let (items, next) = page(all, |p| &p.name, f.str("Marker"), f.max_items()?)?;
            profiles_page(&mut w, iam, &items, next);
        }
        "ListInstanceProfilesForRole" => {
            let all = iam.instance_profiles_for_role(role_name()?)?;
            let (items, next) = page(all, |p| &p.name, f.str("Marker"), f.max_items()?)?;
            profiles_page(&mut w, iam, &items, next);
        }
        "AddRoleToInstanceProfile" => {
            iam.add_role(profile_name()?, role_name()?)?;
            return Ok(None);
        }
        "RemoveRoleFromInstanceProfile" => {
            iam.remove_role(profile_name()?, role_name()?)?;
            return Ok(None);
        }
        "TagInstanceProfile" => {
            let tags = f.tags();
            if tags.is_empty() {
                return Err(missing("tags"));
            }
            iam.tag(profile_name()?, &tags)?;
            return Ok(None);
        }
        "UntagInstanceProfile" => {
            let keys: Vec<String> = f.members("TagKeys").into_iter().map(str::to_owned).collect();
            if keys.is_empty() {
                return Err(missing("tagKeys"));
            }
            iam.untag(profile_name()?, &keys)?;
            return Ok(None);
        }
        "ListInstanceProfileTags" => {
            let p = iam.instance_profile(profile_name()?)?;
            let all: Vec<(&String, &String)> = p.tags.iter().collect();
            let (items, next) = page(all, |(k, _)| k, f.str("Marker"), f.max_items()?)?;
            w.bool("IsTruncated", next.is_some());
            tags_xml(&mut w, &items.into_iter().map(|(k, v)| (k.clone(), v.clone())).collect());
            w.opt("Marker", next);
        }
        "GetRole" => {
            let r = iam.role(role_name()?)?;
            w.open("Role");
            role_xml(&mut w, r, true);
        }
        _ => {
            return Err(IamError {
                status: 400,
                code: "InvalidAction",
                message: format!("Could not find operation {action} for version {VERSION}"),
            });
        }
    }
    Ok(Some(w))
}

/// Answers one IAM request (its form parameters) at `now`: the HTTP status and the XML body.
pub fn handle(
    iam: &mut Iam,
    form: &BTreeMap<String, String>,
    now: Millis,
    rng: &mut Streams,
    request_id: &str,
) -> (u16, String) {
    let action = form.get("Action").map(String::as_str).unwrap_or_default();
    let result = if action.is_empty() {
        Err(IamError { status: 400, code: "MissingAction", message: "Missing Action".into() })
    } else {
        run(iam, action, &Form(form), now, rng)
    };
    match result {
        Ok(result) => (200, query_response(action, XMLNS, request_id, result)),
        Err(e) => (e.status, query_error(XMLNS, e.status, e.code, &e.message, request_id)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(q: &str) -> BTreeMap<String, String> {
        form_urlencoded::parse(q.as_bytes()).into_owned().collect()
    }

    #[test]
    fn pages_by_marker_and_reports_truncation() {
        let mut iam = Iam { checks_profiles: true, ..Iam::default() };
        let mut rng = Streams::new(1);
        for n in ["a", "b", "c"] {
            let q = format!("Action=CreateInstanceProfile&InstanceProfileName={n}&Path=%2Fk%2F");
            assert_eq!(handle(&mut iam, &form(&q), 0, &mut rng, "r").0, 200);
        }
        let (status, xml) =
            handle(&mut iam, &form("Action=ListInstanceProfiles&PathPrefix=%2Fk%2F&MaxItems=2"), 0, &mut rng, "r");
        assert_eq!(status, 200);
        assert!(xml.contains("<IsTruncated>true</IsTruncated>"), "{xml}");
        let marker = xml.split("<Marker>").nth(1).and_then(|s| s.split('<').next()).unwrap_or_default();
        assert_eq!(marker, STANDARD.encode("c"));
        let q = format!("Action=ListInstanceProfiles&MaxItems=2&Marker={}", url_encode(marker));
        let (_, xml) = handle(&mut iam, &form(&q), 0, &mut rng, "r");
        assert!(xml.contains("<InstanceProfileName>c</InstanceProfileName>") && !xml.contains("<Marker>"), "{xml}");
    }

    #[test]
    fn errors_use_iams_envelope() {
        let mut iam = Iam::default();
        let mut rng = Streams::new(1);
        let (status, xml) =
            handle(&mut iam, &form("Action=GetInstanceProfile&InstanceProfileName=x"), 0, &mut rng, "r-1");
        assert_eq!(status, 404);
        assert!(xml.ends_with(
            "<ErrorResponse xmlns=\"https://iam.amazonaws.com/doc/2010-05-08/\"><Error><Type>Sender</Type><Code>NoSuchEntity</Code><Message>Instance Profile x cannot be found.</Message></Error><RequestId>r-1</RequestId></ErrorResponse>"
        ), "{xml}");
        assert_eq!(handle(&mut iam, &form("Action=GetInstanceProfile"), 0, &mut rng, "r").0, 400);
        assert_eq!(handle(&mut iam, &form("Action=DescribeUnicorns"), 0, &mut rng, "r").0, 400);
    }

    #[test]
    fn policy_documents_are_url_encoded() {
        assert_eq!(url_encode(r#"{"a": "b/c"}"#), "%7B%22a%22%3A%20%22b%2Fc%22%7D");
    }
}
