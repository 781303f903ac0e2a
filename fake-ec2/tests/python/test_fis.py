"""AWS FIS through boto3's `fis` client and the `fake-ec2 experiment` CLI: templates, experiments
that interrupt spot instances on the clock, stopping them, and FIS's errors."""

from __future__ import annotations

import json
import subprocess

import boto3
import pytest
from botocore.config import Config

from support import (
    ACCESS_KEY,
    AWS_CLI,
    REGION,
    REPO,
    SECRET_KEY,
    aws_cli,
    binary_path,
    create_launch_template,
    ec2_client,
    error_of,
    fleet_instance_ids,
    karpenter_fleet,
    override,
)

FIXTURES = REPO / "fixtures" / "fis"


def fis_client(endpoint: str):
    return boto3.client(
        "fis",
        region_name=REGION,
        endpoint_url=endpoint,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        config=Config(retries={"max_attempts": 1, "mode": "standard"}, connect_timeout=5, read_timeout=30),
    )


def template(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text())


def launch_spot(server, n: int) -> list[str]:
    ec2 = ec2_client(server.endpoint)
    create_launch_template(ec2)
    resp = ec2.create_fleet(**karpenter_fleet("karpenter-default", [override("m5.large", "us-west-2a")], capacity=n))
    ids = fleet_instance_ids(resp)
    assert len(ids) == n, resp.get("Errors")
    server.advance(15)
    return ids


def test_create_start_get_stop_with_boto3(server):
    ids = launch_spot(server, 4)
    fis = fis_client(server.endpoint)
    t = template("spot-interrupt-50-percent.json")
    # Wait before interrupting, so the experiment is still running when we stop it.
    t["actions"]["pause"] = {"actionId": "aws:fis:wait", "parameters": {"duration": "PT5M"}}
    t["actions"]["interrupt"]["startAfter"] = ["pause"]
    created = fis.create_experiment_template(**t)["experimentTemplate"]
    assert created["id"].startswith("EXT")
    assert created["arn"].endswith(f":experiment-template/{created['id']}")
    assert created["targets"]["NodePoolSpotInstances"]["selectionMode"] == "PERCENT(50)"
    assert fis.get_experiment_template(id=created["id"])["experimentTemplate"]["actions"].keys() == {"pause", "interrupt"}
    assert [s["id"] for s in fis.list_experiment_templates()["experimentTemplates"]] == [created["id"]]

    exp = fis.start_experiment(experimentTemplateId=created["id"], tags={"run": "1"})["experiment"]
    assert exp["state"]["status"] == "initiating"
    got = fis.get_experiment(id=exp["id"])["experiment"]
    assert got["state"]["status"] == "running"
    assert got["actions"]["pause"]["state"]["status"] == "running"
    assert got["actions"]["interrupt"]["state"]["status"] == "pending"
    assert got["tags"] == {"run": "1"}
    resolved = fis.list_experiment_resolved_targets(experimentId=exp["id"])["resolvedTargets"]
    hit = [r["targetInformation"]["identifier"].rsplit("/", 1)[1] for r in resolved]
    assert len(hit) == 2 and set(hit) <= set(ids)

    stopping = fis.stop_experiment(id=exp["id"])["experiment"]
    assert stopping["state"]["status"] == "stopping"
    got = fis.get_experiment(id=exp["id"])["experiment"]
    assert got["state"]["status"] == "stopped"
    assert got["actions"]["pause"]["state"]["status"] == "stopped"
    assert got["actions"]["interrupt"]["state"]["status"] == "cancelled"
    assert "endTime" in got
    listed = fis.list_experiments()["experiments"]
    assert [(e["id"], e["state"]["status"]) for e in listed] == [(exp["id"], "stopped")]
    server.advance(600)
    states = {i["id"]: i["state"] for i in server.instances()}
    assert all(states[i] == "running" for i in ids), "a stopped experiment interrupts nothing"


def test_the_interruption_runs_on_the_clock(server):
    ids = launch_spot(server, 4)
    fis = fis_client(server.endpoint)
    t = template("spot-interrupt-50-percent.json")
    t["actions"]["interrupt"]["parameters"]["durationBeforeInterruption"] = "PT3M"
    tid = fis.create_experiment_template(**t)["experimentTemplate"]["id"]
    exp_id = fis.start_experiment(experimentTemplateId=tid)["experiment"]["id"]
    assert fis.get_experiment(id=exp_id)["experiment"]["state"]["status"] == "running"
    server.advance(60)
    got = fis.get_experiment(id=exp_id)["experiment"]
    assert got["state"]["status"] == "completed", "the action completes when the warning goes out"
    assert got["actions"]["interrupt"]["endTime"] > got["actions"]["interrupt"]["startTime"]
    server.advance(130)
    states = {i["id"]: i["state"] for i in server.instances()}
    assert sorted(states[i] for i in ids) == ["running", "running", "terminated", "terminated"]


def test_fis_errors_are_fis_shaped(server):
    fis = fis_client(server.endpoint)
    t = template("spot-interrupt-50-percent.json")
    t["targets"]["NodePoolSpotInstances"]["selectionMode"] = "PERCENT(500)"
    with pytest.raises(fis.exceptions.ValidationException) as e:
        fis.create_experiment_template(**t)
    assert error_of(e)[:2] == ("ValidationException", 400)
    with pytest.raises(fis.exceptions.ResourceNotFoundException):
        fis.get_experiment(id="EXPdoesnotexist")
    with pytest.raises(fis.exceptions.ResourceNotFoundException):
        fis.start_experiment(experimentTemplateId="EXTdoesnotexist")


def cli(server, *args: str) -> dict:
    proc = subprocess.run(
        [str(binary_path()), "experiment", *args, "--endpoint", server.endpoint],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_cli_starts_an_experiment_from_a_template_file(server):
    ids = launch_spot(server, 6)
    exp = cli(server, "start", "--template", str(FIXTURES / "spot-interrupt-50-percent.json"))
    assert exp["state"]["status"] == "completed"
    hit = exp["resolvedTargets"]["NodePoolSpotInstances"]
    assert len(hit) == 3 and set(hit) <= set(ids)
    assert exp["actionHits"]["interrupt"] == hit
    assert cli(server, "get", exp["id"])["id"] == exp["id"]
    assert [e["id"] for e in cli(server, "list")] == [exp["id"]]

    throttle = cli(server, "start", "--template", str(FIXTURES / "api-throttle-1m.json"))
    assert throttle["state"]["status"] == "running"
    faults = server.get("/_fake/faults")
    assert [(f["code"], f["percentage"], f["source"]) for f in faults] == [
        ("RequestLimitExceeded", 50.0, f"{throttle['id']}/throttle")
    ]
    server.advance(60)
    assert cli(server, "get", throttle["id"])["state"]["status"] == "completed"
    assert server.get("/_fake/faults") == []


def test_admin_faults_in_ec2s_envelope(server):
    ec2 = ec2_client(server.endpoint)
    fault = server.post("/_fake/faults", {"operations": ["DescribeInstances"], "code": "InternalError"})
    assert fault["status"] == 500
    with pytest.raises(ec2.exceptions.ClientError) as e:
        ec2.describe_instances()
    code, status, _ = error_of(e)
    assert (code, status) == ("InternalError", 500)
    assert e.value.response["ResponseMetadata"]["RequestId"]
    ec2.describe_availability_zones()
    assert server.get("/_fake/faults")[0]["hits"] == 1
    server._request("DELETE", "/_fake/faults")
    ec2.describe_instances()


def test_aws_cli_runs_an_experiment(server, tmp_path):
    launch_spot(server, 2)
    cli = aws_cli(server.endpoint, tmp_path)

    def aws(*args: str) -> dict:
        return cli.json("fis", *args)

    path = FIXTURES / "spot-interrupt-50-percent.json"
    tid = aws("create-experiment-template", "--cli-input-json", f"file://{path}")["experimentTemplate"]["id"]
    exp = aws("start-experiment", "--experiment-template-id", tid)["experiment"]
    assert exp["state"]["status"] == "initiating"
    assert aws("get-experiment", "--id", exp["id"])["experiment"]["state"]["status"] == "completed"
    resolved = aws("list-experiment-resolved-targets", "--experiment-id", exp["id"])["resolvedTargets"]
    assert len(resolved) == 1
