"""The password policy, the mapping file and the LDAP claims (pure functions)."""

from __future__ import annotations

from pathlib import Path

import pytest

from cloudmgr.identity.errors import MappingFileInvalid, NoMappedRole, PasswordRejected
from cloudmgr.identity.keystone import split_username
from cloudmgr.identity.ldap import LdapConfig, claims_from_entry
from cloudmgr.identity.mapping import Claims, load_mapping, parse_mapping, resolve
from cloudmgr.identity.policy import check_password, problems
from cloudmgr.organisation.models import Role

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("password", "username", "rule"),
    [
        ("short-1", "", "at least 10"),
        ("x" * 257 + "A1", "", "at most 256"),
        ("onlyletterslong", "", "mix letters"),
        ("12345678901234", "", "mix letters"),
        ("ALLUPPERCASE-123", "", ""),
        ("ALLUPPERCASE123", "", "mix letters"),
        ("Zhangwei-2026", "zhangwei", "not be the username"),
        ("ZHANGWEI!!2026", "zhangwei", "not be the username"),
        ("demo-staff-2026", "zhangwei", ""),
        ("政务云密码-2026年度", "", ""),
    ],
)
def test_password_policy(password: str, username: str, rule: str) -> None:
    found = "; ".join(problems(password, username=username))
    if rule:
        assert rule in found
        with pytest.raises(PasswordRejected, match=rule):
            check_password(password, username=username)
    else:
        assert found == ""
        check_password(password, username=username)


MAPPING = {
    "keystone": {
        "department_domain_pattern": "dept-{key}",
        "departments": {"Health-Domain": "prov-health"},
        "roles": {"cloudmgr-admin": "admin", "member": "dept_staff", "cloudmgr-dept-head": "dept_head"},
        "groups": {"Cloud-Ops": "operator"},
    },
    "ldap": {"departments": {"edu": "prov-education"}, "groups": {"finance-team": "finance", "staff": "dept_staff"}},
}


def _claims(**kwargs: object) -> Claims:
    base: dict[str, object] = {"source": "keystone", "subject": "u1", "username": "u", "display_name": "U"}
    return Claims(**(base | kwargs))  # type: ignore[arg-type]


def test_keystone_roles_groups_and_domains_map_to_role_and_department() -> None:
    mapping = parse_mapping(MAPPING)
    staff = resolve(mapping, _claims(domain="dept-prov-education", roles=frozenset({"member", "reader"})))
    assert (staff.role, staff.department_key) == (Role.DEPT_STAFF, "prov-education")
    head = resolve(mapping, _claims(domain="health-domain", roles=frozenset({"member", "CLOUDMGR-DEPT-HEAD"})))
    assert (head.role, head.department_key) == (Role.DEPT_HEAD, "prov-health")  # strongest wins, names fold case
    ops = resolve(mapping, _claims(domain="Default", roles=frozenset({"member"}), groups=frozenset({"cloud-ops"})))
    assert (ops.role, ops.department_key) == (Role.OPERATOR, None)
    admin = resolve(mapping, _claims(roles=frozenset({"cloudmgr-admin", "member"})))
    assert admin.role is Role.ADMIN
    with pytest.raises(NoMappedRole, match="none of your roles"):
        resolve(mapping, _claims(domain="dept-x", roles=frozenset({"reader"})))
    with pytest.raises(NoMappedRole, match="no department"):
        resolve(mapping, _claims(domain="Default", roles=frozenset({"member"})))


def test_ldap_groups_by_dn_or_cn_and_department_attribute() -> None:
    mapping = parse_mapping(MAPPING)
    config = LdapConfig("ldap://x", "uid={username},ou=people,dc=gov", "memberOf", "departmentNumber", 5)
    claims = claims_from_entry(
        config,
        "liu",
        "uid=liu,ou=people,dc=gov",
        {
            "cn": ["Liu Yang"],
            "mail": ["liu@gov.cn"],
            "memberOf": ["cn=Staff,ou=groups,dc=gov"],
            "departmentNumber": "EDU",
        },
    )
    assert claims.display_name == "Liu Yang" and claims.email == "liu@gov.cn"
    mapped = resolve(mapping, claims)
    assert (mapped.role, mapped.department_key) == (Role.DEPT_STAFF, "prov-education")
    finance = claims_from_entry(config, "chen", "uid=chen", {"memberOf": "cn=finance-team,ou=groups,dc=gov"})
    assert resolve(mapping, finance).role is Role.FINANCE


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (["a"], "expected a mapping"),
        ({"kerberos": {}}, "unknown keys kerberos"),
        ({"keystone": {"roles": {"member": "superuser"}}}, "is not a role"),
        ({"keystone": {"department_domain_pattern": "dept-"}}, "must contain {key}"),
        ({"ldap": {"groups": ["x"]}}, "expected a mapping"),
    ],
)
def test_mapping_file_errors_are_clear(data: object, message: str) -> None:
    with pytest.raises(MappingFileInvalid, match=message):
        parse_mapping(data)


def test_shipped_mapping_file_loads(tmp_path: Path) -> None:
    mapping = load_mapping(REPO / "etc" / "identity.yaml")
    assert mapping.keystone.roles["member"] is Role.DEPT_STAFF
    broken = tmp_path / "identity.yaml"
    broken.write_text("keystone: [", encoding="utf-8")
    with pytest.raises(MappingFileInvalid, match="not valid YAML"):
        load_mapping(broken)
    with pytest.raises(MappingFileInvalid, match="cannot read"):
        load_mapping(tmp_path / "missing.yaml")


def test_keystone_usernames_name_their_domain() -> None:
    assert split_username("alice@dept-edu", "Default") == ("alice", "dept-edu")
    assert split_username("alice", "Default") == ("alice", "Default")
    assert split_username("@x", "Default") == ("@x", "Default")
