"""A running fake-ec2 process, its admin API, AWS clients for it and the default world's facts.

Every server runs the default world with a fixed seed and, unless a test asks for the real clock, a
manual clock starting at 2026-01-01T00:00:00Z, so world time moves only when a test advances it
through the admin API: instance lifecycles, spot prices and throttling buckets are deterministic.

The binary is `$FAKE_EC2_BIN`, else `$CARGO_TARGET_DIR/debug/fake-ec2`, else
`~/.cache/spotbench/target/debug/fake-ec2` (`make build` puts it there).
"""

from __future__ import annotations

import atexit
import json
import os
import select
import shutil
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Callable

import boto3
import pytest
from botocore.config import Config

REPO = Path(__file__).resolve().parents[3]
WORLD = REPO / "fixtures" / "worlds" / "default.yaml"
SEED = 1
REGION = "us-west-2"
ACCESS_KEY = "AKIAFAKEEC2TESTKEY01"
SECRET_KEY = "fake-ec2-test-secret-key"
START_TIMEOUT_S = 20.0
EC2_XMLNS = "http://ec2.amazonaws.com/doc/2016-11-15/"

# What the default world holds (fixtures/worlds/default.yaml).
# The default world serves the whole built-in catalog, so its size is the fixture file's length.
CATALOG_SIZE = len(json.loads((REPO / "fixtures" / "catalog" / "ec2-instance-types-us-west-2.json").read_text()))
ZONES = ["us-west-2a", "us-west-2b", "us-west-2c"]
ZONE_IDS = {"us-west-2a": "usw2-az1", "us-west-2b": "usw2-az2", "us-west-2c": "usw2-az3"}
SUBNETS = {
    "us-west-2a": "subnet-0a1a1a1a1a1a1a1a1",
    "us-west-2b": "subnet-0b2b2b2b2b2b2b2b2",
    "us-west-2c": "subnet-0c3c3c3c3c3c3c3c3",
}
SECURITY_GROUPS = ["sg-0123456789abcdef0", "sg-0fedcba9876543210"]
AMI_X86 = "ami-0a0b0c0d0e0f10111"
AMI_ARM = "ami-0a0b0c0d0e0f20222"
VPC_ID = "vpc-0a1b2c3d4e5f60718"


def wait_for(condition: Callable[[], Any], timeout: float, what: str, interval: float = 0.02) -> Any:
    """Polls `condition` until it returns something truthy or `timeout` seconds pass."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while True:
        try:
            value = condition()
            if value:
                return value
        except Exception as e:  # noqa: BLE001 - the condition may fail until it holds
            last_error = e
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what} (last error: {last_error!r})")
        time.sleep(interval)


_RUNNING: set["FakeEc2"] = set()


def _die_with_parent() -> None:
    """In the child, before exec: on Linux, get SIGTERM when the test process dies, so a crashed or
    killed pytest never leaves servers behind."""
    try:
        import ctypes
        import signal

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except Exception:  # noqa: BLE001 - best effort; not Linux or no libc
        pass


@atexit.register
def _stop_all() -> None:
    for server in list(_RUNNING):
        server.stop()


def binary_path() -> Path:
    if os.environ.get("FAKE_EC2_BIN"):
        return Path(os.environ["FAKE_EC2_BIN"])
    if os.environ.get("CARGO_TARGET_DIR"):
        return Path(os.environ["CARGO_TARGET_DIR"]) / "debug" / "fake-ec2"
    return Path.home() / ".cache" / "spotbench" / "target" / "debug" / "fake-ec2"


class FakeEc2:
    """One running fake-ec2 process and a small client for its admin API."""

    def __init__(self, extra_args: tuple[str, ...] = (), clock: str = "manual") -> None:
        binary = binary_path()
        if not (binary.is_file() and os.access(binary, os.X_OK)):
            pytest.fail(
                f"fake-ec2 binary not found at {binary}. Build it with "
                "`CARGO_TARGET_DIR=$HOME/.cache/spotbench/target cargo build -p fake-ec2` (or `make build`), "
                "or point FAKE_EC2_BIN at it.",
                pytrace=False,
            )
        self.log = tempfile.NamedTemporaryFile(prefix="fake-ec2-", suffix=".log", delete=False)
        args = [
            str(binary),
            "serve",
            "--world",
            str(WORLD),
            "--seed",
            str(SEED),
            "--listen",
            "127.0.0.1:0",
            "--clock",
            clock,
            *extra_args,
        ]
        self.proc = subprocess.Popen(
            args,
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=self.log,
            stdin=subprocess.DEVNULL,
            text=True,
            preexec_fn=_die_with_parent,
        )
        _RUNNING.add(self)
        try:
            self.endpoint = self._read_endpoint()
            wait_for(self._healthy, START_TIMEOUT_S, f"{self.endpoint}/_fake/health")
        except BaseException:
            self.stop()
            raise

    def _read_endpoint(self) -> str:
        assert self.proc.stdout is not None
        deadline = time.monotonic() + START_TIMEOUT_S
        prefix = "fake-ec2 listening on "
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"fake-ec2 exited with {self.proc.returncode} before listening:\n{self.logs()}")
            ready, _, _ = select.select([self.proc.stdout], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                continue
            line = self.proc.stdout.readline()
            if line.startswith(prefix):
                return line[len(prefix) :].strip()
            if line == "" and self.proc.poll() is not None:
                continue
        raise TimeoutError(f"fake-ec2 did not print its endpoint within {START_TIMEOUT_S}s:\n{self.logs()}")

    def _healthy(self) -> bool:
        return self.get("/_fake/health").get("status") == "ok"

    def logs(self) -> str:
        try:
            return Path(self.log.name).read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    def stop(self) -> None:
        _RUNNING.discard(self)
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        if self.proc.stdout:
            self.proc.stdout.close()
        self.log.close()
        try:
            os.unlink(self.log.name)
        except OSError:
            pass

    # -- admin API -------------------------------------------------------------------------------

    def _request(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.endpoint + path, data=data, method=method)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                return json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as e:
            raise AssertionError(f"admin {method} {path} -> {e.code}: {e.read().decode(errors='replace')}") from e

    def get(self, path: str) -> Any:
        return self._request("GET", path)

    def post(self, path: str, body: Any) -> Any:
        return self._request("POST", path, body)

    def advance(self, seconds: float) -> dict:
        return self.post("/_fake/clock", {"advance_seconds": seconds})

    def now_ms(self) -> int:
        return self.get("/_fake/state")["clock"]["now_ms"]

    def pools(self, instance_type: str | None = None, zone: str | None = None) -> list[dict]:
        q = []
        if instance_type:
            q.append(f"instance_type={instance_type}")
        if zone:
            q.append(f"zone={zone}")
        return self.get("/_fake/pools" + ("?" + "&".join(q) if q else ""))

    def set_pool(self, instance_type: str, zone: str, capacity_type: str = "spot", capacity: int | None = None,
                 spot_price: float | None = None) -> dict:
        body: dict[str, Any] = {"instance_type": instance_type, "zone": zone, "capacity_type": capacity_type}
        if capacity is not None:
            body["capacity"] = capacity
        if spot_price is not None:
            body["spot_price"] = spot_price
        return self.post("/_fake/pools", body)

    def set_quotas(self, **quotas: int | None) -> dict:
        return self.post("/_fake/quotas", quotas)

    def throttling(self, mode: str, scale: float = 1.0) -> dict:
        return self.post("/_fake/throttling", {"mode": mode, "scale": scale})

    def set_status(self, instance_id: str, **flags: bool) -> dict:
        return self.post(f"/_fake/instances/{instance_id}/status", flags)

    def instances(self) -> list[dict]:
        return self.get("/_fake/instances")


# botocore reads `retries={"max_attempts": N}` as N *retries* after the first attempt, so
# `max_attempts: 1` would still retry throttling and 5xx once; `total_max_attempts: 1` means one
# attempt and no retry, so every error reaches the test exactly as the server sent it.
NO_RETRIES = {"total_max_attempts": 1}


def aws_client(service: str, endpoint: str, region: str = REGION):
    """A boto3 client of `service` pointed at `endpoint`, with the test keys and no retries."""
    return boto3.client(
        service,
        region_name=region,
        endpoint_url=endpoint,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        config=Config(retries=NO_RETRIES, connect_timeout=5, read_timeout=30),
    )


def ec2_client(endpoint: str, region: str = REGION):
    return aws_client("ec2", endpoint, region)


def pricing_client(endpoint: str):
    return aws_client("pricing", endpoint, "us-east-1")


# -- the AWS CLI -----------------------------------------------------------------------------------

AWS_CLI = shutil.which("aws")


def aws_cli(endpoint: str, home: Path) -> Callable[..., subprocess.CompletedProcess]:
    """`run(service, *args, check=True)` runs the real `aws` executable against `endpoint` in a clean
    environment (dummy credentials, the region, no config or credentials files, no retries), so what
    the CLI prints is exactly what fake-ec2 answered; `run.json(service, *args)` parses its output.
    `make setup` installs the CLI: without it the test fails (it is not an optional capability)."""
    if AWS_CLI is None:
        pytest.fail("the AWS CLI (`aws`) is not installed: run `make setup`")
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "AWS_ACCESS_KEY_ID": "AKIAFAKEEC2CLITEST01",
        "AWS_SECRET_ACCESS_KEY": "fake-ec2-cli-secret",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_CONFIG_FILE": str(home / "config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(home / "credentials"),
        "AWS_MAX_ATTEMPTS": "1",
        "AWS_RETRY_MODE": "standard",
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_PAGER": "",
    }
    for key in ("PYTHONPATH", "VIRTUAL_ENV", "LANG", "LC_ALL", "SSL_CERT_FILE"):
        if key in os.environ:
            env[key] = os.environ[key]

    def run(service: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        cmd = [str(AWS_CLI), "--endpoint-url", endpoint, "--output", "json", service, *args]
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60, cwd=home)
        if check and proc.returncode != 0:
            pytest.fail(f"{' '.join(cmd[3:])} exited {proc.returncode}:\n{proc.stderr}")
        return proc

    def run_json(service: str, *args: str):
        out = run(service, *args).stdout
        return json.loads(out) if out.strip() else None

    run.json = run_json  # type: ignore[attr-defined]
    return run


def ec2_cli(endpoint: str, home: Path) -> Callable[..., subprocess.CompletedProcess]:
    """[`aws_cli`] for `aws ec2`: `run("describe-instances", ...)`, `run.json(...)`."""
    cli = aws_cli(endpoint, home)

    def run(*args: str, check: bool = True) -> subprocess.CompletedProcess:
        return cli("ec2", *args, check=check)

    run.json = lambda *args: cli.json("ec2", *args)  # type: ignore[attr-defined]
    return run


# -- request builders and assertions shared by the suites -------------------------------------------


def error_of(excinfo) -> tuple[str, int, str]:
    """(code, HTTP status, message) of a botocore ClientError."""
    r = excinfo.value.response
    return r["Error"]["Code"], r["ResponseMetadata"]["HTTPStatusCode"], r["Error"].get("Message", "")


def create_launch_template(ec2, name: str = "karpenter-default", image_id: str = AMI_X86, **data: Any) -> dict:
    """A launch template shaped like the ones Karpenter creates (no instance type, no subnet)."""
    template = {
        "ImageId": image_id,
        "SecurityGroupIds": SECURITY_GROUPS,
        "UserData": "IyEvYmluL2Jhc2gKZWNobyBoZWxsbwo=",
        "MetadataOptions": {"HttpTokens": "required", "HttpPutResponseHopLimit": 1, "HttpEndpoint": "enabled"},
        "BlockDeviceMappings": [{"DeviceName": "/dev/xvda", "Ebs": {"VolumeSize": 20, "VolumeType": "gp3"}}],
        "TagSpecifications": [{"ResourceType": "instance", "Tags": [{"Key": "from-template", "Value": "yes"}]}],
    }
    template.update(data)
    return ec2.create_launch_template(
        LaunchTemplateName=name,
        LaunchTemplateData=template,
        TagSpecifications=[{"ResourceType": "launch-template", "Tags": [{"Key": "karpenter.sh/nodepool", "Value": "default"}]}],
    )["LaunchTemplate"]


KARPENTER_TAGS = [
    {"Key": "karpenter.sh/nodepool", "Value": "default"},
    {"Key": "karpenter.k8s.aws/ec2nodeclass", "Value": "default"},
    {"Key": "kubernetes.io/cluster/fake-cluster", "Value": "owned"},
    {"Key": "Name", "Value": "default-abcde"},
]


def override(instance_type: str, zone: str, image_id: str = AMI_X86, priority: float | None = None) -> dict:
    o = {"InstanceType": instance_type, "SubnetId": SUBNETS[zone], "ImageId": image_id, "AvailabilityZone": zone}
    if priority is not None:
        o["Priority"] = priority
    return o


def karpenter_fleet(
    lt_name: str,
    overrides: list[dict],
    capacity: int = 1,
    capacity_type: str = "spot",
    strategy: str | None = None,
    tags: list[dict] = KARPENTER_TAGS,
) -> dict:
    """CreateFleet input exactly as Karpenter's instance provider builds it."""
    req: dict[str, Any] = {
        "Type": "instant",
        "LaunchTemplateConfigs": [
            {"LaunchTemplateSpecification": {"LaunchTemplateName": lt_name, "Version": "$Latest"}, "Overrides": overrides}
        ],
        "TargetCapacitySpecification": {"DefaultTargetCapacityType": capacity_type, "TotalTargetCapacity": capacity},
        "TagSpecifications": [
            {"ResourceType": "instance", "Tags": tags},
            {"ResourceType": "volume", "Tags": tags},
            {"ResourceType": "fleet", "Tags": tags},
        ],
    }
    if capacity_type == "spot":
        req["SpotOptions"] = {"AllocationStrategy": strategy or "price-capacity-optimized"}
    else:
        req["OnDemandOptions"] = {"AllocationStrategy": strategy or "lowest-price"}
    return req


def fleet_instance_ids(resp: dict) -> list[str]:
    return [i for group in resp.get("Instances", []) for i in group["InstanceIds"]]


def all_instances(ec2, **kwargs) -> list[dict]:
    out = []
    for page in ec2.get_paginator("describe_instances").paginate(**kwargs):
        for r in page["Reservations"]:
            out.extend(r["Instances"])
    return out


def tags_dict(tags: list[dict] | None) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in tags or []}
