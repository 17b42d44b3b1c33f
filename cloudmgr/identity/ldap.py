"""Password login against an LDAP directory (ldap3): a simple bind as the user's DN.

The DN comes from ``CLOUDMGR_LDAP_USER_DN`` (``uid={username},ou=people,dc=…``); after the
bind the user's own entry gives the groups (``CLOUDMGR_LDAP_GROUP_ATTRIBUTE``, default
``memberOf``), the department (``CLOUDMGR_LDAP_DEPARTMENT_ATTRIBUTE``), the name and mail.
An empty password is refused before the bind (LDAP treats it as an anonymous bind).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import ldap3
from ldap3.core import exceptions as ldap_exc
from ldap3.utils.dn import escape_rdn

from cloudmgr.config import Settings
from cloudmgr.errors import ConfigurationError
from cloudmgr.identity.errors import IdentityBackendUnavailable
from cloudmgr.identity.mapping import Claims

INVALID_CREDENTIALS = 49


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
        conn = ldap3.Connection(server, user=dn, password=password, receive_timeout=self.config.timeout)
        try:
            if not conn.bind():
                if conn.result.get("result") == INVALID_CREDENTIALS:
                    return None
                raise IdentityBackendUnavailable(f"the LDAP server refused the bind: {conn.result.get('description')}")
            attributes = ["cn", "displayName", "mail", self.config.group_attribute, self.config.department_attribute]
            conn.search(dn, "(objectClass=*)", search_scope=ldap3.BASE, attributes=attributes)
            entry = conn.response[0].get("attributes", {}) if conn.response else {}
            return claims_from_entry(self.config, username, dn, dict(entry))
        except ldap_exc.LDAPException as exc:
            raise IdentityBackendUnavailable(f"the LDAP server did not answer: {exc}") from exc
        finally:
            conn.unbind()
