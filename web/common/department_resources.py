"""各部门资源 / Department resources: one department's keys, volumes, firewall, public addresses,
snapshots, backups and schedules, with the ledger's usage beside them (issue 16).  Operators
(``ops.department_resources``) and administrators (``admin.department_resources``) read the same
page; each blueprint registers its route and calls :func:`department_resources_page`.

The department is picked by its name (a select the script lets one filter by typing), the cloud
by its name or "all clouds"; both travel as keys in the query string, so a page can be linked to.
"""

from __future__ import annotations

from flask import render_template, request
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from cloudmgr.organisation import services as org
from cloudmgr.organisation.errors import UnknownCloud, UnknownDepartment
from cloudmgr.resources import services as resources
from web.core.security import current_actor
from web.core.uow import request_uow

KEY_MAX = 64

VOLUME_STATES = {
    resources.VolumeState.PENDING: _l("being created"),
    resources.VolumeState.CREATING: _l("being created"),
    resources.VolumeState.ATTACHED: _l("attached"),
    resources.VolumeState.AVAILABLE: _l("not attached"),
    resources.VolumeState.DELETED: _l("deleted"),
    resources.VolumeState.FAILED: _l("failed"),
    resources.VolumeState.ATTACHING: _l("being attached"),
    resources.VolumeState.DETACHING: _l("being detached"),
    resources.VolumeState.EXTENDING: _l("being extended"),
    resources.VolumeState.DELETING: _l("being deleted"),
}
ADDRESS_STATES = {
    resources.AddressState.PENDING: _l("being given"),
    resources.AddressState.ALLOCATED: _l("being given"),
    resources.AddressState.ASSOCIATED: _l("in use"),
    resources.AddressState.RELEASED: _l("released"),
    resources.AddressState.FAILED: _l("failed"),
    resources.AddressState.RELEASING: _l("being released"),
}
COPY_STATES = {
    resources.CopyState.PENDING: _l("being made"),
    resources.CopyState.READY: _l("ready"),
    resources.CopyState.FAILED: _l("failed"),
    resources.CopyState.DELETING: _l("being deleted"),
    resources.CopyState.DELETED: _l("deleted"),
}
WEEKDAYS = (_l("Monday"), _l("Tuesday"), _l("Wednesday"), _l("Thursday"), _l("Friday"), _l("Saturday"), _l("Sunday"))


def volume_state(state: resources.VolumeState) -> str:
    return str(VOLUME_STATES.get(state, state.value))


def address_state(state: resources.AddressState) -> str:
    return str(ADDRESS_STATES.get(state, state.value))


def copy_state(state: resources.CopyState) -> str:
    return str(COPY_STATES.get(state, state.value))


def schedule_text(schedule: resources.ScheduleRow) -> str:
    """``daily at 02:00`` / ``weekly on Sunday at 02:00``, Beijing time, with how many are kept."""
    text: str
    if schedule.frequency is resources.Frequency.WEEKLY and schedule.weekday is not None:
        text = _(
            "Weekly on %(weekday)s at %(hour)02d:00, keeps %(keep)d",
            weekday=WEEKDAYS[schedule.weekday],
            hour=schedule.hour,
            keep=schedule.keep,
        )
    else:
        text = _("Daily at %(hour)02d:00, keeps %(keep)d", hour=schedule.hour, keep=schedule.keep)
    return text


def _arg(name: str) -> str | None:
    value = (request.args.get(name) or "").strip()
    return value[:KEY_MAX] or None


def department_resources_page(area: str) -> ResponseReturnValue:
    """The page of ``area`` (``ops`` or ``admin``): the picker, and the department's resources
    when one is picked.  An unknown department or cloud is said on the page (404)."""
    session = request_uow().session
    department_key, cloud_key = _arg("department"), _arg("cloud")
    overview: resources.DepartmentResources | None = None
    error: str | None = None
    status = 200
    if department_key is not None:
        try:
            overview = resources.department_resources(session, current_actor(), department_key, cloud_key)
        except UnknownDepartment:
            error, status = _("There is no department “%(key)s”.", key=department_key), 404
        except UnknownCloud:
            error, status = _("There is no cloud “%(key)s”.", key=cloud_key), 404
    return (
        render_template(
            "operations/department_resources.html",
            area=area,
            endpoint=f"{area}.department_resources",
            departments=org.department_choices(session),
            clouds=org.cloud_choices(session),
            chosen_department=department_key,
            chosen_cloud=cloud_key,
            overview=overview,
            error=error,
            volume_state=volume_state,
            address_state=address_state,
            copy_state=copy_state,
            schedule_text=schedule_text,
        ),
        status,
    )
