"""A cross-cloud move proves every image it carries by checksum (issue 17), on the simulated
clouds: the snapshot and each data volume's image are digested while they download, their
digest equals the source Glance's hash, the target Glance's hash of the upload equals the
download's, and the digests are kept with the move (API and page).  A copy that does not
match is carried again; one that never matches fails the step, keeps the source, and the
move can be undone."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from cloudmgr.cloud import ImageDownload
from cloudmgr.moves import jobs, services
from cloudmgr.moves.transfer import TRANSFER_ATTEMPTS, checksum_rows
from tests.journey_fixtures import Journey
from tests.moves.conftest import provider_of
from tests.moves.test_cross_cloud_parts import (
    AS_OPERATOR,
    _move,
    crash_hook,
    provision_with_parts,
    start,
    write_data,
)
from tests.web.helpers import csrf_token
from web import create_app

__all__ = ["crash_hook"]  # the fixture, imported to be used here


def _sha(provider: Any, image_id: str, folder: Path) -> tuple[str, str | None]:
    """What the image holds, read back from its cloud: SHA-256 and the Glance hash."""
    path = folder / f"{image_id}.check"
    provider.download_image(image_id, path)
    data = path.read_bytes()
    return hashlib.sha256(data).hexdigest(), provider.get_image(image_id).hash_value


def test_every_image_a_move_carries_is_proven_by_checksum_and_shown(
    journey: Journey, crash_hook: Callable[[Callable[[int, str, str], None]], None], tmp_path: Path
) -> None:
    server = provision_with_parts(journey)
    write_data(journey, server)
    source, target = provider_of(journey, "education"), provider_of(journey, "province-base")
    seen: dict[str, tuple[str, str | None]] = {}

    def hook(move_id: int, step: str, phase: str) -> None:
        # Before the cleanup deletes them: what the source and target images really hold.
        if (step, phase) == ("boot", "started"):
            resources = _move(journey, move_id).resources
            seen["source snapshot"] = _sha(source, resources["snapshot_image_id"], tmp_path)
            seen["target snapshot"] = _sha(target, resources["target_image_id"], tmp_path)
            for index, image in resources["volume_images"].items():
                seen[f"source volume {index}"] = _sha(source, image["id"], tmp_path)
            for index, image_id in resources["carried_images"].items():
                seen[f"target volume {index}"] = _sha(target, image_id, tmp_path)

    crash_hook(hook)
    move_id = start(journey, server)
    journey.drain()
    move = _move(journey, move_id)
    assert move.state == "done", move.state_reason
    rows = checksum_rows(move.resources)
    assert [(r["what"], r["volume"]) for r in rows] == [("snapshot", None), ("volume", 1), ("volume", 2)]
    for row in rows:
        name = "snapshot" if row["what"] == "snapshot" else f"volume {row['volume']}"
        # The download's SHA-256 is what the source image holds and what arrived on the target.
        assert row["sha256"] == seen[f"source {name}"][0] == seen[f"target {name}"][0]
        assert row["source"] == {"algo": "sha512", "value": seen[f"source {name}"][1]}
        assert row["target"] == {"algo": "sha512", "value": seen[f"target {name}"][1]}
        assert row["source"]["value"] == row["target"]["value"]
        assert row["source_verified"] and row["target_verified"]
        assert (row["download_attempts"], row["upload_attempts"]) == (1, 1)
    assert rows[1]["sha256"] != rows[2]["sha256"]  # each volume's own bytes

    # The API and the move's page show them.
    rt = journey.rt
    client = create_app(runtime=rt).test_client()
    token = csrf_token(client.get("/login").get_data(as_text=True))
    client.post("/login", data={"username": "operator", "password": "moves-password-1", "csrf_token": token})
    html = client.get(f"/ops/moves/{move_id}").get_data(as_text=True)
    assert 'data-testid="checksums-table"' in html
    for row in rows:
        assert row["sha256"] in html
    _api_checksums(client, journey, move_id, rows)


def _api_checksums(client: FlaskClient, journey: Journey, move_id: int, rows: list[dict[str, Any]]) -> None:
    from cloudmgr.organisation import services as org
    from cloudmgr.organisation.actor import Actor

    with journey.rt.db.unit_of_work() as uow:
        token = org.issue_token(
            uow.session,
            org.get_user_by_name(uow.session, "operator"),
            name="t",
            expires_at=None,
            actor=Actor.system("test"),
        ).token
    answer = client.get(f"/api/v1/moves/{move_id}", headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 200
    assert answer.get_json()["checksums"] == rows


def test_a_download_that_does_not_match_is_carried_again(journey: Journey, monkeypatch: pytest.MonkeyPatch) -> None:
    server = provision_with_parts(journey)
    write_data(journey, server)
    source = provider_of(journey, "education")
    real_download = source.download_image
    calls: list[str] = []

    def flaky(image_id: str, dest_path: Path) -> ImageDownload:
        got = real_download(image_id, dest_path)
        calls.append(image_id)
        if len(calls) == 1:  # the first download arrives with a byte changed on the way
            data = bytearray(Path(dest_path).read_bytes())
            data[len(data) // 2] ^= 0xFF
            Path(dest_path).write_bytes(bytes(data))
            bad = hashlib.sha512(bytes(data)).hexdigest()
            return ImageDownload(len(data), hashlib.sha256(bytes(data)).hexdigest(), "sha512", bad)
        return got

    monkeypatch.setattr(source, "download_image", flaky)
    move_id = start(journey, server)
    journey.drain()
    move = _move(journey, move_id)
    assert move.state == "done", move.state_reason
    snapshot = checksum_rows(move.resources)[0]
    assert snapshot["download_attempts"] == 2 and snapshot["source_verified"]
    assert calls[0] == calls[1]  # the same snapshot downloaded again


def test_a_copy_that_never_matches_fails_the_step_keeps_the_source_and_is_undone(
    journey: Journey, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = provision_with_parts(journey)
    write_data(journey, server)
    source, target = provider_of(journey, "education"), provider_of(journey, "province-base")
    real_upload = target.upload_image
    uploads: list[str] = []

    def corrupting(name: str, data: bytes | Path, *args: Any, **kwargs: Any) -> Any:
        # The target stores something else than was sent, every time.
        content = bytearray(Path(data).read_bytes() if isinstance(data, Path) else data)
        content[0] ^= 0x01
        made = real_upload(name, bytes(content), *args, **kwargs)
        uploads.append(made.id)
        return made

    monkeypatch.setattr(target, "upload_image", corrupting)
    move_id = start(journey, server)
    journey.drain()
    move = _move(journey, move_id)
    assert move.state == "failed"
    reason = move.state_reason or ""
    assert reason.startswith("upload: the copy of the snapshot on the target has sha512 checksum"), reason
    assert f"{TRANSFER_ATTEMPTS} times: the transfer is given up (the source is kept)" in reason
    assert len(uploads) == TRANSFER_ATTEMPTS
    # Every bad copy is gone from the target; the source server is there, stopped, not deleted.
    assert not {i.id for i in target.list_images()} & set(uploads)
    assert source.get_server(server.server_id or "").status == "SHUTOFF"
    steps = {s.name: s for s in move.steps}
    assert steps["upload"].state == "failed" and "delete_source" not in {
        n for n, s in steps.items() if s.state == "done"
    }
    assert services.may_undo(move)
    with journey.rt.db.unit_of_work() as uow:
        services.revert(uow.session, move_id, actor=AS_OPERATOR, reason="the copies do not match")
    journey.drain()
    assert _move(journey, move_id).state == "reverted"
    assert source.get_server(server.server_id or "").status == "ACTIVE"


def test_resumed_after_the_upload_the_copy_is_checked_not_trusted(
    journey: Journey, crash_hook: Callable[[Callable[[int, str, str], None]], None]
) -> None:
    """A worker killed after the target took the upload, before the step was recorded: the
    resumed step finds the copy, checks it against the download, and keeps it."""
    server = provision_with_parts(journey)
    write_data(journey, server)
    target = provider_of(journey, "province-base")
    killed: list[int] = []

    class Killed(BaseException):
        pass

    def hook(move_id: int, step: str, phase: str) -> None:
        if (step, phase) == ("upload", "acted") and not killed:
            killed.append(move_id)
            raise Killed

    crash_hook(hook)
    move_id = start(journey, server)
    with pytest.raises(Killed):
        jobs.run_move(journey.rt.db, journey.rt.providers, move_id)
    images = [i.id for i in target.list_images() if i.name.endswith("-image")]
    assert len(images) == 1
    jobs.run_move(journey.rt.db, journey.rt.providers, move_id)
    move = _move(journey, move_id)
    assert move.state == "done", move.state_reason
    snapshot = checksum_rows(move.resources)[0]
    assert snapshot["upload_attempts"] == 0 and snapshot["target_verified"]  # found, checked, kept
    assert move.resources["target_image_id"] in images
