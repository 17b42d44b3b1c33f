"""Firewall templates (operators keep them), the departments' admin network (administrators set
it), and the plan of one request's security group.

The rules decided here, once:

* who manages templates (:func:`may_manage_templates`: operators) and who reads them (anyone
  logged in: the departments choose from them, finance and administrators read requests that
  name them);
* which rules need an operator's approval (:func:`needs_operator_approval`): an ingress rule open
  to the whole internet on the internet zone; on any other zone (the extranet, a closed network)
  such a rule is refused outright;
* what a request's rules become (:func:`resolve_rules`): templates first, then the department's
  own rules, symbolic remotes replaced by the department's admin network or its own group.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from cloudmgr.audit import services as audit
from cloudmgr.firewall.errors import (
    AdminNetworkInvalid,
    AdminNetworkUnset,
    FirewallForbidden,
    TemplateInUse,
    TemplateInvalid,
    TemplateNameTaken,
    TemplateNotFound,
    TemplateProblem,
    WorldOpenOnClosedZone,
)
from cloudmgr.firewall.lines import RemoteKind, RuleLine, resolved_lines, rule_lines, spec_lines
from cloudmgr.firewall.models import (
    FirewallTemplate,
    FirewallTemplateRule,
    RequestFirewallRule,
    RequestFirewallTemplate,
)
from cloudmgr.firewall.rules import (
    MAX_RULES,
    PORT_MAX,
    PORT_MIN,
    Direction,
    Protocol,
    RuleSpec,
    SymbolicRemote,
    is_world,
    parse_cidr,
    parse_rule_lines,
    parse_rules,
)
from cloudmgr.organisation.actor import Actor
from cloudmgr.organisation.errors import UnknownDepartment
from cloudmgr.organisation.models import Department, Role, ZoneKind

__all__ = [
    "DESCRIPTION_MAX",
    "MAX_RULES",
    "MEMBERS_ONLY_RULES",
    "NAME_MAX",
    "PORT_MAX",
    "PORT_MIN",
    "STANDARD_TEMPLATES",
    "Direction",
    "FirewallPlan",
    "Protocol",
    "RemoteKind",
    "RequestFirewall",
    "ResolvedRule",
    "RuleLine",
    "RuleSpec",
    "SymbolicRemote",
    "TemplateInfo",
    "create_template",
    "delete_template",
    "department_group_name",
    "get_template",
    "list_templates",
    "may_manage_templates",
    "may_set_admin_network",
    "needs_operator_approval",
    "parse_rule_lines",
    "parse_rules",
    "request_approval_reasons",
    "request_firewall",
    "request_plan",
    "resolve_rules",
    "resolved_lines",
    "rule_lines",
    "seed_standard_templates",
    "set_admin_network",
    "set_request_firewall",
    "spec_lines",
    "template_ids",
    "update_template",
    "with_operator_step",
]

NAME_MAX = 64
DESCRIPTION_MAX = 500
NAME_SHAPE = re.compile(r"^[a-z0-9][a-z0-9-]*$")
TARGET = "firewall_template"
OPERATOR_STEP = Role.OPERATOR.value
# The group names cloudmgr creates on Neutron start with this, so they are told from others.
GROUP_PREFIX = "cm-fw"


@dataclass(frozen=True)
class TemplateInfo:
    id: int
    name: str
    description_zh: str
    description_en: str
    rules: tuple[RuleSpec, ...]
    requests_using: int
    updated_at: datetime

    def description(self, locale: str) -> str:
        return self.description_en if locale == "en" else self.description_zh


@dataclass(frozen=True)
class ResolvedRule:
    """One concrete rule of a security group, as Neutron takes it: exactly one of ``remote_cidr``
    and ``remote_group`` (the name of a group cloudmgr keeps)."""

    direction: Direction
    protocol: Protocol
    port_min: int | None
    port_max: int | None
    ethertype: str  # "IPv4" or "IPv6"
    remote_cidr: str | None
    remote_group: str | None
    source: str  # the template's name, or "department" for the request's own rules

    def describe(self) -> str:
        ports = (
            ""
            if self.port_min is None
            else f" {self.port_min}" + ("" if self.port_min == self.port_max else f"-{self.port_max}")
        )
        remote = self.remote_cidr or f"group {self.remote_group}"
        towards = "from" if self.direction is Direction.INGRESS else "to"
        return f"{self.direction} {self.protocol}{ports} {towards} {remote}"


@dataclass(frozen=True)
class FirewallPlan:
    """What a request's servers get: one security group ``group_name`` with ``rules``, and
    membership of the department's group ``department_group`` (what "department_only" rules name).
    ``approval_reasons`` is not empty when an operator must approve the request."""

    group_name: str
    department_group: str
    rules: tuple[ResolvedRule, ...]
    approval_reasons: tuple[str, ...]

    @property
    def opens_egress(self) -> bool:
        """Whether the group gets the open egress rules (IPv4 and IPv6) provisioning adds when
        the plan has no egress rule of its own (cloudmgr.servicerequests.provisioning.security_rules)."""
        return bool(self.rules) and not any(rule.direction is Direction.EGRESS for rule in self.rules)

    @property
    def members_only(self) -> bool:
        """Whether this is the default plan (a request that chose no template and no rule): only
        the department's own servers reach these.  Its group is named by its rules, so it is one
        group per department project, shared by every such request."""
        return bool(self.rules) and all(
            rule.direction is Direction.INGRESS
            and rule.protocol is Protocol.ANY
            and rule.remote_group == self.department_group
            for rule in self.rules
        )

    @property
    def cloud_rule_count(self) -> int:
        """How many rules the request's group holds on the cloud: its own and the open egress."""
        return len(self.rules) + (2 if self.opens_egress else 0)

    @property
    def world_open(self) -> tuple[ResolvedRule, ...]:
        """The rules open to the whole internet (on the internet zone: why an operator approves)."""
        return tuple(rule for rule in self.rules if _is_world_ingress(rule))


@dataclass(frozen=True)
class TemplateRef:
    id: int
    name: str


@dataclass(frozen=True)
class RequestFirewall:
    """What a request asked for (its templates, by name, and its own rules) and what that plans
    to now; ``problem`` says why it does not plan (e.g. the admin network was cleared since)."""

    templates: tuple[TemplateRef, ...]
    own_rules: tuple[RuleSpec, ...]
    plan: FirewallPlan | None
    problem: str | None


# What a request that chooses no template and no rule gets: its servers reach each other and the
# department's other servers (like Neutron's "default" group, but the department's rather than
# the project's), and nothing else reaches them; egress stays open.
MEMBERS_ONLY_RULES: tuple[RuleSpec, ...] = (
    RuleSpec(Direction.INGRESS, Protocol.ANY, None, None, SymbolicRemote.DEPARTMENT_ONLY.value),
)


# --- who ---------------------------------------------------------------------------------------


def may_manage_templates(actor: Actor) -> bool:
    """Operators run the clouds' networks: they write the templates departments choose from."""
    return actor.role is Role.OPERATOR


def may_set_admin_network(actor: Actor) -> bool:
    return actor.role is Role.ADMIN


def _manager(actor: Actor) -> None:
    if not may_manage_templates(actor):
        raise FirewallForbidden("only operators manage firewall templates")


# --- templates ---------------------------------------------------------------------------------


def _clean_name(name: str) -> str:
    cleaned = name.strip().lower()
    if not cleaned:
        raise TemplateInvalid("name", TemplateProblem.NAME_EMPTY, "give the template a name")
    if len(cleaned) > NAME_MAX:
        raise TemplateInvalid("name", TemplateProblem.NAME_TOO_LONG, f"at most {NAME_MAX} characters")
    if not NAME_SHAPE.match(cleaned):
        raise TemplateInvalid(
            "name", TemplateProblem.NAME_SHAPE, "lower-case letters, digits and '-', starting with a letter or digit"
        )
    return cleaned


def _clean_description(text: str, field: str) -> str:
    cleaned = text.strip()
    if len(cleaned) > DESCRIPTION_MAX or not cleaned.replace("\n", " ").isprintable():
        raise TemplateInvalid(
            field, TemplateProblem.DESCRIPTION_TOO_LONG, f"at most {DESCRIPTION_MAX} characters, no control characters"
        )
    return cleaned


def _checked_rules(rules: Sequence[RuleSpec]) -> list[RuleSpec]:
    if not rules:
        raise TemplateInvalid("rules", TemplateProblem.NO_RULES, "a template has at least one rule")
    return list(rules)[:MAX_RULES]


def _usage(session: Session) -> dict[int, int]:
    rows = session.execute(
        select(RequestFirewallTemplate.template_id, func.count()).group_by(RequestFirewallTemplate.template_id)
    ).tuples()
    return dict(rows.all())


def _info(template: FirewallTemplate, using: int) -> TemplateInfo:
    return TemplateInfo(
        id=template.id,
        name=template.name,
        description_zh=template.description_zh,
        description_en=template.description_en,
        rules=tuple(rule.spec() for rule in template.rules),
        requests_using=using,
        updated_at=template.updated_at,
    )


def list_templates(session: Session) -> list[TemplateInfo]:
    """Every template, by name (anyone logged in reads them)."""
    usage = _usage(session)
    templates = session.scalars(
        select(FirewallTemplate).options(selectinload(FirewallTemplate.rules)).order_by(FirewallTemplate.name)
    )
    return [_info(t, usage.get(t.id, 0)) for t in templates]


def _template(session: Session, template_id: int, *, for_update: bool = False) -> FirewallTemplate:
    query = select(FirewallTemplate).where(FirewallTemplate.id == template_id)
    template = session.scalar(query.with_for_update() if for_update else query)
    if template is None:
        raise TemplateNotFound(f"template_id: no firewall template #{template_id}")
    return template


def get_template(session: Session, template_id: int) -> TemplateInfo:
    template = _template(session, template_id)
    return _info(template, _usage(session).get(template.id, 0))


def _rule_rows(rules: Sequence[RuleSpec]) -> list[FirewallTemplateRule]:
    return [
        FirewallTemplateRule(
            position=index,
            direction=rule.direction,
            protocol=rule.protocol,
            port_min=rule.port_min,
            port_max=rule.port_max,
            remote=rule.remote,
        )
        for index, rule in enumerate(rules)
    ]


def _name_taken(session: Session, name: str, other_than: int | None = None) -> bool:
    query = select(FirewallTemplate.id).where(FirewallTemplate.name == name)
    if other_than is not None:
        query = query.where(FirewallTemplate.id != other_than)
    return session.scalar(query) is not None


def _save(session: Session, template: FirewallTemplate) -> None:
    try:
        with session.begin_nested():  # the same name saved at the same moment by another operator
            session.add(template)
    except IntegrityError:
        raise TemplateNameTaken(f"name: a template named {template.name!r} exists already") from None


def create_template(
    session: Session,
    actor: Actor,
    *,
    name: str,
    description_zh: str,
    description_en: str,
    rules: Sequence[RuleSpec],
) -> TemplateInfo:
    _manager(actor)
    clean_name = _clean_name(name)
    if _name_taken(session, clean_name):
        raise TemplateNameTaken(f"name: a template named {clean_name!r} exists already")
    checked = _checked_rules(rules)
    template = FirewallTemplate(
        name=clean_name,
        description_zh=_clean_description(description_zh, "description_zh"),
        description_en=_clean_description(description_en, "description_en"),
        created_by=actor.username,
        rules=_rule_rows(checked),
    )
    _save(session, template)
    audit.record(
        session,
        actor=actor.username,
        action="firewall_template.created",
        target_type=TARGET,
        target_id=template.id,
        detail={"name": template.name, "rules": [rule.as_line() for rule in checked]},
    )
    return _info(template, 0)


def update_template(
    session: Session,
    actor: Actor,
    template_id: int,
    *,
    name: str,
    description_zh: str,
    description_en: str,
    rules: Sequence[RuleSpec],
) -> TemplateInfo:
    """Replace a template's name, descriptions and rules.  Requests already planned keep what they
    were approved with only until they are planned again: the audit keeps the rules before."""
    _manager(actor)
    template = _template(session, template_id, for_update=True)
    clean_name = _clean_name(name)
    if _name_taken(session, clean_name, other_than=template.id):
        raise TemplateNameTaken(f"name: a template named {clean_name!r} exists already")
    checked = _checked_rules(rules)
    before = [rule.spec().as_line() for rule in template.rules]
    before_name = template.name
    template.name = clean_name
    template.description_zh = _clean_description(description_zh, "description_zh")
    template.description_en = _clean_description(description_en, "description_en")
    template.rules.clear()
    session.flush()  # the old rows go before the new ones come (their positions repeat)
    template.rules.extend(_rule_rows(checked))
    _save(session, template)
    audit.record(
        session,
        actor=actor.username,
        action="firewall_template.updated",
        target_type=TARGET,
        target_id=template.id,
        detail={
            "name": template.name,
            "name_before": before_name,
            "rules": [rule.as_line() for rule in checked],
            "rules_before": before,
        },
    )
    return _info(template, _usage(session).get(template.id, 0))


def delete_template(session: Session, actor: Actor, template_id: int) -> None:
    """Delete a template no request names (one that is named is refused: the request's rules
    come from it)."""
    _manager(actor)
    template = _template(session, template_id, for_update=True)
    using = _usage(session).get(template.id, 0)
    if using:
        raise TemplateInUse(template.name, using)
    audit.record(
        session,
        actor=actor.username,
        action="firewall_template.deleted",
        target_type=TARGET,
        target_id=template.id,
        detail={"name": template.name, "rules": [rule.spec().as_line() for rule in template.rules]},
    )
    session.delete(template)


def _standard(direction: Direction, protocol: Protocol, port: int, remote: str) -> RuleSpec:
    return RuleSpec(direction, protocol, port, port, remote)


_IN, _TCP = Direction.INGRESS, Protocol.TCP
_ADMIN, _OWN = SymbolicRemote.DEPARTMENT_ADMIN_NETWORK.value, SymbolicRemote.DEPARTMENT_ONLY.value

# (name, Chinese description, English description, rules): what a new installation offers.
STANDARD_TEMPLATES: tuple[tuple[str, str, str, tuple[RuleSpec, ...]], ...] = (
    (
        "web",
        "网站：允许任何地址访问 HTTP (80) 和 HTTPS (443)",
        "Web site: HTTP (80) and HTTPS (443) from anywhere",
        tuple(_standard(_IN, _TCP, port, world) for port in (80, 443) for world in ("0.0.0.0/0", "::/0")),
    ),
    (
        "ssh-admin",
        "运维登录：仅允许本部门管理网段通过 SSH (22) 登录",
        "Administration: SSH (22) from the department's admin network only",
        (_standard(_IN, _TCP, 22, _ADMIN),),
    ),
    (
        "db-internal",
        "内部数据库：仅允许本部门的服务器访问 PostgreSQL (5432) 和 MySQL (3306)",
        "Internal database: PostgreSQL (5432) and MySQL (3306) from the department's own servers only",
        (_standard(_IN, _TCP, 5432, _OWN), _standard(_IN, _TCP, 3306, _OWN)),
    ),
)


def seed_standard_templates(session: Session, actor: Actor) -> list[str]:
    """Add the standard templates that do not exist yet (by name); returns the names added."""
    existing = set(session.scalars(select(FirewallTemplate.name)))
    added = []
    for name, description_zh, description_en, rules in STANDARD_TEMPLATES:
        if name not in existing:
            create_template(
                session, actor, name=name, description_zh=description_zh, description_en=description_en, rules=rules
            )
            added.append(name)
    return added


# --- the department's admin network ------------------------------------------------------------


def set_admin_network(session: Session, actor: Actor, department_key: str, cidr: str | None) -> str | None:
    """Set (or with None / "" clear) the network a department administers its servers from."""
    if not may_set_admin_network(actor):
        raise FirewallForbidden("only administrators set a department's admin network")
    department = session.scalar(select(Department).where(Department.key == department_key).with_for_update())
    if department is None:
        raise UnknownDepartment(f"no department {department_key!r}")
    value: str | None = None
    if cidr is not None and cidr.strip():
        network = parse_cidr(cidr, "admin_cidr")
        if is_world(network):
            raise AdminNetworkInvalid(f"admin_cidr: {network} is the internet at large, not an admin network")
        value = str(network)
    before = department.admin_cidr
    department.admin_cidr = value
    audit.record(
        session,
        actor=actor.username,
        action="department.admin_network_set",
        target_type="department",
        target_id=department.key,
        detail={"admin_cidr": value, "before": before},
    )
    return value


# --- the plan of a request's firewall ----------------------------------------------------------


def department_group_name(department: Department) -> str:
    """The security group every server of the department is in: what "department_only" allows."""
    return f"{GROUP_PREFIX}-{department.key}-members"


def needs_operator_approval(zone: str, rules: Sequence[ResolvedRule]) -> list[str]:
    """Why an operator must approve these rules on ``zone`` (empty: no need).

    An ingress rule from the whole internet (0.0.0.0/0, ::/0, or anything as wide: see
    :func:`cloudmgr.firewall.rules.is_world`) puts a port in front of every attacker: on the
    internet zone an operator approves it.  The other zones are closed networks with no route
    from the internet: such a rule there is a mistake, refused (:class:`WorldOpenOnClosedZone`).
    Egress rules are not asked about: the servers' answers go out either way.
    """
    reasons = []
    for rule in rules:
        if not _is_world_ingress(rule):
            continue
        if zone != ZoneKind.INTERNET.value:
            raise WorldOpenOnClosedZone(zone, rule.describe())
        reasons.append(f"{rule.describe()} ({rule.source}) opens the server to the whole internet")
    return reasons


def _is_world_ingress(rule: ResolvedRule) -> bool:
    if rule.direction is not Direction.INGRESS or rule.remote_cidr is None:
        return False
    return is_world(parse_cidr(rule.remote_cidr, "remote"))


def with_operator_step(steps: Sequence[str], reasons: Sequence[str]) -> list[str]:
    """The approval chain ``steps`` with the operator's step added when ``reasons`` says one is
    needed (a cloud's policy may leave operators out of ordinary requests)."""
    chain = list(steps)
    if reasons and OPERATOR_STEP not in chain:
        chain.append(OPERATOR_STEP)
    return chain


def _ethertype(cidr: str) -> str:
    return "IPv6" if ":" in cidr else "IPv4"


def _resolve(rule: RuleSpec, department: Department, source: str) -> list[ResolvedRule]:
    symbol = rule.symbolic_remote
    if symbol is SymbolicRemote.DEPARTMENT_ONLY:
        group = department_group_name(department)
        return [
            ResolvedRule(rule.direction, rule.protocol, rule.port_min, rule.port_max, ethertype, None, group, source)
            for ethertype in ("IPv4", "IPv6")
        ]
    if symbol is SymbolicRemote.DEPARTMENT_ADMIN_NETWORK:
        if not department.admin_cidr:
            raise AdminNetworkUnset(department.key)
        cidr = department.admin_cidr
    else:
        cidr = rule.remote
    return [
        ResolvedRule(rule.direction, rule.protocol, rule.port_min, rule.port_max, _ethertype(cidr), cidr, None, source)
    ]


def _group_name(department: Department, rules: Sequence[ResolvedRule]) -> str:
    """Named by the department and its rules: the same rules make the same group, so creating
    it again (a retried work item, a second request alike) finds the one made before."""
    canonical = "\n".join(
        sorted(
            f"{r.direction}|{r.protocol}|{r.port_min}|{r.port_max}|{r.ethertype}|{r.remote_cidr}|{r.remote_group}"
            for r in rules
        )
    )
    digest = hashlib.sha256(canonical.encode()).hexdigest()[:12]
    return f"{GROUP_PREFIX}-{department.key}-{digest}"


def _templates_by_id(session: Session, template_ids: Sequence[int]) -> list[FirewallTemplate]:
    wanted = list(dict.fromkeys(template_ids))
    found = {
        t.id: t
        for t in session.scalars(
            select(FirewallTemplate)
            .where(FirewallTemplate.id.in_(wanted))
            .options(selectinload(FirewallTemplate.rules))
        )
    }
    missing = [template_id for template_id in wanted if template_id not in found]
    if missing:
        raise TemplateNotFound(f"template_ids: no firewall template #{missing[0]}")
    return [found[template_id] for template_id in wanted]


def template_ids(session: Session, refs: Sequence[int | str], field: str = "template_ids") -> list[int]:
    """The ids of the templates ``refs`` names, each by its id or its name (the API takes either),
    in order, without repeats; an unknown one raises :class:`TemplateNotFound` naming it."""
    names = {ref.strip().lower() for ref in refs if isinstance(ref, str)}
    numbers = {ref for ref in refs if isinstance(ref, int)}
    found_by_name = dict(
        session.execute(select(FirewallTemplate.name, FirewallTemplate.id).where(FirewallTemplate.name.in_(names)))
        .tuples()
        .all()
    )
    found_ids = set(session.scalars(select(FirewallTemplate.id).where(FirewallTemplate.id.in_(numbers))))
    ids: list[int] = []
    for ref in refs:
        template_id = found_by_name.get(ref.strip().lower()) if isinstance(ref, str) else ref
        if template_id is None or (isinstance(ref, int) and ref not in found_ids):
            raise TemplateNotFound(f"{field}: no firewall template {str(ref)[:64]!r}")
        ids.append(template_id)
    return list(dict.fromkeys(ids))


def resolve_rules(
    session: Session,
    department: Department,
    zone: str,
    template_ids: Sequence[int],
    own_rules: Sequence[RuleSpec],
) -> FirewallPlan:
    """The security group a request of ``department`` on ``zone`` gets from the templates it
    chose and its own rules: remotes resolved, duplicates dropped, and why an operator must
    approve it.  Raises :class:`WorldOpenOnClosedZone` and :class:`AdminNetworkUnset`."""
    resolved: list[ResolvedRule] = []
    for template in _templates_by_id(session, template_ids):
        for row in template.rules:
            resolved.extend(_resolve(row.spec(), department, template.name))
    for spec in own_rules:
        resolved.extend(_resolve(spec, department, "department"))
    unique: dict[ResolvedRule, ResolvedRule] = {}
    for rule in resolved:  # the first source of a rule listed twice names it
        unique.setdefault(dataclasses.replace(rule, source=""), rule)
    rules = tuple(unique.values())
    reasons = needs_operator_approval(zone, rules)
    return FirewallPlan(
        group_name=_group_name(department, rules),
        department_group=department_group_name(department),
        rules=rules,
        approval_reasons=tuple(reasons),
    )


# --- a request's choice ------------------------------------------------------------------------


def set_request_firewall(
    session: Session,
    request_id: int,
    department: Department,
    zone: str,
    template_ids: Sequence[int],
    own_rules: Sequence[RuleSpec],
) -> FirewallPlan:
    """Keep the firewall a (draft) request asks for, after checking it resolves on its zone; the
    caller (the request service) has checked the actor may change the request."""
    plan = resolve_rules(session, department, zone, template_ids, own_rules)
    session.execute(delete(RequestFirewallTemplate).where(RequestFirewallTemplate.request_id == request_id))
    session.execute(delete(RequestFirewallRule).where(RequestFirewallRule.request_id == request_id))
    for index, template_id in enumerate(dict.fromkeys(template_ids)):
        session.add(RequestFirewallTemplate(request_id=request_id, template_id=template_id, position=index))
    for index, rule in enumerate(own_rules):
        session.add(
            RequestFirewallRule(
                request_id=request_id,
                position=index,
                direction=rule.direction,
                protocol=rule.protocol,
                port_min=rule.port_min,
                port_max=rule.port_max,
                remote=rule.remote,
            )
        )
    session.flush()
    return plan


def request_plan(session: Session, request_id: int, department: Department, zone: str) -> FirewallPlan:
    """The plan of the firewall a request asked for, as its rules and templates say now."""
    template_ids = list(
        session.scalars(
            select(RequestFirewallTemplate.template_id)
            .where(RequestFirewallTemplate.request_id == request_id)
            .order_by(RequestFirewallTemplate.position)
        )
    )
    own = [
        row.spec()
        for row in session.scalars(
            select(RequestFirewallRule)
            .where(RequestFirewallRule.request_id == request_id)
            .order_by(RequestFirewallRule.position)
        )
    ]
    return resolve_rules(session, department, zone, template_ids, own)


def request_approval_reasons(session: Session, request_id: int, department: Department, zone: str) -> list[str]:
    """Why an operator must approve the firewall of a request being submitted (empty: no need)."""
    return list(request_plan(session, request_id, department, zone).approval_reasons)


def request_firewall(session: Session, request_id: int, department: Department, zone: str) -> RequestFirewall:
    """What a request asked for and its plan now, for showing it (a plan that fails now, say
    because the department's admin network was cleared, is shown with its problem)."""
    templates = tuple(
        TemplateRef(template_id, name)
        for template_id, name in session.execute(
            select(FirewallTemplate.id, FirewallTemplate.name)
            .join(RequestFirewallTemplate, RequestFirewallTemplate.template_id == FirewallTemplate.id)
            .where(RequestFirewallTemplate.request_id == request_id)
            .order_by(RequestFirewallTemplate.position)
        ).tuples()
    )
    own = tuple(
        row.spec()
        for row in session.scalars(
            select(RequestFirewallRule)
            .where(RequestFirewallRule.request_id == request_id)
            .order_by(RequestFirewallRule.position)
        )
    )
    try:
        plan = resolve_rules(session, department, zone, [t.id for t in templates], own)
    except (AdminNetworkUnset, WorldOpenOnClosedZone) as exc:
        return RequestFirewall(templates, own, None, exc.message)
    return RequestFirewall(templates, own, plan, None)
