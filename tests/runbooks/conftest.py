"""Fixtures of the runbook tests: the network-namespace hosts (one set per session) and a
legacy system pointing at them."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from cloudmgr.catalog.services import read_rates, sync_catalog
from cloudmgr.inventory.models import LegacySystem, ServerRoom
from cloudmgr.inventory.services import transition_system
from cloudmgr.organisation.actor import Actor
from cloudmgr.organisation.models import Cloud, Department, Role
from cloudmgr.organisation.sync import sync_clouds
from cloudmgr.runbooks.services import configure_target
from cloudmgr.runtime import Runtime
from tests.runbooks.testhosts import SERVICE_ADDRESS, NetnsHosts, running_hosts, start_legacy_service

LEGACY_HOSTNAME = "edu-licence-01"

#: The application data the legacy source serves (relative path → content).
APP_FILES = {
    "index.html": "<h1>行政许可系统</h1>\n",
    "data/licences.csv": "".join(f"{i},licence-{i:05d},approved\n" for i in range(2000)),
    "data/empty.txt": "",
    "static/app.js": "console.log('licensing');\n" * 50,
}


@pytest.fixture(scope="session")
def netns_hosts(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NetnsHosts]:
    """The legacy source and the cloud target (network namespaces with sshd), made once."""
    with running_hosts(tmp_path_factory.mktemp("runbook-hosts")) as hosts:
        yield hosts


def _kill_pidfiles(state_dir: Path) -> None:
    for pid_file in state_dir.glob("*.pid"):
        with contextlib.suppress(ValueError, ProcessLookupError):
            os.kill(int(pid_file.read_text().strip()), signal.SIGKILL)
        pid_file.unlink()


@pytest.fixture
def hosts(netns_hosts: NetnsHosts) -> NetnsHosts:
    """The hosts as a server room has them: the source holds the service address and serves
    its data; the target is an empty VM."""
    for host in netns_hosts.hosts.values():
        _kill_pidfiles(host.state_dir)
        host.stop_services()
        subprocess.run(
            ["ip", "-n", host.netns, "addr", "del", f"{SERVICE_ADDRESS}/24", "dev", "eth0"], capture_output=True
        )
        subprocess.run(["rm", "-rf", str(host.data_dir), str(host.state_dir)], check=True)
    source = netns_hosts.source
    for rel, content in APP_FILES.items():
        path = source.data_dir / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content, encoding="utf-8")
    netns_hosts.target.data_dir.mkdir(parents=True)
    netns_hosts.target.state_dir.mkdir(parents=True)
    start_legacy_service(netns_hosts, served_by=LEGACY_HOSTNAME)
    return netns_hosts


@dataclass
class Legacy:
    rt: Runtime
    hosts: NetnsHosts
    system_id: int
    hostname: str


def _host_vars(vars: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in vars.items() if k != "ansible_host"}


def add_system(
    session: Session,
    hostname: str,
    *,
    ansible_host: str | None,
    classification: str = "non_classified",
    state: str = "planned",
    target_cloud: str | None = "education",
    dept_key: str = "prov-education",
    ram_mb: int = 1024,
) -> LegacySystem:
    """A legacy system of the education department (in a wave unless ``state`` says otherwise)."""
    dept = session.scalars(select(Department).where(Department.key == dept_key)).one()
    room = session.scalars(select(ServerRoom).where(ServerRoom.code == f"{dept_key}-room-rb")).one_or_none()
    if room is None:
        room = ServerRoom(code=f"{dept_key}-room-rb", name_zh="机房", name_en="Server room", department=dept)
        session.add(room)
    cloud = session.scalars(select(Cloud).where(Cloud.key == target_cloud)).one() if target_cloud else None
    system = LegacySystem(
        hostname=hostname,
        department=dept,
        server_room=room,
        application_system="行政许可系统",
        classification=classification,
        network="extranet",
        os_family="linux",
        os_name="Debian",
        os_version="12",
        vcpus=1,
        ram_mb=ram_mb,
        disk_gb=20,
        data_gb=1,
        cpu_p95_pct=20.0,
        ram_p95_pct=40.0,
        dependencies=[],
        owner_name="张伟",
        owner_contact="0311-87001234",
        ansible_host=ansible_host,
        target_cloud_id=cloud.id if cloud else None,
        state="legacy",
    )
    session.add(system)
    session.flush()
    if state != "legacy":
        transition_system(session, system, "planned", actor=Actor("test", Role.OPERATOR), reason="in a wave")
    if state not in {"legacy", "planned"}:
        transition_system(session, system, state, actor=Actor("test", Role.OPERATOR), reason="test")
    return system


def sync_education(rt: Runtime) -> None:
    """The simulated clouds' projects, networks and catalog (what provisioning needs)."""
    assert all(r.ok for r in sync_clouds(rt.db, rt.providers, actor=Actor.system("test")))
    sync_catalog(rt.db, rt.providers, read_rates(rt.settings.rates_file), actor=Actor.system("test"))


@pytest.fixture
def legacy(seeded: Runtime, hosts: NetnsHosts) -> Legacy:
    """A planned legacy system of the education department whose host is the netns source,
    bound for the education cloud (simulated) where the netns target stands in for its VM."""
    sync_education(seeded)
    with seeded.db.unit_of_work() as uow:
        session = uow.session
        system = add_system(session, LEGACY_HOSTNAME, ansible_host=hosts.source.address)
        configure_target(
            session,
            system,
            actor=Actor(username="test", role=Role.OPERATOR),
            target_host=hosts.target.address,
            service_address=SERVICE_ADDRESS,
            vars={"replication_key_file": str(hosts.key_file), "min_free_mb": 1},
            source_vars=_host_vars(hosts.source.ansible_vars(hosts.key_file)),
            target_vars=_host_vars(hosts.target.ansible_vars(hosts.key_file)),
        )
        system_id, hostname = system.id, system.hostname
    return Legacy(seeded, hosts, system_id, hostname)
