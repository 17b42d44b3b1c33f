"""The refusals of the department resources overview."""

from __future__ import annotations

from cloudmgr.errors import PermissionDenied


class ResourcesForbidden(PermissionDenied):
    """Only operators and administrators read a department's resources here (a department reads
    its own on its own pages)."""

    code = "department_resources_forbidden"
