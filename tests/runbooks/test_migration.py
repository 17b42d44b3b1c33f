"""Done-when of the runbooks: real ansible-runner against real hosts (two network
namespaces with sshd, plus localhost).  Ansible is slow, so each test runs on one
database backend (the other backend runs the quick runbook tests of test_services.py)."""

from __future__ import annotations

import os
import shutil
import socket
import urllib.request
from pathlib import Path

import pytest
from sqlalchemy import select

from cloudmgr.inventory.models import LegacySystem
from cloudmgr.metrics import REGISTRY
from cloudmgr.organisation.actor import Actor
from cloudmgr.organisation.models import Role
from cloudmgr.runbooks.models import RunbookEvent, RunbookRun, RunState, Step
from cloudmgr.runbooks.services import migrate_system, run_step, target_name
from tests.runbooks.conftest import APP_FILES, Legacy
from tests.runbooks.testhosts import SERVICE_ADDRESS, SERVICE_PORT

POSTGRES_IF_CONFIGURED = "postgresql" if os.environ.get("CLOUDMGR_TEST_DATABASE_URL") else "sqlite"


def fetch(path: str, address: str = SERVICE_ADDRESS) -> tuple[str, bytes]:
    """GET a file of the service: (who served it, its bytes)."""
    with urllib.request.urlopen(f"http://{address}:{SERVICE_PORT}/{path}", timeout=5) as response:
        return response.headers["X-Served-By"], response.read()


def _rollbacks() -> float:
    return REGISTRY.get_sample_value("cloudmgr_runbook_rollbacks_total") or 0.0


def refuses_connections(address: str) -> bool:
    try:
        with socket.create_connection((address, SERVICE_PORT), timeout=2):
            return False
    except OSError:
        return True


def step(legacy: Legacy, name: str) -> RunbookRun:
    rt = legacy.rt
    outcome = run_step(
        rt.db, rt.settings, rt.providers, legacy.system_id, name, actor=Actor(username="operator", role=Role.OPERATOR)
    )
    with rt.db.unit_of_work() as uow:
        run = uow.session.get(RunbookRun, outcome.run_id)
        assert run is not None
        return run


def system_state(legacy: Legacy) -> LegacySystem:
    with legacy.rt.db.unit_of_work() as uow:
        system = uow.session.get(LegacySystem, legacy.system_id)
        assert system is not None
        return system


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_replicate_cut_over_verify_and_decommission(legacy: Legacy) -> None:
    rt, hosts = legacy.rt, legacy.hosts
    assert fetch("index.html")[0] == legacy.hostname  # the legacy source serves at the service address

    precheck = step(legacy, "precheck")
    assert precheck.state == RunState.SUCCEEDED and precheck.changed == 0
    provision = step(legacy, "provision")  # boots the VM through the adapter (simulated cloud here)
    assert provision.state == RunState.SUCCEEDED, provision.reason
    assert system_state(legacy).cloud_server_id and system_state(legacy).state == "migrating"

    first = step(legacy, "replicate")
    assert first.state == RunState.SUCCEEDED and first.changed and first.changed > 0
    for rel, content in APP_FILES.items():
        assert (hosts.target.data_dir / rel).read_text(encoding="utf-8") == content
    again = step(legacy, "replicate")
    assert again.state == RunState.SUCCEEDED and again.changed == 0  # idempotent: nothing to copy twice

    (hosts.source.data_dir / "data" / "late-write.txt").write_text("written before the freeze\n")
    # The migration resumes after the steps already done: cutover, then verify.
    outcome = migrate_system(rt.db, rt.settings, rt.providers, legacy.system_id, actor=Actor.system("runbook"))
    assert outcome is not None and outcome.step == Step.VERIFY and outcome.succeeded, outcome
    assert system_state(legacy).state == "on_cloud"

    served_by, body = fetch("data/licences.csv")
    assert served_by == target_name(system_state(legacy))  # the target answers at the service address
    assert body.decode() == APP_FILES["data/licences.csv"]
    assert fetch("data/late-write.txt") == (served_by, b"written before the freeze\n")  # the final sync
    assert refuses_connections(hosts.source.address)  # the source is frozen

    with rt.db.unit_of_work() as uow:
        runs = uow.session.scalars(
            select(RunbookRun).where(RunbookRun.system_id == legacy.system_id).order_by(RunbookRun.id)
        ).all()
        assert [r.step for r in runs] == ["precheck", "provision", "replicate", "replicate", "cutover", "verify"]
        assert all(r.state == RunState.SUCCEEDED and r.rc == 0 for r in runs)
        for run in runs:
            assert run.artifacts_path and (Path(run.artifacts_path) / "stdout").exists()
            events = uow.session.scalars(select(RunbookEvent).where(RunbookEvent.run_id == run.id)).all()
            assert events[-1].event == "playbook_on_stats" and run.event_count == len(events)
        cutover_tasks = {
            e.task
            for e in uow.session.scalars(select(RunbookEvent).where(RunbookEvent.run_id == runs[4].id))
            if e.status == "changed"
        }
        assert {"Source service stopped (no more writes)", "Service address on the target"} <= cutover_tasks

    decommission = step(legacy, "decommission")
    assert decommission.state == RunState.SUCCEEDED, decommission.reason
    assert system_state(legacy).state == "decommissioned"
    assert (hosts.source.state_dir / "decommissioned").exists()
    assert fetch("index.html")[0] == served_by  # still served from the cloud


@pytest.mark.parametrize("database_url", [POSTGRES_IF_CONFIGURED], indirect=True)
def test_a_failed_verify_rolls_back_and_the_source_serves_again(legacy: Legacy) -> None:
    hosts = legacy.hosts
    rollbacks_before = _rollbacks()
    # Replicated earlier (copied with the files' times, as rsync --archive does), then a
    # silent corruption on the target: same size, same modification time.  rsync's quick
    # check (size + mtime) does not see it, so the cutover's final sync keeps it; verify's
    # checksums must catch it.
    shutil.copytree(hosts.source.data_dir, hosts.target.data_dir, dirs_exist_ok=True)
    corrupted = hosts.target.data_dir / "data" / "licences.csv"
    stat = corrupted.stat()
    good = corrupted.read_bytes()
    corrupted.write_bytes(good.replace(b"approved", b"REVOKED!", 1))
    os.utime(corrupted, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert len(corrupted.read_bytes()) == len(good)

    cutover = step(legacy, "cutover")
    assert cutover.state == RunState.SUCCEEDED, cutover.reason
    assert fetch("index.html")[0] == target_name(system_state(legacy))

    rt = legacy.rt
    outcome = run_step(
        rt.db,
        rt.settings,
        rt.providers,
        legacy.system_id,
        "verify",
        actor=Actor(username="operator", role=Role.OPERATOR),
    )
    assert outcome.state == RunState.ROLLED_BACK and outcome.reason and "checksum differs" in outcome.reason
    assert outcome.rollback is not None and outcome.rollback.succeeded, outcome.rollback
    assert system_state(legacy).state == "rolled_back"
    assert _rollbacks() == rollbacks_before + 1

    served_by, body = fetch("data/licences.csv")  # the source serves again, with its own data
    assert served_by == legacy.hostname and body == good
    assert fetch("index.html", hosts.source.address)[0] == legacy.hostname
    assert refuses_connections(hosts.target.address)  # the target's service is stopped

    with rt.db.unit_of_work() as uow:
        rollback = uow.session.get(RunbookRun, outcome.rollback.run_id)
        assert rollback is not None and rollback.step == "rollback" and rollback.rollback_of_id == outcome.run_id
