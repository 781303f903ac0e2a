"""Every EC2 action fake-ec2 serves, driven through boto3 the way real clients drive EC2.

Read-only catalog calls share one server per module; anything that launches, tags or reconfigures
gets a fresh server (the `server`/`ec2` fixtures), so each test sees an exact, known world.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter, defaultdict

import botocore.auth
import botocore.awsrequest
import botocore.credentials
import pytest
import requests
from botocore.exceptions import ClientError

from support import (
    ACCESS_KEY,
    AMI_ARM,
    AMI_X86,
    CATALOG_SIZE,
    KARPENTER_TAGS,
    REGION,
    SECRET_KEY,
    SECURITY_GROUPS,
    SUBNETS,
    VPC_ID,
    ZONE_IDS,
    ZONES,
    all_instances,
    create_launch_template,
    ec2_client,
    error_of,
    fleet_instance_ids,
    karpenter_fleet,
    override,
    tags_dict,
)

UTC = dt.timezone.utc


@pytest.fixture(scope="module")
def catalog_server(module_server):
    # A manual clock never refills the request buckets, and this module's catalog reads share one
    # server: lift throttling here (test_throttling covers it on a server of its own).
    module_server.throttling("off")
    return module_server


@pytest.fixture(scope="module")
def cat(catalog_server):
    return ec2_client(catalog_server.endpoint)


@pytest.fixture(scope="module")
def every_type(cat) -> list[dict]:
    types = []
    for page in cat.get_paginator("describe_instance_types").paginate(PaginationConfig={"PageSize": 37}):
        assert len(page["InstanceTypes"]) <= 37
        types.extend(page["InstanceTypes"])
    return types


# ---------------------------------------------------------------------------------------------
# Catalog: DescribeInstanceTypes, DescribeInstanceTypeOfferings, DescribeSpotPriceHistory, zones


def test_describe_instance_types_paginator_returns_every_type_exactly_once(every_type):
    names = [t["InstanceType"] for t in every_type]
    dupes = [n for n, c in Counter(names).items() if c > 1]
    assert not dupes, f"types repeated across pages: {dupes}"
    assert len(names) == CATALOG_SIZE
    assert {"m5.large", "c5.large", "r5.large", "m7g.large", "t3.medium"} <= set(names)


def test_describe_instance_types_pages_at_100_without_max_results(cat):
    pages = [cat.describe_instance_types()]
    while pages[-1].get("NextToken"):
        pages.append(cat.describe_instance_types(NextToken=pages[-1]["NextToken"]))
    sizes = [len(p["InstanceTypes"]) for p in pages]
    full, rest = divmod(CATALOG_SIZE, 100)
    assert sizes == [100] * full + ([rest] if rest else [])
    names = [t["InstanceType"] for p in pages for t in p["InstanceTypes"]]
    assert len(set(names)) == CATALOG_SIZE


def test_m5_large_has_the_documented_shape(cat):
    (t,) = cat.describe_instance_types(InstanceTypes=["m5.large"])["InstanceTypes"]
    assert t["InstanceType"] == "m5.large"
    assert t["VCpuInfo"]["DefaultVCpus"] == 2
    assert t["VCpuInfo"]["DefaultCores"] == 1
    assert t["VCpuInfo"]["DefaultThreadsPerCore"] == 2
    assert t["MemoryInfo"]["SizeInMiB"] == 8192
    assert t["NetworkInfo"]["MaximumNetworkInterfaces"] == 3
    assert t["NetworkInfo"]["Ipv4AddressesPerInterface"] == 10
    assert t["ProcessorInfo"]["SupportedArchitectures"] == ["x86_64"]
    assert t["ProcessorInfo"]["SustainedClockSpeedInGhz"] == pytest.approx(3.1)
    assert set(t["SupportedUsageClasses"]) == {"on-demand", "spot"}
    assert t["Hypervisor"] == "nitro"
    assert t["CurrentGeneration"] is True and t["BareMetal"] is False
    assert t["BurstablePerformanceSupported"] is False
    assert t["EbsInfo"]["EbsOptimizedSupport"] == "default"
    assert t["EbsInfo"]["EbsOptimizedInfo"]["BaselineBandwidthInMbps"] == 650
    assert t["NetworkInfo"]["NetworkCards"][0]["NetworkCardIndex"] == 0
    assert t["NetworkInfo"]["EnaSupport"] == "required"


def test_describe_instance_types_arm64_filter_returns_only_arm_types(cat, every_type):
    arm = []
    for page in cat.get_paginator("describe_instance_types").paginate(
        Filters=[{"Name": "processor-info.supported-architecture", "Values": ["arm64"]}]
    ):
        arm.extend(page["InstanceTypes"])
    assert arm, "the default catalog has Graviton types"
    assert all(t["ProcessorInfo"]["SupportedArchitectures"] == ["arm64"] for t in arm)
    expected = {t["InstanceType"] for t in every_type if "arm64" in t["ProcessorInfo"]["SupportedArchitectures"]}
    assert {t["InstanceType"] for t in arm} == expected
    assert "m7g.large" in expected and "m5.large" not in expected
    # Filters AND together: arm64 and 4 vCPUs.
    four = cat.describe_instance_types(
        Filters=[
            {"Name": "processor-info.supported-architecture", "Values": ["arm64"]},
            {"Name": "vcpu-info.default-vcpus", "Values": ["4"]},
        ]
    )["InstanceTypes"]
    assert four and all(t["VCpuInfo"]["DefaultVCpus"] == 4 for t in four)
    assert all(t["ProcessorInfo"]["SupportedArchitectures"] == ["arm64"] for t in four)


def test_describe_instance_types_unknown_type_is_invalid_instance_type(cat):
    with pytest.raises(ClientError) as e:
        cat.describe_instance_types(InstanceTypes=["m5.large", "m5.gigantic"])
    code, status, message = error_of(e)
    assert (code, status) == ("InvalidInstanceType", 400)
    assert "m5.gigantic" in message


def test_instance_type_offerings_by_zone_cover_every_type_in_every_zone(cat):
    rows = []
    for page in cat.get_paginator("describe_instance_type_offerings").paginate(
        LocationType="availability-zone", PaginationConfig={"PageSize": 100}
    ):
        rows.extend(page["InstanceTypeOfferings"])
    pairs = [(r["InstanceType"], r["Location"]) for r in rows]
    assert len(pairs) == len(set(pairs)) == CATALOG_SIZE * len(ZONES)
    assert {r["LocationType"] for r in rows} == {"availability-zone"}
    assert {r["Location"] for r in rows} == set(ZONES)
    by_zone = Counter(r["Location"] for r in rows)
    assert all(n == CATALOG_SIZE for n in by_zone.values())


def test_instance_type_offerings_by_region_and_zone_id(cat):
    rows = cat.describe_instance_type_offerings(LocationType="region")["InstanceTypeOfferings"]
    assert len(rows) == CATALOG_SIZE
    assert {r["Location"] for r in rows} == {REGION}
    assert {r["LocationType"] for r in rows} == {"region"}
    rows = cat.describe_instance_type_offerings(
        LocationType="availability-zone-id",
        Filters=[{"Name": "instance-type", "Values": ["m5.large"]}],
    )["InstanceTypeOfferings"]
    assert sorted(r["Location"] for r in rows) == sorted(ZONE_IDS.values())


def _spot_rows(client, **kwargs) -> list[dict]:
    rows = []
    for page in client.get_paginator("describe_spot_price_history").paginate(**kwargs):
        rows.extend(page["SpotPriceHistory"])
    return rows


def test_spot_price_history_now_has_a_row_for_every_pool_below_on_demand(cat, catalog_server):
    rows = _spot_rows(cat, StartTime=dt.datetime.now(UTC), ProductDescriptions=["Linux/UNIX"])
    pools = {(p["instance_type"], p["zone"]): p for p in catalog_server.pools()}
    assert len(pools) == CATALOG_SIZE * len(ZONES)
    seen = defaultdict(list)
    for r in rows:
        seen[(r["InstanceType"], r["AvailabilityZone"])].append(r)
        assert r["ProductDescription"] == "Linux/UNIX"
        assert r["AvailabilityZoneId"] == ZONE_IDS[r["AvailabilityZone"]]
    missing = set(pools) - set(seen)
    assert not missing, f"pools with no spot price: {sorted(missing)[:10]}"
    for key, rs in seen.items():
        newest = max(rs, key=lambda r: r["Timestamp"])
        price = float(newest["SpotPrice"])
        assert 0 < price < pools[key]["on_demand_price"], (key, price)
        assert price == pytest.approx(pools[key]["spot_price"]), key


def test_spot_price_history_three_day_window_is_newest_first_with_moving_prices(cat, catalog_server):
    now = dt.datetime.fromtimestamp(catalog_server.now_ms() / 1000, UTC)
    types = ["m5.large", "c5.large", "r5.large", "m7g.large"]
    resp = cat.describe_spot_price_history(
        InstanceTypes=types, StartTime=now - dt.timedelta(days=3), EndTime=now, ProductDescriptions=["Linux/UNIX"]
    )
    rows = resp["SpotPriceHistory"]
    stamps = [r["Timestamp"] for r in rows]
    assert stamps == sorted(stamps, reverse=True), "EC2 returns spot price history newest first"
    assert all(now - dt.timedelta(days=4) <= s <= now for s in stamps)
    per_pool = defaultdict(set)
    for r in rows:
        per_pool[(r["InstanceType"], r["AvailabilityZone"])].add(r["SpotPrice"])
    assert set(per_pool) == {(t, z) for t in types for z in ZONES}
    flat = [k for k, prices in per_pool.items() if len(prices) < 3]
    assert not flat, f"pools whose price never moved in 3 days: {flat}"


def test_spot_price_history_paginator_loses_and_repeats_nothing(cat, catalog_server):
    now = dt.datetime.fromtimestamp(catalog_server.now_ms() / 1000, UTC)
    kwargs = dict(
        InstanceTypes=["m5.large", "c5.large", "m5.xlarge"],
        StartTime=now - dt.timedelta(days=3),
        EndTime=now,
        ProductDescriptions=["Linux/UNIX", "Linux/UNIX (Amazon VPC)"],
    )
    whole = cat.describe_spot_price_history(**kwargs)
    assert not whole.get("NextToken")
    pages = list(cat.get_paginator("describe_spot_price_history").paginate(**kwargs, PaginationConfig={"PageSize": 7}))
    assert len(pages) > 3
    assert all(len(p["SpotPriceHistory"]) <= 7 for p in pages)
    paged = [r for p in pages for r in p["SpotPriceHistory"]]
    key = lambda r: (r["InstanceType"], r["AvailabilityZone"], r["ProductDescription"], r["Timestamp"])  # noqa: E731
    assert len({key(r) for r in paged}) == len(paged), "a row was repeated across pages"
    assert paged == whole["SpotPriceHistory"]


def test_describe_availability_zones(cat):
    zones = cat.describe_availability_zones()["AvailabilityZones"]
    assert [z["ZoneName"] for z in zones] == ZONES
    for z in zones:
        assert z["ZoneId"] == ZONE_IDS[z["ZoneName"]]
        assert z["State"] == "available"
        assert z["RegionName"] == REGION
        assert z["ZoneType"] == "availability-zone"
    one = cat.describe_availability_zones(Filters=[{"Name": "zone-id", "Values": ["usw2-az2"]}])["AvailabilityZones"]
    assert [z["ZoneName"] for z in one] == ["us-west-2b"]


# ---------------------------------------------------------------------------------------------
# Network: subnets, security groups, images


def test_describe_subnets_by_discovery_tag(cat):
    subnets = cat.describe_subnets(Filters=[{"Name": "tag:karpenter.sh/discovery", "Values": ["fake-cluster"]}])["Subnets"]
    assert sorted(s["SubnetId"] for s in subnets) == sorted(SUBNETS.values())
    for s in subnets:
        assert SUBNETS[s["AvailabilityZone"]] == s["SubnetId"]
        assert s["AvailabilityZoneId"] == ZONE_IDS[s["AvailabilityZone"]]
        assert s["VpcId"] == VPC_ID
        assert s["State"] == "available"
        assert s["AvailableIpAddressCount"] > 8000  # a /19 minus AWS's five reserved addresses
        assert tags_dict(s["Tags"])["karpenter.sh/discovery"] == "fake-cluster"
        assert s["CidrBlock"].endswith("/19")
    none = cat.describe_subnets(Filters=[{"Name": "tag:karpenter.sh/discovery", "Values": ["other-cluster"]}])
    assert none["Subnets"] == []
    one = cat.describe_subnets(SubnetIds=[SUBNETS["us-west-2c"]])["Subnets"]
    assert [s["AvailabilityZone"] for s in one] == ["us-west-2c"]


def test_subnet_free_addresses_and_pool_capacity_follow_launches(ec2, server):
    def free() -> dict[str, int]:
        return {s["SubnetId"]: s["AvailableIpAddressCount"] for s in ec2.describe_subnets()["Subnets"]}

    before = free()
    assert set(before.values()) == {8187}  # a /19 less the five addresses AWS reserves
    ids = _launch(ec2, "c5.large", "us-west-2a", 3, spot=True)
    after = free()
    assert after[SUBNETS["us-west-2a"]] == before[SUBNETS["us-west-2a"]] - 3
    assert after[SUBNETS["us-west-2b"]] == before[SUBNETS["us-west-2b"]]
    (pool,) = server.pools("c5.large", "us-west-2a")
    assert pool["spot"]["used"] == 3
    assert server.get("/_fake/state")["quotas"]["usage"] == {"spot_vcpus": 6, "spot_instances": 3, "on_demand_vcpus": 0}
    ec2.terminate_instances(InstanceIds=ids)
    server.advance(10)
    assert free() == before, "terminated instances give their addresses back"
    (pool,) = server.pools("c5.large", "us-west-2a")
    assert pool["spot"]["used"] == 0
    assert server.get("/_fake/state")["quotas"]["usage"] == {"spot_vcpus": 0, "spot_instances": 0, "on_demand_vcpus": 0}


def test_describe_security_groups_by_discovery_tag(cat):
    groups = cat.describe_security_groups(
        Filters=[{"Name": "tag:karpenter.sh/discovery", "Values": ["fake-cluster"]}]
    )["SecurityGroups"]
    assert sorted(g["GroupId"] for g in groups) == sorted(SECURITY_GROUPS)
    assert all(g["VpcId"] == VPC_ID for g in groups)
    by_id = {g["GroupId"]: g for g in groups}
    assert by_id["sg-0123456789abcdef0"]["GroupName"] == "eks-cluster-sg-fake-cluster"
    assert tags_dict(by_id["sg-0123456789abcdef0"]["Tags"])["aws:eks:cluster-name"] == "fake-cluster"
    one = cat.describe_security_groups(GroupIds=["sg-0fedcba9876543210"])["SecurityGroups"]
    assert [g["GroupName"] for g in one] == ["fake-cluster-node"]


def test_describe_images(cat):
    images = cat.describe_images(ImageIds=[AMI_X86, AMI_ARM])["Images"]
    by_id = {i["ImageId"]: i for i in images}
    assert set(by_id) == {AMI_X86, AMI_ARM}
    assert by_id[AMI_X86]["Architecture"] == "x86_64"
    assert by_id[AMI_ARM]["Architecture"] == "arm64"
    assert by_id[AMI_X86]["Name"].startswith("amazon-eks-node-al2023-x86_64")
    assert all(i["State"] == "available" for i in images)
    arm = cat.describe_images(Filters=[{"Name": "name", "Values": ["amazon-eks-node-al2023-arm64-standard-1.34-*"]}])["Images"]
    assert [i["ImageId"] for i in arm] == [AMI_ARM]


# ---------------------------------------------------------------------------------------------
# Launch templates


def test_launch_template_create_describe_delete(ec2):
    lt = create_launch_template(ec2, "karpenter-nodes")
    assert lt["LaunchTemplateId"].startswith("lt-")
    assert lt["LaunchTemplateName"] == "karpenter-nodes"
    assert lt["DefaultVersionNumber"] == 1 and lt["LatestVersionNumber"] == 1
    assert tags_dict(lt["Tags"]) == {"karpenter.sh/nodepool": "default"}

    by_name = ec2.describe_launch_templates(LaunchTemplateNames=["karpenter-nodes"])["LaunchTemplates"]
    assert [t["LaunchTemplateId"] for t in by_name] == [lt["LaunchTemplateId"]]
    by_id = ec2.describe_launch_templates(LaunchTemplateIds=[lt["LaunchTemplateId"]])["LaunchTemplates"]
    assert [t["LaunchTemplateName"] for t in by_id] == ["karpenter-nodes"]
    by_tag = ec2.describe_launch_templates(
        Filters=[{"Name": "tag:karpenter.sh/nodepool", "Values": ["default"]}]
    )["LaunchTemplates"]
    assert [t["LaunchTemplateName"] for t in by_tag] == ["karpenter-nodes"]

    with pytest.raises(ClientError) as e:
        create_launch_template(ec2, "karpenter-nodes")
    assert error_of(e)[:2] == ("InvalidLaunchTemplateName.AlreadyExistsException", 400)

    with pytest.raises(ClientError) as e:
        ec2.describe_launch_templates(LaunchTemplateNames=["no-such-template"])
    assert error_of(e)[:2] == ("InvalidLaunchTemplateName.NotFoundException", 400)

    deleted = ec2.delete_launch_template(LaunchTemplateName="karpenter-nodes")["LaunchTemplate"]
    assert deleted["LaunchTemplateId"] == lt["LaunchTemplateId"]
    with pytest.raises(ClientError) as e:
        ec2.describe_launch_templates(LaunchTemplateNames=["karpenter-nodes"])
    assert error_of(e)[0] == "InvalidLaunchTemplateName.NotFoundException"
    assert ec2.describe_launch_templates()["LaunchTemplates"] == []


# ---------------------------------------------------------------------------------------------
# CreateFleet (instant), as Karpenter calls it


def test_create_fleet_karpenter_shape_launches_spot_instances(ec2):
    lt = create_launch_template(ec2)
    overrides = [
        override("m5.large", "us-west-2a", priority=0),
        override("m5.large", "us-west-2b", priority=1),
        override("c5.large", "us-west-2a", priority=2),
        override("c5.large", "us-west-2c", priority=3),
    ]
    resp = ec2.create_fleet(**karpenter_fleet(lt["LaunchTemplateName"], overrides, capacity=3))
    assert resp["FleetId"].startswith("fleet-")
    assert resp.get("Errors", []) == []
    ids = fleet_instance_ids(resp)
    assert len(ids) == len(set(ids)) == 3
    requested = {(o["InstanceType"], o["AvailabilityZone"], o["SubnetId"]) for o in overrides}
    for group in resp["Instances"]:
        assert group["Lifecycle"] == "spot"
        lto = group["LaunchTemplateAndOverrides"]
        assert lto["LaunchTemplateSpecification"]["LaunchTemplateId"] == lt["LaunchTemplateId"]
        assert lto["LaunchTemplateSpecification"]["Version"] == "1"
        o = lto["Overrides"]
        assert (o["InstanceType"], o["AvailabilityZone"], o["SubnetId"]) in requested
        assert o["ImageId"] == AMI_X86
        assert group["InstanceType"] == o["InstanceType"]

    instances = {i["InstanceId"]: i for i in all_instances(ec2, InstanceIds=ids)}
    assert set(instances) == set(ids)
    for group in resp["Instances"]:
        for iid in group["InstanceIds"]:
            i = instances[iid]
            assert i["InstanceType"] == group["LaunchTemplateAndOverrides"]["Overrides"]["InstanceType"]
            assert i["Placement"]["AvailabilityZone"] == group["LaunchTemplateAndOverrides"]["Overrides"]["AvailabilityZone"]
            assert i["InstanceLifecycle"] == "spot"
            assert i["SpotInstanceRequestId"].startswith("sir-")
            assert i["State"]["Name"] == "pending"
            assert i["ImageId"] == AMI_X86
            assert sorted(g["GroupId"] for g in i["SecurityGroups"]) == sorted(SECURITY_GROUPS)
            assert i["MetadataOptions"]["HttpTokens"] == "required"
            tags = tags_dict(i["Tags"])
            for t in KARPENTER_TAGS:
                assert tags[t["Key"]] == t["Value"]
            assert tags["aws:ec2:fleet-id"] == resp["FleetId"]
            assert tags["aws:ec2launchtemplate:id"] == lt["LaunchTemplateId"]
    # Karpenter finds its nodes again by tag.
    tagged = all_instances(ec2, Filters=[{"Name": "tag:karpenter.sh/nodepool", "Values": ["default"]}])
    assert {i["InstanceId"] for i in tagged} == set(ids)


def test_create_fleet_partial_fulfilment_reports_ice_for_the_pool(ec2, server):
    lt = create_launch_template(ec2)
    server.set_pool("m5.large", "us-west-2a", capacity_type="spot", capacity=1)
    only = override("m5.large", "us-west-2a")
    resp = ec2.create_fleet(**karpenter_fleet(lt["LaunchTemplateName"], [only], capacity=3))
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert len(fleet_instance_ids(resp)) == 1
    assert resp["Errors"], "a short pool must be reported in Errors"
    for err in resp["Errors"]:
        assert err["ErrorCode"] == "InsufficientInstanceCapacity"
        assert err["Lifecycle"] == "spot"
        assert "m5.large" in err["ErrorMessage"]
        o = err["LaunchTemplateAndOverrides"]["Overrides"]
        assert o["InstanceType"] == "m5.large"
        assert o["AvailabilityZone"] == "us-west-2a"
        assert o["SubnetId"] == SUBNETS["us-west-2a"]
        assert err["LaunchTemplateAndOverrides"]["LaunchTemplateSpecification"]["LaunchTemplateId"] == lt["LaunchTemplateId"]
    (pool,) = server.pools("m5.large", "us-west-2a")
    assert pool["spot"] == {"capacity": 1, "used": 1}


def test_create_fleet_spot_lowest_price_picks_the_cheapest_pool(ec2, server):
    lt = create_launch_template(ec2)
    types = ["m5.large", "c5.large", "r5.large"]
    overrides = [override(t, z) for t in types for z in ZONES]
    prices = {(p["instance_type"], p["zone"]): p["spot_price"] for t in types for p in server.pools(t)}
    cheapest = min(prices, key=prices.get)
    resp = ec2.create_fleet(**karpenter_fleet(lt["LaunchTemplateName"], overrides, strategy="lowest-price"))
    (group,) = resp["Instances"]
    o = group["LaunchTemplateAndOverrides"]["Overrides"]
    assert (o["InstanceType"], o["AvailabilityZone"]) == cheapest, prices

    # Make another pool the cheapest through the admin API: the next fleet follows the price.
    target = ("r5.large", "us-west-2c") if cheapest != ("r5.large", "us-west-2c") else ("c5.large", "us-west-2b")
    server.set_pool(*target, capacity_type="spot", spot_price=round(min(prices.values()) / 4, 4))
    resp = ec2.create_fleet(**karpenter_fleet(lt["LaunchTemplateName"], overrides, strategy="lowest-price"))
    o = resp["Instances"][0]["LaunchTemplateAndOverrides"]["Overrides"]
    assert (o["InstanceType"], o["AvailabilityZone"]) == target


def test_create_fleet_on_demand_lowest_price(ec2, server):
    lt = create_launch_template(ec2)
    types = ["m5.xlarge", "m5.large", "c5.large", "r5.large"]
    od = {p["instance_type"]: p["on_demand_price"] for t in types for p in server.pools(t, "us-west-2b")}
    cheapest = min(od, key=od.get)
    overrides = [override(t, "us-west-2b") for t in types]
    resp = ec2.create_fleet(**karpenter_fleet(lt["LaunchTemplateName"], overrides, capacity=2, capacity_type="on-demand"))
    assert resp.get("Errors", []) == []
    (group,) = resp["Instances"]
    assert group["Lifecycle"] == "on-demand"
    assert group["LaunchTemplateAndOverrides"]["Overrides"]["InstanceType"] == cheapest, od
    assert len(group["InstanceIds"]) == 2
    for i in all_instances(ec2, InstanceIds=group["InstanceIds"]):
        assert "InstanceLifecycle" not in i
        assert "SpotInstanceRequestId" not in i
        assert i["InstanceType"] == cheapest


def test_create_fleet_spot_quota_gives_max_spot_instance_count_exceeded(ec2, server):
    lt = create_launch_template(ec2)
    server.set_quotas(spot_instances=1)
    overrides = [override("m5.large", "us-west-2a"), override("c5.large", "us-west-2b")]
    resp = ec2.create_fleet(**karpenter_fleet(lt["LaunchTemplateName"], overrides, capacity=3))
    assert len(fleet_instance_ids(resp)) == 1
    codes = {e["ErrorCode"] for e in resp["Errors"]}
    assert codes == {"MaxSpotInstanceCountExceeded"}
    assert all(e["Lifecycle"] == "spot" for e in resp["Errors"])
    server.set_quotas(spot_instances=0)
    resp = ec2.create_fleet(**karpenter_fleet(lt["LaunchTemplateName"], overrides, capacity=1))
    assert fleet_instance_ids(resp) == []
    assert {e["ErrorCode"] for e in resp["Errors"]} == {"MaxSpotInstanceCountExceeded"}


def test_on_demand_vcpu_quota_gives_vcpu_limit_exceeded(ec2, server):
    lt = create_launch_template(ec2)
    server.set_quotas(on_demand_vcpus=4)
    overrides = [override("m5.large", "us-west-2a")]  # 2 vCPUs each
    resp = ec2.create_fleet(**karpenter_fleet(lt["LaunchTemplateName"], overrides, capacity=3, capacity_type="on-demand"))
    assert len(fleet_instance_ids(resp)) == 2
    assert {e["ErrorCode"] for e in resp["Errors"]} == {"VcpuLimitExceeded"}
    assert all(e["Lifecycle"] == "on-demand" for e in resp["Errors"])
    with pytest.raises(ClientError) as e:
        ec2.run_instances(ImageId=AMI_X86, InstanceType="m5.large", MinCount=1, MaxCount=1)
    code, status, message = error_of(e)
    assert (code, status) == ("VcpuLimitExceeded", 400)
    assert "vCPU" in message


# ---------------------------------------------------------------------------------------------
# RunInstances


def test_run_instances_min_max_count(ec2):
    resp = ec2.run_instances(
        ImageId=AMI_X86,
        InstanceType="m5.large",
        MinCount=2,
        MaxCount=2,
        SubnetId=SUBNETS["us-west-2b"],
        SecurityGroupIds=[SECURITY_GROUPS[1]],
        TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": "team", "Value": "blue"}]}],
    )
    assert resp["ReservationId"].startswith("r-")
    assert resp["OwnerId"] == "123456789012"
    insts = resp["Instances"]
    assert len(insts) == 2
    assert sorted(i["AmiLaunchIndex"] for i in insts) == [0, 1]
    for i in insts:
        assert i["InstanceId"].startswith("i-")
        assert i["State"] == {"Code": 0, "Name": "pending"}
        assert i["InstanceType"] == "m5.large"
        assert i["Placement"]["AvailabilityZone"] == "us-west-2b"
        assert i["SubnetId"] == SUBNETS["us-west-2b"]
        assert i["VpcId"] == VPC_ID
        assert i["PrivateIpAddress"].startswith("10.0.")
        assert i["PrivateDnsName"] == f"ip-{i['PrivateIpAddress'].replace('.', '-')}.us-west-2.compute.internal"
        assert i["SecurityGroups"] == [{"GroupId": SECURITY_GROUPS[1], "GroupName": "fake-cluster-node"}]
        assert tags_dict(i["Tags"]) == {"team": "blue"}
        assert "InstanceLifecycle" not in i
    assert len({i["PrivateIpAddress"] for i in insts}) == 2


def test_run_instances_partial_and_all_or_nothing(ec2, server):
    server.set_pool("c5.large", "us-west-2a", capacity_type="on-demand", capacity=3)
    resp = ec2.run_instances(ImageId=AMI_X86, InstanceType="c5.large", MinCount=1, MaxCount=5, SubnetId=SUBNETS["us-west-2a"])
    assert len(resp["Instances"]) == 3
    with pytest.raises(ClientError) as e:
        ec2.run_instances(ImageId=AMI_X86, InstanceType="c5.large", MinCount=1, MaxCount=1, SubnetId=SUBNETS["us-west-2a"])
    code, status, message = error_of(e)
    assert (code, status) == ("InsufficientInstanceCapacity", 500)
    assert "c5.large" in message and "us-west-2a" in message
    # The failed call launched nothing.
    assert len(all_instances(ec2)) == 3


def test_run_instances_spot_via_market_options(ec2):
    resp = ec2.run_instances(
        ImageId=AMI_ARM,
        InstanceType="m7g.large",
        MinCount=1,
        MaxCount=1,
        Placement={"AvailabilityZone": "us-west-2c"},
        InstanceMarketOptions={"MarketType": "spot", "SpotOptions": {"SpotInstanceType": "one-time"}},
    )
    (i,) = resp["Instances"]
    assert i["InstanceLifecycle"] == "spot"
    assert i["SpotInstanceRequestId"].startswith("sir-")
    assert i["Architecture"] == "arm64"
    assert i["Placement"]["AvailabilityZone"] == "us-west-2c"
    assert i["SubnetId"] == SUBNETS["us-west-2c"]
    spot = all_instances(ec2, Filters=[{"Name": "instance-lifecycle", "Values": ["spot"]}])
    assert [x["InstanceId"] for x in spot] == [i["InstanceId"]]


def test_run_instances_insufficient_capacity_is_a_500(ec2, server):
    server.set_pool("m5.large", "us-west-2a", capacity_type="on-demand", capacity=0)
    with pytest.raises(ClientError) as e:
        ec2.run_instances(ImageId=AMI_X86, InstanceType="m5.large", MinCount=1, MaxCount=1, Placement={"AvailabilityZone": "us-west-2a"})
    code, status, message = error_of(e)
    assert (code, status) == ("InsufficientInstanceCapacity", 500)
    assert "We currently do not have sufficient m5.large capacity" in message
    # Other zones still have capacity.
    ok = ec2.run_instances(ImageId=AMI_X86, InstanceType="m5.large", MinCount=1, MaxCount=1, Placement={"AvailabilityZone": "us-west-2b"})
    assert ok["Instances"][0]["Placement"]["AvailabilityZone"] == "us-west-2b"


def test_client_token_makes_launches_idempotent(ec2):
    first = ec2.run_instances(ImageId=AMI_X86, InstanceType="m5.large", MinCount=2, MaxCount=2, ClientToken="launch-1")
    again = ec2.run_instances(ImageId=AMI_X86, InstanceType="m5.large", MinCount=2, MaxCount=2, ClientToken="launch-1")
    assert again["ReservationId"] == first["ReservationId"]
    assert [i["InstanceId"] for i in again["Instances"]] == [i["InstanceId"] for i in first["Instances"]]
    assert again["ResponseMetadata"]["RequestId"] != first["ResponseMetadata"]["RequestId"]
    lt = create_launch_template(ec2)
    req = karpenter_fleet(lt["LaunchTemplateName"], [override("c5.large", "us-west-2b")], capacity=2)
    f1 = ec2.create_fleet(ClientToken="fleet-1", **req)
    f2 = ec2.create_fleet(ClientToken="fleet-1", **req)
    assert f2["FleetId"] == f1["FleetId"]
    assert fleet_instance_ids(f2) == fleet_instance_ids(f1)
    assert len(all_instances(ec2)) == 4


# ---------------------------------------------------------------------------------------------
# DescribeInstances


def _launch(ec2, instance_type="m5.large", zone="us-west-2a", count=1, tags=None, spot=False):
    kw = {}
    if tags:
        kw["TagSpecifications"] = [{"ResourceType": "instance", "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}]
    if spot:
        kw["InstanceMarketOptions"] = {"MarketType": "spot"}
    resp = ec2.run_instances(
        ImageId=AMI_ARM if instance_type.split(".")[0].endswith("g") else AMI_X86,
        InstanceType=instance_type,
        MinCount=count,
        MaxCount=count,
        SubnetId=SUBNETS[zone],
        **kw,
    )
    return [i["InstanceId"] for i in resp["Instances"]]


def _ids(ec2, *filters: tuple[str, list[str]]) -> set[str]:
    return {i["InstanceId"] for i in all_instances(ec2, Filters=[{"Name": n, "Values": v} for n, v in filters])}


def test_describe_instances_filters(ec2, server):
    a = _launch(ec2, "m5.large", "us-west-2a", 2, tags={"team": "a"})
    b = _launch(ec2, "c5.large", "us-west-2b", 1, tags={"team": "b", "env": "prod"})
    c = _launch(ec2, "m5.large", "us-west-2c", 1)
    everyone = set(a + b + c)
    assert _ids(ec2, ("instance-state-name", ["pending"])) == everyone
    assert _ids(ec2, ("instance-state-name", ["running"])) == set()
    assert _ids(ec2, ("tag:team", ["a"])) == set(a)
    assert _ids(ec2, ("tag:team", ["a", "b"])) == set(a + b)
    assert _ids(ec2, ("tag-key", ["team"])) == set(a + b)
    assert _ids(ec2, ("tag-key", ["env"])) == set(b)
    assert _ids(ec2, ("instance-type", ["m5.large"])) == set(a + c)
    assert _ids(ec2, ("instance-type", ["m5.*"])) == set(a + c)
    assert _ids(ec2, ("availability-zone", ["us-west-2b"])) == set(b)
    assert _ids(ec2, ("availability-zone", ["us-west-2b"]), ("instance-type", ["m5.large"])) == set()
    assert _ids(ec2, ("instance-id", [c[0]])) == set(c)
    server.advance(15)
    assert _ids(ec2, ("instance-state-name", ["running"])) == everyone
    with pytest.raises(ClientError) as e:
        all_instances(ec2, Filters=[{"Name": "no-such-filter", "Values": ["x"]}])
    assert error_of(e)[:2] == ("InvalidParameterValue", 400)


def test_describe_instances_paginator_over_23_instances(ec2):
    launched = _launch(ec2, "c5.large", "us-west-2a", 23)
    pages = list(ec2.get_paginator("describe_instances").paginate(MaxResults=5))
    per_page = [sum(len(r["Instances"]) for r in p["Reservations"]) for p in pages]
    assert per_page == [5, 5, 5, 5, 3]
    seen = [i["InstanceId"] for p in pages for r in p["Reservations"] for i in r["Instances"]]
    assert len(seen) == len(set(seen)) == 23, "an instance was repeated across pages"
    assert set(seen) == set(launched)
    assert "NextToken" not in pages[-1]


def test_describe_instances_id_errors(ec2):
    (iid,) = _launch(ec2)
    with pytest.raises(ClientError) as e:
        ec2.describe_instances(InstanceIds=[iid], MaxResults=5)
    assert error_of(e)[:2] == ("InvalidParameterCombination", 400)
    with pytest.raises(ClientError) as e:
        ec2.describe_instances(InstanceIds=["i-0123456789abcdef0"])
    code, status, message = error_of(e)
    assert (code, status) == ("InvalidInstanceID.NotFound", 400)
    assert "i-0123456789abcdef0" in message
    with pytest.raises(ClientError) as e:
        ec2.describe_instances(InstanceIds=[iid, "i-0123456789abcdef0"])
    assert error_of(e)[0] == "InvalidInstanceID.NotFound"
    for bad in ["i-xyz", "instance-1", "i-0123456789ABCDEF0"]:
        with pytest.raises(ClientError) as e:
            ec2.describe_instances(InstanceIds=[bad])
        assert error_of(e)[:2] == ("InvalidInstanceID.Malformed", 400), bad


# ---------------------------------------------------------------------------------------------
# Lifecycle on the world clock


def _state(ec2, iid: str) -> str:
    (i,) = all_instances(ec2, InstanceIds=[iid])
    return i["State"]["Name"]


def test_lifecycle_pending_running_shutting_down_terminated(ec2, server):
    (iid,) = _launch(ec2)
    assert _state(ec2, iid) == "pending"
    server.advance(14)
    assert _state(ec2, iid) == "pending"
    server.advance(1)
    assert _state(ec2, iid) == "running"
    resp = ec2.terminate_instances(InstanceIds=[iid])
    (change,) = resp["TerminatingInstances"]
    assert change["InstanceId"] == iid
    assert change["PreviousState"] == {"Code": 16, "Name": "running"}
    assert change["CurrentState"] == {"Code": 32, "Name": "shutting-down"}
    assert _state(ec2, iid) == "shutting-down"
    server.advance(10)
    (i,) = all_instances(ec2, InstanceIds=[iid])
    assert i["State"] == {"Code": 48, "Name": "terminated"}
    assert i["StateReason"]["Code"] == "Client.UserInitiatedShutdown"
    assert "User initiated" in i["StateTransitionReason"]
    assert iid in _ids(ec2, ("instance-state-name", ["terminated"]))
    # Terminating again is idempotent.
    again = ec2.terminate_instances(InstanceIds=[iid])["TerminatingInstances"][0]
    assert again["CurrentState"]["Name"] == again["PreviousState"]["Name"] == "terminated"
    events = [(e["from"], e["to"]) for e in server.get("/_fake/events") if e["instance_id"] == iid]
    assert events == [(None, "pending"), ("pending", "running"), ("running", "shutting-down"), ("shutting-down", "terminated")]
    # Terminated instances stay visible for about an hour, then are gone.
    server.advance(3599)
    assert _state(ec2, iid) == "terminated"
    server.advance(1)
    with pytest.raises(ClientError) as e:
        ec2.describe_instances(InstanceIds=[iid])
    assert error_of(e)[:2] == ("InvalidInstanceID.NotFound", 400)
    assert all_instances(ec2) == []


def test_describe_instance_status(ec2, server):
    running = _launch(ec2, count=2)
    server.advance(15)
    pending = _launch(ec2)
    statuses = ec2.describe_instance_status()["InstanceStatuses"]
    assert sorted(s["InstanceId"] for s in statuses) == sorted(running), "only running instances by default"
    for s in statuses:
        assert s["InstanceState"]["Name"] == "running"
        assert s["AvailabilityZone"] == "us-west-2a"
        assert s["SystemStatus"]["Status"] == "initializing"
    every = ec2.describe_instance_status(IncludeAllInstances=True)["InstanceStatuses"]
    assert sorted(s["InstanceId"] for s in every) == sorted(running + pending)
    assert {s["InstanceId"]: s["InstanceStatus"]["Status"] for s in every}[pending[0]] == "not-applicable"

    server.advance(120)
    server.set_status(running[0], system_impaired=True)
    by_id = {s["InstanceId"]: s for s in ec2.describe_instance_status(InstanceIds=running)["InstanceStatuses"]}
    sick, fine = by_id[running[0]], by_id[running[1]]
    assert sick["SystemStatus"]["Status"] == "impaired"
    assert sick["SystemStatus"]["Details"][0]["Name"] == "reachability"
    assert sick["SystemStatus"]["Details"][0]["Status"] == "failed"
    assert "ImpairedSince" in sick["SystemStatus"]["Details"][0]
    assert sick["InstanceStatus"]["Status"] == "ok"
    assert fine["SystemStatus"]["Status"] == "ok" and fine["InstanceStatus"]["Status"] == "ok"
    impaired = ec2.describe_instance_status(Filters=[{"Name": "system-status.status", "Values": ["impaired"]}])
    assert [s["InstanceId"] for s in impaired["InstanceStatuses"]] == [running[0]]
    server.set_status(running[0], system_impaired=False)
    healed = ec2.describe_instance_status(InstanceIds=[running[0]])["InstanceStatuses"][0]
    assert healed["SystemStatus"]["Status"] == "ok"


def test_stop_and_start_on_demand(ec2, server):
    (iid,) = _launch(ec2)
    server.advance(15)
    (change,) = ec2.stop_instances(InstanceIds=[iid])["StoppingInstances"]
    assert change["PreviousState"]["Name"] == "running"
    assert change["CurrentState"] == {"Code": 64, "Name": "stopping"}
    server.advance(10)
    assert _state(ec2, iid) == "stopped"
    (change,) = ec2.start_instances(InstanceIds=[iid])["StartingInstances"]
    assert change["PreviousState"] == {"Code": 80, "Name": "stopped"}
    assert change["CurrentState"] == {"Code": 0, "Name": "pending"}
    server.advance(15)
    assert _state(ec2, iid) == "running"


def test_stopping_a_one_time_spot_instance_is_unsupported(ec2):
    (iid,) = _launch(ec2, spot=True)
    with pytest.raises(ClientError) as e:
        ec2.stop_instances(InstanceIds=[iid])
    assert error_of(e)[:2] == ("UnsupportedOperation", 400)


# ---------------------------------------------------------------------------------------------
# Tags


def test_create_describe_delete_tags(ec2):
    (i1, i2) = _launch(ec2, count=2)
    lt = create_launch_template(ec2)
    assert ec2.create_tags(Resources=[i1, i2], Tags=[{"Key": "owner", "Value": "ops"}, {"Key": "tier", "Value": "web"}])
    ec2.create_tags(Resources=[lt["LaunchTemplateId"]], Tags=[{"Key": "owner", "Value": "platform"}])

    rows = ec2.describe_tags(Filters=[{"Name": "resource-id", "Values": [i1]}])["Tags"]
    assert {(r["Key"], r["Value"]) for r in rows} == {("owner", "ops"), ("tier", "web")}
    assert all(r["ResourceId"] == i1 and r["ResourceType"] == "instance" for r in rows)

    owners = ec2.describe_tags(Filters=[{"Name": "key", "Values": ["owner"]}])["Tags"]
    assert {(r["ResourceId"], r["ResourceType"], r["Value"]) for r in owners} == {
        (i1, "instance", "ops"),
        (i2, "instance", "ops"),
        (lt["LaunchTemplateId"], "launch-template", "platform"),
    }
    subnets = ec2.describe_tags(Filters=[{"Name": "resource-type", "Values": ["subnet"]}, {"Name": "key", "Values": ["Name"]}])["Tags"]
    assert sorted(r["Value"] for r in subnets) == ["private-us-west-2a", "private-us-west-2b", "private-us-west-2c"]

    # A value that does not match leaves the tag; a bare key removes it.
    ec2.delete_tags(Resources=[i1], Tags=[{"Key": "owner", "Value": "someone-else"}])
    assert tags_dict(all_instances(ec2, InstanceIds=[i1])[0]["Tags"])["owner"] == "ops"
    ec2.delete_tags(Resources=[i1], Tags=[{"Key": "owner"}])
    assert tags_dict(all_instances(ec2, InstanceIds=[i1])[0]["Tags"]) == {"tier": "web"}
    assert {r["ResourceId"] for r in ec2.describe_tags(Filters=[{"Name": "key", "Values": ["owner"]}])["Tags"]} == {
        i2,
        lt["LaunchTemplateId"],
    }
    with pytest.raises(ClientError) as e:
        ec2.create_tags(Resources=["i-0123456789abcdef0"], Tags=[{"Key": "a", "Value": "b"}])
    assert error_of(e)[:2] == ("InvalidInstanceID.NotFound", 400)


# ---------------------------------------------------------------------------------------------
# DryRun, throttling, protocol errors


def test_dry_run_answers_412_and_changes_nothing(ec2, server):
    lt = create_launch_template(ec2)
    (iid,) = _launch(ec2)
    calls = {
        "RunInstances": lambda: ec2.run_instances(ImageId=AMI_X86, InstanceType="m5.large", MinCount=1, MaxCount=1, DryRun=True),
        "CreateFleet": lambda: ec2.create_fleet(
            DryRun=True, **karpenter_fleet(lt["LaunchTemplateName"], [override("m5.large", "us-west-2a")])
        ),
        "TerminateInstances": lambda: ec2.terminate_instances(InstanceIds=[iid], DryRun=True),
        "StopInstances": lambda: ec2.stop_instances(InstanceIds=[iid], DryRun=True),
        "DescribeInstances": lambda: ec2.describe_instances(DryRun=True),
        "DescribeInstanceTypes": lambda: ec2.describe_instance_types(DryRun=True),
        "CreateTags": lambda: ec2.create_tags(Resources=[iid], Tags=[{"Key": "k", "Value": "v"}], DryRun=True),
        "CreateLaunchTemplate": lambda: ec2.create_launch_template(
            LaunchTemplateName="dry", LaunchTemplateData={"ImageId": AMI_X86}, DryRun=True
        ),
        "DeleteLaunchTemplate": lambda: ec2.delete_launch_template(LaunchTemplateId=lt["LaunchTemplateId"], DryRun=True),
    }
    for name, call in calls.items():
        with pytest.raises(ClientError) as e:
            call()
        code, status, message = error_of(e)
        assert (code, status) == ("DryRunOperation", 412), name
        assert message == "Request would have succeeded, but DryRun flag is set.", name
    insts = all_instances(ec2)
    assert [i["InstanceId"] for i in insts] == [iid]
    assert insts[0]["State"]["Name"] == "pending"
    assert "Tags" not in insts[0] or "k" not in tags_dict(insts[0]["Tags"])
    assert [t["LaunchTemplateName"] for t in ec2.describe_launch_templates()["LaunchTemplates"]] == [lt["LaunchTemplateName"]]
    # A dry run still validates the request first.
    with pytest.raises(ClientError) as e:
        ec2.terminate_instances(InstanceIds=["i-0123456789abcdef0"], DryRun=True)
    assert error_of(e)[0] == "InvalidInstanceID.NotFound"


def test_throttling_documented_buckets_refill_on_the_clock(ec2, server):
    (iid,) = _launch(ec2)
    server.throttling("documented", 0.1)  # mutating bucket 5 tokens, 0.5/s; CreateTags 10, 1/s
    for n in range(5):
        ec2.create_launch_template(LaunchTemplateName=f"lt-{n}", LaunchTemplateData={"ImageId": AMI_X86})
    with pytest.raises(ClientError) as e:
        ec2.create_launch_template(LaunchTemplateName="lt-5", LaunchTemplateData={"ImageId": AMI_X86})
    code, status, message = error_of(e)
    assert (code, status) == ("RequestLimitExceeded", 503)
    assert message == "Request limit exceeded."
    for n in range(10):
        ec2.create_tags(Resources=[iid], Tags=[{"Key": f"k{n}", "Value": "v"}])
    with pytest.raises(ClientError) as e:
        ec2.create_tags(Resources=[iid], Tags=[{"Key": "k10", "Value": "v"}])
    assert error_of(e)[:2] == ("RequestLimitExceeded", 503)
    # Reads draw from their own bucket and still work.
    assert ec2.describe_launch_templates()["LaunchTemplates"]
    server.advance(2)  # +1 mutating token, +2 CreateTags tokens
    ec2.create_launch_template(LaunchTemplateName="lt-5", LaunchTemplateData={"ImageId": AMI_X86})
    ec2.create_tags(Resources=[iid], Tags=[{"Key": "k10", "Value": "v"}])
    state = server.get("/_fake/state")["throttling"]
    assert state["refused"]["mutating"] == 1 and state["refused"]["create-tags"] == 1
    server.throttling("off")
    for n in range(20):
        ec2.create_tags(Resources=[iid], Tags=[{"Key": "k11", "Value": str(n)}])


def _signed(endpoint: str, body: str, region: str = REGION, service: str = "ec2") -> botocore.awsrequest.AWSPreparedRequest:
    req = botocore.awsrequest.AWSRequest(
        method="POST",
        url=endpoint + "/",
        data=body,
        headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"},
    )
    creds = botocore.credentials.Credentials(ACCESS_KEY, SECRET_KEY)
    botocore.auth.SigV4Auth(creds, service, region).add_auth(req)
    return req.prepare()


def _assert_error_envelope(resp: requests.Response, status: int, code: str) -> None:
    import xml.etree.ElementTree as ET

    assert resp.status_code == status, resp.text
    root = ET.fromstring(resp.content)
    assert root.tag == "Response"
    assert [c.tag for c in root] == ["Errors", "RequestID"]
    assert root.findtext("Errors/Error/Code") == code
    assert root.findtext("Errors/Error/Message")
    assert root.findtext("RequestID")


def test_unknown_action_is_invalid_action(endpoint):
    prepared = _signed(endpoint, "Action=DescribeUnicorns&Version=2016-11-15")
    resp = requests.post(prepared.url, data=prepared.body, headers=dict(prepared.headers), timeout=10)
    _assert_error_envelope(resp, 400, "InvalidAction")
    assert "DescribeUnicorns" in resp.text


def test_signed_raw_request_is_served(endpoint):
    prepared = _signed(endpoint, "Action=DescribeAvailabilityZones&Version=2016-11-15")
    resp = requests.post(prepared.url, data=prepared.body, headers=dict(prepared.headers), timeout=10)
    assert resp.status_code == 200
    assert "<zoneName>us-west-2a</zoneName>" in resp.text


def test_unsigned_request_is_missing_authentication_token(endpoint):
    resp = requests.post(
        endpoint + "/",
        data="Action=DescribeInstances&Version=2016-11-15",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        timeout=10,
    )
    _assert_error_envelope(resp, 401, "MissingAuthenticationToken")
    resp = requests.get(endpoint + "/?Action=DescribeInstances&Version=2016-11-15", timeout=10)
    _assert_error_envelope(resp, 401, "MissingAuthenticationToken")


# ---------------------------------------------------------------------------------------------
# Pricing


def test_pricing_get_products_m5_large_us_west_2(pricing):
    filters = [
        {"Type": "TERM_MATCH", "Field": "instanceType", "Value": "m5.large"},
        {"Type": "TERM_MATCH", "Field": "regionCode", "Value": "us-west-2"},
        {"Type": "TERM_MATCH", "Field": "operatingSystem", "Value": "Linux"},
        {"Type": "TERM_MATCH", "Field": "tenancy", "Value": "Shared"},
        {"Type": "TERM_MATCH", "Field": "preInstalledSw", "Value": "NA"},
        {"Type": "TERM_MATCH", "Field": "capacitystatus", "Value": "Used"},
    ]
    resp = pricing.get_products(ServiceCode="AmazonEC2", Filters=filters, FormatVersion="aws_v1")
    assert len(resp["PriceList"]) == 1
    product = json.loads(resp["PriceList"][0])
    attrs = product["product"]["attributes"]
    assert attrs["instanceType"] == "m5.large"
    assert attrs["regionCode"] == "us-west-2"
    usd = [
        dim["pricePerUnit"]["USD"]
        for term in product["terms"]["OnDemand"].values()
        for dim in term["priceDimensions"].values()
    ]
    assert len(usd) == 1
    assert float(usd[0]) == pytest.approx(0.096)


# ---------------------------------------------------------------------------------------------
# Behaviours that once differed from EC2, kept as regression tests


def test_running_instance_has_no_state_reason(ec2, server):
    (iid,) = _launch(ec2)
    server.advance(15)
    (i,) = all_instances(ec2, InstanceIds=[iid])
    assert i["State"]["Name"] == "running"
    assert "StateReason" not in i


def test_vpc_instance_lists_its_primary_network_interface(ec2):
    (iid,) = _launch(ec2)
    (i,) = all_instances(ec2, InstanceIds=[iid])
    (eni,) = i["NetworkInterfaces"]
    assert eni["NetworkInterfaceId"].startswith("eni-")
    assert eni["Attachment"]["DeviceIndex"] == 0
    assert eni["PrivateIpAddress"] == i["PrivateIpAddress"]
    assert eni["SubnetId"] == i["SubnetId"]


def test_run_instances_without_groups_gets_the_vpc_default_group(ec2):
    (i,) = ec2.run_instances(ImageId=AMI_X86, InstanceType="m5.large", MinCount=1, MaxCount=1)["Instances"]
    assert [g["GroupName"] for g in i["SecurityGroups"]] == ["default"]


def test_run_instances_unknown_type_is_invalid_parameter_value(ec2):
    with pytest.raises(ClientError) as e:
        ec2.run_instances(ImageId=AMI_X86, InstanceType="m5.huge", MinCount=1, MaxCount=1)
    code, status, message = error_of(e)
    assert (code, status) == ("InvalidParameterValue", 400)
    assert "m5.huge" in message and "InstanceType" in message
