"""Firewall templates, the approval rule per zone and the plan of a request's firewall, on both databases."""

from __future__ import annotations

import dataclasses

import pytest
from sqlalchemy import select

from cloudmgr.audit.models import AuditEvent
from cloudmgr.firewall import services as firewall
from cloudmgr.firewall.errors import (
    AdminNetworkInvalid,
    AdminNetworkUnset,
    FirewallForbidden,
    RuleInvalid,
    TemplateInUse,
    TemplateInvalid,
    TemplateNameTaken,
    TemplateNotFound,
    WorldOpenOnClosedZone,
)
from cloudmgr.firewall.models import RequestFirewallTemplate
from cloudmgr.firewall.rules import Direction, Protocol, RuleSpec, parse_rule_lines
from cloudmgr.firewall.services import ResolvedRule
from cloudmgr.organisation import services as org
from cloudmgr.organisation.actor import Actor
from cloudmgr.organisation.models import Cloud, Department, Role
from cloudmgr.runtime import Runtime
from cloudmgr.servicerequests.models import ServiceRequest
from cloudmgr.servicerequests.submission import create_request, submit_request
from tests.journey_fixtures import Journey

OPERATOR = Actor("operator", Role.OPERATOR)
ADMIN = Actor("admin", Role.ADMIN)


def _ingress(cidr: str, port: int = 443) -> ResolvedRule:
    ethertype = "IPv6" if ":" in cidr else "IPv4"
    return ResolvedRule(Direction.INGRESS, Protocol.TCP, port, port, ethertype, cidr, None, "web")


# --- the approval rule, per zone (no database) --------------------------------------------------


def test_world_open_ingress_on_the_internet_zone_needs_an_operator() -> None:
    reasons = firewall.needs_operator_approval("internet", [_ingress("0.0.0.0/0"), _ingress("::/0", 80)])
    assert len(reasons) == 2
    assert "0.0.0.0/0" in reasons[0] and "whole internet" in reasons[0] and "::/0" in reasons[1]
    # As wide as the world, spelled otherwise.
    assert firewall.needs_operator_approval("internet", [_ingress("0.0.0.0/1")])


def test_narrow_egress_and_group_rules_need_no_approval() -> None:
    egress = ResolvedRule(Direction.EGRESS, Protocol.ANY, None, None, "IPv4", "0.0.0.0/0", None, "x")
    group = ResolvedRule(Direction.INGRESS, Protocol.TCP, 5432, 5432, "IPv4", None, "cm-fw-x-members", "db")
    for zone in ("internet", "extranet"):
        assert firewall.needs_operator_approval(zone, [_ingress("203.0.113.0/24"), egress, group]) == []


def test_world_open_ingress_on_a_closed_zone_is_refused() -> None:
    with pytest.raises(WorldOpenOnClosedZone) as caught:
        firewall.needs_operator_approval("extranet", [_ingress("10.0.0.0/8"), _ingress("::/0")])
    assert caught.value.zone == "extranet" and "::/0" in caught.value.message
    assert caught.value.http_status == 400


def test_the_operator_step_is_added_once() -> None:
    assert firewall.with_operator_step(["dept_head"], ["open"]) == ["dept_head", "operator"]
    assert firewall.with_operator_step(["dept_head", "operator", "finance"], ["open"]) == [
        "dept_head",
        "operator",
        "finance",
    ]
    assert firewall.with_operator_step(["dept_head"], []) == ["dept_head"]


# --- templates --------------------------------------------------------------------------------


def test_standard_templates_are_seeded_once_and_audited(seeded: Runtime) -> None:
    with seeded.db.unit_of_work() as uow:
        assert firewall.seed_standard_templates(uow.session, OPERATOR) == ["web", "ssh-admin", "db-internal"]
        assert firewall.seed_standard_templates(uow.session, OPERATOR) == []
    with seeded.db.unit_of_work() as uow:
        templates = {t.name: t for t in firewall.list_templates(uow.session)}
        events = uow.session.scalars(select(AuditEvent).where(AuditEvent.action == "firewall_template.created")).all()
    assert [r.as_line() for r in templates["web"].rules] == [
        "ingress tcp 80 0.0.0.0/0",
        "ingress tcp 80 ::/0",
        "ingress tcp 443 0.0.0.0/0",
        "ingress tcp 443 ::/0",
    ]
    assert [r.as_line() for r in templates["ssh-admin"].rules] == ["ingress tcp 22 department_admin_network"]
    assert {r.remote for r in templates["db-internal"].rules} == {"department_only"}
    assert templates["web"].description("zh").startswith("网站") and templates["web"].description("en")
    assert sorted(e.detail["name"] for e in events) == ["db-internal", "ssh-admin", "web"]


def test_create_update_delete_with_audit(seeded: Runtime) -> None:
    rules = parse_rule_lines("ingress tcp 8443 10.0.0.0/8")
    with seeded.db.unit_of_work() as uow:
        created = firewall.create_template(
            uow.session, OPERATOR, name=" App ", description_zh="应用", description_en="App", rules=rules
        )
    assert created.name == "app"
    with seeded.db.unit_of_work() as uow:
        updated = firewall.update_template(
            uow.session,
            OPERATOR,
            created.id,
            name="app-tls",
            description_zh="应用",
            description_en="App",
            rules=parse_rule_lines("ingress tcp 8443-8444 10.0.0.0/8\ningress icmp department_only"),
        )
    assert updated.name == "app-tls" and len(updated.rules) == 2
    with seeded.db.unit_of_work() as uow:
        first = firewall.get_template(uow.session, created.id).rules[0]
        assert first.as_line() == "ingress tcp 8443-8444 10.0.0.0/8"
        firewall.delete_template(uow.session, OPERATOR, created.id)
    with seeded.db.unit_of_work() as uow:
        with pytest.raises(TemplateNotFound):
            firewall.get_template(uow.session, created.id)
        events = uow.session.scalars(
            select(AuditEvent).where(AuditEvent.action.like("firewall_template.%")).order_by(AuditEvent.id)
        ).all()
    assert [e.action for e in events] == [
        "firewall_template.created",
        "firewall_template.updated",
        "firewall_template.deleted",
    ]
    assert events[1].detail["rules_before"] == ["ingress tcp 8443 10.0.0.0/8"]
    assert events[1].detail["name_before"] == "app"


def test_only_operators_manage_templates(seeded: Runtime) -> None:
    rules = parse_rule_lines("ingress tcp 22 10.0.0.0/8")
    for role in (Role.DEPT_STAFF, Role.DEPT_HEAD, Role.FINANCE, Role.ADMIN):
        with seeded.db.unit_of_work() as uow, pytest.raises(FirewallForbidden):
            firewall.create_template(
                uow.session, Actor("x", role, 1), name="x", description_zh="", description_en="", rules=rules
            )


def test_bad_templates_are_refused(seeded: Runtime) -> None:
    rules = parse_rule_lines("ingress tcp 22 10.0.0.0/8")
    with seeded.db.unit_of_work() as uow:
        firewall.create_template(uow.session, OPERATOR, name="a", description_zh="", description_en="", rules=rules)
    for name in ("", "has space", "x" * 65):
        with seeded.db.unit_of_work() as uow, pytest.raises(TemplateInvalid):
            firewall.create_template(
                uow.session, OPERATOR, name=name, description_zh="", description_en="", rules=rules
            )
    with seeded.db.unit_of_work() as uow, pytest.raises(TemplateNameTaken):
        firewall.create_template(uow.session, OPERATOR, name="A", description_zh="", description_en="", rules=rules)
    with seeded.db.unit_of_work() as uow, pytest.raises(TemplateInvalid) as caught:
        firewall.create_template(uow.session, OPERATOR, name="b", description_zh="", description_en="", rules=[])
    assert caught.value.field == "rules"


def _draft(journey: Journey, zone: str) -> int:
    form = dataclasses.replace(journey.form(count=1), zone=zone)
    with journey.rt.db.unit_of_work() as uow:
        return create_request(uow.session, journey.staff, form, submit=False, settings=journey.rt.settings).id


def test_a_template_a_request_names_is_not_deleted(journey: Journey) -> None:
    seeded = journey.rt
    request_id = _draft(journey, "internet")
    with seeded.db.unit_of_work() as uow:
        firewall.seed_standard_templates(uow.session, OPERATOR)
        web = next(t for t in firewall.list_templates(uow.session) if t.name == "web")
        uow.session.add(RequestFirewallTemplate(request_id=request_id, template_id=web.id, position=0))
    with seeded.db.unit_of_work() as uow, pytest.raises(TemplateInUse) as caught:
        firewall.delete_template(uow.session, OPERATOR, web.id)
    assert caught.value.requests == 1 and caught.value.http_status == 409
    with seeded.db.unit_of_work() as uow:
        assert firewall.get_template(uow.session, web.id).requests_using == 1


# --- the department's admin network and the plan ------------------------------------------------


def _department(uow_session: object, key: str = "prov-education") -> Department:
    return org.get_department(uow_session, key)  # type: ignore[arg-type]


def test_admin_network_is_set_by_administrators_only(seeded: Runtime) -> None:
    with seeded.db.unit_of_work() as uow:
        assert firewall.set_admin_network(uow.session, ADMIN, "prov-education", " 10.8.0.0/24 ") == "10.8.0.0/24"
    with seeded.db.unit_of_work() as uow:
        assert _department(uow.session).admin_cidr == "10.8.0.0/24"
        for bad, error in (("10.8.0.1/24", RuleInvalid), ("0.0.0.0/0", AdminNetworkInvalid), ("x", RuleInvalid)):
            with pytest.raises(error):
                firewall.set_admin_network(uow.session, ADMIN, "prov-education", bad)
        with pytest.raises(FirewallForbidden):
            firewall.set_admin_network(uow.session, OPERATOR, "prov-education", "10.9.0.0/24")
    with seeded.db.unit_of_work() as uow:
        firewall.set_admin_network(uow.session, ADMIN, "prov-education", "")
        assert _department(uow.session).admin_cidr is None
        actions = uow.session.scalars(
            select(AuditEvent.action).where(AuditEvent.action == "department.admin_network_set")
        ).all()
    assert len(actions) == 2


def test_resolve_rules_with_the_department_admin_network(seeded: Runtime) -> None:
    with seeded.db.unit_of_work() as uow:
        firewall.seed_standard_templates(uow.session, OPERATOR)
        firewall.set_admin_network(uow.session, ADMIN, "prov-education", "2001:db8:8::/48")
    with seeded.db.unit_of_work() as uow:
        ids = {t.name: t.id for t in firewall.list_templates(uow.session)}
        department = _department(uow.session)
        own = [RuleSpec(Direction.INGRESS, Protocol.TCP, 22, 22, "department_admin_network")]  # also in ssh-admin
        plan = firewall.resolve_rules(
            uow.session, department, "extranet", [ids["ssh-admin"], ids["db-internal"], ids["ssh-admin"]], own
        )
        same = firewall.resolve_rules(uow.session, department, "extranet", [ids["db-internal"], ids["ssh-admin"]], [])
        other = firewall.resolve_rules(uow.session, _department(uow.session, "ts-hrss"), "extranet", [], [])
    ssh = [r for r in plan.rules if r.port_min == 22]
    assert len(ssh) == 1 and ssh[0].remote_cidr == "2001:db8:8::/48" and ssh[0].ethertype == "IPv6"
    assert ssh[0].source == "ssh-admin"
    db_rules = [r for r in plan.rules if r.port_min in (5432, 3306)]
    assert {(r.port_min, r.ethertype) for r in db_rules} == {(p, e) for p in (5432, 3306) for e in ("IPv4", "IPv6")}
    assert {r.remote_group for r in db_rules} == {"cm-fw-prov-education-members"}
    assert all(r.remote_cidr is None for r in db_rules)
    assert plan.department_group == "cm-fw-prov-education-members"
    assert plan.approval_reasons == ()
    # The group is named by its rules, in any order: the same rules find the same group.
    assert plan.group_name == same.group_name and plan.group_name.startswith("cm-fw-prov-education-")
    assert other.group_name != plan.group_name and other.rules == ()


def test_resolve_rules_refusals_and_reasons_per_zone(seeded: Runtime) -> None:
    with seeded.db.unit_of_work() as uow:
        firewall.seed_standard_templates(uow.session, OPERATOR)
    with seeded.db.unit_of_work() as uow:
        ids = {t.name: t.id for t in firewall.list_templates(uow.session)}
        department = _department(uow.session)
        with pytest.raises(AdminNetworkUnset) as unset:
            firewall.resolve_rules(uow.session, department, "internet", [ids["ssh-admin"]], [])
        assert "prov-education" in unset.value.message
        plan = firewall.resolve_rules(uow.session, department, "internet", [ids["web"]], [])
        assert len(plan.approval_reasons) == 4 and all("(web)" in reason for reason in plan.approval_reasons)
        with pytest.raises(WorldOpenOnClosedZone):
            firewall.resolve_rules(uow.session, department, "extranet", [ids["web"]], [])
        own = parse_rule_lines("ingress udp 53 0.0.0.0/0")
        with pytest.raises(WorldOpenOnClosedZone):
            firewall.resolve_rules(uow.session, department, "extranet", [], own)
        assert firewall.resolve_rules(uow.session, department, "internet", [], own).approval_reasons
        with pytest.raises(TemplateNotFound) as missing:
            firewall.resolve_rules(uow.session, department, "internet", [999999], [])
        assert missing.value.message.startswith("template_ids:")


@pytest.mark.parametrize(("templates", "zone", "steps"), [(["web"], "internet", ["dept_head", "operator"]),
                                                          (["db-internal"], "internet", ["dept_head"]),
                                                          ([], "extranet", ["dept_head"])])  # fmt: skip
def test_submission_adds_the_operator_step_for_a_world_open_rule(
    journey: Journey, templates: list[str], zone: str, steps: list[str]
) -> None:
    """A cloud whose policy leaves operators out still asks one when a port opens to the internet."""
    request_id = _draft(journey, zone)
    with journey.rt.db.unit_of_work() as uow:
        firewall.seed_standard_templates(uow.session, OPERATOR)
        cloud = uow.session.scalar(select(Cloud).where(Cloud.key == "education"))
        assert cloud is not None
        cloud.approval_policy = {"steps": ["dept_head"]}
    with journey.rt.db.unit_of_work() as uow:
        ids = {t.name: t.id for t in firewall.list_templates(uow.session)}
        plan = firewall.set_request_firewall(
            uow.session, request_id, _department(uow.session), zone, [ids[name] for name in templates], []
        )
        assert bool(plan.approval_reasons) == ("operator" in steps)
    with journey.rt.db.unit_of_work() as uow:
        submit_request(uow.session, journey.staff, request_id, settings=journey.rt.settings)
    with journey.rt.db.unit_of_work() as uow:
        request = uow.session.get(ServiceRequest, request_id)
        assert request is not None and request.approval_steps == steps
        again = firewall.request_plan(uow.session, request_id, _department(uow.session), zone)
        assert again.group_name == plan.group_name
