"""Every model of every domain package, imported once so the metadata is complete
(Alembic autogenerate and the test fixtures read ``Base.metadata``)."""

from cloudmgr.audit.models import AuditEvent
from cloudmgr.backups.models import BackupSchedule, ServerSnapshotRecord, VolumeBackupRecord, VolumeSnapshotRecord
from cloudmgr.capacity.models import CapacitySnapshot, ConsolidationRun, HostCapacity
from cloudmgr.catalog.models import CatalogItem
from cloudmgr.cloudservers.models import MirroredServer, ServerSyncState
from cloudmgr.db import Base
from cloudmgr.firewall.models import (
    FirewallTemplate,
    FirewallTemplateRule,
    RequestFirewallRule,
    RequestFirewallTemplate,
)
from cloudmgr.identity.models import ExternalIdentity, LoginThrottle
from cloudmgr.inventory.models import LegacySystem, ServerRoom
from cloudmgr.keys.models import SshKey
from cloudmgr.lines.finance_models import LineRentalRequest
from cloudmgr.lines.models import NetworkLine
from cloudmgr.moves.models import Move, MoveEvent, MoveStep
from cloudmgr.organisation.models import (
    ApiToken,
    Cloud,
    CloudReachability,
    Department,
    DepartmentCloud,
    NetworkZone,
    User,
)
from cloudmgr.programme.models import MigrationWave, MigrationWaveMember, ProgrammeSnapshot
from cloudmgr.purchases.models import (
    PurchaseAttachment,
    PurchaseEvent,
    PurchaseFinding,
    PurchaseItem,
    PurchaseRequest,
)
from cloudmgr.quotas.models import QuotaAssignment, QuotaChangeRequest, QuotaDrift, QuotaLedgerRow, QuotaReservation
from cloudmgr.runbooks.models import RunbookEvent, RunbookRun, RunbookTarget
from cloudmgr.servicerequests.models import ManagedServer, OrphanServer, RequestEvent, ServiceRequest
from cloudmgr.servicerequests.orphans import OrphanResource
from cloudmgr.servicerequests.parts import ManagedAddress, ManagedVolume
from cloudmgr.workqueue.models import Lease, WorkItem

__all__ = [
    "ApiToken",
    "AuditEvent",
    "BackupSchedule",
    "Base",
    "CapacitySnapshot",
    "CatalogItem",
    "Cloud",
    "CloudReachability",
    "ConsolidationRun",
    "Department",
    "DepartmentCloud",
    "ExternalIdentity",
    "FirewallTemplate",
    "FirewallTemplateRule",
    "HostCapacity",
    "Lease",
    "LegacySystem",
    "LineRentalRequest",
    "LoginThrottle",
    "ManagedAddress",
    "ManagedServer",
    "ManagedVolume",
    "MigrationWave",
    "MigrationWaveMember",
    "MirroredServer",
    "Move",
    "MoveEvent",
    "MoveStep",
    "NetworkLine",
    "NetworkZone",
    "OrphanResource",
    "OrphanServer",
    "ProgrammeSnapshot",
    "PurchaseAttachment",
    "PurchaseEvent",
    "PurchaseFinding",
    "PurchaseItem",
    "PurchaseRequest",
    "QuotaAssignment",
    "QuotaChangeRequest",
    "QuotaDrift",
    "QuotaLedgerRow",
    "QuotaReservation",
    "RequestEvent",
    "RequestFirewallRule",
    "RequestFirewallTemplate",
    "RunbookEvent",
    "RunbookRun",
    "RunbookTarget",
    "ServerRoom",
    "ServerSnapshotRecord",
    "ServerSyncState",
    "ServiceRequest",
    "SshKey",
    "User",
    "VolumeBackupRecord",
    "VolumeSnapshotRecord",
    "WorkItem",
]
