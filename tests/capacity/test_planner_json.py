"""The CLI writes a plan's JSON in slices: the text is exactly ``json.dumps(plan.as_dict())``."""

from __future__ import annotations

import io
import json

import pytest

from cloudmgr.capacity.planner import HostSpec, ServerRecord, Zone, plan_consolidation
from cloudmgr.capacity.planner import model as planner_model
from cloudmgr.capacity.planner.inventory import inventory_from_records
from cloudmgr.capacity.planner.model import Classification, ConsolidationPlan
from cloudmgr.capacity.planner.plan import plan_inventory
from cloudmgr.capacity.planner.synthetic import synthetic_demand

HOST = HostSpec(vcpus=16, ram_gb=64, disk_gb=1000)


def written(plan: ConsolidationPlan) -> str:
    out = io.StringIO()
    plan.write_json(out)
    return out.getvalue()


def awkward_records() -> list[ServerRecord]:
    names = ['say "hi"', "back\\slash", "tab\there", "财政-01", "emoji-🙂", "ctl-\x01", "a" * 300, "plain"]
    records = [
        ServerRecord(name, 1 + i % 4, 2 + i, 10 * i, department=["教育厅", None, "财政厅"][i % 3])
        for i, name in enumerate(names)
    ]
    records.append(ServerRecord("secret", 1, 1, 1, classification=Classification.CLASSIFIED))
    records.append(ServerRecord("huge", 64, 1, 1, zone=Zone.INTERNET))
    return records


@pytest.mark.parametrize("slice_size", [1 << 16, 3, 1])
def test_written_json_is_the_dumped_dict(monkeypatch: pytest.MonkeyPatch, slice_size: int) -> None:
    monkeypatch.setattr(planner_model, "_JSON_SLICE", slice_size)
    inventory = inventory_from_records(awkward_records())
    plan = plan_inventory(inventory, HOST, max_wave=2)
    assert plan.refused and plan.unplaced and len(plan.waves) > 2
    assert written(plan) == json.dumps(plan.as_dict(), ensure_ascii=False)
    assert json.loads(written(plan))["placements"] == plan.placements


@pytest.mark.parametrize("slice_size", [1 << 16, 7, 1])
def test_empty_plan_and_synthetic_plan(monkeypatch: pytest.MonkeyPatch, slice_size: int) -> None:
    monkeypatch.setattr(planner_model, "_JSON_SLICE", slice_size)
    empty = plan_consolidation([], HOST)
    assert written(empty) == json.dumps(empty.as_dict(), ensure_ascii=False)
    demand = synthetic_demand(400, seed=3)
    records = [
        ServerRecord(f"s{i}", int(v), r / 1024, d / 1024, department=f"d{i % 5}", zone=Zone.INTERNET if i % 3 else None)
        for i, (v, r, d) in enumerate(demand.tolist())
    ]
    big = HostSpec(vcpus=64, ram_gb=768, disk_gb=7680, cpu_ratio=4)
    plan = plan_consolidation(records, big)
    assert len(plan.placements) == 400
    assert written(plan) == json.dumps(plan.as_dict(), ensure_ascii=False)


def test_waves_order_by_counting_is_the_stable_sort() -> None:
    import numpy as np

    from cloudmgr.capacity.planner.waves import _stable_order

    rng = np.random.default_rng(4)
    for size in (1, 3, 50, 5000):
        key = rng.integers(0, size, 4000)
        assert np.array_equal(_stable_order(key, size), np.argsort(key, kind="stable"))
