"""The department wall of the purchase requests, decided by the service: a department user never
reads, lists or narrows to another department's purchase requests, whatever the caller asks for."""

from __future__ import annotations

import pytest

from cloudmgr.organisation.actor import Actor
from cloudmgr.organisation.errors import UnknownDepartment
from cloudmgr.organisation.models import Department
from cloudmgr.purchases import services
from cloudmgr.purchases.errors import PurchaseNotFound
from tests.journey_fixtures import Journey
from tests.purchases.helpers import server_form


def _draft(pj: Journey, actor: Actor) -> int:
    with pj.rt.db.unit_of_work() as uow:
        return services.create_purchase(uow.session, actor, server_form()).id


def _key(pj: Journey, department_id: int | None) -> str:
    with pj.rt.db.unit_of_work() as uow:
        department = uow.session.get(Department, department_id)
        assert department is not None
        return department.key


def _listed(pj: Journey, actor: Actor, department_key: str | None = None) -> set[int]:
    with pj.rt.db.unit_of_work() as uow:
        rows, total = services.list_purchases(
            uow.session, actor, services.PurchaseFilter(department_key=department_key)
        )
        assert total == len(rows)
        return {r.id for r in rows}


def test_a_department_user_meets_the_wall_in_the_service(pj: Journey) -> None:
    assert pj.staff.department_id != pj.other_staff.department_id
    theirs = _draft(pj, pj.staff)
    mine = _draft(pj, pj.other_staff)
    their_key = _key(pj, pj.staff.department_id)
    my_key = _key(pj, pj.other_staff.department_id)

    with pj.rt.db.unit_of_work() as uow, pytest.raises(PurchaseNotFound):
        services.get_purchase(uow.session, pj.other_staff, theirs)
    # Naming the other department (or one that does not exist) does not narrow a department user's
    # list away from their own: the name is ignored, never an error that tells what exists.
    assert _listed(pj, pj.other_staff) == {mine}
    assert _listed(pj, pj.other_staff, their_key) == {mine}
    assert _listed(pj, pj.other_staff, "no-such-department") == {mine}

    # Whoever sees every department's narrows to the one they name, and is told when there is none.
    assert _listed(pj, pj.operator) == {theirs, mine}
    assert _listed(pj, pj.operator, their_key) == {theirs}
    assert _listed(pj, pj.finance, my_key) == {mine}
    with pj.rt.db.unit_of_work() as uow, pytest.raises(UnknownDepartment):
        services.list_purchases(uow.session, pj.operator, services.PurchaseFilter(department_key="no-such-department"))
