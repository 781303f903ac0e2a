"""The built-in SQS through boto3 (AWS JSON 1.0, current botocore), the AWS CLI, and one raw
Query-protocol request, against a real fake-ec2 process with a manual clock."""

from __future__ import annotations

import base64
import hashlib
import json
import struct
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET

import boto3
import pytest
from botocore.config import Config

from support import ACCESS_KEY, AWS_CLI, NO_RETRIES, REGION, SECRET_KEY, aws_cli, aws_client, error_of

ACCOUNT = "123456789012"
SQS_XMLNS = "{http://queue.amazonaws.com/doc/2012-11-05/}"


def sqs_client(endpoint: str):
    return aws_client("sqs", endpoint)


@pytest.fixture
def sqs(server):
    return sqs_client(server.endpoint)


def md5_of_attributes(attrs: dict) -> str:
    """MD5OfMessageAttributes as the SQS Developer Guide documents it."""
    buf = b""
    for name in sorted(attrs):
        v = attrs[name]
        buf += struct.pack("!I", len(name.encode())) + name.encode()
        buf += struct.pack("!I", len(v["DataType"].encode())) + v["DataType"].encode()
        if "BinaryValue" in v:
            buf += b"\x02" + struct.pack("!I", len(v["BinaryValue"])) + v["BinaryValue"]
        else:
            s = v["StringValue"].encode()
            buf += b"\x01" + struct.pack("!I", len(s)) + s
    return hashlib.md5(buf).hexdigest()


ATTRS = {
    "kind": {"DataType": "String", "StringValue": "spot"},
    "count": {"DataType": "Number", "StringValue": "42"},
    "blob": {"DataType": "Binary", "BinaryValue": b"\x00\x01\xfe\xff"},
    "label": {"DataType": "String.custom", "StringValue": "ünïcødé ✓"},
}


def test_metadata_is_json_protocol():
    model = boto3.session.Session().client("sqs", region_name=REGION)._service_model
    assert model.metadata["protocol"] == "json"


def test_md5_matches_moto_reference():
    import moto.sqs.models as moto_models
    m = moto_models.Message("id", "body")
    m.message_attributes = ATTRS
    assert md5_of_attributes(ATTRS) == m.attribute_md5


def test_boto3_every_action(server, sqs):
    url = sqs.create_queue(QueueName="orders", Attributes={"VisibilityTimeout": "45"}, tags={"team": "infra"})["QueueUrl"]
    assert url == f"{server.endpoint}/{ACCOUNT}/orders"
    assert sqs.get_queue_url(QueueName="orders")["QueueUrl"] == url
    sqs.create_queue(QueueName="orders-dlq")
    urls = sqs.list_queues(QueueNamePrefix="orders")["QueueUrls"]
    assert urls == [url, f"{server.endpoint}/{ACCOUNT}/orders-dlq"]
    page = sqs.list_queues(MaxResults=1)
    assert len(page["QueueUrls"]) == 1 and "NextToken" in page
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert attrs["VisibilityTimeout"] == "45"
    assert attrs["QueueArn"] == f"arn:aws:sqs:{REGION}:{ACCOUNT}:orders"
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"MessageRetentionPeriod": "600"})
    assert sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["MessageRetentionPeriod"])["Attributes"] == {
        "MessageRetentionPeriod": "600"
    }

    body = "hello\r\nworld"
    sent = sqs.send_message(QueueUrl=url, MessageBody=body, MessageAttributes=ATTRS)
    assert sent["MD5OfMessageBody"] == hashlib.md5(body.encode()).hexdigest()
    assert sent["MD5OfMessageAttributes"] == md5_of_attributes(ATTRS)
    got = sqs.receive_message(QueueUrl=url, MessageSystemAttributeNames=["All"], MessageAttributeNames=["All"])
    (m,) = got["Messages"]
    assert m["MessageId"] == sent["MessageId"]
    assert m["Body"] == body
    assert m["MessageAttributes"] == ATTRS
    assert m["MD5OfMessageAttributes"] == md5_of_attributes(ATTRS)
    assert m["Attributes"]["SentTimestamp"] == str(server.now_ms()), "world time (manual clock)"
    assert m["Attributes"]["ApproximateReceiveCount"] == "1"
    sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"], VisibilityTimeout=0)
    (m2,) = sqs.receive_message(QueueUrl=url)["Messages"]
    assert m2["ReceiptHandle"] != m["ReceiptHandle"]
    sqs.delete_message(QueueUrl=url, ReceiptHandle=m2["ReceiptHandle"])

    out = sqs.send_message_batch(
        QueueUrl=url,
        Entries=[
            {"Id": "a", "MessageBody": "one"},
            {"Id": "b", "MessageBody": "two", "DelaySeconds": 10},
            {"Id": "bad", "MessageBody": "x", "MessageAttributes": {"n": {"DataType": "Number", "StringValue": "zz"}}},
        ],
    )
    assert [e["Id"] for e in out["Successful"]] == ["a", "b"]
    assert out["Failed"][0]["Id"] == "bad" and out["Failed"][0]["Code"] == "InvalidParameterValue"
    counts = sqs.get_queue_attributes(
        QueueUrl=url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible", "ApproximateNumberOfMessagesDelayed"],
    )["Attributes"]
    assert counts == {
        "ApproximateNumberOfMessages": "1",
        "ApproximateNumberOfMessagesNotVisible": "0",
        "ApproximateNumberOfMessagesDelayed": "1",
    }
    server.advance(10)
    msgs = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    assert sorted(m["Body"] for m in msgs) == ["one", "two"]
    cmv = sqs.change_message_visibility_batch(
        QueueUrl=url, Entries=[{"Id": f"c{i}", "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": 100} for i, m in enumerate(msgs)]
    )
    assert len(cmv["Successful"]) == 2 and cmv["Failed"] == []
    deleted = sqs.delete_message_batch(
        QueueUrl=url, Entries=[{"Id": f"d{i}", "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(msgs)]
    )
    assert len(deleted["Successful"]) == 2
    sqs.send_message(QueueUrl=url, MessageBody="gone soon")
    sqs.purge_queue(QueueUrl=url)
    assert "Messages" not in sqs.receive_message(QueueUrl=url)
    sqs.delete_queue(QueueUrl=url)

    with pytest.raises(sqs.exceptions.QueueDoesNotExist) as e:
        sqs.get_queue_url(QueueName="orders")
    code, status, _ = error_of(e)
    assert (code, status) == ("AWS.SimpleQueueService.NonExistentQueue", 400)
    assert e.value.response["Error"]["QueryErrorCode"] == "QueueDoesNotExist"
    assert e.value.response["Error"]["Type"] == "Sender"
    with pytest.raises(sqs.exceptions.ClientError) as e:
        sqs.send_message_batch(QueueUrl=f"{server.endpoint}/{ACCOUNT}/orders-dlq", Entries=[])
    assert error_of(e)[0] == "AWS.SimpleQueueService.EmptyBatchRequest"


def test_boto3_long_poll_woken_by_a_send_from_another_thread(server, sqs):
    url = sqs.get_queue_url(QueueName="karpenter-interruption")["QueueUrl"]
    event = json.dumps(
        {
            "version": "0",
            "id": "7bf73129-1428-4cd3-a780-95db273d1602",
            "detail-type": "EC2 Instance State-change Notification",
            "source": "aws.ec2",
            "account": ACCOUNT,
            "time": "2026-01-01T00:00:00Z",
            "region": REGION,
            "resources": [f"arn:aws:ec2:{REGION}:{ACCOUNT}:instance/i-0abcd1111"],
            "detail": {"instance-id": "i-0abcd1111", "state": "shutting-down"},
        }
    )
    result: dict = {}

    def poll():
        result["out"] = sqs_client(server.endpoint).receive_message(
            QueueUrl=url,
            MaxNumberOfMessages=10,
            VisibilityTimeout=20,
            WaitTimeSeconds=20,
            AttributeNames=["SentTimestamp"],
            MessageAttributeNames=["All"],
        )

    started = time.monotonic()
    t = threading.Thread(target=poll)
    t.start()
    time.sleep(0.3)
    assert t.is_alive(), "an empty queue holds the long poll"
    sqs.send_message(QueueUrl=url, MessageBody=event)
    t.join(timeout=10)
    assert not t.is_alive()
    assert time.monotonic() - started < 10
    (m,) = result["out"]["Messages"]
    assert json.loads(m["Body"])["detail"]["state"] == "shutting-down"
    assert m["Attributes"] == {"SentTimestamp": str(server.now_ms())}
    sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])


def test_admin_peek(server, sqs):
    url = sqs.get_queue_url(QueueName="karpenter-interruption")["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="peek me")
    peek = server.get("/_fake/sqs/messages?queue=karpenter-interruption")
    assert [m["Body"] for m in peek["Messages"]] == ["peek me"]
    assert peek["Messages"][0]["Attributes"]["ApproximateReceiveCount"] == "0"
    assert sqs.receive_message(QueueUrl=url)["Messages"][0]["Body"] == "peek me"


def test_aws_cli_consumes_messages(server, tmp_path):
    cli = aws_cli(server.endpoint, tmp_path)

    def aws(*args: str, check: bool = True) -> subprocess.CompletedProcess:
        return cli("sqs", *args, check=check)

    url = json.loads(aws("get-queue-url", "--queue-name", "karpenter-interruption").stdout)["QueueUrl"]
    sent = json.loads(
        aws(
            "send-message",
            "--queue-url",
            url,
            "--message-body",
            '{"detail-type":"EC2 Spot Instance Interruption Warning"}',
            "--message-attributes",
            '{"kind":{"DataType":"String","StringValue":"spot"}}',
        ).stdout
    )
    assert sent["MD5OfMessageAttributes"] == md5_of_attributes({"kind": {"DataType": "String", "StringValue": "spot"}})
    out = json.loads(
        aws(
            "receive-message",
            "--queue-url",
            url,
            "--max-number-of-messages",
            "10",
            "--visibility-timeout",
            "20",
            "--wait-time-seconds",
            "20",
            "--attribute-names",
            "SentTimestamp",
            "--message-attribute-names",
            "All",
        ).stdout
    )
    (m,) = out["Messages"]
    assert m["MessageId"] == sent["MessageId"]
    assert m["MessageAttributes"]["kind"]["StringValue"] == "spot"
    aws("delete-message", "--queue-url", url, "--receipt-handle", m["ReceiptHandle"])
    attrs = json.loads(aws("get-queue-attributes", "--queue-url", url, "--attribute-names", "All").stdout)["Attributes"]
    assert attrs["ApproximateNumberOfMessages"] == "0" and attrs["ApproximateNumberOfMessagesNotVisible"] == "0"
    missing = aws("get-queue-url", "--queue-name", "nope", check=False)
    assert missing.returncode != 0
    assert "AWS.SimpleQueueService.NonExistentQueue" in missing.stderr


def query(server, path: str, params: dict) -> tuple[int, ET.Element]:
    """One Query-protocol request, form-encoded with a static SigV4-shaped Authorization header."""
    data = urllib.parse.urlencode(params).encode()
    req = urllib.request.Request(server.endpoint + path, data=data, method="POST")
    req.add_header("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
    req.add_header("X-Amz-Date", "20260101T000000Z")
    req.add_header(
        "Authorization",
        f"AWS4-HMAC-SHA256 Credential={ACCESS_KEY}/20260101/{REGION}/sqs/aws4_request, SignedHeaders=host;x-amz-date, Signature=00",
    )
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, ET.fromstring(resp.read())
    except urllib.error.HTTPError as e:
        return e.code, ET.fromstring(e.read())


def test_query_protocol_xml(server):
    status, root = query(server, "/", {"Action": "CreateQueue", "Version": "2012-11-05", "QueueName": "legacy", "Attribute.1.Name": "VisibilityTimeout", "Attribute.1.Value": "15"})
    assert status == 200 and root.tag == f"{SQS_XMLNS}CreateQueueResponse"
    url = root.find(f"{SQS_XMLNS}CreateQueueResult/{SQS_XMLNS}QueueUrl").text
    assert url == f"{server.endpoint}/{ACCOUNT}/legacy"
    assert root.find(f"{SQS_XMLNS}ResponseMetadata/{SQS_XMLNS}RequestId").text

    body = "legacy <xml> & stuff"
    status, root = query(
        server,
        "/",
        {
            "Action": "SendMessage",
            "Version": "2012-11-05",
            "QueueUrl": url,
            "MessageBody": body,
            "MessageAttribute.1.Name": "kind",
            "MessageAttribute.1.Value.DataType": "String",
            "MessageAttribute.1.Value.StringValue": "spot",
            "MessageAttribute.2.Name": "raw",
            "MessageAttribute.2.Value.DataType": "Binary",
            "MessageAttribute.2.Value.BinaryValue": base64.b64encode(b"\x00\xff").decode(),
        },
    )
    assert status == 200 and root.tag == f"{SQS_XMLNS}SendMessageResponse"
    result = root.find(f"{SQS_XMLNS}SendMessageResult")
    assert result.find(f"{SQS_XMLNS}MD5OfMessageBody").text == hashlib.md5(body.encode()).hexdigest()
    expected_attrs = {"kind": {"DataType": "String", "StringValue": "spot"}, "raw": {"DataType": "Binary", "BinaryValue": b"\x00\xff"}}
    assert result.find(f"{SQS_XMLNS}MD5OfMessageAttributes").text == md5_of_attributes(expected_attrs)
    message_id = result.find(f"{SQS_XMLNS}MessageId").text

    # The queue URL as the request path, as old clients send it.
    status, root = query(
        server,
        f"/{ACCOUNT}/legacy",
        {"Action": "ReceiveMessage", "Version": "2012-11-05", "AttributeName.1": "All", "MessageAttributeName.1": "All", "MaxNumberOfMessages": "5"},
    )
    assert status == 200
    msgs = root.findall(f"{SQS_XMLNS}ReceiveMessageResult/{SQS_XMLNS}Message")
    assert len(msgs) == 1
    m = msgs[0]
    assert m.find(f"{SQS_XMLNS}MessageId").text == message_id
    assert m.find(f"{SQS_XMLNS}Body").text == body
    sys_attrs = {a.find(f"{SQS_XMLNS}Name").text: a.find(f"{SQS_XMLNS}Value").text for a in m.findall(f"{SQS_XMLNS}Attribute")}
    assert sys_attrs["ApproximateReceiveCount"] == "1" and sys_attrs["SentTimestamp"] == str(server.now_ms())
    user = {a.find(f"{SQS_XMLNS}Name").text: a.find(f"{SQS_XMLNS}Value") for a in m.findall(f"{SQS_XMLNS}MessageAttribute")}
    assert user["kind"].find(f"{SQS_XMLNS}StringValue").text == "spot"
    assert base64.b64decode(user["raw"].find(f"{SQS_XMLNS}BinaryValue").text) == b"\x00\xff"
    handle = m.find(f"{SQS_XMLNS}ReceiptHandle").text

    status, root = query(server, "/", {"Action": "DeleteMessage", "Version": "2012-11-05", "QueueUrl": url, "ReceiptHandle": handle})
    assert status == 200 and root.tag == f"{SQS_XMLNS}DeleteMessageResponse"
    status, root = query(server, "/", {"Action": "GetQueueAttributes", "Version": "2012-11-05", "QueueUrl": url, "AttributeName.1": "All"})
    attrs = {a.find(f"{SQS_XMLNS}Name").text: a.find(f"{SQS_XMLNS}Value").text for a in root.iter(f"{SQS_XMLNS}Attribute")}
    assert attrs["VisibilityTimeout"] == "15" and attrs["ApproximateNumberOfMessages"] == "0"

    status, root = query(server, "/", {"Action": "GetQueueUrl", "Version": "2012-11-05", "QueueName": "nope"})
    assert status == 400 and root.tag == f"{SQS_XMLNS}ErrorResponse"
    err = root.find(f"{SQS_XMLNS}Error")
    assert err.find(f"{SQS_XMLNS}Type").text == "Sender"
    assert err.find(f"{SQS_XMLNS}Code").text == "AWS.SimpleQueueService.NonExistentQueue"
    assert root.find(f"{SQS_XMLNS}RequestId").text


# The Query-protocol member names of the SQS smithy model (`xmlName` + `xmlFlattened` traits, which
# the current botocore JSON model no longer carries): with them, today's botocore can be turned back
# into a Query client, as SDKs older than the JSON switch are (botocore < 1.31.82).
QUERY_XML_NAMES = {
    ("ChangeMessageVisibilityBatchRequest", "Entries"): "ChangeMessageVisibilityBatchRequestEntry",
    ("ChangeMessageVisibilityBatchResult", "Successful"): "ChangeMessageVisibilityBatchResultEntry",
    ("ChangeMessageVisibilityBatchResult", "Failed"): "BatchResultErrorEntry",
    ("CreateQueueRequest", "Attributes"): "Attribute",
    ("CreateQueueRequest", "tags"): "Tag",
    ("DeleteMessageBatchRequest", "Entries"): "DeleteMessageBatchRequestEntry",
    ("DeleteMessageBatchResult", "Successful"): "DeleteMessageBatchResultEntry",
    ("DeleteMessageBatchResult", "Failed"): "BatchResultErrorEntry",
    ("GetQueueAttributesRequest", "AttributeNames"): "AttributeName",
    ("GetQueueAttributesResult", "Attributes"): "Attribute",
    ("ListDeadLetterSourceQueuesResult", "queueUrls"): "QueueUrl",
    ("ListQueueTagsResult", "Tags"): "Tag",
    ("ListQueuesResult", "QueueUrls"): "QueueUrl",
    ("Message", "Attributes"): "Attribute",
    ("Message", "MessageAttributes"): "MessageAttribute",
    ("ReceiveMessageRequest", "AttributeNames"): "AttributeName",
    ("ReceiveMessageRequest", "MessageSystemAttributeNames"): "AttributeName",
    ("ReceiveMessageRequest", "MessageAttributeNames"): "MessageAttributeName",
    ("ReceiveMessageResult", "Messages"): "Message",
    ("SendMessageBatchRequest", "Entries"): "SendMessageBatchRequestEntry",
    ("SendMessageBatchRequestEntry", "MessageAttributes"): "MessageAttribute",
    ("SendMessageBatchResult", "Successful"): "SendMessageBatchResultEntry",
    ("SendMessageBatchResult", "Failed"): "BatchResultErrorEntry",
    ("SendMessageRequest", "MessageAttributes"): "MessageAttribute",
    ("SetQueueAttributesRequest", "Attributes"): "Attribute",
    ("TagQueueRequest", "Tags"): "Tag",
    ("UntagQueueRequest", "TagKeys"): "TagKey",
}
QUERY_MAP_KEYS = {
    "QueueAttributeMap": ("Name", "Value"),
    "MessageBodyAttributeMap": ("Name", "Value"),
    "MessageSystemAttributeMap": ("Name", "Value"),
    "TagMap": ("Key", "Value"),
}


@pytest.fixture
def sqs_query(server, tmp_path):
    """A botocore SQS client speaking the Query protocol (form requests, XML answers)."""
    import botocore.session

    current = botocore.session.get_session().get_component("data_loader").load_service_model("sqs", "service-2")
    model = json.loads(json.dumps(current))
    model["metadata"].update(protocol="query", protocols=["query"], xmlNamespace=SQS_XMLNS.strip("{}"))
    for name, op in model["operations"].items():
        if "output" in op:
            op["output"]["resultWrapper"] = f"{name}Result"
    for (shape, member), xml_name in QUERY_XML_NAMES.items():
        model["shapes"][shape]["members"][member].update(locationName=xml_name, flattened=True)
    for shape, (key, value) in QUERY_MAP_KEYS.items():
        model["shapes"][shape]["key"]["locationName"] = key
        model["shapes"][shape]["value"]["locationName"] = value
    target = tmp_path / "models" / "sqs" / model["metadata"]["apiVersion"]
    target.mkdir(parents=True)
    (target / "service-2.json").write_text(json.dumps(model))
    session = botocore.session.get_session()
    session.get_component("data_loader").search_paths.insert(0, str(tmp_path / "models"))
    client = session.create_client(
        "sqs",
        region_name=REGION,
        endpoint_url=server.endpoint,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        config=Config(retries=NO_RETRIES, connect_timeout=5, read_timeout=30),
    )
    assert client._service_model.protocol == "query"
    return client


def test_botocore_as_a_query_protocol_client(server, sqs_query):
    c = sqs_query
    url = c.create_queue(QueueName="old-sdk", Attributes={"VisibilityTimeout": "10"}, tags={"team": "infra"})["QueueUrl"]
    assert url == f"{server.endpoint}/{ACCOUNT}/old-sdk"
    assert url in c.list_queues()["QueueUrls"]
    assert c.get_queue_attributes(QueueUrl=url, AttributeNames=["VisibilityTimeout"])["Attributes"] == {"VisibilityTimeout": "10"}
    assert c.list_queue_tags(QueueUrl=url)["Tags"] == {"team": "infra"}
    body = "carriage\r\nreturns survive XML"
    attrs = {"k": {"DataType": "String", "StringValue": "v"}, "b": {"DataType": "Binary", "BinaryValue": b"\x00\x01"}}
    sent = c.send_message(QueueUrl=url, MessageBody=body, MessageAttributes=attrs)
    assert sent["MD5OfMessageAttributes"] == md5_of_attributes(attrs)
    batch = c.send_message_batch(
        QueueUrl=url,
        Entries=[
            {"Id": "1", "MessageBody": "a"},
            {"Id": "2", "MessageBody": "b", "MessageAttributes": {"n": {"DataType": "Number", "StringValue": "x"}}},
        ],
    )
    assert [e["Id"] for e in batch["Successful"]] == ["1"]
    assert batch["Failed"][0]["Code"] == "InvalidParameterValue" and batch["Failed"][0]["SenderFault"] is True
    got = c.receive_message(QueueUrl=url, MaxNumberOfMessages=10, MessageSystemAttributeNames=["All"], MessageAttributeNames=["All"])
    first = next(m for m in got["Messages"] if m["MessageId"] == sent["MessageId"])
    assert first["Body"] == body
    assert first["MD5OfBody"] == hashlib.md5(body.encode()).hexdigest()
    assert first["MessageAttributes"] == attrs
    assert first["Attributes"]["ApproximateReceiveCount"] == "1"
    cmv = c.change_message_visibility_batch(
        QueueUrl=url, Entries=[{"Id": "x", "ReceiptHandle": first["ReceiptHandle"], "VisibilityTimeout": 0}]
    )
    assert [e["Id"] for e in cmv["Successful"]] == ["x"]
    again = c.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    deleted = c.delete_message_batch(QueueUrl=url, Entries=[{"Id": f"d{i}", "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(again)])
    assert len(deleted["Successful"]) == len(again) and deleted.get("Failed", []) == []
    c.purge_queue(QueueUrl=url)
    c.delete_queue(QueueUrl=url)
    with pytest.raises(c.exceptions.ClientError) as e:
        c.get_queue_url(QueueName="old-sdk")
    assert error_of(e)[:2] == ("AWS.SimpleQueueService.NonExistentQueue", 400)
    assert e.value.response["Error"]["Type"] == "Sender"
