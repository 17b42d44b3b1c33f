"""The lab scripts' settings for its clouds (vagrant/lab/common.sh), without starting them."""

from __future__ import annotations

import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
COMMON = REPO / "vagrant" / "lab" / "common.sh"
SETTINGS = ("LAB", "CLOUD_NAME", "DB_PREFIX", "VHOST_NAME", "REGION", "AUTH_URL", "COMPUTE_HOSTS", "CORE_SERVICES")
PORTS = ("KEYSTONE_PORT", "PLACEMENT_PORT", "NOVA_PORT", "GLANCE_PORT", "NEUTRON_PORT", "CINDER_PORT")


def _bash(script: str, lab_dir: Path, **env: str) -> str:
    result = subprocess.run(
        ["bash", "-c", f'. "{COMMON}"; {script}'],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
        env={"PATH": "/usr/bin:/bin", "CLOUDMGR_LAB_DIR": str(lab_dir), **env},
    )
    return result.stdout


def _settings(lab_dir: Path, instance: str) -> dict[str, str]:
    names = SETTINGS + PORTS
    out = _bash("; ".join(f'printf "%s\\n" "${n}"' for n in names), lab_dir, LAB_INSTANCE=instance)
    return dict(zip(names, out.splitlines(), strict=True))


def test_the_city_cloud_shares_nothing_a_cloud_owns_with_the_province(tmp_path: Path) -> None:
    province, city = _settings(tmp_path, "province"), _settings(tmp_path, "city")
    assert province["LAB"] == str(tmp_path.resolve()) and city["LAB"] == str(tmp_path.resolve() / "city")
    assert (province["CLOUD_NAME"], city["CLOUD_NAME"]) == ("cloudmgr-lab", "cloudmgr-lab-city")
    for name in SETTINGS[1:6] + PORTS:
        assert province[name] != city[name], name
    assert not set(province["COMPUTE_HOSTS"].split()) & set(city["COMPUTE_HOSTS"].split())
    assert "nova-compute-city-compute1" in city["CORE_SERVICES"].split()
    assert city["AUTH_URL"] == f"http://127.0.0.1:{city['KEYSTONE_PORT']}/v3"


def test_the_clouds_yaml_entries_name_each_cloud_with_its_own_keystone_and_password(tmp_path: Path) -> None:
    entries = [line.split("|") for line in _bash('printf "%s\\n" "$LAB_CLOUD_ENTRIES"', tmp_path).splitlines()]
    assert [e[0] for e in entries] == ["cloudmgr-lab", "cloudmgr-lab-city", "cloudmgr-lab-scale"]
    assert len({e[1] for e in entries}) == len({e[2] for e in entries}) == len({e[3] for e in entries}) == 3


def test_the_scale_cloud_owns_its_ports_and_state_and_starts_only_when_named(tmp_path: Path) -> None:
    """The scale cloud (200 hypervisors, 2,500 servers) is never started for the tests: up.sh and
    status.sh act on province and city unless LAB_CLOUDS names it; down.sh stops every cloud."""
    scale = _settings(tmp_path, "scale")
    for other in (_settings(tmp_path, "province"), _settings(tmp_path, "city")):
        for name in ("LAB", "CLOUD_NAME", "DB_PREFIX", "VHOST_NAME", "REGION", *PORTS):
            assert scale[name] != other[name], name
    assert scale["LAB"] == str(tmp_path.resolve() / "scale")
    assert _bash("lab_clouds_wanted", tmp_path).split() == ["province", "city"]
    assert _bash('lab_clouds_wanted "$LAB_INSTANCES"', tmp_path).split() == ["province", "city", "scale"]
    assert _bash("lab_clouds_wanted", tmp_path, LAB_CLOUDS="scale").split() == ["scale"]
    assert _bash('echo "$LAB_SCALE_NODES"', tmp_path, LAB_INSTANCE="scale").strip() == "200"


def test_the_other_cloud_of_this_lab_is_not_another_lab(tmp_path: Path) -> None:
    """up.sh stops the processes of "another lab" (another checkout's state dir): the city's
    processes, under LAB_ROOT/city, are this lab's."""
    root = tmp_path / ".lab"
    listing = f"1={root}\n2={root}/city\n3={tmp_path}/other/.lab\n4={root}-old\n5={tmp_path}/other/.lab/city\n"
    script = f"lab_procs() {{ printf '{listing}'; }}; lab_procs_other '{root}'; echo; lab_procs_mine '{root}/city'"
    other, mine = _bash(script, tmp_path).splitlines()
    assert other.split() == ["3", "4", "5"]
    assert mine.split() == ["2"]


def test_the_clouds_status_checks_are_those_started_and_not_stopped(tmp_path: Path) -> None:
    script = (
        "clouds_up_update add city; cat $CLOUDS_UP_FILE; clouds_up_update add province; cat $CLOUDS_UP_FILE; "
        "clouds_up_update remove city; cat $CLOUDS_UP_FILE"
    )
    assert [line.split() for line in _bash(script, tmp_path).splitlines()] == [
        ["city"],
        ["province", "city"],
        ["province"],
    ]


def test_lab_clouds_takes_a_list_in_the_lab_order_and_refuses_an_unknown_cloud(tmp_path: Path) -> None:
    assert _bash("lab_clouds_wanted", tmp_path, LAB_CLOUDS="city,province").split() == ["province", "city"]
    assert _bash("lab_clouds_wanted", tmp_path).split() == ["province", "city"]
    bad = subprocess.run(
        ["bash", "-c", f'. "{COMMON}"; lab_clouds_wanted'],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        env={"PATH": "/usr/bin:/bin", "CLOUDMGR_LAB_DIR": str(tmp_path), "LAB_CLOUDS": "county"},
    )
    assert bad.returncode == 2 and "unknown cloud 'county'" in bad.stderr


def test_stopping_processes_that_are_already_gone_does_not_end_the_script(tmp_path: Path) -> None:
    """Both clouds' up.sh stop another lab's processes side by side: the one that comes second
    finds some gone, which under set -e -o pipefail used to end its up.sh (the city's did)."""
    script = (
        "set -euo pipefail; sleep 60 & p=$!; kill $p; wait $p 2>/dev/null || true; "
        'kill_pids "$p 999999" 1; echo survived'
    )
    assert _bash(script, tmp_path).strip() == "survived"
