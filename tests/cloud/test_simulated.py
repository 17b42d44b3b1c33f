"""What only the simulator has to prove: its state file is shared safely between processes,
and its capacity model behaves like Nova's scheduler and Placement."""

from __future__ import annotations

import dataclasses
import json
import multiprocessing
from pathlib import Path

import pytest

from cloudmgr.cloud import (
    UNLIMITED,
    CloudBadRequest,
    CloudConflict,
    CloudNoValidHost,
    CloudQuotaExceeded,
    ComputeQuota,
    NetworkQuota,
    ProjectRef,
    QuotaSet,
    ServerSpec,
)
from cloudmgr.cloud.simulated import SimulatedProvider

ROOMY = QuotaSet(
    compute=ComputeQuota(cores=UNLIMITED, ram_mb=UNLIMITED, instances=UNLIMITED),
    network=NetworkQuota(
        networks=10, subnets=10, ports=UNLIMITED, floating_ips=10, security_groups=10, security_group_rules=100
    ),
    block_storage=None,
)


def _spec(provider: SimulatedProvider, key: str, flavor: str = "m1.tiny") -> ServerSpec:
    flavor_id = next(f.id for f in provider.list_flavors() if f.name == flavor)
    image_id = next(i.id for i in provider.list_images() if i.name == "cirros-lab")
    return ServerSpec(name=key, flavor_id=flavor_id, image_id=image_id, network_id=None, idempotency_key=key)


def _project(provider: SimulatedProvider, name: str = "dept") -> ProjectRef:
    project = provider.ensure_project("sim-domain", name)
    provider.set_quota(project.id, ROOMY)
    return project


def test_state_file_is_shared_between_instances(tmp_path: Path) -> None:
    path = tmp_path / "cloud.json"
    web = SimulatedProvider(state_path=path)
    project = _project(web)
    server = web.create_server(project.id, _spec(web, "shared"))
    image = web.upload_image("shared-image", b"12345", disk_format="raw")
    cli = SimulatedProvider(state_path=path)
    assert cli.get_server(server.id) == server
    assert cli.ensure_project("sim-domain", "dept") == project
    assert cli.download_image(image.id, tmp_path / "out.raw").size_bytes == 5
    assert (tmp_path / "out.raw").read_bytes() == b"12345"
    assert json.loads(path.read_text())["servers"][server.id]["name"] == "shared"
    assert not list(tmp_path.glob(".cloud.json.*")), "no temporary files left behind"


def _boot_many(path: str, project_id: str, prefix: str, count: int) -> None:
    provider = SimulatedProvider(state_path=Path(path))
    for n in range(count):
        provider.create_server(project_id, _spec(provider, f"{prefix}-{n}"))


def test_concurrent_processes_lose_no_update(tmp_path: Path) -> None:
    path = tmp_path / "cloud.json"
    provider = SimulatedProvider(state_path=path, host_vcpus=64, host_ram_mb=65536)
    project = _project(provider)
    context = multiprocessing.get_context("fork")
    workers = [context.Process(target=_boot_many, args=(str(path), project.id, f"p{n}", 15)) for n in range(3)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)
        assert worker.exitcode == 0
    names = sorted(s.name for s in provider.iter_servers(project.id))
    assert names == sorted(f"p{p}-{n}" for p in range(3) for n in range(15))


def test_refused_operations_change_nothing() -> None:
    provider = SimulatedProvider()
    project = _project(provider)
    server = provider.create_server(project.id, _spec(provider, "one"))
    with pytest.raises(CloudBadRequest):
        provider.resize_server(server.id, "no-such-flavor")
    provider.stop_server(server.id)
    with pytest.raises(CloudConflict):
        provider.live_migrate(server.id)
    after = provider.get_server(server.id)
    assert (after.status, after.host, after.flavor_id) == ("SHUTOFF", server.host, server.flavor_id)
    provider.set_quota(project.id, dataclasses.replace(ROOMY, compute=ComputeQuota(cores=-1, ram_mb=-1, instances=1)))
    with pytest.raises(CloudQuotaExceeded):
        provider.create_server(project.id, _spec(provider, "two"))
    assert [s.id for s in provider.iter_servers(project.id)] == [server.id]
    with pytest.raises(CloudBadRequest):
        provider.set_quota(
            project.id, dataclasses.replace(ROOMY, compute=ComputeQuota(cores=-1, ram_mb=-1, instances=0))
        )


def test_scheduler_spreads_and_fills_hosts() -> None:
    provider = SimulatedProvider(hosts=("a", "b"), host_vcpus=4, host_ram_mb=8192, host_disk_gb=100)
    project = _project(provider)
    placed = [provider.create_server(project.id, _spec(provider, f"s{n}", "m1.medium")) for n in range(4)]
    assert sorted(s.host or "" for s in placed) == ["a", "a", "b", "b"]
    full = provider.create_server(project.id, _spec(provider, "s4", "m1.tiny"))
    assert full.status == "ERROR" and full.host is None
    usages = {rp.name: rp.usages for rp in provider.list_resource_providers()}
    assert usages["a"]["VCPU"] == usages["b"]["VCPU"] == 4
    assert all(rp.free("VCPU") == 0 for rp in provider.list_resource_providers())
    with pytest.raises(CloudNoValidHost):
        provider.live_migrate(placed[0].id)


def test_resize_holds_both_flavors_until_confirmed() -> None:
    provider = SimulatedProvider(hosts=("a", "b"))
    project = _project(provider)
    server = provider.create_server(project.id, _spec(provider, "grow"))
    small = next(f for f in provider.list_flavors() if f.name == "m1.small")
    provider.resize_server(server.id, small.id)
    moved = provider.get_server(server.id)
    assert moved.status == "VERIFY_RESIZE" and moved.host != server.host
    usages = {rp.name: rp.usages["MEMORY_MB"] for rp in provider.list_resource_providers()}
    assert usages[server.host or ""] == 512 and usages[moved.host or ""] == 2048
    provider.confirm_resize(server.id)
    provider.confirm_resize(server.id)  # already confirmed: nothing to do
    usages = {rp.name: rp.usages["MEMORY_MB"] for rp in provider.list_resource_providers()}
    assert usages[server.host or ""] == 0 and usages[moved.host or ""] == 2048


def test_deleted_servers_show_only_in_changes_since_listings() -> None:
    provider = SimulatedProvider()
    project = _project(provider)
    server = provider.create_server(project.id, _spec(provider, "gone"))
    since = server.created_at
    assert since is not None
    provider.delete_server(server.id)
    assert provider.list_servers(project.id).servers == ()
    changed = provider.list_servers(project.id, changes_since=since).servers
    assert [(s.id, s.status) for s in changed] == [(server.id, "DELETED")]


def test_allocation_ratio_and_reserved_amounts_make_the_bookable_capacity() -> None:
    # One physical core per host at 4.0 and 1 GB of its 2.5 GB reserved for the host.
    provider = SimulatedProvider(
        hosts=("a",),
        host_vcpus=1,
        host_ram_mb=2560,
        allocation_ratios={"VCPU": 4.0},
        reserved={"MEMORY_MB": 1024},
    )
    (rp,) = provider.list_resource_providers()
    assert (rp.inventories["VCPU"].capacity, rp.inventories["MEMORY_MB"].capacity) == (4, 1536)
    project = _project(provider)
    placed = [provider.create_server(project.id, _spec(provider, f"t{n}")) for n in range(4)]
    # 512 MB each: the fourth would need 2048 MB, more than the 1536 MB not reserved.
    assert [s.status for s in placed] == ["ACTIVE", "ACTIVE", "ACTIVE", "ERROR"]
    (rp,) = provider.list_resource_providers()
    assert rp.usages == {"VCPU": 3, "MEMORY_MB": 1536, "DISK_GB": 3}
    with pytest.raises(ValueError):
        SimulatedProvider(allocation_ratios={"VCPU": 0.0})
    with pytest.raises(ValueError):
        SimulatedProvider(reserved={"MEMORY_MB": 10**9})


def test_a_server_reset_to_error_keeps_its_host_and_allocation() -> None:
    provider = SimulatedProvider(hosts=("a",))
    project = _project(provider)
    server = provider.create_server(project.id, _spec(provider, "broken"))
    provider.reset_state(server.id, "ERROR")
    broken = provider.get_server(server.id)
    assert (broken.status, broken.host) == ("ERROR", "a")
    (rp,) = provider.list_resource_providers()
    assert [(a.consumer_id, a.resources["VCPU"]) for a in provider.list_allocations(rp.id)] == [(server.id, 1)]
    with pytest.raises(CloudBadRequest):
        provider.reset_state(server.id, "SHUTOFF")
