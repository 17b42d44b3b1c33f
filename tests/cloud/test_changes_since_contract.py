"""The part of the listing contract a server mirror rests on (issue 20), on the simulator and on
both lab clouds: every listed server has ``updated_at``, a listing with ``changes_since`` returns a
server deleted since then with status DELETED (and not the servers that did not change); asked in
pages of 1000, the sync's page size (Nova's default cap)."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from cloudmgr.cloud import Server
from tests.cloud.conftest import CloudTestEnv


def test_changes_since_lists_a_deleted_server_as_deleted(cloud: CloudTestEnv) -> None:
    project = cloud.new_project("changes")
    booted = [cloud.boot(project, cloud.spec(f"changes-{n}"), wait=False) for n in range(2)]
    kept, deleted = (cloud.provider.wait_for_server(s.id, {"ACTIVE"}, timeout=120) for s in booted)
    listed: list[Server] = list(cloud.provider.list_servers(project.id, limit=1000).servers)
    assert sorted(s.id for s in listed) == sorted([kept.id, deleted.id])
    for server in listed:
        assert server.updated_at is not None and server.updated_at.tzinfo is not None, server
    # Nova keeps updated_at to the second: step over a second boundary on both sides.
    time.sleep(1.1)
    since = datetime.now(UTC).replace(microsecond=0)
    time.sleep(0.2)
    cloud.provider.delete_server(deleted.id, wait=True)
    changed = cloud.provider.list_servers(project.id, limit=1000, changes_since=since).servers
    assert [(s.id, s.status) for s in changed] == [(deleted.id, "DELETED")]
    assert changed[0].updated_at is not None and changed[0].updated_at >= since
    assert [s.id for s in cloud.provider.list_servers(project.id, limit=1000).servers] == [kept.id]
