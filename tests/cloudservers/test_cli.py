"""``cloudmgr servers sync``: what it did per cloud, a clear error and a non-zero exit on bad input."""

from __future__ import annotations

from cloudmgr.runtime import Runtime
from tests.test_cli import run_in_process


def test_sync_one_cloud_full_then_delta_then_forced_full(seeded: Runtime) -> None:
    first = run_in_process(seeded, "servers", "sync", "--cloud", "province-base")
    assert first.exit_code == 0, first.output
    assert first.output.startswith("province-base: full sync")
    assert "server(s) mirrored" in first.output
    forced = run_in_process(seeded, "servers", "sync", "--cloud", "province-base", "--full")
    assert forced.exit_code == 0 and "province-base: full sync" in forced.output


def test_sync_every_enabled_cloud(seeded: Runtime) -> None:
    result = run_in_process(seeded, "servers", "sync")
    assert result.exit_code == 0, result.output
    assert "province-base: full sync" in result.output
    assert len(result.output.strip().splitlines()) >= 2


def test_an_unknown_cloud_is_a_clear_error(seeded: Runtime) -> None:
    result = run_in_process(seeded, "servers", "sync", "--cloud", "atlantis")
    assert result.exit_code != 0
    assert "no cloud 'atlantis'" in result.output
