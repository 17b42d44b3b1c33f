"""各部门资源 / Department resources for administrators: the operators' page, read only, linked
from the departments list (:mod:`web.common.department_resources`)."""

from __future__ import annotations

from flask.typing import ResponseReturnValue

from web.admin.blueprint import bp
from web.common.department_resources import department_resources_page


@bp.get("/department-resources")
def department_resources() -> ResponseReturnValue:
    return department_resources_page("admin")
