"""Refusals of the storage services.  Each names the field it is about (``field``, what the
API's message starts with and where a form puts it) and the ``problem`` (what a page
translates); ``message`` is the English the API answers."""

from __future__ import annotations

import enum
from collections.abc import Mapping

from cloudmgr.errors import Conflict, DomainError, NotFound, PermissionDenied, ValidationFailed


class StorageProblem(enum.StrEnum):
    NAME = "name"
    SIZE = "size"
    VOLUME_TYPE = "volume_type"
    CLOUD = "cloud"
    SERVER_NOT_FOUND = "server_not_found"
    SERVER_NOT_ACTIVE = "server_not_active"
    SERVER_OTHER_CLOUD = "server_other_cloud"
    VOLUME_NOT_FOUND = "volume_not_found"
    VOLUME_BUSY = "volume_busy"
    NOT_ATTACHED = "not_attached"
    ATTACHED = "attached"
    NOT_BIGGER = "not_bigger"
    ADDRESS_ZONE = "address_zone"
    ADDRESS_NOT_OFFERED = "address_not_offered"
    ADDRESS_EXISTS = "address_exists"
    NO_ADDRESS = "no_address"
    FORBIDDEN = "forbidden"


#: The English text of each problem; ``%(...)s`` take the refusal's params.
PROBLEM_TEXT: Mapping[StorageProblem, str] = {
    StorageProblem.NAME: "name: 1 to %(max)s characters, no control characters",
    StorageProblem.SIZE: "size_gb: a whole number of GB from %(min)s to %(max)s",
    StorageProblem.VOLUME_TYPE: "volume_type: %(type)s is not a volume type offered on cloud %(cloud)s",
    StorageProblem.CLOUD: "cloud: your department has no quota on cloud %(cloud)s",
    StorageProblem.SERVER_NOT_FOUND: "server_id: no server %(server)s in the volume's department",
    StorageProblem.SERVER_NOT_ACTIVE: "server_id: server %(server)s is %(state)s; only an active server takes this",
    StorageProblem.SERVER_OTHER_CLOUD: (
        "server_id: server %(server)s is on cloud %(server_cloud)s, the volume on %(cloud)s"
    ),
    StorageProblem.VOLUME_NOT_FOUND: "volume_id: no volume %(volume)s",
    StorageProblem.VOLUME_BUSY: "volume_id: volume %(volume)s is %(state)s; wait until that is done",
    StorageProblem.NOT_ATTACHED: "volume_id: volume %(volume)s is not attached to a server",
    StorageProblem.ATTACHED: "volume_id: volume %(volume)s is attached to server %(server)s; detach it first",
    StorageProblem.NOT_BIGGER: "size_gb: a volume only grows; give more than its %(size)s GB (at most %(max)s)",
    StorageProblem.ADDRESS_ZONE: "zone: a public address is only given in the internet zone, not in %(zone)s",
    StorageProblem.ADDRESS_NOT_OFFERED: "cloud: cloud %(cloud)s offers no public addresses",
    StorageProblem.ADDRESS_EXISTS: "server_id: server %(server)s has a public address already (%(state)s)",
    StorageProblem.NO_ADDRESS: "server_id: server %(server)s has no public address to release",
    StorageProblem.FORBIDDEN: "role: %(what)s",
}


class StorageRefused(DomainError):
    """The base of every storage refusal: ``problem``, its ``params`` and the ``field`` named."""

    def __init__(self, problem: StorageProblem, **params: str | int) -> None:
        self.problem = problem
        self.params: dict[str, str | int] = dict(params)
        text = PROBLEM_TEXT[problem] % self.params
        self.field = text.split(":", 1)[0]
        super().__init__(text)


class StorageInvalid(StorageRefused, ValidationFailed):
    code = "storage_invalid"


class StorageConflict(StorageRefused, Conflict):
    code = "storage_conflict"


class StorageNotFound(StorageRefused, NotFound):
    code = "storage_not_found"


class StorageForbidden(StorageRefused, PermissionDenied):
    code = "storage_forbidden"
