"""Nova's remote console (noVNC) and console output of a server."""

from __future__ import annotations

from cloudmgr.cloud.errors import CloudBadRequest, CloudError
from cloudmgr.cloud.openstack.connection import OpenStackConnection
from cloudmgr.cloud.types import ConsoleUrl


class OpenStackConsoles(OpenStackConnection):
    def console_url(self, server_id: str) -> ConsoleUrl:
        # Microversion 2.6+: POST /servers/{id}/remote-consoles; Nova mints a token per call.
        console = self._call(
            f"open a console of server {server_id}",
            lambda: self._admin.compute.create_console(server_id, console_type="novnc"),
            idempotent=False,
        )
        answer = console or {}
        if not answer.get("url"):
            raise CloudError(f"the cloud gave no console URL for server {server_id}", str(console))
        return ConsoleUrl(type=str(answer.get("type") or "novnc"), url=str(answer["url"]))

    def console_log(self, server_id: str, lines: int | None = None) -> str:
        if lines is not None and lines < 1:
            raise CloudBadRequest("read console log rejected as invalid: ask for at least one line", str(lines))
        output = self._call(
            f"read the console log of server {server_id}",
            lambda: self._admin.compute.get_server_console_output(server_id, length=lines),
        )
        return str((output or {}).get("output") or "")
