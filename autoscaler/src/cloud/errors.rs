//! What the AWS layer reports, classified the way Karpenter classifies EC2 errors
//! (aws/karpenter-provider-aws `pkg/errors/errors.go`).

use aws_sdk_ec2::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};

/// "Capacity is temporarily unable to be launched": these mark the offering unavailable.
pub const INSUFFICIENT_CAPACITY_CODES: [&str; 8] = [
    "InsufficientInstanceCapacity",
    "MaxSpotInstanceCountExceeded",
    "VcpuLimitExceeded",
    "UnfulfillableCapacity",
    "Unsupported",
    "InsufficientFreeAddressesInSubnet",
    "MaxFleetCountExceeded",
    "ReservationCapacityExceeded",
];

pub const NOT_FOUND_CODES: [&str; 7] = [
    "InvalidCapacityReservationId.NotFound",
    "InvalidInstanceID.NotFound",
    LAUNCH_TEMPLATE_NAME_NOT_FOUND,
    "InvalidLaunchTemplateId.NotFound",
    "QueueDoesNotExist",
    "NoSuchEntity",
    "ParameterNotFound",
];

pub const LAUNCH_TEMPLATE_NAME_NOT_FOUND: &str = "InvalidLaunchTemplateName.NotFoundException";
pub const SPOT_SLR_CREATION_NOT_PERMITTED: &str = "AuthFailure.ServiceLinkedRoleCreationNotPermitted";
pub const INSUFFICIENT_FREE_ADDRESSES: &str = "InsufficientFreeAddressesInSubnet";
pub const REQUEST_LIMIT_EXCEEDED: &str = "RequestLimitExceeded";

pub fn is_insufficient_capacity_code(code: &str) -> bool {
    INSUFFICIENT_CAPACITY_CODES.contains(&code)
}

pub fn is_not_found_code(code: &str) -> bool {
    NOT_FOUND_CODES.contains(&code)
}

/// One entry of a CreateFleet `Errors[]`, with the override it names.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct FleetError {
    pub code: String,
    pub message: String,
    pub instance_type: Option<String>,
    pub zone: Option<String>,
    pub subnet_id: Option<String>,
}

impl FleetError {
    /// Counts toward "every error was a capacity error" (then the NodeClaim is given up).
    pub fn is_capacity(&self) -> bool {
        is_insufficient_capacity_code(&self.code) || self.code == SPOT_SLR_CREATION_NOT_PERMITTED
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CloudError {
    /// No capacity for any offering asked for; the offerings are marked and the caller retries
    /// with others (Karpenter deletes the NodeClaim and schedules again).
    #[error("insufficient capacity ({reason}): {message}")]
    InsufficientCapacity { reason: String, message: String, errors: Vec<FleetError> },
    /// A launch failed for another reason (quota mix, throttling, bad input); retried with backoff.
    #[error("creating instance failed ({reason}): {message}")]
    Create { reason: String, message: String, errors: Vec<FleetError> },
    #[error("{what} not found: {message}")]
    NotFound { what: String, message: String },
    /// An EC2NodeClass selector matched nothing (its status condition, reason and message).
    #[error("{condition}=False ({reason}): {message}")]
    NodeClassNotReady { condition: &'static str, reason: &'static str, message: String },
    /// Any other AWS API failure.
    #[error("{operation} failed: {code}: {message}")]
    Api { operation: &'static str, code: String, message: String },
    #[error("invalid input: {0}")]
    Invalid(String),
}

impl CloudError {
    pub fn is_insufficient_capacity(&self) -> bool {
        matches!(self, Self::InsufficientCapacity { .. })
    }

    pub fn is_not_found(&self) -> bool {
        match self {
            Self::NotFound { .. } => true,
            Self::Api { code, .. } => is_not_found_code(code),
            _ => false,
        }
    }

    /// A failure that says nothing about the request or the account: a 5xx, throttling, or no
    /// answer at all (an empty code). Worth asking again after a while.
    pub fn is_transient(&self) -> bool {
        const TRANSIENT: [&str; 8] = [
            "InternalError",
            "InternalFailure",
            "ServiceUnavailable",
            "Unavailable",
            REQUEST_LIMIT_EXCEEDED,
            "Throttling",
            "ThrottlingException",
            "RequestTimeout",
        ];
        match self {
            Self::Api { code, .. } => code.is_empty() || TRANSIENT.contains(&code.as_str()),
            _ => false,
        }
    }

    /// The API error code, when the failure came from one call.
    pub fn code(&self) -> Option<&str> {
        match self {
            Self::Api { code, .. } if !code.is_empty() => Some(code),
            _ => None,
        }
    }

    /// The condition reason a NodeClaim would carry.
    pub fn reason(&self) -> &str {
        match self {
            Self::InsufficientCapacity { reason, .. } | Self::Create { reason, .. } => reason,
            Self::NotFound { .. } => "NotFound",
            Self::NodeClassNotReady { reason, .. } => reason,
            Self::Api { code, message, .. } => reason_message(&format!("{code}: {message}")).0,
            Self::Invalid(_) => "Invalid",
        }
    }

    /// Wraps an SDK failure: service errors keep their code, transport failures get none.
    pub fn api<E, R>(operation: &'static str, err: SdkError<E, R>) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
        R: std::fmt::Debug,
    {
        let code = err.code().unwrap_or_default().to_owned();
        let message = match err.message() {
            Some(m) => m.to_owned(),
            None => DisplayErrorContext(&err).to_string(),
        };
        Self::Api { operation, code, message }
    }
}

/// Karpenter's `ToReasonMessage`: a well-known reason and message for the text of an EC2 error.
/// Capacity reasons come last so that a mix names the more specific failure.
pub fn reason_message(err: &str) -> (&'static str, &'static str) {
    let has = |s: &str| err.contains(s);
    if has(SPOT_SLR_CREATION_NOT_PERMITTED) {
        return (
            "SpotSLRCreationFailed",
            "User does not have sufficient permission to create the Spot ServiceLinkedRole to launch spot instances",
        );
    }
    if has("UnauthorizedOperation") || has("AccessDenied") || has("AuthFailure") {
        if has("with an explicit deny in a permissions boundary") {
            return ("Unauthorized", "User is not authorized to perform this operation due to a permission boundary");
        }
        if has("with an explicit deny in a service control policy") {
            return (
                "Unauthorized",
                "User is not authorized to perform this operation due to a service control policy",
            );
        }
        if has("Not authorized for images") {
            return ("AMIAuthorizationFailure", "User is not authorized for AMI used in instance launch");
        }
        return (
            "Unauthorized",
            "User is not authorized to perform this operation because no identity-based policy allows it",
        );
    }
    let table: [(&[&str], &str, &str); 14] = [
        (
            &["InvalidParameter", "belong to different networks"],
            "SecurityGroupSubnetVPCMismatch",
            "Security groups and subnets must be in the same VPC.",
        ),
        (
            &["iamInstanceProfile.name is invalid"],
            "InstanceProfileNameInvalid",
            "Instance profile name used from EC2NodeClass status does not exist",
        ),
        (
            &["InvalidLaunchTemplateId.NotFound"],
            "LaunchTemplateNotFound",
            "Launch template used for instance launch wasn't found",
        ),
        (
            &["User data is limited to"],
            "UserDataSizeLimitExceeded",
            "Rendered user data exceeds the EC2 user data size limit",
        ),
        (&["InvalidAMIID.Malformed"], "InvalidAMIID", "AMI used for instance launch is invalid"),
        (
            &["InvalidAMIID.NotFound"],
            "AMINotFound",
            "AMI used for instance launch either does not exist or you don't have permissions to use it",
        ),
        (&[REQUEST_LIMIT_EXCEEDED], "RequestLimitExceeded", "Request limit exceeded"),
        (&["InternalError"], "InternalError", "An internal error has occurred"),
        (
            &["not eligible for Free Tier"],
            "FreeTierIneligible",
            "The specified instance type is not eligible for Free Tier",
        ),
        (
            &["MaxFleetCountExceeded"],
            "FleetQuotaExceeded",
            "A fleet launch was requested but this would exceed your fleet request quota",
        ),
        (
            &["PendingVerification"],
            "AccountPendingVerification",
            "An instance launch was requested but the request for launching resources in this region is still being verified",
        ),
        (
            &["MaxSpotInstanceCountExceeded"],
            "SpotQuotaExceeded",
            "A spot instance launch was requested but this would exceed your spot instance quota",
        ),
        (&["VcpuLimitExceeded"], "VCPULimitExceeded", "An instance was requested that would exceed your VCPU quota"),
        (
            &[INSUFFICIENT_FREE_ADDRESSES],
            "InsufficientFreeAddressesInSubnet",
            "There are not enough free IP addresses to launch an instance in this subnet",
        ),
    ];
    table
        .iter()
        .find(|(needles, _, _)| needles.iter().all(|n| has(n)))
        .map_or(("LaunchFailed", "Instance launch failed"), |(_, r, m)| (*r, *m))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_5xx_throttling_and_no_answer_are_transient() {
        let api = |code: &str| CloudError::Api {
            operation: "DescribeInstanceTypes",
            code: code.into(),
            message: String::new(),
        };
        for code in ["InternalError", "RequestLimitExceeded", "ServiceUnavailable", ""] {
            assert!(api(code).is_transient(), "{code}");
        }
        for code in ["AuthFailure", "UnauthorizedOperation", "InvalidParameterValue"] {
            assert!(!api(code).is_transient(), "{code}");
        }
        assert!(!CloudError::Invalid("x".into()).is_transient());
    }

    #[test]
    fn reasons_follow_karpenters_order() {
        assert_eq!(
            reason_message("MaxSpotInstanceCountExceeded: Max spot instance count exceeded").0,
            "SpotQuotaExceeded"
        );
        assert_eq!(reason_message("VcpuLimitExceeded: x; RequestLimitExceeded: y").0, "RequestLimitExceeded");
        assert_eq!(reason_message("AuthFailure.ServiceLinkedRoleCreationNotPermitted: no").0, "SpotSLRCreationFailed");
        assert_eq!(
            reason_message("InvalidParameterValue: belong to different networks").0,
            "SecurityGroupSubnetVPCMismatch"
        );
        assert_eq!(reason_message("Something: else").0, "LaunchFailed");
    }
}
