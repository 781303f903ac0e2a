//! STS `GetCallerIdentity` (Query protocol, `Version=2011-06-15`): who the caller is. Every
//! access key is an IAM user `fake-ec2` of the world's account; its user id is a pure function of
//! the access key, so the same key always gets the same answer.

use crate::rng::hash_str;
use crate::xml::{XmlWriter, query_error, query_response};

pub const VERSION: &str = "2011-06-15";
pub const XMLNS: &str = "https://sts.amazonaws.com/doc/2011-06-15/";

/// Every STS action this server answers.
pub const ACTIONS: &[&str] = &["GetCallerIdentity"];

/// The IAM user every caller is.
pub const USER: &str = "fake-ec2";

/// `AIDA` and 17 upper-case hex digits derived from the access key, as IAM user ids look.
pub fn user_id(access_key: &str) -> String {
    let h = format!("{:016X}{:016X}", hash_str(access_key), hash_str(&format!("{access_key}/user")));
    format!("AIDA{}", &h[..17])
}

/// Answers one STS request for `action`, made with `access_key` in `account`: the HTTP status and
/// the XML body.
pub fn handle(action: &str, account: &str, access_key: &str, request_id: &str) -> (u16, String) {
    match action {
        "GetCallerIdentity" => {
            let mut w = XmlWriter::fragment();
            w.elem("UserId", user_id(access_key))
                .elem("Account", account)
                .elem("Arn", format!("arn:aws:iam::{account}:user/{USER}"));
            (200, query_response(action, XMLNS, request_id, Some(w)))
        }
        "" => (400, query_error(XMLNS, 400, "MissingAction", "Missing Action", request_id)),
        other => {
            let message = format!("Could not find operation {other} for version {VERSION}");
            (400, query_error(XMLNS, 400, "InvalidAction", &message, request_id))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_who_the_caller_is() {
        let (status, xml) = handle("GetCallerIdentity", "123456789012", "AKIDTEST", "r-1");
        assert_eq!(status, 200);
        assert!(xml.contains("<Account>123456789012</Account>"));
        assert!(xml.contains("<Arn>arn:aws:iam::123456789012:user/fake-ec2</Arn>"));
        assert!(xml.contains(&format!("<UserId>{}</UserId>", user_id("AKIDTEST"))));
        assert!(xml.contains("<ResponseMetadata><RequestId>r-1</RequestId></ResponseMetadata>"));
        assert_eq!(user_id("AKIDTEST").len(), 21);
        assert_ne!(user_id("AKIDTEST"), user_id("OTHER"));
        assert_eq!(handle("AssumeRole", "1", "k", "r").0, 400);
    }
}
