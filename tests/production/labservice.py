"""Stopping and starting one lab service (nova-api) the way vagrant/lab/up.sh runs it.

The lab's settings come from vagrant/lab/common.sh itself.  While nova-api is down the
lab's lock (``$LAB/.lock``, the one up.sh and down.sh take) is held, so a concurrent
``up.sh`` waits for the restart instead of restarting the whole lab under the test.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.production.processes import REPO

COMMON = REPO / "vagrant" / "lab" / "common.sh"
NAMES = ("VENV", "ETC", "RUN", "LOGS", "LAB", "LAB_BIND", "NOVA_PORT", "LAB_SRC")


def lab_vars() -> dict[str, str]:
    script = f'. "{COMMON}"; ' + "; ".join(f'printf "%s\\n" "${n}"' for n in NAMES)
    out = subprocess.run(["bash", "-c", script], capture_output=True, text=True, check=True, timeout=30).stdout
    return dict(zip(NAMES, out.splitlines(), strict=True))


def _pid(v: dict[str, str], name: str) -> int | None:
    try:
        pid = int(Path(v["RUN"], f"{name}.pid").read_text().strip())
        os.kill(pid, 0)
    except (OSError, ValueError):
        return None
    return pid


def nova_api_answers(timeout: float = 3.0) -> bool:
    try:
        with urllib.request.urlopen("http://127.0.0.1:8774/", timeout=timeout) as response:
            return bool(response.status < 500)
    except urllib.error.HTTPError as error:
        return bool(error.code < 500)
    except OSError:
        return False


def stop_nova_api(v: dict[str, str]) -> None:
    pid = _pid(v, "nova-api")
    if pid is not None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGTERM)  # up.sh starts each service in its own session
        deadline = time.monotonic() + 30
        while _pid(v, "nova-api") is not None and time.monotonic() < deadline:
            time.sleep(0.2)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while nova_api_answers(1) and time.monotonic() < deadline:
        time.sleep(0.2)


def start_nova_api(v: dict[str, str], timeout: float = 240) -> float:
    """Start nova-api as up.sh's start_gunicorn does; seconds until it answers."""
    started = time.monotonic()
    if _pid(v, "nova-api") is None:
        log = Path(v["LOGS"], "nova-api.log")
        with log.open("ab") as handle:
            stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
            handle.write(f"\n===== {stamp} start nova-api (tests)\n".encode())
        env = {
            **os.environ,
            "OS_NOVA_CONFIG_DIR": f"{v['ETC']}/nova",
            "OS_NOVA_CONFIG_FILES": "api-paste.ini;nova.conf",
            "NOVA_API_LOG": str(log),
        }
        gunicorn = [
            f"{v['VENV']}/bin/gunicorn",
            "--bind",
            f"{v['LAB_BIND']}:{v['NOVA_PORT']}",
            "--workers",
            "1",
            "--worker-class",
            "gthread",
            "--threads",
            "8",
            "--timeout",
            "300",
            "--graceful-timeout",
            "5",
            "--no-control-socket",
            "--pythonpath",
            v["LAB_SRC"],
            "--name",
            "cmlab-nova-api",
            "lab_wsgi:nova()",
        ]
        # nova-api belongs to the lab and outlives this test, so it must not be our child (a child
        # never waited for is a leak): a short-lived sh starts it in the background in its own
        # session, as up.sh's start_svc does, prints its pid and exits; nova-api is then the
        # init process's child.  A background job of a non-interactive sh is no group leader,
        # so setsid does not fork and $! is nova-api's pid, which is also its process group.
        launcher = subprocess.run(
            ["sh", "-c", 'setsid "$@" >>"$NOVA_API_LOG" 2>&1 </dev/null & echo $!', "sh", *gunicorn],
            cwd=v["RUN"],
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        )
        Path(v["RUN"], "nova-api.pid").write_text(f"{int(launcher.stdout)}\n")
    deadline = started + timeout
    while not nova_api_answers():
        if time.monotonic() > deadline:
            raise AssertionError(f"nova-api did not come back in {timeout:.0f} s (see {v['LOGS']}/nova-api.log)")
        time.sleep(0.5)
    return time.monotonic() - started


@contextmanager
def lab_lock(v: dict[str, str], timeout: float = 300) -> Iterator[None]:
    with Path(v["LAB"], ".lock").open("w") as handle:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise AssertionError("the lab is locked by a running up.sh/down.sh") from None
                time.sleep(1)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
