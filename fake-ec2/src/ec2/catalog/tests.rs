use super::super::error::Ec2Result;
use super::super::testing::{self, ok, run, run_at, texts};
use super::spot_prices::DAY_MS;
use super::*;
use crate::clock;
use crate::world::World;
use crate::world::catalog::InstanceType;
use crate::world::tests::test_world;

fn code(r: Ec2Result<String>) -> Option<(u16, String)> {
    r.err().map(|e| (e.status, e.code))
}

#[test]
fn instance_type_renders_the_botocore_shape() {
    let mut w = test_world(1);
    let xml = ok(run(describe_instance_types, &mut w, "DescribeInstanceTypes", "InstanceType.1=m5.large"));
    assert_eq!(texts(&xml, "instanceType"), ["m5.large"]);
    for (tag, want) in [
        ("defaultVCpus", "2"),
        ("defaultCores", "1"),
        ("defaultThreadsPerCore", "2"),
        ("sizeInMiB", "8192"),
        ("hypervisor", "nitro"),
        ("manufacturer", "Intel"),
        ("sustainedClockSpeedInGhz", "3.1"),
        ("maximumNetworkInterfaces", "3"),
        ("ipv4AddressesPerInterface", "10"),
        ("ipv6AddressesPerInterface", "10"),
        ("baselineBandwidthInMbps", "650"),
        ("maximumBandwidthInMbps", "4750"),
        ("baselineThroughputInMBps", "81.25"),
        ("enaSupport", "required"),
        ("nvmeSupport", "required"),
        ("burstablePerformanceSupported", "false"),
        ("freeTierEligible", "false"),
    ] {
        assert!(texts(&xml, tag).iter().any(|v| v == want), "{tag} = {want} in {xml}");
    }
    assert!(xml.contains("<supportedUsageClasses><item>on-demand</item><item>spot</item></supportedUsageClasses>"));
    assert!(xml.contains("<supportedArchitectures><item>x86_64</item></supportedArchitectures>"));
    assert!(xml.contains("<supportedBootModes><item>legacy-bios</item><item>uefi</item></supportedBootModes>"));
    assert!(xml.contains("<networkCards><item><networkCardIndex>0</networkCardIndex>"));
    assert!(!xml.contains("<nextToken>"));

    let arm = ok(run(describe_instance_types, &mut w, "DescribeInstanceTypes", "InstanceType.1=m7g.large"));
    assert!(arm.contains("<supportedBootModes><item>uefi</item></supportedBootModes>"));
    assert_eq!(texts(&arm, "manufacturer"), ["AWS"]);
    assert_eq!(texts(&arm, "defaultThreadsPerCore"), ["1"]);
}

#[test]
fn metal_gpu_storage_and_xen_types_say_what_ec2_says() {
    let mut w = test_world(1);
    let one = |w: &mut World, name: &str| {
        ok(run(describe_instance_types, w, "DescribeInstanceTypes", &format!("InstanceType.1={name}")))
    };
    let metal = one(&mut w, "m5.metal");
    assert_eq!(texts(&metal, "bareMetal"), ["true"]);
    assert!(!metal.contains("<hypervisor>"), "EC2 sends no hypervisor for bare metal");
    assert_eq!(texts(&metal, "nitroTpmSupport"), ["unsupported"]);
    assert_eq!(texts(&metal, "nitroEnclavesSupport"), ["unsupported"]);

    let g5 = one(&mut w, "g5.12xlarge");
    assert!(g5.contains(
        "<gpuInfo><gpus><item><name>A10G</name><manufacturer>NVIDIA</manufacturer><count>4</count>\
         <memoryInfo><sizeInMiB>22888</sizeInMiB></memoryInfo></item></gpus><totalGpuMemoryInMiB>91552</totalGpuMemoryInMiB></gpuInfo>"
    ), "{g5}");
    assert_eq!(texts(&g5, "instanceStorageSupported"), ["true"]);
    assert!(g5.contains(
        "<instanceStorageInfo><totalSizeInGB>3800</totalSizeInGB><disks><item><sizeInGB>3800</sizeInGB><count>1</count>\
         <type>ssd</type></item></disks><nvmeSupport>required</nvmeSupport><encryptionSupport>required</encryptionSupport></instanceStorageInfo>"
    ), "{g5}");
    assert_eq!(
        (texts(&g5, "manufacturer")[0].as_str(), texts(&g5, "sustainedClockSpeedInGhz")),
        ("AMD", vec!["3.3".to_owned()])
    );

    let i3 = one(&mut w, "i3.4xlarge");
    assert_eq!(texts(&i3, "hypervisor"), ["xen"]);
    assert_eq!(texts(&i3, "totalSizeInGB"), ["3800"]);
    assert_eq!((texts(&i3, "sizeInGB"), texts(&i3, "count")), (vec!["1900".to_owned()], vec!["2".to_owned()]));
    assert_eq!(texts(&i3, "enaSupport"), ["supported"]);
    assert!(i3.contains("<supportedBootModes><item>legacy-bios</item></supportedBootModes>"));
    assert!(!i3.contains("nitroTpmInfo"));

    let plain = one(&mut w, "t3a.medium");
    assert_eq!(texts(&plain, "instanceStorageSupported"), ["false"]);
    assert!(!plain.contains("instanceStorageInfo") && !plain.contains("gpuInfo"));
    assert_eq!(texts(&plain, "sustainedClockSpeedInGhz"), ["2.2"]);

    let names = |w: &mut World, q: &str| {
        texts(
            &ok(run(describe_instance_types, w, "DescribeInstanceTypes", &format!("MaxResults=100&{q}"))),
            "instanceType",
        )
    };
    let metal: Vec<String> = w.catalog.all().iter().filter(|t| t.bare_metal).map(|t| t.name.clone()).collect();
    assert_eq!(names(&mut w, "Filter.1.Name=bare-metal&Filter.1.Value.1=true"), metal);
    assert_eq!(names(&mut w, "Filter.1.Name=hypervisor&Filter.1.Value.1=xen").len(), 6);
    let store = names(
        &mut w,
        "Filter.1.Name=instance-storage-supported&Filter.1.Value.1=true&Filter.2.Name=instance-storage-info.disk.count&Filter.2.Value.1=8",
    );
    assert!(
        store.contains(&"i3.metal".to_owned())
            && store.iter().all(|n| w.catalog.get(n).and_then(|t| t.local_nvme_disks) == Some(8))
    );
    let amd = names(
        &mut w,
        "Filter.1.Name=processor-info.manufacturer&Filter.1.Value.1=AMD&Filter.2.Name=instance-type&Filter.2.Value.1=g*",
    );
    assert!(!amd.is_empty() && amd.iter().all(|n| n.starts_with("g5.") || n.starts_with("g6.")));
}

#[test]
fn instance_types_filter_like_karpenter_asks() {
    let mut w = test_world(1);
    let q = "Filter.1.Name=supported-virtualization-type&Filter.1.Value.1=hvm\
             &Filter.2.Name=processor-info.supported-architecture&Filter.2.Value.1=arm64";
    let xml = ok(run(describe_instance_types, &mut w, "DescribeInstanceTypes", q));
    let names = texts(&xml, "instanceType");
    let arm = w.catalog.all().iter().filter(|t| t.is_arm()).count();
    assert_eq!(names.len(), arm.min(100));
    assert!(names.iter().all(|n| w.catalog.get(n).is_some_and(InstanceType::is_arm)));

    let q =
        "Filter.1.Name=instance-type&Filter.1.Value.1=m5.*&Filter.2.Name=vcpu-info.default-vcpus&Filter.2.Value.1=4";
    let xml = ok(run(describe_instance_types, &mut w, "DescribeInstanceTypes", q));
    assert_eq!(texts(&xml, "instanceType"), ["m5.xlarge"]);

    let q = "Filter.1.Name=burstable-performance-supported&Filter.1.Value.1=true";
    let xml = ok(run(describe_instance_types, &mut w, "DescribeInstanceTypes", q));
    let names = texts(&xml, "instanceType");
    assert!(!names.is_empty() && names.iter().all(|n| n.starts_with('t')));
}

#[test]
fn instance_types_page_through_every_type_once() {
    let mut w = test_world(1);
    let mut seen = Vec::new();
    let mut token = String::new();
    loop {
        let q = if token.is_empty() { "MaxResults=37".to_owned() } else { format!("MaxResults=37&NextToken={token}") };
        let xml = ok(run(describe_instance_types, &mut w, "DescribeInstanceTypes", &q));
        seen.extend(texts(&xml, "instanceType"));
        match texts(&xml, "nextToken").pop() {
            Some(t) => token = t,
            None => break,
        }
    }
    let all: Vec<String> = w.catalog.all().iter().map(|t| t.name.clone()).collect();
    assert_eq!(seen, all);
    // Without MaxResults, EC2 still pages at 100.
    let xml = ok(run(describe_instance_types, &mut w, "DescribeInstanceTypes", ""));
    assert_eq!(texts(&xml, "instanceType").len(), 100.min(all.len()));
}

#[test]
fn instance_type_errors() {
    let mut w = test_world(1);
    let r =
        run(describe_instance_types, &mut w, "DescribeInstanceTypes", "InstanceType.1=m5.large&InstanceType.2=m5.huge");
    let e = r.err();
    assert_eq!(e.as_ref().map(|e| e.code.as_str()), Some("InvalidInstanceType"));
    assert_eq!(e.map(|e| e.message), Some("The following supplied instance types do not exist: [m5.huge]".into()));
    assert_eq!(
        code(run(describe_instance_types, &mut w, "DescribeInstanceTypes", "Filter.1.Name=bogus&Filter.1.Value.1=x")),
        Some((400, "InvalidParameterValue".into()))
    );
    assert_eq!(
        code(run(describe_instance_types, &mut w, "DescribeInstanceTypes", "MaxResults=101")),
        Some((400, "InvalidParameterValue".into()))
    );
    assert_eq!(
        code(run(describe_instance_types, &mut w, "DescribeInstanceTypes", "DryRun=true")),
        Some((412, "DryRunOperation".into()))
    );
}

#[test]
fn offerings_cover_every_offered_zone() {
    let mut w = test_world(1);
    let types = w.catalog.all().len();
    let xml = ok(run(
        describe_instance_type_offerings,
        &mut w,
        "DescribeInstanceTypeOfferings",
        "LocationType=availability-zone&MaxResults=1000",
    ));
    assert_eq!(texts(&xml, "location").len(), types * w.cfg.zones.len());
    assert!(texts(&xml, "locationType").iter().all(|l| l == "availability-zone"));

    let xml = ok(run(describe_instance_type_offerings, &mut w, "DescribeInstanceTypeOfferings", ""));
    assert_eq!(texts(&xml, "location").len(), types);
    assert!(texts(&xml, "location").iter().all(|l| l == "us-west-2"));

    let q = "LocationType=availability-zone-id&Filter.1.Name=instance-type&Filter.1.Value.1=m5.l*\
             &Filter.2.Name=location&Filter.2.Value.1=usw2-az2";
    let xml = ok(run(describe_instance_type_offerings, &mut w, "DescribeInstanceTypeOfferings", q));
    assert_eq!(texts(&xml, "instanceType"), ["m5.large"]);
    assert_eq!(texts(&xml, "location"), ["usw2-az2"]);

    assert_eq!(
        code(run(describe_instance_type_offerings, &mut w, "DescribeInstanceTypeOfferings", "LocationType=planet")),
        Some((400, "InvalidParameterValue".into()))
    );
    assert_eq!(
        code(run(describe_instance_type_offerings, &mut w, "DescribeInstanceTypeOfferings", "DryRun=true")),
        Some((412, "DryRunOperation".into()))
    );
}

#[test]
fn offerings_respect_not_offered_zones() {
    let mut cfg = test_world(1).cfg;
    cfg.catalog.not_offered.insert("m5.large".into(), vec!["us-west-2c".into()]);
    let start = cfg.clock.start_millis();
    let mut w = World::new(cfg, 1, std::path::Path::new("."), start).unwrap_or_else(|e| unreachable!("{e}"));
    let q = "LocationType=availability-zone&Filter.1.Name=instance-type&Filter.1.Value.1=m5.large";
    let xml = ok(run(describe_instance_type_offerings, &mut w, "DescribeInstanceTypeOfferings", q));
    assert_eq!(texts(&xml, "location"), ["us-west-2a", "us-west-2b"]);
}

#[test]
fn offerings_page_without_loss() {
    let mut w = test_world(1);
    let mut seen = Vec::new();
    let mut token = String::new();
    loop {
        let mut q = "LocationType=availability-zone&MaxResults=50".to_owned();
        if !token.is_empty() {
            q.push_str(&format!("&NextToken={token}"));
        }
        let xml = ok(run(describe_instance_type_offerings, &mut w, "DescribeInstanceTypeOfferings", &q));
        let t = texts(&xml, "instanceType");
        let l = texts(&xml, "location");
        seen.extend(t.into_iter().zip(l));
        match texts(&xml, "nextToken").pop() {
            Some(t) => token = t,
            None => break,
        }
    }
    let mut dedup = seen.clone();
    dedup.sort();
    dedup.dedup();
    assert_eq!(dedup.len(), seen.len());
    assert_eq!(seen.len(), w.catalog.all().len() * w.cfg.zones.len());
}

#[test]
fn spot_history_answers_karpenters_call_with_one_row_per_pool_and_description() {
    let mut w = test_world(1);
    // Karpenter's StartTime is its wall clock, far ahead of the manual world clock.
    let q = "ProductDescription.1=Linux%2FUNIX&ProductDescription.2=Linux%2FUNIX+%28Amazon+VPC%29\
             &StartTime=2030-01-01T00:00:00Z&MaxResults=2000";
    let xml = ok(run(describe_spot_price_history, &mut w, "DescribeSpotPriceHistory", q));
    let pools = w.catalog.all().len() * w.cfg.zones.len();
    let types = texts(&xml, "instanceType");
    assert_eq!(types.len(), pools * 2);
    assert_eq!(texts(&xml, "productDescription").iter().filter(|d| *d == "Linux/UNIX (Amazon VPC)").count(), pools);
    assert_eq!(texts(&xml, "nextToken"), [""]);
    // The price shown is the one in effect now, with six decimals.
    let pool = w.pool_of("m5.large", "us-west-2a").unwrap_or_default();
    let (at, price) = w.pools.spot_price_at(pool, testing::now(&w));
    let want = format!(
        "<item><instanceType>m5.large</instanceType><productDescription>Linux/UNIX</productDescription><spotPrice>{price:.6}</spotPrice><timestamp>{}</timestamp><availabilityZone>us-west-2a</availabilityZone><availabilityZoneId>usw2-az1</availabilityZoneId></item>",
        clock::iso(at)
    );
    assert!(xml.contains(&want), "{want}");
    let prices = texts(&xml, "spotPrice");
    assert!(prices.iter().all(|p| p.split_once('.').is_some_and(|(_, d)| d.len() == 6)));
}

#[test]
fn spot_history_is_newest_first_within_the_window_and_pages_cleanly() {
    let mut w = test_world(2);
    let now = testing::now(&w) + 10 * DAY_MS;
    let q = "InstanceType.1=m5.large&InstanceType.2=c5.large&StartTime=2026-01-05T00:00:00Z\
             &Filter.1.Name=availability-zone&Filter.1.Value.1=us-west-2b";
    let xml = ok(run_at(describe_spot_price_history, &mut w, "DescribeSpotPriceHistory", q, now));
    let stamps = texts(&xml, "timestamp");
    assert!(stamps.len() > 4, "a few days of hourly ticks change the price: {stamps:?}");
    assert!(stamps.windows(2).all(|p| p[0] >= p[1]), "newest first");
    assert!(texts(&xml, "availabilityZone").iter().all(|z| z == "us-west-2b"));
    let mut types = texts(&xml, "instanceType");
    types.sort();
    types.dedup();
    assert_eq!(types, ["c5.large", "m5.large"]);

    let mut paged = Vec::new();
    let mut token = String::new();
    loop {
        let mut q2 = format!("{q}&MaxResults=7");
        if !token.is_empty() {
            q2.push_str(&format!("&NextToken={token}"));
        }
        let page = ok(run_at(describe_spot_price_history, &mut w, "DescribeSpotPriceHistory", &q2, now));
        let items: Vec<_> = texts(&page, "item");
        assert!(items.len() <= 7);
        paged.extend(items);
        token = texts(&page, "nextToken").pop().unwrap_or_default();
        if token.is_empty() {
            break;
        }
    }
    assert_eq!(paged, texts(&xml, "item"));
}

#[test]
fn spot_history_descriptions_and_errors() {
    let mut w = test_world(3);
    let xml = ok(run(describe_spot_price_history, &mut w, "DescribeSpotPriceHistory", "InstanceType.1=m5.large"));
    assert_eq!(texts(&xml, "productDescription"), ["Linux/UNIX"; 3]);
    let xml = ok(run(describe_spot_price_history, &mut w, "DescribeSpotPriceHistory", "ProductDescription.1=Windows"));
    assert!(texts(&xml, "item").is_empty());
    let xml = ok(run(
        describe_spot_price_history,
        &mut w,
        "DescribeSpotPriceHistory",
        "AvailabilityZone=us-west-2c&InstanceType.1=c5.large",
    ));
    assert_eq!(texts(&xml, "availabilityZone"), ["us-west-2c"]);
    assert_eq!(
        code(run(
            describe_spot_price_history,
            &mut w,
            "DescribeSpotPriceHistory",
            "Filter.1.Name=cheapness&Filter.1.Value.1=x"
        )),
        Some((400, "InvalidParameterValue".into()))
    );
    assert_eq!(
        code(run(describe_spot_price_history, &mut w, "DescribeSpotPriceHistory", "DryRun=true")),
        Some((412, "DryRunOperation".into()))
    );
    assert_eq!(
        code(run(describe_spot_price_history, &mut w, "DescribeSpotPriceHistory", "StartTime=soon")),
        Some((400, "InvalidParameterValue".into()))
    );
}

#[test]
fn zones_describe_and_reject_unknown_names() {
    let mut w = test_world(1);
    let xml = ok(run(describe_availability_zones, &mut w, "DescribeAvailabilityZones", ""));
    assert_eq!(texts(&xml, "zoneName"), ["us-west-2a", "us-west-2b", "us-west-2c"]);
    assert_eq!(texts(&xml, "zoneId"), ["usw2-az1", "usw2-az2", "usw2-az3"]);
    assert!(texts(&xml, "zoneState").iter().all(|s| s == "available"));
    assert!(texts(&xml, "optInStatus").iter().all(|s| s == "opt-in-not-required"));
    assert_eq!(texts(&xml, "groupLongName").first().map(String::as_str), Some("US West (Oregon) 1"));

    let xml = ok(run(
        describe_availability_zones,
        &mut w,
        "DescribeAvailabilityZones",
        "Filter.1.Name=zone-id&Filter.1.Value.1=usw2-az3",
    ));
    assert_eq!(texts(&xml, "zoneName"), ["us-west-2c"]);
    let xml = ok(run(describe_availability_zones, &mut w, "DescribeAvailabilityZones", "ZoneName.1=us-west-2b"));
    assert_eq!(texts(&xml, "zoneName"), ["us-west-2b"]);

    let e = run(describe_availability_zones, &mut w, "DescribeAvailabilityZones", "ZoneName.1=us-west-2z").err();
    assert_eq!(
        e.map(|e| (e.code, e.message)),
        Some(("InvalidParameterValue".into(), "Invalid availability zone: [us-west-2z]".into()))
    );
    assert_eq!(
        code(run(
            describe_availability_zones,
            &mut w,
            "DescribeAvailabilityZones",
            "Filter.1.Name=zone&Filter.1.Value.1=x"
        )),
        Some((400, "InvalidParameterValue".into()))
    );
    assert_eq!(
        code(run(describe_availability_zones, &mut w, "DescribeAvailabilityZones", "DryRun=true")),
        Some((412, "DryRunOperation".into()))
    );
}

#[test]
fn ebs_and_bandwidth_tables_are_plausible() {
    let w = test_world(1);
    for t in w.catalog.all() {
        let e = ebs_perf(t);
        assert!(e.baseline_mbps > 0 && e.baseline_mbps <= e.max_mbps, "{}", t.name);
        assert!(e.baseline_iops <= e.max_iops, "{}", t.name);
        let (base, peak) = TypeInfo(t).bandwidth_gbps();
        assert!(base > 0.0 && base <= peak, "{}: {base} {peak}", t.name);
    }
}
