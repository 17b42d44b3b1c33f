"""Consolidation planner: pack department servers onto cloud hosts, plan the waves, and
plan in-cloud consolidation (draining hosts with few live migrations).

Public API:

* :func:`plan_consolidation` (records) and :func:`plan_inventory` (columns, e.g. from
  :func:`read_servers_csv`) give a :class:`ConsolidationPlan`;
* :func:`pack_vectors` packs raw demand vectors; :func:`first_fit_decreasing` is the baseline;
* :func:`plan_migration` plans live migrations that empty hosts of a running cloud;
* ``plan_group`` (in :mod:`cloudmgr.capacity.planner.cli`) is the ``cloudmgr plan`` command group.
"""

from cloudmgr.capacity.planner.inventory import Inventory, inventory_from_records, read_servers_csv
from cloudmgr.capacity.planner.migration import (
    HostState,
    MigrationPlan,
    Move,
    VmState,
    plan_migration,
)
from cloudmgr.capacity.planner.model import (
    Classification,
    ConsolidationPlan,
    HostSpec,
    PlannerInputError,
    ServerRecord,
    Zone,
    demand_of,
)
from cloudmgr.capacity.planner.packing import PackResult, first_fit_decreasing, pack_vectors, pool_bound
from cloudmgr.capacity.planner.plan import plan_consolidation, plan_inventory

__all__ = [
    "Classification",
    "ConsolidationPlan",
    "HostSpec",
    "HostState",
    "Inventory",
    "MigrationPlan",
    "Move",
    "PackResult",
    "PlannerInputError",
    "ServerRecord",
    "VmState",
    "Zone",
    "demand_of",
    "first_fit_decreasing",
    "inventory_from_records",
    "pack_vectors",
    "plan_consolidation",
    "plan_inventory",
    "plan_migration",
    "pool_bound",
    "read_servers_csv",
]
