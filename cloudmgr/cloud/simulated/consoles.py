"""The simulated server consoles: a noVNC URL with a fresh token, and a boot log."""

from __future__ import annotations

import secrets

from cloudmgr.cloud.errors import CloudBadRequest
from cloudmgr.cloud.simulated.records import find_live
from cloudmgr.cloud.simulated.store import SimulatedStore
from cloudmgr.cloud.types import ConsoleUrl

#: Where the simulated consoles "are": a reserved name, nothing answers there.
CONSOLE_BASE_URL = "http://console.simulated.invalid:6080/vnc_auto.html"


class SimulatedConsoles(SimulatedStore):
    def console_url(self, server_id: str) -> ConsoleUrl:
        with self._transaction() as state:
            find_live(state, server_id)
        return ConsoleUrl(type="novnc", url=f"{CONSOLE_BASE_URL}?token={secrets.token_hex(16)}")

    def console_log(self, server_id: str, lines: int | None = None) -> str:
        if lines is not None and lines < 1:
            raise CloudBadRequest("read console log rejected as invalid: ask for at least one line", str(lines))
        with self._transaction() as state:
            record = find_live(state, server_id)
            log = [
                f"simulated console of {record['name']} ({record['id']})",
                f"booted on {record['host'] or 'no host'} at {record['created_at']}",
                f"cloud-init: user data {'given' if record.get('user_data') else 'none'}",
                f"cloud-init: ssh key {record.get('key_name') or 'none'}",
                f"{record['name']} login:",
            ]
        return "\n".join(log if lines is None else log[-lines:])
