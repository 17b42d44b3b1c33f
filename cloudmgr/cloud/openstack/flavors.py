"""Nova's flavors, and a server's flavor id found from the name Nova embeds."""

from __future__ import annotations

import logging
from typing import Any

from cloudmgr.cloud.errors import CloudError
from cloudmgr.cloud.openstack.connection import OpenStackConnection
from cloudmgr.cloud.openstack.convert import to_flavor
from cloudmgr.cloud.types import Flavor

log = logging.getLogger(__name__)


class OpenStackFlavors(OpenStackConnection):
    def list_flavors(self) -> list[Flavor]:
        # is_public=None asks Nova for private flavors too (admins see them all).
        flavors = self._call("list flavors", lambda: list(self._admin.compute.flavors(details=True, is_public="None")))
        result = [to_flavor(f) for f in flavors]
        with self._lock:
            self._flavor_ids_by_name = {f.name: f.id for f in result}
        return result

    def _flavor_id(self, flavor: Any) -> tuple[str | None, str | None]:
        """(id, name) of a server's flavor.  Since microversion 2.47 Nova embeds the
        flavor's name and sizes instead of its id (and the SDK then reports the name as
        the id), so the id is looked up by name."""
        if not flavor:
            return None, None
        embedded_name = flavor.original_name
        if not embedded_name:
            return (str(flavor.id) if flavor.id else None), flavor.name
        with self._lock:
            known = self._flavor_ids_by_name.get(embedded_name)
        if known is None:
            try:
                self.list_flavors()
            except CloudError:
                log.warning("could not list flavors to resolve %r", embedded_name, exc_info=True)
            with self._lock:
                known = self._flavor_ids_by_name.get(embedded_name)
        return known, embedded_name
