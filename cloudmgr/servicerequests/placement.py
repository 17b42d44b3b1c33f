"""The classified rule for requests: a request's legacy system, and a resized server's systems, must
be the department's own and not classified (refused and audited), at every step."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from cloudmgr.organisation.actor import Actor
from cloudmgr.servicerequests.models import ManagedServer, ServiceRequest


def check_legacy_system(
    session: Session, actor: Actor, system_id: int | None, entry_point: str, *, request_id: int | None = None
) -> None:
    """The named legacy system must be the department's own, and not classified (refused + audited)."""
    if system_id is None:
        return
    from cloudmgr.inventory.classification import ensure_placeable
    from cloudmgr.inventory.services import get_system

    system = get_system(session, system_id, actor=actor)  # another department's: not found
    context = {"request_id": request_id} if request_id is not None else None
    ensure_placeable(session, system, actor=actor, entry_point=entry_point, context=context)


def check_request_placeable(session: Session, actor: Actor, request: ServiceRequest, entry_point: str) -> None:
    """The classified rule for a stored request, at every step after its creation (each
    approval step, provisioning, a resize): its legacy system may have been reclassified
    since.  A new-server request is checked through the system it names; a resize through
    every system its server is tied to (its own request's, or a system whose server it is)."""
    from cloudmgr.inventory.classification import ensure_placeable, ensure_server_placeable

    context: dict[str, Any] = {"request_id": request.id}
    if request.kind == "resize" and request.target_server_id is not None:
        server = session.get(ManagedServer, request.target_server_id)
        context["server_id"] = request.target_server_id
        ensure_server_placeable(
            session,
            actor=actor,
            entry_point=entry_point,
            managed_server_id=request.target_server_id,
            cloud_server_id=server.server_id if server is not None else None,
            server_name=server.name if server is not None else "",
            context=context,
        )
    elif request.legacy_system_id is not None:
        ensure_placeable(session, request.legacy_system_id, actor=actor, entry_point=entry_point, context=context)
