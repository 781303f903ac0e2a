//! Wire-level properties: byte-identical responses for the same seed and requests, snapshots of
//! representative XML, and paging that never loses or repeats an item.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeSet;

use common::call;
use fake_ec2::server::AppState;
use proptest::prelude::*;

const LT: &str = "Action=CreateLaunchTemplate&Version=2016-11-15&LaunchTemplateName=karpenter.k8s.aws%2F1&LaunchTemplateData.ImageId=ami-0a0b0c0d0e0f10111&LaunchTemplateData.SecurityGroupId.1=sg-0123456789abcdef0";
const FLEET: &str = "Action=CreateFleet&Version=2016-11-15&Type=instant&TargetCapacitySpecification.TotalTargetCapacity=3&TargetCapacitySpecification.DefaultTargetCapacityType=spot&SpotOptions.AllocationStrategy=price-capacity-optimized&LaunchTemplateConfigs.1.LaunchTemplateSpecification.LaunchTemplateName=karpenter.k8s.aws%2F1&LaunchTemplateConfigs.1.LaunchTemplateSpecification.Version=%24Latest&LaunchTemplateConfigs.1.Overrides.1.InstanceType=m5.large&LaunchTemplateConfigs.1.Overrides.1.SubnetId=subnet-0a1a1a1a1a1a1a1a1&LaunchTemplateConfigs.1.Overrides.1.AvailabilityZone=us-west-2a&LaunchTemplateConfigs.1.Overrides.1.ImageId=ami-0a0b0c0d0e0f10111&LaunchTemplateConfigs.1.Overrides.1.Priority=0.096&TagSpecification.1.ResourceType=instance&TagSpecification.1.Tag.1.Key=karpenter.sh%2Fnodepool&TagSpecification.1.Tag.1.Value=default";

/// A request sequence touching every kind of state change.
fn script() -> Vec<String> {
    vec![
        "Action=DescribeAvailabilityZones&Version=2016-11-15".into(),
        LT.into(),
        FLEET.into(),
        "Action=RunInstances&Version=2016-11-15&ImageId=ami-0a0b0c0d0e0f10111&InstanceType=c5.large&MinCount=2&MaxCount=2&SubnetId=subnet-0b2b2b2b2b2b2b2b2".into(),
        "Action=DescribeInstances&Version=2016-11-15".into(),
        "Action=DescribeSpotPriceHistory&Version=2016-11-15&InstanceType.1=m5.large&AvailabilityZone=us-west-2a&StartTime=2025-12-30T00:00:00Z".into(),
        "Action=DescribeInstanceTypes&Version=2016-11-15&InstanceType.1=m5.large&InstanceType.2=m7g.xlarge".into(),
        "Action=DescribeInstances&Version=2016-11-15&InstanceId.1=i-0000000000000dead".into(),
        "Action=Bogus&Version=2016-11-15".into(),
    ]
}

fn run_script(seed: u64) -> Vec<(u16, String)> {
    let state = AppState::new(common::world(seed));
    script().iter().map(|b| call(&state, b)).collect()
}

#[test]
fn same_seed_same_requests_give_byte_identical_responses() {
    let a = run_script(42);
    let b = run_script(42);
    assert_eq!(a, b);
    let c = run_script(43);
    assert_ne!(a, c, "another seed gives other ids and prices");
    assert!(a.iter().any(|(s, _)| *s == 400), "the script exercises errors too");
}

/// Indents XML one element per line, so snapshots read like EC2's documentation.
fn pretty(xml: &str) -> String {
    let mut out = String::new();
    let mut depth: usize = 0;
    let body = xml.split_once("?>").map_or(xml, |(_, b)| b.trim());
    let mut rest = body;
    while let Some(start) = rest.find('<') {
        let end = rest[start..].find('>').map_or(rest.len(), |e| start + e + 1);
        let tag = &rest[start..end];
        let after = &rest[end..];
        if tag.starts_with("</") {
            depth = depth.saturating_sub(1);
            out.push_str(&"  ".repeat(depth));
            out.push_str(tag);
            out.push('\n');
            rest = after;
        } else if let Some(close) = after.find('<').filter(|i| after[*i..].starts_with("</")) {
            // A leaf: <a>text</a> on one line.
            let close_end = after[close..].find('>').map_or(after.len(), |e| close + e + 1);
            out.push_str(&"  ".repeat(depth));
            out.push_str(tag);
            out.push_str(&after[..close_end]);
            out.push('\n');
            rest = &after[close_end..];
        } else {
            out.push_str(&"  ".repeat(depth));
            out.push_str(tag);
            out.push('\n');
            depth += 1;
            rest = after;
        }
    }
    out
}

#[test]
fn representative_responses_match_their_snapshots() {
    let state = AppState::new(common::world(7));
    let names = [
        "describe_availability_zones",
        "create_launch_template",
        "create_fleet",
        "run_instances",
        "describe_instances",
        "describe_spot_price_history",
        "describe_instance_types",
        "error_instance_not_found",
        "error_invalid_action",
    ];
    for (name, body) in names.iter().zip(script()) {
        let (status, xml) = call(&state, &body);
        insta::assert_snapshot!(*name, format!("HTTP {status}\n{}", pretty(&xml)));
    }
    // A fleet that runs out of capacity part-way: errorSet beside fleetInstanceSet.
    {
        let mut w = state.cloud();
        let pool = w.ec2.pool_of("m5.large", "us-west-2a").unwrap();
        w.ec2.pools.set_capacity(fake_ec2::world::pools::CapacityType::Spot, pool, 4);
    }
    let (status, xml) = call(&state, FLEET);
    insta::assert_snapshot!("create_fleet_partial_ice", format!("HTTP {status}\n{}", pretty(&xml)));
    let (status, xml) = call(&state, &format!("{FLEET}&DryRun=true"));
    insta::assert_snapshot!("error_dry_run", format!("HTTP {status}\n{}", pretty(&xml)));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Any filter and any page size: the pages together are exactly the filtered set, in order.
    #[test]
    fn paging_through_filtered_instances_loses_and_repeats_nothing(
        teams in proptest::collection::vec(0usize..3, 0..30),
        filter in 0usize..4,
        page in 5i64..12,
        terminate_every in 2usize..6,
    ) {
        // Throttling off: this property is about paging, not request rates.
        let state = AppState::new(common::world_with(1, |c| c.throttling.mode = fake_ec2::world::config::ThrottleMode::Off));
        let team_names = ["a", "b", "c"];
        let mut expected = Vec::new();
        for (n, t) in teams.iter().enumerate() {
            let itype = if n % 2 == 0 { "m5.large" } else { "c5.large" };
            let body = format!(
                "Action=RunInstances&ImageId=ami-0a0b0c0d0e0f10111&InstanceType={itype}&MinCount=1&MaxCount=1&TagSpecification.1.ResourceType=instance&TagSpecification.1.Tag.1.Key=team&TagSpecification.1.Tag.1.Value={}",
                team_names[*t]
            );
            let (status, xml) = call(&state, &body);
            prop_assert_eq!(status, 200);
            let id = xml.split("<instanceId>").nth(1).and_then(|s| s.split('<').next()).unwrap().to_owned();
            if n % terminate_every == 0 {
                call(&state, &format!("Action=TerminateInstances&InstanceId.1={id}"));
            }
            let keep = match filter {
                0 => true,
                1 => *t == 0,
                2 => itype == "m5.large",
                _ => n % terminate_every != 0,
            };
            if keep {
                expected.push(id);
            }
        }
        let filter_q = match filter {
            0 => String::new(),
            1 => "&Filter.1.Name=tag%3Ateam&Filter.1.Value.1=a".into(),
            2 => "&Filter.1.Name=instance-type&Filter.1.Value.1=m5.*".into(),
            _ => "&Filter.1.Name=instance-state-name&Filter.1.Value.1=pending&Filter.1.Value.2=running".into(),
        };
        let mut got = Vec::new();
        let mut token: Option<String> = None;
        for _ in 0..100 {
            let t = token.as_ref().map(|t| format!("&NextToken={t}")).unwrap_or_default();
            let (status, xml) = call(&state, &format!("Action=DescribeInstances&MaxResults={page}{filter_q}{t}"));
            prop_assert_eq!(status, 200);
            got.extend(xml.split("<instanceId>").skip(1).map(|s| s.split('<').next().unwrap_or_default().to_owned()));
            token = xml.split("<nextToken>").nth(1).and_then(|s| s.split('<').next()).map(str::to_owned);
            if token.is_none() { break; }
        }
        let unique: BTreeSet<_> = got.iter().collect();
        prop_assert_eq!(unique.len(), got.len(), "no repeats");
        prop_assert_eq!(got, expected);
    }
}
