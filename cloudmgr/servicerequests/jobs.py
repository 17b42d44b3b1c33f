"""Jobs of the self-service journey: the work handlers that provision, resize and act on
servers (entry points: they read the runtime and call the cloud between the short units of
work of :mod:`cloudmgr.servicerequests.provisioning`), and the periodic jobs: reconcile with
the clouds, expiry, stale reservations."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from cloudmgr.audit import services as audit
from cloudmgr.cloud import CloudError, CloudNoValidHost, CloudUnavailable
from cloudmgr.cloud.provider import CloudProvider
from cloudmgr.cloud.types import IDEMPOTENCY_METADATA_KEY, Server
from cloudmgr.db import Database, utcnow
from cloudmgr.messages import Message
from cloudmgr.organisation.actor import Actor
from cloudmgr.organisation.models import Cloud, DepartmentCloud
from cloudmgr.providers import ProviderRegistry
from cloudmgr.quotas import ledger
from cloudmgr.quotas.resources import Resource
from cloudmgr.runtime import get_runtime, installed_settings
from cloudmgr.servicerequests import texts
from cloudmgr.servicerequests.booting import BOOTABLE, boot_in_window
from cloudmgr.servicerequests.deletion import delete_server_and_parts
from cloudmgr.servicerequests.models import ManagedServer, OrphanServer, ServiceRequest
from cloudmgr.servicerequests.orphan_work import run_orphan_action
from cloudmgr.servicerequests.orphans import record_orphans
from cloudmgr.servicerequests.provisioning import (
    ProvisioningTarget,
    fail_part,
    fail_server,
    finish_request,
    record_event,
    resize_refusal,
    security_rules,
    server_rows,
    start_provisioning,
)
from cloudmgr.servicerequests.states import RequestState, ServerState
from cloudmgr.stored_messages import stored_text
from cloudmgr.workqueue.models import WorkItem, WorkState
from cloudmgr.workqueue.services import ClaimedItem, GiveUp, RetryLater, enqueue, renew

log = logging.getLogger(__name__)

ACTOR = Actor.system("requests.reconcile")
SERVER_ACTION_ACTOR = Actor.system("server_action")
EXPIRY_ACTOR = Actor.system("expiry")


# --- work handlers ---------------------------------------------------------------------------


def handle_provision(db: Database, item: ClaimedItem) -> None:
    runtime = get_runtime()
    settings = runtime.settings
    found = start_provisioning(db, int(item.payload["request_id"]))
    if found is None:
        return
    target, todo = found
    if target.project_id is None or target.network_id is None:
        problem = Message(texts.NOT_SYNCED)
        for server_id in todo:
            fail_server(db, server_id, target.cloud_key, problem, reason_code="not_synced")
        finish_request(db, target.request_id)
        return
    provider = runtime.providers.for_cloud(target.cloud_key, target.os_cloud, target.region)
    security_groups = _prepare_boot(db, provider, target, todo)

    def keep_alive() -> None:
        renew(db, item, lease=timedelta(seconds=settings.work_lease_seconds))

    # A sliding window of boots, each server's parts made once it is ACTIVE
    # (cloudmgr.servicerequests.booting).
    refusal = boot_in_window(
        db,
        provider,
        target,
        todo,
        security_groups,
        window=settings.max_concurrent_boots,
        timeout=settings.boot_timeout_seconds,
        keep_alive=keep_alive,
    )
    finish_request(db, target.request_id, why=refusal)


def _prepare_boot(
    db: Database, provider: CloudProvider, target: ProvisioningTarget, todo: list[int]
) -> tuple[str, ...]:
    """Before any server boots: the keypair and the security groups it boots with, made (or
    found, converged) on the department's project.  A failure fails the servers not yet booted,
    naming the part; the names of the groups are returned."""
    assert target.project_id is not None
    # Not yet booted: PENDING, or BUILDING with no cloud id (asked by a run that stopped).
    pending = [row[0] for row in server_rows(db, todo) if row[3] in BOOTABLE and not row[4]]
    if not pending:
        return ()
    part = Message(texts.FIREWALL)
    if target.firewall_problem:
        for server_id in pending:
            fail_part(db, server_id, target.cloud_key, part, target.firewall_problem)
        return ()
    try:
        if target.key_name and target.public_key:
            part = Message(texts.KEYPAIR)
            provider.ensure_keypair(target.project_id, target.key_name, target.public_key)
        groups = target.firewall
        if groups is None:
            return ()
        part = Message(texts.FIREWALL)
        department = provider.ensure_security_group(
            target.project_id, groups.department_group, f"servers of {target.department_key}", ()
        )
        provider.ensure_security_group(
            target.project_id,
            groups.group_name,
            f"request {target.request_id} of {target.department_key}",
            security_rules(groups, department.id),
        )
    except CloudUnavailable as exc:
        raise RetryLater(f"cloud {target.cloud_key} unreachable: {exc}") from exc
    except CloudError as exc:
        for server_id in pending:
            fail_part(db, server_id, target.cloud_key, part, exc)
        return ()
    return (groups.group_name, groups.department_group)


def _give_up_provision(db: Database, item: ClaimedItem, error: str) -> None:
    request_id = int(item.payload["request_id"])
    with db.unit_of_work() as uow:
        request = uow.session.get(ServiceRequest, request_id)
        if request is None:
            return
        ids = [s.id for s in request.servers if s.state in {ServerState.PENDING, ServerState.BUILDING}]
        cloud_key = request.cloud.key
    for server_id in ids:
        fail_server(
            db, server_id, cloud_key, texts.cloud_fault("cloud_unreachable", error), reason_code="cloud_unreachable"
        )
    finish_request(db, request_id)


handle_provision.on_give_up = _give_up_provision  # type: ignore[attr-defined]


def handle_resize(db: Database, item: ClaimedItem) -> None:
    runtime = get_runtime()
    request_id = int(item.payload["request_id"])
    reservation_id = item.payload.get("reservation_id")
    with db.unit_of_work() as uow:
        session = uow.session
        request = session.get(ServiceRequest, request_id, with_for_update=True)
        if request is None:
            raise GiveUp(f"request {request_id} does not exist")
        if request.state == RequestState.APPROVED:
            request.provisioning_started_at = utcnow()
            record_event(session, request, RequestState.PROVISIONING, "resize", None)
        elif request.state != RequestState.PROVISIONING:
            return
        server = session.get(ManagedServer, request.target_server_id)
        if server is None or not server.server_id:
            raise GiveUp("the server to resize is gone")
        refusal = resize_refusal(session, request)
        if refusal is not None:
            if reservation_id:
                ledger.release(session, int(reservation_id), reason="refused: classified_system")
            record_event(session, request, RequestState.FAILED, "resize", refusal)
            request.finished_at = utcnow()
            return
        cloud = server.cloud
        cloud_server_id, new_flavor = server.server_id, request.flavor
        flavor_ref, new_vcpus, new_ram = new_flavor.external_id, new_flavor.vcpus, new_flavor.ram_mb
        old = {Resource.CORES: server.vcpus, Resource.RAM_MB: server.ram_mb}
    provider = runtime.providers.for_cloud(cloud.key, cloud.os_cloud, cloud.region)
    try:
        current = provider.get_server(cloud_server_id)
        if current.flavor_id != flavor_ref:
            if current.status == "VERIFY_RESIZE":
                provider.confirm_resize(cloud_server_id)
            else:
                if current.status == "ACTIVE":
                    provider.resize_server(cloud_server_id, flavor_ref)
                current = provider.wait_for_server(cloud_server_id, {"VERIFY_RESIZE", "ACTIVE"}, timeout=600)
                if current.status == "VERIFY_RESIZE":
                    provider.confirm_resize(cloud_server_id)
        final = provider.wait_for_server(cloud_server_id, {"ACTIVE", "SHUTOFF"}, timeout=600)
        if final.flavor_id != flavor_ref:
            # Nova answers the resize at once and only then finds no host with room: the
            # server stays as it was, and only its flavor tells.
            raise CloudNoValidHost("no compute host has room for the new flavor", final.fault_message or "")
    except CloudUnavailable as exc:
        raise RetryLater(str(exc)) from exc
    except CloudError as exc:
        with db.unit_of_work() as uow:
            request = uow.session.get(ServiceRequest, request_id)
            assert request is not None
            if reservation_id:
                ledger.release(uow.session, int(reservation_id), reason="resize failed")
            record_event(uow.session, request, RequestState.FAILED, "resize", str(exc)[:2000])
            request.finished_at = utcnow()
        return
    with db.unit_of_work() as uow:
        session = uow.session
        request = session.get(ServiceRequest, request_id)
        server = session.get(ManagedServer, request.target_server_id) if request else None
        assert request is not None and server is not None
        if reservation_id:
            ledger.consume(session, int(reservation_id), reason="resized")
        shrink = {
            Resource.CORES: max(old[Resource.CORES] - new_vcpus, 0),
            Resource.RAM_MB: max(old[Resource.RAM_MB] - new_ram, 0),
        }
        if any(shrink.values()):
            ledger.give_back_usage(
                session, department_id=server.department_id, cloud_id=server.cloud_id, amounts=shrink
            )
        server.flavor_item_id, server.vcpus, server.ram_mb = request.flavor_item_id, new_vcpus, new_ram
        server.host = final.host
        record_event(session, request, RequestState.ACTIVE, "resize", None)
        request.finished_at = utcnow()


def handle_server_action(db: Database, item: ClaimedItem) -> None:
    runtime = get_runtime()
    action = str(item.payload["action"])
    with db.unit_of_work() as uow:
        server = uow.session.get(ManagedServer, int(item.payload["server_id"]))
        if server is None:
            raise GiveUp("no such server")
        cloud = server.cloud
        cloud_server_id = item.payload.get("cloud_server_id") or server.server_id
        server_id = server.id
    provider = runtime.providers.for_cloud(cloud.key, cloud.os_cloud, cloud.region)
    try:
        if action == "delete_cloud_server":  # the failed attempt a retry replaces
            if cloud_server_id:
                provider.delete_server(cloud_server_id)
            return
        if action == "delete":
            # The address, the volumes as decided, the VM and the ledger, step by step.
            delete_server_and_parts(db, provider, item.payload)
            return
        if not cloud_server_id:
            raise GiveUp(f"server {server_id} has no cloud server")
        if action == "stop":
            provider.stop_server(cloud_server_id)
            provider.wait_for_server(cloud_server_id, {"SHUTOFF"}, timeout=300)
            new_state = ServerState.STOPPED
        elif action == "start":
            provider.start_server(cloud_server_id)
            provider.wait_for_server(cloud_server_id, {"ACTIVE"}, timeout=300)
            new_state = ServerState.ACTIVE
        else:
            raise GiveUp(f"unknown action {action}")
    except CloudUnavailable as exc:
        raise RetryLater(str(exc)) from exc
    except CloudError as exc:
        raise GiveUp(f"{action} failed: {exc}") from exc
    with db.unit_of_work() as uow:
        session = uow.session
        server = session.get(ManagedServer, server_id, with_for_update=True)
        assert server is not None
        server.state = new_state
        audit.record(
            session,
            actor=SERVER_ACTION_ACTOR.username,
            action=f"server.{action}.done",
            target_type="managed_server",
            target_id=server.id,
        )


def handle_orphan_action(db: Database, item: ClaimedItem) -> None:
    """An operator's adopt or delete of an orphaned volume or floating IP (issue 16)."""
    run_orphan_action(db, get_runtime().providers, int(item.payload["orphan_id"]))


# --- periodic jobs ---------------------------------------------------------------------------


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
                    session,
                    actor=ACTOR.username,
                    action="request.resume",
                    target_type="service_request",
                    target_id=request.id,
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
    """Compare each cloud's servers carrying our metadata with what the ledger knows, and each
    department project's tagged volumes and floating IPs with the rows that own them.

    The servers are read from the cloud's mirror (cloudmgr.cloudservers), synced first: a delta
    (changes-since) when it can, a full listing only when the mirror has none or it is due.  A
    province cloud's tens of thousands of servers are not listed every minute (issue 20)."""
    from cloudmgr.cloudservers.services import SyncPolicy, servers_with_key, sync_cloud_servers

    policy = SyncPolicy.from_settings(installed_settings())
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
            sync_cloud_servers(db, provider, cloud_id, policy=policy)
        except CloudError as exc:
            report.problems.append(f"{key}: {exc}")
            continue
        with db.unit_of_work() as uow:
            cloud_servers = servers_with_key(uow.session, cloud_id, projects.get(cloud_id, set()))
            _record_orphans(uow.session, cloud_id, key, cloud_servers, report)
            _record_vanished(uow.session, cloud_id, key, cloud_servers, report)
            _resolve_gone_orphans(uow.session, cloud_id, cloud_servers)
        try:
            volumes = [v for project in sorted(projects.get(cloud_id, set())) for v in provider.list_volumes(project)]
            addresses = [
                a for project in sorted(projects.get(cloud_id, set())) for a in provider.list_floating_ips(project)
            ]
        except CloudError as exc:
            report.problems.append(f"{key}: volumes or floating IPs: {exc}")
            continue
        with db.unit_of_work() as uow:
            report.orphans.extend(
                f"{key}: {found}" for found in record_orphans(uow.session, cloud_id, volumes, addresses)
            )


def _record_orphans(
    session: Session, cloud_id: int, key: str, cloud_servers: Sequence[Server], report: ReconcileReport
) -> None:
    """Servers with our metadata that no request of ours holds: recorded (once) and audited."""
    all_keys = set(session.scalars(select(ManagedServer.idempotency_key)))
    for cloud_server in cloud_servers:
        idem = cloud_server.metadata[IDEMPOTENCY_METADATA_KEY]
        if idem in all_keys:
            continue
        if (
            session.scalar(
                select(OrphanServer).where(OrphanServer.cloud_id == cloud_id, OrphanServer.server_id == cloud_server.id)
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
                actor=ACTOR.username,
                action="server.orphan",
                target_type="cloud_server",
                target_id=cloud_server.id,
                detail={"cloud": key, "name": cloud_server.name, "key": idem},
            )


def _record_vanished(
    session: Session, cloud_id: int, key: str, cloud_servers: Sequence[Server], report: ReconcileReport
) -> None:
    """Our running or stopped servers the cloud no longer has: deleted, their usage given back."""
    ours = {
        s.idempotency_key: s for s in session.scalars(select(ManagedServer).where(ManagedServer.cloud_id == cloud_id))
    }
    present = {s.metadata[IDEMPOTENCY_METADATA_KEY] for s in cloud_servers}
    for idem, server in ours.items():
        if server.state in {ServerState.ACTIVE, ServerState.STOPPED} and idem not in present:
            # Deleted on the cloud behind our back: the usage is gone too.  The request is
            # locked first (the order of every writer): it keeps its servers' faults' messages.
            session.get(ServiceRequest, server.request_id, with_for_update=True, populate_existing=True)
            server.state, server.fault = (
                ServerState.DELETED,
                stored_text(server.request, Message(texts.DELETED_OUTSIDE)),
            )
            ledger.give_back_usage(
                session,
                department_id=server.department_id,
                cloud_id=server.cloud_id,
                amounts={Resource.CORES: server.vcpus, Resource.RAM_MB: server.ram_mb, Resource.INSTANCES: 1},
            )
            report.vanished.append(f"{key}: {server.name}")
            audit.record(
                session,
                actor=ACTOR.username,
                action="server.vanished",
                target_type="managed_server",
                target_id=server.id,
            )


def _resolve_gone_orphans(session: Session, cloud_id: int, cloud_servers: Sequence[Server]) -> None:
    """An open orphan the cloud no longer has is resolved."""
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
                    actor=EXPIRY_ACTOR.username,
                    action="server.expired_stop",
                    target_type="managed_server",
                    target_id=server.id,
                    reason=texts.expired(server.expires_on, grace_days),
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
