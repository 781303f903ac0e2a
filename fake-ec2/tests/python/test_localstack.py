"""fake-ec2's events forwarded to a LocalStack SQS queue started through testcontainers.

Runs where a Docker engine answers; elsewhere it is skipped with one line saying why (pytest runs
with -rs, so the reason is printed)."""

from __future__ import annotations

import pytest

from test_events import interruption_warning_via
from test_sqs import sqs_client


def docker_unavailable() -> str | None:
    """Why LocalStack cannot run here, or None when it can."""
    try:
        import docker  # testcontainers' own dependency
    except ImportError:
        return "the docker Python package is missing (pip install 'testcontainers[localstack]')"
    try:
        docker.from_env().ping()
    except Exception as e:  # noqa: BLE001 - any failure to reach the engine is the reason
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        return f"no Docker engine ({first[:160]})"
    return None


@pytest.fixture(scope="module")
def localstack():
    reason = docker_unavailable()
    if reason:
        pytest.skip(f"LocalStack test not run: {reason}")
    from testcontainers.localstack import LocalStackContainer

    with LocalStackContainer(image="localstack/localstack:4.4").with_services("sqs") as ls:
        yield ls.get_url()


def test_interruption_warning_reaches_a_localstack_queue(server, localstack):
    sqs = sqs_client(localstack)
    url = sqs.create_queue(QueueName="karpenter-interruption-ls")["QueueUrl"]
    iid, warning = interruption_warning_via(server, sqs, url, "ToLocalStack", timeout=30.0)
    assert warning["detail-type"] == "EC2 Spot Instance Interruption Warning"
    assert warning["detail"] == {"instance-id": iid, "instance-action": "terminate"}
