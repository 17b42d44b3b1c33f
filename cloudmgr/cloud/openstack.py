"""OpenStackProvider: a real OpenStack cloud through openstacksdk.

Every SDK call goes through :meth:`OpenStackProvider._call`, which translates SDK and
keystoneauth exceptions into :mod:`cloudmgr.cloud.errors` and retries transient failures;
every SDK object is converted into a :mod:`cloudmgr.cloud.types` value before it leaves
this module.

The provider authenticates as a cloud admin (a clouds.yaml entry).  Reads and admin
operations (quotas, migrations, hypervisors, Placement) use that connection; booting a
server, snapshotting it and uploading an image for a department happen in the
department's project (``connect_as_project``) so quotas and ownership land there, which
is why :meth:`ensure_project` gives the admin user a role in every project it creates.

Needs Nova microversion 2.52+ (server tags at boot, used as the idempotency index) and
2.56+ for a cold migration to a named host; the SDK negotiates the highest both sides know.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, cast

import keystoneauth1.exceptions as ks_exc
import openstack
import openstack.config
import openstack.connection
import openstack.exceptions as os_exc
import requests
from openstack.compute.v2 import server as sdk_server

if TYPE_CHECKING:
    from openstack.identity.v3._proxy import Proxy as IdentityV3

from cloudmgr.cloud.errors import (
    CloudBadRequest,
    CloudConflict,
    CloudError,
    CloudForbidden,
    CloudNotFound,
    CloudNoValidHost,
    CloudQuotaExceeded,
    CloudTimeout,
    CloudUnavailable,
)
from cloudmgr.cloud.provider import NO_VALID_HOST_MARKER, CloudProvider
from cloudmgr.cloud.retry import RetryPolicy, call_with_retry, is_retryable, is_retryable_unsent
from cloudmgr.cloud.types import (
    IDEMPOTENCY_METADATA_KEY,
    Allocation,
    ComputeQuota,
    ComputeUsage,
    Flavor,
    HostAggregate,
    Hypervisor,
    Image,
    Inventory,
    Network,
    NetworkQuota,
    ProjectRef,
    QuotaSet,
    ResourceProvider,
    Server,
    ServerPage,
    ServerSpec,
)

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Prefix of the server tag that indexes the idempotency key (Nova filters servers by tag).
IDEMPOTENCY_TAG_PREFIX = "cloudmgr-key-"

# Nova: "Quota exceeded for instances: ..." (403), "Maximum number of ports exceeded" (403);
# Neutron: "Quota exceeded for resources: ['port']" (409); old clouds answer 413.
_QUOTA_TEXT = re.compile(r"quota exceeded|over ?quota|exceeds? .*quota|maximum number of \w+ exceeded", re.I)

# ConnectFailure covers both "nothing listens there" (the request never left) and "the
# connection dropped mid-request" (it may have been processed); only the former is safe
# to resend for a call that must not run twice.
_NEVER_SENT_TEXT = re.compile(
    r"connection refused|failed to establish a new connection|name or service not known"
    r"|nodename nor servname|temporary failure in name resolution|no route to host",
    re.I,
)

_NETWORK_QUOTA_FIELDS = tuple(f.name for f in dataclasses.fields(NetworkQuota))

_IMAGE_FAILED_STATUSES = frozenset({"killed", "deleted", "pending_delete", "deactivated"})


# ---- error translation ------------------------------------------------------------------


def translate_sdk_error(error: BaseException, action: str = "cloud call") -> CloudError | None:
    """The CloudError for an exception raised by openstacksdk or keystoneauth, or None
    when ``error`` does not come from them (a bug, left to propagate as it is).

    ``action`` says what was being done, for the human message ("get server x failed: ...").
    """
    if isinstance(error, CloudError):
        return error
    if isinstance(error, os_exc.HttpException):
        return _from_http_status(error.status_code, _sdk_http_detail(error), action)
    if isinstance(error, ks_exc.HttpError):
        return _from_http_status(error.http_status, _ks_http_detail(error), action)
    detail = str(error)
    if isinstance(error, ks_exc.ConnectFailure):
        return CloudUnavailable(
            f"{action} failed: the cloud could not be reached",
            detail,
            request_reached_server=not _NEVER_SENT_TEXT.search(detail),
        )
    if isinstance(error, ks_exc.ConnectTimeout):
        # keystoneauth raises this for read timeouts too, so the request may have arrived.
        return CloudUnavailable(f"{action} failed: the cloud did not answer in time", detail)
    if isinstance(error, ks_exc.ConnectionError):
        return CloudUnavailable(f"{action} failed: connection to the cloud failed", detail)
    if isinstance(error, ks_exc.DiscoveryFailure):
        # Version discovery is a GET before the real request: nothing was acted on.
        return CloudUnavailable(
            f"{action} failed: the cloud's service catalog or API versions could not be read",
            detail,
            request_reached_server=False,
        )
    if isinstance(error, ks_exc.EndpointNotFound | os_exc.EndpointNotFound):
        return CloudError(f"{action} failed: the cloud does not offer the service needed", detail)
    if isinstance(error, ks_exc.AuthorizationFailure | ks_exc.MissingAuthPlugin | ks_exc.NoMatchingPlugin):
        return CloudForbidden(f"{action} failed: could not authenticate to the cloud", detail)
    if isinstance(error, os_exc.ResourceTimeout):
        return CloudTimeout(f"{action} timed out", detail)
    if isinstance(error, os_exc.DuplicateResource):
        return CloudConflict(f"{action} failed: more than one resource matches", detail)
    if isinstance(error, os_exc.ConfigException):
        return CloudError(f"{action} failed: the cloud's configuration (clouds.yaml) is not usable", detail)
    if isinstance(error, os_exc.SDKException | ks_exc.ClientException):
        return CloudError(f"{action} failed", detail)
    if isinstance(error, requests.RequestException):
        return CloudUnavailable(f"{action} failed: connection to the cloud failed", detail)
    return None


def _from_http_status(status: int | None, detail: str, action: str) -> CloudError:
    if status in (403, 409, 413) and _QUOTA_TEXT.search(detail):
        return CloudQuotaExceeded(f"{action} refused: quota exceeded", detail, status_code=status)
    if NO_VALID_HOST_MARKER in detail.lower():
        return CloudNoValidHost(f"{action} failed: no compute host has room", detail, status_code=status)
    if status == 400:
        return CloudBadRequest(f"{action} rejected as invalid", detail, status_code=status)
    if status == 401:
        return CloudForbidden(f"{action} failed: not authenticated", detail, status_code=status)
    if status == 403:
        return CloudForbidden(f"{action} refused: not allowed", detail, status_code=status)
    if status == 404:
        return CloudNotFound(f"{action} failed: not found", detail, status_code=status)
    if status == 409:
        return CloudConflict(
            f"{action} refused: conflicts with the resource's current state", detail, status_code=status
        )
    if status == 413:
        return CloudQuotaExceeded(f"{action} refused: over a limit", detail, status_code=status)
    if status in (429, 503):
        # Throttled or not serving right now: the cloud turned the request away unprocessed.
        return CloudUnavailable(
            f"{action} failed: the cloud is busy or unavailable",
            detail,
            status_code=status,
            request_reached_server=False,
        )
    if status is not None and status >= 500 and status != 501:
        return CloudUnavailable(f"{action} failed: the cloud had an internal error", detail, status_code=status)
    return CloudError(f"{action} failed (HTTP {status})", detail, status_code=status)


def _sdk_http_detail(error: os_exc.HttpException) -> str:
    if error.details:
        return str(error.details)
    return error.message if error.message and error.message != "Error" else str(error)


def _ks_http_detail(error: ks_exc.HttpError) -> str:
    parts = [str(error.message or "")]
    if error.details:
        parts.append(str(error.details))
    return ": ".join(p for p in parts if p)


# ---- conversions --------------------------------------------------------------------------


def _parse_time(value: Any) -> datetime | None:
    if not value:
        return None
    if isinstance(value, datetime):
        parsed = value
    else:
        try:
            parsed = datetime.fromisoformat(str(value))
        except ValueError:
            return None
    # Nova and Glance report UTC, sometimes without an offset.
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _iso_utc(moment: datetime) -> str:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _int(value: Any, default: int = 0) -> int:
    return default if value is None or value == "" else int(value)


def _find_or_none(find: Callable[..., Any], name_or_id: str, **query: Any) -> Any | None:
    """``find(name_or_id)``, or None when nothing matches.  (openstacksdk is deprecating
    ``ignore_missing=True`` on its find methods in favour of catching NotFound.)"""
    try:
        return find(name_or_id, ignore_missing=False, **query)
    except os_exc.NotFoundException:
        return None


def idempotency_tag(key: str) -> str:
    """The server tag standing for idempotency key ``key``.

    Nova tags are at most 60 characters and may not contain ``/`` or ``,``, so the tag
    holds a digest; the key itself is kept verbatim in the server's metadata.
    """
    return IDEMPOTENCY_TAG_PREFIX + hashlib.sha256(key.encode()).hexdigest()[:40]


def _to_image(image: Any) -> Image:
    return Image(
        id=str(image.id),
        name=str(image.name or ""),
        status=str(image.status or "unknown"),
        size_bytes=None if image.size is None else int(image.size),
        disk_format=image.disk_format,
        min_disk_gb=_int(image.min_disk),
        min_ram_mb=_int(image.min_ram),
        visibility=str(image.visibility or ""),
        owner_project_id=image.owner_id,
    )


def _to_flavor(flavor: Any) -> Flavor:
    return Flavor(
        id=str(flavor.id),
        name=str(flavor.name),
        vcpus=_int(flavor.vcpus),
        ram_mb=_int(flavor.ram),
        disk_gb=_int(flavor.disk),
        is_public=bool(flavor.is_public) if flavor.is_public is not None else True,
    )


def _server_addresses(raw: Any) -> dict[str, tuple[str, ...]]:
    addresses: dict[str, tuple[str, ...]] = {}
    for network_name, entries in (raw or {}).items():
        addresses[str(network_name)] = tuple(str(e.get("addr")) for e in entries or () if e.get("addr"))
    return addresses


# ---- the provider -------------------------------------------------------------------------


class OpenStackProvider(CloudProvider):
    """A cloud named in clouds.yaml (or by ``OS_CLOUD`` when ``cloud`` is None).

    ``timeout`` bounds each HTTP request (seconds); ``retries`` is how many times a
    transiently failing call is tried again.  ``project_roles`` are the roles
    :meth:`ensure_project` grants the admin user in each department project.
    """

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
        self._role_ids: dict[str, str] = {}
        self._flavor_ids_by_name: dict[str, str] = {}

    def __repr__(self) -> str:
        return f"OpenStackProvider(cloud={self._cloud!r}, region={self._region!r})"

    # ---- plumbing ---------------------------------------------------------------------

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

        return call_with_retry(
            translated,
            self._retry,
            description=f"{self.name}: {action}",
            should_retry=is_retryable if idempotent else is_retryable_unsent,
        )

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

    def _require_project(self, project_id: str) -> None:
        # Nova and Neutron accept quotas for any string as project id; asking Keystone
        # first turns a typo into CloudNotFound instead of quotas for a phantom project.
        self._call(f"get project {project_id}", lambda: self._identity.get_project(project_id))

    # ---- identity ---------------------------------------------------------------------

    def ensure_project(self, domain_name: str, project_name: str, description: str = "") -> ProjectRef:
        identity = self._identity

        def ensure_domain() -> Any:
            domain = _find_or_none(identity.find_domain, domain_name)
            if domain is not None:
                return domain
            try:
                return identity.create_domain(name=domain_name, description="created by cloudmgr")
            except os_exc.ConflictException:
                # Someone created it meanwhile: use theirs.
                return identity.find_domain(domain_name, ignore_missing=False)

        domain = self._call(f"ensure domain {domain_name}", ensure_domain)

        def ensure_project() -> Any:
            project = _find_or_none(identity.find_project, project_name, domain_id=domain.id)
            if project is None:
                try:
                    return identity.create_project(name=project_name, domain_id=domain.id, description=description)
                except os_exc.ConflictException:
                    return identity.find_project(project_name, ignore_missing=False, domain_id=domain.id)
            if description and project.description != description:
                project = identity.update_project(project, description=description)
            return project

        project = self._call(f"ensure project {domain_name}/{project_name}", ensure_project)

        def grant_roles() -> None:
            user_id = self._admin.current_user_id
            if user_id is None:
                raise CloudForbidden("the cloud did not say which user cloudmgr is authenticated as")
            for role_name in self._project_roles:
                role_id = self._role_id(role_name)
                # A PUT: granting a role the user already holds is a no-op.
                identity.assign_project_role_to_user(project.id, user_id, role_id)

        self._call(f"grant roles in project {project_name}", grant_roles)
        return ProjectRef(id=str(project.id), name=str(project.name), domain_id=str(project.domain_id))

    def _role_id(self, role_name: str) -> str:
        cached = self._role_ids.get(role_name)
        if cached is not None:
            return cached
        role = _find_or_none(self._identity.find_role, role_name)
        if role is None:
            raise CloudError(f"the cloud has no role named {role_name!r} to grant cloudmgr in department projects")
        self._role_ids[role_name] = str(role.id)
        return str(role.id)

    # ---- quotas -----------------------------------------------------------------------

    def get_quota(self, project_id: str) -> QuotaSet:
        self._require_project(project_id)
        compute = self._call("get compute quota", lambda: self._admin.compute.get_quota_set(project_id))
        network = self._call("get network quota", lambda: self._admin.network.get_quota(project_id))
        # A resource Neutron does not offer (floating IPs without the router extension)
        # has no quota at all: none of it can be had, so it reads as a limit of 0.
        return QuotaSet(
            compute=ComputeQuota(
                cores=_int(compute.cores), ram_mb=_int(compute.ram), instances=_int(compute.instances)
            ),
            network=NetworkQuota(**{field: _int(getattr(network, field)) for field in _NETWORK_QUOTA_FIELDS}),
        )

    def set_quota(self, project_id: str, quota: QuotaSet) -> None:
        self._require_project(project_id)
        compute = quota.compute
        self._call(
            "set compute quota",
            lambda: self._admin.compute.update_quota_set(
                project_id, cores=compute.cores, ram=compute.ram_mb, instances=compute.instances
            ),
        )

        def set_network_quota() -> None:
            # Neutron rejects the whole update if it names a resource it does not offer,
            # so send only the ones it reports.
            offered = self._admin.network.get_quota(project_id)
            limits = {}
            for field in _NETWORK_QUOTA_FIELDS:
                if getattr(offered, field) is not None:
                    limits[field] = getattr(quota.network, field)
                elif getattr(quota.network, field):
                    log.info("%s: Neutron offers no %s; not setting that quota", self.name, field)
            self._admin.network.update_quota(project_id, **limits)

        self._call("set network quota", set_network_quota)

    def get_compute_usage(self, project_id: str) -> ComputeUsage:
        self._require_project(project_id)
        quota_set = self._call("get compute usage", lambda: self._admin.compute.get_quota_set(project_id, usage=True))
        usage = quota_set.usage or {}
        return ComputeUsage(
            cores=_int(usage.get("cores")), ram_mb=_int(usage.get("ram")), instances=_int(usage.get("instances"))
        )

    # ---- catalogue --------------------------------------------------------------------

    def list_flavors(self) -> list[Flavor]:
        # is_public=None asks Nova for private flavors too (admins see them all).
        flavors = self._call("list flavors", lambda: list(self._admin.compute.flavors(details=True, is_public="None")))
        result = [_to_flavor(f) for f in flavors]
        with self._lock:
            self._flavor_ids_by_name = {f.name: f.id for f in result}
        return result

    def list_images(self) -> list[Image]:
        images = self._call("list images", lambda: list(self._admin.image.images()))
        return [_to_image(i) for i in images]

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

    # ---- servers ----------------------------------------------------------------------

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
            addresses=_server_addresses(server.addresses),
            fault_message=fault.get("message") if isinstance(fault, dict) else None,
            created_at=_parse_time(server.created_at),
            updated_at=_parse_time(server.updated_at),
            task_state=server.task_state,
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

    def create_server(self, project_id: str, spec: ServerSpec) -> Server:
        key = spec.idempotency_key
        if not key or len(key) > 255:
            raise CloudBadRequest("an idempotency key of 1 to 255 characters is required", key)
        metadata = {**spec.metadata, IDEMPOTENCY_METADATA_KEY: key}
        networks: Any = [{"uuid": spec.network_id}] if spec.network_id else "none"

        def lookup_or_boot() -> Any:
            # Looking up first makes the whole call safe to retry: a boot that reached
            # Nova before the connection dropped is found instead of booted again.
            existing = self._find_by_key_raw(project_id, key)
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
            )
            # The POST answer lacks most fields; read it back with the admin view (host).
            return self._admin.compute.get_server(created.id)

        return self._to_server(self._call(f"create server {spec.name}", lookup_or_boot))

    def get_server(self, server_id: str) -> Server:
        return self._to_server(self._call(f"get server {server_id}", lambda: self._admin.compute.get_server(server_id)))

    def list_servers(
        self,
        project_id: str | None = None,
        limit: int = 100,
        marker: str | None = None,
        changes_since: datetime | None = None,
    ) -> ServerPage:
        if limit < 1:
            raise CloudBadRequest("the page size must be at least 1", str(limit))
        # One more than asked: if it comes back, there is a next page, and the caller is
        # not sent to fetch an empty one.
        query: dict[str, Any] = {"all_projects": True, "limit": limit + 1}
        if project_id:
            query["project_id"] = project_id
        if marker:
            query["marker"] = marker
        if changes_since is not None:
            query["changes_since"] = _iso_utc(changes_since)

        def fetch() -> list[Any]:
            return list(
                sdk_server.Server.list(self._admin.compute, paginated=False, base_path="/servers/detail", **query)
            )

        found = self._call("list servers", fetch)
        page = found[:limit]
        next_marker = str(page[-1].id) if len(found) > limit else None
        return ServerPage(servers=tuple(self._to_server(s) for s in page), next_marker=next_marker)

    def delete_server(self, server_id: str, *, wait: bool = False, timeout: float = 300.0) -> None:
        self._call(
            f"delete server {server_id}",
            lambda: self._admin.compute.delete_server(server_id, ignore_missing=True),
        )
        if wait:
            self.wait_for_server_deleted(server_id, timeout)

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

    def revert_migration(self, server_id: str) -> None:
        # ...and reverts it like a resize too.
        self._server_action(
            server_id,
            "revert migration of",
            lambda c: c.revert_server_resize(server_id),
            frozenset({"ACTIVE", "SHUTOFF"}),
        )

    def list_servers_on_host(self, host: str) -> list[Server]:
        found = self._call(
            f"list servers on host {host}",
            lambda: list(self._admin.compute.servers(details=True, all_projects=True, compute_host=host)),
        )
        # Nova matches the host filter as a pattern on some versions: keep exact matches.
        return [s for s in (self._to_server(raw) for raw in found) if s.host == host]

    def set_compute_service_enabled(self, host: str, enabled: bool, reason: str = "") -> None:
        compute = self._admin.compute

        def toggle() -> None:
            services = list(compute.services(binary="nova-compute", host=host))
            if not services:
                raise CloudNotFound(f"compute host {host} not found", f"no nova-compute service on {host}")
            for service in services:
                if enabled:
                    compute.enable_service(service)
                else:
                    compute.disable_service(service, disabled_reason=reason or None)

        action = "enable" if enabled else "disable"
        self._call(f"{action} the compute service of {host}", toggle)

    # ---- images -----------------------------------------------------------------------

    def create_snapshot(self, server_id: str, image_name: str, *, timeout: float = 600.0) -> Image:
        server = self.get_server(server_id)
        # Snapshot inside the server's project so the image belongs to the department.
        conn = self._project_conn(server.project_id) if server.project_id else self._admin
        image_id = self._call(
            f"snapshot server {server.name}",
            lambda: sdk_server.Server.existing(id=server_id).create_image(conn.compute, image_name),
            idempotent=False,
        )
        return self._wait_for_image(image_id, server_id, timeout)

    def _wait_for_image(self, image_id: str, server_id: str, timeout: float) -> Image:
        """Poll the snapshot image until it is active.

        Nova keeps a task on the server until the hypervisor has uploaded the image, so a
        server with no task left and an image still without data means the upload will
        never come (it failed, or the hypervisor driver uploads nothing): say so at once
        rather than wait for the timeout.
        """
        deadline = time.monotonic() + timeout
        polls_since_nova_finished = 0
        while True:
            try:
                image = _to_image(self._call(f"get image {image_id}", lambda: self._admin.image.get_image(image_id)))
            except CloudNotFound as exc:
                raise CloudError(f"snapshot of server {server_id} failed: its image was removed", exc.detail) from exc
            if image.status == "active":
                return image
            if image.status in _IMAGE_FAILED_STATUSES:
                raise CloudError(f"snapshot of server {server_id} failed: image {image_id} is {image.status}")
            server = self.get_server(server_id)
            if server.task_state is None:
                polls_since_nova_finished += 1
                # A few polls of grace: Glance may lag behind Nova by a moment.
                if polls_since_nova_finished >= 3:
                    # The image will never become usable; Nova removes it on the failures
                    # it notices, so do the same here rather than leave an empty image.
                    self.delete_image(image_id)
                    raise CloudError(
                        f"snapshot of server {server.name} failed: Nova finished but image {image_id} "
                        "received no data (the empty image was deleted)",
                        f"image status {image.status}; server fault: {server.fault_message or '-'}",
                    )
            if time.monotonic() >= deadline:
                raise CloudTimeout(
                    f"snapshot image {image_id} of server {server_id} not active within {timeout:.0f}s",
                    f"image status {image.status}, server task {server.task_state or '-'}",
                )
            time.sleep(self.poll_interval)

    def upload_image(
        self,
        name: str,
        data: bytes | Path,
        disk_format: str = "qcow2",
        container_format: str = "bare",
        *,
        project_id: str | None = None,
    ) -> Image:
        conn = self._project_conn(project_id) if project_id else self._admin

        def upload() -> Any:
            source: dict[str, Any] = (
                {"filename": str(data)} if isinstance(data, Path) else {"data": io.BytesIO(bytes(data))}
            )
            return conn.image.create_image(
                name,
                disk_format=disk_format,
                container_format=container_format,
                allow_duplicates=True,
                disable_vendor_agent=False,
                wait=True,
                **source,
            )

        created = self._call(f"upload image {name}", upload, idempotent=False)
        return _to_image(self._call(f"get image {name}", lambda: self._admin.image.get_image(created.id)))

    def get_image(self, image_id: str) -> Image:
        return _to_image(self._call(f"get image {image_id}", lambda: self._admin.image.get_image(image_id)))

    def download_image(self, image_id: str, dest_path: Path) -> int:
        dest_path = Path(dest_path)
        partial = dest_path.with_name(dest_path.name + ".part")

        def download() -> None:
            # Into a side file first so a broken download never looks like a complete one.
            with open(partial, "wb") as out:
                self._admin.image.download_image(image_id, stream=True, output=out)

        try:
            self._call(f"download image {image_id}", download)
            os.replace(partial, dest_path)
        finally:
            partial.unlink(missing_ok=True)
        return dest_path.stat().st_size

    def delete_image(self, image_id: str) -> None:
        self._call(f"delete image {image_id}", lambda: self._admin.image.delete_image(image_id, ignore_missing=True))

    # ---- capacity ---------------------------------------------------------------------

    def list_aggregates(self) -> list[HostAggregate]:
        aggregates = self._call("list aggregates", lambda: list(self._admin.compute.aggregates()))
        return [
            HostAggregate(
                id=str(a.id),
                name=str(a.name),
                hosts=tuple(sorted(str(h) for h in (a.hosts or []))),
                availability_zone=a.availability_zone or None,
            )
            for a in aggregates
        ]

    def list_hypervisors(self) -> list[Hypervisor]:
        hypervisors = self._call("list hypervisors", lambda: list(self._admin.compute.hypervisors(details=True)))
        return [
            Hypervisor(
                id=str(h.id),
                name=str(h.name),
                state=str(h.state or ""),
                status=str(h.status or ""),
                host=str((h.service_details or {}).get("host") or h.name),
            )
            for h in hypervisors
        ]

    def list_resource_providers(self) -> list[ResourceProvider]:
        placement = self._admin.placement

        def fetch() -> list[ResourceProvider]:
            providers = []
            for rp in placement.resource_providers():
                inventories = {
                    str(inv.resource_class): Inventory(
                        total=_int(inv.total),
                        reserved=_int(inv.reserved),
                        allocation_ratio=float(inv.allocation_ratio if inv.allocation_ratio is not None else 1.0),
                        min_unit=_int(inv.min_unit, 1),
                        max_unit=_int(inv.max_unit, _int(inv.total)),
                        step_size=_int(inv.step_size, 1),
                    )
                    for inv in placement.resource_provider_inventories(rp.id)
                }
                usages = placement.fetch_resource_provider_usages(rp.id).usages or {}
                providers.append(
                    ResourceProvider(
                        id=str(rp.id),
                        name=str(rp.name),
                        inventories=inventories,
                        usages={str(k): int(v) for k, v in usages.items()},
                    )
                )
            return providers

        return self._call("list resource providers", fetch)

    def list_allocations(self, resource_provider_id: str) -> list[Allocation]:
        placement = self._admin.placement

        def fetch() -> list[Allocation]:
            # One GET /resource_providers/{uuid}/allocations: {consumer uuid: {resources: {...}}}.
            return [
                Allocation(
                    consumer_id=str(allocation.consumer_id),
                    resources={str(k): int(v) for k, v in (allocation.resources or {}).items()},
                )
                for allocation in placement.resource_provider_allocations(resource_provider_id)
            ]

        return self._call(f"list allocations of resource provider {resource_provider_id}", fetch)
