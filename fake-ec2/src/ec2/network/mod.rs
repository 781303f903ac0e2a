//! What a launch refers to: subnets ([`subnets`]), security groups ([`security_groups`]) and AMIs
//! ([`images`]). Karpenter resolves its EC2NodeClass selector terms through these three calls every
//! minute, so filters (`tag:`, `tag-key`, `name` wildcards) and the live `availableIpAddressCount`
//! matter.

mod images;
mod security_groups;
mod subnets;
#[cfg(test)]
mod tests;

pub use images::describe_images;
pub use security_groups::describe_security_groups;
pub use subnets::describe_subnets;

use super::pagination::Limits;
use crate::world::World;

/// DescribeSubnets / DescribeSecurityGroups: MaxResults 5..1000 (botocore); everything when absent.
pub(super) const LIMITS: Limits = Limits { min: 5, max: 1000, default: None };
/// DescribeImages: botocore sets no bounds; EC2 accepts up to 1000 (Karpenter asks for 1000).
pub(super) const IMAGE_LIMITS: Limits = Limits { min: 1, max: 1000, default: None };

/// Accounts that publish Amazon's own AMIs (Amazon Linux, EKS-optimized, Bottlerocket in
/// us-west-2, Windows): their images carry the owner alias `amazon` and match `Owner=amazon`.
pub(super) const AMAZON_OWNERS: &[&str] = &["137112412989", "602401143452", "651937483462", "801119661308"];

/// The ARN partition of a region.
pub(super) fn partition(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "aws-cn"
    } else if region.starts_with("us-gov-") {
        "aws-us-gov"
    } else {
        "aws"
    }
}

pub(super) fn arn(w: &World, kind: &str, id: &str) -> String {
    format!("arn:{}:ec2:{}:{}:{kind}/{id}", partition(&w.cfg.region), w.cfg.region, w.cfg.account_id)
}

/// The first of `wanted` for which `exists` is false.
pub(super) fn first_missing<'a>(wanted: &[&'a str], exists: impl Fn(&str) -> bool) -> Option<&'a str> {
    wanted.iter().copied().find(|id| !exists(id))
}

// ---------------------------------------------------------------------------------------------
// Subnets

/// `<prefix>-` and 8 or 17 lowercase hex digits (`sg-…`, `ami-…`).
pub(super) fn well_formed(id: &str, prefix: &str) -> bool {
    id.strip_prefix(prefix).and_then(|h| h.strip_prefix('-')).is_some_and(|h| {
        (8..=17).contains(&h.len()) && h.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}
