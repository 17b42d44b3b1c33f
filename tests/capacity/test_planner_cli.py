"""``cloudmgr plan consolidate`` through click's runner."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from cloudmgr.capacity.planner.cli import plan_group
from cloudmgr.capacity.planner.synthetic import write_synthetic_csv
from cloudmgr.runtime import Runtime

HOST = ["--host-vcpus", "32", "--host-ram-gb", "256", "--host-disk-gb", "2000", "--cpu-ratio", "2"]

GOOD = """name,vcpus,ram_gb,disk_gb,cpu_p95,ram_p95,anti_affinity,department,zone,classification
web-1,4,8,100,0.5,0.6,web,财政厅,internet,non-classified
web-2,4,8,100,,,web,财政厅,internet,non-classified
db-1,16,128,500,0.9,0.9,,财政厅,extranet,
db-2,16,128,500,,,,教育厅,extranet,non-classified
secret-1,8,32,200,,,,公安厅,extranet,classified
app-1,2,4,50,,,,教育厅,,
"""


@pytest.fixture(autouse=True)
def _database(runtime: Runtime) -> Runtime:
    """The command reads the legacy inventory and audits refused rows (issue 14)."""
    return runtime


def run(tmp_path: Path, text: str, *extra: str) -> Result:
    """These plans say explicitly that rows with an empty classification are non-classified
    (the default refuses them as unknown: tests/capacity/test_planner_classification_attacks.py)."""
    path = tmp_path / "servers.csv"
    path.write_text(text, encoding="utf-8")
    return CliRunner().invoke(
        plan_group, ["consolidate", "--servers", str(path), *HOST, "--blank-is-non-classified", *extra]
    )


def test_good_csv_prints_the_plan(tmp_path: Path) -> None:
    result = run(tmp_path, GOOD, "--max-wave", "2")
    assert result.exit_code == 0, result.output
    assert "hosts needed: 4" in result.output  # internet: 2 (anti-affinity), extranet: 2 (128 GB dbs)
    assert "lower bound: 4" in result.output
    assert "secret-1" in result.output and "intranet" in result.output
    assert "wave    1 [教育厅]" in result.output


def test_good_csv_as_json(tmp_path: Path) -> None:
    result = run(tmp_path, GOOD, "--json", "--max-wave", "1")
    assert result.exit_code == 0, result.output
    plan = json.loads(result.output)
    assert plan["hosts_used"] == 4
    assert plan["lower_bound"] == 4
    assert plan["ratio"] == 1.0
    assert set(plan["placements"]) == {"web-1", "web-2", "db-1", "db-2", "app-1"}
    assert plan["placements"]["web-1"] != plan["placements"]["web-2"]  # anti-affinity
    assert [r["name"] for r in plan["refused"]] == ["secret-1"]
    assert plan["refused"][0]["line"] == 6
    assert all(len(w) == 1 for w in plan["waves"])
    assert {h["zone"] for h in plan["hosts"]} == {"internet", "extranet"}
    internet_hosts = {i for i, h in enumerate(plan["hosts"]) if h["zone"] == "internet"}
    assert {plan["placements"]["web-1"], plan["placements"]["web-2"]} <= internet_hosts
    assert plan["hosts"][0]["vcpus_capacity"] == 64
    assert plan["exact"] and all(e["status"] == "optimal" for e in plan["exact"])


def test_right_sizing_uses_p95_with_headroom(tmp_path: Path) -> None:
    # web-1: ceil(4 * 0.5 * 1.25) = 3 vCPUs, ceil(8 * 0.6 * 1.25) = 6 GB
    text = "name,vcpus,ram_gb,disk_gb,cpu_p95,ram_p95\nweb-1,4,8,100,0.5,0.6\nidle,4,8,100,0,0\n"
    result = run(tmp_path, text, "--json")
    assert result.exit_code == 0, result.output
    host = json.loads(result.output)["hosts"][0]
    assert host["vcpus"] == 3 + 1  # idle: never below 1 vCPU
    assert host["ram_gb"] == 6 + 1  # idle: never below 1 GB


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("name,vcpus,ram_gb\na,1,2\n", "line 1: missing column(s) disk_gb"),
        ("", "line 1: the CSV is empty"),
        ("name,vcpus,ram_gb,disk_gb\na,1,2,10\nb,two,2,10\n", "line 3: b: vcpus is not a number: 'two'"),
        ("name,vcpus,ram_gb,disk_gb\na,1,2,10\nb,1,-2,10\n", "line 3: b: ram_gb is negative: '-2'"),
        ("name,vcpus,ram_gb,disk_gb\na,1,2,-10\n", "line 2: a: disk_gb is negative"),
        ("name,vcpus,ram_gb,disk_gb\na,1.5,2,10\n", "line 2: a: vcpus must be a whole number"),
        ("name,vcpus,ram_gb,disk_gb\na,0,2,10\n", "line 2: a: vcpus must be at least 1"),
        ("name,vcpus,ram_gb,disk_gb\na,1,,10\n", "line 2: a: ram_gb is missing"),
        ("name,vcpus,ram_gb,disk_gb\na,1,2,10\na,1,2,10\n", "line 3: duplicate server name 'a' (first on line 2)"),
        ("name,vcpus,ram_gb,disk_gb\n,1,2,10\n", "line 2: empty server name"),
        ("name,vcpus,ram_gb,disk_gb,zone\na,1,2,10,intranet\n", "line 2: a: zone must be 'internet' or 'extranet'"),
        ("name,vcpus,ram_gb,disk_gb,classification\na,1,2,10,secret\n", "line 2: a: classification must be"),
        ("name,vcpus,ram_gb,disk_gb,cpu_p95\na,1,2,10,1.5\n", "line 2: a: cpu_p95 must be a fraction"),
        ("name,vcpus,ram_gb,disk_gb\na,1,2,10\n\nb,1,2,10,extra\n", "line 4: 5 fields but the header has 4"),
        (
            "name,vcpus,ram_gb,disk_gb\na,1,2,10\nbig,8,512,10\n",
            "line 3: big: larger than an empty host: 512 GB RAM > 256",
        ),
        ("name,vcpus,ram_gb,disk_gb\nbig,100,2,10\n", "line 2: big: larger than an empty host: 100 vCPUs > 64"),
        ("name,vcpus,ram_gb,disk_gb\na,1,nan,10\n", "line 2: a: ram_gb is not a finite number"),
    ],
)
def test_bad_csv_names_the_line_and_fails(tmp_path: Path, text: str, expected: str) -> None:
    result = run(tmp_path, text)
    assert result.exit_code != 0
    assert expected in result.output, result.output


def test_many_problems_are_reported_together(tmp_path: Path) -> None:
    rows = "".join(f"s{i},x,2,10\n" for i in range(30))
    result = run(tmp_path, "name,vcpus,ram_gb,disk_gb\n" + rows)
    assert result.exit_code != 0
    assert "line 2: s0: vcpus is not a number" in result.output
    assert "line 21: s19" in result.output
    assert "… and 10 more problems" in result.output


def test_oversized_servers_can_be_reported_instead(tmp_path: Path) -> None:
    text = "name,vcpus,ram_gb,disk_gb\na,1,2,10\nbig,8,512,10\n"
    result = run(tmp_path, text, "--allow-oversized", "--json")
    assert result.exit_code == 0, result.output
    plan = json.loads(result.output)
    assert plan["unplaced"][0]["name"] == "big" and plan["unplaced"][0]["line"] == 3
    assert list(plan["placements"]) == ["a"]


def test_missing_file_and_bad_options(tmp_path: Path) -> None:
    result = CliRunner().invoke(plan_group, ["consolidate", "--servers", str(tmp_path / "none.csv"), *HOST])
    assert result.exit_code != 0 and "no such file" in result.output
    result = run(tmp_path, GOOD, "--max-wave", "0")
    assert result.exit_code != 0
    result = CliRunner().invoke(
        plan_group,
        ["consolidate", "--servers", "x.csv", "--host-vcpus", "0", "--host-ram-gb", "1", "--host-disk-gb", "1"],
    )
    assert result.exit_code != 0


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "servers.csv"
    path.write_bytes("name,vcpus,ram_gb,disk_gb\n财政,1,2,10\n".encode("gbk"))
    result = CliRunner().invoke(plan_group, ["consolidate", "--servers", str(path), *HOST])
    assert result.exit_code != 0 and "not UTF-8" in result.output


def test_synthetic_inventory_end_to_end(tmp_path: Path) -> None:
    path = tmp_path / "inventory.csv"
    write_synthetic_csv(path, 3000, seed=4, with_p95=True)
    args = [
        "consolidate",
        "--servers",
        str(path),
        "--host-vcpus",
        "64",
        "--host-ram-gb",
        "768",
        "--host-disk-gb",
        "7680",
        "--cpu-ratio",
        "4",
        "--json",
        "--no-exact",
    ]
    result = CliRunner().invoke(plan_group, args)
    assert result.exit_code == 0, result.output
    plan = json.loads(result.output)
    assert plan["ratio"] <= 1.05
    assert len(plan["placements"]) + len(plan["refused"]) == 3000
    assert max(len(w) for w in plan["waves"]) <= 50
