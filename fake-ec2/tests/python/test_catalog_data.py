"""The instance-type catalog fixture is well formed: fixtures/catalog/check.py accepts the committed
file and rejects each kind of damage it is meant to catch. Needs no fake-ec2 process."""

from __future__ import annotations

import copy
import importlib.util
import json
from pathlib import Path

import pytest

CATALOG_DIR = Path(__file__).resolve().parents[3] / "fixtures" / "catalog"
_spec = importlib.util.spec_from_file_location("catalog_check", CATALOG_DIR / "check.py")
assert _spec is not None and _spec.loader is not None
check = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(check)


@pytest.fixture(scope="module")
def catalog() -> list[dict]:
    return json.loads((CATALOG_DIR / "ec2-instance-types-us-west-2.json").read_text())


def _entry(catalog: list[dict], name: str) -> dict:
    return next(e for e in catalog if e["name"] == name)


def test_committed_catalog_is_sound(catalog):
    assert check.validate(catalog) == []


def test_catalog_holds_metal_gpu_storage_and_both_architectures(catalog):
    """Karpenter's pricing controller needs both product families (bare metal and not) to be non-empty."""
    metal = [e for e in catalog if e.get("bare_metal")]
    assert metal and all(e["hypervisor"] == "" for e in metal)
    assert {e["architecture"] for e in metal} == {"x86_64", "arm64"}
    gpus = {e["family"]: e["gpu"]["name"] for e in catalog if "gpu" in e}
    assert gpus == {"g4dn": "t4", "g5": "a10g", "g6": "l4"}
    nvme = {e["family"] for e in catalog if "local_nvme_gib" in e}
    assert {"i3", "i3en", "i4i", "im4gn", "is4gen", "g4dn", "g5", "g6"} <= nvme
    assert _entry(catalog, "im4gn.large")["architecture"] == "arm64"


def test_known_values_are_the_sourced_ones(catalog):
    g5 = _entry(catalog, "g5.48xlarge")
    assert g5["gpu"] == {"count": 8, "name": "a10g", "manufacturer": "NVIDIA", "memory_mib": 22888}
    assert g5["local_nvme_gib"] == 7600 and g5["on_demand_usd_per_hour_us_west_2"] == 16.288
    assert g5["local_nvme_disks"] == 2 and _entry(catalog, "i4i.metal")["local_nvme_disks"] == 8
    c5 = _entry(catalog, "c5.metal")
    assert (c5["vcpu"], c5["max_pods"], c5["bare_metal"]) == (96, 737, True)
    assert _entry(catalog, "i3.large")["hypervisor"] == "xen"


@pytest.mark.parametrize(
    "damage, expected",
    [
        (lambda c: _entry(c, "m5.large").update(max_pods=30), "max_pods 30"),
        (lambda c: c.append(copy.deepcopy(c[-1])), "duplicate name"),
        (lambda c: c.reverse(), "not sorted"),
        (lambda c: _entry(c, "c5.metal").update(hypervisor="nitro"), "bare_metal=True but hypervisor"),
        (lambda c: _entry(c, "c5.large").update(bare_metal=True), "disagrees with size"),
        (lambda c: _entry(c, "c5.large").pop("vcpu"), "missing required field vcpu"),
        (lambda c: _entry(c, "c5.large").update(vcpu="2"), "vcpu has type str"),
        (lambda c: _entry(c, "c5.large").update(bare_metal=0), "bare_metal has type int"),
        (lambda c: _entry(c, "g5.xlarge")["gpu"].pop("count"), "gpu lacks count"),
        (lambda c: _entry(c, "g5.xlarge")["gpu"].update(name="A10G"), "lower-case"),
        (lambda c: _entry(c, "c5.large").update(family="c6"), "name is not family.size"),
        (lambda c: _entry(c, "c5.large").update(architecture="arm64"), "architecture differs"),
        (lambda c: _entry(c, "c5.large").update(gpus=1), "unknown field gpus"),
        (lambda c: _entry(c, "i3.large").update(local_nvme_gib=0), "local_nvme_gib must be positive"),
        (lambda c: _entry(c, "i3.large").pop("local_nvme_disks"), "come together"),
        (lambda c: _entry(c, "i3.4xlarge").update(local_nvme_disks=3), "divide local_nvme_gib"),
    ],
)
def test_validator_rejects_damage(catalog, damage, expected):
    damaged = copy.deepcopy(catalog)
    damage(damaged)
    problems = check.validate(damaged)
    assert any(expected in p for p in problems), problems
