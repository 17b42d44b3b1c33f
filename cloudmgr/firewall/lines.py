"""Firewall rules as people read them: one line a rule, whatever address families it spans.

Neutron keeps one rule per address family, so "TCP 80 from anywhere" is two rules on the cloud
(``0.0.0.0/0`` for IPv4 and ``::/0`` for IPv6), and a rule naming a security group is two as
well (an IPv4 and an IPv6 one, both "from group X").  Listed as they are stored, such pairs are
two lines that look alike; here they become one line saying both families, e.g. "ingress tcp 80
any address (IPv4+IPv6)".  Only true pairs merge: the same direction, protocol and ports, and
either the whole address space of each family (exactly ``0.0.0.0/0`` with ``::/0``) or the same
group.  Any other network stays a line of its own (``0.0.0.0/1`` is not "any address").

Parsing and deciding live elsewhere (:mod:`cloudmgr.firewall.rules`, :mod:`.services`); this
module only groups what is shown, for the pages and the API alike.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Protocol as TypingProtocol

from cloudmgr.firewall.rules import Direction, Protocol, RuleSpec

IPV4, IPV6 = "IPv4", "IPv6"
ANY_ADDRESS = {IPV4: "0.0.0.0/0", IPV6: "::/0"}
_FAMILY_OF_ANY = {cidr: family for family, cidr in ANY_ADDRESS.items()}


class RemoteKind(enum.StrEnum):
    ANY_ADDRESS = "any_address"  # the whole address space of its families (0.0.0.0/0, ::/0)
    NETWORK = "network"  # one CIDR
    GROUP = "group"  # a security group cloudmgr keeps (what department_only becomes)
    SYMBOLIC = "symbolic"  # department_admin_network / department_only, before they are resolved


@dataclass(frozen=True)
class RuleLine:
    """One line of a rule list.  ``remote`` is the CIDR, the group's name or the symbolic remote
    (for ANY_ADDRESS: the CIDR when one family only, "" when both); ``families`` the address
    families it covers, in order (empty for a symbolic remote: it is resolved later);
    ``sources`` where it came from (template names, "department"), first seen first."""

    direction: Direction
    protocol: Protocol
    port_min: int | None
    port_max: int | None
    kind: RemoteKind
    remote: str
    families: tuple[str, ...]
    sources: tuple[str, ...] = ()

    @property
    def ports(self) -> str:
        if self.port_min is None:
            return ""
        return str(self.port_min) if self.port_min == self.port_max else f"{self.port_min}-{self.port_max}"

    @property
    def both_families(self) -> bool:
        return set(self.families) == {IPV4, IPV6}

    @property
    def any_address(self) -> bool:
        """Open to every address of both families: what the pages show as "any address (IPv4+IPv6)"."""
        return self.kind is RemoteKind.ANY_ADDRESS and self.both_families

    def as_json(self) -> dict[str, object]:
        return {
            "direction": self.direction.value,
            "protocol": self.protocol.value,
            "port_min": self.port_min,
            "port_max": self.port_max,
            "remote_kind": self.kind.value,
            "remote": self.remote,
            "families": list(self.families),
            "sources": list(self.sources),
        }


class ResolvedLike(TypingProtocol):
    """What :class:`cloudmgr.firewall.services.ResolvedRule` offers (not imported: that module
    imports this one)."""

    @property
    def direction(self) -> Direction: ...
    @property
    def protocol(self) -> Protocol: ...
    @property
    def port_min(self) -> int | None: ...
    @property
    def port_max(self) -> int | None: ...
    @property
    def ethertype(self) -> str: ...
    @property
    def remote_cidr(self) -> str | None: ...
    @property
    def remote_group(self) -> str | None: ...
    @property
    def source(self) -> str: ...


def _family_of(cidr: str) -> str:
    return IPV6 if ":" in cidr else IPV4


# A line's pairing key: its shape without the family (None: it pairs with nothing), and its family.
Keyed = tuple[tuple[object, ...] | None, str, RuleLine]


def _paired(keyed: Iterable[Keyed]) -> list[RuleLine]:
    """The lines in order, each IPv4 line joined with the first unpaired IPv6 line of the same
    shape (and the other way round).  A second rule of one family and shape stays a line of its
    own: it is a different rule."""
    lines: list[RuleLine] = []
    waiting: dict[tuple[tuple[object, ...], str], list[int]] = {}
    for shape, family, line in keyed:
        if shape is None:
            lines.append(line)
            continue
        other = IPV6 if family == IPV4 else IPV4
        partners = waiting.get((shape, other))
        if not partners:
            waiting.setdefault((shape, family), []).append(len(lines))
            lines.append(line)
            continue
        at = partners.pop(0)
        earlier = lines[at]
        lines[at] = replace(
            earlier,
            families=(IPV4, IPV6),
            sources=tuple(dict.fromkeys((*earlier.sources, *line.sources))),
            remote="" if earlier.kind is RemoteKind.ANY_ADDRESS else earlier.remote,
        )
    return lines


def _line(
    direction: Direction,
    protocol: Protocol,
    port_min: int | None,
    port_max: int | None,
    kind: RemoteKind,
    remote: str,
    family: str | None,
    source: str,
) -> RuleLine:
    families = (family,) if family else ()
    return RuleLine(direction, protocol, port_min, port_max, kind, remote, families, (source,) if source else ())


def spec_lines(rules: Sequence[RuleSpec], source: str = "") -> list[RuleLine]:
    """The rules of a template, or a request's own rules, as they were written."""

    def keyed(rule: RuleSpec) -> Keyed:
        shape = (rule.direction, rule.protocol, rule.port_min, rule.port_max)
        if rule.symbolic_remote is not None:
            return None, "", _line(*shape, RemoteKind.SYMBOLIC, rule.remote, None, source)
        family = _family_of(rule.remote)
        if _FAMILY_OF_ANY.get(rule.remote) == family:
            return (*shape, "any"), family, _line(*shape, RemoteKind.ANY_ADDRESS, rule.remote, family, source)
        return None, family, _line(*shape, RemoteKind.NETWORK, rule.remote, family, source)

    return _paired(keyed(rule) for rule in rules)


def resolved_lines(rules: Sequence[ResolvedLike]) -> list[RuleLine]:
    """The concrete rules of a security group (one per address family, as Neutron keeps them)."""

    def keyed(rule: ResolvedLike) -> Keyed:
        shape = (rule.direction, rule.protocol, rule.port_min, rule.port_max)
        family = rule.ethertype
        if rule.remote_group is not None:
            line = _line(*shape, RemoteKind.GROUP, rule.remote_group, family, rule.source)
            return (*shape, "group", rule.remote_group), family, line
        cidr = rule.remote_cidr or ""
        if _FAMILY_OF_ANY.get(cidr) == family:
            return (*shape, "any"), family, _line(*shape, RemoteKind.ANY_ADDRESS, cidr, family, rule.source)
        return None, family, _line(*shape, RemoteKind.NETWORK, cidr, family, rule.source)

    return _paired(keyed(rule) for rule in rules)


def rule_lines(rules: Sequence[RuleSpec] | Sequence[ResolvedLike]) -> list[RuleLine]:
    """:func:`spec_lines` or :func:`resolved_lines`, by what ``rules`` holds (the pages' filter)."""
    specs = [rule for rule in rules if isinstance(rule, RuleSpec)]
    if len(specs) == len(rules):
        return spec_lines(specs)
    return resolved_lines([rule for rule in rules if not isinstance(rule, RuleSpec)])
