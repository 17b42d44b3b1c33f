"""The operators' firewall template pages and /api/v1/firewall: list, create, edit, delete if
unused; every bad rule explained under the rules naming the rule (issue 16)."""

from __future__ import annotations

import json
from datetime import timedelta

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from cloudmgr.audit.models import AuditEvent
from cloudmgr.db import utcnow
from cloudmgr.firewall import services as firewall
from cloudmgr.firewall.models import RequestFirewallTemplate
from cloudmgr.organisation import services as org
from cloudmgr.organisation.actor import Actor
from cloudmgr.organisation.models import Role
from cloudmgr.runtime import Runtime
from tests.web.helpers import Journey, csrf_token, logged_in
from web import create_app

OPERATOR = Actor("operator", Role.OPERATOR)


def _english(app: Flask, username: str) -> FlaskClient:
    client = logged_in(app, username)
    client.get("/language/en")
    return client


def _bearer(rt: Runtime, username: str) -> dict[str, str]:
    with rt.db.unit_of_work() as uow:
        user = org.get_user_by_name(uow.session, username)
        token = org.issue_token(
            uow.session, user, name="fw", expires_at=utcnow() + timedelta(days=1), actor=Actor.system("t")
        )
    return {"Authorization": f"Bearer {token.token}"}


def _seed(rt: Runtime) -> dict[str, int]:
    with rt.db.unit_of_work() as uow:
        firewall.seed_standard_templates(uow.session, OPERATOR)
        return {t.name: t.id for t in firewall.list_templates(uow.session)}


def _post(client: FlaskClient, path: str, **data: str) -> tuple[int, str]:
    token = csrf_token(client.get("/ops/firewall").get_data(as_text=True))
    response = client.post(path, data={"csrf_token": token, **data})
    return response.status_code, response.get_data(as_text=True)


def test_operators_list_create_edit_and_delete(app: Flask, seeded: Runtime) -> None:
    ids = _seed(seeded)
    client = _english(app, "operator")
    page = client.get("/ops/firewall").get_data(as_text=True)
    assert "Firewall templates" in page and 'href="/ops/firewall"' in page  # in the navigation
    assert "ingress tcp 22 department_admin_network" in page and "ssh-admin" in page
    status, _body = _post(
        client,
        "/ops/firewall",
        name="mail",
        description_zh="邮件",
        description_en="Mail",
        rules="ingress tcp 25 0.0.0.0/0\ningress tcp 587 department_only",
    )
    assert status == 302
    with seeded.db.unit_of_work() as uow:
        mail = next(t for t in firewall.list_templates(uow.session) if t.name == "mail")
    edit = client.get(f"/ops/firewall/{mail.id}").get_data(as_text=True)
    assert "ingress tcp 587 department_only" in edit
    status, _body = _post(
        client,
        f"/ops/firewall/{mail.id}",
        name="mail",
        description_zh="邮件",
        description_en="Mail",
        rules="ingress tcp 465 ::/0",
    )
    assert status == 302
    with seeded.db.unit_of_work() as uow:
        assert [r.as_line() for r in firewall.get_template(uow.session, mail.id).rules] == ["ingress tcp 465 ::/0"]
    status, _body = _post(client, f"/ops/firewall/{mail.id}/delete")
    assert status == 302
    with seeded.db.unit_of_work() as uow:
        assert "mail" not in {t.name for t in firewall.list_templates(uow.session)}
        actions = uow.session.scalars(
            select(AuditEvent.action).where(
                AuditEvent.target_type == "firewall_template", AuditEvent.target_id == str(mail.id)
            )
        ).all()
    assert sorted(actions) == ["firewall_template.created", "firewall_template.deleted", "firewall_template.updated"]
    assert ids["web"]


def test_bad_rules_on_the_page_name_the_rule(app: Flask, seeded: Runtime) -> None:
    client = _english(app, "operator")
    cases = {
        "ingress tcp 70000 10.0.0.0/8": "Rule 2: 70000 is not a port: ports are 1 to 65535.",
        "ingress tcp 0 10.0.0.0/8": "Rule 2: 0 is not a port: ports are 1 to 65535.",
        "ingress tcp 90-80 10.0.0.0/8": "Rule 2: The port range 90-80 ends before it starts.",
        "ingress tcp 80 10.0.0.0/33": "Rule 2: 10.0.0.0/33 is not an IPv4 or IPv6 network",
        "ingress tcp 80 10.0.0.1/8": "Rule 2: 10.0.0.1/8 has host bits set",
        "ingress gre 80 10.0.0.0/8": "Rule 2: The protocol must be tcp, udp, icmp or any.",
        "ingress icmp 8 10.0.0.0/8": "Rule 2: icmp and any rules have no ports: leave the port out.",
    }
    for line, message in cases.items():
        status, body = _post(client, "/ops/firewall", name="bad", rules=f"ingress tcp 22 10.0.0.0/8\n{line}")
        assert status == 400, line
        assert message in body.replace("&#39;", "'"), line
    status, body = _post(client, "/ops/firewall", name="Bad Name", rules="ingress tcp 22 10.0.0.0/8")
    assert status == 400 and "Lower-case letters, digits and" in body
    with seeded.db.unit_of_work() as uow:
        assert firewall.list_templates(uow.session) == []


def test_a_template_in_use_is_not_deleted_on_the_page(journey: Journey) -> None:
    ids = _seed(journey.rt)
    request_id = journey.submit(count=1, submit=False)
    with journey.rt.db.unit_of_work() as uow:
        uow.session.add(RequestFirewallTemplate(request_id=request_id, template_id=ids["web"], position=0))
    client = _english(create_app(runtime=journey.rt), "operator")
    page = client.get("/ops/firewall").get_data(as_text=True)
    assert f'action="/ops/firewall/{ids["web"]}/delete"' not in page
    status, _body = _post(client, f"/ops/firewall/{ids['web']}/delete")
    assert status == 302
    assert "cannot be deleted" in client.get("/ops/firewall").get_data(as_text=True)
    with journey.rt.db.unit_of_work() as uow:
        assert "web" in {t.name for t in firewall.list_templates(uow.session)}


def test_api_read_by_departments_written_by_operators(app: Flask, seeded: Runtime) -> None:
    ids = _seed(seeded)
    client = app.test_client()
    listed = client.get("/api/v1/firewall/templates", headers=_bearer(seeded, "zhangwei"))
    assert listed.status_code == 200
    names = [t["name"] for t in listed.get_json()["items"]]
    assert names == sorted(names) and {"web", "ssh-admin", "db-internal"} <= set(names)
    web = next(t for t in listed.get_json()["items"] if t["name"] == "web")
    assert web["rules"][0] == {
        "direction": "ingress",
        "protocol": "tcp",
        "port_min": 80,
        "port_max": 80,
        "remote": "0.0.0.0/0",
    }
    body = {
        "name": "api",
        "description_zh": "接口",
        "rules": [{"direction": "ingress", "protocol": "tcp", "port_min": 8443, "remote": "10.0.0.0/8"}],
    }
    refused = client.post("/api/v1/firewall/templates", headers=_bearer(seeded, "zhangwei"), json=body)
    assert refused.status_code == 403
    ops = _bearer(seeded, "operator")
    created = client.post("/api/v1/firewall/templates", headers=ops, json=body)
    assert created.status_code == 201 and created.get_json()["rules"][0]["port_max"] == 8443
    template_id = created.get_json()["id"]
    body["rules"] = [{"direction": "egress", "protocol": "icmp", "remote": "department_only"}]
    updated = client.put(f"/api/v1/firewall/templates/{template_id}", headers=ops, json=body)
    assert updated.status_code == 200 and updated.get_json()["rules"][0]["port_min"] is None
    taken = client.post("/api/v1/firewall/templates", headers=ops, json={**body, "name": "web"})
    assert taken.status_code == 409 and taken.get_json()["error"] == "firewall_template_name_taken"
    assert client.delete(f"/api/v1/firewall/templates/{template_id}", headers=ops).status_code == 204
    assert client.delete(f"/api/v1/firewall/templates/{template_id}", headers=ops).status_code == 404
    assert ids


def test_api_bad_rules_name_the_field(app: Flask, seeded: Runtime) -> None:
    client = app.test_client()
    ops = _bearer(seeded, "operator")
    good = {"direction": "ingress", "protocol": "tcp", "port_min": 22, "remote": "10.0.0.0/8"}
    cases = [
        ({"port_min": 70000}, "rules[1].port_min:"),
        ({"port_min": 0}, "rules[1].port_min:"),
        ({"port_min": 90, "port_max": 80}, "rules[1].port_max:"),
        ({"remote": "10.0.0.1/8"}, "rules[1].remote: '10.0.0.1/8' has host bits set"),
        ({"remote": "bogus"}, "rules[1].remote:"),
        ({"protocol": "gre"}, "rules[1].protocol:"),
        ({"protocol": "icmp"}, "rules[1].port_min:"),
    ]
    for change, start in cases:
        rules = [good, {**good, **change}]
        response = client.post(
            "/api/v1/firewall/templates",
            headers=ops,
            data=json.dumps({"name": "x", "rules": rules}),
            content_type="application/json",
        )
        assert response.status_code == 400, change
        answer = response.get_json()
        assert answer["error"] == "firewall_rule_invalid" and answer["message"].startswith(start), answer


def test_api_admin_network(app: Flask, seeded: Runtime) -> None:
    client = app.test_client()
    path = "/api/v1/departments/prov-education/admin-network"
    admin = _bearer(seeded, "admin")
    assert client.put(path, headers=admin, json={"admin_cidr": "10.8.0.0/24"}).get_json() == {
        "admin_cidr": "10.8.0.0/24"
    }
    assert client.put(path, headers=_bearer(seeded, "operator"), json={"admin_cidr": "10.9.0.0/24"}).status_code == 403
    wide = client.put(path, headers=admin, json={"admin_cidr": "0.0.0.0/0"})
    assert wide.status_code == 400 and wide.get_json()["error"] == "firewall_admin_network_invalid"
    assert (
        client.put("/api/v1/departments/nope/admin-network", headers=admin, json={"admin_cidr": None}).status_code
        == 404
    )
    with seeded.db.unit_of_work() as uow:
        assert org.get_department(uow.session, "prov-education").admin_cidr == "10.8.0.0/24"
