"""Fixtures for the boto3 / AWS CLI / wire-shape suites: a fake-ec2 process per module or per test,
and boto3 clients pointed at it (see support.py for the process and admin API)."""

from __future__ import annotations

import pytest

from support import FakeEc2, ec2_client, pricing_client


@pytest.fixture(scope="module")
def module_server():
    """One fake-ec2 per test module, for tests that only read or that tolerate each other's state."""
    server = FakeEc2()
    yield server
    server.stop()


@pytest.fixture
def server():
    """A fresh fake-ec2 per test, for tests whose assertions depend on the world's exact state."""
    s = FakeEc2()
    yield s
    s.stop()


@pytest.fixture
def endpoint(server) -> str:
    return server.endpoint


@pytest.fixture
def ec2(server):
    return ec2_client(server.endpoint)


@pytest.fixture
def pricing(server):
    return pricing_client(server.endpoint)


@pytest.fixture(scope="module")
def module_ec2(module_server):
    return ec2_client(module_server.endpoint)
