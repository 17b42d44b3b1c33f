from __future__ import annotations

from pathlib import Path

import pytest

from cloudmgr.config import load_settings
from cloudmgr.errors import ConfigurationError


def test_defaults_make_a_fresh_checkout_run(tmp_path: Path) -> None:
    settings = load_settings({"CLOUDMGR_INSTANCE_PATH": str(tmp_path / "inst")})
    assert settings.database_url == f"sqlite:///{tmp_path / 'inst' / 'cloudmgr.sqlite3'}"
    assert settings.cloud_provider == "simulated"
    assert (settings.host, settings.port) == ("127.0.0.1", 8000)
    assert settings.default_locale == "zh"
    assert settings.time_zone == "Asia/Shanghai"
    assert len(settings.secret_key) == 64


def test_secret_key_is_generated_once_and_kept_private(tmp_path: Path) -> None:
    env = {"CLOUDMGR_INSTANCE_PATH": str(tmp_path)}
    first = load_settings(env).secret_key
    assert load_settings(env).secret_key == first
    assert (tmp_path / "secret_key").stat().st_mode & 0o077 == 0


def test_production_requires_secret_key_and_database(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="CLOUDMGR_SECRET_KEY"):
        load_settings({"CLOUDMGR_ENV": "production", "CLOUDMGR_INSTANCE_PATH": str(tmp_path)})
    with pytest.raises(ConfigurationError, match="CLOUDMGR_DATABASE_URL"):
        load_settings({"CLOUDMGR_ENV": "production", "CLOUDMGR_SECRET_KEY": "x" * 40})
    settings = load_settings(
        {"CLOUDMGR_ENV": "production", "CLOUDMGR_SECRET_KEY": "k" * 40, "CLOUDMGR_DATABASE_URL": "postgresql://db/x"}
    )
    assert settings.is_production and settings.session_cookie_secure


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("CLOUDMGR_PORT", "eighty", "not an integer"),
        ("CLOUDMGR_CLOUD_PROVIDER", "aws", "simulated or openstack"),
        ("CLOUDMGR_DEFAULT_LOCALE", "fr", "zh or en"),
        ("CLOUDMGR_TIME_ZONE", "Beijing", "IANA time zone such as Asia/Shanghai, not 'Beijing'"),
        ("CLOUDMGR_TIME_ZONE", "../../etc/passwd", "CLOUDMGR_TIME_ZONE must be an IANA time zone"),
        ("CLOUDMGR_SESSION_COOKIE_SECURE", "maybe", "not a boolean"),
        ("CLOUDMGR_ENV", "staging", "development, production or test"),
        ("CLOUDMGR_MAX_CONCURRENT_BOOTS", "0", "CLOUDMGR_MAX_CONCURRENT_BOOTS must be at least 1"),
    ],
)
def test_malformed_settings_are_refused_clearly(tmp_path: Path, name: str, value: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        load_settings({name: value, "CLOUDMGR_INSTANCE_PATH": str(tmp_path)})


def test_the_time_zone_is_any_iana_zone(tmp_path: Path) -> None:
    settings = load_settings({"CLOUDMGR_TIME_ZONE": "Asia/Urumqi", "CLOUDMGR_INSTANCE_PATH": str(tmp_path)})
    assert settings.time_zone == "Asia/Urumqi"
