//! EC2 Query: every action of the action table with junk parameters (names EC2 uses, near misses
//! and noise, values of every shape), and raw form bytes.

use fake_ec2::ec2::actions::ACTIONS;
use proptest::prelude::*;

use crate::fuzz;
use crate::wire::{Req, Wire, exchange, world};

/// Parameter names the EC2 handlers read, with list and struct members spelled out.
const NAMES: &[&str] = &[
    "InstanceId.1",
    "InstanceId.2",
    "InstanceType",
    "InstanceType.1",
    "ImageId",
    "SubnetId",
    "MinCount",
    "MaxCount",
    "MaxResults",
    "NextToken",
    "DryRun",
    "ClientToken",
    "Type",
    "UserData",
    "LaunchTemplateName",
    "LaunchTemplateId",
    "LaunchTemplate.LaunchTemplateName",
    "LaunchTemplate.Version",
    "Version",
    "VersionDescription",
    "LaunchTemplateData.ImageId",
    "LaunchTemplateData.UserData",
    "LaunchTemplateData.InstanceType",
    "LaunchTemplateData.BlockDeviceMapping.1.Ebs.VolumeSize",
    "LaunchTemplateData.MetadataOptions.HttpPutResponseHopLimit",
    "LaunchTemplateData.TagSpecification.1.ResourceType",
    "LaunchTemplateData.TagSpecification.1.Tag.1.Key",
    "TargetCapacitySpecification.TotalTargetCapacity",
    "TargetCapacitySpecification.DefaultTargetCapacityType",
    "TargetCapacitySpecification.SpotTargetCapacity",
    "TargetCapacitySpecification.OnDemandTargetCapacity",
    "SpotOptions.AllocationStrategy",
    "SpotOptions.MinTargetCapacity",
    "SpotOptions.MaxTotalPrice",
    "SpotOptions.InstancePoolsToUseCount",
    "OnDemandOptions.AllocationStrategy",
    "LaunchTemplateConfigs.1.LaunchTemplateSpecification.LaunchTemplateName",
    "LaunchTemplateConfigs.1.LaunchTemplateSpecification.LaunchTemplateId",
    "LaunchTemplateConfigs.1.LaunchTemplateSpecification.Version",
    "LaunchTemplateConfigs.1.Overrides.1.InstanceType",
    "LaunchTemplateConfigs.1.Overrides.1.SubnetId",
    "LaunchTemplateConfigs.1.Overrides.1.AvailabilityZone",
    "LaunchTemplateConfigs.1.Overrides.1.Priority",
    "LaunchTemplateConfigs.1.Overrides.1.WeightedCapacity",
    "LaunchTemplateConfigs.1.Overrides.1.MaxPrice",
    "LaunchTemplateConfigs.1.Overrides.1.ImageId",
    "LaunchTemplateConfigs.99999999999.Overrides.0.InstanceType",
    "Filter.1.Name",
    "Filter.1.Value.1",
    "Filter.2.Name",
    "Filter.0.Value.0",
    "Filter.1.Value.18446744073709551616",
    "TagSpecification.1.ResourceType",
    "TagSpecification.1.Tag.1.Key",
    "TagSpecification.1.Tag.1.Value",
    "Tag.1.Key",
    "Tag.1.Value",
    "ResourceId.1",
    "StartTime",
    "EndTime",
    "ProductDescription.1",
    "AvailabilityZone",
    "LocationType",
    "AllAvailabilityZones",
    "IncludeAllInstances",
    "Owner.1",
    "ExecutableBy.1",
    "GroupId.1",
    "GroupName.1",
    "ZoneName.1",
    "ZoneId.1",
    "Placement.AvailabilityZone",
    "IamInstanceProfile.Arn",
    "IamInstanceProfile.Name",
    "KeyName",
    "InstanceMarketOptions.MarketType",
    "InstanceMarketOptions.SpotOptions.InstanceInterruptionBehavior",
    "InstanceMarketOptions.SpotOptions.MaxPrice",
    "NetworkInterface.1.SubnetId",
    "SecurityGroupId.1",
    "Force",
    "SingleAvailabilityZone",
    "SingleInstanceType",
    "Action",
    "",
    ".",
    "..1",
    "Filter.",
    "Filter.x.Name",
];

/// Values of every shape the handlers parse: numbers at and past their limits, booleans, ids, times,
/// base64, and noise.
fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "",
            "0",
            "1",
            "2",
            "-1",
            "3",
            "1000",
            "2147483648",
            "-9223372036854775809",
            "18446744073709551616",
            "1e308",
            "NaN",
            "inf",
            "0.5",
            "-0.0",
            "true",
            "false",
            "TRUE",
            "spot",
            "on-demand",
            "instant",
            "request",
            "maintain",
            "lowest-price",
            "price-capacity-optimized",
            "capacity-optimized",
            "prioritized",
            "$Latest",
            "$Default",
            "m5.large",
            "m7g.xlarge",
            "t3.nano",
            "x.huge",
            "us-west-2a",
            "usw2-az1",
            "subnet-0a1a1a1a1a1a1a1a1",
            "ami-0a0b0c0d0e0f10111",
            "i-0000000000000dead",
            "lt-0",
            "sg-0123456789abcdef0",
            "instance",
            "launch-template",
            "tag:team",
            "instance-state-name",
            "instance-type",
            "m5.*",
            "*",
            "?",
            "2026-01-01T00:00:00Z",
            "2026-13-45T99:99:99Z",
            "0001-01-01T00:00:00Z",
            "IyEvYmluL2Jhc2g=",
            "!!notbase64",
            "Linux/UNIX",
            "availability-zone",
            "region",
            "karpenter.k8s.aws/1",
        ])
        .prop_map(str::to_owned),
        "[ -~]{0,40}",
        any::<String>(),
        "[0-9]{1,30}",
    ]
}

fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => prop::sample::select(NAMES).prop_map(str::to_owned),
        1 => "[A-Za-z0-9.]{1,30}",
        1 => any::<String>(),
    ]
}

fn action() -> impl Strategy<Value = String> {
    let names: Vec<&'static str> = ACTIONS.iter().map(|a| a.name).collect();
    prop_oneof![
        8 => prop::sample::select(names).prop_map(str::to_owned),
        1 => Just("Bogus".to_owned()),
        1 => "[A-Za-z]{0,20}",
    ]
}

fn encode(pairs: &[(String, String)]) -> String {
    let mut s = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        s.append_pair(k, v);
    }
    s.finish()
}

/// A call of one action: its name, up to 12 junk parameters, sometimes Version and DryRun.
pub fn junk_call() -> impl Strategy<Value = (String, Vec<(String, String)>)> {
    (action(), prop::collection::vec((name(), value()), 0..12), any::<bool>()).prop_map(|(action, mut params, v)| {
        if v {
            params.push(("Version".into(), "2016-11-15".into()));
        }
        let mut pairs = vec![("Action".to_owned(), action.clone())];
        pairs.append(&mut params);
        (action, pairs)
    })
}

pub fn every_action_with_junk_params() {
    let state = world();
    fuzz("ec2 actions with junk params", junk_call(), |(_, pairs)| {
        let req = Req::post("ec2", "application/x-www-form-urlencoded; charset=utf-8", encode(&pairs));
        exchange(&state, Wire::Ec2, &req)
    });
    // Every action at least once with nothing but its name, whatever the sampling picked.
    for a in ACTIONS {
        let body = format!("Action={}&Version=2016-11-15", a.name);
        let req = Req::post("ec2", "application/x-www-form-urlencoded", body);
        if let Err(e) = exchange(&state, Wire::Ec2, &req) {
            panic!("{}: {e}", a.name);
        }
    }
}

pub fn raw_form_bytes() {
    let state = world();
    let bytes = prop_oneof![
        prop::collection::vec(any::<u8>(), 0..200),
        "(Action=[A-Za-z]{0,12}|&|=|%[0-9A-Fa-f]{0,2}|\\+|[A-Za-z.0-9]{1,8}|%00|%FF|%C3%28)*"
            .prop_map(String::into_bytes),
    ];
    fuzz("ec2 raw form bytes", bytes, |body| {
        let req = Req::post("ec2", "application/x-www-form-urlencoded", body);
        exchange(&state, Wire::Ec2, &req)
    });
}
