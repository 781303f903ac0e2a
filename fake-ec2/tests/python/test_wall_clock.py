"""With the real clock (the default world's mode), world time is the wall clock's: what a client
compares with its own clock is right. The two checks a user makes with the AWS CLI."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict

import pytest

from support import AMI_X86, AWS_CLI, SUBNETS, FakeEc2, ec2_cli


UTC = dt.timezone.utc


@pytest.fixture(scope="module")
def aws(tmp_path_factory):
    server = FakeEc2(clock="real")
    yield ec2_cli(server.endpoint, tmp_path_factory.mktemp("aws-home"))
    server.stop()


def parse(ts: str) -> dt.datetime:
    return dt.datetime.fromisoformat(ts.replace("Z", "+00:00"))


def test_a_day_of_spot_price_history_by_the_wall_clock(aws):
    day_ago = dt.datetime.now(UTC) - dt.timedelta(hours=24)
    out = aws.json("describe-spot-price-history", "--start-time", day_ago.strftime("%Y-%m-%dT%H:%M:%SZ"))
    rows = out["SpotPriceHistory"]
    now = dt.datetime.now(UTC)
    by_pool: dict[tuple[str, str], list[tuple[dt.datetime, float]]] = defaultdict(list)
    for r in rows:
        by_pool[(r["InstanceType"], r["AvailabilityZone"])].append((parse(r["Timestamp"]), float(r["SpotPrice"])))
    assert ("m5.large", "us-west-2a") in by_pool and ("m5.metal", "us-west-2c") in by_pool
    within_day = 0
    for pool, points in by_pool.items():
        stamps = [t for t, _ in points]
        assert max(stamps) <= now + dt.timedelta(seconds=5), f"{pool}: no price from the future"
        # EC2 includes the price in effect at the start time, so every pool covers the whole day.
        assert min(stamps) <= day_ago + dt.timedelta(seconds=5), f"{pool}: history reaches the start time"
        within_day += sum(1 for t in stamps if t > day_ago)
    # Hourly ticks with a 25 % chance of a change, plus one forced change every 48 hours.
    assert within_day >= len(by_pool) * 2, f"{within_day} price changes in the day over {len(by_pool)} pools"
    m5 = sorted(by_pool[("m5.large", "us-west-2a")])
    assert len({p for _, p in m5}) >= 2, f"m5.large moves during the day: {m5}"


def test_a_fresh_instance_launched_now(aws):
    before = dt.datetime.now(UTC)
    out = aws.json(
        "run-instances",
        "--image-id", AMI_X86,
        "--instance-type", "t3a.medium",
        "--subnet-id", SUBNETS["us-west-2a"],
        "--count", "1",
    )  # fmt: skip
    (instance,) = out["Instances"]
    described = aws.json("describe-instances", "--instance-ids", instance["InstanceId"])
    launch = parse(described["Reservations"][0]["Instances"][0]["LaunchTime"])
    after = dt.datetime.now(UTC)
    assert before - dt.timedelta(seconds=2) <= launch <= after + dt.timedelta(seconds=2), (before, launch, after)
