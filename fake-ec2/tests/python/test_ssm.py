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
