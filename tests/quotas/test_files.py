from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from cloudmgr.config import REPO_ROOT
from cloudmgr.quotas.errors import QuotaFilesInvalid
from cloudmgr.quotas.files import read_quota_files
from cloudmgr.quotas.resources import Resource

STORAGE_AND_FIREWALL_RESOURCES = (
    Resource.VOLUMES,
    Resource.GIGABYTES,
    Resource.SNAPSHOTS,
    Resource.BACKUPS,
    Resource.SECURITY_GROUPS,
    Resource.SECURITY_GROUP_RULES,
)

STORAGE_AND_FIREWALL = (
    "volumes: 2, volume_gb: 100, snapshots: 2, backups: 1, security_groups: 5, security_group_rules: 50"
)
SIZES = f"""sizes:
  small: {{cores: 4, ram_gb: 8, instances: 3, networks: 1, floating_ips: 1, {STORAGE_AND_FIREWALL}}}
  medium: {{cores: 8, ram_gb: 16, instances: 6, networks: 2, floating_ips: 2, {STORAGE_AND_FIREWALL}}}
"""


def write(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def test_repository_quota_files_are_valid() -> None:
    definitions = read_quota_files(REPO_ROOT / "quotas")
    assert list(definitions.sizes) == ["small", "medium", "large", "xlarge"]
    entry = definitions.entries[("prov-education", "education")]
    assert entry.size == "small" and entry.limits[Resource.CORES] == 24 and entry.limits[Resource.RAM_MB] == 48 * 1024
    assert definitions.size_above("small") is not None and definitions.size_above("small").name == "medium"  # type: ignore[union-attr]
    assert definitions.size_above("xlarge") is None
    small = definitions.sizes["small"].limits
    assert (small[Resource.GIGABYTES], small[Resource.SECURITY_GROUP_RULES]) == (500, 100)
    # Each size is a step up in every resource, the new ones included.
    ladder = list(definitions.sizes.values())
    for lower, upper in itertools.pairwise(ladder):
        assert all(upper.limits[r] > lower.limits[r] for r in Resource), (lower.name, upper.name)


def test_sizes_and_overrides(tmp_path: Path) -> None:
    write(tmp_path, "sizes.yaml", SIZES)
    write(
        tmp_path,
        "departments.yaml",
        "departments:\n  d1:\n    c1: small\n    c2: {size: medium, cores: 12}\n"
        "    c3: {cores: 1, ram_gb: 1, instances: 1, networks: 0, floating_ips: 0, "
        "volumes: 3, volume_gb: 250, snapshots: 4, backups: 5, security_groups: 6, security_group_rules: 70}\n"
        "    c4: {size: small, volume_gb: 800, security_group_rules: 120}\n",
    )
    definitions = read_quota_files(tmp_path)
    assert definitions.entries[("d1", "c1")].limits[Resource.RAM_MB] == 8192
    assert definitions.entries[("d1", "c2")].limits[Resource.CORES] == 12
    assert definitions.entries[("d1", "c2")].limits[Resource.INSTANCES] == 6
    assert definitions.entries[("d1", "c3")].size is None
    assert definitions.entries[("d1", "c3")].line == 5
    # Cinder's and Neutron's firewall limits, by their file names (volume_gb in GB, as Cinder counts).
    assert {r: definitions.entries[("d1", "c3")].limits[r] for r in STORAGE_AND_FIREWALL_RESOURCES} == {
        Resource.VOLUMES: 3,
        Resource.GIGABYTES: 250,
        Resource.SNAPSHOTS: 4,
        Resource.BACKUPS: 5,
        Resource.SECURITY_GROUPS: 6,
        Resource.SECURITY_GROUP_RULES: 70,
    }
    c4 = definitions.entries[("d1", "c4")].limits
    assert (c4[Resource.GIGABYTES], c4[Resource.SECURITY_GROUP_RULES], c4[Resource.VOLUMES]) == (800, 120, 2)


def test_a_size_without_the_storage_and_firewall_limits_names_them(tmp_path: Path) -> None:
    path = write(
        tmp_path, "sizes.yaml", "sizes:\n  old: {cores: 4, ram_gb: 8, instances: 3, networks: 1, floating_ips: 1}\n"
    )
    write(tmp_path, "departments.yaml", "departments: {}\n")
    with pytest.raises(QuotaFilesInvalid) as info:
        read_quota_files(tmp_path)
    assert info.value.problems == [
        f"{path}:2: size 'old' lacks volumes, volume_gb, snapshots, backups, security_groups, security_group_rules"
    ]


def test_every_problem_has_its_file_and_line(tmp_path: Path) -> None:
    write(tmp_path, "sizes.yaml", SIZES)
    path = write(
        tmp_path,
        "departments.yaml",
        "departments:\n"  # 1
        "  d1:\n"  # 2
        "    c1: {size: small, cores: -2}\n"  # 3
        "    c2: {size: small, ram_gb: 1.5}\n"  # 4
        "    c3: huge\n"  # 5
        "    c1: small\n"  # 6
        "    c4: {cores: 1}\n"  # 7
        "    c5: {size: small, gpus: 2}\n"  # 8
        "  d1: {}\n",  # 9
    )
    with pytest.raises(QuotaFilesInvalid) as info:
        read_quota_files(tmp_path)
    problems = info.value.problems
    assert f"{path}:3: cores must not be negative (-2)" in problems
    assert f"{path}:4: ram_gb must be a whole number, not '1.5'" in problems
    assert f"{path}:5: unknown size 'huge' (sizes: small, medium)" in problems
    assert f"{path}:6: duplicate key 'c1' in department 'd1' (first at line 3)" in problems
    assert any(p.startswith(f"{path}:7: d1 on c4 has no size and lacks ram_gb") for p in problems)
    assert any(p.startswith(f"{path}:8: unknown resource 'gpus'") for p in problems)
    assert f"{path}:9: duplicate key 'd1' in departments (first at line 2)" in problems


def test_broken_yaml_reports_its_line(tmp_path: Path) -> None:
    path = write(tmp_path, "sizes.yaml", "sizes:\n  small: {cores: 4\n  medium: 3\n")
    with pytest.raises(QuotaFilesInvalid) as info:
        read_quota_files(tmp_path)
    assert info.value.problems[0].startswith(f"{path}:3: not valid YAML")


def test_empty_folder(tmp_path: Path) -> None:
    with pytest.raises(QuotaFilesInvalid, match="no quota files"):
        read_quota_files(tmp_path)
