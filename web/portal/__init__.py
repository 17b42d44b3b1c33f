"""The department portal: department IT staff and department heads (/portal)."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l

from cloudmgr.organisation.models import Role
from web.common.navigation import add_nav_item
from web.portal import (  # noqa: F401  (registers the routes)
    backups,
    keys,
    lines,
    lines_rentals,
    programme,
    purchases,
    quotas,
    requests,
    servers,
    snapshots,
    storage,
    views,
)
from web.portal.blueprint import bp

__all__ = ["bp"]

for _role in (Role.DEPT_STAFF, Role.DEPT_HEAD):
    add_nav_item(_role, "portal.new_request", _l("New request"))
    add_nav_item(_role, "portal.requests", _l("My requests"), also_active=("portal.request_detail",))
    add_nav_item(
        _role,
        "portal.servers",
        _l("Servers"),
        also_active=("portal.server_detail", "portal.restore_server_snapshot_page"),
    )
    add_nav_item(_role, "portal.volumes", _l("Storage volumes"))
    add_nav_item(_role, "portal.ssh_keys", _l("SSH keys"))
    if _role == Role.DEPT_HEAD:
        add_nav_item(_role, "portal.approvals", _l("Awaiting my approval"))
    add_nav_item(_role, "portal.quotas", _l("Quotas"))
    add_nav_item(
        _role,
        "portal.purchases_list",
        _l("Purchases"),
        also_active=("portal.purchase_new", "portal.purchase_detail", "portal.purchase_edit"),
    )
    add_nav_item(_role, "portal.portal_programme", _l("Programme"))
    add_nav_item(
        _role,
        "portal.line_rentals_list",
        _l("Line requests"),
        also_active=("portal.line_rental_new", "portal.line_rental_detail"),
    )
    add_nav_item(_role, "portal.portal_lines_programme", _l("Network programme"))
    add_nav_item(
        _role,
        "portal.lines_register",
        _l("Line register"),
        also_active=("portal.line_detail", "portal.line_new", "portal.lines_import"),
    )
