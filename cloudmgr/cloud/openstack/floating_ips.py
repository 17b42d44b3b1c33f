"""Neutron's floating IPs: allocated to a project idempotently, pointed at a server's port.

The lab's Neutron has no tag extension on floating IPs, but every Neutron keeps a
description: the idempotency tag is written there (``cloudmgr-tag:<tag>``) and found again
by listing the project's addresses.
"""

from __future__ import annotations

from typing import Any

from openstack import exceptions as os_exc

from cloudmgr.cloud.errors import CloudBadRequest, CloudConflict, CloudNotFound
from cloudmgr.cloud.openstack.connection import FirstTry, OpenStackConnection
from cloudmgr.cloud.openstack.convert import find_or_none
from cloudmgr.cloud.types import FloatingIp

TAG_DESCRIPTION_PREFIX = "cloudmgr-tag:"


def to_floating_ip(fip: Any) -> FloatingIp:
    description = str(fip.description or "")
    port_details = fip.port_details or {}
    server_id = None
    if fip.port_id and str(port_details.get("device_owner") or "").startswith("compute:"):
        server_id = port_details.get("device_id") or None
    return FloatingIp(
        id=str(fip.id),
        address=str(fip.floating_ip_address or ""),
        port_id=fip.port_id or None,
        server_id=server_id,
        project_id=fip.project_id,
        idempotency_tag=description.removeprefix(TAG_DESCRIPTION_PREFIX)
        if description.startswith(TAG_DESCRIPTION_PREFIX)
        else None,
    )


def _oldest(fips: list[Any]) -> Any:
    return min(fips, key=lambda f: (str(f.created_at or ""), str(f.id)))


class OpenStackFloatingIps(OpenStackConnection):
    def _tagged(self, project_id: str, description: str) -> list[Any]:
        return [f for f in self._admin.network.ips(project_id=project_id) if (f.description or "") == description]

    def allocate_floating_ip(
        self, project_id: str, external_network: str, idempotency_tag: str, *, first_try: bool = False
    ) -> FloatingIp:
        if not idempotency_tag or len(idempotency_tag) > 200:
            raise CloudBadRequest("an idempotency tag of 1 to 200 characters is required", idempotency_tag)
        self._require_project(project_id)
        network = self._admin.network
        description = TAG_DESCRIPTION_PREFIX + idempotency_tag
        action = f"allocate a floating IP of {external_network} to project {project_id}"

        once = FirstTry(first_try)

        def lookup_or_allocate() -> Any:
            # Looking up first: an allocation that reached Neutron before the connection
            # dropped is found, not repeated.
            first = once.take()
            existing = [] if first else self._tagged(project_id, description)
            if existing:
                return _oldest(existing)
            external_id = self._network_ids.get(external_network)
            if external_id is None:
                external = find_or_none(network.find_network, external_network)
                if external is None:
                    raise CloudNotFound(f"{action} failed: no network {external_network}")
                external_id = self._network_ids[external_network] = str(external.id)
            try:
                created = network.create_ip(
                    floating_network_id=external_id, project_id=project_id, description=description
                )
            except os_exc.NotFoundException:
                self._network_ids.pop(external_network, None)  # made again under the name: ask anew
                raise
            if first:
                return created
            # Two concurrent first calls can both allocate: keep the oldest, give ours back.
            tagged = self._tagged(project_id, description)
            keep = _oldest(tagged) if tagged else created
            if str(keep.id) != str(created.id):
                network.delete_ip(created, ignore_missing=True)
            return keep

        return to_floating_ip(self._call(action, lookup_or_allocate, idempotent=False))

    def _get_ip(self, floating_ip_id: str) -> Any:
        return self._admin.network.get_ip(floating_ip_id)

    def associate_floating_ip(self, floating_ip_id: str, server_id: str) -> FloatingIp:
        network = self._admin.network
        action = f"associate floating IP {floating_ip_id} with server {server_id}"

        def associate() -> Any:
            fip = self._get_ip(floating_ip_id)
            ports = sorted(
                (p for p in network.ports(device_id=server_id) if p.fixed_ips),
                key=lambda p: (str(p.created_at or ""), str(p.id)),
            )
            if not ports:
                self._admin.compute.get_server(server_id)  # CloudNotFound for a missing server
                raise CloudConflict(f"{action} refused: the server has no port with an address")
            port = ports[0]
            if fip.port_id == port.id:
                return fip
            if fip.port_id:
                raise CloudConflict(
                    f"{action} refused: the address is associated with another port", f"port {fip.port_id}"
                )
            return network.update_ip(fip, port_id=port.id)

        return to_floating_ip(self._call(action, associate))

    def disassociate_floating_ip(self, floating_ip_id: str) -> FloatingIp:
        def disassociate() -> Any:
            fip = self._get_ip(floating_ip_id)
            if not fip.port_id:
                return fip
            return self._admin.network.update_ip(fip, port_id=None)

        return to_floating_ip(self._call(f"disassociate floating IP {floating_ip_id}", disassociate))

    def release_floating_ip(self, floating_ip_id: str) -> None:
        self._call(
            f"release floating IP {floating_ip_id}",
            lambda: self._admin.network.delete_ip(floating_ip_id, ignore_missing=True),
        )

    def list_floating_ips(self, project_id: str) -> list[FloatingIp]:
        self._require_project(project_id)
        fips = self._call(
            f"list floating IPs of project {project_id}",
            lambda: list(self._admin.network.ips(project_id=project_id)),
        )
        return sorted((to_floating_ip(f) for f in fips), key=lambda f: (f.address, f.id))
