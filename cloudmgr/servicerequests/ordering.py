"""What a department may order: the order form's catalogue, decided here rather than in a view.

A department user orders only on the enabled clouds linked to their department; any other
cloud is unknown to them (the same answer as for a cloud that does not exist), so the
department wall holds for the form as it does for every read.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.orm import Session

from cloudmgr.catalog import services as catalog
from cloudmgr.catalog.models import CatalogItem, ItemKind
from cloudmgr.errors import PermissionDenied
from cloudmgr.firewall import services as firewall
from cloudmgr.firewall.services import TemplateInfo
from cloudmgr.keys import services as keys
from cloudmgr.keys.services import KeyInfo
from cloudmgr.organisation import services as org
from cloudmgr.organisation.actor import Actor
from cloudmgr.organisation.errors import UnknownCloud
from cloudmgr.organisation.models import Cloud
from cloudmgr.quotas import services as quota_services
from cloudmgr.quotas.errors import NoQuota


@dataclass(frozen=True)
class OrderCatalog:
    """The clouds a department may order on and, once one is chosen, what it offers and how much quota is left."""

    clouds: Sequence[Cloud]
    cloud: Cloud | None = None
    flavors: Sequence[CatalogItem] = ()
    images: Sequence[CatalogItem] = ()
    balance: quota_services.Balance | None = None
    # What makes the VMs usable (issue 16): the data disks' types, the public address (None
    # when the cloud offers none) and the user's SSH keys that may go on this department's VMs.
    volume_types: Sequence[CatalogItem] = ()
    address: CatalogItem | None = None
    ssh_keys: Sequence[KeyInfo] = ()
    # The operators' firewall templates a request chooses from (the same on every cloud).
    firewall_templates: Sequence[TemplateInfo] = ()


def order_catalog(session: Session, actor: Actor, cloud_key: str | None) -> OrderCatalog:
    """The order form's catalogue for ``actor``'s department, on ``cloud_key`` if one is chosen.

    Raises :class:`UnknownCloud` for a cloud the department may not order on (another
    department's, a disabled one, or none), and :class:`PermissionDenied` for an actor with
    no department (only department users order VMs).
    """
    if actor.department_id is None:
        raise PermissionDenied("only a department's users order servers")
    clouds = [link.cloud for link in org.clouds_of_department(session, actor.department_id) if link.cloud.enabled]
    if not cloud_key:
        return OrderCatalog(clouds)
    cloud = next((c for c in clouds if c.key == cloud_key), None)
    if cloud is None:
        raise UnknownCloud(f"no cloud {cloud_key!r} for this department")
    try:
        balance: quota_services.Balance | None = quota_services.balance(session, actor.department_id, cloud.id)
    except NoQuota:
        balance = None  # no quota yet on this cloud: the form says so, and submission refuses
    addresses = catalog.offered_items(session, cloud.id, ItemKind.FLOATING_IP)
    return OrderCatalog(
        clouds,
        cloud,
        catalog.offered_items(session, cloud.id, ItemKind.FLAVOR),
        catalog.offered_items(session, cloud.id, ItemKind.IMAGE),
        balance,
        catalog.offered_items(session, cloud.id, ItemKind.VOLUME_TYPE),
        addresses[0] if addresses else None,
        # A key added in another department is not put on this one's VMs (keys.key_for_request).
        [k for k in keys.list_keys(session, actor) if k.department_id == actor.department_id],
        firewall.list_templates(session),
    )
