"""A volume's snapshots and backups (issue 16): take a snapshot, back up now, restore either to
a new volume, and the schedule that backs the volume up on its own.  Every rule is the
service's (cloudmgr.backups.services); a refusal comes back on the page, in the user's language
where the page knows the case."""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from wtforms import BooleanField, IntegerField, SelectChoice, SelectField, SubmitField
from wtforms.validators import InputRequired, NumberRange

from cloudmgr.backups import services as backups
from cloudmgr.backups.errors import CopyNotFound, VolumeNotFound
from cloudmgr.errors import DomainError
from web.common.display import refusal_text
from web.common.forms import SafeForm
from web.common.selfservice_forms import ButtonForm
from web.core.security import current_actor
from web.core.uow import request_uow, restart_request_uow
from web.portal.blueprint import bp
from web.portal.storage import state_label

VOLUME_ID = "<int(max=2147483647):volume_id>"
COPY_ID = "<int(max=2147483647):copy_id>"


# A snapshot's or a backup's state, in the reader's language (the API answers the values).
COPY_STATE_LABELS = {
    backups.CopyState.PENDING: _l("being created"),
    backups.CopyState.READY: _l("ready"),
    backups.CopyState.FAILED: _l("failed"),
    backups.CopyState.DELETING: _l("being deleted"),
    backups.CopyState.DELETED: _l("deleted"),
}


def copy_state_label(state: backups.CopyState) -> str:
    return str(COPY_STATE_LABELS.get(state, state.value))


def _weekdays() -> list[SelectChoice]:
    names = (_("Monday"), _("Tuesday"), _("Wednesday"), _("Thursday"), _("Friday"), _("Saturday"), _("Sunday"))
    return [SelectChoice(str(number), name) for number, name in enumerate(names)]


class ScheduleForm(SafeForm):
    frequency = SelectField(
        _l("How often"), choices=[SelectChoice("daily", _l("Daily")), SelectChoice("weekly", _l("Weekly"))]
    )
    weekday = SelectField(_l("Weekday (weekly)"), choices=[])
    hour = IntegerField(_l("Hour (Beijing time, 0–23)"), validators=[InputRequired(), NumberRange(0, 23)])
    keep = IntegerField(_l("Backups kept"), validators=[InputRequired(), NumberRange(1, backups.KEEP_MAX)], default=7)
    enabled = BooleanField(_l("Enabled"), default=True)
    save = SubmitField(_l("Save the schedule"))


def _page(volume_id: int, schedule_form: ScheduleForm | None = None, status: int = 200) -> ResponseReturnValue:
    session = request_uow().session
    actor = current_actor()
    try:
        volume = backups.get_volume(session, actor, volume_id)
    except VolumeNotFound:
        abort(404)
    schedule = backups.get_schedule(session, actor, volume_id)
    form = schedule_form
    if form is None:
        form = ScheduleForm(formdata=None)
        if schedule is not None:
            form.frequency.data, form.hour.data, form.keep.data = schedule.frequency.value, schedule.hour, schedule.keep
            form.weekday.data, form.enabled.data = str(schedule.weekday or 0), schedule.enabled
    form.weekday.choices = _weekdays()
    return (
        render_template(
            "portal/volume_backups.html",
            volume=volume,
            snapshots=backups.list_snapshots(session, actor, volume_id),
            backup_list=backups.list_backups(session, actor, volume_id),
            schedule=schedule,
            schedule_form=form,
            button_form=ButtonForm(formdata=None),
            can_copy=backups.may_act(actor, volume),
            can_restore=backups.may_restore(actor),
            copy_state_label=copy_state_label,
            state_label=state_label,
        ),
        status,
    )


@bp.get(f"/volumes/{VOLUME_ID}/backups")
def volume_backups(volume_id: int) -> ResponseReturnValue:
    return _page(volume_id)


def _refused(volume_id: int, exc: DomainError) -> ResponseReturnValue:
    restart_request_uow()
    if isinstance(exc, (VolumeNotFound, CopyNotFound)):
        abort(404)
    flash(refusal_text(exc), "error")
    return redirect(url_for("portal.volume_backups", volume_id=volume_id))


@bp.post(f"/volumes/{VOLUME_ID}/snapshots")
def take_volume_snapshot(volume_id: int) -> ResponseReturnValue:
    if not ButtonForm().validate_on_submit():
        abort(400)
    try:
        backups.take_snapshot(request_uow().session, current_actor(), volume_id)
    except DomainError as exc:
        return _refused(volume_id, exc)
    flash(_("Snapshot requested. It appears as ready in a few minutes."), "success")
    return redirect(url_for("portal.volume_backups", volume_id=volume_id))


@bp.post(f"/volumes/{VOLUME_ID}/backups")
def back_up_volume(volume_id: int) -> ResponseReturnValue:
    if not ButtonForm().validate_on_submit():
        abort(400)
    try:
        backups.back_up_now(request_uow().session, current_actor(), volume_id)
    except DomainError as exc:
        return _refused(volume_id, exc)
    flash(_("Backup requested. It appears as ready when the copy is done."), "success")
    return redirect(url_for("portal.volume_backups", volume_id=volume_id))


@bp.post(f"/volumes/{VOLUME_ID}/snapshots/{COPY_ID}/restore")
def restore_volume_snapshot(volume_id: int, copy_id: int) -> ResponseReturnValue:
    if not ButtonForm().validate_on_submit():
        abort(400)
    try:
        session = request_uow().session
        if backups.get_snapshot(session, current_actor(), copy_id).volume_row_id != volume_id:
            abort(404)
        backups.restore_snapshot(session, current_actor(), copy_id)
    except DomainError as exc:
        return _refused(volume_id, exc)
    flash(_("A new volume is being made from the snapshot. It is not attached to any server."), "success")
    return redirect(url_for("portal.volume_backups", volume_id=volume_id))


@bp.post(f"/volumes/{VOLUME_ID}/backups/{COPY_ID}/restore")
def restore_volume_backup(volume_id: int, copy_id: int) -> ResponseReturnValue:
    if not ButtonForm().validate_on_submit():
        abort(400)
    try:
        session = request_uow().session
        if backups.get_backup(session, current_actor(), copy_id).volume_row_id != volume_id:
            abort(404)
        backups.restore_backup(session, current_actor(), copy_id)
    except DomainError as exc:
        return _refused(volume_id, exc)
    flash(_("A new volume is being made from the backup. It is not attached to any server."), "success")
    return redirect(url_for("portal.volume_backups", volume_id=volume_id))


@bp.post(f"/volumes/{VOLUME_ID}/backup-schedule")
def set_volume_backup_schedule(volume_id: int) -> ResponseReturnValue:
    form = ScheduleForm()
    form.weekday.choices = _weekdays()
    if not form.validate_on_submit():
        return _page(volume_id, form, 400)
    weekday = int(form.weekday.data) if form.frequency.data == "weekly" and form.weekday.data else None
    wanted = backups.ScheduleForm(
        form.frequency.data or "", form.hour.data or 0, form.keep.data or 0, weekday=weekday, enabled=form.enabled.data
    )
    try:
        backups.set_schedule(request_uow().session, current_actor(), volume_id, wanted)
    except DomainError as exc:
        return _refused(volume_id, exc)
    flash(_("Backup schedule saved."), "success")
    return redirect(url_for("portal.volume_backups", volume_id=volume_id))


@bp.post(f"/volumes/{VOLUME_ID}/backup-schedule/delete")
def delete_volume_backup_schedule(volume_id: int) -> ResponseReturnValue:
    if not ButtonForm().validate_on_submit():
        abort(400)
    try:
        backups.delete_schedule(request_uow().session, current_actor(), volume_id)
    except DomainError as exc:
        return _refused(volume_id, exc)
    flash(_("Backup schedule removed. The backups it made are kept."), "success")
    return redirect(url_for("portal.volume_backups", volume_id=volume_id))
