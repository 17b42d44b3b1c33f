"""各部门资源 / Department resources: one department's keys, volumes, firewall, addresses, snapshots
and backups with the ledger's usage (issue 16); the page is shared with administrators
(:mod:`web.common.department_resources`)."""

from __future__ import annotations

from flask.typing import ResponseReturnValue

from web.common.department_resources import department_resources_page
from web.operations.blueprint import bp


@bp.get("/department-resources")
def department_resources() -> ResponseReturnValue:
    return department_resources_page("ops")
