"""Crash safety against the lab OpenStack on PostgreSQL: a web process (gunicorn) and a
scheduler process (`cloudmgr scheduler run`) are SIGKILLed at 20 points chosen by a seeded
RNG, each restarted as systemd would: 12 while self-service requests go through the API and
their servers boot, then 8 while those servers are live- and cold-migrated (auto_confirm)
between the lab's compute1 and compute2 through the API.  At the end: every request
finished and every move done (a move a kill failed is resumed through the API and must then
finish), 0 servers lost, 0 duplicated, 0 orphaned, every server on the host cloudmgr
recorded for it, and the quota ledger equal to Nova's usage of the department's project.

Two schedulers run, as in production: the victim of a scheduler kill is whichever leads (it
runs the boots and the moves' steps), and the stand-by takes over after the (short) lease
while the killed one restarts as the new stand-by.  Kept short: m1.tiny, two servers per
request, two moves open at a time, kills 0.2 to 1.5 s after the victim is up (leading, or
answering /healthz) again, or just after a boot or a move's step was recorded.

No cross-cloud move here: the journey's department has a project on one cloud only (a
cross-cloud move SIGKILLed after its boot is in tests/moves/test_lab_moves.py).
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from cloudmgr.moves import services as moves_service
from cloudmgr.moves.models import Move, MoveEvent, MoveStep
from cloudmgr.moves.states import OPEN_STATES
from cloudmgr.runtime import Runtime
from cloudmgr.scheduler.service import LEADER_LEASE
from cloudmgr.servicerequests.models import ManagedServer
from cloudmgr.workqueue.services import lease_holder
from tests.conftest import lab_connection
from tests.journey_fixtures import LabJourney, build_lab_journey, clean_lab_department
from tests.production.checks import FINAL, IN_FLIGHT, account, api_token, lab_form, request_states
from tests.production.processes import Api, Proc, process_env, scheduler_proc, wait_until, web_proc

pytestmark = [pytest.mark.lab, pytest.mark.postgres, pytest.mark.slow, pytest.mark.timeout(900)]

SEED = 20260808
KILLS = 20
PROVISION_KILLS = 12  # the first 12 land on requests and boots, the other 8 on moves
REQUESTS = 4
PER_REQUEST = 2
KILLS_PER_REQUEST = 2
MOVES_OPEN = 2  # at a time: one migrating, one waiting for the worker


@dataclass
class Driver:
    """Creates and approves requests, then moves their servers, through the API, riding out
    the web process's deaths (a POST whose answer was lost is checked, never blindly resent)."""

    j: LabJourney
    web: Proc
    tokens: dict[str, str]
    body: dict[str, object]
    created: list[int] = field(default_factory=list)
    moves: dict[int, str] = field(default_factory=dict)  # move id: server id
    failures: list[str] = field(default_factory=list)  # moves a kill failed, with why, before their resume
    resumed: int = 0
    api_retries: int = 0
    reads: int = 0
    moves_from: float | None = None  # time.monotonic() when the first move was asked for
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

    def list_moves(self) -> dict[int, dict[str, Any]]:
        status, payload = self.call("operator", "GET", "/moves")
        assert status == 200 and isinstance(payload, dict), payload
        return {int(m["id"]): m for m in payload["items"]}

    def start_move(self, server_id: str, body: dict[str, object]) -> int:
        known = {i for i, m in self.list_moves().items() if m["server_id"] == server_id}
        deadline = time.monotonic() + 180
        while True:
            try:
                status, payload = self.api("operator").call("POST", "/moves", body, timeout=20)
                if status == 202 and isinstance(payload, dict):
                    return int(payload["id"])
                # 409: the server has an open move: ours, if it was stored before the answer was lost.
                assert status >= 500 or status == 409, payload
            except OSError:
                pass
            self.api_retries += 1
            time.sleep(0.3)
            found = sorted(i for i, m in self.list_moves().items() if m["server_id"] == server_id and i not in known)
            if found:
                return found[0]  # a second one would be a move stored twice: the test's end finds it
            assert time.monotonic() < deadline, f"could not start a move of {server_id}"

    def resume(self, move_id: int) -> None:
        """Carry on a move a kill failed; a resume whose answer was lost shows as a move no
        longer failed."""
        asked = False
        deadline = time.monotonic() + 180
        while True:
            status, payload = self.call("operator", "GET", f"/moves/{move_id}")
            assert status == 200 and isinstance(payload, dict), payload
            if payload["state"] != "failed":
                if asked:  # the answer was lost, the resume went through
                    self.resumed += 1
                return
            try:
                asked = True
                status, payload = self.api("operator").call(
                    "POST", f"/moves/{move_id}/resume", {"reason": "crash test: carry on"}, timeout=20
                )
                if status == 202:
                    self.resumed += 1
                    return
                assert status >= 500, payload
            except OSError:
                pass
            self.api_retries += 1
            time.sleep(0.3)
            assert time.monotonic() < deadline, f"could not resume move {move_id}"

    def wait(self) -> None:
        """Keep reading the list through the API (web kills land on reads too)."""
        self.call("staff", "GET", "/requests?per_page=25")
        self.reads += 1
        self.stop.wait(0.3)

    def provision(self, kills_done: Callable[[], int]) -> None:
        """Request ``i`` is created once the one before it finished and ``KILLS_PER_REQUEST * i``
        kills happened (so web kills land on creations and approvals, and scheduler kills on
        provisioning)."""
        for i in range(REQUESTS):
            while not self.stop.is_set() and (kills_done() < KILLS_PER_REQUEST * i or _in_flight(self.j)):
                self.wait()
            if self.stop.is_set():
                return
            request_id = self.create(f"crash{i}")
            self.created.append(request_id)
            self.approve_all_steps(request_id)
        # The moves start once the provisioning kills are spent and every boot settled.
        while not self.stop.is_set() and (kills_done() < PROVISION_KILLS or _in_flight(self.j)):
            self.wait()

    def move(self, kills_done: Callable[[], int]) -> None:
        """Keeps ``MOVES_OPEN`` moves going, server after server, until the last kill (the
        scheduler's worker runs them one at a time: the next one is always queued); a move a
        kill failed is resumed; returns when every move is done."""
        rng = random.Random(SEED + 1)  # its own: the kill loop's draws do not depend on the timing
        conn = lab_connection(Path(self.j.clouds_yaml))
        hosts = sorted(h.name for h in conn.compute.hypervisors())
        with self.j.rt.db.unit_of_work() as uow:
            servers = [
                s
                for s in uow.session.scalars(
                    select(ManagedServer.server_id).where(ManagedServer.state == "active").order_by(ManagedServer.id)
                )
                if s
            ]
        assert servers, "no server to move"
        self.moves_from = time.monotonic()
        turn = 0
        while not self.stop.is_set():
            listed = self.list_moves()
            ours = {i: listed[i] for i in self.moves}
            for move_id, move in ours.items():
                if move["state"] == "failed":
                    self.failures.append(f"{move_id}: {move['state_reason']}")
                    self.resume(move_id)
            busy = {m["server_id"] for m in ours.values() if m["state"] != "done"}
            if kills_done() >= KILLS and not busy:
                return
            while kills_done() < KILLS and len(busy) < MOVES_OPEN:
                server_id = servers[turn % len(servers)]
                turn += 1
                if server_id in busy:
                    continue
                # cold and live by turns: a cold one has two steps and two transitions more to kill
                kind = ("cold", "live")[len(self.moves) % 2]
                body: dict[str, object] = {
                    "kind": kind,
                    "cloud": "education",
                    "server_id": server_id,
                    "reason": f"crash test: {kind} migration",
                }
                if kind == "cold":
                    body["auto_confirm"] = True
                if rng.random() < 0.5:  # else Nova's scheduler picks (the other host: the lab has two)
                    here = conn.compute.get_server(server_id).compute_host
                    body["target_host"] = next(h for h in hosts if h != here)
                self.moves[self.start_move(server_id, body)] = server_id
                busy.add(server_id)
            self.reads += 1
            self.stop.wait(0.3)

    def run(self, kills_done: Callable[[], int]) -> None:
        try:
            self.provision(kills_done)
            if not self.stop.is_set():
                self.move(kills_done)
        except BaseException as exc:  # reported by the test thread
            self.error = exc


def _soon(condition: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.25)
    return True


def _in_flight(j: LabJourney) -> int:
    return sum(s in IN_FLIGHT for s, _ in request_states(j).values())


def _progress(j: LabJourney) -> int:
    """Servers recorded as booting or active (each boot moves it on twice)."""
    with j.rt.db.unit_of_work() as uow:
        states = uow.session.scalars(select(ManagedServer.state)).all()
    return sum({"building": 1, "active": 2}.get(s, 0) for s in states)


def _open_moves(j: LabJourney) -> int:
    with j.rt.db.unit_of_work() as uow:
        count = uow.session.scalar(
            select(func.count()).select_from(Move).where(Move.state.in_([s.value for s in OPEN_STATES]))
        )
    return int(count or 0)


def _move_progress(j: LabJourney) -> int:
    """The moves' recorded transitions and steps (each step moves it on twice: running, done)."""
    with j.rt.db.unit_of_work() as uow:
        events = uow.session.scalar(select(func.count()).select_from(MoveEvent)) or 0
        steps = uow.session.scalars(select(MoveStep.state)).all()
    return int(events) + sum({"running": 1, "done": 2}.get(s, 0) for s in steps)


def _comes(count: Callable[[LabJourney], int], j: LabJourney, timeout: float) -> bool:
    return _soon(lambda: count(j) > 0, timeout)


def _grows(measure: Callable[[LabJourney], int], j: LabJourney, timeout: float) -> bool:
    before = measure(j)
    return _soon(lambda: measure(j) > before, timeout)


def _leader_pid(j: LabJourney) -> int | None:
    held = lease_holder(j.rt.db, LEADER_LEASE)
    return int(held[0].split(":")[1]) if held and held[1] else None


def _moves(j: LabJourney) -> list[Move]:
    with j.rt.db.unit_of_work() as uow:
        return list(moves_service.list_moves(uow.session))


def test_sigkill_web_and_scheduler_at_twenty_points_loses_and_doubles_nothing(
    pg_lab_runtime: Runtime, tmp_path: Path, lab_clouds_yaml: Path
) -> None:
    started = time.monotonic()
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

    def move_states() -> str:
        return ", ".join(f"{m.id} {m.kind} {m.state} ({m.state_reason or m.current_step})" for m in _moves(j))

    try:
        web.start()
        for proc in schedulers:
            proc.start()
        web.wait_http()
        thread.start()
        for n in range(KILLS):
            provisioning = n < PROVISION_KILLS
            if provisioning:
                victim = rng.choice(("scheduler", "scheduler", "scheduler", "web", "both"))
                # when: right after a boot reached Nova (before or while cloudmgr records it),
                # or a random time after the victim came up
                point = rng.choice(("boot", "boot", "timed"))
                busy, measure, label = _in_flight, _progress, "in flight"
            else:
                victim = rng.choice(("scheduler", "scheduler", "web", "both"))
                # when: right after a move's transition or step was recorded (the next one, a
                # call to Nova, is under way), or a random time after the victim came up
                point = rng.choice(("step", "step", "timed"))
                busy, measure, label = _open_moves, _move_progress, "open moves"
            delay = rng.uniform(0.0, 0.4) if point != "timed" else rng.uniform(0.2, 1.5)
            if victim in {"scheduler", "both"} or not provisioning:  # while there is work, unless none comes
                _comes(busy, j, 20 if provisioning else 30)
            lead: Proc = wait_until(leader, 90, tails, step=0.1)
            if victim in {"web", "both"}:
                web.wait_http()
            if point != "timed" and not _grows(measure, j, 15):
                point = f"timed (no {point} came)"
            time.sleep(delay)
            if not provisioning:  # that step may have finished the last open move: kill with the next one
                _comes(busy, j, 30)
            phase = "provisioning" if provisioning else "moves"
            kills.append(f"{n + 1}:{phase}:{victim}/{point}+{delay:.2f}s/{busy(j)} {label}/progress {measure(j)}")
            if victim in {"web", "both"}:
                web.kill()
                web.start()
            if victim in {"scheduler", "both"}:
                lead.kill()
                lead.start()  # the new stand-by
        killed_at = time.monotonic()
        thread.join(300)
        assert not thread.is_alive(), f"the API driver did not finish: {move_states()}\n{tails()}"
        if driver.error is not None:
            raise driver.error
        assert len(driver.created) == REQUESTS

        def all_final() -> bool:
            return all(s in FINAL for s, _ in request_states(j).values())

        wait_until(all_final, 240, lambda: f"{request_states(j)}\n{tails()}", step=0.5)
        finished = time.monotonic()
        states = request_states(j)
        moves = _moves(j)
        rerun = sum(max(s.attempts - 1, 0) for m in moves for s in m.steps)
        print(f"\nkills: {'; '.join(kills)}")
        starts = sum(p.starts for p in schedulers)
        print(f"API calls retried after a web kill: {driver.api_retries} (of {driver.reads} reads and the writes)")
        print(f"scheduler starts: {starts}; web starts: {web.starts}")
        print(
            f"moves: {len(moves)} ({sum(m.kind == 'live' for m in moves)} live, "
            f"{sum(m.kind == 'cold' for m in moves)} cold with auto_confirm, "
            f"{sum(m.target_host is not None for m in moves)} to a named host), "
            f"{sum(m.state == 'done' for m in moves)} done; failed by a kill and resumed: {driver.resumed} "
            f"{driver.failures}; steps run again after a kill: {rerun}"
        )
        moves_from = driver.moves_from or finished
        print(
            f"seconds: set-up and provisioning {moves_from - started:.0f}, moves {killed_at - moves_from:.0f}, "
            f"settling after the last kill {finished - killed_at:.0f}"
        )
        assert sorted(states) == sorted(driver.created), "a request was created twice or lost"
        assert {s for s, _ in states.values()} == {"active"}, states
        assert sorted(m.id for m in moves) == sorted(driver.moves), "a move was stored twice or lost"
        assert {m.state for m in moves} == {"done"}, move_states()

        # Every server is where cloudmgr says: its own record, and the last move's outcome
        # (which each following move found as its source).
        nova = {s.id: s for s in j.nova_servers()}
        assert {(s.status, s.task_state) for s in nova.values()} == {("ACTIVE", None)}
        with j.rt.db.unit_of_work() as uow:
            recorded = dict(uow.session.execute(select(ManagedServer.server_id, ManagedServer.host)).tuples().all())
        assert recorded == {i: s.compute_host for i, s in nova.items()}
        for server_id in {m.server_id for m in moves}:
            chain = sorted((m for m in moves if m.server_id == server_id), key=lambda m: m.id)
            for before, after in pairwise(chain):
                assert after.source_host == before.resources["host"], (before.id, after.id)
            assert chain[-1].resources["host"] == nova[server_id].compute_host, chain[-1].id
            for m in chain:
                assert m.target_host in (None, m.resources["host"]), (m.id, m.target_host, m.resources)
                assert m.resources["host"] != m.source_host, m.id

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
