use super::super::error::Ec2Result;
use super::super::testing::{ok, run, texts};
use super::*;
use crate::world::tests::test_world;

fn err(r: Ec2Result<String>) -> Option<(u16, String, String)> {
    r.err().map(|e| (e.status, e.code, e.message))
}

#[test]
fn subnets_by_tag_show_live_free_addresses() {
    let mut w = test_world(1);
    let q = "Filter.1.Name=tag%3Akarpenter.sh%2Fdiscovery&Filter.1.Value.1=fake-cluster&MaxResults=500";
    let xml = ok(run(describe_subnets, &mut w, "DescribeSubnets", q));
    assert_eq!(
        texts(&xml, "subnetId"),
        ["subnet-0a1a1a1a1a1a1a1a1", "subnet-0b2b2b2b2b2b2b2b2", "subnet-0c3c3c3c3c3c3c3c3"]
    );
    assert_eq!(texts(&xml, "availabilityZoneId"), ["usw2-az1", "usw2-az2", "usw2-az3"]);
    // A /19 has 8192 addresses, less the 5 AWS keeps.
    assert_eq!(texts(&xml, "availableIpAddressCount"), ["8187"; 3]);
    assert!(xml.contains("<subnetArn>arn:aws:ec2:us-west-2:123456789012:subnet/subnet-0a1a1a1a1a1a1a1a1</subnetArn>"));
    assert!(xml.contains("<tagSet><item><key>Name</key><value>private-us-west-2a</value></item>"));

    if let Some(s) = w.subnets.iter_mut().find(|s| s.id() == "subnet-0b2b2b2b2b2b2b2b2") {
        s.allocate_ip();
    }
    let xml = ok(run(describe_subnets, &mut w, "DescribeSubnets", "SubnetId.1=subnet-0b2b2b2b2b2b2b2b2"));
    assert_eq!(texts(&xml, "availableIpAddressCount"), ["8186"]);

    let xml = ok(run(
        describe_subnets,
        &mut w,
        "DescribeSubnets",
        "Filter.1.Name=availability-zone&Filter.1.Value.1=us-west-2c",
    ));
    assert_eq!(texts(&xml, "subnetId"), ["subnet-0c3c3c3c3c3c3c3c3"]);
    let xml = ok(run(describe_subnets, &mut w, "DescribeSubnets", "Filter.1.Name=tag-key&Filter.1.Value.1=missing"));
    assert!(texts(&xml, "subnetId").is_empty());
}

#[test]
fn subnet_errors_and_dry_run() {
    let mut w = test_world(1);
    assert_eq!(
        err(run(describe_subnets, &mut w, "DescribeSubnets", "SubnetId.1=subnet-0123456789abcdef0")),
        Some((
            400,
            "InvalidSubnetID.NotFound".into(),
            "The subnet ID 'subnet-0123456789abcdef0' does not exist".into()
        ))
    );
    assert_eq!(
        err(run(describe_subnets, &mut w, "DescribeSubnets", "Filter.1.Name=colour&Filter.1.Value.1=x")).map(|e| e.1),
        Some("InvalidParameterValue".into())
    );
    assert_eq!(
        err(run(describe_subnets, &mut w, "DescribeSubnets", "DryRun=true")).map(|e| (e.0, e.1)),
        Some((412, "DryRunOperation".into()))
    );
    assert_eq!(
        err(run(describe_subnets, &mut w, "DescribeSubnets", "MaxResults=2")).map(|e| e.1),
        Some("InvalidParameterValue".into())
    );
}

#[test]
fn subnets_page_through_once_each() {
    let mut w = test_world(1);
    let first = ok(run(describe_subnets, &mut w, "DescribeSubnets", "MaxResults=5"));
    assert_eq!(texts(&first, "subnetId").len(), 3);
    assert!(texts(&first, "nextToken").is_empty());
}

#[test]
fn security_groups_render_egress_and_filter() {
    let mut w = test_world(1);
    let xml = ok(run(describe_security_groups, &mut w, "DescribeSecurityGroups", "GroupId.1=sg-0123456789abcdef0"));
    assert_eq!(texts(&xml, "groupName"), ["eks-cluster-sg-fake-cluster"]);
    assert!(xml.contains(
        "<ipPermissionsEgress><item><ipProtocol>-1</ipProtocol><groups></groups><ipRanges><item><cidrIp>0.0.0.0/0</cidrIp></item></ipRanges>"
    ));
    assert!(xml.contains(
        "<securityGroupArn>arn:aws:ec2:us-west-2:123456789012:security-group/sg-0123456789abcdef0</securityGroupArn>"
    ));
    assert!(xml.contains("<ipPermissions></ipPermissions>"));

    let xml = ok(run(
        describe_security_groups,
        &mut w,
        "DescribeSecurityGroups",
        "Filter.1.Name=group-name&Filter.1.Value.1=fake-cluster-*",
    ));
    assert_eq!(texts(&xml, "groupId"), ["sg-0fedcba9876543210"]);
    let xml = ok(run(
        describe_security_groups,
        &mut w,
        "DescribeSecurityGroups",
        "Filter.1.Name=tag-key&Filter.1.Value.1=karpenter.sh%2Fdiscovery",
    ));
    assert_eq!(texts(&xml, "groupId"), ["sg-0123456789abcdef0", "sg-0fedcba9876543210"]);
    let xml = ok(run(describe_security_groups, &mut w, "DescribeSecurityGroups", "GroupName.1=fake-cluster-node"));
    assert_eq!(texts(&xml, "groupId"), ["sg-0fedcba9876543210"]);
}

#[test]
fn security_group_errors() {
    let mut w = test_world(1);
    assert_eq!(
        err(run(describe_security_groups, &mut w, "DescribeSecurityGroups", "GroupId.1=sg-00000000000000000")),
        Some((400, "InvalidGroup.NotFound".into(), "The security group 'sg-00000000000000000' does not exist".into()))
    );
    assert_eq!(
        err(run(describe_security_groups, &mut w, "DescribeSecurityGroups", "GroupId.1=web")).map(|e| e.1),
        Some("InvalidGroupId.Malformed".into())
    );
    assert_eq!(
        err(run(describe_security_groups, &mut w, "DescribeSecurityGroups", "GroupName.1=nope")).map(|e| e.1),
        Some("InvalidGroup.NotFound".into())
    );
    assert_eq!(
        err(run(describe_security_groups, &mut w, "DescribeSecurityGroups", "DryRun=true")).map(|e| (e.0, e.1)),
        Some((412, "DryRunOperation".into()))
    );
    assert_eq!(
        err(run(describe_security_groups, &mut w, "DescribeSecurityGroups", "Filter.1.Name=ports&Filter.1.Value.1=1"))
            .map(|e| e.1),
        Some("InvalidParameterValue".into())
    );
}

#[test]
fn images_by_name_wildcard_owner_and_state() {
    let mut w = test_world(1);
    let q = "Filter.1.Name=name&Filter.1.Value.1=amazon-eks-node-al2023-arm64-standard-1.34-*&Filter.2.Name=state&Filter.2.Value.1=available\
             &IncludeDeprecated=true&MaxResults=1000";
    let xml = ok(run(describe_images, &mut w, "DescribeImages", q));
    assert_eq!(texts(&xml, "imageId"), ["ami-0a0b0c0d0e0f20222"]);
    assert_eq!(texts(&xml, "architecture"), ["arm64"]);
    assert_eq!(texts(&xml, "bootMode"), ["uefi"]);
    assert_eq!(texts(&xml, "imageOwnerAlias"), ["amazon"]);
    assert_eq!(texts(&xml, "rootDeviceName"), ["/dev/xvda"]);
    assert_eq!(texts(&xml, "imageState"), ["available"]);
    assert!(xml.contains("<blockDeviceMapping><item><deviceName>/dev/xvda</deviceName><ebs><snapshotId>snap-0"));
    assert!(!xml.contains("deprecationTime"));

    let xml = ok(run(describe_images, &mut w, "DescribeImages", "Owner.1=amazon"));
    assert_eq!(texts(&xml, "imageId").len(), w.images.len(), "EKS and Bottlerocket images are Amazon's");
    let q = "Owner.1=amazon&Filter.1.Name=name&Filter.1.Value.1=bottlerocket-*&Filter.2.Name=owner-id&Filter.2.Value.1=651937483462";
    assert_eq!(texts(&ok(run(describe_images, &mut w, "DescribeImages", q)), "imageId").len(), 8);
    let xml = ok(run(describe_images, &mut w, "DescribeImages", "Owner.1=self"));
    assert!(texts(&xml, "imageId").is_empty());
    let xml = ok(run(
        describe_images,
        &mut w,
        "DescribeImages",
        "Filter.1.Name=image-id&Filter.1.Value.1=ami-0a0b0c0d0e0f10111",
    ));
    assert_eq!(texts(&xml, "architecture"), ["x86_64"]);
}

#[test]
fn deprecated_images_need_asking_for() {
    let mut w = test_world(1);
    if let Some(i) = w.images.iter_mut().find(|i| i.cfg.id == "ami-0a0b0c0d0e0f10111") {
        i.cfg.deprecated = true;
    }
    let xml = ok(run(describe_images, &mut w, "DescribeImages", "Owner.1=amazon"));
    let ids = texts(&xml, "imageId");
    assert_eq!(ids.len(), w.images.len() - 1);
    assert!(!ids.iter().any(|i| i == "ami-0a0b0c0d0e0f10111"));
    let xml = ok(run(describe_images, &mut w, "DescribeImages", "Owner.1=amazon&IncludeDeprecated=true"));
    assert_eq!(texts(&xml, "imageId").len(), w.images.len());
    assert_eq!(texts(&xml, "deprecationTime"), ["2025-11-20T18:01:02.000Z"]);
}

#[test]
fn image_errors() {
    let mut w = test_world(1);
    assert_eq!(
        err(run(describe_images, &mut w, "DescribeImages", "ImageId.1=ami-0123456789abcdef0")),
        Some((400, "InvalidAMIID.NotFound".into(), "The image id '[ami-0123456789abcdef0]' does not exist".into()))
    );
    assert_eq!(
        err(run(describe_images, &mut w, "DescribeImages", "ImageId.1=ami-0123456789abcdef0&ImageId.2=ami-12345678"))
            .map(|e| e.2),
        Some("The image ids '[ami-0123456789abcdef0, ami-12345678]' do not exist".into())
    );
    assert_eq!(
        err(run(describe_images, &mut w, "DescribeImages", "ImageId.1=ami-xyz")).map(|e| e.1),
        Some("InvalidAMIID.Malformed".into())
    );
    assert_eq!(
        err(run(describe_images, &mut w, "DescribeImages", "Owner.1=someone")).map(|e| e.1),
        Some("InvalidUserID.Malformed".into())
    );
    assert_eq!(
        err(run(describe_images, &mut w, "DescribeImages", "Filter.1.Name=flavour&Filter.1.Value.1=x")).map(|e| e.1),
        Some("InvalidParameterValue".into())
    );
    assert_eq!(
        err(run(describe_images, &mut w, "DescribeImages", "ImageId.1=ami-0a0b0c0d0e0f10111&DryRun=true"))
            .map(|e| (e.0, e.1)),
        Some((412, "DryRunOperation".into()))
    );
}

#[test]
fn images_page_through_once_each() {
    let mut w = test_world(1);
    let mut seen = Vec::new();
    let mut token = String::new();
    loop {
        let q = if token.is_empty() { "MaxResults=5".to_owned() } else { format!("MaxResults=5&NextToken={token}") };
        let page = ok(run(describe_images, &mut w, "DescribeImages", &q));
        let ids = texts(&page, "imageId");
        assert!(ids.len() <= 5);
        seen.extend(ids);
        match texts(&page, "nextToken").pop() {
            Some(t) if !t.is_empty() => token = t,
            _ => break,
        }
    }
    let mut all: Vec<String> = w.images.iter().map(|i| i.cfg.id.clone()).collect();
    all.sort();
    let mut sorted = seen.clone();
    sorted.sort();
    assert_eq!(sorted, all, "every image once: {seen:?}");
}
