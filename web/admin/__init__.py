"""Administrators (/admin): users, departments and clouds."""

from __future__ import annotations

from flask import Blueprint

from cloudmgr.organisation.models import Role
from web.security import protect_blueprint

bp = Blueprint("admin", __name__)
protect_blueprint(bp, Role.ADMIN)

from web.admin import declassifications, views  # noqa: E402,F401  (registers the routes)
