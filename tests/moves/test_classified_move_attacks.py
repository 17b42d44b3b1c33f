"""Issue 14, the review's attack on moves: a self-service server of a legacy system that is
re-imported as classified must not be moved, neither to another cloud nor to another host
of its own, whether the move is asked for after the reclassification (refused at creation)
or was created before it (refused in the job, right before the step that places it).

The system is found through the server's request (``ServiceRequest.legacy_system_id``), not
only through ``LegacySystem.cloud_server_id`` as before, and every refusal is audited with
the actor and the path.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select

from cloudmgr.inventory.classification import systems_of_server
from cloudmgr.moves import jobs, stepping
from cloudmgr.moves.models import Move
from cloudmgr.quotas.models import QuotaReservation
from cloudmgr.servicerequests import services as requests_service
from cloudmgr.servicerequests.models import ManagedServer
from tests.journey_fixtures import Journey
from tests.moves.conftest import provider_of
from tests.servicerequests.classified_helpers import Api, api_as, cloud_servers, import_system, refusals
from web import create_app


def _provision_for(journey: Journey, hostname: str, prefix: str) -> tuple[int, ManagedServer]:
    """A non-classified system and a server for it, through the self-service flow."""
    system_id = import_system(journey.rt, hostname, classified=False)
    form = journey.form(1, prefix=prefix)
    from dataclasses import replace

    with journey.rt.db.unit_of_work() as uow:
        request_id = requests_service.create_request(
            uow.session, journey.staff, replace(form, legacy_system_id=system_id), submit=True,
            settings=journey.rt.settings,
        ).id  # fmt: skip
    for actor in (journey.head, journey.operator):
        with journey.rt.db.unit_of_work() as uow:
            requests_service.approve_request(uow.session, actor, request_id, reason="ok")
    journey.drain()
    with journey.rt.db.unit_of_work() as uow:
        server = uow.session.scalars(select(ManagedServer).where(ManagedServer.request_id == request_id)).one()
        uow.session.expunge(server)
    assert server.state == "active" and server.server_id
    return system_id, server


def _operator(journey: Journey) -> Api:
    return api_as(create_app(runtime=journey.rt), journey.rt, "operator")


def _cross_cloud(server: ManagedServer) -> dict[str, Any]:
    return {
        "kind": "cross_cloud",
        "cloud": "education",
        "server_id": server.server_id,
        "target_cloud": "province-base",
        "reason": "consolidate onto the base cloud",
    }


def _live(server: ManagedServer) -> dict[str, Any]:
    return {"kind": "live", "cloud": "education", "server_id": server.server_id, "reason": "host firmware"}


def _move(journey: Journey, move_id: int) -> Move:
    with journey.rt.db.unit_of_work() as uow:
        move = uow.session.get(Move, move_id)
        assert move is not None
        uow.session.expunge(move)
        return move


def _refused(response: Any) -> None:
    assert response.status_code == 409, response.get_data(as_text=True)
    assert response.get_json()["error"] == "classified_system"
    assert "must leave the cloud" in response.get_json()["message"]


def test_attack_server_found_through_its_request_not_only_through_cloud_server_id(journey: Journey) -> None:
    system_id, server = _provision_for(journey, "edu-mv-find", "find")
    with journey.rt.db.unit_of_work() as uow:
        # Neither the system's cloud_server_id nor any metadata: the request alone ties them.
        by_request = systems_of_server(uow.session, managed_server_id=server.id)
        by_cloud_id = systems_of_server(uow.session, cloud_server_id=server.server_id)
        assert [s.id for s in by_request] == [s.id for s in by_cloud_id] == [system_id]


def test_attack_moves_asked_for_after_the_reclassification_are_refused_at_creation(journey: Journey) -> None:
    _system_id, server = _provision_for(journey, "edu-mv-now", "now")
    import_system(journey.rt, "edu-mv-now", classified=True)
    operator = _operator(journey)
    _refused(operator.post("/moves", _cross_cloud(server)))
    _refused(operator.post("/moves", _live(server)))
    _refused(operator.post("/moves", {**_live(server), "kind": "cold"}))
    for entry_point in ("move.cross_cloud", "move.live", "move.cold"):
        [event] = refusals(journey.rt, entry_point)
        assert event.actor == "operator" and event.detail["cloud_server_id"] == server.server_id
    with journey.rt.db.unit_of_work() as uow:
        assert uow.session.scalar(select(Move)) is None


@pytest.fixture
def reclassify_before_boot(journey: Journey) -> Iterator[list[str]]:
    """Re-import the system as classified once the image is uploaded, just before the boot."""
    done: list[str] = []

    def hook(move_id: int, step: str, phase: str) -> None:
        if (step, phase) == ("upload", "done") and not done:
            import_system(journey.rt, "edu-mv-mid", classified=True)
            done.append(step)

    stepping.CRASH_HOOK = hook
    yield done
    stepping.CRASH_HOOK = None


def test_attack_cross_cloud_move_created_before_the_reclassification_is_refused_in_the_job(
    journey: Journey,
) -> None:
    _system_id, server = _provision_for(journey, "edu-mv-late", "late")
    operator = _operator(journey)
    created = operator.post("/moves", _cross_cloud(server))
    assert created.status_code == 202, created.get_data(as_text=True)
    move_id = created.get_json()["id"]
    assert _move(journey, move_id).reservation_id is not None
    import_system(journey.rt, "edu-mv-late", classified=True)

    journey.drain()

    move = _move(journey, move_id)
    assert move.state == "failed" and "classified system edu-mv-late" in (move.state_reason or "")
    # The reason is kept as a message too: the console says it in the reader's language.
    kept = move.resources["messages"][move.state_reason]
    assert kept["params"]["step"] == "stop_source" and kept["params"]["reason"]["msgid"].startswith(
        "%(refusal)s Server"
    )
    assert kept["params"]["reason"]["params"]["refusal"]["params"]["system"] == "edu-mv-late"
    [event] = refusals(journey.rt, "move.cross_cloud.start")
    assert event.actor == jobs.SYSTEM.username and event.detail["move_id"] == move_id
    assert cloud_servers(journey.rt, "province-base") == []  # nothing placed on the target
    source = provider_of(journey, "education").get_server(server.server_id or "")
    assert source.status == "ACTIVE"  # refused before the source was touched
    assert move.reservation_id is None
    with journey.rt.db.unit_of_work() as uow:
        held = uow.session.scalar(select(QuotaReservation).where(QuotaReservation.owner == f"move:{server.server_id}"))
        assert held is not None and held.state == "released"


def test_attack_system_reclassified_during_the_move_is_refused_right_before_the_boot(
    journey: Journey, reclassify_before_boot: list[str]
) -> None:
    _system_id, server = _provision_for(journey, "edu-mv-mid", "mid")
    created = _operator(journey).post("/moves", _cross_cloud(server))
    assert created.status_code == 202, created.get_data(as_text=True)
    move_id = created.get_json()["id"]

    journey.drain()

    assert reclassify_before_boot == ["upload"]
    move = _move(journey, move_id)
    assert move.state == "failed" and move.state_reason and move.state_reason.startswith("boot:")
    [event] = refusals(journey.rt, "move.cross_cloud.boot")
    assert event.actor == jobs.SYSTEM.username and event.detail["move_id"] == move_id
    assert cloud_servers(journey.rt, "province-base") == []
    with journey.rt.db.unit_of_work() as uow:
        assert uow.session.get(ManagedServer, server.id).cloud_id == server.cloud_id  # type: ignore[union-attr]


def test_attack_live_move_created_before_the_reclassification_is_refused_in_the_job(journey: Journey) -> None:
    _system_id, server = _provision_for(journey, "edu-mv-live", "live")
    provider = provider_of(journey, "education")
    host_before = provider.get_server(server.server_id or "").host
    created = _operator(journey).post("/moves", _live(server))
    assert created.status_code == 202, created.get_data(as_text=True)
    move_id = created.get_json()["id"]
    import_system(journey.rt, "edu-mv-live", classified=True)

    journey.drain()

    move = _move(journey, move_id)
    assert move.state == "failed" and "must leave the cloud" in (move.state_reason or "")
    [event] = refusals(journey.rt, "move.live.job")
    assert event.actor == jobs.SYSTEM.username and event.detail["move_id"] == move_id
    assert provider.get_server(server.server_id or "").host == host_before


def test_attack_drain_leaves_a_classified_systems_server_on_its_host_and_says_so(journey: Journey) -> None:
    """A drain moves every server of a host; a classified system's server is refused (its
    per-server move fails, audited "move.drain") and the drain ends partial naming it."""
    _system_id, secret = _provision_for(journey, "edu-mv-drain", "drn")
    _other_id, plain = _provision_for(journey, "edu-mv-plain", "pln")
    provider = provider_of(journey, "education")
    for server in (secret, plain):
        if provider.get_server(server.server_id or "").host != "sim-host-1":
            provider.live_migrate(server.server_id or "", "sim-host-1")
    import_system(journey.rt, "edu-mv-drain", classified=True)
    created = _operator(journey).post(
        "/moves", {"kind": "drain", "cloud": "education", "host": "sim-host-1", "reason": "replace a DIMM"}
    )
    assert created.status_code == 202, created.get_data(as_text=True)
    move_id = created.get_json()["id"]

    journey.drain()

    move = _move(journey, move_id)
    assert move.state == "partial" and secret.name in (move.state_reason or "")
    assert [s.id for s in provider.list_servers_on_host("sim-host-1")] == [secret.server_id]
    assert provider.get_server(plain.server_id or "").host != "sim-host-1"
    [event] = refusals(journey.rt, "move.drain")
    assert event.actor == jobs.SYSTEM.username and event.detail["cloud_server_id"] == secret.server_id
