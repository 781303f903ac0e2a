//! The read-only catalog calls: instance types ([`instance_types`]), where they are offered
//! ([`offerings`]), spot price history ([`spot_prices`]) and zones ([`zones`]). Karpenter makes the
//! first three at start-up and every 12 hours, and refuses to start if they fail, so their shapes
//! follow the botocore `ec2/2016-11-15` model member for member.

mod instance_types;
mod offerings;
mod spot_prices;
#[cfg(test)]
mod tests;
mod zones;

pub use instance_types::{EbsPerf, TypeInfo, describe_instance_types, ebs_perf};
pub use offerings::describe_instance_type_offerings;
pub use spot_prices::describe_spot_price_history;
pub use zones::describe_availability_zones;

/// The Price List name of a region (`location` attribute), also the root of zone group long names.
pub fn region_location(region: &str) -> Option<&'static str> {
    Some(match region {
        "us-east-1" => "US East (N. Virginia)",
        "us-east-2" => "US East (Ohio)",
        "us-west-1" => "US West (N. California)",
        "us-west-2" => "US West (Oregon)",
        "ca-central-1" => "Canada (Central)",
        "eu-west-1" => "EU (Ireland)",
        "eu-west-2" => "EU (London)",
        "eu-west-3" => "EU (Paris)",
        "eu-central-1" => "EU (Frankfurt)",
        "eu-north-1" => "EU (Stockholm)",
        "ap-south-1" => "Asia Pacific (Mumbai)",
        "ap-northeast-1" => "Asia Pacific (Tokyo)",
        "ap-northeast-2" => "Asia Pacific (Seoul)",
        "ap-southeast-1" => "Asia Pacific (Singapore)",
        "ap-southeast-2" => "Asia Pacific (Sydney)",
        "sa-east-1" => "South America (Sao Paulo)",
        _ => return None,
    })
}

/// `1.0` as `1.0` and `3.1` as `3.1`: how EC2 writes doubles.
fn dbl(v: f64) -> String {
    if v.fract() == 0.0 { format!("{v:.1}") } else { format!("{v}") }
}

// ---------------------------------------------------------------------------------------------
// Instance types
