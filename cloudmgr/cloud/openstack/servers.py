"""Nova's servers: booting idempotently (a server tag indexes the key), reading, listing
page by page, deleting, and the lifecycle actions (stop, start, resize, migrate).

Needs Nova microversion 2.52+ (server tags at boot, used as the idempotency index) and
2.56+ for a cold migration to a named host; the SDK negotiates the highest both sides know.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable, Collection
from datetime import datetime
from typing import Any

from openstack.compute.v2 import server as sdk_server

from cloudmgr.cloud.checks import encode_user_data
from cloudmgr.cloud.errors import CloudBadRequest, CloudConflict
from cloudmgr.cloud.openstack.connection import FirstTry
from cloudmgr.cloud.openstack.convert import idempotency_tag, iso_utc, parse_time, server_addresses
from cloudmgr.cloud.openstack.flavors import OpenStackFlavors
from cloudmgr.cloud.openstack.keypairs import nova_keypair_name, project_keypair_name
from cloudmgr.cloud.types import IDEMPOTENCY_METADATA_KEY, Server, ServerPage, ServerSpec

#: Servers asked per page when a project's servers are read together (get_servers).
LISTING_PAGE = 1000


class _NovaLinkedServer(sdk_server.Server):
    """A server listed page by page following Nova's own next links only.

    Without a next link, the SDK asks once more with the last server as the marker "in case";
    Nova may answer a server still being built again for that marker, which the SDK takes for an
    endless loop and fails the whole listing.  Nova gives a next link whenever a page is full, so
    nothing is lost by not asking."""

    @classmethod
    def _get_next_link(  # type: ignore[override]
        cls, uri: str, response: Any, data: Any, marker: Any, limit: Any, total_yielded: int
    ) -> tuple[str | None, Any]:
        links = data.get("servers_links") if isinstance(data, dict) else None
        if not any(isinstance(link, dict) and link.get("rel") == "next" for link in links or ()):
            return None, {}
        return super()._get_next_link(uri, response, data, marker, limit, total_yielded)


class OpenStackServers(OpenStackFlavors):
    """Servers; a subclass of the flavors' mixin because Nova reports a server's flavor by
    name, which the flavor list turns back into an id."""

    def _to_server(self, server: Any) -> Server:
        flavor_id, flavor_name = self._flavor_id(server.flavor)
        image = server.image
        fault = server.fault or {}
        return Server(
            id=str(server.id),
            name=str(server.name or ""),
            status=str(server.status or "UNKNOWN"),
            project_id=server.project_id,
            flavor_id=flavor_id,
            flavor_name=flavor_name,
            image_id=str(image.id) if image and getattr(image, "id", None) else None,
            host=server.compute_host,
            metadata={str(k): str(v) for k, v in (server.metadata or {}).items()},
            addresses=server_addresses(server.addresses),
            fault_message=fault.get("message") if isinstance(fault, dict) else None,
            created_at=parse_time(server.created_at),
            updated_at=parse_time(server.updated_at),
            task_state=server.task_state,
            key_name=project_keypair_name(server.project_id, server.key_name),
            security_groups=tuple(sorted({str(g.get("name")) for g in server.security_groups or ()})),
        )

    def _find_by_key_raw(self, project_id: str, key: str) -> Any | None:
        candidates = [
            s
            for s in self._admin.compute.servers(
                details=True, all_projects=True, project_id=project_id, tags=idempotency_tag(key)
            )
            # The tag is a digest: the metadata holds the key itself, to be sure.
            if (s.metadata or {}).get(IDEMPOTENCY_METADATA_KEY) == key
        ]
        if not candidates:
            return None
        # Two concurrent first calls can both boot; everyone then agrees on the oldest.
        return min(candidates, key=lambda s: (str(s.created_at or ""), str(s.id)))

    def find_server_by_key(self, project_id: str, key: str) -> Server | None:
        found = self._call(f"find server by key {key}", lambda: self._find_by_key_raw(project_id, key))
        return None if found is None else self._to_server(found)

    def create_server(self, project_id: str, spec: ServerSpec, *, first_try: bool = False) -> Server:
        key = spec.idempotency_key
        if not key or len(key) > 255:
            raise CloudBadRequest("an idempotency key of 1 to 255 characters is required", key)
        metadata = {**spec.metadata, IDEMPOTENCY_METADATA_KEY: key}
        networks: Any = [{"uuid": spec.network_id}] if spec.network_id else "none"
        # Issue 16: what makes the server usable (login key, cloud-init, firewall).
        extras: dict[str, Any] = {}
        user_data = encode_user_data(spec.user_data, f"create server {spec.name}")
        if user_data is not None:
            extras["user_data"] = user_data
        if spec.key_name:
            extras["key_name"] = nova_keypair_name(project_id, spec.key_name)
        if spec.security_groups:
            extras["security_groups"] = [{"name": g} for g in spec.security_groups]

        once, answered = FirstTry(first_try), {"by_boot": False}

        def lookup_or_boot() -> Any:
            # Looking up first makes the whole call safe to retry: a boot that reached
            # Nova before the connection dropped is found instead of booted again.
            first = once.take()
            existing = None if first else self._find_by_key_raw(project_id, key)
            if existing is not None:
                return existing
            conn = self._project_conn(project_id)
            created = conn.compute.create_server(
                name=spec.name,
                flavor_id=spec.flavor_id,
                image_id=spec.image_id,
                networks=networks,
                metadata=metadata,
                tags=[idempotency_tag(key)],
                **extras,
            )
            if first:
                answered["by_boot"] = True
                return created  # see the end
            # The POST answer lacks most fields; read it back with the admin view (host).
            return self._admin.compute.get_server(created.id)

        server = self._to_server(self._call(f"create server {spec.name}", lookup_or_boot))
        if answered["by_boot"]:
            # Nova's answer to the boot holds little more than the id; a first try does not
            # read it back (one call fewer per server): wait_for_server reads the rest.
            server = dataclasses.replace(
                server,
                project_id=project_id,
                status=server.status if server.status != "UNKNOWN" else "BUILD",
                flavor_id=server.flavor_id or spec.flavor_id,
            )
        return self._remember_project(server)

    def get_server(self, server_id: str) -> Server:
        return self._remember_project(
            self._to_server(self._call(f"get server {server_id}", lambda: self._admin.compute.get_server(server_id)))
        )

    def list_servers(
        self,
        project_id: str | None = None,
        limit: int = 100,
        marker: str | None = None,
        changes_since: datetime | None = None,
    ) -> ServerPage:
        if limit < 1:
            raise CloudBadRequest("the page size must be at least 1", str(limit))
        # Nova caps a page at its [api] max_limit (1000 by default) and says so with a next
        # link: asking one more than ``limit`` (to know whether a next page exists) would, at a
        # limit of 1000, get 1000 and no hint of the rest.  So ``limit`` is asked, the SDK's
        # pagination fills the page across Nova's pages when the cap is lower, and a page filled
        # to ``limit`` names its last server as the marker (the next page may then be empty).
        query: dict[str, Any] = {"all_projects": True, "limit": limit}
        if project_id:
            query["project_id"] = project_id
        if marker:
            query["marker"] = marker
        if changes_since is not None:
            query["changes_since"] = iso_utc(changes_since)

        def fetch() -> list[Any]:
            listing = _NovaLinkedServer.list(self._admin.compute, paginated=True, base_path="/servers/detail", **query)
            return list(itertools.islice(listing, limit))

        page = self._call("list servers", fetch)
        next_marker = str(page[-1].id) if len(page) == limit else None
        return ServerPage(servers=tuple(self._to_server(s) for s in page), next_marker=next_marker)

    def get_servers(
        self, project_id: str, server_ids: Collection[str], *, changes_since: datetime | None = None
    ) -> dict[str, Server]:
        wanted = set(server_ids)
        if not wanted:
            return {}
        # Nova's own cap on a page (max_limit) is 1000 by default; a lower cap gives a next
        # link, which the SDK follows.
        query: dict[str, Any] = {"all_projects": True, "project_id": project_id, "limit": LISTING_PAGE}
        if changes_since is not None:
            query["changes_since"] = iso_utc(changes_since)

        def fetch() -> list[Any]:
            listing = sdk_server.Server.list(self._admin.compute, paginated=True, base_path="/servers/detail", **query)
            return [s for s in listing if str(s.id) in wanted]

        found = self._call(f"list servers of project {project_id}", fetch)
        return {str(s.id): self._remember_project(self._to_server(s)) for s in found}

    def delete_server(self, server_id: str, *, wait: bool = False, timeout: float = 300.0) -> None:
        self._call(
            f"delete server {server_id}",
            lambda: self._admin.compute.delete_server(server_id, ignore_missing=True),
        )
        if wait:
            self.wait_for_server_deleted(server_id, timeout)

    def list_servers_on_host(self, host: str) -> list[Server]:
        found = self._call(
            f"list servers on host {host}",
            lambda: list(self._admin.compute.servers(details=True, all_projects=True, compute_host=host)),
        )
        # Nova matches the host filter as a pattern on some versions: keep exact matches.
        return [s for s in (self._to_server(raw) for raw in found) if s.host == host]

    # ---- lifecycle actions ------------------------------------------------------------

    def _server_action(
        self,
        server_id: str,
        action: str,
        operation: Callable[[Any], None],
        already_done: frozenset[str] = frozenset(),
    ) -> None:
        """Run a server action; a 409 because the server is already where the action would
        take it counts as success, so these actions can be repeated safely."""
        try:
            self._call(f"{action} server {server_id}", lambda: operation(self._admin.compute), idempotent=False)
        except CloudConflict:
            if already_done:
                server = self.get_server(server_id)
                if server.status in already_done and server.task_state is None:
                    return
            raise

    def stop_server(self, server_id: str) -> None:
        self._server_action(server_id, "stop", lambda c: c.stop_server(server_id), frozenset({"SHUTOFF"}))

    def start_server(self, server_id: str) -> None:
        self._server_action(server_id, "start", lambda c: c.start_server(server_id), frozenset({"ACTIVE"}))

    def resize_server(self, server_id: str, flavor_id: str) -> None:
        self._server_action(server_id, "resize", lambda c: c.resize_server(server_id, flavor_id))

    def confirm_resize(self, server_id: str) -> None:
        self._server_action(
            server_id,
            "confirm resize of",
            lambda c: c.confirm_server_resize(server_id),
            frozenset({"ACTIVE", "SHUTOFF"}),
        )

    def live_migrate(self, server_id: str, host: str | None = None) -> None:
        # 'auto' lets Nova pick block migration when there is no shared storage.
        self._server_action(
            server_id,
            "live-migrate",
            lambda c: c.live_migrate_server(server_id, host=host, block_migration="auto"),
        )

    def cold_migrate(self, server_id: str, host: str | None = None) -> None:
        self._server_action(server_id, "migrate", lambda c: c.migrate_server(server_id, host=host))

    def confirm_migration(self, server_id: str) -> None:
        # Nova confirms a cold migration exactly like a resize.
        self.confirm_resize(server_id)

    def rebuild_server(self, server_id: str, image_id: str) -> None:
        """Issue 16: a server's snapshot restored.  The admin connection rebuilds it (Glance
        shows the admin the department's private snapshot); a 409 from a rebuild from that
        same image already under way is the retry of an accepted call."""
        try:
            self._call(
                f"rebuild server {server_id}",
                lambda: self._admin.compute.rebuild_server(server_id, image_id),
                idempotent=False,
            )
        except CloudConflict:
            server = self.get_server(server_id)
            if server.status == "REBUILD" and server.image_id == image_id:
                return
            raise

    def revert_migration(self, server_id: str) -> None:
        # ...and reverts it like a resize too.
        self._server_action(
            server_id,
            "revert migration of",
            lambda c: c.revert_server_resize(server_id),
            frozenset({"ACTIVE", "SHUTOFF"}),
        )
