"""Finance reviewers (/finance)."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l

from cloudmgr.organisation.models import Role
from web.common.navigation import add_nav_item
from web.finance import approvals, lines, programme, purchases, views  # noqa: F401  (registers the routes)
from web.finance.blueprint import bp

__all__ = ["bp"]

add_nav_item(Role.FINANCE, "finance.approvals", _l("Awaiting finance review"), also_active=("finance.request_detail",))
add_nav_item(Role.FINANCE, "finance.capacity", _l("Capacity"))
add_nav_item(Role.FINANCE, "finance.purchase_queue", _l("Purchase review"), also_active=("finance.purchase_detail",))
add_nav_item(Role.FINANCE, "finance.purchase_reports", _l("Purchase reports"))
add_nav_item(Role.FINANCE, "finance.showback_page", _l("Showback"))
add_nav_item(Role.FINANCE, "finance.finance_programme", _l("Programme"))
add_nav_item(Role.FINANCE, "finance.line_rentals", _l("Line rental review"), also_active=("finance.line_rental",))
add_nav_item(Role.FINANCE, "finance.line_contracts", _l("Line contracts ending"))
add_nav_item(Role.FINANCE, "finance.line_savings", _l("Line savings"))
add_nav_item(Role.FINANCE, "finance.finance_lines_programme", _l("Network programme"))
