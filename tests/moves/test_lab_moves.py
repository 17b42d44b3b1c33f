"""Moves against the lab OpenStack: live and cold migration between compute1 and compute2,
a host drain, and a cross-cloud move (cloudmgr-lab, the province's OpenStack →
cloudmgr-lab-city, the city's own) killed at every step and resumed, once with a real SIGKILL
of the process running it.

Each test makes its own department (a unique Keystone domain with one project per cloud),
boots m1.tiny servers only, and removes the servers, images, projects and domain after.
These tests run on SQLite only: the database is not what they test.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from cloudmgr.cloud import CloudProvider
from cloudmgr.moves import jobs, services, stepping
from cloudmgr.moves.models import Move, MoveStep
from cloudmgr.moves.states import STEPS, MoveKind
from cloudmgr.moves.transfer import checksum_rows
from cloudmgr.organisation.actor import Actor
from cloudmgr.organisation.models import DepartmentCloud, Role
from cloudmgr.runtime import Runtime
from cloudmgr.servicerequests.models import ManagedServer
from cloudmgr.workqueue.services import RetryLater
from tests.conftest import lab_connection
from tests.journey_fixtures import Journey
from tests.lab_paths import CITY, LAB_CLOUDS, PROVINCE
from tests.moves.conftest import build_moves_org, provider_of, provision

pytestmark = pytest.mark.lab
log = logging.getLogger(__name__)
REPO = Path(__file__).resolve().parents[2]
OPERATOR = "operator"
AS_OPERATOR = Actor(username=OPERATOR, role=Role.OPERATOR)


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'cloudmgr.sqlite3'}"


@pytest.fixture
def lab(lab_runtime: Runtime, tmp_path: Path, lab_clouds_yaml: Path) -> Iterator[Journey]:
    key = f"mv{secrets.token_hex(3)}"
    try:
        yield build_moves_org(lab_runtime, tmp_path, department=key, clouds=("education", "sjz-gov"))
    finally:
        _clean(lab_clouds_yaml, key)


def _clean(clouds_yaml: Path, key: str) -> None:
    """Remove the department's servers, images, projects and domain; a lab glitch during the
    clean-up is retried, and then only logged (it must not turn a passed test into an error)."""
    for attempt in range(3):
        try:
            _clean_once(clouds_yaml, key)
            return
        except Exception:
            log.warning("clean-up of dept-%s failed (attempt %d)", key, attempt + 1, exc_info=True)
            time.sleep(2)


def _clean_once(clouds_yaml: Path, key: str) -> None:
    for cloud in LAB_CLOUDS:  # each lab cloud has its own Keystone: a domain on each
        _clean_cloud(lab_connection(clouds_yaml, cloud), key)


def _clean_cloud(conn: Any, key: str) -> None:
    domain = conn.identity.find_domain(f"dept-{key}")
    if domain is None:
        return
    projects = list(conn.identity.projects(domain_id=domain.id))
    for project in projects:
        for server in conn.compute.servers(all_projects=True, project_id=project.id):
            conn.compute.delete_server(server, ignore_missing=True)
        for server in conn.compute.servers(all_projects=True, project_id=project.id):
            conn.compute.wait_for_delete(server, wait=120)
        for image in conn.image.images(owner=project.id):
            conn.image.delete_image(image, ignore_missing=True)
        for group in conn.network.security_groups(project_id=project.id):
            conn.network.delete_security_group(group, ignore_missing=True)
        conn.identity.delete_project(project, ignore_missing=True)
    conn.identity.update_domain(domain, is_enabled=False)
    conn.identity.delete_domain(domain, ignore_missing=True)


def _settle(j: Journey, timeout: float = 300) -> None:
    """Run the queued work, waiting for items a lab glitch sent to retry later (backoff)."""
    from cloudmgr.workqueue.models import WorkItem

    deadline = time.monotonic() + timeout
    while True:
        j.drain()
        with j.rt.db.unit_of_work() as uow:
            waiting = uow.session.scalar(select(WorkItem.id).where(WorkItem.state == "queued").limit(1))
        if waiting is None or time.monotonic() > deadline:
            return
        time.sleep(1)


def _state(j: Journey, move_id: int) -> tuple[str, str | None]:
    with j.rt.db.unit_of_work() as uow:
        move = uow.session.get(Move, move_id)
        assert move is not None
        return move.state, move.state_reason


def _other(provider: CloudProvider, host: str | None) -> str:
    hosts = sorted({h.host for h in provider.list_hypervisors()} - {host})
    assert hosts, f"the lab should have a host besides {host}"
    return hosts[0]


def _project(j: Journey, cloud_key: str) -> str:
    with j.rt.db.unit_of_work() as uow:
        from cloudmgr.organisation.models import Cloud

        link = uow.session.scalar(
            select(DepartmentCloud).join(Cloud, Cloud.id == DepartmentCloud.cloud_id).where(Cloud.key == cloud_key)
        )
        assert link is not None and link.project_id
        return link.project_id


def test_live_and_cold_migration_and_a_host_drain(lab: Journey) -> None:
    """One department's two m1.tiny servers: one live-migrated, then cold-migrated and
    confirmed between compute1 and compute2; then the host they share is drained."""
    first, second = provision(lab, 2, prefix="mvm", flavor="m1.tiny")
    provider = provider_of(lab, "education")
    db, registry = lab.rt.db, lab.rt.providers
    a, b = first.server_id or "", second.server_id or ""
    start_host = provider.get_server(a).host
    other = _other(provider, start_host)

    live = services.start_migration(
        db, registry, kind="live", cloud_key="education", server_id=a, target_host=other, actor=AS_OPERATOR,
        reason="lab: live migration",
    )  # fmt: skip
    _settle(lab)
    assert _state(lab, live) == ("done", None)
    assert provider.get_server(a).host == other

    cold = services.start_migration(
        db, registry, kind="cold", cloud_key="education", server_id=a, actor=AS_OPERATOR,
        reason="lab: cold migration, the scheduler picks",
    )  # fmt: skip
    _settle(lab)
    assert _state(lab, cold)[0] == "awaiting_confirm"
    waiting = provider.get_server(a)
    assert waiting.status == "VERIFY_RESIZE" and waiting.host == start_host
    with db.unit_of_work() as uow:
        services.confirm(uow.session, cold, actor=AS_OPERATOR, reason="checked")
    _settle(lab)
    assert _state(lab, cold) == ("done", None)
    after, back = provider.get_server(a), provider.get_server(b)
    assert (after.status, after.host) == ("ACTIVE", start_host)
    # (Reverting a cold migration on the lab is in the adapter's contract tests; here, on the simulator.)

    # The drain: both servers on one host first (Nova may have spread them).
    host = after.host
    assert host is not None
    if back.host != host:
        provider.live_migrate(b, host)
        provider.wait_for_server(b, {"ACTIVE"}, timeout=120)
    drain = services.start_drain(
        db, registry, cloud_key="education", host=host, actor=AS_OPERATOR, reason="lab: drain for maintenance",
        only_managed=True,
    )  # fmt: skip
    _settle(lab)
    state, reason = _state(lab, drain)
    assert state == "done", reason
    assert {provider.get_server(s).host for s in (a, b)} == {_other(provider, host)}
    assert {h.host: h.status for h in provider.list_hypervisors()}[host] == "enabled"
    with db.unit_of_work() as uow:
        steps = {s.name: s for s in uow.session.scalars(select(MoveStep).where(MoveStep.move_id == drain))}
        assert steps["disable_host"].result == {"host_disabled": True}
        assert steps["enable_host"].result == {"host_enabled": True}
        outcome = steps["migrate_servers"].result
    assert outcome["moved"] == 2 and outcome["failed"] == 0
    assert {o["server"] for o in outcome["servers"]} == {first.name, second.name}


def _start_cross(j: Journey, server: ManagedServer) -> int:
    return services.start_cross_cloud_move(
        j.rt.db,
        j.rt.providers,
        cloud_key="education",
        server_id=server.server_id or "",
        target_cloud_key="sjz-gov",
        actor=AS_OPERATOR,
        reason="lab: to the city cloud",
    )


def _assert_moved_once(
    j: Journey, move_id: int, server: ManagedServer, clouds_yaml: Path, *, moved: list[ManagedServer]
) -> None:
    """The move is done; the target project holds exactly the moved servers, once each and
    ACTIVE; the source project holds none of them; no snapshot or image of a move is left."""
    state, reason = _state(j, move_id)
    assert state == "done", reason
    source, conn = lab_connection(clouds_yaml, PROVINCE), lab_connection(clouds_yaml, CITY)
    source_project, target_project = _project(j, "education"), _project(j, "sjz-gov")
    in_target = sorted((s.name, s.status) for s in conn.compute.servers(all_projects=True, project_id=target_project))
    in_source = {s.name for s in source.compute.servers(all_projects=True, project_id=source_project)}
    with j.rt.db.unit_of_work() as uow:
        move = uow.session.get(Move, move_id)
        managed = uow.session.get(ManagedServer, server.id)
        assert move is not None and managed is not None
        assert managed.server_id == move.resources["target_server_id"]
        assert conn.compute.get_server(managed.server_id).project_id == target_project
        # Proven by checksum (issue 17): the download's digest equals the source Glance's hash,
        # and the target Glance hashed what it stored to the same value.
        (snapshot,) = checksum_rows(move.resources)
        assert snapshot["source_verified"] and snapshot["target_verified"], snapshot
        assert snapshot["source"]["value"] == snapshot["target"]["value"] and len(snapshot["sha256"]) == 64
        keys = [m.idempotency_key for m in uow.session.scalars(select(Move))]
    assert in_target == sorted((s.name, "ACTIVE") for s in moved)
    assert in_source.isdisjoint({s.name for s in moved})
    for cloud in (source, conn):
        assert [i.name for i in cloud.image.images() if any(k and k in (i.name or "") for k in keys)] == []


def test_cross_cloud_move_killed_at_every_step_is_resumed(lab: Journey, lab_clouds_yaml: Path) -> None:
    """Two servers move from the education cloud (cloudmgr-lab) into the department's
    project on the Shijiazhuang city cloud (cloudmgr-lab-city).  The first is killed once
    after every step's side effect, before the step is recorded (a hook raising in the
    process: the hardest point to resume from; the simulated-cloud test kills before, after
    and at the record of every step), the second by a real SIGKILL of the process running
    it, right after its boot and before the boot is recorded."""
    server, killed = provision(lab, 2, prefix="mvx", flavor="m1.tiny")
    move_id = _start_cross(lab, server)
    crashed: list[tuple[str, str]] = []

    class Killed(BaseException):
        pass

    def hook(_move_id: int, step: str, phase: str) -> None:
        if phase == "acted" and (step, phase) not in crashed:
            crashed.append((step, phase))
            raise Killed(f"{step}/{phase}")

    stepping.CRASH_HOOK = hook
    try:
        for _ in range(100):
            if _state(lab, move_id)[0] in ("done", "failed"):
                break
            with contextlib.suppress(Killed, RetryLater):  # RetryLater: a lab glitch, try again
                jobs.run_move(lab.rt.db, lab.rt.providers, move_id, timeout=120)
    finally:
        stepping.CRASH_HOOK = None
    assert crashed == [(s, "acted") for s in STEPS[MoveKind.CROSS_CLOUD]]
    _assert_moved_once(lab, move_id, server, lab_clouds_yaml, moved=[server])
    _sigkill_after_the_boot_and_resume(lab, killed, lab_clouds_yaml)
    _assert_moved_once(lab, move_id, server, lab_clouds_yaml, moved=[server, killed])


_RUNNER = textwrap.dedent(
    """
    import sys, time
    from cloudmgr.config import load_settings
    from cloudmgr.moves import jobs, stepping
    from cloudmgr.runtime import get_runtime

    move_id, pause_at = int(sys.argv[1]), sys.argv[2]

    def hook(_move_id, step, phase):
        if f"{step}/{phase}" == pause_at:
            print("PAUSED", flush=True)
            time.sleep(600)

    stepping.CRASH_HOOK = hook
    runtime = get_runtime()
    jobs.run_move(runtime.db, runtime.providers, move_id, timeout=120)
    print("FINISHED", flush=True)
    """
)


def _sigkill_after_the_boot_and_resume(lab: Journey, server: ManagedServer, lab_clouds_yaml: Path) -> None:
    move_id = _start_cross(lab, server)
    settings = lab.rt.settings
    env: dict[str, Any] = {
        **os.environ,
        "CLOUDMGR_ENV": "test",
        "CLOUDMGR_DATABASE_URL": settings.database_url,
        "CLOUDMGR_INSTANCE_PATH": str(settings.instance_path),
        "CLOUDMGR_CLOUD_PROVIDER": "openstack",
        "CLOUDMGR_OS_CLIENT_CONFIG_FILE": str(lab_clouds_yaml),
        "CLOUDMGR_SCHEDULER_ENABLED": "false",
    }
    # The boot has happened, and is not recorded yet: the worst moment to die.
    log_path = settings.instance_path / "runner.log"
    # Leaving the two with-blocks closes the log and the runner's stdout pipe after the runner is reaped.
    with (
        log_path.open("w") as log,
        subprocess.Popen(
            [sys.executable, "-c", _RUNNER, str(move_id), "boot/acted"],
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            stderr=log,  # a file: a pipe nobody reads could fill up with warnings and block the runner
            text=True,
        ) as process,
    ):
        try:
            assert process.stdout is not None
            line = process.stdout.readline()
            assert line.strip() == "PAUSED", (line, log_path.read_text()[-3000:])
        finally:
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL
    with lab.rt.db.unit_of_work() as uow:
        boot = uow.session.scalar(select(MoveStep).where(MoveStep.move_id == move_id, MoveStep.name == "boot"))
        assert boot is not None and boot.state == "running"
    # Another worker takes over (the killed one's lease would expire): it finds the server.
    assert jobs.run_move(lab.rt.db, lab.rt.providers, move_id, timeout=120) == "done"
    with lab.rt.db.unit_of_work() as uow:
        boot = uow.session.scalar(select(MoveStep).where(MoveStep.move_id == move_id, MoveStep.name == "boot"))
        assert boot is not None and boot.state == "done" and boot.attempts == 2
