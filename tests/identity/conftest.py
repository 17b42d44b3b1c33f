"""A real LDAP directory for the LDAP login tests (tests/identity/slapd.py), started once per
session, with these people and groups:

=============  =====================================  ==================================
uid            groups (memberOf, by the overlay)      what it is for
=============  =====================================  ==================================
zhanglei       cn=dept-staff (mapped by its full DN)  department staff of prov-education
wangops        cn=cloudmgr-ops (mapped by its CN)     an operator
canteen        cn=canteen (not mapped)                refused: no role
suspended      cn=dept-staff; pwdAccountLockedTime    locked by the directory
lee,wei+ops    cn=dept-staff                          a DN with characters escaped
=============  =====================================  ==================================
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.identity.slapd import GROUPS, PEOPLE, Slapd, start_slapd

PASSWORD = "Ldap-Test-Pass-2026"
STAFF_GROUP_DN = f"cn=dept-staff,{GROUPS}"
OPS_GROUP_DN = f"cn=cloudmgr-ops,{GROUPS}"
SPECIAL_UID = "lee,wei+ops"
SPECIAL_DN = f"uid=lee\\,wei\\+ops,{PEOPLE}"  # the DN escaped by hand, as an LDAP admin writes it
DEPARTMENT_NUMBER = "EDU-0471"  # the education department's number in the directory


def _person(dn: str, uid: str, name: str, *, department: str | None = DEPARTMENT_NUMBER) -> str:
    lines = [
        f"dn: {dn}",
        "objectClass: inetOrgPerson",
        f"uid: {uid}",
        f"cn: {name}",
        f"sn: {name.split()[-1]}",
        f"mail: {uid.replace(',', '.').replace('+', '.')}@edu.gov.test",
        f"userPassword: {PASSWORD}",
    ]
    if department:
        lines.append(f"departmentNumber: {department}")
    return "\n".join(lines) + "\n"


def _group(dn: str, name: str, members: list[str]) -> str:
    return (
        "\n".join([f"dn: {dn}", "objectClass: groupOfNames", f"cn: {name}", *(f"member: {m}" for m in members)]) + "\n"
    )


DIRECTORY = "\n".join(
    [
        _person(f"uid=zhanglei,{PEOPLE}", "zhanglei", "Zhang Lei"),
        _person(f"uid=wangops,{PEOPLE}", "wangops", "Wang Ops", department=None),
        _person(f"uid=canteen,{PEOPLE}", "canteen", "Canteen Manager"),
        _person(f"uid=suspended,{PEOPLE}", "suspended", "Sus Pended"),
        _person(SPECIAL_DN, SPECIAL_UID, "Lee Wei"),
        _group(
            STAFF_GROUP_DN,
            "dept-staff",
            [f"uid=zhanglei,{PEOPLE}", f"uid=suspended,{PEOPLE}", SPECIAL_DN],
        ),
        _group(OPS_GROUP_DN, "cloudmgr-ops", [f"uid=wangops,{PEOPLE}"]),
        _group(f"cn=canteen,{GROUPS}", "canteen", [f"uid=canteen,{PEOPLE}"]),
    ]
)

LOCK_SUSPENDED = f"""\
dn: uid=suspended,{PEOPLE}
changetype: modify
add: pwdAccountLockedTime
pwdAccountLockedTime: 000001010000Z
"""


@pytest.fixture(scope="session")
def slapd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Slapd]:
    server = start_slapd(tmp_path_factory.mktemp("slapd"))
    try:
        server.add(DIRECTORY)
        server.modify(LOCK_SUSPENDED)  # locked as the directory's administrators lock an account
        yield server
    finally:
        server.stop()


@pytest.fixture
def ldap_mapping(tmp_path: Path) -> Path:
    """etc/identity.yaml for the directory above."""
    mapping = tmp_path / "identity.yaml"
    mapping.write_text(
        yaml.safe_dump(
            {
                "ldap": {
                    "departments": {DEPARTMENT_NUMBER: "prov-education"},
                    "groups": {STAFF_GROUP_DN: "dept_staff", "cloudmgr-ops": "operator"},
                }
            }
        ),
        encoding="utf-8",
    )
    return mapping
