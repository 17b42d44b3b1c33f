"""SimulatedProvider: a small cloud that lives in memory or in a JSON file.

It serves the first-run demo and every test that does not need a real cloud, so it keeps
the contract of the real thing where the contract matters to callers: quotas are enforced
with the same errors Nova raises, servers are placed on hosts with finite capacity (a
server that fits nowhere goes to ERROR with Nova's "No valid host" fault), boots are
idempotent per key, listings are paged like Nova's (newest first, a marker is a cursor),
resizes and migrations move servers between hosts, and Placement-like resource providers
report what the servers use.

Unlike a real cloud every operation completes at once: a boot returns the server ACTIVE
(or ERROR), a resize returns it in VERIFY_RESIZE, and so on.

With ``state_path`` the state is a JSON file shared by every process that opens the same
path (the web app and the CLI): each operation takes an exclusive ``fcntl`` lock on a
side file, reads the state, and replaces the file atomically if it changed anything.
Image data lives in a folder next to it.

One module per kind of resource, each a mixin on :class:`.store.SimulatedStore` (the
state and its transactions) working on the state's records (:mod:`.records`): identity,
quotas, flavors, networks, servers, migrations, images, capacity (hosts and Placement);
:mod:`.provider` puts them together.  A new kind of resource is a new mixin module.
"""

from cloudmgr.cloud.simulated.provider import SimulatedProvider
from cloudmgr.cloud.simulated.records import ADMIN_PROJECT_ID, NO_VALID_HOST_FAULT
from cloudmgr.cloud.simulated.servers import MAX_TOMBSTONES
from cloudmgr.cloud.simulated.store import (
    DEFAULT_COMPUTE_QUOTA,
    DEFAULT_FLAVORS,
    DEFAULT_HOSTS,
    DEFAULT_IMAGE_NAMES,
    DEFAULT_NETWORK_QUOTA,
    DEFAULT_NETWORKS,
    STATE_VERSION,
)

__all__ = [
    "ADMIN_PROJECT_ID",
    "DEFAULT_COMPUTE_QUOTA",
    "DEFAULT_FLAVORS",
    "DEFAULT_HOSTS",
    "DEFAULT_IMAGE_NAMES",
    "DEFAULT_NETWORKS",
    "DEFAULT_NETWORK_QUOTA",
    "MAX_TOMBSTONES",
    "NO_VALID_HOST_FAULT",
    "STATE_VERSION",
    "SimulatedProvider",
]
