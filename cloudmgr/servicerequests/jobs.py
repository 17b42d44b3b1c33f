"""Periodic jobs of the self-service journey: reconcile with the clouds, expiry, stale reservations."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date, timedelta

from sqlalchemy import select

from cloudmgr.audit import services as audit
from cloudmgr.cloud import CloudError
from cloudmgr.cloud.types import IDEMPOTENCY_METADATA_KEY
from cloudmgr.db import Database, utcnow
from cloudmgr.organisation.models import Cloud, DepartmentCloud
from cloudmgr.providers import ProviderRegistry
from cloudmgr.quotas import ledger
from cloudmgr.quotas.resources import Resource
from cloudmgr.servicerequests.models import ManagedServer, OrphanServer, ServiceRequest
from cloudmgr.servicerequests.states import RequestState, ServerState
from cloudmgr.workqueue.models import WorkItem, WorkState
from cloudmgr.workqueue.services import enqueue

log = logging.getLogger(__name__)

ACTOR = "system:requests.reconcile"


@dataclass
class ReconcileReport:
    resumed: list[int] = field(default_factory=list)
    orphans: list[str] = field(default_factory=list)
    vanished: list[str] = field(default_factory=list)
    lapsed_reservations: int = 0
    problems: list[str] = field(default_factory=list)


def resume_stalled(db: Database, report: ReconcileReport) -> None:
    """Approved or provisioning requests with no live work item get one again."""
    with db.unit_of_work() as uow:
        session = uow.session
        live = {
            key
            for key in session.scalars(
                select(WorkItem.key).where(WorkItem.state.in_([WorkState.QUEUED.value, WorkState.RUNNING.value]))
            )
        }
        for request in session.scalars(
            select(ServiceRequest).where(ServiceRequest.state.in_([RequestState.APPROVED, RequestState.PROVISIONING]))
        ):
            kind = "resize" if request.kind == "resize" else "provision"
            if f"{kind}:{request.id}" not in live:
                enqueue(session, kind, f"{kind}:{request.id}", {"request_id": request.id})
                report.resumed.append(request.id)
                audit.record(
                    session, actor=ACTOR, action="request.resume", target_type="service_request", target_id=request.id
                )


def release_lapsed_reservations(db: Database, hold_days: int, report: ReconcileReport) -> None:
    """A request waiting too long for approval lets its quota go (approval takes it again)."""
    cutoff = utcnow() - timedelta(days=hold_days)
    with db.unit_of_work() as uow:
        session = uow.session
        for request in session.scalars(
            select(ServiceRequest).where(
                ServiceRequest.state == RequestState.SUBMITTED, ServiceRequest.submitted_at <= cutoff
            )
        ):
            for server in request.servers:
                if server.reservation_id is not None and ledger.release(
                    session, server.reservation_id, reason=f"waited more than {hold_days} days for approval"
                ):
                    report.lapsed_reservations += 1
                    server.reservation_id = None


def find_orphans_and_vanished(db: Database, registry: ProviderRegistry, report: ReconcileReport) -> None:
    """Compare each cloud's servers carrying our metadata with what the ledger knows."""
    with db.unit_of_work() as uow:
        clouds = [(c.id, c.key, c.os_cloud, c.region) for c in uow.session.scalars(select(Cloud).where(Cloud.enabled))]
        # Several clouds of the file may share one OpenStack: each looks only at its own projects.
        projects: dict[int, set[str]] = {}
        for link in uow.session.scalars(select(DepartmentCloud)):
            if link.project_id:
                projects.setdefault(link.cloud_id, set()).add(link.project_id)
    for cloud_id, key, os_cloud, region in clouds:
        provider = registry.for_cloud(key, os_cloud, region)
        try:
            cloud_servers = [
                s
                for s in provider.iter_servers()
                if IDEMPOTENCY_METADATA_KEY in s.metadata and s.project_id in projects.get(cloud_id, set())
            ]
        except CloudError as exc:
            report.problems.append(f"{key}: {exc}")
            continue
        with db.unit_of_work() as uow:
            session = uow.session
            ours = {
                s.idempotency_key: s
                for s in session.scalars(select(ManagedServer).where(ManagedServer.cloud_id == cloud_id))
            }
            all_keys = set(session.scalars(select(ManagedServer.idempotency_key)))
            for cloud_server in cloud_servers:
                idem = cloud_server.metadata[IDEMPOTENCY_METADATA_KEY]
                if idem in all_keys:
                    continue
                if (
                    session.scalar(
                        select(OrphanServer).where(
                            OrphanServer.cloud_id == cloud_id, OrphanServer.server_id == cloud_server.id
                        )
                    )
                    is None
                ):
                    session.add(
                        OrphanServer(
                            cloud_id=cloud_id,
                            server_id=cloud_server.id,
                            name=cloud_server.name,
                            project_id=cloud_server.project_id,
                            idempotency_key=idem,
                        )
                    )
                    report.orphans.append(f"{key}: {cloud_server.name} ({cloud_server.id})")
                    audit.record(
                        session,
                        actor=ACTOR,
                        action="server.orphan",
                        target_type="cloud_server",
                        target_id=cloud_server.id,
                        detail={"cloud": key, "name": cloud_server.name, "key": idem},
                    )
            present = {s.metadata[IDEMPOTENCY_METADATA_KEY] for s in cloud_servers}
            for idem, server in ours.items():
                if server.state in {ServerState.ACTIVE, ServerState.STOPPED} and idem not in present:
                    # Deleted on the cloud behind our back: the usage is gone too.
                    server.state, server.fault = ServerState.DELETED, "deleted outside cloudmgr"
                    ledger.give_back_usage(
                        session,
                        department_id=server.department_id,
                        cloud_id=server.cloud_id,
                        amounts={Resource.CORES: server.vcpus, Resource.RAM_MB: server.ram_mb, Resource.INSTANCES: 1},
                    )
                    report.vanished.append(f"{key}: {server.name}")
                    audit.record(
                        session,
                        actor=ACTOR,
                        action="server.vanished",
                        target_type="managed_server",
                        target_id=server.id,
                    )
            for orphan in session.scalars(
                select(OrphanServer).where(OrphanServer.cloud_id == cloud_id, OrphanServer.resolved_at.is_(None))
            ):
                if orphan.server_id not in {s.id for s in cloud_servers}:
                    orphan.resolved_at = utcnow()


def reconcile_requests(db: Database, registry: ProviderRegistry, *, hold_days: int) -> ReconcileReport:
    report = ReconcileReport()
    release_lapsed_reservations(db, hold_days, report)
    resume_stalled(db, report)
    find_orphans_and_vanished(db, registry, report)
    return report


@dataclass
class ExpiryReport:
    reminded: list[str] = field(default_factory=list)
    stopped: list[str] = field(default_factory=list)


def handle_expiry(db: Database, *, reminder_days: int, grace_days: int, today: date | None = None) -> ExpiryReport:
    """Remind before expiry; stop (never delete) once the grace period has passed."""
    today = today or date.today()
    report = ExpiryReport()
    with db.unit_of_work() as uow:
        session = uow.session
        for server in session.scalars(
            select(ManagedServer).where(ManagedServer.state.in_([ServerState.ACTIVE, ServerState.STOPPED]))
        ):
            days_left = (server.expires_on - today).days
            if days_left <= reminder_days and server.reminded_on is None:
                server.reminded_on = today
                enqueue(
                    session,
                    "notify",
                    f"notify:expiry:{server.id}:{server.expires_on.isoformat()}",
                    {"event": "expiry_reminder", "server_id": server.id},
                    max_attempts=5,
                )
                report.reminded.append(server.name)
            if server.state == ServerState.ACTIVE and days_left < -grace_days and server.stopped_for_expiry_at is None:
                server.stopped_for_expiry_at = utcnow()
                audit.record(
                    session,
                    actor="system:expiry",
                    action="server.expired_stop",
                    target_type="managed_server",
                    target_id=server.id,
                    reason=f"expired on {server.expires_on.isoformat()}, grace {grace_days} days",
                )
                enqueue(
                    session, "server_action", f"server:{server.id}:stop", {"server_id": server.id, "action": "stop"}
                )
                enqueue(
                    session,
                    "notify",
                    f"notify:expired:{server.id}:{server.expires_on.isoformat()}",
                    {"event": "expired_stopped", "server_id": server.id},
                    max_attempts=5,
                )
                report.stopped.append(server.name)
    return report
