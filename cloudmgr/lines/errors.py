from __future__ import annotations

from cloudmgr.errors import Conflict, NotFound, ValidationFailed


class LineNotFound(NotFound):
    code = "line_not_found"


class InvalidLineTarget(ValidationFailed):
    code = "invalid_line_target"


class ClassifiedLineRefused(Conflict):
    """A line carrying classified business may only go to the e-government intranet (or be retired):
    never the extranet, never the internet.  Every refusal is audited."""

    code = "classified_line"

    def __init__(self, message: str, *, line_id: int | None = None, code: str = "", entry_point: str = "") -> None:
        super().__init__(message)
        self.line_id = line_id
        self.line_code = code
        self.entry_point = entry_point


class LinesInvalid(ValidationFailed):
    """The file has problems; ``problems`` lists every one as (row number, field, reason in Chinese);
    row 0 is the file itself."""

    code = "lines_invalid"

    def __init__(self, message: str, problems: list[tuple[int, str, str]]) -> None:
        super().__init__(message)
        self.problems = problems


class RentalNotFound(NotFound):
    code = "line_rental_not_found"


class RentalInvalid(ValidationFailed):
    """A line rental or renewal request with problems; ``problems`` lists each (field: reason)."""

    code = "line_rental_invalid"

    def __init__(self, message: str, problems: list[str]) -> None:
        super().__init__(message)
        self.problems = problems


class RentalTransitionInvalid(Conflict):
    code = "line_rental_state"
