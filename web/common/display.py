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
from cloudmgr.quotas.errors import QuotaExceeded
from cloudmgr.quotas.resources import Resource
from cloudmgr.servicerequests.errors import ChoiceProblem, FieldProblem, RequestInvalid
from cloudmgr.servicerequests.models import ServiceRequest
from cloudmgr.servicerequests.states import RequestState
from web.common.labels import resource_label, zone_label

MB_PER_GB = 1024


def money(value: Decimal | int | float | None) -> str:
    """``¥1,234.50``."""
    if value is None:
        return "—"
    return f"¥{Decimal(value):,.2f}"


def gb(mb: int | None) -> str:
    """Megabytes as gigabytes, without a needless ``.0``: 2048 -> ``2``, 512 -> ``0.5``."""
    if mb is None:
        return "—"
    value = Decimal(mb) / MB_PER_GB
    text = f"{value:.2f}".rstrip("0").rstrip(".")
    return text or "0"


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
    else:
        text = _("This cloud offers no public addresses.")
    return text


def refusal_text(exc: DomainError) -> str:
    if isinstance(exc, QuotaExceeded):
        return quota_exceeded_text(exc)
    if isinstance(exc, RequestInvalid) and exc.problems:
        # The choices for a usable VM in the reader's language; the form's other problems
        # (checked again here, after the web form's own checks) as the service says them.
        reasons = [exc.other_problems] if exc.other_problems else []
        reasons += [_choice_problem_text(p) for p in exc.problems]
        refused: str = _("Refused: %(reason)s", reason=" ".join(reasons))
        return refused
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
    app.add_template_global(IdUrl, "id_url")
    app.add_template_filter(money, "money")
    app.add_template_filter(gb, "gb")
    app.add_template_filter(amount, "amount")
    app.add_template_filter(percent, "percent")
    app.add_template_filter(bar_step, "bar_step")
    app.add_template_filter(addresses_text, "addresses")
