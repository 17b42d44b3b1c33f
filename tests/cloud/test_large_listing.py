"""Listing a page of 100 servers with ports, on the province's lab cloud.

To show a page of servers, Nova asks Neutron for the ports of all of them in one URL (150
device ids, ~7 KB, sized for Apache's 8 KB request line). With more than ~85 servers with
ports on a page, that passed gunicorn's default limit (4094 bytes): Neutron answered 414 and
Nova 500, so every listing of cloudmgr (sync, orphans, reconcile) failed on a project that
size. The lab starts Neutron with ``--limit-request-line 8190`` (vagrant/lab/common.sh); this
boots 100 servers with a port each (a multi-create on each compute) and lists them in one page,
through cloudmgr's adapter and through openstacksdk.  100 is past where the old limit failed
(~85: each server adds ``device_id=<uuid>&``, 47 bytes, to Neutron's request line) and half
the boots of the 200 it once used (a loaded lab built 55 in 10 minutes).

The lab's computes have 32 vCPUs between them (allocation ratio 1.0): the flavor asks
Placement for no VCPU (``resources:VCPU=0``) and 64 MB of RAM, so 100 fit.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from typing import Any

import pytest

from cloudmgr.cloud.openstack import OpenStackProvider
from tests.cloud.conftest import _lab_connection

# Booting 100 servers takes 1-2 minutes on an idle lab, over 5 on a loaded one (pytest-timeout: 600 s).
pytestmark = [pytest.mark.lab, pytest.mark.timeout(1800)]
COUNT = 100
TIMEOUT = 1500.0


@pytest.fixture(scope="module")
def one_hundred(lab_provider: OpenStackProvider) -> Iterator[tuple[Any, str, set[str]]]:
    """100 ACTIVE servers with a port each in a project of their own; all removed after."""
    conn = _lab_connection()
    tag = f"cmlist-{secrets.token_hex(4)}"
    project = conn.identity.create_project(name=tag, domain_id="default", description="100-server listing test")
    conn.identity.assign_project_role_to_user(
        project, conn.identity.find_user("admin", domain_id="default"), conn.identity.find_role("admin")
    )
    conn.compute.update_quota_set(project.id, instances=-1, cores=-1, ram=-1)
    conn.network.update_quota(project.id, port=-1)
    flavor = conn.compute.create_flavor(name=tag, ram=64, vcpus=1, disk=0, is_public=True)
    conn.compute.create_flavor_extra_specs(flavor, {"resources:VCPU": "0"})
    network = conn.network.create_network(
        name=tag, project_id=project.id, provider_network_type="vlan", provider_physical_network="tenant"
    )
    conn.network.create_subnet(network_id=network.id, ip_version=4, cidr="10.99.0.0/22", enable_dhcp=False)
    image = next(i for i in conn.image.images() if i.name == "cirros-lab")
    as_project = conn.connect_as_project(project)
    ids: set[str] = set()
    try:
        # Half on each compute (the admin-only "nova:HOST" zone): each builds 10 at a time.
        hosts = sorted(s.host for s in conn.compute.services(binary="nova-compute"))
        for k, host in enumerate(hosts):
            share = COUNT // len(hosts) + (1 if k < COUNT % len(hosts) else 0)
            as_project.compute.create_server(
                name=tag,
                flavor_id=flavor.id,
                image_id=image.id,
                networks=[{"uuid": network.id}],
                availability_zone=f"nova:{host}",
                min_count=share,
                max_count=share,
            )
        deadline = time.monotonic() + TIMEOUT
        while True:
            # one page of ids and statuses without the port look-up (what is being tested)
            servers = list(conn.compute.servers(details=False, all_projects=True, project_id=project.id))
            building = list(conn.compute.servers(all_projects=True, project_id=project.id, status="BUILD"))
            if len(servers) >= COUNT and not building:
                break
            assert time.monotonic() < deadline, f"{len(building)} of {COUNT} servers still building"
            time.sleep(3)
        ids = {s.id for s in servers}
        yield conn, project.id, ids
    finally:
        for server in conn.compute.servers(details=False, all_projects=True, project_id=project.id):
            conn.compute.delete_server(server, ignore_missing=True)
        deadline = time.monotonic() + TIMEOUT
        while list(conn.compute.servers(details=False, all_projects=True, project_id=project.id)):
            if time.monotonic() > deadline:
                break
            time.sleep(3)
        for port in conn.network.ports(network_id=network.id):
            conn.network.delete_port(port, ignore_missing=True)
        conn.network.delete_network(network, ignore_missing=True)
        conn.compute.delete_flavor(flavor, ignore_missing=True)
        conn.identity.delete_project(project, ignore_missing=True)


def test_one_page_of_100_servers_with_ports_through_cloudmgr(
    lab_provider: OpenStackProvider, one_hundred: tuple[Any, str, set[str]]
) -> None:
    _conn, project_id, ids = one_hundred
    page = lab_provider.list_servers(project_id, limit=1000)
    assert page.next_marker is None
    assert {s.id for s in page.servers} == ids
    assert all(s.status == "ACTIVE" for s in page.servers)
    # every server shows its port's address: the ports were looked up for the whole page
    assert all(len(next(iter(s.addresses.values()), ())) == 1 for s in page.servers), [
        s.addresses for s in page.servers if not s.addresses
    ][:3]
    # the same through the pages a sync walks (every project's servers, 1,000 a page)
    listed = {s.id for s in lab_provider.iter_servers(page_size=1000) if s.project_id == project_id}
    assert listed == ids


def test_one_page_of_100_servers_with_ports_through_openstacksdk(one_hundred: tuple[Any, str, set[str]]) -> None:
    conn, project_id, ids = one_hundred
    servers = list(conn.compute.servers(details=True, all_projects=True, project_id=project_id, limit=1000))
    assert {s.id for s in servers} == ids
    assert all(s.addresses for s in servers)
