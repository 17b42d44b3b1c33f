"""The orphans as operators work through them: searched, filtered and paged in SQL, and adopted or
deleted several at once (each through :func:`~cloudmgr.servicerequests.orphans.request_orphan_action`
in its own savepoint, so every rule, the quota of an adoption first, is checked per row)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from cloudmgr.errors import DomainError
from cloudmgr.messages import N_, Message, message
from cloudmgr.organisation.actor import Actor
from cloudmgr.paging import Page, PageRequest, paginate, search
from cloudmgr.servicerequests.errors import RequestInvalid
from cloudmgr.servicerequests.models import OrphanServer
from cloudmgr.servicerequests.orphans import ORPHAN_ACTIONS, OrphanKind, OrphanResource, request_orphan_action

MAX_BULK_ORPHANS = 200


@dataclass(frozen=True, slots=True)
class OrphanFilter:
    #: ``volume`` or ``address``; ``None``: both
    kind: str | None = None
    cloud_id: int | None = None
    include_resolved: bool = False


def orphan_resources_page(session: Session, flt: OrphanFilter, params: PageRequest) -> Page[OrphanResource]:
    """Orphaned volumes and addresses, newest first, searched in their name, cloud id, project and tag."""
    query = select(OrphanResource).options(selectinload(OrphanResource.cloud))
    if not flt.include_resolved:
        query = query.where(OrphanResource.resolved_at.is_(None))
    if flt.kind in {kind.value for kind in OrphanKind}:
        query = query.where(OrphanResource.kind == flt.kind)
    if flt.cloud_id is not None:
        query = query.where(OrphanResource.cloud_id == flt.cloud_id)
    query = search(
        query,
        params.q,
        OrphanResource.name,
        OrphanResource.resource_id,
        OrphanResource.project_id,
        OrphanResource.tag,
        OrphanResource.attached_to,
    )
    return paginate(session, query, params, OrphanResource.id.desc())


def orphan_servers_page(session: Session, flt: OrphanFilter, params: PageRequest) -> Page[OrphanServer]:
    """Orphaned servers, newest first, searched in their name, cloud id, project and key."""
    query = select(OrphanServer).options(selectinload(OrphanServer.cloud))
    if not flt.include_resolved:
        query = query.where(OrphanServer.resolved_at.is_(None))
    if flt.cloud_id is not None:
        query = query.where(OrphanServer.cloud_id == flt.cloud_id)
    query = search(
        query,
        params.q,
        OrphanServer.name,
        OrphanServer.server_id,
        OrphanServer.project_id,
        OrphanServer.idempotency_key,
    )
    return paginate(session, query, params, OrphanServer.id.desc())


@dataclass(frozen=True, slots=True)
class OrphanRefused:
    orphan_id: int
    name: str
    error: DomainError


@dataclass(slots=True)
class OrphanBulkOutcome:
    queued: list[OrphanResource] = field(default_factory=list)
    refused: list[OrphanRefused] = field(default_factory=list)


def act_on_orphans(session: Session, actor: Actor, orphan_ids: Iterable[int], action: str) -> OrphanBulkOutcome:
    """Adopt or delete each of ``orphan_ids`` (duplicates once, in the order given)."""
    if action not in ORPHAN_ACTIONS:
        raise RequestInvalid(message(N_("unknown action %(action)s"), action=action))
    ids = list(dict.fromkeys(orphan_ids))
    if not ids:
        raise RequestInvalid(Message(N_("choose at least one orphaned volume or address")))
    if len(ids) > MAX_BULK_ORPHANS:
        raise RequestInvalid(message(N_("at most %(count)d orphans at once"), count=MAX_BULK_ORPHANS))
    outcome = OrphanBulkOutcome()
    for orphan_id in ids:
        savepoint = session.begin_nested()
        try:
            orphan = request_orphan_action(session, actor, orphan_id, action)
        except DomainError as exc:
            savepoint.rollback()
            found = session.get(OrphanResource, orphan_id)
            outcome.refused.append(OrphanRefused(orphan_id, found.name if found else f"#{orphan_id}", exc))
        else:
            savepoint.commit()
            outcome.queued.append(orphan)
    return outcome
