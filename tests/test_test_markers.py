"""The suite's own promise: a test that reaches the lab is marked ``lab`` (issue 14, finding 8)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from tests.conftest import pytest_collection_modifyitems


def _item(nodeid: str, fixtures: list[str], *, lab_marked: bool) -> Any:
    item = SimpleNamespace(
        nodeid=nodeid,
        fixturenames=fixtures,
        get_closest_marker=lambda name: object() if (name == "lab" and lab_marked) else None,
        markers=[],
    )
    item.add_marker = item.markers.append
    return item


def test_an_unmarked_lab_test_stops_the_run() -> None:
    items = [
        _item("tests/a.py::test_marked", ["lab_runtime"], lab_marked=True),
        _item("tests/b.py::test_plain", ["db"], lab_marked=False),
        _item("tests/c.py::test_sneaky", ["tmp_path", "lab_clouds_yaml"], lab_marked=False),
    ]
    with pytest.raises(pytest.UsageError, match=r"tests/c\.py::test_sneaky"):
        pytest_collection_modifyitems(None, items)  # type: ignore[arg-type]


def test_marked_and_plain_tests_pass_the_check() -> None:
    items = [
        _item("tests/a.py::test_marked", ["lab_settings"], lab_marked=True),
        _item("tests/b.py::test_plain", ["db"], lab_marked=False),
        _item("tests/runbooks/test_x.py::test_hosts", ["hosts"], lab_marked=False),
    ]
    pytest_collection_modifyitems(None, items)  # type: ignore[arg-type]
    # Under pytest-xdist the lab's and the test hosts' tests run in one worker, the rest anywhere.
    groups = [[m.kwargs.get("name", m.args[0] if m.args else None) for m in item.markers] for item in items]
    assert groups == [["lab-and-hosts"], [], ["lab-and-hosts"]]
