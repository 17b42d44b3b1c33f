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
from collections.abc import Callable, Hashable
from typing import Any, Generic, TypeVar

from flask import current_app, get_template_attribute
from markupsafe import Markup
from sqlalchemy.orm import Session

from cloudmgr.organisation.actor import Actor
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


def _cache(name: str) -> VersionedCache[Any]:
    """The app's own caches (one app per worker; tests build many apps over many databases)."""
    caches: dict[str, VersionedCache[Any]] = current_app.extensions.setdefault("cloudmgr_list_caches", {})
    cache = caches.get(name)
    if cache is None:
        cache = caches.setdefault(name, VersionedCache())
    return cache


def _scope(actor: Actor) -> int | None:
    return actor.department_id if actor.is_department else None


def request_table(
    session: Session,
    actor: Actor,
    filters: sr.RequestFilter,
    *,
    locale: str,
    detail_endpoint: str,
    caption: str,
    show_department: bool = False,
) -> tuple[int, Markup]:
    """The total and the rendered table of one page of requests."""
    version = sr.request_page_version(session, actor, filters)

    def build() -> Markup:
        rows = sr.requests_by_ids(session, [row_id for row_id, _ in version.rows])
        table = get_template_attribute("selfservice/_macros.html", "requests_table")
        rendered: Markup = table(rows, locale, detail_endpoint, caption, show_department=show_department)
        return rendered  # a macro of an autoescaping environment returns Markup

    key = ("table", detail_endpoint, locale, caption, show_department, _scope(actor), filters, version)
    table: Markup = _cache("request_tables").get_or_build(key, build)
    return version.total, table


def request_items(
    session: Session, actor: Actor, filters: sr.RequestFilter, serialise: Callable[[ServiceRequest], JSON]
) -> tuple[int, list[JSON]]:
    """The total and the JSON items of one page of requests."""
    version = sr.request_page_version(session, actor, filters)

    def build() -> list[JSON]:
        return [serialise(r) for r in sr.requests_by_ids(session, [row_id for row_id, _ in version.rows])]

    items: list[JSON] = _cache("request_items").get_or_build(("items", _scope(actor), filters, version), build)
    return version.total, items
