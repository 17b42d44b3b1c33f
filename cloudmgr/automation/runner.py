"""The one way cloudmgr runs Ansible.

Each run gets its own private data directory under the artefacts folder (kept after
the run, so operators can read what happened), the playbooks come from the repository's
``playbooks/`` folder, and the outcome comes back as a :class:`PlaybookResult`, never as
ansible-runner's own objects.

Every value it passes is data, never a template: the inventory and the extra variables are
written as YAML with each string tagged ``!unsafe`` (JSON, which ansible-runner would
write for a dict, has no such tag, and Ansible templates every string in it on the
controller, so ``{{ lookup('pipe', …) }}`` in an imported field would run there).  Host,
group and variable names cannot be tagged: they must be plain names
(:data:`cloudmgr.automation.values.NAME_RE`, ``VARIABLE_NAME_RE``) or the run is refused.
"""

from __future__ import annotations

import logging
import os
import sys
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ansible_runner
import yaml

from cloudmgr.automation.values import NAME_RE, VARIABLE_NAME_RE, shown
from cloudmgr.config import REPO_ROOT
from cloudmgr.errors import CloudmgrError

log = logging.getLogger(__name__)

PLAYBOOKS_DIR = REPO_ROOT / "playbooks"


class UnsafeAnsibleInput(CloudmgrError):
    """A host, group or variable name that is not a plain name, or a value of a type that is
    not data (the run is refused before Ansible starts)."""


class PlaybookFailed(CloudmgrError):
    def __init__(self, result: PlaybookResult) -> None:
        super().__init__(f"playbook {result.playbook} ended {result.status} (rc={result.rc}) on {result.failed_hosts}")
        self.result = result


@dataclass(frozen=True)
class HostStats:
    ok: int = 0
    changed: int = 0
    failures: int = 0
    unreachable: int = 0
    skipped: int = 0


@dataclass(frozen=True)
class PlaybookResult:
    run_id: str
    playbook: str
    status: str  # successful | failed | timeout | canceled
    rc: int
    artifacts_dir: Path
    hosts: Mapping[str, HostStats] = field(default_factory=dict)
    events: int = 0

    @property
    def ok(self) -> bool:
        return self.status == "successful" and self.rc == 0

    @property
    def failed_hosts(self) -> list[str]:
        return sorted(h for h, s in self.hosts.items() if s.failures or s.unreachable)

    @property
    def changed(self) -> int:
        return sum(s.changed for s in self.hosts.values())

    def raise_for_status(self) -> PlaybookResult:
        if not self.ok:
            raise PlaybookFailed(self)
        return self


EventHandler = Callable[[Mapping[str, Any]], None]


def local_host_vars() -> dict[str, Any]:
    """Host variables of the controller itself (``localhost``): its Python is ours, named by
    path (``{{ ansible_playbook_python }}`` would be a template, and nothing is templated)."""
    return {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}


class _Unsafe(str):
    """A string written with the ``!unsafe`` tag."""


class _UnsafeDumper(yaml.SafeDumper):
    pass


def _represent_unsafe(dumper: yaml.SafeDumper, data: _Unsafe) -> yaml.ScalarNode:
    return dumper.represent_scalar("!unsafe", str(data), style="'")


_UnsafeDumper.add_representer(_Unsafe, _represent_unsafe)


def _data(value: Any, where: str) -> Any:
    """``value`` with every string (at any depth) marked unsafe; keys stay plain names."""
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if isinstance(value, (str, Path)):
        return _Unsafe(str(value))
    if isinstance(value, Mapping):
        return {_name(key, NAME_RE, f"key in {where}"): _data(item, f"{where}.{key}") for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_data(item, f"{where}[{index}]") for index, item in enumerate(value)]
    raise UnsafeAnsibleInput(f"{where}: {type(value).__name__} is not data Ansible may be given")


def _name(name: object, pattern: Any, what: str) -> str:
    if not isinstance(name, str) or not pattern.match(name):
        raise UnsafeAnsibleInput(f"{what} {shown(name)} is not a plain name: refused")
    return name


def _variables(variables: Any, where: str) -> dict[str, Any]:
    if variables is None:
        return {}
    if not isinstance(variables, Mapping):
        raise UnsafeAnsibleInput(f"{where}: variables must be a mapping")
    return {
        _name(key, VARIABLE_NAME_RE, f"variable of {where}"): _data(value, f"{where}.{key}")
        for key, value in variables.items()
    }


def _group(group: Any, name: str) -> dict[str, Any]:
    if group is None:
        return {}
    if not isinstance(group, Mapping) or set(group) - {"hosts", "vars", "children"}:
        raise UnsafeAnsibleInput(f"inventory group {name}: a mapping of hosts, vars and children")
    for part in ("hosts", "children"):
        if group.get(part) is not None and not isinstance(group[part], Mapping):
            raise UnsafeAnsibleInput(f"inventory group {name}: {part} must be a mapping")
    written: dict[str, Any] = {}
    if group.get("hosts") is not None:
        written["hosts"] = {
            _name(host, NAME_RE, "host name"): _variables(host_vars, f"host {host}")
            for host, host_vars in dict(group["hosts"]).items()
        }
    if group.get("vars") is not None:
        written["vars"] = _variables(group["vars"], f"group {name}")
    if group.get("children") is not None:
        written["children"] = {
            _name(child, NAME_RE, "group name"): _group(child_group, str(child))
            for child, child_group in dict(group["children"]).items()
        }
    return written


def unsafe_yaml(data: Mapping[str, Any]) -> str:
    """An Ansible YAML inventory (``{"all": {...}}``) or a mapping of variables as YAML text with
    every string tagged ``!unsafe``; names are checked (:class:`UnsafeAnsibleInput`)."""
    return yaml.dump(
        data, Dumper=_UnsafeDumper, allow_unicode=True, sort_keys=False, default_flow_style=False, width=1 << 16
    )


def inventory_yaml(inventory: Mapping[str, Any]) -> str:
    groups = {_name(name, NAME_RE, "group name"): _group(group, str(name)) for name, group in inventory.items()}
    return unsafe_yaml(groups)


def extravars_yaml(extravars: Mapping[str, Any]) -> str:
    return unsafe_yaml(_variables(extravars, "extra vars"))


def new_run_id() -> str:
    return uuid.uuid4().hex


def artifacts_dir_for(artifacts_root: Path, run_id: str) -> Path:
    """Where the artefacts (stdout, job_events, status, rc) of run ``run_id`` are kept."""
    return artifacts_root / run_id / "artifacts" / run_id


def _write_private_data_dir(private_data_dir: Path, inventory_text: str, extravars_text: str) -> Path:
    """The run's private data directory (it must not exist yet) with its inventory and extra variables;
    the inventory file's path."""
    private_data_dir.mkdir(parents=True, exist_ok=False)
    inventory_file = private_data_dir / "inventory" / "hosts.yml"
    inventory_file.parent.mkdir()
    inventory_file.write_text(inventory_text, encoding="utf-8")
    # ansible-runner passes env/extravars as `-e @env/extravars` (YAML is read, tags and all).
    extravars_file = private_data_dir / "env" / "extravars"
    extravars_file.parent.mkdir()
    extravars_file.write_text(extravars_text, encoding="utf-8")
    return inventory_file


def _environment(private_data_dir: Path, envvars: Mapping[str, str] | None) -> dict[str, str]:
    return {
        # ansible-playbook lives beside our interpreter, which need not be on PATH (a venv
        # used without activation).
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
        "ANSIBLE_HOST_KEY_CHECKING": "False",
        "ANSIBLE_RETRY_FILES_ENABLED": "False",
        "ANSIBLE_NOCOLOR": "True",
        # One ssh round trip per task instead of three or four (put, chmod, run).
        "ANSIBLE_PIPELINING": "True",
        "ANSIBLE_LOCAL_TEMP": str(private_data_dir / "tmp"),
        # Only the YAML plugin reads the inventory (never "script", which would run it).
        "ANSIBLE_INVENTORY_ENABLED": "yaml",
        **(envvars or {}),
    }


def _host_stats(stats: Mapping[str, Any]) -> dict[str, HostStats]:
    """Per host, the counts of the run's final stats (``dark`` is unreachable)."""
    names: set[str] = set()
    for key in ("ok", "changed", "failures", "dark", "skipped"):
        names.update((stats.get(key) or {}).keys())
    return {
        host: HostStats(
            ok=int((stats.get("ok") or {}).get(host, 0)),
            changed=int((stats.get("changed") or {}).get(host, 0)),
            failures=int((stats.get("failures") or {}).get(host, 0)),
            unreachable=int((stats.get("dark") or {}).get(host, 0)),
            skipped=int((stats.get("skipped") or {}).get(host, 0)),
        )
        for host in names
    }


def run_playbook(
    playbook: str,
    *,
    inventory: Mapping[str, Any],
    artifacts_root: Path,
    extravars: Mapping[str, Any] | None = None,
    limit: str | None = None,
    on_event: EventHandler | None = None,
    timeout: int | None = None,
    playbooks_dir: Path = PLAYBOOKS_DIR,
    envvars: Mapping[str, str] | None = None,
    run_id: str | None = None,
) -> PlaybookResult:
    """Run ``playbooks_dir/playbook`` and return its result (failures are results, not exceptions).

    ``run_id`` (default: a new random one) names the private data directory
    ``artifacts_root/<run_id>`` (it must not exist yet), so a caller can record where the
    artefacts will be before the run starts (:func:`artifacts_dir_for`).

    ``inventory`` is an Ansible YAML inventory as a mapping (``{"all": {"hosts": …, "vars":
    …, "children": …}}``); it and ``extravars`` are written as YAML with every string
    ``!unsafe``, so no value is ever templated.  A name that is not plain raises
    :class:`UnsafeAnsibleInput` before anything is written.
    """
    if not (playbooks_dir / playbook).is_file():
        raise CloudmgrError(f"no playbook {playbook!r} in {playbooks_dir}")
    inventory_text = inventory_yaml(inventory)
    extravars_text = extravars_yaml(extravars or {})
    if limit is not None:
        for part in limit.split(","):
            _name(part, NAME_RE, "limit")
    run_id = run_id or uuid.uuid4().hex
    private_data_dir = artifacts_root / run_id
    inventory_file = _write_private_data_dir(private_data_dir, inventory_text, extravars_text)
    env = _environment(private_data_dir, envvars)
    event_count = 0

    def handle_event(event: Mapping[str, Any]) -> bool:
        nonlocal event_count
        event_count += 1
        if on_event is not None:
            try:
                on_event(event)
            except Exception:  # a broken listener must not break the run
                log.exception("event handler failed")
        return True  # keep the event in the artefacts too

    log.info("ansible run %s: %s", run_id, playbook)
    runner = ansible_runner.run(
        private_data_dir=str(private_data_dir),
        project_dir=str(playbooks_dir),
        playbook=playbook,
        inventory=str(inventory_file),
        limit=limit,
        envvars=env,
        event_handler=handle_event,
        quiet=True,
        timeout=timeout,
        ident=run_id,
    )
    hosts = _host_stats(runner.stats or {})
    artifacts_dir = Path(runner.config.artifact_dir) if getattr(runner, "config", None) else private_data_dir
    result = PlaybookResult(
        run_id=run_id,
        playbook=playbook,
        status=str(runner.status),
        rc=int(runner.rc if runner.rc is not None else -1),
        artifacts_dir=artifacts_dir,
        hosts=hosts,
        events=event_count,
    )
    log.info("ansible run %s ended %s rc=%s", run_id, result.status, result.rc)
    return result
