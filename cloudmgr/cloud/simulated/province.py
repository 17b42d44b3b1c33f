"""The province demo's simulated cloud (``CLOUDMGR_DEMO``, set by `make run`): sized as a province's
cloud is, so the legacy servers of ``inventory/legacy.yml`` fit its flavors and hosts.

The default simulated cloud stays the lab's (two 8-vCPU hosts, flavors up to 4 vCPU / 8 GB): the
tests size against it.  A province cloud offers general-purpose flavors up to 32 vCPU / 64 GB and
memory-optimised ones up to 32 vCPU / 256 GB (databases), on hosts of 96 vCPU / 768 GB; a legacy
server larger than the largest flavor (the demo has two) needs a dedicated host and is refused by
the wave check.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from cloudmgr.cloud.simulated.store import DEFAULT_FLAVORS, DEFAULT_NETWORKS
from cloudmgr.cloud.types import Flavor

if TYPE_CHECKING:
    from cloudmgr.cloud.simulated.provider import SimulatedProvider

GB = 1024
PROVINCE_FLAVORS: tuple[Flavor, ...] = (
    *DEFAULT_FLAVORS,
    Flavor(id="5", name="m1.xlarge", vcpus=8, ram_mb=16 * GB, disk_gb=100),
    Flavor(id="6", name="m1.2xlarge", vcpus=16, ram_mb=32 * GB, disk_gb=100),
    Flavor(id="7", name="m1.4xlarge", vcpus=32, ram_mb=64 * GB, disk_gb=100),
    Flavor(id="11", name="r1.xlarge", vcpus=4, ram_mb=32 * GB, disk_gb=100),
    Flavor(id="12", name="r1.2xlarge", vcpus=8, ram_mb=64 * GB, disk_gb=100),
    Flavor(id="13", name="r1.4xlarge", vcpus=16, ram_mb=128 * GB, disk_gb=100),
    Flavor(id="14", name="r1.8xlarge", vcpus=32, ram_mb=256 * GB, disk_gb=100),
)
PROVINCE_HOSTS: tuple[str, ...] = tuple(f"prov-host-{n:02d}" for n in range(1, 9))
PROVINCE_HOST_VCPUS = 96
PROVINCE_HOST_RAM_MB = 768 * GB
PROVINCE_HOST_DISK_GB = 4000
#: The images the catalog's rates name (etc/rates.yaml), so a migrated system boots its own OS's.
PROVINCE_IMAGES: tuple[str, ...] = ("cirros-lab", "centos-7", "kylin-v10", "uos-20")


def province_cloud(state_path: Path) -> SimulatedProvider:
    """A province-sized simulated cloud kept in ``state_path`` (seeded on first use)."""
    from cloudmgr.cloud.simulated.provider import SimulatedProvider

    return SimulatedProvider(
        state_path=state_path,
        hosts=PROVINCE_HOSTS,
        host_vcpus=PROVINCE_HOST_VCPUS,
        host_ram_mb=PROVINCE_HOST_RAM_MB,
        host_disk_gb=PROVINCE_HOST_DISK_GB,
        flavors=PROVINCE_FLAVORS,
        image_names=PROVINCE_IMAGES,
        networks=DEFAULT_NETWORKS,
    )
