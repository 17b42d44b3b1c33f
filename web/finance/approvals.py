"""Finance reviewers' step: requests whose monthly cost is above the cloud's threshold."""

from __future__ import annotations

from flask.typing import ResponseReturnValue
from flask_babel import gettext as _

from web.common import approval_pages
from web.common import request_pages as pages
from web.finance.blueprint import bp

ID = "<int(max=2147483647):request_id>"


def _approvals_text() -> approval_pages.QueueText:
    return approval_pages.QueueText(
        title=_("Awaiting finance review"),
        lead=_(
            "Requests whose monthly cost is above their cloud's threshold wait for finance after the operators. "
            "A rejection needs a reason."
        ),
    )


@bp.get("/approvals")
def approvals() -> ResponseReturnValue:
    return approval_pages.approvals_page("finance", _approvals_text(), show_department=True)


@bp.post("/approvals/decide")
def bulk_decide() -> ResponseReturnValue:
    return approval_pages.bulk_decide("finance", _approvals_text(), show_department=True)


@bp.get(f"/requests/{ID}")
def request_detail(request_id: int) -> ResponseReturnValue:
    return pages.request_detail_page("finance", request_id)


@bp.post(f"/requests/{ID}/decide")
def decide(request_id: int) -> ResponseReturnValue:
    return pages.decide("finance", request_id)
