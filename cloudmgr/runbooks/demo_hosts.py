"""The province demo's hosts (``CLOUDMGR_DEMO``, set by `make run` only): directories, not machines.

The demo's legacy servers (inventory/legacy.yml) have addresses of a province's server rooms that
nothing answers, and its target VMs live in the simulated cloud.  So that a wave still runs end to
end, every runbook host of the demo -- the legacy source and the target VM -- is a directory
``<instance>/demo-hosts/<inventory name>/`` that Ansible reaches with its *local* connection, as the
user running cloudmgr (no root, no sshd, no network namespace):

* ``srv/app`` is the host's application data directory (``app_data_dir``), ``state`` its state
  directory (``app_state_dir``: the service's pid file and log, the service address record);
* the playbooks take their demo branch on the group variable ``demo_local_hosts``: the data is
  copied from directory to directory (rsync, no ssh), the service address is recorded in the state
  directory instead of added to an interface (which needs root), and the service listens on
  127.0.0.1 only.

Only the setting turns this on: the inventory importer keeps none of a file's connection variables
(``ansible_connection``, paths), the runbook configuration refuses every variable it does not know
(``demo_local_hosts``, ``ansible_connection`` among them), and the values below are put last so an
operator's stored variables cannot move a demo host out of its directory or change its Python.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cloudmgr.automation.values import NAME_RE
from cloudmgr.config import Settings
from cloudmgr.runbooks.errors import RunbookNotConfigured

DEMO_HOSTS_DIR = "demo-hosts"
#: Group variables of a demo run: the playbooks' demo branch, the service on the loopback only.
DEMO_GROUP_VARS: Mapping[str, Any] = {"demo_local_hosts": True, "service_bind": "127.0.0.1"}


def demo_hosts_root(settings: Settings) -> Path:
    return settings.instance_path / DEMO_HOSTS_DIR


def demo_host_dir(settings: Settings, name: str) -> Path:
    """The directory that is host ``name`` in the demo (a plain inventory name: one path component)."""
    if not NAME_RE.match(name) or name in {".", ".."}:
        raise RunbookNotConfigured(f"{name!r} is not a plain host name: no demo host directory")
    return demo_hosts_root(settings) / name


def data_dir(settings: Settings, name: str) -> Path:
    return demo_host_dir(settings, name) / "srv" / "app"


def confined_host_vars(settings: Settings, name: str) -> dict[str, Any]:
    """The host variables that make ``name`` a directory reached locally (they win over every other)."""
    host_dir = demo_host_dir(settings, name)
    return {
        "ansible_connection": "local",
        "ansible_python_interpreter": sys.executable,
        "app_data_dir": str(host_dir / "srv" / "app"),
        "app_state_dir": str(host_dir / "state"),
        "service_interface": "lo",
    }


def write_source_data(settings: Settings, hostname: str, files: Mapping[str, str]) -> Path:
    """Put a legacy host's application data into its demo directory (the runbook copies it to the
    target VM's and checks every file's checksum at the service address); returns the directory."""
    target = data_dir(settings, hostname)
    target.mkdir(parents=True, exist_ok=True)
    for relative, text in files.items():
        path = target / relative
        if not path.resolve().is_relative_to(target.resolve()):
            raise ValueError(f"{relative!r} leaves the data directory")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return target
