from __future__ import annotations

from cloudmgr.errors import Conflict, NotFound, ValidationFailed
from cloudmgr.messages import Message

#: (row number, field, reason): row 0 is the file itself (or a declared line); the field is a
#: column's name, or the file's own text (an unknown column title, an XLSX cell such as B7) as it is.
Problem = tuple[int, str | Message, Message]


class LineNotFound(NotFound):
    code = "line_not_found"


class InvalidLineTarget(ValidationFailed):
    code = "invalid_line_target"


class ClassifiedLineRefused(Conflict):
    """A line carrying classified business may only go to the e-government intranet (or be retired):
    never the extranet, never the internet.  Every refusal is audited."""

    code = "classified_line"

    def __init__(
        self, message: str | Message, *, line_id: int | None = None, code: str = "", entry_point: str = ""
    ) -> None:
        super().__init__(message)
        self.line_id = line_id
        self.line_code = code
        self.entry_point = entry_point


class LinesInvalid(ValidationFailed):
    """The file has problems; ``problems`` lists every one as a :data:`Problem` (the web shows its
    field and reason in the page's language, the API and the CLI in English)."""

    code = "lines_invalid"

    def __init__(self, message: str | Message, problems: list[Problem]) -> None:
        super().__init__(message)
        self.problems = problems


class RentalNotFound(NotFound):
    code = "line_rental_not_found"


class RentalInvalid(ValidationFailed):
    """A line rental or renewal request with problems; ``problems`` lists each (field: reason), each
    said in the reader's language where it is shown."""

    code = "line_rental_invalid"

    def __init__(self, message: str | Message, problems: list[Message]) -> None:
        super().__init__(message)
        self.problems = problems


class RentalTransitionInvalid(Conflict):
    code = "line_rental_state"
