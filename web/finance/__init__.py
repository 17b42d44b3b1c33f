"""Finance reviewers (/finance)."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l

from cloudmgr.organisation.models import Role
from web.common.navigation import add_nav_item
from web.finance import approvals, programme, purchases, views  # noqa: F401  (registers the routes)
from web.finance.blueprint import bp

__all__ = ["bp"]

add_nav_item(Role.FINANCE, "finance.approvals", _l("Awaiting finance review"), also_active=("finance.request_detail",))
add_nav_item(Role.FINANCE, "finance.capacity", _l("Capacity"))
add_nav_item(Role.FINANCE, "finance.purchase_queue", _l("Purchase review"), also_active=("finance.purchase_detail",))
add_nav_item(Role.FINANCE, "finance.purchase_reports", _l("Purchase reports"))
add_nav_item(Role.FINANCE, "finance.showback_page", _l("Showback"))
add_nav_item(Role.FINANCE, "finance.finance_programme", _l("Programme"))
