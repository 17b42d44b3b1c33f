"""The simulated Nova's flavors (seeded; fixed afterwards)."""

from __future__ import annotations

from cloudmgr.cloud.simulated.store import SimulatedStore
from cloudmgr.cloud.types import Flavor


class SimulatedFlavors(SimulatedStore):
    def list_flavors(self) -> list[Flavor]:
        with self._transaction() as state:
            return [Flavor(**f) for f in state["flavors"].values()]
