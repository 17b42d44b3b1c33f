"""Finance reviewers (/finance)."""

from __future__ import annotations

from flask import Blueprint
from flask_babel import lazy_gettext as _l

from cloudmgr.organisation.models import Role
from web.navigation import add_nav_item
from web.security import protect_blueprint

bp = Blueprint("finance", __name__)
protect_blueprint(bp, Role.FINANCE)

from web.finance import approvals, purchases, views  # noqa: E402,F401  (registers the routes)
from web.finance.purchase_forms import init_filters  # noqa: E402

init_filters(bp)

add_nav_item(Role.FINANCE, "finance.approvals", _l("Awaiting finance review"), also_active=("finance.request_detail",))
add_nav_item(Role.FINANCE, "finance.capacity", _l("Capacity"))
add_nav_item(Role.FINANCE, "finance.purchase_queue", _l("Purchase review"), also_active=("finance.purchase_detail",))
add_nav_item(Role.FINANCE, "finance.purchase_reports", _l("Purchase reports"))
add_nav_item(Role.FINANCE, "finance.showback_page", _l("Showback"))
