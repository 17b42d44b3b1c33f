"""The portal's requests: new request (catalog, preview, draft, submit), my requests, the
request page, and the department head's approval queue."""

from __future__ import annotations

from datetime import date, timedelta

from flask import abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from wtforms import SelectChoice

from cloudmgr.errors import DomainError
from cloudmgr.organisation.errors import UnknownCloud
from cloudmgr.servicerequests import services as sr
from cloudmgr.servicerequests.states import RequestState
from web.common import approval_pages, listcache
from web.common import request_pages as pages
from web.common.display import money, refusal_text
from web.common.labels import zone_label
from web.common.listing import page_request
from web.common.selfservice_forms import ButtonForm, NewRequestForm, legacy_system_choices
from web.core.i18n import current_locale
from web.core.security import current_actor
from web.core.uow import request_uow, restart_request_uow, runtime
from web.portal.blueprint import bp

PER_PAGE = 20
DEFAULT_EXPIRY_DAYS = 365


def _catalog(cloud_key: str | None) -> sr.OrderCatalog:
    try:
        return sr.order_catalog(request_uow().session, current_actor(), cloud_key)
    except UnknownCloud:
        abort(404)  # another department's cloud, or none: nothing to show either way


def _set_choices(form: NewRequestForm, cat: sr.OrderCatalog) -> None:
    locale = current_locale()
    assert cat.cloud is not None
    form.zone.choices = [SelectChoice(z.zone, zone_label(z.zone)) for z in cat.cloud.zones]
    form.flavor.choices = [SelectChoice(item.id, item.display_name(locale)) for item in cat.flavors]
    form.image.choices = [
        SelectChoice(item.id, f"{item.display_name(locale)} · {money(item.monthly_price)}") for item in cat.images
    ]
    form.legacy_system.choices = legacy_system_choices(request_uow().session, current_actor())
    form.ssh_key.choices = [SelectChoice("", _("— No key —"))] + [
        SelectChoice(key.id, f"{key.name} · {key.fingerprint}") for key in cat.ssh_keys
    ]
    type_choices = [
        SelectChoice(
            item.id,
            _("%(type)s · %(price)s per GB-month", type=item.display_name(locale), price=money(item.monthly_price)),
        )
        for item in cat.volume_types
    ]
    form.disk1_type.choices = form.disk2_type.choices = type_choices
    form.firewall_template_ids.choices = [
        SelectChoice(template.id, template.name) for template in cat.firewall_templates
    ]


@bp.route("/requests/new", methods=["GET", "POST"])
def new_request() -> ResponseReturnValue:
    """Choose a cloud (``?cloud=``), then the zone, flavor, image …; preview; save or submit."""
    return _request_form_page(None)


@bp.route("/requests/<int(max=2147483647):request_id>/edit", methods=["GET", "POST"])
def edit_request(request_id: int) -> ResponseReturnValue:
    """A draft opened again by its author: changed, previewed, saved again or submitted."""
    return _request_form_page(request_id)


def _request_form_page(draft_id: int | None) -> ResponseReturnValue:
    actor = current_actor()
    draft = None
    if draft_id is not None:
        draft = sr.get_request(request_uow().session, actor, draft_id)  # another department's: 404
        if not sr.may_edit(actor, draft):
            abort(409 if draft.state != RequestState.DRAFT else 403)  # submitted since, or a colleague's
    cloud_key = request.args.get("cloud") or (draft.cloud.key if draft is not None else None)
    cat = _catalog(cloud_key)
    form = NewRequestForm()
    quote = None
    status = 200
    if cat.cloud is not None:
        _set_choices(form, cat)
        if request.method == "GET" and draft is not None:
            form.fill_from(sr.draft_form(request_uow().session, actor, draft))
        elif request.method == "GET":
            zones = [z.zone for z in cat.cloud.zones]
            form.zone.data = "extranet" if "extranet" in zones else (zones[0] if zones else None)
            form.flavor.data = cat.flavors[0].id if cat.flavors else None
            form.expires_on.data = date.today() + timedelta(days=DEFAULT_EXPIRY_DAYS)
        elif form.validate_on_submit():
            wanted = form.request_form(cat.cloud.key)
            session = request_uow().session
            try:
                if form.preview.data or not (form.save_draft.data or form.submit.data):
                    quote = sr.quote(session, actor, wanted, entry_point="portal.quote")
                else:
                    return _save(draft_id, wanted, submit=bool(form.submit.data))
            except DomainError as exc:
                restart_request_uow()
                form.form_errors.append(refusal_text(exc))
                status = exc.http_status
                cat = _catalog(cloud_key)
                _set_choices(form, cat)
                draft = sr.get_request(request_uow().session, actor, draft_id) if draft_id is not None else None
        else:
            status = 400
    elif request.method == "POST":
        abort(400)  # the form only exists once a cloud is chosen
    return (
        render_template(
            "portal/new_request.html",
            form=form,
            cat=cat,
            quote=quote,
            flavors={item.id: item for item in cat.flavors},
            draft=draft,
        ),
        status,
    )


def _save(draft_id: int | None, wanted: sr.RequestForm, *, submit: bool) -> ResponseReturnValue:
    """A new request or the draft changed, saved as a draft or submitted: the same rules both ways."""
    session, actor, settings = request_uow().session, current_actor(), runtime().settings
    if draft_id is None:
        saved = sr.create_request(
            session, actor, wanted, submit=submit, settings=settings, entry_point="portal.request"
        )
    else:
        saved = sr.update_draft(
            session, actor, draft_id, wanted, submit=submit, settings=settings, entry_point="portal.request"
        )
    if saved.state == RequestState.DRAFT.value:
        flash(_("Request #%(id)d was saved as a draft.", id=saved.id), "success")
    else:
        flash(_("Request #%(id)d was submitted for approval.", id=saved.id), "success")
    return redirect(url_for("portal.request_detail", request_id=saved.id))


@bp.get("/requests")
def requests() -> ResponseReturnValue:
    actor = current_actor()
    assert actor.department_id is not None
    session = request_uow().session
    state = request.args.get("state") or None
    if state not in {None, *RequestState}:
        state = None
    cloud_key = request.args.get("cloud") or None
    params = page_request(per_page=PER_PAGE)
    page = params.page
    clouds = listcache.department_cloud_choices(session, actor.department_id)
    if cloud_key not in {None, *(c.key for c in clouds)}:
        cloud_key = None
    listing = listcache.RequestPage.read(
        session,
        actor,
        sr.RequestFilter(state=state, cloud_key=cloud_key, page=page, per_page=params.per_page, q=params.q),
    )
    return listcache.cached_page(
        (listing.version, tuple(clouds)),
        lambda: render_template(
            "portal/requests.html",
            table=listing.table(
                session,
                locale=current_locale(),
                detail_endpoint="portal.request_detail",
                caption=_("Your department’s requests"),
            ),
            total=listing.total,
            page=page,
            pages=pages.page_count(listing.total, params.per_page),
            clouds=clouds,
            states=list(RequestState),
            q=params.q or "",
            filters={
                "state": state or "",
                "cloud": cloud_key or "",
                "q": params.q or "",
                "per_page": params.per_page if params.per_page != PER_PAGE else "",
            },
        ),
    )


def _require_approver() -> None:
    """Staff never approve: whether the user approves at all is the service's to say (each decision
    is checked again by the service, step, department and separation of duties)."""
    if not sr.may_approve_any(current_actor()):
        abort(403)


@bp.get("/requests/<int(max=2147483647):request_id>")
def request_detail(request_id: int) -> ResponseReturnValue:
    return pages.request_detail_page("portal", request_id)


@bp.post("/requests/<int(max=2147483647):request_id>/decide")
def decide(request_id: int) -> ResponseReturnValue:
    _require_approver()
    return pages.decide("portal", request_id)


@bp.post("/requests/<int(max=2147483647):request_id>/cancel")
def cancel(request_id: int) -> ResponseReturnValue:
    return pages.cancel("portal", request_id)


@bp.post("/requests/<int(max=2147483647):request_id>/submit")
def submit(request_id: int) -> ResponseReturnValue:
    form = ButtonForm()
    if not form.validate_on_submit():
        abort(400)
    try:
        sr.submit_request(
            request_uow().session,
            current_actor(),
            request_id,
            settings=runtime().settings,
            entry_point="portal.request",
        )
    except DomainError as exc:
        restart_request_uow()
        return pages.request_detail_page("portal", request_id, error=refusal_text(exc), status=exc.http_status)
    flash(_("Request #%(id)d was submitted for approval.", id=request_id), "success")
    return redirect(url_for("portal.request_detail", request_id=request_id))


def _approvals_text() -> approval_pages.QueueText:
    return approval_pages.QueueText(
        title=_("Awaiting my approval"),
        lead=_("Requests of your department that wait for your approval. A rejection needs a reason."),
    )


@bp.get("/approvals")
def approvals() -> ResponseReturnValue:
    _require_approver()
    return approval_pages.approvals_page("portal", _approvals_text(), show_department=False)


@bp.post("/approvals/decide")
def bulk_decide() -> ResponseReturnValue:
    _require_approver()
    return approval_pages.bulk_decide("portal", _approvals_text(), show_department=False)
