"""Administrators (/admin): users, departments and clouds, declassifications."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l

from cloudmgr.organisation.models import Role
from web.admin import declassifications, resources, views  # noqa: F401  (registers the routes)
from web.admin.blueprint import bp
from web.common.navigation import add_nav_item

__all__ = ["bp"]

add_nav_item(Role.ADMIN, "admin.quota_files", _l("Quota files"))
add_nav_item(Role.ADMIN, "admin.declassifications", _l("Declassifications"))
