"""The provision step against the lab OpenStack: the target VM is booted through the cloud
adapter (real Nova, fake driver) after the classified rule; the netns target host stands in
for the booted VM when the provision playbook runs.  Fails (never skips) without the lab."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from cloudmgr.inventory.models import LegacySystem
from cloudmgr.organisation.actor import Actor
from cloudmgr.organisation.models import Role
from cloudmgr.runbooks.models import RunbookRun, RunState
from cloudmgr.runbooks.services import configure_target, run_step
from cloudmgr.runtime import Runtime
from tests.journey_fixtures import LabJourney, build_lab_journey, clean_lab_department
from tests.runbooks.conftest import add_system
from tests.runbooks.testhosts import NetnsHosts

pytestmark = pytest.mark.lab


@pytest.fixture
def lab_department(lab_runtime: Runtime, tmp_path: Path, lab_clouds_yaml: Path) -> Iterator[LabJourney]:
    journey = build_lab_journey(lab_runtime, tmp_path, lab_clouds_yaml, instances=2)
    yield journey
    clean_lab_department(journey)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_provision_boots_the_target_vm_on_the_lab_once(lab_department: LabJourney, hosts: NetnsHosts) -> None:
    rt = lab_department.rt
    with rt.db.unit_of_work() as uow:
        system = add_system(
            uow.session,
            f"{lab_department.department_key}-app-01",
            ansible_host=hosts.source.address,
            dept_key=lab_department.department_key,
            ram_mb=512,  # m1.tiny: the lab is shared
        )
        target_vars = {k: v for k, v in hosts.target.ansible_vars(hosts.key_file).items() if k != "ansible_host"}
        configure_target(
            uow.session,
            system,
            actor=Actor(username="test", role=Role.OPERATOR),
            target_host=hosts.target.address,
            target_vars=target_vars,
        )
        system_id, hostname = system.id, system.hostname

    first = run_step(
        rt.db, rt.settings, rt.providers, system_id, "provision", actor=Actor(username="operator", role=Role.OPERATOR)
    )
    assert first.state == RunState.SUCCEEDED, first.reason
    servers = lab_department.nova_servers()
    assert len(servers) == 1 and servers[0].status == "ACTIVE"
    assert servers[0].metadata["cloudmgr-legacy-system"] == hostname
    assert servers[0].metadata["cloudmgr-classification"] == "non_classified"
    with rt.db.unit_of_work() as uow:
        stored = uow.session.get(LegacySystem, system_id)
        assert stored is not None and stored.cloud_server_id == servers[0].id and stored.state == "migrating"

    again = run_step(
        rt.db, rt.settings, rt.providers, system_id, "provision", actor=Actor(username="operator", role=Role.OPERATOR)
    )
    assert again.state == RunState.SUCCEEDED and again.changed == 0  # the same VM, found by its key
    assert [s.id for s in lab_department.nova_servers()] == [servers[0].id]
    with rt.db.unit_of_work() as uow:
        assert uow.session.query(RunbookRun).count() == 2
