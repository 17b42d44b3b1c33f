"""The classified rule at the adapter: the last line of defence.

Whatever the caller, a server whose metadata says ``cloudmgr-classification=classified``
is never booted: :class:`~cloudmgr.cloud.provider.CloudProvider` wraps every provider's
``create_server`` with :func:`guard_create_server` (in ``__init_subclass__``), so the
simulated and the OpenStack provider both refuse before anything reaches the cloud.

What the metadata says, and what the guard makes of it:

* a server created for a legacy system (a self-service request naming it, the runbook's
  provision step, a cross-cloud move) carries ``cloudmgr-legacy-system=<hostname>`` and
  ``cloudmgr-classification=<classification>``, read from the system as it is right before
  the boot (:func:`cloudmgr.inventory.classification.server_metadata`): ``classified`` is
  refused here;
* a self-service server that replaces no legacy system claims
  ``cloudmgr-classification=non_classified`` explicitly (no hostname): these clouds have only
  the internet and extranet zones, and the department states its business is not classified;
* a server without the key (made outside cloudmgr, or before issue 14) makes no claim and is
  not refused here: the guard only ever refuses, it never vouches for a server.

The domain check (with its audit event) is
:func:`cloudmgr.inventory.classification.ensure_placeable`, called on every path before the
boot; this one only logs, because the adapter has no database: the caller that gets the
error records it as its failure.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from cloudmgr.cloud.errors import CloudError

if TYPE_CHECKING:
    from cloudmgr.cloud.types import Server, ServerSpec

log = logging.getLogger(__name__)

LEGACY_SYSTEM_METADATA_KEY = "cloudmgr-legacy-system"
CLASSIFICATION_METADATA_KEY = "cloudmgr-classification"
CLASSIFIED = "classified"


class ClassifiedServerRefused(CloudError):
    """The server would carry a classified system: these clouds never host one."""


def is_classified_metadata(metadata: Mapping[str, str] | None) -> bool:
    value = (metadata or {}).get(CLASSIFICATION_METADATA_KEY)
    return isinstance(value, str) and value.strip().lower() == CLASSIFIED


def check_server_metadata(metadata: Mapping[str, str] | None, *, cloud: str = "") -> None:
    """Raise ClassifiedServerRefused when ``metadata`` marks a classified system."""
    if is_classified_metadata(metadata):
        host = (metadata or {}).get(LEGACY_SYSTEM_METADATA_KEY, "?")
        log.warning("refused to boot a server for classified system %s on %s", host, cloud or "a cloud")
        raise ClassifiedServerRefused(
            f"classified system {host} cannot be placed on this cloud: classified systems stay on the "
            "e-government intranet",
            f"{CLASSIFICATION_METADATA_KEY}={CLASSIFIED}",
        )


F = TypeVar("F", bound=Callable[..., "Server"])


def guard_create_server(method: F) -> F:
    """Wrap a provider's ``create_server(project_id, spec)`` with the classified check."""
    if getattr(method, "__classified_guard__", False):
        return method

    @functools.wraps(method)
    def create_server(self: Any, project_id: str, spec: ServerSpec, *args: Any, **kwargs: Any) -> Server:
        check_server_metadata(spec.metadata, cloud=str(getattr(self, "name", "")))
        return method(self, project_id, spec, *args, **kwargs)

    create_server.__classified_guard__ = True  # type: ignore[attr-defined]
    return create_server  # type: ignore[return-value]
