"""The programme against its deadlines for a department's own systems (/portal/programme)."""

from __future__ import annotations

from flask.typing import ResponseReturnValue

from cloudmgr.organisation.models import Role
from cloudmgr.programme import services as programme
from web.common.programme import render_programme
from web.core.security import current_actor, role_required
from web.core.uow import request_uow
from web.portal.blueprint import bp


@bp.get("/programme")
@role_required(Role.DEPT_STAFF, Role.DEPT_HEAD)
def portal_programme() -> ResponseReturnValue:
    """A department's own systems only (departments never see each other's)."""
    department = programme.visible_department(request_uow().session, current_actor())
    assert department is not None  # a department user always sees exactly their own
    return render_programme(audience="department", department_id=department.id)
