"""A whole legacy system moves between the two lab OpenStacks (issue 17): its database and
application servers, with known bytes written into their disks on the province's cloud
(cloudmgr-lab), move as one system move to the city's (cloudmgr-lab-city), in dependency
order; every disk arrives byte for byte (SHA-256 of the target's disk file), every image
carried was proven by checksum, and the sources are gone.  SQLite only, like the other lab
move tests."""

from __future__ import annotations

import hashlib
import secrets

import pytest
from sqlalchemy import select

from cloudmgr.inventory.models import LegacySystem, ServerRoom
from cloudmgr.moves import services
from cloudmgr.moves.models import Move
from cloudmgr.moves.transfer import checksum_rows
from cloudmgr.organisation.models import Cloud
from tests.journey_fixtures import Journey
from tests.lab_paths import CITY, PROVINCE, disk_file, sha256_of
from tests.moves.conftest import provider_of, provision
from tests.moves.test_lab_moves import AS_OPERATOR, _settle, database_url, lab

pytestmark = pytest.mark.lab
__all__ = ["database_url", "lab"]  # the fixtures, imported to be used here


def test_a_database_and_its_application_move_to_the_city_cloud_as_one_byte_for_byte(lab: Journey) -> None:
    db_server, app_server = provision(lab, 2, prefix="sysmv")
    name = f"lab-system-{secrets.token_hex(3)}"
    hosts = {f"{name}-db": (db_server, []), f"{name}-app": (app_server, [f"{name}-db"])}
    with lab.rt.db.unit_of_work() as uow:
        education = uow.session.scalar(select(Cloud.id).where(Cloud.key == "education"))
        dept_id = lab.staff.department_id
        assert dept_id is not None
        room = ServerRoom(code=f"{name}-room", name_zh="机房", name_en="Room", department_id=dept_id)
        uow.session.add(room)
        uow.session.flush()
        for hostname, (server, deps) in hosts.items():
            uow.session.add(
                LegacySystem(
                    hostname=hostname, department_id=dept_id, server_room_id=room.id, application_system=name,
                    classification="non_classified", network="extranet", os_family="linux", os_name="CirrOS",
                    os_version="0.6", vcpus=1, ram_mb=512, disk_gb=1, data_gb=0, cpu_p95_pct=10, ram_p95_pct=10,
                    owner_name="王", owner_contact="0311", dependencies=deps, state="on_cloud",
                    target_cloud_id=education, cloud_server_id=server.server_id,
                )
            )  # fmt: skip
    # What each guest wrote on its disk on the province's cloud.
    written = {}
    for hostname, (server, _deps) in hosts.items():
        disk = disk_file(PROVINCE, server.server_id or "")
        with disk.open("r+b") as fh:
            fh.seek(4096)
            fh.write(hashlib.sha256(hostname.encode()).digest() * 128)
        written[hostname] = sha256_of(disk)

    move_id = services.start_system_move(
        lab.rt.db, lab.rt.providers, cloud_key="education", department_key=lab_department(lab),
        application_system=name, target_cloud_key="sjz-gov", actor=AS_OPERATOR, reason="lab: to the city cloud",
    )  # fmt: skip
    _settle(lab, timeout=900)
    with lab.rt.db.unit_of_work() as uow:
        move = services.get_move(uow.session, move_id)
        assert move.state == "done", move.state_reason
        children = {str(c.resources["hostname"]): c for c in move.children}
        order = [c.resources["hostname"] for c in sorted(children.values(), key=lambda c: c.id)]
        boots = {h: next(s.started_at for s in c.steps if s.name == "boot") for h, c in children.items()}
        rows = {h: checksum_rows(c.resources) for h, c in children.items()}
        new = {h: str(c.resources["target_server_id"]) for h, c in children.items()}
        states = {h: c.state for h, c in children.items()}
        inventory = {h.hostname: h.cloud_server_id for h in uow.session.scalars(select(LegacySystem))}
        assert uow.session.scalar(select(Move.id).where(Move.kind == "system")) == move_id
    db_boot, app_boot = boots[f"{name}-db"], boots[f"{name}-app"]
    assert order == [f"{name}-db", f"{name}-app"] and db_boot is not None and app_boot is not None
    assert db_boot < app_boot
    assert set(states.values()) == {"done"}
    city = provider_of(lab, "sjz-gov")
    for hostname in hosts:
        (snapshot,) = rows[hostname]
        assert snapshot["source_verified"] and snapshot["target_verified"], snapshot
        assert city.get_server(new[hostname]).status == "ACTIVE"
        # The new server's disk on the city's cloud holds what the guest wrote on the province's.
        assert sha256_of(disk_file(CITY, new[hostname])) == written[hostname], hostname
        assert snapshot["sha256"] == written[hostname]  # the digest the move kept is the disk's
        assert inventory[hostname] == new[hostname]
        assert not disk_file(PROVINCE, hosts[hostname][0].server_id or "").exists()


def lab_department(j: Journey) -> str:
    from cloudmgr.organisation.models import Department

    with j.rt.db.unit_of_work() as uow:
        department = uow.session.get(Department, j.staff.department_id)
        assert department is not None
        return department.key
