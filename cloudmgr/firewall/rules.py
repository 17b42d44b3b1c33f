"""The shape of one firewall rule, and its parsing from JSON (the API) and from text lines (the
operators' page).  Parsing only: which rules a zone allows is the services' to decide.

A rule is a direction (ingress/egress), a protocol (tcp/udp/icmp/any), a port range (1–65535,
required for tcp and udp, refused for icmp and any: Neutron has no ports for them) and a remote:
a network (IPv4 or IPv6 CIDR, host bits not allowed: ``10.0.0.5/24`` is a typo for one of two
things) or a symbolic remote that :func:`cloudmgr.firewall.services.resolve_rules` replaces with
the department's own values.

The text form, one rule a line::

    ingress tcp 443 0.0.0.0/0
    ingress tcp 8000-8080 10.20.0.0/16
    ingress icmp department_only
"""

from __future__ import annotations

import enum
import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from cloudmgr.firewall.errors import RuleInvalid, RuleProblem

PORT_MIN = 1
PORT_MAX = 65535
MAX_RULES = 50
# The longest text a remote may be: an IPv6 CIDR in full is 43 characters.
REMOTE_MAX = 64
# A network at least this wide is "the internet at large", not somebody's network: the largest
# block ever given to one holder is an IPv4 /8, and the regional registries hold IPv6 /12s.
# 0.0.0.0/0 and ::/0 are the usual spellings; 0.0.0.0/1 + 128.0.0.0/1 must not slip past.
WORLD_PREFIX_V4 = 8
WORLD_PREFIX_V6 = 12

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class Direction(enum.StrEnum):
    INGRESS = "ingress"
    EGRESS = "egress"


class Protocol(enum.StrEnum):
    TCP = "tcp"
    UDP = "udp"
    ICMP = "icmp"
    ANY = "any"

    @property
    def has_ports(self) -> bool:
        return self in {Protocol.TCP, Protocol.UDP}


class SymbolicRemote(enum.StrEnum):
    """A remote named by what it is, resolved per department when a request is planned."""

    # The department's admin network (Department.admin_cidr), set by an administrator.
    DEPARTMENT_ADMIN_NETWORK = "department_admin_network"
    # The department's own servers: its security group on the cloud, whatever their addresses.
    DEPARTMENT_ONLY = "department_only"


@dataclass(frozen=True)
class RuleSpec:
    """One rule as an operator or a department wrote it: ``remote`` is a canonical CIDR
    (``str(ipaddress.ip_network(...))``) or a :class:`SymbolicRemote` value."""

    direction: Direction
    protocol: Protocol
    port_min: int | None
    port_max: int | None
    remote: str

    @property
    def symbolic_remote(self) -> SymbolicRemote | None:
        try:
            return SymbolicRemote(self.remote)
        except ValueError:
            return None

    @property
    def ports(self) -> str:
        if self.port_min is None:
            return "-"
        return str(self.port_min) if self.port_min == self.port_max else f"{self.port_min}-{self.port_max}"

    def as_line(self) -> str:
        """The rule in the text form :func:`parse_rule_lines` reads."""
        if self.port_min is None:
            return f"{self.direction} {self.protocol} {self.remote}"
        return f"{self.direction} {self.protocol} {self.ports} {self.remote}"

    def as_json(self) -> dict[str, object]:
        return {
            "direction": self.direction.value,
            "protocol": self.protocol.value,
            "port_min": self.port_min,
            "port_max": self.port_max,
            "remote": self.remote,
        }


def is_world(network: Network) -> bool:
    """Whether ``network`` is (or covers) the internet at large rather than someone's network."""
    wide = WORLD_PREFIX_V4 if network.version == 4 else WORLD_PREFIX_V6
    return network.prefixlen < wide


def parse_cidr(text: str, field: str) -> Network:
    """``text`` as a network; a CIDR with host bits set is refused (which of two did they mean?)."""
    cleaned = text.strip()
    if not cleaned or len(cleaned) > REMOTE_MAX:
        raise RuleInvalid(field, RuleProblem.CIDR_INVALID, f"{cleaned[:REMOTE_MAX]!r} is not a CIDR", value=cleaned)
    try:
        return ipaddress.ip_network(cleaned, strict=True)
    except ValueError:
        pass
    try:
        loose = ipaddress.ip_network(cleaned, strict=False)
    except ValueError:
        raise RuleInvalid(
            field,
            RuleProblem.CIDR_INVALID,
            f"{cleaned!r} is not an IPv4 or IPv6 network (e.g. 10.20.0.0/16 or 2001:db8::/32)",
            value=cleaned,
        ) from None
    address = ipaddress.ip_interface(cleaned).ip
    raise RuleInvalid(
        field,
        RuleProblem.CIDR_HOST_BITS,
        f"{cleaned!r} has host bits set: the network is {loose}, or write the single address as "
        f"{address}/{loose.max_prefixlen}",
        value=cleaned,
    )


def _direction(value: object, field: str) -> Direction:
    try:
        return Direction(str(value).strip().lower())
    except ValueError:
        raise RuleInvalid(field, RuleProblem.DIRECTION_UNKNOWN, "must be ingress or egress", value=str(value)) from None


def _protocol(value: object, field: str) -> Protocol:
    try:
        return Protocol(str(value).strip().lower())
    except ValueError:
        raise RuleInvalid(
            field, RuleProblem.PROTOCOL_UNKNOWN, "must be tcp, udp, icmp or any", value=str(value)
        ) from None


def _port(value: object, field: str) -> int:
    if isinstance(value, bool):
        raise RuleInvalid(field, RuleProblem.PORT_NOT_A_NUMBER, "must be a whole number", value=str(value))
    if isinstance(value, int):
        number = value
    elif isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        number = int(value.strip())
    else:
        raise RuleInvalid(field, RuleProblem.PORT_NOT_A_NUMBER, "must be a whole number", value=str(value))
    if not PORT_MIN <= number <= PORT_MAX:
        raise RuleInvalid(
            field,
            RuleProblem.PORT_OUT_OF_RANGE,
            f"{number} is not a port: ports are {PORT_MIN} to {PORT_MAX}",
            value=str(number),
        )
    return number


def _remote(value: object, field: str) -> str:
    if value is None or (isinstance(value, str) and not value.strip()):
        raise RuleInvalid(field, RuleProblem.REMOTE_MISSING, "give a CIDR, department_admin_network or department_only")
    if not isinstance(value, str):
        raise RuleInvalid(field, RuleProblem.CIDR_INVALID, "must be a string", value=str(value))
    cleaned = value.strip()
    if cleaned.lower() in set(SymbolicRemote):
        return cleaned.lower()
    return str(parse_cidr(cleaned, field))


def make_rule(
    prefix: str, direction: object, protocol: object, port_min: object, port_max: object, remote: object
) -> RuleSpec:
    """A rule from its parts, each checked; ``prefix`` (``rules[2]``) starts every field name."""
    checked_direction = _direction(direction, f"{prefix}.direction")
    checked_protocol = _protocol(protocol, f"{prefix}.protocol")
    low: int | None = None
    high: int | None = None
    if checked_protocol.has_ports:
        if port_min is None:
            raise RuleInvalid(
                f"{prefix}.port_min", RuleProblem.PORTS_REQUIRED, f"{checked_protocol} rules need a port or a range"
            )
        low = _port(port_min, f"{prefix}.port_min")
        high = low if port_max is None else _port(port_max, f"{prefix}.port_max")
        if low > high:
            raise RuleInvalid(
                f"{prefix}.port_max",
                RuleProblem.PORT_ORDER,
                f"the range {low}-{high} ends before it starts",
                value=f"{low}-{high}",
            )
    elif port_min is not None or port_max is not None:
        field = f"{prefix}.port_min" if port_min is not None else f"{prefix}.port_max"
        raise RuleInvalid(
            field,
            RuleProblem.PORTS_NOT_ALLOWED,
            f"{checked_protocol} rules have no ports; leave the ports out",
            value=str(checked_protocol),
        )
    return RuleSpec(checked_direction, checked_protocol, low, high, _remote(remote, f"{prefix}.remote"))


RULE_FIELDS = frozenset({"direction", "protocol", "port_min", "port_max", "remote"})


def parse_rule(raw: object, index: int, field: str = "rules") -> RuleSpec:
    """One rule from its JSON object (the API): ``direction``, ``protocol``, ``port_min``,
    ``port_max`` (defaults to ``port_min``), ``remote``; ``field`` names the list it is in."""
    prefix = f"{field}[{index}]"
    if not isinstance(raw, Mapping):
        raise RuleInvalid(prefix, RuleProblem.NOT_AN_OBJECT, "each rule is an object")
    unknown = sorted(str(k)[:32] for k in raw if k not in RULE_FIELDS)
    if unknown:
        raise RuleInvalid(
            f"{prefix}.{unknown[0]}", RuleProblem.UNKNOWN_FIELD, "unknown field", value=", ".join(unknown)
        )
    return make_rule(
        prefix, raw.get("direction"), raw.get("protocol"), raw.get("port_min"), raw.get("port_max"), raw.get("remote")
    )


def _checked_list(rules: Sequence[RuleSpec], field: str) -> list[RuleSpec]:
    if len(rules) > MAX_RULES:
        raise RuleInvalid(field, RuleProblem.TOO_MANY_RULES, f"at most {MAX_RULES} rules", value=str(len(rules)))
    seen: set[RuleSpec] = set()
    for index, rule in enumerate(rules):
        if rule in seen:
            raise RuleInvalid(
                f"{field}[{index}]", RuleProblem.DUPLICATE_RULE, "the same rule is listed twice", value=rule.as_line()
            )
        seen.add(rule)
    return list(rules)


def parse_rules(raw: object, field: str = "rules") -> list[RuleSpec]:
    """A JSON list of rule objects (the API); ``field`` is the list's name in the body, so a
    refusal names the rule as the client wrote it (``firewall_rules[1].port_min``)."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise RuleInvalid(field, RuleProblem.NOT_AN_OBJECT, "must be a list of rule objects")
    if len(raw) > MAX_RULES:
        raise RuleInvalid(field, RuleProblem.TOO_MANY_RULES, f"at most {MAX_RULES} rules", value=str(len(raw)))
    return _checked_list([parse_rule(item, index, field) for index, item in enumerate(raw)], field)


def _line_rule(line: str, index: int, field: str) -> RuleSpec:
    prefix = f"{field}[{index}]"
    words = line.split()
    if len(words) == 3:
        direction, protocol, remote = words
        return make_rule(prefix, direction, protocol, None, None, remote)
    if len(words) != 4:
        raise RuleInvalid(
            prefix,
            RuleProblem.LINE_SHAPE,
            "write a rule as: direction protocol [port or from-to] remote, e.g. ingress tcp 443 0.0.0.0/0",
            value=line,
        )
    direction, protocol, ports, remote = words
    low, dash, high = ports.partition("-")
    if ports == "-":
        return make_rule(prefix, direction, protocol, None, None, remote)
    return make_rule(prefix, direction, protocol, low, high if dash else None, remote)


def parse_rule_lines(text: str, field: str = "rules") -> list[RuleSpec]:
    """Rules in the text form, one a line (blank lines and ``#`` comments skipped); the index in
    a field name counts the rules, from 0, as the API's list does."""
    lines = [line.strip() for line in text.splitlines()]
    wanted = [line for line in lines if line and not line.startswith("#")]
    if len(wanted) > MAX_RULES:
        raise RuleInvalid(field, RuleProblem.TOO_MANY_RULES, f"at most {MAX_RULES} rules", value=str(len(wanted)))
    return _checked_list([_line_rule(line, index, field) for index, line in enumerate(wanted)], field)
