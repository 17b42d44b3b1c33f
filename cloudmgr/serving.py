"""Running the web app under gunicorn from ``cloudmgr serve``."""

from __future__ import annotations

from typing import Any

from gunicorn.app.base import BaseApplication
from gunicorn.util import import_app

WSGI_APP = "web:create_app()"


class _Gunicorn(BaseApplication):  # type: ignore[misc]
    def __init__(self, options: dict[str, Any]) -> None:
        self._options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self._options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        # Named, not imported: the core package never imports the web package.
        return import_app(WSGI_APP)


def serve_with_gunicorn(host: str, port: int, *, workers: int, threads: int) -> None:
    _Gunicorn(
        {
            "bind": f"{host}:{port}",
            "workers": workers,
            "threads": threads,
            "worker_class": "gthread",
            # No gunicorn access log: the app logs every request itself, as JSON with its request
            # id and duration (web/core/observability.py); a second line per request would only cost.
            "accesslog": None,
            "timeout": 60,
        }
    ).run()
