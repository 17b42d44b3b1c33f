"""The ``admin`` blueprint (/admin), in its own module: the views import it from here and the
package imports the views, so neither imports the other back."""

from __future__ import annotations

from flask import Blueprint

from cloudmgr.organisation.models import Role
from web.core.security import protect_blueprint

bp = Blueprint("admin", "web.admin")
protect_blueprint(bp, Role.ADMIN)
