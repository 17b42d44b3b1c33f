"""Running Ansible: one wrapper over ``ansible_runner.run``."""

from cloudmgr.automation.runner import (
    PlaybookFailed,
    PlaybookResult,
    UnsafeAnsibleInput,
    artifacts_dir_for,
    local_host_vars,
    new_run_id,
    run_playbook,
)

__all__ = [
    "PlaybookFailed",
    "PlaybookResult",
    "UnsafeAnsibleInput",
    "artifacts_dir_for",
    "local_host_vars",
    "new_run_id",
    "run_playbook",
]
