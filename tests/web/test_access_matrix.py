"""Every route × every role (and anonymous): the expected allow or deny, from a declared table.

``ACCESS`` says who may use each route: keys are a blueprint (``"portal"``), or an endpoint
(``"portal.approvals"``); the longest matching key wins.  API endpoints are each listed (their
roles differ); every other blueprint has a default.  A route no key classifies fails the test:
add it to the table.  Expected answers:

* allowed: anything but 401/403, a redirect to the login page, or a 5xx;
* logged in but not allowed: 403;
* anonymous where a login is needed: a redirect to /login (pages) or 401 (API).

Each route is tried with GET (if it has one), with DELETE (if it has one) and with POST (if it
has one) carrying a valid CSRF token but no valid input.  The second half shows that departments never see each
other's requests, servers, quotas and purchases through pages, the API or exports.
"""

from __future__ import annotations

import base64
import io
import json
import re
from collections.abc import Iterable
from datetime import date, timedelta
from decimal import Decimal

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from werkzeug.routing import Rule
from werkzeug.test import TestResponse

from cloudmgr.backups import services as backups
from cloudmgr.db import utcnow
from cloudmgr.demo import DEMO_LOGINS
from cloudmgr.lines.finance_models import LineRentalRequest
from cloudmgr.lines.models import NetworkLine
from cloudmgr.organisation import services as org
from cloudmgr.organisation.actor import Actor
from cloudmgr.purchases import services as purchases
from cloudmgr.purchases.services import ItemInput, PurchaseForm
from cloudmgr.quotas.models import QuotaChangeRequest
from cloudmgr.runtime import Runtime
from cloudmgr.storage import services as storage
from tests.conftest import ONE_DATABASE
from tests.lines.helpers import make_line
from tests.web.helpers import Journey, csrf_token, logged_in
from web import create_app

ANONYMOUS = "anonymous"
STAFF, HEAD, OPERATOR, FINANCE, ADMIN = "dept_staff", "dept_head", "operator", "finance", "admin"
ROLES = (STAFF, HEAD, OPERATOR, FINANCE, ADMIN)
EVERYONE = frozenset({ANONYMOUS, *ROLES})
LOGGED_IN = frozenset(ROLES)
DEPT = frozenset({STAFF, HEAD})


def _roles(*names: str) -> frozenset[str]:
    return frozenset(names)


ACCESS: dict[str, frozenset[str]] = {
    # --- pages: one default per blueprint, then the narrower views ---
    "auth": EVERYONE,
    "auth.change_password": LOGGED_IN,
    "system": EVERYONE,
    "static": EVERYONE,
    "portal": DEPT,
    "portal.approvals": _roles(HEAD),
    "portal.decide": _roles(HEAD),
    "portal.bulk_decide": _roles(HEAD),
    # A server's snapshots and deleting a volume's copies (issue 16): the department's, like the
    # rest of the portal (operators act on them through the API).
    "portal.take_server_snapshot": DEPT,
    "portal.delete_server_snapshot": DEPT,
    "portal.restore_server_snapshot_page": DEPT,
    "portal.restore_server_snapshot": DEPT,
    "portal.delete_volume_snapshot": DEPT,
    "portal.delete_volume_backup": DEPT,
    "ops": _roles(OPERATOR),
    "ops.adopt_orphan": _roles(OPERATOR),  # an orphaned volume or address
    "ops.delete_orphan": _roles(OPERATOR),
    "ops.department_resources": _roles(OPERATOR),  # the admins' twin: admin.department_resources
    "admin.department_resources": _roles(ADMIN),
    "finance": _roles(FINANCE),
    "admin": _roles(ADMIN),
    # --- the API: every endpoint listed ---
    "api.openapi": EVERYONE,
    "api.me": LOGGED_IN,
    "api.clouds": LOGGED_IN,
    "api.departments": LOGGED_IN,
    "api.department": LOGGED_IN,
    "api.users": _roles(ADMIN),
    "api.disable_user": _roles(ADMIN),
    "api.enable_user": _roles(ADMIN),
    "api.user_tokens": _roles(ADMIN),
    "api.revoke_user_tokens": _roles(ADMIN),
    "api.update_user": _roles(ADMIN),
    "api.reset_user_password": _roles(ADMIN),
    "api.delete_user": _roles(ADMIN),
    "api.import_organisation": _roles(ADMIN),
    "api.apply_quota_files": _roles(ADMIN),
    "api.catalog_items": LOGGED_IN,
    "api.quotas": LOGGED_IN,
    "api.list_quota_requests": LOGGED_IN,
    "api.create_quota_request": DEPT,
    "api.decide_quota_request": _roles(OPERATOR),
    "api.quota_drifts": _roles(OPERATOR),
    "api.list_requests": LOGGED_IN,
    "api.get_request": LOGGED_IN,
    "api.create_request": DEPT,
    "api.update_request_draft": DEPT,
    "api.quote_request": DEPT,
    "api.submit_request": DEPT,
    "api.approve_request": _roles(HEAD, OPERATOR, FINANCE),
    "api.decide_requests": _roles(HEAD, OPERATOR, FINANCE),
    "api.reject_request": _roles(HEAD, OPERATOR, FINANCE),
    "api.cancel_request": _roles(STAFF, HEAD, OPERATOR),
    "api.list_servers": LOGGED_IN,
    "api.get_server": LOGGED_IN,
    "api.server_action": _roles(STAFF, HEAD, OPERATOR),
    "api.extend_server": _roles(STAFF, HEAD, OPERATOR),
    "api.resize_server": DEPT,
    "api.retry_server": _roles(OPERATOR),
    "api.open_server_console": _roles(STAFF, HEAD, OPERATOR),
    "api.read_server_console_log": _roles(STAFF, HEAD, OPERATOR),
    "api.list_orphans": _roles(OPERATOR),
    "api.orphan_action": _roles(OPERATOR),
    "api.capacity": _roles(OPERATOR),
    "api.take_capacity_snapshots": _roles(OPERATOR),
    "api.list_consolidation_runs": _roles(OPERATOR),
    "api.create_consolidation_run": _roles(OPERATOR),
    "api.list_moves": _roles(OPERATOR),
    "api.create_move": _roles(OPERATOR),
    "api.get_move": _roles(OPERATOR),
    "api.confirm_move": _roles(OPERATOR),
    "api.revert_move": _roles(OPERATOR),
    "api.resume_move": _roles(OPERATOR),
    "api.get_consolidation_run": _roles(OPERATOR),
    "api.start_consolidation_run": _roles(OPERATOR),
    "api.stop_consolidation_run": _roles(OPERATOR),
    "api.plan_consolidation": _roles(OPERATOR),
    "api.list_legacy_systems": _roles(OPERATOR, STAFF, HEAD),
    "api.get_legacy_system": _roles(OPERATOR, STAFF, HEAD),
    "api.import_inventory": _roles(OPERATOR),
    "api.list_reclassification_alerts": _roles(OPERATOR),
    "api.close_reclassification_alert": _roles(OPERATOR),
    "api.list_declassifications": _roles(OPERATOR, ADMIN),
    "api.approve_declassification": _roles(ADMIN),
    "api.reject_declassification": _roles(ADMIN),
    "api.list_purchases": _roles(STAFF, HEAD, FINANCE, OPERATOR, ADMIN),
    "api.get_purchase": _roles(STAFF, HEAD, FINANCE, OPERATOR, ADMIN),
    "api.create_purchase": DEPT,
    "api.update_purchase": DEPT,
    "api.submit_purchase": DEPT,
    "api.purchase_vm_draft": DEPT,
    "api.decide_purchase": _roles(FINANCE),
    "api.purchase_queue": _roles(FINANCE, OPERATOR, ADMIN),
    "api.purchase_reports": _roles(STAFF, HEAD, FINANCE, OPERATOR, ADMIN),
    "api.showback": _roles(STAFF, HEAD, FINANCE, OPERATOR, ADMIN),
    "api.programme": _roles(OPERATOR, FINANCE, HEAD, STAFF),
    "api.programme_burndown": _roles(OPERATOR, FINANCE, HEAD, STAFF),
    "api.list_waves": _roles(OPERATOR),
    "api.create_wave": _roles(OPERATOR),
    "api.get_wave": _roles(OPERATOR),
    "api.cancel_wave": _roles(OPERATOR),
    "api.check_wave": _roles(OPERATOR),
    "api.start_wave": _roles(OPERATOR),
    "api.add_wave_systems": _roles(OPERATOR),
    "api.list_runbook_runs": _roles(OPERATOR),
    "api.get_runbook_run": _roles(OPERATOR),
    "api.runbook_run_events": _roles(OPERATOR),
    "api.start_runbook_step": _roles(OPERATOR),
    "api.list_ssh_keys": _roles(STAFF, HEAD, OPERATOR),
    "api.create_ssh_key": DEPT,
    "api.delete_ssh_key": DEPT,
    "api.list_firewall_templates": LOGGED_IN,
    "api.create_firewall_template": _roles(OPERATOR),
    "api.update_firewall_template": _roles(OPERATOR),
    "api.delete_firewall_template": _roles(OPERATOR),
    "api.set_department_admin_network": _roles(ADMIN),
    "api.list_volumes": _roles(STAFF, HEAD, OPERATOR),
    "api.get_volume": _roles(STAFF, HEAD, OPERATOR),
    "api.create_volume": DEPT,
    "api.delete_volume": _roles(STAFF, HEAD, OPERATOR),
    "api.attach_volume": DEPT,
    "api.detach_volume": _roles(STAFF, HEAD, OPERATOR),
    "api.extend_volume": DEPT,
    "api.request_public_address": DEPT,
    "api.release_public_address": _roles(STAFF, HEAD, OPERATOR),
    "api.list_volume_snapshots": LOGGED_IN,
    "api.create_volume_snapshot": _roles(STAFF, HEAD, OPERATOR),
    "api.restore_volume_snapshot": _roles(STAFF, HEAD, OPERATOR),
    "api.list_volume_backups": LOGGED_IN,
    "api.create_volume_backup": _roles(STAFF, HEAD, OPERATOR),
    "api.restore_volume_backup": _roles(STAFF, HEAD, OPERATOR),
    "api.delete_volume_snapshot": _roles(STAFF, HEAD, OPERATOR),
    "api.delete_volume_backup": _roles(STAFF, HEAD, OPERATOR),
    "api.list_server_snapshots": LOGGED_IN,
    "api.create_server_snapshot": _roles(STAFF, HEAD, OPERATOR),
    "api.get_server_snapshot": LOGGED_IN,
    "api.restore_server_snapshot": _roles(STAFF, HEAD, OPERATOR),
    "api.delete_server_snapshot": _roles(STAFF, HEAD, OPERATOR),
    "api.get_backup_schedule": LOGGED_IN,
    "api.set_backup_schedule": _roles(STAFF, HEAD, OPERATOR),
    "api.delete_backup_schedule": _roles(STAFF, HEAD, OPERATOR),
    "api.department_resources": _roles(OPERATOR, ADMIN),
    # Line rentals and renewals, the network programme (issue 19): departments ask and read their own,
    # finance decides, operators and administrators read.
    "api.list_line_rentals": LOGGED_IN,
    "api.create_line_rental": DEPT,
    "api.line_rental_queue": _roles(FINANCE, OPERATOR, ADMIN),
    "api.get_line_rental": LOGGED_IN,
    "api.submit_line_rental": DEPT,
    "api.decide_line_rental": _roles(FINANCE),
    "api.line_contracts_ending": LOGGED_IN,
    "api.line_savings": LOGGED_IN,
    "api.lines_programme": LOGGED_IN,
    "finance.line_rentals": _roles(FINANCE),
    "finance.line_rental": _roles(FINANCE),
    "finance.line_rental_decide": _roles(FINANCE),
    "finance.line_contracts": _roles(FINANCE),
    "finance.line_savings": _roles(FINANCE),
    "finance.line_savings_csv": _roles(FINANCE),
    "finance.finance_lines_programme": _roles(FINANCE),
    "portal.line_rentals_list": DEPT,
    "portal.line_rental_new": DEPT,
    "portal.line_rental_create": DEPT,
    "portal.line_rental_detail": DEPT,
    "portal.line_rental_submit": DEPT,
    "portal.portal_lines_programme": DEPT,
    "ops.ops_lines_programme": _roles(OPERATOR),
    # Dedicated lines (issue 19): departments read and declare their own; operators plan and record.
    "api.list_lines": LOGGED_IN,
    "api.get_line": LOGGED_IN,
    "api.create_line": _roles(STAFF, HEAD, OPERATOR),
    "api.import_lines": _roles(STAFF, HEAD, OPERATOR),
    "api.plan_line": _roles(OPERATOR),
    "api.plan_line_batch": _roles(OPERATOR),
    "api.record_line": _roles(OPERATOR),
    "api.line_coverage": _roles(OPERATOR, ADMIN, FINANCE),
}

# Public routes that send an anonymous visitor on to the login page by design.
LOGIN_REDIRECTS = {"auth.index"}
# 503 is an answer, not a failure, here: no scheduler leads in the tests.
MAY_BE_UNAVAILABLE = {"system.readyz"}

# Path arguments: ids that do not exist (1 may), and the few string arguments.
ARGUMENTS = {"code": "zh", "key": "prov-education", "fmt": "csv", "filename": "css/none.css", "step": "preflight"}


def expected_roles(endpoint: str) -> frozenset[str] | None:
    """Who may use ``endpoint``, from the longest key of ``ACCESS`` that covers it."""
    if endpoint in ACCESS:
        return ACCESS[endpoint]
    blueprint = endpoint.split(".", 1)[0]
    if blueprint == "api":  # the API has no default: list the endpoint
        return None
    return ACCESS.get(blueprint)


def _path(app: Flask, rule: Rule) -> str:
    values = {arg: ARGUMENTS.get(arg, 1) for arg in rule.arguments}
    return app.url_map.bind("localhost").build(rule.endpoint, values)


def _routes(app: Flask) -> list[tuple[Rule, str]]:
    found = []
    for rule in app.url_map.iter_rules():
        for method in ("GET", "POST", "DELETE"):
            if method in (rule.methods or ()):
                found.append((rule, method))
    # Logging out last: it ends the session the other requests use.
    return sorted(found, key=lambda rm: (rm[0].endpoint == "auth.logout", rm[0].endpoint, rm[1]))


def test_every_route_is_classified(app: Flask) -> None:
    unclassified = sorted({r.endpoint for r, _ in _routes(app) if expected_roles(r.endpoint) is None})
    assert not unclassified, f"add these endpoints to ACCESS in {__file__}: {unclassified}"
    stale = sorted(k for k in ACCESS if "." in k and k not in {r.endpoint for r in app.url_map.iter_rules()})
    assert not stale, f"ACCESS names endpoints that no longer exist: {stale}"


def _client_for(app: Flask, who: str) -> tuple[FlaskClient, dict[str, str], str]:
    """A client logged in as ``who`` (through the form), its API headers, and a valid CSRF token."""
    if who == ANONYMOUS:
        client = app.test_client()
        return client, {}, csrf_token(client.get("/login").get_data(as_text=True))
    username = next(login.username for login in DEMO_LOGINS if login.role.value == who)
    client = logged_in(app, username)
    rt: Runtime = app.extensions["cloudmgr"]
    with rt.db.unit_of_work() as uow:
        user = org.get_user_by_name(uow.session, username)
        token = org.issue_token(
            uow.session, user, name="matrix", expires_at=utcnow() + timedelta(days=1), actor=Actor.system("t")
        )
    home = client.get("/", follow_redirects=True).get_data(as_text=True)
    return client, {"Authorization": f"Bearer {token.token}"}, csrf_token(home)


def _problem(who: str, rule: Rule, response: TestResponse) -> str | None:
    allowed = expected_roles(rule.endpoint)
    assert allowed is not None
    status = response.status_code
    to_login = status == 302 and "/login" in response.headers.get("Location", "")
    is_api = rule.endpoint.startswith("api.")
    if status >= 500 and not (status == 503 and rule.endpoint in MAY_BE_UNAVAILABLE):
        return f"{status} (server error)"
    if who in allowed:
        if status in (401, 403) or (to_login and rule.endpoint not in LOGIN_REDIRECTS | {"auth.logout"}):
            return f"{status} but {who} may use it"
        return None
    if who == ANONYMOUS:
        wanted_ok = status == 401 if is_api else to_login
        return None if wanted_ok else f"{status}: anonymous should be {'401' if is_api else 'sent to /login'}"
    return None if status == 403 else f"{status}: {who} should get 403"


@pytest.mark.parametrize("who", [ANONYMOUS, *ROLES])
@ONE_DATABASE
def test_every_route_allows_or_denies_as_declared(app: Flask, who: str) -> None:
    client, headers, token = _client_for(app, who)
    problems: list[str] = []
    tried = 0
    for rule, method in _routes(app):
        if expected_roles(rule.endpoint) is None:
            continue  # reported by test_every_route_is_classified
        path = _path(app, rule)
        if method == "GET":
            response = client.get(path, headers=headers)
        elif method == "DELETE":
            response = client.delete(path, headers=headers)
        elif rule.endpoint.startswith("api."):
            response = client.post(path, headers=headers, data="{}", content_type="application/json")
        else:
            response = client.post(path, data={"csrf_token": token})
        tried += 1
        problem = _problem(who, rule, response)
        if problem:
            problems.append(f"{method} {path} ({rule.endpoint}): {problem}")
    assert tried >= 100
    assert not problems, "\n".join(problems)


# --- departments never see each other's data ----------------------------------------------------

SECRET = "secretedu"  # in every name of department A's (prov-education) request and purchase


def _department_a_data(journey: Journey) -> dict[str, int]:
    """A request with servers, a quota change request and a purchase of prov-education."""
    request_id = journey.active_request(count=1, prefix=SECRET)
    server_id = journey.servers(request_id)[0][0]
    with journey.rt.db.unit_of_work() as uow:
        server_snapshot_id = backups.take_server_snapshot(
            uow.session, journey.actor("zhangwei"), server_id, f"{SECRET} snapshot"
        ).id
    owner = journey.actor("zhangwei")
    with journey.rt.db.unit_of_work() as uow:
        volume_id = storage.create_volume(
            uow.session, owner, name=f"{SECRET}-data", size_gb=10, cloud_key="education", volume_type_name="fake"
        ).id
    journey.drain()
    with journey.rt.db.unit_of_work() as uow:
        volume_snapshot_id = backups.take_snapshot(uow.session, owner, volume_id).id
        backup_id = backups.back_up_now(uow.session, owner, volume_id).id
    journey.drain()
    draft_id = journey.submit(count=1, submit=False, prefix=SECRET + "d")
    actor = journey.actor("zhangwei")
    with journey.rt.db.unit_of_work() as uow:
        change = QuotaChangeRequest(
            department_id=actor.department_id,
            cloud_id=org.get_department(uow.session, "prov-education").cloud_links[0].cloud_id,
            requested_by="zhangwei",
            reason=f"{SECRET} grows",
            requested_limits={"cores": 64},
            previous_limits={"cores": 32},
            state="pending",
        )
        uow.session.add(change)
        uow.session.flush()
        change_id = change.id
        purchase = purchases.create_purchase(
            uow.session,
            actor,
            PurchaseForm(
                title=f"{SECRET} servers",
                category="server",
                amount_yuan=Decimal("20000"),
                application_system=f"{SECRET} system",
                justification="we want our own",
                items=[ItemInput(description=f"{SECRET} rack server", quantity=1, unit_price=Decimal("20000"))],
            ),
        )
        purchase_id = purchase.id
    with journey.rt.db.unit_of_work() as uow:
        line_id = make_line(uow.session, f"{SECRET}-L1", a_site=f"{SECRET} site").id
    return {
        "line": line_id,
        "rental": _department_a_rental(journey),
        "request": request_id,
        "draft": draft_id,
        "server": server_id,
        "change": change_id,
        "purchase": purchase_id,
        "server_snapshot": server_snapshot_id,
        "volume": volume_id,
        "volume_snapshot": volume_snapshot_id,
        "backup": backup_id,
    }


def _pages_and_api(ids: dict[str, int]) -> Iterable[tuple[str, str]]:
    r, d, s, p, c = ids["request"], ids["draft"], ids["server"], ids["purchase"], ids["change"]
    ss = ids["server_snapshot"]
    yield "GET", f"/portal/requests/{r}"
    yield "GET", f"/portal/requests/{d}"
    yield "GET", f"/portal/servers/{s}"
    yield "GET", f"/portal/servers/{s}/console"
    yield "GET", f"/portal/purchases/{p}"
    yield "GET", f"/portal/purchases/{p}/edit"
    for action in ("cancel", "submit", "decide"):
        yield "POST", f"/portal/requests/{d}/{action}"
    for action in ("power", "extend", "delete", "resize", "snapshots"):
        yield "POST", f"/portal/servers/{s}/{action}"
    yield "GET", f"/portal/servers/{s}/snapshots/{ss}/restore"
    yield "POST", f"/portal/servers/{s}/snapshots/{ss}/restore"
    yield "POST", f"/portal/servers/{s}/snapshots/{ss}/delete"
    v, vs, b = ids["volume"], ids["volume_snapshot"], ids["backup"]
    yield "POST", f"/portal/volumes/{v}/snapshots/{vs}/delete"
    yield "POST", f"/portal/volumes/{v}/backups/{b}/delete"
    yield "DELETE", f"/api/v1/snapshots/{vs}"
    yield "DELETE", f"/api/v1/backups/{b}"
    for action in ("submit", "withdraw", "vm-draft", "attachments", "edit"):
        yield "POST", f"/portal/purchases/{p}/{action}"
    yield "GET", f"/api/v1/requests/{r}"
    yield "GET", f"/api/v1/requests/{d}"
    yield "GET", f"/api/v1/servers/{s}"
    yield "GET", f"/api/v1/servers/{s}/console"
    yield "GET", f"/api/v1/servers/{s}/console-log"
    yield "GET", f"/api/v1/purchases/{p}"
    yield "GET", f"/api/v1/servers/{s}/snapshots"
    yield "GET", f"/api/v1/server-snapshots/{ss}"
    yield "API", f"/api/v1/servers/{s}/snapshots"
    yield "API", f"/api/v1/server-snapshots/{ss}/restore"
    yield "DELETE", f"/api/v1/server-snapshots/{ss}"
    yield "API", f"/api/v1/requests/{d}/submit"
    for action in ("cancel", "approve", "reject"):
        yield "API", f"/api/v1/requests/{d}/{action}"
    for action in ("extend", "resize", "actions"):
        yield "API", f"/api/v1/servers/{s}/{action}"
    for action in ("submit", "vm-draft"):
        yield "API", f"/api/v1/purchases/{p}/{action}"
    yield "API", f"/api/v1/quota-requests/{c}/decide"
    rental = ids["rental"]
    yield "GET", f"/portal/lines/rentals/{rental}"
    yield "POST", f"/portal/lines/rentals/{rental}/submit"
    yield "GET", f"/api/v1/lines/rentals/{rental}"
    yield "API", f"/api/v1/lines/rentals/{rental}/submit"
    line = ids["line"]
    yield "GET", f"/portal/lines/{line}"
    yield "GET", f"/api/v1/lines/{line}"
    yield "API", f"/api/v1/lines/{line}/plan"
    yield "API", f"/api/v1/lines/{line}/record"


# Well-formed bodies, so the answer is about the id (not a 400 about the body).
API_BODIES: dict[str, dict[str, object]] = {
    "cancel": {"reason": "x"},
    "approve": {"reason": "x"},
    "reject": {"reason": "x"},
    "decide": {"reason": "x"},
    "extend": {"expires_on": (date.today() + timedelta(days=90)).isoformat()},
    "resize": {"flavor": 1, "justification": "x"},
    "actions": {"action": "stop"},
    "snapshots": {"name": "theirs"},
    "restore": {"confirm": "x"},
    "plan": {"target": "retire"},
}

LISTS_AND_EXPORTS = (
    "/portal/",
    "/portal/requests",
    "/portal/servers",
    "/portal/quotas",
    "/portal/purchases",
    "/portal/approvals",
    "/api/v1/requests",
    "/api/v1/servers",
    "/api/v1/quotas",
    "/api/v1/quota-requests",
    "/api/v1/purchases",
    "/api/v1/purchase-reports",
    "/api/v1/showback",
    "/api/v1/systems",
    "/portal/lines/rentals",
    "/portal/lines/programme",
    "/api/v1/lines/rentals",
    "/api/v1/lines/contracts-ending",
    "/api/v1/lines/savings",
    "/api/v1/lines/programme",
    "/portal/lines",
    "/portal/lines/export.csv",
    "/api/v1/lines",
)


@pytest.mark.parametrize("other", ["wangfang", "sunqiang"])  # staff of ts-hrss, head of prov-health
@ONE_DATABASE
def test_departments_never_see_each_others_data(journey: Journey, other: str) -> None:
    ids = _department_a_data(journey)
    app = create_app(runtime=journey.rt)
    owner = logged_in(app, "zhangwei")
    assert owner.get(f"/portal/requests/{ids['request']}").status_code == 200  # the ids are real
    assert SECRET in owner.get("/api/v1/requests", headers=_bearer(journey, "zhangwei")).get_data(as_text=True)

    client = logged_in(app, other)
    headers = _bearer(journey, other)
    token = csrf_token(client.get("/portal/").get_data(as_text=True))
    leaks: list[str] = []
    for method, path in _pages_and_api(ids):
        if method == "GET":
            response = client.get(path, headers=headers if path.startswith("/api/") else {})
        elif method == "DELETE":
            response = client.delete(path, headers=headers)
        elif method == "POST":
            form = {"csrf_token": token, "reason": "x", "action": "stop", "confirm": "x", "days": "30", "name": "x"}
            response = client.post(path, data=form)
        else:
            payload = API_BODIES.get(path.rsplit("/", 1)[-1], {})
            response = client.post(path, headers=headers, data=json.dumps(payload), content_type="application/json")
        if response.status_code not in (403, 404) or SECRET in response.get_data(as_text=True):
            leaks.append(f"{method} {path}: {response.status_code}")
    for path in LISTS_AND_EXPORTS:
        response = client.get(path, headers=headers if path.startswith("/api/") else {})
        if response.status_code >= 500 or SECRET in response.get_data(as_text=True):
            leaks.append(f"GET {path}: {response.status_code} shows department A's data")
    assert not leaks, "\n".join(leaks)
    # Nothing of department A's changed.
    assert journey.request_state(ids["draft"]) == "draft"
    assert journey.request_state(ids["request"]) == "active"
    owner_actor = journey.actor("zhangwei")
    with journey.rt.db.unit_of_work() as uow:
        change = uow.session.scalar(select(QuotaChangeRequest).where(QuotaChangeRequest.id == ids["change"]))
        assert change is not None and change.state == "pending"
        snapshot = backups.get_server_snapshot(uow.session, owner_actor, ids["server_snapshot"])
        assert snapshot.state == backups.CopyState.READY and snapshot.restore_state is None
        listed = backups.list_server_snapshots(uow.session, owner_actor, ids["server"])
        assert [s.id for s in listed] == [ids["server_snapshot"]]
        volume_snapshot = backups.get_snapshot(uow.session, owner_actor, ids["volume_snapshot"])
        backup = backups.get_backup(uow.session, owner_actor, ids["backup"])
        assert (volume_snapshot.state, backup.state) == (backups.CopyState.READY, backups.CopyState.READY)
        rental = uow.session.get(LineRentalRequest, ids["rental"])
        assert rental is not None and rental.state == "draft"  # not submitted by another department
    _line_stays_department_as(journey, app, other, ids["line"])


def _line_stays_department_as(journey: Journey, app: Flask, other: str, line_id: int) -> None:
    """Another department cannot take department A's line over by its number, on the page or the API:
    a spreadsheet or a declaration naming it is refused and the line is as it was."""
    code = f"{SECRET}-L1"
    header = "code,department,carrier,line_type,bandwidth_mbps,a_site,a_city,b_site,b_city,monthly_rent,"
    header += "contract_start,contract_end"
    with journey.rt.db.unit_of_work() as uow:
        theirs = org.get_user_by_name(uow.session, other).department
        assert theirs is not None
        their_key = theirs.key
    csv_file = f"{header}\n{code},{their_key},telecom,mstp,1,x,石家庄市,y,石家庄市,1,2024-01-01,2025-01-01\n"
    client = logged_in(app, other)
    token = csrf_token(client.get("/portal/lines/import").get_data(as_text=True))
    upload = {"csrf_token": token, "lines_file": (io.BytesIO(csv_file.encode()), "l.csv")}
    assert client.post("/portal/lines/import", data=upload, content_type="multipart/form-data").status_code == 400
    body = {"filename": "l.csv", "content_base64": base64.b64encode(csv_file.encode()).decode()}
    headers = _bearer(journey, other)
    assert client.post("/api/v1/lines/import", headers=headers, json=body).status_code == 400
    with journey.rt.db.unit_of_work() as uow:
        line = uow.session.get(NetworkLine, line_id)
        assert line is not None and line.department.key == "prov-education" and line.bandwidth_mbps == 100


def _bearer(journey: Journey, username: str) -> dict[str, str]:
    with journey.rt.db.unit_of_work() as uow:
        user = org.get_user_by_name(uow.session, username)
        token = org.issue_token(
            uow.session, user, name="iso", expires_at=utcnow() + timedelta(days=1), actor=Actor.system("t")
        )
    return {"Authorization": f"Bearer {token.token}"}


def _department_a_rental(journey: Journey) -> int:
    """A renewal draft of one of prov-education's lines (its line's site and its purpose name SECRET)."""
    from cloudmgr.lines import services as lines
    from tests.lines.helpers import make_line

    owner = journey.actor("zhangwei")
    with journey.rt.db.unit_of_work() as uow:
        make_line(uow.session, f"{SECRET}-R1", a_site=f"{SECRET} site")
        wanted = lines.RentalInput(
            kind="renewal", line_code=f"{SECRET}-R1", monthly_rent="100", contract_end="2031-01-01", purpose=SECRET
        )
        return lines.create_rental(uow.session, owner, wanted, submit=False, entry_point="test").id


def test_table_keys_are_well_formed() -> None:
    for key, roles in ACCESS.items():
        assert re.fullmatch(r"[a-z_]+(\.[a-z_]+)?", key), key
        assert roles <= EVERYONE, key
