"""The ``finance`` blueprint (/finance), in its own module: the views import it from here and the
package imports the views, so neither imports the other back."""

from __future__ import annotations

from flask import Blueprint

from cloudmgr.organisation.models import Role
from web.core.security import protect_blueprint

bp = Blueprint("finance", "web.finance")
protect_blueprint(bp, Role.FINANCE)
