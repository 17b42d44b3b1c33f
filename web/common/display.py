"""How self-service numbers and messages are shown: money, resource amounts, the approval
chain, and the domain errors people must understand (quota exceeded …)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from flask import Flask, url_for
from flask_babel import gettext as _

from cloudmgr.errors import DomainError
from cloudmgr.firewall.errors import AdminNetworkUnset, RuleInvalid, RuleProblem, WorldOpenOnClosedZone
from cloudmgr.firewall.services import MAX_RULES, PORT_MAX, PORT_MIN, RemoteKind, RuleLine, rule_lines
from cloudmgr.quotas.errors import QuotaExceeded
from cloudmgr.quotas.resources import Resource
from cloudmgr.servicerequests.errors import ChoiceProblem, FieldProblem, RequestInvalid
from cloudmgr.servicerequests.models import ServiceRequest
from cloudmgr.servicerequests.states import RequestState
from web.common.labels import gb, resource_label, zone_label


def money(value: Decimal | int | float | None) -> str:
    """``¥1,234.50``."""
    if value is None:
        return "—"
    return f"¥{Decimal(value):,.2f}"


def amount(value: int | None, resource: Resource | str) -> str:
    """A ledger amount as people read it (RAM in GB, the rest as is)."""
    if value is None:
        return "—"
    if str(getattr(resource, "value", resource)) == Resource.RAM_MB.value:
        return gb(value)
    return str(value)


def percent(ratio: float) -> int:
    """0.0-1.0+ -> 0-100, rounded, capped (for the bar classes)."""
    return max(0, min(100, round(ratio * 100)))


def bar_step(ratio: float) -> int:
    """The bar width class step (0, 5, … 100)."""
    return max(0, min(100, int(5 * round(ratio * 100 / 5))))


@dataclass(frozen=True)
class ChainStep:
    role: str
    status: str  # approved | rejected | waiting | later | skipped
    actor: str | None = None
    at: datetime | None = None
    reason: str | None = None


def chain_view(request: ServiceRequest) -> list[ChainStep]:
    """The approval chain of a request, each step with who decided it and when."""
    decisions = [e for e in request.events if e.action in {"approve", "reject"} and e.step]
    steps: list[ChainStep] = []
    for index, role in enumerate(request.approval_steps or []):
        if index < len(decisions):
            event = decisions[index]
            status = "approved" if event.action == "approve" else "rejected"
            steps.append(ChainStep(role, status, event.actor, event.at, event.reason))
        elif request.state == RequestState.SUBMITTED.value and index == request.current_step:
            steps.append(ChainStep(role, "waiting"))
        elif request.state in {RequestState.SUBMITTED.value}:
            steps.append(ChainStep(role, "later"))
        else:
            steps.append(ChainStep(role, "skipped"))
    return steps


def quota_exceeded_text(exc: QuotaExceeded) -> str:
    """The refusal in the reader's language, followed by the ledger's own words."""
    resource = exc.resource
    text: str = _(
        "Not enough quota for %(resource)s: limit %(limit)s, %(free)s free, %(asked)s requested. (%(detail)s)",
        resource=resource_label(resource),
        limit=amount(exc.limit, resource),
        free=amount(exc.free, resource),
        asked=amount(exc.asked, resource),
        detail=exc.message,
    )
    return text


def _choice_problem_text(problem: FieldProblem) -> str:
    params = {**problem.params}
    if "zone" in params:
        params["zone"] = zone_label(params["zone"])
    code = problem.code
    text: str
    if code is ChoiceProblem.DISK_SIZE:
        text = _("Data disk %(number)s: the size is a whole number of GB from 1 to %(max_gb)s.", **params)
    elif code is ChoiceProblem.TOO_MANY_DISKS:
        text = _("At most %(max_disks)s data disks per server.", **params)
    elif code is ChoiceProblem.DISK_TYPE:
        text = _("Data disk %(number)s: choose a volume type offered on this cloud.", **params)
    elif code is ChoiceProblem.USER_DATA_TOO_LONG:
        text = _("User data: at most %(max_kib)s KiB (UTF-8).", **params)
    elif code is ChoiceProblem.USER_DATA_NUL:
        text = _("User data must not contain NUL characters.")
    elif code is ChoiceProblem.SSH_KEY_NOT_FOUND:
        text = _("SSH key: choose one of your own keys added in this department.")
    elif code is ChoiceProblem.ADDRESS_ZONE:
        text = _("A public address is only given in the internet zone, not in the %(zone)s zone.", **params)
    elif code is ChoiceProblem.VOLUMES_CHOICE:
        text = _("Data volumes: the server has %(count)s; choose whether they are kept or deleted with it.", **params)
    elif code is ChoiceProblem.FIREWALL_TEMPLATE:
        text = _("Firewall: choose templates from the list.")
    else:
        text = _("This cloud offers no public addresses.")
    return text


def rule_problem_text(exc: RuleInvalid) -> str:
    """A refused firewall rule in the reader's language, naming the rule by its number (English
    in the API: ``exc.message``, naming the field)."""
    problem = exc.problem
    text: str
    if problem is RuleProblem.LINE_SHAPE:
        text = _("Write a rule as: direction protocol [port or from-to] remote, e.g. ingress tcp 443 0.0.0.0/0.")
    elif problem is RuleProblem.DIRECTION_UNKNOWN:
        text = _("The direction must be ingress or egress.")
    elif problem is RuleProblem.PROTOCOL_UNKNOWN:
        text = _("The protocol must be tcp, udp, icmp or any.")
    elif problem is RuleProblem.PORT_NOT_A_NUMBER:
        text = _("The port must be a whole number.")
    elif problem is RuleProblem.PORT_OUT_OF_RANGE:
        text = _("%(value)s is not a port: ports are %(min)d to %(max)d.", value=exc.value, min=PORT_MIN, max=PORT_MAX)
    elif problem is RuleProblem.PORT_ORDER:
        text = _("The port range %(value)s ends before it starts.", value=exc.value)
    elif problem is RuleProblem.PORTS_REQUIRED:
        text = _("tcp and udp rules need a port or a port range.")
    elif problem is RuleProblem.PORTS_NOT_ALLOWED:
        text = _("icmp and any rules have no ports: leave the port out.")
    elif problem is RuleProblem.REMOTE_MISSING:
        text = _("Give the remote: a CIDR, department_admin_network or department_only.")
    elif problem is RuleProblem.CIDR_HOST_BITS:
        text = _(
            "%(value)s has host bits set: write the network address (e.g. 10.20.0.0/16), or /32 for one address.",
            value=exc.value,
        )
    elif problem is RuleProblem.CIDR_INVALID:
        text = _("%(value)s is not an IPv4 or IPv6 network (e.g. 10.20.0.0/16 or 2001:db8::/32).", value=exc.value)
    elif problem is RuleProblem.TOO_MANY_RULES:
        text = _("At most %(max)d rules.", max=MAX_RULES)
    elif problem is RuleProblem.DUPLICATE_RULE:
        text = _("The same rule is listed twice.")
    else:
        text = _("Each rule is an object with direction, protocol, port_min, port_max and remote.")
    if exc.rule_index is None:
        return text
    numbered: str = _("Rule %(number)d: %(problem)s", number=exc.rule_index + 1, problem=text)
    return numbered


def rule_text(line: RuleLine) -> str:
    """One firewall rule line: ``ingress tcp 80 any address (IPv4+IPv6)``.  A rule Neutron keeps
    once per address family (0.0.0.0/0 and ::/0, or a group) is one line saying both."""
    remote: str
    if line.any_address:
        remote = _("any address (IPv4+IPv6)")
    elif line.kind is RemoteKind.GROUP:
        if line.both_families:
            remote = _("group %(name)s (IPv4+IPv6)", name=line.remote)
        else:
            remote = _("group %(name)s", name=line.remote)
    else:
        remote = line.remote
    return " ".join(part for part in (line.direction.value, line.protocol.value, line.ports, remote) if part)


def firewall_refusal_text(exc: DomainError) -> str | None:
    """The firewall's refusals of a request in the reader's language (None: not one of them)."""
    text: str
    if isinstance(exc, RuleInvalid):
        text = _("Firewall: %(problem)s", problem=rule_problem_text(exc))
    elif isinstance(exc, WorldOpenOnClosedZone):
        text = _(
            "Firewall: the rule %(rule)s opens the servers to the whole internet, but the %(zone)s zone is a "
            "closed network. Name the networks that need access instead.",
            rule=exc.rule,
            zone=zone_label(exc.zone),
        )
    elif isinstance(exc, AdminNetworkUnset):
        text = _(
            "Firewall: your department has no admin network yet, so department_admin_network cannot be used. "
            "An administrator sets it."
        )
    else:
        return None
    return text


def refusal_text(exc: DomainError) -> str:
    if isinstance(exc, QuotaExceeded):
        return quota_exceeded_text(exc)
    firewall_text = firewall_refusal_text(exc)
    if firewall_text is not None:
        refused_rule: str = _("Refused: %(reason)s", reason=firewall_text)
        return refused_rule
    if isinstance(exc, RequestInvalid) and exc.problems:
        # The choices for a usable VM in the reader's language; the form's other problems
        # (checked again here, after the web form's own checks) as the service says them.
        reasons = [exc.other_problems] if exc.other_problems else []
        reasons += [_choice_problem_text(p) for p in exc.problems]
        refused: str = _("Refused: %(reason)s", reason=" ".join(reasons))
        return refused
    if exc.translatable is not None:
        from web.common.messages import render_message

        translated: str = _("Refused: %(reason)s", reason=render_message(exc.translatable))
        return translated
    text: str = _("Refused: %(reason)s", reason=exc.message)
    return text


def addresses_text(addresses: Mapping[str, Sequence[Any]] | None) -> str:
    if not addresses:
        return ""
    return "; ".join(f"{net}: {', '.join(str(a) for a in ips)}" for net, ips in sorted(addresses.items()))


_ID_PLACEHOLDER = 2147483647


class IdUrl:
    """``url_for(endpoint, <arg>=id)`` for many ids: built once, then filled in per row (a
    list page builds one link a row, and werkzeug's URL builder is most of a row's cost)."""

    def __init__(self, endpoint: str, arg: str) -> None:
        values: dict[str, Any] = {arg: _ID_PLACEHOLDER}
        self._prefix, _, self._suffix = url_for(endpoint, **values).rpartition(str(_ID_PLACEHOLDER))

    def __call__(self, item_id: int) -> str:
        return f"{self._prefix}{int(item_id)}{self._suffix}"


def init_app(app: Flask) -> None:
    from web.common.audit_labels import action_label, target_type_label
    from web.common.messages import (
        code_list,
        field_error_items,
        kept_text,
        move_text,
        render_message,
        wave_failure,
    )

    app.add_template_filter(render_message, "message")
    app.add_template_global(field_error_items, "field_error_items")
    app.add_template_global(wave_failure, "wave_failure")
    app.add_template_global(move_text, "move_text")
    app.add_template_global(kept_text, "kept_text")
    app.add_template_global(code_list, "code_list")
    app.add_template_global(action_label, "audit_action")
    app.add_template_global(target_type_label, "audit_target")
    app.add_template_global(IdUrl, "id_url")
    app.add_template_filter(money, "money")
    app.add_template_filter(gb, "gb")
    app.add_template_filter(amount, "amount")
    app.add_template_filter(percent, "percent")
    app.add_template_filter(bar_step, "bar_step")
    app.add_template_filter(addresses_text, "addresses")
    app.add_template_filter(rule_lines, "rule_lines")
    app.add_template_filter(rule_text, "rule_text")
