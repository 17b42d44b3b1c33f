"""The classified rule (涉密系统不上云): a classified system is never placed on these clouds.

Every path that places a legacy system (or a server for one) on a cloud calls
:func:`ensure_placeable` first: self-service requests naming a legacy system (portal and
API), the CLI, wave membership, the runbook's provision step, cross-cloud moves and the
capacity planner.  The adapter refuses again (:mod:`cloudmgr.cloud.guard`): a
``create_server`` whose metadata says ``cloudmgr-classification=classified`` raises
:class:`~cloudmgr.cloud.guard.ClassifiedServerRefused` on every provider.

How the refusal is audited, even though the caller rolls back
---------------------------------------------------------------
:func:`ensure_placeable` adds the audit event (action ``legacy_system.placement_refused``)
to the caller's session and raises :class:`ClassifiedPlacementRefused`.  Then:

* the caller commits (it caught the error and went on): the event commits with it;
* the caller rolls back (the usual case: the error propagates out of its unit of work, or
  the web layer discards the request's changes on a 4xx): the event is written again in a
  transaction of its own once the caller's has ended (:func:`cloudmgr.audit.services.
  record_surviving_rollback`, a mechanism of the :class:`~cloudmgr.db.Database`'s sessions).

Callers therefore do nothing special: call it, let the error propagate (or catch it).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from cloudmgr.audit import services as audit
from cloudmgr.cloud.guard import (
    CLASSIFICATION_METADATA_KEY,
    LEGACY_SYSTEM_METADATA_KEY,
    ClassifiedServerRefused,
    check_server_metadata,
    is_classified_metadata,
)
from cloudmgr.inventory.errors import ClassifiedPlacementRefused, SystemNotFound
from cloudmgr.inventory.models import Classification, LegacySystem
from cloudmgr.messages import N_, Message, message
from cloudmgr.organisation.actor import Actor

__all__ = [
    "CLASSIFICATION_METADATA_KEY",
    "LEGACY_SYSTEM_METADATA_KEY",
    "REFUSAL_ACTION",
    "ClassifiedPlacementRefused",
    "ClassifiedServerRefused",
    "check_server_metadata",
    "ensure_placeable",
    "ensure_server_placeable",
    "is_classified_metadata",
    "server_metadata",
    "systems_of_server",
]

log = logging.getLogger(__name__)

REFUSAL_ACTION = "legacy_system.placement_refused"
AUDIT_TARGET = "legacy_system"


def server_metadata(system: LegacySystem | None) -> dict[str, str]:
    """The metadata every server cloudmgr creates carries, read from ``system`` as it is now.

    A server for a legacy system names it and its classification, so the adapter's guard
    (:mod:`cloudmgr.cloud.guard`) refuses it when the system is classified.  A server that
    replaces no legacy system (``system`` None) claims ``non_classified`` explicitly: these
    clouds only have the internet and extranet zones, and a department ordering a server on
    them states that its business is not classified.  The guard refuses only an explicit
    ``classified``; a server without the key (one made outside cloudmgr) makes no claim.
    """
    if system is None:
        return {CLASSIFICATION_METADATA_KEY: Classification.NON_CLASSIFIED.value}
    return {LEGACY_SYSTEM_METADATA_KEY: system.hostname, CLASSIFICATION_METADATA_KEY: system.classification}


def _refusal_values(
    system: LegacySystem,
    actor: Actor,
    entry_point: str,
    reason: str | Message,
    context: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    return {
        "actor": actor.username,
        "action": REFUSAL_ACTION,
        "target_type": AUDIT_TARGET,
        "target_id": str(system.id),
        "reason": reason,
        "detail": {
            **(context or {}),
            "hostname": system.hostname,
            "entry_point": entry_point,
            "classification": system.classification,
        },
    }


def ensure_placeable(
    session: Session,
    system_or_id: LegacySystem | int,
    *,
    actor: Actor,
    entry_point: str,
    context: Mapping[str, Any] | None = None,
) -> LegacySystem:
    """Return the system if it may be placed on a cloud; refuse (and audit) a classified one.

    ``entry_point`` names the path for the audit log, e.g. "portal.request", "api.request",
    "approve.operator", "provisioning", "retry", "resize", "move.cross_cloud", "cli", "wave",
    "runbook.provision", "planner"; ``context`` (e.g. ``{"request_id": 7}``) says what was
    being placed and is stored in the audit event's detail.  Raises SystemNotFound for an
    unknown id and ClassifiedPlacementRefused (409, code "classified_system") for a
    classified system; the refusal's audit event survives the caller's rollback (see the
    module docstring).
    """
    if isinstance(system_or_id, LegacySystem):
        system = system_or_id
    else:
        found = session.get(LegacySystem, system_or_id)
        if found is None:
            raise SystemNotFound(f"no legacy system {system_or_id}")
        system = found
    if system.classification != Classification.CLASSIFIED:
        return system
    reason = message(
        N_(
            "classified system %(system)s cannot be placed on a cloud (%(entry_point)s): "
            "classified systems stay on the e-government intranet"
        ),
        system=system.hostname,
        entry_point=entry_point,
    )
    values = _refusal_values(system, actor, entry_point, reason, context)
    audit.record_surviving_rollback(session, **values)
    log.warning("refused placement of classified system %s via %s by %s", system.hostname, entry_point, actor.username)
    raise ClassifiedPlacementRefused(reason, system_id=system.id, hostname=system.hostname, entry_point=entry_point)


def systems_of_server(
    session: Session,
    *,
    cloud_server_id: str | None = None,
    managed_server_id: int | None = None,
    metadata: Mapping[str, str] | None = None,
) -> list[LegacySystem]:
    """Every legacy system a server is tied to, found every way cloudmgr records the tie.

    * the system whose ``cloud_server_id`` is the server (the runbook's provision step);
    * the system the server's self-service request names (``ManagedServer`` →
      ``ServiceRequest.legacy_system_id``), for the request's server and for a resize's;
    * the system its metadata names (``cloudmgr-legacy-system=<hostname>``).

    A move or a resize that looked only one way moved a reclassified system's server.
    """
    from cloudmgr.servicerequests.models import ManagedServer, ServiceRequest

    conditions = []
    if cloud_server_id:
        conditions.append(LegacySystem.cloud_server_id == cloud_server_id)
    hostname = (metadata or {}).get(LEGACY_SYSTEM_METADATA_KEY)
    if isinstance(hostname, str) and hostname.strip():
        conditions.append(LegacySystem.hostname == hostname.strip())
    managed_ids = set()
    if managed_server_id is not None:
        managed_ids.add(managed_server_id)
    if cloud_server_id:
        managed_ids.update(session.scalars(select(ManagedServer.id).where(ManagedServer.server_id == cloud_server_id)))
    if managed_ids:
        conditions.append(
            LegacySystem.id.in_(
                select(ServiceRequest.legacy_system_id)
                .join(ManagedServer, ManagedServer.request_id == ServiceRequest.id)
                .where(ManagedServer.id.in_(managed_ids), ServiceRequest.legacy_system_id.is_not(None))
            )
        )
    if not conditions:
        return []
    return list(session.scalars(select(LegacySystem).where(or_(*conditions)).order_by(LegacySystem.id)))


def ensure_server_placeable(
    session: Session,
    *,
    actor: Actor,
    entry_point: str,
    cloud_server_id: str | None = None,
    managed_server_id: int | None = None,
    metadata: Mapping[str, str] | None = None,
    server_name: str = "",
    context: Mapping[str, Any] | None = None,
) -> list[LegacySystem]:
    """The classified rule for a server that already exists (a move, a resize, a retry).

    Every system the server is tied to (:func:`systems_of_server`) goes through
    :func:`ensure_placeable`; a server whose metadata says classified but whose system
    cloudmgr does not know is refused too.  Each refusal is audited like
    :func:`ensure_placeable`'s (it survives the caller's rollback).  Returns the systems.
    """
    systems = systems_of_server(
        session, cloud_server_id=cloud_server_id, managed_server_id=managed_server_id, metadata=metadata
    )
    for system in systems:
        ensure_placeable(session, system, actor=actor, entry_point=entry_point, context=context)
    if not systems and is_classified_metadata(metadata):
        hostname = str((metadata or {}).get(LEGACY_SYSTEM_METADATA_KEY) or "")
        username = actor.username
        name = server_name or cloud_server_id or "?"
        reason = message(
            N_(
                "server %(server)s is marked classified (%(system)s) and cannot be placed on a "
                "cloud (%(entry_point)s): classified systems stay on the e-government intranet"
            ),
            server=name,
            system=hostname or "unknown system",
            entry_point=entry_point,
        )
        values: dict[str, Any] = {
            "actor": username,
            "action": REFUSAL_ACTION,
            "target_type": "cloud_server",
            "target_id": str(cloud_server_id or managed_server_id or name),
            "reason": reason,
            "detail": {
                **(context or {}),
                "hostname": hostname,
                "entry_point": entry_point,
                "classification": "classified",
            },
        }
        audit.record_surviving_rollback(session, **values)
        log.warning("refused placement of classified server %s via %s by %s", name, entry_point, username)
        raise ClassifiedPlacementRefused(reason, hostname=hostname, entry_point=entry_point)
    return systems
