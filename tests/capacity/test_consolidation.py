"""In-cloud consolidation executed through the adapter, in waves, with a stop."""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest

from cloudmgr.capacity import consolidation
from cloudmgr.capacity.models import RunState
from cloudmgr.cloud import CloudProvider, ServerSpec
from cloudmgr.organisation import services as org
from cloudmgr.runtime import Runtime
from cloudmgr.scheduler.jobs import work_handlers
from cloudmgr.workqueue.services import Worker
from tests.conftest import ONE_DATABASE, lab_connection


def _org(rt: Runtime, tmp_path: Path) -> CloudProvider:
    departments = tmp_path / "departments.yaml"
    departments.write_text("departments: []\n", encoding="utf-8")
    clouds, depts = org.read_organisation(rt.settings.clouds_file, departments)
    with rt.db.unit_of_work() as uow:
        org.import_organisation(uow.session, [c for c in clouds if c.key == "province-base"], depts, actor="test")
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
    return consolidation.plan_run(rt.db, rt.providers, "province-base", actor="operator", max_wave=max_wave)


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
        consolidation.start_run(uow.session, run_id, actor="operator")
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
        consolidation.start_run(uow.session, run_id, actor="operator")
    worker = Worker(seeded.db, work_handlers())
    assert worker.run_one()  # the first wave
    with seeded.db.unit_of_work() as uow:
        consolidation.stop_run(uow.session, run_id, actor="operator")
    _drain(seeded)
    with seeded.db.unit_of_work() as uow:
        run = consolidation.get_run(uow.session, run_id)
        assert run.state == RunState.STOPPED.value
        assert run.next_wave == 1 and run.moves_done == 1
        with pytest.raises(consolidation.RunStateConflict):
            consolidation.stop_run(uow.session, run_id, actor="operator")
        consolidation.start_run(uow.session, run_id, actor="operator")  # resumes where it stopped
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
            consolidation.start_run(uow.session, run_id, actor="operator")
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
