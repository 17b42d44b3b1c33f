"""The Ansible inventory a runbook step runs with: the source host, the target VM and their variables."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from cloudmgr.automation import local_host_vars
from cloudmgr.automation.values import NAME_RE, address_problem
from cloudmgr.config import Settings
from cloudmgr.inventory.models import LegacySystem
from cloudmgr.runbooks.demo_hosts import DEMO_GROUP_VARS, confined_host_vars
from cloudmgr.runbooks.errors import (
    RunbookNotConfigured,
)
from cloudmgr.runbooks.models import (
    RunbookTarget,
    Step,
)
from cloudmgr.runbooks.reading import completed_steps
from cloudmgr.runbooks.rules import _NEEDS_SERVICE_ADDRESS, _NEEDS_TARGET, target_name
from cloudmgr.runbooks.variables import target_problems

#: Host variables every runbook host gets unless the system's target says otherwise.
DEFAULT_HOST_VARS: Mapping[str, Any] = {
    "ansible_user": "root",
    "ansible_python_interpreter": "/usr/bin/python3",
    "app_data_dir": "/srv/app",
    "app_state_dir": "/var/lib/cloudmgr-app",
    "service_interface": "eth0",
}


DEFAULT_GROUP_VARS: Mapping[str, Any] = {"service_port": 8080, "service_prefix": 24, "app_service_name": "app"}


def _default_key(settings: Settings) -> Path:
    return settings.instance_path / "ssh" / "id_ed25519"


def build_inventory(session: Session, system: LegacySystem, step: Step, settings: Settings) -> dict[str, Any]:
    """The run's inventory: localhost, the source (the legacy host) and the target VM.

    The stored values are checked again (rows written before the rules existed, or by hand):
    a refused one raises :class:`RunbookNotConfigured` naming it, before Ansible starts."""
    target = session.get(RunbookTarget, system.id)
    if not system.ansible_host:
        raise RunbookNotConfigured(f"{system.hostname} has no ansible_host in the inventory")
    if not NAME_RE.match(system.hostname):
        raise RunbookNotConfigured(f"{system.hostname!r}: the host name is not a plain name")
    host_problem = address_problem(system.ansible_host)
    if host_problem:
        raise RunbookNotConfigured(f"{system.hostname}: ansible_host {host_problem}")
    if target is not None:
        stored_problems = target_problems(
            target_host=target.target_host,
            service_address=target.service_address,
            vars=target.vars,
            source_vars=target.source_vars,
            target_vars=target.target_vars,
        )
        if stored_problems:
            raise RunbookNotConfigured(f"{system.hostname}: " + "; ".join(stored_problems))
    target_host = target.target_host if target else None
    if step in _NEEDS_TARGET and not target_host:
        raise RunbookNotConfigured(f"{system.hostname}: the target VM's address is unknown (provision first)")
    service_address = target.service_address if target else None
    if step in _NEEDS_SERVICE_ADDRESS and not service_address:
        raise RunbookNotConfigured(f"{system.hostname} has no service address configured")
    key = _default_key(settings)
    key_vars = {"ansible_ssh_private_key_file": str(key)} if key.exists() else {}
    group_vars: dict[str, Any] = {
        **DEFAULT_GROUP_VARS,
        "system_hostname": system.hostname,
        "system_os_family": system.os_family,
        "target_disk_gb": system.disk_gb,
    }
    if key.exists():
        group_vars["replication_key_file"] = str(key)
    if service_address:
        group_vars["service_address"] = service_address
    if step == Step.DECOMMISSION:
        group_vars["verified"] = Step.VERIFY in completed_steps(session, system.id)
    group_vars.update(target.vars if target else {})
    if settings.demo:
        # The demo's hosts are directories reached locally (cloudmgr.runbooks.demo_hosts): its
        # values come last, so no stored variable moves a host out of its directory.
        group_vars.pop("replication_key_file", None)
        group_vars.update(DEMO_GROUP_VARS)
    children: dict[str, Any] = {
        "source": {
            "hosts": {
                system.hostname: {
                    **DEFAULT_HOST_VARS,
                    **key_vars,
                    "ansible_host": system.ansible_host,
                    **(target.source_vars if target else {}),
                    **(confined_host_vars(settings, system.hostname) if settings.demo else {}),
                }
            }
        }
    }
    if target_host:
        children["target"] = {
            "hosts": {
                target_name(system): {
                    **DEFAULT_HOST_VARS,
                    **key_vars,
                    "ansible_host": target_host,
                    **(target.target_vars if target else {}),
                    **(confined_host_vars(settings, target_name(system)) if settings.demo else {}),
                }
            }
        }
    else:
        children["target"] = {"hosts": {}}
    return {
        "all": {
            "hosts": {"localhost": local_host_vars()},
            "vars": group_vars,
            "children": children,
        }
    }
