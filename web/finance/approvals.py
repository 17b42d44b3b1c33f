"""Finance reviewers' step: requests whose monthly cost is above the cloud's threshold."""

from __future__ import annotations

from flask import render_template
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _

from cloudmgr.servicerequests import services as sr
from web.common import request_pages as pages
from web.common.selfservice_forms import DecisionForm
from web.core.security import current_actor
from web.core.uow import request_uow
from web.finance.blueprint import bp

ID = "<int(max=2147483647):request_id>"


@bp.get("/approvals")
def approvals() -> ResponseReturnValue:
    waiting = sr.awaiting(request_uow().session, current_actor())
    return render_template(
        "selfservice/approvals.html",
        area="finance",
        rows=waiting,
        form=DecisionForm(formdata=None),
        title=_("Awaiting finance review"),
        lead=_(
            "Requests whose monthly cost is above their cloud's threshold wait for finance after the operators. "
            "A rejection needs a reason."
        ),
        show_department=True,
    )


@bp.get(f"/requests/{ID}")
def request_detail(request_id: int) -> ResponseReturnValue:
    return pages.request_detail_page("finance", request_id)


@bp.post(f"/requests/{ID}/decide")
def decide(request_id: int) -> ResponseReturnValue:
    return pages.decide("finance", request_id)
