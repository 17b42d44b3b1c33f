"""Password login against an LDAP directory (ldap3): a simple bind as the user's DN.

The DN comes from ``CLOUDMGR_LDAP_USER_DN`` (``uid={username},ou=people,dc=…``); after the
bind the user's own entry gives the groups (``CLOUDMGR_LDAP_GROUP_ATTRIBUTE``, default
``memberOf``), the department (``CLOUDMGR_LDAP_DEPARTMENT_ATTRIBUTE``), the name and mail.
An empty password is refused before the bind (LDAP treats it as an anonymous bind).

The username only ever goes into the DN, escaped as an RDN value (``escape_rdn``); the one
search is a base search of that DN with a constant filter, so no typed text reaches a filter.
The entry's own DN, as the server spells it, is the account's subject: ``ALICE`` and
``alice`` are one account to the directory, and so one cloudmgr user.

The bind asks for the password-policy control (draft-behera-ldap-password-policy, OpenLDAP's
``ppolicy``): a directory that answers "accountLocked" (``olcPPolicyUseLockout``) gets a
clear "locked in the directory" refusal; otherwise a locked account is a wrong password.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import ldap3
from ldap3.core import exceptions as ldap_exc
from ldap3.utils.dn import escape_rdn

from cloudmgr.config import Settings
from cloudmgr.errors import ConfigurationError
from cloudmgr.identity.errors import DirectoryAccountLocked, IdentityBackendUnavailable
from cloudmgr.identity.mapping import Claims

INVALID_CREDENTIALS = 49
PPOLICY_CONTROL_OID = "1.3.6.1.4.1.42.2.27.8.5.1"
PPOLICY_ACCOUNT_LOCKED = 1  # the control's error "accountLocked"
_BER_SEQUENCE = 0x30
_PPOLICY_ERROR_TAG = 0x81  # error [1] ENUMERATED, implicit, context-specific


def _ber_element(data: bytes, at: int) -> tuple[int, int, int]:
    """(tag, start of the value, end of the value) of the BER element at ``at``."""
    tag, length = data[at], data[at + 1]
    at += 2
    if length & 0x80:
        octets = length & 0x7F
        if not 0 < octets <= 4:
            raise ValueError("unsupported BER length")
        length = int.from_bytes(data[at : at + octets], "big")
        at += octets
    if at + length > len(data):
        raise ValueError("BER element longer than its data")
    return tag, at, at + length


def password_policy_error(value: bytes) -> int | None:
    """The ``error`` of a PasswordPolicyResponseValue (``SEQUENCE { warning [0] OPTIONAL,
    error [1] ENUMERATED OPTIONAL }``), or None when it has none or is malformed."""
    try:
        tag, at, end = _ber_element(value, 0)
        if tag != _BER_SEQUENCE:
            return None
        while at < end:
            tag, start, stop = _ber_element(value, at)
            if tag == _PPOLICY_ERROR_TAG and stop > start:
                return int.from_bytes(value[start:stop], "big")
            at = stop
    except (IndexError, ValueError):
        return None
    return None


def _bind_policy_error(result: Mapping[str, Any]) -> int | None:
    control = (result.get("controls") or {}).get(PPOLICY_CONTROL_OID) or {}
    value = control.get("value")
    return password_policy_error(value) if isinstance(value, bytes) else None


@dataclass(frozen=True)
class LdapConfig:
    url: str
    user_dn: str
    group_attribute: str
    department_attribute: str
    timeout: float


def ldap_config(settings: Settings) -> LdapConfig:
    if not settings.ldap_url or "{username}" not in settings.ldap_user_dn:
        raise ConfigurationError("LDAP login needs CLOUDMGR_LDAP_URL and CLOUDMGR_LDAP_USER_DN with {username}")
    return LdapConfig(
        url=settings.ldap_url,
        user_dn=settings.ldap_user_dn,
        group_attribute=settings.ldap_group_attribute,
        department_attribute=settings.ldap_department_attribute,
        timeout=settings.keystone_timeout_seconds,
    )


def _first(values: Any) -> str | None:
    if isinstance(values, list | tuple):
        return str(values[0]) if values else None
    return str(values) if values else None


def claims_from_entry(config: LdapConfig, username: str, dn: str, attributes: dict[str, Any]) -> Claims:
    """The claims of a bound user from its entry's attributes (pure: unit-tested)."""
    raw_groups = attributes.get(config.group_attribute) or []
    groups = [raw_groups] if isinstance(raw_groups, str) else list(raw_groups)
    return Claims(
        source="ldap",
        subject=dn,
        username=username,
        display_name=_first(attributes.get("displayName")) or _first(attributes.get("cn")) or username,
        email=_first(attributes.get("mail")),
        department_hint=_first(attributes.get(config.department_attribute)),
        groups=frozenset(str(g) for g in groups),
    )


class LdapBackend:
    source = "ldap"

    def __init__(self, config: LdapConfig) -> None:
        self.config = config

    def authenticate(self, username: str, password: str) -> Claims | None:
        if not password or not username:
            return None
        dn = self.config.user_dn.format(username=escape_rdn(username))
        server = ldap3.Server(self.config.url, connect_timeout=self.config.timeout, get_info=ldap3.NONE)
        # Whole seconds: ldap3 packs the receive timeout into SO_RCVTIMEO as an integer (a float
        # such as the default 10.0 made every bind against a live server fail with struct.error).
        receive_timeout = max(1, math.ceil(self.config.timeout))
        conn = ldap3.Connection(server, user=dn, password=password, receive_timeout=receive_timeout)
        try:
            # Not critical: a server without a password policy answers the bind as usual.
            if not conn.bind(controls=[(PPOLICY_CONTROL_OID, False, None)]):
                if conn.result.get("result") == INVALID_CREDENTIALS:
                    if _bind_policy_error(conn.result) == PPOLICY_ACCOUNT_LOCKED:
                        raise DirectoryAccountLocked("the directory has locked this account")
                    return None
                raise IdentityBackendUnavailable(f"the LDAP server refused the bind: {conn.result.get('description')}")
            attributes = ["cn", "displayName", "mail", self.config.group_attribute, self.config.department_attribute]
            conn.search(dn, "(objectClass=*)", search_scope=ldap3.BASE, attributes=attributes)
            found = conn.response[0] if conn.response else {}
            entry_dn = str(found.get("dn") or dn)  # the server's spelling: one subject per account
            return claims_from_entry(self.config, username, entry_dn, dict(found.get("attributes", {})))
        except ldap_exc.LDAPException as exc:
            raise IdentityBackendUnavailable(f"the LDAP server did not answer: {exc}") from exc
        finally:
            conn.unbind()
            # ldap3 keeps the socket of a connection that never opened (a server that does not
            # answer) and its unbind does not close it: close it here, or every refused login leaks one.
            if conn.socket is not None:
                conn.socket.close()
