"""Fixtures for the CloudProvider contract suite.

``provider`` runs every contract test three times: against a SimulatedProvider (persisting to a
temporary JSON file, so the file locking path is exercised) and against each of the lab's two
independent OpenStack clouds (``vagrant/lab``): the province's (``cloudmgr-lab``, ids
``[openstack]``) and the city's (``cloudmgr-lab-city``, ids ``[openstack-city]``), each with its
own Keystone.  The lab runs fail, never skip, when the lab is not reachable.

Each test module gets a :class:`CloudTestEnv` that creates uniquely named department
projects (one Keystone domain per test run) and removes what the tests created at the
end, best effort: servers, images, projects, flavors, then the run's domain.
"""

from __future__ import annotations

import logging
import os
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import openstack.exceptions
import pytest

from cloudmgr.cloud import (
    UNLIMITED,
    CloudError,
    CloudProvider,
    ComputeQuota,
    Flavor,
    NetworkQuota,
    ProjectRef,
    QuotaSet,
    Server,
    ServerSpec,
)
from cloudmgr.cloud.openstack import OpenStackProvider
from cloudmgr.cloud.simulated import DEFAULT_FLAVORS, SimulatedProvider

log = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[2]
LAB_CLOUD = "cloudmgr-lab"
#: Both lab clouds (clouds.yaml entries): the province's and the city's (vagrant/lab/common.sh).
LAB_CLOUDS = (LAB_CLOUD, "cloudmgr-lab-city")
LAB_IMAGE = "cirros-lab"
LAB_NETWORKS = ("lab-internet", "lab-extranet")
LAB_FLAVORS = ("m1.tiny", "m1.small", "m1.medium", "m1.large")

#: Names every cloud object this run creates, so parallel runs and leftovers never clash.
RUN_ID = time.strftime("%m%d%H%M%S") + secrets.token_hex(2)
TEST_DOMAIN = f"cmct-{RUN_ID}"

#: A flavor larger than any simulated host (8 vCPU each by default).
SIMULATED_OVERSIZED = Flavor(id="cmct-huge", name="cmct.huge", vcpus=1000, ram_mb=512, disk_gb=1)

#: Limits for projects whose tests should never hit a quota.
ROOMY_QUOTA = QuotaSet(
    compute=ComputeQuota(cores=UNLIMITED, ram_mb=UNLIMITED, instances=50),
    network=NetworkQuota(
        networks=10, subnets=10, ports=100, floating_ips=10, security_groups=20, security_group_rules=200
    ),
    # Cinder's own defaults (10 volumes, 1000 GB) are roomy enough: left as they are.
    block_storage=None,
)

# Generous for the lab's fake driver, which boots in seconds.
BOOT_TIMEOUT = 120.0


def pytest_configure(config: pytest.Config) -> None:
    # pyproject.toml registers it too; this keeps the suite runnable on its own.
    config.addinivalue_line(
        "markers", "lab: needs the lab OpenStack (vagrant/lab); fails, never skips, when it is down"
    )
    # openstacksdk 4.22 warns about InfluxDB metrics on every config load, configured or not.
    config.addinivalue_line("filterwarnings", "ignore:Support for InfluxDB:PendingDeprecationWarning")
    # ...and about its own internals (service_type, _compute_attributes) on most calls.
    config.addinivalue_line("filterwarnings", "ignore::PendingDeprecationWarning:openstack.*")


def lab_clouds_yaml() -> Path:
    return Path(os.environ.get("CLOUDMGR_LAB_CLOUDS_YAML", str(REPO / ".lab" / "clouds.yaml")))


def _lab_connection(cloud: str = LAB_CLOUD) -> Any:
    """A plain openstacksdk connection to a lab cloud, for test setup and cleanup only
    (creating a flavor, deleting projects): things cloudmgr itself does not do."""
    import openstack.config
    import openstack.connection

    config = openstack.config.OpenStackConfig(config_files=[str(lab_clouds_yaml())])
    return openstack.connection.Connection(config=config.get_one(cloud=cloud))


def _open_lab_provider(cloud: str) -> OpenStackProvider:
    clouds_yaml = lab_clouds_yaml()
    if not clouds_yaml.exists():
        pytest.fail(
            f"the lab OpenStack is not available: {clouds_yaml} does not exist. Start the lab with "
            "`bash vagrant/lab/up.sh` (or point CLOUDMGR_LAB_CLOUDS_YAML at its clouds.yaml), "
            "or deselect these tests with -m 'not lab'.",
            pytrace=False,
        )
    provider = OpenStackProvider(cloud=cloud, config_files=[clouds_yaml], retries=1, poll_interval=0.5)
    try:
        hypervisors = provider.list_hypervisors()
    except CloudError as exc:
        pytest.fail(
            f"the lab OpenStack ({cloud} in {clouds_yaml}) is not reachable: {exc}. "
            "Check it with `bash vagrant/lab/status.sh`.",
            pytrace=False,
        )
    if len(hypervisors) < 2:
        pytest.fail(f"the lab OpenStack {cloud} should have two compute hosts, it has {hypervisors}", pytrace=False)
    return provider


@pytest.fixture(scope="session")
def lab_providers() -> Iterator[dict[str, OpenStackProvider]]:
    """Each lab cloud's provider, opened when a test first needs it; the run's test domain
    is removed from every cloud used (each has its own Keystone) at the end."""
    opened: dict[str, OpenStackProvider] = {}
    yield opened
    for cloud in opened:
        _delete_lab_domain(cloud)


@pytest.fixture(scope="session")
def lab_provider(lab_providers: dict[str, OpenStackProvider]) -> OpenStackProvider:
    """The province's lab cloud (cloudmgr-lab)."""
    if LAB_CLOUD not in lab_providers:
        lab_providers[LAB_CLOUD] = _open_lab_provider(LAB_CLOUD)
    return lab_providers[LAB_CLOUD]


def _delete_lab_domain(cloud: str) -> None:
    try:
        conn = _lab_connection(cloud)
        try:
            domain = conn.identity.find_domain(TEST_DOMAIN, ignore_missing=False)
        except openstack.exceptions.NotFoundException:
            domain = None
        if domain is not None:
            for project in conn.identity.projects(domain_id=domain.id):
                conn.identity.delete_project(project.id, ignore_missing=True)
            # Keystone deletes only disabled domains.
            conn.identity.update_domain(domain.id, is_enabled=False)
            conn.identity.delete_domain(domain.id, ignore_missing=True)
    except Exception:
        log.warning("could not remove the test domain %s from %s", TEST_DOMAIN, cloud, exc_info=True)


@dataclass
class CloudTestEnv:
    """One provider plus what the tests of a module created in it, for cleanup."""

    provider: CloudProvider
    kind: str
    module: str
    #: the clouds.yaml entry of the lab cloud (kind "openstack")
    lab_cloud: str = LAB_CLOUD
    servers: list[str] = field(default_factory=list)
    images: list[str] = field(default_factory=list)
    projects: list[ProjectRef] = field(default_factory=list)
    lab_flavors: list[str] = field(default_factory=list)
    _catalogue: dict[str, Any] = field(default_factory=dict)

    # ---- catalogue lookups by the lab's names ----

    def flavor(self, name: str) -> Flavor:
        if "flavors" not in self._catalogue:
            self._catalogue["flavors"] = {f.name: f for f in self.provider.list_flavors()}
        return self._catalogue["flavors"][name]  # type: ignore[no-any-return]

    def image_id(self, name: str = LAB_IMAGE) -> str:
        if "images" not in self._catalogue:
            self._catalogue["images"] = {i.name: i.id for i in self.provider.list_images()}
        return self._catalogue["images"][name]  # type: ignore[no-any-return]

    def network_id(self, name: str = LAB_NETWORKS[0]) -> str:
        if "networks" not in self._catalogue:
            self._catalogue["networks"] = {n.name: n.id for n in self.provider.list_networks()}
        return self._catalogue["networks"][name]  # type: ignore[no-any-return]

    def offers_floating_ips(self) -> bool:
        """Whether Neutron has the router extension (the lab may run without L3)."""
        if self.kind == "simulated":
            return True
        try:
            _lab_connection(self.lab_cloud).network.find_extension("router", ignore_missing=False)
        except openstack.exceptions.NotFoundException:
            return False
        return True

    # ---- things to clean up afterwards ----

    def new_project(self, label: str, quota: QuotaSet | None = ROOMY_QUOTA) -> ProjectRef:
        project = self.provider.ensure_project(TEST_DOMAIN, f"{self.module}-{label}-{RUN_ID}", "cloudmgr contract test")
        self.projects.append(project)
        if quota is not None:
            self.provider.set_quota(project.id, quota)
        return project

    def spec(self, label: str, flavor: str = "m1.tiny", key: str | None = None, **metadata: str) -> ServerSpec:
        return ServerSpec(
            name=f"cmct-{label}",
            flavor_id=self.flavor(flavor).id if flavor in LAB_FLAVORS else flavor,
            image_id=self.image_id(),
            network_id=self.network_id(),
            idempotency_key=key or f"{RUN_ID}-{label}-{secrets.token_hex(4)}",
            metadata=metadata,
        )

    def boot(self, project: ProjectRef, spec: ServerSpec, *, wait: bool = True) -> Server:
        server = self.provider.create_server(project.id, spec)
        self.servers.append(server.id)
        if wait:
            server = self.provider.wait_for_server(server.id, {"ACTIVE"}, timeout=BOOT_TIMEOUT)
        return server

    def track_image(self, image_id: str) -> None:
        self.images.append(image_id)

    def cleanup(self) -> None:
        for project in self.projects:
            try:
                self.servers.extend(s.id for s in self.provider.iter_servers(project.id))
            except CloudError:
                log.warning("could not list servers of %s for cleanup", project.name, exc_info=True)
        for server_id in dict.fromkeys(self.servers):
            try:
                self.provider.delete_server(server_id)
            except CloudError:
                log.warning("could not delete server %s", server_id, exc_info=True)
        for server_id in dict.fromkeys(self.servers):
            try:
                self.provider.wait_for_server_deleted(server_id, timeout=60)
            except CloudError:
                log.warning("server %s not gone", server_id, exc_info=True)
        for image_id in self.images:
            try:
                self.provider.delete_image(image_id)
            except CloudError:
                log.warning("could not delete image %s", image_id, exc_info=True)
        if self.kind == "openstack":
            self._cleanup_lab()

    def _cleanup_lab(self) -> None:
        try:
            conn = _lab_connection(self.lab_cloud)
            for project in self.projects:
                for fip in conn.network.ips(project_id=project.id):
                    conn.network.delete_ip(fip, ignore_missing=True)
                # Nova keeps keypairs per user: the provider prefixes them with the project.
                for keypair in conn.compute.keypairs():
                    if str(keypair.name).startswith(f"cm-{project.id}-"):
                        conn.compute.delete_keypair(keypair.name, ignore_missing=True)
                # Neutron makes a default security group per project that outlives it.
                for group in conn.network.security_groups(project_id=project.id):
                    conn.network.delete_security_group(group, ignore_missing=True)
                conn.identity.delete_project(project.id, ignore_missing=True)
            for flavor_id in self.lab_flavors:
                conn.compute.delete_flavor(flavor_id, ignore_missing=True)
        except Exception:
            log.warning("lab cleanup incomplete", exc_info=True)


@pytest.fixture(
    scope="module",
    params=[
        pytest.param("simulated", id="simulated"),
        pytest.param(LAB_CLOUDS[0], id="openstack", marks=pytest.mark.lab),
        pytest.param(LAB_CLOUDS[1], id="openstack-city", marks=pytest.mark.lab),
    ],
)
def cloud(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[CloudTestEnv]:
    """The simulator, or one of the lab's clouds (kind "openstack", its entry in lab_cloud)."""
    provider: CloudProvider
    lab_cloud = LAB_CLOUD
    if request.param == "simulated":
        kind = "simulated"
        state_path = tmp_path_factory.mktemp("simulated-cloud") / "cloud.json"
        provider = SimulatedProvider(state_path=state_path, flavors=(*DEFAULT_FLAVORS, SIMULATED_OVERSIZED))
    else:
        kind, lab_cloud = "openstack", request.param
        providers: dict[str, OpenStackProvider] = request.getfixturevalue("lab_providers")
        if lab_cloud not in providers:
            providers[lab_cloud] = _open_lab_provider(lab_cloud)
        provider = providers[lab_cloud]
    module = request.module.__name__.rsplit(".", 1)[-1].removeprefix("test_").replace("_", "-")
    env = CloudTestEnv(provider=provider, kind=kind, module=module, lab_cloud=lab_cloud)
    yield env
    env.cleanup()


@pytest.fixture(scope="module")
def provider(cloud: CloudTestEnv) -> CloudProvider:
    return cloud.provider


@pytest.fixture(scope="module")
def oversized_flavor_id(cloud: CloudTestEnv) -> str:
    """A flavor needing more vCPUs than any compute host can give."""
    if cloud.kind == "simulated":
        return SIMULATED_OVERSIZED.id
    largest_host = max(
        min(rp.inventories["VCPU"].capacity, rp.inventories["VCPU"].max_unit)
        for rp in cloud.provider.list_resource_providers()
        if "VCPU" in rp.inventories
    )
    conn = _lab_connection(cloud.lab_cloud)
    flavor = conn.compute.create_flavor(
        name=f"cmct.huge-{RUN_ID}", vcpus=largest_host + 1, ram=512, disk=1, is_public=True
    )
    cloud.lab_flavors.append(flavor.id)
    return str(flavor.id)


#: The external network floating IPs come from: the simulator seeds it, the lab makes it
#: (``vagrant/lab/lab_admin.py``) with the router that joins the lab's networks to it.
PUBLIC_NETWORK = "lab-public"
LAB_ROUTER = "lab-router"


def check_lab_public_network(cloud: str = LAB_CLOUD) -> None:
    """Fail unless the lab has its external network and the router joining the lab's two
    shared networks to it (without that router Neutron refuses to point a floating IP at
    their ports).  Infrastructure the lab sets up, as an operator would: never made here."""
    net = _lab_connection(cloud).network
    fix = "the lab makes it: run `make lab-up` (vagrant/lab/lab_admin.py resources)"
    public = net.find_network(PUBLIC_NETWORK)
    if public is None or not public.is_router_external:
        pytest.fail(f"the lab has no external network {PUBLIC_NETWORK}; {fix}", pytrace=False)
    if not list(net.subnets(network_id=public.id)):
        pytest.fail(f"the lab's {PUBLIC_NETWORK} has no subnet; {fix}", pytrace=False)
    router = net.find_router(LAB_ROUTER)
    if router is None or (router.external_gateway_info or {}).get("network_id") != public.id:
        pytest.fail(f"the lab has no router {LAB_ROUTER} with its gateway on {PUBLIC_NETWORK}; {fix}", pytrace=False)
    attached = {
        ip["subnet_id"]
        for port in net.ports(device_id=router.id, device_owner="network:router_interface")
        for ip in port.fixed_ips or ()
    }
    for name in LAB_NETWORKS:
        network = net.find_network(name)
        subnets = list(net.subnets(network_id=network.id)) if network is not None else []
        if not subnets or any(subnet.id not in attached for subnet in subnets):
            pytest.fail(f"the lab's router {LAB_ROUTER} has no interface on {name}; {fix}", pytrace=False)


@pytest.fixture(scope="module")
def public_network(cloud: CloudTestEnv) -> str:
    if cloud.kind == "openstack":
        check_lab_public_network(cloud.lab_cloud)
    return PUBLIC_NETWORK
