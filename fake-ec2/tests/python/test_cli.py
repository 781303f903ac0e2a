"""The key EC2 paths through the AWS CLI (`aws --endpoint-url ... ec2 ...`), as scripts and humans use it.

Each call runs the real `aws` executable in a clean environment: dummy credentials, the region, no
config or credentials files, no retries, so what the CLI prints is exactly what fake-ec2 answered.
"""

from __future__ import annotations

import json

import pytest

from support import AMI_X86, AWS_CLI, KARPENTER_TAGS, REGION, SUBNETS, ec2_cli, karpenter_fleet, override, tags_dict



@pytest.fixture(scope="module")
def cli_server(module_server):
    return module_server


@pytest.fixture(scope="module")
def aws(cli_server, tmp_path_factory):
    return ec2_cli(cli_server.endpoint, tmp_path_factory.mktemp("aws-home"))


def test_describe_instance_types(aws):
    out = aws.json("describe-instance-types", "--instance-types", "m5.large")
    (t,) = out["InstanceTypes"]
    assert t["InstanceType"] == "m5.large"
    assert t["VCpuInfo"]["DefaultVCpus"] == 2
    assert t["MemoryInfo"]["SizeInMiB"] == 8192
    assert t["NetworkInfo"]["MaximumNetworkInterfaces"] == 3
    assert t["ProcessorInfo"]["SupportedArchitectures"] == ["x86_64"]


def test_describe_instance_types_with_query_and_text_output(aws):
    proc = aws(
        "describe-instance-types",
        "--filters", "Name=processor-info.supported-architecture,Values=arm64", "Name=vcpu-info.default-vcpus,Values=2",
        "--query", "sort(InstanceTypes[].InstanceType)",
    )
    names = json.loads(proc.stdout)
    assert names and "m7g.large" in names
    assert all("g" in n.split(".")[0] for n in names)


def test_create_launch_template_and_fleet_then_find_and_terminate(aws, cli_server):
    data = json.dumps({"ImageId": AMI_X86, "MetadataOptions": {"HttpTokens": "required"}})
    lt = aws.json("create-launch-template", "--launch-template-name", "cli-karpenter", "--launch-template-data", data)
    assert lt["LaunchTemplate"]["LaunchTemplateName"] == "cli-karpenter"
    assert lt["LaunchTemplate"]["LaunchTemplateId"].startswith("lt-")

    req = karpenter_fleet(
        "cli-karpenter",
        [override("m5.large", "us-west-2a", priority=0), override("c5.large", "us-west-2b", priority=1)],
        capacity=2,
    )
    fleet = aws.json(
        "create-fleet",
        "--type", req["Type"],
        "--launch-template-configs", json.dumps(req["LaunchTemplateConfigs"]),
        "--target-capacity-specification", json.dumps(req["TargetCapacitySpecification"]),
        "--spot-options", json.dumps(req["SpotOptions"]),
        "--tag-specifications", json.dumps(req["TagSpecifications"]),
    )
    assert fleet["FleetId"].startswith("fleet-")
    assert fleet.get("Errors", []) == []
    ids = sorted(i for g in fleet["Instances"] for i in g["InstanceIds"])
    assert len(ids) == 2
    for g in fleet["Instances"]:
        assert g["Lifecycle"] == "spot"
        assert g["LaunchTemplateAndOverrides"]["Overrides"]["InstanceType"] in {"m5.large", "c5.large"}

    found = aws.json(
        "describe-instances",
        "--filters", "Name=tag:karpenter.sh/nodepool,Values=default", "Name=instance-state-name,Values=pending,running",
        "--query", "Reservations[].Instances[].{id: InstanceId, type: InstanceType, lifecycle: InstanceLifecycle, tags: Tags}",
    )
    assert sorted(i["id"] for i in found) == ids
    for i in found:
        assert i["lifecycle"] == "spot"
        assert tags_dict(i["tags"])["karpenter.sh/nodepool"] == "default"
        assert tags_dict(i["tags"])["Name"] == next(t["Value"] for t in KARPENTER_TAGS if t["Key"] == "Name")

    text = aws("describe-instances", "--instance-ids", *ids, "--query", "Reservations[].Instances[].State.Name", "--output", "text")
    assert text.stdout.split() == ["pending", "pending"]

    out = aws.json("terminate-instances", "--instance-ids", *ids)
    assert sorted(c["InstanceId"] for c in out["TerminatingInstances"]) == ids
    assert {c["CurrentState"]["Name"] for c in out["TerminatingInstances"]} == {"shutting-down"}
    cli_server.advance(10)
    states = aws.json("describe-instances", "--instance-ids", *ids, "--query", "Reservations[].Instances[].State.Name")
    assert states == ["terminated", "terminated"]


def test_describe_spot_price_history(aws):
    out = aws.json(
        "describe-spot-price-history",
        "--instance-types", "m5.large", "c5.large",
        "--product-descriptions", "Linux/UNIX",
        "--start-time", "2025-12-29T00:00:00Z",
    )
    rows = out["SpotPriceHistory"]
    assert {(r["InstanceType"], r["AvailabilityZone"]) for r in rows} == {
        (t, z) for t in ("m5.large", "c5.large") for z in SUBNETS
    }
    stamps = [r["Timestamp"] for r in rows]
    assert stamps == sorted(stamps, reverse=True)
    assert all(0 < float(r["SpotPrice"]) < 0.096 for r in rows if r["InstanceType"] == "m5.large")


def test_describe_subnets_by_tag(aws):
    ids = aws.json(
        "describe-subnets", "--filters", "Name=tag:karpenter.sh/discovery,Values=fake-cluster", "--query", "sort(Subnets[].SubnetId)"
    )
    assert ids == sorted(SUBNETS.values())


def test_dry_run_fails_with_dry_run_operation(aws):
    proc = aws(
        "run-instances", "--dry-run", "--image-id", AMI_X86, "--instance-type", "m5.large", "--count", "1",
        check=False,
    )
    assert proc.returncode not in (0, None)
    assert proc.returncode == 255, f"aws-cli v1 exits 255 on a service error, got {proc.returncode}"
    assert "DryRunOperation" in proc.stderr
    assert "Request would have succeeded, but DryRun flag is set." in proc.stderr
    assert proc.stdout == ""


def test_unknown_instance_id_error_text(aws):
    proc = aws("describe-instances", "--instance-ids", "i-0123456789abcdef0", check=False)
    assert proc.returncode == 255
    assert "InvalidInstanceID.NotFound" in proc.stderr
    assert "i-0123456789abcdef0" in proc.stderr
