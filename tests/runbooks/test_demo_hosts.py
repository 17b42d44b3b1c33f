"""The province demo's hosts (cloudmgr.runbooks.demo_hosts): only the CLOUDMGR_DEMO setting makes a
runbook reach its hosts locally, as directories under the instance folder.  An imported inventory
and the runbook settings cannot turn it on; with it on, no stored value moves a host out of its
directory or changes the Python Ansible runs."""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import select

from cloudmgr.config import load_settings
from cloudmgr.errors import ConfigurationError
from cloudmgr.inventory.models import LegacySystem
from cloudmgr.organisation.actor import Actor
from cloudmgr.organisation.models import Role
from cloudmgr.runbooks.demo_hosts import demo_host_dir
from cloudmgr.runbooks.errors import RunbookNotConfigured, RunbookTargetInvalid
from cloudmgr.runbooks.models import Step
from cloudmgr.runbooks.services import build_inventory, configure_target
from cloudmgr.runtime import Runtime
from tests.inventory.test_import import as_yaml, host, inventory, run_import

OPERATOR = Actor("operator", Role.OPERATOR)
#: What an inventory file would set to reach Ansible as the demo does (or worse).
SWITCHES = {
    "ansible_connection": "local",
    "demo_local_hosts": True,
    "service_bind": "0.0.0.0",
    "app_data_dir": "/etc",
    "app_state_dir": "/root",
    "ansible_python_interpreter": "/bin/sh",
    "ansible_ssh_common_args": "-o ProxyCommand=touch /tmp/x",
}


def test_the_demo_is_off_by_default_and_refused_outside_the_simulated_cloud(tmp_path: Path) -> None:
    base = {"CLOUDMGR_INSTANCE_PATH": str(tmp_path), "CLOUDMGR_SECRET_KEY": "k" * 32}
    plain = load_settings(base)
    assert plain.demo is False and plain.programme_file.name == "programme.yaml"
    demo = load_settings({**base, "CLOUDMGR_DEMO": "1"})
    assert demo.demo is True and demo.programme_file == tmp_path.resolve() / "demo-programme.yaml"
    own = load_settings({**base, "CLOUDMGR_DEMO": "1", "CLOUDMGR_PROGRAMME_FILE": "/srv/plan.yaml"})
    assert own.programme_file == Path("/srv/plan.yaml")
    with pytest.raises(ConfigurationError, match="CLOUDMGR_DEMO"):
        load_settings({**base, "CLOUDMGR_DEMO": "1", "CLOUDMGR_CLOUD_PROVIDER": "openstack"})
    with pytest.raises(ConfigurationError, match="CLOUDMGR_DEMO"):
        load_settings(
            {**base, "CLOUDMGR_DEMO": "1", "CLOUDMGR_ENV": "production", "CLOUDMGR_DATABASE_URL": "sqlite://"}
        )


def _imported(seeded: Runtime, hostname: str, **extra: object) -> LegacySystem:
    data = inventory({hostname: host(**extra)})
    group = data["all"]["children"]["dept_prov_education"]
    group["vars"].update(SWITCHES)  # inherited by the host too
    run_import(seeded, as_yaml(data))
    with seeded.db.unit_of_work() as uow:
        system = uow.session.scalar(select(LegacySystem).where(LegacySystem.hostname == hostname))
        assert system is not None
        uow.session.expunge(system)
        return system


def test_an_imported_file_cannot_switch_the_demo_hosts_on(seeded: Runtime) -> None:
    _imported(seeded, "edu-switch-01", **SWITCHES)
    settings = seeded.settings
    assert settings.demo is False
    with seeded.db.unit_of_work() as uow:
        system = uow.session.scalar(select(LegacySystem).where(LegacySystem.hostname == "edu-switch-01"))
        assert system is not None
        built = build_inventory(uow.session, system, Step.PRECHECK, settings)
    group_vars = built["all"]["vars"]
    source = built["all"]["children"]["source"]["hosts"]["edu-switch-01"]
    assert "demo_local_hosts" not in group_vars and "service_bind" not in group_vars
    assert "ansible_connection" not in source and "ansible_ssh_common_args" not in source
    assert source["app_data_dir"] == "/srv/app" and source["app_state_dir"] == "/var/lib/cloudmgr-app"
    assert source["ansible_python_interpreter"] == "/usr/bin/python3"
    assert source["ansible_host"] == "10.9.0.1"


@pytest.mark.parametrize(
    "settings_kind, values",
    [
        ("vars", {"demo_local_hosts": True}),
        ("vars", {"service_bind": "0.0.0.0"}),
        ("source_vars", {"ansible_connection": "local"}),
        ("target_vars", {"ansible_connection": "local"}),
        ("source_vars", {"demo_local_hosts": True}),
    ],
)
def test_the_runbook_settings_cannot_switch_it_on(
    seeded: Runtime, settings_kind: str, values: dict[str, object]
) -> None:
    system = _imported(seeded, "edu-switch-02")
    with seeded.db.unit_of_work() as uow:
        stored = uow.session.get(LegacySystem, system.id)
        assert stored is not None
        with pytest.raises(RunbookTargetInvalid):
            configure_target(uow.session, stored, actor=OPERATOR, **{settings_kind: values})  # type: ignore[arg-type]


def test_with_the_demo_on_every_host_stays_in_its_directory(seeded: Runtime) -> None:
    system = _imported(seeded, "edu-switch-03")
    with seeded.db.unit_of_work() as uow:
        stored = uow.session.get(LegacySystem, system.id)
        assert stored is not None
        configure_target(
            uow.session,
            stored,
            actor=OPERATOR,
            target_host="10.10.0.5",
            service_address="127.0.0.1",
            vars={"replication_key_file": "/root/.ssh/id_ed25519", "service_port": 18080},
            source_vars={"app_data_dir": "/etc", "ansible_python_interpreter": "/usr/bin/python3"},
            target_vars={"app_state_dir": "/root", "ansible_user": "admin"},
        )
    demo = replace(seeded.settings, demo=True)
    root = demo.instance_path / "demo-hosts"
    with seeded.db.unit_of_work() as uow:
        stored = uow.session.get(LegacySystem, system.id)
        assert stored is not None
        built = build_inventory(uow.session, stored, Step.CUTOVER, demo)
    group_vars = built["all"]["vars"]
    assert group_vars["demo_local_hosts"] is True and group_vars["service_bind"] == "127.0.0.1"
    assert "replication_key_file" not in group_vars and group_vars["service_port"] == 18080
    for name, where in (
        ("edu-switch-03", built["all"]["children"]["source"]["hosts"]),
        ("edu-switch-03-cloud", built["all"]["children"]["target"]["hosts"]),
    ):
        host_vars = where[name]
        assert host_vars["ansible_connection"] == "local"
        assert host_vars["ansible_python_interpreter"] == sys.executable
        assert host_vars["app_data_dir"] == str(root / name / "srv" / "app")
        assert host_vars["app_state_dir"] == str(root / name / "state")


def test_a_demo_host_is_one_directory_under_the_instance(seeded: Runtime) -> None:
    demo = replace(seeded.settings, demo=True)
    assert demo_host_dir(demo, "jyt-auth01") == demo.instance_path / "demo-hosts" / "jyt-auth01"
    for name in ("..", ".", "../etc", "a/b", "", "-x"):
        with pytest.raises(RunbookNotConfigured):
            demo_host_dir(demo, name)
