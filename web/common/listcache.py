"""Request lists, reused while nothing on them changed.

A request list is read far more often than its requests change, and building a page (the
ORM objects of 25 requests with their clouds, departments and flavors, then a table row for
each) is most of its cost.  Each page is first read in brief, in one cheap query: the total
and the id and ``updated_at`` of each row it shows (:func:`request_page_version`).  That
version is part of the cache key, so any change of a row on the page, a new request, or a
request leaving the filter gives a new key and the page is built afresh; nothing stale is
served.  What the version does not see (a cloud, department or flavor renamed) is bounded by
the entries' time to live.

Per process (each gunicorn worker has its own), least recently used entries go first.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from flask import current_app, g, get_template_attribute, request
from flask import session as web_session
from markupsafe import Markup
from sqlalchemy.orm import Session

from cloudmgr.organisation import services as org
from cloudmgr.organisation.actor import Actor
from cloudmgr.organisation.services import NamedChoice
from cloudmgr.servicerequests import services as sr
from cloudmgr.servicerequests.models import ServiceRequest

V = TypeVar("V")
JSON = dict[str, Any]

DEFAULT_MAX_ENTRIES = 512
DEFAULT_TTL_SECONDS = 60.0


class VersionedCache(Generic[V]):
    def __init__(self, *, max_entries: int = DEFAULT_MAX_ENTRIES, ttl_seconds: float = DEFAULT_TTL_SECONDS) -> None:
        self._entries: OrderedDict[Hashable, tuple[float, V]] = OrderedDict()
        self._lock = threading.Lock()  # gunicorn's gthread workers serve several requests at once
        self._max_entries = max_entries
        self._ttl = ttl_seconds
        self.hits = 0
        self.misses = 0

    def get_or_build(self, key: Hashable, build: Callable[[], V]) -> V:
        now = time.monotonic()
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and now - entry[0] < self._ttl:
                self._entries.move_to_end(key)
                self.hits += 1
                return entry[1]
        value = build()  # outside the lock: two threads may build the same page, both right
        with self._lock:
            self.misses += 1
            self._entries[key] = (now, value)
            self._entries.move_to_end(key)
            while len(self._entries) > self._max_entries:
                self._entries.popitem(last=False)
        return value

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


# --- the request lists of the portal, the operators' pages and the API -----------------------


def _cache(name: str, *, ttl_seconds: float = DEFAULT_TTL_SECONDS) -> VersionedCache[Any]:
    """The app's own caches (one app per worker; tests build many apps over many databases)."""
    caches: dict[str, VersionedCache[Any]] = current_app.extensions.setdefault("cloudmgr_list_caches", {})
    cache = caches.get(name)
    if cache is None:
        cache = caches.setdefault(name, VersionedCache(ttl_seconds=ttl_seconds))
    return cache


@dataclass(frozen=True)
class RequestPage:
    """One page of a request list, read in brief (its version) once per request; the table or
    the JSON of its rows are built from the database only when no process-local copy of that
    version exists."""

    actor: Actor
    filters: sr.RequestFilter
    version: sr.PageVersion

    @classmethod
    def read(cls, session: Session, actor: Actor, filters: sr.RequestFilter) -> RequestPage:
        return cls(actor, filters, sr.request_page_version(session, actor, filters))

    @property
    def total(self) -> int:
        return self.version.total

    def _rows(self, session: Session) -> Sequence[ServiceRequest]:
        return sr.requests_by_ids(session, [row_id for row_id, _ in self.version.rows])

    def table(
        self, session: Session, *, locale: str, detail_endpoint: str, caption: str, show_department: bool = False
    ) -> Markup:
        """The rendered table of the page's rows."""

        def build() -> Markup:
            table = get_template_attribute("selfservice/_macros.html", "requests_table")
            rendered: Markup = table(
                self._rows(session), locale, detail_endpoint, caption, show_department=show_department
            )
            return rendered  # a macro of an autoescaping environment returns Markup

        key = (
            "table",
            detail_endpoint,
            locale,
            caption,
            show_department,
            self.actor.department_scope,
            self.filters,
            self.version,
        )
        table: Markup = _cache("request_tables").get_or_build(key, build)
        return table

    def json_body(self, session: Session, serialise: Callable[[ServiceRequest], JSON]) -> bytes:
        """The API's answer for the page, encoded: ``{"items", "total", "page", "per_page"}``."""

        def build() -> bytes:
            body = {
                "items": [serialise(r) for r in self._rows(session)],
                "total": self.total,
                "page": self.filters.page,
                "per_page": self.filters.per_page,
            }
            return current_app.json.dumps(body).encode() + b"\n"

        key = ("json", self.actor.department_scope, self.filters, self.version)
        body: bytes = _cache("request_json").get_or_build(key, build)
        return body


# --- whole pages ------------------------------------------------------------------------------


def cached_page(data_version: Hashable, render: Callable[[], str]) -> str:
    """A rendered list page, reused while the data it shows (``data_version``) is the same.

    Besides the data, a page shows its user (name, role, department), the language, the URL
    (filters, page number) and a CSRF token for its forms, derived from the session's own
    secret: all are part of the key, so a page is only ever reused for the same user in the
    same session, and its token stays valid (tokens live for the whole session).  A page with a
    message to show once (a flash) is always rendered afresh and never kept.
    """
    from web.core.i18n import current_locale
    from web.core.security import require_user

    csrf_secret = web_session.get("csrf_token")
    if "_flashes" in web_session or csrf_secret is None:
        # A flash is shown once; a session without its CSRF secret gets it while rendering.
        return render()
    user = require_user()
    key = (
        request.full_path,
        current_locale(),
        user,
        csrf_secret,
        bool(g.get("cloudmgr_minimal_chrome")),
        data_version,
    )
    page: str = _cache("pages", ttl_seconds=PAGE_TTL_SECONDS).get_or_build(key, render)
    return page


# What the data version of a page does not see (a user, cloud or department renamed) shows
# within this time.
PAGE_TTL_SECONDS = 30.0
CHOICES_TTL_SECONDS = 30.0


def _choices(key: Hashable, read: Callable[[], list[NamedChoice]]) -> list[NamedChoice]:
    """Filter choices, read at most once per CHOICES_TTL_SECONDS: one added or renamed shows
    within that time."""
    choices: list[NamedChoice] = _cache("choices", ttl_seconds=CHOICES_TTL_SECONDS).get_or_build(key, read)
    return choices


def cloud_choices(session: Session) -> list[NamedChoice]:
    return _choices("clouds", lambda: org.cloud_choices(session))


def department_choices(session: Session) -> list[NamedChoice]:
    return _choices("departments", lambda: org.department_choices(session))


def department_cloud_choices(session: Session, department_id: int) -> list[NamedChoice]:
    return _choices(("department clouds", department_id), lambda: org.department_cloud_choices(session, department_id))
