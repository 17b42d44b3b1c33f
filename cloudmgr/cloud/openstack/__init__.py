"""OpenStackProvider: a real OpenStack cloud through openstacksdk.

Every SDK call goes through ``OpenStackConnection._call`` (:mod:`.connection`), which
translates SDK and keystoneauth exceptions into :mod:`cloudmgr.cloud.errors` (:mod:`.errors`)
and retries transient failures; every SDK object is converted into a
:mod:`cloudmgr.cloud.types` value (:mod:`.convert`) before it leaves this package.

The provider authenticates as a cloud admin (a clouds.yaml entry).  Reads and admin
operations (quotas, migrations, hypervisors, Placement) use that connection; booting a
server, snapshotting it and uploading an image for a department happen in the
department's project (``connect_as_project``) so quotas and ownership land there, which
is why :meth:`ensure_project` gives the admin user a role in every project it creates.

One module per kind of resource, each a mixin on :class:`.connection.OpenStackConnection`
(identity, quotas, flavors, networks, servers, images, capacity); :mod:`.provider` puts
them together.  A new kind of resource (volumes, keypairs, ...) is a new mixin module.
"""

from cloudmgr.cloud.openstack.convert import IDEMPOTENCY_TAG_PREFIX, idempotency_tag
from cloudmgr.cloud.openstack.errors import translate_sdk_error
from cloudmgr.cloud.openstack.provider import OpenStackProvider

__all__ = ["IDEMPOTENCY_TAG_PREFIX", "OpenStackProvider", "idempotency_tag", "translate_sdk_error"]
