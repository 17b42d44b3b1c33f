"""The cloudmgr command line, run as a user would: a real subprocess on a fresh instance."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from cloudmgr.cli import main
from cloudmgr.runtime import Runtime

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def cli_env(tmp_path: Path, database_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLOUDMGR_")}
    env.update(
        CLOUDMGR_INSTANCE_PATH=str(tmp_path / "instance"),
        CLOUDMGR_DATABASE_URL=database_url,
        CLOUDMGR_CLOUD_PROVIDER="simulated",
    )
    return env


def cloudmgr(env: dict[str, str], *args: str, input_text: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cloudmgr.cli", *args],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        input=input_text,
        timeout=120,
        check=False,
    )


def test_first_run_commands(cli_env: dict[str, str]) -> None:
    result = cloudmgr(cli_env, "db", "upgrade")
    assert result.returncode == 0, result.stderr
    assert "database at revision" in result.stdout

    result = cloudmgr(cli_env, "seed-demo")
    assert result.returncode == 0, result.stderr
    assert "18 clouds" in result.stdout
    for role in ("dept_staff", "dept_head", "operator", "finance", "admin"):
        assert role in result.stdout
    assert "firewall templates: web, ssh-admin, db-internal" in result.stdout
    # Seeding twice changes nothing and still prints the logins.
    again = cloudmgr(cli_env, "seed-demo")
    assert again.returncode == 0 and "0 clouds and 0 departments new" in again.stdout
    assert "firewall templates: none new" in again.stdout

    result = cloudmgr(cli_env, "clouds", "sync")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count(" ok: ") == 18

    listed = cloudmgr(cli_env, "clouds", "list")
    assert "省统一公共基础云平台" in listed.stdout and "never" not in listed.stdout

    created = cloudmgr(
        cli_env,
        "users",
        "create",
        "zhao",
        "--role",
        "dept_head",
        "--department",
        "sjz-education",
        "--password",
        "a-good-pass-1",
    )
    assert created.returncode == 0, created.stderr
    token = cloudmgr(cli_env, "users", "token", "zhao", "--name", "script")
    assert token.returncode == 0 and token.stdout.startswith("cmt_")


def run_in_process(seeded: Runtime, *args: str, env: dict[str, str] | None = None) -> Result:
    """The CLI in this process, against the seeded test database (fast; same code path)."""
    base = {
        "CLOUDMGR_INSTANCE_PATH": str(seeded.settings.instance_path),
        "CLOUDMGR_DATABASE_URL": seeded.settings.database_url,
        "CLOUDMGR_CLOUD_PROVIDER": "simulated",
    }
    return CliRunner().invoke(main, list(args), env={**base, **(env or {})})


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("users", "create", "x", "--role", "dept_staff", "--password", "a-good-pass-1"), "needs a department"),
        (("users", "create", "x", "--role", "operator", "--password", "short"), "at least 10"),
        (("users", "create", "admin", "--role", "admin", "--password", "a-good-pass-1"), "already exists"),
        (("users", "token", "ghost"), "no user 'ghost'"),
        (("clouds", "sync", "--cloud", "atlantis"), "no enabled cloud 'atlantis'"),
        (("users", "create", "x", "--role", "emperor"), "Invalid value for '--role'"),
    ],
)
def test_bad_input_gets_a_message_and_non_zero_exit(seeded: Runtime, args: tuple[str, ...], message: str) -> None:
    result = run_in_process(seeded, *args)
    assert result.exit_code != 0
    assert message in result.output


def test_bad_organisation_file_changes_nothing(seeded: Runtime, tmp_path: Path) -> None:
    bad = tmp_path / "clouds.yaml"
    bad.write_text("clouds:\n  - {key: only-one, name_zh: x}\n", encoding="utf-8")
    result = run_in_process(seeded, "org", "import", env={"CLOUDMGR_CLOUDS_FILE": str(bad)})
    assert result.exit_code != 0
    assert "'name_en' is required" in result.output
    listed = run_in_process(seeded, "clouds", "list")
    assert len(listed.output.strip().splitlines()) == 18


def test_bad_setting_is_a_clear_error(cli_env: dict[str, str]) -> None:
    result = cloudmgr({**cli_env, "CLOUDMGR_PORT": "http"}, "db", "upgrade")
    assert result.returncode != 0 and "not an integer" in result.stderr
