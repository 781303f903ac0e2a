"""EKS, IAM and STS through boto3 and the AWS CLI: every action, paging, every error code with its
status and envelope, and requests signed for them never reaching the EC2 handler."""

from __future__ import annotations

import re

import botocore.auth
import botocore.awsrequest
import botocore.credentials
import pytest
import requests

from support import (
    ACCESS_KEY,
    AMI_X86,
    AWS_CLI,
    REGION,
    SECRET_KEY,
    SECURITY_GROUPS,
    SUBNETS,
    VPC_ID,
    aws_cli,
    aws_client,
    create_launch_template,
    ec2_client,
    error_of,
    karpenter_fleet,
    override,
)

ROLE = "KarpenterNodeRole-fake-cluster"
DECLARED_PROFILES = [
    "KarpenterNodeInstanceProfile",
    "KarpenterNodeInstanceProfile-fake-cluster",
    "fake-cluster_default",
    "fake-cluster_legacy",
]
IAM_XMLNS = "https://iam.amazonaws.com/doc/2010-05-08/"
STS_XMLNS = "https://sts.amazonaws.com/doc/2011-06-15/"
# aws-cli v1 exits 255 on a service error, v2 exits 254.
CLI_SERVICE_ERROR = (254, 255)
QUERY_ERROR = re.compile(
    r'^<\?xml version="1\.0" encoding="UTF-8"\?>\s*<ErrorResponse xmlns="(?P<ns>[^"]+)"><Error><Type>(?P<type>Sender|Receiver)</Type>'
    r"<Code>(?P<code>[^<]+)</Code><Message>(?P<message>[^<]*)</Message></Error><RequestId>[0-9a-f-]{36}</RequestId></ErrorResponse>$"
)


@pytest.fixture
def eks(server):
    return aws_client("eks", server.endpoint)


@pytest.fixture
def iam(server):
    return aws_client("iam", server.endpoint, "us-east-1")


@pytest.fixture
def sts(server):
    return aws_client("sts", server.endpoint)


def signed(server, service: str, method: str, path: str, body: str = "") -> requests.Response:
    """A request botocore signs for `service`, sent as is."""
    region = "us-east-1" if service == "iam" else REGION
    req = botocore.awsrequest.AWSRequest(
        method=method,
        url=server.endpoint + path,
        data=body,
        headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"} if body else {},
    )
    botocore.auth.SigV4Auth(botocore.credentials.Credentials(ACCESS_KEY, SECRET_KEY), service, region).add_auth(req)
    p = req.prepare()
    return requests.request(method, p.url, data=p.body, headers=dict(p.headers), timeout=10)


# -- EKS ---------------------------------------------------------------------------------------------


def test_describe_cluster_has_the_shape_botocore_and_karpenter_read(eks):
    c = eks.describe_cluster(name="fake-cluster")["cluster"]
    assert c["name"] == "fake-cluster"
    assert c["arn"] == "arn:aws:eks:us-west-2:123456789012:cluster/fake-cluster"
    assert (c["status"], c["version"], c["platformVersion"]) == ("ACTIVE", "1.34", "eks.10")
    assert c["kubernetesNetworkConfig"]["serviceIpv4Cidr"] == "10.100.0.0/16"
    assert c["kubernetesNetworkConfig"]["ipFamily"] == "ipv4"
    assert re.fullmatch(r"https://[0-9A-F]{32}\.gr7\.us-west-2\.eks\.amazonaws\.com", c["endpoint"])
    assert c["certificateAuthority"]["data"]
    assert c["createdAt"].isoformat() == "2025-11-01T00:00:00+00:00"
    assert c["roleArn"] == "arn:aws:iam::123456789012:role/fake-cluster-cluster-role"
    vpc = c["resourcesVpcConfig"]
    assert vpc["vpcId"] == VPC_ID
    assert sorted(vpc["subnetIds"]) == sorted(SUBNETS.values())
    assert vpc["clusterSecurityGroupId"] == SECURITY_GROUPS[0]
    assert vpc["securityGroupIds"] == [SECURITY_GROUPS[1]]


def test_describe_cluster_of_another_name_is_not_found(eks):
    with pytest.raises(eks.exceptions.ResourceNotFoundException) as e:
        eks.describe_cluster(name="other")
    assert error_of(e) == ("ResourceNotFoundException", 404, "No cluster found for name: other.")
    headers = e.value.response["ResponseMetadata"]["HTTPHeaders"]
    assert headers["x-amzn-errortype"] == "ResourceNotFoundException"
    assert headers["content-type"] == "application/json"


def test_list_clusters_pages_and_bounds(eks):
    assert eks.list_clusters()["clusters"] == ["fake-cluster"]
    assert eks.list_clusters(maxResults=1)["clusters"] == ["fake-cluster"]
    pages = list(eks.get_paginator("list_clusters").paginate(PaginationConfig={"PageSize": 1}))
    assert [n for p in pages for n in p["clusters"]] == ["fake-cluster"]
    for kwargs in ({"maxResults": 101}, {"nextToken": "bogus"}):
        with pytest.raises(eks.exceptions.InvalidParameterException) as e:
            eks.list_clusters(**kwargs)
        assert error_of(e)[:2] == ("InvalidParameterException", 400)


# -- IAM ---------------------------------------------------------------------------------------------


def test_karpenters_instance_profile_calls(iam):
    path = "/karpenter/us-west-2/fake-cluster/2b4c-uid/"
    name = "fake-cluster_9876543210"
    with pytest.raises(iam.exceptions.NoSuchEntityException) as e:
        iam.get_instance_profile(InstanceProfileName=name)
    assert error_of(e) == ("NoSuchEntity", 404, f"Instance Profile {name} cannot be found.")
    tags = [{"Key": "karpenter.k8s.aws/ec2nodeclass", "Value": "default"}, {"Key": "topology.kubernetes.io/region", "Value": REGION}]
    p = iam.create_instance_profile(InstanceProfileName=name, Path=path, Tags=tags)["InstanceProfile"]
    assert p["Arn"] == f"arn:aws:iam::123456789012:instance-profile{path}{name}"
    assert re.fullmatch(r"AIPA[A-Z0-9]{17}", p["InstanceProfileId"])
    assert p["Roles"] == [] and p["Path"] == path
    assert sorted(p["Tags"], key=lambda t: t["Key"]) == tags
    iam.add_role_to_instance_profile(InstanceProfileName=name, RoleName=ROLE)
    got = iam.get_instance_profile(InstanceProfileName=name)["InstanceProfile"]
    (role,) = got["Roles"]
    assert role["RoleName"] == ROLE and role["Arn"] == f"arn:aws:iam::123456789012:role/{ROLE}"
    assert role["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {"Service": "ec2.amazonaws.com"}
    listed = iam.list_instance_profiles(PathPrefix="/karpenter/us-west-2/fake-cluster/")
    assert [p["InstanceProfileName"] for p in listed["InstanceProfiles"]] == [name]
    assert listed["IsTruncated"] is False and "Tags" not in listed["InstanceProfiles"][0]
    iam.remove_role_from_instance_profile(InstanceProfileName=name, RoleName=ROLE)
    iam.delete_instance_profile(InstanceProfileName=name)
    assert iam.list_instance_profiles(PathPrefix="/karpenter/")["InstanceProfiles"] == []


def test_iam_error_codes_and_statuses(iam):
    iam.create_instance_profile(InstanceProfileName="p")
    cases = [
        (lambda: iam.create_instance_profile(InstanceProfileName="p"), "EntityAlreadyExists", 409),
        (lambda: iam.add_role_to_instance_profile(InstanceProfileName="p", RoleName="Nope"), "NoSuchEntity", 404),
        (lambda: iam.get_role(RoleName="Nope"), "NoSuchEntity", 404),
        (lambda: iam.get_instance_profile(InstanceProfileName="bad name"), "ValidationError", 400),
        (lambda: iam.list_instance_profiles(PathPrefix="no-slash"), "ValidationError", 400),
    ]
    for call, code, status in cases:
        with pytest.raises(iam.exceptions.ClientError) as e:
            call()
        assert error_of(e)[:2] == (code, status)
    iam.add_role_to_instance_profile(InstanceProfileName="p", RoleName=ROLE)
    with pytest.raises(iam.exceptions.LimitExceededException) as e:
        iam.add_role_to_instance_profile(InstanceProfileName="p", RoleName=ROLE)
    assert error_of(e)[:2] == ("LimitExceeded", 409)
    with pytest.raises(iam.exceptions.DeleteConflictException) as e:
        iam.delete_instance_profile(InstanceProfileName="p")
    assert error_of(e)[:2] == ("DeleteConflict", 409)


def test_iam_errors_are_iams_envelope(server):
    for body, code, status in [
        ("Action=GetInstanceProfile&Version=2010-05-08&InstanceProfileName=missing", "NoSuchEntity", 404),
        ("Action=GetInstanceProfile&Version=2010-05-08", "ValidationError", 400),
        ("Action=DescribeUnicorns&Version=2010-05-08", "InvalidAction", 400),
        ("Action=DescribeInstances&Version=2016-11-15", "InvalidAction", 400),
    ]:
        r = signed(server, "iam", "POST", "/", body)
        assert r.status_code == status, r.text
        m = QUERY_ERROR.match(r.text)
        assert m, r.text
        assert (m["ns"], m["type"], m["code"]) == (IAM_XMLNS, "Sender", code)


def test_list_instance_profiles_marker_paging(iam):
    for n in "abcde":
        iam.create_instance_profile(InstanceProfileName=f"paged-{n}", Path="/paged/")
    first = iam.list_instance_profiles(PathPrefix="/paged/", MaxItems=2)
    assert first["IsTruncated"] is True and [p["InstanceProfileName"] for p in first["InstanceProfiles"]] == ["paged-a", "paged-b"]
    second = iam.list_instance_profiles(PathPrefix="/paged/", MaxItems=2, Marker=first["Marker"])
    assert [p["InstanceProfileName"] for p in second["InstanceProfiles"]] == ["paged-c", "paged-d"]
    pages = iam.get_paginator("list_instance_profiles").paginate(PathPrefix="/paged/", PaginationConfig={"PageSize": 2})
    assert [p["InstanceProfileName"] for page in pages for p in page["InstanceProfiles"]] == [f"paged-{n}" for n in "abcde"]
    everything = iam.list_instance_profiles()["InstanceProfiles"]
    assert sorted(p["InstanceProfileName"] for p in everything) == sorted(DECLARED_PROFILES + [f"paged-{n}" for n in "abcde"])
    with pytest.raises(iam.exceptions.ClientError) as e:
        iam.list_instance_profiles(MaxItems=1001)
    assert error_of(e)[:2] == ("ValidationError", 400)


def test_tags_roles_and_profiles_for_a_role(iam):
    name = "KarpenterNodeInstanceProfile-fake-cluster"
    iam.tag_instance_profile(InstanceProfileName=name, Tags=[{"Key": "a", "Value": "1"}, {"Key": "b", "Value": "2"}])
    iam.untag_instance_profile(InstanceProfileName=name, TagKeys=["a"])
    out = iam.list_instance_profile_tags(InstanceProfileName=name)
    assert out["Tags"] == [{"Key": "b", "Value": "2"}] and out["IsTruncated"] is False
    with pytest.raises(iam.exceptions.NoSuchEntityException):
        iam.tag_instance_profile(InstanceProfileName="missing", Tags=[{"Key": "a", "Value": "1"}])
    role = iam.get_role(RoleName=ROLE)["Role"]
    assert re.fullmatch(r"AROA[A-Z0-9]{17}", role["RoleId"]) and role["MaxSessionDuration"] == 3600
    for_role = iam.list_instance_profiles_for_role(RoleName=ROLE)["InstanceProfiles"]
    assert sorted(p["InstanceProfileName"] for p in for_role) == sorted(DECLARED_PROFILES)


def test_launches_need_an_instance_profile_iam_has(server, iam):
    ec2 = ec2_client(server.endpoint)
    with pytest.raises(ec2.exceptions.ClientError) as e:
        ec2.run_instances(ImageId=AMI_X86, InstanceType="m5.large", MinCount=1, MaxCount=1, IamInstanceProfile={"Name": "Missing"})
    assert error_of(e) == (
        "InvalidParameterValue",
        400,
        "Value (Missing) for parameter iamInstanceProfile.name is invalid. Invalid IAM Instance Profile name",
    )
    create_launch_template(ec2, "no-profile", IamInstanceProfile={"Name": "Missing"})
    out = ec2.create_fleet(**karpenter_fleet("no-profile", [override("m5.large", "us-west-2a")]))
    assert [e["ErrorCode"] for e in out["Errors"]] == ["InvalidParameterValue"] and out["Instances"] == []
    # Karpenter's way: create the profile, then launch with it.
    p = iam.create_instance_profile(InstanceProfileName="made", Path="/karpenter/x/")["InstanceProfile"]
    iam.add_role_to_instance_profile(InstanceProfileName="made", RoleName=ROLE)
    create_launch_template(ec2, "with-profile", IamInstanceProfile={"Name": "made"})
    out = ec2.create_fleet(**karpenter_fleet("with-profile", [override("m5.large", "us-west-2a")]))
    (iid,) = out["Instances"][0]["InstanceIds"]
    inst = ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]
    assert inst["IamInstanceProfile"] == {"Arn": p["Arn"], "Id": p["InstanceProfileId"]}


# -- STS ---------------------------------------------------------------------------------------------


def test_get_caller_identity(sts):
    out = sts.get_caller_identity()
    assert out["Account"] == "123456789012"
    assert out["Arn"] == "arn:aws:iam::123456789012:user/fake-ec2"
    assert re.fullmatch(r"AIDA[0-9A-F]{17}", out["UserId"])
    assert sts.get_caller_identity()["UserId"] == out["UserId"], "the same key is the same user"


def test_sts_errors_are_its_envelope(server):
    r = signed(server, "sts", "POST", "/", "Action=AssumeRole&Version=2011-06-15")
    m = QUERY_ERROR.match(r.text)
    assert r.status_code == 400 and m, r.text
    assert (m["ns"], m["code"]) == (STS_XMLNS, "InvalidAction")


# -- routing -----------------------------------------------------------------------------------------


def test_requests_for_these_services_never_reach_ec2(server):
    before = server.get("/_fake/state")["throttling"]["buckets"]
    ec2_body = "Action=DescribeInstances&Version=2016-11-15"
    r = signed(server, "eks", "POST", "/", ec2_body)
    assert r.status_code == 404 and r.headers["x-amzn-errortype"] == "UnknownOperationException"
    assert r.json()["message"]
    for service in ("iam", "sts"):
        r = signed(server, service, "POST", "/", ec2_body)
        assert r.status_code == 400 and "<Code>InvalidAction</Code>" in r.text and "<Response><Errors>" not in r.text
    # Unsigned EKS paths are EKS's, refused in REST-JSON.
    r = requests.get(server.endpoint + "/clusters/fake-cluster", timeout=10)
    assert r.status_code == 403 and r.headers["x-amzn-errortype"] == "MissingAuthenticationTokenException"
    # A service fake-ec2 does not serve answers in JSON, never EC2's MissingAction.
    r = signed(server, "lambda", "GET", "/2015-03-31/functions")
    assert r.status_code == 404 and r.headers["x-amzn-errortype"] == "UnknownOperationException"
    assert "MissingAction" not in r.text
    after = server.get("/_fake/state")["throttling"]["buckets"]
    assert after == before, "an EC2 throttling bucket was drawn from"


def test_the_action_table_lists_these_services(server):
    actions = server.get("/_fake/actions")
    by_service: dict[str, set[str]] = {}
    for a in actions:
        by_service.setdefault(a["service"], set()).add(a["action"])
    assert by_service["eks"] == {"DescribeCluster", "ListClusters"}
    assert by_service["sts"] == {"GetCallerIdentity"}
    assert {"GetInstanceProfile", "CreateInstanceProfile", "DeleteInstanceProfile", "ListInstanceProfiles",
            "AddRoleToInstanceProfile", "RemoveRoleFromInstanceProfile", "TagInstanceProfile", "UntagInstanceProfile",
            "ListInstanceProfileTags", "GetRole", "ListInstanceProfilesForRole"} == by_service["iam"]


# -- the AWS CLI -------------------------------------------------------------------------------------


def test_the_aws_cli(server, tmp_path):
    aws = aws_cli(server.endpoint, tmp_path)
    c = aws.json("eks", "describe-cluster", "--name", "fake-cluster")["cluster"]
    assert c["status"] == "ACTIVE" and c["kubernetesNetworkConfig"]["serviceIpv4Cidr"] == "10.100.0.0/16"
    assert aws.json("eks", "list-clusters")["clusters"] == ["fake-cluster"]
    missing = aws("eks", "describe-cluster", "--name", "other", check=False)
    assert missing.returncode in CLI_SERVICE_ERROR and "ResourceNotFoundException" in missing.stderr
    p = aws.json("iam", "create-instance-profile", "--instance-profile-name", "cli-profile", "--path", "/cli/")
    assert p["InstanceProfile"]["Arn"] == "arn:aws:iam::123456789012:instance-profile/cli/cli-profile"
    aws("iam", "add-role-to-instance-profile", "--instance-profile-name", "cli-profile", "--role-name", ROLE)
    listed = aws.json("iam", "list-instance-profiles", "--path-prefix", "/cli/")
    assert [x["Roles"][0]["RoleName"] for x in listed["InstanceProfiles"]] == [ROLE]
    gone = aws("iam", "get-instance-profile", "--instance-profile-name", "nope", check=False)
    assert gone.returncode in CLI_SERVICE_ERROR and "(NoSuchEntity)" in gone.stderr
    me = aws.json("sts", "get-caller-identity")
    assert me["Account"] == "123456789012" and me["Arn"].endswith(":user/fake-ec2")
