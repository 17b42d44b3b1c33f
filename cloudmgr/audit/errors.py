"""Errors of the audit log."""

from __future__ import annotations

from cloudmgr.errors import CloudmgrError


class AuditLogIsAppendOnly(CloudmgrError):
    """An audit event was changed or deleted: the log is append-only (the ORM and the database refuse)."""
