"""The connections every OpenStack resource module works through, and ``_call``, through
which every SDK call goes: it translates SDK and keystoneauth exceptions (see
:mod:`.errors`) and retries transient failures.

The provider authenticates as a cloud admin (a clouds.yaml entry).  Reads and admin
operations use that connection; what must land in a department's project (booting a
server, snapshotting it, uploading an image for it) uses ``_project_conn``.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar, cast

import openstack
import openstack.config
import openstack.connection

if TYPE_CHECKING:
    from openstack.identity.v3._proxy import Proxy as IdentityV3

from cloudmgr.cloud.errors import CloudError
from cloudmgr.cloud.openstack.errors import translate_sdk_error
from cloudmgr.cloud.provider import CloudProvider
from cloudmgr.cloud.reachability import tell
from cloudmgr.cloud.retry import RetryPolicy, call_with_retry, is_retryable, is_retryable_unsent
from cloudmgr.cloud.types import Server

T = TypeVar("T")


class FirstTry:
    """A caller's ``first_try`` (see CloudProvider.create_server) holds for the first attempt
    of a call only: ``_call`` may send it again after an attempt the cloud acted on (its answer
    lost), and that one must look up first."""

    def __init__(self, first_try: bool) -> None:
        self._left = first_try

    def take(self) -> bool:
        """Whether this attempt may skip the look-up (True at most once)."""
        first, self._left = self._left, False
        return first


#: How many servers' projects are remembered (see ``_server_projects``).
SERVER_PROJECTS_KEPT = 10_000


class OpenStackConnection(CloudProvider):
    """The state the resource mixins of :class:`~cloudmgr.cloud.openstack.OpenStackProvider`
    share: configuration, connections, the retry policy and the caches.  The constructor's
    arguments are documented on OpenStackProvider."""

    def __init__(
        self,
        cloud: str | None = None,
        region: str | None = None,
        config_files: Sequence[str | Path] | None = None,
        timeout: float = 60.0,
        retries: int = 3,
        *,
        retry_policy: RetryPolicy | None = None,
        poll_interval: float = 1.0,
        project_roles: Sequence[str] = ("member",),
    ) -> None:
        self._cloud = cloud
        self._region = region
        self._config_files = [str(f) for f in config_files] if config_files else None
        self._timeout = timeout
        self._retry = retry_policy or RetryPolicy(attempts=retries + 1)
        self.poll_interval = poll_interval
        self._project_roles = tuple(project_roles)
        self._lock = threading.Lock()
        self._admin_conn: openstack.connection.Connection | None = None
        self._project_conns: dict[str, openstack.connection.Connection] = {}
        # The project of each server this provider made or read one by one (never changes in
        # Nova): an attach acts as that project without reading the server again.
        self._server_projects: dict[str, str] = {}
        # External networks' ids by the name clouds.yaml's cloud gives them (find_network asks
        # Neutron twice per name): dropped when Neutron no longer knows the id.
        self._network_ids: dict[str, str] = {}
        self._role_ids: dict[str, str] = {}
        self._flavor_ids_by_name: dict[str, str] = {}

    def __repr__(self) -> str:
        return f"OpenStackProvider(cloud={self._cloud!r}, region={self._region!r})"

    @property
    def name(self) -> str:
        label = f"OpenStack {self._cloud or os.environ.get('OS_CLOUD', '')}".strip()
        return f"{label} ({self._region})" if self._region else label

    @property
    def is_simulated(self) -> bool:
        return False

    def _call(self, action: str, operation: Callable[[], T], *, idempotent: bool = True) -> T:
        """Run ``operation`` (which talks to the SDK) with error translation and retries.

        ``idempotent`` False means the operation must not run twice, so it is only resent
        when the cloud cannot have acted on the first attempt.
        """

        def translated() -> T:
            try:
                return operation()
            except Exception as exc:
                mapped = translate_sdk_error(exc, action)
                if mapped is None or mapped is exc:
                    raise
                raise mapped from exc

        try:
            result = call_with_retry(
                translated,
                self._retry,
                description=f"{self.name}: {action}",
                should_retry=is_retryable if idempotent else is_retryable_unsent,
            )
        except CloudError as exc:
            tell(self.reachability_observer, exc)
            raise
        tell(self.reachability_observer, None)
        return result

    def _connect(self) -> openstack.connection.Connection:
        if self._config_files:
            config = openstack.config.OpenStackConfig(config_files=self._config_files)
            region = config.get_one(cloud=self._cloud, region_name=self._region, api_timeout=self._timeout)
            return openstack.connection.Connection(config=region)
        return openstack.connect(cloud=self._cloud, region_name=self._region, api_timeout=self._timeout)

    @property
    def _admin(self) -> openstack.connection.Connection:
        with self._lock:
            if self._admin_conn is None:
                # Building the connection only reads configuration; it authenticates on
                # first use, so a cloud that is down does not stop cloudmgr from starting.
                self._admin_conn = self._call("read the cloud configuration", self._connect, idempotent=False)
            return self._admin_conn

    def _project_conn(self, project_id: str) -> openstack.connection.Connection:
        admin = self._admin
        with self._lock:
            conn = self._project_conns.get(project_id)
            if conn is None:
                conn = admin.connect_as(project_id=project_id)
                self._project_conns[project_id] = conn
            return conn

    @property
    def _identity(self) -> IdentityV3:
        # Keystone v2 is long gone; the SDK's type still admits it.
        return cast("IdentityV3", self._admin.identity)

    def _remember_project(self, server: Server) -> Server:
        if server.project_id:
            if len(self._server_projects) >= SERVER_PROJECTS_KEPT:
                self._server_projects.clear()  # a cache, not a register: bounded
            self._server_projects[server.id] = server.project_id
        return server

    def _server_project(self, server_id: str) -> str | None:
        """The server's project, read from Nova unless remembered (NotFound for a missing
        server: call it inside ``_call``)."""
        known = self._server_projects.get(server_id)
        if known is None:
            known = self._admin.compute.get_server(server_id).project_id
            if known:
                self._server_projects[server_id] = str(known)
        return known

    def _require_project(self, project_id: str) -> None:
        # Nova and Neutron accept quotas for any string as project id; asking Keystone
        # first turns a typo into CloudNotFound instead of quotas for a phantom project.
        self._call(f"get project {project_id}", lambda: self._identity.get_project(project_id))
