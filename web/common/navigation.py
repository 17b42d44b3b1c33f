"""The header navigation of each role.  Later blueprints append their pages:

from web.common.navigation import add_nav_item
add_nav_item(Role.OPERATOR, "ops.requests", _l("Requests"))

The menu groups a role's pages by task (NAV_LAYOUT): a group is one entry of the bar that
opens into its pages (<details>, so it works without JavaScript), and a page no layout
mentions stays a plain entry at the end, so the bar holds one row at 1280 px.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import Flask, request
from flask_babel import lazy_gettext as _l

from cloudmgr.organisation.models import Role
from web.core.security import current_web_user


@dataclass(frozen=True, slots=True)
class NavItem:
    endpoint: str
    label: object  # a lazy string
    # Other endpoints that highlight this item (pages under it).
    also_active: tuple[str, ...] = ()

    def is_active(self, endpoint: str | None) -> bool:
        return endpoint == self.endpoint or endpoint in self.also_active


@dataclass(frozen=True, slots=True)
class NavGroup:
    """Entries of the bar that open into several pages of one task."""

    key: str
    label: object  # a lazy string
    items: tuple[NavItem, ...]

    def is_active(self, endpoint: str | None) -> bool:
        return any(item.is_active(endpoint) for item in self.items)


NAVIGATION: dict[Role, list[NavItem]] = {
    Role.DEPT_STAFF: [NavItem("portal.home", _l("My department"))],
    Role.DEPT_HEAD: [NavItem("portal.home", _l("My department"))],
    Role.OPERATOR: [NavItem("ops.home", _l("Operations overview"))],
    Role.FINANCE: [NavItem("finance.home", _l("Finance overview"))],
    Role.ADMIN: [
        NavItem("admin.home", _l("Overview")),
        NavItem("admin.users", _l("Users"), also_active=("admin.new_user",)),
        NavItem("admin.departments", _l("Departments")),
        NavItem("admin.clouds", _l("Clouds")),
    ],
}

# The bar of each role, in order: an endpoint is a plain entry, (key, label, endpoints) a group.
# Registered pages not named here follow as plain entries; named pages not registered are left out.
_Layout = list[str | tuple[str, object, tuple[str, ...]]]
_PORTAL_LAYOUT: _Layout = [
    "portal.home",
    "portal.new_request",
    "portal.requests",
    "portal.approvals",
    ("resources", _l("My resources"), ("portal.servers", "portal.volumes", "portal.ssh_keys", "portal.quotas")),
    "portal.purchases_list",
    "portal.portal_programme",
    (
        "lines",
        _l("Dedicated lines"),
        ("portal.lines_register", "portal.line_rentals_list", "portal.portal_lines_programme"),
    ),
]
NAV_LAYOUT: dict[Role, _Layout] = {
    Role.DEPT_STAFF: _PORTAL_LAYOUT,
    Role.DEPT_HEAD: _PORTAL_LAYOUT,
    Role.OPERATOR: [
        "ops.home",
        (
            "requests",
            _l("Requests and quotas"),
            (
                "ops.approvals",
                "ops.requests",
                "ops.quotas",
                "ops.catalog_page",
                "ops.firewall_templates",
                "ops.department_resources",
            ),
        ),
        (
            "migration",
            _l("Migrations"),
            ("ops.programme", "ops.systems", "ops.waves_list", "ops.moves", "ops.consolidation_runs"),
        ),
        ("capacity", _l("Capacity"), ("ops.capacity", "ops.orphans")),
        (
            "network",
            _l("Network lines"),
            ("ops.lines_register", "ops.line_batch", "ops.lines_coverage", "ops.ops_lines_programme"),
        ),
        "ops.audit_log",
    ],
    Role.FINANCE: [
        "finance.home",
        "finance.approvals",
        "finance.purchase_queue",
        (
            "lines",
            _l("Dedicated lines"),
            (
                "finance.line_rentals",
                "finance.line_contracts",
                "finance.line_savings",
                "finance.finance_lines_programme",
            ),
        ),
        (
            "reports",
            _l("Reports"),
            ("finance.purchase_reports", "finance.showback_page", "finance.capacity", "finance.finance_programme"),
        ),
    ],
}


def add_nav_item(role: Role, endpoint: str, label: object, *, also_active: tuple[str, ...] = ()) -> None:
    NAVIGATION[role].append(NavItem(endpoint, label, also_active))


def menu(role: Role) -> list[NavItem | NavGroup]:
    """The entries of a role's bar: its pages, grouped as NAV_LAYOUT says."""
    items = {item.endpoint: item for item in NAVIGATION.get(role, [])}
    entries: list[NavItem | NavGroup] = []
    placed: set[str] = set()
    for entry in NAV_LAYOUT.get(role, []):
        if isinstance(entry, str):
            if entry in items:
                entries.append(items[entry])
                placed.add(entry)
            continue
        key, label, endpoints = entry
        members = tuple(items[endpoint] for endpoint in endpoints if endpoint in items)
        placed.update(item.endpoint for item in members)
        if len(members) > 1:
            entries.append(NavGroup(key, label, members))
        elif members:
            entries.append(members[0])
    entries.extend(item for endpoint, item in items.items() if endpoint not in placed)
    return entries


def init_app(app: Flask) -> None:
    @app.context_processor
    def _navigation() -> dict[str, object]:
        user = current_web_user()
        # After an administrator's reset nothing but the password form opens: no menu to follow.
        entries = menu(user.role) if user is not None and not user.password_change_required else []
        return {"nav_items": entries, "current_endpoint": request.endpoint}
