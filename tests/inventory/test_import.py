"""Importing the inventory: the sample, every kind of bad input, all or nothing, re-import, CSV."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from sqlalchemy import func, select

from cloudmgr.audit.models import AuditEvent
from cloudmgr.cli import main
from cloudmgr.inventory.errors import InventoryInvalid
from cloudmgr.inventory.importer import import_inventory
from cloudmgr.inventory.inventory_file import COLUMNS
from cloudmgr.inventory.models import LegacySystem, ServerRoom
from cloudmgr.inventory.services import transition_system
from cloudmgr.organisation.actor import Actor
from cloudmgr.organisation.models import Role
from cloudmgr.runtime import Runtime

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "inventory" / "legacy.yml"


def host(**overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "ansible_host": "10.9.0.1",
        "application_system": "测试系统",
        "classification": "non_classified",
        "network": "extranet",
        "os_family": "linux",
        "os_name": "CentOS",
        "os_version": "7.9",
        "vcpus": 4,
        "ram_mb": 8192,
        "disk_gb": 100,
        "data_gb": 10,
        "cpu_p95_pct": 20,
        "ram_p95_pct": 40,
        "dependencies": [],
        "owner_name": "张伟",
        "owner_contact": "0311-87001234",
    }
    values.update(overrides)
    return values


def inventory(hosts: dict[str, dict[str, Any]], *, dept: str = "prov-education", room: str = "") -> dict[str, Any]:
    group = dept.replace("-", "_")
    return {
        "all": {
            "children": {
                f"dept_{group}": {
                    "vars": {"department": dept},
                    "children": {
                        f"room_{group}_9": {
                            "vars": {"server_room": room or f"{dept}-room-9", "server_room_name_zh": "测试机房"},
                            "hosts": hosts,
                        }
                    },
                }
            }
        }
    }


def as_yaml(data: dict[str, Any]) -> str:
    return yaml.safe_dump(data, allow_unicode=True)


def run_import(runtime: Runtime, text: str, filename: str = "test.yml", actor: str = "ops") -> Any:
    with runtime.db.unit_of_work() as uow:
        return import_inventory(uow.session, text, filename=filename, actor=Actor(actor, Role.OPERATOR))


def count_systems(runtime: Runtime) -> int:
    with runtime.db.unit_of_work() as uow:
        return uow.session.scalar(select(func.count(LegacySystem.id))) or 0


def problems_of(runtime: Runtime, text: str, filename: str = "test.yml") -> list[tuple[str, str]]:
    with pytest.raises(InventoryInvalid) as caught:
        run_import(runtime, text, filename)
    return caught.value.problems


# --- the sample -------------------------------------------------------------------------------


def test_ansible_parses_the_sample_inventory() -> None:
    binary = Path(sys.executable).with_name("ansible-inventory")
    result = subprocess.run(
        [str(binary), "-i", str(SAMPLE), "--list"], capture_output=True, text=True, timeout=120, check=True
    )
    hostvars = json.loads(result.stdout)["_meta"]["hostvars"]
    assert 40 <= len(hostvars) <= 60
    assert hostvars["jyt-exam-paper01"]["classification"] == "classified"
    assert hostvars["jyt-exam-paper01"]["department"] == "prov-education"
    assert "[WARNING]" not in result.stderr


def test_sample_imports_with_classified_systems_out_of_scope(seeded: Runtime) -> None:
    result = run_import(seeded, SAMPLE.read_text(encoding="utf-8"), "legacy.yml")
    assert result.created == result.total == count_systems(seeded)
    assert 40 <= result.total <= 60
    with seeded.db.unit_of_work() as uow:
        systems = {s.hostname: s for s in uow.session.scalars(select(LegacySystem))}
        classified = {h for h, s in systems.items() if s.classification == "classified"}
        assert classified and all(systems[h].state == "intranet" for h in classified)
        assert {s.state for h, s in systems.items() if h not in classified} == {"legacy"}
        assert any(s.os_family == "windows" for s in systems.values())
        assert any(s.dependencies for s in systems.values())
        levels = {s.department.level for s in systems.values()}
        assert levels == {"province", "city", "county"}
        room = uow.session.scalars(select(ServerRoom).where(ServerRoom.code == "prov-education-room-2")).one()
        assert room.name_zh == "省教育考试院机房" and room.department.key == "prov-education"
        assert all(s.complexity_score > 0 and s.complexity_reasons for s in systems.values())


# --- bad input ----------------------------------------------------------------------------------

BAD_HOSTS: list[tuple[dict[str, Any], str]] = [
    ({"classification": "secret"}, "classification 'secret' is not one of"),
    ({"network": "lan"}, "network 'lan' is not one of"),
    ({"os_family": "beos"}, "os_family 'beos' is not one of"),
    ({"vcpus": 0}, "vcpus must be positive"),
    ({"ram_mb": -1024}, "ram_mb must be positive"),
    ({"disk_gb": "lots"}, "disk_gb must be a whole number"),
    ({"data_gb": -1}, "data_gb must be at least 0"),
    ({"vcpus": 2.5}, "vcpus must be a whole number"),
    ({"cpu_p95_pct": 101}, "cpu_p95_pct must be between 0 and 100"),
    ({"ram_p95_pct": -3}, "ram_p95_pct must be between 0 and 100"),
    ({"ram_p95_pct": "high"}, "ram_p95_pct must be a number"),
    ({"dependencies": ["ghost-01"]}, "depends on unknown host 'ghost-01'"),
    ({"dependencies": ["bad-01"]}, "cannot depend on itself"),
    ({"dependencies": "good-01"}, "dependencies must be a list"),
    ({"classification": "classified", "network": "internet"}, "a classified system cannot be on the internet"),
    ({"classification": "classified", "network": "extranet"}, "a classified system cannot be on the extranet"),
    ({"owner_name": None}, "owner_name is missing"),
    ({"application_system": ""}, "application_system is missing"),
    ({"os_name": "x" * 65}, "os_name is longer than 64"),
    ({"due_date": "next year"}, "due_date 'next year' is not a date"),
    ({"department": "prov-nowhere"}, "unknown department 'prov-nowhere'"),
    ({"server_room": "Room 1!"}, "server_room 'Room 1!' must be"),
]


def test_each_kind_of_bad_host_is_reported_and_nothing_is_imported(seeded: Runtime) -> None:
    for override, reason in BAD_HOSTS:
        text = as_yaml(inventory({"good-01": host(), "bad-01": host(**override)}))
        problems = problems_of(seeded, text)
        assert [h for h, _ in problems] == ["bad-01"], (override, problems)
        assert reason in problems[0][1], (override, problems)
    assert count_systems(seeded) == 0
    # every problem of every host is listed
    text = as_yaml(
        inventory(
            {
                "bad-01": host(vcpus=0, cpu_p95_pct=300),
                "bad-02": host(classification="classified", network="internet"),
                "good-01": host(),
            }
        )
    )
    problems = problems_of(seeded, text)
    assert sorted(h for h, _ in problems) == ["bad-01", "bad-01", "bad-02"]
    assert count_systems(seeded) == 0


def test_structural_problems(seeded: Runtime) -> None:
    assert "not valid YAML" in problems_of(seeded, "all: [unclosed")[0][1]
    assert problems_of(seeded, "all: " + "[" * 5000 + "]" * 5000)[0][0] == "(file)"  # deep nesting: no crash
    assert "starts with an 'all' group" in problems_of(seeded, "hosts: {}\n")[0][1]
    assert problems_of(seeded, "all:\n  children: {}\n") == [("(file)", "no hosts in the inventory")]
    twice = inventory({"dup-01": host()})
    twice["all"]["children"]["dept_prov_hrss"] = inventory({"dup-01": host()}, dept="prov-hrss")["all"]["children"][
        "dept_prov_hrss"
    ]
    [(hostname, reason)] = problems_of(seeded, as_yaml(twice))
    assert hostname == "dup-01" and "duplicate hostname" in reason
    same_group_twice = "all:\n  hosts:\n    a-01: {}\n    a-01: {}\n"
    assert "duplicate key 'a-01'" in problems_of(seeded, same_group_twice)[0][1]
    other_department_room = inventory({"room-01": host()}, dept="prov-hrss", room="prov-education-room-9")
    merged = inventory({"room-02": host()})
    merged["all"]["children"].update(other_department_room["all"]["children"])
    problems = problems_of(seeded, as_yaml(merged))
    assert any("belongs to department" in reason for _, reason in problems)
    assert count_systems(seeded) == 0
    # a room of another department in the database
    run_import(seeded, as_yaml(inventory({"edu-01": host()})))
    problems = problems_of(
        seeded, as_yaml(inventory({"hr-01": host()}, dept="prov-hrss", room="prov-education-room-9"))
    )
    assert problems == [("hr-01", "server room prov-education-room-9 already belongs to another department")]


# --- re-import -----------------------------------------------------------------------------------


def test_reimport_updates_in_place_and_keeps_states(seeded: Runtime) -> None:
    first = run_import(seeded, as_yaml(inventory({"a-01": host(), "b-01": host(), "c-01": host()})))
    assert first.created == 3
    with seeded.db.unit_of_work() as uow:
        ids = dict(uow.session.execute(select(LegacySystem.hostname, LegacySystem.id)).tuples().all())
        b = uow.session.get(LegacySystem, ids["b-01"])
        assert b is not None
        transition_system(uow.session, b, "planned", actor=Actor("ops", Role.OPERATOR), reason="wave 1")
    again = run_import(
        seeded,
        as_yaml(
            inventory(
                {
                    "a-01": host(vcpus=8, dependencies=["c-01"]),
                    "b-01": host(ram_mb=16384),
                    "c-01": host(),
                    "d-01": host(classification="classified", network="intranet"),
                }
            )
        ),
    )
    assert (again.created, again.updated, again.unchanged, again.out_of_scope) == (1, 2, 1, 1)
    with seeded.db.unit_of_work() as uow:
        rows = {s.hostname: s for s in uow.session.scalars(select(LegacySystem))}
        assert {h: s.id for h, s in rows.items() if h in ids} == ids
        assert rows["a-01"].vcpus == 8 and rows["a-01"].dependencies == ["c-01"]
        assert rows["b-01"].state == "planned" and rows["b-01"].ram_mb == 16384
        assert rows["d-01"].state == "intranet"
        assert any(r["code"] == "dependants" for r in rows["c-01"].complexity_reasons)
        updated = uow.session.scalars(
            select(AuditEvent).where(
                AuditEvent.action == "legacy_system.updated", AuditEvent.target_id == str(ids["a-01"])
            )
        ).one()
        assert updated.detail["changed"] == ["dependencies", "vcpus"]


def test_reclassification_moves_systems_in_and_out_of_scope(seeded: Runtime) -> None:
    run_import(seeded, as_yaml(inventory({"a-01": host(), "b-01": host(), "m-01": host()})))
    with seeded.db.unit_of_work() as uow:
        b = uow.session.scalars(select(LegacySystem).where(LegacySystem.hostname == "b-01")).one()
        m = uow.session.scalars(select(LegacySystem).where(LegacySystem.hostname == "m-01")).one()
        transition_system(uow.session, b, "planned", actor=Actor("ops", Role.OPERATOR), reason=None)
        transition_system(uow.session, m, "planned", actor=Actor("ops", Role.OPERATOR), reason=None)
        transition_system(uow.session, m, "migrating", actor=Actor("ops", Role.OPERATOR), reason=None)
    secret = {"classification": "classified", "network": "intranet"}
    # issue 14: classifying is never refused (the safe direction), even while migrating; the
    # migration's next work item refuses it (and servers on the cloud would raise an alert)
    run_import(seeded, as_yaml(inventory({"a-01": host(**secret), "b-01": host(**secret), "m-01": host(**secret)})))
    with seeded.db.unit_of_work() as uow:
        rows = uow.session.execute(select(LegacySystem.hostname, LegacySystem.state, LegacySystem.classification))
        states = {host: (state, cls) for host, state, cls in rows.tuples().all()}
    assert states == {
        "a-01": ("intranet", "classified"),
        "b-01": ("intranet", "classified"),
        "m-01": ("migrating", "classified"),
    }
    # issue 14: declassifying through a re-import is held for an administrator's approval
    held = run_import(seeded, as_yaml(inventory({"a-01": host(), "b-01": host(**secret), "m-01": host(**secret)})))
    assert (held.declassifications_held, held.held_hosts) == (1, ["a-01"])
    with seeded.db.unit_of_work() as uow:
        assert uow.session.scalar(select(LegacySystem.state).where(LegacySystem.hostname == "a-01")) == "intranet"


# --- CSV ----------------------------------------------------------------------------------------------


def _csv(rows: list[dict[str, Any]]) -> str:
    lines = [",".join(COLUMNS)]
    for row in rows:
        lines.append(",".join(str(row.get(c, "")) for c in COLUMNS))
    return "\n".join(lines) + "\n"


def _csv_row(hostname: str, **overrides: Any) -> dict[str, Any]:
    row = {**host(), "hostname": hostname, "department": "ts-hrss", "server_room": "ts-hrss-room-1"}
    row["dependencies"] = " ".join(row["dependencies"])
    row.update(overrides)
    return row


def test_csv_import_and_its_errors_with_line_numbers(seeded: Runtime) -> None:
    good = _csv([_csv_row("hr-01"), _csv_row("hr-02", dependencies="hr-01", os_family="windows")])
    result = run_import(seeded, good, "inventory.csv")
    assert result.created == 2 and result.rooms_created == 1
    with seeded.db.unit_of_work() as uow:
        hr02 = uow.session.scalars(select(LegacySystem).where(LegacySystem.hostname == "hr-02")).one()
        assert hr02.dependencies == ["hr-01"] and hr02.server_room.name_zh == "唐山市人力资源和社会保障局机房"
    bad = _csv([_csv_row("hr-03"), _csv_row("hr-03"), _csv_row("hr-04", cpu_p95_pct="x")])
    problems = problems_of(seeded, bad, "inventory.csv")
    assert problems == [
        ("hr-03", "line 3: duplicate hostname (first on line 2)"),
        ("hr-04", "line 4: cpu_p95_pct must be a number, not 'x'"),
    ]
    assert "not valid CSV" in problems_of(seeded, good.replace("测试系统", "x" * 200_000, 1), "inventory.csv")[0][1]
    nul = problems_of(seeded, good.replace("测试系统", "a\x00b", 1), "inventory.csv")
    assert nul == [("hr-01", "line 2: application_system contains a NUL character")]
    header = problems_of(seeded, "hostname,color\nx,red\n", "inventory.csv")
    assert header[0][0] == "(header)" and "missing columns" in header[0][1]
    assert count_systems(seeded) == 2


# --- the CLI ----------------------------------------------------------------------------------------


def test_cli_import_list_show_and_bad_file(seeded: Runtime, tmp_path: Path) -> None:
    runner = CliRunner()
    env = {"CLOUDMGR_DATABASE_URL": seeded.settings.database_url, "CLOUDMGR_INSTANCE_PATH": str(tmp_path)}
    bad = tmp_path / "bad.yml"
    bad.write_text(as_yaml(inventory({"bad-01": host(vcpus=0), "bad-02": host(network="lan")})), encoding="utf-8")
    result = runner.invoke(main, ["inventory", "import", str(bad)], env=env)
    assert result.exit_code == 1
    assert "bad-01: vcpus must be positive, not 0" in result.output
    assert "bad-02: network 'lan' is not one of" in result.output
    assert "nothing was imported" in result.output
    assert count_systems(seeded) == 0
    result = runner.invoke(main, ["inventory", "import", str(SAMPLE)], env=env)
    assert result.exit_code == 0, result.output
    assert "0 updated" in result.output
    result = runner.invoke(main, ["inventory", "list", "--department", "prov-finance"], env=env)
    assert result.exit_code == 0, result.output
    assert "czt-hexin-db01" in result.output.split("classified / intranet")[1]
    result = runner.invoke(main, ["inventory", "show", "jyt-gaokao-db01"], env=env)
    assert result.exit_code == 0, result.output
    assert "windows_drivers" in result.output and "used by      jyt-gaokao-web01" in result.output
    result = runner.invoke(main, ["inventory", "show", "nope"], env=env)
    assert result.exit_code == 1 and "no legacy system" in result.output
