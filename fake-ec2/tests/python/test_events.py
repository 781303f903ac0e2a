"""Interruption events through boto3 and the AWS CLI: a spot instance is interrupted with the
`fake-ec2 interrupt` CLI, and the EventBridge messages Karpenter acts on arrive in its queue
(`karpenter-interruption`, fed by the five rules of the default world). The clock is manual and
moved with `fake-ec2 clock --advance`; `--event-log` writes the same log the admin API serves."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from datetime import datetime

import pytest

from support import AMI_X86, SUBNETS, FakeEc2, aws_cli, binary_path, ec2_client
from test_sqs import sqs_client

QUEUE = "karpenter-interruption"


@pytest.fixture
def logged_server(tmp_path):
    log = tmp_path / "events.jsonl"
    s = FakeEc2(extra_args=("--event-log", str(log)))
    s.event_log = log
    yield s
    s.stop()


def cli(server, *args: str) -> str:
    proc = subprocess.run(
        [str(binary_path()), args[0], "--endpoint", server.endpoint, *args[1:]],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def receive(sqs, url: str, n: int, timeout: float = 10.0) -> list[dict]:
    """Karpenter's receive loop (10 messages, 20 s visibility; a short wait here), deleting what it
    handled, until `n` messages arrived."""
    out: list[dict] = []
    deadline = time.monotonic() + timeout
    while len(out) < n and time.monotonic() < deadline:
        r = sqs.receive_message(
            QueueUrl=url,
            MaxNumberOfMessages=10,
            VisibilityTimeout=20,
            WaitTimeSeconds=1,
            AttributeNames=["SentTimestamp"],
            MessageAttributeNames=["All"],
        )
        for m in r.get("Messages", []):
            out.append(json.loads(m["Body"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
    assert len(out) == n, out
    return out


def launch_spot(ec2) -> str:
    r = ec2.run_instances(
        ImageId=AMI_X86,
        InstanceType="m5.large",
        MinCount=1,
        MaxCount=1,
        SubnetId=SUBNETS["us-west-2a"],
        InstanceMarketOptions={"MarketType": "spot", "SpotOptions": {"InstanceInterruptionBehavior": "terminate"}},
    )
    return r["Instances"][0]["InstanceId"]


def test_boto3_consumes_an_interruption_warning(logged_server):
    s = logged_server
    ec2, sqs = ec2_client(s.endpoint), sqs_client(s.endpoint)
    url = sqs.get_queue_url(QueueName=QUEUE)["QueueUrl"]
    iid = launch_spot(ec2)
    cli(s, "clock", "--advance", "15")
    states = receive(sqs, url, 2)
    assert [(e["detail"]["instance-id"], e["detail"]["state"]) for e in states] == [(iid, "pending"), (iid, "running")]

    out = json.loads(cli(s, "interrupt", iid))
    assert out["interrupted"][0]["instance_id"] == iid
    rebalance, warning = receive(sqs, url, 2)
    assert rebalance["detail-type"] == "EC2 Instance Rebalance Recommendation"
    assert warning["version"] == "0"
    assert warning["source"] == "aws.ec2"
    assert warning["detail-type"] == "EC2 Spot Instance Interruption Warning"
    assert warning["detail"] == {"instance-id": iid, "instance-action": "terminate"}
    assert warning["resources"] == [f"arn:aws:ec2:us-west-2:123456789012:instance/{iid}"]
    assert datetime.fromisoformat(warning["time"].replace("Z", "+00:00")).isoformat() == "2026-01-01T00:00:15+00:00"
    assert list(warning) == ["version", "id", "detail-type", "source", "account", "time", "region", "resources", "detail"]

    cli(s, "clock", "--advance", "120")
    (gone,) = receive(sqs, url, 1)
    assert gone["detail"] == {"instance-id": iid, "state": "shutting-down"}
    state = json.loads(cli(s, "state"))
    assert state["instances"] == {"shutting-down": 1}

    served = cli(s, "events")
    assert len(served.splitlines()) == 5
    assert s.event_log.read_text() == served


def test_no_rebalance_and_a_health_event(server):
    ec2, sqs = ec2_client(server.endpoint), sqs_client(server.endpoint)
    url = sqs.get_queue_url(QueueName=QUEUE)["QueueUrl"]
    iid = launch_spot(ec2)
    receive(sqs, url, 1)
    cli(server, "interrupt", "--no-rebalance", iid)
    (warning,) = receive(sqs, url, 1)
    assert warning["detail-type"] == "EC2 Spot Instance Interruption Warning"
    cli(server, "health-event", "--start-in-seconds", "3600", iid)
    (health,) = receive(sqs, url, 1)
    assert health["source"] == "aws.health"
    assert health["detail"]["service"] == "EC2"
    assert health["detail"]["eventTypeCategory"] == "scheduledChange"
    assert health["detail"]["affectedEntities"] == [{"entityValue": iid}]
    # Interrupting an on-demand instance is refused, and the CLI says why.
    od = ec2.run_instances(ImageId=AMI_X86, InstanceType="m5.large", MinCount=1, MaxCount=1,
                           SubnetId=SUBNETS["us-west-2a"])["Instances"][0]["InstanceId"]
    proc = subprocess.run([str(binary_path()), "interrupt", "--endpoint", server.endpoint, od],
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode != 0
    assert "not a spot instance" in proc.stderr


def test_aws_cli_receives_the_warning(server, tmp_path):
    ec2 = ec2_client(server.endpoint)
    iid = launch_spot(ec2)
    server.post("/_fake/interrupt", {"instance_ids": [iid], "rebalance": False})
    url = f"{server.endpoint}/123456789012/{QUEUE}"
    out = aws_cli(server.endpoint, tmp_path).json(
        "sqs", "receive-message", "--queue-url", url,
        "--max-number-of-messages", "10", "--visibility-timeout", "20", "--wait-time-seconds", "1",
    )
    bodies = [json.loads(m["Body"]) for m in out["Messages"]]
    assert [b["detail-type"] for b in bodies] == [
        "EC2 Instance State-change Notification",
        "EC2 Spot Instance Interruption Warning",
    ]
    assert bodies[1]["detail"]["instance-id"] == iid


@pytest.fixture
def moto_sqs(tmp_path):
    """A moto_server on a free port, as an external SQS endpoint."""
    exe = shutil.which("moto_server")
    if exe is None:
        pytest.fail("moto_server is not installed: run `make setup` (pip install 'moto[server]')")
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    log = open(tmp_path / "moto.log", "w")
    proc = subprocess.Popen([exe, "-H", "127.0.0.1", "-p", str(port)], stdout=log, stderr=subprocess.STDOUT)
    endpoint = f"http://127.0.0.1:{port}"
    try:
        client = sqs_client(endpoint)
        from support import wait_for

        wait_for(lambda: client.list_queues() is not None, 30.0, "moto_server to answer")
        yield client
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        log.close()


def interruption_warning_via(server, sqs, url: str, rule: str, timeout: float) -> tuple[str, dict]:
    """Routes spot interruption warnings to the queue at `url` (on another SQS endpoint, reached
    through `sqs`) with a rule named `rule`, interrupts a fresh spot instance and returns its id
    and the one warning that arrived there."""
    server.post(
        "/_fake/events/rules",
        {"name": rule, "pattern": {"source": ["aws.ec2"], "detail-type": ["EC2 Spot Instance Interruption Warning"]},
         "targets": [url]},
    )
    iid = launch_spot(ec2_client(server.endpoint))
    server.post("/_fake/interrupt", {"instance_ids": [iid]})
    (warning,) = receive(sqs, url, 1, timeout=timeout)
    return iid, warning


def test_events_forwarded_to_a_moto_server_queue(server, moto_sqs):
    url = moto_sqs.create_queue(QueueName="karpenter-interruption-moto")["QueueUrl"]
    iid, warning = interruption_warning_via(server, moto_sqs, url, "ToMoto", timeout=20.0)
    assert warning["detail-type"] == "EC2 Spot Instance Interruption Warning"
    assert warning["detail"] == {"instance-id": iid, "instance-action": "terminate"}
    assert list(warning) == ["version", "id", "detail-type", "source", "account", "time", "region", "resources", "detail"]
