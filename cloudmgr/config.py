"""Typed configuration, read from the environment with defaults.

Every setting has one environment variable (``CLOUDMGR_<NAME>``).  The defaults make a
fresh checkout run on its own: an SQLite file and a generated secret key under the
instance folder, and the simulated cloud.  Production (``CLOUDMGR_ENV=production``)
refuses to start without an explicit secret key and database URL.
"""

from __future__ import annotations

import ipaddress
import os
import re
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cloudmgr.errors import ConfigurationError

REPO_ROOT = Path(__file__).resolve().parent.parent
PACKAGE_DATA = Path(__file__).resolve().parent / "data"


def _bool(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off", ""}:
        return False
    raise ConfigurationError(f"not a boolean: {value!r}")


def _int(value: str) -> int:
    try:
        return int(value)
    except ValueError as exc:
        raise ConfigurationError(f"not an integer: {value!r}") from exc


def _float(value: str) -> float:
    try:
        return float(value)
    except ValueError as exc:
        raise ConfigurationError(f"not a number: {value!r}") from exc


def _positive(name: str, value: str) -> int:
    number = _int(value)
    if number < 1:
        raise ConfigurationError(f"CLOUDMGR_{name} must be a positive integer, not {value!r}")
    return number


def _choice(name: str, value: str, allowed: set[str]) -> str:
    if value not in allowed:
        raise ConfigurationError(f"CLOUDMGR_{name} must be one of {', '.join(sorted(allowed))}, not {value!r}")
    return value


DEFAULT_TIME_ZONE = "Asia/Shanghai"


def _time_zone(value: str) -> str:
    """An IANA zone name (``Asia/Shanghai``): the pages show every time in it; the API stays UTC."""
    name = value.strip()
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigurationError(
            f"CLOUDMGR_TIME_ZONE must be an IANA time zone such as {DEFAULT_TIME_ZONE}, not {value!r}"
        ) from None
    return name


def _login_backends(value: str) -> tuple[str, ...]:
    backends = tuple(part.strip() for part in value.split(",") if part.strip())
    unknown = [b for b in backends if b not in {"local", "keystone", "ldap"}]
    if unknown or not backends:
        raise ConfigurationError(f"CLOUDMGR_LOGIN_BACKENDS lists local, keystone and/or ldap, not {value!r}")
    return backends


IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
# Who may read /metrics when CLOUDMGR_METRICS_ALLOW is unset: this machine, except in production,
# where a reverse proxy on the same host makes every visitor look local (see metrics_access).
_LOCAL_SCRAPERS = "127.0.0.1/32,::1/128"
METRICS_TOKEN_MIN_LENGTH = 16


def parse_networks(name: str, value: str) -> tuple[IpNetwork, ...]:
    networks: list[IpNetwork] = []
    for part in value.split(","):
        part = part.strip()
        if not part:
            continue
        try:
            networks.append(ipaddress.ip_network(part, strict=False))
        except ValueError:
            raise ConfigurationError(f"CLOUDMGR_{name} lists addresses or networks (CIDR), not {part!r}") from None
    return tuple(networks)


def _metrics_token(token: str, token_file: str) -> str:
    """The bearer token Prometheus scrapes /metrics with: given, or read from a file (better for secrets)."""
    if token and token_file:
        raise ConfigurationError("set CLOUDMGR_METRICS_TOKEN or CLOUDMGR_METRICS_TOKEN_FILE, not both")
    if token_file:
        try:
            token = Path(token_file).read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigurationError(f"CLOUDMGR_METRICS_TOKEN_FILE {token_file!r} cannot be read ({exc})") from exc
        if not token:
            raise ConfigurationError(f"CLOUDMGR_METRICS_TOKEN_FILE {token_file!r} is empty")
    token = token.strip()
    if token and (len(token) < METRICS_TOKEN_MIN_LENGTH or any(c.isspace() or not c.isprintable() for c in token)):
        raise ConfigurationError(
            f"the metrics token needs at least {METRICS_TOKEN_MIN_LENGTH} printable characters and no spaces"
        )
    return token


# The roles that take an approval step (see servicerequests.approval_steps) or decide a purchase.
DECIDING_ROLES = frozenset({"dept_head", "operator", "finance"})
_DEPARTMENT_KEY = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")


def _self_approval(value: str) -> dict[str, str]:
    """``dept-key:role,...``: the departments (small ones, with a single person in a role) where
    that one role may decide what its holder wrote.  Separation of duties holds everywhere else."""
    allowed: dict[str, str] = {}
    for part in value.split(","):
        part = part.strip()
        if not part:
            continue
        key, sep, role = (p.strip() for p in part.partition(":"))
        if not sep or not _DEPARTMENT_KEY.match(key) or role not in DECIDING_ROLES:
            raise ConfigurationError(
                "CLOUDMGR_SELF_APPROVAL_DEPARTMENTS lists department-key:role pairs, the role one of "
                f"{', '.join(sorted(DECIDING_ROLES))}, not {part!r}"
            )
        if key in allowed:
            raise ConfigurationError(f"CLOUDMGR_SELF_APPROVAL_DEPARTMENTS names department {key!r} twice")
        allowed[key] = role
    return allowed


@dataclass(frozen=True, slots=True)
class Settings:
    """All of cloudmgr's settings.  Build with :func:`load_settings`."""

    env: str = "development"
    instance_path: Path = REPO_ROOT / "instance"
    database_url: str = ""
    secret_key: str = ""
    # The organisation: the "1+14+N" clouds and the departments, as data files.
    clouds_file: Path = REPO_ROOT / "etc" / "government-clouds.yaml"
    departments_file: Path = REPO_ROOT / "etc" / "departments.yaml"
    quotas_dir: Path = REPO_ROOT / "quotas"
    rates_file: Path = REPO_ROOT / "etc" / "rates.yaml"
    capacity_file: Path = REPO_ROOT / "etc" / "capacity.yaml"
    programme_file: Path = REPO_ROOT / "etc" / "programme.yaml"  # the cloud programme's deadlines
    # Self-service requests.
    reservation_hold_days: int = 14  # a request waiting longer for approval lets its quota go
    expiry_reminder_days: int = 14
    expiry_grace_days: int = 7  # after expiry, stopped (never deleted) once this many days passed
    # Per provisioning job, the servers building at once (a sliding window: the next boots as
    # soon as one is ACTIVE or failed), so one request never floods the cloud.
    max_concurrent_boots: int = 3
    boot_timeout_seconds: int = 600
    work_lease_seconds: int = 120
    work_poll_seconds: float = 2.0
    # Work on a cloud that cannot be reached is retried (never failed) for this long after it
    # went down, then the work queue's usual attempts decide; retries are at most this far apart.
    cloud_unreachable_grace_seconds: int = 4 * 3600
    cloud_unreachable_retry_seconds: int = 60
    # The scheduler leader renews its lease every third of this; a stand-by takes over after it.
    scheduler_lease_seconds: int = 30
    # The mirror of each cloud's servers (cloudmgr.cloudservers, issue 20): a full sync when the
    # last is older than this (else a delta with changes-since), how far a delta looks back
    # beyond the newest change it saw (changes-since is inclusive and clocks differ), the page size
    # (Nova's max_limit is 1000 by default).
    server_sync_full_seconds: int = 24 * 3600
    server_sync_overlap_seconds: int = 60
    server_sync_page_size: int = 1000
    # Notifications.
    smtp_host: str = ""
    smtp_port: int = 25
    smtp_sender: str = "cloudmgr@localhost"
    webhook_url: str = ""
    public_url: str = "http://127.0.0.1:8000"
    # openstacksdk's own credentials file(s); empty means openstacksdk's search path / OS_CLOUD.
    os_client_config_file: str = ""
    # "simulated" serves the first-run demo; "openstack" talks to the clouds in clouds.yaml.
    cloud_provider: str = "simulated"
    # The province demo of `make run` (CLOUDMGR_DEMO, off by default, refused in production and
    # with OpenStack): the simulated clouds are province-sized (cloudmgr.cloud.simulated.province),
    # the legacy hosts a runbook reaches are directories under ``instance_path/demo-hosts``
    # (Ansible's local connection, cloudmgr.runbooks.demo_hosts), and the programme's deadlines and
    # the capacity targets come from ``instance_path/demo-programme.yaml`` and ``demo-capacity.yaml``
    # that `cloudmgr programme seed-demo` writes relative to today.  No inventory file or runbook
    # variable can turn it on.
    demo: bool = False
    host: str = "127.0.0.1"
    port: int = 8000
    default_locale: str = "zh"
    # The zone the pages show times in (an IANA name); stored times and the API stay UTC.
    time_zone: str = DEFAULT_TIME_ZONE
    session_cookie_secure: bool = False
    scheduler_enabled: bool = True
    log_level: str = "INFO"
    log_format: str = "text"  # "json": one JSON object a line, with the request id
    # Logging in (cloudmgr/identity): backends tried in order; local accounts always win.
    login_backends: tuple[str, ...] = ("local",)
    login_max_failures: int = 5  # failed log-ins of a username before it is locked …
    login_lockout_minutes: int = 15  # … for this long
    # Failed log-ins from one client address (any usernames) within the lock-out time before
    # the address is refused for the lock-out time.
    login_max_failures_per_address: int = 20
    # Reverse proxies whose X-Forwarded-For names the client (the address log-ins are throttled by).
    forwarded_allow_ips: tuple[str, ...] = ("127.0.0.1",)
    identity_mapping_file: Path = REPO_ROOT / "etc" / "identity.yaml"
    # Keystone password login: the auth URL, or the clouds.yaml entry to read it (and its CA) from.
    keystone_auth_url: str = ""
    keystone_cloud: str = ""
    keystone_default_domain: str = "Default"
    keystone_timeout_seconds: float = 10.0
    # LDAP login: the server and the DN a username binds as ("uid={username},ou=people,dc=…").
    ldap_url: str = ""
    ldap_user_dn: str = ""
    ldap_group_attribute: str = "memberOf"
    ldap_department_attribute: str = "departmentNumber"
    # /metrics is served only to Prometheus: a request with this bearer token, or from these
    # addresses and networks (cloudmgr.metrics_access).  Production's default is nobody.
    metrics_token: str = field(default="", repr=False)
    metrics_allow: tuple[IpNetwork, ...] = parse_networks("METRICS_ALLOW", _LOCAL_SCRAPERS)
    ansible_artifacts_dir: Path = REPO_ROOT / "instance" / "ansible"
    # Separation of duties: department key -> the one role allowed to decide its own requests
    # and purchases there (audited as request.self_approved / purchase.self_decided).  Empty: nobody.
    self_approval: Mapping[str, str] = field(default_factory=dict)
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def is_production(self) -> bool:
        return self.env == "production"

    @property
    def simulator_state_path(self) -> Path:
        return self.instance_path / "simulated-cloud.json"

    def with_overrides(self, **changes: Any) -> Settings:
        return replace(self, **changes)


_ENV_PREFIX = "CLOUDMGR_"


def _secret_key_for(instance_path: Path) -> str:
    """Generate a secret key on first run and keep it, so sessions survive restarts locally."""
    key_file = instance_path / "secret_key"
    if key_file.exists():
        return key_file.read_text(encoding="utf-8").strip()
    instance_path.mkdir(parents=True, exist_ok=True)
    key = secrets.token_hex(32)
    # Owner-only: the key signs sessions and CSRF tokens.
    fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(key)
    return key


def load_settings(environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
    """Read settings from ``environ`` (default ``os.environ``); keyword overrides win."""
    env = os.environ if environ is None else environ
    get = _prefixed_reader(env)
    # the values other settings depend on, checked first so a bad one is named on its own
    run_env = get("ENV", "development")
    if run_env not in {"development", "production", "test"}:
        raise ConfigurationError(f"CLOUDMGR_ENV must be development, production or test, not {run_env!r}")
    instance_path = Path(get("INSTANCE_PATH", str(REPO_ROOT / "instance"))).resolve()
    database_url = get("DATABASE_URL")
    secret_key = get("SECRET_KEY")
    if run_env == "production":
        if not secret_key:
            raise ConfigurationError("CLOUDMGR_SECRET_KEY is required in production")
        if not database_url:
            raise ConfigurationError("CLOUDMGR_DATABASE_URL is required in production")
    provider = get("CLOUD_PROVIDER", "simulated")
    if provider not in {"simulated", "openstack"}:
        raise ConfigurationError(f"CLOUDMGR_CLOUD_PROVIDER must be simulated or openstack, not {provider!r}")
    locale = get("DEFAULT_LOCALE", "zh")
    if locale not in {"zh", "en"}:
        raise ConfigurationError(f"CLOUDMGR_DEFAULT_LOCALE must be zh or en, not {locale!r}")

    settings = _settings_from(
        get,
        env,
        run_env=run_env,
        instance_path=instance_path,
        database_url=database_url,
        secret_key=secret_key,
        provider=provider,
        locale=locale,
    )
    if overrides:
        settings = replace(settings, **overrides)
    if settings.demo and (settings.is_production or settings.cloud_provider != "simulated"):
        raise ConfigurationError(
            "CLOUDMGR_DEMO is the simulated cloud's local demo: refused in production and with "
            "CLOUDMGR_CLOUD_PROVIDER=openstack"
        )
    if settings.max_concurrent_boots < 1:
        raise ConfigurationError(
            "CLOUDMGR_MAX_CONCURRENT_BOOTS must be at least 1 (the servers of a request building at once), "
            f"not {settings.max_concurrent_boots}"
        )
    if not settings.secret_key:
        settings = replace(settings, secret_key=_secret_key_for(settings.instance_path))
    return settings


def _prefixed_reader(env: Mapping[str, str]) -> Callable[..., str]:
    """``get(NAME, default)`` reads ``CLOUDMGR_NAME`` from ``env``."""

    def get(name: str, default: str = "") -> str:
        return env.get(_ENV_PREFIX + name, default)

    return get


def _settings_from(
    get: Callable[..., str],
    env: Mapping[str, str],
    *,
    run_env: str,
    instance_path: Path,
    database_url: str,
    secret_key: str,
    provider: str,
    locale: str,
) -> Settings:
    """Every setting read from the environment through ``get``; the values
    :func:`load_settings` has already read and checked are passed in."""
    demo = _bool(get("DEMO", "false"))
    return Settings(
        env=run_env,
        instance_path=instance_path,
        database_url=database_url or f"sqlite:///{instance_path / 'cloudmgr.sqlite3'}",
        secret_key=secret_key,
        clouds_file=Path(get("CLOUDS_FILE", str(REPO_ROOT / "etc" / "government-clouds.yaml"))),
        departments_file=Path(get("DEPARTMENTS_FILE", str(REPO_ROOT / "etc" / "departments.yaml"))),
        quotas_dir=Path(get("QUOTAS_DIR", str(REPO_ROOT / "quotas"))),
        rates_file=Path(get("RATES_FILE", str(REPO_ROOT / "etc" / "rates.yaml"))),
        capacity_file=Path(
            get(
                "CAPACITY_FILE",
                str(instance_path / "demo-capacity.yaml" if demo else REPO_ROOT / "etc" / "capacity.yaml"),
            )
        ),
        programme_file=Path(
            get(
                "PROGRAMME_FILE",
                str(instance_path / "demo-programme.yaml" if demo else REPO_ROOT / "etc" / "programme.yaml"),
            )
        ),
        reservation_hold_days=_int(get("RESERVATION_HOLD_DAYS", "14")),
        expiry_reminder_days=_int(get("EXPIRY_REMINDER_DAYS", "14")),
        expiry_grace_days=_int(get("EXPIRY_GRACE_DAYS", "7")),
        max_concurrent_boots=_int(get("MAX_CONCURRENT_BOOTS", "3")),
        boot_timeout_seconds=_int(get("BOOT_TIMEOUT_SECONDS", "600")),
        work_lease_seconds=_int(get("WORK_LEASE_SECONDS", "120")),
        work_poll_seconds=_float(get("WORK_POLL_SECONDS", "2")),
        cloud_unreachable_grace_seconds=_int(get("CLOUD_UNREACHABLE_GRACE_SECONDS", str(4 * 3600))),
        cloud_unreachable_retry_seconds=_int(get("CLOUD_UNREACHABLE_RETRY_SECONDS", "60")),
        scheduler_lease_seconds=_int(get("SCHEDULER_LEASE_SECONDS", "30")),
        server_sync_full_seconds=_positive("SERVER_SYNC_FULL_SECONDS", get("SERVER_SYNC_FULL_SECONDS", str(24 * 3600))),
        server_sync_overlap_seconds=_int(get("SERVER_SYNC_OVERLAP_SECONDS", "60")),
        server_sync_page_size=_positive("SERVER_SYNC_PAGE_SIZE", get("SERVER_SYNC_PAGE_SIZE", "1000")),
        smtp_host=get("SMTP_HOST"),
        smtp_port=_int(get("SMTP_PORT", "25")),
        smtp_sender=get("SMTP_SENDER", "cloudmgr@localhost"),
        webhook_url=get("WEBHOOK_URL"),
        public_url=get("PUBLIC_URL", "http://127.0.0.1:8000"),
        os_client_config_file=get("OS_CLIENT_CONFIG_FILE", env.get("OS_CLIENT_CONFIG_FILE", "")),
        cloud_provider=provider,
        demo=demo,
        host=get("HOST", "127.0.0.1"),
        port=_int(get("PORT", "8000")),
        default_locale=locale,
        time_zone=_time_zone(get("TIME_ZONE", DEFAULT_TIME_ZONE)),
        session_cookie_secure=_bool(get("SESSION_COOKIE_SECURE", "true" if run_env == "production" else "false")),
        scheduler_enabled=_bool(get("SCHEDULER_ENABLED", "true")),
        log_level=get("LOG_LEVEL", "INFO").upper(),
        log_format=_choice("LOG_FORMAT", get("LOG_FORMAT", "text"), {"text", "json"}),
        login_backends=_login_backends(get("LOGIN_BACKENDS", "local")),
        login_max_failures=_int(get("LOGIN_MAX_FAILURES", "5")),
        login_lockout_minutes=_int(get("LOGIN_LOCKOUT_MINUTES", "15")),
        login_max_failures_per_address=_int(get("LOGIN_MAX_FAILURES_PER_ADDRESS", "20")),
        forwarded_allow_ips=tuple(
            part.strip() for part in get("FORWARDED_ALLOW_IPS", "127.0.0.1").split(",") if part.strip()
        ),
        identity_mapping_file=Path(get("IDENTITY_MAPPING_FILE", str(REPO_ROOT / "etc" / "identity.yaml"))),
        keystone_auth_url=get("KEYSTONE_AUTH_URL"),
        keystone_cloud=get("KEYSTONE_CLOUD"),
        keystone_default_domain=get("KEYSTONE_DEFAULT_DOMAIN", "Default"),
        keystone_timeout_seconds=_float(get("KEYSTONE_TIMEOUT_SECONDS", "10")),
        ldap_url=get("LDAP_URL"),
        ldap_user_dn=get("LDAP_USER_DN"),
        ldap_group_attribute=get("LDAP_GROUP_ATTRIBUTE", "memberOf"),
        ldap_department_attribute=get("LDAP_DEPARTMENT_ATTRIBUTE", "departmentNumber"),
        metrics_token=_metrics_token(get("METRICS_TOKEN"), get("METRICS_TOKEN_FILE")),
        metrics_allow=parse_networks(
            "METRICS_ALLOW", get("METRICS_ALLOW", "" if run_env == "production" else _LOCAL_SCRAPERS)
        ),
        ansible_artifacts_dir=Path(get("ANSIBLE_ARTIFACTS_DIR", str(instance_path / "ansible"))),
        self_approval=_self_approval(get("SELF_APPROVAL_DEPARTMENTS")),
    )
