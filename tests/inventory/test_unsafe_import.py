"""The inventory's connection fields are data of a fixed shape (issue 14): an address, a port,
a user name.  A template or shell payload in one of them refuses the whole file, naming the
host and the field, and stores nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from cloudmgr.cli import main
from cloudmgr.runtime import Runtime
from tests.inventory.test_import import as_yaml, count_systems, host, inventory, problems_of, run_import


def test_attack_pipe_lookup_in_ansible_host_is_refused_naming_host_and_field(seeded: Runtime, tmp_path: Path) -> None:
    marker = tmp_path / "PWNED"
    payload = f"{{{{ lookup('pipe', 'id > {marker}') }}}}"
    file = tmp_path / "legacy.yml"
    file.write_text(as_yaml(inventory({"good-01": host(), "evil-01": host(ansible_host=payload)})), encoding="utf-8")
    env = {"CLOUDMGR_DATABASE_URL": seeded.settings.database_url, "CLOUDMGR_INSTANCE_PATH": str(tmp_path)}
    result = CliRunner().invoke(main, ["inventory", "import", str(file)], env=env)
    assert result.exit_code == 1, result.output
    assert "evil-01: ansible_host must be an IP address or a DNS name" in result.output
    assert "nothing was imported" in result.output
    assert count_systems(seeded) == 0  # all or nothing: the good host is not stored either
    assert not marker.exists()


@pytest.mark.parametrize(
    ("override", "field"),
    [
        ({"ansible_host": "{% for x in range(3) %}10.0.0.{{ x }}{% endfor %}"}, "ansible_host"),
        ({"ansible_host": "$(id)"}, "ansible_host"),
        ({"ansible_host": "10.0.0.1; id"}, "ansible_host"),
        ({"ansible_host": "-oProxyCommand=id"}, "ansible_host"),
        ({"ansible_host": "host_name.example"}, "ansible_host"),  # '_' is not in a DNS name
        ({"ansible_host": "10.0.0.256"}, "ansible_host"),
        ({"ansible_host": "a" * 64 + ".example"}, "ansible_host"),  # a label of 64
        ({"ansible_port": 0}, "ansible_port"),
        ({"ansible_port": 65536}, "ansible_port"),
        ({"ansible_port": "22; id"}, "ansible_port"),
        ({"ansible_port": "{{ 22 }}"}, "ansible_port"),
        ({"ansible_port": True}, "ansible_port"),
        ({"ansible_user": "root; id"}, "ansible_user"),
        ({"ansible_user": "{{ lookup('env', 'HOME') }}"}, "ansible_user"),
        ({"ansible_user": "-oProxyCommand=id"}, "ansible_user"),
        ({"ansible_user": "Root"}, "ansible_user"),
    ],
)
def test_attack_payloads_in_connection_fields_are_refused(
    seeded: Runtime, override: dict[str, Any], field: str
) -> None:
    problems = problems_of(seeded, as_yaml(inventory({"good-01": host(), "evil-01": host(**override)})))
    assert [(h, reason.split(" ")[0]) for h, reason in problems] == [("evil-01", field)], problems
    assert count_systems(seeded) == 0


def test_addresses_ports_and_users_of_the_right_shape_are_imported(seeded: Runtime) -> None:
    hosts = {
        "ip4-01": host(ansible_host="10.21.1.11", ansible_port=22, ansible_user="root"),
        "ip6-01": host(ansible_host="2001:db8::11", ansible_port="2222", ansible_user="deploy_1"),
        "dns-01": host(ansible_host="db01.jyt.gov.cn", ansible_user="_svc-app"),
        "dns-02": host(ansible_host="app-02.example."),
    }
    result = run_import(seeded, as_yaml(inventory(hosts)))
    assert result.created == 4


def test_free_text_fields_keep_template_text_as_data(seeded: Runtime) -> None:
    """Names and contacts are free text (they never reach Ansible, and the wrapper would mark
    them unsafe if they did): stored exactly as written, never evaluated."""
    from sqlalchemy import select

    from cloudmgr.inventory.models import LegacySystem

    payload = "{{ lookup('pipe', 'id') }}"
    run_import(seeded, as_yaml(inventory({"text-01": host(application_system=payload, owner_name="$(id)")})))
    with seeded.db.unit_of_work() as uow:
        system = uow.session.scalars(select(LegacySystem).where(LegacySystem.hostname == "text-01")).one()
        assert system.application_system == payload and system.owner_name == "$(id)"
