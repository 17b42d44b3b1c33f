"""Finance reviewers (/finance)."""

from __future__ import annotations

from flask import Blueprint

from cloudmgr.organisation.models import Role
from web.security import protect_blueprint

bp = Blueprint("finance", __name__)
protect_blueprint(bp, Role.FINANCE)

from web.finance import views  # noqa: E402,F401  (registers the routes)
