"""One page of a list, read in SQL: the window (``OFFSET``/``LIMIT``), the total (``count``), and
a text search over a few columns.

Every listing service takes a :class:`PageRequest` and answers a :class:`Page`, so a list that
grows never reads all its rows to show twenty-five.  The bounds live here, once: a page number
past :data:`MAX_PAGE` or below 1, a page size outside 1..:data:`MAX_PER_PAGE` and a search text
longer than :data:`MAX_QUERY` are clamped by :meth:`PageRequest.of`, whoever asks (page, API, CLI).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import ColumnElement, Select, String, cast, func, or_, select
from sqlalchemy.orm import Session

T = TypeVar("T")

MAX_PAGE = 100_000
MAX_PER_PAGE = 200
DEFAULT_PER_PAGE = 25
MAX_QUERY = 100


def _clamp(value: int | None, low: int, high: int, default: int) -> int:
    if value is None:
        return default
    return min(max(value, low), high)


@dataclass(frozen=True, slots=True)
class PageRequest:
    """Which page of a list, how many rows on it, and the text searched for (``None``: no search)."""

    page: int = 1
    per_page: int = DEFAULT_PER_PAGE
    q: str | None = None

    @classmethod
    def of(
        cls, page: int | None = None, per_page: int | None = None, q: str | None = None, *, default_per_page: int = 0
    ) -> PageRequest:
        """A request within bounds, whatever was asked."""
        text = " ".join((q or "").split())[:MAX_QUERY] or None
        return cls(
            page=_clamp(page, 1, MAX_PAGE, 1),
            per_page=_clamp(per_page, 1, MAX_PER_PAGE, default_per_page or DEFAULT_PER_PAGE),
            q=text,
        )

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.per_page


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    rows: Sequence[T]
    total: int
    page: int
    per_page: int

    @property
    def pages(self) -> int:
        return max((self.total + self.per_page - 1) // self.per_page, 1)

    @property
    def first_row(self) -> int:
        """The position of the page's first row in the whole list (1-based; 0 when the page is empty)."""
        return (self.page - 1) * self.per_page + 1 if self.rows else 0

    @property
    def last_row(self) -> int:
        return self.first_row + len(self.rows) - 1 if self.rows else 0


def like_pattern(text: str) -> str:
    """``text`` as a case-insensitive ``LIKE`` pattern that matches it anywhere, its own ``%``, ``_``
    and ``\\`` taken literally."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def matches_text(text: str | None, *columns: Any) -> ColumnElement[bool] | None:
    """A clause true when every word of ``text`` is found in one of ``columns`` (``None``: no search).

    A number column is compared as text, so ``#12`` and ``12`` find request 12 among others."""
    if not text:
        return None
    words = [word.lstrip("#") for word in text.split()]
    clauses = []
    for word in words:
        if not word:
            continue
        pattern = like_pattern(word)
        clauses.append(or_(*(cast(column, String).ilike(pattern, escape="\\") for column in columns)))
    if not clauses:
        return None
    clause = clauses[0]
    for more in clauses[1:]:
        clause = clause & more
    return clause


def search(query: Select[Any], text: str | None, *columns: Any) -> Select[Any]:
    clause = matches_text(text, *columns)
    return query if clause is None else query.where(clause)


def paginate(session: Session, query: Select[Any], request: PageRequest, *order_by: Any) -> Page[Any]:
    """The page ``request`` asks of ``query`` (ordered by ``order_by``) and the total of ``query``.

    A page past the end shows the last page rather than nothing: a bookmark of page 9 of a list that
    shrank to 3 pages still lands on rows."""
    total = session.scalar(select(func.count()).select_from(query.order_by(None).subquery())) or 0
    pages = max((total + request.per_page - 1) // request.per_page, 1)
    page = min(request.page, pages)
    rows = (
        session.scalars(query.order_by(*order_by).offset((page - 1) * request.per_page).limit(request.per_page))
        .unique()
        .all()
    )
    return Page(rows=rows, total=total, page=page, per_page=request.per_page)
