"""In-cloud consolidation executed through the adapter, in waves, with a stop."""

from __future__ import annotations

import random
import secrets
from pathlib import Path
from typing import Any

import pytest

from cloudmgr.capacity import consolidation
from cloudmgr.capacity import jobs as capacity_jobs
from cloudmgr.capacity.models import RunState
from cloudmgr.capacity.planner.migration import plan_migration
from cloudmgr.cloud import UNLIMITED, CloudProvider, ComputeQuota, NetworkQuota, QuotaSet, ServerSpec
from cloudmgr.cloud.simulated import SimulatedProvider
from cloudmgr.errors import PermissionDenied
from cloudmgr.organisation import services as org
from cloudmgr.organisation.actor import Actor
from cloudmgr.organisation.models import Role
from cloudmgr.runtime import Runtime
from cloudmgr.scheduler.jobs import work_handlers
from cloudmgr.workqueue.services import Worker
from tests.conftest import ONE_DATABASE, lab_connection

OPERATOR = Actor(username="operator", role=Role.OPERATOR)


def _org(rt: Runtime, tmp_path: Path) -> CloudProvider:
    departments = tmp_path / "departments.yaml"
    departments.write_text("departments: []\n", encoding="utf-8")
    clouds, depts = org.read_organisation(rt.settings.clouds_file, departments)
    with rt.db.unit_of_work() as uow:
        org.import_organisation(
            uow.session, [c for c in clouds if c.key == "province-base"], depts, actor=Actor.system("test")
        )
    base = next(c for c in clouds if c.key == "province-base")
    return rt.providers.for_cloud(base.key, base.os_cloud, base.region)


def _boot_spread(provider: CloudProvider, project: str, count: int, tag: str) -> list[str]:
    flavor = next(f for f in provider.list_flavors() if f.name == "m1.tiny")
    image = next(i for i in provider.list_images() if i.name == "cirros-lab")
    network = next(n for n in provider.list_networks() if n.name == "lab-extranet")
    ids = [
        provider.create_server(
            project, ServerSpec(f"cons-{tag}-{i}", flavor.id, image.id, network.id, f"cons-{tag}-{i}")
        ).id
        for i in range(count)
    ]
    return [provider.wait_for_server(server_id, {"ACTIVE"}, timeout=180).id for server_id in ids]


def _drain(rt: Runtime) -> None:
    Worker(rt.db, work_handlers()).drain(max_items=100)


def _run(rt: Runtime, max_wave: int) -> int:
    return consolidation.plan_run(rt.db, rt.providers, "province-base", actor=OPERATOR, max_wave=max_wave)


def _spread_until_two_hosts(provider: CloudProvider, project: str, tag: str) -> list[str]:
    """Four servers over both hosts.  Nova's scheduler may stack them on one host; then half
    are live-migrated to the other one first, so the test never depends on its weighers."""
    ids = _boot_spread(provider, project, 4, tag)
    hosts = sorted(h.host for h in provider.list_hypervisors())
    placed = {i: provider.get_server(i).host for i in ids}
    if len(set(placed.values())) < 2:
        crowded = next(iter(placed.values()))
        other = next(h for h in hosts if h != crowded)
        for server_id in ids[:2]:
            provider.live_migrate(server_id, other)
            provider.wait_for_server(server_id, {"ACTIVE"}, timeout=180)
    assert len({provider.get_server(i).host for i in ids}) == 2
    return ids


def test_plan_empties_a_host_and_the_run_moves_servers_there(seeded: Runtime, tmp_path: Path) -> None:
    provider = _org(seeded, tmp_path)
    project = provider.ensure_project("cons", f"cons-{secrets.token_hex(2)}").id
    ids = _spread_until_two_hosts(provider, project, "a")
    run_id = _run(seeded, max_wave=1)
    with seeded.db.unit_of_work() as uow:
        run = consolidation.get_run(uow.session, run_id)
        summary = run.plan["summary"]
        assert summary["emptied"] == 1 and summary["moves"] == summary["min_moves_bound"] >= 1
        assert len(run.plan["waves"]) == summary["moves"]  # one move a wave
        consolidation.start_run(uow.session, run_id, actor=OPERATOR)
    _drain(seeded)
    with seeded.db.unit_of_work() as uow:
        run = consolidation.get_run(uow.session, run_id)
        assert run.state == RunState.DONE.value and run.moves_done == summary["moves"] and run.moves_failed == 0
    assert len({provider.get_server(i).host for i in ids}) == 1


def test_the_stop_button_stops_between_waves(seeded: Runtime, tmp_path: Path) -> None:
    provider = _org(seeded, tmp_path)
    project = provider.ensure_project("cons", f"cons-{secrets.token_hex(2)}").id
    _spread_until_two_hosts(provider, project, "b")
    run_id = _run(seeded, max_wave=1)
    with seeded.db.unit_of_work() as uow:
        consolidation.start_run(uow.session, run_id, actor=OPERATOR)
    worker = Worker(seeded.db, work_handlers())
    assert worker.run_one()  # the first wave
    with seeded.db.unit_of_work() as uow:
        consolidation.stop_run(uow.session, run_id, actor=OPERATOR)
    _drain(seeded)
    with seeded.db.unit_of_work() as uow:
        run = consolidation.get_run(uow.session, run_id)
        assert run.state == RunState.STOPPED.value
        assert run.next_wave == 1 and run.moves_done == 1
        with pytest.raises(consolidation.RunStateConflict):
            consolidation.stop_run(uow.session, run_id, actor=OPERATOR)
        consolidation.start_run(uow.session, run_id, actor=OPERATOR)  # resumes where it stopped
    _drain(seeded)
    with seeded.db.unit_of_work() as uow:
        assert consolidation.get_run(uow.session, run_id).state == RunState.DONE.value


@pytest.mark.lab
@ONE_DATABASE
def test_consolidation_on_the_lab(lab_runtime: Runtime, tmp_path: Path, lab_clouds_yaml: Path) -> None:
    provider = _org(lab_runtime, tmp_path)
    domain = f"cons-{secrets.token_hex(2)}"
    project = provider.ensure_project(domain, "cons").id
    try:
        ids = _spread_until_two_hosts(provider, project, secrets.token_hex(2))
        run_id = _run(lab_runtime, max_wave=2)
        with lab_runtime.db.unit_of_work() as uow:
            run = consolidation.get_run(uow.session, run_id)
            assert run.plan["summary"]["emptied"] >= 1
            consolidation.start_run(uow.session, run_id, actor=OPERATOR)
        _drain(lab_runtime)
        with lab_runtime.db.unit_of_work() as uow:
            run = consolidation.get_run(uow.session, run_id)
            assert run.state == RunState.DONE.value, run.last_error
        assert len({provider.get_server(i).host for i in ids}) == 1  # live-migrated onto one host
    finally:
        for server in provider.iter_servers(project):
            provider.delete_server(server.id, wait=True)
        conn = lab_connection(lab_clouds_yaml)
        conn.identity.delete_project(project, ignore_missing=True)
        found = conn.identity.find_domain(domain)
        if found is not None:
            conn.identity.update_domain(found, is_enabled=False)
            conn.identity.delete_domain(found)


# ---- Placement's whole picture: every allocation, bookable capacity (issue 14) ---------------


def _simulated(rt: Runtime, **cloud: Any) -> None:
    """Seed province-base's simulated cloud with these hosts, ratios and reserved amounts;
    the registry's provider then reads the same state file."""
    state_path = rt.settings.instance_path / "simulated-clouds" / "province-base.json"
    SimulatedProvider(state_path=state_path, **cloud).list_hypervisors()


def _place(provider: CloudProvider, project: str, flavor_name: str, host: str, tag: str) -> str:
    """A running server of ``flavor_name`` on ``host``."""
    flavor = next(f for f in provider.list_flavors() if f.name == flavor_name)
    image = next(i for i in provider.list_images() if i.name == "cirros-lab")
    server = provider.create_server(project, ServerSpec(f"cons-{tag}", flavor.id, image.id, None, f"cons-{tag}"))
    server = provider.wait_for_server(server.id, {"ACTIVE"}, timeout=180)
    if server.host != host:
        provider.live_migrate(server.id, host)
        server = provider.wait_for_server(server.id, {"ACTIVE"}, timeout=180)
    assert server.host == host
    return server.id


def _stopped(provider: CloudProvider, server_id: str) -> str:
    provider.stop_server(server_id)
    provider.wait_for_server(server_id, {"SHUTOFF"}, timeout=180)
    return server_id


def _usages(provider: CloudProvider) -> dict[str, dict[str, int]]:
    return {rp.name: dict(rp.usages) for rp in provider.list_resource_providers()}


def _pinned_and_stopped(seeded: Runtime, tmp_path: Path) -> tuple[SimulatedProvider, dict[str, str]]:
    """Host a: a stopped server, one in ERROR and a running one; host b: a running and a stopped one."""
    _simulated(seeded, hosts=("a", "b"))
    provider = _org(seeded, tmp_path)
    assert isinstance(provider, SimulatedProvider)
    project = provider.ensure_project("cons", "cons-pinned").id
    ids = {
        "stopped_a": _stopped(provider, _place(provider, project, "m1.medium", "a", "stopped-a")),
        "broken_a": _place(provider, project, "m1.tiny", "a", "broken-a"),
        "running_a": _place(provider, project, "m1.tiny", "a", "running-a"),
        "running_b": _place(provider, project, "m1.tiny", "b", "running-b"),
        "stopped_b": _stopped(provider, _place(provider, project, "m1.small", "b", "stopped-b")),
    }
    provider.reset_state(ids["broken_a"], "ERROR")
    return provider, ids


def test_attack_a_host_with_stopped_and_failed_servers_is_never_reported_emptied(
    seeded: Runtime, tmp_path: Path
) -> None:
    # Counting only ACTIVE servers, host a looks like one small VM away from empty while it
    # still holds a stopped server and a failed one.
    provider, ids = _pinned_and_stopped(seeded, tmp_path)
    state = consolidation.live_state(provider)
    vms = {vm.name: vm for vm in state.vms}
    assert set(vms) == set(ids.values())  # every server holding an allocation is planned
    assert (vms[ids["stopped_a"]].vcpus, vms[ids["stopped_a"]].ram_mb, vms[ids["stopped_a"]].disk_gb) == (2, 4096, 40)
    assert (vms[ids["stopped_a"]].movable, vms[ids["stopped_a"]].migration) == (True, "cold")
    assert not vms[ids["broken_a"]].movable and "ERROR" in state.fixed[ids["broken_a"]]
    run_id = _run(seeded, max_wave=5)
    with seeded.db.unit_of_work() as uow:
        plan = consolidation.get_run(uow.session, run_id).plan
        assert plan["emptied"] == ["b"]  # a holds a server that cannot move: never emptied
        moves = {m["server_id"]: (m["kind"], m["to"]) for wave in plan["waves"] for m in wave}
        assert moves == {ids["running_b"]: ("live", "a"), ids["stopped_b"]: ("cold", "a")}
        assert [(f["consumer"], f["host"]) for f in plan["fixed"]] == [(ids["broken_a"], "a")]
        consolidation.start_run(uow.session, run_id, actor=OPERATOR)
    _drain(seeded)
    with seeded.db.unit_of_work() as uow:
        run = consolidation.get_run(uow.session, run_id)
        assert run.state == RunState.DONE.value, run.last_error
        assert run.plan["verified_emptied"] == ["b"] and run.plan["not_emptied"] == {}
    assert _usages(provider)["b"] == {"VCPU": 0, "MEMORY_MB": 0, "DISK_GB": 0}
    moved = provider.get_server(ids["stopped_b"])
    assert (moved.status, moved.host) == ("SHUTOFF", "a")  # cold-migrated, confirmed, left off
    assert provider.get_server(ids["broken_a"]).host == "a"


def test_attack_a_server_landing_on_a_host_being_emptied_fails_the_run(seeded: Runtime, tmp_path: Path) -> None:
    # Between the plan and its execution the scheduler puts a new server on the host being
    # emptied: the moves succeed, but Placement still shows an allocation there, so the run
    # must not end "done" with that host counted as emptied.
    provider, _ = _pinned_and_stopped(seeded, tmp_path)
    run_id = _run(seeded, max_wave=5)
    newcomer = _place(provider, provider.ensure_project("cons", "cons-pinned").id, "m1.tiny", "b", "newcomer")
    with seeded.db.unit_of_work() as uow:
        consolidation.start_run(uow.session, run_id, actor=OPERATOR)
    _drain(seeded)
    with seeded.db.unit_of_work() as uow:
        run = consolidation.get_run(uow.session, run_id)
        assert run.state == RunState.FAILED.value and run.moves_done == 2 and run.moves_failed == 0
        assert run.plan["verified_emptied"] == [] and run.plan["not_emptied"] == {"b": [newcomer]}
        assert "still holding allocations in Placement: b" in (run.last_error or "")


def test_attack_allocation_ratio_and_reserved_memory_are_honoured(seeded: Runtime, tmp_path: Path) -> None:
    # Two physical cores a host at a CPU allocation ratio of 4.0: 8 bookable vCPUs each.
    def load(provider: CloudProvider) -> None:
        project = provider.ensure_project("cons", "cons-ratio").id
        for n in range(5):
            _place(provider, project, "m1.tiny", "a", f"ratio-a{n}")
        for n in range(2):
            _place(provider, project, "m1.tiny", "b", f"ratio-b{n}")

    # With 13 of 16 GB reserved for the hosts, 3 GB each is bookable: b's 1 GB does not
    # fit beside a's 2.5 GB, though the raw 16 GB would take it.
    reserved = SimulatedProvider(
        hosts=("a", "b"), host_vcpus=2, allocation_ratios={"VCPU": 4.0}, reserved={"MEMORY_MB": 13312}
    )
    load(reserved)
    state = consolidation.live_state(reserved)
    assert {h.name: (h.vcpus, h.ram_mb, h.disk_gb) for h in state.hosts} == {"a": (8, 3072, 200), "b": (8, 3072, 200)}
    plan = plan_migration(state.hosts, state.vms)
    assert plan.moves == [] and plan.emptied == []
    # Without the reservation b drains onto a: 7 vCPUs on a host of 2 cores, as the ratio allows.
    _simulated(seeded, hosts=("a", "b"), host_vcpus=2, allocation_ratios={"VCPU": 4.0})
    provider = _org(seeded, tmp_path)
    load(provider)
    run_id = _run(seeded, max_wave=5)
    with seeded.db.unit_of_work() as uow:
        assert consolidation.get_run(uow.session, run_id).plan["emptied"] == ["b"]
        consolidation.start_run(uow.session, run_id, actor=OPERATOR)
    _drain(seeded)
    with seeded.db.unit_of_work() as uow:
        assert consolidation.get_run(uow.session, run_id).state == RunState.DONE.value
    assert _usages(provider) == {
        "a": {"VCPU": 7, "MEMORY_MB": 3584, "DISK_GB": 7},
        "b": {"VCPU": 0, "MEMORY_MB": 0, "DISK_GB": 0},
    }


@pytest.mark.parametrize("seed", range(6))
def test_attack_no_plan_puts_more_than_bookable_capacity_on_a_host(seed: int) -> None:
    # Clouds full of stopped and failed servers, over-committed CPUs and reserved memory:
    # every allocation is planned, no host gets more than it may book, no host holding a
    # server that cannot move is emptied, and the emptied hosts are empty in Placement.
    rng = random.Random(seed)
    provider = SimulatedProvider(
        hosts=("h1", "h2", "h3", "h4"),
        host_vcpus=4,
        host_ram_mb=8192,
        host_disk_gb=120,
        allocation_ratios={"VCPU": rng.choice([1.0, 2.0, 4.0])},
        reserved={"MEMORY_MB": rng.choice([0, 1024, 2048])},
    )
    project = provider.ensure_project("cons", "cons-random").id
    provider.set_quota(
        project,
        QuotaSet(ComputeQuota(UNLIMITED, UNLIMITED, UNLIMITED), NetworkQuota(10, 10, UNLIMITED, 10, 10, 100), None),
    )
    flavors = {f.name: f.id for f in provider.list_flavors()}
    image = provider.list_images()[0].id
    for n in range(rng.randint(6, 16)):
        flavor = flavors[rng.choice(["m1.tiny", "m1.tiny", "m1.small", "m1.medium"])]
        server = provider.create_server(project, ServerSpec(f"r{n}", flavor, image, None, f"r{n}"))
        if server.status == "ACTIVE":
            if rng.random() < 0.3:
                provider.stop_server(server.id)
            elif rng.random() < 0.15:
                provider.reset_state(server.id, "ERROR")
    state = consolidation.live_state(provider)
    rps = provider.list_resource_providers()
    held = {a.consumer_id for rp in rps for a in provider.list_allocations(rp.id)}
    assert {vm.name for vm in state.vms} == held
    plan = plan_migration(state.hosts, state.vms, max_wave=3)
    assert not {vm.host for vm in state.vms if not vm.movable} & set(plan.emptied)
    capacity = {h.name: (h.vcpus, h.ram_mb, h.disk_gb) for h in state.hosts}
    final = {name: [0, 0, 0] for name in capacity}
    for vm in state.vms:
        for k, amount in enumerate((vm.vcpus, vm.ram_mb, vm.disk_gb)):
            final[plan.final_host[vm.name]][k] += amount
    assert all(final[h][k] <= capacity[h][k] for h in capacity for k in range(3)), (final, capacity)
    kinds = {vm.name: vm.migration for vm in state.vms}
    for move in plan.moves:
        capacity_jobs.execute_move(
            provider,
            {"server_id": move.vm, "vm": move.vm, "from": move.source, "to": move.target, "kind": kinds[move.vm]},
        )
        for rp in provider.list_resource_providers():
            assert all(rp.usages[rc] <= rp.inventories[rc].capacity for rc in consolidation.RESOURCE_CLASSES)
    assert consolidation.allocations_left(provider, plan.emptied) == {}


@pytest.mark.lab
@ONE_DATABASE
def test_a_stopped_server_on_the_lab_is_planned_with_placements_amounts(
    lab_runtime: Runtime, tmp_path: Path, lab_clouds_yaml: Path
) -> None:
    provider = _org(lab_runtime, tmp_path)
    domain = f"cons-{secrets.token_hex(2)}"
    project = provider.ensure_project(domain, "cons").id
    conn = lab_connection(lab_clouds_yaml)
    try:
        (server_id,) = _boot_spread(provider, project, 1, secrets.token_hex(2))
        server = provider.get_server(_stopped(provider, server_id))
        assert server.host
        node = next(h.name for h in provider.list_hypervisors() if h.host == server.host)
        rp = next(rp for rp in conn.placement.resource_providers() if rp.name == node)
        raw = next(a for a in conn.placement.resource_provider_allocations(rp.id) if a.consumer_id == server_id)
        inventories = {i.resource_class: i for i in conn.placement.resource_provider_inventories(rp.id)}

        state = consolidation.live_state(provider)
        vm = next(v for v in state.vms if v.name == server_id)
        assert (vm.host, vm.movable, vm.migration) == (server.host, True, "cold")
        assert (vm.vcpus, vm.ram_mb, vm.disk_gb) == tuple(raw.resources[rc] for rc in consolidation.RESOURCE_CLASSES)
        host = next(h for h in state.hosts if h.name == server.host)
        # Bookable, not raw: the lab reserves most of each host's inventory.
        assert (host.vcpus, host.ram_mb, host.disk_gb) == tuple(
            int((inventories[rc].total - inventories[rc].reserved) * inventories[rc].allocation_ratio)
            for rc in consolidation.RESOURCE_CLASSES
        )
        assert host.vcpus < inventories["VCPU"].total

        # The executor cold-migrates it, confirms, and leaves it off.
        other = next(h.host for h in provider.list_hypervisors() if h.host != server.host)
        capacity_jobs.execute_move(
            provider, {"server_id": server_id, "vm": server.name, "from": server.host, "to": other, "kind": "cold"}
        )
        moved = provider.get_server(server_id)
        assert (moved.status, moved.host) == ("SHUTOFF", other)

        # A server in ERROR stays where it is: fixed load, its host never emptied.
        conn.compute.reset_server_state(server_id, "error")
        state = consolidation.live_state(provider)
        failed = next(v for v in state.vms if v.name == server_id)
        assert (failed.host, failed.movable) == (other, False)
    finally:
        for leftover in provider.iter_servers(project):
            provider.delete_server(leftover.id, wait=True)
        conn.identity.delete_project(project, ignore_missing=True)
        found = conn.identity.find_domain(domain)
        if found is not None:
            conn.identity.update_domain(found, is_enabled=False)
            conn.identity.delete_domain(found)


def test_attack_only_an_operator_plans_starts_and_stops_a_run(seeded: Runtime) -> None:
    """The consolidation service decides who runs consolidation: anyone else is refused before
    the cloud is read or a run is looked up, and no run is stored."""
    for actor in (Actor("finance", Role.FINANCE), Actor("lina", Role.DEPT_HEAD, department_id=1)):
        assert not consolidation.may_run_consolidation(actor)
        with pytest.raises(PermissionDenied):
            consolidation.plan_run(seeded.db, seeded.providers, "province-base", actor=actor)
        with pytest.raises(PermissionDenied), seeded.db.unit_of_work() as uow:
            consolidation.start_run(uow.session, 1, actor=actor)
        with pytest.raises(PermissionDenied), seeded.db.unit_of_work() as uow:
            consolidation.stop_run(uow.session, 1, actor=actor)
    assert consolidation.may_run_consolidation(OPERATOR)
    with seeded.db.unit_of_work() as uow:
        assert consolidation.list_runs(uow.session) == []
