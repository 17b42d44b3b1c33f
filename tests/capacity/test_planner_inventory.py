"""Reading inventories: CSV dialects read alike, records and CSV agree, right-sizing."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
import pytest

from cloudmgr.capacity.planner import (
    Classification,
    PlannerInputError,
    ServerRecord,
    Zone,
    demand_of,
    inventory_from_records,
    read_servers_csv,
)
from cloudmgr.capacity.planner.inventory import Inventory

ROWS = [
    [
        "name",
        "vcpus",
        "ram_gb",
        "disk_gb",
        "cpu_p95",
        "ram_p95",
        "anti_affinity",
        "department",
        "zone",
        "classification",
    ],
    ["a", "4", "8", "100", "0.5", "0.6", "g", "财政厅", "internet", "non-classified"],
    ["b", "2", "0.5", "0", "", "", "g", "", "", ""],
    ["c", "16", "128", "2000", "1", "0", "", "教育厅", "extranet", "classified"],
]


def same(x: Inventory, y: Inventory) -> None:
    assert x.names == y.names
    assert np.array_equal(x.demand, y.demand)
    assert np.array_equal(x.group, y.group) and x.group_names == y.group_names
    assert np.array_equal(x.department, y.department) and x.department_names == y.department_names
    assert np.array_equal(x.zone, y.zone)
    assert np.array_equal(x.classified, y.classified)


def write(path: Path, rows: list[list[str]], **fmt: object) -> Path:
    with open(path, "w", encoding="utf-8", newline="") as fh:
        csv.writer(fh, **fmt).writerows(rows)  # type: ignore[arg-type]
    return path


def test_dialects_read_alike(tmp_path: Path) -> None:
    plain = read_servers_csv(write(tmp_path / "plain.csv", ROWS, lineterminator="\n"))
    assert plain.lines.tolist() == [2, 3, 4]
    crlf = read_servers_csv(write(tmp_path / "crlf.csv", ROWS, lineterminator="\r\n"))
    quoted = read_servers_csv(write(tmp_path / "quoted.csv", ROWS, quoting=csv.QUOTE_ALL))
    bom = tmp_path / "bom.csv"
    bom.write_bytes(b"\xef\xbb\xbf" + (tmp_path / "plain.csv").read_bytes())
    blank = tmp_path / "blank.csv"
    blank.write_text(
        "\n".join(",".join(r) for r in ROWS[:2]) + "\n\n  \n" + ",".join(ROWS[2]) + "\n" + ",".join(ROWS[3])
    )
    # upper case and spaces go through the row-by-row reader: accepted all the same
    loose = tmp_path / "loose.csv"
    loose.write_text(
        "\n".join(",".join(r) for r in ROWS).replace("internet", " Internet ").replace(",classified", ",CLASSIFIED")
    )
    for other in (crlf, quoted, read_servers_csv(bom), read_servers_csv(blank), read_servers_csv(loose)):
        same(plain, other)
    assert read_servers_csv(blank).lines.tolist() == [2, 5, 6]
    assert plain.demand.tolist() == [[3, 6 * 1024, 100 * 1024], [2, 512, 0], [16, 1024, 2000 * 1024]]
    assert plain.department_names == ["教育厅", "财政厅", "(none)"] or plain.department_names[-1] == "(none)"
    assert plain.zone.tolist() == [0, 1, 1] and plain.classified.tolist() == [False, False, True]


def test_quoted_names_with_commas(tmp_path: Path) -> None:
    rows = [ROWS[0], ["web, front", *ROWS[1][1:]]]
    inv = read_servers_csv(write(tmp_path / "q.csv", rows))
    assert inv.names == ["web, front"]


def test_records_and_csv_agree(tmp_path: Path) -> None:
    records = [
        ServerRecord("a", 4, 8, 100, 0.5, 0.6, "g", "财政厅", Zone.INTERNET),
        ServerRecord("b", 2, 0.5, 0, anti_affinity="g"),
        ServerRecord("c", 16, 128, 2000, 1.0, 0.0, None, "教育厅", Zone.EXTRANET, Classification.CLASSIFIED),
    ]
    from_records = inventory_from_records(records)
    same(read_servers_csv(write(tmp_path / "plain.csv", ROWS)), from_records)
    assert [tuple(int(x) for x in row) for row in from_records.demand] == [demand_of(r) for r in records]


def test_record_problems_name_the_server() -> None:
    with pytest.raises(PlannerInputError) as err:
        inventory_from_records([ServerRecord("x", 0, 1, 1), ServerRecord("y", 1, -1, 1), ServerRecord("y", 1, 1, 1)])
    assert err.value.problems == [
        "x: vcpus must be at least 1, got 0",
        "y: ram_gb is negative: -1",
        "duplicate server name 'y'",
    ]


def test_text_stream_is_accepted() -> None:
    inv = read_servers_csv(io.StringIO("name,vcpus,ram_gb,disk_gb\nsolo,1,1,1\n"))
    assert inv.names == ["solo"] and inv.zone.tolist() == [1]
    inv = read_servers_csv(io.StringIO("name,vcpus,ram_gb,disk_gb\nsolo,1,1,1\n"), default_zone=Zone.INTERNET)
    assert inv.zone.tolist() == [0]


def test_both_spellings_of_non_classified_read_as_the_inventory_classification(tmp_path: Path) -> None:
    """One Classification enum (the inventory's, ``non_classified``); the CSV also takes what
    planners type, ``non-classified``, in any case and padded, on the fast and the slow path."""
    from cloudmgr.capacity.planner.model import as_record, parse_classification
    from cloudmgr.inventory.models import Classification as InventoryClassification

    assert Classification is InventoryClassification
    assert parse_classification(" Non-Classified ") is Classification.NON_CLASSIFIED
    assert parse_classification("non_classified") is Classification.NON_CLASSIFIED
    assert parse_classification("CLASSIFIED") is Classification.CLASSIFIED
    with pytest.raises(ValueError, match="classification must be"):
        parse_classification("secret")
    record = as_record({"name": "a", "vcpus": 1, "ram_gb": 1, "disk_gb": 1, "classification": "non-classified"})
    assert record.classification is Classification.NON_CLASSIFIED
    header = ["name", "vcpus", "ram_gb", "disk_gb", "classification"]
    exact = [
        header,
        ["a", "1", "1", "1", "non-classified"],
        ["b", "1", "1", "1", "non_classified"],
        ["c", "1", "1", "1", "classified"],
    ]
    padded = [
        header,
        ["a", "1", "1", "1", " Non-Classified"],
        ["b", "1", "1", "1", "NON_CLASSIFIED "],
        ["c", "1", "1", "1", "Classified"],
    ]
    for rows in (exact, padded):
        inventory = read_servers_csv(write(tmp_path / "c.csv", rows))
        assert inventory.classified.tolist() == [False, False, True]
        assert inventory.classification_blank.tolist() == [False, False, False]
