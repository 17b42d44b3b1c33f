"""The catalog per cloud: which flavors and images are offered, their names and prices."""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _

from cloudmgr.catalog import services as catalog
from cloudmgr.catalog.models import CatalogItem, ItemKind
from cloudmgr.errors import DomainError
from cloudmgr.organisation import services as org
from web.common.display import refusal_text
from web.common.selfservice_forms import OfferForm
from web.core.security import current_actor
from web.core.uow import request_uow, restart_request_uow
from web.operations.blueprint import bp


def _offer_form(item: CatalogItem) -> OfferForm:
    return OfferForm(
        formdata=None,
        data={
            "offered": item.offered,
            "name_zh": item.name_zh,
            "name_en": item.name_en,
            "monthly_price": item.monthly_price,
        },
    )


def _page(
    cloud_key: str | None, *, posted: tuple[int, OfferForm] | None = None, status: int = 200
) -> ResponseReturnValue:
    session = request_uow().session
    clouds = org.list_clouds(session)
    cloud = next((c for c in clouds if c.key == cloud_key), None) if cloud_key else (clouds[0] if clouds else None)
    if cloud_key and cloud is None:
        abort(404)
    items = catalog.all_items(session, cloud.id) if cloud else []
    forms = {item.id: _offer_form(item) for item in items}
    if posted is not None:
        forms[posted[0]] = posted[1]
    return (
        render_template(
            "operations/catalog.html",
            clouds=clouds,
            cloud=cloud,
            flavors=[i for i in items if i.kind == "flavor"],
            images=[i for i in items if i.kind == "image"],
            volume_types=[i for i in items if i.kind == ItemKind.VOLUME_TYPE],
            addresses=[i for i in items if i.kind == ItemKind.FLOATING_IP],
            forms=forms,
            failed=posted[0] if posted else None,
        ),
        status,
    )


@bp.get("/catalog")
def catalog_page() -> ResponseReturnValue:
    return _page(request.args.get("cloud") or None)


@bp.post("/catalog/<int(max=2147483647):item_id>")
def update_offer(item_id: int) -> ResponseReturnValue:
    session = request_uow().session
    item = catalog.get_item(session, item_id)
    cloud_key = item.cloud.key
    form = OfferForm()
    if not form.validate_on_submit():
        return _page(cloud_key, posted=(item_id, form), status=400)
    try:
        updated = catalog.update_offer(
            session,
            current_actor(),
            item_id,
            offered=bool(form.offered.data),
            name_zh=form.name_zh.data,
            name_en=form.name_en.data,
            monthly_price=form.monthly_price.data,
        )
    except DomainError as exc:
        restart_request_uow()
        form.form_errors.append(refusal_text(exc))
        return _page(cloud_key, posted=(item_id, form), status=exc.http_status)
    flash(_("%(name)s was saved.", name=updated.cloud_name), "success")
    return redirect(url_for("ops.catalog_page", cloud=cloud_key, _anchor=f"item-{item_id}"))
