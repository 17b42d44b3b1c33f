"""Every model of every domain package, imported once so the metadata is complete
(Alembic autogenerate and the test fixtures read ``Base.metadata``)."""

from cloudmgr.audit.models import AuditEvent
from cloudmgr.capacity.models import CapacitySnapshot, ConsolidationRun, HostCapacity
from cloudmgr.catalog.models import CatalogItem
from cloudmgr.db import Base
from cloudmgr.organisation.models import ApiToken, Cloud, Department, DepartmentCloud, NetworkZone, User
from cloudmgr.quotas.models import QuotaAssignment, QuotaChangeRequest, QuotaDrift, QuotaLedgerRow, QuotaReservation
from cloudmgr.servicerequests.models import ManagedServer, OrphanServer, RequestEvent, ServiceRequest
from cloudmgr.workqueue.models import Lease, WorkItem

__all__ = [
    "ApiToken",
    "AuditEvent",
    "Base",
    "CapacitySnapshot",
    "CatalogItem",
    "Cloud",
    "ConsolidationRun",
    "Department",
    "DepartmentCloud",
    "HostCapacity",
    "Lease",
    "ManagedServer",
    "NetworkZone",
    "OrphanServer",
    "QuotaAssignment",
    "QuotaChangeRequest",
    "QuotaDrift",
    "QuotaLedgerRow",
    "QuotaReservation",
    "RequestEvent",
    "ServiceRequest",
    "User",
    "WorkItem",
]
