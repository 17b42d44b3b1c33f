"""The complexity score: pure rules, no database."""

from __future__ import annotations

from typing import Any

from cloudmgr.inventory.assessment import assess, os_reasons
from cloudmgr.inventory.models import LegacySystem


def system(**overrides: Any) -> LegacySystem:
    values: dict[str, Any] = {
        "hostname": "x-01",
        "os_family": "linux",
        "os_name": "Rocky Linux",
        "os_version": "9.3",
        "vcpus": 2,
        "ram_mb": 4096,
        "disk_gb": 50,
        "data_gb": 10,
        "cpu_p95_pct": 10.0,
        "ram_p95_pct": 30.0,
        "dependencies": [],
    }
    values.update(overrides)
    return LegacySystem(**values)


def codes(s: LegacySystem, dependants: list[str] | None = None) -> dict[str, int]:
    _score, reasons = assess(s, dependants or [])
    return {r.code: r.points for r in reasons}


def test_a_small_modern_linux_guest_is_easy() -> None:
    assert assess(system(), []) == (0, [])


def test_end_of_life_operating_systems_score_high() -> None:
    centos6 = codes(system(os_name="CentOS", os_version="6.10"))
    centos7 = codes(system(os_name="CentOS", os_version="7.9"))
    assert centos6["os_end_of_life"] > centos7["os_end_of_life"] > 0
    w2003 = codes(system(os_family="windows", os_name="Windows Server", os_version="2003 R2"))
    w2008 = codes(system(os_family="windows", os_name="Windows Server", os_version="2008 R2"))
    w2016 = codes(system(os_family="windows", os_name="Windows Server", os_version="2016"))
    assert w2003["os_end_of_life"] > w2008["os_end_of_life"] > 0
    assert "os_end_of_life" not in w2016
    # every Windows guest needs virtio drivers injected before conversion
    assert w2003["windows_drivers"] == w2016["windows_drivers"] == 15
    assert codes(system(os_family="other", os_name="AIX", os_version="7.2"))["os_unsupported"] == 50
    assert os_reasons("linux", "SUSE Linux Enterprise Server", "11 SP4")[0].code == "os_end_of_life"
    assert os_reasons("linux", "Ubuntu", "22.04") == []


def test_size_data_coupling_and_use() -> None:
    big = codes(system(vcpus=32, ram_mb=256 * 1024, data_gb=3000))
    assert big == {"large_cpu": 10, "large_ram": 15, "data_volume": 25}
    coupled = codes(system(dependencies=["a", "b"]), dependants=["c", "d", "e", "f", "g", "h"])
    assert coupled == {"dependencies": 10, "dependants": 25}  # dependants capped at 25
    busy = codes(system(cpu_p95_pct=92.0, ram_p95_pct=90.0))
    assert busy == {"busy_cpu": 10, "busy_ram": 10}


def test_score_is_the_sum_and_reasons_come_hardest_first() -> None:
    score, reasons = assess(
        system(os_family="windows", os_name="Windows Server", os_version="2008 R2", data_gb=500), ["y-01"]
    )
    assert score == sum(r.points for r in reasons) == 30 + 15 + 5 + 5
    assert [r.points for r in reasons] == sorted((r.points for r in reasons), reverse=True)
    assert all(r.detail for r in reasons)
