"""Runbook values are data, never templates or shell (issue 14).

An attacker who controls an inventory file or a runbook setting puts Jinja
(``{{ lookup('pipe', …) }}``, ``{% … %}``) and shell (``$(…)``, ``; …``) payloads in every
field; each payload would create its own marker file.  The connection fields and runbook
settings refuse them (the field named, nothing stored); the free-text fields take them as
text, and a whole migration then runs with real Ansible against the network-namespace hosts:
no marker appears (the hosts share this file system, so a payload run on a host would leave
its marker here too)."""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from cloudmgr.automation import run_playbook
from cloudmgr.inventory.models import LegacySystem
from cloudmgr.inventory.services import transition_system
from cloudmgr.organisation.actor import Actor
from cloudmgr.organisation.models import Cloud, Role
from cloudmgr.runbooks.models import RunbookRun, RunbookTarget, RunState, Step
from cloudmgr.runbooks.services import build_inventory, get_target, migrate_system, run_step, target_name
from cloudmgr.runtime import Runtime
from tests.inventory.test_import import as_yaml, host, inventory
from tests.runbooks.conftest import LEGACY_HOSTNAME, Legacy, add_system, sync_education
from tests.runbooks.test_migration import fetch
from tests.runbooks.testhosts import SERVICE_ADDRESS, NetnsHosts
from tests.test_cli import run_in_process

#: Free-text fields of an imported host: data, so they take any text.
FREE_TEXT_FIELDS = (
    "application_system",
    "os_name",
    "os_version",
    "owner_name",
    "owner_contact",
    "server_room_name_zh",
    "server_room_name_en",
    "server_room_location",
)


@pytest.fixture
def markers() -> Iterator[Path]:
    """Where the payloads would leave their files: a short path, so that payloads fit even
    the 32 characters of os_version."""
    directory = Path(tempfile.mkdtemp(prefix="cm", dir="/tmp"))
    try:
        yield directory
    finally:
        shutil.rmtree(directory)


def payloads(markers: Path, tag: str) -> list[str]:
    """A pipe lookup, a Jinja statement, a subshell and a command separator, each touching
    its own marker ``<tag>p``, ``<tag>t``, ``<tag>s``, ``<tag>x``."""
    return [
        f"{{{{ lookup('pipe', 'touch {markers}/{tag}p') }}}}",
        f"{{% set x = lookup('pipe', 'touch {markers}/{tag}t') %}}",
        f"$(touch {markers}/{tag}s)",
        f"; touch {markers}/{tag}x",
    ]


def field_payload(markers: Path, tag: str, limit: int) -> str:
    """As many of the four payloads as fit the field's length (the shortest first)."""
    text = ""
    for payload in sorted(payloads(markers, tag), key=len):
        if len(text) + len(payload) + 1 <= limit:
            text += payload + " "
    assert text, tag
    return text.strip()


def no_markers(markers: Path) -> list[str]:
    return sorted(p.name for p in markers.iterdir())


# --- runbook settings: refused, field named, nothing stored ----------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--target-host", "$(touch {m}/th)"), "target host must be an IP address or a DNS name"),
        (("--target-host", "10.0.0.1;touch {m}/th"), "target host must be an IP address or a DNS name"),
        (("--service-address", "10.0.0.100; touch {m}/sa"), "service address must be an IP address"),
        (("--service-address", "2001:db8::1"), "service address must be an IPv4 address"),
        (("--source-var", "app_data_dir=$(touch {m}/dd)"), "source variable app_data_dir must be an absolute path"),
        (("--source-var", 'app_data_dir=\'{{{{ lookup("pipe", "touch {m}/dd") }}}}\''), "app_data_dir must be"),
        (("--target-var", "app_state_dir=/srv/app/../../etc"), "target variable app_state_dir must be a normalised"),
        (("--target-var", "app_data_dir=srv/app"), "target variable app_data_dir must be an absolute path"),
        (("--source-var", "ansible_user=root;touch {m}/u"), "source variable ansible_user must be a user name"),
        (("--source-var", "ansible_port=0"), "source variable ansible_port must be from 1 to 65535"),
        (("--source-var", "service_interface=eth0;id"), "service_interface must be a network interface name"),
        (
            ("--source-var", "ansible_ssh_common_args=-o ProxyCommand=touch {m}/pc"),
            "ansible_ssh_common_args may only set the ssh options",
        ),
        (("--source-var", "ansible_ssh_common_args=-oLocalCommand=id"), "may only set the ssh options"),
        (("--target-var", "ansible_connection=local"), "target variable 'ansible_connection' is not a runbook"),
        (("--target-var", "ansible_host=10.0.0.9"), "target variable 'ansible_host' is not a runbook variable"),
        (("--source-var", "ansible_become_exe=touch {m}/be"), "'ansible_become_exe' is not a runbook variable"),
        (("--var", "verified=true"), "variable 'verified' is not a runbook variable"),
        (("--var", "system_hostname=$(touch {m}/sh)"), "variable 'system_hostname' is not a runbook variable"),
        (("--var", "app_service_name=../../../tmp/x"), "variable app_service_name must be a service name"),
        (("--var", "service_port=8080; id"), "variable service_port must be a whole number"),
        (("--var", "virtio_drivers_ready=yes please"), "variable virtio_drivers_ready must be true or false"),
    ],
)
def test_attack_payloads_in_runbook_settings_are_refused_by_the_cli(
    seeded: Runtime, markers: Path, args: tuple[str, str], message: str
) -> None:
    with seeded.db.unit_of_work() as uow:
        add_system(uow.session, "edu-web-31", ansible_host="192.0.2.31")
    option, value = args
    result = run_in_process(seeded, "runbook", "configure", "edu-web-31", option, value.format(m=markers))
    assert result.exit_code == 1, result.output
    assert "edu-web-31: " in result.output and message in result.output, result.output
    with seeded.db.unit_of_work() as uow:
        system = uow.session.scalars(select(LegacySystem).where(LegacySystem.hostname == "edu-web-31")).one()
        assert get_target(uow.session, system.id) is None  # nothing stored
    assert no_markers(markers) == []


def test_runbook_settings_of_the_right_shape_are_stored(seeded: Runtime) -> None:
    with seeded.db.unit_of_work() as uow:
        add_system(uow.session, "edu-web-32", ansible_host="192.0.2.32")
    result = run_in_process(
        seeded,
        "runbook",
        "configure",
        "edu-web-32",
        "--target-host",
        "edu-web-32-cloud.jyt.gov.cn",
        "--service-address",
        "192.0.2.100",
        "--var",
        "virtio_drivers_ready=true",
        "--var",
        "app_service_name=licence-app",
        "--source-var",
        "ansible_ssh_common_args=-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null",
        "--source-var",
        "ansible_port=2222",
        "--target-var",
        "app_data_dir=/srv/licences/data-2018",
    )
    assert result.exit_code == 0, result.output
    shown = json.loads(result.output)
    assert shown["target_host"] == "edu-web-32-cloud.jyt.gov.cn"
    assert shown["vars"] == {"virtio_drivers_ready": True, "app_service_name": "licence-app"}
    assert shown["source_vars"]["ansible_port"] == 2222


# --- values stored before the rules: refused before Ansible starts ---------------------------


def test_attack_payloads_stored_before_the_rules_fail_the_step_before_ansible(seeded: Runtime, markers: Path) -> None:
    """Rows written before these checks (or by hand in the database) are checked again at run time."""
    cases = [
        ("ansible_host", lambda s, t: setattr(s, "ansible_host", f"$(touch {markers}/ah)")),
        ("app_data_dir", lambda s, t: t.source_vars.update(app_data_dir=payloads(markers, "dd")[0])),
        ("ansible_ssh_common_args", lambda s, t: t.target_vars.update(ansible_ssh_common_args="-oProxyCommand=id")),
        ("'verified'", lambda s, t: t.vars.update(verified=True)),
    ]
    for index, (field, tamper) in enumerate(cases):
        with seeded.db.unit_of_work() as uow:
            system = add_system(uow.session, f"edu-old-{index}", ansible_host="192.0.2.40", state="legacy")
            target = RunbookTarget(system_id=system.id, vars={}, source_vars={}, target_vars={}, updated_by="old")
            uow.session.add(target)
            tamper(system, target)
            system_id = system.id
        outcome = run_step(
            seeded.db,
            seeded.settings,
            seeded.providers,
            system_id,
            Step.PRECHECK,
            actor=Actor(username="operator", role=Role.OPERATOR),
        )
        assert outcome.state == RunState.FAILED and outcome.reason and field in outcome.reason, (field, outcome)
        with seeded.db.unit_of_work() as uow:
            run = uow.session.get(RunbookRun, outcome.run_id)
            assert run is not None and run.ansible_run_id is None  # Ansible never started
    assert no_markers(markers) == []


# --- the whole migration with real Ansible ----------------------------------------------------


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_attack_payloads_in_every_imported_field_then_a_real_migration_runs_none(
    seeded: Runtime, hosts: NetnsHosts, tmp_path: Path, markers: Path
) -> None:
    rt = seeded
    sync_education(rt)
    limits = {"os_version": 32, "owner_name": 64, "os_name": 64}
    texts = {
        field: field_payload(markers, f"f{index}", limits.get(field, 128))
        for index, field in enumerate(FREE_TEXT_FIELDS)
    }
    room_texts = {k: texts.pop(k) for k in ("server_room_name_zh", "server_room_name_en", "server_room_location")}
    entry = host(ansible_host=hosts.source.address, ansible_port=22, ansible_user="root", **texts)
    file = tmp_path / "legacy.yml"
    data = inventory({LEGACY_HOSTNAME: entry})
    room_group = data["all"]["children"]["dept_prov_education"]["children"]["room_prov_education_9"]
    room_group["vars"].update(room_texts)
    file.write_text(as_yaml(data), encoding="utf-8")
    # Through the real entry points: the inventory import and the runbook configuration (CLI).
    imported = run_in_process(rt, "inventory", "import", str(file))
    assert imported.exit_code == 0, imported.output
    with rt.db.unit_of_work() as uow:
        system = uow.session.scalars(select(LegacySystem).where(LegacySystem.hostname == LEGACY_HOSTNAME)).one()
        for field, text in texts.items():
            assert getattr(system, field) == text  # stored as written
        assert system.server_room.location == room_texts["server_room_location"]
        # the wave puts it on the education cloud
        system.target_cloud_id = uow.session.scalars(select(Cloud.id).where(Cloud.key == "education")).one()
        transition_system(uow.session, system, "planned", actor=Actor("test", Role.OPERATOR), reason="in a wave")
        system_id = system.id
    ssh_args = "ansible_ssh_common_args=-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null"
    configure = ["runbook", "configure", LEGACY_HOSTNAME, "--service-address", SERVICE_ADDRESS]
    configure += ["--target-host", hosts.target.address, "--var", f"replication_key_file={hosts.key_file}"]
    configure += ["--var", "min_free_mb=1"]
    for option, host_ in (("--source-var", hosts.source), ("--target-var", hosts.target)):
        configure += [option, f"ansible_ssh_private_key_file={hosts.key_file}", option, ssh_args]
        configure += [option, f"app_data_dir={host_.data_dir}", option, f"app_state_dir={host_.state_dir}"]
    configured = run_in_process(rt, *configure)
    assert configured.exit_code == 0, configured.output

    outcome = migrate_system(rt.db, rt.settings, rt.providers, system_id, actor=Actor.system("runbook"))
    assert outcome is not None and outcome.step == Step.VERIFY and outcome.succeeded, outcome
    with rt.db.unit_of_work() as uow:
        system = uow.session.get(LegacySystem, system_id)
        assert system is not None and system.state == "on_cloud"
        assert fetch("index.html")[0] == target_name(system)
        steps = uow.session.scalars(
            select(RunbookRun.step).where(RunbookRun.system_id == system_id).order_by(RunbookRun.id)
        ).all()
        assert list(steps) == ["precheck", "provision", "replicate", "cutover", "verify"]
    assert no_markers(markers) == []


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_attack_payloads_past_validation_reach_the_source_as_literal_text(
    legacy: Legacy, tmp_path: Path, markers: Path
) -> None:
    """Below the checks: the runbook's own inventory with a payload as the source's data
    directory (as if a check were missing), run by the wrapper with the real precheck against
    the source over ssh.  Not templated on the controller, not run by the source's shell:
    precheck reports the directory, by its literal name, as missing."""
    rt = legacy.rt
    with rt.db.unit_of_work() as uow:
        system = uow.session.get(LegacySystem, legacy.system_id)
        assert system is not None
        base = build_inventory(uow.session, system, Step.PRECHECK, rt.settings)
    messages: list[str] = []

    def keep_failures(event: Mapping[str, Any]) -> None:
        res = (event.get("event_data") or {}).get("res")
        if event.get("event") == "runner_on_failed" and isinstance(res, dict):
            messages.append(str(res.get("stderr") or ""))

    for payload in payloads(markers, "dd"):
        base["all"]["children"]["source"]["hosts"][legacy.hostname]["app_data_dir"] = payload
        messages.clear()
        result = run_playbook("precheck.yml", inventory=base, artifacts_root=tmp_path / "runs", on_event=keep_failures)
        assert not result.ok and result.failed_hosts == [legacy.hostname], payload
        assert messages == [f"{payload} does not exist"], (payload, messages)
    assert no_markers(markers) == []
