from __future__ import annotations

from cloudmgr.errors import Conflict, NotFound, PermissionDenied, ValidationFailed


class RunNotFound(NotFound):
    code = "runbook_run_not_found"


class RunbookOperatorRequired(PermissionDenied):
    """Only an operator (or cloudmgr's own jobs and console, which act as one) runs a system's runbook."""

    code = "runbook_operator_required"


class UnknownStep(ValidationFailed):
    code = "unknown_step"


class RunbookBusy(Conflict):
    """The system already has a queued or running step: one at a time."""

    code = "runbook_busy"


class StepNotAllowed(Conflict):
    """The step cannot run now (e.g. decommission before a verified cutover)."""

    code = "runbook_step_not_allowed"


class RunbookNotConfigured(Conflict):
    """The system lacks what its runbook needs (its address, a target cloud, a service address…)."""

    code = "runbook_not_configured"


class RunbookTargetInvalid(ValidationFailed):
    """A runbook setting (address or variable) is refused; ``problems`` names each one."""

    code = "runbook_target_invalid"

    def __init__(self, message: str, problems: list[str]) -> None:
        super().__init__(message)
        self.problems = problems
