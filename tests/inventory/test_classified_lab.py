"""The adapter guard on the real OpenStack (lab): a classified server never reaches Nova."""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest

from cloudmgr.cloud import ServerSpec
from cloudmgr.cloud.guard import ClassifiedServerRefused
from cloudmgr.cloud.openstack import OpenStackProvider
from tests.conftest import lab_connection

pytestmark = pytest.mark.lab


def test_openstack_provider_refuses_classified_metadata_before_nova(lab_clouds_yaml: Path) -> None:
    conn = lab_connection(lab_clouds_yaml)
    provider = OpenStackProvider(cloud="cloudmgr-lab", config_files=[str(lab_clouds_yaml)], retries=1)
    flavor = next(f for f in provider.list_flavors() if f.name == "m1.tiny")
    image = provider.list_images()[0]
    name = f"b1-classified-{secrets.token_hex(4)}"
    spec = ServerSpec(
        name=name,
        flavor_id=flavor.id,
        image_id=image.id,
        network_id=None,
        idempotency_key=f"{name}-key",
        metadata={"cloudmgr-legacy-system": "czt-hexin-db01", "cloudmgr-classification": "classified"},
    )
    try:
        with pytest.raises(ClassifiedServerRefused, match="czt-hexin-db01"):
            provider.create_server(conn.current_project_id, spec)
        # nothing reached Nova: no server of that name in any project
        assert list(conn.compute.servers(all_projects=True, name=name)) == []
    finally:
        for server in conn.compute.servers(all_projects=True, name=name):  # only if the guard failed
            conn.compute.delete_server(server, ignore_missing=True)
