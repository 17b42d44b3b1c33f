"""The department wall of the legacy inventory, decided by the service: a department user never
reads, lists or narrows to another department's systems, whatever the caller asks for."""

from __future__ import annotations

import pytest

from cloudmgr.inventory.errors import SystemNotFound
from cloudmgr.inventory.services import SystemFilter, get_system, list_systems
from cloudmgr.organisation.actor import Actor
from cloudmgr.organisation.errors import UnknownDepartment
from cloudmgr.organisation.models import Role
from cloudmgr.runtime import Runtime
from tests.inventory.helpers import department, make_system

MINE = "prov-education"
THEIRS = "ts-hrss"


def test_a_department_user_meets_the_wall_in_the_service(seeded: Runtime) -> None:
    with seeded.db.unit_of_work() as uow:
        session = uow.session
        mine = make_system(session, "edu-wall-01", dept_key=MINE).id
        theirs = make_system(session, "hr-wall-01", dept_key=THEIRS).id
        staff = Actor("edu-staff", Role.DEPT_STAFF, department_id=department(session, MINE).id)
        operator = Actor("ops", Role.OPERATOR)

        def listed(actor: Actor | None, department_key: str | None = None) -> set[int]:
            rows, total = list_systems(session, SystemFilter(department_key=department_key), actor=actor)
            assert total == len(rows)
            return {s.id for s in rows}

        assert get_system(session, mine, actor=staff).id == mine
        with pytest.raises(SystemNotFound):
            get_system(session, theirs, actor=staff)
        # Naming the other department (or one that does not exist) does not narrow a department user's
        # list away from their own: the name is ignored, never an error that tells what exists.
        assert listed(staff) == {mine}
        assert listed(staff, THEIRS) == {mine}
        assert listed(staff, "no-such-department") == {mine}

        # Whoever sees every department's narrows to the one they name, and is told when there is none.
        assert get_system(session, theirs, actor=operator).id == theirs
        assert listed(operator) == {mine, theirs}
        assert listed(operator, THEIRS) == {theirs}
        assert listed(None, MINE) == {mine}
        with pytest.raises(UnknownDepartment):
            listed(operator, "no-such-department")
