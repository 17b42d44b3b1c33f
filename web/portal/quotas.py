"""The department's quotas per cloud, and asking for more."""

from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from wtforms import SelectChoice

from cloudmgr.errors import DomainError
from cloudmgr.organisation import services as org
from cloudmgr.quotas import services as quota_services
from cloudmgr.quotas.models import ChangeRequestState
from cloudmgr.quotas.services import QuotaDefinitions
from web.common import quota_files as quota_help
from web.common.display import refusal_text
from web.common.labels import quota_size_label
from web.common.selfservice_forms import QuotaChangeForm
from web.core.i18n import current_locale
from web.core.security import current_actor
from web.core.uow import request_uow, restart_request_uow
from web.portal.blueprint import bp


def _size_label(definitions: QuotaDefinitions, name: str) -> str:
    size = definitions.sizes[name]
    return quota_size_label(name, {resource.value: value for resource, value in size.limits.items()})


def _set_choices(form: QuotaChangeForm, definitions: QuotaDefinitions) -> None:
    actor = current_actor()
    assert actor.department_id is not None
    locale = current_locale()
    links = org.clouds_of_department(request_uow().session, actor.department_id)
    form.cloud.choices = [SelectChoice(link.cloud.key, link.cloud.display_name(locale)) for link in links]
    form.size.choices = [SelectChoice("", _("— Explicit limits below —"))] + [
        SelectChoice(name, _size_label(definitions, name)) for name in definitions.sizes
    ]


def _page(form: QuotaChangeForm, definitions: QuotaDefinitions, status: int = 200) -> ResponseReturnValue:
    actor = current_actor()
    assert actor.department_id is not None
    session = request_uow().session
    links = org.clouds_of_department(session, actor.department_id)
    balances = quota_services.all_balances(session, department_id=actor.department_id)
    names = {link.cloud.key: link.cloud.display_name(current_locale()) for link in links}
    changes = quota_services.change_requests(session, actor)
    return (
        render_template(
            "portal/quotas.html",
            balances=balances,
            cloud_names=names,
            changes=changes,
            form=form,
            has_sizes=bool(definitions.sizes),
        ),
        status,
    )


@bp.route("/quotas", methods=["GET", "POST"])
def quotas() -> ResponseReturnValue:
    definitions = quota_help.definitions()
    form = QuotaChangeForm()
    _set_choices(form, definitions)
    if request.method == "GET":
        cloud = request.args.get("cloud")
        if cloud:
            form.cloud.data = cloud
        return _page(form, definitions)
    if not form.validate_on_submit():
        return _page(form, definitions, 400)
    try:
        change = quota_services.request_change(
            request_uow().session,
            current_actor(),
            definitions,
            cloud_key=form.cloud.data,
            reason=form.reason.data,
            target_size=form.size.data or None,
            limits=None if form.size.data else quota_help.ledger_limits(form.explicit_limits()),
        )
    except DomainError as exc:
        restart_request_uow()
        form.form_errors.append(refusal_text(exc))
        _set_choices(form, definitions)
        return _page(form, definitions, exc.http_status)
    if change.state == ChangeRequestState.APPROVED.value:
        flash(_("Approved automatically: the new limits apply now (request #%(id)d).", id=change.id), "success")
    else:
        flash(_("Request #%(id)d waits for a cloud operator’s decision.", id=change.id), "info")
    return redirect(url_for("portal.quotas"))
