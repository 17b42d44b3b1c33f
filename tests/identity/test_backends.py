"""The external backends' own edges (no lab needed): settings, unreachable servers, empty passwords."""

from __future__ import annotations

from pathlib import Path

import pytest

from cloudmgr.config import load_settings
from cloudmgr.errors import ConfigurationError
from cloudmgr.identity.errors import IdentityBackendUnavailable
from cloudmgr.identity.keystone import KeystoneBackend, KeystoneConfig, keystone_config
from cloudmgr.identity.ldap import PPOLICY_ACCOUNT_LOCKED, LdapBackend, LdapConfig, ldap_config, password_policy_error
from cloudmgr.identity.services import external_backends

CLOSED_PORT = 9  # discard: nothing listens on it here


def test_login_settings_are_typed_and_checked() -> None:
    settings = load_settings({"CLOUDMGR_LOGIN_BACKENDS": "local, keystone", "CLOUDMGR_LOGIN_MAX_FAILURES": "3"})
    assert settings.login_backends == ("local", "keystone") and settings.login_max_failures == 3
    for bad in ("local,kerberos", " , "):
        with pytest.raises(ConfigurationError, match="LOGIN_BACKENDS"):
            load_settings({"CLOUDMGR_LOGIN_BACKENDS": bad})
    with pytest.raises(ConfigurationError, match="not an integer"):
        load_settings({"CLOUDMGR_LOGIN_LOCKOUT_MINUTES": "soon"})


def test_keystone_url_comes_from_the_setting_or_clouds_yaml(tmp_path: Path) -> None:
    clouds = tmp_path / "clouds.yaml"
    clouds.write_text(
        "clouds:\n  gov:\n    auth: {auth_url: 'https://keystone.gov.cn:5000/v3'}\n    cacert: /etc/ca.pem\n",
        encoding="utf-8",
    )
    base = load_settings({}, os_client_config_file=str(clouds))
    config = keystone_config(base.with_overrides(keystone_cloud="gov"))
    assert (config.auth_url, config.verify) == ("https://keystone.gov.cn:5000/v3", "/etc/ca.pem")
    assert keystone_config(base.with_overrides(keystone_auth_url="http://k:5000")).v3_url == "http://k:5000/v3"
    with pytest.raises(ConfigurationError, match="no entry 'other'"):
        keystone_config(base.with_overrides(keystone_cloud="other"))
    with pytest.raises(ConfigurationError, match="LDAP login needs"):
        external_backends(base.with_overrides(login_backends=("local", "ldap")))
    assert external_backends(base) == []


def test_keystone_that_does_not_answer_is_a_clear_error() -> None:
    backend = KeystoneBackend(KeystoneConfig(f"http://127.0.0.1:{CLOSED_PORT}/v3", "Default", True, 2.0))
    assert backend.authenticate("alice", "") is None  # never sent
    with pytest.raises(IdentityBackendUnavailable, match="Keystone did not answer"):
        backend.authenticate("alice", "Some-Password-1")


def test_ldap_that_does_not_answer_is_a_clear_error() -> None:
    settings = load_settings(
        {
            "CLOUDMGR_LDAP_URL": f"ldap://127.0.0.1:{CLOSED_PORT}",
            "CLOUDMGR_LDAP_USER_DN": "uid={username},ou=people,dc=gov",
            "CLOUDMGR_KEYSTONE_TIMEOUT_SECONDS": "2",
        }
    )
    config = ldap_config(settings)
    assert isinstance(config, LdapConfig)
    backend = LdapBackend(config)
    assert backend.authenticate("alice", "") is None  # an empty password would be an anonymous bind
    with pytest.raises(IdentityBackendUnavailable, match="LDAP server"):
        backend.authenticate("alice", "Some-Password-1")


def test_password_policy_response_control_is_read() -> None:
    """The bind's password-policy control (tests/identity/test_ldap_server.py has it from slapd)."""
    assert password_policy_error(b"0\x03\x81\x01\x01") == PPOLICY_ACCOUNT_LOCKED
    assert password_policy_error(b"0\x08\xa0\x03\x80\x01\x05\x81\x01\x00") == 0  # a warning, then expired
    assert password_policy_error(b"0\x00") is None  # no error
    for malformed in (b"", b"0", b"0\x05\x81\x01", b"\x04\x03\x81\x01\x01", b"0\x84\xff\xff\xff\xff"):
        assert password_policy_error(malformed) is None, malformed
