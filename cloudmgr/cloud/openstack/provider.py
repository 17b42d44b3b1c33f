"""OpenStackProvider: the resource mixins of this package put together."""

from __future__ import annotations

from cloudmgr.cloud.openstack.capacity import OpenStackCapacity
from cloudmgr.cloud.openstack.consoles import OpenStackConsoles
from cloudmgr.cloud.openstack.floating_ips import OpenStackFloatingIps
from cloudmgr.cloud.openstack.identity import OpenStackIdentity
from cloudmgr.cloud.openstack.images import OpenStackImages
from cloudmgr.cloud.openstack.keypairs import OpenStackKeypairs
from cloudmgr.cloud.openstack.networks import OpenStackNetworks
from cloudmgr.cloud.openstack.quotas import OpenStackQuotas
from cloudmgr.cloud.openstack.security_groups import OpenStackSecurityGroups
from cloudmgr.cloud.openstack.servers import OpenStackServers
from cloudmgr.cloud.openstack.volumes import OpenStackVolumes


class OpenStackProvider(
    OpenStackIdentity,
    OpenStackQuotas,
    OpenStackNetworks,
    OpenStackServers,
    OpenStackImages,
    OpenStackCapacity,
    OpenStackKeypairs,
    OpenStackSecurityGroups,
    OpenStackFloatingIps,
    OpenStackConsoles,
    OpenStackVolumes,
):
    """A cloud named in clouds.yaml (or by ``OS_CLOUD`` when ``cloud`` is None).

    ``timeout`` bounds each HTTP request (seconds); ``retries`` is how many times a
    transiently failing call is tried again.  ``project_roles`` are the roles
    :meth:`ensure_project` grants the admin user in each department project.
    """
