"""Cloud operators (/ops)."""

from __future__ import annotations

from flask import Blueprint

from cloudmgr.organisation.models import Role
from web.security import protect_blueprint

bp = Blueprint("ops", __name__)
protect_blueprint(bp, Role.OPERATOR)

from web.operations import views  # noqa: E402,F401  (registers the routes)
