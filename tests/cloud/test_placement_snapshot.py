"""How the OpenStack provider turns Placement's per-provider answers into a snapshot: the
usages it sums from the allocations must be what GET .../usages would have answered."""

from __future__ import annotations

from cloudmgr.cloud.openstack.capacity import _allocations, _inventory, _usages
from cloudmgr.cloud.types import Inventory, PlacementSnapshot


def test_usages_are_the_allocations_summed_over_the_inventoried_classes() -> None:
    inventories = {
        "VCPU": _inventory({"total": 8, "reserved": 0, "allocation_ratio": 4.0}),
        "MEMORY_MB": _inventory({"total": 4096, "reserved": 512}),
        "DISK_GB": _inventory({"total": 100}),
    }
    allocations = _allocations(
        {
            "allocations": {
                "b-server": {"resources": {"VCPU": 2, "MEMORY_MB": 1024}},
                "a-migration": {"resources": {"VCPU": 1, "MEMORY_MB": 512, "DISK_GB": 1}},
            },
            "resource_provider_generation": 7,
        }
    )
    assert [a.consumer_id for a in allocations] == ["a-migration", "b-server"]
    # Like Placement's usages: every inventoried class, 0 when nothing holds it.
    assert _usages(inventories, allocations) == {"VCPU": 3, "MEMORY_MB": 1536, "DISK_GB": 1}
    assert _usages(inventories, ()) == {"VCPU": 0, "MEMORY_MB": 0, "DISK_GB": 0}
    assert inventories["VCPU"] == Inventory(
        total=8, reserved=0, allocation_ratio=4.0, min_unit=1, max_unit=8, step_size=1
    )
    assert inventories["MEMORY_MB"].capacity == 3584


def test_a_snapshot_is_frozen_and_answers_no_allocations_for_an_unknown_provider() -> None:
    allocations = _allocations({"allocations": {"c": {"resources": {"VCPU": 1}}}})
    snapshot = PlacementSnapshot(providers=[], allocations={"rp": list(allocations)})
    assert snapshot.providers == ()
    assert snapshot.allocations_of("rp") == allocations
    assert snapshot.allocations_of("unknown") == ()
