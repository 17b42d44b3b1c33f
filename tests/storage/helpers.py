"""Servers to give storage to: provisioned on the simulated education cloud through the journey."""

from __future__ import annotations

import dataclasses

from sqlalchemy import select

from cloudmgr.organisation.models import Cloud, DepartmentCloud
from cloudmgr.quotas import ledger
from cloudmgr.quotas.resources import Resource
from cloudmgr.servicerequests import services as requests_service
from cloudmgr.servicerequests.models import ServiceRequest
from tests.journey_fixtures import Journey


def active_server(j: Journey, *, zone: str = "internet", prefix: str = "stor") -> int:
    """One provisioned, active server of zhangwei's department on education in ``zone``."""
    form = dataclasses.replace(j.form(1, prefix=prefix), zone=zone)
    with j.rt.db.unit_of_work() as uow:
        request_id = requests_service.create_request(
            uow.session,
            j.staff,
            form,
            submit=True,
            settings=j.rt.settings,  # type: ignore[arg-type]
        ).id
    actors = {"dept_head": j.head, "operator": j.operator, "finance": j.finance}
    for _ in range(4):
        with j.rt.db.unit_of_work() as uow:
            role = uow.session.get_one(ServiceRequest, request_id).next_role
        if role is None:
            break
        with j.rt.db.unit_of_work() as uow:
            requests_service.approve_request(uow.session, actors[role], request_id, reason="ok")
    j.drain()
    with j.rt.db.unit_of_work() as uow:
        request = uow.session.get_one(ServiceRequest, request_id)
        (server,) = request.servers
        assert server.state == "active", server.fault
        return server.id


def education(j: Journey) -> tuple[int, int, str]:
    """(department id, cloud id, project id) of zhangwei's department on education."""
    with j.rt.db.unit_of_work() as uow:
        cloud_id = uow.session.scalars(select(Cloud.id).where(Cloud.key == "education")).one()
        link = uow.session.scalars(
            select(DepartmentCloud).where(
                DepartmentCloud.cloud_id == cloud_id, DepartmentCloud.department_id == j.staff.department_id
            )
        ).one()
        assert j.staff.department_id is not None and link.project_id
        return j.staff.department_id, cloud_id, link.project_id


def balance(j: Journey, resource: Resource) -> tuple[int, int]:
    """(used, reserved) of ``resource`` for zhangwei's department on education."""
    department_id, cloud_id, _ = education(j)
    with j.rt.db.unit_of_work() as uow:
        row = ledger.balance(uow.session, department_id, cloud_id).resources[resource]
        return row.used, row.reserved
