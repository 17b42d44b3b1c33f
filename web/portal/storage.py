"""The department's volumes (存储卷): list (attached or not), create, attach, detach, extend, delete
(issue 16); a server's public address is asked for and released on its page (web.portal.servers).

Every change is the storage service's to decide; a refusal comes back in the user's language,
under the field it is about when the page has one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from wtforms import SelectField, StringField, SubmitField
from wtforms.validators import InputRequired

from cloudmgr.errors import DomainError
from cloudmgr.storage import services as storage
from web.common.display import money, refusal_text
from web.common.forms import NUMBER_MESSAGE, LocalisedIntegerField, SafeForm
from web.common.listing import ListView, filter_arg, page_request
from web.common.selfservice_forms import ButtonForm
from web.core.i18n import current_locale
from web.core.security import current_actor
from web.core.uow import request_uow, restart_request_uow
from web.portal.blueprint import bp

VOLUME_ID = "<int(max=2147483647):volume_id>"


class CreateVolumeForm(SafeForm):
    # The service decides what a valid name, size and type are (one rule for the page and the API).
    name = StringField(_l("Name"), render_kw={"maxlength": storage.NAME_MAX, "autocomplete": "off"})
    size_gb = LocalisedIntegerField(
        _l("Size (GB)"),
        validators=[InputRequired(message=NUMBER_MESSAGE)],
        render_kw={"min": storage.MIN_GB, "max": storage.MAX_GB, "inputmode": "numeric"},
    )
    volume_type = SelectField(_l("Volume type"), coerce=int, validate_choice=False)
    create = SubmitField(_l("Create the volume"))


class ExtendVolumeForm(SafeForm):
    size_gb = LocalisedIntegerField(
        _l("New size (GB)"),
        validators=[InputRequired(message=NUMBER_MESSAGE)],
        render_kw={"max": storage.MAX_GB, "inputmode": "numeric"},
    )
    extend = SubmitField(_l("Enlarge"))


class AttachVolumeForm(SafeForm):
    server_id = SelectField(_l("Server"), coerce=int, validate_choice=False)
    attach = SubmitField(_l("Attach"))


STATE_LABELS = {
    storage.VolumeState.PENDING: _l("being created"),
    storage.VolumeState.CREATING: _l("being created"),
    storage.VolumeState.ATTACHED: _l("attached"),
    storage.VolumeState.AVAILABLE: _l("not attached"),
    storage.VolumeState.DELETED: _l("deleted"),
    storage.VolumeState.FAILED: _l("failed"),
    storage.VolumeState.ATTACHING: _l("being attached"),
    storage.VolumeState.DETACHING: _l("being detached"),
    storage.VolumeState.EXTENDING: _l("being extended"),
    storage.VolumeState.DELETING: _l("being deleted"),
    storage.AddressState.PENDING: _l("being given"),
    storage.AddressState.ALLOCATED: _l("being given"),
    storage.AddressState.ASSOCIATED: _l("in use"),
    storage.AddressState.RELEASED: _l("released"),
    storage.AddressState.FAILED: _l("failed"),
    storage.AddressState.RELEASING: _l("being released"),
}


#: The volumes list's state filter: pending and creating read the same ("being created"), so one
#: choice (creating) finds both.
FILTERED_STATES = [state for state in storage.VolumeState if state != storage.VolumeState.PENDING]


def state_label(state: storage.VolumeState | storage.AddressState) -> str:
    return str(STATE_LABELS.get(state, state.value))


def storage_problem_text(exc: DomainError) -> str:
    """A storage refusal in the reader's language (the API answers ``exc.message``, English)."""
    if not isinstance(exc, storage.StorageRefused):
        return refusal_text(exc)
    text: str = _("Refused: %(reason)s", reason=storage_problem_reason(exc))
    return text


def storage_problem_reason(exc: storage.StorageRefused) -> str:
    p, params = storage.StorageProblem, exc.params
    texts: dict[storage.StorageProblem, Callable[[], str]] = {
        p.NAME: lambda: _("Give the volume a name of 1 to %(max)s characters, without control characters.", **params),
        p.SIZE: lambda: _("The size is a whole number of GB from %(min)s to %(max)s.", **params),
        p.VOLUME_TYPE: lambda: _("%(type)s is not a volume type offered on cloud %(cloud)s.", **params),
        p.CLOUD: lambda: _("Your department has no quota on cloud %(cloud)s.", **params),
        p.SERVER_NOT_FOUND: lambda: _("There is no server %(server)s in the volume's department.", **params),
        p.SERVER_NOT_ACTIVE: lambda: _(
            "Server %(server)s is %(state)s; only a running server can take this.", **params
        ),
        p.SERVER_OTHER_CLOUD: lambda: _(
            "Server %(server)s is on cloud %(server_cloud)s but the volume is on %(cloud)s.", **params
        ),
        p.VOLUME_NOT_FOUND: lambda: _("There is no volume %(volume)s.", **params),
        p.VOLUME_BUSY: lambda: _("Volume %(volume)s is %(state)s; wait until that is done.", **params),
        p.NOT_ATTACHED: lambda: _("Volume %(volume)s is not attached to a server.", **params),
        p.ATTACHED: lambda: _("Volume %(volume)s is attached to a server; detach it first.", **params),
        p.NOT_BIGGER: lambda: _("A volume only grows: give more than its %(size)s GB, at most %(max)s GB.", **params),
        p.ADDRESS_ZONE: lambda: _(
            "A public address is only given to servers in the internet zone; this server is in the %(zone)s zone.",
            **params,
        ),
        p.ADDRESS_NOT_OFFERED: lambda: _("Cloud %(cloud)s offers no public addresses.", **params),
        p.ADDRESS_EXISTS: lambda: _("Server %(server)s already has a public address (%(state)s).", **params),
        p.NO_ADDRESS: lambda: _("Server %(server)s has no public address to release.", **params),
        p.FORBIDDEN: lambda: _("Only the department's own staff may do this."),
    }
    return texts[exc.problem]()


def _type_choices(form: CreateVolumeForm, choices: list[storage.VolumeTypeChoice]) -> None:
    locale = current_locale()
    form.volume_type.choices = [
        (c.item_id, _("%(type)s · %(price)s per GB-month", type=c.label(locale), price=money(c.price_per_gb_month)))
        for c in choices
    ]


def _page(
    *,
    create_form: CreateVolumeForm | None = None,
    error: str | None = None,
    status: int = 200,
    forms: dict[int, Any] | None = None,
) -> ResponseReturnValue:
    session = request_uow().session
    actor = current_actor()
    locale = current_locale()
    view = ListView(
        endpoint="portal.volumes",
        params=page_request(),
        filters=[
            filter_arg(
                "state",
                _("State"),
                # pending and creating read the same ("being created"): one choice, both states
                [
                    (state.value, state_label(state))
                    for state in storage.VolumeState
                    if state != storage.VolumeState.PENDING
                ],
                all_label=_("Existing volumes"),
            ),
            filter_arg(
                "cloud",
                _("Cloud"),
                [(cloud.key, cloud.display_name(locale)) for cloud in storage.volume_clouds(session, actor)],
                all_label=_("All clouds"),
            ),
        ],
        search_hint=_("Volume name, cloud ID, volume type or server name"),
    )
    view.page = storage.volumes_page(
        session, actor, view.params, state=view.value("state") or None, cloud_key=view.value("cloud") or None
    )
    volumes = list(view.page.rows)
    choices = storage.volume_type_choices(session, actor)
    form = create_form or CreateVolumeForm(formdata=None)
    _type_choices(form, choices)
    attach_forms: dict[int, AttachVolumeForm] = {}
    for volume in volumes:
        targets = storage.attach_targets(session, actor, volume)
        if targets:
            attach = AttachVolumeForm(formdata=None)
            attach.server_id.choices = targets
            attach_forms[volume.id] = attach
    return (
        render_template(
            "portal/volumes.html",
            volumes=volumes,
            view=view,
            create_form=form,
            has_types=bool(choices),
            attach_forms=attach_forms,
            extend_forms=forms or {},
            extend_form=ExtendVolumeForm(formdata=None),
            button_form=ButtonForm(formdata=None),
            page_error=error,
            max_gb=storage.MAX_GB,
            state_label=state_label,
        ),
        status,
    )


@bp.get("/volumes")
def volumes() -> ResponseReturnValue:
    return _page()


@bp.post("/volumes")
def create_volume() -> ResponseReturnValue:
    form = CreateVolumeForm()
    _type_choices(form, storage.volume_type_choices(request_uow().session, current_actor()))
    if not form.validate_on_submit():
        return _page(create_form=form, status=400)
    try:
        made = storage.create_volume(
            request_uow().session,
            current_actor(),
            name=form.name.data or "",
            size_gb=form.size_gb.data,
            volume_type_item_id=form.volume_type.data,
        )
    except DomainError as exc:
        restart_request_uow()
        field = getattr(exc, "field", None)
        target = {"name": form.name, "size_gb": form.size_gb, "volume_type": form.volume_type}.get(field or "")
        if target is not None:
            target.errors = [*target.errors, storage_problem_text(exc)]
        else:
            form.form_errors.append(storage_problem_text(exc))
        return _page(create_form=form, status=exc.http_status)
    flash(_("Volume “%(name)s” is being created.", name=made.name), "success")
    return redirect(url_for("portal.volumes"))


def _back(volume: storage.VolumeInfo | None = None, server_id: int | None = None) -> ResponseReturnValue:
    """Back to the server page when the action was taken there, else to the volumes page."""
    back_to = request.form.get("back_to_server", type=int)
    if back_to is not None and back_to in {server_id, volume.server_id if volume else None}:
        return redirect(url_for("portal.server_detail", server_id=back_to))
    return redirect(url_for("portal.volumes"))


def _refused(exc: DomainError) -> ResponseReturnValue:
    restart_request_uow()
    return _page(error=storage_problem_text(exc), status=exc.http_status)


@bp.post(f"/volumes/{VOLUME_ID}/attach")
def attach_volume(volume_id: int) -> ResponseReturnValue:
    form = AttachVolumeForm()
    form.server_id.choices = []
    if not form.validate_on_submit() or form.server_id.data is None:
        abort(400)
    try:
        volume = storage.attach_volume(request_uow().session, current_actor(), volume_id, form.server_id.data)
    except DomainError as exc:
        return _refused(exc)
    message = _("Volume “%(name)s” is being attached to %(server)s.", name=volume.name, server=volume.server_name)
    flash(message, "success")
    return _back(volume)


@bp.post(f"/volumes/{VOLUME_ID}/detach")
def detach_volume(volume_id: int) -> ResponseReturnValue:
    if not ButtonForm().validate_on_submit():
        abort(400)
    try:
        volume = storage.detach_volume(request_uow().session, current_actor(), volume_id)
    except DomainError as exc:
        return _refused(exc)
    flash(_("Volume “%(name)s” is being detached.", name=volume.name), "success")
    return _back(volume)


@bp.post(f"/volumes/{VOLUME_ID}/extend")
def extend_volume(volume_id: int) -> ResponseReturnValue:
    form = ExtendVolumeForm()
    if not form.validate_on_submit():
        return _page(forms={volume_id: form}, status=400)
    try:
        volume = storage.extend_volume(request_uow().session, current_actor(), volume_id, form.size_gb.data)
    except DomainError as exc:
        restart_request_uow()
        form.size_gb.errors = [*form.size_gb.errors, storage_problem_text(exc)]
        return _page(forms={volume_id: form}, status=exc.http_status)
    flash(_("Volume “%(name)s” is being extended to %(size)d GB.", name=volume.name, size=form.size_gb.data), "success")
    return _back(volume)


@bp.post(f"/volumes/{VOLUME_ID}/delete")
def delete_volume(volume_id: int) -> ResponseReturnValue:
    if not ButtonForm().validate_on_submit():
        abort(400)
    try:
        volume = storage.delete_volume(request_uow().session, current_actor(), volume_id)
    except DomainError as exc:
        return _refused(exc)
    message = _("Volume “%(name)s” is being deleted; its quota is given back once it is gone.", name=volume.name)
    flash(message, "success")
    return redirect(url_for("portal.volumes"))
