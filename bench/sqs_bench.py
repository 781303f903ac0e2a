#!/usr/bin/env python3
"""SQS throughput: fake-ec2's built-in SQS beside moto_server, in the same run on the same machine.

Through boto3 (one client, sequential: SendMessage per second, then ReceiveMessage(10) +
DeleteMessageBatch per second) and through a Rust driver (aws-sdk-sqs, 4 concurrent clients;
fake-ec2/benches/sqs.rs). Writes bench/sqs.md and bench/sqs.json. `make bench` runs it.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import boto3
import botocore.config

sys.path.insert(0, str(Path(__file__).parent))
import ec2_bench as eb  # noqa: E402  (server start/stop and machine facts are shared)

ROOT = Path(__file__).resolve().parent.parent
BODY = json.dumps({"version": "0", "detail-type": "EC2 Spot Instance Interruption Warning", "source": "aws.ec2",
                   "detail": {"instance-id": "i-0123456789abcdef0", "instance-action": "terminate"}})


def client(url: str):
    cfg = botocore.config.Config(retries={"total_max_attempts": 1, "mode": "standard"})
    return boto3.client("sqs", endpoint_url=url, region_name="us-west-2", aws_access_key_id="test",
                        aws_secret_access_key="test", config=cfg)


def boto_rates(url: str, seconds: float) -> dict:
    sqs = client(url)
    q = sqs.create_queue(QueueName="bench-boto3")["QueueUrl"]
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        sqs.send_message(QueueUrl=q, MessageBody=BODY)
        n += 1
    send = n / (time.perf_counter() - t0)
    got, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        msgs = sqs.receive_message(QueueUrl=q, MaxNumberOfMessages=10, VisibilityTimeout=30).get("Messages", [])
        if not msgs:
            break
        sqs.delete_message_batch(QueueUrl=q, Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                                                      for i, m in enumerate(msgs)])
        got += len(msgs)
    recv = got / (time.perf_counter() - t0)
    return {"send_per_s": round(send, 1), "receive_delete_per_s": round(recv, 1), "sent": n, "received_deleted": got}


def rust_rates(url: str, seconds: int) -> dict:
    out = subprocess.run(["cargo", "bench", "-q", "-p", "fake-ec2", "--bench", "sqs", "--", "--endpoint", url,
                          "--seconds", str(seconds)], cwd=ROOT, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seconds", type=int, default=5, help="seconds per measurement")
    ap.add_argument("--out", default=str(ROOT / "bench" / "sqs"))
    args = ap.parse_args()
    binary = eb.target_dir() / "release" / "fake-ec2"
    subprocess.run(["cargo", "bench", "-q", "-p", "fake-ec2", "--bench", "sqs", "--no-run"], cwd=ROOT, check=True)
    logdir = Path(tempfile.mkdtemp(prefix="sqs_bench_"))
    res = {"load_before": os.getloadavg()}
    fake, moto = eb.start_fake(binary, logdir), eb.start_moto(logdir)
    try:
        for name, s in (("fake-ec2", fake), ("moto", moto)):
            eb.log(f"{name}: boto3")
            res[f"{name}_boto3"] = boto_rates(s.url, args.seconds)
            eb.log(f"{name}: rust driver")
            res[f"{name}_rust"] = rust_rates(s.url, args.seconds)
    finally:
        fake.stop()
        moto.stop()
    res["load_after"] = os.getloadavg()
    Path(args.out + ".json").write_text(json.dumps(res, indent=2) + "\n")
    rows = []
    for path, label in (("boto3", "boto3, one client"), ("rust", "aws-sdk-sqs, 4 clients")):
        for key, what in (("send_per_s", "SendMessage"), ("receive_delete_per_s", "ReceiveMessage(10) + DeleteMessageBatch, messages")):
            f, m = res[f"fake-ec2_{path}"][key], res[f"moto_{path}"][key]
            rows.append(f"| {what} per second, {label} | {f:,.0f} | {m:,.0f} | {f / m:.1f}x |" if m else
                        f"| {what} per second, {label} | {f:,.0f} | {m} | - |")
    md = ["# SQS throughput: fake-ec2 vs moto_server", "",
          f"`python3 bench/sqs_bench.py` ({args.seconds} s per measurement, both servers in the same run, "
          f"{os.cpu_count()} CPUs, load average before/after {res['load_before'][0]:.2f}/{res['load_after'][0]:.2f}).", "",
          "| measure | fake-ec2 | moto_server | ratio |", "|---|---:|---:|---:|", *rows, ""]
    Path(args.out + ".md").write_text("\n".join(md))
    print("\n".join(md))
    return 0


if __name__ == "__main__":
    sys.exit(main())
