"""The CloudProvider contract, run against the simulator and the lab OpenStack alike.

Every test receives ``cloud`` (a CloudTestEnv) or ``provider`` from conftest.py and must
pass unchanged for both kinds: that is what lets the demo stand in for a real cloud.
"""

from __future__ import annotations

import dataclasses
import hashlib
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest

from cloudmgr.cloud import (
    IDEMPOTENCY_METADATA_KEY,
    UNLIMITED,
    Allocation,
    BlockStorageQuota,
    CloudBadRequest,
    CloudNotFound,
    CloudNoValidHost,
    CloudProvider,
    CloudQuotaExceeded,
    ComputeQuota,
    ComputeUsage,
    Flavor,
    Hypervisor,
    Image,
    Network,
    NetworkQuota,
    ProjectRef,
    QuotaSet,
    ResourceProvider,
    Server,
)

from .conftest import LAB_FLAVORS, LAB_IMAGE, LAB_NETWORKS, RUN_ID, TEST_DOMAIN, CloudTestEnv

THREE_INSTANCES = QuotaSet(
    compute=ComputeQuota(cores=UNLIMITED, ram_mb=UNLIMITED, instances=3),
    network=NetworkQuota(
        networks=10, subnets=10, ports=100, floating_ips=10, security_groups=20, security_group_rules=200
    ),
    block_storage=None,
)


def _only_our_types(values: object) -> None:
    """Nothing from the SDK may come out of a provider: only our frozen dataclasses."""
    for value in values if isinstance(values, list | tuple) else [values]:
        assert dataclasses.is_dataclass(value), f"{type(value)!r} is not one of cloudmgr's types"
        assert type(value).__module__ == "cloudmgr.cloud.types", type(value)


def _other_host(provider: CloudProvider, server: Server) -> str:
    hosts = sorted({h.host for h in provider.list_hypervisors()} - {server.host})
    assert hosts, f"no host other than {server.host}"
    return hosts[0]


# ---- module-wide resources ------------------------------------------------------------


@pytest.fixture(scope="module")
def main_project(cloud: CloudTestEnv) -> ProjectRef:
    return cloud.new_project("main")


@pytest.fixture(scope="module")
def worker(cloud: CloudTestEnv, main_project: ProjectRef) -> Server:
    """A running server the lifecycle tests share; each test leaves it ACTIVE."""
    return cloud.boot(main_project, cloud.spec("worker", team="contract"))


@pytest.fixture(scope="module")
def three_servers(cloud: CloudTestEnv) -> tuple[ProjectRef, list[Server]]:
    """A project whose quota allows three instances, with three running servers in it."""
    project = cloud.new_project("three", quota=THREE_INSTANCES)
    servers = [cloud.boot(project, cloud.spec(f"three-{n}"), wait=False) for n in range(3)]
    return project, [cloud.provider.wait_for_server(s.id, {"ACTIVE"}, timeout=120) for s in servers]


# ---- projects and quotas --------------------------------------------------------------


def test_ensure_project_is_idempotent(cloud: CloudTestEnv) -> None:
    name = f"{cloud.module}-dept-{RUN_ID}"
    first = cloud.provider.ensure_project(TEST_DOMAIN, name, "first description")
    cloud.projects.append(first)
    second = cloud.provider.ensure_project(TEST_DOMAIN, name, "second description")
    _only_our_types([first, second])
    assert second == first
    assert first.name == name
    assert first.domain_id
    other = cloud.new_project("other-dept", quota=None)
    assert other.id != first.id
    assert other.domain_id == first.domain_id


def test_quotas_roundtrip_and_usage_of_an_empty_project(cloud: CloudTestEnv) -> None:
    project = cloud.new_project("quota", quota=None)
    wanted = QuotaSet(
        compute=ComputeQuota(cores=7, ram_mb=7168, instances=5),
        network=NetworkQuota(
            networks=3, subnets=4, ports=9, floating_ips=2, security_groups=5, security_group_rules=41
        ),
        block_storage=BlockStorageQuota(volumes=6, gigabytes=300, snapshots=4, backups=3),
    )
    cloud.provider.set_quota(project.id, wanted)
    got = cloud.provider.get_quota(project.id)
    _only_our_types([got, got.compute, got.network, got.block_storage])
    if not cloud.offers_floating_ips():
        # No router extension: no floating IPs to be had, whatever was asked.
        wanted = dataclasses.replace(wanted, network=dataclasses.replace(wanted.network, floating_ips=0))
    assert got == wanted
    unlimited_cores = dataclasses.replace(wanted, compute=dataclasses.replace(wanted.compute, cores=UNLIMITED))
    cloud.provider.set_quota(project.id, unlimited_cores)
    assert cloud.provider.get_quota(project.id).compute.cores == UNLIMITED
    assert cloud.provider.get_compute_usage(project.id) == ComputeUsage(cores=0, ram_mb=0, instances=0)
    # block_storage None leaves Cinder's quota as it was.
    cloud.provider.set_quota(project.id, dataclasses.replace(wanted, block_storage=None))
    assert cloud.provider.get_quota(project.id).block_storage == wanted.block_storage


def test_quota_of_unknown_project_is_not_found(provider: CloudProvider) -> None:
    with pytest.raises(CloudNotFound):
        provider.get_quota(uuid.uuid4().hex)


def test_fourth_server_exceeds_an_instance_quota_of_three(
    cloud: CloudTestEnv, three_servers: tuple[ProjectRef, list[Server]]
) -> None:
    project, servers = three_servers
    assert [s.status for s in servers] == ["ACTIVE"] * 3
    with pytest.raises(CloudQuotaExceeded) as refused:
        cloud.provider.create_server(project.id, cloud.spec("three-4th"))
    assert "quota" in str(refused.value).lower()
    assert len(list(cloud.provider.iter_servers(project.id))) == 3


def test_usage_counts_the_projects_servers(cloud: CloudTestEnv, three_servers: tuple[ProjectRef, list[Server]]) -> None:
    project, _ = three_servers
    tiny = cloud.flavor("m1.tiny")
    usage = cloud.provider.get_compute_usage(project.id)
    _only_our_types(usage)
    assert usage == ComputeUsage(cores=3 * tiny.vcpus, ram_mb=3 * tiny.ram_mb, instances=3)


# ---- catalogue ------------------------------------------------------------------------


def test_catalogue_has_the_lab_flavors_image_and_networks(provider: CloudProvider) -> None:
    flavors = provider.list_flavors()
    images = provider.list_images()
    networks = provider.list_networks()
    _only_our_types([*flavors, *images, *networks])
    by_name: dict[str, Flavor] = {f.name: f for f in flavors}
    assert set(LAB_FLAVORS) <= set(by_name)
    assert by_name["m1.tiny"].vcpus >= 1 and by_name["m1.tiny"].ram_mb > 0
    assert by_name["m1.large"].vcpus > by_name["m1.tiny"].vcpus
    image: Image = next(i for i in images if i.name == LAB_IMAGE)
    assert image.status == "active"
    assert image.size_bytes and image.size_bytes > 0
    nets: dict[str, Network] = {n.name: n for n in networks}
    for name in LAB_NETWORKS:
        assert nets[name].is_shared
        assert nets[name].cidrs, f"{name} has no subnet"


# ---- booting --------------------------------------------------------------------------


def test_a_first_try_skips_the_look_up_and_is_found_by_its_key_afterwards(cloud: CloudTestEnv) -> None:
    """``first_try``: the caller promises nothing was asked with the key before; the server
    still carries the key, so a later (retried) call finds it instead of booting another."""
    project = cloud.new_project("first")
    spec = cloud.spec("first", purpose="first-try")
    first = cloud.provider.create_server(project.id, spec, first_try=True)
    cloud.servers.append(first.id)
    again = cloud.provider.create_server(project.id, spec)
    assert again.id == first.id
    assert [s.id for s in cloud.provider.iter_servers(project.id)] == [first.id]
    assert cloud.provider.wait_for_server(first.id, {"ACTIVE"}, timeout=120).idempotency_key == spec.idempotency_key


def test_create_server_is_idempotent(cloud: CloudTestEnv) -> None:
    project = cloud.new_project("idem")
    spec = cloud.spec("idem", purpose="idempotency")
    first = cloud.boot(project, spec, wait=False)
    _only_our_types(first)
    # Again at once (likely still building), then once it is running.
    again = cloud.provider.create_server(project.id, spec)
    running = cloud.provider.wait_for_server(first.id, {"ACTIVE"}, timeout=120)
    third = cloud.provider.create_server(project.id, spec)
    assert again.id == first.id == third.id
    servers = list(cloud.provider.iter_servers(project.id))
    assert [s.id for s in servers] == [first.id]
    assert running.metadata[IDEMPOTENCY_METADATA_KEY] == spec.idempotency_key
    assert running.idempotency_key == spec.idempotency_key
    assert running.metadata["purpose"] == "idempotency"
    assert running.project_id == project.id
    assert running.flavor_id == spec.flavor_id
    assert running.image_id == spec.image_id
    assert running.host, "an admin sees the compute host"
    assert running.addresses.get(LAB_NETWORKS[0]), running.addresses
    assert running.created_at is not None and running.created_at.tzinfo is not None
    found = cloud.provider.find_server_by_key(project.id, spec.idempotency_key)
    assert found is not None and found.id == first.id
    assert cloud.provider.find_server_by_key(project.id, "no-such-key") is None


def test_create_server_with_unknown_flavor_is_a_bad_request(cloud: CloudTestEnv, main_project: ProjectRef) -> None:
    with pytest.raises(CloudBadRequest):
        cloud.provider.create_server(main_project.id, cloud.spec("bad-flavor", flavor="no-such-flavor-" + RUN_ID))


def test_oversized_flavor_ends_in_no_valid_host(
    cloud: CloudTestEnv, main_project: ProjectRef, oversized_flavor_id: str
) -> None:
    server = cloud.boot(main_project, cloud.spec("too-big", flavor=oversized_flavor_id), wait=False)
    with pytest.raises(CloudNoValidHost) as failed:
        cloud.provider.wait_for_server(server.id, {"ACTIVE"}, timeout=120)
    assert "no valid host" in failed.value.detail.lower()
    errored = cloud.provider.get_server(server.id)
    assert errored.status == "ERROR"
    assert errored.fault_message and "no valid host" in errored.fault_message.lower()
    assert errored.host is None
    # The failed server is still the answer for its key: the caller decides what to do.
    again = cloud.provider.create_server(
        main_project.id,
        cloud.spec("too-big", flavor=oversized_flavor_id, key=server.idempotency_key),
    )
    assert again.id == server.id


# ---- listing --------------------------------------------------------------------------


def test_list_servers_pages_with_markers(cloud: CloudTestEnv, three_servers: tuple[ProjectRef, list[Server]]) -> None:
    project, servers = three_servers
    first = cloud.provider.list_servers(project.id, limit=2)
    _only_our_types(first)
    assert len(first.servers) == 2
    assert first.next_marker is not None
    second = cloud.provider.list_servers(project.id, limit=2, marker=first.next_marker)
    assert len(second.servers) == 1
    assert second.next_marker is None
    listed = [s.id for s in first.servers + second.servers]
    assert sorted(listed) == sorted(s.id for s in servers)
    one_by_one = [s.id for s in cloud.provider.iter_servers(project.id, page_size=1)]
    assert sorted(one_by_one) == sorted(listed)
    everywhere = {s.id for s in cloud.provider.iter_servers(None, page_size=50)}
    assert set(listed) <= everywhere


def test_list_servers_with_unknown_marker_is_a_bad_request(provider: CloudProvider) -> None:
    with pytest.raises(CloudBadRequest):
        provider.list_servers(limit=2, marker=str(uuid.uuid4()))


def test_list_servers_changes_since(cloud: CloudTestEnv, three_servers: tuple[ProjectRef, list[Server]]) -> None:
    project, servers = three_servers
    # Nova keeps updated_at to the second: step over a second boundary on both sides.
    time.sleep(1.1)
    since = datetime.now(UTC).replace(microsecond=0)
    time.sleep(0.2)
    changed = servers[0]
    cloud.provider.stop_server(changed.id)
    cloud.provider.wait_for_server(changed.id, {"SHUTOFF"}, timeout=120)
    page = cloud.provider.list_servers(project.id, limit=10, changes_since=since)
    assert [s.id for s in page.servers] == [changed.id]
    assert page.servers[0].status == "SHUTOFF"
    everything = cloud.provider.list_servers(project.id, limit=10)
    assert len(everything.servers) == 3


def test_get_servers_reads_a_set_of_servers_of_a_project_together(
    cloud: CloudTestEnv, three_servers: tuple[ProjectRef, list[Server]], main_project: ProjectRef
) -> None:
    provider = cloud.provider
    project, servers = three_servers
    wanted = [s.id for s in servers[:2]]
    unknown = str(uuid.uuid4())
    found = provider.get_servers(project.id, [*wanted, unknown])
    _only_our_types(list(found.values()))
    assert sorted(found) == sorted(wanted)
    for server in servers[:2]:
        got, alone = found[server.id], provider.get_server(server.id)
        assert (got.name, got.status, got.host, got.metadata, got.flavor_id, got.addresses) == (
            alone.name,
            alone.status,
            alone.host,
            alone.metadata,
            alone.flavor_id,
            alone.addresses,
        )
        # (an earlier test of the module stops the first one)
        assert got.status in {"ACTIVE", "SHUTOFF"} and got.project_id == project.id and got.host
    # Another project's server is not one of this project's; nothing asked, nothing read.
    assert provider.get_servers(main_project.id, wanted) == {}
    assert provider.get_servers(project.id, []) == {}


def test_get_servers_since_an_instant_returns_what_changed_and_what_was_deleted(
    cloud: CloudTestEnv, main_project: ProjectRef
) -> None:
    provider = cloud.provider
    building = cloud.boot(main_project, cloud.spec("watched-1"), wait=False)
    doomed = cloud.boot(main_project, cloud.spec("watched-2"), wait=False)
    running = provider.wait_for_server(building.id, {"ACTIVE"}, timeout=120)
    provider.wait_for_server(doomed.id, {"ACTIVE"}, timeout=120)
    assert set(provider.get_servers(main_project.id, [building.id, doomed.id])) == {building.id, doomed.id}
    # Nova keeps updated_at to the second: step over a second boundary on both sides.
    time.sleep(1.1)
    since = datetime.now(UTC).replace(microsecond=0)
    time.sleep(0.2)
    provider.delete_server(doomed.id, wait=True)
    changed = provider.get_servers(main_project.id, [building.id, doomed.id], changes_since=since)
    assert list(changed) == [doomed.id]  # the one left alone did not change
    assert changed[doomed.id].status == "DELETED"
    # Without an instant, a deleted server is no longer the project's.
    left = provider.get_servers(main_project.id, [building.id, doomed.id])
    assert list(left) == [building.id] and left[building.id].status == running.status == "ACTIVE"


# ---- lifecycle ------------------------------------------------------------------------


def test_stop_and_start(cloud: CloudTestEnv, worker: Server) -> None:
    provider = cloud.provider
    provider.stop_server(worker.id)
    assert provider.wait_for_server(worker.id, {"SHUTOFF"}, timeout=120).status == "SHUTOFF"
    provider.stop_server(worker.id)  # already stopped: nothing to do
    provider.start_server(worker.id)
    assert provider.wait_for_server(worker.id, {"ACTIVE"}, timeout=120).status == "ACTIVE"


def test_resize_and_confirm(cloud: CloudTestEnv, worker: Server) -> None:
    provider = cloud.provider
    before = provider.get_server(worker.id)
    target = cloud.flavor("m1.small" if before.flavor_id == cloud.flavor("m1.tiny").id else "m1.medium")
    provider.resize_server(worker.id, target.id)
    resized = provider.wait_for_server(worker.id, {"VERIFY_RESIZE"}, timeout=120)
    assert resized.flavor_id == target.id
    provider.confirm_resize(worker.id)
    after = provider.wait_for_server(worker.id, {"ACTIVE"}, timeout=120)
    assert after.flavor_id == target.id
    assert after.flavor_name == target.name


def test_live_migration_moves_the_server(cloud: CloudTestEnv, worker: Server) -> None:
    provider = cloud.provider
    before = provider.get_server(worker.id)
    destination = _other_host(provider, before)
    provider.live_migrate(worker.id, destination)
    after = provider.wait_for_server(worker.id, {"ACTIVE"}, timeout=120)
    assert after.host == destination != before.host


def test_cold_migration_and_confirm(cloud: CloudTestEnv, worker: Server) -> None:
    provider = cloud.provider
    before = provider.get_server(worker.id)
    destination = _other_host(provider, before)
    provider.cold_migrate(worker.id, destination)
    migrated = provider.wait_for_server(worker.id, {"VERIFY_RESIZE"}, timeout=120)
    assert migrated.host == destination
    provider.confirm_migration(worker.id)
    after = provider.wait_for_server(worker.id, {"ACTIVE"}, timeout=120)
    assert after.host == destination != before.host
    assert after.flavor_id == before.flavor_id


def test_cold_migration_and_revert(cloud: CloudTestEnv, worker: Server) -> None:
    provider = cloud.provider
    before = provider.get_server(worker.id)
    provider.cold_migrate(worker.id, _other_host(provider, before))
    provider.wait_for_server(worker.id, {"VERIFY_RESIZE"}, timeout=120)
    provider.revert_migration(worker.id)
    after = provider.wait_for_server(worker.id, {"ACTIVE"}, timeout=120)
    assert after.host == before.host
    assert after.flavor_id == before.flavor_id
    provider.revert_migration(worker.id)  # already reverted: nothing to do


def test_list_servers_on_host(cloud: CloudTestEnv, worker: Server) -> None:
    provider = cloud.provider
    running = provider.get_server(worker.id)
    assert running.host
    on_host = provider.list_servers_on_host(running.host)
    _only_our_types(on_host)
    assert worker.id in {s.id for s in on_host}
    assert all(s.host == running.host for s in on_host)
    assert worker.id not in {s.id for s in provider.list_servers_on_host(_other_host(provider, running))}


def test_disable_and_enable_a_compute_service(cloud: CloudTestEnv, worker: Server) -> None:
    provider = cloud.provider
    host = _other_host(provider, provider.get_server(worker.id))
    try:
        provider.set_compute_service_enabled(host, False, reason="cloudmgr contract test")
        provider.set_compute_service_enabled(host, False, reason="cloudmgr contract test")  # idempotent
        assert {h.host: h.status for h in provider.list_hypervisors()}[host] == "disabled"
    finally:
        provider.set_compute_service_enabled(host, True)
    assert {h.host: h.status for h in provider.list_hypervisors()}[host] == "enabled"
    with pytest.raises(CloudNotFound):
        provider.set_compute_service_enabled(f"no-such-host-{RUN_ID}", True)


# ---- images ---------------------------------------------------------------------------


def test_snapshot_to_image_and_download(cloud: CloudTestEnv, worker: Server, tmp_path: Path) -> None:
    provider = cloud.provider
    image = provider.create_snapshot(worker.id, f"cmct-snap-{RUN_ID}", timeout=60)
    cloud.track_image(image.id)
    _only_our_types(image)
    assert image.status == "active"
    assert image.name == f"cmct-snap-{RUN_ID}"
    assert image.id in {i.id for i in provider.list_images()}
    downloaded = provider.download_image(image.id, tmp_path / "snap.img")
    assert downloaded.size_bytes == (tmp_path / "snap.img").stat().st_size == image.size_bytes
    # Digested in the same pass (issue 17): SHA-256, and Glance's own algorithm matching its hash.
    assert downloaded.sha256 == hashlib.sha256((tmp_path / "snap.img").read_bytes()).hexdigest()
    assert image.hash_algo and image.hash_value
    assert (downloaded.hash_algo, downloaded.hash_value) == (image.hash_algo, image.hash_value)
    provider.delete_image(image.id)
    assert image.id not in {i.id for i in provider.list_images()}


def test_upload_download_and_delete_image(cloud: CloudTestEnv, main_project: ProjectRef, tmp_path: Path) -> None:
    provider = cloud.provider
    payload = b"cloudmgr contract test image\n" * 512
    source = tmp_path / "upload.raw"
    source.write_bytes(payload)
    from_bytes = provider.upload_image(f"cmct-upload-{RUN_ID}", payload, disk_format="raw", container_format="bare")
    cloud.track_image(from_bytes.id)
    from_file = provider.upload_image(f"cmct-file-{RUN_ID}", source, disk_format="raw", project_id=main_project.id)
    cloud.track_image(from_file.id)
    _only_our_types([from_bytes, from_file])
    assert from_bytes.status == from_file.status == "active"
    assert from_bytes.size_bytes == from_file.size_bytes == len(payload)
    assert from_file.owner_project_id == main_project.id
    assert provider.get_image(from_file.id) == provider.wait_for_image(from_file.id, timeout=60)
    assert provider.get_image(from_file.id).name == f"cmct-file-{RUN_ID}"
    target = tmp_path / "download.raw"
    downloaded = provider.download_image(from_bytes.id, target)
    assert downloaded.size_bytes == len(payload)
    assert target.read_bytes() == payload
    assert downloaded.sha256 == hashlib.sha256(payload).hexdigest()
    # Glance hashed what it stored (issue 17): a file upload streams, and the hash says it arrived whole.
    for uploaded in (from_bytes, from_file):
        assert uploaded.hash_algo and uploaded.hash_value and uploaded.checksum == hashlib.md5(payload).hexdigest()
        assert uploaded.hash_value == hashlib.new(uploaded.hash_algo, payload).hexdigest()
    assert downloaded.hash_value == from_bytes.hash_value
    provider.delete_image(from_bytes.id)
    provider.delete_image(from_bytes.id)  # gone already: still fine
    remaining = {i.id for i in provider.list_images()}
    assert from_bytes.id not in remaining
    assert from_file.id in remaining
    with pytest.raises(CloudNotFound):
        provider.download_image(from_bytes.id, tmp_path / "missing.raw")
    with pytest.raises(CloudNotFound):
        provider.get_image(from_bytes.id)


# ---- capacity -------------------------------------------------------------------------


def test_hypervisors_and_resource_providers_reflect_servers(cloud: CloudTestEnv, worker: Server) -> None:
    provider = cloud.provider
    hypervisors = provider.list_hypervisors()
    _only_our_types(hypervisors)
    assert len(hypervisors) == 2
    assert all(isinstance(h, Hypervisor) and h.state == "up" and h.status == "enabled" for h in hypervisors)
    running = provider.get_server(worker.id)
    flavor = next(f for f in provider.list_flavors() if f.id == running.flavor_id)
    node = next(h.name for h in hypervisors if h.host == running.host)
    providers = provider.list_resource_providers()
    _only_our_types(providers)
    assert {rp.name for rp in providers} == {h.name for h in hypervisors}
    for rp in providers:
        assert isinstance(rp, ResourceProvider)
        for resource_class in ("VCPU", "MEMORY_MB", "DISK_GB"):
            assert rp.inventories[resource_class].capacity > 0, (rp.name, resource_class)
    used_here = next(rp for rp in providers if rp.name == node).usages
    assert used_here.get("VCPU", 0) >= flavor.vcpus
    assert used_here.get("MEMORY_MB", 0) >= flavor.ram_mb
    assert used_here.get("DISK_GB", 0) >= flavor.disk_gb


def _resource_provider_of(provider: CloudProvider, host: str) -> ResourceProvider:
    node = next(h.name for h in provider.list_hypervisors() if h.host == host)
    return next(rp for rp in provider.list_resource_providers() if rp.name == node)


def _flavor_amounts(flavor: Flavor) -> dict[str, int]:
    return {"VCPU": flavor.vcpus, "MEMORY_MB": flavor.ram_mb, "DISK_GB": flavor.disk_gb}


def _held(allocation: Allocation) -> dict[str, int]:
    return {rc: allocation.resources.get(rc, 0) for rc in ("VCPU", "MEMORY_MB", "DISK_GB")}


def test_inventories_give_bookable_capacity_that_usages_stay_within(provider: CloudProvider) -> None:
    for rp in provider.list_resource_providers():
        for resource_class in ("VCPU", "MEMORY_MB", "DISK_GB"):
            inventory = rp.inventories[resource_class]
            assert 0 <= inventory.reserved <= inventory.total and inventory.allocation_ratio > 0, (rp.name, inventory)
            assert inventory.capacity == int((inventory.total - inventory.reserved) * inventory.allocation_ratio)
            assert 0 <= rp.usages.get(resource_class, 0) <= inventory.capacity, (rp.name, resource_class)


def test_allocations_per_provider_hold_every_server_whatever_its_status(
    cloud: CloudTestEnv, main_project: ProjectRef
) -> None:
    provider = cloud.provider
    server = cloud.boot(main_project, cloud.spec("held"))
    assert server.host
    rp = _resource_provider_of(provider, server.host)
    allocations = provider.list_allocations(rp.id)
    _only_our_types(allocations)
    mine = {a.consumer_id: _held(a) for a in allocations}
    assert mine[server.id] == _flavor_amounts(cloud.flavor("m1.tiny"))
    # A stopped server keeps its allocation: its host is not free.
    provider.stop_server(server.id)
    provider.wait_for_server(server.id, {"SHUTOFF"}, timeout=120)
    assert {a.consumer_id: _held(a) for a in provider.list_allocations(rp.id)}[server.id] == mine[server.id]
    # The allocations add up to the provider's usages (read again until no one else changed
    # the host in between: the lab is shared).
    for _ in range(5):
        before = _resource_provider_of(provider, server.host).usages
        allocations = provider.list_allocations(rp.id)
        if _resource_provider_of(provider, server.host).usages == before:
            break
    for resource_class in ("VCPU", "MEMORY_MB", "DISK_GB"):
        assert sum(a.resources.get(resource_class, 0) for a in allocations) == before.get(resource_class, 0)
    provider.delete_server(server.id, wait=True)
    # Nova's compute service destroys the instance (the API answers 404) and only then asks Placement to drop
    # its allocation, so the release is seen a moment after the delete, not with it.
    deadline = time.monotonic() + 60
    while server.id in {a.consumer_id for a in provider.list_allocations(rp.id)}:
        assert time.monotonic() < deadline, "the deleted server's allocation was never released"
        time.sleep(0.5)
    with pytest.raises(CloudNotFound):
        provider.list_allocations(str(uuid.uuid4()))


def test_a_cold_migration_holds_the_source_under_another_consumer(
    cloud: CloudTestEnv, main_project: ProjectRef
) -> None:
    provider = cloud.provider
    server = cloud.boot(main_project, cloud.spec("coldheld"))
    assert server.host
    destination = _other_host(provider, server)
    provider.stop_server(server.id)
    provider.wait_for_server(server.id, {"SHUTOFF"}, timeout=120)
    provider.cold_migrate(server.id, destination)
    migrated = provider.wait_for_server(server.id, {"VERIFY_RESIZE"}, timeout=120)
    assert migrated.host == destination
    source_rp = _resource_provider_of(provider, server.host)
    on_source = {a.consumer_id: _held(a) for a in provider.list_allocations(source_rp.id)}
    on_destination = {a.consumer_id for a in provider.list_allocations(_resource_provider_of(provider, destination).id)}
    # The server holds the destination; its old share of the source is held by the migration.
    assert server.id in on_destination and server.id not in on_source
    servers = {s.id for s in provider.iter_servers()}
    migrations = [held for consumer, held in on_source.items() if consumer not in servers]
    assert _flavor_amounts(cloud.flavor("m1.tiny")) in migrations
    provider.confirm_migration(server.id)
    assert provider.wait_for_server(server.id, {"SHUTOFF"}, timeout=120).host == destination
    left = {a.consumer_id: _held(a) for a in provider.list_allocations(source_rp.id)}
    assert not set(left) & (set(on_source) - servers)  # the migration's allocation is gone
    provider.delete_server(server.id, wait=True)


def _placement_reads(provider: CloudProvider) -> dict[str, object]:
    """Every provider's inventories, usages and allocations, read one provider at a time."""
    return {
        rp.id: (
            rp.name,
            dict(rp.inventories),
            dict(rp.usages),
            {a.consumer_id: dict(a.resources) for a in provider.list_allocations(rp.id)},
        )
        for rp in provider.list_resource_providers()
    }


def test_capacity_snapshot_agrees_with_the_per_provider_reads(cloud: CloudTestEnv, worker: Server) -> None:
    provider = cloud.provider
    running = provider.get_server(worker.id)
    # Read until no one else changed Placement in between (the lab is shared).
    for _ in range(5):
        before = _placement_reads(provider)
        snapshot = provider.capacity_snapshot()
        if _placement_reads(provider) == before:
            break
    _only_our_types(snapshot)
    _only_our_types(list(snapshot.providers))
    seen = {
        rp.id: (
            rp.name,
            dict(rp.inventories),
            dict(rp.usages),
            {a.consumer_id: dict(a.resources) for a in snapshot.allocations_of(rp.id)},
        )
        for rp in snapshot.providers
    }
    assert seen == before
    assert set(snapshot.allocations) == set(seen)
    for rp in snapshot.providers:
        allocations = snapshot.allocations_of(rp.id)
        _only_our_types(list(allocations))
        assert [a.consumer_id for a in allocations] == sorted(a.consumer_id for a in allocations)
        for resource_class, used in rp.usages.items():
            assert sum(a.resources.get(resource_class, 0) for a in allocations) == used, (rp.name, resource_class)
    node = next(h.name for h in provider.list_hypervisors() if h.host == running.host)
    held = next(snapshot.allocations_of(rp.id) for rp in snapshot.providers if rp.name == node)
    flavor = next(f for f in provider.list_flavors() if f.id == running.flavor_id)
    assert {a.consumer_id: _held(a) for a in held}[worker.id] == _flavor_amounts(flavor)
    assert snapshot.allocations_of(str(uuid.uuid4())) == ()


# ---- deletion and errors --------------------------------------------------------------


def test_delete_is_idempotent(cloud: CloudTestEnv, main_project: ProjectRef) -> None:
    provider = cloud.provider
    server = cloud.boot(main_project, cloud.spec("doomed"), wait=False)
    provider.delete_server(server.id)
    provider.delete_server(server.id)
    provider.wait_for_server_deleted(server.id, timeout=120)
    with pytest.raises(CloudNotFound):
        provider.get_server(server.id)
    provider.delete_server(server.id, wait=True)
    assert server.id not in {s.id for s in provider.iter_servers(main_project.id)}


def test_missing_server_is_not_found(provider: CloudProvider) -> None:
    missing = str(uuid.uuid4())
    with pytest.raises(CloudNotFound) as raised:
        provider.get_server(missing)
    assert str(raised.value)
    with pytest.raises(CloudNotFound):
        provider.wait_for_server(missing, {"ACTIVE"}, timeout=5)
    provider.delete_server(missing)
