"""The one way cloudmgr runs Ansible.

Each run gets its own private data directory under the artefacts folder (kept after
the run, so operators can read what happened), the playbooks come from the repository's
``playbooks/`` folder, and the outcome comes back as a :class:`PlaybookResult`, never as
ansible-runner's own objects.
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

from cloudmgr.config import REPO_ROOT
from cloudmgr.errors import CloudmgrError

log = logging.getLogger(__name__)

PLAYBOOKS_DIR = REPO_ROOT / "playbooks"


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


def new_run_id() -> str:
    return uuid.uuid4().hex


def artifacts_dir_for(artifacts_root: Path, run_id: str) -> Path:
    """Where the artefacts (stdout, job_events, status, rc) of run ``run_id`` are kept."""
    return artifacts_root / run_id / "artifacts" / run_id


def run_playbook(
    playbook: str,
    *,
    inventory: str | Path | Mapping[str, Any],
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
    """
    if not (playbooks_dir / playbook).is_file():
        raise CloudmgrError(f"no playbook {playbook!r} in {playbooks_dir}")
    run_id = run_id or uuid.uuid4().hex
    private_data_dir = artifacts_root / run_id
    private_data_dir.mkdir(parents=True, exist_ok=False)
    run_inventory: Any = str(inventory) if isinstance(inventory, Path) else inventory
    env = {
        # ansible-playbook lives beside our interpreter, which need not be on PATH (a venv
        # used without activation).
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
        "ANSIBLE_HOST_KEY_CHECKING": "False",
        "ANSIBLE_RETRY_FILES_ENABLED": "False",
        "ANSIBLE_NOCOLOR": "True",
        # One ssh round trip per task instead of three or four (put, chmod, run).
        "ANSIBLE_PIPELINING": "True",
        "ANSIBLE_LOCAL_TEMP": str(private_data_dir / "tmp"),
        **(envvars or {}),
    }
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
        inventory=run_inventory,
        extravars=dict(extravars or {}),
        limit=limit,
        envvars=env,
        event_handler=handle_event,
        quiet=True,
        timeout=timeout,
        ident=run_id,
    )
    stats = runner.stats or {}
    hosts: dict[str, HostStats] = {}
    names: set[str] = set()
    for key in ("ok", "changed", "failures", "dark", "skipped"):
        names.update((stats.get(key) or {}).keys())
    for host in names:
        hosts[host] = HostStats(
            ok=int((stats.get("ok") or {}).get(host, 0)),
            changed=int((stats.get("changed") or {}).get(host, 0)),
            failures=int((stats.get("failures") or {}).get(host, 0)),
            unreachable=int((stats.get("dark") or {}).get(host, 0)),
            skipped=int((stats.get("skipped") or {}).get(host, 0)),
        )
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
