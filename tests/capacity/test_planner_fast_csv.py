"""The fast CSV reader takes plain files and gives the general reader's inventory; every other
file, hostile or merely unusual, goes to the general reader, which names each problem's line."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest

from cloudmgr.capacity.planner import PlannerInputError, Zone, fast_csv, inventory, read_servers_csv
from cloudmgr.capacity.planner.inventory import Inventory
from cloudmgr.capacity.planner.synthetic import write_synthetic_csv

HEADER = "name,vcpus,ram_gb,disk_gb,cpu_p95,ram_p95,anti_affinity,department,zone,classification\n"
PLAIN = HEADER + (
    "a,4,8,100,0.5,0.6,g,财政厅,internet,non-classified\n"
    "b,2,0.5,0,,,g,,,\n"
    "c,16,128,2000,1,0,,教育厅,extranet,classified\n"
    "d,1,.25,3.,,0.125, g ,教育厅 ,Internet,NON_classified\n"
    "e,8,16,40,0.05,,h,, extranet ,\n"
)


def read_fast(path: Path, headroom: float, zone: Zone) -> Inventory | None:
    """The inventory read_servers_csv makes of a file the fast reader takes; None when the fast
    reader leaves the file to the general reader."""
    taken = fast_csv.read_fast(
        path,
        header_columns=inventory.header_columns,
        zone_codes=inventory.ZONE_CODES,
        default_zone=zone.value,
        no_department=inventory.NO_DEPARTMENT,
    )
    return None if taken is None else read_servers_csv(path, headroom=headroom, default_zone=zone)


def general(text: str, default_zone: Zone = Zone.EXTRANET) -> Inventory:
    return read_servers_csv(io.StringIO(text, newline=""), default_zone=default_zone)


def same(x: Inventory, y: Inventory) -> None:
    for field in Inventory.__slots__:
        a, b = getattr(x, field), getattr(y, field)
        if isinstance(a, np.ndarray):
            assert a.dtype == b.dtype and np.array_equal(a, b, equal_nan=a.dtype.kind == "f"), field
        else:
            assert a == b, field


def file(tmp_path: Path, text: str | bytes) -> Path:
    path = tmp_path / "servers.csv"
    if isinstance(text, str):
        path.write_text(text, encoding="utf-8", newline="")
    else:
        path.write_bytes(text)
    return path


@pytest.mark.parametrize("zone", [Zone.EXTRANET, Zone.INTERNET])
def test_plain_file_reads_as_the_general_reader_reads_it(tmp_path: Path, zone: Zone) -> None:
    fast = read_fast(file(tmp_path, PLAIN), 1.25, zone)
    assert fast is not None
    same(fast, general(PLAIN, zone))
    assert fast.lines.tolist() == [2, 3, 4, 5, 6]
    assert fast.group_names == ["g", "h"] and fast.group.tolist() == [0, 0, -1, 0, 1]
    assert fast.department_names == ["教育厅", "财政厅", "(none)"]


def test_bom_missing_last_line_break_and_few_columns(tmp_path: Path) -> None:
    text = "vcpus,name,disk_gb,ram_gb,extra\n2,x,10,4,zz\n3,y,0,1.5,\n"
    fast = read_fast(file(tmp_path, b"\xef\xbb\xbf" + text.rstrip("\n").encode()), 1.25, Zone.EXTRANET)
    assert fast is not None
    same(fast, general(text))
    assert fast.names == ["x", "y"] and fast.department_names == ["(none)"]


def test_spreadsheet_line_ends_are_read_alike(tmp_path: Path) -> None:
    text = PLAIN.replace("\n", "\r\n")
    fast = read_fast(file(tmp_path, text), 1.25, Zone.EXTRANET)
    assert fast is not None
    same(fast, general(PLAIN))
    same(fast, general(text))
    no_last_break = text[:-2]
    fast = read_fast(file(tmp_path, no_last_break), 1.25, Zone.EXTRANET)
    assert fast is not None
    same(fast, general(PLAIN))


def test_padded_names_are_stripped_and_still_distinct(tmp_path: Path) -> None:
    text = HEADER + " a ,1,2,3,,,,,,\n\u3000b\u3000,1,2,3,,,,,,\n"
    fast = read_fast(file(tmp_path, text), 1.25, Zone.EXTRANET)
    assert fast is not None and fast.names == ["a", "b"]
    same(fast, general(text))
    padded_twin = text + "a,1,2,3,,,,,,\n"
    assert read_fast(file(tmp_path, padded_twin), 1.25, Zone.EXTRANET) is None
    with pytest.raises(PlannerInputError, match="line 4: duplicate server name 'a'"):
        read_servers_csv(file(tmp_path, padded_twin))


def test_synthetic_inventory_reads_alike(tmp_path: Path) -> None:
    path = tmp_path / "inventory.csv"
    write_synthetic_csv(path, 3000, seed=5, with_p95=True)
    fast = read_fast(path, 1.25, Zone.EXTRANET)
    assert fast is not None
    same(fast, general(path.read_text(encoding="utf-8")))


@pytest.mark.parametrize(
    "text",
    [
        HEADER + "a,1,2,3,,,,,,\rb,1,2,3,,,,,,\n",  # a lone carriage return (a line break to the csv module)
        HEADER + "a,1,2,3,,,,,,\r",  # a carriage return at the very end
        HEADER + '"a, b",1,2,3,,,,,,\n',  # quotes
        HEADER + "a,1,2,3,,,,,,\n\nb,1,2,3,,,,,,\n",  # a blank line
        HEADER + "a,1,2,3,,,,,,,\n",  # a trailing empty field
        HEADER + "a,1,2e1,3,,,,,,\n",  # an exponent
        HEADER + "a, 1,2,3,,,,,,\n",  # a padded number
        HEADER + "a,1,2,3,,,,,\n",  # a field short (the missing one is empty)
        HEADER + "a,1,1234567890123456,3,,,,,,\n",  # more digits than a double holds exactly
    ],
)
def test_unusual_but_valid_files_go_to_the_general_reader(tmp_path: Path, text: str) -> None:
    assert read_fast(file(tmp_path, text), 1.25, Zone.EXTRANET) is None
    same(read_servers_csv(file(tmp_path, text)), general(text))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (HEADER + "a,1,2,3,,,,,,\na,1,2,3,,,,,,\n", "line 3: duplicate server name 'a' (first on line 2)"),
        (HEADER + "a,1,2,3,,,,,,\n ,1,2,3,,,,,,\n", "line 3: empty server name"),
        (HEADER + "a,0,2,3,,,,,,\n", "line 2: a: vcpus must be at least 1"),
        (HEADER + "a,1.5,2,3,,,,,,\n", "line 2: a: vcpus must be a whole number"),
        (HEADER + "a,1,0,3,,,,,,\n", "line 2: a: ram_gb must be greater than 0"),
        (HEADER + "a,1,2,-3,,,,,,\n", "line 2: a: disk_gb is negative"),
        (HEADER + "a,1,2,,,,,,,\n", "line 2: a: disk_gb is missing"),
        (HEADER + "a,1,2,3,1.01,,,,,\n", "line 2: a: cpu_p95 must be a fraction between 0 and 1"),
        (HEADER + "a,1,2,3,,,,,dmz,\n", "line 2: a: zone must be 'internet' or 'extranet'"),
        (HEADER + "a,1,2,3,,,,,,secret\n", "line 2: a: classification must be"),
        (HEADER + "a,1,2,3,,,,,,,x\n", "line 2: 11 fields but the header has 10"),
        (HEADER + "a\u202e,1,2,3,,,,,,\n", "line 2: "),
        (HEADER + "a,1,2,3,,,,\u061c财政厅,,\n", "line 2: "),
        ("name,vcpus,ram_gb\na,1,2\n", "line 1: missing column(s) disk_gb"),
        ("name,vcpus,ram_gb,disk_gb,name\na,1,2,3,b\n", "line 1: duplicate column(s) name"),
    ],
)
def test_hostile_files_get_the_general_readers_errors_with_line_numbers(
    tmp_path: Path, text: str, expected: str
) -> None:
    path = file(tmp_path, text)
    with pytest.raises(PlannerInputError) as err:
        read_servers_csv(path)
    assert expected in "\n".join(err.value.problems)
    with pytest.raises(PlannerInputError) as again:
        general(text)
    assert again.value.problems == err.value.problems


def test_bidi_controls_in_the_file_are_named(tmp_path: Path) -> None:
    path = file(tmp_path, HEADER + "ok,1,2,3,,,,,,\nevil\u202egpj.exe,1,2,3,,,,,,\n")
    with pytest.raises(PlannerInputError) as err:
        read_servers_csv(path)
    assert err.value.problems[0].startswith("line 3: ") and "U+202E" in err.value.problems[0]


def test_not_utf8_is_left_to_the_general_reader(tmp_path: Path) -> None:
    path = file(tmp_path, "name,vcpus,ram_gb,disk_gb\n财政,1,2,10\n".encode("gbk"))
    assert read_fast(path, 1.25, Zone.EXTRANET) is None
    with pytest.raises(UnicodeDecodeError):
        read_servers_csv(path)


def test_empty_and_header_only_files(tmp_path: Path) -> None:
    assert read_fast(file(tmp_path, ""), 1.25, Zone.EXTRANET) is None
    with pytest.raises(PlannerInputError, match="line 1: the CSV is empty"):
        read_servers_csv(file(tmp_path, ""))
    assert len(read_servers_csv(file(tmp_path, "name,vcpus,ram_gb,disk_gb\n"))) == 0
