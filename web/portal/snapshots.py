"""A server's snapshots (issue 16): restoring one (a confirmation page first: the server's root
disk is replaced), and deleting a volume's snapshots and hand-made backups.  Taking and deleting
a server's snapshot are on the server's page (web.portal.servers).

Every rule is the service's (cloudmgr.backups.services); a refusal comes back on the page in
the reader's language, under the field it is about when the page has one.
"""

from __future__ import annotations

from collections.abc import Callable

from flask import abort, flash, redirect, render_template, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from wtforms import StringField, SubmitField
from wtforms.validators import DataRequired, Length

from cloudmgr.backups import services as backups
from cloudmgr.backups.errors import CopyKind, CopyNotFound, CopyProblem, CopyRefused, VolumeNotFound
from cloudmgr.errors import DomainError
from cloudmgr.servicerequests import services as sr
from web.common.display import refusal_text
from web.common.forms import SafeForm
from web.common.labels import server_state_label
from web.common.selfservice_forms import ButtonForm
from web.core.security import current_actor
from web.core.uow import request_uow, restart_request_uow
from web.portal.blueprint import bp

SERVER_ID = "<int(max=2147483647):server_id>"
VOLUME_ID = "<int(max=2147483647):volume_id>"
COPY_ID = "<int(max=2147483647):copy_id>"


class ServerSnapshotForm(SafeForm):
    # The service decides what a valid name is (one rule for the page and the API).
    name = StringField(
        _l("Snapshot name"),
        render_kw={"maxlength": backups.SNAPSHOT_NAME_MAX, "autocomplete": "off"},
    )
    take = SubmitField(_l("Take a snapshot of the server"))


class RestoreServerForm(SafeForm):
    confirm = StringField(
        _l("Type the server's name to confirm"),
        validators=[DataRequired(message=_l("Type the server's name.")), Length(max=64)],
        render_kw={"autocomplete": "off", "spellcheck": "false", "autocapitalize": "none"},
    )
    restore = SubmitField(_l("Replace the root disk and restore"))


COPY_STATE_LABELS = {
    backups.CopyState.PENDING: _l("being made"),
    backups.CopyState.READY: _l("ready"),
    backups.CopyState.FAILED: _l("failed"),
    backups.CopyState.DELETING: _l("being deleted"),
    backups.CopyState.DELETED: _l("deleted"),
}
RESTORE_STATE_LABELS = {
    backups.RestoreState.QUEUED: _l("restore queued"),
    backups.RestoreState.REBUILDING: _l("restoring: the server is being rebuilt"),
    backups.RestoreState.DONE: _l("restored"),
    backups.RestoreState.FAILED: _l("restore failed"),
}
KIND_LABELS = {
    CopyKind.SERVER_SNAPSHOT: _l("Server snapshot"),
    CopyKind.VOLUME_SNAPSHOT: _l("Volume snapshot"),
    CopyKind.BACKUP: _l("Backup"),
}


def image_size(size_bytes: int | None) -> str:
    """An image's size as people read it: 64 KB, 1.5 MB, 12.3 GB."""
    if size_bytes is None:
        return "—"
    for unit, factor in (("GB", 1024**3), ("MB", 1024**2)):
        if size_bytes >= factor:
            return f"{size_bytes / factor:.1f}".removesuffix(".0") + f" {unit}"
    return f"{max(1, round(size_bytes / 1024))} KB"


def copy_state_label(state: backups.CopyState) -> str:
    return str(COPY_STATE_LABELS.get(state, state.value))


def restore_state_label(state: backups.RestoreState | None) -> str:
    return str(RESTORE_STATE_LABELS[state]) if state is not None else ""


def copy_problem_reason(exc: CopyRefused) -> str:
    """A snapshot or backup refusal in the reader's language (the API answers ``exc.message``)."""
    p, params = CopyProblem, dict(exc.params)
    if "kind" in params:
        params["kind"] = str(KIND_LABELS.get(CopyKind(str(params["kind"])), params["kind"]))
    if "state" in params:
        # A server's state or a copy's, as the pages name them.
        state = str(params["state"])
        server_problem = exc.problem == CopyProblem.SERVER_NOT_READY
        params["state"] = server_state_label(state) if server_problem else copy_state_label(backups.CopyState(state))
    texts: dict[CopyProblem, Callable[[], str]] = {
        p.NAME: lambda: _("Give the snapshot a name of 1 to %(max)s characters, without control characters.", **params),
        p.SERVER_NOT_READY: lambda: _(
            "Server %(server)s is %(state)s; only a running or stopped server can be snapshotted or restored.",
            **params,
        ),
        p.SERVER_BUSY: lambda: _(
            "Server %(server)s has a snapshot or a restore under way; wait until it is done.", **params
        ),
        p.SNAPSHOT_NOT_READY: lambda: _(
            "Snapshot %(copy)s is %(state)s; only a ready snapshot can be restored.", **params
        ),
        p.CONFIRM: lambda: _(
            "Type the server's name (%(server)s) to confirm that its root disk is replaced by the snapshot's.",
            **params,
        ),
        p.COPY_BUSY: lambda: _("%(kind)s %(copy)s is %(state)s; wait until that is done.", **params),
        p.COPY_IN_USE: lambda: _("%(kind)s %(copy)s is being restored; delete it once that is done.", **params),
        p.SCHEDULED_BACKUP: lambda: _(
            "Backup %(copy)s belongs to the volume's backup schedule, which deletes its own beyond the number kept; "
            "lower that number or remove the schedule.",
            **params,
        ),
    }
    return texts[exc.problem]()


def copy_problem_text(exc: DomainError) -> str:
    if not isinstance(exc, CopyRefused):
        return refusal_text(exc)
    text: str = _("Refused: %(reason)s", reason=copy_problem_reason(exc))
    return text


# --- restoring a server from its snapshot -----------------------------------------------------------


def _restore_page(server_id: int, copy_id: int, form: RestoreServerForm, status: int = 200) -> ResponseReturnValue:
    session = request_uow().session
    actor = current_actor()
    server = sr.get_server(session, actor, server_id)
    try:
        snapshot = backups.get_server_snapshot(session, actor, copy_id)
    except CopyNotFound:
        abort(404)
    if snapshot.server_row_id != server.id:
        abort(404)
    return (
        render_template(
            "portal/server_restore.html",
            server=server,
            snapshot=snapshot,
            form=form,
            can_restore=backups.may_restore_server(actor, server, snapshot),
            copy_state_label=copy_state_label,
        ),
        status,
    )


@bp.get(f"/servers/{SERVER_ID}/snapshots/{COPY_ID}/restore")
def restore_server_snapshot_page(server_id: int, copy_id: int) -> ResponseReturnValue:
    """The confirmation: what a restore replaces, and the server's name typed to go ahead."""
    return _restore_page(server_id, copy_id, RestoreServerForm(formdata=None))


@bp.post(f"/servers/{SERVER_ID}/snapshots/{COPY_ID}/restore")
def restore_server_snapshot(server_id: int, copy_id: int) -> ResponseReturnValue:
    form = RestoreServerForm()
    if not form.validate_on_submit():
        return _restore_page(server_id, copy_id, form, 400)
    session = request_uow().session
    actor = current_actor()
    try:
        if backups.get_server_snapshot(session, actor, copy_id).server_row_id != server_id:
            abort(404)
        record = backups.restore_server_snapshot(session, actor, copy_id, confirm=form.confirm.data or "")
    except CopyNotFound:
        abort(404)
    except DomainError as exc:
        restart_request_uow()
        if getattr(exc, "field", None) == "confirm":
            form.confirm.errors = [*form.confirm.errors, copy_problem_text(exc)]
        else:
            form.form_errors.append(copy_problem_text(exc))
        return _restore_page(server_id, copy_id, form, exc.http_status)
    flash(
        _(
            "The server is being restored from the snapshot “%(name)s”; it restarts with the snapshot's disk.",
            name=record.name,
        ),
        "success",
    )
    return redirect(url_for("portal.server_detail", server_id=server_id))


# --- deleting a volume's snapshot or backup ---------------------------------------------------------


@bp.app_template_global("may_delete_volume_copy")
def may_delete_volume_copy(record: backups.VolumeSnapshotRecord | backups.VolumeBackupRecord) -> bool:
    """Whether the volume's page offers to delete ``record`` (the service refuses the rest)."""
    if isinstance(record, backups.VolumeBackupRecord):
        return backups.may_delete_backup(current_actor(), record)
    return backups.may_delete_copy(current_actor(), record)


def _copy_refused(volume_id: int, exc: DomainError) -> ResponseReturnValue:
    restart_request_uow()
    if isinstance(exc, (VolumeNotFound, CopyNotFound)):
        abort(404)
    flash(copy_problem_text(exc), "error")
    return redirect(url_for("portal.volume_backups", volume_id=volume_id))


@bp.post(f"/volumes/{VOLUME_ID}/snapshots/{COPY_ID}/delete")
def delete_volume_snapshot(volume_id: int, copy_id: int) -> ResponseReturnValue:
    if not ButtonForm().validate_on_submit():
        abort(400)
    session = request_uow().session
    try:
        if backups.get_snapshot(session, current_actor(), copy_id).volume_row_id != volume_id:
            abort(404)
        backups.delete_volume_snapshot(session, current_actor(), copy_id)
    except DomainError as exc:
        return _copy_refused(volume_id, exc)
    flash(_("The snapshot is being deleted; its quota is given back once it is gone."), "success")
    return redirect(url_for("portal.volume_backups", volume_id=volume_id))


@bp.post(f"/volumes/{VOLUME_ID}/backups/{COPY_ID}/delete")
def delete_volume_backup(volume_id: int, copy_id: int) -> ResponseReturnValue:
    if not ButtonForm().validate_on_submit():
        abort(400)
    session = request_uow().session
    try:
        if backups.get_backup(session, current_actor(), copy_id).volume_row_id != volume_id:
            abort(404)
        backups.delete_backup(session, current_actor(), copy_id)
    except DomainError as exc:
        return _copy_refused(volume_id, exc)
    flash(_("The backup is being deleted; its quota is given back once it is gone."), "success")
    return redirect(url_for("portal.volume_backups", volume_id=volume_id))
