from __future__ import annotations

from flask import render_template
from flask.typing import ResponseReturnValue

from cloudmgr.audit import services as audit
from cloudmgr.organisation import services as org
from cloudmgr.quotas import services as quota_services
from cloudmgr.quotas.models import ChangeRequestState
from cloudmgr.servicerequests import services as sr
from web.core.security import current_actor
from web.core.uow import request_uow
from web.operations.blueprint import bp

RECENT_EVENTS = 20


@bp.get("/")
def home() -> ResponseReturnValue:
    session = request_uow().session
    clouds = org.list_clouds(session)
    departments = org.list_departments(session)
    events = audit.recent(session, limit=RECENT_EVENTS)
    zones = [zone for cloud in clouds for zone in cloud.zones]
    summary = {
        "clouds": len(clouds),
        "enabled": sum(1 for c in clouds if c.enabled),
        "never_synced": sum(1 for c in clouds if c.enabled and c.synced_at is None),
        "zones": len(zones),
        "zones_resolved": sum(1 for z in zones if z.network_id),
        "departments": len(departments),
    }
    waiting = {
        "approvals": len(sr.awaiting(session, current_actor())),
        "quota_changes": len(
            quota_services.change_requests(session, current_actor(), state=ChangeRequestState.PENDING.value)
        ),
        "drifts": len(quota_services.open_drifts(session)),
    }
    return render_template("operations/home.html", clouds=clouds, summary=summary, events=events, waiting=waiting)
