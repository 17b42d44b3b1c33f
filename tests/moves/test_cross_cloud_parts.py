"""A cross-cloud move carries the server's parts (issue 16) on the simulated clouds: its data
volumes (their bytes), its security groups (their rules) and a new public address, each by
recorded, re-entrant steps; the ledger moves the volumes, their GB and the address with the
server.  Killed at every step boundary and resumed, it ends with exactly one of each on the
target and nothing left on the source; undone before the source is deleted, the target keeps
nothing of it and the source is as it was.  The same move against the lab OpenStack is in
test_lab_move_parts.py.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import select, update

from cloudmgr.cloud import CloudProvider
from cloudmgr.cloud.simulated import SimulatedProvider
from cloudmgr.cloud.types import SecurityRule
from cloudmgr.firewall import services as firewall
from cloudmgr.moves import jobs, services, stepping
from cloudmgr.moves.errors import MoveInvalid
from cloudmgr.moves.models import Move, MoveStep
from cloudmgr.moves.states import STEPS, UNDO_STEPS, MoveKind, MoveState
from cloudmgr.organisation.actor import Actor
from cloudmgr.organisation.models import Cloud, Role
from cloudmgr.quotas import ledger
from cloudmgr.quotas.resources import Resource
from cloudmgr.servicerequests import services as requests_service
from cloudmgr.servicerequests.models import ManagedServer, ServiceRequest
from cloudmgr.servicerequests.parts import ManagedAddress, ManagedVolume, VolumeState
from cloudmgr.servicerequests.quoting import DataDisk
from tests.journey_fixtures import Journey
from tests.moves.conftest import provider_of

AS_OPERATOR = Actor(username="operator", role=Role.OPERATOR)
PARTS = (Resource.VOLUMES, Resource.GIGABYTES, Resource.FLOATING_IPS)
DISKS = ((20, "fake"), (30, "ssd"))


class Killed(BaseException):
    """The simulated death of the process running the move."""


@pytest.fixture
def crash_hook() -> Iterator[Callable[[Callable[[int, str, str], None]], None]]:
    def install(hook: Callable[[int, str, str], None]) -> None:
        stepping.CRASH_HOOK = hook

    yield install
    stepping.CRASH_HOOK = None


# ---- a server with parts --------------------------------------------------------------------


def provision_with_parts(j: Journey, *, cloud: str = "education", prefix: str = "mvp") -> ManagedServer:
    """One server on the internet zone with two data disks, the web and db-internal firewall
    templates (the second names the department's members group) and a public address."""
    with j.rt.db.unit_of_work() as uow:
        firewall.seed_standard_templates(uow.session, j.operator)
    form = dataclasses.replace(
        j.form(1, cloud=cloud, prefix=prefix, flavor="m1.small"),
        zone="internet",
        data_disks=tuple(DataDisk(size, volume_type_name=kind) for size, kind in DISKS),
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


def write_data(j: Journey, server: ManagedServer) -> dict[int, str]:
    """Distinct bytes into each data volume of the server; their digests by volume index."""
    provider = provider_of(j, "education")
    assert isinstance(provider, SimulatedProvider)
    digests = {}
    for row in _volume_rows(j, server):
        assert row.volume_id is not None
        provider.write_volume_data(row.volume_id, 4096 * row.index, f"disk {row.index} of {server.name}".encode())
        digests[row.index] = provider.volume_content_digest(row.volume_id)
    return digests


def _volume_rows(j: Journey, server: ManagedServer) -> list[ManagedVolume]:
    with j.rt.db.unit_of_work() as uow:
        query = select(ManagedVolume).where(ManagedVolume.server_id == server.id).order_by(ManagedVolume.index)
        return list(uow.session.scalars(query))


def _address_row(j: Journey, server: ManagedServer) -> ManagedAddress:
    with j.rt.db.unit_of_work() as uow:
        return uow.session.scalars(select(ManagedAddress).where(ManagedAddress.server_id == server.id)).one()


def _managed(j: Journey, server: ManagedServer) -> ManagedServer:
    with j.rt.db.unit_of_work() as uow:
        return uow.session.get_one(ManagedServer, server.id)


def _move(j: Journey, move_id: int) -> Move:
    with j.rt.db.unit_of_work() as uow:
        move = services.get_move(uow.session, move_id)
        _ = [s.name for s in move.steps]
        return move


def _balance(j: Journey, cloud: str) -> dict[Resource, tuple[int, int]]:
    with j.rt.db.unit_of_work() as uow:
        cloud_id = uow.session.scalar(select(Cloud.id).where(Cloud.key == cloud))
        assert cloud_id is not None and j.staff.department_id is not None
        resources = ledger.balance(uow.session, j.staff.department_id, cloud_id).resources
        return {r: (b.reserved, b.used) for r, b in resources.items()}


def start(j: Journey, server: ManagedServer, **changes: Any) -> int:
    return services.start_cross_cloud_move(
        j.rt.db,
        j.rt.providers,
        cloud_key="education",
        server_id=server.server_id or "",
        target_cloud_key="province-base",
        actor=AS_OPERATOR,
        reason="the education cloud's hall closes",
        **changes,
    )


def _run_until_settled(j: Journey, move_id: int) -> None:
    for _ in range(200):
        if _move(j, move_id).state in ("done", "failed", "reverted"):
            return
        with contextlib.suppress(Killed):
            jobs.run_move(j.rt.db, j.rt.providers, move_id)
    raise AssertionError("the move never settled")


def _groups_by_name(provider: CloudProvider, project: str) -> dict[str, frozenset[tuple[Any, ...]]]:
    """Each group's rules, another group named by its name (ids differ between projects)."""
    groups = provider.list_security_groups(project)
    names = {g.id: g.name for g in groups}

    def readable(rule: SecurityRule) -> tuple[Any, ...]:
        remote = names.get(rule.remote_group or "", rule.remote_group)
        return (rule.direction, rule.protocol, rule.port_min, rule.port_max, rule.remote_cidr, remote)

    return {g.name: frozenset(readable(r) for r in g.rules) for g in groups}


@dataclasses.dataclass
class Before:
    """The server's parts on the source, as the move found them."""

    server_id: str
    project: str
    volumes: list[str]
    address_id: str
    groups: tuple[str, ...]
    rules: dict[str, frozenset[tuple[Any, ...]]]


def before(j: Journey, server: ManagedServer) -> Before:
    provider = provider_of(j, "education")
    cloud_server = provider.get_server(server.server_id or "")
    project = cloud_server.project_id or ""
    rules = _groups_by_name(provider, project)
    return Before(
        cloud_server.id,
        project,
        [r.volume_id or "" for r in _volume_rows(j, server)],
        _address_row(j, server).floating_ip_id or "",
        cloud_server.security_groups,
        {name: rules[name] for name in cloud_server.security_groups},
    )


def assert_carried(j: Journey, move_id: int, server: ManagedServer, was: Before, digests: dict[int, str]) -> None:
    """Done: the target has the server once with its volumes (same bytes, sizes, types),
    groups (same rules) and one new address; the source has none of them; rows follow."""
    move = _move(j, move_id)
    assert move.state == "done", move.state_reason
    assert [s.name for s in move.steps] == list(STEPS[MoveKind.CROSS_CLOUD])
    assert {s.state for s in move.steps} == {"done"}
    source, target = provider_of(j, "education"), provider_of(j, "province-base")
    assert isinstance(target, SimulatedProvider)
    project = move.target_project_id or ""
    (new,) = [s for s in target.iter_servers(project) if s.name == server.name]
    assert new.status == "ACTIVE" and new.security_groups == was.groups
    target_rules = _groups_by_name(target, project)
    assert {name: target_rules[name] for name in was.groups} == was.rules
    volumes = [v for v in target.list_volumes(project) if v.tag and v.tag.startswith(move.idempotency_key or "-")]
    assert sorted((v.size_gb, v.volume_type) for v in volumes) == sorted(DISKS)
    assert all([a.server_id for a in v.attachments] == [new.id] for v in volumes)
    (fip,) = target.list_floating_ips(project)
    assert fip.server_id == new.id
    rows, address, managed = _volume_rows(j, server), _address_row(j, server), _managed(j, server)
    assert {r.volume_id for r in rows} == {v.id for v in volumes}
    assert {r.index: target.volume_content_digest(r.volume_id or "") for r in rows} == digests
    assert all(r.state == VolumeState.ATTACHED and r.cloud_id == managed.cloud_id for r in rows)
    assert (address.floating_ip_id, address.address, address.cloud_id) == (fip.id, fip.address, managed.cloud_id)
    assert managed.server_id == new.id and managed.addresses["public"] == [fip.address]
    # Nothing left on the source: no server, no volume, no address; no image anywhere.
    assert [s for s in source.iter_servers(was.project) if s.name == server.name] == []
    assert not {v.id for v in source.list_volumes(was.project)} & set(was.volumes)
    assert source.list_floating_ips(was.project) == []
    key = move.idempotency_key or "-"
    assert [i.name for p in (source, target) for i in p.list_images() if key in i.name] == []
    assert not (j.rt.settings.instance_path / "moves" / str(move_id)).exists()


# ---- tests ----------------------------------------------------------------------------------


def test_the_server_moves_with_its_volumes_groups_and_address_and_their_quota(journey: Journey) -> None:
    server = provision_with_parts(journey)
    digests, was = write_data(journey, server), before(journey, server)
    assert len(was.volumes) == 2 and was.address_id and len(was.groups) == 2
    source_before, target_before = _balance(journey, "education"), _balance(journey, "province-base")
    move_id = start(journey, server)
    held = _balance(journey, "province-base")
    assert {r: held[r][0] - target_before[r][0] for r in PARTS} == {
        Resource.VOLUMES: 2,
        Resource.GIGABYTES: 50,
        Resource.FLOATING_IPS: 1,
    }
    journey.drain()
    assert_carried(journey, move_id, server, was, digests)
    source_after, target_after = _balance(journey, "education"), _balance(journey, "province-base")
    moved = {Resource.VOLUMES: 2, Resource.GIGABYTES: 50, Resource.FLOATING_IPS: 1, Resource.INSTANCES: 1}
    for resource, amount in moved.items():
        assert source_after[resource] == (0, source_before[resource][1] - amount), resource
        assert target_after[resource] == (0, target_before[resource][1] + amount), resource
    steps = {s.name: s for s in _move(journey, move_id).steps}
    assert steps["public_address"].result["target_address"]
    assert len(steps["create_volumes"].result["target_volumes"]) == 2
    assert set(steps["firewall"].result["created_security_groups"]) == set(was.groups)


def test_killed_at_every_step_boundary_and_resumed_it_ends_with_one_of_each(
    journey: Journey, crash_hook: Callable[[Callable[[int, str, str], None]], None]
) -> None:
    server = provision_with_parts(journey)
    digests, was = write_data(journey, server), before(journey, server)
    target_before = _balance(journey, "province-base")
    crashed: list[tuple[str, str]] = []

    def hook(_move_id: int, step: str, phase: str) -> None:
        if (step, phase) not in crashed:
            crashed.append((step, phase))
            raise Killed(f"{step}/{phase}")

    move_id = start(journey, server)
    crash_hook(hook)
    _run_until_settled(journey, move_id)
    steps = STEPS[MoveKind.CROSS_CLOUD]
    assert crashed == [(s, p) for s in steps for p in ("started", "acted", "done")]
    assert_carried(journey, move_id, server, was, digests)
    assert all(s.attempts == 3 for s in _move(journey, move_id).steps)
    target_after = _balance(journey, "province-base")
    assert target_after[Resource.VOLUMES] == (0, target_before[Resource.VOLUMES][1] + 2)
    assert target_after[Resource.FLOATING_IPS] == (0, target_before[Resource.FLOATING_IPS][1] + 1)


def assert_undone(
    j: Journey, move_id: int, server: ManagedServer, was: Before, digests: dict[int, str], balances: tuple[Any, Any]
) -> None:
    """Reverted: the target keeps nothing the move made, the source server runs with its
    volumes (same bytes) and address, the rows and both ledgers are as before the move."""
    move = _move(j, move_id)
    assert move.state == "reverted", move.state_reason
    assert [s.name for s in move.steps][-3:] == list(UNDO_STEPS)
    source, target = provider_of(j, "education"), provider_of(j, "province-base")
    assert isinstance(source, SimulatedProvider)
    project, key = move.target_project_id or "", move.idempotency_key or "-"
    assert [s for s in target.iter_servers(project) if s.name == server.name] == []
    assert [v for v in target.list_volumes(project) if v.tag and v.tag.startswith(key)] == []
    assert target.list_floating_ips(project) == []
    assert set(_groups_by_name(target, project)) == set(move.resources["target_groups_before"])
    assert [i.name for p in (source, target) for i in p.list_images() if key in i.name] == []
    cloud_server = source.get_server(was.server_id)
    assert cloud_server.status == "ACTIVE" and cloud_server.security_groups == was.groups
    for volume_id in was.volumes:
        assert [a.server_id for a in source.get_volume(volume_id).attachments] == [was.server_id]
    rows, address, managed = _volume_rows(j, server), _address_row(j, server), _managed(j, server)
    assert [r.volume_id for r in rows] == was.volumes
    assert {r.index: source.volume_content_digest(r.volume_id or "") for r in rows} == digests
    assert address.floating_ip_id == was.address_id
    (fip,) = source.list_floating_ips(was.project)
    assert (fip.id, fip.server_id) == (was.address_id, was.server_id)
    assert managed.server_id == was.server_id and managed.addresses["public"] == [fip.address]
    assert (_balance(j, "education"), _balance(j, "province-base")) == balances
    assert not (j.rt.settings.instance_path / "moves" / str(move_id)).exists()


def test_undone_after_a_failed_check_the_target_keeps_nothing_and_a_new_move_succeeds(
    journey: Journey, crash_hook: Callable[[Callable[[int, str, str], None]], None]
) -> None:
    server = provision_with_parts(journey)
    digests, was = write_data(journey, server), before(journey, server)
    balances = (_balance(journey, "education"), _balance(journey, "province-base"))
    target = provider_of(journey, "province-base")

    def hook(move_id: int, step: str, phase: str) -> None:
        if (step, phase) == ("verify", "started"):  # a volume taken off the new server behind the move's back
            resources = _move(journey, move_id).resources
            target.detach_volume(resources["target_server_id"], resources["target_volumes"]["1"])

    move_id = start(journey, server)
    crash_hook(hook)
    journey.drain()
    move = _move(journey, move_id)
    assert move.state == "failed" and (move.state_reason or "").startswith("verify:"), move.state_reason
    assert services.may_undo(move)
    with journey.rt.db.unit_of_work() as uow:
        services.revert(uow.session, move_id, actor=AS_OPERATOR, reason="the target is not right")
    assert _move(journey, move_id).state == "reverting"
    journey.drain()
    assert_undone(journey, move_id, server, was, digests, balances)
    with journey.rt.db.unit_of_work() as uow, pytest.raises(MoveInvalid):
        services.revert(uow.session, move_id, actor=AS_OPERATOR)
    # The server can be moved again, for real this time.
    crash_hook(lambda *_: None)
    again = start(journey, server)
    journey.drain()
    assert_carried(journey, again, server, dataclasses.replace(was), digests)


def test_undone_after_the_target_was_recorded_and_killed_at_every_undo_step(
    journey: Journey, crash_hook: Callable[[Callable[[int, str, str], None]], None]
) -> None:
    """The worst case for an undo: the rows and the ledger already follow the target (the
    worker died after recording it and the work queue gave the move up)."""
    server = provision_with_parts(journey)
    digests, was = write_data(journey, server), before(journey, server)
    balances = (_balance(journey, "education"), _balance(journey, "province-base"))
    crashed: list[tuple[str, str]] = []

    def hook(_move_id: int, step: str, phase: str) -> None:
        if ((step, phase) == ("record_target", "done") or step in UNDO_STEPS) and (step, phase) not in crashed:
            crashed.append((step, phase))
            raise Killed(f"{step}/{phase}")

    move_id = start(journey, server)
    crash_hook(hook)
    with pytest.raises(Killed):
        jobs.run_move(journey.rt.db, journey.rt.providers, move_id)
    jobs.transition(journey.rt.db, move_id, MoveState.FAILED, action="fail", reason="gave up: cloud unreachable")
    assert _managed(journey, server).server_id != was.server_id  # recorded on the target
    with journey.rt.db.unit_of_work() as uow:
        services.revert(uow.session, move_id, actor=AS_OPERATOR, reason="back, please")
    _run_until_settled(journey, move_id)
    assert crashed[1:] == [(s, p) for s in UNDO_STEPS for p in ("started", "acted", "done")]
    assert_undone(journey, move_id, server, was, digests, balances)


def test_once_the_source_is_being_deleted_the_move_is_not_undone_but_resumed(
    journey: Journey, crash_hook: Callable[[Callable[[int, str, str], None]], None]
) -> None:
    server = provision_with_parts(journey)
    digests, was = write_data(journey, server), before(journey, server)

    def hook(_move_id: int, step: str, phase: str) -> None:
        if (step, phase) == ("delete_source", "acted"):
            raise Killed("delete_source/acted")

    move_id = start(journey, server)
    crash_hook(hook)
    with pytest.raises(Killed):
        jobs.run_move(journey.rt.db, journey.rt.providers, move_id)
    jobs.transition(journey.rt.db, move_id, MoveState.FAILED, action="fail", reason="gave up: cloud unreachable")
    assert not services.may_undo(_move(journey, move_id))
    with journey.rt.db.unit_of_work() as uow, pytest.raises(MoveInvalid, match="resume"):
        services.revert(uow.session, move_id, actor=AS_OPERATOR)
    crash_hook(lambda *_: None)
    with journey.rt.db.unit_of_work() as uow:
        services.resume(uow.session, move_id, actor=AS_OPERATOR)
    journey.drain()
    assert_carried(journey, move_id, server, was, digests)


def test_a_move_whose_parts_cannot_follow_is_refused_before_anything_is_stored(journey: Journey) -> None:
    server = provision_with_parts(journey)
    source = provider_of(journey, "education")
    db = journey.rt.db
    # A snapshot of one of its volumes cannot leave the cloud with it.
    first = _volume_rows(journey, server)[0]
    snapshot = source.create_volume_snapshot(first.volume_id or "", "keep-me", "test-snapshot")
    with pytest.raises(MoveInvalid, match="snapshots"):
        start(journey, server)
    source.delete_volume_snapshot(snapshot.id)
    # The address needs an internet zone and an external network on the target.
    with pytest.raises(MoveInvalid, match="internet zone"):
        start(journey, server, target_zone="extranet")
    with db.unit_of_work() as uow:
        uow.session.execute(update(Cloud).where(Cloud.key == "province-base").values(external_network=None))
    with pytest.raises(MoveInvalid, match="no public addresses"):
        start(journey, server)
    with db.unit_of_work() as uow:
        uow.session.execute(update(Cloud).where(Cloud.key == "province-base").values(external_network="lab-public"))
    # A volume with a change under way waits for it.
    with db.unit_of_work() as uow:
        uow.session.execute(
            update(ManagedVolume).where(ManagedVolume.id == first.id).values(state=VolumeState.EXTENDING)
        )
    with pytest.raises(MoveInvalid, match="is changing: wait"):
        start(journey, server)
    with db.unit_of_work() as uow:
        assert uow.session.scalar(select(Move)) is None
        assert uow.session.scalar(select(MoveStep)) is None
