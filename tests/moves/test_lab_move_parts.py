"""A server with a data volume, firewall rules and a public address moved between the lab's
two clouds (education on cloudmgr-lab, the province's OpenStack → sjz-gov on
cloudmgr-lab-city, the city's own OpenStack: its own Keystone, Nova, Glance, Neutron and
Cinder), killed after every step's side effect and resumed; then moved back, failed at its
check and undone.  Checked with plain openstacksdk on each cloud and the lab driver's volume
files (vagrant/lab/cloudmgr_lab_ml2/volume.py, tests/lab_paths.py): one server, one volume
with the same bytes, one address and the same rules on the target; nothing on the source.

The department is made for the test (a unique Keystone domain); the test removes what it
made.  SQLite only: the database is not what it tests (tests/moves/test_cross_cloud_parts.py
runs the same on both databases against the simulator).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import logging
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from cloudmgr.firewall import services as firewall
from cloudmgr.moves import jobs, services, stepping
from cloudmgr.moves.models import Move
from cloudmgr.moves.states import STEPS, MoveKind
from cloudmgr.organisation.actor import Actor
from cloudmgr.organisation.models import Cloud, DepartmentCloud, Role
from cloudmgr.runtime import Runtime
from cloudmgr.servicerequests import services as requests_service
from cloudmgr.servicerequests.models import ManagedServer, ServiceRequest
from cloudmgr.servicerequests.parts import ManagedAddress, ManagedVolume
from cloudmgr.servicerequests.quoting import DataDisk
from cloudmgr.workqueue.services import RetryLater
from tests.conftest import lab_connection
from tests.journey_fixtures import Journey
from tests.lab_paths import CITY, LAB_CLOUDS, PROVINCE, sha256_of, volume_file
from tests.moves.conftest import build_moves_org, provider_of

pytestmark = pytest.mark.lab
log = logging.getLogger(__name__)
REPO = Path(__file__).resolve().parents[2]
AS_OPERATOR = Actor(username="operator", role=Role.OPERATOR)
GIB = 1024**3


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'cloudmgr.sqlite3'}"


@pytest.fixture
def lab(lab_runtime: Runtime, tmp_path: Path, lab_clouds_yaml: Path) -> Iterator[Journey]:
    key = f"mp{secrets.token_hex(3)}"
    try:
        yield build_moves_org(lab_runtime, tmp_path, department=key, clouds=("education", "sjz-gov"))
    finally:
        _clean(lab_clouds_yaml, key)


def _clean(clouds_yaml: Path, key: str) -> None:
    for attempt in range(3):
        try:
            _clean_once(clouds_yaml, key)
            return
        except Exception:
            log.warning("clean-up of dept-%s failed (attempt %d)", key, attempt + 1, exc_info=True)
            time.sleep(2)


def _clean_once(clouds_yaml: Path, key: str) -> None:
    for cloud in LAB_CLOUDS:
        _clean_cloud(lab_connection(clouds_yaml, cloud), key)


def _clean_cloud(conn: Any, key: str) -> None:
    """The department's servers, addresses, volumes, images, groups, projects and domain on
    one of the lab's clouds (each has its own Keystone: a domain and projects of its own)."""
    domain = conn.identity.find_domain(f"dept-{key}")
    if domain is None:
        return
    for project in list(conn.identity.projects(domain_id=domain.id)):
        servers = list(conn.compute.servers(all_projects=True, project_id=project.id))
        for server in servers:
            conn.compute.delete_server(server, ignore_missing=True)
        for server in servers:
            conn.compute.wait_for_delete(server, wait=120)
        for ip in conn.network.ips(project_id=project.id):
            conn.network.delete_ip(ip, ignore_missing=True)
        for volume in conn.block_storage.volumes(details=True, all_projects=True, project_id=project.id):
            conn.block_storage.wait_for_status(volume, "available", failures=["error"], wait=300)
            conn.block_storage.delete_volume(volume, ignore_missing=True)
            conn.block_storage.wait_for_delete(volume, wait=120)
        for image in conn.image.images(owner=project.id):
            conn.image.delete_image(image, ignore_missing=True)
        for group in conn.network.security_groups(project_id=project.id):
            conn.network.delete_security_group(group, ignore_missing=True)
        conn.identity.delete_project(project, ignore_missing=True)
    conn.identity.update_domain(domain, is_enabled=False)
    conn.identity.delete_domain(domain, ignore_missing=True)


def _provision(j: Journey) -> ManagedServer:
    """One m1.tiny on the internet zone with a 1 GB data disk, the web and db-internal rules
    (the second names the department's members group) and a public address."""
    with j.rt.db.unit_of_work() as uow:
        firewall.seed_standard_templates(uow.session, j.operator)
    form = dataclasses.replace(
        j.form(1, prefix="mvp", flavor="m1.tiny"),
        zone="internet",
        data_disks=(DataDisk(1, volume_type_name="fake"),),
        public_address=True,
        firewall_templates=("web", "db-internal"),
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
        server = uow.session.scalars(select(ManagedServer).where(ManagedServer.request_id == request_id)).one()
    assert server.state == "active" and server.server_id, server.fault
    return server


def _write_known_bytes(cloud: str, volume_id: str) -> str:
    """Distinct bytes at the start, the middle and the end of the 1 GB volume; its digest."""
    with volume_file(cloud, volume_id).open("r+b") as fh:
        for offset in (0, GIB // 2 + 4321, GIB - 8192):
            fh.seek(offset)
            fh.write(hashlib.sha256(f"{volume_id}:{offset}".encode()).digest() * 128)
    return _digest(cloud, volume_id)


def _digest(cloud: str, volume_id: str) -> str:
    return sha256_of(volume_file(cloud, volume_id))


def _project(j: Journey, cloud_key: str) -> str:
    with j.rt.db.unit_of_work() as uow:
        link = uow.session.scalar(
            select(DepartmentCloud).join(Cloud, Cloud.id == DepartmentCloud.cloud_id).where(Cloud.key == cloud_key)
        )
        assert link is not None and link.project_id
        return link.project_id


def _rules(conn: Any, project: str) -> dict[str, set[tuple[Any, ...]]]:
    """Each group's rules as Neutron has them, another group named by its name."""
    groups = list(conn.network.security_groups(project_id=project))
    names = {g.id: g.name for g in groups}
    return {
        g.name: {
            (r["direction"], r["ethertype"], r["protocol"], r["port_range_min"], r["port_range_max"],
             r["remote_ip_prefix"], names.get(r["remote_group_id"], r["remote_group_id"]))
            for r in g.security_group_rules
        }
        for g in groups
    }  # fmt: skip


def _move(j: Journey, move_id: int) -> Move:
    with j.rt.db.unit_of_work() as uow:
        move = uow.session.get(Move, move_id)
        assert move is not None
        return move


def _start(j: Journey, server_id: str, source: str, target: str) -> int:
    return services.start_cross_cloud_move(
        j.rt.db, j.rt.providers, cloud_key=source, server_id=server_id, target_cloud_key=target,
        actor=AS_OPERATOR, reason=f"lab: {source} to {target}",
    )  # fmt: skip


def _run(j: Journey, move_id: int, until: tuple[str, ...] = ("done", "failed", "reverted")) -> None:
    for _ in range(100):
        if _move(j, move_id).state in until:
            return
        with contextlib.suppress(RetryLater):  # a lab glitch: try again
            jobs.run_move(j.rt.db, j.rt.providers, move_id, timeout=120)
    raise AssertionError(f"move {move_id} never settled: {_move(j, move_id).state}")


def _parts_in(conn: Any, project: str, server_name: str) -> tuple[list[Any], list[Any], list[Any]]:
    servers = [s for s in conn.compute.servers(all_projects=True, project_id=project) if s.name == server_name]
    volumes = list(conn.block_storage.volumes(details=True, all_projects=True, project_id=project))
    return servers, volumes, list(conn.network.ips(project_id=project))


@dataclasses.dataclass(frozen=True)
class Clouds:
    """openstacksdk on each lab cloud: education's (the province's) and sjz-gov's (the city's)."""

    province: Any
    city: Any


class Killed(BaseException):
    """The death of the process running the move, right after a step's side effect."""


def test_a_server_with_its_volume_rules_and_address_moves_between_the_lab_clouds_and_an_undone_move_back(
    lab: Journey, lab_clouds_yaml: Path
) -> None:
    server = _provision(lab)
    clouds = Clouds(lab_connection(lab_clouds_yaml, PROVINCE), lab_connection(lab_clouds_yaml, CITY))
    conn = clouds.province
    education = _project(lab, "education")
    with lab.rt.db.unit_of_work() as uow:
        (row,) = uow.session.scalars(select(ManagedVolume).where(ManagedVolume.server_id == server.id))
    written = _write_known_bytes(PROVINCE, row.volume_id or "")
    groups = sorted({g["name"] for g in conn.compute.get_server(server.server_id).security_groups})
    assert len(groups) == 2
    rules = {name: _rules(conn, education)[name] for name in groups}
    new, volume, ip = _there_killed_after_every_step(lab, clouds, server, row, groups, rules, written)
    _back_failed_at_its_check_and_undone(lab, clouds, server, row, new, volume, ip, written)


def _there_killed_after_every_step(
    lab: Journey,
    clouds: Clouds,
    server: ManagedServer,
    row: ManagedVolume,
    groups: list[str],
    rules: dict[str, set[tuple[Any, ...]]],
    written: str,
) -> tuple[Any, Any, Any]:
    """Killed once after every step's side effect (before the step is recorded)."""
    education, city = _project(lab, "education"), _project(lab, "sjz-gov")
    move_id = _start(lab, server.server_id or "", "education", "sjz-gov")
    crashed: list[tuple[str, str]] = []

    def kill(_move_id: int, step: str, phase: str) -> None:
        if phase == "acted" and (step, phase) not in crashed:
            crashed.append((step, phase))
            raise Killed(f"{step}/{phase}")

    stepping.CRASH_HOOK = kill
    try:
        for _ in range(100):
            if _move(lab, move_id).state in ("done", "failed"):
                break
            with contextlib.suppress(Killed, RetryLater):
                jobs.run_move(lab.rt.db, lab.rt.providers, move_id, timeout=120)
    finally:
        stepping.CRASH_HOOK = None
    move = _move(lab, move_id)
    assert move.state == "done", move.state_reason
    assert crashed == [(s, "acted") for s in STEPS[MoveKind.CROSS_CLOUD]]
    there = clouds.city
    (new,), volumes, ips = _parts_in(there, city, server.name)
    assert new.status == "ACTIVE"
    assert sorted({g["name"] for g in there.compute.get_server(new.id).security_groups}) == groups
    assert {name: _rules(there, city)[name] for name in groups} == rules
    (volume,) = volumes
    assert (volume.size, volume.volume_type, volume.status) == (1, "fake", "in-use")
    assert [a["server_id"] for a in volume.attachments] == [new.id]
    assert _digest(CITY, volume.id) == written
    (ip,) = ips
    assert ip.port_id and there.network.get_port(ip.port_id).device_id == new.id
    assert _parts_in(clouds.province, education, server.name) == ([], [], [])
    for conn in (clouds.province, clouds.city):
        assert [i.name for i in conn.image.images() if (move.idempotency_key or "-") in (i.name or "")] == []
    with lab.rt.db.unit_of_work() as uow:
        managed = uow.session.get_one(ManagedServer, server.id)
        address = uow.session.scalars(select(ManagedAddress).where(ManagedAddress.server_id == server.id)).one()
        moved_row = uow.session.get_one(ManagedVolume, row.id)
    assert managed.server_id == new.id and managed.addresses["public"] == [ip.floating_ip_address]
    assert (moved_row.volume_id, address.floating_ip_id) == (volume.id, ip.id)
    return new, volume, ip


def _back_failed_at_its_check_and_undone(
    lab: Journey,
    clouds: Clouds,
    server: ManagedServer,
    row: ManagedVolume,
    new: Any,
    volume: Any,
    ip: Any,
    written: str,
) -> None:
    """Back to education, failed at its check (its volume taken off behind its back), undone."""
    education, city = _project(lab, "education"), _project(lab, "sjz-gov")
    back = _start(lab, new.id, "sjz-gov", "education")
    education_cloud = provider_of(lab, "education")

    def take_the_volume_off(move_id: int, step: str, phase: str) -> None:
        if move_id == back and (step, phase) == ("verify", "started"):
            resources = _move(lab, back).resources
            volume_id = resources["target_volumes"]["1"]
            education_cloud.detach_volume(resources["target_server_id"], volume_id)
            education_cloud.wait_volume(volume_id, {"available"}, timeout=120)

    stepping.CRASH_HOOK = take_the_volume_off
    try:
        _run(lab, back)
    finally:
        stepping.CRASH_HOOK = None
    failed = _move(lab, back)
    assert failed.state == "failed" and (failed.state_reason or "").startswith("verify:"), failed.state_reason
    with lab.rt.db.unit_of_work() as uow:
        services.revert(uow.session, back, actor=AS_OPERATOR, reason="lab: undo")
    _run(lab, back)
    assert _move(lab, back).state == "reverted", _move(lab, back).state_reason
    assert _parts_in(clouds.province, education, server.name) == ([], [], [])
    there = clouds.city
    (still,), (kept,), (kept_ip,) = _parts_in(there, city, server.name)
    assert (still.id, still.status, kept.id, kept_ip.id) == (new.id, "ACTIVE", volume.id, ip.id)
    assert [a["server_id"] for a in there.block_storage.get_volume(kept.id).attachments] == [new.id]
    assert there.network.get_port(there.network.get_ip(ip.id).port_id).device_id == new.id
    assert _digest(CITY, kept.id) == written
    for conn in (clouds.province, clouds.city):
        assert [i.name for i in conn.image.images() if (failed.idempotency_key or "-") in (i.name or "")] == []
    with lab.rt.db.unit_of_work() as uow:
        assert uow.session.get_one(ManagedServer, server.id).server_id == new.id
        assert uow.session.get_one(ManagedVolume, row.id).volume_id == volume.id
