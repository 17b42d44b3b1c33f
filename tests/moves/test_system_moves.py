"""A whole legacy system's servers move to another cloud as one operation (issue 17), on the
simulated clouds: one system move with one cross-cloud move per server, the servers stopped
applications first, moved databases first (layer by layer), each waiting verified on the
target until all are, then switched over; one state for the whole, failed naming the server
that failed, resumable, and undone as a whole until a source is being deleted."""

from __future__ import annotations

import re
from dataclasses import dataclass

import pytest
from sqlalchemy import select, update

from cloudmgr.cloud import CloudError, ServerSpec
from cloudmgr.errors import PermissionDenied
from cloudmgr.inventory.classification import ClassifiedPlacementRefused
from cloudmgr.inventory.models import LegacySystem, ServerRoom
from cloudmgr.moves import services
from cloudmgr.moves.errors import MoveInProgress, MoveInvalid
from cloudmgr.moves.models import Move
from cloudmgr.moves.systems import dependency_layers
from cloudmgr.organisation.actor import Actor
from cloudmgr.organisation.models import Cloud, Role
from cloudmgr.quotas import ledger
from cloudmgr.quotas.errors import QuotaExceeded
from cloudmgr.quotas.resources import Resource
from cloudmgr.runtime import set_runtime
from cloudmgr.servicerequests.models import ManagedServer
from tests.journey_fixtures import Journey
from tests.moves.conftest import provider_of, provision
from tests.test_cli import run_in_process

AS_OPERATOR = Actor(username="operator", role=Role.OPERATOR)
SYSTEM_NAME = "税务门户"
#: hostname → the hosts it depends on: the database first, then the API, then the web front.
HOSTS = {"tax-db": [], "tax-api": ["tax-db"], "tax-web": ["tax-api", "tax-db", "ldap-outside"]}


@dataclass
class LegacySetup:
    servers: dict[str, ManagedServer]  # by hostname


def legacy_system(j: Journey, *, classified: str | None = None) -> LegacySetup:
    """Three servers of prov-education on the education cloud, each the cloud server of one
    host of the department's application system (HOSTS)."""
    managed = provision(j, len(HOSTS), prefix="tax")
    servers = dict(zip(sorted(HOSTS), managed, strict=True))
    with j.rt.db.unit_of_work() as uow:
        cloud_id = uow.session.scalar(select(Cloud.id).where(Cloud.key == "education"))
        dept_id = j.staff.department_id
        assert dept_id is not None
        room = ServerRoom(code="edu-room-tax", name_zh="机房", name_en="Room", department_id=dept_id)
        uow.session.add(room)
        uow.session.flush()
        for hostname, deps in HOSTS.items():
            secret = hostname == classified
            uow.session.add(
                LegacySystem(
                    hostname=hostname, department_id=dept_id, server_room_id=room.id,
                    application_system=SYSTEM_NAME, classification="classified" if secret else "non_classified",
                    network="intranet" if secret else "extranet", os_family="linux", os_name="CentOS",
                    os_version="7", vcpus=1, ram_mb=2048, disk_gb=20, data_gb=0, cpu_p95_pct=10, ram_p95_pct=10,
                    owner_name="王", owner_contact="0311", dependencies=deps, state="on_cloud",
                    target_cloud_id=cloud_id, cloud_server_id=servers[hostname].server_id,
                )
            )  # fmt: skip
    return LegacySetup(servers)


def start(j: Journey, **changes: object) -> int:
    args: dict[str, object] = {
        "cloud_key": "education",
        "department_key": "prov-education",
        "application_system": SYSTEM_NAME,
        "target_cloud_key": "province-base",
        "actor": AS_OPERATOR,
        "reason": "the city's tax portal joins the province cloud",
        **changes,
    }
    return services.start_system_move(j.rt.db, j.rt.providers, **args)  # type: ignore[arg-type]


def _system(j: Journey, move_id: int) -> tuple[Move, dict[str, Move]]:
    with j.rt.db.unit_of_work() as uow:
        move = services.get_move(uow.session, move_id)
        children = {str((c.resources or {})["hostname"]): c for c in move.children}
        for child in [move, *children.values()]:
            _ = [(s.name, s.state) for s in child.steps], [e.action for e in child.events]
        return move, children


def test_dependency_layers_put_each_host_after_what_it_needs() -> None:
    assert dependency_layers(HOSTS) == [["tax-db"], ["tax-api"], ["tax-web"]]
    assert dependency_layers({"a": [], "b": [], "c": ["a", "b"]}) == [["a", "b"], ["c"]]
    with pytest.raises(MoveInvalid, match="form a cycle"):
        dependency_layers({"a": ["b"], "b": ["a"], "c": []})


def test_the_whole_system_moves_in_dependency_order_and_the_inventory_follows(
    journey: Journey, monkeypatch: pytest.MonkeyPatch
) -> None:
    setup = legacy_system(journey)
    source, target = provider_of(journey, "education"), provider_of(journey, "province-base")
    by_server = {s.server_id: host for host, s in setup.servers.items()}
    stopped: list[str] = []
    booted: list[str] = []
    real_stop, real_create = source.stop_server, target.create_server

    def stop(server_id: str) -> None:
        stopped.append(by_server[server_id])
        real_stop(server_id)

    def create(project_id: str, spec: ServerSpec) -> object:
        booted.append(spec.name)
        # A database's copy runs on the target before the servers that need it boot.
        running = {s.name for s in target.iter_servers(project_id) if s.status == "ACTIVE"}
        needs = {setup.servers[d].name for d in HOSTS[by_name[spec.name]] if d in HOSTS}
        assert needs <= running, (spec.name, needs, running)
        return real_create(project_id, spec)

    by_name = {s.name: host for host, s in setup.servers.items()}
    monkeypatch.setattr(source, "stop_server", stop)
    monkeypatch.setattr(target, "create_server", create)
    move_id = start(journey)
    move, children = _system(journey, move_id)
    assert move.kind == "system" and move.state == "requested" and set(children) == set(HOSTS)
    assert move.resources["layers"] == [["tax-db"], ["tax-api"], ["tax-web"]]
    assert all(c.kind == "cross_cloud" and c.parent_id == move_id for c in children.values())
    with pytest.raises(MoveInProgress):
        start(journey)
    journey.drain()
    move, children = _system(journey, move_id)
    assert move.state == "done", move.state_reason
    assert [s.name for s in move.steps] == ["stop_servers", "move_servers", "switch_over"]
    assert stopped == ["tax-web", "tax-api", "tax-db"]  # the reverse of the boot order
    assert booted == [setup.servers[h].name for h in ("tax-db", "tax-api", "tax-web")]
    for hostname, child in children.items():
        assert child.state == "done", (hostname, child.state_reason)
        # Each waited on the target for the others, then was released to delete its source.
        assert [e.action for e in child.events][-3:] == ["hold", "release", "finish"]
        new_server = child.resources["target_server_id"]
        assert target.get_server(new_server).status == "ACTIVE"
        assert child.server_id not in {s.id for s in source.iter_servers(child.project_id or "")}
    with journey.rt.db.unit_of_work() as uow:
        hosts = {h.hostname: h for h in uow.session.scalars(select(LegacySystem))}
        province = uow.session.scalar(select(Cloud.id).where(Cloud.key == "province-base"))
        for hostname, child in children.items():
            assert hosts[hostname].cloud_server_id == child.resources["target_server_id"]
            assert hosts[hostname].target_cloud_id == province
    with journey.rt.db.unit_of_work() as uow, pytest.raises(MoveInvalid):
        services.revert(uow.session, move_id, actor=AS_OPERATOR)


def _fail_boot_of(journey: Journey, monkeypatch: pytest.MonkeyPatch, name: str | None, times: list[int]) -> None:
    target = provider_of(journey, "province-base")
    real_create = target.create_server

    def create(project_id: str, spec: ServerSpec) -> object:
        if spec.name == name and times:
            times.pop()
            raise CloudError(f"no valid host for {spec.name}")
        return real_create(project_id, spec)

    monkeypatch.setattr(target, "create_server", create)


def test_a_server_that_fails_fails_the_whole_naming_it_and_resume_finishes_it(
    journey: Journey, monkeypatch: pytest.MonkeyPatch
) -> None:
    setup = legacy_system(journey)
    api = setup.servers["tax-api"]
    _fail_boot_of(journey, monkeypatch, api.name, [1])
    move_id = start(journey)
    journey.drain()
    move, children = _system(journey, move_id)
    assert move.state == "failed"
    reason = move.state_reason or ""
    assert reason.startswith(f"move_servers: server tax-api (move {children['tax-api'].id}) failed: boot:"), reason
    assert children["tax-db"].state == "awaiting_confirm"  # on the target, its source kept
    assert children["tax-api"].state == "failed" and children["tax-web"].state == "requested"
    source = provider_of(journey, "education")
    assert source.get_server(setup.servers["tax-db"].server_id or "").status == "SHUTOFF"
    # The server's own move is carried on or undone with the system, not alone.
    with journey.rt.db.unit_of_work() as uow, pytest.raises(MoveInvalid, match="system move"):
        services.resume(uow.session, children["tax-api"].id, actor=AS_OPERATOR)
    with journey.rt.db.unit_of_work() as uow:
        services.resume(uow.session, move_id, actor=AS_OPERATOR, reason="room made on the province cloud")
    journey.drain()
    move, children = _system(journey, move_id)
    assert move.state == "done", move.state_reason
    assert all(c.state == "done" for c in children.values())


def test_undone_before_any_source_is_deleted_every_server_is_back(
    journey: Journey, monkeypatch: pytest.MonkeyPatch
) -> None:
    setup = legacy_system(journey)
    _fail_boot_of(journey, monkeypatch, setup.servers["tax-web"].name, [1, 1, 1])
    move_id = start(journey)
    journey.drain()
    move, children = _system(journey, move_id)
    assert move.state == "failed" and "tax-web" in (move.state_reason or "")
    assert services.may_undo(move)
    made = [c.resources["target_server_id"] for h, c in children.items() if h != "tax-web"]
    with journey.rt.db.unit_of_work() as uow:
        services.revert(uow.session, move_id, actor=AS_OPERATOR, reason="the window is over")
    journey.drain()
    move, children = _system(journey, move_id)
    assert move.state == "reverted", move.state_reason
    assert all(c.state == "reverted" for c in children.values())
    source, target = provider_of(journey, "education"), provider_of(journey, "province-base")
    for hostname, server in setup.servers.items():
        assert source.get_server(server.server_id or "").status == "ACTIVE", hostname
    assert not set(made) & {s.id for s in target.iter_servers(None)}
    with journey.rt.db.unit_of_work() as uow:
        for hostname, server in setup.servers.items():
            row = uow.session.scalar(select(LegacySystem).where(LegacySystem.hostname == hostname))
            assert row is not None and row.cloud_server_id == server.server_id
    # Moved again once the window opens, for real.
    monkeypatch.undo()
    again = start(journey)
    journey.drain()
    assert _system(journey, again)[0].state == "done"


def test_refusals_store_nothing(journey: Journey) -> None:
    legacy_system(journey, classified="tax-api")
    with pytest.raises(ClassifiedPlacementRefused):
        start(journey)
    with pytest.raises(MoveInvalid, match="no application system"):
        start(journey, application_system="没有这个系统")
    with pytest.raises(MoveInvalid, match="name the department"):
        start(journey, application_system=" ")
    with pytest.raises(MoveInvalid, match="already"):
        start(journey, target_cloud_key="education")
    with pytest.raises(MoveInvalid, match="not province-base"):
        start(journey, cloud_key="province-base", target_cloud_key="education")
    with journey.rt.db.unit_of_work() as uow:
        uow.session.execute(
            update(LegacySystem).where(LegacySystem.hostname == "tax-db").values(dependencies=["tax-web"])
        )
    with pytest.raises(MoveInvalid, match="cycle"):
        start(journey)
    with pytest.raises(PermissionDenied):
        start(journey, actor=journey.staff)
    # The target quota holds all of them together, or none moves.
    with journey.rt.db.unit_of_work() as uow:
        uow.session.execute(
            update(LegacySystem)
            .where(LegacySystem.hostname.in_(["tax-db", "tax-api"]))
            .values(dependencies=[], classification="non_classified", network="extranet", state="on_cloud")
        )
        province = uow.session.scalar(select(Cloud.id).where(Cloud.key == "province-base"))
        assert province is not None and journey.staff.department_id is not None
        free = ledger.balance(uow.session, journey.staff.department_id, province).resources[Resource.INSTANCES].free
        ledger.reserve(
            uow.session,
            department_id=journey.staff.department_id,
            cloud_id=province,
            amounts={Resource.INSTANCES: free - 2},
            owner="test",
        )
    with pytest.raises(QuotaExceeded):
        start(journey)
    with journey.rt.db.unit_of_work() as uow:
        assert uow.session.scalar(select(Move)) is None


def test_cli_moves_a_system_and_refuses_bad_input(journey: Journey) -> None:
    legacy_system(journey)
    rt = journey.rt
    base = ("--department", "prov-education", "--cloud", "education", "--to", "province-base")
    try:
        bad = run_in_process(rt, "moves", "system", "没有这个系统", *base, "--reason", "x")
        assert bad.exit_code != 0 and "no application system" in bad.output, bad.output
        missing = run_in_process(rt, "moves", "system", SYSTEM_NAME, *base)
        assert missing.exit_code != 0 and "Missing option '--reason'" in missing.output
        moved = run_in_process(rt, "moves", "system", SYSTEM_NAME, *base, "--reason", "cli", "--now")
        assert moved.exit_code == 0, moved.output
        assert re.search(r"move #\d+ system on education: done", moved.output), moved.output
        assert "tax-db → tax-api → tax-web" in moved.output
        assert "1. stop_servers" in moved.output and moved.output.count("cross_cloud") == 3
        listed = run_in_process(rt, "moves", "list", "--kind", "system")
        assert listed.exit_code == 0 and SYSTEM_NAME in listed.output
    finally:
        set_runtime(rt)
