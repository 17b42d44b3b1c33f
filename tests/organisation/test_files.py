from __future__ import annotations

from pathlib import Path

import pytest

from cloudmgr.config import REPO_ROOT
from cloudmgr.organisation.errors import OrganisationFileInvalid
from cloudmgr.organisation.files import read_clouds_file, read_departments_file
from cloudmgr.organisation.models import CloudKind, Level, ZoneKind

CLOUDS = REPO_ROOT / "etc" / "government-clouds.yaml"
DEPARTMENTS = REPO_ROOT / "etc" / "departments.yaml"

PLAN_INDUSTRY_CLOUDS = {
    "政务云",
    "工业云",
    "人社云",
    "商务云",
    "教育云",
    "交通云",
    "安全生产云",
    "环保云",
    "农业云",
    "食品药品安全云",
    "健康云",
    "综治云",
    "旅游云",
    "扶贫云",
}


def test_demo_clouds_are_the_plans_1_plus_14_plus_n() -> None:
    clouds = read_clouds_file(CLOUDS)
    assert [c.name_zh for c in clouds if c.kind == CloudKind.BASE and c.level == Level.PROVINCE] == [
        "省统一公共基础云平台"
    ]
    assert {c.name_zh for c in clouds if c.kind == CloudKind.INDUSTRY} == PLAN_INDUSTRY_CLOUDS
    assert any(c.kind == CloudKind.OTHER for c in clouds)
    city_clouds = [c for c in clouds if c.level == Level.CITY]
    assert len(city_clouds) == 2 and all(c.city for c in city_clouds)
    assert all(set(c.zones) <= {ZoneKind.INTERNET, ZoneKind.EXTRANET} for c in clouds)


def test_demo_departments_cover_the_three_levels() -> None:
    clouds = read_clouds_file(CLOUDS)
    departments = read_departments_file(DEPARTMENTS, [c.key for c in clouds])
    assert 18 <= len(departments) <= 25
    assert {d.level for d in departments} == {Level.PROVINCE, Level.CITY, Level.COUNTY}


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "clouds.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_every_problem_is_reported_with_its_entry(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        """
clouds:
  - key: Bad Key
    name_zh: 云
    name_en: Cloud
    kind: public
    level: province
    os_cloud: lab
    zones: {internet: net1}
  - key: city-one
    name_zh: 市云
    name_en: City
    kind: base
    level: city
    os_cloud: lab
    zones: {intranet: secret-net}
  - key: city-one
    name_en: Dup
""",
    )
    with pytest.raises(OrganisationFileInvalid) as info:
        read_clouds_file(path)
    message = info.value.message
    assert "clouds[0]" in message and "lower-case" in message
    assert "'kind' must be one of base, industry, other, not 'public'" in message
    assert "a city cloud needs 'city'" in message
    assert "'intranet' is not internet or extranet" in message and "classified" in message
    assert "clouds[2]" in message and "duplicate key 'city-one'" in message and "'name_zh' is required" in message


def test_unknown_cloud_in_departments_file(tmp_path: Path) -> None:
    path = tmp_path / "departments.yaml"
    path.write_text(
        "departments:\n  - {key: d1, name_zh: 部门, name_en: Dept, level: county, city: x, clouds: [nowhere]}\n",
        encoding="utf-8",
    )
    with pytest.raises(OrganisationFileInvalid) as info:
        read_departments_file(path, ["province-base"])
    assert "unknown cloud 'nowhere'" in info.value.message
    assert "a county department needs 'county'" in info.value.message


@pytest.mark.parametrize(
    ("text", "message"),
    [("clouds: [unclosed", "not valid YAML"), ("{}", "expected a mapping with a 'clouds' list")],
)
def test_malformed_files(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(OrganisationFileInvalid, match=message):
        read_clouds_file(_write(tmp_path, text))


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(OrganisationFileInvalid, match="cannot read"):
        read_clouds_file(tmp_path / "absent.yaml")
