"""The province demo's migration story (`cloudmgr programme seed-demo`, which `make run` runs after the
inventory import, with ``CLOUDMGR_DEMO`` on): a province mid-programme, dated relative to today.

* **Deadlines**: the demo's programme file (``<instance>/demo-programme.yaml``, the programme file of a
  demo) is written with the plan started 330 days ago, the cloud deadline 120 days ahead and the
  server rooms' 480 days ahead; the plan's own dates (etc/programme.yaml, 2018/2020) would make every
  system thousands of days overdue.  The demo's capacity file (``<instance>/demo-capacity.yaml``) keeps
  etc/capacity.yaml's bases with targets for the demo's cloud on the same dates.
* **History**: three waves finished months ago.  Their systems' VMs are booted on the simulated cloud
  (the flavors the wave check chose, in the departments' projects) and the systems are on the cloud;
  no runbook ran for them here, and their state changes say so.  Two systems carry their own due date,
  passed a few weeks ago (overdue).  Weekly programme snapshots and capacity snapshots over the 330
  days draw the burndown and the capacity charts from the waves' dates.
* **Now**: one wave checked and ready, whose systems an operator starts from the wave's page and
  watches migrate for real: every step's playbook runs, on the demo's hosts
  (:mod:`cloudmgr.runbooks.demo_hosts`), each system's VM booted on the simulated cloud; and one wave
  whose window ends after the deadline (at risk).
* Every in-scope system gets its demo host's data and a runbook target (the service at 127.0.0.1 on a
  port of its own), so any wave an operator makes from them runs the same way.

Run again, it rewrites the programme file and the hosts' data and adds what is missing; the waves
and the history are made once.
"""

from __future__ import annotations

import html
import socket
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import yaml
from sqlalchemy import select
from sqlalchemy.orm import Session

from cloudmgr.config import REPO_ROOT, Settings
from cloudmgr.db import Database
from cloudmgr.errors import ValidationFailed
from cloudmgr.inventory.models import DONE_STATES, LegacySystem, SystemState
from cloudmgr.organisation.actor import Actor
from cloudmgr.organisation.models import Cloud
from cloudmgr.programme import tracking
from cloudmgr.programme.checks import check_wave
from cloudmgr.programme.config import read_programme_file
from cloudmgr.programme.models import MigrationWave
from cloudmgr.programme.waves import add_systems, create_wave, finish_waves, fit_failure_text, get_wave
from cloudmgr.providers import ProviderRegistry

SEED = Actor.system("seed-demo")
START_DAYS = -330
CLOUD_DEADLINE_DAYS = 120
ROOMS_DEADLINE_DAYS = 480
#: Systems with a due date of their own, this many days ago (a province's special orders).
OVERDUE_DAYS = {"rst-rencai-web01": -40, "sthjt-jiance-app01": -18}
SERVICE_ADDRESS = "127.0.0.1"
SNAPSHOT_EVERY_DAYS = 7


class DemoNotEnabled(ValidationFailed):
    code = "demo_not_enabled"


@dataclass(frozen=True)
class DemoWave:
    name: str
    cloud_key: str
    zone: str
    hosts: tuple[str, ...]
    window: tuple[int, int]  # days from today


HISTORY = (
    DemoWave(
        "第一批：省直部门门户网站上云",
        "province-base",
        "internet",
        ("jyt-portal-web01", "jyt-portal-web02", "bgt-portal-web01", "sjz-zwfw-web01"),
        (-290, -262),
    ),
    DemoWave(
        "第二批：省直业务支撑系统上云",
        "province-base",
        "extranet",
        ("jyt-auth01", "bgt-ca01", "rst-jiuye-db01", "jyt-portal-db01", "bgt-oa-db01"),
        (-170, -140),
    ),
    DemoWave(
        "第三批：石家庄市县网站上云",
        "sjz-gov",
        "internet",
        ("zd-web01", "sjz-jyj-zhaosheng01"),
        (-70, -49),
    ),
)
#: Checked: the operator starts it and watches it run.
READY = DemoWave(
    "第四批：报名与就业服务上云",
    "province-base",
    "internet",
    ("jyt-gaokao-web01", "rst-jiuye-web01", "wjw-yuyue-web01"),
    (0, 14),
)
#: Its window ends after the cloud deadline: its systems are at risk.
AT_RISK = DemoWave(
    "第五批：唐山市外网业务上云",
    "ts-gov",
    "extranet",
    ("ts-rsj-shebao01", "ts-jtj-zhifa01", "qa-nyj-fupin01"),
    (CLOUD_DEADLINE_DAYS - 15, CLOUD_DEADLINE_DAYS + 30),
)


@dataclass
class DemoSummary:
    programme_file: str
    hosts: int = 0
    targets: int = 0
    waves: dict[str, int] = field(default_factory=dict)  # name -> id (made by this run)
    programme_snapshots: int = 0
    capacity_snapshots: int = 0
    skipped: str | None = None  # why the waves and the history were not made


def seed_demo_programme(
    db: Database, registry: ProviderRegistry, settings: Settings, *, today: date | None = None
) -> DemoSummary:
    """Seed the demo's programme (see the module); job-shaped: opens its own units of work and calls
    the simulated cloud between them."""
    from cloudmgr.programme.demo_history import backfill_capacity, backfill_snapshots, land_history_wave

    if not settings.demo:
        raise DemoNotEnabled("the programme demo needs CLOUDMGR_DEMO=1 (make run sets it) and the simulated cloud")
    day = today or tracking.today()
    path = write_programme_file(settings, day)
    write_capacity_file(settings, day)
    summary = DemoSummary(str(path))
    summary.hosts, summary.targets = prepare_hosts(db, settings)
    with db.unit_of_work() as uow:
        seeded = uow.session.scalar(select(MigrationWave.id).limit(1)) is not None
        if not seeded:
            _set_overdue(uow.session, day)
    if seeded:
        return summary
    summary.skipped = _lab_sized_clouds(db, registry)
    if summary.skipped:
        return summary
    for spec in HISTORY:
        wave_id = _checked_wave(db, registry, spec, day)
        land_history_wave(db, registry, wave_id, day + timedelta(days=spec.window[1]), actor=SEED)
        summary.waves[spec.name] = wave_id
    for spec in (READY, AT_RISK):
        summary.waves[spec.name] = _checked_wave(db, registry, spec, day)
    with db.unit_of_work() as uow:
        finish_waves(uow.session, actor=SEED)
        _backdate_waves(uow.session, summary.waves, day)
    config = read_programme_file(path)
    summary.programme_snapshots = backfill_snapshots(db, config, day, START_DAYS, SNAPSHOT_EVERY_DAYS)
    summary.capacity_snapshots = backfill_capacity(db, registry, settings, day, START_DAYS, SNAPSHOT_EVERY_DAYS)
    return summary


def write_programme_file(settings: Settings, day: date) -> Path:
    """The demo's programme file, its dates relative to ``day`` (only ever inside the instance folder)."""
    path = _in_instance(settings, settings.programme_file, "CLOUDMGR_PROGRAMME_FILE")
    start = day + timedelta(days=START_DAYS)
    cloud = day + timedelta(days=CLOUD_DEADLINE_DAYS)
    rooms = day + timedelta(days=ROOMS_DEADLINE_DAYS)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        "# Written by `cloudmgr programme seed-demo` (the province demo of `make run`): the plan's dates\n"
        f"# relative to the day it ran ({day}).  The real plan's file is etc/programme.yaml.\n"
        f"start: {start}\n"
        "deadlines:\n"
        "  cloud:\n"
        f"    date: {cloud}\n"
        "    label_zh: 非涉密互联网/外网应用系统全部上云（演示）\n"
        "    label_en: Non-classified internet and extranet systems on the cloud (demo)\n"
        "  rooms:\n"
        f"    date: {rooms}\n"
        "    label_zh: 部门自建机房全部整合（演示）\n"
        "    label_en: All departments' server rooms consolidated (demo)\n"
        "at_risk_days: 90\n"
        "reminder_every_days: 7\n",
        encoding="utf-8",
    )
    return path


#: The demo's capacity targets: the province's cloud grows from its 8 hosts (days from today, servers).
CAPACITY_TARGETS = ((CLOUD_DEADLINE_DAYS, 12), (ROOMS_DEADLINE_DAYS, 16))


def write_capacity_file(settings: Settings, day: date) -> Path:
    """The demo's capacity file: etc/capacity.yaml's bases with targets relative to ``day`` (the plan's
    are millions of servers in 2018 and 2020, the whole province's data centres)."""
    path = _in_instance(settings, settings.capacity_file, "CLOUDMGR_CAPACITY_FILE")
    plan = yaml.safe_load((REPO_ROOT / "etc" / "capacity.yaml").read_text(encoding="utf-8"))
    plan["targets"] = [
        {
            "date": day + timedelta(days=days),
            "servers": servers,
            "label_zh": f"省级云平台扩容至{servers}台物理服务器（演示）",
            "label_en": f"The province's cloud grown to {servers} physical servers (demo)",
        }
        for days, servers in CAPACITY_TARGETS
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        f"# Written by `cloudmgr programme seed-demo` on {day}: etc/capacity.yaml's bases, the demo's targets.\n"
        + yaml.safe_dump(plan, allow_unicode=True, sort_keys=False),
        encoding="utf-8",
    )
    return path


def _in_instance(settings: Settings, path: Path, variable: str) -> Path:
    """The demo writes its files in the instance folder only (never over etc/)."""
    if not path.resolve().is_relative_to(settings.instance_path.resolve()):
        raise DemoNotEnabled(f"the demo writes its files in the instance folder, not {path} (unset {variable})")
    return path


def _lab_sized_clouds(db: Database, registry: ProviderRegistry) -> str | None:
    """Why the demo's waves cannot be made (None: they can): an instance folder from before the province
    demo keeps its lab-sized simulated clouds (two small hosts, flavors up to 4 vCPU / 8 GB)."""
    from cloudmgr.cloud.simulated.province import PROVINCE_FLAVORS

    largest = PROVINCE_FLAVORS[-1].name
    with db.unit_of_work() as uow:
        clouds = list(
            uow.session.scalars(select(Cloud).where(Cloud.key.in_({s.cloud_key for s in (*HISTORY, READY, AT_RISK)})))
        )
    small = [
        c.key
        for c in clouds
        if largest not in {f.name for f in registry.for_cloud(c.key, c.os_cloud, c.region).list_flavors()}
    ]
    if not small:
        return None
    return (
        f"the simulated clouds {', '.join(sorted(small))} were made before the province demo (no flavor {largest}); "
        "remove the instance folder's simulated-clouds (or the whole instance folder) and run `make run` again"
    )


def _set_overdue(session: Session, day: date) -> None:
    for hostname, days in OVERDUE_DAYS.items():
        system = session.scalar(select(LegacySystem).where(LegacySystem.hostname == hostname))
        if system is not None and system.state not in DONE_STATES:
            system.due_date = day + timedelta(days=days)


def _checked_wave(db: Database, registry: ProviderRegistry, spec: DemoWave, day: date) -> int:
    """Create the wave with its systems and check it: it must fit (the demo is sized so)."""
    with db.unit_of_work() as uow:
        wave = create_wave(
            uow.session,
            name=spec.name,
            cloud_key=spec.cloud_key,
            zone=spec.zone,
            window_start=day + timedelta(days=spec.window[0]),
            window_end=day + timedelta(days=spec.window[1]),
            actor=SEED,
        )
        add_systems(uow.session, wave.id, list(spec.hosts), actor=SEED)
        wave_id = wave.id
    result = check_wave(db, registry, wave_id, actor=SEED)
    if not result["fits"]:
        raise ValidationFailed(f"demo wave {spec.name} does not fit: {fit_failure_text(result)}")
    return wave_id


def _backdate_waves(session: Session, waves: dict[str, int], day: date) -> None:
    """The waves' own times where their windows put them (they were made just now)."""
    from cloudmgr.programme.demo_history import province_time as _at

    windows = {spec.name: spec.window for spec in (*HISTORY, READY, AT_RISK)}
    for name, wave_id in waves.items():
        start, end = windows[name]
        wave = get_wave(session, wave_id)
        opened = _at(day + timedelta(days=min(start, 0) - 14), 10)
        wave.created_at = opened
        wave.checked_at = opened + timedelta(days=3) if start < 0 else wave.checked_at
        if wave.started_at is not None:
            wave.started_at = _at(day + timedelta(days=start), 9)
        if wave.finished_at is not None:
            wave.finished_at = _at(day + timedelta(days=end), 18)


def prepare_hosts(db: Database, settings: Settings) -> tuple[int, int]:
    """Every in-scope system's demo host data, and a runbook target where it has none (the service at
    127.0.0.1 on a port of its own); returns (hosts written, targets configured)."""
    from cloudmgr.runbooks.demo_hosts import write_source_data
    from cloudmgr.runbooks.models import RunbookTarget
    from cloudmgr.runbooks.services import configure_target

    with db.unit_of_work() as uow:
        systems = in_scope_systems(uow.session)
        for system in systems:
            write_source_data(settings, system.hostname, source_files(system))
        unset = [
            s for s in systems if not ((t := uow.session.get(RunbookTarget, s.id)) is not None and t.service_address)
        ]
        for system, port in zip(unset, free_ports(first_port(settings), len(unset)), strict=True):
            configure_target(
                uow.session, system, actor=SEED, service_address=SERVICE_ADDRESS, vars={"service_port": port}
            )
    return len(systems), len(unset)


def source_files(system: LegacySystem) -> dict[str, str]:
    """A legacy host's application data in the demo: a page and a table (the runbook copies them and
    checks every file's checksum at the service address)."""
    name = html.escape(system.application_system)
    return {
        "index.html": (
            f"<!doctype html><meta charset=utf-8><title>{name}</title><h1>{name}</h1><p>{system.hostname}</p>\n"
        ),
        f"data/{system.hostname}.csv": "id,name,updated\n"
        + "".join(f"{n},{system.hostname}-record-{n},2026-01-{n:02d}\n" for n in range(1, 21)),
    }


def free_ports(first: int, count: int) -> Iterator[int]:
    """``count`` ports from ``first`` on that 127.0.0.1 can bind now."""
    port, found = first, 0
    while found < count and port < 65535:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind((SERVICE_ADDRESS, port))
            except OSError:
                port += 1
                continue
        yield port
        found += 1
        port += 1


def first_port(settings: Settings) -> int:
    """Where this instance's demo services' ports start (two demos on one machine seldom meet)."""
    return 20000 + zlib.crc32(str(settings.instance_path).encode()) % 20000


def in_scope_systems(session: Session) -> Sequence[LegacySystem]:
    return [
        s
        for s in session.scalars(select(LegacySystem).order_by(LegacySystem.hostname))
        if tracking.in_scope(s) and s.state != SystemState.DECOMMISSIONED
    ]
