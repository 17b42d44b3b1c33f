"""`make run`'s closing lines: the demo logins come last, just before serving, with the port
CLOUDMGR_PORT names (they used to scroll away behind the quota output, under a fixed port 8000)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def _env(tmp_path: Path, database_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLOUDMGR_")}
    env.update(
        CLOUDMGR_INSTANCE_PATH=str(tmp_path / "instance"),
        CLOUDMGR_DATABASE_URL=database_url,
        CLOUDMGR_CLOUD_PROVIDER="simulated",
        **extra,
    )
    return env


def _cloudmgr(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cloudmgr.cli", *args],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_make_run_prints_the_logins_last_just_before_serving() -> None:
    dry = subprocess.run(
        ["make", "-n", "-B", "run"], cwd=REPO, capture_output=True, text=True, timeout=60, check=True
    ).stdout
    commands = [line.strip() for line in dry.splitlines() if "bin/cloudmgr " in line]
    names = [line.split("bin/cloudmgr ", 1)[1] for line in commands]
    assert names[-2:] == ["demo-logins", "serve"], names
    assert "seed-demo --no-logins" in names
    assert "8000" not in dry


def test_demo_logins_name_the_configured_port(tmp_path: Path, database_url: str) -> None:
    env = _env(tmp_path, database_url, CLOUDMGR_PORT="8137")
    assert _cloudmgr(env, "db", "upgrade").returncode == 0
    seeded = _cloudmgr(env, "seed-demo", "--no-logins")
    assert seeded.returncode == 0, seeded.stderr
    assert "demo logins" not in seeded.stdout and "demo-operator-2026" not in seeded.stdout

    result = _cloudmgr(env, "demo-logins")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert lines[0] == "demo logins (演示账号):"
    for role, password in (("operator", "demo-operator-2026"), ("admin", "demo-admin-2026")):
        assert any(role in line and password in line for line in lines)
    assert lines[-1].startswith("cloudmgr: http://127.0.0.1:8137 "), lines[-1]
    assert "8000" not in result.stdout


def test_demo_logins_before_seeding_says_so(tmp_path: Path, database_url: str) -> None:
    env = _env(tmp_path, database_url, CLOUDMGR_PORT="9001", CLOUDMGR_HOST="0.0.0.0")
    assert _cloudmgr(env, "db", "upgrade").returncode == 0
    result = _cloudmgr(env, "demo-logins")
    assert result.returncode == 0, result.stderr
    assert "run `cloudmgr seed-demo` first" in result.stdout
    assert result.stdout.strip().splitlines()[-1].startswith("cloudmgr: http://0.0.0.0:9001 ")
