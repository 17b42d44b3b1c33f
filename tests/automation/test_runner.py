"""The Ansible wrapper runs real playbooks through ansible-runner against localhost."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cloudmgr.automation import PlaybookFailed, local_host_vars, run_playbook


def _local_inventory() -> dict[str, object]:
    return {"all": {"hosts": {"localhost": local_host_vars()}}}


def test_healthcheck_runs_and_is_idempotent(tmp_path: Path) -> None:
    events: list[str] = []
    state = tmp_path / "state"
    first = run_playbook(
        "healthcheck.yml",
        inventory=_local_inventory(),
        artifacts_root=tmp_path / "runs",
        extravars={"cloudmgr_state_dir": str(state)},
        on_event=lambda e: events.append(str(e.get("event"))),
    )
    assert first.ok, first
    assert first.hosts["localhost"].changed == 2
    facts = json.loads((state / "host-facts.json").read_text())
    assert facts["vcpus"] >= 1 and facts["memory_mb"] > 0
    assert "playbook_on_stats" in events and first.events == len(events)
    assert (first.artifacts_dir / "stdout").exists()

    second = run_playbook(
        "healthcheck.yml",
        inventory=_local_inventory(),
        artifacts_root=tmp_path / "runs",
        extravars={"cloudmgr_state_dir": str(state)},
    )
    assert second.ok and second.changed == 0
    assert second.run_id != first.run_id


def test_failure_is_a_result_with_the_failing_host(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    result = run_playbook(
        "healthcheck.yml",
        inventory=_local_inventory(),
        artifacts_root=tmp_path / "runs",
        extravars={"cloudmgr_state_dir": str(blocker)},
    )
    assert not result.ok and result.failed_hosts == ["localhost"]
    with pytest.raises(PlaybookFailed, match="localhost"):
        result.raise_for_status()


def test_unknown_playbook_is_refused(tmp_path: Path) -> None:
    from cloudmgr.errors import CloudmgrError

    with pytest.raises(CloudmgrError, match="no playbook"):
        run_playbook("nope.yml", inventory=_local_inventory(), artifacts_root=tmp_path)
