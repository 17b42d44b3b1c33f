"""Real cloudmgr processes for the production proofs: gunicorn serving the web app and
`cloudmgr scheduler run`, started the way deploy/systemd starts them, killed with SIGKILL.

Each process gets its own session (process group) so that killing the group takes
gunicorn's workers with their master, as a crashed machine or an OOM kill would.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cloudmgr.config import Settings

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def process_env(settings: Settings, **extra: str) -> dict[str, str]:
    """The environment a deployed process gets (see deploy/systemd/cloudmgr.env.example)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLOUDMGR_")}
    env.update(
        CLOUDMGR_ENV="test",
        CLOUDMGR_INSTANCE_PATH=str(settings.instance_path),
        CLOUDMGR_DATABASE_URL=settings.database_url,
        CLOUDMGR_SECRET_KEY=settings.secret_key,
        CLOUDMGR_CLOUD_PROVIDER=settings.cloud_provider,
        CLOUDMGR_OS_CLIENT_CONFIG_FILE=settings.os_client_config_file,
        CLOUDMGR_QUOTAS_DIR=str(settings.quotas_dir),
        CLOUDMGR_SCHEDULER_ENABLED="false",
        CLOUDMGR_LOG_LEVEL="INFO",
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


@dataclass
class Proc:
    """One supervised process; ``restart`` starts the same command again (like systemd)."""

    name: str
    argv: list[str]
    env: dict[str, str]
    log: Path
    port: int | None = None
    popen: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    starts: int = 0

    def start(self) -> Proc:
        handle = self.log.open("ab")
        handle.write(f"\n===== start {self.starts + 1} of {self.name}\n".encode())
        handle.flush()
        self.popen = subprocess.Popen(
            self.argv, cwd=REPO, env=self.env, stdout=handle, stderr=handle, start_new_session=True
        )
        handle.close()
        self.starts += 1
        return self

    @property
    def pid(self) -> int:
        assert self.popen is not None
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def kill(self) -> None:
        """SIGKILL the whole process group (gunicorn's workers too)."""
        if self.popen is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signal.SIGKILL)
        self.popen.wait(30)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after 20 s."""
        if self.popen is None or self.popen.poll() is not None:
            return
        try:
            os.killpg(self.popen.pid, signal.SIGTERM)
            self.popen.wait(20)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            self.kill()

    def tail(self, chars: int = 4000) -> str:
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except FileNotFoundError:
            return ""

    def wait_http(self, path: str = "/healthz", timeout: float = 60.0) -> None:
        assert self.port is not None
        deadline = time.monotonic() + timeout
        while True:
            if not self.alive():
                raise AssertionError(f"{self.name} exited:\n{self.tail()}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=2) as response:
                    if response.status == 200:
                        return
            except (OSError, urllib.error.URLError):
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.name} did not answer {path} in {timeout:.0f} s:\n{self.tail()}")
            time.sleep(0.2)


def scheduler_proc(env: Mapping[str, str], log: Path, name: str = "scheduler") -> Proc:
    return Proc(name, [sys.executable, "-m", "cloudmgr.cli", "scheduler", "run"], dict(env), log)


def web_proc(env: Mapping[str, str], log: Path, *, name: str = "web", workers: int = 2, threads: int = 4) -> Proc:
    """gunicorn with deploy/gunicorn.conf.py, as deploy/systemd/cloudmgr-web.service runs it."""
    port = free_port()
    argv = [
        sys.executable,
        "-m",
        "gunicorn",
        "--config",
        str(REPO / "deploy" / "gunicorn.conf.py"),
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(workers),
        "--threads",
        str(threads),
        "web:create_app()",
    ]
    return Proc(name, argv, dict(env), log, port=port)


def wait_until(
    condition: Callable[[], Any], timeout: float, message: Callable[[], str] | str, step: float = 0.2
) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(message() if callable(message) else message)
        time.sleep(step)


class Api:
    """A tiny JSON client for /api/v1 with a bearer token (urllib: nothing to install)."""

    def __init__(self, port: int, token: str) -> None:
        self.port = port
        self.token = token

    def call(
        self, method: str, path: str, body: Mapping[str, Any] | None = None, timeout: float = 30
    ) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}/api/v1{path}",
            data=data,
            method=method,
            headers={"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return response.status, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as error:
            payload = error.read()
            try:
                return error.code, json.loads(payload or b"null")
            except ValueError:
                return error.code, payload.decode(errors="replace")
