"""SimulatedProvider: the resource mixins of this package put together."""

from __future__ import annotations

from cloudmgr.cloud.simulated.capacity import SimulatedCapacity
from cloudmgr.cloud.simulated.consoles import SimulatedConsoles
from cloudmgr.cloud.simulated.flavors import SimulatedFlavors
from cloudmgr.cloud.simulated.floating_ips import SimulatedFloatingIps
from cloudmgr.cloud.simulated.identity import SimulatedIdentity
from cloudmgr.cloud.simulated.images import SimulatedImages
from cloudmgr.cloud.simulated.keypairs import SimulatedKeypairs
from cloudmgr.cloud.simulated.migrations import SimulatedMigrations
from cloudmgr.cloud.simulated.networks import SimulatedNetworks
from cloudmgr.cloud.simulated.quotas import SimulatedQuotas
from cloudmgr.cloud.simulated.security_groups import SimulatedSecurityGroups
from cloudmgr.cloud.simulated.servers import SimulatedServers
from cloudmgr.cloud.simulated.volumes import SimulatedVolumes


class SimulatedProvider(
    SimulatedIdentity,
    SimulatedQuotas,
    SimulatedFlavors,
    SimulatedNetworks,
    SimulatedServers,
    SimulatedMigrations,
    SimulatedImages,
    SimulatedCapacity,
    SimulatedKeypairs,
    SimulatedSecurityGroups,
    SimulatedFloatingIps,
    SimulatedConsoles,
    SimulatedVolumes,
):
    """The built-in demo cloud; see :mod:`cloudmgr.cloud.simulated`.

    ``hosts`` name the compute hosts, each with ``host_vcpus`` / ``host_ram_mb`` /
    ``host_disk_gb`` of physical resources; ``allocation_ratios`` and ``reserved`` (per
    resource class, like Nova's ``cpu_allocation_ratio`` and ``reserved_host_memory_mb``)
    make Placement's bookable capacity (total - reserved) x ratio.  ``flavors``,
    ``image_names`` and ``networks`` (name, CIDR pairs) seed the catalogue, and
    ``external_networks`` (name, CIDR pairs) the networks floating IPs come from.  The seed is
    used only when the state file does not exist yet; afterwards the file is the truth.
    """

    poll_interval = 0.01
