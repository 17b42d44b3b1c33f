from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from cloudmgr.audit.models import AuditEvent
from cloudmgr.db import utcnow
from cloudmgr.errors import ValidationFailed
from cloudmgr.organisation import services as org
from cloudmgr.organisation.actor import Actor
from cloudmgr.organisation.errors import InvalidCredentials, UnknownDepartment, UsernameTaken
from cloudmgr.organisation.models import ApiToken, Cloud, Department, DepartmentCloud, Role, User
from cloudmgr.runtime import Runtime


def test_import_is_idempotent_and_audited(seeded: Runtime) -> None:
    settings = seeded.settings
    clouds, departments = org.read_organisation(settings.clouds_file, settings.departments_file)
    with seeded.db.unit_of_work() as uow:
        summary = org.import_organisation(uow.session, clouds, departments, actor=Actor.system("test"))
    assert (summary.clouds_added, summary.departments_added, summary.links_added) == (0, 0, 0)
    with seeded.db.unit_of_work() as uow:
        session = uow.session
        assert session.scalar(select(func.count()).select_from(Cloud)) == len(clouds)
        assert session.scalar(select(func.count()).select_from(Department)) == len(departments)
        links = session.scalars(select(DepartmentCloud)).all()
        assert len(links) == sum(len(d.clouds) for d in departments)
        assert all(link.project_name.endswith("--" + link.cloud.key) for link in links)
        assert session.scalar(select(func.count()).where(AuditEvent.action == "organisation.import")) == 2


def test_create_user_rules(seeded: Runtime) -> None:
    with seeded.db.unit_of_work() as uow:
        with pytest.raises(ValidationFailed, match="needs a department"):
            org.create_user(
                uow.session, username="x1", password="long-enough-1", role=Role.DEPT_STAFF, actor=Actor.system("t")
            )
        with pytest.raises(ValidationFailed, match="does not belong"):
            org.create_user(
                uow.session,
                username="x2",
                password="long-enough-1",
                role=Role.OPERATOR,
                department_key="prov-education",
                actor=Actor.system("t"),
            )
        with pytest.raises(UnknownDepartment):
            org.create_user(
                uow.session,
                username="x3",
                password="long-enough-1",
                role=Role.DEPT_HEAD,
                department_key="nope",
                actor=Actor.system("t"),
            )
        with pytest.raises(ValidationFailed, match="at least 10"):
            org.create_user(uow.session, username="x4", password="short", role=Role.ADMIN, actor=Actor.system("t"))
        with pytest.raises(UsernameTaken):
            org.create_user(
                uow.session, username="admin", password="long-enough-1", role=Role.ADMIN, actor=Actor.system("t")
            )


def test_passwords_are_hashed_and_checked(seeded: Runtime) -> None:
    with seeded.db.unit_of_work() as uow:
        user = org.authenticate(uow.session, "operator", "demo-operator-2026")
        assert user.role == Role.OPERATOR.value
        assert "demo-operator-2026" not in user.password_hash
        with pytest.raises(InvalidCredentials):
            org.authenticate(uow.session, "operator", "wrong-password")
        with pytest.raises(InvalidCredentials):
            org.authenticate(uow.session, "nobody", "whatever-123")


def test_tokens_are_stored_hashed_and_expire(seeded: Runtime) -> None:
    with seeded.db.unit_of_work() as uow:
        user = org.get_user_by_name(uow.session, "zhangwei")
        issued = org.issue_token(
            uow.session, user, name="ci", expires_at=utcnow() + timedelta(days=1), actor=Actor.system("t")
        )
        expired = org.issue_token(
            uow.session, user, name="old", expires_at=utcnow() - timedelta(seconds=1), actor=Actor.system("t")
        )
    assert issued.token not in issued.record.token_hash
    with seeded.db.unit_of_work() as uow:
        found = org.identity_for_token(uow.session, issued.token)
        assert found is not None and found.username == "zhangwei" and found.role == "dept_staff"
        assert found.department is not None and found.department.id == user.department_id
        assert org.identity_for_token(uow.session, expired.token) is None
        assert org.identity_for_token(uow.session, "cmt_forged") is None
    with seeded.db.unit_of_work() as uow:
        record = uow.session.get(ApiToken, issued.record.id)
        assert record is not None and record.last_used_at is not None  # the use was recorded
        record.revoked_at = utcnow()
    with seeded.db.unit_of_work() as uow:
        assert org.identity_for_token(uow.session, issued.token) is None
        other = org.issue_token(uow.session, user, name="again", expires_at=None, actor=Actor.system("t"))
        org.get_user_by_name(uow.session, "zhangwei").active = False
    with seeded.db.unit_of_work() as uow:
        assert org.identity_for_token(uow.session, other.token) is None  # a deactivated user's token
        assert org.active_user_identity(uow.session, user.id) is None
        assert org.active_user_identity(uow.session, org.get_user_by_name(uow.session, "operator").id) is not None


def test_department_role_must_have_a_department_in_the_database(seeded: Runtime) -> None:
    """The rule holds in the schema too, not only in the service."""
    from sqlalchemy.exc import IntegrityError

    with pytest.raises(IntegrityError), seeded.db.unit_of_work() as uow:
        uow.session.add(User(username="rogue", display_name="r", password_hash="x", role="dept_staff"))


def test_the_department_wall_is_decided_by_the_service(seeded: Runtime) -> None:
    """A department user sees their own department and its clouds; another department does not
    exist for them; everyone else sees all (the API's /clouds and /departments ask these)."""
    with seeded.db.unit_of_work() as uow:
        session = uow.session
        staff = Actor.of(org.get_user_by_name(session, "zhangwei"))
        operator = Actor.of(org.get_user_by_name(session, "operator"))
        assert staff.department_id is not None
        own = session.get(Department, staff.department_id)
        other = session.scalar(select(Department).where(Department.id != staff.department_id).limit(1))
        assert own is not None and other is not None
        assert [d.id for d in org.visible_departments(session, staff)] == [own.id]
        assert len(org.visible_departments(session, operator)) == len(org.list_departments(session)) > 1
        assert [d.id for d in org.visible_departments(session, operator, level=other.level)] == [
            d.id for d in org.list_departments(session) if d.level == other.level
        ]
        assert org.get_visible_department(session, staff, own.key) is own
        assert org.get_visible_department(session, operator, other.key) is other
        with pytest.raises(UnknownDepartment):
            org.get_visible_department(session, staff, other.key)
        own_clouds = {link.cloud_id for link in org.clouds_of_department(session, own.id)}
        assert {c.id for c in org.visible_clouds(session, staff)} == own_clouds
        assert {c.id for c in org.visible_clouds(session, operator)} == {c.id for c in org.list_clouds(session)}
        assert own_clouds != {c.id for c in org.list_clouds(session)}
