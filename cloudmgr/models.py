"""Every model of every domain package, imported once so the metadata is complete
(Alembic autogenerate and the test fixtures read ``Base.metadata``)."""

from cloudmgr.audit.models import AuditEvent
from cloudmgr.db import Base
from cloudmgr.organisation.models import ApiToken, Cloud, Department, DepartmentCloud, NetworkZone, User
from cloudmgr.quotas.models import QuotaAssignment, QuotaChangeRequest, QuotaDrift, QuotaLedgerRow, QuotaReservation

__all__ = [
    "ApiToken",
    "AuditEvent",
    "Base",
    "Cloud",
    "Department",
    "DepartmentCloud",
    "NetworkZone",
    "QuotaAssignment",
    "QuotaChangeRequest",
    "QuotaDrift",
    "QuotaLedgerRow",
    "QuotaReservation",
    "User",
]
