"""A request's firewall on the portal and the API (issue 16): templates as checkboxes (ids or names
in the API), rules of one's own, the operator's step in the preview and the quote, the refusal of a
bad rule naming the rule (in Chinese on the page) and the firewall on the request's page and JSON."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from cloudmgr.firewall import services as firewall
from cloudmgr.firewall.models import RequestFirewallRule
from cloudmgr.organisation.actor import Actor
from cloudmgr.organisation.models import Role
from cloudmgr.runtime import Runtime
from tests.web.helpers import Journey, logged_in, post_form
from tests.web.test_api_selfservice import Api, _body
from tests.web.test_portal_selfservice import NEW, _form, _request_count
from web import create_app

OPERATOR = Actor("operator", Role.OPERATOR)


@pytest.fixture
def app(journey_rt: Runtime) -> Flask:
    return create_app(runtime=journey_rt)


@pytest.fixture
def api(client: FlaskClient, journey_rt: Runtime) -> Any:
    return lambda username: Api(client, journey_rt, username)


def _templates(journey: Journey) -> dict[str, int]:
    with journey.rt.db.unit_of_work() as uow:
        firewall.seed_standard_templates(uow.session, OPERATOR)
    with journey.rt.db.unit_of_work() as uow:
        return {t.name: t.id for t in firewall.list_templates(uow.session)}


def _english(app: Flask, username: str) -> FlaskClient:
    client = logged_in(app, username)
    client.get("/language/en")
    return client


def _own_rule_rows(journey: Journey) -> int:
    with journey.rt.db.unit_of_work() as uow:
        return uow.session.scalar(select(func.count()).select_from(RequestFirewallRule)) or 0


def test_the_form_offers_the_templates_and_explains_the_default(app: Flask, journey: Journey) -> None:
    ids = _templates(journey)
    html = _english(app, "zhangwei").get(NEW).get_data(as_text=True)
    section = html[html.index('data-testid="firewall"') :]
    for name in ("web", "ssh-admin", "db-internal"):
        assert f'name="firewall_template_ids" value="{ids[name]}"' in section and name in section
    # A template's rules are shown with it, a port open to the whole internet on one line.
    assert "ingress tcp 80 any address (IPv4+IPv6)" in section and "ingress tcp 80 ::/0" not in section
    assert 'name="firewall_rules"' in section
    assert "they are put in the project’s default security group" in section


def test_a_submitted_request_shows_its_templates_rules_and_the_operators_reason(app: Flask, journey: Journey) -> None:
    ids = _templates(journey)
    client = _english(app, "zhangwei")
    choices = _form(
        journey,
        zone="internet",
        firewall_template_ids=[str(ids["web"]), str(ids["db-internal"])],
        firewall_rules="ingress tcp 8080 10.0.0.0/8\n# a comment\n",
    )
    preview = post_form(client, NEW, {**choices, "preview": "Preview"})
    assert preview.status_code == 200, preview.get_data(as_text=True)
    html = preview.get_data(as_text=True)
    assert 'data-testid="firewall-reason"' in html
    # The preview keeps the choice.
    assert f'value="{ids["web"]}" checked' in html and "ingress tcp 8080 10.0.0.0/8" in html
    response = post_form(client, NEW, {**choices, "submit": "Submit"})
    assert response.status_code == 302, response.get_data(as_text=True)
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    templates = page[page.index('data-testid="firewall-templates"') :]
    assert "web" in templates[: templates.index("</dd>")] and "db-internal" in templates[: templates.index("</dd>")]
    rules = page[page.index('data-testid="firewall-rules"') :]
    assert "ingress tcp 8080 10.0.0.0/8" in rules[: rules.index("</dd>")]
    reason = page[page.index('data-testid="firewall-reason"') :]
    assert "ingress tcp 80 any address (IPv4+IPv6)" in reason and "(web)" in reason


def test_a_bad_rule_is_refused_under_the_field_in_chinese_and_nothing_is_stored(app: Flask, journey: Journey) -> None:
    _templates(journey)
    client = logged_in(app, "zhangwei")  # Chinese, the default
    response = post_form(
        client,
        NEW,
        _form(journey, firewall_rules="ingress tcp 22 10.0.0.0/8\ningress tcp 70000 10.0.0.0/8", submit="提交"),
    )
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    error = html[html.index('id="firewall_rules-error"') :]
    error = error[: error.index("</p>")]
    assert "第 2 条规则：70000 不是有效端口：端口范围为 1 到 65535。" in error
    assert _request_count(journey) == 0 and _own_rule_rows(journey) == 0


def test_a_world_open_rule_on_the_extranet_is_refused_on_the_page(app: Flask, journey: Journey) -> None:
    ids = _templates(journey)
    client = _english(app, "zhangwei")
    response = post_form(client, NEW, _form(journey, firewall_template_ids=[str(ids["web"])], submit="Submit"))
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert "opens the servers to the whole internet, but the" in html and "is a closed network" in html
    assert _request_count(journey) == 0


def test_the_api_takes_templates_by_id_or_name_and_own_rules(api: Any, journey: Journey) -> None:
    ids = _templates(journey)
    staff = api("zhangwei")
    choices = {
        "zone": "internet",
        "firewall_template_ids": ["web", ids["db-internal"]],
        "firewall_rules": [{"direction": "ingress", "protocol": "tcp", "port_min": 8080, "remote": "10.0.0.0/8"}],
    }
    status, quoted = staff.post("/requests/quote", _body(journey, **choices))
    assert status == 200, quoted
    assert "operator" in quoted["approval_steps"] and quoted["firewall_reasons"]
    # web (4) + db-internal (4) + own (1) + the open egress (2), once for the request.
    assert quoted["needs"]["security_groups"] == 1 and quoted["needs"]["security_group_rules"] == 11
    status, created = staff.post("/requests", _body(journey, **choices, submit=True))
    assert status == 201, created
    assert created["approval_steps"] == quoted["approval_steps"]
    status, shown = staff.get(f"/requests/{created['id']}")
    assert status == 200
    chosen = shown["firewall"]
    assert [t["name"] for t in chosen["templates"]] == ["web", "db-internal"]
    assert chosen["rules"] == [
        {"direction": "ingress", "protocol": "tcp", "port_min": 8080, "port_max": 8080, "remote": "10.0.0.0/8"}
    ]
    assert len(chosen["approval_reasons"]) == 4 and chosen["problem"] is None
    assert chosen["group"].startswith("cm-fw-prov-education-")


def test_the_api_without_a_firewall_stores_none(api: Any, journey: Journey) -> None:
    status, created = api("zhangwei").post("/requests", _body(journey))
    assert status == 201, created
    chosen = created["firewall"]
    assert chosen["templates"] == [] and chosen["approval_reasons"] == []
    assert chosen["rules"] == []


@pytest.mark.parametrize(
    ("choices", "status", "named"),
    [
        ({"firewall_rules": [{"direction": "ingress", "protocol": "tcp", "port_min": 0, "remote": "10.0.0.0/8"}]},
         400, "firewall_rules[0].port_min"),
        ({"firewall_rules": [{"direction": "in", "protocol": "tcp", "port_min": 22, "remote": "10.0.0.0/8"}]},
         400, "firewall_rules[0].direction"),
        ({"firewall_rules": [{"direction": "ingress", "protocol": "tcp", "port_min": 22, "remote": "10.0.0.5/8"}]},
         400, "firewall_rules[0].remote"),
        ({"firewall_rules": "ingress tcp 22 10.0.0.0/8"}, 400, "firewall_rules"),
        ({"firewall_template_ids": ["no-such"]}, 400, "firewall_template_ids"),
        ({"firewall_template_ids": [True]}, 400, "firewall_template_ids"),
        ({"firewall_template_ids": ["web"]}, 400, "closed network"),  # the extranet
    ],
)  # fmt: skip
def test_bad_firewall_choices_are_400_naming_the_field(
    api: Any, journey: Journey, choices: dict[str, Any], status: int, named: str
) -> None:
    _templates(journey)
    staff = api("zhangwei")
    for path, extra in (("/requests/quote", {}), ("/requests", {"submit": True})):
        got, body = staff.post(path, _body(journey, **choices, **extra))
        assert got == status, body
        assert named in body["message"]
    assert _request_count(journey) == 0 and _own_rule_rows(journey) == 0
