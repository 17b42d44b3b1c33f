"""The server mirror on the simulated cloud: a full sync, then deltas that see boots, deletions,
resizes and moves; the counts say what happened; the reconcile reads the mirror."""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from cloudmgr.cloud import CloudProvider, ServerSpec
from cloudmgr.cloud.errors import CloudUnavailable
from cloudmgr.cloudservers import services as mirror
from cloudmgr.cloudservers.errors import SyncRefused, UnknownCloud
from cloudmgr.cloudservers.models import MirroredServer
from cloudmgr.cloudservers.services import SyncMode, SyncPolicy
from cloudmgr.organisation import services as org
from cloudmgr.organisation.actor import Actor
from cloudmgr.organisation.models import Cloud
from cloudmgr.runtime import Runtime

#: No look-back beyond the watermark, small pages: the counts are exact and paging is exercised.
EXACT = SyncPolicy(overlap=timedelta(0), page_size=3)


@pytest.fixture
def base(runtime: Runtime, tmp_path: Path) -> tuple[int, CloudProvider]:
    departments = tmp_path / "departments.yaml"
    departments.write_text("departments: []\n", encoding="utf-8")
    clouds, depts = org.read_organisation(runtime.settings.clouds_file, departments)
    with runtime.db.unit_of_work() as uow:
        org.import_organisation(
            uow.session, [c for c in clouds if c.key == "province-base"], depts, actor=Actor.system("test")
        )
        cloud = uow.session.scalars(select(Cloud).where(Cloud.key == "province-base")).one()
        cloud_id, os_cloud, region = cloud.id, cloud.os_cloud, cloud.region
    return cloud_id, runtime.providers.for_cloud("province-base", os_cloud, region)


def _boot(provider: CloudProvider, project: str, name: str) -> str:
    flavor = next(f for f in provider.list_flavors() if f.name == "m1.tiny")
    image = next(i for i in provider.list_images() if i.name == "cirros-lab")
    network = next(n for n in provider.list_networks() if n.name == "lab-extranet")
    return provider.create_server(project, ServerSpec(name, flavor.id, image.id, network.id, f"key-{name}")).id


def _rows(runtime: Runtime, cloud_id: int) -> dict[str, MirroredServer]:
    with runtime.db.unit_of_work() as uow:
        return {
            r.server_id: r
            for r in uow.session.scalars(select(MirroredServer).where(MirroredServer.cloud_id == cloud_id))
        }


def _step_past_now() -> None:
    # The watermark is the newest updated_at seen (inclusive): changes after it are told apart.
    time.sleep(0.02)


def test_full_then_deltas_see_boots_deletions_resizes_and_moves(
    runtime: Runtime, base: tuple[int, CloudProvider]
) -> None:
    cloud_id, provider = base
    project = provider.ensure_project("sync", "sync-a").id
    other = provider.ensure_project("sync", "sync-b").id
    ids = [_boot(provider, project, f"a{i}") for i in range(5)] + [_boot(provider, other, "b0")]
    before = len(list(provider.iter_servers()))

    first = mirror.sync_cloud_servers(runtime.db, provider, cloud_id, policy=EXACT)
    assert first.mode == SyncMode.FULL  # no watermark yet
    assert (first.added, first.changed, first.removed, first.unchanged) == (before, 0, 0, 0)
    assert first.servers == before and first.pages >= 2
    rows = _rows(runtime, cloud_id)
    assert set(ids) <= set(rows)
    assert rows[ids[0]].idempotency_key == "key-a0" and rows[ids[0]].project_id == project
    assert rows[ids[0]].updated_at is not None and rows[ids[0]].host

    # Nothing changed: a delta relists at most the newest server (changes-since is inclusive).
    _step_past_now()
    quiet = mirror.sync_cloud_servers(runtime.db, provider, cloud_id, policy=EXACT)
    assert quiet.mode == SyncMode.DELTA
    assert (quiet.added, quiet.changed, quiet.removed) == (0, 0, 0) and quiet.listed <= 1

    _step_past_now()
    new = _boot(provider, project, "a-new")
    provider.delete_server(ids[1])
    bigger = next(f for f in provider.list_flavors() if f.name == "m1.small")
    provider.resize_server(ids[2], bigger.id)
    provider.confirm_resize(ids[2])
    was_on = rows[ids[3]].host
    provider.live_migrate(ids[3])
    moved_to = provider.get_server(ids[3]).host
    assert moved_to != was_on

    delta = mirror.sync_cloud_servers(runtime.db, provider, cloud_id, policy=EXACT)
    assert delta.mode == SyncMode.DELTA and delta.changes_since is not None
    assert (delta.added, delta.changed, delta.removed) == (1, 2, 1)
    assert delta.servers == before  # one booted, one deleted
    rows = _rows(runtime, cloud_id)
    assert new in rows and ids[1] not in rows
    assert rows[ids[2]].flavor_id == bigger.id and rows[ids[2]].status == "ACTIVE"
    assert rows[ids[3]].host == moved_to

    # A full sync agrees with the deltas: nothing to add, change or remove.
    full = mirror.sync_cloud_servers(runtime.db, provider, cloud_id, mode=SyncMode.FULL, policy=EXACT)
    assert (full.added, full.changed, full.removed, full.unchanged) == (0, 0, 0, before)

    # A server whose updated_at alone moved (Nova's periodic tasks) is touched, not changed.
    with runtime.db.unit_of_work() as uow:
        row = uow.session.get(MirroredServer, (cloud_id, ids[0]))
        assert row is not None and row.updated_at is not None
        row.updated_at -= timedelta(minutes=5)
    again = mirror.sync_cloud_servers(runtime.db, provider, cloud_id, mode=SyncMode.FULL, policy=EXACT)
    assert (again.changed, again.touched, again.unchanged) == (0, 1, before - 1)
    assert _rows(runtime, cloud_id)[ids[0]].updated_at == provider.get_server(ids[0]).updated_at


def test_a_full_sync_removes_what_a_delta_cannot_see(runtime: Runtime, base: tuple[int, CloudProvider]) -> None:
    """A deletion the cloud forgot (archived) is caught by the next full sync: rows not listed go."""
    cloud_id, provider = base
    project = provider.ensure_project("sync", "sync-gone").id
    kept, gone = _boot(provider, project, "kept"), _boot(provider, project, "gone")
    mirror.sync_cloud_servers(runtime.db, provider, cloud_id, policy=EXACT)
    with runtime.db.unit_of_work() as uow:  # a row the cloud never had, as if its deletion was archived
        uow.session.add(
            MirroredServer(
                cloud_id=cloud_id,
                server_id="archived",
                name="x",
                status="ACTIVE",
                server_metadata={},
                seen_generation=1,
            )
        )
    provider.delete_server(gone)
    full = mirror.sync_cloud_servers(runtime.db, provider, cloud_id, mode=SyncMode.FULL, policy=EXACT)
    assert full.removed == 2
    rows = _rows(runtime, cloud_id)
    assert kept in rows and gone not in rows and "archived" not in rows


def test_auto_mode_goes_full_when_the_last_full_sync_is_too_old(
    runtime: Runtime, base: tuple[int, CloudProvider]
) -> None:
    cloud_id, provider = base
    _boot(provider, provider.ensure_project("sync", "sync-auto").id, "auto")
    mirror.sync_cloud_servers(runtime.db, provider, cloud_id, policy=EXACT)
    assert mirror.sync_cloud_servers(runtime.db, provider, cloud_id, policy=EXACT).mode == SyncMode.DELTA
    stale = SyncPolicy(full_every=timedelta(0), overlap=timedelta(0))
    assert mirror.sync_cloud_servers(runtime.db, provider, cloud_id, policy=stale).mode == SyncMode.FULL


def test_one_project_full_sync_leaves_the_others_and_the_watermark(
    runtime: Runtime, base: tuple[int, CloudProvider]
) -> None:
    cloud_id, provider = base
    a = provider.ensure_project("sync", "sync-pa").id
    b = provider.ensure_project("sync", "sync-pb").id
    in_a, in_b = _boot(provider, a, "pa"), _boot(provider, b, "pb")
    whole = mirror.sync_cloud_servers(runtime.db, provider, cloud_id, policy=EXACT)
    provider.delete_server(in_a)
    one = mirror.sync_cloud_servers(runtime.db, provider, cloud_id, mode=SyncMode.FULL, policy=EXACT, project_id=a)
    assert (one.listed, one.removed) == (0, 1)
    assert in_b in _rows(runtime, cloud_id)
    assert one.watermark == whole.watermark
    with pytest.raises(SyncRefused):
        mirror.sync_cloud_servers(runtime.db, provider, cloud_id, mode=SyncMode.DELTA, project_id=a)


def test_a_failed_sync_removes_nothing_keeps_its_pages_and_is_kept_on_the_state(
    runtime: Runtime, base: tuple[int, CloudProvider], monkeypatch: pytest.MonkeyPatch
) -> None:
    cloud_id, provider = base
    project = provider.ensure_project("sync", "sync-fail").id
    _boot(provider, project, "f0")
    mirror.sync_cloud_servers(runtime.db, provider, cloud_id, policy=EXACT)
    before = _rows(runtime, cloud_id)
    _boot(provider, project, "f1")
    calls = {"n": 0}
    real = provider.list_servers

    def second_page_fails(*args: object, **kwargs: object):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 2:
            raise CloudUnavailable("list servers: connection refused")
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(provider, "list_servers", second_page_fails)
    with runtime.db.unit_of_work() as uow:
        state = mirror.sync_state(uow.session, cloud_id)
        assert state is not None
        watermark = state.watermark
    with pytest.raises(CloudUnavailable):
        mirror.sync_cloud_servers(runtime.db, provider, cloud_id, mode=SyncMode.FULL, policy=SyncPolicy(page_size=1))
    # The first page (the newest server, f1) was written; nothing the listing did not reach is
    # removed and the watermark has not moved.
    assert set(before) < set(_rows(runtime, cloud_id))
    with runtime.db.unit_of_work() as uow:
        state = mirror.sync_state(uow.session, cloud_id)
        assert state is not None and state.last_error and "connection refused" in state.last_error
        assert state.watermark == watermark
    monkeypatch.setattr(provider, "list_servers", real)
    again = mirror.sync_cloud_servers(runtime.db, provider, cloud_id, mode=SyncMode.FULL, policy=EXACT)
    assert again.added == 0 and again.removed == 0
    with runtime.db.unit_of_work() as uow:
        state = mirror.sync_state(uow.session, cloud_id)
        assert state is not None and state.last_error is None


def test_sync_clouds_names_an_unknown_cloud(runtime: Runtime, base: tuple[int, CloudProvider]) -> None:
    with pytest.raises(UnknownCloud):
        mirror.sync_clouds(runtime.db, runtime.providers, cloud_key="no-such-cloud")
    run = mirror.sync_clouds(runtime.db, runtime.providers, cloud_key="province-base")
    assert [o.cloud_key for o in run.outcomes] == ["province-base"] and not run.failed


def test_servers_with_key_reads_only_the_projects_asked(runtime: Runtime, base: tuple[int, CloudProvider]) -> None:
    cloud_id, provider = base
    a = provider.ensure_project("sync", "sync-ka").id
    b = provider.ensure_project("sync", "sync-kb").id
    in_a = _boot(provider, a, "ka")
    _boot(provider, b, "kb")
    mirror.sync_cloud_servers(runtime.db, provider, cloud_id, policy=EXACT)
    with runtime.db.unit_of_work() as uow:
        found = mirror.servers_with_key(uow.session, cloud_id, {a})
        assert [s.id for s in found] == [in_a]
        assert found[0].idempotency_key == "key-ka"
        assert mirror.servers_with_key(uow.session, cloud_id, set()) == []


def test_two_first_syncs_at_once_share_the_one_state_row(runtime: Runtime, base: tuple[int, CloudProvider]) -> None:
    """Two syncs of a cloud never synced before (two schedulers, a CLI run beside the job) both
    find no state row and both create it: the second waits for the first, meets the primary key
    and takes the row the first made, instead of failing its sync."""
    cloud_id, provider = base
    provider.ensure_project("sync", "sync-race")
    second: dict[str, object] = {}

    def second_sync() -> None:
        try:
            second["result"] = mirror.sync_cloud_servers(runtime.db, provider, cloud_id, policy=EXACT)
        except Exception as exc:  # reported below, with the traceback's type
            second["error"] = exc

    with runtime.db.unit_of_work() as uow:
        first = mirror._locked_state(uow.session, cloud_id)  # inserted, not yet committed
        thread = threading.Thread(target=second_sync)
        thread.start()
        thread.join(1.0)
        assert thread.is_alive(), second  # waiting on the first one's row
        first.servers = 0
    thread.join(60)
    assert not thread.is_alive()
    assert "error" not in second, second
    with runtime.db.unit_of_work() as uow:
        state = mirror.sync_state(uow.session, cloud_id)
        assert state is not None and state.last_error is None and state.last_mode == "full"
