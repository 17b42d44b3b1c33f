"""The purchase page, shared by the department (``portal``) and finance (``finance``)."""

from __future__ import annotations

from flask import render_template
from flask.typing import ResponseReturnValue

from cloudmgr.purchases import services as purchases
from web.common.purchase_forms import AttachmentForm, PurchaseDecisionForm, WithdrawForm, finding_text
from web.core.security import current_actor
from web.core.uow import request_uow


def detail_page(
    area: str, purchase_id: int, *, error: str | None = None, status: int = 200, **forms: object
) -> ResponseReturnValue:
    """The purchase page of the department (``portal``) or of finance (``finance``)."""
    actor = current_actor()
    session = request_uow().session
    purchase = purchases.get_purchase(session, actor, purchase_id)
    # Whether the reader sees other departments' purchases in the findings: the service decides.
    for_department = not purchases.may_read_other_departments_findings(actor)
    findings = [(f, finding_text(f, for_department=for_department)) for f in purchase.findings]
    return (
        render_template(
            "purchases/detail.html",
            area=area,
            p=purchase,
            findings=findings,
            findings_pending=purchases.live_findings_pending(session, purchase),
            for_department=for_department,
            # The services decide who may change or decide it; the page only hides what they refuse.
            can_change=purchases.may_change(actor, purchase),
            can_edit=purchases.may_edit(actor, purchase),
            can_decide=purchases.may_decide(session, actor, purchase),
            page_error=error,
            attachment_form=forms.get("attachment_form") or AttachmentForm(formdata=None),
            withdraw_form=forms.get("withdraw_form") or WithdrawForm(formdata=None),
            decision_form=forms.get("decision_form") or PurchaseDecisionForm(formdata=None),
        ),
        status,
    )
