"""The portal's purchase requests: list, new, edit, submit, withdraw, attachments, and a VM
request draft from the cloud offer of a blocked purchase."""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _

from cloudmgr.errors import DomainError
from cloudmgr.purchases import services as purchases
from cloudmgr.purchases.models import Category, PurchaseRequest, PurchaseState
from web.common import request_pages as pages
from web.common.display import refusal_text
from web.common.listing import page_request
from web.common.purchase_forms import AttachmentForm, PurchaseEditForm, WithdrawForm
from web.common.purchase_pages import detail_page
from web.common.selfservice_forms import ButtonForm
from web.core.security import current_actor
from web.core.uow import request_uow, restart_request_uow, runtime
from web.portal.blueprint import bp

ID = "<int(max=2147483647):purchase_id>"
PER_PAGE = 20


def _context() -> purchases.FindingContext:
    rt = runtime()
    return purchases.context_for(rt.settings)


@bp.get("/purchases")
def purchases_list() -> ResponseReturnValue:
    state = request.args.get("state") or None
    if state not in {None, *PurchaseState}:
        state = None
    category = request.args.get("category") or None
    if category not in {None, *Category}:
        category = None
    params = page_request(per_page=PER_PAGE)
    page = params.page
    rows, total = purchases.list_purchases(
        request_uow().session,
        current_actor(),
        purchases.PurchaseFilter(state=state, category=category, page=page, per_page=params.per_page, q=params.q),
    )
    return render_template(
        "purchases/list.html",
        rows=rows,
        total=total,
        page=page,
        pages=pages.page_count(total, params.per_page),
        states=list(PurchaseState),
        categories=list(Category),
        q=params.q or "",
        filters={
            "state": state or "",
            "category": category or "",
            "q": params.q or "",
            "per_page": params.per_page if params.per_page != PER_PAGE else "",
        },
    )


def _fill(form: PurchaseEditForm, purchase: PurchaseRequest) -> None:
    form.title.data = purchase.title
    form.category.data = purchase.category
    form.application_system.data = purchase.application_system
    form.legacy_hostname.data = purchase.legacy_hostname
    form.classified.data = purchase.classified
    form.justification.data = purchase.justification
    for row, item in zip(form.lines, purchase.items, strict=False):
        row.form.description.data = item.description
        row.form.vcpus.data, row.form.ram_gb.data, row.form.disk_gb.data = item.vcpus, item.ram_gb, item.disk_gb
        row.form.quantity.data, row.form.unit_price.data = item.quantity, item.unit_price


def _edit_page(purchase_id: int | None) -> ResponseReturnValue:
    actor = current_actor()
    session = request_uow().session
    purchase = purchases.get_purchase(session, actor, purchase_id) if purchase_id is not None else None
    if purchase is not None and not purchases.may_edit(actor, purchase):
        abort(403)  # a colleague's purchase: only its author changes what it asks for
    if purchase is not None and not purchase.is_editable:
        abort(409)
    form = PurchaseEditForm()
    status = 200
    if purchase is not None and request.method == "GET":
        while len(form.lines) < min(len(purchase.items) + 1, purchases.MAX_ITEMS):
            form.lines.append_entry()
        _fill(form, purchase)
    # "More item rows" or a row's "drop": the page comes back as typed with the rows changed, nothing saved.
    rows_changed = request.method == "POST" and (
        form.add_rows_asked() or form.drop_row_asked(request.form.get("drop_row"))
    )
    if request.method == "POST" and not rows_changed:
        if form.validate_on_submit():
            try:
                if purchase is None:
                    purchase = purchases.create_purchase(session, actor, form.purchase_form())
                    flash(_("Purchase request #%(id)d was saved as a draft.", id=purchase.id), "success")
                else:
                    purchases.update_purchase(session, actor, purchase.id, form.purchase_form())
                    flash(_("Purchase request #%(id)d was saved.", id=purchase.id), "success")
                if form.submit.data:
                    purchases.submit_purchase(session, actor, purchase.id, context=_context())
                    flash(_("Purchase request #%(id)d was submitted to finance.", id=purchase.id), "success")
                return redirect(url_for("portal.purchase_detail", purchase_id=purchase.id))
            except DomainError as exc:
                restart_request_uow()
                form.form_errors.append(refusal_text(exc))
                status = exc.http_status
                # The restart detached the purchase read before: the page shows it read again.
                purchase = purchases.get_purchase(request_uow().session, actor, purchase_id) if purchase_id else None
        else:
            status = 400
    return (
        render_template("purchases/form.html", form=form, purchase=purchase, max_items=purchases.MAX_ITEMS),
        status,
    )


@bp.route("/purchases/new", methods=["GET", "POST"])
def purchase_new() -> ResponseReturnValue:
    return _edit_page(None)


@bp.route(f"/purchases/{ID}/edit", methods=["GET", "POST"])
def purchase_edit(purchase_id: int) -> ResponseReturnValue:
    return _edit_page(purchase_id)


@bp.get(f"/purchases/{ID}")
def purchase_detail(purchase_id: int) -> ResponseReturnValue:
    return detail_page("portal", purchase_id)


@bp.post(f"/purchases/{ID}/submit")
def purchase_submit(purchase_id: int) -> ResponseReturnValue:
    if not ButtonForm().validate_on_submit():
        abort(400)
    try:
        purchases.submit_purchase(request_uow().session, current_actor(), purchase_id, context=_context())
    except DomainError as exc:
        restart_request_uow()
        return detail_page("portal", purchase_id, error=refusal_text(exc), status=exc.http_status)
    flash(_("Purchase request #%(id)d was submitted to finance.", id=purchase_id), "success")
    return redirect(url_for("portal.purchase_detail", purchase_id=purchase_id))


@bp.post(f"/purchases/{ID}/withdraw")
def purchase_withdraw(purchase_id: int) -> ResponseReturnValue:
    form = WithdrawForm()
    if not form.validate_on_submit():
        return detail_page("portal", purchase_id, status=400, withdraw_form=form)
    try:
        purchases.withdraw_purchase(request_uow().session, current_actor(), purchase_id, reason=form.reason.data or "")
    except DomainError as exc:
        restart_request_uow()
        return detail_page("portal", purchase_id, error=refusal_text(exc), status=exc.http_status)
    flash(_("Purchase request #%(id)d was withdrawn.", id=purchase_id), "success")
    return redirect(url_for("portal.purchase_detail", purchase_id=purchase_id))


@bp.post(f"/purchases/{ID}/attachments")
def purchase_attach(purchase_id: int) -> ResponseReturnValue:
    form = AttachmentForm()
    if not form.validate_on_submit():
        return detail_page("portal", purchase_id, status=400, attachment_form=form)
    try:
        purchases.add_attachment(
            request_uow().session,
            current_actor(),
            purchase_id,
            file_name=form.file_name.data or "",
            size_bytes=form.size_bytes.data,
            sha256=form.sha256.data or "",
        )
    except DomainError as exc:
        restart_request_uow()
        return detail_page("portal", purchase_id, error=refusal_text(exc), status=exc.http_status)
    flash(_("The attachment was recorded."), "success")
    return redirect(url_for("portal.purchase_detail", purchase_id=purchase_id))


@bp.post(f"/purchases/{ID}/vm-draft")
def purchase_vm_draft(purchase_id: int) -> ResponseReturnValue:
    if not ButtonForm().validate_on_submit():
        abort(400)
    try:
        draft = purchases.make_vm_draft(
            request_uow().session, current_actor(), purchase_id, settings=runtime().settings
        )
    except DomainError as exc:
        restart_request_uow()
        return detail_page("portal", purchase_id, error=refusal_text(exc), status=exc.http_status)
    flash(_("VM request draft #%(id)d was made from the cloud offer: check it and submit it.", id=draft.id), "success")
    return redirect(url_for("portal.request_detail", request_id=draft.id))
