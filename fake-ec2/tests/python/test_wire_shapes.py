"""The raw XML fake-ec2 sends, checked element by element against botocore's ec2 model.

botocore parses EC2 responses by looking up the member names it expects and silently ignores
everything else, so a misspelled element (`<instanceState>` written as `<instancestate>`) makes a
field vanish without any error. These tests walk every response body against the operation's
output shape instead: each element must be a member (by its `locationName`) of the structure it
sits in, list entries must be `<item>`, scalars must parse as their type, enum values must be
ones the model knows. The first failure names the path of the offending element.

One scenario per module drives every action through boto3, in many states (pending, running,
stopped, shutting-down, terminated, spot, impaired, partial fleets, paged results), and captures
each raw body with an `after-call` event hook.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
import xml.etree.ElementTree as ET
from collections import Counter, defaultdict
from dataclasses import dataclass

import botocore.auth
import botocore.awsrequest
import botocore.credentials
import pytest
import requests
from botocore.exceptions import ClientError

from support import (
    ACCESS_KEY,
    FakeEc2,
    AMI_ARM,
    AMI_X86,
    EC2_XMLNS,
    REGION,
    SECRET_KEY,
    SECURITY_GROUPS,
    SUBNETS,
    create_launch_template,
    ec2_client,
    fleet_instance_ids,
    karpenter_fleet,
    override,
    pricing_client,
)

UTC = dt.timezone.utc


def ec2_actions() -> list[str]:
    """Every EC2 action fake-ec2 answers, as its action table lists them (`GET /_fake/actions`)."""
    server = FakeEc2()
    try:
        actions = [a["action"] for a in server.get("/_fake/actions") if a["service"] == "ec2"]
    finally:
        server.stop()
    assert actions, "GET /_fake/actions lists no EC2 action"
    return actions


def pytest_generate_tests(metafunc):
    if "action" in metafunc.fixturenames:
        metafunc.parametrize("action", ec2_actions())

ISO8601 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:?\d{2})$")
INTEGER = re.compile(r"^-?\d+$")
DOUBLE = re.compile(r"^-?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?$")
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
ERROR_ENVELOPE = re.compile(
    r'^(<\?xml version="1\.0" encoding="UTF-8"\?>\s*)?'
    r"<Response><Errors><Error><Code>(?P<code>[^<]+)</Code><Message>(?P<message>[^<]*)</Message></Error></Errors>"
    r"<RequestID>(?P<request_id>[^<]+)</RequestID></Response>\s*$"
)
# EC2's errors overview lists these as server errors (5xx); every other code is the caller's (4xx).
SERVER_ERRORS = {
    "InsufficientInstanceCapacity",
    "InsufficientAddressCapacity",
    "InsufficientCapacity",
    "InsufficientHostCapacity",
    "InsufficientReservedInstanceCapacity",
    "InsufficientVolumeCapacity",
    "InternalError",
    "InternalFailure",
    "ServerInternal",
    "RequestLimitExceeded",
    "ServiceUnavailable",
    "Unavailable",
    "BandwidthLimitExceeded",
}


@dataclass
class Captured:
    operation: str
    status: int
    body: bytes
    content_type: str


def _local(tag: str) -> tuple[str | None, str]:
    if tag.startswith("{"):
        ns, _, name = tag[1:].partition("}")
        return ns, name
    return None, tag


def _xml_name(member_name: str, shape) -> str:
    """The element name botocore looks for (BaseXMLResponseParser._member_key_name)."""
    if shape.type_name == "list" and shape.serialization.get("flattened"):
        name = shape.member.serialization.get("name")
        if name:
            return name
    return shape.serialization.get("name", member_name)


def _check_scalar(shape, text: str, path: str, problems: list[str]) -> None:
    t = shape.type_name
    if t in ("integer", "long"):
        if not INTEGER.match(text):
            problems.append(f"{path}: {text!r} is not an {t}")
        elif t == "integer" and not -(2**31) <= int(text) < 2**31:
            problems.append(f"{path}: {text} overflows a 32-bit integer")
    elif t == "boolean":
        if text not in ("true", "false"):
            problems.append(f"{path}: {text!r} is not a boolean (true/false)")
    elif t in ("double", "float"):
        if not DOUBLE.match(text) or not math.isfinite(float(text)):
            problems.append(f"{path}: {text!r} is not a {t}")
    elif t == "timestamp":
        if not ISO8601.match(text):
            problems.append(f"{path}: {text!r} is not an ISO 8601 timestamp")
        else:
            try:
                dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
            except ValueError:
                problems.append(f"{path}: {text!r} is not a valid date-time")
    elif t == "string":
        enum = getattr(shape, "enum", None) or shape.metadata.get("enum")
        if enum and text not in enum:
            problems.append(f"{path}: {text!r} is not one of {shape.name}'s values {sorted(enum)[:12]}...")
    elif t == "blob":
        pass
    else:
        problems.append(f"{path}: unexpected scalar type {t}")


def walk(shape, node: ET.Element, path: str, problems: list[str]) -> None:
    """Checks `node` (already matched to `shape`) and everything below it."""
    ns, _ = _local(node.tag)
    if ns != EC2_XMLNS:
        problems.append(f"{path}: element is in namespace {ns!r}, not {EC2_XMLNS}")
    children = list(node)
    text = (node.text or "").strip()
    t = shape.type_name
    if t == "structure":
        if text:
            problems.append(f"{path}: structure {shape.name} holds text {text[:40]!r}")
        members = {_xml_name(name, m): m for name, m in shape.members.items()}
        counts = Counter(_local(c.tag)[1] for c in children)
        for child in children:
            name = _local(child.tag)[1]
            member = members.get(name)
            if member is None:
                problems.append(
                    f"{path}/{name}: unknown element in {shape.name} (botocore drops it); "
                    f"members are {sorted(members)}"
                )
                continue
            if counts[name] > 1 and not member.serialization.get("flattened"):
                problems.append(f"{path}/{name}: appears {counts[name]} times in {shape.name}")
            walk(member, child, f"{path}/{name}", problems)
    elif t == "list":
        if text:
            problems.append(f"{path}: list {shape.name} holds text {text[:40]!r}")
        item = shape.member.serialization.get("name") or "item"
        allowed = {item, "item"}
        for i, child in enumerate(children):
            name = _local(child.tag)[1]
            if name not in allowed:
                problems.append(f"{path}/{name}[{i}]: list {shape.name} entries must be <{item}>")
                continue
            walk(shape.member, child, f"{path}/{name}[{i}]", problems)
    elif t == "map":
        problems.append(f"{path}: map shapes are not expected in EC2 responses")
    else:
        if children:
            problems.append(f"{path}: scalar {shape.name} ({t}) has child elements {[ _local(c.tag)[1] for c in children]}")
        else:
            _check_scalar(shape, node.text or "", path, problems)


def shape_problems(client, cap: Captured) -> list[str]:
    problems: list[str] = []
    try:
        root = ET.fromstring(cap.body)
    except ET.ParseError as e:
        return [f"{cap.operation}: body is not XML ({e}): {cap.body[:200]!r}"]
    ns, name = _local(root.tag)
    if name != f"{cap.operation}Response" or ns != EC2_XMLNS:
        problems.append(f"root is {root.tag}, expected {{{EC2_XMLNS}}}{cap.operation}Response")
    if root.attrib:
        problems.append(f"root has attributes {root.attrib}")
    children = list(root)
    if not children or _local(children[0].tag)[1] != "requestId":
        problems.append(f"/{name}: the first element must be <requestId>")
    request_ids = [c for c in children if _local(c.tag)[1] == "requestId"]
    if len(request_ids) != 1 or not UUID.match(request_ids[0].text or ""):
        problems.append(f"/{name}/requestId: expected one UUID, got {[c.text for c in request_ids]}")
    shape = client.meta.service_model.operation_model(cap.operation).output_shape
    body = ET.Element(root.tag)
    body.extend(c for c in children if _local(c.tag)[1] != "requestId")
    if shape is None:
        # Actions without output (CreateTags, DeleteTags) answer `<return>true</return>`, as the
        # EC2 API reference's examples show; botocore ignores it.
        rest = [(_local(c.tag)[1], (c.text or "").strip(), len(c)) for c in body]
        if rest != [("return", "true", 0)]:
            problems.append(f"/{name}: {cap.operation} has no output shape; expected only <return>true</return>, got {rest}")
    else:
        walk(shape, body, f"/{name}", problems)
    return problems


# ---------------------------------------------------------------------------------------------
# The scenario: every action, in as many states as the world can be in


@pytest.fixture(scope="module")
def wire(module_server):
    server = module_server
    server.throttling("off")  # the manual clock never refills buckets; throttled bodies are made below
    ec2 = ec2_client(server.endpoint)
    captured: list[Captured] = []

    def hook(http_response, parsed, model, **_):
        captured.append(
            Captured(model.name, http_response.status_code, http_response.content, http_response.headers.get("Content-Type", ""))
        )

    ec2.meta.events.register("after-call.ec2", hook)

    def expect_error(code: str, call, *args, **kwargs):
        with pytest.raises(ClientError) as e:
            call(*args, **kwargs)
        assert e.value.response["Error"]["Code"] == code

    # Catalog, every page of it.
    for _ in ec2.get_paginator("describe_instance_types").paginate(PaginationConfig={"PageSize": 100}):
        pass
    ec2.describe_instance_types(InstanceTypes=["m5.large", "m7g.large", "t3.medium", "c6a.large"])
    for location_type in ("region", "availability-zone", "availability-zone-id"):
        for _ in ec2.get_paginator("describe_instance_type_offerings").paginate(
            LocationType=location_type, PaginationConfig={"PageSize": 400}
        ):
            pass
    now = dt.datetime.fromtimestamp(server.now_ms() / 1000, UTC)
    ec2.describe_spot_price_history(StartTime=dt.datetime.now(UTC), MaxResults=2000,
                                    ProductDescriptions=["Linux/UNIX", "Linux/UNIX (Amazon VPC)"])
    for _ in ec2.get_paginator("describe_spot_price_history").paginate(
        InstanceTypes=["m5.large", "c5.large"], StartTime=now - dt.timedelta(days=3), PaginationConfig={"PageSize": 25}
    ):
        pass
    ec2.describe_availability_zones()
    ec2.describe_availability_zones(ZoneNames=["us-west-2b"])
    ec2.describe_subnets()
    ec2.describe_subnets(Filters=[{"Name": "tag:karpenter.sh/discovery", "Values": ["fake-cluster"]}])
    ec2.describe_security_groups()
    ec2.describe_security_groups(GroupIds=[SECURITY_GROUPS[0]])
    ec2.describe_images(ImageIds=[AMI_X86, AMI_ARM])
    ec2.describe_images(Owners=["self"])

    # Launch templates.
    lt = create_launch_template(ec2, "karpenter-default")
    create_launch_template(ec2, "karpenter-arm", image_id=AMI_ARM)
    ec2.create_launch_template(LaunchTemplateName="bare", LaunchTemplateData={"ImageId": AMI_X86, "InstanceType": "c5.large"})
    ec2.describe_launch_templates()
    ec2.describe_launch_templates(LaunchTemplateNames=["karpenter-default"])
    ec2.describe_launch_templates(MaxResults=1)
    expect_error("InvalidLaunchTemplateName.AlreadyExistsException", create_launch_template, ec2, "karpenter-default")
    expect_error("InvalidLaunchTemplateName.NotFoundException", ec2.describe_launch_templates, LaunchTemplateNames=["nope"])

    # Fleets: full success, partial with errorSet, every echoed override field, quota refusals.
    ok = ec2.create_fleet(
        **karpenter_fleet(
            "karpenter-default",
            [override("m5.large", "us-west-2a", priority=0), override("c5.large", "us-west-2b", priority=1.5)],
            capacity=3,
        )
    )
    server.set_pool("m5.xlarge", "us-west-2a", capacity_type="spot", capacity=1)
    partial = karpenter_fleet("karpenter-default", [override("m5.xlarge", "us-west-2a")], capacity=3)
    partial["LaunchTemplateConfigs"][0]["Overrides"][0].update({"WeightedCapacity": 1.0, "MaxPrice": "5.0"})
    partial["LaunchTemplateConfigs"].append(
        {
            "LaunchTemplateSpecification": {"LaunchTemplateId": lt["LaunchTemplateId"], "Version": "1"},
            "Overrides": [{**override("r5.large", "us-west-2c"), "MaxPrice": "0.0001"}],
        }
    )
    mixed = ec2.create_fleet(**partial)
    assert fleet_instance_ids(mixed) and mixed["Errors"], "the scenario needs a fleet with both instances and errors"
    ec2.create_fleet(
        **karpenter_fleet("karpenter-arm", [override("m7g.large", z, AMI_ARM) for z in ("us-west-2a", "us-west-2b")], 2, "on-demand")
    )
    server.set_quotas(spot_instances=0)
    ec2.create_fleet(**karpenter_fleet("karpenter-default", [override("m5.large", "us-west-2b")]))
    server.set_quotas(spot_instances=None)

    # RunInstances in its variants.
    ec2.run_instances(
        ImageId=AMI_X86,
        InstanceType="m5.large",
        MinCount=2,
        MaxCount=2,
        SubnetId=SUBNETS["us-west-2a"],
        SecurityGroupIds=SECURITY_GROUPS,
        KeyName="ops",
        IamInstanceProfile={"Name": "KarpenterNodeInstanceProfile"},
        ClientToken="wire-shapes-1",
        TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": "Name", "Value": "web & <api>"}]}],
    )
    ec2.run_instances(
        ImageId=AMI_ARM,
        InstanceType="m7g.large",
        MinCount=1,
        MaxCount=1,
        Placement={"AvailabilityZone": "us-west-2c"},
        InstanceMarketOptions={"MarketType": "spot", "SpotOptions": {"InstanceInterruptionBehavior": "terminate"}},
    )
    ec2.run_instances(LaunchTemplate={"LaunchTemplateName": "bare"}, MinCount=1, MaxCount=1)
    server.set_pool("c5.xlarge", "us-west-2a", capacity_type="on-demand", capacity=0)
    expect_error("InsufficientInstanceCapacity", ec2.run_instances, ImageId=AMI_X86, InstanceType="c5.xlarge",
                 MinCount=1, MaxCount=1, SubnetId=SUBNETS["us-west-2a"])
    expect_error("InvalidAMIID.NotFound", ec2.run_instances, ImageId="ami-00000000000000000", InstanceType="m5.large",
                 MinCount=1, MaxCount=1)

    # Lifecycle states, status checks, tags.
    ids = [i["InstanceId"] for r in ec2.describe_instances()["Reservations"] for i in r["Instances"]]
    on_demand = [i["InstanceId"] for r in ec2.describe_instances(
        Filters=[{"Name": "instance-type", "Values": ["m5.large"]}, {"Name": "key-name", "Values": ["ops"]}]
    )["Reservations"] for i in r["Instances"]]
    spot_ids = fleet_instance_ids(ok)
    ec2.describe_instance_status(IncludeAllInstances=True)  # pending: not-applicable
    server.advance(15)
    ec2.describe_instance_status()  # running, initializing
    server.set_status(spot_ids[0], system_impaired=True, instance_impaired=True)
    server.advance(120)
    ec2.describe_instance_status()
    ec2.describe_instance_status(InstanceIds=spot_ids, Filters=[{"Name": "system-status.status", "Values": ["impaired"]}])
    ec2.stop_instances(InstanceIds=[on_demand[0]])
    ec2.terminate_instances(InstanceIds=[spot_ids[1]])
    ec2.describe_instances()  # running, stopping, shutting-down
    server.advance(10)
    ec2.start_instances(InstanceIds=[on_demand[0]])
    ec2.terminate_instances(InstanceIds=[spot_ids[1]])  # terminated -> terminated
    ec2.describe_instances()  # pending again, terminated
    ec2.describe_instance_status(IncludeAllInstances=True)
    for _ in ec2.get_paginator("describe_instances").paginate(PaginationConfig={"PageSize": 5}):
        pass
    ec2.describe_instances(InstanceIds=ids[:3])
    ec2.describe_instances(Filters=[{"Name": "instance-state-name", "Values": ["nothing"]}])

    ec2.create_tags(Resources=ids[:4] + [lt["LaunchTemplateId"], SUBNETS["us-west-2a"]],
                    Tags=[{"Key": "team", "Value": "core"}, {"Key": "empty", "Value": ""}])
    ec2.describe_tags()
    for _ in ec2.get_paginator("describe_tags").paginate(PaginationConfig={"PageSize": 5}):
        pass
    ec2.describe_tags(Filters=[{"Name": "resource-id", "Values": [ids[0]]}])
    ec2.delete_tags(Resources=[ids[0]], Tags=[{"Key": "team"}])
    ec2.delete_launch_template(LaunchTemplateId=lt["LaunchTemplateId"])

    # Error envelopes of every flavour.
    expect_error("InvalidInstanceID.NotFound", ec2.describe_instances, InstanceIds=["i-0123456789abcdef0"])
    expect_error("InvalidInstanceID.Malformed", ec2.terminate_instances, InstanceIds=["i-zzz"])
    expect_error("InvalidParameterCombination", ec2.describe_instances, InstanceIds=ids[:1], MaxResults=5)
    expect_error("InvalidInstanceType", ec2.describe_instance_types, InstanceTypes=["x9.huge"])
    expect_error("DryRunOperation", ec2.run_instances, ImageId=AMI_X86, InstanceType="m5.large", MinCount=1, MaxCount=1, DryRun=True)
    expect_error("DryRunOperation", ec2.describe_instances, DryRun=True)
    expect_error("UnsupportedOperation", ec2.stop_instances, InstanceIds=[spot_ids[0]])
    server.set_quotas(on_demand_vcpus=0)
    expect_error("VcpuLimitExceeded", ec2.run_instances, ImageId=AMI_X86, InstanceType="m5.large", MinCount=1, MaxCount=1)
    server.set_quotas(on_demand_vcpus=5120)
    server.throttling("documented", 0.1)
    with pytest.raises(ClientError):
        for _ in range(20):
            ec2.create_tags(Resources=ids[:1], Tags=[{"Key": "t", "Value": "v"}])
    server.throttling("off")

    # The two envelopes boto3 cannot produce: an unknown action and an unsigned request.
    raw: list[Captured] = []
    req = botocore.awsrequest.AWSRequest(
        method="POST", url=server.endpoint + "/", data="Action=DescribeUnicorns&Version=2016-11-15",
        headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"},
    )
    botocore.auth.SigV4Auth(botocore.credentials.Credentials(ACCESS_KEY, SECRET_KEY), "ec2", REGION).add_auth(req)
    p = req.prepare()
    r = requests.post(p.url, data=p.body, headers=dict(p.headers), timeout=10)
    raw.append(Captured("DescribeUnicorns", r.status_code, r.content, r.headers.get("Content-Type", "")))
    r = requests.post(server.endpoint + "/", data="Action=DescribeInstances&Version=2016-11-15",
                      headers={"Content-Type": "application/x-www-form-urlencoded"}, timeout=10)
    raw.append(Captured("DescribeInstances", r.status_code, r.content, r.headers.get("Content-Type", "")))

    ok_bodies = defaultdict(list)
    errors = []
    for cap in captured:
        (ok_bodies[cap.operation] if cap.status == 200 else errors).append(cap)
    return {"client": ec2, "ok": ok_bodies, "errors": errors + raw}


def test_success_bodies_match_the_botocore_output_shape(wire, action):
    bodies = wire["ok"].get(action, [])
    assert bodies, f"the scenario captured no successful {action} response"
    failures = []
    for n, cap in enumerate(bodies):
        for problem in shape_problems(wire["client"], cap):
            failures.append(f"[response {n}] {problem}")
        if not cap.content_type.startswith("text/xml"):
            failures.append(f"[response {n}] Content-Type is {cap.content_type!r}")
    assert not failures, f"{action}: {len(failures)} problem(s):\n" + "\n".join(failures[:40])


def test_error_bodies_are_exactly_ec2s_envelope(wire):
    codes = set()
    failures = []
    for cap in wire["errors"]:
        text = cap.body.decode("utf-8", errors="replace")
        m = ERROR_ENVELOPE.match(text)
        if not m:
            failures.append(f"{cap.operation} {cap.status}: not the EC2 error envelope: {text[:300]!r}")
            continue
        code = m["code"]
        codes.add(code)
        if not UUID.match(m["request_id"]):
            failures.append(f"{cap.operation} {code}: RequestID {m['request_id']!r} is not a UUID")
        if not m["message"]:
            failures.append(f"{cap.operation} {code}: empty Message")
        expected_class = 5 if code in SERVER_ERRORS else 4
        if cap.status // 100 != expected_class:
            failures.append(f"{cap.operation} {code}: HTTP {cap.status}, expected {expected_class}xx")
        if not cap.content_type.startswith("text/xml"):
            failures.append(f"{cap.operation} {code}: Content-Type is {cap.content_type!r}")
    assert not failures, "\n".join(failures)
    assert codes >= {
        "InvalidLaunchTemplateName.AlreadyExistsException",
        "InvalidLaunchTemplateName.NotFoundException",
        "InsufficientInstanceCapacity",
        "InvalidAMIID.NotFound",
        "InvalidInstanceID.NotFound",
        "InvalidInstanceID.Malformed",
        "InvalidParameterCombination",
        "InvalidInstanceType",
        "DryRunOperation",
        "UnsupportedOperation",
        "VcpuLimitExceeded",
        "RequestLimitExceeded",
        "InvalidAction",
        "MissingAuthenticationToken",
    }, codes


def test_error_statuses_match_ec2(wire):
    status = {}
    for cap in wire["errors"]:
        m = ERROR_ENVELOPE.match(cap.body.decode("utf-8", errors="replace"))
        if m:
            status.setdefault(m["code"], set()).add(cap.status)
    assert status["DryRunOperation"] == {412}
    assert status["RequestLimitExceeded"] == {503}
    assert status["InsufficientInstanceCapacity"] == {500}
    assert status["MissingAuthenticationToken"] == {401}
    assert status["InvalidAction"] == {400}
    assert status["InvalidInstanceID.NotFound"] == {400}


def test_create_fleet_error_set_and_instance_set_shapes(wire):
    """The errorSet-bearing CreateFleet body, element for element (peers.md §8.2)."""
    bodies = [ET.fromstring(c.body) for c in wire["ok"]["CreateFleet"]]
    ns = {"e": EC2_XMLNS}
    both = [b for b in bodies if b.find("e:errorSet/e:item", ns) is not None and b.find("e:fleetInstanceSet/e:item", ns) is not None]
    assert both, "no CreateFleet response carried both errorSet and fleetInstanceSet"
    root = both[0]
    assert [_local(c.tag)[1] for c in root] == ["requestId", "fleetId", "errorSet", "fleetInstanceSet"]
    for err in root.findall("e:errorSet/e:item", ns):
        assert [_local(c.tag)[1] for c in err] == ["launchTemplateAndOverrides", "lifecycle", "errorCode", "errorMessage"]
        lto = err.find("e:launchTemplateAndOverrides", ns)
        assert [_local(c.tag)[1] for c in lto] == ["launchTemplateSpecification", "overrides"]
        spec = lto.find("e:launchTemplateSpecification", ns)
        assert {_local(c.tag)[1] for c in spec} <= {"launchTemplateId", "launchTemplateName", "version"}
    codes = {e.findtext("e:errorCode", namespaces=ns) for e in root.findall("e:errorSet/e:item", ns)}
    assert codes == {"InsufficientInstanceCapacity", "SpotMaxPriceTooLow"}
    for inst in root.findall("e:fleetInstanceSet/e:item", ns):
        names = [_local(c.tag)[1] for c in inst]
        assert names[:3] == ["launchTemplateAndOverrides", "lifecycle", "instanceIds"]
        assert "instanceType" in names
        assert all(_local(c.tag)[1] == "item" for c in inst.find("e:instanceIds", ns))
    echoed = {c.tag.split("}")[1]: c.text for c in root.find("e:errorSet/e:item/e:launchTemplateAndOverrides/e:overrides", ns)}
    assert echoed.get("instanceType") and echoed.get("subnetId") and echoed.get("availabilityZone")


def test_pricing_get_products_matches_the_botocore_shape(module_server):
    """Pricing is JSON 1.1: top-level members must be the output shape's, PriceList entries JSON."""
    client = pricing_client(module_server.endpoint)
    bodies: list[bytes] = []
    client.meta.events.register("after-call.pricing", lambda http_response, **_: bodies.append(http_response.content))
    client.get_products(
        ServiceCode="AmazonEC2",
        Filters=[
            {"Type": "TERM_MATCH", "Field": "instanceType", "Value": "m5.large"},
            {"Type": "TERM_MATCH", "Field": "regionCode", "Value": "us-west-2"},
        ],
        MaxResults=10,
    )
    doc = json.loads(bodies[-1])
    shape = client.meta.service_model.operation_model("GetProducts").output_shape
    assert set(doc) <= set(shape.members), set(doc) - set(shape.members)
    assert doc["FormatVersion"] == "aws_v1"
    assert doc["PriceList"] and all(isinstance(json.loads(p), dict) for p in doc["PriceList"])


def test_the_checker_catches_misspelled_and_mistyped_elements(wire):
    """The walker itself: a known-good body passes, and each kind of corruption is named by path."""
    good = max(wire["ok"]["DescribeInstances"], key=lambda c: len(c.body))
    client = wire["client"]
    assert shape_problems(client, good) == []

    def corrupt(*edits: tuple[bytes, bytes]) -> list[str]:
        body = good.body
        for old, new in edits:
            assert old in body, old
            body = body.replace(old, new, 1)
        return shape_problems(client, Captured("DescribeInstances", 200, body, "text/xml"))

    problems = corrupt((b"<instanceState>", b"<instancestate>"), (b"</instanceState>", b"</instancestate>"))
    assert len(problems) == 1
    assert "reservationSet/item[0]/instancesSet/item[0]/instancestate: unknown element in Instance" in problems[0]
    assert any("amiLaunchIndex" in p and "not an integer" in p for p in corrupt((b"<amiLaunchIndex>0<", b"<amiLaunchIndex>zero<")))
    assert any("ebsOptimized" in p and "not a boolean" in p for p in corrupt((b"<ebsOptimized>true<", b"<ebsOptimized>True<")))
    assert any("launchTime" in p and "ISO 8601" in p for p in corrupt((b"<launchTime>2026", b"<launchTime>Jan 2026")))
    assert any("must be <item>" in p for p in corrupt(
        (b"<blockDeviceMapping><item>", b"<blockDeviceMapping><member>"),
        (b"</item></blockDeviceMapping>", b"</member></blockDeviceMapping>"),
    ))
    assert any("not one of" in p for p in corrupt((b"<rootDeviceType>ebs<", b"<rootDeviceType>nfs<")))
