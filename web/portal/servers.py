"""The department's servers: state, addresses, expiry; stop/start, delete, extend, resize; the console;
its volumes and its public address (asked for and released here; the volumes' own actions are in
web.portal.storage); its snapshots (taken and deleted here, restored through web.portal.snapshots'
confirmation page)."""

from __future__ import annotations

from typing import Any

from flask import abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from wtforms import SelectChoice

from cloudmgr.backups import services as backups
from cloudmgr.backups.errors import CopyNotFound
from cloudmgr.catalog import services as catalog
from cloudmgr.catalog.models import ItemKind
from cloudmgr.errors import DomainError
from cloudmgr.servicerequests import services as sr
from cloudmgr.servicerequests.states import ServerState
from cloudmgr.storage import services as storage
from web.common.display import money, refusal_text
from web.common.labels import server_state_label
from web.common.listing import ListView, filter_arg, page_request
from web.common.selfservice_forms import ButtonForm, DeleteServerForm, ExtendForm, ResizeForm
from web.core.i18n import current_locale
from web.core.security import current_actor
from web.core.uow import request_uow, restart_request_uow, run_job_outside_request, runtime
from web.portal.blueprint import bp
from web.portal.snapshots import (
    ServerSnapshotForm,
    copy_problem_text,
    copy_state_label,
    image_size,
    restore_state_label,
)
from web.portal.storage import state_label, storage_problem_reason, storage_problem_text

# Shown unless asked for: servers that no longer exist are history.
ID = "<int(max=2147483647):server_id>"
COPY_ID = "<int(max=2147483647):copy_id>"


@bp.get("/servers")
def servers() -> ResponseReturnValue:
    view = ListView(
        endpoint="portal.servers",
        params=page_request(),
        filters=[
            filter_arg(
                "state",
                _("State"),
                [(s.value, server_state_label(s.value)) for s in ServerState],
                all_label=_("Existing servers"),
            )
        ],
        search_hint=_("Server name, cloud ID, request number or application system"),
    )
    view.page = sr.servers_page(request_uow().session, current_actor(), view.params, state=view.value("state") or None)
    return render_template("portal/servers.html", rows=view.page.rows, view=view)


def _server_page(
    server_id: int,
    *,
    forms: dict[str, Any] | None = None,
    error: str | None = None,
    status: int = 200,
) -> ResponseReturnValue:
    session = request_uow().session
    actor = current_actor()
    server = sr.get_server(session, actor, server_id)
    given = forms or {}
    resize_form = given.get("resize") or ResizeForm(formdata=None)
    parts = storage.server_storage(session, actor, server)
    _resize_choices(resize_form, server.cloud_id, server.flavor_item_id)
    extend_form = given.get("extend") or ExtendForm(formdata=None)
    return (
        render_template(
            "portal/server.html",
            server=server,
            button_form=ButtonForm(formdata=None),
            delete_form=given.get("delete") or DeleteServerForm(formdata=None),
            deletion=sr.deletion_preview(session, server),
            extend_form=extend_form,
            resize_form=resize_form,
            page_error=error,
            # What the user may do now is the service's to say; it refuses the same when asked.
            can_power=sr.may_act_on_server(actor, server, "stop") or sr.may_act_on_server(actor, server, "start"),
            can_delete=sr.may_act_on_server(actor, server, "delete"),
            can_change=sr.may_resize(actor, server),
            can_console=sr.may_open_console(actor, server),
            can_console_log=sr.may_read_console_log(actor, server),
            storage=parts,
            address_note=storage_problem_reason(parts.address_refusal) if parts.address_refusal else None,
            state_label=state_label,
            # Its snapshots (issue 16): the service says what may be done with each.
            snapshots=backups.list_server_snapshots(session, actor, server.id),
            snapshot_form=given.get("snapshot") or ServerSnapshotForm(formdata=None),
            can_snapshot=backups.may_snapshot_server(actor, server),
            may_restore_snapshot=lambda record: backups.may_restore_server(actor, server, record),
            may_delete_snapshot=lambda record: backups.may_delete_copy(actor, record),
            copy_state_label=copy_state_label,
            restore_state_label=restore_state_label,
            image_size=image_size,
        ),
        status,
    )


def _resize_choices(form: ResizeForm, cloud_id: int, current_flavor_id: int) -> None:
    locale = current_locale()
    items = catalog.offered_items(request_uow().session, cloud_id, ItemKind.FLAVOR)
    form.flavor.choices = [
        SelectChoice(item.id, f"{item.display_name(locale)} · {money(item.monthly_price)}")
        for item in items
        if item.id != current_flavor_id
    ]


@bp.get(f"/servers/{ID}")
def server_detail(server_id: int) -> ResponseReturnValue:
    return _server_page(server_id)


@bp.get(f"/servers/{ID}/console")
def console(server_id: int) -> ResponseReturnValue:
    """A fresh console link (it opens in a new tab) and the last lines of the console log.

    Each visit asks the cloud for a new console (Nova's token is short-lived) and is audited;
    both cloud reads run with the request's transaction ended."""
    actor = current_actor()
    session = request_uow().session
    server = sr.get_server(session, actor, server_id)
    may_open = sr.may_open_console(actor, server)
    try:
        target = sr.console_target(session, actor, server_id, log_only=not may_open)
    except DomainError as exc:
        return _refused(server_id, exc)
    rt = runtime()
    console_url = console_error = log_text = log_error = None
    if may_open:
        try:
            console_url = run_job_outside_request(sr.open_console, rt.db, rt.providers, target, actor=actor)
        except sr.ConsoleUnavailable as exc:
            console_error = refusal_text(exc)
    try:
        log_text = run_job_outside_request(sr.read_console_log, rt.providers, target, sr.DEFAULT_LOG_LINES)
    except sr.ConsoleUnavailable as exc:
        log_error = refusal_text(exc)
    return (
        render_template(
            "portal/server_console.html",
            target=target,
            console_url=console_url,
            console_error=console_error,
            log_text=log_text,
            log_error=log_error,
            log_lines=sr.DEFAULT_LOG_LINES,
        ),
        502 if console_error or log_error else 200,
    )


def _refused(server_id: int, exc: DomainError, forms: dict[str, Any] | None = None) -> ResponseReturnValue:
    restart_request_uow()
    if forms:
        next(iter(forms.values())).form_errors.append(refusal_text(exc))
        return _server_page(server_id, forms=forms, status=exc.http_status)
    return _server_page(server_id, error=refusal_text(exc), status=exc.http_status)


@bp.post(f"/servers/{ID}/power")
def power(server_id: int) -> ResponseReturnValue:
    """Stop or start (``action`` = stop | start)."""
    form = ButtonForm()
    action = request.form.get("action")
    if not form.validate_on_submit() or action not in {"stop", "start"}:
        abort(400)
    try:
        server = sr.server_action(request_uow().session, current_actor(), server_id, action)
    except DomainError as exc:
        return _refused(server_id, exc)
    if action == "stop":
        flash(_("%(name)s will be stopped.", name=server.name), "success")
    else:
        flash(_("%(name)s will be started.", name=server.name), "success")
    return redirect(url_for("portal.server_detail", server_id=server_id))


@bp.post(f"/servers/{ID}/delete")
def delete(server_id: int) -> ResponseReturnValue:
    form = DeleteServerForm()
    if not form.validate_on_submit():
        return _server_page(server_id, forms={"delete": form}, status=400)
    try:
        server = sr.server_action(
            request_uow().session,
            current_actor(),
            server_id,
            "delete",
            confirm=form.confirm.data.strip(),
            volumes=form.volumes.data,
        )
    except DomainError as exc:
        return _refused(server_id, exc, {"delete": form})
    if form.volumes.data == sr.VolumeChoice.KEEP:
        flash(
            _("%(name)s is being deleted; its data volumes are kept for your department.", name=server.name), "success"
        )
    else:
        flash(_("%(name)s is being deleted; its quota is given back once it is gone.", name=server.name), "success")
    return redirect(url_for("portal.server_detail", server_id=server_id))


@bp.post(f"/servers/{ID}/extend")
def extend(server_id: int) -> ResponseReturnValue:
    form = ExtendForm()
    if not form.validate_on_submit():
        return _server_page(server_id, forms={"extend": form}, status=400)
    try:
        server = sr.extend_expiry(request_uow().session, current_actor(), server_id, form.expires_on.data)
    except DomainError as exc:
        return _refused(server_id, exc, {"extend": form})
    flash(_("%(name)s now expires on %(date)s.", name=server.name, date=server.expires_on.isoformat()), "success")
    return redirect(url_for("portal.server_detail", server_id=server_id))


@bp.post(f"/servers/{ID}/resize")
def resize(server_id: int) -> ResponseReturnValue:
    form = ResizeForm()
    server = sr.get_server(request_uow().session, current_actor(), server_id)
    _resize_choices(form, server.cloud_id, server.flavor_item_id)
    if not form.validate_on_submit():
        return _server_page(server_id, forms={"resize": form}, status=400)
    try:
        created = sr.request_resize(
            request_uow().session,
            current_actor(),
            server_id,
            form.flavor.data,
            justification=form.justification.data.strip(),
            settings=runtime().settings,
            entry_point="portal.resize",
        )
    except DomainError as exc:
        return _refused(server_id, exc, {"resize": form})
    flash(_("Resize request #%(id)d was submitted for approval.", id=created.id), "success")
    return redirect(url_for("portal.request_detail", request_id=created.id))


@bp.post(f"/servers/{ID}/public-address")
def request_public_address(server_id: int) -> ResponseReturnValue:
    """Ask for a public address (internet zone only; 1 floating IP of the department's quota)."""
    if not ButtonForm().validate_on_submit():
        abort(400)
    try:
        storage.request_public_address(request_uow().session, current_actor(), server_id)
    except DomainError as exc:
        restart_request_uow()
        return _server_page(server_id, error=storage_problem_text(exc), status=exc.http_status)
    flash(_("A public address is being given to the server."), "success")
    return redirect(url_for("portal.server_detail", server_id=server_id))


@bp.post(f"/servers/{ID}/public-address/release")
def release_public_address(server_id: int) -> ResponseReturnValue:
    if not ButtonForm().validate_on_submit():
        abort(400)
    try:
        storage.release_public_address(request_uow().session, current_actor(), server_id)
    except DomainError as exc:
        restart_request_uow()
        return _server_page(server_id, error=storage_problem_text(exc), status=exc.http_status)
    flash(_("The server's public address is being released."), "success")
    return redirect(url_for("portal.server_detail", server_id=server_id))


@bp.post(f"/servers/{ID}/snapshots")
def take_server_snapshot(server_id: int) -> ResponseReturnValue:
    """A snapshot of the server's root disk, named by the user (one of the department's snapshots)."""
    form = ServerSnapshotForm()
    if not form.validate_on_submit():
        return _server_page(server_id, forms={"snapshot": form}, status=400)
    try:
        record = backups.take_server_snapshot(request_uow().session, current_actor(), server_id, form.name.data or "")
    except DomainError as exc:
        restart_request_uow()
        if getattr(exc, "field", None) == "name":
            form.name.errors = [*form.name.errors, copy_problem_text(exc)]
        else:
            form.form_errors.append(copy_problem_text(exc))
        return _server_page(server_id, forms={"snapshot": form}, status=exc.http_status)
    flash(_("Snapshot “%(name)s” is being taken. It appears as ready in a few minutes.", name=record.name), "success")
    return redirect(url_for("portal.server_detail", server_id=server_id))


@bp.post(f"/servers/{ID}/snapshots/{COPY_ID}/delete")
def delete_server_snapshot(server_id: int, copy_id: int) -> ResponseReturnValue:
    if not ButtonForm().validate_on_submit():
        abort(400)
    session = request_uow().session
    try:
        if backups.get_server_snapshot(session, current_actor(), copy_id).server_row_id != server_id:
            abort(404)
        record = backups.delete_server_snapshot(session, current_actor(), copy_id)
    except CopyNotFound:
        abort(404)
    except DomainError as exc:
        restart_request_uow()
        return _server_page(server_id, error=copy_problem_text(exc), status=exc.http_status)
    flash(
        _("Snapshot “%(name)s” is being deleted; its quota is given back once it is gone.", name=record.name), "success"
    )
    return redirect(url_for("portal.server_detail", server_id=server_id))
