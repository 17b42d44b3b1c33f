"""Running Ansible: one wrapper over ``ansible_runner.run``."""

from cloudmgr.automation.runner import (
    PlaybookFailed,
    PlaybookResult,
    artifacts_dir_for,
    new_run_id,
    run_playbook,
)

__all__ = ["PlaybookFailed", "PlaybookResult", "artifacts_dir_for", "new_run_id", "run_playbook"]
