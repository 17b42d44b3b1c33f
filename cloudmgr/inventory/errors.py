from __future__ import annotations

from cloudmgr.errors import Conflict, NotFound, ValidationFailed
from cloudmgr.messages import Message


class SystemNotFound(NotFound):
    code = "system_not_found"


class InvalidSystemTransition(Conflict):
    code = "invalid_system_transition"


class ClassifiedPlacementRefused(Conflict):
    """A classified (涉密) system may never be placed on these clouds: they only have the
    internet and extranet zones; classified business stays on the e-government intranet."""

    code = "classified_system"

    def __init__(
        self,
        message: str | Message,
        *,
        system_id: int | None = None,
        hostname: str = "",
        entry_point: str = "",
    ) -> None:
        super().__init__(message)
        self.system_id = system_id
        self.hostname = hostname
        self.entry_point = entry_point


class InventoryInvalid(ValidationFailed):
    """The inventory file has problems; ``problems`` lists every one as (host, reason)."""

    code = "inventory_invalid"

    def __init__(self, message: str, problems: list[tuple[str, str]]) -> None:
        super().__init__(message)
        self.problems = problems
