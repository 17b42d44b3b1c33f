"""The pages show times in the configured zone (CLOUDMGR_TIME_ZONE, Asia/Shanghai by default)
through one filter, ``datetimeformat``, and say which zone; the API keeps ISO 8601 in UTC."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

from cloudmgr.audit.models import AuditEvent
from cloudmgr.runtime import Runtime
from tests.conftest import ONE_DATABASE
from tests.web.helpers import demo_login, logged_in
from web import create_app

# 23:30 UTC on new year's eve is already 1 January in Shanghai.
AT = datetime(2025, 12, 31, 23, 30, 5, tzinfo=UTC)


def _event(rt: Runtime) -> int:
    with rt.db.unit_of_work() as uow:
        event = AuditEvent(
            at=AT, actor="system:test", action="auth.login", target_type="user", target_id="x", detail={}
        )
        uow.session.add(event)
        uow.session.flush()
        return event.id


@ONE_DATABASE
def test_the_audit_log_shows_shanghai_time_by_default_and_says_so(seeded: Runtime) -> None:
    _event(seeded)
    app = create_app(runtime=seeded)
    operator = logged_in(app, demo_login("operator").username)
    html = operator.get("/ops/audit").get_data(as_text=True)
    assert "2026-01-01 07:30:05" in html
    assert "2025-12-31 23:30:05" not in html
    # the machine-readable value stays UTC, with its offset
    assert 'datetime="2025-12-31T23:30:05+00:00"' in html
    assert "Asia/Shanghai, UTC+08:00" in html  # the footer names the zone
    assert 'data-time-zone="Asia/Shanghai"' in html  # for the scripts that show times (runbooks.js)


@ONE_DATABASE
def test_another_zone_is_taken_from_the_settings(seeded: Runtime) -> None:
    _event(seeded)
    in_utc = dataclasses.replace(seeded, settings=seeded.settings.with_overrides(time_zone="America/New_York"))
    app = create_app(runtime=in_utc)
    operator = logged_in(app, demo_login("operator").username)
    html = operator.get("/ops/audit").get_data(as_text=True)
    assert "2025-12-31 18:30:05" in html
    assert "America/New_York, UTC-05:00" in html
    assert 'data-time-zone="America/New_York"' in html


@ONE_DATABASE
def test_the_api_keeps_utc_with_its_offset(seeded: Runtime) -> None:
    from cloudmgr.organisation import services as org
    from cloudmgr.organisation.actor import Actor

    app = create_app(runtime=seeded)
    operator = demo_login("operator").username
    logged_in(app, operator)  # sets the operator's last log-in time
    with seeded.db.unit_of_work() as uow:
        admin = org.get_user_by_name(uow.session, demo_login("admin").username)
        token = org.issue_token(uow.session, admin, name="t", expires_at=None, actor=Actor.system("test")).token
    users = app.test_client().get("/api/v1/users", headers={"Authorization": f"Bearer {token}"}).get_json()
    last_login = next(u["last_login_at"] for u in users["items"] if u["username"] == operator)
    assert last_login.endswith("+00:00")
    assert abs((datetime.fromisoformat(last_login) - datetime.now(UTC)).total_seconds()) < 120
