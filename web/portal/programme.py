"""The programme against its deadlines for a department's own systems (/portal/programme)."""

from __future__ import annotations

from flask import abort
from flask.typing import ResponseReturnValue

from cloudmgr.organisation.models import Role
from web.common.programme import render_programme
from web.core.security import current_actor, role_required
from web.portal.blueprint import bp


@bp.get("/programme")
@role_required(Role.DEPT_STAFF, Role.DEPT_HEAD)
def portal_programme() -> ResponseReturnValue:
    """A department's own systems only (departments never see each other's)."""
    actor = current_actor()
    if actor.department_id is None:  # pragma: no cover (the roles guarantee a department)
        abort(403)
    return render_programme(audience="department", department_id=actor.department_id)
