"""SSM GetParameter through boto3 for the EKS optimized AMI aliases (what `al2023@latest` reads)."""

from __future__ import annotations

import boto3
import pytest
from botocore.config import Config

from support import ACCESS_KEY, AMI_ARM, AMI_X86, REGION, SECRET_KEY, error_of

PREFIX = "/aws/service/eks/optimized-ami/1.34/amazon-linux-2023"


@pytest.fixture(scope="module")
def ssm(module_server):
    return boto3.client(
        "ssm",
        region_name=REGION,
        endpoint_url=module_server.endpoint,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        config=Config(retries={"max_attempts": 1, "mode": "standard"}),
    )


def test_recommended_and_pinned_image_ids(ssm):
    p = ssm.get_parameter(Name=f"{PREFIX}/x86_64/standard/recommended/image_id")["Parameter"]
    assert p["Value"] == AMI_X86
    assert (p["Type"], p["DataType"], p["Version"]) == ("String", "aws:ec2:image", 1)
    assert p["ARN"] == f"arn:aws:ssm:{REGION}::parameter{PREFIX}/x86_64/standard/recommended/image_id"
    assert p["LastModifiedDate"].year == 2025
    pinned = f"{PREFIX}/arm64/standard/amazon-eks-node-al2023-arm64-standard-1.34-v20251120/image_id"
    assert ssm.get_parameter(Name=pinned)["Parameter"]["Value"] == AMI_ARM
    both = ssm.get_parameters(Names=[pinned, "/not/there"])
    assert [p["Value"] for p in both["Parameters"]] == [AMI_ARM]
    assert both["InvalidParameters"] == ["/not/there"]


def test_unknown_parameter(ssm):
    with pytest.raises(ssm.exceptions.ParameterNotFound) as e:
        ssm.get_parameter(Name=f"{PREFIX}/x86_64/standard/recommended/release_version")
    assert error_of(e)[:2] == ("ParameterNotFound", 400)


def karpenter_alias_parameters(k8s: str) -> dict[str, str]:
    """Every `latest` parameter Karpenter's AL2, AL2023 and Bottlerocket aliases read
    (pkg/providers/amifamily/{al2,al2023,bottlerocket}.go), with the architecture its image has."""
    eks, br = f"/aws/service/eks/optimized-ami/{k8s}", f"/aws/service/bottlerocket/aws-k8s-{k8s}"
    return {
        f"{eks}/amazon-linux-2/recommended/image_id": "x86_64",
        f"{eks}/amazon-linux-2-arm64/recommended/image_id": "arm64",
        f"{eks}/amazon-linux-2-gpu/recommended/image_id": "x86_64",
        **{f"{eks}/amazon-linux-2023/x86_64/{v}/recommended/image_id": "x86_64" for v in ("standard", "nvidia", "neuron")},
        **{f"{eks}/amazon-linux-2023/arm64/{v}/recommended/image_id": "arm64" for v in ("standard", "nvidia")},
        **{f"{br}{n}/{a}/latest/image_id": a for n in ("", "-nvidia") for a in ("x86_64", "arm64")},
    }


@pytest.mark.parametrize("k8s", ["1.34", "1.33"])
def test_every_ami_family_resolves_to_an_image_ec2_describes(ssm, module_ec2, k8s):
    wanted = karpenter_alias_parameters(k8s)
    ids = {}
    names = list(wanted)
    for i in range(0, len(names), 10):  # GetParameters takes 10 names at a time
        out = ssm.get_parameters(Names=names[i : i + 10])
        assert out["InvalidParameters"] == []
        ids.update({p["Name"]: p["Value"] for p in out["Parameters"]})
    assert set(ids) == set(wanted) and len(set(ids.values())) == len(wanted), "one image per parameter"
    # What Karpenter does next: DescribeImages by image-id, Owner amazon.
    images = module_ec2.describe_images(
        Filters=[{"Name": "image-id", "Values": list(ids.values())}, {"Name": "state", "Values": ["available"]}],
        Owners=["amazon"],
        IncludeDeprecated=True,
    )["Images"]
    by_id = {i["ImageId"]: i for i in images}
    for name, image_id in ids.items():
        image = by_id[image_id]
        assert image["Architecture"] == wanted[name], name
        assert k8s in image["Name"] and image["ImageOwnerAlias"] == "amazon", image
        if "bottlerocket" in name:
            assert image["Name"].startswith(f"bottlerocket-aws-k8s-{k8s}") and image["OwnerId"] == "651937483462"
        else:
            assert image["Name"].startswith("amazon-eks-") and image["OwnerId"] == "602401143452"


def test_pinned_al2_and_bottlerocket_versions(ssm):
    al2 = "/aws/service/eks/optimized-ami/1.34/amazon-linux-2-gpu/amazon-eks-gpu-node-1.34-v20251120/image_id"
    latest = "/aws/service/eks/optimized-ami/1.34/amazon-linux-2-gpu/recommended/image_id"
    assert ssm.get_parameter(Name=al2)["Parameter"]["Value"] == ssm.get_parameter(Name=latest)["Parameter"]["Value"]
    br = "/aws/service/bottlerocket/aws-k8s-1.33/arm64"
    pinned = ssm.get_parameter(Name=f"{br}/1.50.0/image_id")["Parameter"]
    assert pinned["Value"] == ssm.get_parameter(Name=f"{br}/latest/image_id")["Parameter"]["Value"]
    assert pinned["Version"] == 1
    with pytest.raises(ssm.exceptions.ParameterNotFound):
        ssm.get_parameter(Name=f"{br}/1.49.0/image_id")


def test_parameters_by_path_pages_through_the_tree(ssm):
    paginator = ssm.get_paginator("get_parameters_by_path")
    pages = list(paginator.paginate(Path="/aws/service/bottlerocket", Recursive=True, PaginationConfig={"PageSize": 5}))
    names = [p["Name"] for page in pages for p in page["Parameters"]]
    assert len(pages) > 1 and names == sorted(names) and len(names) == len(set(names))
    # 2 Kubernetes versions x 4 series (standard/nvidia x x86_64/arm64) x (latest + 2 pinned forms).
    assert len(names) == 24
    assert all(n.startswith("/aws/service/bottlerocket/aws-k8s-1.3") and n.endswith("/image_id") for n in names)


def test_windows_is_not_served(ssm):
    with pytest.raises(ssm.exceptions.ParameterNotFound):
        ssm.get_parameter(Name="/aws/service/ami-windows-latest/Windows_Server-2022-English-Core-EKS_Optimized-1.34/image_id")
