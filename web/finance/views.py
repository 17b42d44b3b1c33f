from __future__ import annotations

from collections import Counter

from flask import render_template
from flask.typing import ResponseReturnValue

from cloudmgr.lines import services as lines
from cloudmgr.organisation import services as org
from cloudmgr.purchases import services as purchases
from cloudmgr.servicerequests import services as sr
from web.core.security import current_actor
from web.core.uow import request_uow
from web.finance.blueprint import bp


@bp.get("/")
def home() -> ResponseReturnValue:
    session = request_uow().session
    clouds = org.list_clouds(session)  # loaded first: the departments' links then find them in the session
    departments = org.list_departments(session)
    kinds = Counter(cloud.kind for cloud in clouds)
    levels = Counter(dept.level for dept in departments)
    waiting = len(sr.awaiting(session, current_actor()))
    # Both queues wait for finance: service requests and hardware purchases.
    purchases_waiting = purchases.count_review_queue(session, current_actor())
    # ... and departments' requests to rent or renew dedicated lines (issue 19).
    lines_waiting = lines.count_rentals_waiting(session)
    return render_template(
        "finance/home.html",
        clouds=clouds,
        departments=departments,
        kinds=kinds,
        levels=levels,
        waiting=waiting,
        purchases_waiting=purchases_waiting,
        lines_waiting=lines_waiting,
    )


@bp.get("/capacity")
def capacity() -> ResponseReturnValue:
    """The capacity page, read-only (no snapshot button, no import)."""
    from web.common.capacity import render_capacity

    return render_capacity()
