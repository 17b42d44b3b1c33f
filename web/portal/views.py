from __future__ import annotations

from flask import abort, render_template
from flask.typing import ResponseReturnValue

from cloudmgr.organisation import services as org
from cloudmgr.servicerequests import services as sr
from web.core.security import require_user
from web.core.uow import request_uow
from web.portal.blueprint import bp


@bp.get("/")
def home() -> ResponseReturnValue:
    """The user's own department and the clouds it may use; never another department."""
    user = require_user()
    if user.department is None:  # the database forbids it for department roles
        abort(403)
    session = request_uow().session
    department = org.get_department(session, user.department.key)
    links = org.clouds_of_department(session, department.id)
    # The count only for whoever approves (the service says who does).
    waiting = len(sr.awaiting(session, user.actor)) if sr.may_approve_any(user.actor) else None
    overview = sr.department_overview(session, user.actor)
    return render_template("portal/home.html", department=department, links=links, waiting=waiting, overview=overview)
