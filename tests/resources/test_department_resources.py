"""The operators' and administrators' view of one department's resources (cloudmgr.resources), on
the simulated cloud: what is listed, the firewall's rules one a line, the ledger's usage beside
the listing (and a difference flagged), and who may read it."""

from __future__ import annotations

import dataclasses

import pytest
from sqlalchemy import select, update

from cloudmgr.backups import services as backups
from cloudmgr.catalog.models import CatalogItem, ItemKind
from cloudmgr.firewall import services as firewall
from cloudmgr.keys import services as keys
from cloudmgr.organisation.actor import Actor
from cloudmgr.organisation.errors import UnknownCloud, UnknownDepartment
from cloudmgr.organisation.models import Cloud, Role
from cloudmgr.quotas.models import QuotaLedgerRow
from cloudmgr.quotas.resources import Resource
from cloudmgr.resources import services as resources
from cloudmgr.resources.errors import ResourcesForbidden
from cloudmgr.servicerequests import services as requests_service
from cloudmgr.servicerequests.models import ServiceRequest
from cloudmgr.servicerequests.quoting import DataDisk
from cloudmgr.storage import services as storage
from tests.journey_fixtures import Journey
from tests.keys.keygen import ed25519_key, public_line
from tests.storage.helpers import education

EDUCATION = "prov-education"
ADMIN = Actor("admin", Role.ADMIN)


def _fake_type(j: Journey) -> int:
    with j.rt.db.unit_of_work() as uow:
        cloud_id = uow.session.scalars(select(Cloud.id).where(Cloud.key == "education")).one()
        return uow.session.scalars(
            select(CatalogItem.id).where(
                CatalogItem.cloud_id == cloud_id,
                CatalogItem.kind == ItemKind.VOLUME_TYPE.value,
                CatalogItem.cloud_name == "fake",
            )
        ).one()


def _provisioned(j: Journey) -> int:
    """A request of zhangwei's department on education's internet zone with the web template, a
    public address and a 10 GB data disk, approved and provisioned; its id."""
    with j.rt.db.unit_of_work() as uow:
        firewall.seed_standard_templates(uow.session, j.operator)
    form = dataclasses.replace(
        j.form(1, prefix="res"),
        zone="internet",
        firewall_templates=("web",),
        public_address=True,
        data_disks=(DataDisk(10, _fake_type(j)),),
    )
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
        (server,) = uow.session.get_one(ServiceRequest, request_id).servers
        assert server.state == "active", server.fault
    return request_id


def _read(j: Journey, actor: Actor | None = None, cloud: str | None = None) -> resources.DepartmentResources:
    with j.rt.db.unit_of_work() as uow:
        return resources.department_resources(uow.session, actor or j.operator, EDUCATION, cloud)


def _everything(j: Journey) -> tuple[int, str]:
    """The provisioned request, a volume of the department's own, a key, a snapshot, a backup and
    a schedule; returns (request id, the key's fingerprint)."""
    request_id = _provisioned(j)
    with j.rt.db.unit_of_work() as uow:
        key = keys.add_key(uow.session, j.staff, "laptop", public_line(ed25519_key(), "zw@laptop"))
        made = storage.create_volume(
            uow.session, j.staff, name="归档盘", size_gb=20, cloud_key="education", volume_type_name="fake"
        )
    j.drain()
    with j.rt.db.unit_of_work() as uow:
        backups.take_snapshot(uow.session, j.staff, made.id)
        backups.back_up_now(uow.session, j.staff, made.id)
        backups.set_schedule(uow.session, j.staff, made.id, backups.ScheduleForm("weekly", 2, 7, weekday=6))
    j.drain()
    return request_id, key.fingerprint


def test_the_department_is_listed_with_the_ledger_beside_it(journey: Journey) -> None:
    j = journey
    request_id, fingerprint = _everything(j)
    found = _read(j)
    assert (found.department_key, found.cloud) == (EDUCATION, None)

    (key,) = found.keys
    assert (key.name, key.key_type, key.fingerprint, key.owner) == ("laptop", "ssh-ed25519", fingerprint, "zhangwei")
    assert not hasattr(key, "public_key")  # the key itself is never read out

    volumes = {v.name: v for v in found.volumes}
    assert volumes["归档盘"].size_gb == 20 and volumes["归档盘"].state == "available"
    disk = next(v for v in found.volumes if v.name != "归档盘")
    assert (disk.size_gb, disk.state, disk.volume_type) == (10, "attached", "fake") and disk.server_name

    (address,) = found.addresses
    assert address.state == "associated" and address.address and address.server_name == disk.server_name

    (group,) = found.firewall_groups
    assert (group.request_id, group.templates, group.servers, group.problem) == (request_id, ("web",), 1, None)
    # web is tcp 80 and 443 from 0.0.0.0/0 and from ::/0: one line each, plus the open egress.
    lines = [(line.direction, line.protocol, line.ports, line.any_address, line.sources) for line in group.lines]
    assert lines == [
        ("ingress", "tcp", "80", True, ("web",)),
        ("ingress", "tcp", "443", True, ("web",)),
        ("egress", "any", "", True, ("egress",)),
    ]

    (snapshot,) = found.snapshots
    (backup,) = found.backups
    assert (snapshot.volume_name, snapshot.size_gb, snapshot.state) == ("归档盘", 20, "ready")
    assert (backup.volume_name, backup.state, backup.scheduled) == ("归档盘", "ready", False)
    (schedule,) = found.schedules
    assert (schedule.volume_name, schedule.frequency, schedule.weekday, schedule.hour, schedule.keep) == (
        "归档盘",
        "weekly",
        6,
        2,
        7,
    )

    usage = {u.cloud.key: u for u in found.usage}
    assert set(usage) == {c.key for c in found.clouds}
    lines_of = {line.resource: line for line in usage["education"].lines}
    expected = {
        Resource.VOLUMES: 2,
        Resource.GIGABYTES: 10 + 20 + 20,  # the two volumes and the snapshot, as Cinder counts
        Resource.FLOATING_IPS: 1,
        Resource.SNAPSHOTS: 1,
        Resource.BACKUPS: 1,
    }
    for resource, listed in expected.items():
        line = lines_of[resource]
        assert (line.listed, line.used, line.reserved, line.agrees) == (listed, listed, 0, True), resource
        assert line.limit is not None and line.limit >= listed
    assert lines_of[Resource.SECURITY_GROUPS].listed is None and lines_of[Resource.SECURITY_GROUPS].agrees is None
    assert found.agrees


def test_a_change_under_way_agrees_and_a_drifted_ledger_is_flagged(journey: Journey) -> None:
    j = journey
    with j.rt.db.unit_of_work() as uow:
        storage.create_volume(
            uow.session, j.staff, name="new", size_gb=5, cloud_key="education", volume_type_name="fake"
        )
    pending = {line.resource: line for line in _read(j, cloud="education").usage[0].lines}
    assert (pending[Resource.VOLUMES].listed, pending[Resource.VOLUMES].reserved) == (1, 1)
    assert pending[Resource.VOLUMES].agrees  # being made: held by its reservation
    j.drain()
    department_id, cloud_id, _ = education(j)
    with j.rt.db.unit_of_work() as uow:
        uow.session.execute(
            update(QuotaLedgerRow)
            .where(
                QuotaLedgerRow.department_id == department_id,
                QuotaLedgerRow.cloud_id == cloud_id,
                QuotaLedgerRow.resource == Resource.VOLUMES.value,
            )
            .values(used=QuotaLedgerRow.used + 3)
        )
    found = _read(j, cloud="education")
    drifted = {line.resource: line for line in found.usage[0].lines}
    assert (drifted[Resource.VOLUMES].listed, drifted[Resource.VOLUMES].used) == (1, 4)
    assert drifted[Resource.VOLUMES].agrees is False and not found.agrees
    assert drifted[Resource.GIGABYTES].agrees is True


def test_one_cloud_narrows_everything(journey: Journey) -> None:
    j = journey
    _everything(j)
    on_education = _read(j, cloud="education")
    assert on_education.cloud is not None and on_education.cloud.key == "education"
    assert [u.cloud.key for u in on_education.usage] == ["education"]
    assert on_education.volumes and on_education.firewall_groups and on_education.addresses
    other = next(c.key for c in on_education.clouds if c.key != "education")
    elsewhere = _read(j, cloud=other)
    assert not (elsewhere.volumes or elsewhere.firewall_groups or elsewhere.addresses or elsewhere.snapshots)
    assert not (elsewhere.backups or elsewhere.schedules)
    assert len(elsewhere.keys) == 1  # keys are the users', not a cloud's
    assert [u.cloud.key for u in elsewhere.usage] == [other]


def test_another_department_holds_none_of_it(journey: Journey) -> None:
    j = journey
    _everything(j)
    with j.rt.db.unit_of_work() as uow:
        other = resources.department_resources(uow.session, j.operator, "ts-hrss")
    assert not (other.keys or other.volumes or other.firewall_groups or other.addresses)
    assert not (other.snapshots or other.backups or other.schedules)
    for usage in other.usage:
        for line in usage.lines:
            assert line.listed in (None, 0)


def test_operators_and_administrators_read_it_and_nobody_else(journey: Journey) -> None:
    j = journey
    assert _read(j, ADMIN).department_key == EDUCATION
    for actor in (j.staff, j.head, j.finance, j.other_staff):
        with pytest.raises(ResourcesForbidden), j.rt.db.unit_of_work() as uow:
            resources.department_resources(uow.session, actor, EDUCATION)


def test_unknown_keys_are_refused(journey: Journey) -> None:
    j = journey
    with pytest.raises(UnknownDepartment), j.rt.db.unit_of_work() as uow:
        resources.department_resources(uow.session, j.operator, "no-such-department")
    with pytest.raises(UnknownCloud), j.rt.db.unit_of_work() as uow:
        resources.department_resources(uow.session, j.operator, EDUCATION, "no-such-cloud")
