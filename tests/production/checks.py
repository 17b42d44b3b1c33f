"""What every production proof checks at the end: nothing lost, nothing doubled, nothing
orphaned, and the quota ledger equal to what Nova counts for the department's project."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import select

from cloudmgr.catalog.models import CatalogItem
from cloudmgr.cloud.types import IDEMPOTENCY_METADATA_KEY
from cloudmgr.organisation import services as org
from cloudmgr.organisation.actor import Actor
from cloudmgr.organisation.models import User
from cloudmgr.quotas import ledger
from cloudmgr.quotas.resources import Resource
from cloudmgr.servicerequests import services as requests_service
from cloudmgr.servicerequests.models import ManagedServer, ServiceRequest
from cloudmgr.servicerequests.services import RequestForm
from tests.conftest import lab_connection
from tests.journey_fixtures import LabJourney

IN_FLIGHT = {"approved", "provisioning"}
FINAL = {"active", "partially_active", "failed", "cancelled", "rejected"}


def api_token(j: LabJourney, username: str) -> str:
    with j.rt.db.unit_of_work() as uow:
        user = uow.session.scalar(select(User).where(User.username == username))
        assert user is not None
        return org.issue_token(
            uow.session,
            user,
            name="production-proof",
            expires_at=datetime.now(UTC) + timedelta(days=1),
            actor=Actor.system("test"),
        ).token


def lab_form(j: LabJourney, count: int, prefix: str) -> RequestForm:
    """m1.tiny from the lab's own image (other tests leave images of their own in the catalog)."""
    form = j.form(count, flavor="m1.tiny", prefix=prefix)
    with j.rt.db.unit_of_work() as uow:
        image = uow.session.scalar(
            select(CatalogItem.id).where(
                CatalogItem.kind == "image", CatalogItem.cloud_name == "cirros-lab", CatalogItem.offered.is_(True)
            )
        )
    assert image is not None, "the lab image cirros-lab is not in the catalog"
    return replace(form, image_item_id=image)


def approve_fully(j: LabJourney, request_id: int) -> None:
    for actor in (j.head, j.operator):
        with j.rt.db.unit_of_work() as uow:
            requests_service.approve_request(uow.session, actor, request_id)


def request_states(j: LabJourney) -> dict[int, tuple[str, str | None]]:
    with j.rt.db.unit_of_work() as uow:
        return {r.id: (r.state, r.state_reason) for r in uow.session.scalars(select(ServiceRequest))}


@dataclass
class Accounting:
    """The department's servers as cloudmgr and as Nova see them."""

    nova_servers: int = 0
    lost: list[str] = field(default_factory=list)  # active in cloudmgr, absent from Nova
    duplicates: list[str] = field(default_factory=list)  # one idempotency key, several servers
    orphans: list[str] = field(default_factory=list)  # in Nova, unknown to cloudmgr
    ledger_vs_nova: dict[str, tuple[int, int]] = field(default_factory=dict)  # resource: (ledger, nova)

    @property
    def ok(self) -> bool:
        return not (self.lost or self.duplicates or self.orphans) and all(
            a == b for a, b in self.ledger_vs_nova.values()
        )


def account(j: LabJourney) -> Accounting:
    """Compare cloudmgr's servers and ledger with Nova's for the journey's project."""
    result = Accounting()
    nova = j.nova_servers()
    result.nova_servers = len(nova)
    by_key = Counter(s.metadata.get(IDEMPOTENCY_METADATA_KEY, "") for s in nova)
    result.duplicates = sorted(k for k, n in by_key.items() if n > 1)
    with j.rt.db.unit_of_work() as uow:
        servers = list(uow.session.scalars(select(ManagedServer)))
        known_keys = {s.idempotency_key for s in servers}
        known_ids = {s.server_id for s in servers if s.server_id}
        for s in servers:
            if s.state in {"active", "stopped"} and s.server_id not in {n.id for n in nova}:
                result.lost.append(f"{s.name} ({s.server_id})")
        balances = ledger.all_balances(uow.session, department_id=j.staff.department_id)
    result.orphans = sorted(
        f"{n.name} ({n.id})"
        for n in nova
        if n.id not in known_ids and n.metadata.get(IDEMPOTENCY_METADATA_KEY) not in known_keys
    )
    usage = lab_connection(Path(j.clouds_yaml)).compute.get_quota_set(j.project_id, usage=True).usage
    (balance,) = balances
    for resource, nova_name in ((Resource.INSTANCES, "instances"), (Resource.CORES, "cores"), (Resource.RAM_MB, "ram")):
        result.ledger_vs_nova[resource.value] = (balance.resources[resource].used, int(usage[nova_name]))
    return result
