"""`make run`'s province demo (issue 18): the same seeding as the Makefile, in a temporary instance.

* the story: months of programme and capacity history, deadlines relative to today (no "days
  overdue" in thousands), the demo's systems fit the province catalog except two databases too big
  for any flavor, classified systems refused, three waves done, one checked, one at risk;
* the checked wave, started from its page by the operator, runs end to end on the simulated cloud
  with the demo's hosts -- every playbook, run by a worker without root's powers (``nobody``, or root's
  uid stripped of every capability where ``nobody`` cannot run this venv's Python) -- and every system
  ends on the cloud, its service answering from the target.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from cloudmgr.capacity.config import read_capacity_file
from cloudmgr.capacity.models import CapacitySnapshot
from cloudmgr.capacity.services import server_trend
from cloudmgr.catalog.models import CatalogItem, ItemKind
from cloudmgr.cli import main
from cloudmgr.config import REPO_ROOT, load_settings
from cloudmgr.inventory.errors import ClassifiedPlacementRefused
from cloudmgr.inventory.models import LegacySystem, SystemState
from cloudmgr.organisation.actor import Actor
from cloudmgr.organisation.models import Cloud, Role
from cloudmgr.programme import fit, tracking
from cloudmgr.programme.config import read_programme_file
from cloudmgr.programme.demo import AT_RISK, HISTORY, READY
from cloudmgr.programme.models import MigrationWave, ProgrammeSnapshot, WaveState
from cloudmgr.programme.waves import add_systems, finish_waves
from cloudmgr.runbooks.models import MIGRATION_STEPS, RunbookRun, RunbookTarget, RunState
from cloudmgr.runtime import Runtime, set_runtime
from tests.conftest import ONE_DATABASE
from tests.web.helpers import logged_in, post_form

SECRET = "demo-test-secret-key-0123456789abcdef"
NOBODY = 65534
TOO_BIG = {"rst-shebao-db01", "czt-budget-db01"}


@dataclass
class Demo:
    runtime: Runtime
    env: dict[str, str]  # the demo's CLOUDMGR_ settings
    instance: Path


def _cli(env: dict[str, str], *args: str) -> str:
    # Every other CLOUDMGR_ variable of the test run's own is removed for the command.
    unset: dict[str, str | None] = {k: None for k in os.environ if k.startswith("CLOUDMGR_") and k not in env}
    result = CliRunner().invoke(main, list(args), env={**unset, **env}, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


@pytest.fixture
def demo(database_url: str) -> Iterator[Demo]:
    """`make run`'s commands up to serving, in an instance folder an unprivileged user may enter."""
    instance = Path(tempfile.mkdtemp(prefix="cloudmgr-demo-"))
    url = f"sqlite:///{instance / 'cloudmgr.sqlite3'}" if database_url.startswith("sqlite") else database_url
    env = {
        "CLOUDMGR_DEMO": "1",
        "CLOUDMGR_INSTANCE_PATH": str(instance),
        "CLOUDMGR_DATABASE_URL": url,
        "CLOUDMGR_SECRET_KEY": SECRET,
        "CLOUDMGR_CLOUD_PROVIDER": "simulated",
        "CLOUDMGR_ENV": "test",
    }
    for command in (
        ("db", "upgrade"),
        ("seed-demo", "--no-logins"),
        ("clouds", "sync"),
        ("quotas", "apply"),
        ("inventory", "import", "--only-new", str(REPO_ROOT / "inventory" / "legacy.yml")),
        ("programme", "seed-demo"),
    ):
        _cli(env, *command)
    runtime = Runtime.from_settings(load_settings(env))
    set_runtime(runtime)
    try:
        yield Demo(runtime, env, instance)
    finally:
        set_runtime(None)
        runtime.db.dispose()
        _stop_demo_services(instance)
        shutil.rmtree(instance, ignore_errors=True)


def _stop_demo_services(instance: Path) -> None:
    """The migrated services the run started (their pid files; only processes serving this instance)."""
    for pid_file in instance.glob("demo-hosts/*/state/*.pid"):
        with contextlib.suppress(OSError, ValueError):
            pid = int(pid_file.read_text().strip())
            if str(instance).encode() in Path(f"/proc/{pid}/cmdline").read_bytes():
                os.kill(pid, signal.SIGTERM)


def _wave(demo: Demo, name: str) -> MigrationWave:
    with demo.runtime.db.unit_of_work() as uow:
        wave = uow.session.scalar(select(MigrationWave).where(MigrationWave.name == name))
        assert wave is not None, name
        uow.session.expunge(wave)
        return wave


def test_the_demo_shows_a_province_mid_programme(demo: Demo) -> None:
    from web import create_app

    today = tracking.today()
    config = read_programme_file(demo.runtime.settings.programme_file)
    assert demo.runtime.settings.programme_file == demo.instance / "demo-programme.yaml"
    assert config.start < today < config.cloud.date < config.rooms.date
    assert 60 <= (config.cloud.date - today).days <= 200
    capacity = read_capacity_file(demo.runtime.settings.capacity_file)
    assert demo.runtime.settings.capacity_file == demo.instance / "demo-capacity.yaml"
    assert capacity.bases and all(today < target.date for target in capacity.targets)
    with demo.runtime.db.unit_of_work() as uow:
        session = uow.session
        # months of weekly history behind the burndown and the capacity chart
        days = sorted(session.scalars(select(ProgrammeSnapshot.taken_on)))
        assert len(days) >= 40 and days[0] <= today - timedelta(days=300) and days[-1] == today
        remaining = [session.scalar(select(ProgrammeSnapshot).where(ProgrammeSnapshot.taken_on == d)) for d in days]
        counts = [s.figures["remaining"] for s in remaining if s is not None]
        assert counts == sorted(counts, reverse=True) and counts[0] > counts[-1]  # a line going down
        capacity_days = {s.taken_at.date() for s in session.scalars(select(CapacitySnapshot))}
        assert len(capacity_days) >= 40 and min(capacity_days) <= today - timedelta(days=300)
        trend = server_trend(session)  # the capacity chart's line: the demo cloud's hosts all along
        assert len(trend) >= 40 and all(servers == trend[-1][1] > 0 for _day, servers in trend)
        with_hosts = select(CapacitySnapshot).where(CapacitySnapshot.physical_servers > 0)
        used = [s.vcpus_used for s in session.scalars(with_hosts.order_by(CapacitySnapshot.taken_at))]
        assert used == sorted(used) and used[0] < used[-1]  # the moved systems' VMs fill it over the months
        figures = tracking.compute(session, config, today)
        assert figures.days_past_deadline == 0
        assert figures.overdue and all(0 < f.days < 100 for f in figures.overdue)
        assert 0 < figures.done < figures.in_scope
        # the demo's systems fit the province catalog; the two largest databases fit no flavor
        cloud_id = session.scalar(select(Cloud.id).where(Cloud.key == "province-base"))
        flavors = [
            fit.FlavorOption(i.cloud_name, i.vcpus, i.ram_mb, i.disk_gb, i.offered)
            for i in session.scalars(
                select(CatalogItem).where(CatalogItem.cloud_id == cloud_id, CatalogItem.kind == ItemKind.FLAVOR.value)
            )
        ]
        systems = [s for s in session.scalars(select(LegacySystem)) if tracking.in_scope(s)]
        sized = fit.size_systems(
            [
                fit.SystemSize(s.id, s.hostname, "", s.vcpus, s.ram_mb, s.disk_gb, s.cpu_p95_pct, s.ram_p95_pct)
                for s in systems
            ],
            flavors,
        )
        assert {s.system.hostname for s in sized if s.flavor is None} == TOO_BIG
        assert len(systems) >= 40
        classified = [s.hostname for s in session.scalars(select(LegacySystem)) if s.classification == "classified"]
        assert len(classified) >= 5
    # the classified systems are refused by every wave, whatever its cloud
    ready = _wave(demo, READY.name)
    for hostname in classified:
        with pytest.raises(ClassifiedPlacementRefused), demo.runtime.db.unit_of_work() as uow:
            add_systems(uow.session, ready.id, [hostname], actor=Actor("operator", Role.OPERATOR))
    # three waves done months ago, one checked and ready, one at risk (its window ends after the deadline)
    for spec in HISTORY:
        wave = _wave(demo, spec.name)
        assert wave.state == WaveState.DONE and wave.finished_at is not None
        assert wave.finished_at.date() <= today - timedelta(days=30)
    assert _wave(demo, READY.name).state == WaveState.CHECKED
    at_risk = _wave(demo, AT_RISK.name)
    assert at_risk.state == WaveState.CHECKED and at_risk.window_end > config.cloud.date
    assert {f.hostname for f in figures.at_risk if f.reason == "wave_too_late"} == set(AT_RISK.hosts)
    # the page says so: no thousands of days, the history drawn
    client = logged_in(create_app(runtime=demo.runtime), "operator")
    html = client.get("/ops/programme?lang=en").get_data(as_text=True)
    assert "days past the deadline" not in html
    assert not re.search(r"\d,\d{3} days", html)
    waves_html = client.get("/ops/waves").get_data(as_text=True)
    assert all(spec.name in waves_html for spec in (*HISTORY, READY, AT_RISK))
    # run again (a second `make run`): nothing doubled
    _cli(demo.env, "programme", "seed-demo")
    with demo.runtime.db.unit_of_work() as uow:
        assert len(list(uow.session.scalars(select(MigrationWave)))) == len(HISTORY) + 2


#: The runbook worker, as the scheduler runs it; it prints its capabilities first.
DRAIN = (
    "import sys\n"
    "status = dict(line.split(':', 1) for line in open('/proc/self/status').read().splitlines() if ':' in line)\n"
    "print('CapEff', status['CapEff'].strip(), flush=True)\n"
    "from cloudmgr.scheduler.jobs import drain_runbook_work_job\n"
    "drain_runbook_work_job()\n"
)
NO_CAPABILITIES = "0000000000000000"


def _unprivileged() -> tuple[list[str], bool]:
    """How the runbooks' worker runs without root: as ``nobody`` when the tests run as root and
    ``nobody`` may run this venv's interpreter; where it may not (a venv on a Python under /root), as
    root's uid stripped of every capability (no CAP_NET_ADMIN, no namespaces, no DAC override).
    Returns the command prefix and whether it is ``nobody``."""
    if os.geteuid() != 0:
        return [], False
    nobody = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]
    probe = subprocess.run(
        [*nobody, sys.executable, "-c", "import subprocess, sys; subprocess.run([sys.executable, '-V'], check=True)"],
        cwd="/tmp",
        capture_output=True,
        timeout=120,
        check=False,
    )
    if probe.returncode == 0:
        return nobody, True
    securebits = "+noroot,+noroot_locked,+no_setuid_fixup,+no_setuid_fixup_locked"
    return [
        "setpriv",
        "--bounding-set=-all",
        "--inh-caps=-all",
        "--ambient-caps=-all",
        f"--securebits={securebits}",
        "--no-new-privs",
    ], False


# Minutes of Ansible on directories: its subject is the runbooks and the demo, not the database, and
# `make run` is on SQLite (the seeding test above runs on both).
@ONE_DATABASE
def test_the_ready_demo_wave_runs_end_to_end_without_root(demo: Demo) -> None:
    from web import create_app

    wave = _wave(demo, READY.name)
    client = logged_in(create_app(runtime=demo.runtime), "operator")
    answer = post_form(client, f"/ops/waves/{wave.id}/start", {}, page=f"/ops/waves/{wave.id}")
    assert answer.status_code == 302, answer.get_data(as_text=True)
    assert _wave(demo, READY.name).state == WaveState.RUNNING
    # the scheduler's runbook drain, without root: the instance is the worker's, nothing else
    home = demo.instance / "home"
    home.mkdir()
    prefix, as_nobody = _unprivileged()
    if as_nobody:
        for path in [demo.instance, *demo.instance.rglob("*")]:
            os.chown(path, NOBODY, NOBODY, follow_symlinks=False)
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLOUDMGR_")} | demo.env | {"HOME": str(home)}
    drained = subprocess.run(
        [*prefix, sys.executable, "-c", DRAIN],
        env=env,
        cwd=demo.instance,
        capture_output=True,
        text=True,
        timeout=1500,
        check=False,
    )
    assert drained.returncode == 0, drained.stderr[-3000:]
    assert f"CapEff {NO_CAPABILITIES}" in drained.stdout, drained.stdout[:500]
    with demo.runtime.db.unit_of_work() as uow:
        assert finish_waves(uow.session) == [wave.id]
    provider = demo.runtime.providers.for_cloud("province-base", "cloudmgr-lab", "RegionOne")
    with demo.runtime.db.unit_of_work() as uow:
        session = uow.session
        for hostname in READY.hosts:
            system = session.scalar(select(LegacySystem).where(LegacySystem.hostname == hostname))
            assert system is not None
            runs = list(
                session.scalars(select(RunbookRun).where(RunbookRun.system_id == system.id).order_by(RunbookRun.id))
            )
            assert system.state == SystemState.ON_CLOUD, [(r.step, r.state, r.reason) for r in runs]
            assert [r.step for r in runs] == [s.value for s in MIGRATION_STEPS]
            assert all(r.state == RunState.SUCCEEDED and r.event_count for r in runs)
            assert system.cloud_server_id and provider.get_server(system.cloud_server_id).status == "ACTIVE"
            target = session.get(RunbookTarget, system.id)
            assert target is not None and target.service_address == "127.0.0.1"
            with urllib.request.urlopen(f"http://127.0.0.1:{target.vars['service_port']}/", timeout=10) as response:
                assert response.headers["X-Served-By"] == f"{hostname}-cloud"
                assert hostname in response.read().decode()
            target_dir = demo.instance / "demo-hosts" / f"{hostname}-cloud"
            assert (target_dir / "srv" / "app" / "data" / f"{hostname}.csv").is_file()
            assert (target_dir / "state" / "service_address").read_text().strip() == "127.0.0.1"
            if as_nobody:
                assert (target_dir / "state" / "app.pid").stat().st_uid == NOBODY
    assert _wave(demo, READY.name).state == WaveState.DONE


def test_make_run_seeds_the_demo_programme_with_the_demo_on(tmp_path: Path) -> None:
    """`make run` with a stand-in venv whose `cloudmgr` prints CLOUDMGR_DEMO and its arguments: the
    programme is seeded after the inventory import, with the demo on (off when OpenStack is named)."""
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").touch()
    cloudmgr = venv / "bin" / "cloudmgr"
    cloudmgr.write_text('#!/bin/sh\necho "demo=$CLOUDMGR_DEMO $*"\n')
    cloudmgr.chmod(0o755)
    (venv / ".installed-run").touch()  # newer than requirements.txt: nothing to install

    def run(**extra: str) -> list[str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CLOUDMGR_")} | extra
        done = subprocess.run(
            ["make", "-s", "run", f"VENV={venv}"], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, done.stderr
        return [line for line in done.stdout.splitlines() if line.startswith("demo=")]

    lines = run()
    assert all(line.startswith("demo=1 ") for line in lines), lines
    commands = [line.split(" ", 1)[1] for line in lines]
    imported = commands.index("inventory import --only-new inventory/legacy.yml")
    assert commands[imported + 1] == "programme seed-demo"
    assert commands[-2:] == ["demo-logins", "serve"]
    assert all(line.startswith("demo=0 ") for line in run(CLOUDMGR_CLOUD_PROVIDER="openstack"))
