"""The simulated Neutron's floating IPs: addresses of an external network held by a
project (counted against its floating IP quota), found again by their idempotency tag,
pointed at a server's port (one per server on a network, with a stable id)."""

from __future__ import annotations

import ipaddress
import uuid
from typing import Any

from cloudmgr.cloud.errors import CloudBadRequest, CloudConflict, CloudNotFound, CloudQuotaExceeded
from cloudmgr.cloud.simulated.quotas import quota_of
from cloudmgr.cloud.simulated.records import find_live, iso, now, require_project, stable_id
from cloudmgr.cloud.simulated.store import SimulatedStore
from cloudmgr.cloud.types import UNLIMITED, FloatingIp


def server_port_id(record: dict[str, Any]) -> str | None:
    """The id of the server's port: it has one when it got an address on a network."""
    if record.get("network_id") and record["addresses"]:
        return stable_id("port", record["id"])
    return None


def _floating_ips(state: dict[str, Any]) -> dict[str, Any]:
    fips: dict[str, Any] = state.setdefault("floating_ips", {})
    for fip in fips.values():
        # Neutron deletes a deleted server's port, which frees its address.
        server = state["servers"].get(fip["server_id"]) if fip["server_id"] else None
        if fip["server_id"] and (server is None or server["deleted"]):
            fip.update(port_id=None, server_id=None)
    return fips


def _find(state: dict[str, Any], floating_ip_id: str) -> dict[str, Any]:
    fip = _floating_ips(state).get(floating_ip_id)
    if fip is None:
        detail = f"Floating IP {floating_ip_id} could not be found"
        raise CloudNotFound(f"floating IP {floating_ip_id} not found", detail, status_code=404)
    return fip  # type: ignore[no-any-return]


def to_floating_ip(fip: dict[str, Any]) -> FloatingIp:
    return FloatingIp(
        id=fip["id"],
        address=fip["address"],
        port_id=fip["port_id"],
        server_id=fip["server_id"],
        project_id=fip["project_id"],
        idempotency_tag=fip["tag"],
    )


class SimulatedFloatingIps(SimulatedStore):
    def allocate_floating_ip(
        self, project_id: str, external_network: str, idempotency_tag: str, *, first_try: bool = False
    ) -> FloatingIp:
        if not idempotency_tag or len(idempotency_tag) > 200:
            raise CloudBadRequest("an idempotency tag of 1 to 200 characters is required", idempotency_tag)
        action = f"allocate a floating IP of {external_network} to project {project_id}"
        with self._transaction() as state:
            require_project(state, project_id)
            held = [f for f in _floating_ips(state).values() if f["project_id"] == project_id]
            existing = [] if first_try else [f for f in held if f["tag"] == idempotency_tag]
            if existing:
                return to_floating_ip(min(existing, key=lambda f: (f["created_at"], f["id"])))
            network = next(
                (n for n in state["networks"].values() if external_network in (n["id"], n["name"])),
                None,
            )
            if network is None:
                raise CloudNotFound(f"{action} failed: no network {external_network}", status_code=404)
            if not network.get("is_external"):
                raise CloudBadRequest(
                    f"{action} rejected as invalid",
                    f"Network {network['id']} is not a valid external network",
                    status_code=400,
                )
            limit = quota_of(state, project_id).network.floating_ips
            if limit != UNLIMITED and len(held) + 1 > limit:
                raise CloudQuotaExceeded(
                    f"{action} refused: quota exceeded",
                    "Quota exceeded for resources: ['floatingip'].",
                    status_code=409,
                )
            subnet = ipaddress.ip_network(network["cidrs"][0])
            address = str(subnet.network_address + network["next_address"])
            if ipaddress.ip_address(address) not in subnet:
                raise CloudConflict(f"{action} failed: the network has no address left", status_code=409)
            network["next_address"] += 1
            fip = {
                "id": str(uuid.uuid4()),
                "address": address,
                "network_id": network["id"],
                "project_id": project_id,
                "port_id": None,
                "server_id": None,
                "tag": idempotency_tag,
                "created_at": iso(now()),
            }
            state["floating_ips"][fip["id"]] = fip
            return to_floating_ip(fip)

    def associate_floating_ip(self, floating_ip_id: str, server_id: str) -> FloatingIp:
        action = f"associate floating IP {floating_ip_id} with server {server_id}"
        with self._transaction() as state:
            fip = _find(state, floating_ip_id)
            server = find_live(state, server_id)
            port_id = server_port_id(server)
            if port_id is None:
                raise CloudConflict(f"{action} refused: the server has no port with an address")
            if fip["port_id"] == port_id:
                return to_floating_ip(fip)
            if fip["port_id"]:
                raise CloudConflict(
                    f"{action} refused: the address is associated with another port", f"port {fip['port_id']}"
                )
            fip.update(port_id=port_id, server_id=server_id)
            return to_floating_ip(fip)

    def disassociate_floating_ip(self, floating_ip_id: str) -> FloatingIp:
        with self._transaction() as state:
            fip = _find(state, floating_ip_id)
            fip.update(port_id=None, server_id=None)
            return to_floating_ip(fip)

    def release_floating_ip(self, floating_ip_id: str) -> None:
        with self._transaction() as state:
            _floating_ips(state).pop(floating_ip_id, None)

    def list_floating_ips(self, project_id: str) -> list[FloatingIp]:
        with self._transaction() as state:
            require_project(state, project_id)
            held = [to_floating_ip(f) for f in _floating_ips(state).values() if f["project_id"] == project_id]
        return sorted(held, key=lambda f: (f.address, f.id))
