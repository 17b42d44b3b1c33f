"""Every value the wrapper hands to Ansible is data, never a template (issue 14).

Real ansible-runner against localhost: a playbook writes the variables it was given to a
file; the file must hold them as literal text and no payload may have run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from cloudmgr.automation import UnsafeAnsibleInput, local_host_vars, run_playbook
from cloudmgr.automation.runner import extravars_yaml, inventory_yaml

ECHO_PLAYBOOK = """\
- name: Write what was given
  hosts: all
  gather_facts: false
  tasks:
    - name: Given values, as Ansible sees them
      ansible.builtin.copy:
        dest: "{{ out_file }}"
        content: >-
          {{ {'host': host_value, 'extra': extra_value, 'nested': nested, 'name': inventory_hostname} | to_json }}
        mode: "0600"
"""


def payloads(markers: Path) -> dict[str, str]:
    """Template and shell payloads; each would create its own file under ``markers`` if run."""
    return {
        "pipe": f"{{{{ lookup('pipe', 'touch {markers}/pipe') }}}}",
        "statement": f"{{% set x = lookup('pipe', 'touch {markers}/statement') %}}{{{{ x }}}}",
        "arithmetic": "{{ 7*7 }}",
        "subshell": f"$(touch {markers}/subshell)",
        "separator": f"; touch {markers}/separator",
    }


@pytest.fixture
def playbooks(tmp_path: Path) -> Path:
    directory = tmp_path / "playbooks"
    directory.mkdir()
    (directory / "echo.yml").write_text(ECHO_PLAYBOOK)
    return directory


def test_attack_templates_in_host_vars_and_extravars_arrive_as_literal_text(tmp_path: Path, playbooks: Path) -> None:
    markers = tmp_path / "markers"
    markers.mkdir()
    values = payloads(markers)
    out_file = tmp_path / "given.json"
    for name, payload in values.items():
        inventory = {
            "all": {
                "hosts": {"localhost": {**local_host_vars(), "host_value": payload}},
                "vars": {"nested": {"list": [payload], "map": {"key": payload}}},
            }
        }
        result = run_playbook(
            "echo.yml",
            inventory=inventory,
            artifacts_root=tmp_path / "runs",
            extravars={"extra_value": payload, "out_file": str(out_file)},
            playbooks_dir=playbooks,
        )
        assert result.ok, (name, result)
        given = json.loads(out_file.read_text())
        assert given == {
            "host": payload,
            "extra": payload,
            "nested": {"list": [payload], "map": {"key": payload}},
            "name": "localhost",
        }, name
    assert list(markers.iterdir()) == []
    assert json.loads(out_file.read_text())["extra"] == "; touch " + str(markers / "separator")


def test_an_extravar_7_times_7_stays_the_text_not_49(tmp_path: Path, playbooks: Path) -> None:
    out_file = tmp_path / "given.json"
    result = run_playbook(
        "echo.yml",
        inventory={"all": {"hosts": {"localhost": {**local_host_vars(), "host_value": "{{ 6*7 }}"}}}},
        artifacts_root=tmp_path / "runs",
        extravars={"extra_value": "{{ 7*7 }}", "nested": [], "out_file": str(out_file)},
        playbooks_dir=playbooks,
    )
    assert result.ok, result
    given = json.loads(out_file.read_text())
    assert given["extra"] == "{{ 7*7 }}" and given["host"] == "{{ 6*7 }}"


@pytest.mark.parametrize(
    "inventory",
    [
        {"all": {"hosts": {"{{ lookup('pipe', 'id') }}": {}}}},
        {"all": {"hosts": {"web[1:3]": {}}}},
        {"all": {"children": {"{% if true %}g{% endif %}": {"hosts": {"a": {}}}}}},
        {"all": {"hosts": {"a": {"{{ x }}": "y"}}}},
        {"all": {"hosts": {"a": {"valid": {"{{ key }}": "y"}}}}},
        {"all": {"hosts": {"a": {"valid": object()}}}},
        {"all": {"surprise": {}}},
    ],
)
def test_attack_names_that_could_be_templates_are_refused_before_anything_runs(
    tmp_path: Path, playbooks: Path, inventory: dict[str, object]
) -> None:
    with pytest.raises(UnsafeAnsibleInput):
        run_playbook("echo.yml", inventory=inventory, artifacts_root=tmp_path / "runs", playbooks_dir=playbooks)
    assert not (tmp_path / "runs").exists()  # nothing written, nothing run


def test_attack_a_template_as_an_extra_var_name_or_limit_is_refused(tmp_path: Path, playbooks: Path) -> None:
    inventory = {"all": {"hosts": {"localhost": local_host_vars()}}}
    with pytest.raises(UnsafeAnsibleInput, match="variable of extra vars"):
        run_playbook(
            "echo.yml",
            inventory=inventory,
            artifacts_root=tmp_path / "runs",
            extravars={"{{ lookup('pipe', 'id') }}": 1},
            playbooks_dir=playbooks,
        )
    with pytest.raises(UnsafeAnsibleInput, match="limit"):
        run_playbook(
            "echo.yml", inventory=inventory, artifacts_root=tmp_path / "runs", limit="{{ x }}", playbooks_dir=playbooks
        )
    assert not (tmp_path / "runs").exists()


def test_every_string_is_written_unsafe_and_other_scalars_keep_their_type() -> None:
    text = inventory_yaml(
        {"all": {"hosts": {"h1": {"a": "x", "n": 3, "b": True, "none": None, "l": ["y", 2]}}, "vars": {"v": "z"}}}
    )
    assert text.count("!unsafe") == 3  # x, y and z; never the numbers, booleans, nulls or names
    for line in text.splitlines():
        if any(marker in line for marker in ("'x'", "'y'", "'z'")):
            assert "!unsafe" in line
    extravars = extravars_yaml({"port": 8080, "path": "/srv/app"})
    assert "port: 8080" in extravars and "path: !unsafe '/srv/app'" in extravars

    class Tolerant(yaml.SafeLoader):  # reads the tag back as plain text
        pass

    Tolerant.add_constructor("!unsafe", lambda loader, node: loader.construct_scalar(node))
    assert yaml.load(extravars, Loader=Tolerant) == {"port": 8080, "path": "/srv/app"}
