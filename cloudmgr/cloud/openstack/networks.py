"""Neutron's networks and their subnets."""

from __future__ import annotations

from typing import Any

from cloudmgr.cloud.openstack.connection import OpenStackConnection
from cloudmgr.cloud.types import Network


class OpenStackNetworks(OpenStackConnection):
    def list_networks(self) -> list[Network]:
        def fetch() -> tuple[list[Any], list[Any]]:
            return list(self._admin.network.networks()), list(self._admin.network.subnets())

        networks, subnets = self._call("list networks", fetch)
        cidrs: dict[str, list[str]] = {}
        for subnet in subnets:
            cidrs.setdefault(str(subnet.network_id), []).append(str(subnet.cidr))
        return [
            Network(
                id=str(n.id),
                name=str(n.name or ""),
                is_shared=bool(n.is_shared),
                subnet_ids=tuple(str(s) for s in n.subnet_ids or ()),
                cidrs=tuple(cidrs.get(str(n.id), ())),
                status=str(n.status or ""),
                project_id=n.project_id,
            )
            for n in networks
        ]
