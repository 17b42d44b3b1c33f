"""Crash safety against the lab OpenStack on PostgreSQL: a web process (gunicorn) and a
scheduler process (`cloudmgr scheduler run`) are SIGKILLed at 20 points chosen by a seeded
RNG while self-service requests go through the API and their servers boot; each is restarted
as systemd would.  At the end: every request finished, 0 servers lost, 0 duplicated, 0
orphaned, and the quota ledger equal to Nova's usage of the department's project.

Two schedulers run, as in production: the victim of a scheduler kill is whichever leads,
and the stand-by takes over after the (short) lease while the killed one restarts as the new
stand-by.  Kept short: m1.tiny, two servers per request, kills 0.2 to 1.5 s after the victim
is up (leading, or answering /healthz) again.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from cloudmgr.runtime import Runtime
from cloudmgr.scheduler.service import LEADER_LEASE
from cloudmgr.servicerequests.models import ManagedServer
from cloudmgr.workqueue.services import lease_holder
from tests.journey_fixtures import LabJourney, build_lab_journey, clean_lab_department
from tests.production.checks import FINAL, IN_FLIGHT, account, api_token, lab_form, request_states
from tests.production.processes import Api, Proc, process_env, scheduler_proc, wait_until, web_proc

pytestmark = [pytest.mark.lab, pytest.mark.postgres, pytest.mark.slow, pytest.mark.timeout(900)]

SEED = 20260808
KILLS = 20
REQUESTS = 4
PER_REQUEST = 2
KILLS_PER_REQUEST = 2


@dataclass
class Driver:
    """Creates and approves requests through the API, riding out the web process's deaths
    (a POST whose answer was lost is checked, never blindly resent)."""

    j: LabJourney
    web: Proc
    tokens: dict[str, str]
    body: dict[str, object]
    created: list[int] = field(default_factory=list)
    api_retries: int = 0
    reads: int = 0
    stop: threading.Event = field(default_factory=threading.Event)
    error: BaseException | None = None

    def api(self, role: str) -> Api:
        return Api(self.web.port or 0, self.tokens[role])

    def call(self, role: str, method: str, path: str, body: dict[str, object] | None = None) -> tuple[int, object]:
        deadline = time.monotonic() + 180
        while True:
            try:
                status, payload = self.api(role).call(method, path, body, timeout=20)
                if status < 500:
                    return status, payload
            except OSError:
                pass
            self.api_retries += 1
            if time.monotonic() > deadline:
                raise AssertionError(f"{method} {path}: the web process did not come back")
            time.sleep(0.3)

    def find(self, prefix: str) -> int | None:
        status, payload = self.call("staff", "GET", "/requests?per_page=100")
        assert status == 200, payload
        assert isinstance(payload, dict)
        return next((r["id"] for r in payload["items"] if r["name_prefix"] == prefix), None)

    def create(self, prefix: str) -> int:
        deadline = time.monotonic() + 180
        while True:
            try:
                status, payload = self.api("staff").call("POST", "/requests", {**self.body, "name_prefix": prefix})
                if status == 201 and isinstance(payload, dict):
                    return int(payload["id"])
                assert status >= 500, payload
            except OSError:
                pass
            # The answer was lost: maybe it was created before the process died.
            self.api_retries += 1
            time.sleep(0.3)
            found = self.find(prefix)
            if found is not None:
                return found
            assert time.monotonic() < deadline, f"could not create {prefix}"

    def approve_all_steps(self, request_id: int) -> None:
        while True:
            status, payload = self.call("staff", "GET", f"/requests/{request_id}")
            assert status == 200 and isinstance(payload, dict), payload
            if payload["state"] != "submitted":
                return
            role = {"dept_head": "head", "operator": "operator", "finance": "finance"}[str(payload["next_role"])]
            # 409: the approval went through before the answer was lost; the loop re-reads.
            status, payload = self.call(role, "POST", f"/requests/{request_id}/approve", {"reason": "crash test"})
            assert status in (200, 409), payload

    def run(self, kills_done: Callable[[], int]) -> None:
        """Request ``i`` is created once the one before it finished and ``KILLS_PER_REQUEST * i``
        kills happened (so web kills land on creations and approvals, and scheduler kills on
        provisioning); in between, the driver keeps reading the list through the API."""
        try:
            for i in range(REQUESTS):
                while not self.stop.is_set() and (
                    kills_done() < KILLS_PER_REQUEST * i
                    or any(s in IN_FLIGHT for s, _ in request_states(self.j).values())
                ):
                    self.call("staff", "GET", "/requests?per_page=25")
                    self.reads += 1
                    self.stop.wait(0.3)
                if self.stop.is_set():
                    return
                request_id = self.create(f"crash{i}")
                self.created.append(request_id)
                self.approve_all_steps(request_id)
        except BaseException as exc:  # reported by the test thread
            self.error = exc


def _soon(condition: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.25)
    return True


def _progress(j: LabJourney) -> int:
    """Servers recorded as booting or active (each boot moves it on twice)."""
    with j.rt.db.unit_of_work() as uow:
        states = uow.session.scalars(select(ManagedServer.state)).all()
    return sum({"building": 1, "active": 2}.get(s, 0) for s in states)


def _leader_pid(j: LabJourney) -> int | None:
    held = lease_holder(j.rt.db, LEADER_LEASE)
    return int(held[0].split(":")[1]) if held and held[1] else None


def test_sigkill_web_and_scheduler_at_twenty_points_loses_and_doubles_nothing(
    pg_lab_runtime: Runtime, tmp_path: Path, lab_clouds_yaml: Path
) -> None:
    rng = random.Random(SEED)
    j = build_lab_journey(pg_lab_runtime, tmp_path, lab_clouds_yaml, instances=REQUESTS * PER_REQUEST)
    env = process_env(
        j.rt.settings,
        CLOUDMGR_SCHEDULER_LEASE_SECONDS="3",
        CLOUDMGR_WORK_LEASE_SECONDS="3",
        CLOUDMGR_WORK_POLL_SECONDS="0.3",
        CLOUDMGR_MAX_CONCURRENT_BOOTS="1",  # one boot at a time: kills land between and inside boots
    )
    web = web_proc(env, tmp_path / "web.log", workers=1, threads=4)
    schedulers = [scheduler_proc(env, tmp_path / f"scheduler-{n}.log", name=f"scheduler-{n}") for n in "ab"]
    form = lab_form(j, PER_REQUEST, "crash")
    body: dict[str, object] = {
        "cloud": "education",
        "zone": form.zone,
        "flavor": form.flavor_item_id,
        "image": form.image_item_id,
        "count": PER_REQUEST,
        "justification": "crash safety proof",
        "expires_on": (date.today() + timedelta(days=30)).isoformat(),
        "submit": True,
    }
    tokens = {
        "staff": api_token(j, f"{j.department_key}-staff"),
        "head": api_token(j, f"{j.department_key}-head"),
        "operator": api_token(j, f"{j.department_key}-ops"),
        "finance": api_token(j, f"{j.department_key}-fin"),
    }
    driver = Driver(j, web, tokens, body)
    kills: list[str] = []
    thread = threading.Thread(target=driver.run, args=(lambda: len(kills),), daemon=True)

    def leader() -> Proc | None:
        pid = _leader_pid(j)
        return next((p for p in schedulers if p.alive() and p.pid == pid), None)

    def tails() -> str:
        return "\n".join(p.tail(3000) for p in schedulers)

    try:
        web.start()
        for proc in schedulers:
            proc.start()
        web.wait_http()
        thread.start()
        for n in range(KILLS):
            victim = rng.choice(("scheduler", "scheduler", "scheduler", "web", "both"))
            # when: right after a boot reached Nova (before or while cloudmgr records it),
            # or a random time after the victim came up
            point = rng.choice(("boot", "boot", "timed"))
            delay = rng.uniform(0.0, 0.4) if point == "boot" else rng.uniform(0.2, 1.5)
            if victim in {"scheduler", "both"}:  # during provisioning, unless none comes
                _soon(lambda: any(s in IN_FLIGHT for s, _ in request_states(j).values()), 20)
            lead: Proc = wait_until(leader, 90, tails, step=0.1)
            if victim in {"web", "both"}:
                web.wait_http()
            if point == "boot":
                before = _progress(j)
                if not _soon(lambda before=before: _progress(j) > before, 15):  # type: ignore[misc]
                    point = "timed (no boot came)"
            time.sleep(delay)
            busy = sum(s in IN_FLIGHT for s, _ in request_states(j).values())
            kills.append(f"{n + 1}:{victim}/{point}+{delay:.2f}s/{busy} in flight/progress {_progress(j)}")
            if victim in {"web", "both"}:
                web.kill()
                web.start()
            if victim in {"scheduler", "both"}:
                lead.kill()
                lead.start()  # the new stand-by
        thread.join(180)
        assert not thread.is_alive(), "the API driver did not finish"
        if driver.error is not None:
            raise driver.error
        assert len(driver.created) == REQUESTS

        def all_final() -> bool:
            return all(s in FINAL for s, _ in request_states(j).values())

        wait_until(all_final, 240, lambda: f"{request_states(j)}\n{tails()}", step=0.5)
        states = request_states(j)
        print(f"\nkills: {'; '.join(kills)}")
        starts = sum(p.starts for p in schedulers)
        print(f"API calls retried after a web kill: {driver.api_retries} (of {driver.reads} reads and the writes)")
        print(f"scheduler starts: {starts}; web starts: {web.starts}")
        assert sorted(states) == sorted(driver.created), "a request was created twice or lost"
        assert {s for s, _ in states.values()} == {"active"}, states
        result = account(j)
        print(f"accounting: {result}")
        assert result.nova_servers == REQUESTS * PER_REQUEST
        assert result.lost == [] and result.duplicates == [] and result.orphans == []
        assert all(a == b for a, b in result.ledger_vs_nova.values()), result.ledger_vs_nova
    finally:
        driver.stop.set()
        web.stop()
        for proc in schedulers:
            proc.stop()
        clean_lab_department(j)
