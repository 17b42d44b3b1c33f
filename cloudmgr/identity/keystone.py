"""Password login against Keystone (v3), with the user's own token only.

The user authenticates unscoped with their password; with that token we list the
projects and domains they may scope to (``/v3/auth/projects``, ``/v3/auth/domains``),
rescope to each (at most ``MAX_SCOPES``) to read the role names, and list their groups
(``/v3/users/{id}/groups``, which Keystone's default policy allows for oneself).  No service
credentials are involved: the auth URL (and CA) come from the settings or the clouds.yaml
entry ``CLOUDMGR_KEYSTONE_CLOUD``.  This is identity, not cloud resources, so it uses
keystoneauth directly rather than the CloudProvider interface.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from keystoneauth1 import exceptions as ks_exc
from keystoneauth1 import session as ks_session
from keystoneauth1.identity import v3

from cloudmgr.config import Settings
from cloudmgr.errors import ConfigurationError
from cloudmgr.identity.errors import IdentityBackendUnavailable
from cloudmgr.identity.mapping import Claims

MAX_SCOPES = 20

_CLOUDS_YAML_PATHS = (
    Path.cwd() / "clouds.yaml",
    Path.home() / ".config" / "openstack" / "clouds.yaml",
    Path("/etc/openstack/clouds.yaml"),
)


@dataclass(frozen=True)
class KeystoneConfig:
    auth_url: str
    default_domain: str
    verify: bool | str
    timeout: float

    @property
    def v3_url(self) -> str:
        base = self.auth_url.rstrip("/")
        return base if base.endswith("/v3") else base + "/v3"


def _clouds_yaml_entry(settings: Settings) -> dict[str, Any]:
    candidates = [Path(p) for p in (settings.os_client_config_file, os.environ.get("OS_CLIENT_CONFIG_FILE")) if p]
    for path in [*candidates, *_CLOUDS_YAML_PATHS]:
        if path.is_file():
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
            entry = (data.get("clouds") or {}).get(settings.keystone_cloud)
            if isinstance(entry, dict):
                return entry
    raise ConfigurationError(f"CLOUDMGR_KEYSTONE_CLOUD: no entry {settings.keystone_cloud!r} in any clouds.yaml")


def keystone_config(settings: Settings) -> KeystoneConfig:
    """The Keystone to log in against: ``CLOUDMGR_KEYSTONE_AUTH_URL``, or the auth URL of the
    clouds.yaml entry ``CLOUDMGR_KEYSTONE_CLOUD`` (default ``OS_CLOUD``)."""
    verify: bool | str = True
    auth_url = settings.keystone_auth_url
    if not settings.keystone_cloud and not auth_url and os.environ.get("OS_CLOUD"):
        settings = settings.with_overrides(keystone_cloud=os.environ["OS_CLOUD"])
    if settings.keystone_cloud:
        entry = _clouds_yaml_entry(settings)
        auth_url = auth_url or str((entry.get("auth") or {}).get("auth_url") or "")
        if entry.get("cacert"):
            verify = str(entry["cacert"])
        elif entry.get("verify") is False or entry.get("insecure") is True:
            verify = False
    if not auth_url:
        raise ConfigurationError("Keystone login needs CLOUDMGR_KEYSTONE_AUTH_URL or CLOUDMGR_KEYSTONE_CLOUD")
    return KeystoneConfig(
        auth_url=auth_url,
        default_domain=settings.keystone_default_domain,
        verify=verify,
        timeout=settings.keystone_timeout_seconds,
    )


def split_username(typed: str, default_domain: str) -> tuple[str, str]:
    """``name@domain`` → (name, domain); a bare name is in the default domain."""
    name, sep, domain = typed.rpartition("@")
    if sep and name and domain:
        return name, domain
    return typed, default_domain


class KeystoneBackend:
    source = "keystone"

    def __init__(self, config: KeystoneConfig) -> None:
        self.config = config

    def _session(self, auth: Any) -> ks_session.Session:
        return ks_session.Session(auth=auth, verify=self.config.verify, timeout=self.config.timeout)

    def authenticate(self, typed_username: str, password: str) -> Claims | None:
        """The account's claims, or None when Keystone refuses the password."""
        if not password:
            return None
        name, domain = split_username(typed_username, self.config.default_domain)
        auth = v3.Password(
            auth_url=self.config.v3_url, username=name, password=password, user_domain_name=domain, unscoped=True
        )
        sess = self._session(auth)
        try:
            ref = auth.get_access(sess)
        except ks_exc.Unauthorized:
            return None
        except (ks_exc.ConnectFailure, ks_exc.ConnectTimeout, ks_exc.DiscoveryFailure, ks_exc.RequestTimeout) as exc:
            raise IdentityBackendUnavailable(f"Keystone did not answer: {exc}") from exc
        except ks_exc.ClientException as exc:
            raise IdentityBackendUnavailable(f"Keystone refused the request: {exc}") from exc
        try:
            roles, groups, extra = self._roles_and_groups(sess, ref)
        except (ks_exc.ConnectFailure, ks_exc.ConnectTimeout, ks_exc.RequestTimeout) as exc:
            raise IdentityBackendUnavailable(f"Keystone did not answer: {exc}") from exc
        user_domain = ref.user_domain_name or domain
        local = name if user_domain.lower() == self.config.default_domain.lower() else f"{name}@{user_domain}"
        return Claims(
            source=self.source,
            subject=str(ref.user_id),
            username=local,
            display_name=name,
            email=extra.get("email"),
            domain=user_domain,
            roles=frozenset(roles),
            groups=frozenset(groups),
        )

    def _roles_and_groups(self, sess: ks_session.Session, ref: Any) -> tuple[set[str], set[str], dict[str, str]]:
        base = self.config.v3_url
        roles: set[str] = set()
        groups: set[str] = set()
        extra: dict[str, str] = {}
        token = ref.auth_token
        scopes: list[tuple[str, str]] = []
        for kind in ("projects", "domains"):
            answer = sess.get(f"{base}/auth/{kind}", raise_exc=False)
            if answer.status_code == 200:
                scopes += [(kind, str(item["id"])) for item in answer.json().get(kind, []) if item.get("enabled", True)]
        for kind, scope_id in scopes[:MAX_SCOPES]:
            if kind == "projects":
                scoped = v3.Token(auth_url=base, token=token, project_id=scope_id)
            else:
                scoped = v3.Token(auth_url=base, token=token, domain_id=scope_id)
            try:
                roles.update(scoped.get_access(self._session(scoped)).role_names or [])
            except ks_exc.Unauthorized:
                continue  # e.g. a role assignment removed since the list was read
        answer = sess.get(f"{base}/users/{ref.user_id}/groups", raise_exc=False)
        if answer.status_code == 200:
            groups.update(str(group["name"]) for group in answer.json().get("groups", []))
        answer = sess.get(f"{base}/users/{ref.user_id}", raise_exc=False)
        if answer.status_code == 200 and answer.json().get("user", {}).get("email"):
            extra["email"] = str(answer.json()["user"]["email"])
        return roles, groups, extra
