"""Cloud operators (/ops)."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l

from cloudmgr.organisation.models import Role
from web.common.navigation import add_nav_item
from web.operations import (  # noqa: F401  (registers the routes)
    audit,
    capacity,
    catalog,
    firewall,
    lines,
    lines_programme,
    moves,
    programme,
    quotas,
    requests,
    resources,
    runbooks,
    systems,
    views,
)
from web.operations.blueprint import bp

__all__ = ["bp"]

add_nav_item(
    Role.OPERATOR,
    "ops.waves_list",
    _l("Migration waves"),
    also_active=("ops.wave_new", "ops.wave_create", "ops.wave_detail"),
)
add_nav_item(Role.OPERATOR, "ops.programme", _l("Programme"))
add_nav_item(Role.OPERATOR, "ops.approvals", _l("Approval queue"))
add_nav_item(Role.OPERATOR, "ops.requests", _l("All requests"), also_active=("ops.request_detail",))
add_nav_item(Role.OPERATOR, "ops.quotas", _l("Quotas"))
add_nav_item(Role.OPERATOR, "ops.catalog_page", _l("Catalog"))
add_nav_item(Role.OPERATOR, "ops.firewall_templates", _l("Firewall templates"), also_active=("ops.firewall_template",))
add_nav_item(Role.OPERATOR, "ops.department_resources", _l("Department resources"))
add_nav_item(Role.OPERATOR, "ops.capacity", _l("Capacity"))
add_nav_item(
    Role.OPERATOR, "ops.consolidation_runs", _l("Consolidation"), also_active=("ops.consolidation_run", "ops.planner")
)
add_nav_item(
    Role.OPERATOR,
    "ops.systems",
    _l("Legacy systems"),
    also_active=("ops.system_detail", "ops.import_form", "ops.import_systems"),
)
add_nav_item(Role.OPERATOR, "ops.moves", _l("Server moves"), also_active=("ops.move_detail",))
add_nav_item(Role.OPERATOR, "ops.orphans", _l("Orphaned resources"))
add_nav_item(
    Role.OPERATOR,
    "ops.lines_register",
    _l("Line register"),
    also_active=("ops.line_detail", "ops.plan_line", "ops.record_line"),
)
add_nav_item(Role.OPERATOR, "ops.line_batch", _l("Cut-over batches"))
add_nav_item(Role.OPERATOR, "ops.lines_coverage", _l("Extranet coverage"))
add_nav_item(Role.OPERATOR, "ops.ops_lines_programme", _l("Network programme"))
add_nav_item(Role.OPERATOR, "ops.audit_log", _l("Audit log"))
