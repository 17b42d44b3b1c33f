"""Parsing firewall rules: every bad input is refused with the field and the problem named."""

from __future__ import annotations

import pytest

from cloudmgr.firewall.errors import RuleInvalid, RuleProblem
from cloudmgr.firewall.rules import (
    MAX_RULES,
    Direction,
    Protocol,
    RuleSpec,
    is_world,
    parse_cidr,
    parse_rule,
    parse_rule_lines,
    parse_rules,
)


def _rule(**fields: object) -> dict[str, object]:
    base: dict[str, object] = {"direction": "ingress", "protocol": "tcp", "port_min": 443, "remote": "0.0.0.0/0"}
    base.update(fields)
    return {k: v for k, v in base.items() if v is not None}


def test_a_good_rule_is_normalised() -> None:
    rule = parse_rule(_rule(direction="INGRESS", protocol=" Tcp", port_max=444, remote=" 2001:DB8::/32 "), 0)
    assert rule == RuleSpec(Direction.INGRESS, Protocol.TCP, 443, 444, "2001:db8::/32")
    assert rule.as_line() == "ingress tcp 443-444 2001:db8::/32"
    single = parse_rule(_rule(), 0)
    assert (single.port_min, single.port_max, single.ports) == (443, 443, "443")
    icmp = parse_rule({"direction": "egress", "protocol": "icmp", "remote": "department_only"}, 0)
    assert icmp.port_min is None and icmp.port_max is None and icmp.as_line() == "egress icmp department_only"
    assert parse_rule(_rule(remote="Department_Admin_Network"), 0).remote == "department_admin_network"


@pytest.mark.parametrize(
    ("fields", "field", "problem"),
    [
        ({"port_min": 70000}, "rules[3].port_min", RuleProblem.PORT_OUT_OF_RANGE),
        ({"port_min": 0}, "rules[3].port_min", RuleProblem.PORT_OUT_OF_RANGE),
        ({"port_min": 22, "port_max": 65536}, "rules[3].port_max", RuleProblem.PORT_OUT_OF_RANGE),
        ({"port_min": -1}, "rules[3].port_min", RuleProblem.PORT_OUT_OF_RANGE),
        ({"port_min": 8080, "port_max": 80}, "rules[3].port_max", RuleProblem.PORT_ORDER),
        ({"port_min": "http"}, "rules[3].port_min", RuleProblem.PORT_NOT_A_NUMBER),
        ({"port_min": True}, "rules[3].port_min", RuleProblem.PORT_NOT_A_NUMBER),
        ({"port_min": 22.5}, "rules[3].port_min", RuleProblem.PORT_NOT_A_NUMBER),
        ({"port_min": None}, "rules[3].port_min", RuleProblem.PORTS_REQUIRED),
        ({"remote": "10.0.0.0/33"}, "rules[3].remote", RuleProblem.CIDR_INVALID),
        ({"remote": "not-a-network"}, "rules[3].remote", RuleProblem.CIDR_INVALID),
        ({"remote": "10.1.2.3/16"}, "rules[3].remote", RuleProblem.CIDR_HOST_BITS),
        ({"remote": "2001:db8::1/32"}, "rules[3].remote", RuleProblem.CIDR_HOST_BITS),
        ({"remote": None}, "rules[3].remote", RuleProblem.REMOTE_MISSING),
        ({"remote": 10}, "rules[3].remote", RuleProblem.CIDR_INVALID),
        ({"protocol": "sctp"}, "rules[3].protocol", RuleProblem.PROTOCOL_UNKNOWN),
        ({"direction": "inbound"}, "rules[3].direction", RuleProblem.DIRECTION_UNKNOWN),
        ({"protocol": "icmp"}, "rules[3].port_min", RuleProblem.PORTS_NOT_ALLOWED),
        ({"protocol": "any", "port_min": None, "port_max": 80}, "rules[3].port_max", RuleProblem.PORTS_NOT_ALLOWED),
        ({"ports": "80"}, "rules[3].ports", RuleProblem.UNKNOWN_FIELD),
    ],
)
def test_bad_input_names_the_field(fields: dict[str, object], field: str, problem: RuleProblem) -> None:
    raw = _rule()
    raw.update(fields)
    raw = {k: v for k, v in raw.items() if v is not None}
    with pytest.raises(RuleInvalid) as caught:
        parse_rule(raw, 3)
    assert caught.value.field == field
    assert caught.value.problem is problem
    assert caught.value.message.startswith(f"{field}: ")


def test_host_bits_message_says_what_was_probably_meant() -> None:
    with pytest.raises(RuleInvalid) as caught:
        parse_cidr("192.168.1.10/24", "remote")
    assert "192.168.1.0/24" in caught.value.message and "192.168.1.10/32" in caught.value.message


def test_a_rule_must_be_an_object_and_the_list_a_list() -> None:
    with pytest.raises(RuleInvalid) as caught:
        parse_rules(["ingress tcp 22 10.0.0.0/8"])
    assert (caught.value.field, caught.value.problem) == ("rules[0]", RuleProblem.NOT_AN_OBJECT)
    with pytest.raises(RuleInvalid) as caught:
        parse_rules({"direction": "ingress"})
    assert caught.value.field == "rules"
    assert parse_rules(None) == []


def test_too_many_and_duplicate_rules() -> None:
    many = [_rule(port_min=1000 + i) for i in range(MAX_RULES + 1)]
    with pytest.raises(RuleInvalid) as caught:
        parse_rules(many)
    assert caught.value.problem is RuleProblem.TOO_MANY_RULES
    assert len(parse_rules(many[:MAX_RULES])) == MAX_RULES
    with pytest.raises(RuleInvalid) as caught:
        parse_rules([_rule(), _rule(direction="Ingress")])
    assert (caught.value.field, caught.value.problem) == ("rules[1]", RuleProblem.DUPLICATE_RULE)


def test_text_lines() -> None:
    text = """
    # the web
    ingress tcp 80 0.0.0.0/0
    ingress tcp 8000-8080 10.20.0.0/16

    ingress icmp department_only
    egress any - ::/0
    """
    rules = parse_rule_lines(text)
    assert [r.as_line() for r in rules] == [
        "ingress tcp 80 0.0.0.0/0",
        "ingress tcp 8000-8080 10.20.0.0/16",
        "ingress icmp department_only",
        "egress any ::/0",
    ]
    assert parse_rule_lines("\n".join(r.as_line() for r in rules)) == rules


@pytest.mark.parametrize(
    ("line", "field", "problem"),
    [
        ("ingress tcp 70000 0.0.0.0/0", "rules[1].port_min", RuleProblem.PORT_OUT_OF_RANGE),
        ("ingress tcp 0 0.0.0.0/0", "rules[1].port_min", RuleProblem.PORT_OUT_OF_RANGE),
        ("ingress tcp 90-80 0.0.0.0/0", "rules[1].port_max", RuleProblem.PORT_ORDER),
        ("ingress tcp 80 10.0.0.1/8", "rules[1].remote", RuleProblem.CIDR_HOST_BITS),
        ("ingress tcp 80 10.0.0.300/32", "rules[1].remote", RuleProblem.CIDR_INVALID),
        ("ingress gre 80 10.0.0.0/8", "rules[1].protocol", RuleProblem.PROTOCOL_UNKNOWN),
        ("ingress icmp 8 10.0.0.0/8", "rules[1].port_min", RuleProblem.PORTS_NOT_ALLOWED),
        ("ingress tcp 10.0.0.0/8", "rules[1].port_min", RuleProblem.PORTS_REQUIRED),
        ("ingress tcp", "rules[1]", RuleProblem.LINE_SHAPE),
        ("ingress tcp 80 10.0.0.0/8 extra", "rules[1]", RuleProblem.LINE_SHAPE),
    ],
)
def test_bad_lines_name_the_rule_and_field(line: str, field: str, problem: RuleProblem) -> None:
    with pytest.raises(RuleInvalid) as caught:
        parse_rule_lines(f"ingress tcp 22 department_admin_network\n# note\n{line}")
    assert (caught.value.field, caught.value.problem) == (field, problem)


def test_what_counts_as_the_whole_internet() -> None:
    for world in ("0.0.0.0/0", "::/0", "0.0.0.0/1", "128.0.0.0/1", "2000::/3"):
        assert is_world(parse_cidr(world, "remote")), world
    for network in ("10.0.0.0/8", "203.0.113.0/24", "2001:db8::/32", "192.0.2.7/32"):
        assert not is_world(parse_cidr(network, "remote")), network
