"""Running Ansible: one wrapper over ``ansible_runner.run``."""

from cloudmgr.automation.runner import PlaybookFailed, PlaybookResult, run_playbook

__all__ = ["PlaybookFailed", "PlaybookResult", "run_playbook"]
