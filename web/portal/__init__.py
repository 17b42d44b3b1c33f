"""The department portal: department IT staff and department heads (/portal)."""

from __future__ import annotations

from flask import Blueprint

from cloudmgr.organisation.models import Role
from web.security import protect_blueprint

bp = Blueprint("portal", __name__)
protect_blueprint(bp, Role.DEPT_STAFF, Role.DEPT_HEAD)

from web.portal import views  # noqa: E402,F401  (registers the routes)
