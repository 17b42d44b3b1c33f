"""A wave's last check waits for the allocations Nova leaves behind a live migration (held by
the migration's uuid on the source host, dropped a moment after the server is ACTIVE on its
target), and never for a server's: found on the lab, where the check once ran between the two."""

from __future__ import annotations

from typing import Any

import pytest

from cloudmgr.capacity import jobs
from cloudmgr.cloud import CloudNotFound


class _Servers:
    """What _confirm_emptied asks of a provider besides Placement: whether a consumer is a server."""

    def __init__(self, servers: set[str]) -> None:
        self.servers = servers

    def get_server(self, server_id: str) -> Any:
        if server_id not in self.servers:
            raise CloudNotFound(f"no server {server_id}")
        return object()


def _confirm(monkeypatch: pytest.MonkeyPatch, answers: list[dict[str, list[str]]], servers: set[str]) -> Any:
    calls: list[int] = []

    def allocations_left(_provider: Any, _hosts: list[str]) -> dict[str, list[str]]:
        calls.append(1)
        return answers[min(len(calls), len(answers)) - 1]

    monkeypatch.setattr(jobs, "allocations_left", allocations_left)
    monkeypatch.setattr("cloudmgr.capacity.jobs.time.sleep", lambda _seconds: None)
    work = jobs._WaveWork(run_id=1, wave_index=0, wave_count=1, moves=[], emptied=["b"], cloud=None)  # type: ignore[arg-type]
    outcome = jobs._WaveOutcome()
    jobs._confirm_emptied(_Servers(servers), work, outcome)  # type: ignore[arg-type]
    return outcome, len(calls)


def test_a_migrations_allocation_that_goes_a_moment_later_is_waited_for(monkeypatch: pytest.MonkeyPatch) -> None:
    outcome, calls = _confirm(monkeypatch, [{"b": ["migration-uuid"]}, {"b": ["migration-uuid"]}, {}], set())
    assert outcome.left == {} and outcome.errors == [] and calls == 3


def test_a_server_on_the_host_fails_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    outcome, calls = _confirm(monkeypatch, [{"b": ["newcomer", "migration-uuid"]}], {"newcomer"})
    assert calls == 1 and outcome.left == {"b": ["newcomer", "migration-uuid"]}
    assert outcome.errors == ["still holding allocations in Placement: b (newcomer, migration-uuid)"]


def test_a_migrations_allocation_that_stays_fails_after_the_grace(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(jobs, "MIGRATION_ALLOCATION_GRACE_SECONDS", 0.0)
    outcome, calls = _confirm(monkeypatch, [{"b": ["migration-uuid"]}], set())
    assert calls == 1 and outcome.errors == ["still holding allocations in Placement: b (migration-uuid)"]
