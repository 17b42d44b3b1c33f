"""The query string of a list page, read once for every list: ``?q=`` (the search text), ``?page=``,
``?per_page=`` and the list's own filters.

Numbers out of bounds are clamped (:meth:`cloudmgr.paging.PageRequest.of`); a filter value the list
does not know (an old bookmark, a hand-edited address) is set aside and the page says so above the
list, in the page's language: the list shows everything that filter would have narrowed, never a 500
and never a silently different list.  The template side is ``web/templates/_listing.html``: ``list_controls``
(the search box, the filters, the page size) and ``list_pager``, both fed a :class:`ListView`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from flask import request
from flask_babel import gettext as _

from cloudmgr.paging import MAX_PAGE, MAX_PER_PAGE, Page, PageRequest

PER_PAGE_CHOICES = (25, 50, 100, 200)


def _int_arg(name: str) -> int | None:
    raw = (request.args.get(name) or "").strip()
    if not raw:
        return None
    try:
        # A number too large for any page is still a number: clamped, not refused.
        return int(raw[:12]) if raw.lstrip("-").isdigit() else None
    except ValueError:
        return None


def page_request(*, per_page: int = 25, page_param: str = "page") -> PageRequest:
    """``?page=`` (or ``page_param``, for a second table on the page), ``?per_page=`` and ``?q=``
    within bounds (nonsense reads as the default)."""
    return PageRequest.of(_int_arg(page_param), _int_arg("per_page"), request.args.get("q"), default_per_page=per_page)


@dataclass(frozen=True, slots=True)
class ListFilter:
    """One drop-down of a list's filters: its query-string name, its label, its choices (value, label)
    with "" meaning all, and the value chosen."""

    name: str
    label: str
    choices: Sequence[tuple[str, str]]
    value: str = ""
    #: what was asked when it is no choice of this filter (then ``value`` is "", all)
    ignored: str = ""


def filter_arg(name: str, label: str, choices: Iterable[tuple[str, str]], *, all_label: str) -> ListFilter:
    """``?<name>=`` as one of ``choices``; anything else is set aside (``ignored``) and said on the page."""
    options = [("", all_label), *choices]
    value = (request.args.get(name) or "").strip()
    if value and value not in {key for key, _label in options}:
        return ListFilter(name=name, label=label, choices=options, ignored=value[:60])
    return ListFilter(name=name, label=label, choices=options, value=value)


@dataclass(slots=True)
class ListView:
    """What the list templates need: where the form goes, the search, the filters and the page."""

    endpoint: str
    params: PageRequest
    filters: Sequence[ListFilter] = ()
    #: the search box's hint (what is searched); ``None``: the list has no search box
    search_hint: str | None = None
    #: arguments of ``endpoint`` itself (``wave_id`` …) and query-string values kept across pages
    view_args: Mapping[str, Any] = field(default_factory=dict)
    page: Page[Any] | None = None
    default_per_page: int = 25

    def value(self, name: str) -> str:
        return next((f.value for f in self.filters if f.name == name), "")

    def url_args(self, **changes: Any) -> dict[str, Any]:
        """The query string that shows this list again, with ``changes`` (e.g. ``page=3``)."""
        args: dict[str, Any] = dict(self.view_args)
        if self.params.q:
            args["q"] = self.params.q
        if self.params.per_page != self.default_per_page:
            args["per_page"] = self.params.per_page
        for item in self.filters:
            if item.value:
                args[item.name] = item.value
        args.update(changes)
        return {key: value for key, value in args.items() if value not in (None, "")}

    @property
    def per_page_choices(self) -> list[int]:
        return sorted({*PER_PAGE_CHOICES, self.default_per_page})

    @property
    def notices(self) -> list[str]:
        """What the page says about filter values it set aside."""
        return [
            _(
                "The filter “%(filter)s” has no value “%(value)s”: the list is not narrowed by it.",
                filter=item.label,
                value=item.ignored,
            )
            for item in self.filters
            if item.ignored
        ]

    @property
    def searching(self) -> bool:
        return bool(self.params.q) or any(f.value for f in self.filters)


__all__ = [
    "MAX_PAGE",
    "MAX_PER_PAGE",
    "PER_PAGE_CHOICES",
    "ListFilter",
    "ListView",
    "filter_arg",
    "page_request",
]
