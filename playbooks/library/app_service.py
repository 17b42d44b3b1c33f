#!/usr/bin/python
"""Ansible module: the application service of a migrated host (a small HTTP server).

Serves ``directory`` over HTTP on ``bind:port`` and answers every response with the
header ``X-Served-By: <served_by>``, so a client can tell which host answered at the
service address.  ``state=started`` starts it unless it already runs (pid file + the
process's command line), ``state=stopped`` stops it; ``changed`` says whether anything
was done.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time

from ansible.module_utils.basic import AnsibleModule

MARKER = "cloudmgr-app-service"

SERVER = """
import functools, http.server, sys
_marker, directory, bind, port, served_by = sys.argv[1:6]
class Handler(http.server.SimpleHTTPRequestHandler):
    def end_headers(self):
        self.send_header("X-Served-By", served_by)
        self.send_header("Cache-Control", "no-store")
        super().end_headers()
    def log_message(self, *args):
        pass
http.server.ThreadingHTTPServer.allow_reuse_address = True
server = http.server.ThreadingHTTPServer((bind, int(port)), functools.partial(Handler, directory=directory))
server.serve_forever()
"""


def _running_pid(pid_file: str, name: str) -> int | None:
    try:
        with open(pid_file) as handle:
            pid = int(handle.read().strip())
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            cmdline = handle.read().split(b"\0")
    except (OSError, ValueError):
        return None
    return pid if f"{MARKER}:{name}".encode() in cmdline else None


def _wait_listening(port: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    return False


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "name": {"type": "str", "required": True},
            "state": {"type": "str", "choices": ["started", "stopped"], "default": "started"},
            "directory": {"type": "path"},
            "port": {"type": "int", "default": 8080},
            "bind": {"type": "str", "default": "0.0.0.0"},  # noqa: S104 (the service's clients are on the LAN)
            "served_by": {"type": "str", "default": ""},
            "state_dir": {"type": "path", "required": True},
        },
        required_if=[("state", "started", ["directory"])],
        supports_check_mode=True,
    )
    p = module.params
    os.makedirs(p["state_dir"], exist_ok=True)
    pid_file = os.path.join(p["state_dir"], f"{p['name']}.pid")
    pid = _running_pid(pid_file, p["name"])
    if p["state"] == "stopped":
        if pid is None:
            module.exit_json(changed=False, running=False)
        if not module.check_mode:
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and _running_pid(pid_file, p["name"]) is not None:
                with contextlib.suppress(ChildProcessError):
                    os.waitpid(pid, os.WNOHANG)
                time.sleep(0.05)
            if _running_pid(pid_file, p["name"]) is not None:
                os.kill(pid, signal.SIGKILL)
            os.unlink(pid_file)
        module.exit_json(changed=True, running=False, pid=pid)
    if pid is not None:
        module.exit_json(changed=False, running=True, pid=pid)
    if module.check_mode:
        module.exit_json(changed=True, running=True)
    if not os.path.isdir(p["directory"]):
        module.fail_json(msg=f"no directory {p['directory']} to serve")
    log_path = os.path.join(p["state_dir"], f"{p['name']}.log")
    with open(log_path, "ab") as log:  # the child keeps its own copy of the descriptor
        proc = subprocess.Popen(
            [
                sys.executable,
                "-c",
                SERVER,
                f"{MARKER}:{p['name']}",
                p["directory"],
                p["bind"],
                str(p["port"]),
                p["served_by"],
            ],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
            close_fds=True,
        )
    with open(pid_file, "w") as handle:
        handle.write(str(proc.pid))
    if not _wait_listening(p["port"], 10):
        module.fail_json(msg=f"the service did not listen on port {p['port']} (see {log_path})")
    module.exit_json(changed=True, running=True, pid=proc.pid)


if __name__ == "__main__":
    main()
