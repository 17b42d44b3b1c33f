"""The firewall a request asks for (issue 16): the quote and the submission agree on the approval
chain and on the quota the firewall holds; a world-open rule adds the operator on the internet zone
and is refused on the extranet; a refused rule or template stores nothing; no choice at all is the
members-only default.  On SQLite and PostgreSQL."""

from __future__ import annotations

import dataclasses

import pytest
from sqlalchemy import func, select

from cloudmgr.firewall import services as firewall
from cloudmgr.firewall.errors import AdminNetworkUnset, WorldOpenOnClosedZone
from cloudmgr.firewall.models import RequestFirewallRule, RequestFirewallTemplate
from cloudmgr.firewall.rules import parse_rule_lines
from cloudmgr.organisation.actor import Actor
from cloudmgr.organisation.models import Cloud, Department, Role
from cloudmgr.quotas import ledger
from cloudmgr.quotas.errors import QuotaExceeded
from cloudmgr.quotas.models import QuotaReservation
from cloudmgr.quotas.resources import Resource
from cloudmgr.servicerequests.errors import ChoiceProblem, RequestInvalid
from cloudmgr.servicerequests.models import ServiceRequest
from cloudmgr.servicerequests.quoting import Quote, RequestForm, quote
from cloudmgr.servicerequests.submission import create_request, submit_request
from tests.journey_fixtures import Journey

OPERATOR = Actor("operator", Role.OPERATOR)


def _templates(journey: Journey, *, dept_head_only: bool = True) -> dict[str, int]:
    """The standard templates, and a cloud whose policy leaves operators out (so only the
    firewall can bring them in)."""
    with journey.rt.db.unit_of_work() as uow:
        firewall.seed_standard_templates(uow.session, OPERATOR)
        if dept_head_only:
            cloud = uow.session.scalar(select(Cloud).where(Cloud.key == "education"))
            assert cloud is not None
            cloud.approval_policy = {"steps": ["dept_head"]}
    with journey.rt.db.unit_of_work() as uow:
        return {t.name: t.id for t in firewall.list_templates(uow.session)}


def _form(journey: Journey, zone: str, **changes: object) -> RequestForm:
    return dataclasses.replace(journey.form(count=2), zone=zone, **changes)  # type: ignore[arg-type]


def _quote_and_submit(journey: Journey, form: RequestForm) -> tuple[Quote, ServiceRequest]:
    with journey.rt.db.unit_of_work() as uow:
        quoted = quote(uow.session, journey.staff, form)
    with journey.rt.db.unit_of_work() as uow:
        request = create_request(uow.session, journey.staff, form, submit=True, settings=journey.rt.settings)
        uow.session.flush()
        uow.session.expunge(request)
    return quoted, request


def _stored_rows(journey: Journey) -> tuple[int, int, int]:
    with journey.rt.db.unit_of_work() as uow:
        return (
            uow.session.scalar(select(func.count()).select_from(ServiceRequest)) or 0,
            uow.session.scalar(select(func.count()).select_from(RequestFirewallTemplate)) or 0,
            uow.session.scalar(select(func.count()).select_from(RequestFirewallRule)) or 0,
        )


@pytest.mark.parametrize(
    ("templates", "rules", "steps"),
    [
        (["web"], "", ["dept_head", "operator"]),  # 80 and 443 from anywhere
        ([], "ingress tcp 8443 0.0.0.0/0", ["dept_head", "operator"]),
        (["db-internal"], "ingress tcp 8080 10.0.0.0/8", ["dept_head"]),
        ([], "", ["dept_head"]),  # members-only
    ],
)
def test_quote_and_submission_agree_on_the_chain_on_the_internet_zone(
    journey: Journey, templates: list[str], rules: str, steps: list[str]
) -> None:
    ids = _templates(journey)
    form = _form(
        journey,
        "internet",
        firewall_templates=tuple(ids[name] for name in templates),
        firewall_rules=tuple(parse_rule_lines(rules)),
    )
    quoted, request = _quote_and_submit(journey, form)
    assert quoted.approval_steps == steps
    assert request.approval_steps == steps
    assert bool(quoted.firewall_reasons) == ("operator" in steps)
    assert all("whole internet" in reason for reason in quoted.firewall_reasons)


def test_templates_by_name_are_the_same_choice(journey: Journey) -> None:
    ids = _templates(journey)
    by_name = _form(journey, "internet", firewall_templates=("WEB", "ssh-admin"))
    with journey.rt.db.unit_of_work() as uow:
        firewall.set_admin_network(uow.session, Actor("admin", Role.ADMIN), "prov-education", "10.9.0.0/16")
    _, request = _quote_and_submit(journey, by_name)
    with journey.rt.db.unit_of_work() as uow:
        department = uow.session.get_one(Department, request.department_id)
        chosen = firewall.request_firewall(uow.session, request.id, department, "internet")
    assert [t.id for t in chosen.templates] == [ids["web"], ids["ssh-admin"]] and chosen.own_rules == ()
    assert chosen.plan is not None and len(chosen.plan.world_open) == 4


def test_a_world_open_rule_on_the_extranet_is_refused_at_quote_and_at_submission(journey: Journey) -> None:
    ids = _templates(journey)
    before = _stored_rows(journey)
    for form in (
        _form(journey, "extranet", firewall_templates=(ids["web"],)),
        _form(journey, "extranet", firewall_rules=tuple(parse_rule_lines("ingress udp 53 0.0.0.0/0"))),
    ):
        with pytest.raises(WorldOpenOnClosedZone), journey.rt.db.unit_of_work() as uow:
            quote(uow.session, journey.staff, form)
        with pytest.raises(WorldOpenOnClosedZone), journey.rt.db.unit_of_work() as uow:
            create_request(uow.session, journey.staff, form, submit=True, settings=journey.rt.settings)
    assert _stored_rows(journey) == before
    # A draft whose template became world-open after it was saved is refused when submitted.
    with journey.rt.db.unit_of_work() as uow:
        draft = create_request(
            uow.session,
            journey.staff,
            _form(journey, "extranet", firewall_templates=(ids["db-internal"],)),
            submit=False,
            settings=journey.rt.settings,
        )
        draft_id = draft.id
    with journey.rt.db.unit_of_work() as uow:
        template = firewall.get_template(uow.session, ids["db-internal"])
        firewall.update_template(
            uow.session,
            OPERATOR,
            template.id,
            name=template.name,
            description_zh=template.description_zh,
            description_en=template.description_en,
            rules=parse_rule_lines("ingress tcp 5432 0.0.0.0/0"),
        )
    with pytest.raises(WorldOpenOnClosedZone), journey.rt.db.unit_of_work() as uow:
        submit_request(uow.session, journey.staff, draft_id, settings=journey.rt.settings)
    with journey.rt.db.unit_of_work() as uow:
        assert uow.session.get_one(ServiceRequest, draft_id).state == "draft"


def test_an_unknown_template_or_unset_admin_network_is_refused_and_nothing_is_stored(journey: Journey) -> None:
    ids = _templates(journey)
    before = _stored_rows(journey)
    for ref in (999999, "no-such-template"):
        form = _form(journey, "internet", firewall_templates=(ids["web"], ref))
        with pytest.raises(RequestInvalid) as refused, journey.rt.db.unit_of_work() as uow:
            create_request(uow.session, journey.staff, form, submit=False, settings=journey.rt.settings)
        assert [(p.field, p.code) for p in refused.value.problems] == [
            ("firewall_template_ids", ChoiceProblem.FIREWALL_TEMPLATE)
        ]
        assert str(ref) in refused.value.message
    with pytest.raises(AdminNetworkUnset), journey.rt.db.unit_of_work() as uow:
        quote(uow.session, journey.staff, _form(journey, "internet", firewall_templates=(ids["ssh-admin"],)))
    assert _stored_rows(journey) == before


def test_no_choice_stores_no_firewall(journey: Journey) -> None:
    # A request that chose no template and no rule boots in the project's default group, as
    # before firewalls: a members-only default group shared by concurrent provisioning runs
    # failed the lab's fifty-approvals race (tests/production/test_quota_race.py).
    _templates(journey)
    _, request = _quote_and_submit(journey, _form(journey, "extranet"))
    with journey.rt.db.unit_of_work() as uow:
        department = uow.session.get_one(Department, request.department_id)
        chosen = firewall.request_firewall(uow.session, request.id, department, "extranet")
    assert chosen.templates == () and chosen.own_rules == ()
    assert chosen.plan is None or chosen.plan.rules == ()


def test_the_quota_holds_the_firewall_once_per_request_as_quoted(journey: Journey) -> None:
    ids = _templates(journey)
    # web: 4 ingress rules (80, 443 on IPv4 and IPv6); own: one more; no egress: the open egress (2).
    form = _form(
        journey,
        "internet",
        firewall_templates=(ids["web"],),
        firewall_rules=tuple(parse_rule_lines("ingress tcp 8080 10.0.0.0/8")),
    )
    quoted, request = _quote_and_submit(journey, form)
    assert quoted.needs[Resource.SECURITY_GROUPS] == 1
    assert quoted.needs[Resource.SECURITY_GROUP_RULES] == 4 + 1 + 2
    assert quoted.needs[Resource.INSTANCES] == 2
    with journey.rt.db.unit_of_work() as uow:
        stored = uow.session.get_one(ServiceRequest, request.id)
        by_index = {s.index: uow.session.get_one(QuotaReservation, s.reservation_id).amounts for s in stored.servers}
    # The first server carries the request's group; the second only itself.
    assert by_index[1]["security_groups"] == 1 and by_index[1]["security_group_rules"] == 7
    assert "security_groups" not in by_index[2] and "security_group_rules" not in by_index[2]
    reserved: dict[str, int] = {}
    for amounts in by_index.values():
        for resource, n in amounts.items():
            reserved[resource] = reserved.get(resource, 0) + n
    assert reserved == {r.value: n for r, n in quoted.needs.items()}


def test_a_firewall_that_does_not_fit_the_quota_is_refused_at_submission(journey: Journey) -> None:
    ids = _templates(journey)
    with journey.rt.db.unit_of_work() as uow:
        cloud_id = uow.session.scalar(select(Cloud.id).where(Cloud.key == "education"))
        assert cloud_id is not None and journey.staff.department_id is not None
        rows = ledger.ensure_rows(uow.session, journey.staff.department_id, cloud_id)
        rows[Resource.SECURITY_GROUP_RULES].limit = rows[Resource.SECURITY_GROUP_RULES].used + 6
    form = _form(
        journey,
        "internet",
        firewall_templates=(ids["web"],),
        firewall_rules=tuple(parse_rule_lines("ingress tcp 8080 10.0.0.0/8")),
    )
    with journey.rt.db.unit_of_work() as uow:
        quoted = quote(uow.session, journey.staff, form)
    assert not quoted.fits
    with pytest.raises(QuotaExceeded) as refused, journey.rt.db.unit_of_work() as uow:
        create_request(uow.session, journey.staff, form, submit=True, settings=journey.rt.settings)
    assert refused.value.resource == "security_group_rules" and refused.value.asked == 7
