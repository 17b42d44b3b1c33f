"""Firewall rules shown one a line (cloudmgr.firewall.lines): a rule the cloud keeps once per
address family, to the whole address space or to one group, is one line saying both families;
nothing else merges."""

from __future__ import annotations

from cloudmgr.firewall.lines import RemoteKind, resolved_lines, rule_lines, spec_lines
from cloudmgr.firewall.rules import Direction, Protocol, RuleSpec
from cloudmgr.firewall.services import ResolvedRule

IN, OUT, TCP, ANY = Direction.INGRESS, Direction.EGRESS, Protocol.TCP, Protocol.ANY


def _spec(port: int | None, remote: str, direction: Direction = IN, protocol: Protocol = TCP) -> RuleSpec:
    return RuleSpec(direction, protocol, port, port, remote)


def _resolved(
    port: int | None, family: str, *, cidr: str | None = None, group: str | None = None, source: str = "web"
) -> ResolvedRule:
    protocol = TCP if port is not None else ANY
    return ResolvedRule(IN, protocol, port, port, family, cidr, group, source)


def test_any_address_of_both_families_is_one_line() -> None:
    lines = spec_lines([_spec(80, "0.0.0.0/0"), _spec(443, "0.0.0.0/0"), _spec(80, "::/0"), _spec(443, "::/0")])
    assert [(line.ports, line.kind, line.families, line.remote) for line in lines] == [
        ("80", RemoteKind.ANY_ADDRESS, ("IPv4", "IPv6"), ""),
        ("443", RemoteKind.ANY_ADDRESS, ("IPv4", "IPv6"), ""),
    ]
    assert all(line.any_address for line in lines)


def test_only_true_pairs_merge() -> None:
    lines = spec_lines(
        [
            _spec(80, "0.0.0.0/0"),
            _spec(8080, "::/0"),  # another port
            _spec(22, "0.0.0.0/1"),  # wide, but not the whole space
            _spec(22, "::/0", direction=OUT),  # another direction
            _spec(None, "department_only", protocol=ANY),
        ]
    )
    assert [(line.ports, line.kind, line.families, line.remote) for line in lines] == [
        ("80", RemoteKind.ANY_ADDRESS, ("IPv4",), "0.0.0.0/0"),
        ("8080", RemoteKind.ANY_ADDRESS, ("IPv6",), "::/0"),
        ("22", RemoteKind.NETWORK, ("IPv4",), "0.0.0.0/1"),
        ("22", RemoteKind.ANY_ADDRESS, ("IPv6",), "::/0"),
        ("", RemoteKind.SYMBOLIC, (), "department_only"),
    ]
    assert not any(line.any_address for line in lines)


def test_a_group_rule_of_both_families_is_one_line_and_sources_join() -> None:
    lines = resolved_lines(
        [
            _resolved(None, "IPv4", group="cm-fw-edu-members", source="department"),
            _resolved(None, "IPv6", group="cm-fw-edu-members", source="department"),
            _resolved(80, "IPv4", cidr="0.0.0.0/0", source="web"),
            _resolved(80, "IPv6", cidr="::/0", source="department"),
            _resolved(5432, "IPv4", cidr="10.20.0.0/16", source="db"),
            _resolved(5432, "IPv6", cidr="2001:db8::/32", source="db"),
        ]
    )
    assert [(line.kind, line.remote, line.families, line.sources) for line in lines] == [
        (RemoteKind.GROUP, "cm-fw-edu-members", ("IPv4", "IPv6"), ("department",)),
        (RemoteKind.ANY_ADDRESS, "", ("IPv4", "IPv6"), ("web", "department")),
        (RemoteKind.NETWORK, "10.20.0.0/16", ("IPv4",), ("db",)),
        (RemoteKind.NETWORK, "2001:db8::/32", ("IPv6",), ("db",)),
    ]
    assert lines[1].as_json() == {
        "direction": "ingress",
        "protocol": "tcp",
        "port_min": 80,
        "port_max": 80,
        "remote_kind": "any_address",
        "remote": "",
        "families": ["IPv4", "IPv6"],
        "sources": ["web", "department"],
    }


def test_rule_lines_takes_either_kind() -> None:
    assert len(rule_lines([_spec(80, "0.0.0.0/0"), _spec(80, "::/0")])) == 1
    assert len(rule_lines([_resolved(80, "IPv4", cidr="0.0.0.0/0"), _resolved(80, "IPv6", cidr="::/0")])) == 1
    assert rule_lines([]) == []
