#!/usr/bin/env python3
"""`make bench`: fake-ec2 against moto_server, side by side, on this machine, in this run.

First runs the Rust load driver (`cargo bench -p fake-ec2 --bench load -- --json`), which measures
fake-ec2 alone: an in-process server driven over HTTP (2 connections), and its handler without
HTTP. Then starts the fake-ec2 release binary (bench world: throttling off, no quotas, deep pools,
/16 subnets) and `moto_server`, both up at once but only one driven at any moment, and measures
each the same way, taking turns so that the machine's background load hits both alike:

  1. CreateFleet, type instant, in Karpenter's shape (launch template by name at $Latest, one spot
     instance, price-capacity-optimized, 3 types x 3 subnets of overrides): calls/s through boto3,
     and through a raw HTTP client (no botocore: closer to the server's own cost);
  2. populate to 1,000 instances (RunInstances batches of 500, raw HTTP on both), then a full
     DescribeInstances listing through the boto3 paginator (MaxResults=1000) and through raw HTTP
     following NextToken: median and p95 of a bounded number of runs;
  3. the same towards 10,000 instances. moto's RunInstances slows down as it holds more instances,
     so its populating is bounded in time (--moto-populate-secs); if it stops short, both are
     compared at the count moto reached, and fake-ec2 alone at 10,000;
  4. server RSS (VmRSS from /proc/PID/status) at each size, for both processes.

Every loop is bounded in count and in time; both servers are stopped at the end, error or not.
Writes bench/results.md (a table of metric, fake-ec2, moto, ratio, target, met?) and
bench/results.json. Performance is reported as ratios against moto in the same run; nothing here
asserts it.

Then the rows of bench/ec2_scale.py: both servers at 10,000 instances (CreateFleet, every
DescribeInstances page, TerminateInstances of 1,000, RSS) and a soak of fake-ec2 alone (one world
hour of Karpenter-like traffic on a scaled clock: RSS at start and end, requests, errors).

Usage: python3 bench/ec2_bench.py [--quick] [--no-build] [--skip-rust] [--out PREFIX]
       [--budget SECS] [--moto-populate-secs SECS] [--moto-scale-secs SECS] [--only pair,scale,soak]
(--only / BENCH_ONLY=scale,soak measures only those groups; the other rows keep their last values)
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.client
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from pathlib import Path

import boto3
import botocore
import botocore.config

REPO = Path(__file__).resolve().parent.parent
WORLD = REPO / "fixtures" / "worlds" / "bench.yaml"
REGION = "us-west-2"
AUTH = (
    "AWS4-HMAC-SHA256 Credential=test/20260101/us-west-2/ec2/aws4_request, "
    "SignedHeaders=host;x-amz-date, Signature=0"
)
TYPES = ["m5.large", "c5.large", "m6i.large"]
START = time.monotonic()


def log(msg: str) -> None:
    print(f"[{time.monotonic() - START:7.1f}s] {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------------
# Plans: how much to do, bounded in count and time.


def plan(quick: bool, moto_populate_secs: float) -> dict:
    """Counts and time bounds. `describe` is (boto3 runs, boto3 secs, raw runs, raw secs) per
    peer, for the small size and for the larger ones: a peer stops at whichever bound comes first,
    after at least one run."""
    if quick:
        return {
            "sizes": [200, 1000],
            "fleet_calls": {"fake-ec2": 60, "moto": 30},
            "fleet_secs": 10,
            "describe": {
                "small": {"fake-ec2": (5, 5, 5, 3), "moto": (2, 10, 2, 5)},
                "large": {"fake-ec2": (2, 10, 3, 5), "moto": (1, 0, 1, 0)},
            },
            "populate_secs": {"fake-ec2": 60, "moto": min(moto_populate_secs, 60)},
            "rust_args": ["--quick"],
        }
    return {
        "sizes": [1_000, 10_000],
        "fleet_calls": {"fake-ec2": 300, "moto": 150},
        "fleet_secs": 30,
        "describe": {
            "small": {"fake-ec2": (20, 15, 20, 5), "moto": (20, 12, 5, 8)},
            # Large listings: boto3 at least once each (botocore takes seconds to parse them);
            # moto's raw run only if time is left.
            "large": {"fake-ec2": (2, 10, 10, 5), "moto": (1, 0, 1, 0)},
        },
        # moto's RunInstances slows down as it holds more instances (each new instance scans all
        # of them), so moto's populating is bounded in time; if it stops short, fake-ec2 is also
        # measured at the count moto reached.
        "populate_secs": {"fake-ec2": 60, "moto": moto_populate_secs},
        "rust_args": [],
    }


# --------------------------------------------------------------------------------------------
# Servers.


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def target_dir() -> Path:
    return Path(os.environ.get("CARGO_TARGET_DIR") or Path.home() / ".cache/spotbench/target")


def rss_kib(pid: int) -> dict:
    out = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            k, _, v = line.partition(":")
            if k in ("VmRSS", "VmHWM"):
                out[k] = int(v.split()[0])
    except OSError:
        pass
    return out


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


class Server:
    def __init__(self, name: str, argv: list[str], logdir: Path, env: dict | None = None):
        self.name = name
        self.log_path = logdir / f"{name}.log"
        self.log = open(self.log_path, "wb")
        log(f"starting {name}: {' '.join(argv)}")
        self.proc = subprocess.Popen(
            argv,
            stdout=subprocess.PIPE,
            stderr=self.log,
            stdin=subprocess.DEVNULL,
            env=env,
            start_new_session=True,  # its own process group: stopped as one, never by name
        )
        self.url = ""

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.proc.wait(timeout=10)
        self.log.close()


def read_line(stream, timeout: float) -> str:
    """The first line of `stream`, or "" after `timeout` seconds."""
    box: list[str] = []
    t = threading.Thread(target=lambda: box.append(stream.readline().decode(errors="replace")), daemon=True)
    t.start()
    t.join(timeout)
    return box[0] if box else ""


def start_fake(binary: Path, logdir: Path, world: Path = WORLD, clock: tuple | list = ("--clock", "manual"),
               name: str = "fake-ec2") -> Server:
    s = Server(
        name,
        [str(binary), "serve", "--world", str(world), "--seed", "1", "--listen", "127.0.0.1:0", *clock],
        logdir,
    )
    line = read_line(s.proc.stdout, 30)
    m = re.search(r"listening on (http://\S+)", line)
    if not m:
        s.stop()
        raise RuntimeError(f"fake-ec2 did not announce its endpoint (got {line!r}); see {s.log_path}")
    s.url = m.group(1)
    # Nothing more is printed on stdout; drain it anyway so the pipe can never fill.
    threading.Thread(target=s.proc.stdout.read, daemon=True).start()
    return s


def start_moto(logdir: Path) -> Server:
    exe = shutil.which("moto_server")
    if not exe:
        raise RuntimeError("moto_server is not on PATH (pip install 'moto[server]')")
    port = free_port()
    s = Server("moto", [exe, "-H", "127.0.0.1", "-p", str(port)], logdir)
    s.url = f"http://127.0.0.1:{port}"
    threading.Thread(target=s.proc.stdout.read, daemon=True).start()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if s.proc.poll() is not None:
            raise RuntimeError(f"moto_server exited with {s.proc.returncode}; see {s.log_path}")
        try:
            status, _ = raw_post(s.url, {"Action": "DescribeRegions", "Version": "2016-11-15"}, timeout=5)
            if status == 200:
                return s
        except OSError:
            pass
        time.sleep(0.2)
    s.stop()
    raise RuntimeError("moto_server did not answer within 60 s")


def server_pid(s: Server) -> int:
    """The process that serves: moto_server may be a pyenv shim that execs (same pid) python."""
    return s.pid


# --------------------------------------------------------------------------------------------
# Clients.


def boto_client(url: str):
    cfg = botocore.config.Config(
        retries={"total_max_attempts": 1, "mode": "standard"},
        connect_timeout=10,
        read_timeout=600,
        max_pool_connections=4,
    )
    return boto3.client(
        "ec2",
        endpoint_url=url,
        region_name=REGION,
        aws_access_key_id="test",
        aws_secret_access_key="test",
        config=cfg,
    )


def raw_post(url: str, params: dict | list, timeout: float = 600) -> tuple[int, bytes]:
    """One EC2 Query POST with a SigV4-shaped header (neither server checks the signature)."""
    u = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=timeout)
    try:
        conn.request(
            "POST",
            "/",
            body=urllib.parse.urlencode(params),
            headers={
                "Authorization": AUTH,
                "X-Amz-Date": "20260101T000000Z",
                "Content-Type": "application/x-www-form-urlencoded; charset=utf-8",
            },
        )
        r = conn.getresponse()
        return r.status, r.read()
    finally:
        conn.close()


def stats(samples_s: list[float]) -> dict:
    ms = sorted(x * 1000 for x in samples_s)
    if not ms:
        return {"n": 0}
    def q(p: float) -> float:
        return ms[min(len(ms) - 1, round((len(ms) - 1) * p))]
    return {
        "n": len(ms),
        "min_ms": round(ms[0], 3),
        "p50_ms": round(statistics.median(ms), 3),
        "p95_ms": round(q(0.95), 3),
        "max_ms": round(ms[-1], 3),
        "mean_ms": round(statistics.fmean(ms), 3),
    }


class Job:
    """A measurement bounded in count and time: `fn` is timed up to `runs` times, stopping once
    the time spent in it passes `secs` (after at least `min_runs`); `chunk` calls per turn."""

    def __init__(self, fn, runs: int, secs: float, chunk: int = 1, min_runs: int = 1, result=None):
        self.fn, self.runs, self.secs, self.chunk, self.min_runs = fn, runs, secs, chunk, min_runs
        self.lat: list[float] = []
        self.spent = 0.0
        self._result = result

    def done(self) -> bool:
        n = len(self.lat)
        return n >= self.runs or (n >= self.min_runs and self.spent >= self.secs)

    def step(self) -> None:
        for _ in range(self.chunk):
            if self.done():
                return
            t = time.perf_counter()
            self.fn()
            d = time.perf_counter() - t
            self.lat.append(d)
            self.spent += d

    def result(self) -> dict:
        return {**(self._result(self) if self._result else {}), **stats(self.lat)}


def interleave(jobs: list[Job]) -> None:
    """Runs the jobs by turns, so a change in the machine's background load hits every peer alike."""
    while any(not j.done() for j in jobs):
        for j in jobs:
            if not j.done():
                j.step()


# --------------------------------------------------------------------------------------------
# One peer: setup, CreateFleet, populate, DescribeInstances, memory.


class Peer:
    def __init__(self, server: Server):
        self.name = server.name
        self.server = server
        self.url = server.url
        self.ec2 = boto_client(server.url)
        self.instances = 0  # instances we launched (nothing terminates in this run)
        self.batch = 0
        self.result: dict = {"endpoint": server.url, "pid": server.pid, "cmdline": cmdline(server.pid)}

    def setup(self) -> None:
        images = self.ec2.describe_images(Filters=[{"Name": "architecture", "Values": ["x86_64"]}])["Images"]
        if not images:
            raise RuntimeError(f"{self.name}: no x86_64 image")
        # moto ships hundreds of public AMIs; take an Amazon Linux one if there is one.
        images.sort(key=lambda i: (not (i.get("Name") or "").startswith("amzn"), i["ImageId"]))
        self.ami = images[0]["ImageId"]
        subnets = self.ec2.describe_subnets()["Subnets"]
        by_zone = {}
        for s in sorted(subnets, key=lambda s: (s["AvailabilityZone"], s["SubnetId"])):
            by_zone.setdefault(s["AvailabilityZone"], s)
        self.subnets = [(s["SubnetId"], s["AvailabilityZone"]) for s in list(by_zone.values())[:3]]
        if not self.subnets:
            raise RuntimeError(f"{self.name}: no subnets")
        groups = self.ec2.describe_security_groups()["SecurityGroups"]
        sg = [g["GroupId"] for g in groups[:1]]
        self.ec2.create_launch_template(
            LaunchTemplateName="bench",
            LaunchTemplateData={"ImageId": self.ami, "SecurityGroupIds": sg},
        )
        self.result.update({"ami": self.ami, "subnets": self.subnets, "security_groups": sg})
        # Warm both servers' DescribeInstances path (templates, imports) while it is cheap.
        self.ec2.describe_instances()

    # CreateFleet --------------------------------------------------------------------------------

    def fleet_kwargs(self) -> dict:
        tags = [{"Key": "karpenter.sh/nodepool", "Value": "default"},
                {"Key": "kubernetes.io/cluster/fake-cluster", "Value": "owned"}]
        return {
            "Type": "instant",
            "TargetCapacitySpecification": {"TotalTargetCapacity": 1, "DefaultTargetCapacityType": "spot"},
            "SpotOptions": {"AllocationStrategy": "price-capacity-optimized"},
            "LaunchTemplateConfigs": [{
                "LaunchTemplateSpecification": {"LaunchTemplateName": "bench", "Version": "$Latest"},
                "Overrides": [
                    {"InstanceType": t, "SubnetId": s, "AvailabilityZone": z} for t in TYPES for s, z in self.subnets
                ],
            }],
            "TagSpecifications": [{"ResourceType": rt, "Tags": tags} for rt in ("instance", "volume", "fleet")],
        }

    def fleet_params(self, token: str) -> list[tuple[str, str]]:
        p = [("Action", "CreateFleet"), ("Version", "2016-11-15"), ("Type", "instant"), ("ClientToken", token),
             ("TargetCapacitySpecification.TotalTargetCapacity", "1"),
             ("TargetCapacitySpecification.DefaultTargetCapacityType", "spot"),
             ("SpotOptions.AllocationStrategy", "price-capacity-optimized"),
             ("LaunchTemplateConfigs.1.LaunchTemplateSpecification.LaunchTemplateName", "bench"),
             ("LaunchTemplateConfigs.1.LaunchTemplateSpecification.Version", "$Latest")]
        n = 0
        for t in TYPES:
            for s, z in self.subnets:
                n += 1
                o = f"LaunchTemplateConfigs.1.Overrides.{n}"
                p += [(f"{o}.InstanceType", t), (f"{o}.SubnetId", s), (f"{o}.AvailabilityZone", z)]
        for i, rt in enumerate(("instance", "volume", "fleet"), 1):
            p += [(f"TagSpecification.{i}.ResourceType", rt),
                  (f"TagSpecification.{i}.Tag.1.Key", "karpenter.sh/nodepool"),
                  (f"TagSpecification.{i}.Tag.1.Value", "default"),
                  (f"TagSpecification.{i}.Tag.2.Key", "kubernetes.io/cluster/fake-cluster"),
                  (f"TagSpecification.{i}.Tag.2.Value", "owned")]
        return p

    def create_fleet_boto3(self, calls: int, secs: float, chunk: int) -> Job:
        kw = self.fleet_kwargs()
        errors: list[str] = []

        def one() -> None:
            r = self.ec2.create_fleet(**kw)
            ids = [i for x in r.get("Instances", []) for i in x.get("InstanceIds", [])]
            if len(ids) != 1:
                errors.append(json.dumps(r.get("Errors", []), default=str)[:300])
            self.instances += len(ids)

        for _ in range(5):  # warm-up, not timed
            one()
        return Job(one, calls, secs, chunk, result=lambda j: {
            "calls": len(j.lat), "errors": len(errors), "first_error": errors[:1], "secs": round(j.spent, 3),
            "calls_per_sec": round(len(j.lat) / j.spent, 2) if j.spent else None})

    def create_fleet_raw(self, calls: int, secs: float, chunk: int, token_prefix: str = "raw") -> Job:
        bodies = iter([self.fleet_params(f"{token_prefix}-{i}") for i in range(calls)])
        errors = 0

        def one() -> None:
            nonlocal errors
            status, body = raw_post(self.url, next(bodies))
            if status != 200 or body.count(b"<instanceIds>") != 1:
                errors += 1
            self.instances += len(re.findall(rb"<item>i-[0-9a-f]+</item>", body))

        return Job(one, calls, secs, chunk, result=lambda j: {
            "calls": len(j.lat), "errors": errors, "secs": round(j.spent, 3),
            "calls_per_sec": round(len(j.lat) / j.spent, 2) if j.spent else None})

    # Populate -----------------------------------------------------------------------------------

    def populate(self, target: int, secs: float) -> dict:
        t0 = time.perf_counter()
        deadline = time.monotonic() + secs
        start = self.instances
        calls = 0
        while self.instances < target and time.monotonic() < deadline:
            n = min(500, target - self.instances)
            subnet = self.subnets[self.batch % len(self.subnets)][0]
            self.batch += 1
            # MinCount = MaxCount: moto launches MinCount instances and ignores MaxCount.
            status, body = raw_post(self.url, {
                "Action": "RunInstances", "Version": "2016-11-15", "ImageId": self.ami, "InstanceType": "m5.large",
                "MinCount": str(n), "MaxCount": str(n), "SubnetId": subnet, "ClientToken": f"populate-{self.batch}",
            })
            if status != 200:
                raise RuntimeError(f"{self.name}: RunInstances HTTP {status}: {body[:400]!r}")
            self.instances += body.count(b"<instanceId>")
            calls += 1
        wall = time.perf_counter() - t0
        return {"target": target, "start": start, "reached": self.instances, "calls": calls, "secs": round(wall, 3),
                "complete": self.instances >= target,
                "instances_per_sec": round((self.instances - start) / wall, 2) if wall > 0 else None}

    # DescribeInstances --------------------------------------------------------------------------

    def list_boto3(self) -> int:
        n = 0
        pages = self.ec2.get_paginator("describe_instances").paginate(PaginationConfig={"PageSize": 1000})
        for page in pages:
            n += sum(len(r["Instances"]) for r in page["Reservations"])
        return n

    def list_raw(self) -> tuple[int, int, int]:
        token, n, pages, size = None, 0, 0, 0
        while pages < 1000:
            params = {"Action": "DescribeInstances", "Version": "2016-11-15", "MaxResults": "1000"}
            if token:
                params["NextToken"] = token
            status, body = raw_post(self.url, params)
            if status != 200:
                raise RuntimeError(f"{self.name}: DescribeInstances HTTP {status}: {body[:400]!r}")
            pages += 1
            size += len(body)
            n += body.count(b"<instanceId>")
            m = re.search(rb"<nextToken>([^<]+)</nextToken>", body)
            token = m.group(1).decode() if m else None
            if not token:
                break
        return n, pages, size

    def describe(self, mode: str, runs: int, secs: float) -> Job:
        seen: list = []
        fn = (lambda: seen.append(self.list_boto3())) if mode == "boto3" else (lambda: seen.append(self.list_raw()))
        expected = self.instances

        def result(_j: Job) -> dict:
            if mode == "boto3":
                out = {"listed": seen[-1] if seen else 0}
            else:
                n, pages, size = seen[-1] if seen else (0, 0, 0)
                out = {"listed": n, "pages": pages, "bytes": size}
            return {**out, "expected": expected, "complete": out["listed"] == expected}

        return Job(fn, runs, secs, result=result)

    def memory(self) -> dict:
        return rss_kib(server_pid(self.server))


# --------------------------------------------------------------------------------------------
# The Rust load driver.


# fake-ec2's dev-dependencies (the AWS SDKs for its tests, insta, proptest) are built for any bench
# target, though load.rs uses none of them; optimising them would cost tens of minutes on a small
# machine each time they change. The server code and everything it links stay fully optimised.
UNUSED_DEV_DEPS = ["aws-sdk-ec2", "aws-sdk-pricing", "aws-sdk-sqs", "insta", "proptest"]
RUST_BENCH_CMD = ["cargo", "bench", "-p", "fake-ec2", "--bench", "load"] + [
    a for d in UNUSED_DEV_DEPS for a in ("--config", f"profile.bench.package.{d}.opt-level=0")
]


def run_rust(args: argparse.Namespace, p: dict) -> dict:
    env = dict(os.environ, CARGO_TARGET_DIR=str(target_dir()))
    cmd = RUST_BENCH_CMD
    log("building the Rust load driver: " + " ".join(cmd + ["--no-run"]))
    t = time.monotonic()
    b = subprocess.run(cmd + ["--no-run"], cwd=REPO, env=env, capture_output=True, text=True, timeout=3600)
    build_secs = round(time.monotonic() - t, 1)
    if b.returncode != 0:
        return {"error": "build failed", "build_secs": build_secs, "stderr_tail": b.stderr[-3000:]}
    log(f"running the Rust load driver (built in {build_secs} s)")
    t = time.monotonic()
    r = subprocess.run(cmd + ["--", "--json", *p["rust_args"]], cwd=REPO, env=env, capture_output=True, text=True,
                       timeout=600)
    run_secs = round(time.monotonic() - t, 1)
    lines = [json.loads(l) for l in r.stdout.splitlines() if l.startswith("{")]
    out = {"build_secs": build_secs, "run_secs": run_secs, "results": lines}
    if r.returncode != 0:
        out["error"] = f"exit {r.returncode}"
        out["stderr_tail"] = r.stderr[-3000:]
    return out


# --------------------------------------------------------------------------------------------
# Report.


def machine_info(binary: Path) -> dict:
    def cmd(*a: str) -> str:
        try:
            return subprocess.run(a, capture_output=True, text=True, timeout=30, cwd=REPO).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""
    cpu = ""
    try:
        cpu = next(l.split(":", 1)[1].strip() for l in Path("/proc/cpuinfo").read_text().splitlines()
                   if l.startswith("model name"))
    except (OSError, StopIteration):
        pass
    mem = ""
    try:
        kib = int(Path("/proc/meminfo").read_text().split("\n", 1)[0].split()[1])
        mem = f"{kib / 1024 / 1024:.1f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    import moto
    return {
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "memory": mem,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "boto3": boto3.__version__,
        "botocore": botocore.__version__,
        "moto": moto.__version__,
        "fake_ec2": cmd(str(binary), "--version"),
        "rustc": cmd("rustc", "--version"),
        "git_commit": cmd("git", "rev-parse", "--short", "HEAD"),
        "git_dirty": bool(cmd("git", "status", "--porcelain", "--untracked-files=no")),
    }


def cpu_busy(secs: float = 3.0) -> float | None:
    """Share of the machine's CPU time spent busy over the next `secs` seconds, in percent."""
    def sample():
        f = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        return sum(f), f[3] + f[4]  # total, idle + iowait
    try:
        t0, i0 = sample()
        time.sleep(secs)
        t1, i1 = sample()
    except (OSError, ValueError, IndexError):
        return None
    return round(100 * (1 - (i1 - i0) / max(t1 - t0, 1)), 1)


def loadavg() -> list[float]:
    try:
        return [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]
    except OSError:
        return []


def fmt(x, unit: str = "") -> str:
    if x is None:
        return "—"
    if isinstance(x, float):
        x = f"{x:,.1f}" if x >= 100 else f"{x:,.2f}" if x >= 1 else f"{x:.3f}"
    else:
        x = f"{x:,}"
    return f"{x} {unit}".strip()


def ratio(a, b):
    if a is None or b is None or b == 0:
        return None
    return a / b


def build_rows(res: dict, p: dict) -> list[dict]:
    f, m, rust = res.get("fake-ec2", {}), res.get("moto", {}), res.get("rust", {})
    rows = []

    def row(metric, fv, mv, unit, better, target=None, target_ratio=None, target_abs=None, note=""):
        # The ratio is how many times better fake-ec2 is: a rate over moto's, or moto's time
        # (memory) over fake-ec2's.
        r = ratio(fv, mv) if better == "higher" else ratio(mv, fv)
        met = None
        if target_ratio is not None:
            met = r is not None and r >= target_ratio
        if target_abs is not None:
            met = fv is not None and fv < target_abs
        rows.append({"metric": metric, "fake_ec2": fv, "moto": mv, "unit": unit, "ratio": r, "target": target,
                     "met": met, "note": note})

    n_f, n_m = g(f, "create_fleet_boto3", "calls"), g(m, "create_fleet_boto3", "calls")
    row(f"CreateFleet instant, boto3, sequential (calls: {n_f} / {n_m})", g(f, "create_fleet_boto3", "calls_per_sec"),
        g(m, "create_fleet_boto3", "calls_per_sec"), "calls/s", "higher", "≥ 10× moto", target_ratio=10)
    n_f, n_m = g(f, "create_fleet_raw", "calls"), g(m, "create_fleet_raw", "calls")
    row(f"CreateFleet instant, raw HTTP, sequential (calls: {n_f} / {n_m})", g(f, "create_fleet_raw", "calls_per_sec"),
        g(m, "create_fleet_raw", "calls_per_sec"), "calls/s", "higher")

    sizes = sorted({int(k) for k in list(g(f, "sizes") or {}) + list(g(m, "sizes") or {})})
    largest = p["sizes"][-1]
    for size in sizes:
        fs, ms = g(f, "sizes", str(size)) or {}, g(m, "sizes", str(size)) or {}
        note = ""
        if size == largest and not ms:
            note = "moto did not get this far within its populate bound"
        for mode, how in (("boto3", "boto3 paginator"), ("raw", "raw HTTP")):
            fd, md = fs.get(f"describe_{mode}"), ms.get(f"describe_{mode}")
            n_note = note
            if md and md.get("skipped"):
                n_note, md = f"moto skipped: {md['skipped']}", None
            for d, who in ((fd, "fake-ec2"), (md, "moto")):
                if d and not d.get("complete", True):
                    n_note += f" {who} listed {d.get('listed')} of {d.get('expected')}!"
            for stat in ("p50_ms", "p95_ms"):
                target = target_ratio = None
                if size == 1000 and stat == "p50_ms":
                    target, target_ratio = "≥ 50× moto", 50
                runs = f"runs: {g(fd, 'n') or '—'} / {g(md, 'n') or '—'}"
                row(f"DescribeInstances, all {size:,} instances, {how}, {stat[:3]} ({runs})",
                    g(fd, stat), g(md, stat), "ms", "lower", target, target_ratio, note=n_note.strip())
        if size != sizes[0]:
            row(f"Server RSS at {size:,} instances", kib_to_mib(g(fs, "memory", "VmRSS")),
                kib_to_mib(g(ms, "memory", "VmRSS")), "MiB", "lower", note=note)
            row(f"Server RSS growth, idle → {size:,} instances",
                kib_to_mib(diff(g(fs, "memory", "VmRSS"), g(f, "memory_idle", "VmRSS"))),
                kib_to_mib(diff(g(ms, "memory", "VmRSS"), g(m, "memory_idle", "VmRSS"))), "MiB", "lower", note=note)
    for who, d in (("fake-ec2", f), ("moto", m)):
        for size, sd in (g(d, "sizes") or {}).items():
            pop = sd.get("populate", {})
            if pop.get("start", 0) >= 1000:
                res.setdefault("populate_rates", {})[who] = pop
    pf, pm = g(res, "populate_rates", "fake-ec2"), g(res, "populate_rates", "moto")
    if pf or pm:
        row(f"RunInstances batches of 500, raw HTTP, from 1,000 instances up "
            f"(to {fmt(g(pf, 'reached'))} / {fmt(g(pm, 'reached'))})",
            g(pf, "instances_per_sec"), g(pm, "instances_per_sec"), "instances/s", "higher")

    # Server-side rows: fake-ec2 alone, from the Rust driver.
    for r in rust.get("results", []):
        b, tr = r.get("bench"), r.get("transport")
        if b == "create_fleet":
            how = "HTTP, 2 connections" if tr == "http" else "handler only, 1 thread"
            row(f"Server-side: CreateFleet, {how} (calls: {r.get('calls')}, errors: {r.get('errors')})",
                r.get("calls_per_sec"), None, "calls/s", "higher")
        elif b == "describe_instances":
            how = "HTTP, MaxResults=1000 pages" if tr == "http" else "handler only"
            n = r.get("instances") or 0
            for stat in ("p50_ms", "p95_ms"):
                target = target_abs = None
                if tr == "http" and n == 1000 and stat == "p50_ms":
                    target, target_abs = "< 20 ms", 20
                row(f"Server-side: DescribeInstances, all {n:,} instances, {how}, {stat[:3]} (runs: {r.get('n')})",
                    r.get(stat), None, "ms", "lower", target, target_abs=target_abs)
    return rows


def client_cost_notes(res: dict) -> list[str]:
    """What boto3 itself costs per call, from fake-ec2's boto3 and raw-HTTP timings of the same
    calls, and so the best ratio any server could reach through boto3 against moto's numbers."""
    f, m = res.get("fake-ec2", {}), res.get("moto", {})
    notes = []
    fb, fr = g(f, "create_fleet_boto3", "p50_ms"), g(f, "create_fleet_raw", "p50_ms")
    mrate = g(m, "create_fleet_boto3", "calls_per_sec")
    if fb and fr and mrate:
        client = max(fb - fr, 1e-9)
        notes.append(
            f"CreateFleet: boto3 itself (serialising, signing, parsing) costs about {client:.2f} ms a call here "
            f"(fake-ec2's boto3 p50 {fb:.2f} ms minus its raw-HTTP p50 {fr:.2f} ms), so no server, however fast, "
            f"could exceed about {1000 / client:,.0f} calls/s through boto3 on this machine: "
            f"{1000 / client / mrate:.1f}× moto's {mrate:.1f} calls/s.")
    fb, fr = g(f, "sizes", "1000", "describe_boto3", "p50_ms"), g(f, "sizes", "1000", "describe_raw", "p50_ms")
    mb = g(m, "sizes", "1000", "describe_boto3", "p50_ms")
    if fb and fr and mb:
        client = max(fb - fr, 1e-9)
        notes.append(
            f"DescribeInstances of 1,000 instances: botocore's parsing of the response alone takes about "
            f"{client:,.0f} ms (fake-ec2's boto3 p50 {fb:,.1f} ms minus its raw-HTTP p50 {fr:,.1f} ms), so the "
            f"best ratio any server could reach through boto3 against moto's {mb:,.0f} ms is about "
            f"{mb / client:.1f}×; the ≥ 50× target can only be judged on the raw-HTTP and server-side rows.")
    return notes


def g(d, *path):
    for k in path:
        if not isinstance(d, dict) or k not in d:
            return None
        d = d[k]
    return d


def kib_to_mib(x):
    return None if x is None else x / 1024


def diff(a, b):
    return None if a is None or b is None else a - b


def write_report(res: dict, rows: list[dict], prefix: Path) -> None:
    prefix.parent.mkdir(parents=True, exist_ok=True)
    res = {**res, "rows": rows}
    Path(f"{prefix}.json").write_text(json.dumps(res, indent=2, default=str) + "\n")
    mi = res["machine"]
    lines = [
        "# fake-ec2 vs moto_server: `make bench` results",
        "",
        f"Measured {mi['date']} on {mi['nproc']} CPUs ({mi['cpu']}, {mi['memory']}), Linux {mi['kernel']}; "
        f"{mi['fake_ec2']} (git {mi['git_commit']}{', dirty tree' if mi['git_dirty'] else ''}, release build), "
        f"moto {mi['moto']}, boto3 {mi['boto3']}, Python {mi['python']}, {mi['rustc']}. "
        f"CPU busy just before the run: {res.get('cpu_busy_before_pct')}%; "
        f"load average before/after: {res['loadavg_before']} / {res['loadavg_after']}. "
        f"Benchmark wall time {res['wall_secs']:.0f} s "
        f"(Rust driver build {res.get('rust', {}).get('build_secs', '—')} s, not counted).",
        "",
        "Both servers ran on this machine in the same run, both up at once but only one driven at any "
        "moment: each measurement took turns between them (sequential calls, one client), with the same "
        "boto3 (retries off, us-west-2, dummy credentials) and the same raw HTTP client (Python "
        "`http.client`, a new connection per call, body read but not parsed). *Ratio* is how many times "
        "better fake-ec2 is: its rate ÷ moto's, or moto's time (memory) ÷ fake-ec2's. p50/p95 over the "
        "runs shown as (fake-ec2 / moto). Server-side rows are fake-ec2 alone, measured by the Rust load "
        "driver (`cargo bench -p fake-ec2 --bench load`: in-process server, its own 2-worker runtime, "
        "keep-alive HTTP), with no peer to compare.",
        "",
        "| metric | fake-ec2 | moto | ratio | target | met? |",
        "|---|---:|---:|---:|---|---|",
    ]
    lines += [row_line(r) for r in rows]
    if res.get("notes"):
        lines += ["", "## Notes", ""] + [f"- {n}" for n in res["notes"]]
    lines += ["", "Raw numbers, including min/max/mean and every setting: `bench/results.json`.", ""]
    import ec2_scale
    lines += ec2_scale.section(res.get("scale_run"))
    # `e2e perf` (make perf) owns the end-to-end section of this file; keep it.
    md = Path(f"{prefix}.md")
    old = md.read_text() if md.exists() else ""
    start = old.find(E2E_SECTION_START)
    if start >= 0:
        lines += [old[start:].rstrip("\n"), ""]
    md.write_text("\n".join(lines))


E2E_SECTION_START = "<!-- e2e-performance:"


def row_line(r: dict) -> str:
    unit = r["unit"]
    met = "—" if r["met"] is None else ("yes" if r["met"] else "**no**")
    rat = "—" if r["ratio"] is None else f"{r['ratio']:,.1f}×"
    metric = r["metric"] + (f" — {r['note']}" if r["note"] else "")
    return (f"| {metric} | {fmt(r['fake_ec2'], unit)} | {fmt(r['moto'], unit)} | {rat} | "
            f"{r['target'] or ''} | {met} |")


# --------------------------------------------------------------------------------------------


def bench_pair(peers: dict[str, Peer], p: dict, res: dict) -> None:
    """Both servers are up at once but only one is driven at any moment; measurements of the
    same thing take turns between them. Results go to each peer's `result`, sizes keyed by the
    number of instances the server held."""
    names = list(peers)
    for n in names:
        peers[n].result["memory_idle"] = peers[n].memory()
    for n in names:
        log(f"{n}: setup")
        peers[n].setup()
        peers[n].result["sizes"] = {}

    for kind in ("boto3", "raw"):
        calls = p["fleet_calls"]
        log(f"CreateFleet via {kind}, {calls} calls, taking turns")
        jobs = {n: getattr(peers[n], f"create_fleet_{kind}")(calls[n], p["fleet_secs"], max(1, calls[n] // 30))
                for n in names}
        interleave(list(jobs.values()))
        for n in names:
            r = peers[n].result[f"create_fleet_{kind}"] = jobs[n].result()
            log(f"{n}:   {r['calls_per_sec']} calls/s ({r['calls']} calls, {r['errors']} errors)")

    def measure(at: dict[str, Peer], small: bool) -> None:
        """Memory, then DescribeInstances via boto3 and raw HTTP, taking turns."""
        plan_key = "small" if small else "large"
        entries = {}
        for n, peer in at.items():
            entries[n] = peer.result["sizes"][str(peer.instances)] = peer.result["sizes"].get(str(peer.instances), {})
            entries[n]["memory"] = peer.memory()
        for i, kind in enumerate(("boto3", "raw")):
            jobs = {}
            for n, peer in at.items():
                b_runs, b_secs, r_runs, r_secs = p["describe"][plan_key][n]
                runs, secs = (b_runs, b_secs) if kind == "boto3" else (r_runs, r_secs)
                # Optional runs (secs == 0) are skipped when they would likely end past the budget.
                if kind == "raw" and secs == 0:
                    expected = (g(entries[n], "describe_boto3", "p50_ms") or 0) / 1000
                    if time.monotonic() - START + expected > res["budget_secs"]:
                        entries[n]["describe_raw"] = {"skipped": f"over the {res['budget_secs']:.0f} s time budget"}
                        log(f"{n}: raw DescribeInstances skipped (time budget)")
                        continue
                jobs[n] = peer.describe(kind, runs, secs)
            desc = ", ".join(f"{n} at {at[n].instances} (≤ {j.runs} runs / {j.secs} s)" for n, j in jobs.items())
            log(f"DescribeInstances via {kind}: {desc}")
            interleave(list(jobs.values()))
            for n, j in jobs.items():
                r = entries[n][f"describe_{kind}"] = j.result()
                log(f"{n}:   p50 {r.get('p50_ms')} ms, n={r.get('n')}, listed {r.get('listed')}")
        for n, peer in at.items():
            entries[n]["memory_after_describe"] = peer.memory()

    sizes = p["sizes"]
    # The small size: both servers.
    for n in names:
        log(f"{n}: populating to {sizes[0]} (have {peers[n].instances})")
        pop = peers[n].populate(sizes[0], p["populate_secs"][n])
        peers[n].result["sizes"][str(peers[n].instances)] = {"populate": pop}
        log(f"{n}:   {pop}")
    measure(peers, small=True)

    # The large size: moto first, bounded in time; both are compared at the count moto reached,
    # and fake-ec2 alone at the full size if moto stopped short.
    target = sizes[-1]
    order = sorted(names, key=lambda n: n != "moto")
    reached = target
    for n in order:
        goal = min(target, reached)
        log(f"{n}: populating to {goal} (have {peers[n].instances})")
        pop = peers[n].populate(goal, p["populate_secs"][n])
        peers[n].result["sizes"][str(peers[n].instances)] = {"populate": pop}
        log(f"{n}:   {pop}")
        reached = min(reached, peers[n].instances)
    if reached < target:
        res["notes"].append(
            f"moto reached {reached:,} of {target:,} instances within its {p['populate_secs']['moto']:.0f} s "
            f"populate bound (its RunInstances slows as instances accumulate), so both servers are compared at "
            f"{reached:,}; fake-ec2 alone at {target:,}.")
    measure(peers, small=False)
    if reached < target:
        for n in names:
            if n == "moto":
                continue
            log(f"{n}: populating to {target} (have {peers[n].instances})")
            pop = peers[n].populate(target, p["populate_secs"][n])
            peers[n].result["sizes"][str(peers[n].instances)] = {"populate": pop}
            log(f"{n}:   {pop}")
            measure({n: peers[n]}, small=False)
    for n in names:
        peers[n].result["instances"] = peers[n].instances


GROUPS = ("pair", "scale", "soak")


def selected_groups(only: str | None) -> list[str]:
    """Which groups of rows to measure: all, or those `--only` / BENCH_ONLY names (comma-separated)."""
    if not only:
        return list(GROUPS)
    names = [n.strip() for n in only.split(",") if n.strip()]
    unknown = [n for n in names if n not in GROUPS]
    if unknown:
        raise SystemExit(f"unknown row group(s) {unknown}; choose from {list(GROUPS)}")
    return names


def previous_results(prefix: Path) -> dict:
    """The last run's results.json, whose rows a partial run keeps."""
    try:
        return json.loads(Path(f"{prefix}.json").read_text())
    except (OSError, ValueError):
        return {}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small sizes, for trying the harness out")
    ap.add_argument("--no-build", action="store_true", help="do not (re)build the fake-ec2 release binary")
    ap.add_argument("--skip-rust", action="store_true", help="skip the Rust server-side load driver")
    ap.add_argument("--out", help="output prefix (default bench/results; /tmp/ec2_bench_quick with --quick)")
    ap.add_argument("--budget", type=float, default=300,
                    help="soft wall-time budget in seconds: optional measurements are skipped past it (default 300)")
    ap.add_argument("--moto-populate-secs", type=float, default=120,
                    help="time bound for populating moto from 1,000 towards 10,000 instances (default 120)")
    ap.add_argument("--moto-scale-secs", type=float, default=300,
                    help="time bound for populating moto to 10,000 instances for the scale rows (default 300)")
    ap.add_argument("--only", default=os.environ.get("BENCH_ONLY"),
                    help="row groups to measure, comma-separated, of pair (the main table and the Rust driver), "
                         "scale (10,000 instances), soak; the others keep their last values (env BENCH_ONLY)")
    args = ap.parse_args()
    groups = selected_groups(args.only)
    p = plan(args.quick, args.moto_populate_secs)
    prefix = Path(args.out) if args.out else (Path(tempfile.gettempdir()) / "ec2_bench_quick" if args.quick
                                              else REPO / "bench" / "results")
    sys.modules.setdefault("ec2_bench", sys.modules[__name__])
    import ec2_scale

    def on_signal(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")
    signal.signal(signal.SIGTERM, on_signal)

    tdir = target_dir()
    if not args.no_build:
        log(f"cargo build --release -p fake-ec2 (CARGO_TARGET_DIR={tdir})")
        subprocess.run(["cargo", "build", "--release", "-p", "fake-ec2"], cwd=REPO, check=True,
                       env=dict(os.environ, CARGO_TARGET_DIR=str(tdir)), timeout=3600)
    binary = tdir / "release" / "fake-ec2"
    if not binary.exists():
        print(f"no fake-ec2 release binary at {binary}; build it or drop --no-build", file=sys.stderr)
        return 2

    global START
    old = previous_results(prefix)
    machine = machine_info(binary)
    res: dict = {"machine": machine, "plan": {k: v for k, v in p.items()}, "loadavg_before": loadavg(),
                 "cpu_busy_before_pct": cpu_busy(), "budget_secs": args.budget, "notes": []}
    scale_run: dict = {"machine": machine, "loadavg_before": res["loadavg_before"],
                       "cpu_busy_before_pct": res["cpu_busy_before_pct"], "groups": [g for g in groups if g != "pair"]}
    START = time.monotonic()
    rust_build_secs = 0.0
    if "pair" in groups and not args.skip_rust:
        res["rust"] = run_rust(args, p)
        rust_build_secs = res["rust"].get("build_secs", 0.0)
        if res["rust"].get("error"):
            log(f"Rust load driver: {res['rust']['error']}")
            res["notes"].append(f"Rust load driver: {res['rust']['error']} (see results.json)")

    logdir = Path(tempfile.mkdtemp(prefix="ec2_bench_"))
    servers: list[Server] = []
    peers: dict[str, Peer] = {}
    try:
        if "pair" in groups or "scale" in groups:
            servers.append(start_moto(logdir))
            servers.append(start_fake(binary, logdir))
            peers = {s.name: Peer(s) for s in servers}
        if "pair" in groups:
            bench_pair(peers, p, res)
        elif "scale" in groups:
            for peer in peers.values():
                peer.setup()
        if "scale" in groups:
            scale_run["scale"] = ec2_scale.measure_scale(peers, res, args.moto_scale_secs, args.quick)
        for s in servers:
            s.stop()
        if "soak" in groups:
            scale_run["soak"] = ec2_scale.run_soak(binary, logdir, args.quick)
    except KeyboardInterrupt:
        log("interrupted")
        return 130
    finally:
        for name, peer in peers.items():
            res[name] = peer.result
        for s in servers:
            s.stop()
            log(f"{s.name}: stopped (logs in {s.log_path})")
    wall = time.monotonic() - START - rust_build_secs
    res["wall_secs"] = wall
    res["loadavg_after"] = scale_run["loadavg_after"] = loadavg()
    # Rows not measured this time keep the last run's values.
    old_scale = old.get("scale_run") or {}
    for key in ("scale", "soak"):
        if key not in scale_run and old_scale.get(key):
            scale_run[key] = old_scale[key]
            scale_run.setdefault("kept_from", {})[key] = (old_scale.get("machine") or {}).get("date")
    scale_run["rows"] = ec2_scale.scale_rows(scale_run["scale"]) if scale_run.get("scale") else []
    scale_run["rows"] += ec2_scale.soak_rows(scale_run.get("soak") or {})
    if "pair" in groups:
        busy = res["cpu_busy_before_pct"]
        if busy is not None and busy > 20:
            res["notes"].append(
                f"Something else was using {busy}% of the machine's CPU just before the run: absolute numbers "
                f"are pessimistic; the ratios, measured by turns, much less so.")
        rows = build_rows(res, p)
        res["notes"] += client_cost_notes(res)
    elif old:
        scale_keys = {"scale_run", "rows"}
        res = {**{k: v for k, v in old.items() if k not in scale_keys}}
        rows = old.get("rows", [])
    else:
        print(f"no earlier {prefix}.json to keep the main table from; run without --only first", file=sys.stderr)
        return 2
    res["scale_run"] = scale_run
    write_report(res, rows, prefix)
    log(f"wrote {prefix}.md and {prefix}.json ({wall:.0f} s)")
    print(Path(f"{prefix}.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
