"""The header navigation of each role.  Later blueprints append their pages:

from web.common.navigation import add_nav_item
add_nav_item(Role.OPERATOR, "ops.requests", _l("Requests"))
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


def add_nav_item(role: Role, endpoint: str, label: object, *, also_active: tuple[str, ...] = ()) -> None:
    NAVIGATION[role].append(NavItem(endpoint, label, also_active))


def init_app(app: Flask) -> None:
    @app.context_processor
    def _navigation() -> dict[str, object]:
        user = current_web_user()
        items = NAVIGATION.get(user.role, []) if user is not None else []
        return {"nav_items": items, "current_endpoint": request.endpoint}
