"""The per-process runtime: settings, database and cloud providers, built once."""

from __future__ import annotations

import threading
from dataclasses import dataclass

import cloudmgr.models  # noqa: F401  (every mapper is registered before any process queries one)
from cloudmgr.config import Settings, load_settings
from cloudmgr.db import Database
from cloudmgr.providers import ProviderRegistry


@dataclass
class Runtime:
    settings: Settings
    db: Database
    providers: ProviderRegistry

    def __post_init__(self) -> None:
        # Every call to a cloud, on every path, records whether the cloud answered.
        from cloudmgr.organisation.reachability import recorder_factory

        self.providers.observe_with(recorder_factory(self.db))

    @classmethod
    def from_settings(cls, settings: Settings) -> Runtime:
        settings.instance_path.mkdir(parents=True, exist_ok=True)
        return cls(settings=settings, db=Database(settings.database_url), providers=ProviderRegistry(settings))


_lock = threading.Lock()
_current: Runtime | None = None


def get_runtime() -> Runtime:
    """The process's runtime, built from the environment on first use (jobs use this)."""
    global _current
    with _lock:
        if _current is None:
            _current = Runtime.from_settings(load_settings())
        return _current


def set_runtime(runtime: Runtime | None) -> Runtime | None:
    """Install a runtime (the web app factory and tests do this); the one it replaces is returned."""
    global _current
    with _lock:
        previous, _current = _current, runtime
        return previous


def installed_settings() -> Settings | None:
    """The installed runtime's settings, or None when none is installed (never builds one).

    For rules that must hold on every path without each caller passing the settings: the web
    app, the CLI and the scheduler install their runtime before anything runs."""
    with _lock:
        return _current.settings if _current is not None else None
