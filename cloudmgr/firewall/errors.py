"""Refusals of the firewall services.  Each names the field it is about (``field``, e.g.
``rules[2].port_max``) and the kind of problem (``problem``): the English message is what the API
answers, the pages show their translation of ``problem``."""

from __future__ import annotations

import enum
import re

from cloudmgr.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from cloudmgr.messages import N_, message


class RuleProblem(enum.StrEnum):
    """Why a rule (or a CIDR) is not acceptable."""

    NOT_AN_OBJECT = "not_an_object"
    LINE_SHAPE = "line_shape"
    UNKNOWN_FIELD = "unknown_field"
    DIRECTION_UNKNOWN = "direction_unknown"
    PROTOCOL_UNKNOWN = "protocol_unknown"
    PORT_NOT_A_NUMBER = "port_not_a_number"
    PORT_OUT_OF_RANGE = "port_out_of_range"
    PORT_ORDER = "port_order"
    PORTS_REQUIRED = "ports_required"
    PORTS_NOT_ALLOWED = "ports_not_allowed"
    REMOTE_MISSING = "remote_missing"
    CIDR_INVALID = "cidr_invalid"
    CIDR_HOST_BITS = "cidr_host_bits"
    TOO_MANY_RULES = "too_many_rules"
    DUPLICATE_RULE = "duplicate_rule"


# "rules[2].port_max", or with the list's own name in a larger form: "firewall_rules[2].port_max".
_RULE_INDEX = re.compile(r"^[a-z_]*rules\[(\d+)\]")


class RuleInvalid(ValidationFailed):
    """One rule (or the list of rules) is not acceptable; ``field`` says which part of which rule."""

    code = "firewall_rule_invalid"

    def __init__(self, field: str, problem: RuleProblem, message: str, *, value: str = "") -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.problem = problem
        index = _RULE_INDEX.match(field)
        # Which rule, counted from 0 as in the list (None: the list as a whole).
        self.rule_index = int(index.group(1)) if index else None
        # The offending value, cut short, for the translated message (never more than 64 characters).
        self.value = value[:64]


class TemplateProblem(enum.StrEnum):
    NAME_EMPTY = "name_empty"
    NAME_TOO_LONG = "name_too_long"
    NAME_SHAPE = "name_shape"
    NAME_TAKEN = "name_taken"
    DESCRIPTION_TOO_LONG = "description_too_long"
    NO_RULES = "no_rules"


class TemplateInvalid(ValidationFailed):
    code = "firewall_template_invalid"

    def __init__(self, field: str, problem: TemplateProblem, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.problem = problem


class TemplateNameTaken(Conflict):
    code = "firewall_template_name_taken"
    field = "name"
    problem = TemplateProblem.NAME_TAKEN


class TemplateNotFound(NotFound):
    code = "firewall_template_not_found"
    field = "template_ids"


class TemplateInUse(Conflict):
    """A template that requests name cannot be deleted: their rules would lose their source."""

    code = "firewall_template_in_use"
    field = "template_id"

    def __init__(self, name: str, requests: int) -> None:
        super().__init__(f"template_id: template {name!r} is used by {requests} request(s); it cannot be deleted")
        self.name = name
        self.requests = requests


class FirewallForbidden(PermissionDenied):
    code = "firewall_forbidden"
    field = "role"


class WorldOpenOnClosedZone(ValidationFailed):
    """A rule opens a port to the whole internet on a zone that is a closed network (the extranet):
    refused outright, no approval can allow it."""

    code = "firewall_world_open_closed_zone"
    field = "rules"

    def __init__(self, zone: str, rule: str) -> None:
        super().__init__(
            message(
                N_(
                    "rules: %(rule)s opens the server to the whole internet, but the %(zone)s zone is a closed "
                    "network; name the networks that need access instead"
                ),
                rule=rule,
                zone=zone,
            )
        )
        self.zone = zone
        self.rule = rule


class AdminNetworkUnset(ValidationFailed):
    """A rule names the department's admin network, which the department has not set."""

    code = "firewall_admin_network_unset"
    field = "rules"

    def __init__(self, department_key: str) -> None:
        super().__init__(
            message(
                N_(
                    "rules: department %(department)s has no admin network set; an administrator sets it "
                    "before department_admin_network can be used"
                ),
                department=department_key,
            )
        )
        self.department_key = department_key


class AdminNetworkInvalid(ValidationFailed):
    """The admin network given for a department is too wide to be one (a /0 is the internet)."""

    code = "firewall_admin_network_invalid"
    field = "admin_cidr"
    problem = "too_wide"
