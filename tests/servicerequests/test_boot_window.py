"""A request's servers boot through a sliding window (issue 20), on the simulated cloud made to
build slowly: never more than ``max_concurrent_boots`` building at once, the next booted as soon as
one is ACTIVE (not when the slowest of a batch is), the servers building read with one listing per
poll, a failure failing only its server, and a cloud that goes down half way resumed by the retry
without a second server."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from cloudmgr.cloud import CloudBadRequest, Server, ServerSpec
from cloudmgr.cloud.simulated import SimulatedProvider
from cloudmgr.cloud.simulated.records import NO_VALID_HOST_FAULT, touch
from cloudmgr.db import utcnow
from cloudmgr.organisation.models import Cloud, DepartmentCloud
from cloudmgr.quotas import ledger
from cloudmgr.quotas.resources import Resource
from cloudmgr.servicerequests import services as requests_service
from cloudmgr.servicerequests.models import ServiceRequest
from cloudmgr.workqueue.models import WorkItem
from tests.journey_fixtures import Journey


@dataclass
class SlowCloud:
    """The simulated cloud building slowly: a server booted stays BUILD for as many listings of
    its project's servers (get_servers) as ``polls`` gives for its name's last digit, then goes
    ACTIVE, or ERROR when its name is in ``failing``.  Records what it was asked."""

    polls: dict[int, int]
    failing: frozenset[str] = frozenset()
    #: servers still building: cloud id -> listings left
    left: dict[str, int] = field(default_factory=dict)
    #: for each boot, in order: (server name, servers building when it was asked)
    boots: list[tuple[str, int]] = field(default_factory=list)
    listings: int = 0
    reads_one_by_one: int = 0
    #: hooks the tests set: run before a boot (by its number, from 1) or a listing
    before_boot: dict[int, str] = field(default_factory=dict)
    before_listing: dict[int, str] = field(default_factory=dict)

    @property
    def most_building(self) -> int:
        return max(building + 1 for _, building in self.boots)

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        real_create, real_list, real_get = (
            SimulatedProvider.create_server,
            SimulatedProvider.get_servers,
            SimulatedProvider.get_server,
        )
        slow = self

        def create_server(provider: SimulatedProvider, project_id: str, spec: ServerSpec, **kwargs: bool) -> Server:
            slow._hook(provider, slow.before_boot, len(slow.boots) + 1)
            if spec.name.endswith("-refused"):
                raise CloudBadRequest(f"create server {spec.name} rejected as invalid", "Invalid imageRef provided.")
            building = len(slow.left)
            server = real_create(provider, project_id, spec, **kwargs)
            if server.status != "ACTIVE" or any(server.name == name for name, _ in slow.boots):
                return server  # found by its key: booted before
            slow.boots.append((spec.name, building))
            slow.left[server.id] = slow.polls[int(spec.name[-1])]
            with provider._transaction() as state:
                touch(state["servers"][server.id], status="BUILD")
            return dataclasses.replace(server, status="BUILD")

        def get_servers(provider: SimulatedProvider, project_id: str, server_ids: object, **kwargs: object) -> object:
            slow.listings += 1
            slow._hook(provider, slow.before_listing, slow.listings)
            if provider.unreachable_detail() is not None:
                return real_list(provider, project_id, server_ids, **kwargs)  # type: ignore[arg-type]
            for server_id in list(slow.left):
                slow.left[server_id] -= 1
                if slow.left[server_id] > 0:
                    continue
                del slow.left[server_id]
                with provider._transaction() as state:
                    record = state["servers"][server_id]
                    if record["name"] in slow.failing:
                        touch(record, status="ERROR", fault_message=NO_VALID_HOST_FAULT)
                    else:
                        touch(record, status="ACTIVE")
            return real_list(provider, project_id, server_ids, **kwargs)  # type: ignore[arg-type]

        def get_server(provider: SimulatedProvider, server_id: str) -> Server:
            slow.reads_one_by_one += 1
            return real_get(provider, server_id)

        monkeypatch.setattr(SimulatedProvider, "create_server", create_server)
        monkeypatch.setattr(SimulatedProvider, "get_servers", get_servers)
        monkeypatch.setattr(SimulatedProvider, "get_server", get_server)

    @staticmethod
    def _hook(provider: SimulatedProvider, hooks: dict[int, str], number: int) -> None:
        if hooks.pop(number, None) == "down":
            provider.set_unreachable("connection refused (test)")


def _with_window(monkeypatch: pytest.MonkeyPatch, j: Journey, window: int) -> None:
    monkeypatch.setattr(j.rt, "settings", j.rt.settings.with_overrides(max_concurrent_boots=window))


def _approved_request(j: Journey, count: int, prefix: str = "win") -> int:
    with j.rt.db.unit_of_work() as uow:
        request_id = requests_service.create_request(
            uow.session, j.staff, j.form(count, prefix=prefix), submit=True, settings=j.rt.settings
        ).id
    actors = {"dept_head": j.head, "operator": j.operator, "finance": j.finance}
    while True:
        with j.rt.db.unit_of_work() as uow:
            role = uow.session.get_one(ServiceRequest, request_id).next_role
        if role is None:
            return request_id
        with j.rt.db.unit_of_work() as uow:
            requests_service.approve_request(uow.session, actors[role], request_id, reason="ok")


def _servers(j: Journey, request_id: int) -> tuple[str, dict[str, tuple[str, str | None]]]:
    """The request's state and each server's (state, fault) by name."""
    with j.rt.db.unit_of_work() as uow:
        request = uow.session.get_one(ServiceRequest, request_id)
        return request.state, {s.name: (s.state, s.fault) for s in request.servers}


def _provider_and_project(j: Journey) -> tuple[SimulatedProvider, str]:
    with j.rt.db.unit_of_work() as uow:
        cloud = uow.session.scalars(select(Cloud).where(Cloud.key == "education")).one()
        project_id = uow.session.scalars(
            select(DepartmentCloud.project_id).where(
                DepartmentCloud.cloud_id == cloud.id, DepartmentCloud.department_id == j.staff.department_id
            )
        ).one()
        provider = j.rt.providers.for_cloud(cloud.key, cloud.os_cloud, cloud.region)
    assert isinstance(provider, SimulatedProvider) and project_id
    return provider, project_id


def test_never_more_than_the_window_build_and_the_next_boots_as_soon_as_one_is_active(
    journey: Journey, monkeypatch: pytest.MonkeyPatch
) -> None:
    j = journey
    _with_window(monkeypatch, j, 3)
    # win-01 is quick, win-02 and win-03 slow: win-04 boots while they still build (a batch of three
    # would wait for the slowest); the rest take turns.
    slow = SlowCloud(polls={1: 1, 2: 5, 3: 5, 4: 2, 5: 1, 6: 2, 7: 1, 8: 1, 9: 1, 0: 1})
    slow.install(monkeypatch)
    request_id = _approved_request(j, 7)
    j.drain()
    state, servers = _servers(j, request_id)
    assert state == "active", servers
    assert all(s == "active" for s, _ in servers.values())
    assert slow.most_building == 3
    names = [name for name, _ in slow.boots]
    assert names == [f"win-{n:02d}" for n in range(1, 8)]
    assert dict(slow.boots)["win-04"] == 2  # booted beside the two slow ones still building
    # Watched by listings (a poll each, not a read per server per poll).
    assert slow.reads_one_by_one == 0
    assert slow.listings < 7 * 2
    provider, project_id = _provider_and_project(j)
    assert len([s for s in provider.iter_servers(project_id) if s.status == "ACTIVE"]) == 7


@pytest.mark.parametrize(("window", "count"), [(1, 3), (10, 4)])
def test_one_at_a_time_and_a_window_larger_than_the_request(
    journey: Journey, monkeypatch: pytest.MonkeyPatch, window: int, count: int
) -> None:
    j = journey
    _with_window(monkeypatch, j, window)
    slow = SlowCloud(polls=dict.fromkeys(range(10), 2))
    slow.install(monkeypatch)
    request_id = _approved_request(j, count)
    j.drain()
    state, servers = _servers(j, request_id)
    assert state == "active", servers
    assert slow.most_building == min(window, count)
    if window == 1:
        assert [building for _, building in slow.boots] == [0] * count  # each waits for the one before
    else:
        assert [building for _, building in slow.boots] == list(range(count))  # all at once


def test_a_failure_in_the_middle_fails_its_server_alone_and_the_rest_go_on(
    journey: Journey, monkeypatch: pytest.MonkeyPatch
) -> None:
    j = journey
    _with_window(monkeypatch, j, 2)
    slow = SlowCloud(polls=dict.fromkeys(range(10), 2), failing=frozenset({"win-03"}))
    slow.install(monkeypatch)
    request_id = _approved_request(j, 5)
    with j.rt.db.unit_of_work() as uow:
        request = uow.session.get_one(ServiceRequest, request_id)
        department_id, cloud_id = request.department_id, request.cloud_id
    j.drain()
    state, servers = _servers(j, request_id)
    assert state == "partially_active", servers
    assert {name for name, (s, _) in servers.items() if s == "active"} == {"win-01", "win-02", "win-04", "win-05"}
    failed_state, fault = servers["win-03"]
    assert failed_state == "error" and fault is not None and "no valid host" in fault.lower()
    assert slow.most_building == 2
    with j.rt.db.unit_of_work() as uow:
        instances = ledger.balance(uow.session, department_id, cloud_id).resources[Resource.INSTANCES]
        assert instances.reserved == 0  # the failed server's quota went back


def test_a_boot_the_cloud_refuses_fails_that_server_and_the_window_goes_on(
    journey: Journey, monkeypatch: pytest.MonkeyPatch
) -> None:
    j = journey
    _with_window(monkeypatch, j, 2)
    slow = SlowCloud(polls=dict.fromkeys(range(10), 1))
    slow.install(monkeypatch)
    request_id = _approved_request(j, 3)
    with j.rt.db.unit_of_work() as uow:  # the second server's boot is refused (its name says so)
        request = uow.session.get_one(ServiceRequest, request_id)
        request.servers[1].name = "win-02-refused"
    j.drain()
    state, servers = _servers(j, request_id)
    assert state == "partially_active", servers
    assert servers["win-01"][0] == servers["win-03"][0] == "active"
    refused_state, fault = servers["win-02-refused"]
    assert refused_state == "error" and fault is not None and "Invalid imageRef" in fault


@pytest.mark.parametrize("where", ["boot", "listing"])
def test_a_cloud_down_half_way_is_resumed_by_the_retry_without_a_second_server(
    journey: Journey, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    j = journey
    _with_window(monkeypatch, j, 2)
    slow = SlowCloud(polls=dict.fromkeys(range(10), 2))
    if where == "boot":
        slow.before_boot[4] = "down"  # three booted, one of them still building
    else:
        slow.before_listing[3] = "down"
    slow.install(monkeypatch)
    request_id = _approved_request(j, 6)
    provider, project_id = _provider_and_project(j)
    j.drain()
    state, servers = _servers(j, request_id)
    assert state == "provisioning"
    states = sorted(s for s, _ in servers.values())
    assert "building" in states and "pending" in states and "error" not in states
    with j.rt.db.unit_of_work() as uow:
        item = uow.session.scalars(select(WorkItem).where(WorkItem.kind == "provision")).one()
        assert item.state == "queued" and "unreachable" in (item.last_error or "")

    provider.set_unreachable(None)
    with j.rt.db.unit_of_work() as uow:
        uow.session.execute(update(WorkItem).values(run_after=utcnow() - timedelta(seconds=1)))
    j.drain()
    state, servers = _servers(j, request_id)
    assert state == "active", servers
    assert slow.most_building <= 2
    names = [s.name for s in provider.iter_servers(project_id)]
    assert sorted(names) == [f"win-{n:02d}" for n in range(1, 7)]  # each booted once
