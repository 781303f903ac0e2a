//! EC2's error envelope: `<Response><Errors><Error><Code/><Message/></Error></Errors><RequestID/></Response>`.

use crate::xml::escape;

/// An error as EC2 reports it: a code, a message and the HTTP status EC2 uses for that code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct Ec2Error {
    pub code: String,
    pub message: String,
    pub status: u16,
}

impl Ec2Error {
    pub fn new(status: u16, code: impl Into<String>, message: impl Into<String>) -> Self {
        Self { code: code.into(), message: message.into(), status }
    }

    pub fn client(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(400, code, message)
    }

    pub fn missing(param: &str) -> Self {
        Self::client("MissingParameter", format!("The request must contain the parameter {param}"))
    }

    pub fn invalid_value(param: &str, value: &str, why: &str) -> Self {
        Self::client("InvalidParameterValue", format!("Value ({value}) for parameter {param} is invalid. {why}"))
    }

    pub fn invalid_combination(message: impl Into<String>) -> Self {
        Self::client("InvalidParameterCombination", message)
    }

    pub fn unknown_action(action: &str) -> Self {
        Self::client("InvalidAction", format!("The action {action} is not valid for this web service."))
    }

    pub fn dry_run_ok() -> Self {
        Self::new(412, "DryRunOperation", "Request would have succeeded, but DryRun flag is set.")
    }

    pub fn unauthorized() -> Self {
        Self::new(403, "UnauthorizedOperation", "You are not authorized to perform this operation.")
    }

    pub fn throttled() -> Self {
        Self::new(503, "RequestLimitExceeded", "Request limit exceeded.")
    }

    pub fn internal() -> Self {
        Self::new(500, "InternalError", "An internal error has occurred")
    }

    pub fn unavailable() -> Self {
        Self::new(503, "Unavailable", "The server is overloaded and can't handle the request.")
    }

    pub fn not_found(code: &str, what: &str, id: &str) -> Self {
        Self::client(code, format!("The {what} '{id}' does not exist"))
    }

    pub fn malformed(code: &str, id: &str) -> Self {
        Self::client(code, format!("Invalid id: \"{id}\""))
    }

    pub fn to_xml(&self, request_id: &str) -> String {
        format!(
            r#"<?xml version="1.0" encoding="UTF-8"?>
<Response><Errors><Error><Code>{}</Code><Message>{}</Message></Error></Errors><RequestID>{}</RequestID></Response>"#,
            escape(&self.code),
            escape(&self.message),
            escape(request_id)
        )
    }
}

pub type Ec2Result<T> = Result<T, Ec2Error>;

impl From<crate::auth::AuthError> for Ec2Error {
    fn from(e: crate::auth::AuthError) -> Self {
        Self::new(e.status, e.code, e.message)
    }
}

impl From<crate::faults::InjectedError> for Ec2Error {
    fn from(e: crate::faults::InjectedError) -> Self {
        Self::new(e.status, e.code, e.message)
    }
}
