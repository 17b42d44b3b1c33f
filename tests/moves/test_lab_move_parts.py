"""A server with two data volumes, firewall rules and a public address, provisioned by cloudmgr
on the city's own OpenStack (sjz-gov on cloudmgr-lab-city: its own Keystone, Nova, Glance,
Neutron and Cinder), moves to the province's (education on cloudmgr-lab) with the worker
killed at five points on the way (after the snapshot, the image upload, the volume transfers,
the boot and the record) and resumed each time; then back, a first time failed at its check
and undone before the source is deleted, a second time to success (issue 17).

Known bytes are written into the server's disk file and both volume files (start, middle and
end) on the city's cloud (the lab keeps real bytes: tests/lab_paths.py).  After each leg,
plain openstacksdk on the target: one server, its disk byte for byte (SHA-256), two volumes
attached with the same bytes each, the same rules, a public address; nothing left on the
source; and cloudmgr's quota ledger: the department's usage (instances, cores, memory,
volumes, gigabytes, floating IPs) moved from the source cloud's row to the target's, no
reservation left open.

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
from cloudmgr.organisation.actor import Actor
from cloudmgr.organisation.models import Cloud, DepartmentCloud, Role
from cloudmgr.quotas import ledger
from cloudmgr.quotas.models import QuotaReservation, ReservationState
from cloudmgr.quotas.resources import Resource
from cloudmgr.runtime import Runtime
from cloudmgr.servicerequests import services as requests_service
from cloudmgr.servicerequests.models import ManagedServer, ServiceRequest
from cloudmgr.servicerequests.parts import ManagedAddress, ManagedVolume
from cloudmgr.servicerequests.quoting import DataDisk
from cloudmgr.workqueue.services import RetryLater
from tests.conftest import lab_connection
from tests.journey_fixtures import Journey
from tests.lab_paths import CITY, LAB_CLOUDS, PROVINCE, disk_file, sha256_of, volume_file
from tests.moves.conftest import build_moves_org, provider_of

pytestmark = pytest.mark.lab
log = logging.getLogger(__name__)
REPO = Path(__file__).resolve().parents[2]
AS_OPERATOR = Actor(username="operator", role=Role.OPERATOR)
CITY_KEY, PROVINCE_KEY = "sjz-gov", "education"
#: Where the worker is killed on the way to the province: right after the step's side effect,
#: before it is recorded (the hardest point to resume from), spread over the move.
KILLED_AFTER = ("snapshot", "upload", "transfer_volumes", "boot", "record_target")
#: The ledger's resources a moved server holds (m1.tiny, two 1 GB volumes, one address).
MOVED = (Resource.INSTANCES, Resource.CORES, Resource.RAM_MB, Resource.VOLUMES, Resource.GIGABYTES,
         Resource.FLOATING_IPS)  # fmt: skip


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


def _provision(j: Journey, cloud: str) -> ManagedServer:
    """One m1.tiny on ``cloud``'s internet zone with two 1 GB data disks, the web and
    db-internal rules (the second names the department's members group) and a public address."""
    with j.rt.db.unit_of_work() as uow:
        firewall.seed_standard_templates(uow.session, j.operator)
    form = dataclasses.replace(
        j.form(1, cloud=cloud, prefix="mvp", flavor="m1.tiny"),
        zone="internet",
        data_disks=(DataDisk(1, volume_type_name="fake"), DataDisk(1, volume_type_name="fake")),
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


def _write_known_bytes(path: Path) -> str:
    """Distinct bytes at the start, the middle and the end of a disk or volume file (what a
    guest would write there); the file's digest."""
    size = path.stat().st_size
    assert size > 64 * 1024, (path, size)
    with path.open("r+b") as fh:
        for offset in (0, size // 2 + 4321, size - 8192):
            fh.seek(offset)
            fh.write(hashlib.sha256(f"{path.name}:{offset}".encode()).digest() * 128)
    return sha256_of(path)


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


@dataclasses.dataclass(frozen=True)
class Written:
    """What the guest wrote: its disk's digest and each volume's (by its ManagedVolume row)."""

    disk: str
    volumes: dict[int, str]


@dataclasses.dataclass(frozen=True)
class Placed:
    """Where the server is after a leg: its Nova id, its volumes' ids, its address's id."""

    server_id: str
    volume_ids: dict[int, str]
    ip_id: str


def _usage(j: Journey) -> dict[str, dict[Resource, int]]:
    """The department's ledger per cloud: used of each moved resource; no reservation open."""
    department_id = j.staff.department_id
    assert department_id is not None
    with j.rt.db.unit_of_work() as uow:
        balances = ledger.all_balances(uow.session, department_id=department_id)
        held = uow.session.scalars(
            select(QuotaReservation).where(
                QuotaReservation.department_id == department_id,
                QuotaReservation.state == ReservationState.HELD.value,
            )
        ).all()
        open_reservations = [(r.owner, r.amounts) for r in held]
    assert open_reservations == []
    for b in balances:
        assert all(r.reserved == 0 for r in b.resources.values()), (b.cloud_key, b.resources)
    return {b.cloud_key: {r: b.resources[r].used for r in MOVED} for b in balances}


def test_a_server_with_two_volumes_moves_city_to_province_killed_five_times_and_back_byte_for_byte(
    lab: Journey, lab_clouds_yaml: Path
) -> None:
    server = _provision(lab, CITY_KEY)
    clouds = Clouds(lab_connection(lab_clouds_yaml, PROVINCE), lab_connection(lab_clouds_yaml, CITY))
    with lab.rt.db.unit_of_work() as uow:
        rows = list(uow.session.scalars(select(ManagedVolume).where(ManagedVolume.server_id == server.id)))
    assert len(rows) == 2
    written = Written(
        disk=_write_known_bytes(disk_file(CITY, server.server_id or "")),
        volumes={r.id: _write_known_bytes(volume_file(CITY, r.volume_id or "")) for r in rows},
    )
    assert len({written.disk, *written.volumes.values()}) == 3
    groups = sorted({g["name"] for g in clouds.city.compute.get_server(server.server_id).security_groups})
    assert len(groups) == 2
    rules = {name: _rules(clouds.city, _project(lab, CITY_KEY))[name] for name in groups}
    held = _usage(lab)[CITY_KEY]
    assert held == {
        Resource.INSTANCES: 1, Resource.CORES: server.vcpus, Resource.RAM_MB: server.ram_mb,
        Resource.VOLUMES: 2, Resource.GIGABYTES: 2, Resource.FLOATING_IPS: 1,
    }  # fmt: skip
    assert set(_usage(lab)[PROVINCE_KEY].values()) == {0}
    start = _placed(lab, server)
    assert start.server_id == server.server_id and len(start.volume_ids) == 2 and start.ip_id

    there = _to_the_province_killed_five_times(lab, start)
    _assert_placed(lab, clouds, server, there, start, PROVINCE_KEY, CITY_KEY, written, groups, rules, held)

    _back_failed_at_its_check_and_undone(lab, clouds, server, there)
    _assert_placed(lab, clouds, server, there, start, PROVINCE_KEY, CITY_KEY, written, groups, rules, held)

    back = _start(lab, there.server_id, PROVINCE_KEY, CITY_KEY)
    _run(lab, back)
    assert _move(lab, back).state == "done", _move(lab, back).state_reason
    home = _placed(lab, server)
    _assert_placed(lab, clouds, server, home, there, CITY_KEY, PROVINCE_KEY, written, groups, rules, held)


def _placed(j: Journey, server: ManagedServer) -> Placed:
    """Where cloudmgr's rows say the server is: its Nova id, its volumes', its address's."""
    with j.rt.db.unit_of_work() as uow:
        managed = uow.session.get_one(ManagedServer, server.id)
        volumes = uow.session.scalars(select(ManagedVolume).where(ManagedVolume.server_id == server.id))
        address = uow.session.scalars(select(ManagedAddress).where(ManagedAddress.server_id == server.id)).one()
        return Placed(managed.server_id or "", {v.id: v.volume_id or "" for v in volumes}, address.floating_ip_id or "")


def _to_the_province_killed_five_times(lab: Journey, start: Placed) -> Placed:
    move_id = _start(lab, start.server_id, CITY_KEY, PROVINCE_KEY)
    crashed: list[str] = []

    def kill(_move_id: int, step: str, phase: str) -> None:
        if phase == "acted" and step in KILLED_AFTER and step not in crashed:
            crashed.append(step)
            raise Killed(step)

    stepping.CRASH_HOOK = kill
    try:
        for _ in range(100):
            if _move(lab, move_id).state in ("done", "failed"):
                break
            with contextlib.suppress(Killed, RetryLater):  # RetryLater: a lab glitch, try again
                jobs.run_move(lab.rt.db, lab.rt.providers, move_id, timeout=120)
    finally:
        stepping.CRASH_HOOK = None
    move = _move(lab, move_id)
    assert move.state == "done", move.state_reason
    assert crashed == list(KILLED_AFTER)
    assert move.managed_server_id is not None
    with lab.rt.db.unit_of_work() as uow:
        managed = uow.session.get_one(ManagedServer, move.managed_server_id)
    return _placed(lab, managed)


def _assert_placed(
    lab: Journey,
    clouds: Clouds,
    server: ManagedServer,
    placed: Placed,
    left: Placed,
    target: str,
    source: str,
    written: Written,
    groups: list[str],
    rules: dict[str, set[tuple[Any, ...]]],
    held: dict[Resource, int],
) -> None:
    """On ``target``: one server, its disk and both volumes byte for byte, the same rules, a
    public address; nothing of ``left`` on ``source``; the ledger's usage moved to the target."""
    lab_cloud = {PROVINCE_KEY: PROVINCE, CITY_KEY: CITY}
    conn, other = (clouds.province, clouds.city) if target == PROVINCE_KEY else (clouds.city, clouds.province)
    project = _project(lab, target)
    (new,), volumes, ips = _parts_in(conn, project, server.name)
    assert (new.id, new.status) == (placed.server_id, "ACTIVE")
    assert sha256_of(disk_file(lab_cloud[target], new.id)) == written.disk
    assert sorted({g["name"] for g in conn.compute.get_server(new.id).security_groups}) == groups
    assert {name: _rules(conn, project)[name] for name in groups} == rules
    assert sorted(v.id for v in volumes) == sorted(placed.volume_ids.values())
    for volume in volumes:
        assert (volume.size, volume.volume_type, volume.status) == (1, "fake", "in-use")
        assert [a["server_id"] for a in volume.attachments] == [new.id]
    for row_id, volume_id in placed.volume_ids.items():
        assert sha256_of(volume_file(lab_cloud[target], volume_id)) == written.volumes[row_id], row_id
    (ip,) = ips
    assert ip.id == placed.ip_id
    assert ip.port_id and conn.network.get_port(ip.port_id).device_id == new.id
    with lab.rt.db.unit_of_work() as uow:
        managed = uow.session.get_one(ManagedServer, server.id)
        assert managed.addresses["public"] == [ip.floating_ip_address]
        assert uow.session.get_one(Cloud, managed.cloud_id).key == target
    # Nothing left on the source: no server, volume or address, no disk or volume file, no image.
    assert _parts_in(other, _project(lab, source), server.name) == ([], [], [])
    assert not disk_file(lab_cloud[source], left.server_id).exists()
    assert [v for v in left.volume_ids.values() if volume_file(lab_cloud[source], v).exists()] == []
    for c, p in ((conn, project), (other, _project(lab, source))):
        assert [i.name for i in c.image.images(owner=p)] == []
    usage = _usage(lab)
    assert usage[target] == held
    assert set(usage[source].values()) == {0}, usage[source]


def _back_failed_at_its_check_and_undone(lab: Journey, clouds: Clouds, server: ManagedServer, there: Placed) -> None:
    """Back to the city, failed at its check (a volume taken off behind its back), undone
    before the source is deleted: the server stays on the province as it was."""
    back = _start(lab, there.server_id, PROVINCE_KEY, CITY_KEY)
    city_cloud = provider_of(lab, CITY_KEY)

    def take_a_volume_off(move_id: int, step: str, phase: str) -> None:
        if move_id == back and (step, phase) == ("verify", "started"):
            resources = _move(lab, back).resources
            volume_id = next(iter(resources["target_volumes"].values()))
            city_cloud.detach_volume(resources["target_server_id"], volume_id)
            city_cloud.wait_volume(volume_id, {"available"}, timeout=120)

    stepping.CRASH_HOOK = take_a_volume_off
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
    assert _placed(lab, server) == there
    for conn in (clouds.province, clouds.city):
        assert [i.name for i in conn.image.images() if (failed.idempotency_key or "-") in (i.name or "")] == []
