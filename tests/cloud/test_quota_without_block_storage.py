"""A cloud without a block-storage (Cinder) service has no Cinder quota at all: get_quota
says so (``block_storage`` None, not zeros) and set_quota sets the rest and leaves Cinder
alone, on both providers.  The lab plays such a cloud through a clouds.yaml whose
block-storage service type is missing from the catalog: the SDK's own "not in the
catalog" path, as on a cloud deployed without Cinder."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

import pytest
import yaml

from cloudmgr.cloud import BlockStorageQuota, CloudProvider, ComputeQuota
from cloudmgr.cloud.openstack import OpenStackProvider
from cloudmgr.cloud.simulated import SimulatedProvider

from .conftest import CloudTestEnv, lab_clouds_yaml


@pytest.fixture
def without_cinder(cloud: CloudTestEnv, tmp_path: Path) -> Callable[[], AbstractContextManager[CloudProvider]]:
    """Opens the same cloud seen as one without a block-storage service."""

    @contextmanager
    def opened() -> Iterator[CloudProvider]:
        if cloud.kind == "simulated":
            assert isinstance(cloud.provider, SimulatedProvider)
            cloud.provider.offers_block_storage = False
            try:
                yield cloud.provider
            finally:
                del cloud.provider.offers_block_storage
            return
        config = yaml.safe_load(lab_clouds_yaml().read_text(encoding="utf-8"))
        config["clouds"][cloud.lab_cloud]["block_storage_service_type"] = "cmct-no-such-volume-service"
        clouds_yaml = tmp_path / "clouds.yaml"
        clouds_yaml.write_text(yaml.safe_dump(config), encoding="utf-8")
        yield OpenStackProvider(cloud=cloud.lab_cloud, config_files=[clouds_yaml], retries=1)

    return opened


def test_no_block_storage_reads_as_none_and_is_not_set(
    cloud: CloudTestEnv, without_cinder: Callable[[], AbstractContextManager[CloudProvider]]
) -> None:
    project = cloud.new_project("nocinder", quota=None)
    with_cinder = cloud.provider.get_quota(project.id)
    assert with_cinder.block_storage is not None  # the cloud itself has Cinder

    with without_cinder() as provider:
        seen = provider.get_quota(project.id)
        assert seen.block_storage is None
        assert (seen.compute, seen.network) == (with_cinder.compute, with_cinder.network)
        wanted = dataclasses.replace(
            seen,
            compute=ComputeQuota(cores=9, ram_mb=9216, instances=3),
            block_storage=BlockStorageQuota(volumes=1, gigabytes=1, snapshots=1, backups=1),
        )
        provider.set_quota(project.id, wanted)  # no error: the Cinder part has nowhere to go
    after = cloud.provider.get_quota(project.id)
    assert after.compute == wanted.compute
    assert after.block_storage == with_cinder.block_storage
