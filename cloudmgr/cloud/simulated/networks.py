"""The simulated Neutron's networks (seeded; a server's port takes the next address)."""

from __future__ import annotations

from cloudmgr.cloud.simulated.store import SimulatedStore
from cloudmgr.cloud.types import Network


class SimulatedNetworks(SimulatedStore):
    def list_networks(self) -> list[Network]:
        with self._transaction() as state:
            return [
                Network(
                    id=n["id"],
                    name=n["name"],
                    is_shared=n["is_shared"],
                    subnet_ids=tuple(n["subnet_ids"]),
                    cidrs=tuple(n["cidrs"]),
                    status="ACTIVE",
                    project_id=n["project_id"],
                )
                for n in state["networks"].values()
            ]
