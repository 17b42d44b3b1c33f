"""Which clouds cannot be reached, for the pages that show a cloud's data (issue 17).

Every page that shows clouds' data includes ``_cloud_status.html``: a banner per unreachable
cloud the reader is concerned with (a department's people: the clouds their department uses;
operators and the others: every cloud), while the page shows the other clouds' data as usual.
Read once per request from cloudmgr's record (cloudmgr.organisation.reachability)."""

from __future__ import annotations

from flask import Flask, g
from flask_babel import gettext, lazy_gettext

from cloudmgr.organisation import services as org
from web.core.security import current_web_user
from web.core.uow import request_uow

_REASONS = {
    # The kinds cloudmgr.organisation.reachability records.
    "refused": lazy_gettext("nothing answers at its address (connection refused)"),
    "lost": lazy_gettext("the connection dropped or it did not answer in time"),
}


def page_cloud_statuses() -> list[org.CloudStatus]:
    """The reachability of the clouds the reader is concerned with, in the clouds' order."""
    statuses: list[org.CloudStatus] | None = g.get("cloud_statuses")
    if statuses is None:
        user = current_web_user()
        session = request_uow().session
        if user is None:
            statuses = []
        elif user.role.needs_department:
            statuses = org.department_cloud_statuses(session, user.department.id) if user.department else []
        else:
            statuses = org.cloud_statuses(session)
        g.cloud_statuses = statuses
    return statuses


def unreachable_cloud_statuses() -> list[org.CloudStatus]:
    return org.unreachable_clouds(page_cloud_statuses())


def cloud_failure_reason(status: org.CloudStatus) -> str:
    """Why the cloud cannot be reached, in the reader's language."""
    reason = _REASONS.get(status.failure_kind or "")
    return str(reason) if reason is not None else gettext("it could not be reached")


def init_app(app: Flask) -> None:
    app.add_template_global(page_cloud_statuses, "cloud_statuses")
    app.add_template_global(unreachable_cloud_statuses, "unreachable_clouds")
    app.add_template_global(cloud_failure_reason, "cloud_failure_reason")
