"""The server mirror against the province's lab cloud: after a full sync, a delta sync
(changes-since) sees servers booted, deleted, resized and live-migrated behind its back.
Everything the test makes (servers, its project) is removed at the end."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from cloudmgr.cloud import CloudProvider, ProjectRef, ServerSpec
from cloudmgr.cloudservers import services as mirror
from cloudmgr.cloudservers.models import MirroredServer
from cloudmgr.cloudservers.services import SyncMode
from cloudmgr.organisation import services as org
from cloudmgr.organisation.actor import Actor
from cloudmgr.organisation.models import Cloud
from cloudmgr.runtime import Runtime
from tests.conftest import ONE_DATABASE, lab_connection

# A loaded lab has taken over 3 minutes to start a resize: each wait gets 5, the test 20.
pytestmark = [pytest.mark.lab, pytest.mark.timeout(1200)]
TIMEOUT = 300.0


@pytest.fixture
def province(lab_runtime: Runtime, tmp_path: Path) -> tuple[int, CloudProvider]:
    departments = tmp_path / "departments.yaml"
    departments.write_text("departments: []\n", encoding="utf-8")
    clouds, depts = org.read_organisation(lab_runtime.settings.clouds_file, departments)
    with lab_runtime.db.unit_of_work() as uow:
        org.import_organisation(
            uow.session, [c for c in clouds if c.key == "province-base"], depts, actor=Actor.system("test")
        )
        cloud = uow.session.scalars(select(Cloud).where(Cloud.key == "province-base")).one()
        cloud_id, os_cloud, region = cloud.id, cloud.os_cloud, cloud.region
    return cloud_id, lab_runtime.providers.for_cloud("province-base", os_cloud, region)


@pytest.fixture
def project(province: tuple[int, CloudProvider], lab_clouds_yaml: Path) -> Iterator[ProjectRef]:
    _, provider = province
    name = f"cmsync-{secrets.token_hex(3)}"
    made = provider.ensure_project("Default", name, "server mirror lab test")
    yield made
    conn = lab_connection(lab_clouds_yaml)
    for server in conn.compute.servers(all_projects=True, project_id=made.id):
        conn.compute.delete_server(server.id, ignore_missing=True)
    for server in conn.compute.servers(all_projects=True, project_id=made.id):
        conn.compute.wait_for_delete(server, wait=TIMEOUT)
    conn.identity.delete_project(made.id, ignore_missing=True)


def _rows(rt: Runtime, cloud_id: int, project_id: str) -> dict[str, MirroredServer]:
    with rt.db.unit_of_work() as uow:
        return {
            r.server_id: r
            for r in uow.session.scalars(
                select(MirroredServer).where(
                    MirroredServer.cloud_id == cloud_id, MirroredServer.project_id == project_id
                )
            )
        }


@ONE_DATABASE
def test_a_delta_sync_sees_boots_deletions_resizes_and_moves(
    lab_runtime: Runtime, province: tuple[int, CloudProvider], project: ProjectRef
) -> None:
    cloud_id, provider = province
    flavor = {f.name: f for f in provider.list_flavors()}
    image = next(i for i in provider.list_images() if i.name == "cirros-lab")
    network = next(n for n in provider.list_networks() if n.name == "lab-extranet")

    def boot(label: str) -> str:
        spec = ServerSpec(
            f"{project.name}-{label}", flavor["m1.tiny"].id, image.id, network.id, f"{project.name}-{label}"
        )
        return provider.create_server(project.id, spec).id

    first = [boot(f"a{n}") for n in range(3)]
    for server_id in first:
        provider.wait_for_server(server_id, {"ACTIVE"}, timeout=TIMEOUT)
    full = mirror.sync_cloud_servers(lab_runtime.db, provider, cloud_id, mode=SyncMode.FULL)
    assert full.mode == SyncMode.FULL and full.watermark is not None
    rows = _rows(lab_runtime, cloud_id, project.id)
    assert set(rows) == set(first)
    assert all(r.updated_at is not None and r.host and r.idempotency_key for r in rows.values())

    deleted, resized, moved = first
    new = boot("b0")
    provider.delete_server(deleted, wait=True)
    provider.resize_server(resized, flavor["m1.small"].id)
    provider.wait_for_server(resized, {"VERIFY_RESIZE"}, timeout=TIMEOUT)
    provider.confirm_resize(resized)
    before = provider.get_server(moved)
    destination = sorted({h.host for h in provider.list_hypervisors()} - {before.host})[0]
    provider.live_migrate(moved, destination)
    assert provider.wait_for_server(moved, {"ACTIVE"}, timeout=TIMEOUT).host == destination
    provider.wait_for_server(new, {"ACTIVE"}, timeout=TIMEOUT)
    provider.wait_for_server(resized, {"ACTIVE"}, timeout=TIMEOUT)

    delta = mirror.sync_cloud_servers(lab_runtime.db, provider, cloud_id)
    assert delta.mode == SyncMode.DELTA and delta.changes_since is not None
    # Other tests may change the lab meanwhile: at least ours are counted.
    assert delta.added >= 1 and delta.removed >= 1 and delta.changed >= 2
    rows = _rows(lab_runtime, cloud_id, project.id)
    assert set(rows) == {resized, moved, new}
    assert rows[resized].flavor_id == flavor["m1.small"].id and rows[resized].status == "ACTIVE"
    assert rows[moved].host == destination
    assert rows[new].status == "ACTIVE" and rows[new].idempotency_key == f"{project.name}-b0"
